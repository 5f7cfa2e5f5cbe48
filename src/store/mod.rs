//! Every Redis command callverify sends. Handlers call named operations; no key strings or raw
//! commands live anywhere else.

mod audit;
pub mod delivery;
mod keys;
pub mod limits;
pub mod methods;
mod outbox;
mod policy;
pub mod reconcile;
pub mod verifications;

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use audit::AuditEntry;
pub use keys::Keys;

/// Audit stream cap per user (approximate, `MAXLEN ~`).
pub const AUDIT_CAP: u32 = 200;

/// Cheap to clone: one multiplexed, self-reconnecting connection shared by all requests.
#[derive(Clone)]
pub struct Store {
    client: std::sync::Arc<redis::Client>,
    conn: ConnectionManager,
    keys: Keys,
    scripts: std::sync::Arc<Scripts>,
}

struct Scripts {
    create_verification: redis::Script,
    transition: redis::Script,
    add_method: redis::Script,
    delete_method: redis::Script,
    set_default: redis::Script,
    discard_verification: redis::Script,
    rate_limit: redis::Script,
    pace: redis::Script,
    circuit: redis::Script,
    outbox_claim: redis::Script,
    outbox_retry: redis::Script,
    reconcile_schedule: redis::Script,
    reconcile_claim: redis::Script,
}

impl Store {
    /// A store for `url`. Nothing is connected yet (only a malformed URL fails here): the first
    /// command connects, and a Redis that is down reconnects on a later one, so the server can
    /// start before Redis answers.
    pub async fn connect(url: &str, prefix: &str, timeout: Duration) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(timeout))
            .set_connection_timeout(Some(timeout))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        Ok(Self {
            client: std::sync::Arc::new(client),
            conn,
            keys: Keys::new(prefix),
            scripts: std::sync::Arc::new(Scripts {
                create_verification: redis::Script::new(include_str!(
                    "scripts/create_verification.lua"
                )),
                transition: redis::Script::new(concat!(
                    include_str!("scripts/methods_lib.lua"),
                    include_str!("scripts/transition.lua")
                )),
                add_method: redis::Script::new(concat!(
                    include_str!("scripts/methods_lib.lua"),
                    include_str!("scripts/add_method.lua")
                )),
                delete_method: redis::Script::new(concat!(
                    include_str!("scripts/methods_lib.lua"),
                    include_str!("scripts/delete_method.lua")
                )),
                set_default: redis::Script::new(concat!(
                    include_str!("scripts/methods_lib.lua"),
                    include_str!("scripts/set_default.lua")
                )),
                discard_verification: redis::Script::new(include_str!(
                    "scripts/discard_verification.lua"
                )),
                rate_limit: redis::Script::new(include_str!("scripts/rate_limit.lua")),
                pace: redis::Script::new(include_str!("scripts/pace.lua")),
                circuit: redis::Script::new(include_str!("scripts/circuit.lua")),
                outbox_claim: redis::Script::new(include_str!("scripts/outbox_claim.lua")),
                outbox_retry: redis::Script::new(include_str!("scripts/outbox_retry.lua")),
                reconcile_schedule: redis::Script::new(include_str!(
                    "scripts/reconcile_schedule.lua"
                )),
                reconcile_claim: redis::Script::new(include_str!("scripts/reconcile_claim.lua")),
            }),
        })
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A dedicated pub/sub connection (long-poll wake-ups).
    pub async fn pubsub(&self) -> redis::RedisResult<redis::aio::PubSub> {
        self.client.get_async_pubsub().await
    }

    /// `PING`: is Redis answering?
    pub async fn ping(&self) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
    }

    /// Redis' clock, in Unix seconds: the one clock every instance agrees on.
    pub async fn now(&self) -> redis::RedisResult<i64> {
        let mut conn = self.conn.clone();
        let (secs, _micros): (i64, i64) = redis::cmd("TIME").query_async(&mut conn).await?;
        Ok(secs)
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }
}
