//! Long-poll wake-ups across instances: one Redis pub/sub connection per instance listens to
//! every verification's change channel and fans the ids out in-process. Waiters never poll.
//!
//! On a Redis Cluster the announcements are plain `PUBLISH`es, which the cluster bus carries to
//! every node, so one subscription on any node hears them all (see `Store::pubsub`). When that
//! node is lost the listener resubscribes on the next one and wakes every waiter to read again,
//! since announcements may have been missed meanwhile.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::ids::VerificationId;
use crate::store::Store;

#[derive(Clone)]
pub struct Notifier {
    tx: broadcast::Sender<Arc<str>>,
}

impl Notifier {
    /// Subscribes (waiting up to `ready_within` for the first subscription, so a request served
    /// right after start-up already wakes) and keeps the subscription alive in the background.
    pub async fn start(store: Store, ready_within: Duration) -> Self {
        let (tx, _) = broadcast::channel(4096);
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(listen(store, tx.clone(), ready_tx));
        let _ = tokio::time::timeout(ready_within, ready_rx).await;
        Self { tx }
    }

    /// Subscribe before reading the state you wait on, so no change slips between the two.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.tx.subscribe()
    }
}

/// Announced after a resubscription: every waiter reads again (changes may have been missed).
const EVERYONE: &str = "";

/// Waits until `id` is announced as changed, or `deadline`. Returns true on an announcement
/// (or when messages were lost and the caller should simply read again).
pub async fn changed(
    rx: &mut broadcast::Receiver<Arc<str>>,
    id: &VerificationId,
    deadline: Instant,
) -> bool {
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => return false,
            Ok(Ok(changed)) if &*changed == id.as_str() || &*changed == EVERYONE => return true,
            Ok(Ok(_)) => continue,
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => return true,
            Ok(Err(broadcast::error::RecvError::Closed)) => {
                tokio::time::sleep_until(deadline).await;
                return false;
            }
        }
    }
}

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
