//! Every Redis command callverify sends, except the pub/sub subscriptions of `crate::notify`
//! (on a connection of its own). Handlers call named operations; no key strings or raw
//! commands live anywhere else.

mod audit;
mod connection;
pub mod delivery;
pub mod external_mfa;
pub mod idempotency;
mod keys;
pub mod limits;
pub mod methods;
mod outbox;
mod owed;
mod policy;
pub mod reconcile;
mod redirect;
mod replicas;
pub mod undialled;
pub mod verifications;

use std::time::Duration;

pub use audit::AuditEntry;
pub use connection::RedisConnection;
pub use keys::Keys;

/// Audit stream cap per user (approximate, `MAXLEN ~`).
pub const AUDIT_CAP: u32 = 200;

/// Cheap to clone: one multiplexed, self-reconnecting connection shared by all requests (to a
/// single Redis, a Redis Cluster or a Sentinel-managed master: see `connection.rs`).
#[derive(Clone)]
pub struct Store {
    backend: std::sync::Arc<connection::Backend>,
    conn: RedisConnection,
    keys: Keys,
    scripts: std::sync::Arc<Scripts>,
    /// `redis.wait_replicas`: replicas a verification's ending waits for.
    wait_replicas: u32,
    timeout: Duration,
    /// Whether changes are announced with sharded pub/sub (`SPUBLISH`): on a cluster whose
    /// servers have it (Redis 7+; see `notify.rs`).
    sharded_changes: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Which masters `WAIT` is not sent to for now (too few replicas; see `replicas.rs`).
    replicas: std::sync::Arc<replicas::ReplicaWatch>,
}

struct Scripts {
    create_verification: redis::Script,
    transition: redis::Script,
    add_method: redis::Script,
    delete_method: redis::Script,
    set_default: redis::Script,
    discard_verification: redis::Script,
    rate_limit: redis::Script,
    dial_gate: redis::Script,
    /// The gate and the dialling mark in one script: a single Redis node only.
    dial_gate_mark: redis::Script,
    circuit: redis::Script,
    outbox_claim: redis::Script,
    outbox_retry: redis::Script,
    reconcile_schedule: redis::Script,
    reconcile_claim: redis::Script,
}

/// A script that changes a user's methods: the default options' table (`OPTIONS` in
/// `src/methods/default.rs`), then the library every such script shares, then the script.
fn methods_script(body: &str) -> redis::Script {
    redis::Script::new(&[&methods_lib(), body].concat())
}

/// The methods library (the options' table, then `methods_lib.lua`).
fn methods_lib() -> String {
    [
        &crate::methods::lua_options(),
        include_str!("scripts/methods_lib.lua"),
    ]
    .concat()
}

/// `transition.lua` with the methods library where its `-- @methods_lib` line stands (inside the
/// branch that registers a phone: the keypress that re-prompts does not pay for defining it).
fn transition_script() -> redis::Script {
    let body = include_str!("scripts/transition.lua");
    let placeholder = "      -- @methods_lib\n";
    assert!(
        body.contains(placeholder),
        "transition.lua names where the library goes"
    );
    redis::Script::new(&body.replacen(placeholder, &methods_lib(), 1))
}

impl Store {
    /// A store for the deployment `config` describes (`redis.mode`). Nothing is connected yet
    /// (only a malformed URL fails here): the first command connects, and a Redis that is down
    /// reconnects on a later one, so the server can start before Redis answers.
    pub async fn open(config: &crate::config::RedisConfig) -> redis::RedisResult<Self> {
        let backend = connection::Backend::open(config)?;
        let conn = backend.shared()?;
        let sharded_changes = std::sync::Arc::new(backend.is_cluster().into());
        Ok(Self {
            sharded_changes,
            backend: std::sync::Arc::new(backend),
            conn,
            wait_replicas: config.wait_replicas,
            timeout: Duration::from_millis(config.timeout_ms),
            replicas: std::sync::Arc::default(),
            keys: Keys::new(&config.prefix),
            scripts: std::sync::Arc::new(Scripts {
                create_verification: redis::Script::new(concat!(
                    include_str!("scripts/reconcile_lib.lua"),
                    include_str!("scripts/create_verification.lua")
                )),
                transition: transition_script(),
                add_method: methods_script(include_str!("scripts/add_method.lua")),
                delete_method: methods_script(include_str!("scripts/delete_method.lua")),
                set_default: methods_script(include_str!("scripts/set_default.lua")),
                discard_verification: redis::Script::new(include_str!(
                    "scripts/discard_verification.lua"
                )),
                rate_limit: redis::Script::new(include_str!("scripts/rate_limit.lua")),
                dial_gate: redis::Script::new(concat!(
                    include_str!("scripts/circuit_lib.lua"),
                    include_str!("scripts/dial_gate_lib.lua"),
                    include_str!("scripts/dial_gate.lua")
                )),
                dial_gate_mark: redis::Script::new(concat!(
                    include_str!("scripts/circuit_lib.lua"),
                    include_str!("scripts/dial_gate_lib.lua"),
                    include_str!("scripts/dialling_lib.lua"),
                    include_str!("scripts/dial_gate_mark.lua")
                )),
                circuit: redis::Script::new(concat!(
                    include_str!("scripts/circuit_lib.lua"),
                    include_str!("scripts/circuit.lua")
                )),
                outbox_claim: redis::Script::new(include_str!("scripts/outbox_claim.lua")),
                outbox_retry: redis::Script::new(include_str!("scripts/outbox_retry.lua")),
                reconcile_schedule: redis::Script::new(concat!(
                    include_str!("scripts/reconcile_lib.lua"),
                    include_str!("scripts/reconcile_schedule.lua")
                )),
                reconcile_claim: redis::Script::new(include_str!("scripts/reconcile_claim.lua")),
            }),
        })
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A dedicated pub/sub connection (long-poll wake-ups). On a cluster, each call opens it on
    /// the next seed node: every node hears every change announcement.
    pub async fn pubsub(&self) -> redis::RedisResult<redis::aio::PubSub> {
        self.backend
            .subscription_client()
            .await?
            .get_async_pubsub()
            .await
    }

    /// On a cluster, a connection for sharded pub/sub whose pushes go to `pushes` (see
    /// `connection.rs`); `None` on a single node or sentinel deployment.
    pub fn shard_subscriber(
        &self,
        pushes: tokio::sync::mpsc::UnboundedSender<redis::PushInfo>,
    ) -> redis::RedisResult<Option<redis::cluster_async::ClusterConnection>> {
        self.backend.shard_subscriber(pushes)
    }

    /// Whether changes are announced with `SPUBLISH` (a cluster) rather than `PUBLISH`.
    pub fn sharded_changes(&self) -> bool {
        self.sharded_changes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Announce changes with plain `PUBLISH` (a cluster whose servers lack sharded pub/sub).
    pub fn announce_unsharded(&self) {
        self.sharded_changes
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// Is Redis serving? `PING`; on a cluster, `CLUSTER INFO` must say `cluster_state:ok`
    /// (every slot has a live master).
    pub async fn ping(&self) -> redis::RedisResult<()> {
        self.conn().check().await
    }

    /// Whether this store talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.backend.is_cluster()
    }

    /// Redis' clock, in Unix seconds: the one clock every instance agrees on.
    pub async fn now(&self) -> redis::RedisResult<i64> {
        let mut conn = self.conn.clone();
        let (secs, _micros): (i64, i64) = redis::cmd("TIME").query_async(&mut conn).await?;
        Ok(secs)
    }

    fn conn(&self) -> RedisConnection {
        self.conn.clone()
    }
}
