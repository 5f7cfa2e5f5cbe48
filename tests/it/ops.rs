//! Operations: metrics, request ids, body limits, readiness, graceful shutdown.
//!
//! The metrics recorder is process-wide and tests run in parallel, so metric checks compare
//! before/after values and assert at-least deltas.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::support::stub_twilio::gather_action;
use crate::support::{AUTH_TOKEN, PORTAL_KEY, StubTwilio, TestServer, read, redis_url};

/// The value of the series `name` whose labels include all of `labels` (summed over the rest).
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (series_name, series_labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let wanted = series_name == name
                && labels
                    .iter()
                    .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")));
            wanted.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

async fn scrape(server: &TestServer) -> String {
    let r = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    r.text().await.unwrap()
}

#[tokio::test]
async fn metrics_count_requests_verifications_signatures_and_provider_calls() {
    let stub = StubTwilio::start().await;
    let server = TestServer::start(&stub.base, "").await;
    let gather_route = [
        ("route", "/telephony/{provider}/{id}/gather"),
        ("method", "POST"),
        ("status", "200"),
    ];
    let checks: [(&str, &[(&str, &str)]); 6] = [
        (
            "callverify_verifications_started_total",
            &[("purpose", "registration")],
        ),
        (
            "callverify_verifications_approved_total",
            &[("purpose", "registration")],
        ),
        (
            "callverify_webhook_signature_failures_total",
            &[("reason", "mismatch")],
        ),
        (
            "callverify_provider_requests_total",
            &[("operation", "create_call"), ("outcome", "ok")],
        ),
        ("callverify_http_requests_total", &gather_route),
        (
            "callverify_http_request_duration_seconds_count",
            &gather_route,
        ),
    ];
    let before = scrape(&server).await;

    let (status, body) = server.register("metrics-user", "+1 425 555 1234").await;
    assert_eq!(status, 202, "{body}");
    let call = stub.last_call();
    let (_, twiml) = stub.answer(&call).await;
    let action = gather_action(&twiml);
    let (status, _) = stub.press(&call, &action, "#").await;
    assert_eq!(status, 200);
    let forged = stub
        .signed_post(&action, &[("Digits", "#")], "not-the-token")
        .await;
    assert_eq!(forged.0, 403);

    let after = scrape(&server).await;
    for (name, labels) in checks {
        let (b, a) = (metric(&before, name, labels), metric(&after, name, labels));
        assert!(a >= b + 1.0, "{name} {labels:?}: {b} -> {a}\n{after}");
    }
    assert!(
        after.contains("callverify_provider_request_duration_seconds_bucket"),
        "provider latency is a histogram"
    );
}

#[tokio::test]
async fn request_ids_are_echoed_when_sane_and_generated_otherwise() {
    let server = TestServer::start("http://127.0.0.1:9", "").await;
    let id_of = |r: &reqwest::Response| r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let r = server
        .http
        .get(server.url("/healthz"))
        .header("x-request-id", "portal-7f3a:42")
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&r), "portal-7f3a:42");

    for bad in ["has space".to_owned(), "x".repeat(65)] {
        let r = server
            .http
            .get(server.url("/healthz"))
            .header("x-request-id", bad.as_str())
            .send()
            .await
            .unwrap();
        let id = id_of(&r);
        assert_ne!(id, bad);
        assert_eq!(id.len(), 32);
    }

    // Generated on every route, errors and unknown paths included.
    let (a, b) = (
        server.http.get(server.url("/nope")).send().await.unwrap(),
        server
            .http
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap(),
    );
    assert_eq!(a.status(), 404);
    assert!(id_of(&a).bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(id_of(&a), id_of(&b));
}

#[tokio::test]
async fn oversize_bodies_are_refused_with_413() {
    let stub = StubTwilio::start().await;
    let server = TestServer::start(&stub.base, "").await;
    let padding = "x".repeat(70 * 1024);

    let r = server
        .http
        .post(server.url("/v1/tenants/contoso/users/big/verifications"))
        .bearer_auth(PORTAL_KEY)
        .json(&json!({"purpose": "registration", "phone_number": padding}))
        .send()
        .await
        .unwrap();
    let (status, body) = read(r).await;
    assert_eq!(status, 413);
    assert_eq!(
        body["type"],
        "https://callverify.dev/problems/payload-too-large"
    );

    let url = server.url(&format!("/telephony/twilio/{}/gather", "a".repeat(48)));
    let (status, _, _) = stub
        .signed_post(&url, &[("Digits", padding.as_str())], AUTH_TOKEN)
        .await;
    assert_eq!(status, 413);
}

