//! Outbound calls to the telephony provider's REST API.
//!
//! Only the Twilio Calls API is spoken; Twilio-compatible providers and the built-in carrier
//! simulator are reached through the same client with another `api_base`.

pub mod twilio;

/// Why the provider did not place a call. Maps onto the verification's failure reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered 4xx: it will not place this call (bad number, geo permissions,
    /// credentials, …). Reason `provider_rejected`.
    #[error("provider rejected the call: {code} {message}")]
    Rejected { code: u32, message: String },
    /// 5xx, a timeout or no connection: reason `provider_failed`.
    #[error("provider failed: {0}")]
    Failed(String),
}

impl ProviderError {
    pub fn reason(&self) -> &'static str {
        match self {
            ProviderError::Rejected { .. } => "provider_rejected",
            ProviderError::Failed(_) => "provider_failed",
        }
    }
}
