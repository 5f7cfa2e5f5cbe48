//! Outbound pacing: the provider account's calls per second, shared by every instance through
//! one Redis slot. A burst queues for a slot (at most `provider.max_queue_ms`) instead of failing.

use std::time::Duration;

use crate::error::ApiError;
use crate::store::Store;

/// How long to wait before dialling: `Some(wait)` (zero when a slot is free now), or `None` when
/// the queue is longer than allowed (the call is then failed as `provider_throttled`).
pub async fn reserve_slot(
    store: &Store,
    account: &str,
    calls_per_second: f64,
    max_queue_ms: u64,
) -> Result<Option<Duration>, ApiError> {
    if calls_per_second <= 0.0 {
        return Ok(Some(Duration::ZERO));
    }
    let interval_us = (1_000_000.0 / calls_per_second).ceil() as u64;
    let wait = store
        .reserve_call_slot(account, interval_us, max_queue_ms * 1000)
        .await?;
    Ok(wait.map(Duration::from_micros))
}
