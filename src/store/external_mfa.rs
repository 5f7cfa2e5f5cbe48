//! External MFA sign-ins (src/external_mfa/): one hash per sign-in, keyed by the opaque id its
//! page carries. Fields: `request` (the checked request, JSON, written once), `vf` (the
//! verification the sign-in calls with, chosen before it exists), `vf_at` (when `vf` was set:
//! Redis' clock, unix seconds), `calls` (calls counted), `done` (how it ended: written once, so
//! one sign-in ends once and yields at most one id_token). Sign-ins stored by earlier versions
//! also have `phone` (the masked number), no longer read: the page masks the verification's.
//!
//! The sign-in names its call in the same script that creates it (the first call) or counts it
//! ("Call again"), before the verification is stored: a named verification that does not exist
//! is being created (or was refused, or its start undone) and reads `calling` for
//! [`crate::external_mfa::signin::PENDING_GRACE_SECS`] after `vf_at`, failed after that
//! (docs/DECISIONS.md, "a sign-in names its call before the call exists").

use std::collections::HashMap;

use super::Store;
use crate::ids::VerificationId;

/// Runs one hash command on a sign-in only while it exists (never re-creating an expired one
/// without its TTL); answers the command's integer reply, or -1 when the sign-in is gone.
static IF_EXISTS: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end \
         return redis.call(ARGV[1], KEYS[1], unpack(ARGV, 2))",
    )
});

/// Creates a sign-in with its first call counted and, when given (ARGV[3] not empty), named
/// with `vf_at` from Redis' clock: one round trip for the first POST. A sign-in that exists is
/// left as it is.
static CREATE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('HSETNX', KEYS[1], 'request', ARGV[1]) == 0 then return 0 end \
         if ARGV[3] ~= '' then \
           redis.call('HSET', KEYS[1], 'calls', 1, 'vf', ARGV[3], 'vf_at', redis.call('TIME')[1]) \
         else redis.call('HSET', KEYS[1], 'calls', 1) end \
         redis.call('EXPIRE', KEYS[1], ARGV[2]) \
         return 1",
    )
});

/// Counts one more call for a sign-in that exists (-1: gone) and, while the count stays within
/// ARGV[2], names the new call ARGV[1] with `vf_at` from Redis' clock; answers the count. A call
/// over the limit is counted (as before) but names nothing: the sign-in keeps its last call.
static COUNT_CALL: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end \
         local calls = redis.call('HINCRBY', KEYS[1], 'calls', 1) \
         if calls <= tonumber(ARGV[2]) then \
           redis.call('HSET', KEYS[1], 'vf', ARGV[1], 'vf_at', redis.call('TIME')[1]) \
         end \
         return calls",
    )
});

/// A sign-in as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredSignIn {
    pub request: String,
    /// The verification the sign-in calls with (it may not exist yet: see the module's doc).
    pub verification: Option<String>,
    /// When `verification` was named (Redis' clock, unix seconds); `None` for sign-ins stored
    /// by earlier versions, which named a call only once it existed.
    pub verification_at: Option<i64>,
    pub calls: u32,
    pub done: Option<String>,
}

impl Store {
    /// Stores a new sign-in with `request` unless `id` exists, its first call counted and named
    /// `verification` (when there is one to name); true if this call created it. A sign-in that
    /// exists keeps its call. The TTL is set only on creation, so a repeated request never
    /// extends it.
    pub async fn create_signin(
        &self,
        id: &str,
        request: &str,
        verification: Option<&VerificationId>,
        ttl_secs: u64,
    ) -> redis::RedisResult<bool> {
        CREATE
            .key(self.keys.external_mfa_signin(id))
            .arg(request)
            .arg(ttl_secs)
            .arg(verification.map_or("", VerificationId::as_str))
            .invoke_async(&mut self.conn())
            .await
    }

    /// The sign-in, if it exists (and has not expired).
    pub async fn signin(&self, id: &str) -> redis::RedisResult<Option<StoredSignIn>> {
        let mut fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.keys.external_mfa_signin(id))
            .query_async(&mut self.conn())
            .await?;
        let Some(request) = fields.remove("request") else {
            return Ok(None);
        };
        Ok(Some(StoredSignIn {
            request,
            verification: fields.remove("vf"),
            verification_at: fields.get("vf_at").and_then(|t| t.parse().ok()),
            calls: fields
                .get("calls")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0),
            done: fields.remove("done"),
        }))
    }

    /// Counts one more call for the sign-in and, while the count is at most `max_calls`, names
    /// it `verification` (one round trip); returns how many there have been (`None`: the sign-in
    /// is gone). Over the limit, the call is counted but not named.
    pub async fn count_signin_call(
        &self,
        id: &str,
        verification: &VerificationId,
        max_calls: u32,
    ) -> redis::RedisResult<Option<u32>> {
        let calls: i64 = COUNT_CALL
            .key(self.keys.external_mfa_signin(id))
            .arg(verification.as_str())
            .arg(max_calls)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(u32::try_from(calls).ok().filter(|c| *c > 0))
    }

    /// Ends the sign-in with `outcome` unless it has ended already (or is gone); true if this
    /// call ended it.
    pub async fn end_signin(&self, id: &str, outcome: &str) -> redis::RedisResult<bool> {
        let ended: i64 = IF_EXISTS
            .key(self.keys.external_mfa_signin(id))
            .arg("HSETNX")
            .arg("done")
            .arg(outcome)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(ended == 1)
    }
}
