//! What a verification call is for and how it ends: its [`Purpose`], [`Status`] and
//! [`FailureReason`] (exact strings are an API contract).

use serde::{Deserialize, Serialize};

/// Why a verification failed (exact strings are an API contract: the view's `reason`, the
/// `verification.failed` event, metric labels; the transition script writes them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// The line was busy.
    Busy,
    /// Nobody answered within the ring timeout.
    NoAnswer,
    /// The callee hung up without approving.
    HungUp,
    /// The prompt was played `verification.max_prompts` times without `#`.
    NoInput,
    /// The provider could not place or complete the call (5xx, timeout, call `failed`).
    ProviderFailed,
    /// The provider refused to place the call (a 4xx not classified below).
    ProviderRejected,
    /// The provider account's call queue was full (`provider.calls_per_second`), or the
    /// provider kept throttling (429 / 20429) for longer than `provider.max_queue_ms`.
    ProviderThrottled,
    /// The operator's provider configuration is wrong (credentials, caller ID, trial account).
    ProviderMisconfigured,
    /// The provider does not call this number (geo permissions, its blocklist).
    NumberNotAllowedByProvider,
    /// The provider says the number is not a valid destination.
    InvalidNumber,
    /// Whether the provider placed the call is unknown (timeout, 5xx, unreadable answer), or it
    /// placed the call without naming it, and no call reported back within the ring timeout
    /// plus a margin.
    ProviderUnknown,
    /// Answering-machine detection found a machine or a fax; nothing was read out.
    Voicemail,
    /// The call was canceled before it was answered.
    Canceled,
    /// Nothing ended the verification before its expiry.
    Expired,
}

impl FailureReason {
    pub const ALL: [FailureReason; 14] = [
        FailureReason::Busy,
        FailureReason::NoAnswer,
        FailureReason::HungUp,
        FailureReason::NoInput,
        FailureReason::ProviderFailed,
        FailureReason::ProviderRejected,
        FailureReason::ProviderThrottled,
        FailureReason::ProviderMisconfigured,
        FailureReason::NumberNotAllowedByProvider,
        FailureReason::InvalidNumber,
        FailureReason::ProviderUnknown,
        FailureReason::Voicemail,
        FailureReason::Canceled,
        FailureReason::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Busy => "busy",
            FailureReason::NoAnswer => "no_answer",
            FailureReason::HungUp => "hung_up",
            FailureReason::NoInput => "no_input",
            FailureReason::ProviderFailed => "provider_failed",
            FailureReason::ProviderRejected => "provider_rejected",
            FailureReason::ProviderThrottled => "provider_throttled",
            FailureReason::ProviderMisconfigured => "provider_misconfigured",
            FailureReason::NumberNotAllowedByProvider => "number_not_allowed_by_provider",
            FailureReason::InvalidNumber => "invalid_number",
            FailureReason::ProviderUnknown => "provider_unknown",
            FailureReason::Voicemail => "voicemail",
            FailureReason::Canceled => "canceled",
            FailureReason::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Why a verification call is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Prove a new phone number; approval registers the phone-call method.
    Registration,
    /// Two-step verification of a sign-in to a registered phone.
    SignIn,
    /// Identity check for a self-service password reset.
    PasswordReset,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Registration => "registration",
            Purpose::SignIn => "sign_in",
            Purpose::PasswordReset => "password_reset",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "registration" => Purpose::Registration,
            "sign_in" => Purpose::SignIn,
            "password_reset" => Purpose::PasswordReset,
            _ => return None,
        })
    }
}

/// A verification's status as the API shows it (exact strings are an API contract).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Calling,
    Ringing,
    Answered,
    Approved,
    Failed,
    Expired,
    Canceled,
    FraudReported,
}

impl Status {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "calling" => Status::Calling,
            "ringing" => Status::Ringing,
            "answered" => Status::Answered,
            "approved" => Status::Approved,
            "failed" => Status::Failed,
            "expired" => Status::Expired,
            "canceled" => Status::Canceled,
            "fraud_reported" => Status::FraudReported,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Calling => "calling",
            Status::Ringing => "ringing",
            Status::Answered => "answered",
            Status::Approved => "approved",
            Status::Failed => "failed",
            Status::Expired => "expired",
            Status::Canceled => "canceled",
            Status::FraudReported => "fraud_reported",
        }
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, Status::Calling | Status::Ringing | Status::Answered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_know_terminality() {
        for s in [
            Status::Calling,
            Status::Ringing,
            Status::Answered,
            Status::Approved,
            Status::Failed,
            Status::Expired,
            Status::Canceled,
            Status::FraudReported,
        ] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::Value::String(s.as_str().into())
            );
        }
        assert!(!Status::Answered.is_terminal());
        assert!(Status::FraudReported.is_terminal());
    }

    #[test]
    fn failure_reasons_round_trip_and_cover_what_the_scripts_write() {
        for r in FailureReason::ALL {
            assert_eq!(FailureReason::parse(r.as_str()), Some(r));
            assert_eq!(
                serde_json::to_value(r).unwrap(),
                serde_json::Value::String(r.as_str().into())
            );
        }
        // The transition script writes two reasons of its own (the rest come from Rust).
        let script = include_str!("../store/scripts/transition.lua");
        for written in ["no_input", "expired", "hung_up", "voicemail"] {
            assert!(script.contains(&format!("'{written}'")));
            assert!(FailureReason::parse(written).is_some(), "{written}");
        }
    }
}
