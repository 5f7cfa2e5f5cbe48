//! Abuse and fraud protection around a verification call: who may be called how often (rate
//! limits), how fast the provider account dials (pacing) and which numbers are callable at all
//! (the client IP the limits see comes from the HTTP layer, `src/api/client_ip.rs`). The fraud block itself is set inside the store's
//! transition script (atomic with the fraud report) and checked when a verification is created.

pub mod limits;
pub mod number_key;
pub mod numbers;
pub mod pacing;

use crate::error::ApiError;
use crate::store::verifications::Created;

/// Maps a refused creation to its problem: a fraud block (423) or a live verification (409).
///
/// One live call per user: a second request is refused with the live verification's id rather
/// than cancelling it, because the first call may already be ringing (cancelling it would leave
/// the user answering a dead call) and a script hammering "call me" must not be able to restart
/// calls at will. The portal can show the live verification instead.
pub fn check_created(created: Created) -> Result<(), ApiError> {
    match created {
        Created::Stored(..) => Ok(()),
        Created::Blocked(_) => Err(ApiError::UserBlocked(
            "this user reported a verification call as fraud and is blocked from verification \
             calls until an admin lifts the block"
                .into(),
        )),
        Created::Live(verification_id) => Err(ApiError::VerificationInProgress {
            detail: "this user already has a verification call in progress".into(),
            verification_id,
        }),
    }
}
