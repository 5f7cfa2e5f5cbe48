//! The verification's state machine as a pure function: the specification that
//! `src/store/scripts/transition.lua` implements (held to it by a property test).
//!
//! [`step`] takes a [`State`] and one [`Input`] and returns the next state and the [`Effects`]
//! the input had; no I/O, no clock. Time is an input too ([`Input::Clock`]): the script reads
//! Redis' clock, the model is told when the expiry or a hang-up's grace has passed.
//!
//! The rules, in the order the script applies them to every input:
//!
//! 1. **Only the placing account speaks.** A webhook from another provider account is
//!    [`Outcome::Foreign`]: nothing changes, no call id binds.
//! 2. **The first call id binds.** A webhook (or `placed`) carrying a call id binds it if none is
//!    bound and the verification is open; a different id than the bound one is
//!    [`Outcome::Mismatch`] and changes nothing; an unbound call id on an ended one is `Gone`.
//! 3. **Terminal states never change.** On `approved`, `fraud_reported`, `failed`, `canceled`,
//!    `expired` every input is a no-op; a `voice` or gather hears the verification's own
//!    closing (`Approved`, `FraudReported`, `NoInput` for `no_input`), anything else is `Gone`.
//! 4. **Time first.** Past its expiry an open verification ends `expired` / `expired` (`Gone`);
//!    past a pending hang-up's grace it ends `failed` / `hung_up` (then rule 3's closing).
//! 5. **Then the input:**
//!    - `placed`, `settle`, `uncertain`: nothing more (`Ok`); a `placed` without a call id only
//!      notes when (`placed_at`, for reconciliation), its first callback binds the id.
//!    - `cancel`: ends `canceled` / `canceled`.
//!    - `refused(reason)`: ends `failed` / `reason` unless a call is bound (a call that reported
//!      back was placed).
//!    - `machine` (answering-machine detection): ends `failed` / `voicemail`.
//!    - `voice`: moves to `answered` (never backwards); the first one counts prompt 1.
//!    - gather: moves to `answered`; `#` at the prompt approves (a registration registers its
//!      phone method and, when the user has no usable default, makes it the default — the rule
//!      of `crate::methods::effective_default`, tested on its own in `tests/it/default_rules.rs`;
//!      here every option is enabled, so the new phone backs one); `0` at the prompt
//!      asks to confirm a fraud report; `#` at that confirmation (after a `0`) ends
//!      `fraud_reported` and sets the fraud block when the verification has one. Anything else
//!      (another key, silence, `#` at a fraud step never asked) re-prompts: a gather asked by an
//!      older prompt than the current one answers without counting; with all prompts used it
//!      ends `failed` / `no_input`; else it counts one more prompt.
//!    - call progress: `ringing` moves `calling` to `ringing`; `answered` moves to `answered`;
//!      `completed` with a grace records a pending hang-up (`Deferred`, once); any other ending
//!      (and `completed` without a grace) ends it with [`CallProgress::ending`]; `queued` and
//!      unknown progress change nothing.
//!
//! Every ending releases the user's live slot, appends its audit entry and reports
//! `ended` exactly once.

use super::transition::{GatherStep, Outcome};
use super::{FailureReason, Purpose, Status};
use crate::call::CallProgress;

/// What a verification is created with (fixed for its life).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    pub purpose: Purpose,
    /// `verification.max_prompts`.
    pub max_prompts: u32,
    /// A fraud report blocks the user (`fraud_block_secs > 0`).
    pub fraud_block: bool,
    /// The user already has a usable default method (enabled, and backed by a method).
    pub had_default: bool,
}

/// Which call a call id names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// The call we placed.
    Ours,
    /// Any other call id (a stray or forged webhook from the right account).
    Stray,
}

/// Where a webhook came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The placing account, about this call.
    Account(Call),
    /// Another provider account (its own signature checked, but not the one that placed it).
    OtherAccount,
}

/// Keys in a gather.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keys {
    Hash,
    Zero,
    /// Any other key.
    Other,
    Silence,
}

