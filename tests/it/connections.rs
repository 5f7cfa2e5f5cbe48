//! Connection hygiene over raw TCP: slow and silent clients are closed at the head deadline,
//! idle keep-alive connections at the idle deadline, the connection ceiling holds, and graceful
//! shutdown answers what it has started to receive, with `Connection: close`.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::raw_http::{HEALTHZ, addr, closed_within, read_response, refused};
use crate::support::{PORTAL_KEY, StubTwilio, TestServer};

pub(crate) async fn server(
    tweak: impl FnOnce(&mut callverify::config::Config),
) -> (StubTwilio, TestServer) {
    let stub = StubTwilio::start().await;
    let server = TestServer::start_custom(&stub.base, "", tweak).await;
    (stub, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_flood_neither_stops_healthz_nor_outlives_the_head_deadline() {
    const FLOOD: usize = 3000;
    let deadline = Duration::from_millis(2500);
    let (_stub, server) = server(|c| c.server.header_read_timeout_ms = 2500).await;
    let target = addr(&server);

    // Probes on fresh connections throughout: /healthz and a real API request, each within 1 s.
    let probing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let probes = tokio::spawn({
        let (probing, base) = (probing.clone(), server.base.clone());
        async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(1))
                .build()
                .unwrap();
            let mut answered = 0;
            while probing.load(std::sync::atomic::Ordering::Relaxed) {
                let health = http.get(format!("{base}/healthz")).send().await;
                let health = health.map(|r| r.status().as_u16());
                assert_eq!(health.ok(), Some(200), "/healthz after {answered} probes");
                let api = http
                    .get(format!("{base}/v1/tenants/contoso/users/ann/methods"))
                    .bearer_auth(PORTAL_KEY)
                    .send()
                    .await
                    .map(|r| r.status().as_u16());
                assert_eq!(api.ok(), Some(200), "API after {answered} probes");
                answered += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            answered
        }
    });

    // Half send half a request head and stop; half send nothing at all.
    let mut flood = Vec::with_capacity(FLOOD);
    for i in 0..FLOOD {
        let mut stream = TcpStream::connect(&target).await.unwrap();
        if i % 2 == 0 {
            stream
                .write_all(b"POST /telephony/twilio/x/gather HTTP/1.1\r\nHost: t\r\nContent-")
                .await
                .unwrap();
        }
        flood.push(stream);
    }
    let opened = Instant::now();

    // A connection that just started its head is still open well before the deadline...
    let mut fresh = TcpStream::connect(&target).await.unwrap();
    fresh.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    assert!(
        !closed_within(&mut fresh, deadline / 4).await,
        "closed early"
    );

    // ...and every flood connection is closed by the server once the deadline has passed.
    let mut closed = 0;
    let grace = deadline + Duration::from_secs(10);
    for stream in &mut flood {
        let left = grace
            .saturating_sub(opened.elapsed())
            .max(Duration::from_millis(100));
        if closed_within(stream, left).await {
            closed += 1;
        }
    }
    assert_eq!(closed, FLOOD, "slow connections left open");
    assert!(closed_within(&mut fresh, grace).await);

    probing.store(false, std::sync::atomic::Ordering::Relaxed);
    let answered = probes.await.expect("every probe answered within a second");
    assert!(answered >= 5, "{answered} probes");
}

#[tokio::test]
async fn idle_keep_alive_connections_close_at_the_idle_deadline_not_the_head_deadline() {
    let (_stub, server) = server(|c| {
        c.server.header_read_timeout_ms = 400;
        c.server.idle_timeout_ms = 3000;
    })
    .await;
    let mut stream = TcpStream::connect(addr(&server)).await.unwrap();
    stream.write_all(HEALTHZ).await.unwrap();
    let (status, head, _) = read_response(&mut stream).await.unwrap();
    assert_eq!(status, 200);
    assert!(!head.contains("connection: close"), "{head}");
    // Three head deadlines later the idle connection is still usable...
    assert!(!closed_within(&mut stream, Duration::from_millis(1200)).await);
    stream.write_all(HEALTHZ).await.unwrap();
    assert_eq!(read_response(&mut stream).await.unwrap().0, 200);
    // ...and the server closes it once idle for idle_timeout_ms.
    assert!(closed_within(&mut stream, Duration::from_secs(10)).await);
}

#[tokio::test]
async fn at_the_connection_ceiling_new_connections_wait_for_a_slot() {
    let (_stub, server) = server(|c| {
        c.server.max_connections = 20;
        c.server.header_read_timeout_ms = 1500;
    })
    .await;
    let target = addr(&server);
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(&target).await.unwrap());
    }
    // The 21st connection is not served while the 20 hold every slot...
    let mut extra = TcpStream::connect(&target).await.unwrap();
    extra.write_all(HEALTHZ).await.unwrap();
    let early = tokio::time::timeout(Duration::from_millis(500), read_response(&mut extra)).await;
    assert!(early.is_err(), "served beyond max_connections");
    // ...and is once the head deadline has freed them.
    let (status, _, _) = tokio::time::timeout(Duration::from_secs(10), read_response(&mut extra))
        .await
        .expect("served once slots are free")
        .unwrap();
    assert_eq!(status, 200);
    for stream in &mut silent {
        assert!(closed_within(stream, Duration::from_millis(100)).await);
    }
}

/// Starts a registration whose call stays `calling`, so a long-poll on it waits.
pub(crate) async fn pending_verification(server: &TestServer, user: &str) -> String {
    let (status, body) = server.register(user, "+1 425 555 1234").await;
    assert_eq!(status, 202, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn shutdown_answers_in_flight_requests_on_keep_alive_connections_with_connection_close() {
    let (_stub, mut server) = server(|_| {}).await;
    let id = pending_verification(&server, "ka-user").await;
    let mut stream = TcpStream::connect(addr(&server)).await.unwrap();
    stream.write_all(HEALTHZ).await.unwrap();
    assert_eq!(read_response(&mut stream).await.unwrap().0, 200);
    let poll = format!(
        "GET /v1/tenants/contoso/verifications/{id}?wait=2 HTTP/1.1\r\nHost: t\r\n\
         Authorization: Bearer {PORTAL_KEY}\r\n\r\n"
    );
    stream.write_all(poll.as_bytes()).await.unwrap();
    // The long-poll is most likely in flight once a request sent after it is answered (no sleep;
    // received before the drain or during it, it is answered either way).
    assert_eq!(server.verification(&id).await["status"], "calling");
    let served = server.shut_down();

    let (status, head, body) = read_response(&mut stream).await.expect("a response");
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("connection: close"), "{head}");
    assert!(closed_within(&mut stream, Duration::from_secs(2)).await);
    tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_request_head_arriving_at_shutdown_on_a_keep_alive_connection_is_answered() {
    let (_stub, mut server) = server(|_| {}).await;
    let mut stream = TcpStream::connect(addr(&server)).await.unwrap();
    stream.write_all(HEALTHZ).await.unwrap();
    assert_eq!(read_response(&mut stream).await.unwrap().0, 200);
    // The next request's head is half sent when the signal comes.
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let served = server.shut_down();
    // The drain has begun once the listener refuses connections; the head ends after that.
    refused(&addr(&server)).await;
    stream.write_all(b"\r\n").await.unwrap();

    let (status, head, body) = read_response(&mut stream)
        .await
        .expect("the request that was arriving is answered");
    assert_eq!((status, body.as_str()), (200, "ok"));
    assert!(head.contains("connection: close"), "{head}");
    tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
