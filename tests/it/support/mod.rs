//! Test harness: a real callverify on a loopback port with a private Redis key prefix, and a
//! stub Twilio that records Calls requests and plays the provider's side of a call over real,
//! signed HTTP.

pub mod stub_twilio;

use std::time::Duration;

use callverify::config::Config;
use rand::RngExt;
use serde_json::Value;
use tokio::net::TcpListener;

pub use stub_twilio::StubTwilio;

pub const AUTH_TOKEN: &str = "test-auth-token-0123456789";
pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const PORTAL_KEY: &str = "contoso-portal-key";
pub const ADMIN_KEY: &str = "contoso-admin-key";
pub const OTHER_KEY: &str = "fabrikam-portal-key";

pub fn redis_url() -> String {
    std::env::var("CALLVERIFY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A fresh key prefix, so tests run in parallel on one Redis without seeing each other.
pub fn unique_prefix() -> String {
    let n: u64 = rand::rng().random();
    format!("cvtest-{n:016x}")
}

pub struct TestServer {
    pub base: String,
    pub prefix: String,
    pub http: reqwest::Client,
    /// Dropping it (with the server) shuts the server down, as does [`TestServer::shut_down`].
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Starts callverify against `api_base` with tenants `contoso` and `fabrikam`; `extra` is
    /// TOML laid over the test configuration.
    pub async fn start(api_base: &str, extra: &str) -> Self {
        Self::start_custom(api_base, extra, |_| {}).await
    }

    /// Like [`TestServer::start`], with `tweak` applied to the configuration last (e.g. another
    /// Redis URL or a shorter shutdown grace).
    pub async fn start_custom(
        api_base: &str,
        extra: &str,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let prefix = unique_prefix();
        let toml = format!(
            r#"
[server]
listen = "{addr}"
public_url = "http://{addr}"
[redis]
url = "{redis}"
prefix = "{prefix}"
[provider]
kind = "twilio"
[provider.twilio]
account_sid = "{ACCOUNT_SID}"
auth_token = "{AUTH_TOKEN}"
api_base = "{api_base}"
from = "+15005550006"
request_timeout_ms = 2000
[verification]
max_prompts = 3
[[tenants]]
id = "contoso"
portal_keys_sha256 = ["{portal}"]
admin_keys_sha256 = ["{admin}"]
[[tenants]]
id = "fabrikam"
portal_keys_sha256 = ["{other}"]
{extra}
"#,
            redis = redis_url(),
            portal = callverify::api::auth::hash_key(PORTAL_KEY),
            admin = callverify::api::auth::hash_key(ADMIN_KEY),
            other = callverify::api::auth::hash_key(OTHER_KEY),
        );
        let mut config = Config::from_toml_overlay(&toml).expect("test config is valid");
        tweak(&mut config);
        let state = callverify::build_state(config)
            .await
            .expect("redis reachable");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(callverify::serve(listener, state, async move {
            let _ = rx.await;
        }));
        Self {
            base: format!("http://{addr}"),
            prefix,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(40))
                .build()
                .unwrap(),
            shutdown: Some(tx),
            served: Some(served),
        }
    }

    /// Sends the shutdown signal (as SIGTERM would); the handle resolves when `serve` returns.
    pub fn shut_down(&mut self) -> tokio::task::JoinHandle<std::io::Result<()>> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.served.take().expect("shut down once")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post_json(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        read(r).await
    }

    pub async fn get_json(&self, key: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        read(r).await
    }

    /// Starts a registration call for `contoso`/`user`.
    pub async fn register(&self, user: &str, number: &str) -> (u16, Value) {
        self.post_json(
            PORTAL_KEY,
            &format!("/v1/tenants/contoso/users/{user}/verifications"),
            serde_json::json!({"phone_number": number, "purpose": "registration"}),
        )
        .await
    }

    pub async fn verification(&self, id: &str) -> Value {
        let (status, body) = self
            .get_json(
                PORTAL_KEY,
                &format!("/v1/tenants/contoso/verifications/{id}"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn methods(&self, user: &str) -> Value {
        let (status, body) = self
            .get_json(
                PORTAL_KEY,
                &format!("/v1/tenants/contoso/users/{user}/methods"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

/// Status and JSON body (Null when the body is not JSON); problem+json is checked on errors.
pub async fn read(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    if status >= 400 {
        assert_eq!(content_type, "application/problem+json", "{status} {body}");
        assert!(
            body["type"]
                .as_str()
                .unwrap()
                .starts_with("https://callverify.dev/problems/")
        );
        assert_eq!(body["status"], status);
    }
    (status, body)
}

/// A direct Redis connection, for checks on what the server stored.
pub async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Every key under `prefix`.
pub async fn keys_under(prefix: &str) -> Vec<String> {
    let mut conn = redis().await;
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    keys.sort();
    keys
}
