//! The demo portal: a Security-info page (web/demo/) and the thin back-end it talks to. The
//! browser never holds a tenant key: every route below calls callverify's management API over
//! HTTP with the portal's bearer key, exactly as a real portal back-end would, and passes the
//! API's problem messages through to the page. Read it as a reference integration
//! (docs/PORTAL.md); the only demo-only lines hand the call to a virtual phone (`handset`).
//!
//! Routes (same origin as the page, JSON):
//! `GET /api/methods` · `POST /api/methods` · `DELETE /api/methods/{id}` ·
//! `PUT /api/default-method` · `POST /api/calls` · `GET /api/calls/{id}?known=STATUS` (long-poll) ·
//! `DELETE /api/block` (the demo's admin key: lifts a fraud block).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use base64::Engine;
use callverify_simulator::SimulatorHandle;
use rand::RngExt;
use serde::Deserialize;
use serde_json::{Value, json};

use super::handset::{self, Handsets};

const PAGE: &str = include_str!("../../web/demo/index.html");
const CSS: &str = include_str!("../../web/demo/demo.css");
const JS: &str = include_str!("../../web/demo/demo.js");
const STRINGS: &str = include_str!("../../web/demo/strings.toml");

/// How long one status long-poll asks callverify to wait (its maximum is 30 s).
const STATUS_WAIT_SECS: u32 = 25;

pub struct Portal {
    http: reqwest::Client,
    /// `http://…/v1/tenants/{tenant}`
    base: String,
    user: String,
    key: String,
    /// Demo only: lets the page lift a fraud block (a real portal leaves that to an admin).
    admin_key: String,
    strings: Value,
    handsets: Handsets,
}

type PortalResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

impl Portal {
    pub fn new(
        base: String,
        user: &str,
        key: String,
        admin_key: String,
        simulator: Arc<SimulatorHandle>,
    ) -> PortalResult<Self> {
        Ok(Self {
            // Longer than the longest long-poll callverify may hold.
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(u64::from(STATUS_WAIT_SECS) + 10))
                .build()?,
            base,
            user: user.to_owned(),
            key,
            admin_key,
            strings: toml::from_str(STRINGS)?,
            handsets: Handsets::new(simulator),
        })
    }

    /// The virtual phones (the simulated Entra sign-in hands one out too).
    pub fn handsets(&self) -> Handsets {
        self.handsets.clone()
    }

    fn user_url(&self, rest: &str) -> String {
        format!("{}/users/{}{rest}", self.base, self.user)
    }

    /// Sends a request with the portal's key; answers callverify's status and JSON body.
    async fn call(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        self.send(request, &self.key).await
    }

    async fn send(&self, request: reqwest::RequestBuilder, key: &str) -> (StatusCode, Value) {
        match request.bearer_auth(key).send().await {
            Ok(response) => {
                let status = StatusCode::from_u16(response.status().as_u16())
                    .unwrap_or(StatusCode::BAD_GATEWAY);
                (status, response.json().await.unwrap_or(Value::Null))
            }
            Err(e) => (
                StatusCode::BAD_GATEWAY,
                json!({"title": "callverify did not answer", "detail": e.to_string()}),
            ),
        }
    }
}

