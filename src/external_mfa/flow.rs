//! A sign-in after Entra's POST: place the call through the verification lifecycle, show the
//! calling page, answer its status long-poll, and end the sign-in once — an id_token after an
//! approved call, else an OAuth error (Cancel, a failed call the person gives up on, fraud).

use std::net::IpAddr;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::request::OAuthError;
use super::routes::{error_back, outcome, site_of, unix_now};
use super::signin::{self, SignInRecord};
use super::{ExternalMfa, page, token};
use crate::error::ApiError;
use crate::ids::{TenantId, UserId, VerificationId};
use crate::state::AppState;
use crate::store::external_mfa::StoredSignIn;
use crate::verification::start::{self, StartRequest};
use crate::verification::{Purpose, Status};

/// How long one status request waits for a change.
pub const STATUS_WAIT: Duration = Duration::from_secs(25);

/// `done` for a sign-in that yielded its id_token.
const ISSUED: &str = "id_token";

pub(super) fn oauth_error(
    record: &SignInRecord,
    error: &'static str,
    description: &str,
) -> OAuthError {
    OAuthError {
        redirect_uri: record.redirect_uri.clone(),
        error,
        description: description.to_owned(),
        state: Some(record.state.clone()),
    }
}

/// How a refused start goes back to Entra.
fn start_refusal(error: &ApiError) -> (&'static str, String) {
    match error {
        ApiError::NoPhoneMethod(_) | ApiError::NotFound(_) => {
            ("access_denied", "no phone registered".into())
        }
        ApiError::UserBlocked(_) => (
            "access_denied",
            "calls to this user are blocked after a fraud report".into(),
        ),
        ApiError::NumberTypeBlocked(d)
        | ApiError::CountryNotAllowed(d)
        | ApiError::MethodDisabled(d) => ("access_denied", d.clone()),
        ApiError::RateLimited { .. } => (
            "temporarily_unavailable",
            "too many calls; try again later".into(),
        ),
        ApiError::Conflict(_) => (
            "temporarily_unavailable",
            "a call to this user is in progress".into(),
        ),
        _ => (
            "temporarily_unavailable",
            "the call could not be started".into(),
        ),
    }
}

/// Places a call for the sign-in `id` (the first, or "Call again") and shows the calling page.
pub(super) async fn place_call(
    state: &AppState,
    mfa: &ExternalMfa,
    id: &str,
    record: &SignInRecord,
    client_ip: Option<IpAddr>,
) -> Response {
    let request_id = record.client_request_id.as_deref();
    let deny = |error, description| deny(state, mfa, id, record, error, description);
    let (Ok(tenant), Ok(user)) = (TenantId::parse(&record.tenant), UserId::parse(&record.user))
    else {
        return deny("access_denied", "no phone registered").await;
    };
    match state.store.count_signin_call(id).await {
        Ok(Some(calls)) if calls <= signin::MAX_CALLS => {}
        Ok(Some(_)) => return deny("access_denied", "no more calls for this sign-in").await,
        Ok(None) => {
            return mfa.pages.problem(
                StatusCode::BAD_REQUEST,
                &record.lang,
                "this sign-in has expired",
            );
        }
        Err(_) => return deny("temporarily_unavailable", "try again shortly").await,
    }
    let request = StartRequest {
        purpose: Purpose::SignIn,
        phone_number: None,
        region: None,
        phone_type: None,
        method_id: None,
        locale: Some(page::locale(&record.lang).to_owned()),
    };
    match start::start(&state.flow, &tenant, &user, client_ip, request).await {
        Ok((verification, now)) => {
            let masked = crate::phone::mask_e164(&verification.phone_e164);
            if state
                .store
                .set_signin_call(id, &verification.id, &masked)
                .await
                .is_err()
            {
                return deny("temporarily_unavailable", "try again shortly").await;
            }
            tracing::info!(client_request_id = request_id.unwrap_or("-"), verification = %verification.id, "external MFA: calling");
            let status = verification.view(now).status;
            calling_page(
                mfa,
                &record.tenant,
                id,
                &record.lang,
                status.as_str(),
                Some(&masked),
                false,
            )
        }
        Err(error) => {
            let (code, description) = start_refusal(&error);
            deny(code, &description).await
        }
    }
}

