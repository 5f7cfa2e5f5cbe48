//! Plivo's Voice API as the simulator answers it (docs/PROVIDERS.md#plivo): `POST
//! /v1/Account/{auth_id}/Call/` (JSON, Basic auth Auth ID / Auth Token) answers 201 with
//! `request_uuid`; `GET …/Call/{uuid}/` reads a call, `DELETE …/Call/{uuid}/` hangs it up and
//! `DELETE …/Request/{uuid}/` cancels one not yet answered. Errors are `{"api_id", "error"}`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use base64::Engine;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::Shared;
use super::call::{self, CallRequest};
use super::calls_api::{http_url, is_e164};
use super::transcript::CallStatus;
use super::twiml::Method;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/Account/{auth_id}/Call/", post(create))
        .route(
            "/v1/Account/{auth_id}/Call/{uuid}/",
            get(fetch).delete(hang_up),
        )
        .route("/v1/Account/{auth_id}/Request/{uuid}/", delete(hang_up))
        .with_state(shared)
}

fn api_id() -> String {
    use rand::RngExt;
    hex::encode(rand::rng().random::<[u8; 8]>())
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "api_id": api_id(), "error": message })),
    )
        .into_response()
}

fn authenticate(shared: &Shared, auth_id: &str, headers: &HeaderMap) -> bool {
    let expected = format!(
        "{}:{}",
        shared.options.account_sid, shared.options.auth_token
    );
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .unwrap_or_default();
    let ok: bool = presented.ct_eq(expected.as_bytes()).into();
    ok && auth_id == shared.options.account_sid
}

fn unauthorized() -> Response {
    error(StatusCode::UNAUTHORIZED, "authentication failed")
}

async fn create(
    State(shared): State<Arc<Shared>>,
    Path(auth_id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !authenticate(&shared, &auth_id, &headers) {
        return unauthorized();
    }
    let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::trim);
    let Some(to) = field("to").filter(|t| is_e164(t)) else {
        return error(StatusCode::BAD_REQUEST, "invalid 'to' number");
    };
    let Some(from) = field("from").filter(|f| is_e164(f)) else {
        return error(StatusCode::BAD_REQUEST, "invalid 'from' number");
    };
    let Some(url) = field("answer_url").and_then(http_url) else {
        return error(StatusCode::BAD_REQUEST, "answer_url is required");
    };
    let hangup_url = field("hangup_url").and_then(http_url);
    let ring_url = field("ring_url").and_then(http_url);
    // One status callback URL per call in the simulator: the hangup URL (the ring URL when it
    // is the only one); ring events go there when a ring URL was given.
    let events = if ring_url.is_some() {
        vec!["ringing".to_owned()]
    } else {
        Vec::new()
    };
    let timeout_secs = body
        .get("ring_timeout")
        .and_then(|t| {
            t.as_u64()
                .or_else(|| t.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(60)
        .clamp(1, 600) as u32;
    let request = CallRequest {
        to: to.to_owned(),
        from: from.to_owned(),
        url,
        method: Method::parse_or_post(field("answer_method")),
        status_callback: hangup_url.or(ring_url),
        status_callback_method: Method::parse_or_post(field("hangup_method")),
        status_callback_events: events,
        timeout_secs,
        machine_detection: field("machine_detection")
            .is_some_and(|m| m.eq_ignore_ascii_case("true") || m.eq_ignore_ascii_case("hangup")),
    };
    if call::throttled_once(&shared, &request.to) {
        return error(StatusCode::TOO_MANY_REQUESTS, "too many requests");
    }
    let uuid = shared.options.dialect.new_call_id();
    let slot = shared.registry.insert(&uuid, &request.to, &request.from);
    let answer = json!({ "api_id": api_id(), "message": "call fired", "request_uuid": uuid });
    let chaos = call::place(&shared, slot, uuid, request);
    // The call is placed whatever the client hears now.
    if call::after_placing(chaos).await {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
    }
    (StatusCode::CREATED, Json(answer)).into_response()
}

/// `GET …/Call/{uuid}/?status=live` is the live-call endpoint: `call_status` while the call is
/// up, 404 once it ended. `GET …/Call/{uuid}/` is the call record (once ended): `answer_time`,
/// `end_time`, durations and the hangup cause, and no `call_status`.
async fn fetch(
    State(shared): State<Arc<Shared>>,
    Path((auth_id, uuid)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if !authenticate(&shared, &auth_id, &headers) {
        return unauthorized();
    }
    let Some(slot) = shared.registry.get(&uuid) else {
        return error(StatusCode::NOT_FOUND, "call not found");
    };
    let transcript = slot.transcript();
    let status = transcript.status;
    let live = query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|p| p == "status=live"));
    if live {
        if status.is_final() {
            return error(StatusCode::NOT_FOUND, "call not found");
        }
        let word = shared.options.dialect.status_word(status);
        return Json(
            json!({ "api_id": api_id(), "call_uuid": uuid, "request_uuid": uuid, "call_status": word }),
        )
        .into_response();
    }
    if !status.is_final() {
        return error(StatusCode::NOT_FOUND, "call not found");
    }
    let answered = status == CallStatus::Completed;
    let duration = transcript.duration_secs.unwrap_or(0);
    Json(json!({
        "api_id": api_id(),
        "call_uuid": uuid,
        "answer_time": answered.then_some("2026-01-01 00:00:00+00:00"),
        "end_time": "2026-01-01 00:00:30+00:00",
        "bill_duration": duration,
        "call_duration": duration,
        "hangup_cause_name": hangup_cause_name(status),
        "hangup_source": "Callee",
    }))
    .into_response()
}

/// The record's `hangup_cause_name` for a final status.
fn hangup_cause_name(status: CallStatus) -> &'static str {
    match status {
        CallStatus::Busy => "Busy Line",
        CallStatus::NoAnswer => "No Answer",
        CallStatus::Canceled => "Cancelled",
        CallStatus::Failed => "Unknown Error",
        _ => "Normal Hangup",
    }
}

async fn hang_up(
    State(shared): State<Arc<Shared>>,
    Path((auth_id, uuid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !authenticate(&shared, &auth_id, &headers) {
        return unauthorized();
    }
    let Some(slot) = shared.registry.get(&uuid) else {
        return error(StatusCode::NOT_FOUND, "call not found");
    };
    if !slot.status().is_final() {
        slot.request_hangup();
    }
    StatusCode::NO_CONTENT.into_response()
}
