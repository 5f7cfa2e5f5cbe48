//! Outbound pacing: the provider account's calls per second, shared by every instance through
//! one Redis slot. A burst queues for a slot (at most `provider.max_queue_ms`) instead of failing.
//! The reservation shares one round trip with the account's circuit-breaker check
//! (`Store::dial_gate`).

use std::time::Duration;

use crate::error::ApiError;
use crate::store::Store;

/// What the account's gate says about one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Dial after this wait (zero: at once). `circuit` as `store::limits::Gate::circuit`.
    Dial { wait: Duration, circuit: i64 },
    /// The circuit breaker is open: skip the account.
    CircuitOpen,
    /// The queue is longer than allowed: the call fails as `provider_throttled`.
    QueueFull,
}

/// Asks the account's circuit breaker (unless `circuit_cooldown_ms` is `None`: off) and reserves
/// its next call slot (unless `calls_per_second` is 0: no pacing), in one Redis round trip —
/// none when both are off.
pub async fn admit(
    store: &Store,
    account: &str,
    circuit_cooldown_ms: Option<u64>,
    calls_per_second: f64,
    max_queue_ms: u64,
) -> Result<Admission, ApiError> {
    let pacing = (calls_per_second > 0.0).then(|| {
        let interval_us = (1_000_000.0 / calls_per_second).ceil() as u64;
        (interval_us, max_queue_ms * 1000)
    });
    if circuit_cooldown_ms.is_none() && pacing.is_none() {
        return Ok(Admission::Dial {
            wait: Duration::ZERO,
            circuit: 1,
        });
    }
    let gate = store
        .dial_gate(account, circuit_cooldown_ms, pacing)
        .await?;
    Ok(match (gate.circuit, gate.wait_us) {
        (0, _) => Admission::CircuitOpen,
        (_, None) => Admission::QueueFull,
        (circuit, Some(us)) => Admission::Dial {
            wait: Duration::from_micros(us),
            circuit,
        },
    })
}
