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
        _ => Err("usage: bench_peers stub|floor|setup|cleanup …".into()),
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

#[derive(Clone)]
struct Floor {
    conn: redis::aio::ConnectionManager,
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
    let client = redis::Client::open(redis_url)?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_connection_timeout(Some(Duration::from_secs(2)));
    let state = Floor {
        conn: redis::aio::ConnectionManager::new_with_config(client, config).await?,
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
    let mut conn = redis::Client::open(redis_url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
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
    let methods_bytes = memory(keys.methods(id.user_tag())).await?.unwrap_or(0);
    let _: () = redis::cmd("PING").query_async(&mut conn).await?;
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
    let info = redis::Client::open(redis_url)?
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
    action().await?;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    while let Ok(Ok(Some(line))) = tokio::time::timeout_at(deadline, lines.next_line()).await {
        seen.push(line);
    }
    // The client address of whoever touched our keys: callverify's connection.
    let client = |l: &str| l.split(['[', ']']).nth(1).map(str::to_owned);
    let ours: std::collections::HashSet<String> = seen
        .iter()
        .filter(|l| l.contains(prefix) && !l.contains(" lua]"))
        .filter_map(|l| client(l))
        .collect();
    Ok(seen
        .iter()
        .filter(|l| !l.contains(" lua]"))
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
    let mut conn = redis::Client::open(redis_url)?
        .get_multiplexed_async_connection()
        .await?;
    let mut cursor: u64 = 0;
    let mut deleted = 0usize;
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
            deleted += keys.len();
            let _: () = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut conn)
                .await?;
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    println!("cleanup: {deleted} keys under {prefix}:* deleted");
    Ok(())
}
