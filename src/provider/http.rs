//! What every adapter's REST client shares: one request sent and its transport failure
//! classified (could it have reached the provider?), and the request metric.

use std::time::Duration;

use axum::body::Bytes;
use reqwest::StatusCode;

use super::ProviderError;

/// A client with the account's deadline (connect at most 2 s of it).
pub fn client(request_timeout_ms: u64) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(request_timeout_ms))
        .connect_timeout(Duration::from_millis(request_timeout_ms.min(2000)))
        .build()
        .map_err(|e| e.to_string())
}

/// Sends `request`; returns the status and the body, whatever the status. A connection that
/// could not be made is [`ProviderError::Unreachable`] (nothing left this machine); any other
/// failure (a timeout once sent, a broken answer) is [`ProviderError::Failed`].
pub async fn exchange(
    request: reqwest::RequestBuilder,
) -> Result<(StatusCode, Bytes), ProviderError> {
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| ProviderError::Failed(describe(&e)))?;
    Ok((status, body))
}

/// A transport error in neutral terms.
pub fn transport(e: reqwest::Error) -> ProviderError {
    if e.is_connect() {
        ProviderError::Unreachable(describe(&e))
    } else {
        ProviderError::Failed(describe(&e))
    }
}

/// Error text without the URL (it carries the account id; keep logs and API answers lean).
pub fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        let mut text = e.to_string();
        if let Some(url) = e.url() {
            text = text.replace(url.as_str(), "<url>");
        }
        text
    }
}

/// The neutral error of a non-2xx answer whose provider code and message are known: 429 is
/// throttling, other 4xx a refusal (an invalid number when `invalid_number`), 5xx unknown.
pub fn refusal(
    status: StatusCode,
    code: u32,
    message: String,
    invalid_number: bool,
) -> ProviderError {
    let message = crate::phone::redact_numbers(&message);
    if status == StatusCode::TOO_MANY_REQUESTS {
        ProviderError::Throttled(format!("{code} {message}"))
    } else if status.is_client_error() && invalid_number {
        ProviderError::InvalidNumber { code, message }
    } else if status.is_client_error() {
        ProviderError::Rejected { code, message }
    } else {
        ProviderError::Failed(format!("HTTP {}: {code} {message}", status.as_u16()))
    }
}

/// Times and counts one provider request (`outcome`: ok or the error's label).
pub async fn timed<T>(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_classify_by_certainty() {
        let e = refusal(StatusCode::BAD_REQUEST, 21211, "bad".into(), true);
        assert!(matches!(e, ProviderError::InvalidNumber { .. }) && !e.fails_over());
        let e = refusal(StatusCode::UNAUTHORIZED, 20003, "auth".into(), false);
        assert!(matches!(e, ProviderError::Rejected { .. }) && e.fails_over());
        let e = refusal(StatusCode::TOO_MANY_REQUESTS, 20429, "slow".into(), false);
        assert!(matches!(e, ProviderError::Throttled(_)) && e.fails_over());
        let e = refusal(StatusCode::BAD_GATEWAY, 0, "oops".into(), false);
        assert!(matches!(e, ProviderError::Failed(_)) && !e.fails_over());
    }
}
