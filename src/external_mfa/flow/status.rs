//! The calling page of an existing sign-in (the same POST again) and its status long-poll.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{calling_page, current};
use crate::external_mfa::ExternalMfa;
use crate::ids::VerificationId;
use crate::state::AppState;

/// How long one status request waits for a change.
pub const STATUS_WAIT: Duration = Duration::from_secs(25);

/// The calling page of an existing sign-in (the same POST again: refresh, back button).
pub(in crate::external_mfa) async fn show(
    state: &AppState,
    mfa: &ExternalMfa,
    tenant: &str,
    id: &str,
    lang: &str,
) -> Response {
    match current(state, id).await {
        Ok(Some(c)) if c.record.tenant == tenant => calling_page(
            mfa,
            tenant,
            id,
            &c.record.lang,
            c.shown(),
            c.masked_phone.as_deref(),
            c.can_retry(),
        ),
        Ok(_) => mfa
            .pages
            .problem(StatusCode::BAD_REQUEST, lang, "this sign-in has expired"),
        Err(_) => mfa
            .pages
            .problem(StatusCode::SERVICE_UNAVAILABLE, lang, "try again shortly"),
    }
}

#[derive(Deserialize)]
pub(in crate::external_mfa) struct StatusQuery {
    known: Option<String>,
}

/// `GET …/signin/{id}/status?known=S`: the call's status, once it differs from `known` (or
/// after [`STATUS_WAIT`]), through the verification long-poll's wake-ups.
pub(in crate::external_mfa) async fn status(
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
        let status = c.shown();
        let terminal = c.stored.done.is_some() || c.status.is_some_and(|s| s.is_terminal());
        let vf = c
            .stored
            .verification
            .as_deref()
            .and_then(|v| VerificationId::parse(v).ok());
        let changed = query.known.as_deref() != Some(status);
        if changed || terminal || tokio::time::Instant::now() >= deadline {
            let body = json!({"status": status, "reason": c.reason, "terminal": terminal, "can_retry": c.can_retry()});
            return Json(body).into_response();
        }
        match vf {
            // Named but not stored yet: look again shortly (the grace period ends without a
            // change to wake on).
            Some(_) if c.pending => tokio::time::sleep(Duration::from_millis(200)).await,
            Some(vf) => {
                if !followed {
                    followed = true;
                    if changes.follow(&vf).await.unwrap_or(true) {
                        continue; // a new subscription may have missed a change: read again
                    }
                }
                crate::notify::changed(&mut changes, &vf, deadline).await;
            }
            // No call named (a sign-in stored by an earlier version whose first POST is still
            // recording it, or one being refused): look again shortly.
            None => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
