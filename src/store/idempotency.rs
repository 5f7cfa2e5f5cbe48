//! `Idempotency-Key` records: one string per user and key (under the user's hash tag), first a
//! pending claim, then the answer, kept 24 h. See `crate::api::idempotency` for the protocol.

use std::sync::LazyLock;

use super::Store;

/// Drops a pending claim only while it is still the caller's own (compare-and-delete).
static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
    )
});

impl Store {
    /// Claims the record with `pending` for `lock_ms` unless it exists; returns what was there
    /// (`None`: the claim is the caller's). One `SET … NX GET` (Redis 7).
    pub async fn idempotency_claim(
        &self,
        user_tag: &str,
        key_hash: &str,
        pending: &str,
        lock_ms: u64,
    ) -> redis::RedisResult<Option<String>> {
        redis::cmd("SET")
            .arg(self.keys.idempotency(user_tag, key_hash))
            .arg(pending)
            .arg("NX")
            .arg("GET")
            .arg("PX")
            .arg(lock_ms)
            .query_async(&mut self.conn())
            .await
    }

    /// The record as it is now.
    pub async fn idempotency_read(
        &self,
        user_tag: &str,
        key_hash: &str,
    ) -> redis::RedisResult<Option<String>> {
        redis::cmd("GET")
            .arg(self.keys.idempotency(user_tag, key_hash))
            .query_async(&mut self.conn())
            .await
    }

    /// Replaces the caller's claim with the answer, kept `ttl_ms`.
    pub async fn idempotency_store(
        &self,
        user_tag: &str,
        key_hash: &str,
        answer: &str,
        ttl_ms: u64,
    ) -> redis::RedisResult<()> {
        redis::cmd("SET")
            .arg(self.keys.idempotency(user_tag, key_hash))
            .arg(answer)
            .arg("PX")
            .arg(ttl_ms)
            .query_async::<()>(&mut self.conn())
            .await
    }

    /// Gives the claim up (the request failed): a retry runs it again.
    pub async fn idempotency_release(
        &self,
        user_tag: &str,
        key_hash: &str,
        pending: &str,
    ) -> redis::RedisResult<()> {
        RELEASE
            .key(self.keys.idempotency(user_tag, key_hash))
            .arg(pending)
            .invoke_async::<i64>(&mut self.conn())
            .await
            .map(|_| ())
    }
}
