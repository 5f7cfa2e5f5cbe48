//! Plays Microsoft Entra ID for the External MFA tests: its own RSA keys, a JWKS served over
//! loopback HTTP (fetches counted), signed `id_token_hint`s, the authorization POST, and — as
//! the relying party — an independent check of every returned id_token with the `openidconnect`
//! crate against callverify's discovery document and JWKS.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const ENTRA_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const OTHER_TENANT: &str = "0b0b0b0b-1111-2222-3333-444444444444";
pub const APP_ID: &str = "c3b5a6f2-1111-4a4a-9b9b-123456789abc";
pub const CLIENT_ID: &str = "callverify-contoso";
pub const REDIRECT_URI: &str =
    "https://login.microsoftonline.com/common/federation/externalauthprovider";
pub const CLAIMS: &str = r#"{"id_token":{"acr":{"essential":true,"values":["possessionorinherence"]},"amr":{"essential":true,"values":["face","fido","fpt","hwk","iris","otp","pop","retina","sc","sms","swk","tel","vbm"]}}}"#;

/// One RSA key of ours: its PEM pair and the JWK Entra would publish.
pub struct RsaKey {
    pub key_pem: String,
    pub cert_pem: String,
    pub kid: String,
}

impl RsaKey {
    pub fn new(kid: &str) -> Self {
        let (key_pem, cert_pem) = callverify::external_mfa::keygen::generate(kid).unwrap();
        Self {
            key_pem,
            cert_pem,
            kid: kid.to_owned(),
        }
    }

    fn jwk(&self) -> Value {
        let key = EncodingKey::from_rsa_pem(self.key_pem.as_bytes()).unwrap();
        let mut jwk = serde_json::to_value(
            jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap(),
        )
        .unwrap();
        jwk["kid"] = json!(self.kid);
        jwk["use"] = json!("sig");
        jwk
    }

    /// Writes the pair into a fresh temporary directory; returns (key file, cert file).
    pub fn write(&self) -> (String, String) {
        let dir = std::env::temp_dir().join(format!("cv-xmfa-{}", crate::support::unique_prefix()));
        std::fs::create_dir_all(&dir).unwrap();
        let (k, c) = (dir.join("signing.key"), dir.join("signing.crt"));
        std::fs::write(&k, &self.key_pem).unwrap();
        std::fs::write(&c, &self.cert_pem).unwrap();
        (k.display().to_string(), c.display().to_string())
    }
}

/// Fake Entra: its signing key and JWKS server.
pub struct FakeEntra {
    pub key: RsaKey,
    pub jwks_url: String,
    fetches: Arc<AtomicU64>,
}

impl FakeEntra {
    pub async fn start() -> Self {
        let key = RsaKey::new("entra-key-1");
        let body = json!({"keys": [key.jwk()]}).to_string();
        let fetches = Arc::new(AtomicU64::new(0));
        let counted = fetches.clone();
        let app = axum::Router::new().route(
            "/common/discovery/v2.0/keys",
            axum::routing::get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                let body = body.clone();
                async move { ([("content-type", "application/json")], body) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            key,
            jwks_url: format!("http://{addr}/common/discovery/v2.0/keys"),
            fetches,
        }
    }

    pub fn jwks_fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }

    /// The `[tenants.external_mfa]` inline table for contoso.
    pub fn tenant_toml(&self) -> String {
        format!(
            "external_mfa = {{ client_id = \"{CLIENT_ID}\", entra_tenant_id = \"{ENTRA_TENANT}\", hint_audiences = [\"{APP_ID}\"], entra_jwks_url = \"{}\" }}",
            self.jwks_url
        )
    }

    /// A hint for user `oid` as Entra signs it (MS example style: `exp` before `iat`).
    pub fn hint(&self, oid: &str) -> Value {
        let now = now();
        json!({"ver": "2.0", "iss": format!("https://login.microsoftonline.com/{ENTRA_TENANT}/v2.0"),
            "sub": format!("pairwise-{oid}"), "aud": APP_ID, "iat": now, "nbf": now, "exp": now - 60,
            "name": "Test User", "preferred_username": "user@contoso.example", "oid": oid, "tid": ENTRA_TENANT})
    }

    pub fn sign(&self, claims: &Value) -> String {
        sign_with(&self.key, claims)
    }
}

