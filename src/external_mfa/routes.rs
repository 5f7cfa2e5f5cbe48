//! The issuer's routes: discovery, JWKS, `authorize` (GET answers Entra's probe; POST is a
//! sign-in), the calling page's own routes (`flow`) and the pages' script and style sheet.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::request::{self, OAuthError, Refusal};
use super::signin::{self, SignInRecord};
use super::{ExternalMfa, audit, flow, hint, page};
use crate::api::client_ip::ClientIp;
use crate::ids::{TenantId, UserId, VerificationId, user_tag};
use crate::state::AppState;

pub fn router(deadline: Duration) -> Router<AppState> {
    let router = Router::new()
        .route(
            "/external-mfa/{tenant}/.well-known/openid-configuration",
            get(discovery),
        )
        .route("/external-mfa/{tenant}/jwks", get(jwks))
        .route(
            "/external-mfa/{tenant}/authorize",
            get(probe).post(authorize),
        )
        .route(
            "/external-mfa/{tenant}/signin/{id}/status",
            get(flow::status),
        )
        .route(
            "/external-mfa/{tenant}/signin/{id}/finish",
            post(flow::finish),
        )
        .route(
            "/external-mfa/{tenant}/signin/{id}/cancel",
            post(flow::cancel),
        )
        .route(
            "/external-mfa/{tenant}/signin/{id}/retry",
            post(flow::retry),
        )
        .route(
            "/external-mfa/assets/signin.js",
            get(|| async { asset("text/javascript; charset=utf-8", page::JS) }),
        )
        .route(
            "/external-mfa/assets/signin.css",
            get(|| async { asset("text/css; charset=utf-8", page::CSS) }),
        );
    let on_timeout = Arc::new(|_: &str, _: Duration| {
        page::with_headers(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            String::new(),
        )
    });
    crate::ops::timeout::layer(router, deadline, long_poll_wait, on_timeout)
}

