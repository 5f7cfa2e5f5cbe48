//! The provider-neutral core: what callverify needs from a telephony provider, whatever its
//! wire protocol. Each provider is one folder implementing [`Provider`] (Twilio:
//! `src/provider/twilio/`); [`Providers`] holds the configured accounts by name, and webhook
//! URLs carry that name (`/telephony/{provider}/{id}/…`). The wire facts each adapter relies on
//! are in docs/PROVIDERS.md.
//!
//! Adding a provider: a new folder with a type implementing [`Provider`], and one line in
//! `start_provider` in `src/lib.rs`, where the accounts are built.

pub mod http;
pub mod plivo;
pub mod signalwire;
pub mod telnyx;
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
}

/// Why the provider did not place a call. Maps onto the verification's failure reason, and
/// says whether the next account may be tried: only when it is **certain** that nothing was
/// dialled ([`ProviderError::certainty`]), and never for a number the provider calls invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered 4xx: it will not place this call (credentials, geo permissions,
    /// suspended account, …). Nothing was dialled. Reason `provider_rejected`.
    #[error("provider rejected the call: {code} {message}")]
    Rejected { code: u32, message: String },
    /// The provider says the destination is not a valid number (4xx). Nothing was dialled, and
    /// another account would say the same: no failover. Reason `provider_rejected`.
    #[error("provider rejected the number: {code} {message}")]
    InvalidNumber { code: u32, message: String },
    /// The provider asked us to slow down (429 past its retries). Nothing was dialled. Reason
    /// `provider_throttled`.
    #[error("provider throttled the call: {0}")]
    Throttled(String),
    /// No connection to the provider could be made (refused, DNS, connect timeout): the request
    /// never left. Reason `provider_failed`.
    #[error("provider unreachable: {0}")]
    Unreachable(String),
    /// The account's circuit breaker is open: it was not asked at all. Reason `provider_failed`.
    #[error("provider account skipped: circuit open")]
    CircuitOpen,
    /// 5xx, a timeout after the request was sent, or an unreadable answer: a call may be
    /// ringing. Reason `provider_failed`.
    #[error("provider failed: {0}")]
    Failed(String),
}

/// What a failed request says about the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Certainty {
    /// Certain that nothing was dialled.
    NothingDialled,
    /// A call may exist (timeout, 5xx, unreadable answer).
    Unknown,
}

impl ProviderError {
    pub fn reason(&self) -> FailureReason {
        match self {
            ProviderError::Rejected { .. } | ProviderError::InvalidNumber { .. } => {
                FailureReason::ProviderRejected
            }
            ProviderError::Throttled(_) => FailureReason::ProviderThrottled,
            ProviderError::Unreachable(_)
            | ProviderError::CircuitOpen
            | ProviderError::Failed(_) => FailureReason::ProviderFailed,
        }
    }

    /// The metric label of a failed request.
    pub fn outcome(&self) -> &'static str {
        match self {
            ProviderError::Rejected { .. } => "rejected",
            ProviderError::InvalidNumber { .. } => "invalid_number",
            ProviderError::Throttled(_) => "throttled",
            ProviderError::Unreachable(_) => "unreachable",
            ProviderError::CircuitOpen => "circuit_open",
            ProviderError::Failed(_) => "failed",
        }
    }

    pub fn certainty(&self) -> Certainty {
        match self {
            ProviderError::Failed(_) => Certainty::Unknown,
            _ => Certainty::NothingDialled,
        }
    }

    /// Whether the next account of the tenant's list may place the call instead.
    pub fn fails_over(&self) -> bool {
        self.certainty() == Certainty::NothingDialled
            && !matches!(self, ProviderError::InvalidNumber { .. })
    }

    /// Whether the account's circuit breaker counts it: a certain failure of the account
    /// itself (not an invalid number, not a skipped request).
    pub fn counts_against_account(&self) -> bool {
        self.fails_over() && !matches!(self, ProviderError::CircuitOpen)
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

/// Whether a webhook's body is form-encoded (or says nothing of its type): every webhook we
/// configure is.
pub fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| {
            ct.split(';').next().is_some_and(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        })
}

