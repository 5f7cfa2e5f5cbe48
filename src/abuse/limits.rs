//! Rate limits on dialled calls: per number (spacing and hourly), per user, per tenant and per
//! client IP, checked and counted in one atomic Redis script. The limits in force are the
//! `[abuse.limits]` defaults with the tenant's `limits = {…}` overrides.

use std::net::IpAddr;

use crate::config::{Limit, Limits};
use crate::error::ApiError;
use crate::ids::{TenantId, UserId, VerificationId};
use crate::store::Store;
use crate::store::limits::RateCheck;

/// The rate limits, by the name a 429's `limit` field, the metric label, the Redis key and the
/// `[abuse.limits]` table use (exact strings are a contract).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimit {
    NumberSpacing,
    Number,
    User,
    Tenant,
    Ip,
}

impl RateLimit {
    pub fn as_str(self) -> &'static str {
        match self {
            RateLimit::NumberSpacing => "number_spacing",
            RateLimit::Number => "number",
            RateLimit::User => "user",
            RateLimit::Tenant => "tenant",
            RateLimit::Ip => "ip",
        }
    }

    /// What the caller is told.
    fn describe(self) -> &'static str {
        match self {
            RateLimit::NumberSpacing => "too soon after the last call to this number",
            RateLimit::Number => "too many calls to this number",
            RateLimit::User => "too many verification calls for this user",
            RateLimit::Tenant => "too many verification calls for this tenant",
            RateLimit::Ip => "too many verification calls from this client address",
        }
    }
}

/// Who a call is for: what its limits count.
#[derive(Clone, Copy, Debug)]
pub struct CallSubject<'a> {
    pub tenant: &'a TenantId,
    pub user: &'a UserId,
    pub e164: &'a str,
    /// What stands for the number in key names.
    pub number_key: &'a crate::abuse::number_key::NumberKey,
    pub client_ip: Option<IpAddr>,
}

/// A call counted against its limits, to be refunded if it is never dialled.
#[derive(Clone, Debug)]
pub struct Counted {
    tenant: String,
    checks: Vec<(RateLimit, String, Limit)>,
}

impl Counted {
    fn checks(&self) -> Vec<RateCheck<'_>> {
        self.checks
            .iter()
            .map(|(name, subject, limit)| RateCheck {
                name: name.as_str(),
                subject,
                max: limit.max,
                window_ms: limit.window_secs * 1000,
            })
            .collect()
    }
}

impl Counted {
    /// What the verification records (`counted`), so a start that failed half-way can be
    /// refunded later by whoever releases it (`src/verification/undialled.rs`): the limits'
    /// names and subjects (the number only as its keyed hash), as JSON.
    pub fn encode(&self) -> String {
        let pairs: Vec<(&str, &str)> = self
            .checks
            .iter()
            .map(|(name, subject, _)| (name.as_str(), subject.as_str()))
            .collect();
        serde_json::to_string(&pairs).unwrap_or_default()
    }
}

/// Un-counts the call `id` recorded as `encoded` ([`Counted::encode`]) for `tenant`.
pub async fn refund_recorded(
    store: &Store,
    tenant: &str,
    id: &VerificationId,
    encoded: &str,
) -> redis::RedisResult<()> {
    let pairs: Vec<(String, String)> = serde_json::from_str(encoded).unwrap_or_default();
    if pairs.is_empty() {
        return Ok(());
    }
    let checks: Vec<RateCheck<'_>> = pairs
        .iter()
        .map(|(name, subject)| RateCheck {
            name,
            subject,
            max: 0,
            window_ms: 0,
        })
        .collect();
    store.refund_call(tenant, id, &checks).await
}

/// Counts the call `id` against every limit, or refuses it with 429 naming the limit hit (the
/// verification is then discarded: nothing was dialled and the portal never saw its id).
pub async fn admit(
    store: &Store,
    id: &VerificationId,
    counted: Counted,
) -> Result<Counted, ApiError> {
    if counted.checks.is_empty() {
        return Ok(counted);
    }
    let verdict = store
        .admit_call(&counted.tenant, id, &counted.checks())
        .await;
    let refused = match verdict {
        Ok(Ok(())) => return Ok(counted),
        Ok(Err(refused)) => refused,
        Err(e) => {
            discard(store, id).await;
            return Err(e.into());
        }
    };
    discard(store, id).await;
    let (name, _, limit) = &counted.checks[refused.index];
    let name = name.as_str();
    metrics::counter!(crate::ops::metrics::CALLS_RATE_LIMITED, "limit" => name).increment(1);
    tracing::info!(verification = %id, limit = name, "call refused by a rate limit");
    Err(ApiError::RateLimited {
        detail: format!(
            "{}: at most {} call(s) per {} s",
            counted.checks[refused.index].0.describe(),
            limit.max,
            limit.window_secs
        ),
        limit: name.to_owned(),
        retry_after_secs: refused.retry_after_ms.div_ceil(1000).max(1),
    })
}

/// The limits a call for `subject` counts against (those switched on), before anything is
/// stored: the verification records them (`Counted::encode`).
pub fn plan(limits: &Limits, subject: CallSubject<'_>) -> Counted {
    // The number counts under its keyed hash: no number in a key name.
    let number = subject.number_key.token(subject.e164);
    let mut checks = vec![
        (
            RateLimit::NumberSpacing,
            number.clone(),
            limits.number_spacing,
        ),
        (RateLimit::Number, number, limits.number),
        (
            RateLimit::User,
            subject.user.as_str().to_owned(),
            limits.user,
        ),
        (RateLimit::Tenant, "-".to_owned(), limits.tenant),
    ];
    if let Some(ip) = subject.client_ip {
        checks.push((RateLimit::Ip, ip.to_string(), limits.ip));
    }
    // `max = 0` switches a limit off (the script skips it too): with every limit off there is
    // nothing to count and no round trip to make.
    checks.retain(|(_, _, limit)| limit.max > 0);
    Counted {
        tenant: subject.tenant.as_str().to_owned(),
        checks,
    }
}

/// Un-counts a call that was never dialled. Failures are logged: the worst case is one call
/// counted too many, which expires with its window.
pub async fn refund(store: &Store, id: &VerificationId, counted: &Counted) {
    if counted.checks.is_empty() {
        return;
    }
    if let Err(e) = store
        .refund_call(&counted.tenant, id, &counted.checks())
        .await
    {
        tracing::warn!(verification = %id, error = %e, "rate-limit refund failed");
    }
}

async fn discard(store: &Store, id: &VerificationId) {
    if let Err(e) = store.discard_verification(id).await {
        tracing::warn!(verification = %id, error = %e, "refused verification not discarded");
    }
}
