//! The connection behind `Store`: one type for a standalone Redis, a Redis Cluster and a
//! Sentinel-managed master, so every named operation is written once (`query_async(&mut conn)`)
//! whatever the deployment.
//!
//! - Standalone: a `ConnectionManager` (multiplexed, reconnects by itself).
//! - Cluster: the `redis` crate's cluster client, which keeps the slot map, follows `MOVED` and
//!   `ASK` redirects and re-reads the topology after a failover; the redirects it hands back
//!   while a slot moves are followed in `redirect.rs`. Every multi-key script and `MULTI` keeps
//!   its keys under one hash tag (see `keys.rs`), so each runs on one node.
//! - Sentinel: a multiplexed connection to the master the sentinels name, asked again after a
//!   connection error or a `READONLY` reply (the old master demoted by a failover).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::sentinel::{SentinelClient, SentinelServerType};
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, RedisResult, Value};

use crate::config::{RedisConfig, RedisMode};

/// A Redis connection of any deployment. Cheap to clone: clones share the underlying sockets.
#[derive(Clone)]
pub struct RedisConnection(Inner);

#[derive(Clone)]
enum Inner {
    Standalone(ConnectionManager),
    /// The cluster client, and how long one request may take (its redirects included).
    Cluster(ClusterConnection, Duration),
    /// The blocking connection of a standalone or sentinel deployment.
    Plain(MultiplexedConnection),
    Sentinel(Arc<SentinelMaster>),
}

/// How to open connections: the shared one, and the worker's and the listener's own ones.
pub(super) struct Backend {
    kind: Kind,
    timeout: Duration,
}

enum Kind {
    Standalone(redis::Client),
    Cluster {
        client: Box<redis::cluster::ClusterClient>,
        /// The seed URLs, for the clients of dedicated connections (see `dedicated`).
        urls: Vec<String>,
        /// One client per seed, for the change subscription (see `subscription_client`).
        seeds: Vec<redis::Client>,
        next_seed: AtomicUsize,
    },
    Sentinel(Arc<SentinelMaster>),
}

impl Backend {
    /// Nothing is connected yet: only a malformed URL fails here.
    pub(super) fn open(config: &RedisConfig) -> RedisResult<Self> {
        let timeout = Duration::from_millis(config.timeout_ms);
        let kind = match config.mode {
            RedisMode::Standalone => Kind::Standalone(redis::Client::open(config.url.expose())?),
            RedisMode::Cluster => {
                let urls: Vec<&str> = config.cluster_urls.iter().map(|u| u.expose()).collect();
                let seeds = urls
                    .iter()
                    .map(|url| redis::Client::open(*url))
                    .collect::<RedisResult<_>>()?;
                Kind::Cluster {
                    client: Box::new(cluster_client(&urls, timeout)?),
                    urls: urls.into_iter().map(str::to_owned).collect(),
                    seeds,
                    next_seed: AtomicUsize::new(0),
                }
            }
            RedisMode::Sentinel => Kind::Sentinel(Arc::new(SentinelMaster::new(config, timeout)?)),
        };
        Ok(Self { kind, timeout })
    }

