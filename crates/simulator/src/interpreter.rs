//! The answered part of a call: fetch TwiML, play its verbs, follow `<Gather>` actions and
//! `<Redirect>`s until something hangs up.

use url::Url;

use super::call::{ActiveCall, Clock};
use super::callee::Callee;
use super::gather::{self, GatherEnd};
use super::phone;
use super::transcript::{CallStatus, Entry, HangupCause, WebhookKind};
use super::twiml::{self, Method, Verb};

/// What Twilio says when the application fails (and then it hangs up).
pub const APPLICATION_ERROR_SPEECH: &str =
    "We are sorry, an application error has occurred. Goodbye.";

/// A TwiML loop (say, a `<Redirect>` to itself) must end some time.
const MAX_DOCUMENTS: usize = 100;

/// The next TwiML document to fetch.
pub struct Fetch {
    pub kind: WebhookKind,
    pub url: Url,
    pub method: Method,
    /// Parameters added to the standard ones (`Digits` for a gather action).
    pub extra: Vec<(String, String)>,
}

/// A failure that ends the call with Twilio's application error message.
pub struct AppError {
    pub code: u32,
    pub detail: String,
}

enum Flow {
    Fetch(Fetch),
    HangUpDuring(Fetch),
    End(CallStatus),
}

/// Runs the conversation; returns the call's final status. A request the callee left behind
/// when hanging up (a gather's action racing the hang-up) is put in `racing`.
pub async fn run(
    call: &ActiveCall,
    callee: &mut Callee,
    clock: &mut Clock,
    racing: &mut Option<Fetch>,
) -> CallStatus {
    let mut next = Fetch {
        kind: WebhookKind::Answer,
        url: call.request.url.clone(),
        method: call.request.method,
        extra: Vec::new(),
    };
    for _ in 0..MAX_DOCUMENTS {
        let verbs = match fetch(call, &next).await {
            Ok(verbs) => verbs,
            Err(error) => return application_error(call, clock, error).await,
        };
        match execute(call, callee, clock, &next.url, &verbs).await {
            Ok(Flow::Fetch(fetch)) => next = fetch,
            Ok(Flow::HangUpDuring(fetch)) => {
                call.slot.record(Entry::HungUp {
                    cause: HangupCause::Callee,
                });
                *racing = Some(fetch);
                return CallStatus::Completed;
            }
            Ok(Flow::End(status)) => return status,
            Err(error) => return application_error(call, clock, error).await,
        }
    }
    let error = AppError {
        code: 11200,
        detail: format!("more than {MAX_DOCUMENTS} TwiML documents in one call"),
    };
    application_error(call, clock, error).await
}

pub async fn fetch(call: &ActiveCall, next: &Fetch) -> Result<Vec<Verb>, AppError> {
    let mut params = call.params(CallStatus::InProgress);
    params.extend(next.extra.iter().cloned());
    let answer = call
        .webhook(next.kind, next.method, &next.url, params)
        .await
        .map_err(|f| AppError {
            code: f.code,
            detail: f.detail,
        })?;
    if !(200..300).contains(&answer.status) {
        return Err(AppError {
            code: 11200,
            detail: format!("the application answered HTTP {}", answer.status),
        });
    }
    let parsed = match call.shared.options.dialect {
        super::Dialect::Plivo => super::plivo_xml::parse(&answer.body),
        super::Dialect::Telnyx => twiml::parse(&answer.body).map(super::texml::documented),
        _ => twiml::parse(&answer.body),
    };
    parsed.map_err(|e| AppError {
        code: 12100,
        detail: e.to_string(),
    })
}

async fn execute(
    call: &ActiveCall,
    callee: &mut Callee,
    clock: &mut Clock,
    document_url: &Url,
    verbs: &[Verb],
) -> Result<Flow, AppError> {
    for verb in verbs {
        match verb {
            Verb::Say { .. } | Verb::Play { .. } | Verb::Pause { .. } => match callee.line() {
                Some(line) => {
                    if phone::speak(call, clock, verb, line, false).await.is_some() {
                        return Ok(Flow::End(phone::hung_up(call)));
                    }
                }
                None => gather::perform(call, clock, verb, None).await,
            },
            Verb::Gather(g) => match gather::run(call, callee, clock, g, document_url).await? {
                GatherEnd::Action(fetch) => return Ok(Flow::Fetch(fetch)),
                GatherEnd::ActionThenHangUp(fetch) => return Ok(Flow::HangUpDuring(fetch)),
                GatherEnd::FallThrough => {}
                GatherEnd::CalleeHungUp => return Ok(Flow::End(CallStatus::Completed)),
            },
            Verb::Redirect { url, method } => {
                return Ok(Flow::Fetch(Fetch {
                    kind: WebhookKind::Redirect,
                    url: resolve(document_url, url)?,
                    method: *method,
                    extra: Vec::new(),
                }));
            }
            Verb::Hangup => return Ok(hang_up(call, HangupCause::HangupVerb)),
            Verb::Reject { reason } => {
                call.slot.record(Entry::Rejected {
                    reason: reason.clone(),
                });
                // Twilio ends a rejected call as busy or no-answer (docs/PROVIDERS.md#twilio-gather).
                let status = if reason == "busy" {
                    CallStatus::Busy
                } else {
                    CallStatus::NoAnswer
                };
                return Ok(Flow::End(status));
            }
            Verb::Unsupported(name) => call.slot.record(Entry::Unsupported { verb: name.clone() }),
        }
    }
    Ok(hang_up(call, HangupCause::EndOfDocument))
}

fn hang_up(call: &ActiveCall, cause: HangupCause) -> Flow {
    call.slot.record(Entry::HungUp { cause });
    Flow::End(CallStatus::Completed)
}

/// Relative `action` and `<Redirect>` URLs are relative to the document that holds them.
pub fn resolve(document_url: &Url, reference: &str) -> Result<Url, AppError> {
    document_url.join(reference).map_err(|e| AppError {
        code: 11100,
        detail: format!("invalid URL {reference:?}: {e}"),
    })
}

async fn application_error(call: &ActiveCall, clock: &mut Clock, error: AppError) -> CallStatus {
    call.slot.record(Entry::ApplicationError {
        code: error.code,
        detail: error.detail,
    });
    let speech = Verb::Say {
        text: APPLICATION_ERROR_SPEECH.into(),
        language: "en-US".into(),
        voice: None,
        repeat: 1,
    };
    gather::perform(call, clock, &speech, None).await;
    call.slot.record(Entry::HungUp {
        cause: HangupCause::ApplicationError,
    });
    CallStatus::Completed
}
