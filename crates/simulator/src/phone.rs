//! The interactive callee: a virtual phone held by a person (the web demo's keypad) or a test.
//!
//! Calls to a number that has a [`VirtualPhone`] ([`super::Simulator::virtual_phone`]) ring it
//! instead of following a script. It answers after the ring, plays the TwiML as a real phone
//! would, and the callee's keys come from [`VirtualPhone::press`] and [`VirtualPhone::hang_up`]:
//!
//! - a key pressed while a `<Gather>`'s prompt plays barges in, as with the scripted callee;
//!   input ends on `finishOnKey`, `numDigits`, or `timeout` seconds after the last key;
//! - keys pressed while the application is answering a webhook wait for the next `<Gather>`
//!   (so a quick `0` then `#` is not lost); keys pressed during a `<Say>` outside a `<Gather>` are
//!   not heard, as on a real call;
//! - hanging up while the phone rings declines the call (Twilio reports `busy`); hanging up
//!   during the call ends it (`completed`, hung up by the callee);
//! - a phone already in a call is busy for a second call.
//!
//! Its [`PhoneView`] (what the handset shows: ringing, the text being spoken, the keys heard)
//! can be long-polled with [`VirtualPhone::wait_for_change`].

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, watch};
use url::Url;

use super::call::{ActiveCall, Clock};
use super::gather::{GatherEnd, duration_secs};
use super::interpreter::{AppError, Fetch, resolve};
use super::registry::CallSlot;
use super::transcript::{CallStatus, Entry, HangupCause, WebhookKind};
use super::twiml::{Gather, Verb};

/// What the person does with the handset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    Key(char),
    HangUp,
}

/// The keys of a phone keypad.
pub const KEYS: &str = "0123456789*#";

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("{0:?} is not a key of a phone keypad (0-9, * and #)")]
    NotAKey(char),
    #[error("no call is in progress on this phone")]
    NoCall,
}

/// What the handset shows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PhoneView {
    /// Changes whenever anything else here does; pass it to [`VirtualPhone::wait_for_change`].
    pub version: String,
    /// The current (or last) call to this phone.
    pub call_sid: Option<String>,
    pub status: Option<CallStatus>,
    /// The text being spoken right now, and its language.
    pub speaking: Option<Speech>,
    /// Everything spoken so far on this call, in order (the current text once it is finished).
    pub said: Vec<Speech>,
    /// Keys the call heard so far, one string per `<Gather>`.
    pub pressed: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Speech {
    pub text: String,
    pub language: String,
}

/// A phone a person holds; cheap to clone (all clones are the same phone).
#[derive(Clone)]
pub struct VirtualPhone {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for VirtualPhone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The number stays out of logs.
        f.debug_struct("VirtualPhone").finish_non_exhaustive()
    }
}

