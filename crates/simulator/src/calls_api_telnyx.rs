//! Telnyx's TeXML Calls API as the simulator answers it (docs/PROVIDERS.md#telnyx-texml):
//! `POST /v2/texml/Accounts/{account_sid}/Calls` with a JSON body and `Authorization: Bearer
//! <API key>` (the simulator's `auth_token`), `GET`/`POST …/Calls/{call_sid}` to read or end a
//! call, errors as JSON:API `errors`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::Shared;
use super::call::{self, CallRequest};
use super::calls_api::{http_url, is_e164};
use super::transcript::CallStatus;
use super::twiml::Method;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v2/texml/Accounts/{account_sid}/Calls", post(create))
        .route(
            "/v2/texml/Accounts/{account_sid}/Calls/{call_sid}",
            post(update).get(fetch),
        )
        .with_state(shared)
}

fn error(status: StatusCode, code: &str, title: &str, pointer: Option<&str>) -> Response {
    let mut item = json!({ "code": code, "title": title, "detail": title });
    if let Some(p) = pointer {
        item["source"] = json!({ "pointer": p });
    }
    (status, Json(json!({ "errors": [item] }))).into_response()
}

fn authenticate(shared: &Shared, account_sid: &str, headers: &HeaderMap) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let ok: bool = presented
        .as_bytes()
        .ct_eq(shared.options.auth_token.as_bytes())
        .into();
    ok && account_sid == shared.options.account_sid
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "10009",
        "Authentication failed",
        None,
    )
}

async fn create(
    State(shared): State<Arc<Shared>>,
    Path(account_sid): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !authenticate(&shared, &account_sid, &headers) {
        return unauthorized();
    }
    let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::trim);
    let invalid = |pointer: &str, title: &str| {
        error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "10015",
            title,
            Some(pointer),
        )
    };
    if field("ApplicationSid").is_none_or(str::is_empty) {
        return invalid("/ApplicationSid", "ApplicationSid is required");
    }
    let Some(to) = field("To").filter(|t| is_e164(t)) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "10016",
            "Phone number must be in +E.164 format",
            Some("/To"),
        );
    };
    let Some(from) = field("From").filter(|f| is_e164(f)) else {
        return invalid("/From", "From must be in +E.164 format");
    };
    let Some(url) = field("Url").and_then(http_url) else {
        return invalid("/Url", "Url must be a valid URL");
    };
    let status_callback = field("StatusCallback").and_then(http_url);
    let events = field("StatusCallbackEvent")
        .unwrap_or("completed")
        .split([' ', ','])
        .filter(|e| !e.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let timeout_secs = body
        .get("Timeout")
        .and_then(|t| {
            t.as_u64()
                .or_else(|| t.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(30)
        .clamp(1, 600) as u32;
    let request = CallRequest {
        to: to.to_owned(),
        from: from.to_owned(),
        url,
        // `UrlMethod` is the documented name (Twilio's `Method` is not a TeXML parameter and is
        // ignored); without it the TeXML application's method applies, which the simulator
        // takes to be POST.
        method: Method::parse_or_post(field("UrlMethod")),
        status_callback,
        status_callback_method: Method::parse_or_post(field("StatusCallbackMethod")),
        status_callback_events: events,
        timeout_secs,
        machine_detection: field("MachineDetection")
            .is_some_and(|m| m.eq_ignore_ascii_case("enable")),
    };
    if call::throttled_once(&shared, &request.to) {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "10011",
            "Too many requests",
            None,
        );
    }
    let sid = shared.options.dialect.new_call_id();
    let slot = shared.registry.insert(&sid, &request.to, &request.from);
    let answer =
        json!({ "call_sid": sid, "from": request.from, "to": request.to, "status": "queued" });
    let chaos = call::place(&shared, slot, sid, request);
    // The call is placed whatever the client hears now.
    if call::after_placing(chaos).await {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "10007",
            "Unexpected error",
            None,
        );
    }
    (StatusCode::OK, Json(answer)).into_response()
}

fn resource(sid: &str, status: CallStatus, to: &str, from: &str) -> Value {
    json!({ "sid": sid, "call_sid": sid, "status": status.as_str(), "to": to, "from": from, "direction": "outbound-api" })
}

async fn fetch(
    State(shared): State<Arc<Shared>>,
    Path((account_sid, call_sid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !authenticate(&shared, &account_sid, &headers) {
        return unauthorized();
    }
    let Some(slot) = shared.registry.get(&call_sid) else {
        return error(StatusCode::NOT_FOUND, "10005", "Resource not found", None);
    };
    let t = slot.transcript();
    Json(resource(&call_sid, t.status, &t.to, &t.from)).into_response()
}

async fn update(
    State(shared): State<Arc<Shared>>,
    Path((account_sid, call_sid)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !authenticate(&shared, &account_sid, &headers) {
        return unauthorized();
    }
    let Some(slot) = shared.registry.get(&call_sid) else {
        return error(StatusCode::NOT_FOUND, "10005", "Resource not found", None);
    };
    // "Update call" takes a form-encoded body with CamelCase keys (Telnyx's TeXML reference).
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        let title = "Update call takes application/x-www-form-urlencoded";
        return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "10015", title, None);
    }
    let status = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "Status")
        .map(|(_, v)| v.into_owned());
    let requested = status.as_deref();
    if matches!(requested, Some("completed" | "canceled")) && !slot.status().is_final() {
        slot.request_hangup();
    }
    let t = slot.transcript();
    Json(resource(&call_sid, t.status, &t.to, &t.from)).into_response()
}
