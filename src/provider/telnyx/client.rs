//! Telnyx's TeXML Calls API (docs/PROVIDERS.md#telnyx-texml): `POST
//! /v2/texml/Accounts/{account_sid}/Calls` with a JSON body and `Authorization: Bearer <API
//! key>`; `GET`/`POST …/Calls/{call_sid}` to read or end a call. Errors are JSON:API
//! `{"errors": [{"code": "10015", "title": …, "detail": …, "source": {"pointer": "/To"}}]}`.

use crate::provider::dialect::CallsApi;
use serde::Deserialize;
use serde_json::json;

use super::config::TelnyxKeys;
use crate::config::Secret;
use crate::provider::http::{self, CodeKind, timed};
use crate::provider::settings::{AccountCommon, CallBounds};
use crate::provider::{CallRequest, ProviderError};

#[derive(Clone)]
pub struct TelnyxClient {
    http: reqwest::Client,
    /// `…/Accounts/{account_sid}/Calls`, parsed once ([`http::api_url`]).
    calls_url: reqwest::Url,
    api_key: Secret,
    application_sid: String,
    /// What every call asks for (caller ID, ring timeout, time limit, machine detection).
    bounds: CallBounds,
}

/// The call resource: the create answer and `GET …/Calls/{sid}` (field names vary between
/// Telnyx's examples, so every spelling seen is read — several may be present at once, which a
/// serde alias would refuse as a duplicate field).
#[derive(Default)]
struct CallResource {
    call_sid: Option<String>,
    status: Option<String>,
}

impl CallResource {
    fn read(value: &serde_json::Value) -> Option<Self> {
        let object = value.as_object()?;
        let first = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| object.get(*n).and_then(|v| v.as_str()))
                .map(str::to_owned)
        };
        Some(Self {
            call_sid: first(&["call_sid", "sid", "CallSid"]),
            status: first(&["status", "Status"]),
        })
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    source: Option<ErrorSource>,
}

#[derive(Deserialize)]
struct ErrorSource {
    #[serde(default)]
    pointer: Option<String>,
}

/// Telnyx codes for a destination that is not a valid, dialable number
/// (docs/PROVIDERS.md#telnyx-relied-on-behaviour): 10002 "Invalid phone number", 10016 "Phone
/// number must be in +E.164 format", 90010/90011 (invalid destination). Never failed over: every
/// account would refuse the same number.
pub const INVALID_NUMBER_CODES: [u32; 4] = [10002, 10016, 90010, 90011];
/// Telnyx codes for the operator's configuration: authentication (10009) and authorization
/// (10010) failed.
pub const MISCONFIGURED_CODES: [u32; 2] = [10009, 10010];
/// Telnyx's "too many requests".
pub const THROTTLED_CODES: [u32; 1] = [10011];

impl TelnyxClient {
    pub fn new(account: &AccountCommon, config: &TelnyxKeys) -> Result<Self, String> {
        Ok(Self {
            http: http::client(account.request_timeout())?,
            calls_url: http::api_url(&format!(
                "{}/v2/texml/Accounts/{}/Calls",
                config.api_base.trim_end_matches('/'),
                config.account_sid
            ))?,
            api_key: config.api_key.clone(),
            application_sid: config.application_sid.clone(),
            bounds: CallBounds::from(account),
        })
    }
}

impl CallsApi for TelnyxClient {
    async fn create_call(&self, call: CallRequest<'_>) -> Result<Option<String>, ProviderError> {
        // Only the parameter names of Telnyx's TeXML "Initiate an outbound call"
        // (docs/PROVIDERS.md#telnyx-relied-on-behaviour): `UrlMethod`, not Twilio's `Method`;
        // there is no `FallbackMethod` (the fallback uses the application's method).
        let mut body = json!({
            "ApplicationSid": self.application_sid,
            "To": call.to_e164,
            "From": self.bounds.from,
            "Url": call.answer_url,
            "UrlMethod": "POST",
            "FallbackUrl": call.fallback_url,
            "StatusCallback": call.status_url,
            "StatusCallbackMethod": "POST",
            "StatusCallbackEvent": "initiated ringing answered completed",
            "Timeout": self.bounds.ring_timeout_secs,
        });
        if self.bounds.time_limit_secs > 0 {
            body["TimeLimit"] = self.bounds.time_limit_secs.into();
        }
        if self.bounds.machine_detection {
            body["MachineDetection"] = "Enable".into();
        }
        let request = self.http.post(self.calls_url.clone()).json(&body);
        // A 2xx answer is a placed call. Telnyx documents that answer as `{from, to, status}`,
        // with no call id (docs/PROVIDERS.md#telnyx-relied-on-behaviour): then there is no id
        // and the call is bound by its first signed callback (`Provider::place_call`).
        Ok(timed("create_call", self.send(request))
            .await?
            .call_sid
            .filter(|sid| !sid.is_empty()))
    }

