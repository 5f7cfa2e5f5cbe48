//! A start that failed before dialling leaves nothing behind: the `dialling` mark a start sets
//! just before a provider may dial, and the release of a verification that never got it
//! (scripts `mark_dialling.lua` and `release_undialled.lua`, one clock and one budget for both).

use std::sync::LazyLock;

use super::Store;
use crate::ids::VerificationId;

static MARK: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(concat!(
        include_str!("scripts/dialling_lib.lua"),
        include_str!("scripts/mark_dialling.lua")
    ))
});
static RELEASE: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("scripts/release_undialled.lua")));

/// What releasing a verification that may never have been dialled found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Release {
    /// Dropped with its live slot: refund `counted` (`Counted::encode`) for `tenant`.
    Released { tenant: String, counted: String },
    /// Too young: a start may still mark it within this many ms.
    Wait(u64),
    /// Marked for dialling, bound to a call, or no longer `calling`: not released.
    Dialled,
}

/// A start's dialling mark, for [`Store::mark_dialling`] or to set with the provider account's
/// gate (`Store::dial_gate_marking`).
#[derive(Clone, Copy, Debug)]
pub struct DialMark<'a> {
    pub id: &'a VerificationId,
    /// The dial budget: ms after creation after which reconciliation may release it.
    pub budget_ms: u64,
    /// The start's own deadline for this mark, ms after creation.
    pub deadline_ms: u64,
}

impl Store {
    /// Marks `id` as about to be dialled; `false` when it is no longer `calling`, older than
    /// `budget_ms`, or the mark arrives later than `deadline_ms` after its creation (then it
    /// must not be dialled: reconciliation releases it).
    pub async fn mark_dialling(
        &self,
        id: &VerificationId,
        budget_ms: u64,
        deadline_ms: u64,
    ) -> redis::RedisResult<bool> {
        let marked: i64 = MARK
            .key(self.keys.verification(id))
            .arg(budget_ms)
            .arg(deadline_ms)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(marked == 1)
    }

    /// `redis.timeout_ms`: how long a command may take before it counts as failed.
    pub fn command_timeout(&self) -> std::time::Duration {
        self.timeout
    }

    /// Releases `id` if it was never marked for dialling and is older than `budget_ms`.
    pub async fn release_undialled(
        &self,
        id: &VerificationId,
        budget_ms: u64,
    ) -> redis::RedisResult<Release> {
        let reply: Vec<String> = RELEASE
            .key(self.keys.verification(id))
            .key(self.keys.live(id.user_tag()))
            .arg(id.as_str())
            .arg(budget_ms)
            .invoke_async(&mut self.conn())
            .await?;
        let mut reply = reply.into_iter();
        Ok(match reply.next().as_deref() {
            Some("released") => Release::Released {
                tenant: reply.next().unwrap_or_default(),
                counted: reply.next().unwrap_or_default(),
            },
            Some("wait") => {
                Release::Wait(reply.next().and_then(|ms| ms.parse().ok()).unwrap_or(100))
            }
            _ => Release::Dialled,
        })
    }
}