/// Ends the sign-in `id` with an OAuth error and posts it back.
async fn deny(
    state: &AppState,
    mfa: &ExternalMfa,
    id: &str,
    record: &SignInRecord,
    error: &'static str,
    description: &str,
) -> Response {
    let _ = state
        .store
        .end_signin(id, &format!("{error}|{description}"))
        .await;
    let request_id = record.client_request_id.as_deref();
    error_back(
        mfa,
        &record.tenant,
        request_id,
        &record.lang,
        &oauth_error(record, error, description),
    )
}

fn calling_page(
    mfa: &ExternalMfa,
    tenant: &str,
    id: &str,
    lang: &str,
    status: &str,
    masked_phone: Option<&str>,
    can_retry: bool,
) -> Response {
    let path = &mfa
        .site(tenant)
        .expect("a sign-in's tenant has a site")
        .path;
    let base = format!("{path}/signin/{id}");
    mfa.pages.calling(&page::Calling {
        lang,
        base: &base,
        status,
        masked_phone,
        can_retry,
    })
}

/// Where a sign-in stands: its stored state and its call's status.
struct Current {
    record: SignInRecord,
    stored: StoredSignIn,
    status: Option<Status>,
    reason: Option<&'static str>,
}

async fn current(state: &AppState, id: &str) -> Result<Option<Current>, ApiError> {
    if !signin::valid_id(id) {
        return Ok(None);
    }
    let Some(stored) = state.store.signin(id).await? else {
        return Ok(None);
    };
    let record: SignInRecord = serde_json::from_str(&stored.request)
        .map_err(|e| ApiError::Internal(format!("stored sign-in: {e}")))?;
    let (mut status, mut reason) = (None, None);
    if let Some(vf) = stored
        .verification
        .as_deref()
        .and_then(|v| VerificationId::parse(v).ok())
        && let Some(v) = state.store.verification(&vf).await?
    {
        let view = v.view(state.store.now().await?);
        status = Some(view.status);
        reason = view.reason.map(|r| r.as_str());
    }
    Ok(Some(Current {
        record,
        stored,
        status,
        reason,
    }))
}

fn can_retry(c: &Current) -> bool {
    c.stored.done.is_none()
        && c.stored.calls < signin::MAX_CALLS
        && matches!(c.status, Some(Status::Failed | Status::Canceled))
}

/// The calling page of an existing sign-in (the same POST again).
pub(super) async fn show(
    state: &AppState,
    mfa: &ExternalMfa,
    tenant: &str,
    id: &str,
    lang: &str,
) -> Response {
    match current(state, id).await {
        Ok(Some(c)) if c.record.tenant == tenant => {
            let status = if c.stored.done.is_some() {
                "done"
            } else {
                c.status.map_or("calling", Status::as_str)
            };
            calling_page(
                mfa,
                tenant,
                id,
                &c.record.lang,
                status,
                c.stored.phone.as_deref(),
                can_retry(&c),
            )
        }
        Ok(_) => mfa
            .pages
            .problem(StatusCode::BAD_REQUEST, lang, "this sign-in has expired"),
        Err(_) => mfa
            .pages
            .problem(StatusCode::SERVICE_UNAVAILABLE, lang, "try again shortly"),
    }
}

#[derive(Deserialize)]
pub(super) struct StatusQuery {
    known: Option<String>,
}