    /// The shared, multiplexed connection every request uses.
    pub(super) fn shared(&self) -> RedisResult<RedisConnection> {
        Ok(RedisConnection(match &self.kind {
            Kind::Standalone(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(self.timeout))
                    .set_connection_timeout(Some(self.timeout))
                    .set_number_of_retries(2);
                Inner::Standalone(ConnectionManager::new_lazy_with_config(
                    client.clone(),
                    config,
                )?)
            }
            Kind::Cluster { client, .. } => {
                let config = redis::cluster::ClusterConfig::new()
                    .set_connection_timeout(self.timeout)
                    .set_response_timeout(self.timeout);
                Inner::Cluster(
                    client.get_pending_async_connection_with_config(config),
                    self.timeout,
                )
            }
            Kind::Sentinel(master) => Inner::Sentinel(master.clone()),
        }))
    }

    /// A connection of its own whose replies may take `response_timeout` (`XREADGROUP BLOCK`).
    pub(super) async fn dedicated(
        &self,
        response_timeout: Duration,
    ) -> RedisResult<RedisConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(response_timeout));
        Ok(RedisConnection(match &self.kind {
            Kind::Standalone(client) => Inner::Plain(
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?,
            ),
            Kind::Cluster { urls, .. } => {
                // A client of its own: a cluster client's overall deadline for a request (its
                // retries included) is the one it was built with, whatever a connection's
                // `ClusterConfig` says, and a blocking read must outlast it.
                let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
                Inner::Cluster(
                    cluster_client(&urls, response_timeout)?
                        .get_async_connection()
                        .await?,
                    response_timeout,
                )
            }
            Kind::Sentinel(master) => Inner::Plain(
                master
                    .client()
                    .await?
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?,
            ),
        }))
    }

    /// A client whose pub/sub connection hears every verification's change announcements.
    ///
    /// On a cluster a plain `PUBLISH` (what `transition.lua` sends) reaches every node over the
    /// cluster bus, so a subscription on any one node hears them all; each call takes the next
    /// seed, so after losing its node the listener resubscribes on another.
    pub(super) async fn subscription_client(&self) -> RedisResult<redis::Client> {
        match &self.kind {
            Kind::Standalone(client) => Ok(client.clone()),
            Kind::Cluster {
                seeds, next_seed, ..
            } => {
                let i = next_seed.fetch_add(1, Ordering::Relaxed) % seeds.len();
                Ok(seeds[i].clone())
            }
            Kind::Sentinel(master) => master.client().await,
        }
    }

    /// On a cluster, a connection for sharded pub/sub (`SSUBSCRIBE`): RESP3, its pushes (shard
    /// messages, and `Disconnection` when a node's link drops) sent to `pushes`. It connects in
    /// the background and re-subscribes a node's channels when it reconnects. `None` elsewhere.
    pub(super) fn shard_subscriber(
        &self,
        pushes: tokio::sync::mpsc::UnboundedSender<redis::PushInfo>,
    ) -> RedisResult<Option<ClusterConnection>> {
        let Kind::Cluster { urls, .. } = &self.kind else {
            return Ok(None);
        };
        let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
        let client = cluster_builder(&urls, self.timeout)
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(pushes)
            .build()?;
        Ok(Some(
            client.get_pending_async_connection_with_config(
                redis::cluster::ClusterConfig::new()
                    .set_connection_timeout(self.timeout.min(Duration::from_secs(2)))
                    .set_response_timeout(self.timeout),
            ),
        ))
    }

    pub(super) fn is_cluster(&self) -> bool {
        matches!(self.kind, Kind::Cluster { .. })
    }
}

/// A cluster client whose requests, redirects and reconnections included, end within `timeout`.
fn cluster_client(urls: &[&str], timeout: Duration) -> RedisResult<redis::cluster::ClusterClient> {
    cluster_builder(urls, timeout).build()
}

fn cluster_builder(urls: &[&str], timeout: Duration) -> ClusterClientBuilder {
    ClusterClientBuilder::new(urls.to_vec())
        .connection_timeout(timeout.min(Duration::from_secs(2)))
        .response_timeout(timeout)
        // Redirects and reconnections during a failover are retried quickly, within the same
        // deadline as one round trip.
        .retries(8)
        .min_retry_wait(10)
        .max_retry_wait(400)
}

impl RedisConnection {
    /// `WAIT replicas timeout` on the node that holds `key` (the one the last write went to);
    /// the number of replicas that acknowledged.
    pub(super) async fn wait_for_replicas(
        &mut self,
        key: &str,
        replicas: u32,
        timeout: Duration,
    ) -> RedisResult<i64> {
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(replicas).arg(timeout.as_millis() as u64);
        match &mut self.0 {
            Inner::Cluster(conn, _) => {
                let route = Route::with_key(key.as_bytes(), SlotAddr::Master);
                let reply = conn
                    .route_command(
                        cmd,
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                    )
                    .await?;
                Ok(redis::from_redis_value(reply)?)
            }
            _ => cmd.query_async(self).await,
        }
    }

    /// `CLUSTER SLOTS` from any node; `None` when this is not a cluster.
    pub(super) async fn cluster_slots(&mut self) -> RedisResult<Option<Value>> {
        let Inner::Cluster(conn, _) = &mut self.0 else {
            return Ok(None);
        };
        conn.route_command(
            redis::cmd("CLUSTER").arg("SLOTS").clone(),
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
        )
        .await
        .map(Some)
    }

