//! Verification records: create, read, and the guarded webhook transitions.

use std::collections::HashMap;

use super::{AUDIT_CAP, Store};
use crate::ids::VerificationId;
use crate::verification::{Purpose, Status, Verification};

/// What a new verification stores.
pub struct NewVerification<'a> {
    pub id: &'a VerificationId,
    pub tenant: &'a str,
    pub user: &'a str,
    pub purpose: Purpose,
    pub phone_e164: &'a str,
    pub phone_type: &'a str,
    /// The method the call registers (registration) or dials (sign-in, password reset).
    pub method_id: &'a str,
    pub locale: &'a str,
    pub ttl_secs: u64,
    pub retain_secs: u64,
    /// How long a fraud report during this call blocks the user (0 = no block).
    pub fraud_block_secs: u64,
}

/// What `create_verification` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Created {
    /// Stored, holding the user's live slot: `(created_at, expires_at)`.
    Stored(i64, i64),
    /// Not stored: a fraud report blocks the user for this many more seconds (-1: no expiry).
    Blocked(i64),
    /// Not stored: the user already has this live verification.
    Live(String),
}

/// A provider event applied to a verification.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// The provider accepted the call and gave it this id.
    Placed,
    /// The provider refused to place the call.
    Refused { reason: &'a str, detail: &'a str },
    /// The callee answered; the provider asks what to play.
    Voice,
    /// The callee pressed keys (`""` = silence) in the gather of `step`.
    Gather {
        digits: &'a str,
        step: GatherStep,
        max_prompts: u32,
    },
    /// A call-progress callback with the provider's `CallStatus`.
    Status { call_status: &'a str },
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

/// What the transition decided; the webhook answers with the matching TwiML.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No such verification (never existed, or dropped after its retention).
    Missing,
    /// The webhook's call id is not the call placed for this verification: refused.
    Mismatch,
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
}

impl Outcome {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "missing" => Outcome::Missing,
            "mismatch" => Outcome::Mismatch,
            "gone" => Outcome::Gone,
            "ok" => Outcome::Ok,
            "prompt" => Outcome::Prompt,
            "approved" => Outcome::Approved,
            "confirm_fraud" => Outcome::ConfirmFraud,
            "fraud_reported" => Outcome::FraudReported,
            "reprompt_invalid" => Outcome::RepromptInvalid,
            "reprompt_silence" => Outcome::RepromptSilence,
            "no_input" => Outcome::NoInput,
            _ => return None,
        })
    }
}

/// The script's answer: the outcome plus what the TwiML needs.
#[derive(Clone, Debug)]
pub struct Transition {
    pub outcome: Outcome,
    pub status: Option<Status>,
    pub locale: String,
    pub purpose: Option<Purpose>,
    /// How many times the prompt has been played.
    pub prompts: u32,
    /// The failure reason, if any.
    pub reason: String,
    /// This event moved the verification into its terminal `status` (so: announce it once).
    pub ended: bool,
    /// Redis' clock when the event was applied (Unix seconds; 0 for `Missing`).
    pub now: i64,
    /// The verification's `updated_at` after the event: only for `Placed` and `Refused`, whose
    /// caller answers with the verification's view (else 0).
    pub updated_at: i64,
}

