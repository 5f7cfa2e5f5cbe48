//! External MFA sign-ins (src/external_mfa/): one hash per sign-in, keyed by the opaque id its
//! page carries. Fields: `request` (the checked request, JSON, written once), `vf` (the
//! verification now calling), `phone` (masked), `calls` (calls placed), `done` (how it ended:
//! written once, so one sign-in ends once and yields at most one id_token).

use std::collections::HashMap;

use super::Store;

/// Runs one hash command on a sign-in only while it exists (never re-creating an expired one
/// without its TTL); answers the command's integer reply, or -1 when the sign-in is gone.
static IF_EXISTS: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end \
         return redis.call(ARGV[1], KEYS[1], unpack(ARGV, 2))",
    )
});

/// Creates a sign-in with its first call counted (one round trip for the first POST).
static CREATE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('HSETNX', KEYS[1], 'request', ARGV[1]) == 0 then return 0 end \
         redis.call('HSET', KEYS[1], 'calls', 1) \
         redis.call('EXPIRE', KEYS[1], ARGV[2]) \
         return 1",
    )
});

/// A sign-in as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredSignIn {
    pub request: String,
    pub verification: Option<String>,
    pub phone: Option<String>,
    pub calls: u32,
    pub done: Option<String>,
}

impl Store {
    /// Stores a new sign-in with `request` unless `id` exists, its first call counted; true if
    /// this call created it. The TTL is set only on creation, so a repeated request never
    /// extends it.
    pub async fn create_signin(
        &self,
        id: &str,
        request: &str,
        ttl_secs: u64,
    ) -> redis::RedisResult<bool> {
        CREATE
            .key(self.keys.external_mfa_signin(id))
            .arg(request)
            .arg(ttl_secs)
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
            phone: fields.remove("phone"),
            calls: fields
                .get("calls")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0),
            done: fields.remove("done"),
        }))
    }

    /// Counts one more call for the sign-in; returns how many there have been (`None`: the
    /// sign-in is gone).
    pub async fn count_signin_call(&self, id: &str) -> redis::RedisResult<Option<u32>> {
        let calls: i64 = IF_EXISTS
            .key(self.keys.external_mfa_signin(id))
            .arg("HINCRBY")
            .arg("calls")
            .arg(1)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(u32::try_from(calls).ok().filter(|c| *c > 0))
    }

    /// Records the verification now calling for the sign-in and the masked number it calls.
    pub async fn set_signin_call(
        &self,
        id: &str,
        verification: &str,
        masked_phone: &str,
    ) -> redis::RedisResult<()> {
        IF_EXISTS
            .key(self.keys.external_mfa_signin(id))
            .arg("HSET")
            .arg("vf")
            .arg(verification)
            .arg("phone")
            .arg(masked_phone)
            .invoke_async::<i64>(&mut self.conn())
            .await
            .map(|_| ())
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
