//! Plivo's Voice API (docs/PROVIDERS.md#plivo): `POST /v1/Account/{auth_id}/Call/` with a
//! JSON body and Basic auth (Auth ID, Auth Token); the answer's `request_uuid` identifies the
//! call (Plivo's webhooks carry it as `RequestUUID`). Live calls are read with
//! `GET …/Call/{uuid}/?status=live` and ended with `DELETE …/Call/{uuid}/`; a call not yet
//! answered is cancelled with `DELETE …/Request/{uuid}/`. Errors are `{"api_id", "error"}`
//! with the HTTP status as the only code.

use crate::provider::dialect::CallsApi;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::config::PlivoKeys;
use crate::config::Secret;
use crate::provider::http::{self, CodeKind, timed};
use crate::provider::settings::{AccountCommon, CallBounds};
use crate::provider::{CallRequest, ProviderError};

#[derive(Clone)]
pub struct PlivoClient {
    http: reqwest::Client,
    account_url: String,
    /// `{account_url}/Call/`, parsed once ([`http::api_url`]).
    create_url: reqwest::Url,
    auth_id: String,
    auth_token: Secret,
    /// What every call asks for (caller ID, ring timeout, time limit, machine detection).
    bounds: CallBounds,
}

#[derive(Deserialize, Default)]
struct Answer {
    #[serde(default)]
    request_uuid: Option<serde_json::Value>,
    #[serde(default)]
    call_status: Option<String>,
    #[serde(default)]
    call_state: Option<String>,
    /// The call record's (an ended call): set once it ended.
    #[serde(default)]
    end_time: Option<String>,
    /// The call record's: set when the callee answered.
    #[serde(default)]
    answer_time: Option<String>,
    #[serde(default)]
    hangup_cause_name: Option<String>,
}

