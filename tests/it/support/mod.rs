//! Test harness: a real callverify on a loopback port with a private Redis key prefix, and a
//! stub Twilio that records Calls requests and plays the provider's side of a call over real,
//! signed HTTP.

pub mod raw_http;
pub mod store_runs;
pub mod stub_twilio;

use std::time::Duration;

use callverify::config::Config;
use figment::Figment;
use figment::providers::{Format, Toml};
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

/// The Redis Cluster's seed URLs when the suite runs against one
/// (`CALLVERIFY_TEST_REDIS_MODE=cluster`, seeds in `CALLVERIFY_TEST_REDIS_URLS`, comma-separated;
/// see `scripts/redis-cluster.sh`); `None` otherwise.
///
/// Tests about one Redis endpoint (a proxy cut, a wrong password, a Redis that starts late) set
/// `redis.mode = "standalone"` themselves and use `CALLVERIFY_TEST_REDIS_URL` in every run.
pub fn cluster_urls() -> Option<Vec<String>> {
    mode_urls("cluster")
}

/// The sentinels' URLs when the suite runs against a Sentinel-managed master named
/// [`SENTINEL_MASTER`] (`CALLVERIFY_TEST_REDIS_MODE=sentinel`, sentinels in
/// `CALLVERIFY_TEST_REDIS_URLS`; see `scripts/redis-sentinel.sh`); `None` otherwise.
pub fn sentinel_urls() -> Option<Vec<String>> {
    mode_urls("sentinel")
}

/// The master name `scripts/redis-sentinel.sh` monitors.
pub const SENTINEL_MASTER: &str = "callverify";

fn mode_urls(mode: &str) -> Option<Vec<String>> {
    if std::env::var("CALLVERIFY_TEST_REDIS_MODE").ok()? != mode {
        return None;
    }
    let urls = std::env::var("CALLVERIFY_TEST_REDIS_URLS")
        .unwrap_or_else(|_| panic!("CALLVERIFY_TEST_REDIS_URLS names the {mode}'s nodes"));
    Some(urls.split(',').map(|u| u.trim().to_owned()).collect())
}

/// A `[redis]` section for the test Redis (single node, cluster or sentinel), for tests that
/// open a `Store` themselves.
pub fn redis_config(prefix: &str, timeout_ms: u64) -> callverify::config::RedisConfig {
    use callverify::config::{RedisConfig, RedisMode, Secret};
    let secrets = |urls: Vec<String>| urls.into_iter().map(Secret::new).collect();
    let mut config = RedisConfig {
        mode: RedisMode::Standalone,
        url: Secret::new(redis_url()),
        cluster_urls: Vec::new(),
        sentinel_urls: Vec::new(),
        sentinel_master: String::new(),
        prefix: prefix.to_owned(),
        timeout_ms,
        wait_replicas: 0,
    };
    if let Some(urls) = cluster_urls() {
        config.mode = RedisMode::Cluster;
        config.cluster_urls = secrets(urls);
    } else if let Some(urls) = sentinel_urls() {
        config.mode = RedisMode::Sentinel;
        config.sentinel_urls = secrets(urls);
        config.sentinel_master = SENTINEL_MASTER.to_owned();
    }
    config
}

/// The `[redis]` keys (besides the prefix) that point callverify at the test Redis.
fn redis_toml() -> String {
    if let Some(urls) = cluster_urls() {
        format!("mode = \"cluster\"\ncluster_urls = {urls:?}")
    } else if let Some(urls) = sentinel_urls() {
        format!(
            "mode = \"sentinel\"\nsentinel_urls = {urls:?}\nsentinel_master = \"{SENTINEL_MASTER}\""
        )
    } else {
        format!("url = \"{}\"", redis_url())
    }
}

/// The environment variables that point a callverify process at the test Redis.
pub fn redis_env() -> Vec<(&'static str, String)> {
    if let Some(urls) = cluster_urls() {
        vec![
            ("CALLVERIFY__REDIS__MODE", "cluster".to_owned()),
            ("CALLVERIFY__REDIS__CLUSTER_URLS", urls.join(",")),
        ]
    } else if let Some(urls) = sentinel_urls() {
        vec![
            ("CALLVERIFY__REDIS__MODE", "sentinel".to_owned()),
            ("CALLVERIFY__REDIS__SENTINEL_URLS", urls.join(",")),
            (
                "CALLVERIFY__REDIS__SENTINEL_MASTER",
                SENTINEL_MASTER.to_owned(),
            ),
        ]
    } else {
        vec![("CALLVERIFY__REDIS__URL", redis_url())]
    }
}

/// A fresh key prefix, so tests run in parallel on one Redis without seeing each other.
pub fn unique_prefix() -> String {
    let n: u64 = rand::rng().random();
    format!("cvtest-{n:016x}")
}

