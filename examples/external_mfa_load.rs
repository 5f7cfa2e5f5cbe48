//! The External MFA authorization benchmark (`bench/external-mfa-authorize.sh` runs it; not part
//! of the product): a fake Entra serving its JWKS on loopback (fetches counted), callverify with
//! one tenant configured for External MFA, N users with a registered phone; then N sign-ins
//! POSTed to `{issuer}/authorize` at once, `--rounds` times (new users each round). Prints each
//! round's latency percentiles, the median round, and Entra's JWKS fetches before and after;
//! exits 1 when a sign-in did not show the calling page or the JWKS was fetched during the load.
//!
//! Two layouts:
//! - `--apart BIN_DIR` (what the script runs): callverify is its own process (`BIN_DIR/callverify
//!   serve`), its provider an instant stub Calls API in another (`BIN_DIR/examples/bench_peers
//!   stub`: Twilio's dialect, answers 201 at once and calls nothing back), as a carrier is
//!   elsewhere in production. This process is only the fake Entra and the load generator. Phones
//!   are registered by registration calls answered with signed Twilio webhooks. Also prints the
//!   CPU time callverify spent per sign-in.
//! - without it: everything in this one process, the carrier simulator as the provider (its
//!   calls and webhooks compete for the same cores: the layout of the first figures).
//!
//! `cargo run --release --example external_mfa_load -- [--signins 200] [--rounds 1]
//! [--redis URL] [--apart target/release]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use callverify::provider::twilio::signature::compute_signature;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

type Error = Box<dyn std::error::Error + Send + Sync>;

const TENANT_GUID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const REDIRECT: &str = "https://login.microsoftonline.com/common/federation/externalauthprovider";
const CLAIMS: &str = r#"{"id_token":{"acr":{"essential":true,"values":["possessionorinherence"]},"amr":{"essential":true,"values":["tel"]}}}"#;
const PORTAL_KEY: &str = "bench-portal-key";
/// bench_peers' stub account (its Calls API path) and the webhook token of this run.
const ACCOUNT_SID: &str = "AC0000000000000000000000000000bench";
const TOKEN: &str = "bench-external-mfa-token";

fn number(i: usize) -> String {
    format!("+1425555{i:04}")
}

fn user(i: usize) -> String {
    format!("00000000-0000-0000-0000-{i:012}")
}

/// callverify under test: where it listens, and how it runs.
struct Server {
    base: String,
    http: reqwest::Client,
    layout: Layout,
}

enum Layout {
    InProcess {
        simulator: callverify_simulator::SimulatorHandle,
        store: callverify::store::Store,
        stop: tokio::sync::oneshot::Sender<()>,
        served: tokio::task::JoinHandle<std::io::Result<()>>,
    },
    Apart {
        callverify: tokio::process::Child,
        stub: tokio::process::Child,
        redis: String,
        prefix: String,
    },
}

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
        let cpu_before = server.cpu_ticks();
        let first = round * signins;
        let (latencies, wall, not_shown) =
            burst(&server, &encoding, first..first + signins).await?;
        let cpu = server.cpu_ticks().zip(cpu_before).map(|(a, b)| a - b);
        failed += not_shown;
        let pct = |p: f64| {
            latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
        };
        let cpu = cpu.map_or(String::new(), |ticks| {
            let per_signin = ticks as f64 * 1e6 / ticks_per_sec() / signins as f64;
            format!("; callverify CPU {per_signin:.0} µs per sign-in (dialling included)")
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
        // Let the round's calls be placed (in the background) before the next burst.
        tokio::time::sleep(Duration::from_millis(500)).await;
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

fn ticks_per_sec() -> f64 {
    100.0 // USER_HZ on Linux
}

/// The `[[tenants]]` and `[external_mfa]` configuration every layout shares.
fn common_toml(dir: &std::path::Path, entra: &str) -> Result<String, Error> {
    let (key, cert) = callverify::external_mfa::keygen::generate("bench")?;
    std::fs::write(dir.join("k.pem"), key)?;
    std::fs::write(dir.join("c.pem"), cert)?;
    Ok(format!(
        r#"
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
external_mfa = {{ client_id = "bench", entra_tenant_id = "{TENANT_GUID}", entra_jwks_url = "http://{entra}/keys" }}
"#,
        key = dir.join("k.pem").display().to_string(),
        cert = dir.join("c.pem").display().to_string(),
        hash = callverify::api::auth::hash_key(PORTAL_KEY),
    ))
}

fn client(users: usize) -> Result<reqwest::Client, Error> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(users)
        .build()?)
}

