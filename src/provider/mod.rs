//! The provider-neutral core: what callverify needs from a telephony provider, whatever its
//! wire protocol. Each provider is one folder implementing [`Provider`] (Twilio:
//! `src/provider/twilio/`); [`Providers`] holds the configured accounts by name, and webhook
//! URLs carry that name (`/telephony/{provider}/{id}/…`). The wire facts each adapter relies on
//! are in docs/PROVIDERS.md.
//!
//! Adding a provider: a new folder with a type implementing [`Provider`], and one line in
//! `start_provider` in `src/lib.rs`, where the accounts are built.

pub mod twilio;

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::HeaderMap;
use futures_util::future::BoxFuture;

use crate::verification::prompts::Answer;
use crate::verification::{FailureReason, Status};

/// A call to place: where to ring, and where the provider fetches the call's documents and
/// posts its progress.
#[derive(Debug, Clone, Copy)]
pub struct CallRequest<'a> {
    pub to_e164: &'a str,
    /// Fetched when the callee answers (our `voice` webhook).
    pub answer_url: &'a str,
    /// Receives call progress (our `status` webhook).
    pub status_url: &'a str,
    /// Fetched when a document of ours cannot be fetched (our `fallback` webhook: an apology).
    pub fallback_url: &'a str,
}

/// Why the provider refused a call, in neutral terms: each adapter maps its own error codes
/// onto these (Twilio: `src/provider/twilio/client.rs`, table in docs/PROVIDERS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallRefusal {
    /// The number is not a valid destination (Twilio 21211, 21217).
    InvalidNumber,
    /// The provider will not call this number: geo permissions, its blocklist (Twilio 21215,
    /// 21216).
    NumberNotAllowed,
    /// Any other refusal of this call.
    Other,
}

/// Why a provider request did not succeed, classified by what it means for the call — and
/// above all whether the call was certainly **not** placed (every variant but `Unknown`).
/// Adapters map their own error codes onto these variants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Not placed: the provider refused this call (a 4xx about the call itself).
    #[error("provider refused the call: {code} {message}")]
    Refused {
        refusal: CallRefusal,
        code: u32,
        message: String,
    },
    /// Not placed: too many requests (Twilio HTTP 429 / 20429); safe to retry after a pause.
    #[error("provider throttled the request: {code} {message}")]
    Throttled { code: u32, message: String },
    /// Not placed: the operator's configuration is wrong (credentials, account, caller ID;
    /// Twilio 20003, 21210, 21212, 21219, HTTP 401/403). Logged as an ERROR and counted.
    #[error("provider account misconfigured: {code} {message}")]
    Misconfigured { code: u32, message: String },
    /// Not placed: the provider could not be reached at all (no connection).
    #[error("provider unreachable: {0}")]
    Unreachable(String),
    /// Perhaps placed: a timeout, a 5xx or an unreadable success. The call may ring.
    #[error("provider outcome unknown: {0}")]
    Unknown(String),
}

impl ProviderError {
    /// The failure reason when this error ends a verification.
    pub fn reason(&self) -> FailureReason {
        match self {
            ProviderError::Refused { refusal, .. } => match refusal {
                CallRefusal::InvalidNumber => FailureReason::InvalidNumber,
                CallRefusal::NumberNotAllowed => FailureReason::NumberNotAllowedByProvider,
                CallRefusal::Other => FailureReason::ProviderRejected,
            },
            ProviderError::Throttled { .. } => FailureReason::ProviderThrottled,
            ProviderError::Misconfigured { .. } => FailureReason::ProviderMisconfigured,
            ProviderError::Unreachable(_) => FailureReason::ProviderFailed,
            ProviderError::Unknown(_) => FailureReason::ProviderUnknown,
        }
    }

    /// Whether the provider certainly did not place the call (so it may be refunded, failed at
    /// once, or — later — tried with another provider).
    pub fn certainly_not_placed(&self) -> bool {
        !matches!(self, ProviderError::Unknown(_))
    }

    /// The provider's own error code, when it gave one.
    pub fn code(&self) -> Option<u32> {
        match self {
            ProviderError::Refused { code, .. }
            | ProviderError::Throttled { code, .. }
            | ProviderError::Misconfigured { code, .. } => Some(*code),
            ProviderError::Unreachable(_) | ProviderError::Unknown(_) => None,
        }
    }

    /// The metric label of a failed request.
    pub fn outcome(&self) -> &'static str {
        match self {
            ProviderError::Refused { .. } => "rejected",
            ProviderError::Throttled { .. } => "throttled",
            ProviderError::Misconfigured { .. } => "misconfigured",
            ProviderError::Unreachable(_) => "unreachable",
            ProviderError::Unknown(_) => "unknown",
        }
    }
}

/// A call's progress in neutral terms (each adapter maps its provider's statuses onto these).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallProgress {
    /// Accepted, not ringing yet.
    Queued,
    Ringing,
    Answered,
    /// Ended after it was answered.
    Completed,
    Busy,
    NoAnswer,
    /// The provider could not connect the call.
    Failed,
    /// Ended before it was answered, by us or the provider.
    Canceled,
    /// A status this adapter does not know: ignored.
    Unknown,
}

