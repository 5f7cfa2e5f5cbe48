//! The delivery worker: POSTs each queued event to its tenant's `events_url`, signed per
//! Standard Webhooks, and retries failures on a schedule kept in Redis. Runs beside the server
//! (any number of instances share the work through a consumer group) and never on a call's path:
//! a slow or dead portal only ever holds `events.concurrency` attempts of one instance.
//!
//! Outcomes (metric `callverify_events_delivered_total{result}`): `success` (2xx), `retry`
//! (anything else, or no answer within the timeout), `gone` (410: delivery to that URL is turned
//! off and persisted), `gave_up` (the retry schedule ran out), `dropped` (the tenant has no
//! events_url any more, delivery to it is off, or the entry was trimmed from the outbox).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::signature::{WebhookSecret, sign};
use crate::config::{EventsConfig, TenantConfig};
use crate::store::Store;
use crate::store::delivery::OutboxEntry;

/// Where a tenant's events go.
struct Endpoint {
    url: String,
    secret: WebhookSecret,
}

struct Worker {
    store: Store,
    http: reqwest::Client,
    endpoints: HashMap<String, Endpoint>,
    config: EventsConfig,
    consumer: String,
}

/// How one attempt ended.
enum Outcome {
    Delivered,
    Gone,
    Failed { retry_after: Option<Duration> },
}

