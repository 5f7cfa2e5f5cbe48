//! The Twilio Calls REST API the simulator answers (docs/PROVIDERS.md#twilio-calls-api): create, fetch and update
//! (cancel / hang up) a call, with Basic auth and Twilio's error JSON.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;
use url::Url;

use super::Shared;
use super::call::{self, CallRequest};
use super::registry::CallSlot;
use super::transcript::CallStatus;
use super::twiml::Method;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/2010-04-01/Accounts/{account_sid}/Calls.json",
            post(create),
        )
        .route(
            "/2010-04-01/Accounts/{account_sid}/Calls/{call_file}",
            post(update).get(fetch),
        )
        .with_state(shared)
}

/// A Twilio error, answered with the legacy 2010 API error body (docs/PROVIDERS.md#twilio-calls-api-errors).
struct ApiError {
    status: StatusCode,
    code: u32,
    message: String,
}

fn error(status: StatusCode, code: u32, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        code,
        message: message.into(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code;
        let body = json!({
            "code": code,
            "message": self.message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": self.status.as_u16(),
        });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"Twilio API\""),
            );
        }
        response
    }
}

fn authenticate(shared: &Shared, account_sid: &str, headers: &HeaderMap) -> Result<(), ApiError> {
    let expected = format!(
        "{}:{}",
        shared.options.account_sid, shared.options.auth_token
    );
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .unwrap_or_default();
    let credentials_match: bool = presented.ct_eq(expected.as_bytes()).into();
    if credentials_match && account_sid == shared.options.account_sid {
        return Ok(());
    }
    Err(error(StatusCode::UNAUTHORIZED, 20003, "Authenticate"))
}

async fn create(
    State(shared): State<Arc<Shared>>,
    Path(account_sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authenticate(&shared, &account_sid, &headers)?;
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let request = parse_create(&form)?;
    if call::throttled_once(&shared, &request.to) {
        return Err(error(
            StatusCode::TOO_MANY_REQUESTS,
            20429,
            "Too Many Requests",
        ));
    }
    let call_sid = shared.options.dialect.new_call_id();
    let slot = shared
        .registry
        .insert(&call_sid, &request.to, &request.from);
    let resource = resource(&shared, &call_sid, &slot);
    let chaos = call::place(&shared, slot, call_sid, request);
    // The call is placed whatever the client hears now.
    if call::after_placing(chaos).await {
        return Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            20500,
            "Internal Server Error",
        ));
    }
    Ok((StatusCode::CREATED, Json(resource)).into_response())
}

/// Validation in Twilio's order, with its error codes.
fn parse_create(form: &[(String, String)]) -> Result<CallRequest, ApiError> {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    let bad = |code: u32, message: String| error(StatusCode::BAD_REQUEST, code, message);
    let to = field("To").ok_or_else(|| bad(21201, "No 'To' number is specified".into()))?;
    let from = field("From").ok_or_else(|| bad(21213, "No 'From' number is specified".into()))?;
    let url = field("Url").ok_or_else(|| bad(21205, "Url parameter is required.".into()))?;
    if !is_e164(to) {
        return Err(bad(
            21211,
            format!("The 'To' number {to} is not a valid phone number."),
        ));
    }
    if !is_e164(from) {
        return Err(bad(
            21212,
            format!("The 'From' number {from} is not a valid phone number."),
        ));
    }
    let url = http_url(url).ok_or_else(|| bad(21205, format!("Url is not a valid URL: {url}")))?;
    let status_callback = match field("StatusCallback") {
        None => None,
        Some(cb) => Some(
            http_url(cb)
                .ok_or_else(|| bad(21609, format!("StatusCallback is not a valid URL: {cb}")))?,
        ),
    };
    // Repeated once per event (twilio-python), but space-separated lists are accepted too.
    let status_callback_events = form
        .iter()
        .filter(|(k, _)| k == "StatusCallbackEvent")
        .flat_map(|(_, v)| v.split([' ', ',']))
        .filter(|e| !e.is_empty())
        .map(|e| e.to_ascii_lowercase())
        .collect();
    // Twilio rings 60 s by default and at most 600 s (docs/PROVIDERS.md#twilio-calls-api).
    let timeout_secs = field("Timeout")
        .and_then(|t| t.parse::<u32>().ok())
        .unwrap_or(60)
        .clamp(1, 600);
    Ok(CallRequest {
        to: to.to_owned(),
        from: from.to_owned(),
        url,
        method: Method::parse_or_post(field("Method")),
        status_callback,
        status_callback_method: Method::parse_or_post(field("StatusCallbackMethod")),
        status_callback_events,
        timeout_secs,
        machine_detection: field("MachineDetection")
            .is_some_and(|m| m.eq_ignore_ascii_case("Enable") || m == "DetectMessageEnd"),
    })
}

