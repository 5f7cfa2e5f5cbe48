//! Verification records: create, read, and the guarded transition (one atomic script per event).

use std::collections::HashMap;

use super::{AUDIT_CAP, Store};
use crate::ids::VerificationId;
use crate::methods::DefaultMethod;
use crate::verification::transition::{Event, Transition};
use crate::verification::{FailureReason, Purpose, Status, Verification};

/// What a new verification stores.
pub struct NewVerification<'a> {
    pub id: &'a VerificationId,
    pub tenant: &'a str,
    pub user: &'a str,
    pub purpose: Purpose,
    pub phone_e164: &'a str,
    pub phone_type: &'a str,
    /// The method the call registers (registration) or dials (sign-in, password reset).
    pub method_id: &'a str,
    pub locale: &'a str,
    /// The provider account that places the call (its webhooks carry this name).
    pub provider: &'a str,
    /// The rate limits the call counts against (`Counted::encode`), for a later refund.
    pub counted: &'a str,
    pub ttl_secs: u64,
    pub retain_secs: u64,
    /// How long a fraud report during this call blocks the user (0 = no block).
    pub fraud_block_secs: u64,
    /// The default sign-in options the tenant policy enables (`Policy::enabled_options`): an
    /// approved registration keeps the user's default by them (stored for registrations only).
    pub default_options: &'a [DefaultMethod],
}

/// What `create_verification` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Created {
    /// Stored, holding the user's live slot: `(created_at, expires_at)`.
    Stored(i64, i64),
    /// Not stored: a fraud report blocks the user for this many more seconds (-1: no expiry).
    Blocked(i64),
    /// Not stored: the user already has this live verification.
    Live(String),
}

impl Store {
    /// Stores a new verification in `calling` unless the user is blocked or has a live one.
    /// Schedules no reconciliation check (a start uses [`Store::create_scheduled`]).
    pub async fn create_verification(
        &self,
        new: &NewVerification<'_>,
    ) -> redis::RedisResult<Created> {
        self.create(new, None).await
    }

    /// Stores a new verification as [`Store::create_verification`] does, with its first
    /// reconciliation check due `first_check_ms` later, so that a start that fails after storing
    /// — even by a timeout whose write lands later — is found by reconciliation, which releases a
    /// verification never dialled (`src/verification/undialled.rs`). A refused start (fraud
    /// block, live slot) leaves nothing scheduled.
    ///
    /// - A single Redis node (standalone or Sentinel: one keyspace): the create script schedules
    ///   the check itself, only when it creates. One round trip.
    /// - Redis Cluster: the index (`{recon}`) lives in another slot than the user's keys, and a
    ///   script touches one slot, so the check is scheduled by a round trip of its own *before*
    ///   the create (the order that keeps a stored verification findable), and unscheduled again
    ///   if the create refused. Two round trips (three on a refusal).
    pub async fn create_scheduled(
        &self,
        new: &NewVerification<'_>,
        first_check_ms: u64,
    ) -> redis::RedisResult<Created> {
        if !self.is_cluster() {
            return self.create(new, Some(first_check_ms)).await;
        }
        self.schedule_reconcile(new.id, first_check_ms, false)
            .await?;
        let created = self.create(new, None).await?;
        if !matches!(created, Created::Stored(..))
            && let Err(e) = self.unschedule_reconcile(new.id.as_str()).await
        {
            tracing::debug!(verification = %new.id, error = %e, "refused start still scheduled");
        }
        Ok(created)
    }

    /// `create_verification.lua`; with `first_check_ms`, it also schedules the first
    /// reconciliation check (a single node only: the index is in another slot).
    async fn create(
        &self,
        new: &NewVerification<'_>,
        first_check_ms: Option<u64>,
    ) -> redis::RedisResult<Created> {
        let masked = crate::phone::mask_e164(new.phone_e164);
        let block_secs = new.fraud_block_secs.to_string();
        let default_options = match new.purpose {
            Purpose::Registration => Some(DefaultMethod::mask(new.default_options)),
            _ => None,
        };
        let mut invocation = self.scripts.create_verification.prepare_invoke();
        invocation
            .key(self.keys.verification(new.id))
            .key(self.keys.live(new.id.user_tag()))
            .key(self.keys.blocked(new.id.user_tag()));
        if first_check_ms.is_some() {
            invocation.key(self.keys.reconcile_due());
        }
        let (what, a, b): (String, String, String) = invocation
            .arg(new.ttl_secs)
            .arg(new.retain_secs)
            .arg(first_check_ms.map_or_else(String::new, |ms| ms.to_string()))
            .arg(&[
                ("tenant", new.tenant),
                ("user", new.user),
                ("purpose", new.purpose.as_str()),
                ("phone", new.phone_e164),
                ("phone_masked", masked.as_str()),
                ("phone_type", new.phone_type),
                ("method_id", new.method_id),
                ("locale", new.locale),
                ("provider", new.provider),
                ("counted", new.counted),
                ("fraud_block_secs", block_secs.as_str()),
            ])
            .arg(default_options.as_deref().map(|o| ("default_options", o)))
            .invoke_async(&mut self.conn())
            .await?;
        let num = |s: &str| s.parse::<i64>().unwrap_or_default();
        Ok(match what.as_str() {
            "blocked" => Created::Blocked(num(&a)),
            "live" => Created::Live(a),
            _ => Created::Stored(num(&a), num(&b)),
        })
    }

