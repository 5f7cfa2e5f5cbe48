//! Long-poll wake-ups across instances: the transition script announces every status change on
//! the verification's channel, and each instance fans the ids it hears out in-process. Waiters
//! never poll Redis while nothing changes.
//!
//! - **Single node, Sentinel**: one pub/sub connection per instance pattern-subscribes to every
//!   change channel (`PUBLISH` / `PSUBSCRIBE`). After losing it the listener subscribes again
//!   (through the sentinels, to the current master).
//! - **Cluster**: sharded pub/sub (`SPUBLISH` / `SSUBSCRIBE`, Redis 7+). A plain `PUBLISH` would
//!   be broadcast over the cluster bus to every node; a shard channel stays in its shard. A
//!   change channel carries its user's hash tag (`keys.rs`), so it lives in the slot the
//!   transition writes to, and each long-poll subscribes to its own verification's channel
//!   (reference-counted: waiters on one verification share a subscription; an unused one is
//!   dropped after [`IDLE_UNSUBSCRIBE`]). The cluster client routes each subscription to the
//!   slot's node and re-subscribes when it reconnects. A cluster whose servers lack sharded
//!   pub/sub falls back to the broadcast path above (logged once).
//!
//! A slot that moves to another node (resharding) unsubscribes its shard channels there; a
//! channel still waited on is subscribed again on the new node. When a subscription connection
//! drops, announcements may be lost: every waiter is woken to
//! read again, and on a cluster every watched channel is subscribed again (on whichever node
//! serves its slot by then) a few times over the next seconds. A long-poll also re-reads at
//! least every [`REREAD_EVERY`], so an announcement lost any other way costs at most that.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use redis::cluster_async::ClusterConnection;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use crate::ids::VerificationId;
use crate::store::Store;

/// How often a long-poll re-reads even without an announcement.
pub const REREAD_EVERY: Duration = Duration::from_secs(5);

/// How long a shard channel nobody waits on stays subscribed (a waiter arriving meanwhile needs
/// no `SSUBSCRIBE`).
const IDLE_UNSUBSCRIBE: Duration = Duration::from_secs(10);

/// Announced after a lost subscription: every waiter reads again (changes may have been missed).
const EVERYONE: &str = "";

#[derive(Clone)]
pub struct Notifier {
    tx: broadcast::Sender<Arc<str>>,
    sharded: Option<Arc<Sharded>>,
    /// True once the server drains: every waiter answers at once ([`Notifier::close`]).
    closing: watch::Sender<bool>,
}

/// What a long-poll holds while it waits: its receiver, and on a cluster its share of the
/// verification's subscription (released on drop).
pub struct Watch {
    rx: broadcast::Receiver<Arc<str>>,
    sharded: Option<Arc<Sharded>>,
    _subscription: Option<Subscription>,
    closing: watch::Receiver<bool>,
}

impl Notifier {
    /// Subscribes (waiting up to `ready_within` for the first subscription, so a request served
    /// right after start-up already wakes) and keeps the subscription alive in the background.
    pub async fn start(store: Store, ready_within: Duration) -> Self {
        let (tx, _) = broadcast::channel(4096);
        if store.sharded_changes() {
            match Sharded::start(&store, tx.clone(), ready_within).await {
                Ok(sharded) => {
                    return Self {
                        tx,
                        sharded: Some(sharded),
                        closing: watch::channel(false).0,
                    };
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no sharded pub/sub on this cluster (Redis 7+): change announcements are broadcast with PUBLISH");
                    store.announce_unsharded();
                }
            }
        }
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(listen(store, tx.clone(), ready_tx));
        let _ = tokio::time::timeout(ready_within, ready_rx).await;
        Self {
            tx,
            sharded: None,
            closing: watch::channel(false).0,
        }
    }

    /// The server drains: every long-poll waiting now or later answers at once, with the state
    /// it reads then, so none is cut by the end of the shutdown grace.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Start listening before the first read of the state you will wait on, so no announcement
    /// slips between the two (no Redis work). On a cluster, [`Watch::follow`] the verification
    /// once it is known to be the caller's.
    pub fn listen(&self) -> Watch {
        Watch {
            rx: self.tx.subscribe(),
            sharded: self.sharded.clone(),
            _subscription: None,
            closing: self.closing.subscribe(),
        }
    }
}

impl Watch {
    /// On a cluster, subscribes `id`'s shard channel unless another waiter already has it. True
    /// when the subscription is new: an announcement made since [`Notifier::listen`] may have
    /// gone unheard, so read the state again. Elsewhere (one pattern subscription per instance)
    /// there is nothing to do.
    pub async fn follow(&mut self, id: &VerificationId) -> redis::RedisResult<bool> {
        let Some(sharded) = self.sharded.clone() else {
            return Ok(false);
        };
        let (subscription, subscribed_now) = sharded.acquire(id).await?;
        self._subscription = Some(subscription);
        Ok(subscribed_now)
    }
}

