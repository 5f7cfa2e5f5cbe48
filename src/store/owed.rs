//! The outbox mark of an ended verification: `announce`, set by `transition.lua` in the same
//! atomic step as the end, cleared once its portal events are queued (`src/verification/end.rs`).
//! Whoever finds it still set — reconciliation, a webhook whose transition reply was lost —
//! announces the end.

use super::Store;
use crate::ids::VerificationId;

impl Store {
    /// The end of `id` was announced: its events are no longer owed.
    pub async fn clear_announce(&self, id: &VerificationId) -> redis::RedisResult<()> {
        redis::cmd("HDEL")
            .arg(self.keys.verification(id))
            .arg("announce")
            .query_async::<i64>(&mut self.conn())
            .await
            .map(|_| ())
    }
}
