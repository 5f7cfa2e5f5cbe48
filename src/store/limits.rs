//! Abuse protection in Redis: sliding-window rate limits (one tenant hash slot), the provider
//! account's call pacing, and lifting a user's fraud block. Every rule takes its time from Redis
//! `TIME`, so all instances agree.

use super::{AUDIT_CAP, Store};
use crate::ids::VerificationId;

/// One limit to check: its key parts and bounds.
#[derive(Clone, Debug)]
pub struct RateCheck<'a> {
    /// The limit's name (`number_spacing`, `number`, `user`, `tenant`, `ip`).
    pub name: &'a str,
    /// Whose calls it counts (a number, a user id, an IP; `-` for the tenant itself).
    pub subject: &'a str,
    pub max: u32,
    pub window_ms: u64,
}

/// A rate limit that refused a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimited {
    /// Index into the checks given to [`Store::admit_call`].
    pub index: usize,
    /// How long until that limit (and every other one hit) admits a call.
    pub retry_after_ms: u64,
}

impl Store {
    /// Checks every limit and, only if all pass, counts the call `id` in each (one atomic script).
    pub async fn admit_call(
        &self,
        tenant: &str,
        id: &VerificationId,
        checks: &[RateCheck<'_>],
    ) -> redis::RedisResult<Result<(), RateLimited>> {
        let mut invocation = self.scripts.rate_limit.prepare_invoke();
        invocation.arg(id.as_str());
        for check in checks {
            invocation
                .key(self.keys.rate(tenant, check.name, check.subject))
                .arg(check.max)
                .arg(check.window_ms);
        }
        let (index, wait): (usize, i64) = invocation.invoke_async(&mut self.conn()).await?;
        Ok(match index {
            0 => Ok(()),
            i => Err(RateLimited {
                index: i - 1,
                retry_after_ms: wait.max(0) as u64,
            }),
        })
    }

    /// Un-counts a call that was never dialled (the provider refused it, or it was throttled).
    pub async fn refund_call(
        &self,
        tenant: &str,
        id: &VerificationId,
        checks: &[RateCheck<'_>],
    ) -> redis::RedisResult<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for check in checks {
            pipe.cmd("ZREM")
                .arg(self.keys.rate(tenant, check.name, check.subject))
                .arg(id.as_str())
                .ignore();
        }
        pipe.query_async::<()>(&mut self.conn()).await
    }

    /// Reserves the next outbound-call slot: `Some(µs to wait)`, or `None` when the queue is
    /// longer than `max_wait_us` (nothing reserved).
    pub async fn reserve_call_slot(
        &self,
        account: &str,
        interval_us: u64,
        max_wait_us: u64,
    ) -> redis::RedisResult<Option<u64>> {
        let wait: i64 = self
            .scripts
            .pace
            .key(self.keys.pacing(account))
            .arg(interval_us)
            .arg(max_wait_us)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(u64::try_from(wait).ok())
    }

    /// Lifts a user's fraud block (and audits it); `true` if there was one.
    pub async fn unblock(&self, user_tag: &str) -> redis::RedisResult<bool> {
        let (removed,): (i64,) = redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(self.keys.blocked(user_tag))
            .cmd("XADD")
            .arg(self.keys.audit(user_tag))
            .arg("MAXLEN")
            .arg("~")
            .arg(AUDIT_CAP)
            .arg("*")
            .arg(&[("action", "user.unblocked"), ("outcome", "unblocked")])
            .ignore()
            .query_async(&mut self.conn())
            .await?;
        Ok(removed == 1)
    }

    /// The account's circuit breaker (see `scripts/circuit.lua`): `check` answers whether to
    /// call (0 open, 1 closed, 2 the probe); `fail` / `ok` report the outcome.
    pub async fn circuit(
        &self,
        account: &str,
        op: CircuitOp,
        failures: u32,
        cooldown_ms: u64,
    ) -> redis::RedisResult<i64> {
        self.scripts
            .circuit
            .key(self.keys.circuit(account))
            .arg(match op {
                CircuitOp::Check => "check",
                CircuitOp::Fail => "fail",
                CircuitOp::Ok => "ok",
            })
            .arg(failures.max(1))
            .arg(cooldown_ms)
            .invoke_async(&mut self.conn())
            .await
    }
}

/// What a circuit-breaker call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitOp {
    Check,
    Fail,
    Ok,
}
