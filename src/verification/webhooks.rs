//! The call flow once the phone rings, in neutral terms: the callee answered, pressed keys, or
//! the call progressed. Each is one guarded transition (one Redis round trip); the answer is
//! chosen here and rendered in the provider's markup. Signature checks and parameter decoding
//! happened before (`src/telephony/mod.rs` with the provider adapter).

use std::fmt::Write;

use super::CallFlow;
use super::prompts::{Answer, Closing, Preface};
use super::transition::{Event, GatherStep, Outcome, Transition};
use crate::ids::VerificationId;
use crate::provider::{CallProgress, Markup, Provider};

/// What a voice or gather webhook answers.
#[derive(Debug)]
pub enum Reply {
    /// A document for the callee (prompt, re-prompt, confirmation, goodbye or apology).
    Document(Markup),
    /// The webhook's call is not the call placed for this verification: refused, nothing changed.
    NotThisCall,
}

/// What a status webhook answers.
#[derive(Debug, PartialEq, Eq)]
pub enum StatusReply {
    Recorded,
    NotThisCall,
    /// Our side failed (Redis); the provider should see an error.
    Unavailable,
}

impl CallFlow {
    /// `voice`: the callee answered; play the prompt — or, when answering-machine detection
    /// found a machine, end the verification (`voicemail`) and hang up without a word.
    pub async fn answered(
        &self,
        provider: &dyn Provider,
        id: &str,
        call_id: &str,
        machine: bool,
    ) -> Reply {
        let event = if machine {
            Event::Machine
        } else {
            Event::Voice
        };
        self.play(provider, id, call_id, event).await
    }

    /// `gather`: the callee pressed `digits` (empty: silence) in the gather of `step`, asked
    /// by prompt number `prompt` (from the action URL).
    pub async fn pressed(
        &self,
        provider: &dyn Provider,
        id: &str,
        call_id: &str,
        digits: &str,
        step: GatherStep,
        prompt: Option<u32>,
    ) -> Reply {
        // Dialects that ignore numDigits may deliver "0#" at once: that is a confirmed fraud
        // report, asked and answered in one go.
        let (step, digits) = if step == GatherStep::Prompt && digits == "0#" {
            (GatherStep::Fraud, "#")
        } else {
            (step, digits)
        };
        let max_prompts = self.settings.verification.max_prompts;
        let event = Event::Gather {
            digits,
            step,
            max_prompts,
            prompt,
        };
        self.play(provider, id, call_id, event).await
    }

    /// `status`: call progress from `account` (`machine`: answering-machine detection found a
    /// machine).
    pub async fn progressed(
        &self,
        account: &str,
        id: &str,
        call_id: &str,
        progress: CallProgress,
        machine: bool,
    ) -> StatusReply {
        let Ok(id) = VerificationId::parse(id) else {
            return StatusReply::Recorded;
        };
        let grace_ms = self.settings.verification.hangup_grace_ms;
        let event = if machine && progress == CallProgress::Answered {
            Event::Machine
        } else {
            Event::Status { progress, grace_ms }
        };
        let since = std::time::Instant::now();
        let applied = self.transition_settled(&id, account, call_id, event, since);
        match applied.await {
            Ok(t) if t.outcome == Outcome::Mismatch => StatusReply::NotThisCall,
            Ok(t) if t.outcome == Outcome::Foreign => {
                foreign(&id, account);
                StatusReply::NotThisCall
            }
            Ok(t) if t.outcome == Outcome::Deferred => {
                // The hang-up ends the verification once its grace is over: reconciliation
                // settles it then (any instance, even if this one stops meanwhile).
                match self.store.schedule_reconcile(&id, grace_ms, true).await {
                    Ok(()) => StatusReply::Recorded,
                    Err(e) => {
                        crate::ops::metrics::redis_error("webhook", &e);
                        tracing::error!(verification = %id, error = %e, "hang-up not scheduled");
                        StatusReply::Unavailable
                    }
                }
            }
            Ok(t) => {
                self.ended(&id, &t, true);
                StatusReply::Recorded
            }
            Err(e) => {
                crate::ops::metrics::redis_error("webhook", &e);
                // Non-2xx makes the provider log an error; the state catches up on the next event.
                tracing::error!(verification = %id, error = %e, "status callback not recorded");
                StatusReply::Unavailable
            }
        }
    }

