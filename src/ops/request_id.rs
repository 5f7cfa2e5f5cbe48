//! Request ids and the per-request tracing span. A caller's `x-request-id` is kept when it is
//! 1–64 visible ASCII characters (anything else could forge log lines or bloat them), otherwise
//! a random one is generated; either way it is echoed in the response. The span carries the
//! matched route template and the id — never the raw path, query, phone numbers or keys.

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use rand::RngExt;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id accepted from a caller.
pub const MAX_LEN: usize = 64;

/// The request's id, in the request extensions for handlers that want to quote it.
#[derive(Clone, Debug)]
pub struct RequestId(pub HeaderValue);

impl RequestId {
    pub fn as_str(&self) -> &str {
        // Only visible ASCII ever gets in (see `accepted`), so this cannot fail.
        self.0.to_str().unwrap_or_default()
    }
}

/// The caller's id when it is acceptable, else a new one.
pub fn settle(headers: &HeaderMap) -> RequestId {
    RequestId(
        headers
            .get(&HEADER)
            .filter(|v| accepted(v.as_bytes()))
            .cloned()
            .unwrap_or_else(generate),
    )
}

/// The request's span: method, matched route template and id; nothing from the path itself.
pub fn span(req: &Request, id: &RequestId) -> tracing::Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    // Plain `&str` fields: the log formatter renders span fields when the span opens, on every
    // request, and the text format's `LeanFields` (ops::log_fields) writes a plain string that
    // needs no escaping straight through.
    tracing::info_span!(
        "request",
        method = super::metrics::method_label(req.method()),
        route,
        request_id = id.as_str(),
    )
}

/// Puts the id on the response.
pub fn echo(response: &mut Response, id: RequestId) {
    response.headers_mut().insert(HEADER, id.0);
}

/// 1–64 bytes of visible ASCII (`!` to `~`): no spaces, no control characters.
fn accepted(value: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&value.len()) && value.iter().all(|b| (b'!'..=b'~').contains(b))
}

/// 128 random bits as 32 lowercase hex characters.
fn generate() -> HeaderValue {
    let bits: u128 = rand::rng().random();
    HeaderValue::from_maybe_shared(axum::body::Bytes::from(format!("{bits:032x}")))
        .expect("hex is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_visible_ascii_ids_are_accepted() {
        assert!(accepted(b"abc-123_XYZ:/.="));
        assert!(accepted(&[b'a'; 64]));
        assert!(!accepted(&[b'a'; 65]));
        assert!(!accepted(b""));
        assert!(!accepted(b"has space"));
        assert!(!accepted(b"tab\there"));
        assert!(!accepted("caf\u{e9}".as_bytes()));
    }

    #[test]
    fn generated_ids_are_32_hex_and_differ() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        let a = a.to_str().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
