//! When a transition's answer is unknown — Redis did not answer in time, so the script may have
//! run, may still run, or never will — the caller is not told a guess: the same transition is
//! asked again until Redis answers or the request's time is up. That is safe because the
//! transition is idempotent: a terminal state never changes (a repeated `#` after an approval
//! hears the approval), a prompt is counted once per `n`, a call id binds once, and the script
//! runs atomically whichever copy runs first. The answer then says what happened. An end whose
//! own reply was lost is announced here (its events are owed, `announce` in `transition.lua`),
//! and otherwise by reconciliation.

use std::time::{Duration, Instant};

use super::CallFlow;
use super::transition::{Event, Transition};
use crate::ids::VerificationId;

/// Pause between asking again after a failure that was immediate (a dropped connection).
const PAUSE: Duration = Duration::from_millis(100);

/// Whether a failure leaves a write's outcome unknown (it may have been applied).
fn unknown(e: &redis::RedisError) -> bool {
    e.is_timeout() || e.is_connection_dropped() || e.is_io_error() || e.is_connection_refusal()
}

impl CallFlow {
    /// Applies `event` from `account` (`""`: our own event) and, when the answer is unknown,
    /// asks again within [`super::flow::FlowSettings::answer_budget`] of `since`.
    pub async fn transition_settled(
        &self,
        id: &VerificationId,
        account: &str,
        call_id: &str,
        event: Event<'_>,
        since: Instant,
    ) -> redis::RedisResult<Transition> {
        let store = &self.store;
        let budget = self.settings.answer_budget;
        let mut answer = store.transition_from(id, account, call_id, event).await;
        let mut asked_again = false;
        while let Err(e) = &answer {
            if !unknown(e) || since.elapsed() + store.command_timeout() + PAUSE > budget {
                break;
            }
            crate::ops::metrics::redis_error("webhook", e);
            tracing::warn!(verification = %id, error = %e, "transition's answer unknown: asking again");
            asked_again = true;
            tokio::time::sleep(PAUSE).await;
            answer = store.transition_from(id, account, call_id, event).await;
        }
        if asked_again
            && let Ok(t) = &answer
            && !t.ended
            && t.status.is_some_and(|s| s.is_terminal())
        {
            // An earlier copy ended it and its reply was lost: its events are owed.
            let (flow, id) = (self.clone(), id.clone());
            tokio::spawn(async move {
                if let Err(e) = flow.announce_owed(&id).await {
                    tracing::warn!(verification = %id, error = %e, "owed end not announced; reconciliation will");
                }
            });
        }
        answer
    }
}
