//! Abuse protection in Redis: sliding-window rate limits (one tenant hash slot), the provider
//! account's call pacing, and lifting a user's fraud block. Every rule takes its time from Redis
//! `TIME`, so all instances agree.

use super::undialled::DialMark;
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

    /// The provider account's gate before one call, in one round trip (`scripts/dial_gate.lua`;
    /// the circuit and the pacing slot share the account's hash tag): the circuit breaker's
    /// check when `circuit_cooldown_ms` is given, then — unless the circuit is open — the next
    /// outbound-call slot when `pacing` (µs between calls, longest wait in µs) is given.
    pub async fn dial_gate(
        &self,
        account: &str,
        circuit_cooldown_ms: Option<u64>,
        pacing: Option<(u64, u64)>,
    ) -> redis::RedisResult<Gate> {
        let mut invocation = self.scripts.dial_gate.prepare_invoke();
        self.gate_args(&mut invocation, account, circuit_cooldown_ms, pacing);
        let (circuit, wait): (i64, i64) = invocation.invoke_async(&mut self.conn()).await?;
        Ok(Gate {
            circuit,
            wait_us: u64::try_from(wait).ok(),
        })
    }

    /// The provider account's gate as [`Store::dial_gate`] and, when it lets the call through
    /// at once, the start's dialling mark as [`Store::mark_dialling`]: in one script on a single
    /// Redis node (`scripts/dial_gate_mark.lua`). The mark is `Some(true)` when set, `Some(false)`
    /// when refused (the start must not dial), and `None` when it was not tried: the gate is
    /// closed, a pacing wait comes first (the mark must follow it), or the store is a Redis
    /// Cluster (the account's keys and the verification live in different slots, and a script
    /// touches one) — then the caller marks with [`Store::mark_dialling`] when it may dial.
    pub async fn dial_gate_marking(
        &self,
        account: &str,
        circuit_cooldown_ms: Option<u64>,
        pacing: Option<(u64, u64)>,
        mark: &DialMark<'_>,
    ) -> redis::RedisResult<(Gate, Option<bool>)> {
        if self.is_cluster() {
            let gate = self.dial_gate(account, circuit_cooldown_ms, pacing).await?;
            return Ok((gate, None));
        }
        let mut invocation = self.scripts.dial_gate_mark.prepare_invoke();
        self.gate_args(&mut invocation, account, circuit_cooldown_ms, pacing);
        invocation
            .key(self.keys.verification(mark.id))
            .arg(mark.budget_ms)
            .arg(mark.deadline_ms);
        let (circuit, wait, marked): (i64, i64, i64) =
            invocation.invoke_async(&mut self.conn()).await?;
        let gate = Gate {
            circuit,
            wait_us: u64::try_from(wait).ok(),
        };
        Ok((gate, (marked >= 0).then_some(marked == 1)))
    }

    /// The gate's keys and arguments (`scripts/dial_gate.lua`), first in either script.
    fn gate_args(
        &self,
        invocation: &mut redis::ScriptInvocation<'_>,
        account: &str,
        circuit_cooldown_ms: Option<u64>,
        pacing: Option<(u64, u64)>,
    ) {
        invocation
            .key(self.keys.circuit(account))
            .key(self.keys.pacing(account));
        match circuit_cooldown_ms {
            Some(ms) => invocation.arg(ms),
            None => invocation.arg(""),
        };
        match pacing {
            Some((interval_us, max_wait_us)) => invocation.arg(interval_us).arg(max_wait_us),
            None => invocation.arg("").arg(""),
        };
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

    /// Reports a call's outcome to the account's circuit breaker (see `scripts/circuit.lua`;
    /// the check before the call is part of [`Store::dial_gate`]).
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
                CircuitOp::Fail => "fail",
                CircuitOp::Ok => "ok",
            })
            .arg(failures.max(1))
            .arg(cooldown_ms)
            .invoke_async(&mut self.conn())
            .await
    }
}

/// What a call's outcome tells the circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitOp {
    Fail,
    Ok,
}

/// What [`Store::dial_gate`] answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// 0 open (skip the account), 1 closed and clean (a success need not report), 2 half-open
    /// (this call is the one probe), 3 closed with failures counted (report a success).
    pub circuit: i64,
    /// µs to wait before dialling (0: at once); `None` when the queue is longer than allowed
    /// (no slot reserved) or the circuit is open.
    pub wait_us: Option<u64>,
}