impl Keys {
    pub fn digits(self) -> &'static str {
        match self {
            Keys::Hash => "#",
            Keys::Zero => "0",
            Keys::Other => "5",
            Keys::Silence => "",
        }
    }
}

/// A provider webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Webhook {
    Voice,
    Machine,
    /// `prompt`: the prompt number the gather was asked by (`None`: unknown).
    Gather {
        keys: Keys,
        step: GatherStep,
        prompt: Option<u32>,
    },
    /// `grace`: whether `verification.hangup_grace_ms` is above 0.
    Progress {
        progress: CallProgress,
        grace: bool,
    },
}

/// What time passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The verification's `expires_at`.
    Expiry,
    /// A pending hang-up's grace (nothing when none is pending).
    Grace,
}

/// One input to the state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// The provider accepted our call (binds its id).
    Placed,
    Refused(FailureReason),
    Uncertain,
    Cancel,
    /// Reconciliation: only what is due by time.
    Settle,
    Webhook(Source, Webhook),
    /// Time passed; no event is applied (the next one sees it).
    Clock(Clock),
}

/// A pending hang-up (`completed` before approval).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hangup {
    None,
    /// Within its grace.
    Pending,
    /// Its grace is over: the next event ends the verification `hung_up`.
    Due,
}

/// Everything about a verification the state machine reads or writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    pub setup: Setup,
    pub status: Status,
    pub reason: Option<FailureReason>,
    pub prompts: u32,
    pub call: Option<Call>,
    /// A `0` at the prompt asked to confirm a fraud report.
    pub fraud_asked: bool,
    pub hangup: Hangup,
    /// The clock is past `expires_at`.
    pub past_expiry: bool,
    pub holds_live_slot: bool,
    pub method_registered: bool,
    pub has_default: bool,
    pub fraud_blocked: bool,
}

/// What one input did besides the state change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effects {
    /// `None` for [`Input::Clock`] (no event was applied).
    pub outcome: Option<Outcome>,
    /// This input ended the verification.
    pub ended: bool,
    /// The user's audit entries this input appended (their `action`), in order.
    pub audit: Vec<&'static str>,
}

impl State {
    /// A verification as stored: `calling`, no call bound, holding the user's live slot.
    pub fn new(setup: Setup) -> Self {
        Self {
            setup,
            status: Status::Calling,
            reason: None,
            prompts: 0,
            call: None,
            fraud_asked: false,
            hangup: Hangup::None,
            past_expiry: false,
            holds_live_slot: true,
            method_registered: false,
            has_default: setup.had_default,
            fraud_blocked: false,
        }
    }

    fn finish(&mut self, effects: &mut Effects, status: Status, reason: Option<FailureReason>) {
        self.status = status;
        if reason.is_some() {
            self.reason = reason;
        }
        self.holds_live_slot = false;
        effects.ended = true;
        effects.audit.push(match status {
            Status::Approved => "verification.approved",
            Status::FraudReported => "verification.fraud_reported",
            _ => "verification.failed",
        });
    }

    /// Never backwards: `calling` < `ringing` < `answered`.
    fn answer(&mut self) {
        self.status = Status::Answered;
    }

    fn closing(&self, input: Input) -> Outcome {
        let spoken = matches!(
            input,
            Input::Webhook(_, Webhook::Voice | Webhook::Gather { .. })
        );
        match self.status {
            Status::Approved if spoken => Outcome::Approved,
            Status::FraudReported if spoken => Outcome::FraudReported,
            Status::Failed if spoken && self.reason == Some(FailureReason::NoInput) => {
                Outcome::NoInput
            }
            _ => Outcome::Gone,
        }
    }
}

