//! The API's one error type, answered as RFC 9457 `application/problem+json`.
//!
//! Every variant has a stable machine-readable `type` (`https://callverify.dev/problems/<slug>`);
//! portals switch on it. Internal causes are logged once here and never sent to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub const PROBLEM_BASE: &str = "https://callverify.dev/problems/";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or malformed bearer API key")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    AdminRequired(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidPhoneNumber(String),
    #[error("{0}")]
    NumberTypeBlocked(String),
    #[error("{0}")]
    CountryNotAllowed(String),
    #[error("{0}")]
    NoPhoneMethod(String),
    #[error("{0}")]
    MethodDisabled(String),
    #[error("{0}")]
    InvalidDefaultMethod(String),
    #[error("{0}")]
    PhoneMethodNeedsCall(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{detail}")]
    VerificationInProgress {
        detail: String,
        verification_id: String,
    },
    #[error("{0}")]
    UserBlocked(String),
    /// A cancel of a verification that already ended otherwise.
    #[error("{0}")]
    VerificationEnded(String),
    /// An `Idempotency-Key` reused with another request body.
    #[error("{0}")]
    IdempotencyKeyReused(String),
    #[error("{detail}")]
    RateLimited {
        detail: String,
        limit: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The client did not send its request body in time (its slowness, not ours).
    #[error("{0}")]
    RequestTimeout(String),
    #[error("a backing service is unavailable")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
    /// A Redis command failed: 503 when Redis is unreachable or slow, else 500.
    #[error("store: {0}")]
    Store(#[from] redis::RedisError),
}

/// Whether a Redis failure is the service being unavailable (rather than a bug).
fn is_unavailable(e: &redis::RedisError) -> bool {
    e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_io_error()
        || e.kind() == redis::ErrorKind::AuthenticationFailed
        // A refused password is a deployment fault, not a bug: the service is unavailable.
        || matches!(e.code(), Some("NOAUTH" | "WRONGPASS" | "NOPERM"))
        // A failover in progress (cluster or sentinel): unavailable for a few seconds, not a bug.
        || e.is_cluster_error()
        || matches!(
            e.kind(),
            redis::ErrorKind::Server(
                redis::ServerErrorKind::MasterDown
                    | redis::ServerErrorKind::ReadOnly
                    | redis::ServerErrorKind::BusyLoading
            ) | redis::ErrorKind::MasterNameNotFoundBySentinel
                | redis::ErrorKind::NoValidReplicasFoundBySentinel
                | redis::ErrorKind::ClusterConnectionNotFound
        )
}

/// The wire shape of a problem document (`application/problem+json`, RFC 9457).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

impl ApiError {
    /// `(HTTP status, type slug, title)` — the stable part of each variant.
    pub fn kind(&self) -> (StatusCode, &'static str, &'static str) {
        use ApiError::*;
        match self {
            Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
            ),
            Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            AdminRequired(_) => (
                StatusCode::FORBIDDEN,
                "admin-key-required",
                "Admin key required",
            ),
            NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            InvalidRequest(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-request",
                "Invalid request",
            ),
            InvalidPhoneNumber(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-phone-number",
                "Invalid phone number",
            ),
            NumberTypeBlocked(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "number-type-blocked",
                "Number type not allowed",
            ),
            CountryNotAllowed(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "country-not-allowed",
                "Country not allowed",
            ),
            NoPhoneMethod(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "no-phone-method",
                "No phone method to call",
            ),
            MethodDisabled(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "method-disabled",
                "Method disabled by policy",
            ),
            InvalidDefaultMethod(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-default-method",
                "Not a valid default sign-in method",
            ),
            PhoneMethodNeedsCall(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "phone-method-needs-verification",
                "Phone methods are added by a verification call",
            ),
            Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            VerificationInProgress { .. } => (
                StatusCode::CONFLICT,
                "verification-in-progress",
                "A verification call is already in progress",
            ),
            UserBlocked(_) => (StatusCode::LOCKED, "user-blocked", "User blocked"),
            VerificationEnded(_) => (
                StatusCode::CONFLICT,
                "verification-ended",
                "The verification already ended",
            ),
            IdempotencyKeyReused(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency key reused with another request",
            ),
            RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many verification calls",
            ),
            PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Request body too large",
            ),
            UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            RequestTimeout(_) => (
                StatusCode::REQUEST_TIMEOUT,
                "request-timeout",
                "Request body too slow",
            ),
            Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            Store(e) if is_unavailable(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            Store(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }

    pub fn problem(&self) -> Problem {
        let (status, slug, title) = self.kind();
        let detail = match self {
            // The cause stays in the log; the client gets a generic sentence.
            ApiError::Unavailable(_) => "a backing service did not answer in time".to_owned(),
            ApiError::Store(e) if is_unavailable(e) => {
                "a backing service did not answer in time".to_owned()
            }
            ApiError::Internal(_) | ApiError::Store(_) => "an internal error occurred".to_owned(),
            other => other.to_string(),
        };
        let (verification_id, limit) = match self {
            ApiError::VerificationInProgress {
                verification_id, ..
            } => (Some(verification_id.clone()), None),
            ApiError::RateLimited { limit, .. } => (None, Some(limit.clone())),
            _ => (None, None),
        };
        Problem {
            type_: format!("{PROBLEM_BASE}{slug}"),
            title,
            status: status.as_u16(),
            detail,
            verification_id,
            limit,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(cause) => tracing::error!(%cause, "internal error"),
            ApiError::Unavailable(cause) => tracing::warn!(%cause, "backing service unavailable"),
            ApiError::Store(e) => {
                crate::ops::metrics::redis_error("api", e);
                if e.kind() == redis::ErrorKind::AuthenticationFailed
                    || matches!(e.code(), Some("NOAUTH" | "WRONGPASS" | "NOPERM"))
                {
                    tracing::error!(cause = %e, "redis refused our credentials: check the user and password in redis.url");
                } else if is_unavailable(e) {
                    tracing::warn!(cause = %e, "redis unavailable");
                } else {
                    tracing::error!(cause = %e, "redis error");
                }
            }
            _ => {}
        }
        let problem = self.problem();
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let ApiError::RateLimited {
            retry_after_secs, ..
        } = &self
        {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        } else if status == StatusCode::SERVICE_UNAVAILABLE {
            // Redis or the deadline: worth another try a second later.
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_causes_are_not_sent() {
        let p = ApiError::Internal("password=hunter2".into()).problem();
        assert_eq!(p.status, 500);
        assert!(!p.detail.contains("hunter2"));
        assert_eq!(p.type_, "https://callverify.dev/problems/internal");
    }

    #[test]
    fn rate_limits_carry_retry_after() {
        let r = ApiError::RateLimited {
            detail: "x".into(),
            limit: "per_number".into(),
            retry_after_secs: 30,
        }
        .into_response();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()[header::RETRY_AFTER], "30");
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }
}
