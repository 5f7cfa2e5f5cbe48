//! How a sign-in ended, recorded once per sign-in by whoever ended it (`flow::end_once`): an
//! entry in the user's audit stream (what `GET /v1/tenants/{tenant}/users/{user}/audit`
//! serves), a log line (target `callverify::audit`, with Entra's client-request-id) and the
//! metric [`SIGNINS`]. A refusal before the user is known (a bad request, a hint Entra did not
//! sign) has no audit stream to go to: log line and metric only ([`unattributed`]).

use super::SIGNINS;
use super::signin::SignInRecord;
use crate::ids::{TenantId, UserId, user_tag};
use crate::store::Store;

/// What became of a sign-in (the audit entry's `outcome`; its `action` is
/// `external_mfa.<outcome>`). Exact strings are an API contract (`AuditAction`, `AuditOutcome`
/// in src/api/openapi_shapes.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The call was approved: an id_token went back.
    Approved,
    /// The call ended without approval (failed, expired, reported as fraud).
    Denied,
    /// The person pressed Cancel.
    Canceled,
    /// No call could be (or was) placed: no phone, a fraud block, limits, the call not started.
    Refused,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Approved,
        Outcome::Denied,
        Outcome::Canceled,
        Outcome::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Approved => "approved",
            Outcome::Denied => "denied",
            Outcome::Canceled => "canceled",
            Outcome::Refused => "refused",
        }
    }

    pub fn action(self) -> &'static str {
        match self {
            Outcome::Approved => "external_mfa.approved",
            Outcome::Denied => "external_mfa.denied",
            Outcome::Canceled => "external_mfa.canceled",
            Outcome::Refused => "external_mfa.refused",
        }
    }
}

/// Audit `reason` values of sign-in ends besides a call's failure reasons (`FailureReason`):
/// why a sign-in was refused or denied. Exact strings are an API contract (`AuditReason`).
pub const REASONS: [&str; 10] = [
    "fraud_reported",
    "no_phone",
    "user_blocked",
    "number_type_blocked",
    "country_not_allowed",
    "method_disabled",
    "rate_limited",
    "call_in_progress",
    "too_many_calls",
    "unavailable",
];

/// One sign-in's end: what it was, why, and what went back to Entra.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct End {
    pub outcome: Outcome,
    /// A [`REASONS`] value or a call's failure reason; `None` for an approval or a cancel.
    pub reason: Option<&'static str>,
    /// The OAuth error and its description; `None`: the id_token.
    pub error: Option<(&'static str, String)>,
}

impl End {
    pub fn approved() -> Self {
        Self {
            outcome: Outcome::Approved,
            reason: None,
            error: None,
        }
    }

    pub fn not_approved(
        outcome: Outcome,
        reason: Option<&'static str>,
        error: &'static str,
        description: impl Into<String>,
    ) -> Self {
        Self {
            outcome,
            reason,
            error: Some((error, description.into())),
        }
    }

    /// The OAuth result: `id_token` or the error (the metric's `outcome` label).
    pub fn result(&self) -> &'static str {
        self.error.as_ref().map_or("id_token", |(e, _)| e)
    }
}

/// What else the audit entry names: the sign-in's call and its masked number, when known.
#[derive(Clone, Copy, Debug, Default)]
pub struct Call<'a> {
    pub verification: Option<&'a str>,
    pub masked_phone: Option<&'a str>,
}

/// Records `end` of the sign-in `record` (call it once: after storing the end succeeded).
pub async fn ended(store: &Store, record: &SignInRecord, call: Call<'_>, end: &End) {
    let request_id = record.client_request_id.as_deref().unwrap_or("-");
    let detail = end.error.as_ref().map_or("call approved", |(_, d)| d);
    metrics::counter!(SIGNINS, "outcome" => end.result()).increment(1);
    tracing::info!(
        target: "callverify::audit",
        tenant = record.tenant,
        client_request_id = request_id,
        outcome = end.outcome.as_str(),
        reason = end.reason.unwrap_or("-"),
        result = end.result(),
        verification = call.verification.unwrap_or("-"),
        detail,
        "external MFA sign-in"
    );
    let (Ok(tenant), Ok(user)) = (TenantId::parse(&record.tenant), UserId::parse(&record.user))
    else {
        return; // not a user id callverify can hold: nothing to attribute the entry to
    };
    let mut fields = vec![
        ("action", end.outcome.action()),
        ("outcome", end.outcome.as_str()),
        ("purpose", "sign_in"),
    ];
    let optional = [
        ("reason", end.reason),
        ("verification", call.verification),
        ("phone", call.masked_phone),
        ("client_request_id", record.client_request_id.as_deref()),
    ];
    fields.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
    let tag = user_tag(&tenant, &user);
    if let Err(error) = store.append_audit(&tag, &fields).await {
        tracing::warn!(client_request_id = request_id, %error, "external MFA sign-in not written to the audit stream");
    }
}

/// A refusal before the sign-in has a user (bad request, a hint refused): log line and metric.
pub fn unattributed(
    tenant: &str,
    client_request_id: Option<&str>,
    result: &'static str,
    detail: &str,
) {
    metrics::counter!(SIGNINS, "outcome" => result).increment(1);
    tracing::info!(
        target: "callverify::audit",
        tenant,
        client_request_id = client_request_id.unwrap_or("-"),
        outcome = "refused",
        result,
        detail,
        "external MFA sign-in"
    );
}
