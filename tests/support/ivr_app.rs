//! The IVR application and harness for `tests/simulator.rs`: a simulator and a tiny app that
//! serves TwiML like our server's and checks every webhook signature, both on loopback.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use callverify::provider::twilio::signature::compute_signature;
use callverify_simulator::{Entry, SimulatorHandle, SimulatorOptions, Transcript, WebhookKind};
use serde_json::Value;

pub const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
pub const TOKEN: &str = "simulator-test-token";
pub const FROM: &str = "+15005550006";
pub const WAIT: Duration = Duration::from_secs(10);

type Form = Vec<(String, String)>;

/// What the application saw of one webhook.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path_and_query: String,
    pub params: BTreeMap<String, String>,
    pub signature_ok: bool,
}

pub struct App {
    pub base_url: String,
    pub seen: Mutex<Vec<Seen>>,
}

fn twiml(body: &str) -> Response {
    let doc = format!(r#"<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>"#);
    ([(header::CONTENT_TYPE, "text/xml")], doc).into_response()
}

/// Like our server's prompt: one key, `#` as data (finishOnKey=""), relative action URL.
fn prompt() -> Response {
    twiml(
        r#"<Gather input="dtmf" numDigits="1" finishOnKey="" timeout="5" actionOnEmptyResult="true" action="gather?step=prompt" method="POST"><Say language="en-US">Hello. Someone is signing in to your account. If this was you, press the pound key. To report fraud, press zero.</Say></Gather>"#,
    )
}

/// The IVR under test; every path is answered here so signatures are checked in one place.
async fn ivr(
    State(app): State<Arc<App>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let url = format!("{}{}", app.base_url, uri);
    // GET webhooks carry their parameters in the query and sign the URL alone.
    let (signed, params): (Form, Form) = if method == Method::GET {
        let query = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes());
        (Vec::new(), query.into_owned().collect())
    } else {
        let form: Form = form_urlencoded::parse(&body).into_owned().collect();
        (form.clone(), form)
    };
    let presented = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let signature_ok = presented == compute_signature(TOKEN, &url, &signed);
    let params: BTreeMap<String, String> = params.into_iter().collect();
    app.seen.lock().unwrap().push(Seen {
        path_and_query: uri.to_string(),
        params: params.clone(),
        signature_ok,
    });
    if !signature_ok {
        return StatusCode::FORBIDDEN.into_response();
    }
    let digits = params.get("Digits").map(String::as_str);
    match (uri.path(), uri.query()) {
        ("/ivr/voice", _) => prompt(),
        ("/ivr/gather", Some("step=prompt")) => match digits {
            Some("#") => twiml(r#"<Say>Thank you, you are verified.</Say><Hangup/>"#),
            Some("0") => twiml(
                r#"<Gather numDigits="1" finishOnKey="" action="/ivr/gather?step=fraud"><Say>Press the pound key to confirm the fraud report.</Say></Gather><Say>Nothing confirmed.</Say>"#,
            ),
            Some("") => twiml(r#"<Say>We did not get your answer. Goodbye.</Say><Hangup/>"#),
            _ => twiml(r#"<Say>That key is not valid.</Say><Redirect>voice</Redirect>"#),
        },
        ("/ivr/gather", Some("step=fraud")) if digits == Some("#") => {
            twiml(r#"<Say>Fraud reported.</Say><Hangup/>"#)
        }
        ("/ivr/long", _) => twiml(r#"<Pause length="200"/>"#),
        ("/ivr/broken", _) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        ("/ivr/not-xml", _) => twiml("<Say>unclosed"),
        ("/status", _) => StatusCode::NO_CONTENT.into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

pub struct Harness {
    pub sim: SimulatorHandle,
    pub app: Arc<App>,
    pub client: reqwest::Client,
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with_time_scale(0.01).await
    }

    pub async fn start_with_time_scale(time_scale: f64) -> Self {
        let sim = callverify_simulator::start(SimulatorOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            account_sid: ACCOUNT.into(),
            auth_token: TOKEN.into(),
            time_scale,
            dialect: callverify_simulator::Dialect::Twilio,
            signing_key: String::new(),
        })
        .await
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let app = Arc::new(App {
            base_url: format!("http://{}", listener.local_addr().unwrap()),
            seen: Mutex::new(Vec::new()),
        });
        let router = Router::new().fallback(ivr).with_state(Arc::clone(&app));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            sim,
            app,
            client: reqwest::Client::new(),
        }
    }

    pub fn calls_url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{ACCOUNT}/Calls.json",
            self.sim.base_url()
        )
    }

    pub fn call_url(&self, sid: &str) -> String {
        format!(
            "{}/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json",
            self.sim.base_url()
        )
    }

    pub async fn post(&self, url: &str, form: &[(&str, String)]) -> (StatusCode, Value) {
        let response = self
            .client
            .post(url)
            .basic_auth(ACCOUNT, Some(TOKEN))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    /// Places a call to `to` answered by the app at `path`; returns the created resource.
    pub async fn place(&self, to: &str, path: &str, extra: &[(&str, String)]) -> Value {
        let mut form = vec![
            ("To", to.to_owned()),
            ("From", FROM.to_owned()),
            ("Url", format!("{}{path}", self.app.base_url)),
        ];
        form.extend(extra.iter().cloned());
        let (status, body) = self.post(&self.calls_url(), &form).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    pub async fn call(&self, to: &str) -> Transcript {
        let created = self.place(to, "/ivr/voice", &[]).await;
        self.finished(&created).await
    }

    pub async fn finished(&self, created: &Value) -> Transcript {
        let sid = created["sid"].as_str().unwrap();
        let transcript = self.sim.wait_until_finished(sid, WAIT).await;
        let transcript = transcript.expect("the call finishes");
        self.assert_webhooks_signed_and_answered(&transcript);
        transcript
    }

    pub fn assert_webhooks_signed_and_answered(&self, transcript: &Transcript) {
        let seen = self.app.seen.lock().unwrap();
        assert!(
            seen.iter().all(|s| s.signature_ok),
            "bad signature: {seen:?}"
        );
        for entry in &transcript.entries {
            if let Entry::Webhook {
                status_code,
                url_path,
                ..
            } = entry
            {
                let expected = if url_path == "/status" { 204 } else { 200 };
                assert!(
                    url_path.starts_with("/ivr/broken") || *status_code == Some(expected),
                    "{entry:?}"
                );
            }
        }
    }
}

pub fn digits(transcript: &Transcript) -> Vec<String> {
    transcript
        .webhooks(WebhookKind::Gather)
        .iter()
        .map(|(params, _)| params["Digits"].clone())
        .collect()
}

pub fn gather_paths(transcript: &Transcript) -> Vec<&str> {
    transcript
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Webhook {
                kind: WebhookKind::Gather,
                url_path,
                ..
            } => Some(url_path.as_str()),
            _ => None,
        })
        .collect()
}
