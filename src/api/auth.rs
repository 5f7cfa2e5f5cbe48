//! Bearer API keys. Keys are configured as SHA-256 hashes and bound to one tenant; a request's
//! key must belong to the tenant in its path (401 without a valid key, 403 with another tenant's).

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::TenantConfig;
use crate::error::ApiError;
use crate::ids::TenantId;
use crate::state::AppState;

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Portal back-ends: verifications, methods, audit.
    Portal,
    /// Also the tenant's policy and unblocking users.
    Admin,
}

struct Entry {
    tenant: TenantId,
    scope: Scope,
    hash: [u8; 32],
}

/// Every configured key hash.
pub struct KeyRing {
    entries: Vec<Entry>,
}

impl KeyRing {
    pub fn from_config(tenants: &[TenantConfig]) -> Self {
        let mut entries = Vec::new();
        for t in tenants {
            let scoped = t
                .portal_keys_sha256
                .iter()
                .map(|h| (h, Scope::Portal))
                .chain(t.admin_keys_sha256.iter().map(|h| (h, Scope::Admin)));
            for (hash, scope) in scoped {
                entries.push(Entry {
                    tenant: t.id.clone(),
                    scope,
                    hash: hash.0,
                });
            }
        }
        Self { entries }
    }

    /// The tenant and scope of a presented key. Every entry is compared, in constant time.
    fn identify(&self, key: &str) -> Option<(&TenantId, Scope)> {
        let presented: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut found = None;
        for e in &self.entries {
            if bool::from(e.hash.ct_eq(&presented)) && found.is_none() {
                found = Some((&e.tenant, e.scope));
            }
        }
        found
    }
}

/// Lowercase hex SHA-256 of an API key, as configuration stores it (`callverify hash-key`).
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The key of the one `Authorization: Bearer <key>` header. The scheme is case-insensitive
/// (RFC 9110 §11.1); two or more `Authorization` headers are refused rather than one picked, so
/// a proxy that appends its own can never decide which key counts.
fn bearer_key(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(axum::http::header::AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let (scheme, key) = value.to_str().ok()?.split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then_some(key)
}

/// An authenticated caller of a `/v1/tenants/{tenant}/…` route.
#[derive(Clone, Debug)]
pub struct Caller {
    pub tenant: TenantId,
    pub scope: Scope,
}

impl Caller {
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.scope {
            Scope::Admin => Ok(()),
            Scope::Portal => Err(ApiError::AdminRequired(
                "this route needs an admin key of the tenant".into(),
            )),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = bearer_key(&parts.headers).ok_or(ApiError::Unauthenticated)?;
        let (tenant, scope) = state.keys.identify(key).ok_or(ApiError::Unauthenticated)?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| match e {
                RawPathParamsRejection::InvalidUtf8InPathParam(_) => {
                    ApiError::InvalidRequest("path parameters must be UTF-8 once decoded".into())
                }
                _ => ApiError::Internal("route without path parameters".into()),
            })?;
        let path_tenant = params
            .iter()
            .find(|(name, _)| *name == "tenant")
            .map(|(_, value)| value)
            .ok_or_else(|| ApiError::Internal("route without {tenant}".into()))?;
        if path_tenant != tenant.as_str() {
            return Err(ApiError::Forbidden(
                "this API key does not belong to that tenant".into(),
            ));
        }
        Ok(Caller {
            tenant: tenant.clone(),
            scope,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_identified_by_their_hash() {
        use crate::config::KeyHash;
        let ring = KeyRing::from_config(&[TenantConfig {
            id: TenantId::parse("contoso").unwrap(),
            portal_keys_sha256: vec![KeyHash::try_from(hash_key("portal-key")).unwrap()],
            admin_keys_sha256: vec![
                KeyHash::try_from(hash_key("admin-key").to_uppercase()).unwrap(),
            ],
            events_url: None,
            events_secret: None,
            limits: Default::default(),
            providers: None,
            external_mfa: None,
        }]);
        assert_eq!(
            ring.identify("portal-key").map(|(t, s)| (t.as_str(), s)),
            Some(("contoso", Scope::Portal))
        );
        assert_eq!(
            ring.identify("admin-key").map(|(_, s)| s),
            Some(Scope::Admin)
        );
        assert!(ring.identify("portal-key ").is_none());
        assert!(ring.identify("").is_none());
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_header_unique() {
        let headers = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(axum::http::header::AUTHORIZATION, v.parse().unwrap());
            }
            h
        };
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            assert_eq!(bearer_key(&headers(&[&format!("{scheme} k1")])), Some("k1"));
        }
        assert_eq!(bearer_key(&headers(&["Bearer k1", "Bearer k1"])), None);
        assert_eq!(bearer_key(&headers(&["Basic k1"])), None);
        assert_eq!(bearer_key(&headers(&["Bearer   "])), None);
        assert_eq!(bearer_key(&headers(&["Bearerk1"])), None);
        assert_eq!(bearer_key(&headers(&[])), None);
    }

    #[test]
    fn hash_key_matches_sha256sum() {
        // printf %s test | sha256sum
        assert_eq!(
            hash_key("test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }
}
