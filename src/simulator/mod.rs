//! The built-in carrier simulator: a Twilio-compatible Calls API that plays calls against our webhooks.