struct Inner {
    inputs: mpsc::UnboundedSender<Input>,
    /// The receiving end, held by the call that rings the phone and given back when it ends.
    line: Mutex<Option<mpsc::UnboundedReceiver<Input>>>,
    current: Mutex<Option<Arc<CallSlot>>>,
    /// Counts calls that rang the phone.
    generation: watch::Sender<u64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl VirtualPhone {
    pub(crate) fn new() -> Self {
        let (inputs, line) = mpsc::unbounded_channel();
        Self {
            inner: Arc::new(Inner {
                inputs,
                line: Mutex::new(Some(line)),
                current: Mutex::new(None),
                generation: watch::Sender::new(0),
            }),
        }
    }

    /// Presses a key (`0`-`9`, `*`, `#`) on the call in progress.
    pub fn press(&self, key: char) -> Result<(), PhoneError> {
        if !KEYS.contains(key) {
            return Err(PhoneError::NotAKey(key));
        }
        self.send(Input::Key(key))
    }

    /// Puts the phone down: declines a ringing call, ends an answered one.
    pub fn hang_up(&self) -> Result<(), PhoneError> {
        self.send(Input::HangUp)
    }

    fn send(&self, input: Input) -> Result<(), PhoneError> {
        let live = lock(&self.inner.current)
            .as_ref()
            .is_some_and(|slot| !slot.status().is_final());
        if !live {
            return Err(PhoneError::NoCall);
        }
        self.inner
            .inputs
            .send(input)
            .map_err(|_| PhoneError::NoCall)
    }

    /// What the handset shows now.
    pub fn view(&self) -> PhoneView {
        let slot = lock(&self.inner.current).clone();
        let generation = *self.inner.generation.borrow();
        view_of(generation, slot.as_deref())
    }

    /// The view as soon as its `version` differs from `since`, or as it is after `timeout`.
    pub async fn wait_for_change(&self, since: &str, timeout: Duration) -> PhoneView {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut generations = self.inner.generation.subscribe();
        loop {
            // Mark what we read as seen before reading, so a change in between still wakes us.
            generations.borrow_and_update();
            let slot = lock(&self.inner.current).clone();
            let mut changes = slot.as_ref().map(|s| s.changes());
            if let Some(changes) = changes.as_mut() {
                changes.borrow_and_update();
            }
            let view = view_of(*generations.borrow(), slot.as_deref());
            if view.version != since {
                return view;
            }
            let slot_changed = async {
                match changes.as_mut() {
                    Some(changes) => {
                        let _ = changes.changed().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = generations.changed() => {}
                _ = slot_changed => {}
                _ = tokio::time::sleep_until(deadline) => return view,
            }
        }
    }

    /// The line for a call that starts ringing this phone, or `None` if the phone is in a call.
    pub(crate) fn pick_up(&self, slot: &Arc<CallSlot>) -> Option<Line> {
        let mut receiver = lock(&self.inner.line).take()?;
        // Keys pressed when no call was there are gone.
        while receiver.try_recv().is_ok() {}
        *lock(&self.inner.current) = Some(Arc::clone(slot));
        self.inner.generation.send_modify(|g| *g += 1);
        Some(Line {
            receiver: Some(receiver),
            phone: Arc::clone(&self.inner),
        })
    }
}

fn view_of(generation: u64, slot: Option<&CallSlot>) -> PhoneView {
    let Some(slot) = slot else {
        return PhoneView {
            version: format!("{generation}"),
            call_sid: None,
            status: None,
            speaking: None,
            said: Vec::new(),
            pressed: Vec::new(),
        };
    };
    let version = format!("{generation}.{}", *slot.changes().borrow());
    let transcript = slot.transcript();
    let said = transcript
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Said { text, language, .. } => Some(Speech {
                text: text.clone(),
                language: language.clone(),
            }),
            _ => None,
        })
        .collect();
    PhoneView {
        version,
        status: Some(transcript.status),
        speaking: slot.speaking(),
        pressed: transcript
            .pressed()
            .into_iter()
            .map(str::to_owned)
            .collect(),
        said,
        call_sid: Some(transcript.call_sid),
    }
}

/// The handset's side of one call: the person's inputs. Dropped when the call ends, which hands
/// the line back to the phone.
pub(crate) struct Line {
    receiver: Option<mpsc::UnboundedReceiver<Input>>,
    phone: Arc<Inner>,
}

impl Drop for Line {
    fn drop(&mut self) {
        *lock(&self.phone.line) = self.receiver.take();
    }
}

impl Line {
    /// The next input the call can hear: with `keys` false only a hang-up (keys are lost).
    async fn next(&mut self, keys: bool) -> Input {
        let Some(receiver) = self.receiver.as_mut() else {
            return std::future::pending().await;
        };
        loop {
            match receiver.recv().await {
                Some(Input::Key(_)) if !keys => continue,
                Some(input) => return input,
                None => return std::future::pending().await,
            }
        }
    }

