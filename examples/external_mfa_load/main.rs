//! The External MFA authorization benchmark (`bench/external-mfa-authorize.sh` runs it; not part
//! of the product): a fake Entra serving its JWKS on loopback (fetches counted), callverify with
//! one tenant configured for External MFA, N users with a registered phone; then N sign-ins
//! POSTed to `{issuer}/authorize` at once, `--rounds` times (new users each round). Prints each
//! round's latency percentiles, the median round, and Entra's JWKS fetches before and after;
//! exits 1 when a sign-in did not show the calling page or the JWKS was fetched during the load.
//!
//! Two layouts:
//! - `--apart BIN_DIR` (what the script runs): callverify is its own process (`BIN_DIR/callverify
//!   serve`), its provider an instant stub Calls API in another (this program run as `stub
//!   ADDR`: Twilio's dialect, answers 201 at once and calls nothing back), as a carrier is
//!   elsewhere in production. This process is only the fake Entra and the load generator. Phones
//!   are registered by registration calls answered with signed Twilio webhooks. Also prints the
//!   CPU time callverify, Redis, the stub provider and the load generator spent per sign-in
//!   (the background dial included: each round waits 500 ms for it).
//! - without it: everything in this one process, the carrier simulator as the provider (its
//!   calls and webhooks compete for the same cores: the layout of the first figures).
//!
//! `cargo run --release --example external_mfa_load -- [--signins 200] [--rounds 1]
//! [--redis URL] [--apart target/release]`

mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use server::{Server, start_apart, start_in_process, user};

type Error = Box<dyn std::error::Error + Send + Sync>;

const TENANT_GUID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const REDIRECT: &str = "https://login.microsoftonline.com/common/federation/externalauthprovider";
const CLAIMS: &str = r#"{"id_token":{"acr":{"essential":true,"values":["possessionorinherence"]},"amr":{"essential":true,"values":["tel"]}}}"#;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    if let (Some("stub"), Some(listen)) = (args.get(1).map(String::as_str), args.get(2)) {
        return server::stub(listen).await;
    }
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let signins: usize = arg("--signins").map_or(Ok(200), |n| n.parse())?;
    let rounds: usize = arg("--rounds").map_or(Ok(1), |n| n.parse())?;
    let redis = arg("--redis").unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let apart = arg("--apart");

    // Fake Entra: its key and JWKS.
    let (entra_key, _) = callverify::external_mfa::keygen::generate("entra")?;
    let encoding = EncodingKey::from_rsa_pem(entra_key.as_bytes())?;
    let mut jwk = serde_json::to_value(jsonwebtoken::jwk::Jwk::from_encoding_key(
        &encoding,
        Algorithm::RS256,
    )?)?;
    jwk["kid"] = json!("entra-1");
    let jwks = json!({"keys": [jwk]}).to_string();
    let fetches = Arc::new(AtomicU64::new(0));
    let counted = fetches.clone();
    let entra = axum::Router::new().route(
        "/keys",
        axum::routing::get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            let body = jwks.clone();
            async move { ([("content-type", "application/json")], body) }
        }),
    );
    let entra_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let entra_addr = entra_listener.local_addr()?;
    tokio::spawn(async move { axum::serve(entra_listener, entra).await });

    let dir = std::env::temp_dir().join(format!("cv-xmfa-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let users = signins * rounds;
    let server = match &apart {
        Some(bin) => start_apart(bin, &dir, &redis, &entra_addr.to_string(), users).await?,
        None => start_in_process(&dir, &redis, &entra_addr.to_string(), users).await?,
    };
    server.register(users).await?;

    let fetches_before = fetches.load(Ordering::SeqCst);
    let mut p99s = Vec::new();
    let mut failed = 0;
    for round in 0..rounds {
        let first = round * signins;
        let bodies = sign_ins(&encoding, first..first + signins)?;
        let cpu_before = server.cpu().await;
        let (latencies, wall, not_shown) = burst(&server, bodies).await?;
        // Let the round's calls be placed (in the background) before the next burst, and count
        // their CPU with the round's.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let cpu = server.cpu().await.zip(cpu_before);
        failed += not_shown;
        let pct = |p: f64| {
            latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
        };
        let cpu = cpu.map_or(String::new(), |(after, before)| {
            format!("; {}", after.per_signin(&before, signins))
        });
        println!(
            "round {}: {signins} concurrent sign-ins in {:.0} ms; p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms; not a calling page: {not_shown}{cpu}",
            round + 1,
            ms(wall),
            ms(pct(0.5)),
            ms(pct(0.9)),
            ms(pct(0.99)),
            ms(pct(1.0)),
        );
        p99s.push(pct(0.99));
    }
    p99s.sort();
    let median = p99s[p99s.len() / 2];
    println!(
        "external MFA authorize ({}): median p99 of {rounds} round(s) {:.1} ms (target < 50 ms: {})",
        if apart.is_some() {
            "callverify, stub provider and load apart"
        } else {
            "one process, simulator"
        },
        ms(median),
        if median < Duration::from_millis(50) {
            "met"
        } else {
            "MISSED"
        },
    );
    let fetches_after = fetches.load(Ordering::SeqCst);
    println!(
        "Entra JWKS fetches: {fetches_before} before the load (start-up), {fetches_after} after (target: no change)"
    );
    server.stop(users).await;
    let _ = std::fs::remove_dir_all(&dir);
    if failed > 0 || fetches_after != fetches_before {
        std::process::exit(1);
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Entra's POST for each user in `users` (each with a hint Entra signed), built before the burst.
fn sign_ins(entra: &EncodingKey, users: std::ops::Range<usize>) -> Result<Vec<String>, Error> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("entra-1".into());
    let bodies: Vec<String> = users
        .map(|i| {
            let hint = json!({"iss": format!("https://login.microsoftonline.com/{TENANT_GUID}/v2.0"), "aud": "bench",
                "sub": format!("s{i}"), "oid": user(i), "tid": TENANT_GUID, "iat": now, "exp": now});
            let hint = jsonwebtoken::encode(&header, &hint, entra).expect("signs");
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs([("scope", "openid"), ("response_type", "id_token"), ("response_mode", "form_post"),
                    ("client_id", "bench"), ("redirect_uri", REDIRECT), ("nonce", &format!("n{i}")),
                    ("state", "s"), ("id_token_hint", &hint), ("claims", CLAIMS)])
                .finish()
        })
        .collect();
    Ok(bodies)
}

/// One burst: every sign-in in `bodies` POSTed at once. Latencies (sorted), the burst's wall
/// time, and how many answers were not a calling page.
async fn burst(
    server: &Server,
    bodies: Vec<String>,
) -> Result<(Vec<Duration>, Duration, usize), Error> {
    let url = format!("{}/external-mfa/contoso/authorize", server.base);
    let started = Instant::now();
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let (http, url) = (server.http.clone(), url.clone());
            tokio::spawn(async move {
                let t = Instant::now();
                let r = http
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await?;
                let ok = r.status() == 200 && r.text().await?.contains("data-status-url");
                Ok::<_, Error>((t.elapsed(), ok))
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failed = 0;
    for t in tasks {
        let (latency, ok) = t.await??;
        latencies.push(latency);
        failed += usize::from(!ok);
    }
    let wall = started.elapsed();
    latencies.sort();
    Ok((latencies, wall, failed))
}