impl Transition {
    /// Decodes the script's one-string reply (see `scripts/transition.lua`).
    fn decode(reply: &str) -> Option<Self> {
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
        let reason = next()?.to_owned();
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

impl Store {
    /// Stores a new verification in `calling` unless the user is blocked or has a live one.
    pub async fn create_verification(
        &self,
        new: &NewVerification<'_>,
    ) -> redis::RedisResult<Created> {
        let masked = crate::phone::mask_e164(new.phone_e164);
        let block_secs = new.fraud_block_secs.to_string();
        let (what, a, b): (String, String, String) = self
            .scripts
            .create_verification
            .key(self.keys.verification(new.id))
            .key(self.keys.live(new.id.user_tag()))
            .key(self.keys.blocked(new.id.user_tag()))
            .arg(new.ttl_secs)
            .arg(new.retain_secs)
            .arg(&[
                ("tenant", new.tenant),
                ("user", new.user),
                ("purpose", new.purpose.as_str()),
                ("phone", new.phone_e164),
                ("phone_masked", masked.as_str()),
                ("phone_type", new.phone_type),
                ("method_id", new.method_id),
                ("locale", new.locale),
                ("fraud_block_secs", block_secs.as_str()),
            ])
            .invoke_async(&mut self.conn())
            .await?;
        let num = |s: &str| s.parse::<i64>().unwrap_or_default();
        Ok(match what.as_str() {
            "blocked" => Created::Blocked(num(&a)),
            "live" => Created::Live(a),
            _ => {
                // Counted here, where a verification comes to exist, whichever path created it.
                crate::ops::metrics::verification_started(new.purpose);
                Created::Stored(num(&a), num(&b))
            }
        })
    }

    /// Drops a verification refused before anything was dialled, releasing the user's live slot.
    pub async fn discard_verification(&self, id: &VerificationId) -> redis::RedisResult<()> {
        self.scripts
            .discard_verification
            .key(self.keys.verification(id))
            .key(self.keys.live(id.user_tag()))
            .arg(id.as_str())
            .invoke_async::<i64>(&mut self.conn())
            .await
            .map(|_| ())
    }

    /// Records how long the call waited for a pacing slot (shown as `queued_ms`).
    pub async fn set_queued(&self, id: &VerificationId, queued_ms: u64) -> redis::RedisResult<()> {
        redis::cmd("HSET")
            .arg(self.keys.verification(id))
            .arg("queued_ms")
            .arg(queued_ms)
            .query_async::<i64>(&mut self.conn())
            .await
            .map(|_| ())
    }

    pub async fn verification(
        &self,
        id: &VerificationId,
    ) -> redis::RedisResult<Option<Verification>> {
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.keys.verification(id))
            .query_async(&mut self.conn())
            .await?;
        Ok(from_fields(id, fields))
    }

    /// Applies one provider event in one round trip (see `scripts/transition.lua`).
    pub async fn transition(
        &self,
        id: &VerificationId,
        call_sid: &str,
        event: Event<'_>,
    ) -> redis::RedisResult<Transition> {
        let mut invocation = self.scripts.transition.prepare_invoke();
        invocation
            .key(self.keys.verification(id))
            .key(self.keys.methods(id.user_tag()))
            .key(self.keys.audit(id.user_tag()))
            .key(self.keys.live(id.user_tag()))
            .key(self.keys.blocked(id.user_tag()));
        let name = match event {
            Event::Placed => "placed",
            Event::Refused { .. } => "refused",
            Event::Voice => "voice",
            Event::Gather { .. } => "gather",
            Event::Status { .. } => "status",
        };
        invocation
            .arg(name)
            .arg(call_sid)
            .arg(self.keys.change_channel(id))
            .arg(AUDIT_CAP);
        match event {
            Event::Refused { reason, detail } => {
                invocation.arg(reason).arg(detail);
            }
            Event::Gather {
                digits,
                step,
                max_prompts,
            } => {
                invocation.arg(digits).arg(step.as_str()).arg(max_prompts);
            }
            Event::Status { call_status } => {
                invocation.arg(call_status);
            }
            Event::Placed | Event::Voice => {}
        }
        let reply: String = invocation.invoke_async(&mut self.conn()).await?;
        let transition = Transition::decode(&reply).ok_or_else(|| {
            redis::RedisError::from((
                redis::ErrorKind::Parse,
                "unexpected transition reply",
                reply.clone(),
            ))
        })?;
        // Counted here: `ended` is true exactly once per verification, whatever path ended it.
        crate::ops::metrics::verification_ended(&transition);
        Ok(transition)
    }
}

fn from_fields(id: &VerificationId, mut f: HashMap<String, String>) -> Option<Verification> {
    let mut take = |k: &str| f.remove(k).unwrap_or_default();
    let status = Status::parse(&take("status"))?;
    let purpose = Purpose::parse(&take("purpose"))?;
    let num = |s: String| s.parse::<i64>().unwrap_or_default();
    let non_empty = |s: String| (!s.is_empty()).then_some(s);
    Some(Verification {
        id: id.as_str().to_owned(),
        tenant: take("tenant"),
        user: take("user"),
        purpose,
        status,
        reason: non_empty(take("reason")),
        provider_error: non_empty(take("provider_error")),
        phone_e164: take("phone"),
        phone_type: take("phone_type"),
        locale: take("locale"),
        method_id: non_empty(take("method_id")),
        created_at: num(take("created_at")),
        expires_at: num(take("expires_at")),
        updated_at: num(take("updated_at")),
        queued_ms: take("queued_ms").parse().ok().filter(|ms| *ms > 0),
    })
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
        assert!(!t.ended && t.reason.is_empty() && t.updated_at == 0);

        // The reason is last and may contain spaces.
        let t = Transition::decode("ok failed nl-NL sign_in 0 1 1700 1700 provider rejected")
            .expect("decodes");
        assert!(t.ended);
        assert_eq!(
            (t.updated_at, t.reason.as_str()),
            (1700, "provider rejected")
        );

        let t = Transition::decode("missing    0 0 0  ").expect("decodes");
        assert_eq!(
            (t.outcome, t.status, t.purpose),
            (Outcome::Missing, None, None)
        );
        assert!(Transition::decode("bogus").is_none());
    }
}
