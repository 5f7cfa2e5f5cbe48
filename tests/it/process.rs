//! The `callverify` process: output streams, closed pipes, and starting before Redis answers.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;

use crate::support::{PORTAL_KEY, TestServer, redis_url, unique_prefix};

const BIN: &str = env!("CARGO_BIN_EXE_callverify");

/// A loopback port nothing listens on (bound, read, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn check_config_into_a_closed_pipe_does_not_panic() {
    for args in [&["check-config"][..], &["hash-key", "some-key"][..]] {
        let mut child = Command::new(BIN)
            .args(args)
            .env_remove("CALLVERIFY_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before the command writes (`| head -0`).
        drop(child.stdout.take());
        let output = child.wait_with_output().await.unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            output.status.success(),
            "{args:?}: {:?} {stderr}",
            output.status
        );
    }
}

#[tokio::test]
async fn command_output_goes_to_stdout_and_nothing_else_does() {
    let output = Command::new(BIN)
        .args(["hash-key", "test"])
        .output()
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
    );
    assert!(output.stderr.is_empty());
}

/// Forwards `port` to the test Redis once started.
async fn proxy_to_redis(listener: TcpListener) {
    let upstream = url::Url::parse(&redis_url()).unwrap();
    let upstream = format!(
        "{}:{}",
        upstream.host_str().unwrap(),
        upstream.port().unwrap_or(6379)
    );
    while let Ok((mut inbound, _)) = listener.accept().await {
        let upstream = upstream.clone();
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

#[tokio::test]
async fn the_server_starts_before_redis_answers_and_logs_serving_once_it_does() {
    let (redis_port, listen_port) = (free_port(), free_port());
    let mut child = Command::new(BIN)
        .arg("serve")
        .env_remove("CALLVERIFY_CONFIG")
        .env(
            "CALLVERIFY__SERVER__LISTEN",
            format!("127.0.0.1:{listen_port}"),
        )
        .env(
            "CALLVERIFY__REDIS__URL",
            format!("redis://127.0.0.1:{redis_port}"),
        )
        .env("CALLVERIFY__REDIS__PREFIX", unique_prefix())
        .env("CALLVERIFY__REDIS__TIMEOUT_MS", "300")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    tokio::spawn({
        let (stderr, pipe) = (stderr.clone(), child.stderr.take().unwrap());
        async move {
            let mut lines = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut all = stderr.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        }
    });
    let mut stdout = child.stdout.take().unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{listen_port}");

    // Serving without Redis: /healthz up, /readyz 503 with the cause.
    let mut up = false;
    for _ in 0..100 {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await {
            up = r.status() == 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        up,
        "the server did not serve without Redis: {}",
        stderr.lock().unwrap()
    );
    let r = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let cause = r.text().await.unwrap();
    assert!(cause.starts_with("redis unavailable: "), "{cause}");
    let (status, problem) = crate::support::read(
        http.get(format!("{base}/v1/tenants/contoso/users/ann/methods"))
            .bearer_auth(PORTAL_KEY)
            .send()
            .await
            .unwrap(),
    )
    .await;
    // No tenant is configured in this process: the key is unknown whatever Redis does.
    assert_eq!(status, 401, "{problem}");
    assert!(!stderr.lock().unwrap().contains("callverify serving"));

    // Redis comes up: /readyz turns ready by itself and "serving" is logged.
    let listener = TcpListener::bind(("127.0.0.1", redis_port)).await.unwrap();
    tokio::spawn(proxy_to_redis(listener));
    let mut ready = false;
    for _ in 0..100 {
        let r = http.get(format!("{base}/readyz")).send().await.unwrap();
        if r.status() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "{}", stderr.lock().unwrap());
    let mut logged = false;
    for _ in 0..50 {
        if stderr.lock().unwrap().contains("callverify serving") {
            logged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(logged, "{}", stderr.lock().unwrap());
    assert!(stderr.lock().unwrap().contains("waiting for Redis"));

    child.start_kill().unwrap();
    let _ = child.wait().await;
    let mut out = String::new();
    stdout.read_to_string(&mut out).await.unwrap();
    assert_eq!(out, "", "logs go to stderr, not stdout");
}

#[tokio::test]
async fn a_refused_redis_password_is_a_503_unavailable_and_readyz_hides_it() {
    let mut url = url::Url::parse(&redis_url()).unwrap();
    url.set_password(Some("wrong-pass-4711")).unwrap();
    let server = TestServer::start_custom("http://127.0.0.1:9", "", |config| {
        config.redis.mode = callverify::config::RedisMode::Standalone;
        config.redis.url = callverify::config::Secret::new(url.to_string());
    })
    .await;
    let (status, body) = server
        .get_json(PORTAL_KEY, "/v1/tenants/contoso/users/ann/methods")
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["type"], "https://callverify.dev/problems/unavailable",
        "{body}"
    );
    let r = server.http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let cause = r.text().await.unwrap();
    assert!(cause.contains("authentication failed"), "{cause}");
    assert!(!cause.contains("wrong-pass-4711"), "{cause}");
}
