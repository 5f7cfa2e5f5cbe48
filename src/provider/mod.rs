//! The provider-neutral core: what callverify needs from a telephony provider, whatever its
//! wire protocol. Each provider is one folder implementing [`Provider`] (Twilio:
//! `src/provider/twilio/`); [`Providers`] holds the configured accounts by name, and webhook
//! URLs carry that name (`/telephony/{provider}/{id}/…`). The wire facts each adapter relies on
//! are in docs/PROVIDERS.md.
//!
//! Adding a provider: a new folder with a type implementing [`Provider`] and its own keys
//! (`config.rs`, implementing `registry::KindKeys`), and one line in `registry::KINDS`
//! (docs/ARCHITECTURE.md, "Where does X go").

pub mod accounts;
pub mod dialect;
pub mod http;
pub mod legacy;
pub mod limits;
pub mod plivo;
pub mod registry;
pub mod settings;
pub mod signalwire;
pub mod simulator;
pub mod telnyx;
pub mod twilio;

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::HeaderMap;
use futures_util::future::BoxFuture;

pub use crate::call::CallProgress;
use crate::call::FailureReason;
use crate::call::prompts::Answer;

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
/// onto these (the tables in docs/PROVIDERS.md#calls-api-errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallRefusal {
    /// The number is not a valid destination (Twilio 21211, 21217). Another account would say
    /// the same: never failed over.
    InvalidNumber,
    /// This provider will not call this number: geo permissions, its blocklist (Twilio 21215,
    /// 21216). Another account may: failed over, but not counted against the account.
    NumberNotAllowed,
    /// Any other refusal of this call.
    Other,
}

/// Why a provider request did not succeed, classified by what it means for the call: above all
/// whether the call was certainly **not** placed (every variant but `Unknown`,
/// [`ProviderError::certainty`]). That decides everything downstream: only a certain failure is
/// refunded, fails the verification at once, and may be followed by the tenant's next account
/// ([`ProviderError::fails_over`]); an unknown outcome keeps the verification `calling` (the
/// first call that reports back binds, else `provider_unknown`). Adapters map their own error
/// codes onto these variants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Not placed: the provider refused this call (a 4xx about the call itself).
    #[error("provider refused the call: {code} {message}")]
    Refused {
        refusal: CallRefusal,
        code: u32,
        message: String,
    },
    /// Not placed: too many requests (HTTP 429, Twilio 20429) past the retries inside
    /// `max_queue_ms`, or the account's pacing queue is full (code 0).
    #[error("provider throttled the request: {code} {message}")]
    Throttled { code: u32, message: String },
    /// Not placed: the operator's configuration is wrong (credentials, account, caller ID;
    /// Twilio 20003, 21210, 21212, 21219, HTTP 401/403). Logged as an ERROR and counted.
    #[error("provider account misconfigured: {code} {message}")]
    Misconfigured { code: u32, message: String },
    /// Not placed: the provider could not be reached at all (refused, DNS, connect timeout).
    #[error("provider unreachable: {0}")]
    Unreachable(String),
    /// Not placed: the account's circuit breaker is open, it was not asked at all.
    #[error("provider account skipped: circuit open")]
    CircuitOpen,
    /// Perhaps placed: a timeout after the request was sent, a 5xx or an unreadable success.
    /// The call may ring.
    #[error("provider outcome unknown: {0}")]
    Unknown(String),
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
            ProviderError::Unreachable(_) | ProviderError::CircuitOpen => {
                FailureReason::ProviderFailed
            }
            ProviderError::Unknown(_) => FailureReason::ProviderUnknown,
        }
    }

    /// The metric label of a failed request.
    pub fn outcome(&self) -> &'static str {
        match self {
            ProviderError::Refused { refusal, .. } => match refusal {
                CallRefusal::InvalidNumber => "invalid_number",
                CallRefusal::NumberNotAllowed => "number_not_allowed",
                CallRefusal::Other => "rejected",
            },
            ProviderError::Throttled { .. } => "throttled",
            ProviderError::Misconfigured { .. } => "misconfigured",
            ProviderError::Unreachable(_) => "unreachable",
            ProviderError::CircuitOpen => "circuit_open",
            ProviderError::Unknown(_) => "unknown",
        }
    }

    pub fn certainty(&self) -> Certainty {
        match self {
            ProviderError::Unknown(_) => Certainty::Unknown,
            _ => Certainty::NothingDialled,
        }
    }

    /// Whether the provider certainly did not place the call (so it is refunded and fails the
    /// verification at once).
    pub fn certainly_not_placed(&self) -> bool {
        self.certainty() == Certainty::NothingDialled
    }

    /// Whether the next account of the tenant's list may place the call instead: only when
    /// nothing was dialled, and never for an invalid number.
    pub fn fails_over(&self) -> bool {
        self.certainly_not_placed()
            && !matches!(
                self,
                ProviderError::Refused {
                    refusal: CallRefusal::InvalidNumber,
                    ..
                }
            )
    }

    /// Whether the account's circuit breaker counts it: a certain failure of the account
    /// itself (not a number it will not call, not a skipped request, never an unknown outcome).
    pub fn counts_against_account(&self) -> bool {
        self.fails_over()
            && !matches!(
                self,
                ProviderError::CircuitOpen
                    | ProviderError::Refused {
                        refusal: CallRefusal::NumberNotAllowed,
                        ..
                    }
            )
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

    /// Asks the provider to place `call`; returns the provider's call id, or `None` when the
    /// provider placed the call without naming it (Telnyx TeXML's documented create answer):
    /// the call is then bound by the first signed callback for its verification.
    fn place_call<'a>(
        &'a self,
        call: CallRequest<'a>,
    ) -> BoxFuture<'a, Result<Option<String>, ProviderError>>;

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

impl WebhookRequest<'_> {
    /// A header's value, when present, readable and not empty (signature headers, timestamps).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
    }
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

    /// The accounts a tenant's calls go to, in the order they are tried.
    pub fn for_tenant(&self, tenant: &str) -> &[Account] {
        self.tenants.get(tenant).map_or(&self.all[..], |v| &v[..])
    }
}
