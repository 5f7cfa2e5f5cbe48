//! A `/v1` request whose body stops arriving is the client's slowness: `408`
//! `request-timeout` (problem+json, connection closed), counted in
//! `callverify_request_body_timeouts_total` — not a `503` backend failure. Over a raw TCP
//! connection: the head announces 200 bytes, one is sent.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{PORTAL_KEY, StubTwilio, TestServer};

async fn counted(server: &TestServer, name: &str) -> f64 {
    let text = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_a_408_not_a_503() {
    let stub = StubTwilio::start().await;
    let server = TestServer::start(&stub.base, "[server]\nrequest_timeout_ms = 1000\n").await;
    let before = counted(&server, "callverify_request_body_timeouts_total").await;

    let addr = server.base.trim_start_matches("http://");
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/tenants/contoso/users/slow/verifications HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {PORTAL_KEY}\r\nContent-Type: application/json\r\n\
         Content-Length: 200\r\n\r\n{{"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    // The server answers at its deadline and closes; the test's own bound is generous.
    tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut answer))
        .await
        .expect("answered and closed")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/problem+json"),
        "{answer}"
    );
    assert!(lower.contains("connection: close"), "{answer}");
    assert!(
        answer.contains("\"type\":\"https://callverify.dev/problems/request-timeout\""),
        "{answer}"
    );

    let after = counted(&server, "callverify_request_body_timeouts_total").await;
    assert!(after >= before + 1.0, "{before} -> {after}");
    // Nothing was started for the user.
    let (status, body) = server.register("slow", "+14255550160").await;
    assert_eq!(status, 202, "{body}");
}