pub struct TestServer {
    pub base: String,
    /// The in-process carrier simulator (`Options::simulated`).
    pub simulator: Option<std::sync::Arc<callverify_simulator::SimulatorHandle>>,
    pub prefix: String,
    pub http: reqwest::Client,
    /// Dropping it (with the server) shuts the server down, as does [`TestServer::shut_down`].
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// How to start a [`TestServer`] beyond the defaults.
#[derive(Default)]
pub struct Options<'a> {
    /// TOML laid over the test configuration (sections; it lands after the tenants).
    pub extra: &'a str,
    /// TOML keys added to the `contoso` tenant's table (e.g. `events_url = "…"`).
    pub contoso: &'a str,
    /// TOML keys added to the `[provider]` table (e.g. `calls_per_second = 20`).
    pub provider: &'a str,
    /// Reuse a key prefix (a "restart" of callverify on the same Redis state).
    pub prefix: Option<String>,
    /// Place calls through the built-in carrier simulator instead of `api_base`.
    pub simulated: bool,
    /// Keep the production rate limits and pacing. Otherwise they are lifted (calls per second
    /// 1000, every limit off), so tests that place many calls are neither slowed nor refused;
    /// `extra` and `provider` still override either way.
    pub production_limits: bool,
}

/// Lifts the rate limits and pacing for tests that are not about them.
const RELAXED_LIMITS: &str = r#"
[provider]
calls_per_second = 1000
[abuse.limits]
number_spacing = { max = 0, window_secs = 30 }
number = { max = 0, window_secs = 3600 }
user = { max = 0, window_secs = 3600 }
tenant = { max = 0, window_secs = 60 }
ip = { max = 0, window_secs = 60 }
"#;

impl TestServer {
    /// Starts callverify against `api_base` with tenants `contoso` and `fabrikam`; `extra` is
    /// TOML laid over the test configuration.
    pub async fn start(api_base: &str, extra: &str) -> Self {
        Self::start_with(
            api_base,
            Options {
                extra,
                ..Options::default()
            },
        )
        .await
    }

    /// Starts callverify with the built-in carrier simulator (`provider.kind = "simulator"`),
    /// its delays scaled so a call takes well under a second.
    pub async fn start_simulated(extra: &str) -> Self {
        let extra = format!("[provider.simulator]\ntime_scale = 0.01\n{extra}");
        let options = Options {
            extra: &extra,
            simulated: true,
            ..Options::default()
        };
        Self::start_with("http://unused.invalid", options).await
    }

    /// Like [`TestServer::start`], with `tweak` applied to the configuration last (e.g. another
    /// Redis URL or a shorter shutdown grace).
    pub async fn start_custom(
        api_base: &str,
        extra: &str,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let options = Options {
            extra,
            ..Options::default()
        };
        Self::start_tweaked(api_base, options, tweak).await
    }

    pub async fn start_with(api_base: &str, options: Options<'_>) -> Self {
        Self::start_tweaked(api_base, options, |_| {}).await
    }

    pub async fn start_tweaked(
        api_base: &str,
        options: Options<'_>,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let Options {
            extra,
            contoso,
            provider,
            prefix,
            simulated,
            production_limits,
        } = options;
        let kind = if simulated { "simulator" } else { "twilio" };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let prefix = prefix.unwrap_or_else(unique_prefix);
        let toml = format!(
            r#"
[server]
listen = "{addr}"
public_url = "http://{addr}"
[redis]
{redis}
prefix = "{prefix}"
[provider]
kind = "{kind}"
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
{contoso}
[[tenants]]
id = "fabrikam"
portal_keys_sha256 = ["{other}"]
"#,
            redis = redis_toml(),
            portal = callverify::api::auth::hash_key(PORTAL_KEY),
            admin = callverify::api::auth::hash_key(ADMIN_KEY),
            other = callverify::api::auth::hash_key(OTHER_KEY),
        );
        // Layers: defaults, the test base above, relaxed limits, then the test's own TOML.
        let relaxed = if production_limits {
            ""
        } else {
            RELAXED_LIMITS
        };
        let own = format!("[provider]\n{provider}\n{extra}");
        let figment = Figment::from(Toml::string(callverify::config::DEFAULT_TOML))
            .merge(Toml::string(&toml))
            .merge(Toml::string(relaxed))
            .merge(Toml::string(&own));
        let mut config = Config::from_figment(figment).expect("test config is valid");
        tweak(&mut config);
        let state = callverify::build_state(config)
            .await
            .expect("redis reachable");
        let simulator = state.simulator.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(callverify::serve(listener, state, async move {
            let _ = rx.await;
        }));
        Self {
            base: format!("http://{addr}"),
            simulator,
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

    /// Shuts this instance down (server and event worker) and waits until it has stopped.
    pub async fn stop(mut self) {
        let served = self.shut_down();
        let _ = tokio::time::timeout(Duration::from_secs(10), served).await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends `method` to `path` with `key` and an optional JSON body; returns status and body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        key: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.unwrap()).await
    }