/// A TCP proxy to the test Redis that can be cut, to make Redis "go away" for one server.
struct RedisProxy {
    url: String,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl RedisProxy {
    async fn start() -> Self {
        let upstream_url = url::Url::parse(&redis_url()).unwrap();
        let upstream = format!(
            "{}:{}",
            upstream_url.host_str().unwrap(),
            upstream_url.port().unwrap_or(6379)
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut url = upstream_url.clone();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(listener.local_addr().unwrap().port()))
            .unwrap();
        let tasks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let pipes = tasks.clone();
        let acceptor = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let pipe = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                    let _ = inbound.shutdown().await;
                });
                pipes.lock().unwrap().push(pipe);
            }
        });
        tasks.lock().unwrap().push(acceptor);
        Self {
            url: url.to_string(),
            tasks,
        }
    }

    /// Closes the listener and every proxied connection: Redis is gone for the server.
    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

#[tokio::test]
async fn readyz_answers_503_once_redis_goes_away() {
    let proxy = RedisProxy::start().await;
    let server = TestServer::start_custom("http://127.0.0.1:9", "", |config| {
        config.redis.mode = callverify::config::RedisMode::Standalone;
        config.redis.url = callverify::config::Secret::new(proxy.url.clone());
        config.redis.timeout_ms = 300;
    })
    .await;
    let get = |path: &str| server.http.get(server.url(path)).send();
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    let errors_before = metric(
        &scrape(&server).await,
        "callverify_redis_errors_total",
        &[("source", "api")],
    );

    proxy.cut();
    let started = Instant::now();
    let r = get("/readyz").await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        get("/healthz").await.unwrap().status(),
        200,
        "process is up"
    );

    // An API call that needs Redis answers 503 problem+json and counts a Redis error.
    let (status, body) = server
        .get_json(
            PORTAL_KEY,
            &format!("/v1/tenants/contoso/verifications/{}", "a".repeat(48)),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    let errors_after = metric(
        &scrape(&server).await,
        "callverify_redis_errors_total",
        &[("source", "api")],
    );
    assert!(errors_after >= errors_before + 1.0);
}

/// Starts a registration and returns its id (the call stays `calling`: a long-poll on it waits).
async fn pending_verification(server: &TestServer, user: &str) -> String {
    let (status, body) = server.register(user, "+1 425 555 1234").await;
    assert_eq!(status, 202, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn refuses_connections(addr: &str) -> bool {
    for _ in 0..50 {
        if TcpStream::connect(addr).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests_and_refuses_new_connections() {
    let stub = StubTwilio::start().await;
    let mut server = TestServer::start(&stub.base, "").await;
    let id = pending_verification(&server, "shutdown-user").await;
    let poll = tokio::spawn({
        let (http, url) = (
            server.http.clone(),
            server.url(&format!("/v1/tenants/contoso/verifications/{id}?wait=2")),
        );
        async move {
            let r = http.get(url).bearer_auth(PORTAL_KEY).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await; // the long-poll is in flight

    let served = server.shut_down();
    let addr = server.base.trim_start_matches("http://").to_owned();
    assert!(refuses_connections(&addr).await, "listener still open");

    let (status, body) = poll.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"status\":\"calling\""), "{body}");
    tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .expect("serve returns once the long-poll is answered")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn shutdown_stops_waiting_after_the_grace_period() {
    let stub = StubTwilio::start().await;
    // A start whose Calls request hangs until the provider deadline (2 s): longer than the grace.
    stub.set_mode(crate::support::stub_twilio::Mode::SlowMs(10_000));
    let mut server = TestServer::start_custom(&stub.base, "", |config| {
        config.server.shutdown_grace_ms = 300;
    })
    .await;
    let (http, url) = (
        server.http.clone(),
        server.url("/v1/tenants/contoso/users/grace-user/verifications"),
    );
    let start = tokio::spawn(async move {
        let body = json!({"phone_number": "+1 425 555 1234", "purpose": "registration"});
        http.post(url)
            .bearer_auth(PORTAL_KEY)
            .json(&body)
            .send()
            .await
    });
    // The start is in flight once the provider has its request.
    tokio::time::timeout(Duration::from_secs(10), async {
        while stub.calls().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the start reaches the provider");

    server.shut_down().await.unwrap().unwrap();
    // The server stopped waiting before the request could finish (the grace, not the request).
    assert!(
        !start.is_finished(),
        "shutdown waited for a request past its grace"
    );
}
