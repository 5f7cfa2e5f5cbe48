//! "Sign in with Entra (simulated)" in `callverify demo --web`: the demo plays Microsoft Entra
//! ID with a local key. It serves Entra's JWKS, a start page that auto-posts a signed
//! `id_token_hint` to callverify's authorization endpoint (docs/ENTRA.md), a virtual phone page
//! for the call that follows, and the redirect URI that receives the post-back and shows the
//! id_token's claims. Demo only: a real Entra does all of this itself.
//!
//! Routes: `GET /entra/keys` · `GET /entra/start` · `GET /entra/phone` (+ `/phone/entra…`, the
//! handset routes) · `POST /entra/federation/externalauthprovider`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::handset::Handsets;
use crate::methods::{DefaultMethod, PhoneType};

pub const ENTRA_TENANT: &str = "00000000-0000-4000-8000-00000000d3e0";
pub const CLIENT_ID: &str = "callverify-demo";
/// The handset id the sign-in's call is answered under (`/phone/entra`).
const HANDSET: &str = "entra";
const START: &str = include_str!("../../web/demo/entra-start.html");
const PHONE: &str = include_str!("../../web/demo/entra-phone.html");
const PHONE_JS: &str = include_str!("../../web/demo/entra-phone.js");
const RESULT: &str = include_str!("../../web/demo/entra-result.html");

pub struct DemoEntra {
    key: EncodingKey,
    jwks: String,
    /// callverify's `…/external-mfa/demo/authorize`.
    authorize: String,
    /// callverify's `/v1/tenants/demo/users/{u}/methods`, and the portal key to read it.
    methods_url: String,
    portal_key: String,
    /// The user's id in the hint (`oid`).
    user: String,
    /// The demo's own redirect URI (this server).
    pub redirect_uri: String,
    handsets: Handsets,
    http: reqwest::Client,
}

impl DemoEntra {
    pub fn new(
        callverify: &str,
        page_base: &str,
        user: &str,
        portal_key: String,
        handsets: Handsets,
    ) -> Result<Self, String> {
        let (key_pem, _) = crate::external_mfa::keygen::generate("demo Entra")?;
        let key = EncodingKey::from_rsa_pem(key_pem.as_bytes()).map_err(|e| e.to_string())?;
        let mut jwk = serde_json::to_value(
            jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::RS256)
                .map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        jwk["kid"] = json!("demo-entra");
        jwk["use"] = json!("sig");
        Ok(Self {
            key,
            jwks: json!({"keys": [jwk]}).to_string(),
            authorize: format!("{callverify}/external-mfa/demo/authorize"),
            methods_url: format!("{callverify}/v1/tenants/demo/users/{user}/methods"),
            portal_key,
            user: user.to_owned(),
            redirect_uri: format!("{page_base}/entra/federation/externalauthprovider"),
            handsets,
            http: reqwest::Client::new(),
        })
    }

    /// A fresh hint for the demo user, as Entra signs it (issued expired, as Entra does).
    fn hint(&self) -> Result<String, String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs() as i64;
        let claims = json!({"ver": "2.0", "iss": format!("https://login.microsoftonline.com/{ENTRA_TENANT}/v2.0"),
            "sub": format!("demo-pairwise-{}", self.user), "aud": CLIENT_ID, "iat": now, "nbf": now, "exp": now - 1,
            "name": "Adele Vance", "preferred_username": "adele.vance@contoso.example", "oid": self.user, "tid": ENTRA_TENANT});
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("demo-entra".into());
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| e.to_string())
    }

    /// Hands the user's phone (the one a sign-in calls) to the browser's virtual phone.
    async fn hand_out_phone(&self) -> Option<String> {
        let methods: Value = self
            .http
            .get(&self.methods_url)
            .bearer_auth(&self.portal_key)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let wanted = methods["default_method"]
            .as_str()
            .and_then(DefaultMethod::parse)
            .and_then(DefaultMethod::voice_phone)
            .unwrap_or(PhoneType::Mobile);
        let phones = methods["methods"].as_array()?;
        let number = phones
            .iter()
            .find(|m| m["id"] == wanted.method_id())
            .or_else(|| {
                phones
                    .iter()
                    .find(|m| m["id"] == PhoneType::Mobile.method_id())
            })?
            .get("phone_number")?
            .as_str()?
            .to_owned();
        let phone = self.handsets.hand_out(&number);
        self.handsets.remember(HANDSET, phone);
        Some(crate::phone::mask_e164(&number))
    }
}

pub fn router(entra: Arc<DemoEntra>) -> Router {
    Router::new()
        .route("/entra/keys", get(keys))
        .route("/entra/start", get(start))
        .route("/entra/phone", get(|| async { Html(PHONE) }))
        .route(
            "/entra/phone.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    PHONE_JS,
                )
            }),
        )
        .route("/entra/federation/externalauthprovider", post(post_back))
        .with_state(entra)
}

async fn keys(State(entra): State<Arc<DemoEntra>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        entra.jwks.clone(),
    )
        .into_response()
}

/// Entra's side of a sign-in: the authorization request, posted at once.
async fn start(State(entra): State<Arc<DemoEntra>>, headers: axum::http::HeaderMap) -> Response {
    let lang = crate::external_mfa::page::language(&headers);
    let phone = entra.hand_out_phone().await;
    let hint = match entra.hint() {
        Ok(hint) => hint,
        Err(e) => return Html(format!("cannot sign the hint: {e}")).into_response(),
    };
    let nonce = hex::encode(rand::random::<[u8; 16]>());
    let fields = [
        ("scope", "openid"),
        ("response_type", "id_token"),
        ("response_mode", "form_post"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", entra.redirect_uri.as_str()),
        ("nonce", nonce.as_str()),
        ("state", "demo-state"),
        ("client-request-id", "00000000-0000-4000-8000-000000000001"),
        ("id_token_hint", hint.as_str()),
        (
            "claims",
            r#"{"id_token":{"acr":{"essential":true,"values":["possessionorinherence"]},"amr":{"essential":true,"values":["tel"]}}}"#,
        ),
    ];
    let mut env = minijinja::Environment::new();
    let rendered = env.add_template("start.html", START).and_then(|()| {
        env.get_template("start.html")?.render(minijinja::context! {
            lang, action => &entra.authorize, fields => minijinja::value::Serde(fields),
            registered => phone.is_some(),
        })
    });
    match rendered {
        Ok(html) => Html(html).into_response(),
        Err(e) => Html(format!("cannot render: {e}")).into_response(),
    }
}

/// Entra's redirect URI, played by the demo: shows what came back (the id_token's claims).
async fn post_back(body: axum::body::Bytes) -> Response {
    let fields: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let claims = get("id_token").and_then(|token| {
        let payload = token.split('.').nth(1)?.to_owned();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()?;
        let value: Value = serde_json::from_slice(&bytes).ok()?;
        serde_json::to_string_pretty(&value).ok()
    });
    let mut env = minijinja::Environment::new();
    let rendered = env.add_template("result.html", RESULT).and_then(|()| {
        env.get_template("result.html")?.render(minijinja::context! {
            claims, error => get("error"), description => get("error_description"), state => get("state"),
        })
    });
    match rendered {
        Ok(html) => Html(html).into_response(),
        Err(e) => Html(format!("cannot render: {e}")).into_response(),
    }
}
