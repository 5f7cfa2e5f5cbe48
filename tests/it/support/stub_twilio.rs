//! A stub of Twilio's side: records `POST …/Calls.json` requests and answers them as configured;
//! tests then play the call step by step (fetch TwiML, press keys, post status callbacks), each
//! webhook signed the way Twilio signs it (HMAC-SHA1 over URL + sorted params, written here
//! independently of the server's code).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use tokio::net::TcpListener;

use super::{ACCOUNT_SID, AUTH_TOKEN};

/// How the stub answers the next Calls requests.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    Created,
    Rejected400,
    Failed500,
    /// 400 with this error message (e.g. one quoting a number).
    RejectedSaying(&'static str),
    /// 500 with this error message.
    FailedSaying(&'static str),
    /// This HTTP status with this Twilio error code.
    Error(u16, u32),
    /// 201 with a body that is not a call resource.
    Unreadable,
    /// Answers 201 only after `ms` (longer than the client's deadline: a timeout).
    SlowMs(u64),
}

/// One recorded Calls API request.
#[derive(Clone, Debug)]
pub struct CallsRequest {
    pub form: Vec<(String, String)>,
    pub authorization: String,
    pub sid: String,
}

impl CallsRequest {
    pub fn field(&self, name: &str) -> &str {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
    pub fn fields(&self, name: &str) -> Vec<&str> {
        self.form
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[derive(Default)]
struct Inner {
    calls: Vec<CallsRequest>,
    mode: Option<Mode>,
    /// This many next Calls requests are answered 429 / 20429 first.
    throttle_next: usize,
    /// Each call's status as `GET …/Calls/{sid}.json` reports it (default `in-progress`).
    call_statuses: std::collections::HashMap<String, String>,
    /// How many times a call's resource was read.
    fetches: usize,
    /// Call updates (`POST …/Calls/{sid}.json`): the sid and the `Status` asked for.
    updates: Vec<(String, String)>,
}

#[derive(Clone)]
pub struct StubTwilio {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
    http: reqwest::Client,
}

/// Twilio's signature, computed independently of callverify's own code.
pub fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted: Vec<_> = params.to_vec();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn create_call(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, axum::Json<serde_json::Value>) {
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let (sid, mode) = {
        let mut inner = inner.lock().unwrap();
        let sid = format!("CA{:032x}", inner.calls.len() as u128 + 0xabc0);
        inner.calls.push(CallsRequest {
            form,
            authorization: headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default(),
            sid: sid.clone(),
        });
        if inner.throttle_next > 0 {
            inner.throttle_next -= 1;
            (sid, None)
        } else {
            (sid, Some(inner.mode.unwrap_or(Mode::Created)))
        }
    };
    let Some(mode) = mode else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({"code": 20429, "message": "Too Many Requests", "status": 429})),
        );
    };
    match mode {
        Mode::SlowMs(ms) => {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            (
                StatusCode::CREATED,
                axum::Json(json!({"sid": sid, "account_sid": ACCOUNT_SID, "status": "queued"})),
            )
        }
        Mode::Unreadable => (StatusCode::CREATED, axum::Json(json!(["not", "a", "call"]))),
        Mode::Error(status, code) => (
            StatusCode::from_u16(status).unwrap(),
            axum::Json(json!({"code": code, "message": "refused", "status": status})),
        ),
        Mode::Created => (
            StatusCode::CREATED,
            axum::Json(json!({"sid": sid, "account_sid": ACCOUNT_SID, "status": "queued"})),
        ),
        Mode::Rejected400 => (
            StatusCode::BAD_REQUEST,
            axum::Json(
                json!({"code": 21211, "message": "The 'To' number is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}),
            ),
        ),
        Mode::RejectedSaying(message) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"code": 21211, "message": message, "status": 400})),
        ),
        Mode::FailedSaying(message) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"code": 20500, "message": message, "status": 500})),
        ),
        Mode::Failed500 => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"code": 20500, "message": "Internal Server Error", "status": 500})),
        ),
    }
}

/// `POST …/Calls/{sid}.json` with `Status=canceled|completed` (Twilio's "update a call").
async fn update_call(
    State(inner): State<Arc<Mutex<Inner>>>,
    axum::extract::Path(file): axum::extract::Path<String>,
    body: axum::body::Bytes,
) -> (StatusCode, axum::Json<serde_json::Value>) {
    let sid = file.trim_end_matches(".json").to_owned();
    let status = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "Status")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let mut inner = inner.lock().unwrap();
    inner.updates.push((sid.clone(), status.clone()));
    if !["canceled", "completed"].contains(&status.as_str()) {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"code": 20001, "message": "bad Status", "status": 400})),
        );
    }
    inner.call_statuses.insert(sid.clone(), status.clone());
    (
        StatusCode::OK,
        axum::Json(json!({"sid": sid, "account_sid": ACCOUNT_SID, "status": status})),
    )
}

async fn fetch_call(
    State(inner): State<Arc<Mutex<Inner>>>,
    axum::extract::Path(file): axum::extract::Path<String>,
) -> (StatusCode, axum::Json<serde_json::Value>) {
    let sid = file.trim_end_matches(".json").to_owned();
    let mut inner = inner.lock().unwrap();
    inner.fetches += 1;
    let status = inner
        .call_statuses
        .get(&sid)
        .cloned()
        .unwrap_or_else(|| "in-progress".into());
    (
        StatusCode::OK,
        axum::Json(json!({"sid": sid, "account_sid": ACCOUNT_SID, "status": status})),
    )
}