/// The status long-poll may hold its request for [`flow::STATUS_WAIT`].
fn long_poll_wait(req: &axum::extract::Request) -> Duration {
    if req.uri().path().ends_with("/status") {
        flow::STATUS_WAIT
    } else {
        Duration::ZERO
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

fn json(bytes: Bytes) -> Response {
    let mut response = ([(header::CONTENT_TYPE, "application/json")], bytes).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

/// The feature, when `tenant` has an External MFA issuer; else the 404 page (boxed: a
/// `Response` is large).
pub(super) fn site_of(
    state: &AppState,
    tenant: &str,
    lang: &str,
) -> Result<Arc<ExternalMfa>, Box<Response>> {
    match state.external_mfa.clone() {
        Some(mfa) if mfa.site(tenant).is_some() => Ok(mfa),
        Some(mfa) => Err(Box::new(mfa.pages.problem(
            StatusCode::NOT_FOUND,
            lang,
            "no such External MFA issuer",
        ))),
        None => Err(Box::new(
            page::Pages::new("/external-mfa/assets".into()).problem(
                StatusCode::NOT_FOUND,
                lang,
                "no such External MFA issuer",
            ),
        )),
    }
}

async fn discovery(State(state): State<AppState>, Path(tenant): Path<String>) -> Response {
    match site_of(&state, &tenant, "en") {
        Ok(mfa) => json(mfa.site(&tenant).expect("checked").discovery.clone()),
        Err(page) => *page,
    }
}

async fn jwks(State(state): State<AppState>, Path(tenant): Path<String>) -> Response {
    match site_of(&state, &tenant, "en") {
        Ok(mfa) => json(mfa.jwks.clone()),
        Err(page) => *page,
    }
}

/// Entra checks that the authorization URL answers 200 (docs/ENTRA.md#discovery).
async fn probe(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let lang = page::language(&headers);
    match site_of(&state, &tenant, lang) {
        Ok(mfa) => mfa.pages.problem(
            StatusCode::OK,
            lang,
            "this address takes Microsoft Entra's sign-in requests (POST)",
        ),
        Err(page) => *page,
    }
}

/// `POST {issuer}/authorize`: one sign-in (docs/ENTRA.md#the-sign-in).
async fn authorize(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let lang = page::language(&headers);
    let mfa = match site_of(&state, &tenant, lang) {
        Ok(mfa) => mfa,
        Err(page) => return *page,
    };
    let site = mfa.site(&tenant).expect("checked");
    let bad = |detail: &str| {
        audit::unattributed(&tenant, None, "bad_request", detail);
        mfa.pages.problem(StatusCode::BAD_REQUEST, lang, detail)
    };
    let Ok(body) = body else {
        return bad("the request body is too large or unreadable");
    };
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !is_form {
        return bad("the sign-in request must be a form post");
    }
    let request = match request::parse(&body, &site.config) {
        Ok(request) => request,
        Err(Refusal::Page(detail)) => return bad(&detail),
        Err(Refusal::Entra(error)) => {
            audit::unattributed(&tenant, None, error.error, &error.description);
            return error_back(&mfa, lang, &error);
        }
    };
    let request_id = request.client_request_id.as_deref();
    let hint = match hint::validate(
        &request.id_token_hint,
        &site.config,
        &site.entra,
        unix_now(),
    )
    .await
    {
        Ok(hint) => hint,
        Err(e) => {
            let (error, description) = match e {
                hint::HintError::Invalid(d) => ("invalid_request", d),
                hint::HintError::Unavailable(d) => ("temporarily_unavailable", d),
            };
            let error = OAuthError {
                redirect_uri: request.redirect_uri.clone(),
                error,
                description,
                state: Some(request.state.clone()),
            };
            audit::unattributed(&tenant, request_id, error.error, &error.description);
            return error_back(&mfa, lang, &error);
        }
    };
    let id = signin::signin_id(
        &mfa.secret,
        &[
            &tenant,
            &request.nonce,
            &request.state,
            &request.id_token_hint,
        ],
    );
    let record = SignInRecord {
        tenant: tenant.clone(),
        user: hint.user,
        sub: hint.sub,
        nonce: request.nonce,
        state: request.state,
        redirect_uri: request.redirect_uri,
        acr: request.acr,
        lang: lang.to_owned(),
        client_request_id: request.client_request_id,
    };
    let stored = serde_json::to_string(&record).expect("a record serializes");
    // The first call's verification id, chosen now so the sign-in names it as it is stored (no
    // separate write once the call is admitted). None when the user cannot be called at all:
    // `place_call` refuses it.
    let vf = match (TenantId::parse(&tenant), UserId::parse(&record.user)) {
        (Ok(t), Ok(u)) => Some(VerificationId::generate_for_tag(&user_tag(&t, &u))),
        _ => None,
    };
    match state
        .store
        .create_signin(&id, &stored, vf.as_ref(), signin::TTL_SECS)
        .await
    {
        Ok(true) => {
            flow::place_call(
                &state,
                &mfa,
                &id,
                &record,
                client_ip,
                flow::Which::First(vf),
            )
            .await
        }
        // The same request again (refresh, back button): the same sign-in and call.
        Ok(false) => flow::show(&state, &mfa, &tenant, &id, lang).await,
        Err(e) => {
            tracing::warn!(error = %e, "external MFA: cannot store the sign-in");
            let error = flow::oauth_error(&record, "temporarily_unavailable", "try again shortly");
            let request_id = record.client_request_id.as_deref();
            audit::unattributed(&tenant, request_id, error.error, &error.description);
            error_back(&mfa, lang, &error)
        }
    }
}

/// Posts an OAuth error back to Entra (the caller records the outcome: `super::audit`).
pub(super) fn error_back(mfa: &ExternalMfa, lang: &str, error: &OAuthError) -> Response {
    let mut fields = vec![
        ("error", error.error),
        ("error_description", error.description.as_str()),
    ];
    if let Some(state) = &error.state {
        fields.push(("state", state.as_str()));
    }
    mfa.pages.post_back(lang, &error.redirect_uri, &fields)
}

pub(super) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
