//! The event outbox: one stream every instance appends to and the delivery worker reads.
//! It has its own hash slot (`{outbox}`), apart from the users' slots.

use super::Store;

/// Stream cap (approximate): the outbox is a queue, not an archive.
const OUTBOX_CAP: u32 = 100_000;

impl Store {
    /// Appends one event (its id, tenant and exact JSON body) to the outbox.
    pub async fn enqueue_event(
        &self,
        id: &str,
        tenant: &str,
        body: &str,
    ) -> redis::RedisResult<()> {
        redis::cmd("XADD")
            .arg(self.keys.outbox())
            .arg("MAXLEN")
            .arg("~")
            .arg(OUTBOX_CAP)
            .arg("*")
            .arg(&[("id", id), ("tenant", tenant), ("body", body)])
            .query_async::<String>(&mut self.conn())
            .await
            .map(|_| ())
    }
}
