//! The load benchmark's helpers (`bench/webhook-load` drives them; not part of the product):
//!
//! - `stub`: a provider Calls API that answers `201` at once, with a `CallSid` derived from the
//!   verification id in `Url` (so `setup` can sign webhooks for the call without asking).
//! - `floor`: the floor server — a minimal axum handler on the gather webhook's path that parses
//!   the same form, makes one Redis round trip (EVALSHA of a one-line script) and answers a small
//!   XML document. callverify's keypress throughput is compared with it.
//! - `setup`: starts verifications through callverify's API, answers them (signed `voice`
//!   webhooks), writes pre-signed keypress requests for wrk, checks with Redis `MONITOR` that one
//!   keypress costs one round trip, and prints the Redis memory figures.
//! - `cleanup`: deletes every key under the benchmark's prefix (SCAN + UNLINK; never FLUSHALL).
//! - `proxy`: a round-robin TCP proxy, so two callverify instances answer behind one address.
//!
//! `--redis` is one URL (a single Redis) or several, comma-separated: a Redis Cluster's seeds.

use std::fmt::Write as _;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::routing::post;
use callverify::ids::VerificationId;
use callverify::provider::twilio::signature::compute_signature;
use callverify::store::Keys;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

type Error = Box<dyn std::error::Error + Send + Sync>;

const ACCOUNT_SID: &str = "AC0000000000000000000000000000bench";

/// `--name value` from the command line.
fn opt(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn req(args: &[String], name: &str) -> Result<String, Error> {
    opt(args, name).ok_or_else(|| format!("missing {name}").into())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("stub") => stub(&req(&args, "--listen")?).await,
        Some("floor") => {
            floor(
                &req(&args, "--listen")?,
                &req(&args, "--redis")?,
                &req(&args, "--prefix")?,
            )
            .await
        }
        Some("setup") => setup(&args).await,
        Some("cleanup") => cleanup(&req(&args, "--redis")?, &req(&args, "--prefix")?).await,
        Some("proxy") => proxy(&req(&args, "--listen")?, &req(&args, "--to")?).await,
        _ => Err("usage: bench_peers stub|floor|setup|cleanup|proxy …".into()),
    }
}

/// The call id the stub gives a verification's call: `CA` + the id's 32 random hex digits.
fn call_sid_for(verification_id: &str) -> String {
    format!("CA{}", &verification_id[verification_id.len() - 32..])
}

