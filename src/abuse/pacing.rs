//! Outbound pacing: the provider account's calls per second, shared by every instance through
//! one Redis slot. A burst queues for a slot (at most `provider.max_queue_ms`) instead of failing.
//! The reservation shares one round trip with the account's circuit-breaker check
//! (`Store::dial_gate`) and, on a single Redis node, with the start's dialling mark when no wait
//! comes first (`Store::dial_gate_marking`).

use std::time::Duration;

use crate::error::ApiError;
use crate::store::Store;
use crate::store::undialled::DialMark;

/// What the account's gate says about one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Dial after this wait (zero: at once). `circuit` as `store::limits::Gate::circuit`.
    /// `marked`: the dialling mark set with the gate (`Some(true)`), refused (`Some(false)`: do
    /// not dial), or not tried (`None`: mark with `Store::mark_dialling` after the wait).
    Dial {
        wait: Duration,
        circuit: i64,
        marked: Option<bool>,
    },
    /// The circuit breaker is open: skip the account.
    CircuitOpen,
    /// The queue is longer than allowed: the call fails as `provider_throttled`.
    QueueFull,
}

/// Asks the account's circuit breaker (unless `circuit_cooldown_ms` is `None`: off) and reserves
/// its next call slot (unless `calls_per_second` is 0: no pacing), in one Redis round trip —
/// none when both are off. On a single Redis node the same round trip sets `mark` when the call
/// may go at once (see `Store::dial_gate_marking`).
pub async fn admit(
    store: &Store,
    account: &str,
    circuit_cooldown_ms: Option<u64>,
    calls_per_second: f64,
    max_queue_ms: u64,
    mark: &DialMark<'_>,
) -> Result<Admission, ApiError> {
    let pacing = (calls_per_second > 0.0).then(|| {
        let interval_us = (1_000_000.0 / calls_per_second).ceil() as u64;
        (interval_us, max_queue_ms * 1000)
    });
    if circuit_cooldown_ms.is_none() && pacing.is_none() {
        return Ok(Admission::Dial {
            wait: Duration::ZERO,
            circuit: 1,
            marked: None,
        });
    }
    let (gate, marked) = store
        .dial_gate_marking(account, circuit_cooldown_ms, pacing, mark)
        .await?;
    Ok(match (gate.circuit, gate.wait_us) {
        (0, _) => Admission::CircuitOpen,
        (_, None) => Admission::QueueFull,
        (circuit, Some(us)) => Admission::Dial {
            wait: Duration::from_micros(us),
            circuit,
            marked,
        },
    })
}
