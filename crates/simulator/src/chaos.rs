//! Chaos: the simulator behaving like a real, disorderly phone network — per call (a
//! [`Behaviour`](super::Behaviour)'s `chaos`) or for a whole run
//! ([`Simulator::set_chaos`](super::Simulator::set_chaos)).
//!
//! What real Twilio does that an orderly harness does not (docs/PROVIDERS.md): status callbacks
//! are sent concurrently and without ordering guarantees; a webhook may be delivered twice;
//! a failed webhook is retried only as its URL's connection overrides (`#rc=…`) say; a final
//! callback can be lost; a callee presses keys while the next document is still being fetched;
//! the REST API throttles (20429), or times out or fails with a 5xx after it placed the call.

use rand::RngExt;

/// What the Calls API does with a create request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ApiChaos {
    /// Answers like Twilio on a good day.
    #[default]
    Orderly,
    /// The first request for this number is answered 429 / 20429 and not processed.
    ThrottleOnce,
    /// Places the call, then answers only after `stall_ms` (past the client's deadline).
    TimeoutAfterPlacing { stall_ms: u64 },
    /// Places the call, then answers 500.
    ErrorAfterPlacing,
}

/// The disorder one call meets.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Chaos {
    /// Status callbacks are sent at once, each from its own task, in any order.
    pub unordered_callbacks: bool,
    /// Chance (0..=1) that a webhook is delivered twice, concurrently.
    pub duplicate: f64,
    /// Retries of a webhook that failed (5xx or no answer) when its URL carries no `#rc=`.
    pub retries: u32,
    /// The final (`completed`) status callback is never sent.
    pub drop_final: bool,
    /// The callee presses its keys while the next document is fetched (at once when a gather
    /// starts, before any prompt is heard).
    pub keys_during_fetch: bool,
    pub api: ApiChaos,
}

impl Chaos {
    /// Everything at once, except what the Calls API does.
    pub fn all() -> Self {
        Self {
            unordered_callbacks: true,
            duplicate: 0.5,
            retries: 1,
            drop_final: true,
            keys_during_fetch: true,
            api: ApiChaos::Orderly,
        }
    }

    /// A random mix (for soak tests); `stall_ms` is how long a timed-out create stalls.
    pub fn random(stall_ms: u64) -> Self {
        let mut rng = rand::rng();
        let api = match rng.random_range(0..10) {
            0 => ApiChaos::ThrottleOnce,
            1 => ApiChaos::TimeoutAfterPlacing { stall_ms },
            2 => ApiChaos::ErrorAfterPlacing,
            _ => ApiChaos::Orderly,
        };
        Self {
            unordered_callbacks: rng.random_bool(0.7),
            duplicate: if rng.random_bool(0.5) { 0.3 } else { 0.0 },
            retries: rng.random_range(0..2),
            drop_final: rng.random_bool(0.2),
            keys_during_fetch: rng.random_bool(0.3),
            api,
        }
    }

    /// Whether this delivery is sent twice.
    pub fn twice(&self) -> bool {
        self.duplicate > 0.0 && rand::rng().random_bool(self.duplicate.min(1.0))
    }
}

/// The retry count of a webhook URL's connection overrides (`#rc=N`), if any.
pub fn override_retries(url: &url::Url) -> Option<u32> {
    url.fragment()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("rc="))
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_overrides_name_the_retry_count() {
        let url = url::Url::parse("https://x.test/a?b=1#ct=1000&rc=3").unwrap();
        assert_eq!(override_retries(&url), Some(3));
        assert_eq!(
            override_retries(&url::Url::parse("https://x.test/a").unwrap()),
            None
        );
    }
}