pub fn sign_with(key: &RsaKey, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    header.typ = Some("JWT".into());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(key.key_pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The authorization request's fields, as Entra sends them.
pub fn request_fields(hint: &str, nonce: &str) -> Vec<(String, String)> {
    [
        ("scope", "openid"),
        ("response_type", "id_token"),
        ("response_mode", "form_post"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT_URI),
        ("nonce", nonce),
        ("state", "state-from-entra/+="),
        ("client-request-id", "00000000-1111-2222-3333-444444444444"),
        ("id_token_hint", hint),
        ("claims", CLAIMS),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub fn set(fields: &mut Vec<(String, String)>, name: &str, value: Option<&str>) {
    fields.retain(|(k, _)| k != name);
    if let Some(v) = value {
        fields.push((name.to_owned(), v.to_owned()));
    }
}

pub fn encode(fields: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// A page's answer: status, headers of interest, body.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub csp: String,
    pub cache_control: String,
    pub body: String,
}

impl Page {
    pub async fn of(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let header = |n: &str| {
            response
                .headers()
                .get(n)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        let (csp, cache_control) = (header("content-security-policy"), header("cache-control"));
        Self {
            status,
            csp,
            cache_control,
            body: response.text().await.unwrap(),
        }
    }

    /// The value of `attribute="…"` after `marker`, unescaped.
    pub fn attribute(&self, marker: &str, attribute: &str) -> Option<String> {
        let from = &self.body[self.body.find(marker)?..];
        let start = from.find(&format!("{attribute}=\""))? + attribute.len() + 2;
        let end = from[start..].find('"')?;
        Some(unescape(&from[start..start + end]))
    }

    /// The post-back form: its action and fields (None when this is not a post-back).
    pub fn post_back(&self) -> Option<(String, Vec<(String, String)>)> {
        let action = self.attribute("id=\"post-back\"", "action")?;
        let mut fields = Vec::new();
        let mut rest = self.body.as_str();
        while let Some(i) = rest.find("<input type=\"hidden\" name=\"") {
            rest = &rest[i + 27..];
            let name_end = rest.find('"').unwrap();
            let name = unescape(&rest[..name_end]);
            let v = rest.find("value=\"").unwrap() + 7;
            let v_end = rest[v..].find('"').unwrap();
            fields.push((name, unescape(&rest[v..v + v_end])));
        }
        Some((action, fields))
    }
}

fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// What the relying party accepted.
#[derive(Debug)]
pub struct Verified {
    pub sub: String,
    pub acr: Option<String>,
    pub amr: Vec<String>,
    pub kid: String,
}

/// The relying party's check of an id_token (the `openidconnect` crate, not callverify's code):
/// discovery and JWKS fetched over HTTP from `issuer`, signature, `iss`, `aud`, `exp`, `nonce`.
pub async fn relying_party_verifies(
    http: &reqwest::Client,
    issuer: &str,
    id_token: &str,
    nonce: &str,
) -> Result<Verified, String> {
    use openidconnect::core::{
        CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreProviderMetadata,
    };
    use openidconnect::{ClientId, Nonce};
    let discovery = http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert!(
        discovery.content_length().is_some(),
        "discovery carries Content-Length"
    );
    let metadata: CoreProviderMetadata =
        serde_json::from_slice(&discovery.bytes().await.unwrap()).map_err(|e| e.to_string())?;
    if metadata.issuer().as_str() != issuer {
        return Err(format!(
            "issuer {} is not {issuer}",
            metadata.issuer().as_str()
        ));
    }
    let jwks_body = http
        .get(metadata.jwks_uri().url().as_str())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let raw: Value = serde_json::from_slice(&jwks_body).unwrap();
    for key in raw["keys"].as_array().unwrap() {
        assert!(
            key["x5c"][0].is_string() && key["kid"].is_string() && key["use"] == "sig",
            "{key}"
        );
    }
    let jwks: CoreJsonWebKeySet = serde_json::from_slice(&jwks_body).map_err(|e| e.to_string())?;
    let verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new(super::entra::CLIENT_ID.into()),
        metadata.issuer().clone(),
        jwks,
    );
    let token: CoreIdToken = id_token
        .parse()
        .map_err(|e: serde_json::Error| e.to_string())?;
    let claims = token
        .claims(&verifier, &Nonce::new(nonce.into()))
        .map_err(|e| e.to_string())?;
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(id_token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    Ok(Verified {
        sub: claims.subject().as_str().to_owned(),
        acr: claims.auth_context_ref().map(|a| a.as_str().to_owned()),
        amr: claims
            .auth_method_refs()
            .map(|v| v.iter().map(|a| a.as_str().to_owned()).collect())
            .unwrap_or_default(),
        kid: header["kid"].as_str().unwrap().to_owned(),
    })
}
