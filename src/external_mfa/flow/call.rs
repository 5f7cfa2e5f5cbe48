//! Placing a sign-in's call — the first, and "Call again" — through the verification
//! lifecycle. The calling page is shown as soon as the start is admitted (policy, fraud block,
//! live slot, rate limits: every check that can refuse at once); the lifecycle's own task dials
//! in the background, and how the call goes (a provider's refusal included) reaches the page
//! through the status long-poll like any other change.

use std::net::IpAddr;

use axum::http::StatusCode;
use axum::response::Response;

use super::{calling_page, end_once, oauth_error};
use crate::error::ApiError;
use crate::external_mfa::audit::{self, End, Outcome};
use crate::external_mfa::routes::error_back;
use crate::external_mfa::signin::{self, SignInRecord};
use crate::external_mfa::{ExternalMfa, page};
use crate::ids::{TenantId, UserId, VerificationId, user_tag};
use crate::state::AppState;
use crate::verification::Purpose;
use crate::verification::start::{self, Admitted, StartRequest};

fn refused(reason: &'static str, error: &'static str, description: impl Into<String>) -> End {
    End::not_approved(Outcome::Refused, Some(reason), error, description)
}

/// How a refused start goes back to Entra (and into the audit stream).
fn refusal(error: &ApiError) -> End {
    match error {
        ApiError::NoPhoneMethod(_) | ApiError::NotFound(_) => {
            refused("no_phone", "access_denied", "no phone registered")
        }
        ApiError::UserBlocked(_) => refused(
            "user_blocked",
            "access_denied",
            "calls to this user are blocked after a fraud report",
        ),
        ApiError::NumberTypeBlocked(d) => refused("number_type_blocked", "access_denied", d),
        ApiError::CountryNotAllowed(d) => refused("country_not_allowed", "access_denied", d),
        ApiError::MethodDisabled(d) => refused("method_disabled", "access_denied", d),
        ApiError::RateLimited { .. } => refused(
            "rate_limited",
            "temporarily_unavailable",
            "too many calls; try again later",
        ),
        ApiError::Conflict(_) => refused(
            "call_in_progress",
            "temporarily_unavailable",
            "a call to this user is in progress",
        ),
        _ => unavailable("the call could not be started"),
    }
}

fn unavailable(description: &str) -> End {
    refused("unavailable", "temporarily_unavailable", description)
}

/// Which call [`place_call`] places.
pub(in crate::external_mfa) enum Which {
    /// The first: counted and named when the sign-in was stored (`None`: the sign-in's user
    /// cannot be called, and names no call).
    First(Option<VerificationId>),
    /// "Call again": counted and named here, up to [`signin::MAX_CALLS`].
    Again,
}

/// Places a call for the sign-in `id` and shows the calling page. The sign-in names the call's
/// verification before the start stores it (in the write that counts the call), so placing it
/// writes nothing more to the sign-in: a start that is refused ends the sign-in, one that is
/// undone later ends it too (`follow_dial`).
pub(in crate::external_mfa) async fn place_call(
    state: &AppState,
    mfa: &ExternalMfa,
    id: &str,
    record: &SignInRecord,
    client_ip: Option<IpAddr>,
    which: Which,
) -> Response {
    let deny = |end| deny(state, mfa, id, record, end);
    let no_phone = || refused("no_phone", "access_denied", "no phone registered");
    let (Ok(tenant), Ok(user)) = (TenantId::parse(&record.tenant), UserId::parse(&record.user))
    else {
        return deny(no_phone()).await;
    };
    let vf = match which {
        Which::First(Some(vf)) => vf,
        Which::First(None) => return deny(no_phone()).await,
        Which::Again => {
            let vf = VerificationId::generate_for_tag(&user_tag(&tenant, &user));
            match state
                .store
                .count_signin_call(id, &vf, signin::MAX_CALLS)
                .await
            {
                Ok(Some(calls)) if calls <= signin::MAX_CALLS => vf,
                Ok(Some(_)) => {
                    let end = refused(
                        "too_many_calls",
                        "access_denied",
                        "no more calls for this sign-in",
                    );
                    return deny(end).await;
                }
                Ok(None) => {
                    return mfa.pages.problem(
                        StatusCode::BAD_REQUEST,
                        &record.lang,
                        "this sign-in has expired",
                    );
                }
                Err(_) => return deny(unavailable("try again shortly")).await,
            }
        }
    };
    let request = StartRequest {
        purpose: Purpose::SignIn,
        phone_number: None,
        region: None,
        phone_type: None,
        method_id: None,
        locale: Some(page::locale(&record.lang).to_owned()),
    };
    // The id carries the user's tag (generated for it): no second SHA-256 here.
    let tag = vf.user_tag().to_owned();
    let admitted =
        match start::admit_as(&state.flow, &tenant, &user, &tag, client_ip, request, vf).await {
            Ok(admitted) => admitted,
            Err(error) => return deny(refusal(&error)).await,
        };
    let vf = admitted.verification.id.clone();
    let status = admitted.verification.status.as_str(); // `calling`: stored, being dialled
    let masked = crate::phone::mask_e164(&admitted.verification.phone_e164);
    let request_id = record.client_request_id.as_deref().unwrap_or("-");
    tracing::info!(client_request_id = request_id, verification = %vf, "external MFA: calling");
    follow_dial(state.clone(), id.to_owned(), record.clone(), admitted);
    calling_page(
        mfa,
        &record.tenant,
        id,
        &record.lang,
        status,
        Some(&masked),
        false,
    )
}

/// Watches the dial of the sign-in `id`'s call in the background. A provider's answer,
/// refusal included, is the lifecycle's to record (the page hears it through the long-poll).
/// Only a start the lifecycle undid — Redis failed before anything was dialled, and the
/// verification is gone — ends the sign-in here: `temporarily_unavailable`. One that may have
/// dialled stays with the lifecycle (reconciliation ends it).
fn follow_dial(state: AppState, id: String, record: SignInRecord, admitted: Admitted) {
    let vf = admitted.verification.id.clone();
    tokio::spawn(async move {
        let Err(error) = admitted.dial_outcome().await else {
            return;
        };
        let undone = match VerificationId::parse(&vf) {
            Ok(parsed) => matches!(state.store.verification(&parsed).await, Ok(None)),
            Err(_) => true,
        };
        tracing::warn!(verification = %vf, %error, undone, "external MFA: the call's start failed after the page was shown");
        if undone {
            let call = audit::Call {
                verification: Some(&vf),
                masked_phone: None,
            };
            let end = unavailable("the call could not be started");
            if let Err(error) = end_once(&state, &id, &record, call, &end).await {
                tracing::warn!(verification = %vf, %error, "external MFA: the sign-in is not ended (its page will show the call failed)");
            }
        }
    });
}

/// Ends the sign-in `id` as `end` says and posts the error back.
async fn deny(
    state: &AppState,
    mfa: &ExternalMfa,
    id: &str,
    record: &SignInRecord,
    end: End,
) -> Response {
    if let Err(error) = end_once(state, id, record, audit::Call::default(), &end).await {
        tracing::warn!(%error, "external MFA: the refused sign-in's end is not stored");
    }
    let (code, description) = end
        .error
        .clone()
        .unwrap_or(("access_denied", String::new()));
    error_back(mfa, &record.lang, &oauth_error(record, code, &description))
}
