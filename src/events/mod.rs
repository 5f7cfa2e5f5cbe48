//! Outgoing events to portal back-ends, signed per Standard Webhooks.

pub mod signature;