    /// Applies a `voice` or `gather` event and answers with the document the transition calls for.
    async fn play(
        &self,
        provider: &dyn Provider,
        id: &str,
        call_id: &str,
        event: Event<'_>,
    ) -> Reply {
        let goodbye = |closing| Answer::Goodbye {
            locale: "",
            closing,
        };
        let Ok(id) = VerificationId::parse(id) else {
            return Reply::Document(provider.render(&goodbye(Closing::Gone)));
        };
        let account = provider.name();
        let since = std::time::Instant::now();
        let applied = self.transition_settled(&id, account, call_id, event, since);
        match applied.await {
            Ok(t) if t.outcome == Outcome::Mismatch => {
                tracing::warn!(verification = %id, "webhook refused: call id does not match the verification's call");
                Reply::NotThisCall
            }
            Ok(t) if t.outcome == Outcome::Foreign => {
                foreign(&id, account);
                Reply::NotThisCall
            }
            Ok(t) if matches!(event, Event::Machine) => {
                // Nothing is read out to a machine, whatever the verification's state.
                self.ended(&id, &t, true);
                Reply::Document(provider.render(&Answer::Hangup))
            }
            Ok(t) => {
                self.ended(&id, &t, true);
                Reply::Document(self.answer(provider, &id, &t))
            }
            Err(error) => {
                // The caller hears a short apology instead of the provider's error message.
                crate::ops::metrics::redis_error("webhook", &error);
                tracing::error!(verification = %id, %error, "webhook could not be applied");
                Reply::Document(provider.render(&goodbye(Closing::Apology)))
            }
        }
    }

    /// The document for a transition of `voice` or `gather`.
    fn answer(&self, provider: &dyn Provider, id: &VerificationId, t: &Transition) -> Markup {
        let locale = t.locale.as_str();
        let timeout_secs = self.settings.verification.gather_timeout_secs;
        // The action names the prompt it answers, so a repeated delivery of an older gather
        // does not consume a prompt (see transition.lua).
        let action = |step: GatherStep| {
            let mut url = self.settings.webhook_base(provider.name(), id.as_str());
            url.push_str("gather?step=");
            url.push_str(step.as_str());
            let _ = write!(url, "&n={}", t.prompts);
            url
        };
        let prompt = |preface| match t.purpose {
            Some(purpose) => provider.render(&Answer::Prompt {
                locale,
                purpose,
                preface,
                action: &action(GatherStep::Prompt),
                timeout_secs,
            }),
            None => provider.render(&Answer::Goodbye {
                locale,
                closing: Closing::Gone,
            }),
        };
        let closing = match t.outcome {
            Outcome::Prompt => return prompt(None),
            Outcome::RepromptInvalid => return prompt(Some(Preface::InvalidKey)),
            Outcome::RepromptSilence => return prompt(Some(Preface::NoKey)),
            Outcome::ConfirmFraud => {
                return provider.render(&Answer::ConfirmFraud {
                    locale,
                    action: &action(GatherStep::Fraud),
                    timeout_secs,
                });
            }
            Outcome::Approved => Closing::Approved,
            Outcome::FraudReported => Closing::FraudReported,
            Outcome::NoInput => Closing::NoInput,
            Outcome::Voicemail => return provider.render(&Answer::Hangup),
            Outcome::Missing
            | Outcome::Gone
            | Outcome::Ok
            | Outcome::Mismatch
            | Outcome::Foreign
            | Outcome::Deferred => Closing::Gone,
        };
        provider.render(&Answer::Goodbye { locale, closing })
    }
}

/// A correctly signed webhook from an account that did not place the verification's call.
fn foreign(id: &VerificationId, account: &str) {
    tracing::warn!(verification = %id, provider = account, "webhook refused: not from the provider account that placed the call");
    crate::ops::metrics::signature_failure("foreign_account");
}