pub fn router(portal: Arc<Portal>) -> Router {
    let handsets = handset::router(portal.handsets.clone());
    Router::new()
        .route("/", get(page))
        .route("/demo.css", get(|| asset("text/css; charset=utf-8", CSS)))
        .route(
            "/demo.js",
            get(|| asset("text/javascript; charset=utf-8", JS)),
        )
        .route("/api/methods", get(methods).post(add_method))
        .route("/api/methods/{id}", delete(delete_method))
        .route("/api/default-method", put(change_default))
        .route("/api/calls", post(call_me))
        .route("/api/calls/{id}", get(call_status))
        .route("/api/block", delete(lift_block))
        .with_state(portal)
        .merge(handsets)
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

#[derive(Deserialize)]
struct PageQuery {
    lang: Option<String>,
}

/// The page in English or Dutch (`?lang=nl`), its texts from web/demo/strings.toml.
async fn page(State(portal): State<Arc<Portal>>, Query(query): Query<PageQuery>) -> Response {
    let lang = match query.lang.as_deref() {
        Some("nl") => "nl",
        _ => "en",
    };
    let strings = &portal.strings[lang];
    // Safe inside <script>: no "</script>" can appear once every '<' is escaped.
    let strings_json = strings.to_string().replace('<', "\\u003c");
    let mut env = minijinja::Environment::new();
    let rendered = env
        .add_template("index.html", PAGE)
        .and_then(|()| env.get_template("index.html"))
        .and_then(|template| {
            template.render(
                minijinja::context! { lang, t => minijinja::value::Serde(strings), strings_json },
            )
        });
    match rendered {
        Ok(html) => Html(html).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// The user's methods as the page shows them: numbers masked, and the default options a
/// registered method backs (plus e-mail and security questions when present, so the page can
/// show callverify's refusal: they are for password reset only).
async fn methods(State(portal): State<Arc<Portal>>) -> Response {
    let (status, body) = portal
        .call(portal.http.get(portal.user_url("/methods")))
        .await;
    if !status.is_success() {
        return (status, Json(body)).into_response();
    }
    let mut options: Vec<&str> = Vec::new();
    let methods: Vec<Value> = body["methods"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let kind = m["kind"].as_str().unwrap_or_default();
            let phone_type = m["phone_type"].as_str().unwrap_or_default();
            options.extend(backed_options(kind, phone_type));
            let detail = match kind {
                "phone" => crate::phone::mask_e164(m["phone_number"].as_str().unwrap_or("")),
                "email" => m["address"].as_str().unwrap_or_default().to_owned(),
                _ => m["display_name"].as_str().unwrap_or_default().to_owned(),
            };
            json!({"id": m["id"], "kind": kind, "phone_type": m["phone_type"],
                   "detail": detail, "options": backed_options(kind, phone_type)})
        })
        .collect();
    options.dedup();
    Json(json!({"default_method": body["default_method"], "methods": methods, "options": options}))
        .into_response()
}

/// Which default sign-in options a method of `kind` backs (docs/API.md, "Method kinds").
fn backed_options(kind: &str, phone_type: &str) -> Vec<&'static str> {
    match (kind, phone_type) {
        ("phone", "mobile") => vec!["voice_mobile", "sms"],
        ("phone", "alternate_mobile") => vec!["voice_alternate_mobile"],
        ("phone", "office") => vec!["voice_office"],
        ("authenticator_app", _) => vec!["authenticator_push", "authenticator_code"],
        ("security_key", _) => vec!["security_key"],
        ("email", _) => vec!["email"],
        ("security_questions", _) => vec!["security_questions"],
        _ => vec![],
    }
}

#[derive(Deserialize)]
struct NewMethod {
    kind: String,
    #[serde(default)]
    name: String,
}

/// Adds a method the portal proved itself (callverify only keeps the record). In this demo the
/// "proof" is the click; a real portal would enrol the app or key first.
async fn add_method(State(portal): State<Arc<Portal>>, Json(new): Json<NewMethod>) -> Response {
    let name = new.name.trim();
    let body = match new.kind.as_str() {
        "authenticator_app" => {
            json!({"kind": "authenticator_app", "display_name": or(name, "Authenticator")})
        }
        "security_key" => {
            let credential: [u8; 16] = rand::rng().random();
            let credential_id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(credential);
            json!({"kind": "security_key", "display_name": or(name, "Security key"),
                   "credential_id": credential_id})
        }
        "email" => json!({"kind": "email", "address": name}),
        "security_questions" => json!({"kind": "security_questions", "answered_count": 3}),
        // Phones are added by a registration call (`call_me`); let callverify say so.
        other => json!({"kind": other}),
    };
    let request = portal.http.post(portal.user_url("/methods")).json(&body);
    let (status, body) = portal.call(request).await;
    (status, Json(body)).into_response()
}

fn or<'a>(given: &'a str, default: &'a str) -> &'a str {
    if given.is_empty() { default } else { given }
}

/// Method ids are UUIDs or callverify's fixed phone ids: nothing else reaches the API's URL.
fn plain_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

async fn delete_method(State(portal): State<Arc<Portal>>, Path(id): Path<String>) -> Response {
    if !plain_id(&id) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let url = portal.user_url(&format!("/methods/{id}"));
    let (status, body) = portal.call(portal.http.delete(url)).await;
    (status, Json(body)).into_response()
}

#[derive(Deserialize)]
struct NewDefault {
    default_method: String,
}

async fn change_default(
    State(portal): State<Arc<Portal>>,
    Json(new): Json<NewDefault>,
) -> Response {
    let body = json!({"default_method": new.default_method});
    let request = portal
        .http
        .put(portal.user_url("/default-method"))
        .json(&body);
    let (status, body) = portal.call(request).await;
    (status, Json(body)).into_response()
}

#[derive(Deserialize)]
struct CallMe {
    /// ISO 3166 alpha-2, from the "Country or region" select.
    country: String,
    number: String,
    /// `en` or `nl`: the language of the page is the language of the call.
    #[serde(default)]
    lang: String,
}

/// "Call me": look the number up (a clear message before dialling anything), then ask
/// callverify for a registration call.
async fn call_me(State(portal): State<Arc<Portal>>, Json(call): Json<CallMe>) -> Response {
    let number = call.number.trim();
    let region = call.country.trim().to_ascii_uppercase();
    let lookup = format!(
        "{}/phone-numbers/{}?region={}",
        portal.base,
        path_segment(number),
        path_segment(&region)
    );
    let request = portal.http.get(lookup);
    let (status, found) = portal.call(request).await;
    if !status.is_success() {
        return (status, Json(found)).into_response();
    }
    if found["callable"] != true {
        let problem = json!({"title": "This number cannot be called",
                             "type": found["reason"], "detail": found["detail"]});
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(problem)).into_response();
    }
    // Demo only: a person answers this number's calls on the page's virtual phone.
    let phone = portal
        .handsets
        .hand_out(found["e164"].as_str().unwrap_or_default());

    let locale = if call.lang == "nl" { "nl-NL" } else { "en-US" };
    let body = json!({"phone_number": number, "region": region, "purpose": "registration",
                      "locale": locale});
    let request = portal
        .http
        .post(portal.user_url("/verifications"))
        .json(&body);
    let (status, started) = portal.call(request).await;
    if let Some(id) = started["id"].as_str() {
        portal.handsets.remember(id, phone);
    }
    (status, Json(started)).into_response()
}

