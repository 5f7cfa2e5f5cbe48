//! Every call the simulator knows: its live status, transcript, and the hang-up request channel
//! between the Calls API and the task playing the call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;

use super::phone::Speech;
use super::transcript::{CallStatus, Entry, Transcript};

/// Finished calls beyond this many are forgotten, oldest first, so a long-running standalone
/// simulator does not grow without bound.
const MAX_FINISHED_CALLS: usize = 10_000;

pub struct CallSlot {
    /// Creation order, for listing calls oldest first.
    order: u64,
    pub created_at: OffsetDateTime,
    state: Mutex<CallState>,
    /// Flips to true once the transcript is complete.
    finished: watch::Sender<bool>,
    hangup: watch::Sender<bool>,
    /// Counts changes to the transcript (and to what is being spoken), for whoever watches the
    /// call as it happens (a virtual phone).
    changes: watch::Sender<u64>,
}

struct CallState {
    transcript: Transcript,
    answered_at: Option<OffsetDateTime>,
    ended_at: Option<OffsetDateTime>,
    /// What is being said right now (interactive calls only).
    speaking: Option<Speech>,
}

/// Wall-clock times for the Call resource.
pub struct Times {
    pub answered_at: Option<OffsetDateTime>,
    pub ended_at: Option<OffsetDateTime>,
}

impl CallSlot {
    fn state(&self) -> MutexGuard<'_, CallState> {
        // A panic while holding the lock cannot leave a transcript half-written in a way that
        // matters more than losing the call, so a poisoned lock is simply reused.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn record(&self, entry: Entry) {
        self.state().transcript.entries.push(entry);
        self.changed();
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub fn set_speaking(&self, speech: Option<Speech>) {
        self.state().speaking = speech;
        self.changed();
    }

    pub fn speaking(&self) -> Option<Speech> {
        self.state().speaking.clone()
    }

    /// A status the call went through (recorded) and now has.
    pub fn set_status(&self, status: CallStatus) {
        {
            let mut state = self.state();
            state.transcript.entries.push(Entry::Status { status });
            // The resource keeps saying `queued` until the phone rings, as Twilio's does.
            if status != CallStatus::Initiated {
                state.transcript.status = status;
            }
            let now = OffsetDateTime::now_utc();
            if status == CallStatus::InProgress {
                state.answered_at = Some(now);
            }
            if status.is_final() {
                state.ended_at = Some(now);
            }
        }
        self.changed();
    }

    /// The transcript is complete: wakes whoever waits for the call.
    pub fn finish(&self, duration_secs: u64) {
        self.state().transcript.duration_secs = Some(duration_secs);
        self.finished.send_replace(true);
        self.changed();
    }

    pub fn transcript(&self) -> Transcript {
        self.state().transcript.clone()
    }

    pub fn status(&self) -> CallStatus {
        self.state().transcript.status
    }

    pub fn times(&self) -> Times {
        let state = self.state();
        Times {
            answered_at: state.answered_at,
            ended_at: state.ended_at,
        }
    }

    /// Asks the task playing the call to stop (Calls API `Status=canceled|completed`).
    pub fn request_hangup(&self) {
        self.hangup.send_replace(true);
    }

    pub fn hangup_requests(&self) -> watch::Receiver<bool> {
        self.hangup.subscribe()
    }

    /// The transcript once the call is over, or `None` after `timeout`.
    pub async fn wait_until_finished(&self, timeout: Duration) -> Option<Transcript> {
        let mut finished = self.finished.subscribe();
        tokio::time::timeout(timeout, finished.wait_for(|done| *done))
            .await
            .ok()?
            .ok()?;
        Some(self.transcript())
    }
}

#[derive(Default)]
pub struct Registry {
    calls: Mutex<HashMap<String, Arc<CallSlot>>>,
    next_order: std::sync::atomic::AtomicU64,
}

impl Registry {
    fn calls(&self) -> MutexGuard<'_, HashMap<String, Arc<CallSlot>>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn insert(&self, call_sid: &str, to: &str, from: &str) -> Arc<CallSlot> {
        let order = self
            .next_order
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let slot = Arc::new(CallSlot {
            order,
            created_at: OffsetDateTime::now_utc(),
            state: Mutex::new(CallState {
                transcript: Transcript {
                    call_sid: call_sid.to_owned(),
                    to: to.to_owned(),
                    from: from.to_owned(),
                    status: CallStatus::Queued,
                    duration_secs: None,
                    entries: Vec::new(),
                },
                answered_at: None,
                ended_at: None,
                speaking: None,
            }),
            finished: watch::Sender::new(false),
            hangup: watch::Sender::new(false),
            changes: watch::Sender::new(0),
        });
        let mut calls = self.calls();
        if calls.len() >= MAX_FINISHED_CALLS {
            evict_oldest_finished(&mut calls);
        }
        calls.insert(call_sid.to_owned(), Arc::clone(&slot));
        slot
    }

    pub fn get(&self, call_sid: &str) -> Option<Arc<CallSlot>> {
        self.calls().get(call_sid).cloned()
    }

    /// Calls to `number`, oldest first.
    pub fn calls_to(&self, number: &str) -> Vec<Transcript> {
        let mut slots: Vec<Arc<CallSlot>> = self.calls().values().cloned().collect();
        slots.sort_by_key(|s| s.order);
        slots
            .iter()
            .map(|s| s.transcript())
            .filter(|t| t.to == number)
            .collect()
    }
}

fn evict_oldest_finished(calls: &mut HashMap<String, Arc<CallSlot>>) {
    let oldest = calls
        .iter()
        .filter(|(_, slot)| *slot.finished.borrow())
        .min_by_key(|(_, slot)| slot.order)
        .map(|(sid, _)| sid.clone());
    if let Some(sid) = oldest {
        calls.remove(&sid);
    }
}
