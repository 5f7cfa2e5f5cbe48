//! Provider webhooks: signature checks, the call flow's TwiML answers.

pub mod signature;
