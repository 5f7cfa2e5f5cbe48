//! Twilio's Calls API (`/2010-04-01/Accounts/{sid}/Calls.json` and `Calls/{CallSid}.json`),
//! Basic auth, form fields (docs/PROVIDERS.md, Twilio Calls API).

use crate::provider::dialect::CallsApi;
use std::time::Duration;

use serde::Deserialize;

use super::config::TwilioKeys;
use crate::provider::http::{self, CodeKind, timed};
use crate::provider::settings::{AccountCommon, CallBounds};
use crate::provider::{CallRequest, ProviderError};

#[derive(Clone)]
pub struct TwilioClient {
    http: reqwest::Client,
    /// `…/Accounts/{sid}/Calls.json`, parsed once ([`http::api_url`]).
    calls_url: reqwest::Url,
    /// Basic auth: the API key (`SK…`) and its secret when configured, else the account SID and
    /// its auth token. The account SID stays the URL's path segment either way.
    user: String,
    password: String,
    /// What every call asks for (caller ID, ring timeout, time limit, machine detection).
    bounds: CallBounds,
}

#[derive(Deserialize)]
struct CallResource {
    sid: String,
    #[serde(default)]
    status: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: Option<u32>,
    message: Option<String>,
}

impl TwilioClient {
    pub fn new(account: &AccountCommon, config: &TwilioKeys) -> Result<Self, String> {
        let timeout = account.request_timeout();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(timeout))
            .connect_timeout(Duration::from_millis(timeout.min(2000)))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            http,
            calls_url: http::api_url(&format!(
                "{}/2010-04-01/Accounts/{}/Calls.json",
                config.api_base.trim_end_matches('/'),
                config.account_sid
            ))?,
            user: config
                .api_key_sid
                .clone()
                .unwrap_or_else(|| config.account_sid.clone()),
            password: config
                .api_key_secret
                .as_ref()
                .unwrap_or(&config.auth_token)
                .expose()
                .to_owned(),
            bounds: CallBounds::from(account),
        })
    }
}

impl CallsApi for TwilioClient {
    /// Places the call; returns the provider's call id (`CallSid`). Timed and counted.
    async fn create_call(&self, call: CallRequest<'_>) -> Result<Option<String>, ProviderError> {
        timed("create_call", self.send_create_call(call))
            .await
            .map(Some)
    }

    /// Ends the call (`Status=completed`: hangs up a call in progress, cancels a ringing one).
    async fn end_call(&self, call_sid: &str) -> Result<(), ProviderError> {
        let request = self
            .http
            .post(self.call_url(call_sid))
            .form(&[("Status", "completed")]);
        timed("end_call", self.send(request)).await.map(|_| ())
    }

    /// The call's `status` as Twilio records it.
    async fn call_status(&self, call_sid: &str) -> Result<String, ProviderError> {
        let request = self.http.get(self.call_url(call_sid));
        timed("call_status", self.send(request))
            .await
            .map(|call| call.status)
    }
}

impl TwilioClient {
    fn call_url(&self, call_sid: &str) -> String {
        // `Calls.json` → `Calls/{sid}.json`; the sid is the provider's own (letters and digits),
        // percent-encoded all the same.
        let base = self.calls_url.as_str().trim_end_matches(".json");
        let sid: String = url::form_urlencoded::byte_serialize(call_sid.as_bytes()).collect();
        format!("{base}/{sid}.json")
    }

