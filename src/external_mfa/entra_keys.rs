//! Entra's signing keys (the JWKS its `id_token_hint`s are verified with), cached per JWKS URL.
//! Fetched once at start; fetched again only when a hint names a `kid` the cache lacks, and then
//! at most once per [`MIN_REFRESH`], so a sign-in never waits on Entra and a flood of hints
//! with made-up `kid`s costs Entra one request a minute.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;

/// The least time between two fetches of one JWKS.
pub const MIN_REFRESH: Duration = Duration::from_secs(60);

/// A JWKS body larger than this is refused (Entra's is a few kilobytes).
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Metric: JWKS fetches, by outcome.
pub const JWKS_FETCHES: &str = "callverify_external_mfa_jwks_fetches_total";

/// A key lookup that could not be answered: the JWKS was needed and could not be read.
#[derive(Debug)]
pub struct Unavailable(pub String);

pub struct EntraKeys {
    url: String,
    http: reqwest::Client,
    keys: RwLock<Arc<HashMap<String, DecodingKey>>>,
    /// When the JWKS was last asked for (held while fetching, so fetches never overlap).
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for EntraKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntraKeys")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl EntraKeys {
    pub fn new(url: String) -> Self {
        Self {
            url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("a default HTTP client builds"),
            keys: RwLock::default(),
            last_fetch: tokio::sync::Mutex::new(None),
            fetches: AtomicU64::new(0),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many times the JWKS was fetched (tests, the benchmark).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Fetches the JWKS now (start-up). A failure is logged and does not count as the minute's
    /// refresh: the first sign-in tries again.
    pub async fn warm_up(&self) {
        let mut last = self.last_fetch.lock().await;
        if let Err(e) = self.fetch().await {
            tracing::warn!(jwks = %self.url, error = %e, "cannot read Entra's signing keys (retried on the first sign-in)");
            return;
        }
        *last = Some(Instant::now());
    }

    /// The key `kid` names: from the cache, else after one refresh if none happened within
    /// [`MIN_REFRESH`]. `Ok(None)`: Entra does not publish that key.
    pub async fn key(&self, kid: &str) -> Result<Option<DecodingKey>, Unavailable> {
        if let Some(key) = self.cached(kid) {
            return Ok(Some(key));
        }
        let mut last = self.last_fetch.lock().await;
        if let Some(key) = self.cached(kid) {
            return Ok(Some(key)); // refreshed while we waited
        }
        if last.is_some_and(|at| at.elapsed() < MIN_REFRESH) {
            return Ok(None);
        }
        *last = Some(Instant::now());
        self.fetch().await.map_err(Unavailable)?;
        Ok(self.cached(kid))
    }

    fn cached(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.read().expect("not poisoned").get(kid).cloned()
    }

    async fn fetch(&self) -> Result<(), String> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let result = self.read_jwks().await;
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        metrics::counter!(JWKS_FETCHES, "outcome" => outcome).increment(1);
        let keys = result?;
        tracing::info!(jwks = %self.url, keys = keys.len(), "Entra signing keys read");
        *self.keys.write().expect("not poisoned") = Arc::new(keys);
        Ok(())
    }

    async fn read_jwks(&self) -> Result<HashMap<String, DecodingKey>, String> {
        let response = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(|e| format!("JWKS request failed: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("JWKS answered {}", response.status()));
        }
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        if body.len() > MAX_JWKS_BYTES {
            return Err("JWKS too large".into());
        }
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| format!("JWKS: {e}"))?;
        Ok(set
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                let key = DecodingKey::from_jwk(jwk).ok()?;
                Some((kid, key))
            })
            .collect())
    }
}
