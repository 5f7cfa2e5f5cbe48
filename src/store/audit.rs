//! A user's audit stream: read newest first; written by the Lua scripts (atomically with what
//! they record) and by [`Store::append_audit`] for events no script writes (External MFA
//! sign-ins).

use std::collections::HashMap;

use redis::streams::StreamRangeReply;

use super::{AUDIT_CAP, Store};

/// One audit entry as stored: the stream id's millisecond time and its fields.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub at_ms: i64,
    pub fields: HashMap<String, String>,
}

impl Store {
    /// The user's newest `limit` audit entries, newest first.
    pub async fn audit(&self, user_tag: &str, limit: usize) -> redis::RedisResult<Vec<AuditEntry>> {
        let reply: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(self.keys.audit(user_tag))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut self.conn())
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .map(|entry| {
                let at_ms = entry
                    .id
                    .split('-')
                    .next()
                    .and_then(|ms| ms.parse().ok())
                    .unwrap_or_default();
                let fields = entry
                    .map
                    .iter()
                    .filter_map(|(k, v)| {
                        redis::from_redis_value_ref::<String>(v)
                            .ok()
                            .map(|v| (k.clone(), v))
                    })
                    .collect();
                AuditEntry { at_ms, fields }
            })
            .collect())
    }

    /// Appends one entry (`fields`: name, value) to the user's capped audit stream.
    pub async fn append_audit(
        &self,
        user_tag: &str,
        fields: &[(&str, &str)],
    ) -> redis::RedisResult<()> {
        redis::cmd("XADD")
            .arg(self.keys.audit(user_tag))
            .arg("MAXLEN")
            .arg("~")
            .arg(AUDIT_CAP)
            .arg("*")
            .arg(fields)
            .query_async::<String>(&mut self.conn())
            .await
            .map(|_| ())
    }
}