    /// While the phone rings: `true` if the person declines the call.
    pub(crate) async fn declines_within(&mut self, clock: &mut Clock, secs: f64) -> bool {
        clock.sleep_unless(secs, self.next(false)).await.is_some()
    }
}

/// Plays a `<Say>`, `<Play>` or `<Pause>` until it ends or the person acts (a key only when
/// `keys_barge_in`); the spoken text shows on the handset meanwhile.
pub(crate) async fn speak(
    call: &ActiveCall,
    clock: &mut Clock,
    verb: &Verb,
    line: &mut Line,
    keys_barge_in: bool,
) -> Option<Input> {
    if let Verb::Say { text, language, .. } = verb {
        call.slot.set_speaking(Some(Speech {
            text: text.clone(),
            language: language.clone(),
        }));
    }
    let input = clock
        .sleep_unless(duration_secs(verb), line.next(keys_barge_in))
        .await;
    call.slot.set_speaking(None);
    let interrupted = input.is_some();
    let entry = match verb {
        Verb::Say { text, language, .. } => Entry::Said {
            text: text.clone(),
            language: language.clone(),
            interrupted,
        },
        Verb::Play { url, .. } => Entry::Played {
            url: url.clone(),
            interrupted,
        },
        Verb::Pause { secs } => Entry::Paused { secs: *secs },
        _ => return input,
    };
    call.slot.record(entry);
    input
}

/// A `<Gather>` with a person at the keypad (the scripted one is `gather::run`).
pub(crate) async fn gather(
    call: &ActiveCall,
    line: &mut Line,
    clock: &mut Clock,
    gather: &Gather,
    document_url: &Url,
) -> Result<GatherEnd, AppError> {
    let listening = gather.accepts_dtmf;
    let mut first = None;
    for verb in &gather.prompt {
        first = speak(call, clock, verb, line, listening).await;
        if first.is_some() {
            break;
        }
    }
    let timeout = f64::from(gather.timeout_secs);
    let (mut pressed, mut digits, mut finished_on_key) = (String::new(), String::new(), None);
    loop {
        let input = match first.take() {
            Some(input) => Some(input),
            None => clock.sleep_unless(timeout, line.next(listening)).await,
        };
        match input {
            None => break,
            Some(Input::HangUp) => {
                if !pressed.is_empty() {
                    record_keys(call, &pressed);
                }
                call.slot.record(Entry::HungUp {
                    cause: HangupCause::Callee,
                });
                return Ok(GatherEnd::CalleeHungUp);
            }
            Some(Input::Key(key)) => {
                pressed.push(key);
                if Some(key) == gather.finish_on_key {
                    finished_on_key = Some(key);
                    break;
                }
                digits.push(key);
                if gather
                    .num_digits
                    .is_some_and(|n| digits.chars().count() >= n)
                {
                    break;
                }
            }
        }
    }
    record_keys(call, &pressed);
    if digits.is_empty() && !gather.action_on_empty_result {
        return Ok(GatherEnd::FallThrough);
    }
    Ok(GatherEnd::Action(Fetch {
        kind: WebhookKind::Gather,
        url: resolve(document_url, gather.action.as_deref().unwrap_or(""))?,
        method: gather.method,
        extra: vec![
            ("Digits".into(), digits),
            (
                "FinishedOnKey".into(),
                finished_on_key.map(String::from).unwrap_or_default(),
            ),
        ],
    }))
}

fn record_keys(call: &ActiveCall, pressed: &str) {
    let entry = if pressed.is_empty() {
        Entry::Silence
    } else {
        Entry::Pressed {
            keys: pressed.to_owned(),
        }
    };
    call.slot.record(entry);
}

/// A call's final status when the person hung up before the end.
pub(crate) fn hung_up(call: &ActiveCall) -> CallStatus {
    call.slot.record(Entry::HungUp {
        cause: HangupCause::Callee,
    });
    CallStatus::Completed
}
