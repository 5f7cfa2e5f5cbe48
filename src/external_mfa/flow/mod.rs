//! A sign-in after Entra's POST, one job per file: `call` places the call through the
//! verification lifecycle (the first, and "Call again") and shows the calling page; `status`
//! shows that page again and answers its long-poll; `end` ends the sign-in once (continue after
//! the call, Cancel) — an id_token after an approved call, else an OAuth error. Here: what they
//! share — where a sign-in stands, the calling page, and ending a sign-in exactly once.

mod call;
mod end;
mod status;

pub(super) use call::{Which, place_call};
pub(super) use end::{cancel, finish, retry};
pub(super) use status::{STATUS_WAIT, show, status};

use axum::http::StatusCode;
use axum::response::Response;

use super::audit::{self, End};
use super::request::OAuthError;
use super::routes::error_back;
use super::signin::{self, SignInRecord};
use super::{ExternalMfa, page};
use crate::error::ApiError;
use crate::ids::VerificationId;
use crate::state::AppState;
use crate::store::external_mfa::StoredSignIn;
use crate::verification::Status;

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

/// Where a sign-in stands: its stored state and its call's status.
struct Current {
    record: SignInRecord,
    stored: StoredSignIn,
    status: Option<Status>,
    reason: Option<&'static str>,
    /// The call's number, masked (from its verification: the sign-in does not keep it).
    masked_phone: Option<String>,
    /// The sign-in names a call whose verification does not exist (yet): being created, or
    /// refused or undone a moment ago (both end the sign-in). Reads `calling` within
    /// [`signin::PENDING_GRACE_SECS`] of naming it while the sign-in has not ended.
    pending: bool,
    /// The sign-in names a call whose verification does not exist, past the grace period or
    /// after the sign-in ended: never stored, or its start was undone (Redis failed before
    /// anything was dialled). Reads as `failed`.
    vanished: bool,
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
    let (mut status, mut reason, mut masked_phone) = (None, None, None);
    let (mut pending, mut vanished) = (false, false);
    if let Some(vf) = stored
        .verification
        .as_deref()
        .and_then(|v| VerificationId::parse(v).ok())
    {
        match state.store.verification(&vf).await? {
            Some(v) => {
                let view = v.view(state.store.now().await?);
                status = Some(view.status);
                reason = view.reason.map(|r| r.as_str());
                masked_phone = Some(crate::phone::mask_e164(&v.phone_e164));
            }
            // Rare (a look in the first moments, or a start that failed): Redis' clock is read
            // only here, to compare with `vf_at` (written with the same clock).
            None => {
                pending = match (stored.done.is_none(), stored.verification_at) {
                    (true, Some(at)) => state.store.now().await? < at + signin::PENDING_GRACE_SECS,
                    _ => false,
                };
                if !pending {
                    (status, vanished) = (Some(Status::Failed), true);
                }
            }
        }
    }
    Ok(Some(Current {
        record,
        stored,
        status,
        reason,
        masked_phone,
        pending,
        vanished,
    }))
}

impl Current {
    /// What the page shows: `done` once the sign-in ended, else the call's status.
    fn shown(&self) -> &'static str {
        if self.stored.done.is_some() {
            "done"
        } else {
            self.status.map_or("calling", Status::as_str)
        }
    }

    fn can_retry(&self) -> bool {
        self.stored.done.is_none()
            && self.stored.calls < signin::MAX_CALLS
            && matches!(self.status, Some(Status::Failed | Status::Canceled))
    }

    /// The audit entry's call: its verification and masked number.
    fn call(&self) -> audit::Call<'_> {
        audit::Call {
            verification: self.stored.verification.as_deref(),
            masked_phone: self.masked_phone.as_deref(),
        }
    }
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

/// How the sign-in's `done` field stores `end`: `id_token`, or `error|description`.
fn done_of(end: &End) -> String {
    match &end.error {
        None => ISSUED.to_owned(),
        Some((error, description)) => format!("{error}|{description}"),
    }
}

/// Ends the sign-in `id` as `end` says unless it has ended already. True if this call ended it:
/// only then is the end audited, so each sign-in has one audit entry however often its page
/// posts (`super::audit`).
async fn end_once(
    state: &AppState,
    id: &str,
    record: &SignInRecord,
    call: audit::Call<'_>,
    end: &End,
) -> redis::RedisResult<bool> {
    let ended = state.store.end_signin(id, &done_of(end)).await?;
    if ended {
        audit::ended(&state.store, record, call, end).await;
    }
    Ok(ended)
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
            error_back(mfa, &record.lang, &oauth_error(record, code, description))
        }
        None => mfa.pages.problem(
            StatusCode::BAD_REQUEST,
            &record.lang,
            "this sign-in is complete",
        ),
    }
}
