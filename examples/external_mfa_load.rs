//! The External MFA authorization benchmark (`bench/external-mfa-authorize.sh` runs it; not part
//! of the product). In one process: a fake Entra serving its JWKS on loopback (fetches counted),
//! callverify with the carrier simulator and one tenant configured for External MFA, N users
//! with a registered phone; then N sign-ins POSTed to `{issuer}/authorize` at once. Prints the
//! latency percentiles and Entra's JWKS fetches before and after; exits 1 when a sign-in did not
//! show the calling page or the JWKS was fetched during the load.
//!
//! `cargo run --release --example external_mfa_load -- [--signins 200] [--redis URL]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

type Error = Box<dyn std::error::Error + Send + Sync>;

const TENANT_GUID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const REDIRECT: &str = "https://login.microsoftonline.com/common/federation/externalauthprovider";
const CLAIMS: &str = r#"{"id_token":{"acr":{"essential":true,"values":["possessionorinherence"]},"amr":{"essential":true,"values":["tel"]}}}"#;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let signins: usize = arg("--signins").map_or(Ok(200), |n| n.parse())?;
    let redis = arg("--redis").unwrap_or_else(|| "redis://127.0.0.1:6379".into());

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

    // callverify: its signing key, the simulator, one External MFA tenant, no rate limits.
    let dir = std::env::temp_dir().join(format!("cv-xmfa-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (key, cert) = callverify::external_mfa::keygen::generate("bench")?;
    std::fs::write(dir.join("k.pem"), key)?;
    std::fs::write(dir.join("c.pem"), cert)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let prefix = format!("cvbench-xmfa-{}", std::process::id());
    let portal_key = "bench-portal-key";
    let overlay = format!(
        r#"
[server]
listen = "{addr}"
public_url = "http://{addr}"
[redis]
url = "{redis}"
prefix = "{prefix}"
[provider]
kind = "simulator"
calls_per_second = 1000
[provider.simulator]
time_scale = 0.01
[abuse.limits]
number_spacing = {{ max = 0, window_secs = 30 }}
number = {{ max = 0, window_secs = 3600 }}
user = {{ max = 0, window_secs = 3600 }}
tenant = {{ max = 0, window_secs = 60 }}
ip = {{ max = 0, window_secs = 60 }}
[external_mfa]
signing_key_file = {key:?}
signing_cert_file = {cert:?}
[[tenants]]
id = "contoso"
portal_keys_sha256 = ["{hash}"]
external_mfa = {{ client_id = "bench", entra_tenant_id = "{TENANT_GUID}", entra_jwks_url = "http://{entra_addr}/keys" }}
"#,
        key = dir.join("k.pem").display().to_string(),
        cert = dir.join("c.pem").display().to_string(),
        hash = callverify::api::auth::hash_key(portal_key),
    );
    let config = callverify::config::Config::from_toml_overlay(&overlay)?;
    let state = callverify::build_state(config).await?;
    let simulator = state.simulator.clone().ok_or("no simulator")?;
    let store = state.store.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(callverify::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(signins)
        .build()?;
    let base = format!("http://{addr}");

    // N users, each with a phone registered by an approved call.
    let number = |i: usize| format!("+1425555{i:04}");
    let user = |i: usize| format!("00000000-0000-0000-0000-{i:012}");
    let mut registrations = Vec::new();
    for i in 0..signins {
        simulator.script(&number(i), callverify_simulator::Behaviour::presses(["#"]));
        let (http, base) = (http.clone(), base.clone());
        registrations.push(tokio::spawn(async move {
            let url = format!("{base}/v1/tenants/contoso/users/{}/verifications", user(i));
            let body = json!({"purpose": "registration", "phone_number": number(i)});
            let v: serde_json::Value = http
                .post(&url)
                .bearer_auth(portal_key)
                .json(&body)
                .send()
                .await?
                .json()
                .await?;
            let id = v["id"].as_str().ok_or("no verification id")?.to_owned();
            for _ in 0..20 {
                let url = format!("{base}/v1/tenants/contoso/verifications/{id}?wait=5");
                let v: serde_json::Value = http
                    .get(&url)
                    .bearer_auth(portal_key)
                    .send()
                    .await?
                    .json()
                    .await?;
                if v["status"] == "approved" {
                    return Ok::<_, Error>(());
                }
            }
            Err("a registration did not end approved".into())
        }));
    }
    for r in registrations {
        r.await??;
    }
    // Later sign-ins: silent callees (the call is not what is measured).
    for i in 0..signins {
        simulator.script(&number(i), callverify_simulator::Behaviour::silent());
    }

    let fetches_before = fetches.load(Ordering::SeqCst);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("entra-1".into());
    let bodies: Vec<String> = (0..signins)
        .map(|i| {
            let hint = json!({"iss": format!("https://login.microsoftonline.com/{TENANT_GUID}/v2.0"), "aud": "bench",
                "sub": format!("s{i}"), "oid": user(i), "tid": TENANT_GUID, "iat": now, "exp": now});
            let hint = jsonwebtoken::encode(&header, &hint, &encoding).expect("signs");
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs([("scope", "openid"), ("response_type", "id_token"), ("response_mode", "form_post"),
                    ("client_id", "bench"), ("redirect_uri", REDIRECT), ("nonce", &format!("n{i}")),
                    ("state", "s"), ("id_token_hint", &hint), ("claims", CLAIMS)])
                .finish()
        })
        .collect();
    let url = format!("{base}/external-mfa/contoso/authorize");
    let started = Instant::now();
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let (http, url) = (http.clone(), url.clone());
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
    let fetches_after = fetches.load(Ordering::SeqCst);
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "external MFA authorize: {signins} concurrent sign-ins in {:.0} ms; p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms (target < 50 ms: {}), max {:.1} ms; not a calling page: {failed}",
        ms(wall),
        ms(pct(0.5)),
        ms(pct(0.9)),
        ms(pct(0.99)),
        if pct(0.99) < Duration::from_millis(50) {
            "met"
        } else {
            "MISSED"
        },
        ms(pct(1.0)),
    );
    println!(
        "Entra JWKS fetches: {fetches_before} before the load (start-up), {fetches_after} after (target: no change)"
    );

    // Leave nothing behind in Redis.
    for i in 0..signins {
        let tag = callverify::ids::user_tag(
            &callverify::ids::TenantId::parse("contoso")?,
            &callverify::ids::UserId::parse(&user(i))?,
        );
        let _ = store.forget_user(&tag).await;
    }
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), served).await;
    let _ = std::fs::remove_dir_all(&dir);
    if failed > 0 || fetches_after != fetches_before {
        std::process::exit(1);
    }
    Ok(())
}
