//! The state machine's vocabulary: the events a verification receives, what a guarded
//! transition decided, and how its one-string reply from Redis decodes. The transition itself
//! runs atomically in `src/store/scripts/transition.lua` (called by `Store::transition`).

use super::{FailureReason, Purpose, Status};
use crate::provider::CallProgress;

/// An event applied to a verification.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// The provider accepted the call and gave it this id.
    Placed,
    /// The call was never dialled (refused by the provider, or by our own pacing).
    Refused {
        reason: FailureReason,
        detail: &'a str,
    },
    /// The callee answered; the provider asks what to play.
    Voice,
    /// The callee pressed keys (`""` = silence) in the gather of `step`, asked by the document
    /// of prompt number `prompt` (from the action URL; `None` for URLs from before it was
    /// there): a repeated delivery of an older gather does not consume a prompt.
    Gather {
        digits: &'a str,
        step: GatherStep,
        max_prompts: u32,
        prompt: Option<u32>,
    },
    /// Call progress as the provider reported it. A `completed` before approval waits
    /// `grace_ms` for a `#` already on its way before it ends the verification `hung_up`.
    Status {
        progress: CallProgress,
        grace_ms: u64,
    },
    /// The provider's answer to placing the call is unknown (`detail`): the verification stays
    /// open, waiting for a call to report back.
    Uncertain { detail: &'a str },
    /// Answering-machine detection: a machine or fax answered. Ends `failed` / `voicemail`.
    Machine,
    /// The portal canceled the verification: ends a live one `canceled` (reason `canceled`).
    Cancel,
    /// Reconciliation: applies what is due by time alone (a hang-up whose grace is over, an
    /// expiry); changes nothing else.
    Settle,
}

impl Event<'_> {
    /// The event's name as the transition script knows it.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Placed => "placed",
            Event::Refused { .. } => "refused",
            Event::Voice => "voice",
            Event::Gather { .. } => "gather",
            Event::Status { .. } => "status",
            Event::Uncertain { .. } => "uncertain",
            Event::Machine => "machine",
            Event::Settle => "settle",
            Event::Cancel => "cancel",
        }
    }
}

/// Which question a `<Gather>` asked: the main prompt, or "press # to confirm the fraud report".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatherStep {
    Prompt,
    Fraud,
}

impl GatherStep {
    pub fn as_str(self) -> &'static str {
        match self {
            GatherStep::Prompt => "prompt",
            GatherStep::Fraud => "fraud",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "prompt" => Some(GatherStep::Prompt),
            "fraud" => Some(GatherStep::Fraud),
            _ => None,
        }
    }
}

/// What the transition decided; the webhook answers with the matching document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No such verification (never existed, or dropped after its retention).
    Missing,
    /// The webhook's call id is not the call placed for this verification: refused.
    Mismatch,
    /// The webhook came from a provider account other than the one that placed the call
    /// (refused, nothing changed, no call id bound).
    Foreign,
    /// The verification already ended (or just expired): nothing changed.
    Gone,
    /// Applied (status callbacks, placed, refused).
    Ok,
    /// Play the prompt.
    Prompt,
    Approved,
    /// `0` pressed: ask for `#` to confirm the fraud report.
    ConfirmFraud,
    FraudReported,
    RepromptInvalid,
    RepromptSilence,
    /// Out of prompts: failed with `no_input`.
    NoInput,
    /// The call ended before approval: the verification ends `hung_up` once the grace for a
    /// `#` on its way is over (reconciliation settles it then).
    Deferred,
    /// A machine answered: failed with `voicemail`; hang up without a word.
    Voicemail,
}

impl Outcome {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "missing" => Outcome::Missing,
            "mismatch" => Outcome::Mismatch,
            "foreign" => Outcome::Foreign,
            "gone" => Outcome::Gone,
            "ok" => Outcome::Ok,
            "prompt" => Outcome::Prompt,
            "approved" => Outcome::Approved,
            "confirm_fraud" => Outcome::ConfirmFraud,
            "fraud_reported" => Outcome::FraudReported,
            "reprompt_invalid" => Outcome::RepromptInvalid,
            "reprompt_silence" => Outcome::RepromptSilence,
            "no_input" => Outcome::NoInput,
            "deferred" => Outcome::Deferred,
            "voicemail" => Outcome::Voicemail,
            _ => return None,
        })
    }
}

/// The script's answer: the outcome plus what the answer to the provider needs.
#[derive(Clone, Debug)]
pub struct Transition {
    pub outcome: Outcome,
    pub status: Option<Status>,
    pub locale: String,
    pub purpose: Option<Purpose>,
    /// How many times the prompt has been played.
    pub prompts: u32,
    /// The failure reason, if any.
    pub reason: Option<FailureReason>,
    /// This event moved the verification into its terminal `status` (so: announce it once).
    pub ended: bool,
    /// Redis' clock when the event was applied (Unix seconds; 0 for `Missing`).
    pub now: i64,
    /// The verification's `updated_at` after the event: only for `Placed` and `Refused`, whose
    /// caller answers with the verification's view (else 0).
    pub updated_at: i64,
}

impl Transition {
    /// Decodes the script's one-string reply (see `src/store/scripts/transition.lua`).
    pub fn decode(reply: &str) -> Option<Self> {
        let mut f = reply.splitn(9, ' ');
        let mut next = || f.next();
        let outcome = Outcome::parse(next()?)?;
        let status = Status::parse(next()?);
        let locale = next()?.to_owned();
        let purpose = Purpose::parse(next()?);
        let prompts = next()?.parse().ok()?;
        let ended = next()? == "1";
        let now = next()?.parse().ok()?;
        let updated_at = next()?.parse().unwrap_or(0);
        let reason = FailureReason::parse(next()?);
        Some(Self {
            outcome,
            status,
            locale,
            purpose,
            prompts,
            reason,
            ended,
            now,
            updated_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_string_reply_decodes() {
        let t = Transition::decode("reprompt_invalid answered en-US registration 3 0 1700  ")
            .expect("decodes");
        assert_eq!(t.outcome, Outcome::RepromptInvalid);
        assert_eq!(t.status, Some(Status::Answered));
        assert_eq!((t.locale.as_str(), t.prompts, t.now), ("en-US", 3, 1700));
        assert_eq!(t.purpose, Some(Purpose::Registration));
        assert!(!t.ended && t.reason.is_none() && t.updated_at == 0);

        let t = Transition::decode("ok failed nl-NL sign_in 0 1 1700 1700 provider_rejected")
            .expect("decodes");
        assert!(t.ended);
        assert_eq!(
            (t.updated_at, t.reason),
            (1700, Some(FailureReason::ProviderRejected))
        );

        let t = Transition::decode("missing    0 0 0  ").expect("decodes");
        assert_eq!(
            (t.outcome, t.status, t.purpose),
            (Outcome::Missing, None, None)
        );
        assert!(Transition::decode("bogus").is_none());
    }
}
