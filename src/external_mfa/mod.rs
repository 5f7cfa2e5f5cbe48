//! callverify as a Microsoft Entra ID External MFA method (OpenID Connect implicit flow,
//! `form_post`; docs/ENTRA.md). Per tenant T the issuer is `{server.public_url}/external-mfa/T`:
//! discovery, JWKS and `authorize` there. Entra POSTs a sign-in with an `id_token_hint`; we
//! check it, start a `sign_in` verification through the one lifecycle (`verification::start`),
//! follow the call on a page of ours, and post an id_token (`amr` `tel`) or an OAuth error back.
//!
//! Files: `config` (settings), `keys` (our signing key, JWKS), `keygen` (the operator's key
//! command), `entra_keys` (Entra's JWKS, cached), `request` (the POST's parameters), `hint`
//! (the `id_token_hint`), `signin` (a sign-in's record and id), `discovery`, `token` (the
//! id_token), `page` (HTML), `routes` (discovery, JWKS, authorize), `flow` (placing the call,
//! the calling page's status, continue, cancel, call again), `audit` (each sign-in's end, once).

pub mod audit;
pub mod config;
pub mod discovery;
pub mod entra_keys;
mod flow;
pub mod hint;
pub mod keygen;
pub mod keys;
pub mod page;
pub mod request;
mod routes;
pub mod signin;
pub mod token;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use sha2::{Digest, Sha256};

pub use routes::router;

use crate::config::Config;
use config::TenantExternalMfa;
use entra_keys::EntraKeys;
use keys::SigningKeys;

/// Metric: sign-ins by how they ended (`outcome`: id_token, access_denied, invalid_request,
/// temporarily_unavailable, bad_request).
pub const SIGNINS: &str = "callverify_external_mfa_signins_total";

/// The feature, loaded at start (`None` without `[external_mfa]`).
pub struct ExternalMfa {
    pub keys: SigningKeys,
    /// Derives sign-in ids (from the signing key, so ids stay stable across instances).
    secret: [u8; 32],
    tenants: HashMap<String, Site>,
    jwks: Bytes,
    pages: page::Pages,
}

impl std::fmt::Debug for ExternalMfa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalMfa")
            .field("kid", &self.keys.kid)
            .finish_non_exhaustive()
    }
}

/// One tenant's issuer.
pub struct Site {
    pub tenant: crate::ids::TenantId,
    pub config: TenantExternalMfa,
    pub issuer: String,
    /// The issuer's path (for links in our pages).
    pub path: String,
    pub entra: Arc<EntraKeys>,
    discovery: Bytes,
}

impl ExternalMfa {
    /// Loads the keys and builds each tenant's issuer; `Ok(None)` when the feature is off.
    pub fn from_config(config: &Config) -> Result<Option<Arc<Self>>, String> {
        let Some(settings) = &config.external_mfa else {
            return Ok(None);
        };
        let keys = SigningKeys::load(settings)?;
        let secret: [u8; 32] = Sha256::new()
            .chain_update(b"callverify external-mfa sign-in ids\0")
            .chain_update(keys.key.as_bytes())
            .finalize()
            .into();
        let public = config.server.public_url.trim_end_matches('/');
        let base_path = url::Url::parse(public)
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        let mut caches: HashMap<String, Arc<EntraKeys>> = HashMap::new();
        let mut tenants = HashMap::new();
        for tenant in &config.tenants {
            let Some(mfa) = &tenant.external_mfa else {
                continue;
            };
            let url = mfa.jwks_url();
            let entra = caches
                .entry(url.clone())
                .or_insert_with(|| Arc::new(EntraKeys::new(url)))
                .clone();
            let issuer = discovery::issuer(public, tenant.id.as_str());
            let discovery =
                serde_json::to_vec(&discovery::metadata(&issuer)).map_err(|e| e.to_string())?;
            tenants.insert(
                tenant.id.as_str().to_owned(),
                Site {
                    tenant: tenant.id.clone(),
                    config: mfa.clone(),
                    path: format!("{base_path}/external-mfa/{}", tenant.id),
                    issuer,
                    entra,
                    discovery: discovery.into(),
                },
            );
        }
        let jwks = serde_json::to_vec(&keys.jwks()).map_err(|e| e.to_string())?;
        Ok(Some(Arc::new(Self {
            keys,
            secret,
            tenants,
            jwks: jwks.into(),
            pages: page::Pages::new(format!("{base_path}/external-mfa/assets")),
        })))
    }

    /// Reads every tenant's Entra JWKS once, in the background.
    pub fn warm_up(self: &Arc<Self>) {
        let mut seen = std::collections::HashSet::new();
        for site in self.tenants.values() {
            if seen.insert(site.entra.url().to_owned()) {
                let entra = site.entra.clone();
                tokio::spawn(async move { entra.warm_up().await });
            }
        }
    }

    pub fn site(&self, tenant: &str) -> Option<&Site> {
        self.tenants.get(tenant)
    }

    /// Every Entra JWKS fetch so far, over all tenants (the benchmark checks it stays flat).
    pub fn jwks_fetches(&self) -> u64 {
        let mut seen = std::collections::HashSet::new();
        self.tenants
            .values()
            .filter(|s| seen.insert(s.entra.url().to_owned()))
            .map(|s| s.entra.fetches())
            .sum()
    }
}

/// Checks `[external_mfa]` against the tenants (called from `Config::validate`).
pub fn validate(config: &Config) -> Result<(), String> {
    let mut any = false;
    for tenant in &config.tenants {
        if let Some(mfa) = &tenant.external_mfa {
            mfa.validate(tenant.id.as_str())?;
            any = true;
        }
    }
    if any && config.external_mfa.is_none() {
        return Err("tenants.*.external_mfa needs [external_mfa] (the signing key)".into());
    }
    Ok(())
}

/// `check-config`: each tenant's discovery URL, to paste into Entra.
pub fn discovery_urls(config: &Config) -> Vec<(String, String)> {
    config
        .tenants
        .iter()
        .filter(|t| t.external_mfa.is_some())
        .map(|t| {
            let issuer = discovery::issuer(&config.server.public_url, t.id.as_str());
            (t.id.as_str().to_owned(), discovery::discovery_url(&issuer))
        })
        .collect()
}
