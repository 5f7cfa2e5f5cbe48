//! Twilio's Calls API (`/2010-04-01/Accounts/{sid}/Calls.json` and `Calls/{CallSid}.json`),
//! Basic auth, form fields (docs/PROVIDERS.md, Twilio Calls API).

use std::time::Duration;

use serde::Deserialize;

use crate::config::TwilioConfig;
use crate::provider::{CallRequest, ProviderError};

#[derive(Clone)]
pub struct TwilioClient {
    http: reqwest::Client,
    calls_url: String,
    account_sid: String,
    auth_token: String,
    from: String,
    ring_timeout_secs: u32,
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
    pub fn new(config: &TwilioConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.request_timeout_ms))
            .connect_timeout(Duration::from_millis(config.request_timeout_ms.min(2000)))
            .build()?;
        Ok(Self {
            http,
            calls_url: format!(
                "{}/2010-04-01/Accounts/{}/Calls.json",
                config.api_base.trim_end_matches('/'),
                config.account_sid
            ),
            account_sid: config.account_sid.clone(),
            auth_token: config.auth_token.expose().to_owned(),
            from: config.from.clone(),
            ring_timeout_secs: config.ring_timeout_secs,
        })
    }

    /// Places the call; returns the provider's call id (`CallSid`). Timed and counted.
    pub async fn create_call(&self, call: CallRequest<'_>) -> Result<String, ProviderError> {
        timed("create_call", self.send_create_call(call)).await
    }

    /// Ends the call (`Status=completed`: hangs up a call in progress, cancels a ringing one).
    pub async fn end_call(&self, call_sid: &str) -> Result<(), ProviderError> {
        let request = self
            .http
            .post(self.call_url(call_sid))
            .form(&[("Status", "completed")]);
        timed("end_call", self.send(request)).await.map(|_| ())
    }

    /// The call's `status` as Twilio records it.
    pub async fn call_status(&self, call_sid: &str) -> Result<String, ProviderError> {
        let request = self.http.get(self.call_url(call_sid));
        timed("call_status", self.send(request))
            .await
            .map(|call| call.status)
    }

    fn call_url(&self, call_sid: &str) -> String {
        // `Calls.json` → `Calls/{sid}.json`; the sid is the provider's own (letters and digits),
        // percent-encoded all the same.
        let base = self.calls_url.trim_end_matches(".json");
        let sid: String = url::form_urlencoded::byte_serialize(call_sid.as_bytes()).collect();
        format!("{base}/{sid}.json")
    }

    async fn send_create_call(&self, call: CallRequest<'_>) -> Result<String, ProviderError> {
        let timeout = self.ring_timeout_secs.to_string();
        let form: [(&str, &str); 11] = [
            ("To", call.to_e164),
            ("From", &self.from),
            ("Url", call.answer_url),
            ("Method", "POST"),
            ("StatusCallback", call.status_url),
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "completed"),
            ("StatusCallbackMethod", "POST"),
            ("Timeout", &timeout),
        ];
        let request = self.http.post(&self.calls_url).form(&form);
        self.send(request).await.map(|call| call.sid)
    }

    /// Sends an authenticated request and reads a call resource (or the error) from the answer.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<CallResource, ProviderError> {
        let response = request
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .send()
            .await
            .map_err(crate::provider::http::transport)?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| ProviderError::Failed(describe(e)))?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|_| {
                ProviderError::Failed(format!("HTTP {status}: unreadable call resource"))
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
        // masked (by `refusal`) before they reach a log line or the portal.
        Err(crate::provider::http::refusal(
            status,
            code,
            message,
            INVALID_NUMBER_CODES.contains(&code),
        ))
    }
}

/// Twilio's codes for a destination that is not a valid number (docs/PROVIDERS.md#twilio-calls-api-errors):
/// no other account would dial it either, so they never fail over.
pub const INVALID_NUMBER_CODES: [u32; 4] = [21211, 21217, 13223, 13224];

/// Times and counts one provider request (`outcome`: ok, rejected, failed).
async fn timed<T>(
    operation: &'static str,
    request: impl Future<Output = Result<T, ProviderError>>,
) -> Result<T, ProviderError> {
    let started = std::time::Instant::now();
    let result = request.await;
    let outcome = result
        .as_ref()
        .map_or_else(ProviderError::outcome, |_| "ok");
    crate::ops::metrics::provider_request(operation, outcome, started.elapsed());
    result
}

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
