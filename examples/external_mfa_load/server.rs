//! callverify under test for the External MFA benchmark: in this process with the carrier
//! simulator, or apart (its own process, an instant stub provider in another); phones registered
//! through approved registration calls; everything stopped and deleted at the end.

use std::time::Duration;

use callverify::provider::twilio::signature::compute_signature;
use serde_json::json;

use crate::{Error, TENANT_GUID};

const PORTAL_KEY: &str = "bench-portal-key";
/// The stub's account (its Calls API path) and the webhook token of this run.
const ACCOUNT_SID: &str = "AC0000000000000000000000000000bench";
const TOKEN: &str = "bench-external-mfa-token";

fn number(i: usize) -> String {
    format!("+1425555{i:04}")
}

pub fn user(i: usize) -> String {
    format!("00000000-0000-0000-0000-{i:012}")
}

/// callverify under test: where it listens, and how it runs.
pub struct Server {
    pub base: String,
    pub http: reqwest::Client,
    layout: Layout,
}

enum Layout {
    InProcess {
        simulator: std::sync::Arc<callverify_simulator::SimulatorHandle>,
        store: callverify::store::Store,
        stop: tokio::sync::oneshot::Sender<()>,
        served: tokio::task::JoinHandle<std::io::Result<()>>,
    },
    Apart {
        /// Boxed: a child process handle is large.
        callverify: Box<tokio::process::Child>,
        stub: Box<tokio::process::Child>,
        redis: String,
        prefix: String,
    },
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

pub async fn start_in_process(
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

pub async fn start_apart(
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
    // The stub: this program again, in a process of its own (`stub`).
    let stub = tokio::process::Command::new(std::env::current_exe()?)
        .args(["stub", &format!("127.0.0.1:{stub_port}")])
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
            callverify: Box::new(callverify),
            stub: Box::new(stub),
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
    pub async fn register(&self, users: usize) -> Result<(), Error> {
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

    /// CPU time so far (ns, every thread; `/proc/PID/task/*/schedstat`) of callverify, the stub
    /// provider and this process (the load generator and fake Entra), when callverify is a
    /// process of its own; and Redis' own (µs, `INFO cpu`).
    pub async fn cpu(&self) -> Option<Cpu> {
        let Layout::Apart {
            callverify,
            stub,
            redis,
            ..
        } = &self.layout
        else {
            return None;
        };
        Some(Cpu {
            callverify: process_cpu_ns(callverify.id()?)?,
            stub: process_cpu_ns(stub.id()?)?,
            load: process_cpu_ns(std::process::id())?,
            redis: redis_cpu_ns(redis).await?,
        })
    }

    /// Leaves nothing behind in Redis, and stops what it started.
    pub async fn stop(self, users: usize) {
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
    // The stub names the call `CA` + the id's last 32 hex digits.
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

/// An instant Calls API in Twilio's dialect (as bench_peers' stub): `201` at once, a `CallSid`
/// derived from the verification id in `Url`, nothing called back.
pub async fn stub(listen: &str) -> Result<(), Error> {
    async fn create_call(body: axum::body::Bytes) -> impl axum::response::IntoResponse {
        let url = form_urlencoded::parse(&body)
            .find(|(k, _)| k == "Url")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        // …/telephony/twilio/{id}/voice
        let id = url.rsplit('/').nth(1).unwrap_or_default();
        let sid = format!("CA{}", &id[id.len().saturating_sub(32)..]);
        (
            axum::http::StatusCode::CREATED,
            [("content-type", "application/json")],
            format!(r#"{{"sid":"{sid}","account_sid":"{ACCOUNT_SID}","status":"queued"}}"#),
        )
    }
    let app = axum::Router::new().route(
        &format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"),
        axum::routing::post(create_call),
    );
    axum::serve(tokio::net::TcpListener::bind(listen).await?, app).await?;
    Ok(())
}

/// CPU time of the processes taking part in a burst (ns).
#[derive(Clone, Copy, Debug)]
pub struct Cpu {
    pub callverify: u64,
    pub stub: u64,
    pub load: u64,
    pub redis: u64,
}

impl Cpu {
    /// What each spent between `earlier` and `self`, in µs per `n` sign-ins.
    pub fn per_signin(&self, earlier: &Cpu, n: usize) -> String {
        let us = |a: u64, b: u64| a.saturating_sub(b) as f64 / 1000.0 / n as f64;
        format!(
            "CPU per sign-in: callverify {:.0} µs (dialling included), Redis {:.0} µs, stub provider {:.0} µs, load generator {:.0} µs",
            us(self.callverify, earlier.callverify),
            us(self.redis, earlier.redis),
            us(self.stub, earlier.stub),
            us(self.load, earlier.load),
        )
    }
}

/// Time on CPU of every thread of `pid` (ns): the first field of each thread's schedstat.
fn process_cpu_ns(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    Some(
        tasks
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum(),
    )
}

/// Redis' CPU time so far (ns), from `INFO cpu` (user + system, µs resolution).
async fn redis_cpu_ns(url: &str) -> Option<u64> {
    let client = redis::Client::open(url).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(&mut conn)
        .await
        .ok()?;
    let field = |name: &str| -> Option<f64> {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse().ok())
    };
    Some(((field("used_cpu_user")? + field("used_cpu_sys")?) * 1e9) as u64)
}
