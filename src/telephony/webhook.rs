//! The signed-webhook extractor: checks `X-Twilio-Signature` against the public URL before
//! anything else looks at the request. A missing or wrong signature is answered 403.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::form::FormParams;
use super::signature;
use crate::state::AppState;

pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// A provider request whose signature checked out: its form (or JSON-body) parameters and the
/// query parameters of the URL.
#[derive(Debug)]
pub struct SignedWebhook {
    pub params: FormParams,
    pub query: FormParams,
}

impl SignedWebhook {
    /// The first value of a form parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name)
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name)
    }
}

/// Why a webhook was refused (kept for the metric label; the provider only sees 403).
fn refuse(why: &'static str) -> Response {
    tracing::warn!(reason = why, "webhook refused: bad signature");
    crate::ops::metrics::signature_failure(why);
    (StatusCode::FORBIDDEN, "invalid webhook signature").into_response()
}

impl FromRequest<AppState> for SignedWebhook {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let Some(sig) = req
            .headers()
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
        else {
            return Err(refuse("missing"));
        };
        let uri = req.uri();
        let path_and_query = uri.path_and_query().map_or("", |p| p.as_str());
        let url = format!("{}{}", state.public_url, path_and_query);
        // The query straight from the request line: no second parse of the whole URL.
        let query = uri
            .query()
            .map(|q| FormParams::parse(q.as_bytes()))
            .unwrap_or_default();
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        let body = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let token = state.auth_token();
        if is_json {
            if !signature::validate_json(token, &sig, &url, &body) {
                return Err(refuse("mismatch"));
            }
            let params =
                serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&body)
                    .map(|m| {
                        FormParams::from_pairs(
                            m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k, s))),
                        )
                    })
                    .unwrap_or_default();
            return Ok(Self { params, query });
        }
        let params = FormParams::parse(&body);
        if !signature::validate_form(token, &sig, &url, &params.to_vec()) {
            return Err(refuse("mismatch"));
        }
        Ok(Self { params, query })
    }
}