async fn start_in_process(
    dir: &std::path::Path,
    redis: &str,
    entra: &str,
    users: usize,
) -> Result<Server, Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let prefix = format!("cvbench-xmfa-{}", std::process::id());
    let overlay = format!(
        "[server]\nlisten = \"{addr}\"\npublic_url = \"http://{addr}\"\n[redis]\nurl = \"{redis}\"\nprefix = \"{prefix}\"\n[provider]\nkind = \"simulator\"\ncalls_per_second = 1000\n[provider.simulator]\ntime_scale = 0.01\n{}",
        common_toml(dir, entra)?
    );
    let config = callverify::config::Config::from_toml_overlay(&overlay)?;
    let state = callverify::build_state(config).await?;
    let simulator = state.simulator.clone().ok_or("no simulator")?;
    let store = state.store.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(callverify::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Ok(Server {
        base: format!("http://{addr}"),
        http: client(users)?,
        layout: Layout::InProcess {
            simulator,
            store,
            stop,
            served,
        },
    })
}

async fn start_apart(
    bin: &str,
    dir: &std::path::Path,
    redis: &str,
    entra: &str,
    users: usize,
) -> Result<Server, Error> {
    let free_port = || -> Result<u16, Error> {
        Ok(std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port())
    };
    let (stub_port, port) = (free_port()?, free_port()?);
    let stub = tokio::process::Command::new(format!("{bin}/examples/bench_peers"))
        .args(["stub", "--listen", &format!("127.0.0.1:{stub_port}")])
        .kill_on_drop(true)
        .spawn()?;
    let prefix = format!("cvbench-xmfa-{}", std::process::id());
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n[redis]\nurl = \"{redis}\"\nprefix = \"{prefix}\"\n[events]\ndeliver = false\n[provider]\nkind = \"twilio\"\ncalls_per_second = 0\n[provider.twilio]\naccount_sid = \"{ACCOUNT_SID}\"\nauth_token = \"{TOKEN}\"\napi_base = \"http://127.0.0.1:{stub_port}\"\n{}",
        common_toml(dir, entra)?
    );
    let config_file = dir.join("callverify.toml");
    std::fs::write(&config_file, config)?;
    // Logs at the default level into a file, as a service's would.
    let log = std::fs::File::create(dir.join("callverify.log"))?;
    let callverify = tokio::process::Command::new(format!("{bin}/callverify"))
        .arg("serve")
        .arg("--config")
        .arg(&config_file)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or("info".into()),
        )
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?;
    let server = Server {
        base: format!("http://127.0.0.1:{port}"),
        http: client(users)?,
        layout: Layout::Apart {
            callverify,
            stub,
            redis: redis.to_owned(),
            prefix,
        },
    };
    let ready = format!(
        "{}/external-mfa/contoso/.well-known/openid-configuration",
        server.base
    );
    for _ in 0..100 {
        match server.http.get(&ready).send().await {
            Ok(r) if r.status() == 200 => return Ok(server),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    Err("callverify did not start (see its log)".into())
}

impl Server {
    /// Registers a phone for each of `users` users through an approved registration call.
    async fn register(&self, users: usize) -> Result<(), Error> {
        let mut registrations = Vec::new();
        for i in 0..users {
            if let Layout::InProcess { simulator, .. } = &self.layout {
                simulator.script(&number(i), callverify_simulator::Behaviour::presses(["#"]));
            }
            let (http, base) = (self.http.clone(), self.base.clone());
            let apart = matches!(self.layout, Layout::Apart { .. });
            registrations.push(tokio::spawn(async move {
                let url = format!("{base}/v1/tenants/contoso/users/{}/verifications", user(i));
                let body = json!({"purpose": "registration", "phone_number": number(i)});
                let v: serde_json::Value = http
                    .post(&url)
                    .bearer_auth(PORTAL_KEY)
                    .json(&body)
                    .send()
                    .await?
                    .json()
                    .await?;
                let id = v["id"].as_str().ok_or("no verification id")?.to_owned();
                if apart {
                    answer_with_hash(&http, &base, &id, &number(i)).await
                } else {
                    wait_approved(&http, &base, &id).await
                }
            }));
        }
        for r in registrations {
            r.await??;
        }
        // Later sign-ins: silent callees (the call is not what is measured).
        if let Layout::InProcess { simulator, .. } = &self.layout {
            for i in 0..users {
                simulator.script(&number(i), callverify_simulator::Behaviour::silent());
            }
        }
        Ok(())
    }

    /// callverify's CPU time so far (user + system, clock ticks), when it is a process of its own.
    fn cpu_ticks(&self) -> Option<u64> {
        let Layout::Apart { callverify, .. } = &self.layout else {
            return None;
        };
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", callverify.id()?)).ok()?;
        let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split(' ').collect();
        Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
    }

    /// Leaves nothing behind in Redis, and stops what it started.
    async fn stop(self, users: usize) {
        match self.layout {
            Layout::InProcess {
                store,
                stop,
                served,
                ..
            } => {
                for i in 0..users {
                    if let (Ok(t), Ok(u)) = (
                        callverify::ids::TenantId::parse("contoso"),
                        callverify::ids::UserId::parse(&user(i)),
                    ) {
                        let _ = store.forget_user(&callverify::ids::user_tag(&t, &u)).await;
                    }
                }
                let _ = stop.send(());
                let _ = tokio::time::timeout(Duration::from_secs(10), served).await;
            }
            Layout::Apart {
                mut callverify,
                mut stub,
                redis,
                prefix,
            } => {
                let _ = callverify.kill().await;
                let _ = stub.kill().await;
                if let Err(e) = delete_prefix(&redis, &prefix).await {
                    eprintln!("keys under {prefix} not deleted: {e}");
                }
            }
        }
    }
}

/// Answers a registration call placed through the stub: the `voice` webhook, then `#`.
async fn answer_with_hash(
    http: &reqwest::Client,
    base: &str,
    id: &str,
    to: &str,
) -> Result<(), Error> {
    // bench_peers' stub names the call `CA` + the id's last 32 hex digits.
    let sid = format!("CA{}", &id[id.len() - 32..]);
    let params = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        [
            ("CallSid", sid.as_str()),
            ("AccountSid", ACCOUNT_SID),
            ("From", "+15005550006"),
            ("To", to),
            ("CallStatus", "in-progress"),
            ("ApiVersion", "2010-04-01"),
            ("Direction", "outbound-api"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    let steps = [
        (format!("/telephony/twilio/{id}/voice"), params(&[])),
        (
            format!("/telephony/twilio/{id}/gather?step=prompt"),
            params(&[("Digits", "#")]),
        ),
    ];
    let mut last = String::new();
    for (path, params) in steps {
        let url = format!("{base}{path}");
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&params)
            .finish();
        let r = http
            .post(&url)
            .header(
                "x-twilio-signature",
                compute_signature(TOKEN, &url, &params),
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await?;
        if !r.status().is_success() {
            return Err(format!("{path}: {}", r.status()).into());
        }
        last = r.text().await?;
    }
    if !last.contains("<Hangup/>") {
        return Err(format!("registration {id} not approved: {last}").into());
    }
    Ok(())
}

/// Waits (long-poll) until the simulator's call approved the registration `id`.
async fn wait_approved(http: &reqwest::Client, base: &str, id: &str) -> Result<(), Error> {
    for _ in 0..20 {
        let url = format!("{base}/v1/tenants/contoso/verifications/{id}?wait=5");
        let v: serde_json::Value = http
            .get(&url)
            .bearer_auth(PORTAL_KEY)
            .send()
            .await?
            .json()
            .await?;
        if v["status"] == "approved" {
            return Ok(());
        }
    }
    Err("a registration did not end approved".into())
}

/// One burst: a sign-in for each user in `users`, all POSTed at once. Latencies (sorted), the
/// burst's wall time, and how many answers were not a calling page.
async fn burst(
    server: &Server,
    entra: &EncodingKey,
    users: std::ops::Range<usize>,
) -> Result<(Vec<Duration>, Duration, usize), Error> {
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

/// Deletes every key under `prefix` (SCAN + UNLINK; never FLUSHALL).
async fn delete_prefix(redis: &str, prefix: &str) -> Result<(), Error> {
    let mut conn = redis::Client::open(redis)?
        .get_multiplexed_async_connection()
        .await?;
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            let _: () = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut conn)
                .await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
