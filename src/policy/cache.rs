//! A short-lived, per-process copy of each tenant's policy for the verification start, which
//! otherwise paid a Redis `GET` (and a JSON parse) on every call. A policy replaced through this
//! process is dropped from its cache at once; another instance sees it within [`FRESH_FOR`] —
//! the same order of delay as an operator's request reaching every instance.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::Policy;
use crate::error::ApiError;
use crate::ids::TenantId;
use crate::store::Store;

/// How long a policy read from Redis is used without reading it again.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// Tenant id → (when read, policy). Bounded by the configured tenants: only authenticated
/// callers reach it.
#[derive(Default)]
pub struct PolicyCache {
    entries: RwLock<HashMap<String, (Instant, Arc<Policy>)>>,
}

impl PolicyCache {
    /// The tenant's policy, from the cache while fresh, else from Redis.
    pub async fn get(
        &self,
        store: &Store,
        default: &Policy,
        tenant: &TenantId,
    ) -> Result<Arc<Policy>, ApiError> {
        if let Some((read_at, policy)) = self.read().get(tenant.as_str())
            && read_at.elapsed() < FRESH_FOR
        {
            return Ok(policy.clone());
        }
        let read_at = Instant::now();
        let policy = Arc::new(super::load(store, default, tenant).await?);
        self.write()
            .insert(tenant.as_str().to_owned(), (read_at, policy.clone()));
        Ok(policy)
    }

    /// Forgets the tenant's policy (it was just replaced).
    pub fn forget(&self, tenant: &TenantId) {
        self.write().remove(tenant.as_str());
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, (Instant, Arc<Policy>)>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, (Instant, Arc<Policy>)>> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }
}