    /// `CLUSTER INFO`'s `cluster_state` on a cluster (an error unless `ok`), `PING` elsewhere.
    pub(super) async fn check(&mut self) -> RedisResult<()> {
        if let Inner::Cluster(conn, _) = &mut self.0 {
            let reply = conn
                .route_command(
                    redis::cmd("CLUSTER").arg("INFO").clone(),
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
                )
                .await?;
            let info: String = redis::from_redis_value(reply)?;
            let state = info
                .lines()
                .find_map(|l| l.trim().strip_prefix("cluster_state:"))
                .unwrap_or("unknown");
            return if state == "ok" {
                Ok(())
            } else {
                Err(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "cluster not serving all slots",
                    format!("cluster_state:{state}"),
                )))
            };
        }
        redis::cmd("PING")
            .query_async::<String>(self)
            .await
            .map(|_| ())
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Inner::Standalone(c) => c.req_packed_command(cmd),
            Inner::Cluster(c, budget) => Box::pin(super::redirect::command(c, cmd, *budget)),
            Inner::Plain(c) => c.req_packed_command(cmd),
            Inner::Sentinel(master) => {
                let master = master.clone();
                Box::pin(async move {
                    let mut conn = master.connection().await?;
                    let reply = conn.req_packed_command(cmd).await;
                    master.after(&reply);
                    reply
                })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            Inner::Standalone(c) => c.req_packed_commands(pipeline, offset, count),
            Inner::Cluster(c, budget) => Box::pin(super::redirect::pipeline(
                c, pipeline, offset, count, *budget,
            )),
            Inner::Plain(c) => c.req_packed_commands(pipeline, offset, count),
            Inner::Sentinel(master) => {
                let master = master.clone();
                Box::pin(async move {
                    let mut conn = master.connection().await?;
                    let reply = conn.req_packed_commands(pipeline, offset, count).await;
                    master.after(&reply);
                    reply
                })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Inner::Standalone(c) => c.get_db(),
            Inner::Cluster(c, _) => c.get_db(),
            Inner::Plain(c) => c.get_db(),
            Inner::Sentinel(_) => 0,
        }
    }
}

/// The master the sentinels name, with one multiplexed connection to it, dropped (and the
/// master asked for again) after an I/O error or a `READONLY` reply.
pub(super) struct SentinelMaster {
    sentinel: tokio::sync::Mutex<SentinelClient>,
    current: std::sync::Mutex<Option<MultiplexedConnection>>,
    timeout: Duration,
}

impl SentinelMaster {
    fn new(config: &RedisConfig, timeout: Duration) -> RedisResult<Self> {
        let sentinels: Vec<&str> = config.sentinel_urls.iter().map(|u| u.expose()).collect();
        // The master's credentials, TLS and database come from `url`.
        let master = redis::IntoConnectionInfo::into_connection_info(config.url.expose())?;
        let node = redis::sentinel::SentinelNodeConnectionInfo::default()
            .set_redis_connection_info(master.redis_settings().clone());
        let sentinel = SentinelClient::build(
            sentinels,
            config.sentinel_master.clone(),
            Some(node),
            SentinelServerType::Master,
        )?;
        Ok(Self {
            sentinel: tokio::sync::Mutex::new(sentinel),
            current: std::sync::Mutex::new(None),
            timeout,
        })
    }

    /// A client for the current master, as the sentinels see it now.
    async fn client(&self) -> RedisResult<redis::Client> {
        self.sentinel.lock().await.async_get_client().await
    }

    async fn connection(&self) -> RedisResult<MultiplexedConnection> {
        if let Some(conn) = self.current.lock().expect("not poisoned").clone() {
            return Ok(conn);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let conn = self
            .client()
            .await?
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        *self.current.lock().expect("not poisoned") = Some(conn.clone());
        Ok(conn)
    }

    /// Forgets the connection when its reply says the master is gone or demoted.
    fn after<T>(&self, reply: &RedisResult<T>) {
        if let Err(e) = reply
            && (e.is_io_error()
                || e.is_connection_dropped()
                || e.is_timeout()
                || e.code() == Some("READONLY"))
        {
            *self.current.lock().expect("not poisoned") = None;
        }
    }
}
