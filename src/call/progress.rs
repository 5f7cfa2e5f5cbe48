//! A call's progress in neutral terms, and what an ended call means for its verification.

use super::{FailureReason, Status};

/// A call's progress in neutral terms (each adapter maps its provider's statuses onto these).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallProgress {
    /// Accepted, not ringing yet.
    Queued,
    Ringing,
    Answered,
    /// Ended after it was answered.
    Completed,
    Busy,
    NoAnswer,
    /// The provider could not connect the call.
    Failed,
    /// Ended before it was answered, by us or the provider.
    Canceled,
    /// A status this adapter does not know: ignored.
    Unknown,
}

impl CallProgress {
    /// The progress as the transition script reads it (`src/store/scripts/transition.lua`).
    pub fn as_str(self) -> &'static str {
        match self {
            CallProgress::Ringing => "ringing",
            CallProgress::Answered => "answered",
            CallProgress::Completed
            | CallProgress::Busy
            | CallProgress::NoAnswer
            | CallProgress::Failed
            | CallProgress::Canceled => "end",
            CallProgress::Queued | CallProgress::Unknown => "",
        }
    }

    /// Whether the call is over.
    pub fn is_final(self) -> bool {
        self.ending().is_some()
    }

    /// For a call that ended: the status and reason it ends an open verification with.
    pub fn ending(self) -> Option<(Status, FailureReason)> {
        Some(match self {
            CallProgress::Completed => (Status::Failed, FailureReason::HungUp),
            CallProgress::Busy => (Status::Failed, FailureReason::Busy),
            CallProgress::NoAnswer => (Status::Failed, FailureReason::NoAnswer),
            CallProgress::Failed => (Status::Failed, FailureReason::ProviderFailed),
            CallProgress::Canceled => (Status::Canceled, FailureReason::Canceled),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ending_progress_maps_to_a_terminal_status_and_reason() {
        assert_eq!(
            CallProgress::Completed.ending(),
            Some((Status::Failed, FailureReason::HungUp))
        );
        assert_eq!(
            CallProgress::Canceled.ending(),
            Some((Status::Canceled, FailureReason::Canceled))
        );
        for open in [
            CallProgress::Queued,
            CallProgress::Ringing,
            CallProgress::Answered,
            CallProgress::Unknown,
        ] {
            assert_eq!(open.ending(), None);
            assert_ne!(open.as_str(), "end");
        }
    }
}
