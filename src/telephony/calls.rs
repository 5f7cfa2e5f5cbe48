//! The call flow's webhooks: `voice` (answered: play the prompt), `gather` (a key or silence)
//! and `status` (call progress). Each is one signature check, one Redis round trip and one
//! TwiML answer prepared from templates.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::twiml::{Closing, Preface};
use super::webhook::SignedWebhook;
use crate::ids::VerificationId;
use crate::state::AppState;
use crate::store::verifications::{Event, GatherStep, Outcome, Transition};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/telephony/twilio/{id}/voice", post(voice))
        .route("/telephony/twilio/{id}/gather", post(gather))
        .route("/telephony/twilio/{id}/status", post(status))
}

fn xml(body: String) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    response
}

fn refused_call() -> Response {
    tracing::warn!("webhook refused: call id does not match the verification's call");
    (
        StatusCode::FORBIDDEN,
        "call does not belong to this verification",
    )
        .into_response()
}

/// Built by copying parts: every prompt answer has one, and `format!` costs several times more.
fn action_url(state: &AppState, id: &VerificationId, step: GatherStep) -> String {
    let parts = [
        &*state.public_url,
        "/telephony/twilio/",
        id.as_str(),
        "/gather?step=",
        step.as_str(),
    ];
    let mut url = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    parts.iter().for_each(|p| url.push_str(p));
    url
}

async fn voice(
    State(state): State<AppState>,
    Path(id): Path<String>,
    hook: SignedWebhook,
) -> Response {
    let call_sid = hook.param("CallSid").unwrap_or_default();
    play(&state, &id, call_sid, Event::Voice).await
}

/// Applies a `voice` or `gather` event and answers with the TwiML the transition calls for.
async fn play(state: &AppState, id: &str, call_sid: &str, event: Event<'_>) -> Response {
    let Ok(id) = VerificationId::parse(id) else {
        return xml(state.twiml.goodbye("", Closing::Gone));
    };
    match state.store.transition(&id, call_sid, event).await {
        Ok(t) => {
            if t.ended {
                state.announce_end(&id);
            }
            answer(state, &id, &t)
        }
        Err(e) => apology(state, &id, e),
    }
}

async fn gather(
    State(state): State<AppState>,
    Path(id): Path<String>,
    hook: SignedWebhook,
) -> Response {
    let call_sid = hook.param("CallSid").unwrap_or_default();
    let mut step = hook
        .query("step")
        .and_then(GatherStep::parse)
        .unwrap_or(GatherStep::Prompt);
    let mut digits = hook.param("Digits").unwrap_or_default();
    // Dialects that ignore numDigits may deliver "0#" at once: that is a confirmed fraud report.
    if step == GatherStep::Prompt && digits == "0#" {
        (step, digits) = (GatherStep::Fraud, "#");
    }
    let event = Event::Gather {
        digits,
        step,
        max_prompts: state.config.verification.max_prompts,
    };
    play(&state, &id, call_sid, event).await
}

async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    hook: SignedWebhook,
) -> Response {
    let Ok(id) = VerificationId::parse(&id) else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let call_sid = hook.param("CallSid").unwrap_or_default();
    let call_status = hook.param("CallStatus").unwrap_or_default();
    match state
        .store
        .transition(&id, call_sid, Event::Status { call_status })
        .await
    {
        Ok(t) if t.outcome == Outcome::Mismatch => refused_call(),
        Ok(t) => {
            if t.ended {
                state.announce_end(&id);
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            crate::ops::metrics::redis_error("webhook", &e);
            // Non-2xx makes the provider log an error; the state catches up on the next event.
            tracing::error!(verification = %id, error = %e, "status callback not recorded");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// The TwiML for a transition of `voice` or `gather`.
fn answer(state: &AppState, id: &VerificationId, t: &Transition) -> Response {
    let twiml = &state.twiml;
    let timeout = state.config.verification.gather_timeout_secs;
    let locale = t.locale.as_str();
    let prompt = |preface| match t.purpose {
        Some(purpose) => twiml.prompt(
            locale,
            purpose,
            preface,
            &action_url(state, id, GatherStep::Prompt),
            timeout,
        ),
        None => twiml.goodbye(locale, Closing::Gone),
    };
    let body = match t.outcome {
        Outcome::Mismatch => return refused_call(),
        Outcome::Prompt => prompt(None),
        Outcome::RepromptInvalid => prompt(Some(Preface::InvalidKey)),
        Outcome::RepromptSilence => prompt(Some(Preface::NoKey)),
        Outcome::ConfirmFraud => {
            twiml.confirm_fraud(locale, &action_url(state, id, GatherStep::Fraud), timeout)
        }
        Outcome::Approved => twiml.goodbye(locale, Closing::Approved),
        Outcome::FraudReported => twiml.goodbye(locale, Closing::FraudReported),
        Outcome::NoInput => twiml.goodbye(locale, Closing::NoInput),
        Outcome::Missing | Outcome::Gone | Outcome::Ok => twiml.goodbye(locale, Closing::Gone),
    };
    xml(body)
}

/// Our side failed: the caller hears a short apology instead of the provider's error message.
fn apology(state: &AppState, id: &VerificationId, error: redis::RedisError) -> Response {
    crate::ops::metrics::redis_error("webhook", &error);
    tracing::error!(verification = %id, %error, "webhook could not be applied");
    xml(state.twiml.goodbye("", Closing::Apology))
}