/// Starts the worker; it stops when `shutdown` turns true (attempts in flight are abandoned:
/// their entries are retried by whichever instance runs next).
pub fn spawn(
    store: Store,
    config: EventsConfig,
    tenants: &[TenantConfig],
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let endpoints = tenants
        .iter()
        .filter_map(|t| {
            let url = t.events_url.as_ref()?.to_string();
            let secret = t.events_secret.clone()?;
            Some((t.id.as_str().to_owned(), Endpoint { url, secret }))
        })
        .collect();
    let random: [u8; 6] = rand::rng().random();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(config.request_timeout_ms))
        .connect_timeout(Duration::from_millis(config.request_timeout_ms.min(3000)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default();
    let worker = Arc::new(Worker {
        store,
        http,
        endpoints,
        config,
        consumer: format!("worker-{}", hex::encode(random)),
    });
    tokio::spawn(async move {
        tokio::select! {
            _ = worker.clone().run() => {}
            _ = shutdown.wait_for(|stop| *stop) => {}
        }
        tracing::debug!("event delivery stopped");
    })
}

impl Worker {
    async fn run(self: Arc<Self>) {
        let permits = Arc::new(Semaphore::new(self.config.concurrency));
        let mut attempts = JoinSet::new();
        let poll = Duration::from_millis(self.config.poll_interval_ms.max(10));
        let mut conn = None;
        loop {
            while attempts.try_join_next().is_some() {}
            // Wait for a free slot before taking work, so nothing taken waits unattended.
            let Ok(first) = permits.clone().acquire_owned().await else {
                return;
            };
            drop(first);
            let free = permits.available_permits().max(1);
            let work = match self.take_work(&mut conn, free, poll).await {
                Ok(work) => work,
                Err(e) => {
                    tracing::warn!(error = %e, "event delivery cannot read the outbox");
                    conn = None;
                    tokio::time::sleep(poll).await;
                    continue;
                }
            };
            for (entry, attempt) in work {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let worker = self.clone();
                attempts.spawn(async move {
                    worker.handle(entry, attempt).await;
                    drop(permit);
                });
            }
        }
    }

    /// Entries to attempt, with the number of this attempt: stuck first attempts, due retries,
    /// then new events (waiting up to `poll` for one).
    async fn take_work(
        &self,
        conn: &mut Option<crate::store::RedisConnection>,
        free: usize,
        poll: Duration,
    ) -> redis::RedisResult<Vec<(OutboxEntry, u32)>> {
        if conn.is_none() {
            self.store.ensure_delivery_group().await?;
            *conn = Some(self.store.blocking_connection(poll).await?);
        }
        let idle = Duration::from_millis(self.config.claim_idle_ms);
        let mut work = Vec::new();
        for entry in self
            .store
            .claim_stuck_events(&self.consumer, idle, free)
            .await?
        {
            let attempts = self.store.delivery_attempts(&entry.stream_id).await?;
            work.push((entry, attempts + 1));
        }
        for stream_id in self.store.claim_due_retries(idle, free).await? {
            let attempts = self.store.delivery_attempts(&stream_id).await?;
            match self.store.outbox_entry(&stream_id).await? {
                Some(entry) => work.push((entry, attempts + 1)),
                None => {
                    record("dropped");
                    tracing::error!(entry = %stream_id, "event trimmed from the outbox before delivery");
                    self.store.finish_event(&stream_id).await?;
                }
            }
        }
        if work.is_empty()
            && let Some(conn) = conn.as_mut()
        {
            for entry in self
                .store
                .read_new_events(conn, &self.consumer, free, poll)
                .await?
            {
                work.push((entry, 1));
            }
        }
        Ok(work)
    }

    async fn handle(&self, entry: OutboxEntry, attempt: u32) {
        if let Err(e) = self.deliver(&entry, attempt).await {
            // The entry stays where it is (pending or leased) and is taken up again later.
            tracing::warn!(event = %entry.id, error = %e, "event delivery bookkeeping failed");
        }
    }

    async fn deliver(&self, entry: &OutboxEntry, attempt: u32) -> redis::RedisResult<()> {
        let Some(endpoint) = self.endpoints.get(&entry.tenant) else {
            record("dropped");
            return self.store.finish_event(&entry.stream_id).await;
        };
        let disabled = self.store.disabled_events_url(&entry.tenant).await?;
        if disabled.as_deref() == Some(endpoint.url.as_str()) {
            record("dropped");
            return self.store.finish_event(&entry.stream_id).await;
        }
        match self.post(endpoint, entry).await {
            Outcome::Delivered => {
                record("success");
                tracing::debug!(event = %entry.id, attempt, "event delivered");
                self.store.finish_event(&entry.stream_id).await
            }
            Outcome::Gone => {
                record("gone");
                tracing::warn!(tenant = %entry.tenant, event = %entry.id,
                    "events_url answered 410 Gone: delivery to it is off until the URL changes");
                self.store
                    .disable_events(&entry.tenant, &endpoint.url)
                    .await?;
                self.store.finish_event(&entry.stream_id).await
            }
            Outcome::Failed { retry_after } => {
                let schedule = &self.config.retry_schedule_ms;
                let Some(&base) = schedule.get(attempt as usize - 1) else {
                    record("gave_up");
                    tracing::error!(tenant = %entry.tenant, event = %entry.id, attempt,
                        "event given up after its last retry");
                    return self.store.finish_event(&entry.stream_id).await;
                };
                record("retry");
                let delay =
                    jitter(Duration::from_millis(base)).max(retry_after.unwrap_or_default());
                tracing::info!(event = %entry.id, attempt, retry_in_ms = delay.as_millis() as u64,
                    "event delivery failed; retry scheduled");
                self.store
                    .schedule_retry(&entry.stream_id, delay, attempt)
                    .await
            }
        }
    }

    async fn post(&self, endpoint: &Endpoint, entry: &OutboxEntry) -> Outcome {
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let signature = sign(
            &endpoint.secret,
            &entry.id,
            timestamp,
            entry.body.as_bytes(),
        );
        let sent = self
            .http
            .post(&endpoint.url)
            .header("content-type", "application/json")
            .header("webhook-id", &entry.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(entry.body.clone())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => Outcome::Delivered,
            Ok(r) if r.status() == reqwest::StatusCode::GONE => Outcome::Gone,
            Ok(r) => Outcome::Failed {
                // Honoured for throttling answers (429, 502, 504), capped at a day.
                retry_after: r
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s.min(86_400))),
            },
            Err(e) => {
                tracing::debug!(event = %entry.id, error = %e, "event POST failed");
                Outcome::Failed { retry_after: None }
            }
        }
    }
}

fn record(result: &'static str) {
    metrics::counter!(crate::ops::metrics::EVENTS_DELIVERED, "result" => result).increment(1);
}

/// ±20 %, so retries of many events that failed together do not arrive together.
fn jitter(delay: Duration) -> Duration {
    let factor: f64 = rand::rng().random_range(0.8..1.2);
    delay.mul_f64(factor)
}