    /// Drops a verification refused before anything was dialled, releasing the user's live slot.
    pub async fn discard_verification(&self, id: &VerificationId) -> redis::RedisResult<()> {
        self.scripts
            .discard_verification
            .key(self.keys.verification(id))
            .key(self.keys.live(id.user_tag()))
            .arg(id.as_str())
            .invoke_async::<i64>(&mut self.conn())
            .await
            .map(|_| ())
    }

    /// Records how long the call waited for a pacing slot (shown as `queued_ms`).
    /// Failover: the account now placing the call (the view's `provider`).
    pub async fn set_provider(&self, id: &VerificationId, account: &str) -> redis::RedisResult<()> {
        redis::cmd("HSET")
            .arg(self.keys.verification(id))
            .arg("provider")
            .arg(account)
            .query_async::<i64>(&mut self.conn())
            .await
            .map(|_| ())
    }

    pub async fn set_queued(&self, id: &VerificationId, queued_ms: u64) -> redis::RedisResult<()> {
        redis::cmd("HSET")
            .arg(self.keys.verification(id))
            .arg("queued_ms")
            .arg(queued_ms)
            .query_async::<i64>(&mut self.conn())
            .await
            .map(|_| ())
    }

    pub async fn verification(
        &self,
        id: &VerificationId,
    ) -> redis::RedisResult<Option<Verification>> {
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.keys.verification(id))
            .query_async(&mut self.conn())
            .await?;
        Ok(from_fields(id, fields))
    }

    /// Applies one of our own events (placing the call, reconciliation) in one round trip (see
    /// `scripts/transition.lua`).
    pub async fn transition(
        &self,
        id: &VerificationId,
        call_sid: &str,
        event: Event<'_>,
    ) -> redis::RedisResult<Transition> {
        self.transition_from(id, "", call_sid, event).await
    }

    /// Applies one provider webhook from `account` (the account its URL names and whose
    /// credentials its signature was checked with) in one round trip: a webhook from any
    /// account but the one that placed the call is refused (`Outcome::Foreign`) before its
    /// call id can bind.
    pub async fn transition_from(
        &self,
        id: &VerificationId,
        account: &str,
        call_sid: &str,
        event: Event<'_>,
    ) -> redis::RedisResult<Transition> {
        let mut invocation = self.scripts.transition.prepare_invoke();
        invocation
            .key(self.keys.verification(id))
            .key(self.keys.methods(id.user_tag()))
            .key(self.keys.audit(id.user_tag()))
            .key(self.keys.live(id.user_tag()))
            .key(self.keys.blocked(id.user_tag()));
        invocation
            .arg(event.name())
            .arg(call_sid)
            .arg(if self.sharded_changes() {
                "SPUBLISH"
            } else {
                "PUBLISH"
            })
            .arg(self.keys.change_channel(id))
            .arg(AUDIT_CAP)
            .arg(account);
        match event {
            Event::Uncertain { detail } => {
                invocation.arg(detail);
            }
            Event::Refused { reason, detail } => {
                invocation.arg(reason.as_str()).arg(detail);
            }
            Event::Gather {
                digits,
                step,
                max_prompts,
                prompt,
            } => {
                invocation.arg(digits).arg(step.as_str()).arg(max_prompts);
                match prompt {
                    Some(n) => invocation.arg(n),
                    None => invocation.arg(""),
                };
            }
            Event::Status { progress, grace_ms } => {
                let (status, reason) = progress
                    .ending()
                    .map_or(("", ""), |(s, r)| (s.as_str(), r.as_str()));
                invocation
                    .arg(progress.as_str())
                    .arg(status)
                    .arg(reason)
                    .arg(grace_ms);
            }
            Event::Placed | Event::Voice | Event::Machine | Event::Settle | Event::Cancel => {}
        }
        let reply: String = invocation.invoke_async(&mut self.conn()).await?;
        let transition = Transition::decode(&reply).ok_or_else(|| {
            redis::RedisError::from((
                redis::ErrorKind::Parse,
                "unexpected transition reply",
                reply.clone(),
            ))
        })?;
        // Every answer about an ended verification waits, not only the one that ended it: a
        // provider's retry of an approval whose first `WAIT` failed finds it already ended, and
        // must not be told "complete" before the replicas have it either.
        let ended = transition.status.is_some_and(|s| s.is_terminal());
        if ended && self.wait_replicas > 0 {
            self.await_replicas(&self.keys.verification(id)).await?;
        }
        Ok(transition)
    }

    /// `redis.wait_replicas`: holds a verification's ending (an approval above all) until that
    /// many replicas of its master have it, for up to a quarter of `redis.timeout_ms`. Fewer
    /// acknowledgements (a replica is down or slow) are logged and the ending stands:
    /// availability over the replication window. A failed `WAIT` (the node was lost) is an
    /// error: the caller is not told of an ending that may not survive.
    ///
    /// `WAIT` blocks the connection it is sent on, which every request to that node shares (it
    /// must follow the write on the same connection), so it waits a quarter of the timeout, not
    /// the whole of it (which would time out the `WAIT` and the requests queued behind it), and
    /// is not sent to a master known to have too few replicas (`replicas.rs`).
    async fn await_replicas(&self, key: &str) -> redis::RedisResult<()> {
        let wanted = self.wait_replicas;
        let master = match self.shard_of(key).await? {
            Some(shard) if shard.replicas < wanted as usize => {
                if self.replicas.bench(&shard.master) {
                    tracing::warn!(
                        master = %shard.master,
                        replicas = shard.replicas,
                        wanted,
                        "redis.wait_replicas not met: endings on this master do not wait for now"
                    );
                }
                return Ok(());
            }
            Some(shard) => shard.master,
            None => "the master".to_owned(),
        };
        if self.replicas.is_benched(&master) {
            tracing::debug!(%master, "redis.wait_replicas skipped: too few replicas lately");
            return Ok(());
        }
        let acknowledged = self
            .conn()
            .wait_for_replicas(key, wanted, wait_timeout(self.timeout))
            .await
            .inspect_err(|e| {
                if e.is_timeout() {
                    self.replicas.bench(&master);
                }
            })?;
        if acknowledged < i64::from(wanted) && self.replicas.bench(&master) {
            tracing::warn!(
                %master,
                acknowledged,
                wanted,
                "fewer replicas than redis.wait_replicas confirmed a verification's ending"
            );
        }
        Ok(())
    }

    /// On a cluster, the shard holding `key` (from a `CLUSTER SLOTS` at most a second old).
    async fn shard_of(&self, key: &str) -> redis::RedisResult<Option<super::replicas::Shard>> {
        let shards = match self.replicas.fresh_shards() {
            Some(shards) => shards,
            None => {
                let Some(reply) = self.conn().cluster_slots().await? else {
                    return Ok(None); // not a cluster
                };
                let Some(shards) = super::replicas::parse_cluster_slots(&reply) else {
                    return Ok(None);
                };
                self.replicas.store_shards(shards)
            }
        };
        Ok(super::replicas::shard_of(&shards, key).cloned())
    }
}