/// `GET …/signin/{id}/status?known=S`: the call's status, once it differs from `known` (or
/// after [`STATUS_WAIT`]), through the verification long-poll's wake-ups.
pub(super) async fn status(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    Query(query): Query<StatusQuery>,
) -> Response {
    let deadline = tokio::time::Instant::now() + STATUS_WAIT;
    let mut changes = state.notifier.listen();
    let mut followed = false;
    loop {
        let c = match current(&state, &id).await {
            Ok(Some(c)) if c.record.tenant == tenant => c,
            Ok(_) => {
                return (StatusCode::NOT_FOUND, Json(json!({"status": "gone"}))).into_response();
            }
            Err(e) => return e.into_response(),
        };
        let status = if c.stored.done.is_some() {
            "done"
        } else {
            c.status.map_or("calling", Status::as_str)
        };
        let terminal = c.stored.done.is_some() || c.status.is_some_and(Status::is_terminal);
        let vf = c
            .stored
            .verification
            .as_deref()
            .and_then(|v| VerificationId::parse(v).ok());
        let changed = query.known.as_deref() != Some(status);
        if changed || terminal || tokio::time::Instant::now() >= deadline {
            let body = json!({"status": status, "reason": c.reason, "terminal": terminal, "can_retry": can_retry(&c)});
            return Json(body).into_response();
        }
        match vf {
            Some(vf) => {
                if !followed {
                    followed = true;
                    if changes.follow(&vf).await.unwrap_or(true) {
                        continue; // a new subscription may have missed a change: read again
                    }
                }
                crate::notify::changed(&mut changes, &vf, deadline).await;
            }
            // The first POST is still placing the call: look again shortly.
            None => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The site and the sign-in `id` of `tenant` for a button's POST, or the page that says why not
/// (no such issuer, an expired or foreign sign-in, Redis not answering).
async fn tenant_signin(
    state: &AppState,
    tenant: &str,
    id: &str,
    headers: &HeaderMap,
) -> Result<(std::sync::Arc<ExternalMfa>, Current), Box<Response>> {
    let lang = page::language(headers);
    let mfa = site_of(state, tenant, lang)?;
    match current(state, id).await {
        Ok(Some(c)) if c.record.tenant == tenant => Ok((mfa, c)),
        Ok(_) => Err(Box::new(mfa.pages.problem(
            StatusCode::BAD_REQUEST,
            lang,
            "this sign-in has expired",
        ))),
        Err(_) => Err(Box::new(mfa.pages.problem(
            StatusCode::SERVICE_UNAVAILABLE,
            lang,
            "try again shortly",
        ))),
    }
}

/// `POST …/finish`: end the sign-in as its call ended — the id_token after an approval (once),
/// else an OAuth error; a call still going shows the calling page again.
pub(super) async fn finish(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let lang = page::language(&headers);
    let (mfa, c) = match tenant_signin(&state, &tenant, &id, &headers).await {
        Ok(found) => found,
        Err(page) => return *page,
    };
    if let Some(done) = &c.stored.done {
        return ended(&mfa, &c.record, done);
    }
    let denial = match (c.status, c.reason) {
        (Some(Status::Approved), _) => None,
        (Some(Status::FraudReported), _) => Some("the call was reported as fraud".to_owned()),
        (Some(Status::Expired), _) => Some("the call expired".to_owned()),
        (Some(Status::Failed | Status::Canceled), reason) => Some(format!(
            "the call did not confirm the sign-in ({})",
            reason.unwrap_or("canceled")
        )),
        _ => {
            let status = c.status.map_or("calling", Status::as_str);
            return calling_page(
                &mfa,
                &tenant,
                &id,
                &c.record.lang,
                status,
                c.stored.phone.as_deref(),
                false,
            );
        }
    };
    let done = match &denial {
        None => ISSUED.to_owned(),
        Some(d) => format!("access_denied|{d}"),
    };
    match state.store.end_signin(&id, &done).await {
        Ok(true) if denial.is_none() => issue(&mfa, &c.record, &tenant),
        Ok(true) => ended(&mfa, &c.record, &done),
        // Ended meanwhile (a concurrent finish or cancel): show how.
        Ok(false) => match current(&state, &id).await {
            Ok(Some(again)) if again.stored.done.is_some() => ended(
                &mfa,
                &again.record,
                again.stored.done.as_deref().unwrap_or_default(),
            ),
            _ => mfa
                .pages
                .problem(StatusCode::BAD_REQUEST, lang, "this sign-in has expired"),
        },
        Err(_) => mfa
            .pages
            .problem(StatusCode::SERVICE_UNAVAILABLE, lang, "try again shortly"),
    }
}

/// The id_token post-back (called once per sign-in: by whoever ended it).
fn issue(mfa: &ExternalMfa, record: &SignInRecord, tenant: &str) -> Response {
    let site = mfa.site(tenant).expect("a sign-in's tenant has a site");
    let token = token::issue(
        &mfa.keys,
        &token::TokenFor {
            issuer: &site.issuer,
            client_id: &site.config.client_id,
            sub: &record.sub,
            nonce: &record.nonce,
            acr: &record.acr,
            now: unix_now(),
        },
    );
    let request_id = record.client_request_id.as_deref();
    match token {
        Ok(token) => {
            outcome(tenant, request_id, "id_token", "call approved");
            mfa.pages.post_back(
                &record.lang,
                &record.redirect_uri,
                &[("id_token", &token), ("state", &record.state)],
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "external MFA: cannot sign the id_token");
            let error = oauth_error(
                record,
                "temporarily_unavailable",
                "the sign-in could not be completed",
            );
            error_back(mfa, tenant, request_id, &record.lang, &error)
        }
    }
}

/// A sign-in that has ended: an error is posted back again (harmless); an issued id_token is
/// never issued twice.
fn ended(mfa: &ExternalMfa, record: &SignInRecord, done: &str) -> Response {
    match done.split_once('|') {
        Some((code, description)) => {
            let code = match code {
                "temporarily_unavailable" => "temporarily_unavailable",
                "invalid_request" => "invalid_request",
                _ => "access_denied",
            };
            let error = oauth_error(record, code, description);
            error_back(
                mfa,
                &record.tenant,
                record.client_request_id.as_deref(),
                &record.lang,
                &error,
            )
        }
        None => mfa.pages.problem(
            StatusCode::BAD_REQUEST,
            &record.lang,
            "this sign-in is complete",
        ),
    }
}

/// `POST …/cancel`: the person gives up; Entra hears `access_denied`.
pub(super) async fn cancel(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let lang = page::language(&headers);
    let (mfa, c) = match tenant_signin(&state, &tenant, &id, &headers).await {
        Ok(found) => found,
        Err(page) => return *page,
    };
    let done = "access_denied|canceled by the user";
    match state.store.end_signin(&id, done).await {
        Ok(true) => {
            // The call ends too (the provider hangs it up, the user's live slot is freed), so a
            // new sign-in can call at once. A call that already ended is left as it ended.
            let call = c.stored.verification.as_deref();
            if let Some(vf) = call.and_then(|v| VerificationId::parse(v).ok())
                && let Err(error) = crate::verification::cancel::cancel(&state.flow, &vf).await
            {
                tracing::debug!(verification = %vf, %error, "sign-in canceled; its call was not");
            }
            ended(&mfa, &c.record, done)
        }
        Ok(false) => match current(&state, &id).await {
            Ok(Some(again)) => ended(
                &mfa,
                &again.record,
                again.stored.done.as_deref().unwrap_or_default(),
            ),
            _ => mfa
                .pages
                .problem(StatusCode::BAD_REQUEST, lang, "this sign-in has expired"),
        },
        Err(_) => mfa
            .pages
            .problem(StatusCode::SERVICE_UNAVAILABLE, lang, "try again shortly"),
    }
}

/// `POST …/retry`: "Call again" after a failed call (the lifecycle's limits apply, and at most
/// [`signin::MAX_CALLS`] per sign-in).
pub(super) async fn retry(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    crate::api::client_ip::ClientIp(client_ip): crate::api::client_ip::ClientIp,
    headers: HeaderMap,
) -> Response {
    let lang = page::language(&headers);
    let mfa = match site_of(&state, &tenant, lang) {
        Ok(mfa) => mfa,
        Err(page) => return *page,
    };
    match current(&state, &id).await {
        Ok(Some(c)) if c.record.tenant == tenant => {
            if let Some(done) = &c.stored.done {
                return ended(&mfa, &c.record, done);
            }
            if can_retry(&c) {
                return place_call(&state, &mfa, &id, &c.record, client_ip).await;
            }
            let status = c.status.map_or("calling", Status::as_str);
            calling_page(
                &mfa,
                &tenant,
                &id,
                &c.record.lang,
                status,
                c.stored.phone.as_deref(),
                false,
            )
        }
        Ok(_) => mfa
            .pages
            .problem(StatusCode::BAD_REQUEST, lang, "this sign-in has expired"),
        Err(_) => mfa
            .pages
            .problem(StatusCode::SERVICE_UNAVAILABLE, lang, "try again shortly"),
    }
}