/// Waits until `id` is announced as changed, [`REREAD_EVERY`] passes, or `deadline`. Returns
/// false at the deadline or once the server drains ([`Notifier::close`]): read the latest state
/// and answer; true means "read again" (an announcement, lost messages, or the periodic re-read).
pub async fn changed(watch: &mut Watch, id: &VerificationId, deadline: Instant) -> bool {
    let closing = *watch.closing.borrow();
    if closing {
        return false;
    }
    let wake = deadline.min(Instant::now() + REREAD_EVERY);
    loop {
        let received = tokio::select! {
            biased;
            closed = async { watch.closing.wait_for(|closing| *closing).await.is_ok() } => {
                if closed {
                    return false;
                }
                // The notifier is gone (not while serving): wait for the rest as before.
                tokio::time::timeout_at(wake, watch.rx.recv()).await
            }
            received = tokio::time::timeout_at(wake, watch.rx.recv()) => received,
        };
        match received {
            Err(_) => return wake < deadline,
            Ok(Ok(changed)) if &*changed == id.as_str() || &*changed == EVERYONE => return true,
            Ok(Ok(_)) => continue,
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => return true,
            Ok(Err(broadcast::error::RecvError::Closed)) => {
                tokio::time::sleep_until(wake).await;
                return wake < deadline;
            }
        }
    }
}

