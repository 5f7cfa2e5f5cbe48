//! The `id_token_hint` Entra sends: who is signing in. Checked as Microsoft asks
//! (docs/ENTRA.md#the-id_token_hint): RS256 by one of Entra's keys, the tenant's issuer and
//! `tid`, an accepted `aud`, and freshness by `iat` — not `exp`, since hints arrive expired.

use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::config::TenantExternalMfa;
use super::entra_keys::EntraKeys;

/// How far in the future an `iat` may be (clock skew).
pub const FUTURE_SKEW_SECS: i64 = 300;

/// What a valid hint says.
#[derive(Clone, Debug)]
pub struct Hint {
    /// Entra's pairwise subject: the `sub` of our id_token.
    pub sub: String,
    /// The value of the tenant's `user_claim`: callverify's user id.
    pub user: String,
}

/// Why a hint is refused: `Invalid` goes back as `invalid_request`, `Unavailable` as
/// `temporarily_unavailable`.
#[derive(Debug)]
pub enum HintError {
    Invalid(String),
    Unavailable(String),
}

/// Checks `token` for `tenant` at `now` (Unix seconds).
pub async fn validate(
    token: &str,
    tenant: &TenantExternalMfa,
    keys: &EntraKeys,
    now: i64,
) -> Result<Hint, HintError> {
    let invalid = |m: &str| HintError::Invalid(format!("id_token_hint: {m}"));
    let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("not a JWT"))?;
    if header.alg != Algorithm::RS256 {
        return Err(invalid("not signed with RS256"));
    }
    let kid = header.kid.ok_or_else(|| invalid("no kid"))?;
    let key = keys
        .key(&kid)
        .await
        .map_err(|e| HintError::Unavailable(format!("Entra's signing keys: {}", e.0)))?
        .ok_or_else(|| invalid("signed by a key Entra does not publish"))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.leeway = 0;
    validation.required_spec_claims = ["aud", "iss", "sub"].map(String::from).into();
    validation.set_audience(&tenant.audiences());
    validation.set_issuer(&[tenant.hint_issuer()]);
    let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidSignature => invalid("bad signature"),
                ErrorKind::InvalidAudience => invalid("aud is not accepted"),
                ErrorKind::InvalidIssuer => invalid("issued by another tenant"),
                ErrorKind::MissingRequiredClaim(_) => invalid("aud, iss or sub missing"),
                _ => invalid("unreadable"),
            }
        })?
        .claims;
    if claims.get("tid").and_then(Value::as_str) != Some(tenant.entra_tenant_id.as_str()) {
        return Err(invalid("tid names another tenant"));
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid("no iat"))?;
    if now - iat > tenant.hint_max_age_secs as i64 {
        return Err(invalid("too old (iat)"));
    }
    if iat - now > FUTURE_SKEW_SECS {
        return Err(invalid("issued in the future (iat)"));
    }
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let sub = text("sub").ok_or_else(|| invalid("no sub"))?;
    let user = text(&tenant.user_claim).ok_or_else(|| invalid("no user claim"))?;
    Ok(Hint { sub, user })
}