    async fn send_create_call(&self, call: CallRequest<'_>) -> Result<String, ProviderError> {
        let timeout = self.bounds.ring_timeout_secs.to_string();
        let time_limit = self.bounds.time_limit_secs.to_string();
        let mut form: Vec<(&str, &str)> = vec![
            ("To", call.to_e164),
            ("From", &self.bounds.from),
            ("Url", call.answer_url),
            ("Method", "POST"),
            ("FallbackUrl", call.fallback_url),
            ("FallbackMethod", "POST"),
            ("StatusCallback", call.status_url),
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "completed"),
            ("StatusCallbackMethod", "POST"),
            ("Timeout", &timeout),
        ];
        if self.bounds.time_limit_secs > 0 {
            form.push(("TimeLimit", &time_limit));
        }
        if self.bounds.machine_detection {
            form.push(("MachineDetection", "Enable"));
        }
        let request = self.http.post(self.calls_url.clone()).form(&form);
        self.send(request).await.map(|call| call.sid)
    }

    /// Sends an authenticated request and reads a call resource (or the error) from the answer.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<CallResource, ProviderError> {
        let response = request
            .basic_auth(&self.user, Some(&self.password))
            .send()
            .await
            .map_err(http::transport)?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| ProviderError::Unknown(describe(e)))?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|_| {
                ProviderError::Unknown(format!("HTTP {status}: unreadable call resource"))
            });
        }
        let error: Option<ErrorBody> = serde_json::from_slice(&body).ok();
        let code = error
            .as_ref()
            .and_then(|e| e.code)
            .unwrap_or(status.as_u16().into());
        let message = error
            .and_then(|e| e.message)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
        // Twilio's messages quote the number ("The 'To' number 5551234567 is not valid"):
        // masked (by `http::refusal`) before they reach a log line or the portal.
        Err(classify(status.as_u16(), code, message))
    }
}

/// What Twilio's codes mean (the table in docs/PROVIDERS.md#twilio-calls-api-errors). Shared by
/// SignalWire, whose compatibility API answers with Twilio's codes.
pub fn code_kind(code: u32) -> CodeKind {
    match code {
        20429 => CodeKind::Throttled,
        20003 | 20403 | 21210 | 21212 | 21219 => CodeKind::Misconfigured,
        21215 | 21216 => CodeKind::NumberNotAllowed,
        c if INVALID_NUMBER_CODES.contains(&c) => CodeKind::InvalidNumber,
        _ => CodeKind::Other,
    }
}

/// Twilio's errors in neutral terms: 5xx unknown, 429/20429 throttled, the operator's codes
/// (and any 401/403) misconfigured, 21215/21216 a number not allowed, 21211/21217 (13223,
/// 13224) an invalid number, any other 4xx a refusal.
pub fn classify(http_status: u16, code: u32, message: String) -> ProviderError {
    let status = reqwest::StatusCode::from_u16(http_status)
        .unwrap_or(reqwest::StatusCode::INTERNAL_SERVER_ERROR);
    crate::provider::http::refusal(status, code, message, code_kind(code))
}

/// Twilio's codes for a destination that is not a valid number (docs/PROVIDERS.md#twilio-calls-api-errors):
/// no other account would dial it either, so they never fail over.
pub const INVALID_NUMBER_CODES: [u32; 4] = [21211, 21217, 13223, 13224];

/// Error text without the URL (it carries the account id; keep logs and API answers lean).
fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        e.without_url().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::FailureReason;

    #[test]
    fn twilio_codes_map_onto_neutral_errors() {
        let reason = |status, code| classify(status, code, String::new()).reason();
        assert_eq!(reason(429, 20429), FailureReason::ProviderThrottled);
        assert_eq!(reason(400, 20429), FailureReason::ProviderThrottled);
        for code in [20003, 21210, 21212, 21219] {
            assert_eq!(
                reason(400, code),
                FailureReason::ProviderMisconfigured,
                "{code}"
            );
        }
        assert_eq!(reason(401, 20003), FailureReason::ProviderMisconfigured);
        assert_eq!(reason(403, 12345), FailureReason::ProviderMisconfigured);
        assert_eq!(
            reason(400, 21215),
            FailureReason::NumberNotAllowedByProvider
        );
        assert_eq!(
            reason(400, 21216),
            FailureReason::NumberNotAllowedByProvider
        );
        assert_eq!(reason(400, 21211), FailureReason::InvalidNumber);
        assert_eq!(reason(400, 21217), FailureReason::InvalidNumber);
        assert_eq!(reason(400, 21201), FailureReason::ProviderRejected);
        assert_eq!(reason(500, 20500), FailureReason::ProviderUnknown);
        assert_eq!(reason(503, 503), FailureReason::ProviderUnknown);
        assert!(!classify(502, 0, String::new()).certainly_not_placed());
        assert!(classify(400, 21211, String::new()).certainly_not_placed());
    }
}
