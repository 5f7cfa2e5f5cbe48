//! Serving beside the public listener and through a shutdown: the ops listener (`server.ops_listen`)
//! answers while the public listener's connection ceiling is full, and a drain answers every
//! request it has received — on idle keep-alive connections too — and every long-poll, however
//! long its wait, before the grace ends.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::connections::{pending_verification, server};
use crate::support::PORTAL_KEY;
use crate::support::raw_http::{HEALTHZ, addr, closed_within, read_response};

/// A loopback address no one listens on (the port is released for the server to bind).
fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

async fn get(target: &str, path: &str) -> Option<(u16, String, String)> {
    let mut stream = TcpStream::connect(target).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    read_response(&mut stream).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ops_listener_answers_while_the_public_listener_is_full_of_half_open_connections() {
    const CEILING: usize = 20;
    let ops = free_addr();
    let (_stub, server) = server(|c| {
        c.server.max_connections = CEILING;
        c.server.header_read_timeout_ms = 120_000;
        c.server.ops_listen = Some(ops);
    })
    .await;
    let public = addr(&server);
    // Every public slot is held by a connection that sent half a head and stopped.
    let mut half_open = Vec::new();
    for _ in 0..CEILING {
        let mut stream = TcpStream::connect(&public).await.unwrap();
        stream
            .write_all(b"POST /telephony/twilio/x/gather HTTP/1.1\r\nHost: t\r\nContent-")
            .await
            .unwrap();
        half_open.push(stream);
    }
    // A complete request on the public listener waits for a slot (the ceiling is full)...
    let mut waiting = TcpStream::connect(&public).await.unwrap();
    waiting.write_all(HEALTHZ).await.unwrap();

    // ...while the ops listener answers all three routes.
    let ops = ops.to_string();
    let (status, _, body) = get(&ops, "/healthz")
        .await
        .expect("/healthz on the ops listener");
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, _, body) = get(&ops, "/readyz").await.expect("/readyz");
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = get(&ops, "/metrics").await.expect("/metrics");
    assert_eq!(status, 200);
    assert!(body.contains("callverify_http_requests_total"), "{body}");
    // The ops listener serves nothing else.
    let (status, head, _) = get(&ops, "/v1/tenants/contoso/users/ann/methods")
        .await
        .unwrap();
    assert_eq!(status, 404);
    assert!(head.contains("application/problem+json"), "{head}");

    // The public request was indeed still waiting: nothing has been answered on it.
    let early = tokio::time::timeout(Duration::from_millis(200), read_response(&mut waiting));
    assert!(early.await.is_err(), "served beyond max_connections");
    drop(half_open);
    let (status, _, _) = read_response(&mut waiting)
        .await
        .expect("served once slots free");
    assert_eq!(status, 200);
}

#[tokio::test]
async fn ops_routes_leave_the_public_listener_when_switched_off() {
    let ops = free_addr();
    let (_stub, server) = server(|c| {
        c.server.ops_listen = Some(ops);
        c.server.ops_on_public = false;
    })
    .await;
    let public = addr(&server);
    for path in ["/healthz", "/readyz", "/metrics"] {
        let (status, _, _) = get(&public, path).await.unwrap();
        assert_eq!(status, 404, "{path} on the public listener");
        let (status, _, _) = get(&ops.to_string(), path).await.unwrap();
        assert_eq!(status, 200, "{path} on the ops listener");
    }
    // The product routes stay public.
    let (status, _) = server
        .get_json(PORTAL_KEY, "/v1/tenants/contoso/users/ann/methods")
        .await;
    assert_eq!(status, 200);
}

/// A current-thread runtime: the test writes its requests and sends the signal before the server
/// runs again, so the server learns of both in the same turn — the request sits in the kernel,
/// unread, when the drain looks at its connection.
#[tokio::test]
async fn requests_already_sent_on_idle_keep_alive_connections_are_answered_at_shutdown() {
    const CONNECTIONS: usize = 32;
    let (_stub, mut server) = server(|_| {}).await;
    let target = addr(&server);
    let mut streams = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut stream = TcpStream::connect(&target).await.unwrap();
        stream.write_all(HEALTHZ).await.unwrap();
        let (status, head, _) = read_response(&mut stream).await.unwrap();
        assert_eq!(status, 200);
        assert!(!head.contains("connection: close"), "{head}");
        streams.push(stream);
    }
    // Every connection is idle; each now carries its next request when the signal comes.
    for stream in &mut streams {
        stream.write_all(HEALTHZ).await.unwrap();
    }
    let served = server.shut_down();

    for (i, stream) in streams.iter_mut().enumerate() {
        let (status, head, body) = read_response(stream)
            .await
            .unwrap_or_else(|| panic!("connection {i} closed without an answer"));
        assert_eq!((status, body.as_str()), (200, "ok"));
        assert!(head.contains("connection: close"), "{head}");
        assert!(closed_within(stream, Duration::from_secs(5)).await);
    }
    tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .expect("the drain ends once every connection is answered")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_longer_than_the_grace_is_answered_with_its_current_state_at_shutdown() {
    let (_stub, mut server) = server(|c| c.server.shutdown_grace_ms = 1000).await;
    let id = pending_verification(&server, "lp-user").await;
    let mut polls = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(addr(&server)).await.unwrap();
        let poll = format!(
            "GET /v1/tenants/contoso/verifications/{id}?wait=30 HTTP/1.1\r\nHost: t\r\n\
             Authorization: Bearer {PORTAL_KEY}\r\n\r\n"
        );
        stream.write_all(poll.as_bytes()).await.unwrap();
        polls.push(stream);
    }
    // Most likely both long-polls wait by now: a request sent after them has been answered. (The
    // assertions hold either way: one received before the drain, or during it, answers too.)
    let (status, _) = server
        .get_json(
            PORTAL_KEY,
            &format!("/v1/tenants/contoso/verifications/{id}"),
        )
        .await;
    assert_eq!(status, 200);
    let served = server.shut_down();

    for stream in &mut polls {
        let (status, head, body) = read_response(stream)
            .await
            .expect("the long-poll is answered, not cut");
        assert_eq!(status, 200, "{body}");
        assert!(head.contains("connection: close"), "{head}");
        let view: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(view["id"], id.as_str());
        assert_eq!(
            view["status"], "calling",
            "its state at the shutdown: {view}"
        );
    }
    // Answered, so the drain ended with nothing cut (within the grace).
    tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
