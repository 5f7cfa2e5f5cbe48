//! callverify as an Entra ID External MFA provider, end to end over real HTTP: a fake Entra
//! (own RSA keys, JWKS on loopback) posts sign-ins to a real callverify that calls through the
//! carrier simulator; every id_token that comes back is verified by an independent relying
//! party (`openidconnect`) against our discovery document and JWKS.

mod audit;
mod bad_input;
pub mod entra;
mod provider;
mod round_trips;

use callverify_simulator::Behaviour;
use serde_json::{Value, json};

use crate::support::{Options, TestServer};
use entra::{FakeEntra, Page, RsaKey, field};

const OID: &str = "00000000-0000-0000-0000-0000000000a1";
const NUMBER: &str = "+14255550123";

struct Setup {
    server: TestServer,
    entra: FakeEntra,
    issuer: String,
}

/// callverify (simulated carrier) with contoso as an External MFA client of `entra`, signing
/// with `ours` and still publishing `previous` certificates.
async fn setup_with(ours: &RsaKey, previous: &[&RsaKey]) -> Setup {
    let entra = FakeEntra::start().await;
    let (key_file, cert_file) = ours.write();
    let previous: Vec<String> = previous.iter().map(|k| k.write().1).collect();
    let extra = format!(
        "[provider.simulator]\ntime_scale = 0.01\n[external_mfa]\nsigning_key_file = {key_file:?}\nsigning_cert_file = {cert_file:?}\nprevious_cert_files = {previous:?}\n"
    );
    let contoso = entra.tenant_toml();
    let server = TestServer::start_with(
        "http://unused.invalid",
        Options {
            extra: &extra,
            contoso: &contoso,
            simulated: true,
            ..Options::default()
        },
    )
    .await;
    let issuer = format!("{}/external-mfa/contoso", server.base);
    Setup {
        server,
        entra,
        issuer,
    }
}

async fn setup() -> Setup {
    setup_with(&RsaKey::new("ours"), &[]).await
}

impl Setup {
    fn simulator(&self) -> &callverify_simulator::SimulatorHandle {
        self.server.simulator.as_ref().unwrap()
    }

    /// Registers `NUMBER` for `oid` through an approved registration call.
    async fn register(&self, oid: &str) {
        self.simulator().script(NUMBER, Behaviour::presses(["#"]));
        let (status, body) = self.server.register(oid, NUMBER).await;
        assert_eq!(status, 202, "{body}");
        let end = self.server.wait_for_end(body["id"].as_str().unwrap()).await;
        assert_eq!(end["status"], "approved", "{end}");
    }

    fn calls(&self) -> usize {
        self.simulator().calls_to(NUMBER).len()
    }

    async fn post(&self, path: &str, body: String, lang: &str) -> Page {
        let response = self
            .server
            .http
            .post(format!("{}{path}", self.issuer))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept-language", lang)
            .body(body)
            .send()
            .await
            .unwrap();
        Page::of(response).await
    }

    async fn authorize(&self, fields: &[(String, String)]) -> Page {
        self.post("/authorize", entra::encode(fields), "en-US,en;q=0.9")
            .await
    }

    /// Follows the calling page's status long-poll until the call ended; returns its status.
    async fn follow(&self, page: &Page) -> Value {
        self.poll_until(
            page,
            |status| status["terminal"] == true,
            "the call did not end",
        )
        .await
    }

    /// Waits until the page's call is placed (its status left `calling`: the dial runs after the
    /// page is shown); returns that status.
    async fn until_placed(&self, page: &Page) -> Value {
        self.poll_until(
            page,
            |status| status["status"] != "calling",
            "the call was not placed",
        )
        .await
    }