/// Percent-encodes everything but letters and digits (`+`, spaces, `x` extensions…).
fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[derive(Deserialize)]
struct Known {
    /// The status the page shows now: answer as soon as callverify's differs.
    #[serde(default)]
    known: String,
}

/// The long-poll behind the page's status line. callverify's `?wait=` answers on the first
/// change after the request arrives; the page knows an older status, so a change between two
/// polls is answered at once by the first read.
async fn call_status(
    State(portal): State<Arc<Portal>>,
    Path(id): Path<String>,
    Query(known): Query<Known>,
) -> Response {
    if id.len() != 48 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let url = format!("{}/verifications/{id}", portal.base);
    let (status, now) = portal.call(portal.http.get(&url)).await;
    if !status.is_success() || now["status"] != known.known.as_str() {
        return (status, Json(now)).into_response();
    }
    let request = portal.http.get(format!("{url}?wait={STATUS_WAIT_SECS}"));
    let (status, later) = portal.call(request).await;
    (status, Json(later)).into_response()
}

/// Demo only: lifts the user's fraud block with the tenant's admin key.
async fn lift_block(State(portal): State<Arc<Portal>>) -> Response {
    let request = portal.http.delete(portal.user_url("/block"));
    let (status, body) = portal.send(request, &portal.admin_key).await;
    (status, Json(body)).into_response()
}
