//! Provider webhooks (`/telephony/twilio/{id}/…`): signature checks, the call flow, TwiML.

mod calls;
pub mod form;
pub mod signature;
pub mod twiml;
pub mod webhook;

pub use calls::router;