/// How long `WAIT` may hold the node's shared connection: a quarter of `redis.timeout_ms`
/// (at least 1 ms: `WAIT … 0` would wait for ever).
fn wait_timeout(timeout: std::time::Duration) -> std::time::Duration {
    (timeout / 4).max(std::time::Duration::from_millis(1))
}

fn from_fields(id: &VerificationId, mut f: HashMap<String, String>) -> Option<Verification> {
    let mut take = |k: &str| f.remove(k).unwrap_or_default();
    let status = Status::parse(&take("status"))?;
    let purpose = Purpose::parse(&take("purpose"))?;
    let num = |s: String| s.parse::<i64>().unwrap_or_default();
    let non_empty = |s: String| (!s.is_empty()).then_some(s);
    Some(Verification {
        id: id.as_str().to_owned(),
        tenant: take("tenant"),
        user: take("user"),
        purpose,
        status,
        reason: FailureReason::parse(&take("reason")),
        provider_error: non_empty(take("provider_error")),
        phone_e164: take("phone"),
        phone_type: take("phone_type"),
        locale: take("locale"),
        provider: take("provider"),
        method_id: non_empty(take("method_id")),
        created_at: num(take("created_at")),
        expires_at: num(take("expires_at")),
        updated_at: num(take("updated_at")),
        queued_ms: take("queued_ms").parse().ok().filter(|ms| *ms > 0),
    })
}
