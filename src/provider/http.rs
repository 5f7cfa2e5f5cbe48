//! What every adapter's REST client shares: one request sent and its transport failure
//! classified (could it have reached the provider?), and the request metric.

use std::time::Duration;

use axum::body::Bytes;
use reqwest::StatusCode;

use super::{CallRefusal, ProviderError};

/// A client with the account's deadline (connect at most 2 s of it).
pub fn client(request_timeout_ms: u64) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(request_timeout_ms))
        .connect_timeout(Duration::from_millis(request_timeout_ms.min(2000)))
        .build()
        .map_err(|e| e.to_string())
}

/// An account's API URL, parsed once when its client is built: reqwest parses a URL handed to
/// it as text on every request.
pub fn api_url(text: &str) -> Result<reqwest::Url, String> {
    reqwest::Url::parse(text).map_err(|e| format!("the provider API URL is not valid: {e}"))
}

/// Sends `request`; returns the status and the body, whatever the status. A connection that
/// could not be made is [`ProviderError::Unreachable`] (nothing left this machine); any other
/// failure (a timeout once sent, a broken answer) is [`ProviderError::Unknown`]: the request
/// may have been processed.
pub async fn exchange(
    request: reqwest::RequestBuilder,
) -> Result<(StatusCode, Bytes), ProviderError> {
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| ProviderError::Unknown(describe(&e)))?;
    Ok((status, body))
}

/// A transport error in neutral terms.
pub fn transport(e: reqwest::Error) -> ProviderError {
    if e.is_connect() {
        ProviderError::Unreachable(describe(&e))
    } else {
        ProviderError::Unknown(describe(&e))
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

/// What an adapter's table says a provider error code means (docs/PROVIDERS.md#calls-api-errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeKind {
    /// The destination is not a valid number.
    InvalidNumber,
    /// This provider will not call the number (geo permissions, blocklist).
    NumberNotAllowed,
    /// The operator's configuration (credentials, account, caller ID, credit).
    Misconfigured,
    /// Too many requests.
    Throttled,
    /// Anything else.
    Other,
}

/// The neutral error of a non-2xx answer whose provider code, message and meaning are known.
/// A 5xx (or any status that is neither 2xx nor 4xx) is [`ProviderError::Unknown`] whatever
/// its code: the provider may have placed the call. Among 4xx: 429 or a throttling code is
/// `Throttled`; a misconfiguration code, or any other 401/403, `Misconfigured`; the rest a
/// `Refused` call with its [`CallRefusal`]. Numbers in the message are masked.
pub fn refusal(status: StatusCode, code: u32, message: String, kind: CodeKind) -> ProviderError {
    let message = crate::phone::redact_numbers(&message);
    if !status.is_client_error() {
        return ProviderError::Unknown(format!("HTTP {}: {code} {message}", status.as_u16()));
    }
    let refused = |refusal| ProviderError::Refused {
        refusal,
        code,
        message: message.clone(),
    };
    match kind {
        _ if status == StatusCode::TOO_MANY_REQUESTS => ProviderError::Throttled { code, message },
        CodeKind::Throttled => ProviderError::Throttled { code, message },
        CodeKind::Misconfigured => ProviderError::Misconfigured { code, message },
        CodeKind::InvalidNumber => refused(CallRefusal::InvalidNumber),
        CodeKind::NumberNotAllowed => refused(CallRefusal::NumberNotAllowed),
        CodeKind::Other if matches!(status.as_u16(), 401 | 403) => {
            ProviderError::Misconfigured { code, message }
        }
        CodeKind::Other => refused(CallRefusal::Other),
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
    use crate::call::FailureReason;

    #[test]
    fn statuses_classify_by_certainty() {
        let e = refusal(
            StatusCode::BAD_REQUEST,
            21211,
            "bad".into(),
            CodeKind::InvalidNumber,
        );
        assert!(e.certainly_not_placed() && !e.fails_over());
        assert_eq!(e.reason(), FailureReason::InvalidNumber);
        let e = refusal(
            StatusCode::BAD_REQUEST,
            21215,
            "geo".into(),
            CodeKind::NumberNotAllowed,
        );
        assert!(e.fails_over() && !e.counts_against_account());
        assert_eq!(e.reason(), FailureReason::NumberNotAllowedByProvider);
        let e = refusal(
            StatusCode::UNAUTHORIZED,
            20003,
            "auth".into(),
            CodeKind::Other,
        );
        assert!(matches!(e, ProviderError::Misconfigured { .. }) && e.fails_over());
        assert!(e.counts_against_account());
        let e = refusal(StatusCode::BAD_REQUEST, 1, "other".into(), CodeKind::Other);
        assert_eq!(e.reason(), FailureReason::ProviderRejected);
        assert!(e.fails_over());
        let e = refusal(
            StatusCode::TOO_MANY_REQUESTS,
            20429,
            "slow".into(),
            CodeKind::Other,
        );
        assert!(matches!(e, ProviderError::Throttled { .. }) && e.fails_over());
        for kind in [
            CodeKind::InvalidNumber,
            CodeKind::Misconfigured,
            CodeKind::Other,
        ] {
            let e = refusal(StatusCode::BAD_GATEWAY, 0, "oops".into(), kind);
            assert!(matches!(e, ProviderError::Unknown(_)) && !e.fails_over());
            assert!(!e.counts_against_account() && !e.certainly_not_placed());
            assert_eq!(e.reason(), FailureReason::ProviderUnknown);
        }
        assert!(ProviderError::CircuitOpen.fails_over());
        assert!(!ProviderError::CircuitOpen.counts_against_account());
    }
}