/// The broadcast path: one pattern subscription per instance.
async fn listen(
    store: Store,
    tx: broadcast::Sender<Arc<str>>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let pattern = store.keys().change_pattern();
    loop {
        match store.pubsub().await {
            Ok(mut pubsub) => match pubsub.psubscribe(&pattern).await {
                Ok(()) => {
                    match ready.take() {
                        Some(r) => {
                            let _ = r.send(());
                        }
                        None => {
                            tracing::info!("change subscription restored");
                            let _ = tx.send(Arc::from(EVERYONE));
                        }
                    }
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        if let Some(id) = store.keys().id_from_channel(msg.get_channel_name()) {
                            let _ = tx.send(Arc::from(id));
                        }
                    }
                    tracing::warn!("change subscription ended; resubscribing");
                }
                Err(e) => tracing::warn!(error = %e, "cannot subscribe to changes"),
            },
            Err(e) => tracing::warn!(error = %e, "cannot open pub/sub connection"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The sharded path: per-verification shard channels, shared by their waiters.
struct Sharded {
    conn: ClusterConnection,
    store: Store,
    channels: Mutex<HashMap<String, Channel>>,
    /// Held (shared) while subscribing, (exclusive) while dropping idle channels, so an
    /// `SUNSUBSCRIBE` never overtakes a new waiter's `SSUBSCRIBE` of the same channel.
    sweeping: tokio::sync::RwLock<()>,
}

struct Channel {
    waiters: usize,
    subscribed: bool,
    idle_since: std::time::Instant,
}

/// A waiter's share of a shard channel's subscription.
struct Subscription {
    sharded: Arc<Sharded>,
    channel: String,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut channels = self.sharded.lock();
        if let Some(c) = channels.get_mut(&self.channel) {
            c.waiters = c.waiters.saturating_sub(1);
            if c.waiters == 0 {
                c.idle_since = std::time::Instant::now();
            }
        }
    }
}

impl Sharded {
    /// Opens the subscription connection and checks that the servers know `SSUBSCRIBE` (an
    /// error here means they do not; a cluster that cannot be reached yet counts as having it).
    async fn start(
        store: &Store,
        tx: broadcast::Sender<Arc<str>>,
        ready_within: Duration,
    ) -> redis::RedisResult<Arc<Self>> {
        let (pushes_tx, pushes) = tokio::sync::mpsc::unbounded_channel();
        let Some(mut conn) = store.shard_subscriber(pushes_tx)? else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "not a cluster",
            )));
        };
        let probe = format!("{}:{{probe}}:vf-changed:probe", store.keys().prefix());
        match tokio::time::timeout(ready_within, conn.ssubscribe(&probe)).await {
            Ok(Err(e)) if is_unknown_command(&e) => return Err(e),
            Ok(Ok(())) => {
                let _ = conn.sunsubscribe(&probe).await;
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot reach the cluster to subscribe yet"),
            Err(_) => tracing::warn!("cannot reach the cluster to subscribe yet"),
        }
        let sharded = Arc::new(Self {
            conn,
            store: store.clone(),
            channels: Mutex::default(),
            sweeping: tokio::sync::RwLock::new(()),
        });
        tokio::spawn(sharded.clone().receive(pushes, tx));
        tokio::spawn(sharded.clone().sweep());
        Ok(sharded)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Channel>> {
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A share of `id`'s channel subscription, and whether this call had to subscribe it.
    async fn acquire(
        self: Arc<Self>,
        id: &VerificationId,
    ) -> redis::RedisResult<(Subscription, bool)> {
        let channel = self.store.keys().change_channel(id);
        let subscribed = {
            let mut channels = self.lock();
            let c = channels.entry(channel.clone()).or_insert(Channel {
                waiters: 0,
                subscribed: false,
                idle_since: std::time::Instant::now(),
            });
            c.waiters += 1;
            c.subscribed
        };
        // From here on the share is counted: dropping it (on an error too) releases it.
        let share = Subscription {
            sharded: self.clone(),
            channel,
        };
        if !subscribed {
            self.subscribe(&share.channel).await?;
        }
        Ok((share, !subscribed))
    }

    /// `SSUBSCRIBE` (routed to the node that serves the channel's slot now), then marks the
    /// channel subscribed. Never overtaken by the sweep's `SUNSUBSCRIBE`.
    async fn subscribe(&self, channel: &str) -> redis::RedisResult<()> {
        let _no_sweep = self.sweeping.read().await;
        self.conn.clone().ssubscribe(channel).await?;
        if let Some(c) = self.lock().get_mut(channel) {
            c.subscribed = true;
        }
        Ok(())
    }

    /// Shard messages → wake-ups. A dropped node link wakes everyone and subscribes every
    /// watched channel again over the next seconds (the slot may be served elsewhere by then).
    async fn receive(
        self: Arc<Self>,
        mut pushes: tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>,
        tx: broadcast::Sender<Arc<str>>,
    ) {
        while let Some(push) = pushes.recv().await {
            let channel = push.data.first().and_then(|v| match v {
                redis::Value::BulkString(b) => std::str::from_utf8(b).ok(),
                _ => None,
            });
            match (push.kind, channel) {
                (redis::PushKind::SMessage, Some(channel)) => {
                    if let Some(id) = self.store.keys().id_from_channel(channel) {
                        let _ = tx.send(Arc::from(id));
                    }
                }
                (redis::PushKind::SUnsubscribe, Some(channel)) => {
                    // Ours (an idle channel swept) or the server's: a slot that moved to another
                    // node (resharding) unsubscribes its channels there. A channel still waited
                    // on is subscribed again, now on the slot's new node, and its waiters read.
                    let waited_on = self.lock().get_mut(channel).is_some_and(|c| {
                        c.subscribed = false;
                        c.waiters > 0
                    });
                    if waited_on {
                        let (sharded, tx) = (self.clone(), tx.clone());
                        let channel = channel.to_owned();
                        tokio::spawn(async move {
                            if let Err(e) = sharded.subscribe(&channel).await {
                                tracing::warn!(error = %e, "cannot move a change subscription to its slot's new node");
                            }
                            if let Some(id) = sharded.store.keys().id_from_channel(&channel) {
                                let _ = tx.send(Arc::from(id));
                            }
                        });
                    }
                }
                (redis::PushKind::Disconnection, _) => {
                    tracing::warn!("a change subscription's node link dropped; resubscribing");
                    // The next waiter of an idle channel subscribes it again itself.
                    for c in self.lock().values_mut() {
                        c.subscribed = false;
                    }
                    let _ = tx.send(Arc::from(EVERYONE));
                    tokio::spawn(self.clone().resubscribe(tx.clone()));
                }
                _ => {}
            }
        }
    }

    /// Subscribes every watched channel again, a few times while a failover settles, waking
    /// everyone after each round.
    async fn resubscribe(self: Arc<Self>, tx: broadcast::Sender<Arc<str>>) {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let channels: Vec<String> = self
                .lock()
                .iter()
                .filter(|(_, c)| c.waiters > 0)
                .map(|(name, _)| name.clone())
                .collect();
            for channel in channels {
                if let Err(e) = self.subscribe(&channel).await {
                    tracing::debug!(error = %e, "resubscription failed; trying again");
                }
            }
            let _ = tx.send(Arc::from(EVERYONE));
        }
    }

    /// Drops subscriptions nobody has waited on for [`IDLE_UNSUBSCRIBE`].
    async fn sweep(self: Arc<Self>) {
        loop {
            tokio::time::sleep(IDLE_UNSUBSCRIBE / 2).await;
            let _exclusive = self.sweeping.write().await;
            let idle: Vec<(String, bool)> = {
                let mut channels = self.lock();
                let idle: Vec<(String, bool)> = channels
                    .iter()
                    .filter(|(_, c)| c.waiters == 0 && c.idle_since.elapsed() >= IDLE_UNSUBSCRIBE)
                    .map(|(name, c)| (name.clone(), c.subscribed))
                    .collect();
                for (name, _) in &idle {
                    channels.remove(name);
                }
                idle
            };
            for (channel, subscribed) in idle {
                if subscribed && let Err(e) = self.conn.clone().sunsubscribe(&channel).await {
                    tracing::debug!(error = %e, "cannot unsubscribe an idle change channel");
                }
            }
        }
    }
}

fn is_unknown_command(e: &redis::RedisError) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    text.contains("unknown command")
}