impl CallProgress {
    /// The progress as the transition script reads it (`src/store/scripts/transition.lua`).
    pub fn as_str(self) -> &'static str {
        match self {
            CallProgress::Ringing => "ringing",
            CallProgress::Answered => "answered",
            CallProgress::Completed
            | CallProgress::Busy
            | CallProgress::NoAnswer
            | CallProgress::Failed
            | CallProgress::Canceled => "end",
            CallProgress::Queued | CallProgress::Unknown => "",
        }
    }

    /// Whether the call is over.
    pub fn is_final(self) -> bool {
        self.ending().is_some()
    }

    /// For a call that ended: the status and reason it ends an open verification with.
    pub fn ending(self) -> Option<(Status, FailureReason)> {
        Some(match self {
            CallProgress::Completed => (Status::Failed, FailureReason::HungUp),
            CallProgress::Busy => (Status::Failed, FailureReason::Busy),
            CallProgress::NoAnswer => (Status::Failed, FailureReason::NoAnswer),
            CallProgress::Failed => (Status::Failed, FailureReason::ProviderFailed),
            CallProgress::Canceled => (Status::Canceled, FailureReason::Canceled),
            _ => return None,
        })
    }
}

/// A webhook request as received: what a provider needs to authenticate and decode it.
#[derive(Debug)]
pub struct WebhookRequest<'a> {
    /// The URL the provider requested: `server.public_url` + path and query.
    pub url: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// A webhook that passed its provider's signature check, in neutral terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// The provider's id of the call (never empty: a webhook without one is refused).
    pub call_id: String,
    /// Keys the callee pressed (gather); empty for silence or other webhooks.
    pub digits: String,
    /// The call's progress (status callbacks).
    pub progress: CallProgress,
    /// Answering-machine detection said a machine or a fax answered (Twilio `AnsweredBy` =
    /// `machine_*` or `fax`).
    pub machine: bool,
}

/// Why a webhook was refused before it could change anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no signature")]
    MissingSignature,
    #[error("signature mismatch")]
    BadSignature,
    #[error("no call id")]
    MissingCallId,
    #[error("unsupported content type")]
    UnsupportedMediaType,
}

impl Refusal {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::MissingSignature => "missing",
            Refusal::BadSignature => "mismatch",
            Refusal::MissingCallId => "no_call_id",
            Refusal::UnsupportedMediaType => "media_type",
        }
    }
}

/// A document in the provider's markup, ready to answer a webhook with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Markup {
    pub body: String,
    pub content_type: &'static str,
}

/// One configured provider account: its REST API, its webhooks' signatures and parameters, and
/// its markup.
pub trait Provider: Send + Sync + 'static {
    /// The account's name, as it appears in webhook URLs.
    fn name(&self) -> &str;

    /// Asks the provider to place `call`; returns the provider's call id.
    fn place_call<'a>(
        &'a self,
        call: CallRequest<'a>,
    ) -> BoxFuture<'a, Result<String, ProviderError>>;

    /// Ends a call that is queued, ringing or in progress.
    fn end_call<'a>(&'a self, call_id: &'a str) -> BoxFuture<'a, Result<(), ProviderError>>;

    /// The provider's own record of a call's progress (for reconciliation).
    fn call_progress<'a>(
        &'a self,
        call_id: &'a str,
    ) -> BoxFuture<'a, Result<CallProgress, ProviderError>>;

    /// Verifies a webhook's signature (in constant time), then decodes its parameters.
    fn receive(&self, request: &WebhookRequest<'_>) -> Result<Webhook, Refusal>;

    /// Renders what the callee hears next in this provider's markup.
    fn render(&self, answer: &Answer<'_>) -> Markup;
}

/// The configured provider accounts, by name. Cheap to clone.
#[derive(Clone, Default)]
pub struct Providers {
    by_name: Arc<HashMap<String, Arc<dyn Provider>>>,
    /// The account new calls go to.
    default: Option<Arc<dyn Provider>>,
}

impl Providers {
    /// One account (today's single-provider configuration).
    pub fn single(provider: Arc<dyn Provider>) -> Self {
        let by_name = HashMap::from([(provider.name().to_owned(), provider.clone())]);
        Self {
            by_name: Arc::new(by_name),
            default: Some(provider),
        }
    }

    /// The account named in a webhook URL.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.by_name.get(name)
    }

    /// The account that places new calls.
    pub fn for_new_call(&self) -> Option<&Arc<dyn Provider>> {
        self.default.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ending_progress_maps_to_a_terminal_status_and_reason() {
        assert_eq!(
            CallProgress::Completed.ending(),
            Some((Status::Failed, FailureReason::HungUp))
        );
        assert_eq!(
            CallProgress::Canceled.ending(),
            Some((Status::Canceled, FailureReason::Canceled))
        );
        for open in [
            CallProgress::Queued,
            CallProgress::Ringing,
            CallProgress::Answered,
            CallProgress::Unknown,
        ] {
            assert_eq!(open.ending(), None);
            assert_ne!(open.as_str(), "end");
        }
    }
}
