//! What happened on one simulated call, in order: what tests assert on and what the demo prints.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::twiml::Method;

/// A call's status. `Initiated` only appears in transcripts and status callbacks; the Call
/// resource shows `queued` until the phone rings (as Twilio does).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallStatus {
    Queued,
    Initiated,
    Ringing,
    InProgress,
    Completed,
    Busy,
    NoAnswer,
    Failed,
    Canceled,
}

impl CallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Initiated => "initiated",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in-progress",
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::NoAnswer => "no-answer",
            CallStatus::Failed => "failed",
            CallStatus::Canceled => "canceled",
        }
    }

    /// The call is over; nothing will be added to its transcript.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CallStatus::Completed
                | CallStatus::Busy
                | CallStatus::NoAnswer
                | CallStatus::Failed
                | CallStatus::Canceled
        )
    }
}

impl fmt::Display for CallStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the simulator sent a webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookKind {
    /// The call's `Url`, fetched on answer.
    Answer,
    /// A `<Gather>` action.
    Gather,
    Redirect,
    StatusCallback,
}

/// Who or what ended an answered call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HangupCause {
    /// The callee put the phone down.
    Callee,
    /// A `<Hangup/>` verb.
    HangupVerb,
    /// The TwiML ran out of verbs.
    EndOfDocument,
    /// A webhook failed or answered something that is not TwiML.
    ApplicationError,
    /// `POST …/Calls/{Sid}.json` with `Status=completed`.
    Api,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    Status {
        status: CallStatus,
    },
    Webhook {
        kind: WebhookKind,
        method: Method,
        /// Path and query of the URL requested.
        url_path: String,
        /// Every parameter sent (they are signed, so tests can check them).
        params: BTreeMap<String, String>,
        /// `None` when no HTTP answer came (connection refused, timeout).
        status_code: Option<u16>,
    },
    Said {
        text: String,
        language: String,
        /// The callee pressed a key (barge-in) or hung up before the end.
        interrupted: bool,
    },
    Played {
        url: String,
        interrupted: bool,
    },
    Paused {
        secs: u32,
    },
    /// Keys the callee pressed in one `<Gather>`, the `finishOnKey` included.
    Pressed {
        keys: String,
    },
    /// A `<Gather>` timed out without a key.
    Silence,
    /// Twilio error code (11200 HTTP retrieval failure, 11205 connection failure, 12100 document
    /// parse failure…) for a webhook answer that ended the call.
    ApplicationError {
        code: u32,
        detail: String,
    },
    Unsupported {
        verb: String,
    },
    Rejected {
        reason: String,
    },
    HungUp {
        cause: HangupCause,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Transcript {
    pub call_sid: String,
    pub to: String,
    pub from: String,
    /// The current status; final once the call is over.
    pub status: CallStatus,
    /// Simulated seconds between answer and hang-up (0 if never answered); set when final.
    pub duration_secs: Option<u64>,
    pub entries: Vec<Entry>,
}

impl Transcript {
    /// Keys pressed, one string per `<Gather>`.
    pub fn pressed(&self) -> Vec<&str> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Pressed { keys } => Some(keys.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Texts spoken to the callee, in order.
    pub fn said(&self) -> Vec<&str> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Said { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The webhook requests of one kind, in order, as `(params, status_code)`.
    pub fn webhooks(&self, of: WebhookKind) -> Vec<(&BTreeMap<String, String>, Option<u16>)> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Webhook {
                    kind,
                    params,
                    status_code,
                    ..
                } if *kind == of => Some((params, *status_code)),
                _ => None,
            })
            .collect()
    }

    /// The statuses the call went through, in order.
    pub fn statuses(&self) -> Vec<CallStatus> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Status { status } => Some(*status),
                _ => None,
            })
            .collect()
    }

    /// One human-readable line per entry (no phone numbers: these lines end up in logs).
    pub fn lines(&self) -> Vec<String> {
        self.entries.iter().map(Entry::line).collect()
    }
}

impl Entry {
    fn line(&self) -> String {
        let cut = |interrupted: &bool| if *interrupted { " (interrupted)" } else { "" };
        match self {
            Entry::Status { status } => format!("📞 {status}"),
            Entry::Webhook {
                method,
                url_path,
                params,
                status_code,
                ..
            } => {
                let answer = status_code.map_or("no answer".to_owned(), |c| c.to_string());
                // The parameters that change from request to request; the rest is constant.
                let interesting: Vec<String> = ["CallStatus", "Digits", "SequenceNumber"]
                    .iter()
                    .filter_map(|k| params.get(*k).map(|v| format!("{k}={v:?}")))
                    .collect();
                format!(
                    "🌐 {} {url_path} [{}] → {answer}",
                    method.as_str(),
                    interesting.join(" ")
                )
            }
            Entry::Said {
                text,
                language,
                interrupted,
            } => format!("🔊 [{language}] {text:?}{}", cut(interrupted)),
            Entry::Played { url, interrupted } => format!("🎵 {url}{}", cut(interrupted)),
            Entry::Paused { secs } => format!("⏸ {secs} s"),
            Entry::Pressed { keys } => format!("⌨ pressed {keys}"),
            Entry::Silence => "⌨ (silence)".to_owned(),
            Entry::ApplicationError { code, detail } => {
                format!("⚠ application error {code}: {detail}")
            }
            Entry::Unsupported { verb } => format!("⚠ <{verb}> not simulated, skipped"),
            Entry::Rejected { reason } => format!("⛔ rejected ({reason})"),
            Entry::HungUp { cause } => format!("☎ hung up ({})", cause_text(*cause)),
        }
    }
}

fn cause_text(cause: HangupCause) -> &'static str {
    match cause {
        HangupCause::Callee => "by the callee",
        HangupCause::HangupVerb => "<Hangup/>",
        HangupCause::EndOfDocument => "end of TwiML",
        HangupCause::ApplicationError => "application error",
        HangupCause::Api => "via the Calls API",
    }
}

impl fmt::Display for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call {} — {}", self.call_sid, self.status)?;
        if let Some(secs) = self.duration_secs {
            write!(f, ", {secs} s")?;
        }
        for line in self.lines() {
            write!(f, "\n  {line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_line_per_entry_and_serializes_tagged() {
        let t = Transcript {
            call_sid: "CA1".into(),
            to: "+15550000000".into(),
            from: "+15005550006".into(),
            status: CallStatus::Completed,
            duration_secs: Some(7),
            entries: vec![
                Entry::Status {
                    status: CallStatus::Ringing,
                },
                Entry::Said {
                    text: "Hi".into(),
                    language: "en-US".into(),
                    interrupted: true,
                },
                Entry::Pressed { keys: "#".into() },
                Entry::HungUp {
                    cause: HangupCause::HangupVerb,
                },
            ],
        };
        let shown = t.to_string();
        assert!(shown.starts_with("call CA1 — completed, 7 s"), "{shown}");
        assert!(shown.contains("🔊 [en-US] \"Hi\" (interrupted)"));
        assert!(!shown.contains("+1555"), "no phone numbers in logs");
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["entries"][0]["type"], "status");
        assert_eq!(json["entries"][0]["status"], "ringing");
        assert_eq!(json["status"], "completed");
        assert_eq!(t.pressed(), vec!["#"]);
    }
}