/// The specification: the state after `input`, and what it did (see the module docs).
pub fn step(mut s: State, input: Input) -> (State, Effects) {
    let mut e = Effects {
        outcome: None,
        ended: false,
        audit: Vec::new(),
    };
    let call = match input {
        Input::Clock(Clock::Expiry) => {
            s.past_expiry = true;
            return (s, e);
        }
        Input::Clock(Clock::Grace) => {
            if s.hangup == Hangup::Pending {
                s.hangup = Hangup::Due;
            }
            return (s, e);
        }
        Input::Webhook(Source::OtherAccount, _) => {
            e.outcome = Some(Outcome::Foreign);
            return (s, e);
        }
        Input::Webhook(Source::Account(call), _) => Some(call),
        Input::Placed => Some(Call::Ours),
        _ => None,
    };
    let terminal = s.status.is_terminal();
    let outcome = 'outcome: {
        if let Some(call) = call {
            match s.call {
                Some(bound) if bound != call => break 'outcome Outcome::Mismatch,
                Some(_) => {}
                None if terminal => break 'outcome Outcome::Gone,
                None => s.call = Some(call),
            }
        }
        if terminal {
            break 'outcome s.closing(input);
        }
        if s.past_expiry {
            s.finish(&mut e, Status::Expired, Some(FailureReason::Expired));
            break 'outcome Outcome::Gone;
        }
        if s.hangup == Hangup::Due {
            s.finish(&mut e, Status::Failed, Some(FailureReason::HungUp));
            break 'outcome s.closing(input);
        }
        match input {
            Input::Placed | Input::Settle | Input::Uncertain => Outcome::Ok,
            Input::Cancel => {
                s.finish(&mut e, Status::Canceled, Some(FailureReason::Canceled));
                Outcome::Ok
            }
            Input::Refused(reason) => {
                if s.call.is_none() {
                    s.finish(&mut e, Status::Failed, Some(reason));
                }
                Outcome::Ok
            }
            Input::Webhook(_, webhook) => on_webhook(&mut s, &mut e, webhook),
            Input::Clock(_) => unreachable!("time returns above"),
        }
    };
    e.outcome = Some(outcome);
    (s, e)
}

fn on_webhook(s: &mut State, e: &mut Effects, webhook: Webhook) -> Outcome {
    match webhook {
        Webhook::Machine => {
            s.finish(e, Status::Failed, Some(FailureReason::Voicemail));
            Outcome::Voicemail
        }
        Webhook::Voice => {
            s.answer();
            s.prompts = s.prompts.max(1);
            Outcome::Prompt
        }
        Webhook::Gather { keys, step, prompt } => {
            s.answer();
            match (step, keys) {
                (GatherStep::Fraud, Keys::Hash) if s.fraud_asked => {
                    s.finish(e, Status::FraudReported, None);
                    s.fraud_blocked |= s.setup.fraud_block;
                    return Outcome::FraudReported;
                }
                (GatherStep::Prompt, Keys::Hash) => {
                    s.finish(e, Status::Approved, None);
                    if s.setup.purpose == Purpose::Registration {
                        s.method_registered = true;
                        e.audit.push("method.registered");
                        if !s.has_default {
                            s.has_default = true;
                            e.audit.push("default_method.changed");
                        }
                    }
                    return Outcome::Approved;
                }
                (GatherStep::Prompt, Keys::Zero) => {
                    s.fraud_asked = true;
                    return Outcome::ConfirmFraud;
                }
                _ => {}
            }
            let again = if keys == Keys::Silence {
                Outcome::RepromptSilence
            } else {
                Outcome::RepromptInvalid
            };
            if prompt.is_some_and(|n| n < s.prompts) {
                return again;
            }
            if s.prompts >= s.setup.max_prompts {
                s.finish(e, Status::Failed, Some(FailureReason::NoInput));
                return Outcome::NoInput;
            }
            s.prompts += 1;
            again
        }
        Webhook::Progress { progress, grace } => {
            match progress {
                CallProgress::Ringing if s.status == Status::Calling => s.status = Status::Ringing,
                CallProgress::Answered => s.answer(),
                CallProgress::Completed if grace => {
                    if s.hangup == Hangup::None {
                        s.hangup = Hangup::Pending;
                    }
                    return Outcome::Deferred;
                }
                _ => {
                    if let Some((status, reason)) = progress.ending() {
                        s.finish(e, status, Some(reason));
                    }
                }
            }
            Outcome::Ok
        }
    }
}
