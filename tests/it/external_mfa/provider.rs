//! The calling page is shown as soon as the call's start is admitted; the provider answers
//! afterwards. A provider that refuses the call (a stub of Twilio's Calls API) is heard through
//! the page's status long-poll and ends the sign-in with an OAuth error and the state.

use super::entra::{self, FakeEntra, RsaKey, field};
use super::{NUMBER, OID, Setup};
use crate::support::stub_twilio::{Mode, StubTwilio};
use crate::support::{Options, TestServer};

/// callverify with contoso as an External MFA client, calling through a stub Twilio.
pub(super) async fn setup_with_stub() -> (Setup, StubTwilio) {
    let stub = StubTwilio::start().await;
    let entra = FakeEntra::start().await;
    let (key_file, cert_file) = RsaKey::new("ours").write();
    let extra = format!(
        "[external_mfa]\nsigning_key_file = {key_file:?}\nsigning_cert_file = {cert_file:?}\n"
    );
    let contoso = entra.tenant_toml();
    let server = TestServer::start_with(
        &stub.base,
        Options {
            extra: &extra,
            contoso: &contoso,
            ..Options::default()
        },
    )
    .await;
    let issuer = format!("{}/external-mfa/contoso", server.base);
    let s = Setup {
        server,
        entra,
        issuer,
    };
    let (status, body) = s
        .server
        .approve_registration(&stub, OID, NUMBER, "mobile")
        .await;
    assert_eq!(status, 202, "{body}");
    (s, stub)
}

#[tokio::test]
async fn a_provider_refusal_after_the_page_is_shown_reaches_it_and_ends_the_sign_in() {
    let (s, stub) = setup_with_stub().await;
    // The operator's account is misconfigured: Twilio answers 401 / 20003 to every call.
    stub.set_mode(Mode::Error(401, 20003));
    let hint = s.entra.sign(&s.entra.hint(OID));
    let page = s
        .authorize(&entra::request_fields(&hint, "n-refused"))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.attribute("id=\"signin\"", "data-status").as_deref(),
        Some("calling"),
        "the page is shown before the provider answers"
    );
    assert!(page.body.contains("re calling +1"), "{}", page.body);
    let end = s.follow(&page).await;
    assert_eq!(end["status"], "failed", "{end}");
    assert_eq!(end["reason"], "provider_misconfigured", "{end}");
    let (action, fields) = s.press(&page, "finish").await.post_back().unwrap();
    assert_eq!(action, entra::REDIRECT_URI);
    assert_eq!(field(&fields, "error"), Some("temporarily_unavailable"));
    assert_eq!(field(&fields, "state"), Some("state-from-entra/+="));
    assert!(field(&fields, "id_token").is_none());
    assert_eq!(
        stub.calls().len(),
        2,
        "the registration's call and one attempt"
    );
    let entries = s.server.audit(OID).await;
    let signin = entries
        .iter()
        .find(|e| e["action"] == "external_mfa.denied")
        .unwrap_or_else(|| panic!("{entries:#?}"));
    assert_eq!(signin["reason"], "provider_misconfigured");
}
