//! `<Gather>` as the callee experiences it: the prompt plays, keys barge in, `finishOnKey`,
//! `numDigits` and `timeout` decide when input ends, and `actionOnEmptyResult` whether the
//! action is requested without input (docs/PROVIDERS.md#twilio-gather).

use url::Url;

use super::call::{ActiveCall, Clock};
use super::callee::{Callee, GatherResponse, KeyInput, take_keys};
use super::interpreter::{AppError, Fetch, resolve};
use super::transcript::{Entry, HangupCause, WebhookKind};
use super::twiml::{Gather, Verb};

/// Speech rate of the simulated text-to-speech voice, in characters per second.
const SPEECH_CHARS_PER_SEC: f64 = 14.0;
/// Simulated length of any `<Play>` audio file.
const PLAY_SECS: f64 = 3.0;
/// Simulated gap between two key presses of the same input.
const INTER_KEY_SECS: f64 = 0.3;

pub enum GatherEnd {
    /// Request the action with these parameters.
    Action(Fetch),
    /// Request the action while the callee hangs up (they race).
    ActionThenHangUp(Fetch),
    /// No input: go on with the next verb.
    FallThrough,
    CalleeHungUp,
}

/// Simulated seconds a `<Say>`, `<Play>` or `<Pause>` lasts.
pub fn duration_secs(verb: &Verb) -> f64 {
    match verb {
        Verb::Say { text, repeat, .. } => {
            let once = (text.chars().count() as f64 / SPEECH_CHARS_PER_SEC).max(0.5);
            once * f64::from(*repeat)
        }
        Verb::Play { repeat, .. } => PLAY_SECS * f64::from(*repeat),
        Verb::Pause { secs } => f64::from(*secs),
        _ => 0.0,
    }
}

/// Plays a `<Say>`, `<Play>` or `<Pause>`; `cut_after` (simulated seconds) stops it early.
pub async fn perform(call: &ActiveCall, clock: &mut Clock, verb: &Verb, cut_after: Option<f64>) {
    let full = duration_secs(verb);
    let played = cut_after.map_or(full, |cut| cut.min(full));
    let interrupted = played < full;
    clock.sleep(played).await;
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
        _ => return,
    };
    call.slot.record(entry);
}

pub async fn run(
    call: &ActiveCall,
    callee: &mut Callee,
    clock: &mut Clock,
    gather: &Gather,
    document_url: &Url,
) -> Result<GatherEnd, AppError> {
    if let Some(line) = callee.line() {
        return crate::phone::gather(call, line, clock, gather, document_url).await;
    }
    let prompt_secs: f64 = gather.prompt.iter().map(duration_secs).sum();
    let response = callee.next_response();
    let hangs_up_after = matches!(response, GatherResponse::PressThenHangUp(_));
    let response = match response {
        GatherResponse::PressThenHangUp(keys) => GatherResponse::Press(keys),
        other => other,
    };
    // When the callee acts, in simulated seconds from the start of the gather.
    let (keys, acts_at) = match response {
        GatherResponse::HangUp => (String::new(), Some(prompt_secs / 2.0)),
        // `input="speech"` does not listen to keys: to the gather they are silence.
        GatherResponse::Press(keys) if !keys.is_empty() && gather.accepts_dtmf => {
            (keys, Some(callee.key_delay_secs))
        }
        GatherResponse::Press(_) => (String::new(), None),
        GatherResponse::PressThenHangUp(_) => unreachable!("mapped to Press above"),
    };

    let mut elapsed = 0.0;
    for verb in &gather.prompt {
        let cut = acts_at
            .filter(|at| *at < elapsed + duration_secs(verb))
            .map(|at| at - elapsed);
        perform(call, clock, verb, cut).await;
        match cut {
            Some(cut) => {
                elapsed += cut;
                break;
            }
            None => elapsed += duration_secs(verb),
        }
    }
    if keys.is_empty() && acts_at.is_some() {
        call.slot.record(Entry::HungUp {
            cause: HangupCause::Callee,
        });
        return Ok(GatherEnd::CalleeHungUp);
    }

    let timeout = f64::from(gather.timeout_secs);
    let input = match acts_at.map(|at| (at - elapsed).max(0.0)) {
        Some(wait) if wait < timeout => {
            clock.sleep(wait).await;
            Some(press(call, clock, gather, &keys).await)
        }
        _ => {
            clock.sleep(timeout).await;
            call.slot.record(Entry::Silence);
            None
        }
    };

    let digits = input.as_ref().map(|i| i.digits.clone()).unwrap_or_default();
    if digits.is_empty() && !gather.action_on_empty_result {
        return Ok(GatherEnd::FallThrough);
    }
    let finished_on_key = input
        .and_then(|i| i.finished_on_key)
        .map(String::from)
        .unwrap_or_default();
    let end = if hangs_up_after {
        GatherEnd::ActionThenHangUp
    } else {
        GatherEnd::Action
    };
    Ok(end(Fetch {
        kind: WebhookKind::Gather,
        // No `action`: Twilio requests the current document's URL again.
        url: resolve(document_url, gather.action.as_deref().unwrap_or(""))?,
        method: gather.method,
        extra: vec![
            ("Digits".into(), digits),
            ("FinishedOnKey".into(), finished_on_key),
        ],
    }))
}

/// The callee presses `keys`; input ends on `finishOnKey`, `numDigits`, or `timeout` seconds
/// after the last key.
async fn press(call: &ActiveCall, clock: &mut Clock, gather: &Gather, keys: &str) -> KeyInput {
    let input = take_keys(keys, gather.finish_on_key, gather.num_digits);
    let presses = input.pressed.chars().count();
    clock
        .sleep(INTER_KEY_SECS * presses.saturating_sub(1) as f64)
        .await;
    call.slot.record(Entry::Pressed {
        keys: input.pressed.clone(),
    });
    if !input.complete {
        clock.sleep(f64::from(gather.timeout_secs)).await;
    }
    input
}