    async fn end_call(&self, call_sid: &str) -> Result<(), ProviderError> {
        let request = self
            .http
            .post(self.call_url(call_sid))
            // Form-encoded, CamelCase keys (TeXML "Update call"; docs/PROVIDERS.md#canceling-a-call).
            .form(&[("Status", "completed")]);
        timed("end_call", self.send(request)).await.map(|_| ())
    }

    async fn call_status(&self, call_sid: &str) -> Result<String, ProviderError> {
        let request = self.http.get(self.call_url(call_sid));
        Ok(timed("call_status", self.send(request))
            .await?
            .status
            .unwrap_or_default())
    }
}

impl TelnyxClient {
    fn call_url(&self, call_sid: &str) -> String {
        let sid: String = url::form_urlencoded::byte_serialize(call_sid.as_bytes()).collect();
        format!("{}/{sid}", self.calls_url)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<CallResource, ProviderError> {
        let (status, body) = http::exchange(request.bearer_auth(self.api_key.expose())).await?;
        if status.is_success() {
            let value: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
                ProviderError::Unknown(format!("HTTP {status}: unreadable call resource"))
            })?;
            // Some answers wrap the resource in `data`.
            let resource = value.get("data").cloned().unwrap_or(value);
            return CallResource::read(&resource).ok_or_else(|| {
                ProviderError::Unknown(format!("HTTP {status}: unreadable call resource"))
            });
        }
        Err(classify(status, &body))
    }
}

/// A Telnyx error answer in neutral terms.
pub fn classify(status: reqwest::StatusCode, body: &[u8]) -> ProviderError {
    let first = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.errors.into_iter().next());
    let code = first
        .as_ref()
        .and_then(|e| e.code.as_deref())
        .and_then(|c| c.parse().ok())
        .unwrap_or(u32::from(status.as_u16()));
    let points_at_to = first
        .as_ref()
        .and_then(|e| e.source.as_ref())
        .and_then(|s| s.pointer.as_deref())
        .is_some_and(|p| p.eq_ignore_ascii_case("/to"));
    let message = first
        .map(|e| {
            [e.title, e.detail]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ")
        })
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    let kind = if INVALID_NUMBER_CODES.contains(&code) || points_at_to {
        CodeKind::InvalidNumber
    } else if MISCONFIGURED_CODES.contains(&code) {
        CodeKind::Misconfigured
    } else if THROTTLED_CODES.contains(&code) {
        CodeKind::Throttled
    } else {
        CodeKind::Other
    };
    http::refusal(status, code, message, kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::FailureReason;
    use crate::provider::CallRefusal;
    use reqwest::StatusCode;

    #[test]
    fn telnyx_errors_map_to_neutral_reasons() {
        let to = br#"{"errors":[{"code":"10016","title":"Phone number must be in +E.164 format","source":{"pointer":"/To"}}]}"#;
        let e = classify(StatusCode::UNPROCESSABLE_ENTITY, to);
        assert!(matches!(
            e,
            ProviderError::Refused {
                refusal: CallRefusal::InvalidNumber,
                code: 10016,
                ..
            }
        ));
        assert_eq!(e.reason(), FailureReason::InvalidNumber);
        assert!(!e.fails_over());
        let auth = br#"{"errors":[{"code":"10009","title":"Authentication failed"}]}"#;
        let e = classify(StatusCode::UNAUTHORIZED, auth);
        assert!(matches!(e, ProviderError::Misconfigured { code: 10009, .. }) && e.fails_over());
        let e = classify(StatusCode::TOO_MANY_REQUESTS, b"{}");
        assert!(matches!(e, ProviderError::Throttled { .. }));
        let slow = br#"{"errors":[{"code":"10011","title":"Too many requests"}]}"#;
        let e = classify(StatusCode::BAD_REQUEST, slow);
        assert!(matches!(e, ProviderError::Throttled { code: 10011, .. }));
        let invalid = br#"{"errors":[{"code":"10002","title":"Invalid phone number"}]}"#;
        let e = classify(StatusCode::UNPROCESSABLE_ENTITY, invalid);
        assert_eq!(e.reason(), FailureReason::InvalidNumber);
        assert!(!e.fails_over());
        let other = br#"{"errors":[{"code":"10015","title":"Bad request"}]}"#;
        let e = classify(StatusCode::BAD_REQUEST, other);
        assert_eq!(e.reason(), FailureReason::ProviderRejected);
        assert!(e.fails_over());
        let e = classify(StatusCode::SERVICE_UNAVAILABLE, b"<html>");
        assert!(matches!(e, ProviderError::Unknown(_)) && !e.fails_over());
        assert_eq!(e.reason(), FailureReason::ProviderUnknown);
    }

    #[test]
    fn a_call_resource_may_spell_its_id_several_ways_at_once() {
        let both = json!({"sid": "v3:a", "call_sid": "v3:a", "status": "completed"});
        let r = CallResource::read(&both).unwrap();
        assert_eq!(r.call_sid.as_deref(), Some("v3:a"));
        assert_eq!(r.status.as_deref(), Some("completed"));
        assert!(CallResource::read(&json!("x")).is_none());
    }
}