    /// Follows the page's status long-poll (each poll knows the last status seen) until `done`
    /// holds; panics with `what` after 30 polls.
    async fn poll_until(&self, page: &Page, done: impl Fn(&Value) -> bool, what: &str) -> Value {
        let url = page
            .attribute("id=\"signin\"", "data-status-url")
            .expect("a calling page");
        let mut known = page.attribute("id=\"signin\"", "data-status").unwrap();
        for _ in 0..30 {
            let status: Value = self
                .server
                .http
                .get(format!("{}{url}?known={known}", self.server.base))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if done(&status) {
                return status;
            }
            known = status["status"].as_str().unwrap().to_owned();
        }
        panic!("{what}");
    }

    /// POSTs one of the calling page's forms (finish, cancel, retry).
    async fn press(&self, page: &Page, form: &str) -> Page {
        let action = page.attribute(&format!("id=\"{form}\""), "action").unwrap();
        let response = self
            .server
            .http
            .post(format!("{}{action}", self.server.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .send()
            .await
            .unwrap();
        Page::of(response).await
    }

    /// A whole sign-in whose call `behaviour` answers: the post-back's fields.
    async fn sign_in(&self, behaviour: Behaviour, nonce: &str) -> Vec<(String, String)> {
        self.simulator().script(NUMBER, behaviour);
        let hint = self.entra.sign(&self.entra.hint(OID));
        let page = self.authorize(&entra::request_fields(&hint, nonce)).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("re calling +1"), "{}", page.body);
        self.follow(&page).await;
        let done = self.press(&page, "finish").await;
        assert!(
            done.csp
                .contains("form-action 'self' https://login.microsoftonline.com;"),
            "{}",
            done.csp
        );
        assert!(done.csp.contains("frame-ancestors 'none'") && done.cache_control == "no-store");
        let (action, fields) = done.post_back().expect("a post-back");
        assert_eq!(action, entra::REDIRECT_URI);
        fields
    }

    /// An authorization POST refused back to Entra: the OAuth error's fields.
    async fn refused(&self, fields: &[(String, String)]) -> Vec<(String, String)> {
        let page = self.authorize(fields).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let (action, fields) = page
            .post_back()
            .unwrap_or_else(|| panic!("no post-back: {}", page.body));
        assert_eq!(action, entra::REDIRECT_URI);
        assert!(field(&fields, "id_token").is_none());
        fields
    }
}

fn error_of(fields: &[(String, String)]) -> (&str, &str) {
    (
        field(fields, "error").unwrap_or("-"),
        field(fields, "error_description").unwrap_or("-"),
    )
}

#[tokio::test]
async fn an_approved_call_posts_an_id_token_the_relying_party_accepts() {
    let s = setup().await;
    s.register(OID).await;
    let fields = s.sign_in(Behaviour::presses(["#"]), "nonce-1").await;
    assert_eq!(field(&fields, "state"), Some("state-from-entra/+="));
    let token = field(&fields, "id_token").expect("an id_token");
    let verified = entra::relying_party_verifies(&s.server.http, &s.issuer, token, "nonce-1")
        .await
        .unwrap();
    assert_eq!(verified.sub, format!("pairwise-{OID}"));
    assert_eq!(verified.acr.as_deref(), Some("possessionorinherence"));
    assert_eq!(verified.amr, ["tel"]);
    // The wrong nonce fails the relying party's check: the check is real.
    assert!(
        entra::relying_party_verifies(&s.server.http, &s.issuer, token, "other")
            .await
            .is_err()
    );
    assert_eq!(
        s.entra.jwks_fetches(),
        1,
        "Entra's JWKS is read once at start, not per sign-in"
    );
}

#[tokio::test]
async fn discovery_jwks_and_the_probe_answer_as_entra_needs() {
    let s = setup().await;
    let r = s
        .server
        .http
        .get(format!("{}/.well-known/openid-configuration", s.issuer))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.content_length().is_some());
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["issuer"], s.issuer.as_str());
    assert_eq!(
        d["authorization_endpoint"],
        format!("{}/authorize", s.issuer)
    );
    assert_eq!(d["jwks_uri"], format!("{}/jwks", s.issuer));
    assert_eq!(d["response_types_supported"], json!(["id_token"]));
    assert_eq!(d["response_modes_supported"], json!(["form_post"]));
    assert_eq!(d["id_token_signing_alg_values_supported"], json!(["RS256"]));
    assert!(
        d["claims_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("amr"))
    );
    let probe = s
        .server
        .http
        .get(format!("{}/authorize", s.issuer))
        .send()
        .await
        .unwrap();
    assert_eq!(probe.status(), 200);
    let unknown = s
        .server
        .http
        .get(format!("{}/external-mfa/fabrikam/jwks", s.server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn hints_entra_did_not_sign_for_this_tenant_and_app_are_refused_without_a_call() {
    let s = setup().await;
    s.register(OID).await;
    let before = s.calls();
    let now = entra::now();
    let mut cases: Vec<(&str, String)> = Vec::new();
    // Signed by another key under Entra's kid.
    let forger = RsaKey::new("entra-key-1");
    cases.push((
        "bad signature",
        entra::sign_with(&forger, &s.entra.hint(OID)),
    ));
    // Another tenant (its own issuer and tid).
    let mut other = s.entra.hint(OID);
    other["tid"] = json!(entra::OTHER_TENANT);
    other["iss"] = json!(format!(
        "https://login.microsoftonline.com/{}/v2.0",
        entra::OTHER_TENANT
    ));
    cases.push(("another tenant", s.entra.sign(&other)));
    let mut tid_only = s.entra.hint(OID);
    tid_only["tid"] = json!(entra::OTHER_TENANT);
    cases.push(("tid", s.entra.sign(&tid_only)));
    let mut audience = s.entra.hint(OID);
    audience["aud"] = json!("another-app");
    cases.push(("aud", s.entra.sign(&audience)));
    let mut old = s.entra.hint(OID);
    old["iat"] = json!(now - 601);
    cases.push(("too old", s.entra.sign(&old)));
    cases.push(("not a JWT", "abc.def".into()));
    for (what, hint) in cases {
        let fields = s.refused(&entra::request_fields(&hint, "n")).await;
        assert_eq!(error_of(&fields).0, "invalid_request", "{what}: {fields:?}");
        assert_eq!(
            field(&fields, "state"),
            Some("state-from-entra/+="),
            "{what}"
        );
    }
    assert_eq!(s.calls(), before, "nothing invalid places a call");
}

#[tokio::test]
async fn a_hint_whose_exp_is_already_past_is_accepted() {
    let s = setup().await;
    s.register(OID).await;
    // setup's hint already has exp < iat (Microsoft's example); here exp is long past too.
    let mut hint = s.entra.hint(OID);
    hint["exp"] = json!(entra::now() - 3600);
    s.simulator().script(NUMBER, Behaviour::presses(["#"]));
    let page = s
        .authorize(&entra::request_fields(&s.entra.sign(&hint), "n-exp"))
        .await;
    assert!(page.body.contains("re calling"), "{}", page.body);
    s.follow(&page).await;
    let (_, fields) = s.press(&page, "finish").await.post_back().unwrap();
    let token = field(&fields, "id_token").expect("an id_token");
    entra::relying_party_verifies(&s.server.http, &s.issuer, token, "n-exp")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_client_or_redirect_uri_that_is_not_entras_gets_a_400_page_and_nothing_is_sent() {
    let s = setup().await;
    s.register(OID).await;
    let before = s.calls();
    let hint = s.entra.sign(&s.entra.hint(OID));
    for (name, value) in [
        ("redirect_uri", Some("https://evil.example/collect")),
        (
            "redirect_uri",
            Some("https://login.microsoftonline.us/common/federation/externalauthprovider"),
        ),
        ("redirect_uri", None),
        ("client_id", Some("someone-else")),
        ("client_id", None),
    ] {
        let mut fields = entra::request_fields(&hint, "n");
        entra::set(&mut fields, name, value);
        let page = s.authorize(&fields).await;
        assert_eq!(page.status, 400, "{name}={value:?}");
        assert!(page.post_back().is_none());
        assert!(!page.body.contains("evil.example"));
        assert!(page.csp.contains("frame-ancestors 'none'"));
        assert_eq!(page.cache_control, "no-store");
    }
    assert_eq!(s.calls(), before);
}

#[tokio::test]
async fn an_acr_a_call_cannot_satisfy_is_access_denied() {
    let s = setup().await;
    s.register(OID).await;
    let before = s.calls();
    let hint = s.entra.sign(&s.entra.hint(OID));
    let mut fields = entra::request_fields(&hint, "n");
    entra::set(
        &mut fields,
        "claims",
        Some(r#"{"id_token":{"acr":{"essential":true,"values":["knowledgeorinherence"]}}}"#),
    );
    let back = s.refused(&fields).await;
    assert_eq!(error_of(&back).0, "access_denied");
    assert_eq!(s.calls(), before);
}

#[tokio::test]
async fn a_user_without_a_phone_is_access_denied() {
    let s = setup().await;
    let hint = s
        .entra
        .sign(&s.entra.hint("00000000-0000-0000-0000-00000000ffff"));
    let back = s.refused(&entra::request_fields(&hint, "n")).await;
    assert_eq!(error_of(&back), ("access_denied", "no phone registered"));
    assert_eq!(s.calls(), 0);
}

#[tokio::test]
async fn a_silent_callee_is_access_denied_after_call_again_is_offered() {
    let s = setup().await;
    s.register(OID).await;
    s.simulator().script(NUMBER, Behaviour::silent());
    let hint = s.entra.sign(&s.entra.hint(OID));
    let page = s.authorize(&entra::request_fields(&hint, "n-silent")).await;
    let end = s.follow(&page).await;
    assert_eq!(end["status"], "failed", "{end}");
    assert_eq!(end["reason"], "no_input");
    assert_eq!(end["can_retry"], true);
    // Call again: a second call through the same lifecycle, answered this time.
    let before = s.calls();
    s.simulator().script(NUMBER, Behaviour::presses(["#"]));
    let again = s.press(&page, "retry").await;
    assert!(again.body.contains("re calling"), "{}", again.body);
    s.follow(&again).await;
    assert_eq!(s.calls(), before + 1);
    let (_, fields) = s.press(&again, "finish").await.post_back().unwrap();
    entra::relying_party_verifies(
        &s.server.http,
        &s.issuer,
        field(&fields, "id_token").unwrap(),
        "n-silent",
    )
    .await
    .unwrap();

    // And a silent callee nobody calls again: access_denied.
    let fields = s.sign_in(Behaviour::silent(), "n-silent-2").await;
    let (error, description) = error_of(&fields);
    assert_eq!(error, "access_denied");
    assert!(description.contains("no_input"), "{description}");
}

#[tokio::test]
async fn a_fraud_report_is_access_denied_and_blocks_the_next_sign_in() {
    let s = setup().await;
    s.register(OID).await;
    let fields = s.sign_in(Behaviour::presses(["0", "#"]), "n-fraud").await;
    assert_eq!(error_of(&fields).0, "access_denied");
    let before = s.calls();
    let hint = s.entra.sign(&s.entra.hint(OID));
    let back = s
        .refused(&entra::request_fields(&hint, "n-after-fraud"))
        .await;
    assert_eq!(error_of(&back).0, "access_denied");
    assert!(error_of(&back).1.contains("blocked"), "{back:?}");
    assert_eq!(s.calls(), before, "a blocked user is not called");
}

#[tokio::test]
async fn cancel_is_access_denied_and_yields_no_id_token() {
    let s = setup().await;
    s.register(OID).await;
    s.simulator().script(NUMBER, Behaviour::silent());
    let hint = s.entra.sign(&s.entra.hint(OID));
    let page = s.authorize(&entra::request_fields(&hint, "n-cancel")).await;
    s.until_placed(&page).await;
    let canceled = s.press(&page, "cancel").await;
    let (_, fields) = canceled.post_back().unwrap();
    assert_eq!(error_of(&fields), ("access_denied", "canceled by the user"));
    assert_eq!(field(&fields, "state"), Some("state-from-entra/+="));
    let after = s.press(&page, "finish").await;
    let (_, fields) = after.post_back().unwrap();
    assert!(
        field(&fields, "id_token").is_none(),
        "a canceled sign-in never yields an id_token"
    );
    // The canceled call was ended and the user's live slot freed: a new sign-in calls at once.
    let before = s.calls();
    let hint = s.entra.sign(&s.entra.hint(OID));
    let again = s
        .authorize(&entra::request_fields(&hint, "n-cancel-2"))
        .await;
    assert!(
        again
            .attribute("id=\"signin\"", "data-status-url")
            .is_some(),
        "a new sign-in after a cancel is a calling page"
    );
    s.follow(&again).await;
    assert_eq!(s.calls(), before + 1, "the new sign-in placed its call");
}

#[tokio::test]
async fn the_same_post_again_shows_the_same_call_and_one_id_token() {
    let s = setup().await;
    s.register(OID).await;
    let before = s.calls();
    s.simulator().script(NUMBER, Behaviour::presses(["#"]));
    let fields = entra::request_fields(&s.entra.sign(&s.entra.hint(OID)), "n-repeat");
    let (a, b) = tokio::join!(s.authorize(&fields), s.authorize(&fields));
    let c = s.authorize(&fields).await;
    let url = |p: &Page| {
        p.attribute("id=\"signin\"", "data-status-url")
            .expect("a calling page")
    };
    assert_eq!(url(&a), url(&b));
    assert_eq!(url(&a), url(&c));
    s.follow(&a).await;
    assert_eq!(s.calls(), before + 1, "one call for the repeated POST");
    let first = s.press(&a, "finish").await.post_back().unwrap().1;
    assert!(field(&first, "id_token").is_some());
    let second = s.press(&c, "finish").await;
    assert_eq!(second.status, 400, "one id_token per sign-in");
    assert!(second.post_back().is_none());
}

#[tokio::test]
async fn after_a_key_rollover_the_new_kid_signs_and_the_previous_certificate_is_published() {
    let old = RsaKey::new("old");
    let new = RsaKey::new("new");
    let s = setup_with(&new, &[&old]).await;
    let jwks: Value = s
        .server
        .http
        .get(format!("{}/jwks", s.issuer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2);
    s.register(OID).await;
    let fields = s.sign_in(Behaviour::presses(["#"]), "n-roll").await;
    let verified = entra::relying_party_verifies(
        &s.server.http,
        &s.issuer,
        field(&fields, "id_token").unwrap(),
        "n-roll",
    )
    .await
    .unwrap();
    assert_eq!(verified.kid, kids[0], "the current key signs");
}

#[tokio::test]
async fn the_page_speaks_dutch_when_the_browser_prefers_it() {
    let s = setup().await;
    s.register(OID).await;
    s.simulator().script(NUMBER, Behaviour::silent());
    let hint = s.entra.sign(&s.entra.hint(OID));
    let page = s
        .post(
            "/authorize",
            entra::encode(&entra::request_fields(&hint, "n-nl")),
            "nl-NL,nl;q=0.9,en;q=0.5",
        )
        .await;
    assert!(page.body.contains("We bellen +1"), "{}", page.body);
    assert!(page.body.contains("lang=\"nl\""));
    assert!(page.csp.contains("frame-ancestors 'none'"));
    assert_eq!(page.cache_control, "no-store");
    let _ = s.press(&page, "cancel").await;
}