async fn stub(listen: &str) -> Result<(), Error> {
    async fn create_call(
        body: Bytes,
    ) -> (StatusCode, [(header::HeaderName, &'static str); 1], String) {
        let url = form_urlencoded::parse(&body)
            .find(|(k, _)| k == "Url")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        // …/telephony/twilio/{id}/voice
        let id = url
            .rsplit('/')
            .nth(1)
            .unwrap_or("00000000000000000000000000000000");
        let sid = call_sid_for(id);
        (
            StatusCode::CREATED,
            [(header::CONTENT_TYPE, "application/json")],
            format!(r#"{{"sid":"{sid}","account_sid":"{ACCOUNT_SID}","status":"queued"}}"#),
        )
    }
    let app = Router::new().route(
        &format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"),
        post(create_call),
    );
    axum::serve(TcpListener::bind(listen).await?, app).await?;
    Ok(())
}

/// A connection to the single Redis or to the cluster `--redis` names.
#[derive(Clone)]
enum AnyConn {
    Single(redis::aio::ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl AnyConn {
    async fn open(redis: &str) -> Result<Self, Error> {
        let urls: Vec<&str> = redis.split(',').collect();
        if urls.len() > 1 {
            let client = redis::cluster::ClusterClientBuilder::new(urls)
                .connection_timeout(Duration::from_secs(2))
                .response_timeout(Duration::from_secs(2))
                .build()?;
            return Ok(Self::Cluster(client.get_async_connection().await?));
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_connection_timeout(Some(Duration::from_secs(2)));
        let client = redis::Client::open(redis)?;
        Ok(Self::Single(
            redis::aio::ConnectionManager::new_with_config(client, config).await?,
        ))
    }
}

impl redis::aio::ConnectionLike for AnyConn {
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

/// Plain connections to every master among `--redis`'s URLs (the one Redis, or the cluster's
/// masters), with their URLs.
async fn masters(redis: &str) -> Result<Vec<(String, redis::aio::MultiplexedConnection)>, Error> {
    let mut masters = Vec::new();
    for url in redis.split(',') {
        let mut conn = redis::Client::open(url)?
            .get_multiplexed_async_connection()
            .await?;
        let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut conn).await?;
        if matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master") {
            masters.push((url.to_owned(), conn));
        }
    }
    Ok(masters)
}

/// Forwards each connection accepted on `listen` to the next of `to` (comma-separated
/// `host:port`s) in turn.
async fn proxy(listen: &str, to: &str) -> Result<(), Error> {
    let backends: Vec<String> = to.split(',').map(str::to_owned).collect();
    let listener = TcpListener::bind(listen).await?;
    let mut next = 0usize;
    loop {
        let (mut inbound, _) = listener.accept().await?;
        let backend = backends[next % backends.len()].clone();
        next += 1;
        tokio::spawn(async move {
            let _ = inbound.set_nodelay(true);
            if let Ok(mut outbound) = TcpStream::connect(backend).await {
                let _ = outbound.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

#[derive(Clone)]
struct Floor {
    conn: AnyConn,
    script: std::sync::Arc<redis::Script>,
    prefix: std::sync::Arc<str>,
}

async fn floor(listen: &str, redis_url: &str, prefix: &str) -> Result<(), Error> {
    async fn gather(
        State(floor): State<Floor>,
        axum::extract::Path(id): axum::extract::Path<String>,
        body: Bytes,
    ) -> Result<([(header::HeaderName, &'static str); 1], &'static str), StatusCode> {
        // The same form parsing as callverify's webhook extractor.
        let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
        let digits = params
            .iter()
            .find(|(k, _)| k == "Digits")
            .map_or("", |(_, v)| v.as_str());
        let _: i64 = floor
            .script
            .key(format!("{}:floor:{id}", floor.prefix))
            .arg(digits)
            .invoke_async(&mut floor.conn.clone())
            .await
            .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
        Ok((
            [(header::CONTENT_TYPE, "text/xml")],
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Say>Thank you.</Say><Hangup/></Response>",
        ))
    }
    let state = Floor {
        conn: AnyConn::open(redis_url).await?,
        script: std::sync::Arc::new(redis::Script::new(
            "redis.call('EXPIRE', KEYS[1], 600) return redis.call('HINCRBY', KEYS[1], 'n', 1)",
        )),
        prefix: prefix.into(),
    };
    let app = Router::new()
        .route("/telephony/twilio/{id}/gather", post(gather))
        .with_state(state);
    axum::serve(TcpListener::bind(listen).await?, app).await?;
    Ok(())
}

/// The parameters Twilio posts for an answered call (plus `extra`).
fn call_params<'a>(sid: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(String, String)> {
    let mut p: Vec<(&str, &str)> = vec![
        ("CallSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", "+15005550006"),
        ("To", "+14255551234"),
        ("CallStatus", "in-progress"),
        ("ApiVersion", "2010-04-01"),
        ("Direction", "outbound-api"),
    ];
    p.extend_from_slice(extra);
    p.into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn form_body(params: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

struct Setup {
    http: reqwest::Client,
    base: String,
    key: String,
    token: String,
}

impl Setup {
    /// Starts a registration for `user`; returns the verification id.
    async fn start(&self, user: &str, number: &str) -> Result<String, Error> {
        let r = self
            .http
            .post(format!(
                "{}/v1/tenants/bench/users/{user}/verifications",
                self.base
            ))
            .bearer_auth(&self.key)
            .json(&serde_json::json!({"phone_number": number, "purpose": "registration"}))
            .send()
            .await?;
        let status = r.status();
        let body: serde_json::Value = r.json().await?;
        if status != StatusCode::ACCEPTED || body["status"] != "calling" {
            return Err(format!("start: {status} {body}").into());
        }
        Ok(body["id"].as_str().ok_or("no id")?.to_owned())
    }

    /// A signed webhook POST; returns the body.
    async fn webhook(&self, path: &str, params: &[(String, String)]) -> Result<String, Error> {
        let url = format!("{}{path}", self.base);
        let r = self
            .http
            .post(&url)
            .header(
                "X-Twilio-Signature",
                compute_signature(&self.token, &url, params),
            )
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form_body(params))
            .send()
            .await?;
        if !r.status().is_success() {
            return Err(format!("{path}: {}", r.status()).into());
        }
        Ok(r.text().await?)
    }
}

async fn setup(args: &[String]) -> Result<(), Error> {
    let n: usize = req(args, "--n")?.parse()?;
    let out = req(args, "--out")?;
    let redis_url = req(args, "--redis")?;
    let prefix = req(args, "--prefix")?;
    let s = Setup {
        http: reqwest::Client::new(),
        base: req(args, "--base")?,
        key: req(args, "--key")?,
        token: req(args, "--token")?,
    };

    // Answered verifications, and for each a keypress `5` (wrong key: re-prompt) pre-signed.
    let mut lua = String::from("return {\n");
    let mut last = String::new();
    for i in 0..n {
        let id = s.start(&format!("kp-{i}"), "+1 425 555 1234").await?;
        let sid = call_sid_for(&id);
        s.webhook(
            &format!("/telephony/twilio/{id}/voice"),
            &call_params(&sid, &[]),
        )
        .await?;
        let path = format!("/telephony/twilio/{id}/gather?step=prompt");
        let params = call_params(&sid, &[("Digits", "5")]);
        let url = format!("{}{path}", s.base);
        let sig = compute_signature(&s.token, &url, &params);
        writeln!(
            lua,
            "{{\"{path}\", \"{}\", \"{sig}\"}},",
            form_body(&params)
        )?;
        last = id;
    }
    lua.push_str("}\n");
    std::fs::write(&out, lua)?;

    let keys = Keys::new(&prefix);
    let mut conn = AnyConn::open(&redis_url).await?;
    let memory = |key: String| {
        let mut conn = conn.clone();
        async move {
            redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(key)
                .arg("SAMPLES")
                .arg(0)
                .query_async::<Option<u64>>(&mut conn)
                .await
        }
    };

    // One keypress under MONITOR: how many commands reach Redis?
    let (path, params) = (
        format!("/telephony/twilio/{last}/gather?step=prompt"),
        call_params(&call_sid_for(&last), &[("Digits", "5")]),
    );
    let commands = monitor_one(&redis_url, &prefix, || s.webhook(&path, &params)).await?;
    println!(
        "round trips per keypress webhook: {} top-level Redis command(s): {}",
        commands.len(),
        commands.join(", ")
    );

    // One start under MONITOR (the stub provider answers at once).
    let commands = monitor_one(&redis_url, &prefix, || async {
        s.start("monitored-start", "+1 425 555 1234").await
    })
    .await?;
    println!(
        "round trips per start: {} top-level Redis command(s): {}",
        commands.len(),
        commands.join(", ")
    );

    let pending = VerificationId::parse(&last).map_err(|e| e.to_string())?;
    let pending_bytes = memory(keys.verification(&pending)).await?.unwrap_or(0);

    // A registered user: a registration approved with `#`.
    let id = s.start("registered-user", "+1 425 555 1234").await?;
    let sid = call_sid_for(&id);
    s.webhook(
        &format!("/telephony/twilio/{id}/voice"),
        &call_params(&sid, &[]),
    )
    .await?;
    let closing = s
        .webhook(
            &format!("/telephony/twilio/{id}/gather?step=prompt"),
            &call_params(&sid, &[("Digits", "#")]),
        )
        .await?;
    if !closing.contains("<Hangup/>") {
        return Err("registration was not approved".into());
    }
    let id = VerificationId::parse(&id).map_err(|e| e.to_string())?;

    // Approvals one after another: the `#` webhook's latency (with `redis.wait_replicas`, the
    // replicas' acknowledgement is part of it).
    let mut approvals = Vec::new();
    for i in 0..50 {
        let id = s.start(&format!("ap-{i}"), "+1 425 555 1234").await?;
        let sid = call_sid_for(&id);
        s.webhook(
            &format!("/telephony/twilio/{id}/voice"),
            &call_params(&sid, &[]),
        )
        .await?;
        let started = std::time::Instant::now();
        let closing = s
            .webhook(
                &format!("/telephony/twilio/{id}/gather?step=prompt"),
                &call_params(&sid, &[("Digits", "#")]),
            )
            .await?;
        approvals.push(started.elapsed().as_secs_f64() * 1000.0);
        if !closing.contains("<Hangup/>") {
            return Err("registration was not approved".into());
        }
    }
    approvals.sort_by(f64::total_cmp);
    println!(
        "approval webhook (#), 50 in a row: p50 {:.2} ms, p90 {:.2} ms, max {:.2} ms",
        approvals[25], approvals[45], approvals[49]
    );
    let methods_bytes = memory(keys.methods(id.user_tag())).await?.unwrap_or(0);
    let _: () = redis::cmd("ECHO")
        .arg("x")
        .query_async::<String>(&mut conn)
        .await
        .map(|_| ())?;
    println!(
        "memory: pending verification (answered) {pending_bytes} B; registered user's methods {methods_bytes} B (MEMORY USAGE … SAMPLES 0)"
    );
    Ok(())
}

/// The top-level Redis commands sent by the connection(s) that touch `prefix` while `action`
/// runs (commands run inside a script are not round trips and are left out).
async fn monitor_one<F, Fut>(redis_url: &str, prefix: &str, action: F) -> Result<Vec<String>, Error>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<String, Error>>,
{
    let mut monitors = Vec::new();
    for (url, _) in masters(redis_url).await? {
        let info = redis::Client::open(url.as_str())?
            .get_connection_info()
            .clone();
        let addr = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
            other => return Err(format!("MONITOR needs a TCP Redis, not {other:?}").into()),
        };
        let mut stream = TcpStream::connect(addr).await?;
        if let Some(password) = info.redis_settings().password() {
            stream
                .write_all(format!("AUTH {password}\r\n").as_bytes())
                .await?;
        }
        stream.write_all(b"MONITOR\r\n").await?;
        let mut lines = BufReader::new(stream).lines();
        while let Some(line) = lines.next_line().await? {
            if line.starts_with("+OK") && !line.contains("AUTH") {
                break;
            }
        }
        monitors.push(lines);
    }
    action().await?;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    for lines in &mut monitors {
        while let Ok(Ok(Some(line))) = tokio::time::timeout_at(deadline, lines.next_line()).await {
            seen.push(line);
        }
    }
    // The client address of whoever touched our keys: callverify's connection.
    let client = |l: &str| l.split(['[', ']']).nth(1).map(str::to_owned);
    let ours: std::collections::HashSet<String> = seen
        .iter()
        .filter(|l| l.contains(prefix) && !l.contains(" lua]"))
        .filter_map(|l| client(l))
        .collect();
    // The reconciler's periodic claim (`{recon}:due`: an EVALSHA with the key, a limit and a
    // lease) shares callverify's connection and may fall into the window: it is background
    // work, not the request's. A start's own schedule entry (the id, a delay, a flag) stays.
    let claim = |l: &str| l.contains(":{recon}:") && l.split("\" \"").count() == 6;
    Ok(seen
        .iter()
        .filter(|l| !l.contains(" lua]") && !claim(l))
        .filter(|l| client(l).is_some_and(|c| ours.contains(&c)))
        .map(|l| {
            l.split("] ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .unwrap_or("?")
                .trim_matches('"')
                .to_owned()
        })
        .collect())
}

async fn cleanup(redis_url: &str, prefix: &str) -> Result<(), Error> {
    let mut deleted = 0usize;
    for (_, mut conn) in masters(redis_url).await? {
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}:*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            // One UNLINK per key: on a cluster the keys of one SCAN batch span many slots.
            for key in &keys {
                let _: () = redis::cmd("UNLINK").arg(key).query_async(&mut conn).await?;
            }
            deleted += keys.len();
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    println!("cleanup: {deleted} keys under {prefix}:* deleted");
    Ok(())
}