/// The neutral webhook of a provider speaking Twilio's parameters (`CallSid`, `CallStatus`,
/// `Digits`): SignalWire and Telnyx TeXML.
pub fn twilio_style_webhook(params: &twilio::form::FormParams) -> Result<Webhook, Refusal> {
    let call_id = params.get("CallSid").unwrap_or_default();
    if call_id.is_empty() {
        return Err(Refusal::MissingCallId);
    }
    Ok(Webhook {
        call_id: call_id.to_owned(),
        digits: params.get("Digits").unwrap_or_default().to_owned(),
        progress: twilio::progress(params.get("CallStatus").unwrap_or_default()),
    })
}

/// How fast one account may place calls, shared by every instance through Redis
/// (`src/abuse/pacing.rs`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacing {
    /// Outbound calls per second (0 = no pacing).
    pub calls_per_second: f64,
    /// Longest a call waits for a slot before the account counts as throttled.
    pub max_queue_ms: u64,
}

impl Pacing {
    pub const NONE: Pacing = Pacing {
        calls_per_second: 0.0,
        max_queue_ms: 0,
    };
}

/// One configured account: its adapter and its pacing.
#[derive(Clone)]
pub struct Account {
    pub provider: Arc<dyn Provider>,
    pub pacing: Pacing,
}

impl Account {
    pub fn name(&self) -> &str {
        self.provider.name()
    }
}

/// The configured provider accounts, by name, in file order, and each tenant's choice of them
/// (`[[tenants]] providers = [...]`; default: every account in file order). Cheap to clone.
#[derive(Clone, Default)]
pub struct Providers {
    by_name: Arc<HashMap<String, Arc<dyn Provider>>>,
    /// Every account, in file order: the list of a tenant that chose none.
    all: Arc<[Account]>,
    /// Tenants that chose their accounts, in their order.
    tenants: Arc<HashMap<String, Vec<Account>>>,
}

impl Providers {
    /// One account without pacing (tests and tools).
    pub fn single(provider: Arc<dyn Provider>) -> Self {
        Self::new(
            vec![Account {
                provider,
                pacing: Pacing::NONE,
            }],
            HashMap::new(),
        )
        .expect("one account is a valid set")
    }

    /// `accounts` in file order; `tenants` maps a tenant id to the names of its accounts.
    pub fn new(
        accounts: Vec<Account>,
        tenants: HashMap<String, Vec<String>>,
    ) -> Result<Self, String> {
        let mut by_name = HashMap::new();
        for account in &accounts {
            if by_name
                .insert(account.name().to_owned(), account.provider.clone())
                .is_some()
            {
                return Err(format!("duplicate provider account {:?}", account.name()));
            }
        }
        let mut chosen = HashMap::new();
        for (tenant, names) in tenants {
            let list = names
                .iter()
                .map(|name| {
                    accounts
                        .iter()
                        .find(|a| a.name() == name)
                        .cloned()
                        .ok_or_else(|| {
                            format!("tenant {tenant:?} names an unknown provider account {name:?}")
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            chosen.insert(tenant, list);
        }
        Ok(Self {
            by_name: Arc::new(by_name),
            all: accounts.into(),
            tenants: Arc::new(chosen),
        })
    }

    /// The account named in a webhook URL.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.by_name.get(name)
    }

    /// The first account of the default list.
    pub fn for_new_call(&self) -> Option<&Arc<dyn Provider>> {
        self.all.first().map(|a| &a.provider)
    }

    /// The accounts a tenant's calls go to, in the order they are tried.
    pub fn for_tenant(&self, tenant: &str) -> &[Account] {
        self.tenants.get(tenant).map_or(&self.all[..], |v| &v[..])
    }

    /// Every account, in file order.
    pub fn all(&self) -> &[Account] {
        &self.all
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