    pub async fn post_json(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, key, path, Some(body))
            .await
    }

    pub async fn put_json(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, key, path, Some(body)).await
    }

    pub async fn get_json(&self, key: &str, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, key, path, None).await
    }

    pub async fn delete(&self, key: &str, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::DELETE, key, path, None).await
    }

    /// Adds a non-phone method for `contoso`/`user`.
    pub async fn add_method(&self, user: &str, body: Value) -> (u16, Value) {
        self.post_json(
            PORTAL_KEY,
            &format!("/v1/tenants/contoso/users/{user}/methods"),
            body,
        )
        .await
    }

    pub async fn delete_method(&self, user: &str, id: &str) -> (u16, Value) {
        self.delete(
            PORTAL_KEY,
            &format!("/v1/tenants/contoso/users/{user}/methods/{id}"),
        )
        .await
    }

    pub async fn set_default(&self, user: &str, option: &str) -> (u16, Value) {
        self.put_json(
            PORTAL_KEY,
            &format!("/v1/tenants/contoso/users/{user}/default-method"),
            serde_json::json!({ "default_method": option }),
        )
        .await
    }

    /// Replaces contoso's policy (admin key); panics unless accepted.
    pub async fn set_policy(&self, policy: Value) -> Value {
        let (status, body) = self
            .put_json(ADMIN_KEY, "/v1/tenants/contoso/policy", policy)
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn audit(&self, user: &str) -> Vec<Value> {
        let (status, body) = self
            .get_json(
                PORTAL_KEY,
                &format!("/v1/tenants/contoso/users/{user}/audit"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["events"].as_array().unwrap().clone()
    }

    /// Registers `number` as `phone_type` for `user` through a whole answered call (press #).
    /// Returns the start request's status and body; on 202 the call was approved.
    pub async fn approve_registration(
        &self,
        stub: &StubTwilio,
        user: &str,
        number: &str,
        phone_type: &str,
    ) -> (u16, Value) {
        let (status, body) = self
            .post_json(
                PORTAL_KEY,
                &format!("/v1/tenants/contoso/users/{user}/verifications"),
                serde_json::json!({"phone_number": number, "purpose": "registration",
                    "phone_type": phone_type}),
            )
            .await;
        if status != 202 {
            return (status, body);
        }
        let call = stub.last_call();
        let (answered, twiml) = stub.answer(&call).await;
        assert_eq!(answered, 200);
        let (pressed, _) = stub
            .press(&call, &stub_twilio::gather_action(&twiml), "#")
            .await;
        assert_eq!(pressed, 200);
        let v = self.verification(body["id"].as_str().unwrap()).await;
        assert_eq!(v["status"], "approved", "{v}");
        (status, body)
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

    /// The verification once it ended (follows it by long-poll; as it stands after ~100 s).
    pub async fn wait_for_end(&self, id: &str) -> Value {
        let mut v = self.verification(id).await;
        for _ in 0..20 {
            if !matches!(
                v["status"].as_str(),
                Some("calling" | "ringing" | "answered")
            ) {
                break;
            }
            let (_, next) = self
                .get_json(
                    PORTAL_KEY,
                    &format!("/v1/tenants/contoso/verifications/{id}?wait=5"),
                )
                .await;
            v = next;
        }
        v
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

/// The policy document with every kind enabled, office phones allowed, every country.
pub fn open_policy() -> Value {
    serde_json::json!({"methods": {"phone": {"enabled": true, "office_phone_allowed": true},
        "authenticator_app": {"enabled": true}, "security_key": {"enabled": true},
        "email": {"enabled": true}, "security_questions": {"enabled": true}},
        "allowed_countries": null, "default_locale": "en-US"})
}

/// A direct Redis connection, for checks on what the server stored: to the single Redis, a
/// cluster connection (keys are routed to their node; `KEYS` asks every master), or the master
/// the sentinels name now.
pub async fn redis() -> TestRedis {
    if let Some(urls) = sentinel_urls() {
        let mut sentinel = redis::sentinel::SentinelClient::build(
            urls,
            SENTINEL_MASTER.to_owned(),
            None,
            redis::sentinel::SentinelServerType::Master,
        )
        .unwrap();
        let client = sentinel.async_get_client().await.unwrap();
        return TestRedis::Single(client.get_multiplexed_async_connection().await.unwrap());
    }
    match cluster_urls() {
        Some(urls) => TestRedis::Cluster(
            redis::cluster::ClusterClient::new(urls)
                .unwrap()
                .get_async_connection()
                .await
                .unwrap(),
        ),
        None => TestRedis::Single(
            redis::Client::open(redis_url())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap(),
        ),
    }
}

pub enum TestRedis {
    Single(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl redis::aio::ConnectionLike for TestRedis {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        0
    }
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