pub(crate) fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (2..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

pub(crate) fn http_url(value: &str) -> Option<Url> {
    Url::parse(value)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

/// `{CallSid}.json` from the last path segment.
fn lookup(shared: &Shared, call_file: &str) -> Result<(String, Arc<CallSlot>), ApiError> {
    call_file
        .strip_suffix(".json")
        .and_then(|sid| Some((sid.to_owned(), shared.registry.get(sid)?)))
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                20404,
                format!("The requested resource /Calls/{call_file} was not found"),
            )
        })
}

async fn fetch(
    State(shared): State<Arc<Shared>>,
    Path((account_sid, call_file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authenticate(&shared, &account_sid, &headers)?;
    let (sid, slot) = lookup(&shared, &call_file)?;
    Ok(Json(resource(&shared, &sid, &slot)))
}

/// `Status=canceled` stops a call that is not answered yet; `Status=completed` ends it
/// whatever its state (an unanswered call then ends `canceled`). Anything else (a finished call, `canceled` once answered) is a no-op
/// answered with the resource, like Twilio.
async fn update(
    State(shared): State<Arc<Shared>>,
    Path((account_sid, call_file)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    authenticate(&shared, &account_sid, &headers)?;
    let (sid, slot) = lookup(&shared, &call_file)?;
    let requested = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "Status")
        .map(|(_, v)| v.into_owned());
    let current = slot.status();
    let unanswered = matches!(current, CallStatus::Queued | CallStatus::Ringing);
    match requested.as_deref() {
        Some("canceled") if unanswered => slot.request_hangup(),
        Some("completed") if !current.is_final() => slot.request_hangup(),
        Some("canceled" | "completed") | None => {}
        Some(other) => {
            // Twilio's exact code for this is unconfirmed; 20001 is its generic "invalid parameter".
            return Err(error(
                StatusCode::BAD_REQUEST,
                20001,
                format!("Invalid Status {other:?}: use canceled or completed"),
            ));
        }
    }
    Ok(Json(resource(&shared, &sid, &slot)))
}

/// The Call resource JSON (docs/PROVIDERS.md#twilio-calls-resource), with the fields a client may read.
fn resource(shared: &Shared, sid: &str, slot: &CallSlot) -> Value {
    let rfc2822 = |t: OffsetDateTime| t.format(&Rfc2822).ok();
    let transcript = slot.transcript();
    let (to, from) = (&transcript.to, &transcript.from);
    let times = slot.times();
    let account = &shared.options.account_sid;
    let uri = format!("/2010-04-01/Accounts/{account}/Calls/{sid}.json");
    json!({
        "sid": sid,
        "account_sid": account,
        "parent_call_sid": null,
        "to": to,
        "to_formatted": to,
        "from": from,
        "from_formatted": from,
        "phone_number_sid": null,
        "status": transcript.status.as_str(),
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "date_created": rfc2822(slot.created_at),
        "date_updated": rfc2822(OffsetDateTime::now_utc()),
        "start_time": times.answered_at.and_then(rfc2822),
        "end_time": times.ended_at.and_then(rfc2822),
        "duration": transcript.duration_secs.map(|d| d.to_string()),
        "price": null,
        "price_unit": "USD",
        "answered_by": null,
        "forwarded_from": null,
        "caller_name": null,
        "group_sid": null,
        "queue_time": "0",
        "trunk_sid": null,
        "uri": uri,
        "subresource_uris": {},
    })
}
