//! Twilio's Calls API (`POST /2010-04-01/Accounts/{sid}/Calls.json`), Basic auth, form fields.

use std::time::Duration;

use serde::Deserialize;

use super::ProviderError;
use crate::config::TwilioConfig;

/// A call to place: where to ring, and where the provider fetches TwiML and posts progress.
#[derive(Debug, Clone)]
pub struct CallRequest<'a> {
    pub to_e164: &'a str,
    pub twiml_url: &'a str,
    pub status_callback_url: &'a str,
}

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
    pub async fn create_call(&self, call: &CallRequest<'_>) -> Result<String, ProviderError> {
        let started = std::time::Instant::now();
        let result = self.send_create_call(call).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(ProviderError::Rejected { .. }) => "rejected",
            Err(ProviderError::Failed(_)) => "failed",
        };
        crate::ops::metrics::provider_request("create_call", outcome, started.elapsed());
        result
    }

    async fn send_create_call(&self, call: &CallRequest<'_>) -> Result<String, ProviderError> {
        let timeout = self.ring_timeout_secs.to_string();
        let form: [(&str, &str); 11] = [
            ("To", call.to_e164),
            ("From", &self.from),
            ("Url", call.twiml_url),
            ("Method", "POST"),
            ("StatusCallback", call.status_callback_url),
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "completed"),
            ("StatusCallbackMethod", "POST"),
            ("Timeout", &timeout),
        ];
        let response = self
            .http
            .post(&self.calls_url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(&form)
            .send()
            .await
            .map_err(|e| ProviderError::Failed(describe(e)))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| ProviderError::Failed(describe(e)))?;
        if status.is_success() {
            let call: CallResource = serde_json::from_slice(&body).map_err(|_| {
                ProviderError::Failed(format!("HTTP {status}: unreadable call resource"))
            })?;
            return Ok(call.sid);
        }
        let error: Option<ErrorBody> = serde_json::from_slice(&body).ok();
        let code = error
            .as_ref()
            .and_then(|e| e.code)
            .unwrap_or(status.as_u16().into());
        // Twilio's messages quote the number ("The 'To' number 5551234567 is not valid"):
        // masked before they reach a log line or the portal.
        let message = error
            .and_then(|e| e.message)
            .map(|m| crate::phone::redact_numbers(&m))
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
        if status.is_client_error() {
            Err(ProviderError::Rejected { code, message })
        } else {
            Err(ProviderError::Failed(format!(
                "HTTP {}: {code} {message}",
                status.as_u16()
            )))
        }
    }
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
