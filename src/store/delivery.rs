//! The outbox's delivery side: a consumer group reads new events, a sorted set schedules retries
//! (both in the `{outbox}` slot), so a restart resumes where the last instance stopped.
//!
//! An entry is always held by exactly one of: the group's pending list (first attempt in flight;
//! `XAUTOCLAIM` takes it over when its instance dies), the retry set (waiting or leased to an
//! attempt), or nowhere (delivered, given up: acknowledged and deleted).

use std::collections::HashMap;
use std::time::Duration;

use super::{RedisConnection, Store};

/// The consumer group every instance's delivery worker joins.
pub const GROUP: &str = "delivery";

/// One queued event.
#[derive(Clone, Debug)]
pub struct OutboxEntry {
    /// The stream entry id (`1700000000000-0`).
    pub stream_id: String,
    /// The event's `webhook-id`, the same on every attempt.
    pub id: String,
    pub tenant: String,
    /// The exact JSON body that is signed and sent.
    pub body: String,
}

type RawEntry = (String, Option<HashMap<String, String>>);

fn entry((stream_id, fields): RawEntry) -> Option<OutboxEntry> {
    let mut fields = fields?;
    Some(OutboxEntry {
        stream_id,
        id: fields.remove("id")?,
        tenant: fields.remove("tenant")?,
        body: fields.remove("body")?,
    })
}

impl Store {
    /// A connection of the worker's own: `XREADGROUP … BLOCK` would stall every request sharing
    /// the multiplexed connection.
    pub async fn blocking_connection(
        &self,
        block: Duration,
    ) -> redis::RedisResult<RedisConnection> {
        self.backend.dedicated(block + Duration::from_secs(2)).await
    }

    /// Creates the consumer group (and the stream) unless they exist.
    pub async fn ensure_delivery_group(&self) -> redis::RedisResult<()> {
        let created = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(self.keys.outbox())
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async::<()>(&mut self.conn())
            .await;
        match created {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    /// New entries for `consumer`, waiting up to `block` for one.
    pub async fn read_new_events(
        &self,
        conn: &mut RedisConnection,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> redis::RedisResult<Vec<OutboxEntry>> {
        type Reply = Option<Vec<(String, Vec<RawEntry>)>>;
        let reply: Reply = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(block.as_millis() as u64)
            .arg("STREAMS")
            .arg(self.keys.outbox())
            .arg(">")
            .query_async(conn)
            .await?;
        Ok(reply
            .into_iter()
            .flatten()
            .flat_map(|(_, entries)| entries)
            .filter_map(entry)
            .collect())
    }

    /// First attempts left pending longer than `min_idle` by a dead instance, now `consumer`'s.
    pub async fn claim_stuck_events(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> redis::RedisResult<Vec<OutboxEntry>> {
        // `[cursor, entries]` before Redis 7, `[cursor, entries, deleted ids]` since.
        let reply: Vec<redis::Value> = redis::cmd("XAUTOCLAIM")
            .arg(self.keys.outbox())
            .arg(GROUP)
            .arg(consumer)
            .arg(min_idle.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.conn())
            .await?;
        let entries: Vec<RawEntry> = match reply.into_iter().nth(1) {
            Some(value) => redis::from_redis_value(value)?,
            None => Vec::new(),
        };
        Ok(entries.into_iter().filter_map(entry).collect())
    }

    /// Leases up to `count` due retries for `lease` (see `scripts/outbox_claim.lua`).
    pub async fn claim_due_retries(
        &self,
        lease: Duration,
        count: usize,
    ) -> redis::RedisResult<Vec<String>> {
        self.scripts
            .outbox_claim
            .key(self.keys.outbox_retries())
            .arg(lease.as_millis() as u64)
            .arg(count)
            .invoke_async(&mut self.conn())
            .await
    }

    /// One outbox entry by its stream id (`None` once trimmed or deleted).
    pub async fn outbox_entry(&self, stream_id: &str) -> redis::RedisResult<Option<OutboxEntry>> {
        let entries: Vec<RawEntry> = redis::cmd("XRANGE")
            .arg(self.keys.outbox())
            .arg(stream_id)
            .arg(stream_id)
            .query_async(&mut self.conn())
            .await?;
        Ok(entries.into_iter().next().and_then(entry))
    }

    /// Attempts made so far for an entry.
    pub async fn delivery_attempts(&self, stream_id: &str) -> redis::RedisResult<u32> {
        let n: Option<u32> = redis::cmd("HGET")
            .arg(self.keys.outbox_attempts())
            .arg(stream_id)
            .query_async(&mut self.conn())
            .await?;
        Ok(n.unwrap_or(0))
    }

    /// Schedules a retry after `delay` (see `scripts/outbox_retry.lua`).
    pub async fn schedule_retry(
        &self,
        stream_id: &str,
        delay: Duration,
        attempts: u32,
    ) -> redis::RedisResult<()> {
        self.scripts
            .outbox_retry
            .key(self.keys.outbox_retries())
            .key(self.keys.outbox_attempts())
            .key(self.keys.outbox())
            .arg(GROUP)
            .arg(stream_id)
            .arg(delay.as_millis() as u64)
            .arg(attempts)
            .invoke_async::<i64>(&mut self.conn())
            .await
            .map(|_| ())
    }

    /// Done with an entry (delivered, given up or undeliverable): acknowledged and deleted.
    pub async fn finish_event(&self, stream_id: &str) -> redis::RedisResult<()> {
        redis::pipe()
            .atomic()
            .cmd("XACK")
            .arg(self.keys.outbox())
            .arg(GROUP)
            .arg(stream_id)
            .ignore()
            .cmd("XDEL")
            .arg(self.keys.outbox())
            .arg(stream_id)
            .ignore()
            .cmd("ZREM")
            .arg(self.keys.outbox_retries())
            .arg(stream_id)
            .ignore()
            .cmd("HDEL")
            .arg(self.keys.outbox_attempts())
            .arg(stream_id)
            .ignore()
            .query_async::<()>(&mut self.conn())
            .await
    }

    /// The events URL of `tenant` that answered 410, if any.
    pub async fn disabled_events_url(&self, tenant: &str) -> redis::RedisResult<Option<String>> {
        redis::cmd("HGET")
            .arg(self.keys.outbox_disabled())
            .arg(tenant)
            .query_async(&mut self.conn())
            .await
    }

    /// Turns delivery to `url` off for `tenant` (a 410). Configuring another URL turns it on again.
    pub async fn disable_events(&self, tenant: &str, url: &str) -> redis::RedisResult<()> {
        redis::cmd("HSET")
            .arg(self.keys.outbox_disabled())
            .arg(tenant)
            .arg(url)
            .query_async::<i64>(&mut self.conn())
            .await
            .map(|_| ())
    }
}