/// A call the stub has accepted, to be played by the test.
#[derive(Clone, Debug)]
pub struct StubCall {
    pub request: CallsRequest,
}

impl StubTwilio {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route(
                &format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"),
                post(create_call),
            )
            .route(
                &format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{{file}}"),
                axum::routing::get(fetch_call).post(update_call),
            )
            .with_state(inner.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base,
            inner,
            http: reqwest::Client::new(),
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        self.inner.lock().unwrap().mode = Some(mode);
    }

    /// The next `n` Calls requests are throttled (429 / 20429).
    pub fn throttle_next(&self, n: usize) {
        self.inner.lock().unwrap().throttle_next = n;
    }

    /// What `GET …/Calls/{sid}.json` reports for the call from now on.
    pub fn set_call_status(&self, sid: &str, status: &str) {
        let mut inner = self.inner.lock().unwrap();
        inner
            .call_statuses
            .insert(sid.to_owned(), status.to_owned());
    }

    /// How many times a call resource was read (reconciliation).
    pub fn fetches(&self) -> usize {
        self.inner.lock().unwrap().fetches
    }

    /// The call updates received (`POST …/Calls/{sid}.json`): sid and `Status`.
    pub fn updates(&self) -> Vec<(String, String)> {
        self.inner.lock().unwrap().updates.clone()
    }

    pub fn calls(&self) -> Vec<CallsRequest> {
        self.inner.lock().unwrap().calls.clone()
    }

    pub fn last_call(&self) -> StubCall {
        StubCall {
            request: self.calls().last().expect("a call was placed").clone(),
        }
    }

    /// POSTs a webhook signed with `token` (a wrong token forges it); returns status, content
    /// type and body.
    pub async fn signed_post(
        &self,
        url: &str,
        params: &[(&str, &str)],
        token: &str,
    ) -> (u16, String, String) {
        let sig = twilio_signature(token, url, params);
        self.post_with_signature(url, params, Some(&sig)).await
    }

    pub async fn post_with_signature(
        &self,
        url: &str,
        params: &[(&str, &str)],
        signature: Option<&str>,
    ) -> (u16, String, String) {
        let mut req = self.http.post(url).form(params);
        if let Some(sig) = signature {
            req = req.header("X-Twilio-Signature", sig);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, ct, r.text().await.unwrap_or_default())
    }

    pub fn call_params<'a>(call: &'a StubCall, status: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("CallSid", call.request.sid.as_str()),
            ("AccountSid", ACCOUNT_SID),
            ("From", call.request.field("From")),
            ("To", call.request.field("To")),
            ("CallStatus", status),
            ("ApiVersion", "2010-04-01"),
            ("Direction", "outbound-api"),
        ]
    }

    /// The callee answers: Twilio fetches the TwiML at `Url`.
    pub async fn answer(&self, call: &StubCall) -> (u16, String) {
        let params = Self::call_params(call, "in-progress");
        let (status, ct, body) = self
            .signed_post(call.request.field("Url"), &params, AUTH_TOKEN)
            .await;
        if status == 200 {
            assert_eq!(ct, "text/xml");
        }
        (status, body)
    }

    /// The callee pressed `digits` in the gather whose action is `action` (from the TwiML).
    pub async fn press(&self, call: &StubCall, action: &str, digits: &str) -> (u16, String) {
        let mut params = Self::call_params(call, "in-progress");
        params.push(("Digits", digits));
        let (status, _, body) = self.signed_post(action, &params, AUTH_TOKEN).await;
        (status, body)
    }

    /// A status callback with `CallStatus` and `SequenceNumber`.
    pub async fn status(&self, call: &StubCall, call_status: &str, seq: &str) -> u16 {
        let mut params = Self::call_params(call, call_status);
        params.push(("SequenceNumber", seq));
        params.push(("CallbackSource", "call-progress-events"));
        self.signed_post(call.request.field("StatusCallback"), &params, AUTH_TOKEN)
            .await
            .0
    }
}

/// The `action` URL of the TwiML's `<Gather>` (XML-unescaped).
pub fn gather_action(twiml: &str) -> String {
    let start = twiml.find("action=\"").expect("a Gather with an action") + 8;
    let end = start + twiml[start..].find('"').unwrap();
    quick_xml::escape::unescape(&twiml[start..end])
        .unwrap()
        .into_owned()
}

/// A stub provider and a callverify using it.
pub async fn setup() -> (StubTwilio, super::TestServer) {
    let stub = StubTwilio::start().await;
    let server = super::TestServer::start(&stub.base, "").await;
    (stub, server)
}

/// Registers `number` for `user`, answers, and returns the call and the prompt's TwiML.
pub async fn answered_registration(
    stub: &StubTwilio,
    server: &super::TestServer,
    user: &str,
    number: &str,
) -> (String, StubCall, String) {
    let (status, body) = server.register(user, number).await;
    assert_eq!(status, 202, "{body}");
    let call = stub.last_call();
    assert_eq!(stub.status(&call, "ringing", "1").await, 204);
    let (status, twiml) = stub.answer(&call).await;
    assert_eq!(status, 200);
    (body["id"].as_str().unwrap().to_owned(), call, twiml)
}
