//! Tenant policies: one JSON string per tenant (`{t:<tenant>}` hash tag), no TTL.

use super::Store;
use crate::ids::TenantId;

impl Store {
    /// The stored policy JSON, if the tenant stored one.
    pub async fn policy(&self, tenant: &TenantId) -> redis::RedisResult<Option<String>> {
        redis::cmd("GET")
            .arg(self.keys.policy(tenant))
            .query_async(&mut self.conn())
            .await
    }

    /// Replaces the tenant's policy.
    pub async fn set_policy(&self, tenant: &TenantId, json: &str) -> redis::RedisResult<()> {
        redis::cmd("SET")
            .arg(self.keys.policy(tenant))
            .arg(json)
            .query_async(&mut self.conn())
            .await
    }
}
