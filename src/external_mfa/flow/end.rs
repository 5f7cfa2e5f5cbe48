//! The end of a sign-in, once: "continue" after the call (`finish`: the id_token after an
//! approval, else an OAuth error), Cancel, and "Call again" after a failed call.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use super::{Current, calling_page, current, end_once, ended, oauth_error};
use crate::external_mfa::audit::{End, Outcome};
use crate::external_mfa::routes::{error_back, site_of, unix_now};
use crate::external_mfa::signin::SignInRecord;
use crate::external_mfa::{ExternalMfa, page, token};
use crate::ids::VerificationId;
use crate::state::AppState;
use crate::verification::Status;

/// A button's POST (finish, cancel, Call again) on a sign-in of `tenant`: the site and the
/// sign-in as stored, or — as the rejection — the page that says why not (no such issuer, an
/// expired or foreign sign-in, Redis not answering).
pub(in crate::external_mfa) struct ButtonPost {
    tenant: String,
    id: String,
    lang: &'static str,
    mfa: Arc<ExternalMfa>,
    c: Current,
}

impl FromRequestParts<AppState> for ButtonPost {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Path((tenant, id)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let lang = page::language(&parts.headers);
        let mfa = site_of(state, &tenant, lang).map_err(|page| *page)?;
        match current(state, &id).await {
            Ok(Some(c)) if c.record.tenant == tenant => Ok(ButtonPost {
                tenant,
                id,
                lang,
                mfa,
                c,
            }),
            Ok(_) => {
                Err(mfa
                    .pages
                    .problem(StatusCode::BAD_REQUEST, lang, "this sign-in has expired"))
            }
            Err(_) => {
                Err(mfa
                    .pages
                    .problem(StatusCode::SERVICE_UNAVAILABLE, lang, "try again shortly"))
            }
        }
    }
}

/// How the sign-in ends now that its call ended; `None` while the call goes on.
fn verdict(c: &Current) -> Option<End> {
    let denied = |reason, error, description: String| {
        End::not_approved(Outcome::Denied, Some(reason), error, description)
    };
    if c.vanished {
        let (reason, error) = ("unavailable", "temporarily_unavailable");
        let description = "the call could not be started";
        return Some(End::not_approved(
            Outcome::Refused,
            Some(reason),
            error,
            description,
        ));
    }
    match (c.status?, c.reason) {
        (Status::Approved, _) => Some(End::approved()),
        (Status::FraudReported, _) => Some(denied(
            "fraud_reported",
            "access_denied",
            "the call was reported as fraud".into(),
        )),
        (Status::Expired, _) => Some(denied(
            "expired",
            "access_denied",
            "the call expired".into(),
        )),
        (Status::Failed | Status::Canceled, reason) => {
            let reason = reason.unwrap_or("canceled");
            // The carrier side failed, not the person: Entra may offer to try again.
            let error = if reason.starts_with("provider_") {
                "temporarily_unavailable"
            } else {
                "access_denied"
            };
            let description = format!("the call did not confirm the sign-in ({reason})");
            Some(denied(reason, error, description))
        }
        _ => None,
    }
}

/// `POST …/finish`: end the sign-in as its call ended — the id_token after an approval (once),
/// else an OAuth error; a call still going shows the calling page again.
pub(in crate::external_mfa) async fn finish(
    State(state): State<AppState>,
    ButtonPost {
        tenant,
        id,
        lang,
        mfa,
        c,
    }: ButtonPost,
) -> Response {
    if let Some(done) = &c.stored.done {
        return ended(&mfa, &c.record, done);
    }
    let Some(end) = verdict(&c) else {
        let (status, phone) = (c.shown(), c.masked_phone.as_deref());
        return calling_page(&mfa, &tenant, &id, &c.record.lang, status, phone, false);
    };
    match end_once(&state, &id, &c.record, c.call(), &end).await {
        Ok(true) if end.error.is_none() => issue(&mfa, &c.record, &tenant),
        Ok(true) => ended(&mfa, &c.record, &super::done_of(&end)),
        // Ended meanwhile (a concurrent finish or cancel): show how.
        Ok(false) => ended_meanwhile(&state, &mfa, &id, lang).await,
        Err(_) => mfa
            .pages
            .problem(StatusCode::SERVICE_UNAVAILABLE, lang, "try again shortly"),
    }
}

/// The sign-in `id` ended by another request: how it ended.
async fn ended_meanwhile(state: &AppState, mfa: &ExternalMfa, id: &str, lang: &str) -> Response {
    match current(state, id).await {
        Ok(Some(again)) if again.stored.done.is_some() => ended(
            mfa,
            &again.record,
            again.stored.done.as_deref().unwrap_or_default(),
        ),
        _ => mfa
            .pages
            .problem(StatusCode::BAD_REQUEST, lang, "this sign-in has expired"),
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
    match token {
        Ok(token) => mfa.pages.post_back(
            &record.lang,
            &record.redirect_uri,
            &[("id_token", &token), ("state", &record.state)],
        ),
        Err(e) => {
            tracing::error!(error = %e, "external MFA: cannot sign the id_token");
            let error = oauth_error(
                record,
                "temporarily_unavailable",
                "the sign-in could not be completed",
            );
            error_back(mfa, &record.lang, &error)
        }
    }
}

/// `POST …/cancel`: the person gives up; Entra hears `access_denied`.
pub(in crate::external_mfa) async fn cancel(
    State(state): State<AppState>,
    ButtonPost {
        id, lang, mfa, c, ..
    }: ButtonPost,
) -> Response {
    let end = End::not_approved(
        Outcome::Canceled,
        None,
        "access_denied",
        "canceled by the user",
    );
    match end_once(&state, &id, &c.record, c.call(), &end).await {
        Ok(true) => {
            // The call ends too (the provider hangs it up, the user's live slot is freed), so a
            // new sign-in can call at once. A call that already ended is left as it ended.
            let call = c.stored.verification.as_deref();
            if let Some(vf) = call.and_then(|v| VerificationId::parse(v).ok())
                && let Err(error) = crate::verification::cancel::cancel(&state.flow, &vf).await
            {
                tracing::debug!(verification = %vf, %error, "sign-in canceled; its call was not");
            }
            ended(&mfa, &c.record, &super::done_of(&end))
        }
        Ok(false) => ended_meanwhile(&state, &mfa, &id, lang).await,
        Err(_) => mfa
            .pages
            .problem(StatusCode::SERVICE_UNAVAILABLE, lang, "try again shortly"),
    }
}

/// `POST …/retry`: "Call again" after a failed call (the lifecycle's limits apply, and at most
/// [`crate::external_mfa::signin::MAX_CALLS`] per sign-in).
pub(in crate::external_mfa) async fn retry(
    State(state): State<AppState>,
    crate::api::client_ip::ClientIp(client_ip): crate::api::client_ip::ClientIp,
    ButtonPost {
        tenant, id, mfa, c, ..
    }: ButtonPost,
) -> Response {
    if let Some(done) = &c.stored.done {
        return ended(&mfa, &c.record, done);
    }
    if c.can_retry() {
        return super::place_call(&state, &mfa, &id, &c.record, client_ip, super::Which::Again)
            .await;
    }
    let (status, phone) = (c.shown(), c.masked_phone.as_deref());
    calling_page(&mfa, &tenant, &id, &c.record.lang, status, phone, false)
}
