//! `redis.wait_replicas` bookkeeping: which master holds a key, how many live replicas it has,
//! and which masters recently answered `WAIT` short.
//!
//! `WAIT` blocks the connection it runs on, and every request to that node shares it, so a `WAIT`
//! that cannot be met (a shard with fewer replicas than asked: just after a failover its promoted
//! master has none; a replica still in its first sync) is worse than useless. On a cluster the
//! shards' replica counts come from `CLUSTER SLOTS` (failed replicas are not listed), read at most
//! once a second; a shard that has too few is not asked. A `WAIT` that comes back short anyway
//! (a lagging replica) benches that master for [`SHORT_BACKOFF`]. Each master is judged on its
//! own: one degraded shard does not take the guarantee away from the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::Value;

/// How long a master whose `WAIT` came back short is not asked again.
pub(super) const SHORT_BACKOFF: Duration = Duration::from_secs(5);

/// How old the shard list may be.
const SHARDS_MAX_AGE: Duration = Duration::from_secs(1);

/// One shard as `CLUSTER SLOTS` lists it: a slot range, its master and its live replicas.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Shard {
    pub first: u16,
    pub last: u16,
    pub master: String,
    pub replicas: usize,
}

#[derive(Default)]
pub(super) struct ReplicaWatch {
    /// Per master address ("the master" on a standalone or sentinel deployment): not asked
    /// until then.
    short_until: Mutex<HashMap<String, Instant>>,
    shards: Mutex<Option<(Instant, Arc<Vec<Shard>>)>>,
}

impl ReplicaWatch {
    /// Whether `master` answered short within the last [`SHORT_BACKOFF`].
    pub fn is_benched(&self, master: &str) -> bool {
        self.short_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(master)
            .is_some_and(|until| Instant::now() < *until)
    }

    /// Benches `master`; true when it was not benched already (so the caller logs once).
    pub fn bench(&self, master: &str) -> bool {
        let now = Instant::now();
        let mut map = self.short_until.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, until| *until > now);
        map.insert(master.to_owned(), now + SHORT_BACKOFF).is_none()
    }

    /// The cached shard list if it is fresh enough.
    pub fn fresh_shards(&self) -> Option<Arc<Vec<Shard>>> {
        let cached = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        cached
            .as_ref()
            .filter(|(at, _)| at.elapsed() < SHARDS_MAX_AGE)
            .map(|(_, shards)| shards.clone())
    }

    pub fn store_shards(&self, shards: Vec<Shard>) -> Arc<Vec<Shard>> {
        let shards = Arc::new(shards);
        *self.shards.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), shards.clone()));
        shards
    }
}

/// The shard holding `key`'s slot.
pub(super) fn shard_of<'a>(shards: &'a [Shard], key: &str) -> Option<&'a Shard> {
    let slot = key_slot(key.as_bytes());
    shards.iter().find(|s| (s.first..=s.last).contains(&slot))
}

/// A key's cluster slot: CRC16 (XMODEM) of its hash tag (the text between the first `{` and the
/// next `}`, when not empty), else of the whole key, modulo 16384 (Redis Cluster specification).
pub(super) fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|b| *b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|b| *b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16::State::<crc16::XMODEM>::calculate(tagged.unwrap_or(key)) % 16384
}

/// `CLUSTER SLOTS`' reply: `[[first, last, [host, port, id, …], [replica …]…]…]`.
pub(super) fn parse_cluster_slots(reply: &Value) -> Option<Vec<Shard>> {
    let Value::Array(ranges) = reply else {
        return None;
    };
    ranges
        .iter()
        .map(|range| {
            let Value::Array(fields) = range else {
                return None;
            };
            let int = |v: &Value| match v {
                Value::Int(n) => u16::try_from(*n).ok(),
                _ => None,
            };
            let Value::Array(master) = fields.get(2)? else {
                return None;
            };
            let text = |v: &Value| match v {
                Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
                Value::SimpleString(s) => Some(s.clone()),
                _ => None,
            };
            Some(Shard {
                first: int(fields.first()?)?,
                last: int(fields.get(1)?)?,
                master: format!("{}:{}", text(master.first()?)?, int(master.get(1)?)?),
                replicas: fields.len().saturating_sub(3),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_slots_match_redis() {
        // Values from `CLUSTER KEYSLOT` on Redis 7.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_eq!(key_slot(b"foo{}{bar}"), 8363);
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
    }

    #[test]
    fn cluster_slots_are_read_with_their_replica_counts() {
        let node = |host: &str, port: i64| {
            Value::Array(vec![
                Value::BulkString(host.into()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("127.0.0.1", 7000),
                node("127.0.0.1", 7003),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(16383),
                node("127.0.0.1", 7001),
            ]),
        ]);
        let shards = parse_cluster_slots(&reply).unwrap();
        assert_eq!(shards[0].master, "127.0.0.1:7000");
        assert_eq!(shards[0].replicas, 1);
        assert_eq!(shards[1].replicas, 0);
        assert_eq!(shard_of(&shards, "foo").unwrap().master, "127.0.0.1:7001");
        assert_eq!(shard_of(&shards, "bar").unwrap().master, "127.0.0.1:7000");
        assert!(parse_cluster_slots(&Value::Nil).is_none());
    }

    #[test]
    fn a_benched_master_is_not_asked_until_the_backoff_ends() {
        let watch = ReplicaWatch::default();
        assert!(!watch.is_benched("a:1"));
        assert!(watch.bench("a:1"), "first bench is reported");
        assert!(!watch.bench("a:1"), "benched again: not reported twice");
        assert!(watch.is_benched("a:1"));
        assert!(!watch.is_benched("b:2"), "other masters are unaffected");
    }
}
