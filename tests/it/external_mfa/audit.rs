//! Each sign-in's end is written once to the user's audit stream (served by the audit API) and
//! logged with Entra's client-request-id: approved, denied (with the call's reason), canceled,
//! refused (no phone, a fraud block) — however often the page posts its buttons.

use std::sync::{Arc, Mutex, OnceLock};

use callverify_simulator::Behaviour;
use serde_json::Value;

use super::entra::{self, field};
use super::{NUMBER, OID, Setup, setup};

const REQUEST_ID: &str = "00000000-1111-2222-3333-444444444444";

/// The sign-in entries of `user`'s audit stream, newest first.
async fn signin_entries(s: &Setup, user: &str) -> Vec<Value> {
    s.server
        .audit(user)
        .await
        .into_iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("external_mfa."))
        .collect()
}

/// Log lines written through [`audit_log`].
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn lines_with(&self, needle: &str) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

/// The `callverify::audit` log lines of the whole test binary, kept by a global subscriber (a
/// thread's scoped one misses events whose callsite another test's thread met first). With
/// `CALLVERIFY_TEST_LOG` set it also prints what that filter selects, as tests/it/cluster.rs
/// does. `None` when another global subscriber was installed first.
fn audit_log() -> Option<&'static Captured> {
    use tracing_subscriber::prelude::*;
    static LOG: OnceLock<Option<Captured>> = OnceLock::new();
    LOG.get_or_init(|| {
        let captured = Captured::default();
        let audit = tracing_subscriber::filter::Targets::new()
            .with_target("callverify::audit", tracing::Level::INFO);
        let capture = tracing_subscriber::fmt::layer()
            .with_writer(captured.clone())
            .with_ansi(false)
            .with_filter(audit);
        let stderr = std::env::var("CALLVERIFY_TEST_LOG").ok().map(|filter| {
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(tracing_subscriber::EnvFilter::new(filter))
        });
        let registry = tracing_subscriber::registry().with(capture).with(stderr);
        registry.try_init().ok().map(|()| captured)
    })
    .as_ref()
}

#[tokio::test]
async fn each_sign_in_end_is_one_audit_entry_and_one_log_line_with_entras_request_id() {
    let logs = audit_log();
    // This test's own client-request-id, to find its lines among other tests'.
    let request_id = format!(
        "00000000-1111-2222-3333-{:012x}",
        rand::random::<u64>() >> 16
    );
    let s = setup().await;
    let request = |nonce: &str| {
        let hint = s.entra.sign(&s.entra.hint(OID));
        let mut fields = entra::request_fields(&hint, nonce);
        entra::set(&mut fields, "client-request-id", Some(&request_id));
        fields
    };
    s.register(OID).await;

    // Approved; its page posts "continue" twice.
    s.simulator().script(NUMBER, Behaviour::presses(["#"]));
    let page = s.authorize(&request("n-audit-1")).await;
    s.follow(&page).await;
    let (_, fields) = s.press(&page, "finish").await.post_back().unwrap();
    assert!(field(&fields, "id_token").is_some());
    assert_eq!(s.press(&page, "finish").await.status, 400, "one id_token");
    // Denied: a silent callee nobody calls again; "continue" twice.
    s.simulator().script(NUMBER, Behaviour::silent());
    let page = s.authorize(&request("n-audit-2")).await;
    s.follow(&page).await;
    for _ in 0..2 {
        let (_, fields) = s.press(&page, "finish").await.post_back().unwrap();
        assert_eq!(field(&fields, "error"), Some("access_denied"));
    }
    // Canceled, twice.
    s.simulator().script(NUMBER, Behaviour::silent());
    let page = s.authorize(&request("n-audit-3")).await;
    s.until_placed(&page).await;
    for _ in 0..2 {
        let (_, fields) = s.press(&page, "cancel").await.post_back().unwrap();
        assert_eq!(field(&fields, "error"), Some("access_denied"));
    }
    let entries = signin_entries(&s, OID).await;
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "external_mfa.canceled",
            "external_mfa.denied",
            "external_mfa.approved"
        ],
        "{entries:#?}"
    );
    let (canceled, denied, approved) = (&entries[0], &entries[1], &entries[2]);
    assert_eq!(approved["outcome"], "approved");
    assert_eq!(approved["client_request_id"], request_id.as_str());
    assert_eq!(approved["purpose"], "sign_in");
    assert_eq!(approved["phone"], "+1********23", "masked");
    let vf = approved["verification"].as_str().expect("the call's id");
    // The call's own entry names the same verification.
    let events = s.server.audit(OID).await;
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "verification.approved" && e["verification"] == vf),
        "{events:#?}"
    );
    assert_eq!(denied["outcome"], "denied");
    assert_eq!(denied["reason"], "no_input");
    assert_eq!(canceled["outcome"], "canceled");
    assert!(canceled.get("reason").is_none(), "{canceled}");

    // One log line per end, with Entra's client-request-id (and no phone number).
    let Some(logs) = logs else {
        eprintln!("another global tracing subscriber: the log lines are not checked");
        return;
    };
    let lines = logs.lines_with(&request_id);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    for line in &lines {
        assert!(line.contains("external MFA sign-in"), "{line}");
        assert!(
            !line.contains(NUMBER) && !line.contains("4255550123"),
            "{line}"
        );
    }
    assert!(
        lines[0].contains("approved") && lines[2].contains("canceled"),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn refused_sign_ins_are_audited_with_why() {
    let s = setup().await;
    // No phone registered.
    let nobody = "00000000-0000-0000-0000-00000000fff1";
    let hint = s.entra.sign(&s.entra.hint(nobody));
    let back = s
        .refused(&entra::request_fields(&hint, "n-refused-1"))
        .await;
    assert_eq!(field(&back, "error"), Some("access_denied"));
    let entries = signin_entries(&s, nobody).await;
    assert_eq!(entries.len(), 1, "{entries:#?}");
    assert_eq!(entries[0]["action"], "external_mfa.refused");
    assert_eq!(entries[0]["outcome"], "refused");
    assert_eq!(entries[0]["reason"], "no_phone");
    assert_eq!(entries[0]["client_request_id"], REQUEST_ID);

    // A fraud report: the sign-in is denied, the next one refused (blocked).
    s.register(OID).await;
    let fields = s.sign_in(Behaviour::presses(["0", "#"]), "n-fraud-1").await;
    assert_eq!(field(&fields, "error"), Some("access_denied"));
    let hint = s.entra.sign(&s.entra.hint(OID));
    s.refused(&entra::request_fields(&hint, "n-fraud-2")).await;
    let entries = signin_entries(&s, OID).await;
    let summary: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["reason"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("external_mfa.refused", "user_blocked"),
            ("external_mfa.denied", "fraud_reported"),
        ]
    );
}
