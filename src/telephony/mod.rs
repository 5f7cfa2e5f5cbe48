//! Provider webhooks over HTTP: `/telephony/{provider}/{id}/{voice|gather|status}`, where
//! `{provider}` names a configured provider account (the single-provider configuration's account
//! is `twilio`, so URLs of calls placed before the provider-named routes keep working). Each
//! request is authenticated and decoded by its provider's adapter before anything else, then
//! handed to the call flow (`src/verification/webhooks.rs`), whose answer goes back in the
//! provider's markup.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::call::prompts::{Answer, Closing};
use crate::error::ApiError;
use crate::provider::{Markup, Provider, Refusal, Webhook, WebhookRequest};
use crate::state::AppState;
use crate::verification::transition::GatherStep;
use crate::verification::webhooks::{Reply, StatusReply};

pub fn router(state: &AppState) -> Router<AppState> {
    let providers = state.flow.providers.clone();
    // Over the deadline, the caller hears the apology in the provider's own markup rather
    // than the provider's generic application-error message.
    let on_timeout = Arc::new(move |path: &str, deadline: Duration| {
        tracing::warn!(
            deadline_ms = deadline.as_millis() as u64,
            "webhook timed out: answered with the apology"
        );
        let name = path.split('/').nth(2).unwrap_or_default();
        match providers.get(name) {
            Some(provider) => markup(apology(provider.as_ref())),
            None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        }
    });
    let base = Duration::from_millis(state.config.server.request_timeout_ms);
    let router = Router::new()
        .route("/telephony/{provider}/{id}/voice", post(voice))
        .route("/telephony/{provider}/{id}/gather", post(gather))
        .route("/telephony/{provider}/{id}/status", post(status))
        .route("/telephony/{provider}/{id}/fallback", post(fallback));
    crate::ops::timeout::layer(router, base, |_| Duration::ZERO, on_timeout)
}

fn apology(provider: &dyn Provider) -> Markup {
    provider.render(&Answer::Goodbye {
        locale: "",
        closing: Closing::Apology,
    })
}

fn markup(document: Markup) -> Response {
    let mut response = document.body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(document.content_type),
    );
    response
}

fn not_this_call() -> Response {
    (
        StatusCode::FORBIDDEN,
        "call does not belong to this verification",
    )
        .into_response()
}

/// A webhook its provider authenticated and decoded, with the verification id and the URL's
/// query (our own `step` on gather URLs).
struct Received {
    provider: Arc<dyn Provider>,
    id: String,
    step: Option<GatherStep>,
    /// The prompt number a gather's action URL names (`n`).
    prompt: Option<u32>,
    hook: Webhook,
}

impl FromRequest<AppState> for Received {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        // The route is `/telephony/{provider}/{id}/…`: the two segments are read straight from
        // the path (account names and ids are plain ASCII; anything percent-encoded is no
        // account of ours), without the `Path` extractor's deserializer and copies.
        let mut segments = parts.uri.path().split('/').skip(2);
        let (Some(name), Some(id)) = (segments.next(), segments.next()) else {
            return Err(ApiError::NotFound("no such webhook".into()).into_response());
        };
        let Some(provider) = state.flow.providers.get(name).cloned() else {
            return Err(ApiError::NotFound("no such provider account".into()).into_response());
        };
        let id = id.to_owned();
        let path_and_query = parts.uri.path_and_query().map_or("", |p| p.as_str());
        let url = format!("{}{}", state.flow.settings.public_url, path_and_query);
        let (mut step, mut prompt) = (None, None);
        for (k, v) in form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes()) {
            match &*k {
                "step" => step = GatherStep::parse(&v),
                "n" => prompt = v.parse().ok(),
                _ => {}
            }
        }
        let limit = state.config.server.body_limit_bytes;
        let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
            ApiError::PayloadTooLarge(format!("webhook bodies are at most {limit} bytes"))
                .into_response()
        })?;
        let request = WebhookRequest {
            url: &url,
            headers: &parts.headers,
            body: &body,
        };
        match provider.receive(&request) {
            Ok(hook) => Ok(Self {
                provider,
                id,
                step,
                prompt,
                hook,
            }),
            Err(refusal) => Err(refuse(refusal)),
        }
    }
}

/// A refused webhook changes nothing; the provider only sees the status.
fn refuse(refusal: Refusal) -> Response {
    tracing::warn!(reason = refusal.label(), "webhook refused: {refusal}");
    crate::ops::metrics::signature_failure(refusal.label());
    match refusal {
        Refusal::UnsupportedMediaType => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "webhooks are application/x-www-form-urlencoded",
        )
            .into_response(),
        Refusal::MissingCallId => {
            (StatusCode::FORBIDDEN, "webhook without a call id").into_response()
        }
        Refusal::MissingSignature | Refusal::BadSignature => {
            (StatusCode::FORBIDDEN, "invalid webhook signature").into_response()
        }
    }
}

fn reply(reply: Reply) -> Response {
    match reply {
        Reply::Document(document) => markup(document),
        Reply::NotThisCall => not_this_call(),
    }
}

async fn voice(State(state): State<AppState>, r: Received) -> Response {
    let (provider, hook) = (r.provider.as_ref(), &r.hook);
    let answered = state
        .flow
        .answered(provider, &r.id, &hook.call_id, hook.machine);
    reply(answered.await)
}

async fn gather(State(state): State<AppState>, r: Received) -> Response {
    let step = r.step.unwrap_or(GatherStep::Prompt);
    let (provider, hook) = (r.provider.as_ref(), &r.hook);
    let pressed = state
        .flow
        .pressed(provider, &r.id, &hook.call_id, &hook.digits, step, r.prompt);
    reply(pressed.await)
}

async fn status(State(state): State<AppState>, r: Received) -> Response {
    match state
        .flow
        .progressed(
            r.provider.name(),
            &r.id,
            &r.hook.call_id,
            r.hook.progress,
            r.hook.machine,
        )
        .await
    {
        StatusReply::Recorded => StatusCode::NO_CONTENT.into_response(),
        StatusReply::NotThisCall => not_this_call(),
        StatusReply::Unavailable => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// `fallback`: the provider could not fetch one of our documents (timeout, error). The caller
/// hears a polite apology and the call ends; the verification is left to its status callbacks
/// and reconciliation. Touches no state, so it answers even when Redis does not.
async fn fallback(r: Received) -> Response {
    tracing::warn!(verification = %r.id, "fallback document requested: the caller hears the apology");
    markup(apology(r.provider.as_ref()))
}