impl Answer {
    /// The status word of a live call, or the one an ended call's record implies: answered
    /// → `completed`; never answered → `busy` for a busy line, else `no-answer`.
    fn status_word(self) -> String {
        if let Some(word) = self.call_status.or(self.call_state) {
            return word;
        }
        let present = |v: &Option<String>| v.as_deref().is_some_and(|t| !t.trim().is_empty());
        if !present(&self.end_time) {
            return String::new();
        }
        if present(&self.answer_time) {
            return "completed".into();
        }
        let cause = self
            .hangup_cause_name
            .unwrap_or_default()
            .to_ascii_lowercase();
        if cause.contains("busy") {
            "busy".into()
        } else {
            "no-answer".into()
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: Option<serde_json::Value>,
}

impl PlivoClient {
    pub fn new(account: &AccountCommon, config: &PlivoKeys) -> Result<Self, String> {
        let account_url = format!(
            "{}/v1/Account/{}",
            config.api_base.trim_end_matches('/'),
            config.auth_id
        );
        Ok(Self {
            http: http::client(account.request_timeout())?,
            create_url: http::api_url(&format!("{account_url}/Call/"))?,
            account_url,
            auth_id: config.auth_id.clone(),
            auth_token: config.auth_token.clone(),
            bounds: CallBounds::from(account),
        })
    }
}

impl CallsApi for PlivoClient {
    async fn create_call(&self, call: CallRequest<'_>) -> Result<Option<String>, ProviderError> {
        let mut body = json!({
            "from": self.bounds.from,
            "to": call.to_e164,
            "answer_url": call.answer_url,
            "answer_method": "POST",
            "fallback_url": call.fallback_url,
            "fallback_method": "POST",
            "ring_url": call.status_url,
            "ring_method": "POST",
            "hangup_url": call.status_url,
            "hangup_method": "POST",
            "ring_timeout": self.bounds.ring_timeout_secs,
        });
        if self.bounds.time_limit_secs > 0 {
            body["time_limit"] = self.bounds.time_limit_secs.into();
        }
        if self.bounds.machine_detection {
            // Synchronous detection: the answer_url request carries `Machine=true|false`.
            body["machine_detection"] = "true".into();
        }
        let request = self.http.post(self.create_url.clone()).json(&body);
        let answer = timed("create_call", self.send(request)).await?;
        // A string, or a list of one for a single destination.
        let uuid = match answer.request_uuid {
            Some(serde_json::Value::String(s)) => Some(s),
            Some(serde_json::Value::Array(list)) => list
                .into_iter()
                .next()
                .and_then(|v| v.as_str().map(str::to_owned)),
            _ => None,
        };
        uuid.filter(|u| !u.is_empty())
            .map(Some)
            .ok_or_else(|| ProviderError::Unknown("call fired without a request_uuid".into()))
    }

    async fn end_call(&self, uuid: &str) -> Result<(), ProviderError> {
        let live = self
            .http
            .delete(format!("{}/Call/{}/", self.account_url, encode(uuid)));
        match timed("end_call", self.send(live)).await {
            Err(ProviderError::Refused { code: 404, .. }) => {
                let queued =
                    self.http
                        .delete(format!("{}/Request/{}/", self.account_url, encode(uuid)));
                timed("end_call", self.send(queued)).await.map(|_| ())
            }
            other => other.map(|_| ()),
        }
    }

    /// The call's status as Plivo words it: the live-call endpoint's `call_status` while the
    /// call is up; once that is 404 (the call ended), what the call record implies
    /// (docs/PROVIDERS.md#plivo-reconciliation).
    async fn call_status(&self, uuid: &str) -> Result<String, ProviderError> {
        let live = self.http.get(format!(
            "{}/Call/{}/?status=live",
            self.account_url,
            encode(uuid)
        ));
        let answer = match timed("call_status", self.send(live)).await {
            Err(ProviderError::Refused { code: 404, .. }) => {
                let record = self
                    .http
                    .get(format!("{}/Call/{}/", self.account_url, encode(uuid)));
                timed("call_status", self.send(record)).await?
            }
            other => other?,
        };
        Ok(answer.status_word())
    }
}

impl PlivoClient {
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer, ProviderError> {
        let request = request.basic_auth(&self.auth_id, Some(self.auth_token.expose()));
        let (status, body) = http::exchange(request).await?;
        if status.is_success() {
            if body.is_empty() {
                return Ok(Answer::default());
            }
            return serde_json::from_slice(&body)
                .map_err(|_| ProviderError::Unknown(format!("HTTP {status}: unreadable answer")));
        }
        Err(classify(status, &body))
    }
}

fn encode(uuid: &str) -> String {
    url::form_urlencoded::byte_serialize(uuid.as_bytes()).collect()
}

/// A Plivo error answer in neutral terms: Plivo has no error codes, so the HTTP status is the
/// code: a 400 whose message calls the destination invalid is an invalid number, one that says
/// the destination is not allowed (geo permissions) a number not allowed, 401/402/403 the
/// operator's (credentials, credit), 429 throttling, 5xx unknown.
pub fn classify(status: StatusCode, body: &[u8]) -> ProviderError {
    let message = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.error)
        .map(|e| match e {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        })
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    let lower = message.to_ascii_lowercase();
    let invalid = status == StatusCode::BAD_REQUEST
        && (lower.contains("'to'") || lower.contains("destination") || lower.contains("to number"))
        && lower.contains("invalid");
    let not_allowed = lower.contains("not allowed")
        || lower.contains("not permitted")
        || lower.contains("geo permission");
    let kind = if invalid {
        CodeKind::InvalidNumber
    } else if not_allowed && status.is_client_error() && status != StatusCode::UNAUTHORIZED {
        CodeKind::NumberNotAllowed
    } else if status == StatusCode::PAYMENT_REQUIRED {
        CodeKind::Misconfigured
    } else {
        CodeKind::Other
    };
    http::refusal(status, u32::from(status.as_u16()), message, kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::CallRefusal;

    fn word(json: &str) -> String {
        serde_json::from_str::<Answer>(json).unwrap().status_word()
    }

    #[test]
    fn an_ended_calls_record_implies_its_status() {
        let live = r#"{"call_uuid":"u","call_status":"in-progress"}"#;
        assert_eq!(word(live), "in-progress");
        let answered = r#"{"answer_time":"2026-01-01 00:00:01+00:00","end_time":"2026-01-01 00:00:31+00:00","hangup_cause_name":"Normal Hangup","bill_duration":30}"#;
        assert_eq!(word(answered), "completed");
        let unanswered = r#"{"answer_time":null,"end_time":"2026-01-01 00:00:31+00:00","hangup_cause_name":"No Answer","bill_duration":0}"#;
        assert_eq!(word(unanswered), "no-answer");
        let busy = r#"{"answer_time":null,"end_time":"2026-01-01 00:00:31+00:00","hangup_cause_name":"Busy Line"}"#;
        assert_eq!(word(busy), "busy");
        assert_eq!(word(r#"{"call_uuid":"u"}"#), "");
        assert_eq!(
            super::super::progress(&word(unanswered), ""),
            crate::provider::CallProgress::NoAnswer
        );
        assert_eq!(
            super::super::progress(&word(answered), ""),
            crate::provider::CallProgress::Completed
        );
    }

    #[test]
    fn plivo_errors_map_to_neutral_reasons() {
        let e = classify(
            StatusCode::BAD_REQUEST,
            br#"{"api_id":"x","error":"invalid 'to' number"}"#,
        );
        assert!(
            matches!(
                e,
                ProviderError::Refused {
                    refusal: CallRefusal::InvalidNumber,
                    code: 400,
                    ..
                }
            ) && !e.fails_over()
        );
        let e = classify(
            StatusCode::UNAUTHORIZED,
            br#"{"error":"authentication failed"}"#,
        );
        assert!(matches!(e, ProviderError::Misconfigured { code: 401, .. }) && e.fails_over());
        let e = classify(
            StatusCode::PAYMENT_REQUIRED,
            br#"{"error":"insufficient credit"}"#,
        );
        assert!(matches!(e, ProviderError::Misconfigured { code: 402, .. }));
        let e = classify(
            StatusCode::BAD_REQUEST,
            br#"{"error":"destination country not allowed for this account"}"#,
        );
        assert!(e.fails_over() && !e.counts_against_account());
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, b""),
            ProviderError::Throttled { .. }
        ));
        assert!(matches!(
            classify(StatusCode::INTERNAL_SERVER_ERROR, b""),
            ProviderError::Unknown(_)
        ));
    }
}
