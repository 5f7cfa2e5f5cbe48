//! `callverify demo`: a complete "call me" registration on this machine. It starts callverify
//! with the carrier simulator on free loopback ports, acts as the portal back-end over real HTTP,
//! prints the call's transcript as it happens, then the user's methods. Needs only Redis.
//! `callverify demo --web` serves a Security-info page with a virtual phone instead (`web`).

/// The virtual phone of the web demo (the simulator's interactive callee, over HTTP).
pub mod entra;
pub mod handset;
/// The demo portal: the page and the thin back-end that calls callverify's API.
pub mod portal;
/// `callverify demo --web`: callverify, the simulator and the portal in one process.
pub mod web;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use callverify_simulator::{Behaviour, SimulatorHandle};
use rand::RngExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::verification::{FailureReason, Status};
use tokio::net::TcpListener;

use crate::config::{Config, TenantConfig};

/// The number as a user types it in the reference product (the extension is dropped).
pub const DEMO_NUMBER: &str = "+1 4255551234X12345";
const DEMO_E164: &str = "+14255551234";
const DEMO_USER: &str = "adele.vance";

/// What the simulated callee does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Answers and presses `#`.
    Approve,
    /// Presses `5` first, then `#`.
    WrongKey,
    /// An answering machine picks up; answering-machine detection is on, so nothing is read
    /// out and the verification fails `voicemail`.
    Voicemail,
    /// Answers and never presses a key (a person who stays silent): `no_input`.
    Silent,
    /// Presses `#` and hangs up at once, the status callbacks unordered: the keypress and the
    /// `completed` race, and the keypress still approves.
    HashThenHangup,
    Busy,
    NoAnswer,
    /// Presses `0` then `#`: "I did not ask for this call".
    Fraud,
    /// Hangs up in the middle of the prompt.
    HangUp,
    /// The network cannot connect the call.
    Fail,
    /// The first provider account refuses the call (bad credentials); the second places it
    /// and the callee presses `#`.
    Failover,
}

/// Which provider's dialect the simulated carrier speaks (`--provider`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoProvider {
    Twilio,
    Signalwire,
    Telnyx,
    Plivo,
}

impl DemoProvider {
    fn dialect(self) -> callverify_simulator::Dialect {
        use callverify_simulator::Dialect;
        match self {
            DemoProvider::Twilio => Dialect::Twilio,
            DemoProvider::Signalwire => Dialect::Signalwire,
            DemoProvider::Telnyx => Dialect::Telnyx,
            DemoProvider::Plivo => Dialect::Plivo,
        }
    }
}

impl Scenario {
    fn behaviour(self) -> Behaviour {
        match self {
            Scenario::Approve | Scenario::Failover => Behaviour::presses(["#"]),
            Scenario::WrongKey => Behaviour::presses(["5", "#"]),
            Scenario::Voicemail => Behaviour::voicemail(),
            Scenario::Silent => Behaviour::silent(),
            Scenario::HashThenHangup => Behaviour::pound_then_hang_up(),
            Scenario::Busy => Behaviour::busy(),
            Scenario::NoAnswer => Behaviour::no_answer(),
            Scenario::Fraud => Behaviour::presses(["0", "#"]),
            Scenario::HangUp => Behaviour::hangs_up_mid_prompt(),
            Scenario::Fail => Behaviour::fails(),
        }
    }

    /// The final status (and reason) the scenario must end in.
    fn expected(self) -> (Status, Option<FailureReason>) {
        use FailureReason::*;
        match self {
            Scenario::Approve
            | Scenario::WrongKey
            | Scenario::Failover
            | Scenario::HashThenHangup => (Status::Approved, None),
            Scenario::Voicemail => (Status::Failed, Some(Voicemail)),
            Scenario::Silent => (Status::Failed, Some(NoInput)),
            Scenario::Busy => (Status::Failed, Some(Busy)),
            Scenario::NoAnswer => (Status::Failed, Some(NoAnswer)),
            Scenario::Fraud => (Status::FraudReported, None),
            Scenario::HangUp => (Status::Failed, Some(HungUp)),
            Scenario::Fail => (Status::Failed, Some(ProviderFailed)),
        }
    }
}

pub struct DemoOptions {
    pub scenario: Scenario,
    /// The dialect of the simulated carrier.
    pub provider: DemoProvider,
    pub locale: String,
    /// Configuration layered as for `serve` (Redis URL and prefix are taken from it).
    pub config: Config,
}

type DemoResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Runs the demo, printing to stdout. `Ok(true)` when the call ended as the scenario expects.
pub async fn run(options: DemoOptions) -> DemoResult<bool> {
    let mut config = options.config;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let key = format!("demo-{}", hex::encode(rand::rng().random::<[u8; 16]>()));
    config.server.listen = addr;
    config.server.public_url = format!("http://{addr}");
    config.redis.prefix = format!(
        "{}-demo-{}",
        config.redis.prefix,
        hex::encode(rand::rng().random::<[u8; 4]>())
    );
    config.tenants = vec![TenantConfig {
        id: crate::ids::TenantId::parse("demo")?,
        portal_keys_sha256: vec![crate::config::KeyHash(
            Sha256::digest(key.as_bytes()).into(),
        )],
        admin_keys_sha256: vec![],
        events_url: None,
        events_secret: None,
        limits: Default::default(),
        providers: None,
        external_mfa: None,
    }];
    let dialect = options.provider.dialect();
    let account = |name: &str, refuse_calls: bool| {
        let common = crate::provider::settings::AccountCommon {
            name: name.to_owned(),
            from: "+15005550006".into(),
            ring_timeout_secs: 30,
            request_timeout_ms: None,
            time_limit_secs: 0,
            // The voicemail scenario shows answering-machine detection at work.
            machine_detection: if options.scenario == Scenario::Voicemail {
                crate::config::MachineDetection::Enable
            } else {
                crate::config::MachineDetection::Off
            },
            calls_per_second: None,
            max_queue_ms: None,
        };
        let keys = crate::provider::simulator::SimulatorKeys {
            dialect,
            refuse_calls,
            fixed: None,
        };
        crate::config::AccountConfig::new("simulator", common, std::sync::Arc::new(keys))
    };
    config.providers = if options.scenario == Scenario::Failover {
        vec![account("primary", true), account("backup", false)]
    } else {
        vec![account(dialect.as_str(), false)]
    };
    config.validate()?;

    say(format!(
        "callverify demo: scenario {:?}, provider {}, locale {}",
        options.scenario,
        dialect.as_str(),
        options.locale
    ));
    let state = crate::build_state(config).await?;
    // The account that places the call (after a failover, the last one).
    let simulator = state
        .simulators
        .last()
        .map(|(_, handle)| handle.clone())
        .ok_or("the simulator did not start")?;
    simulator.script(DEMO_E164, options.scenario.behaviour());
    say(format!(
        "callverify on http://{addr}, carrier simulator on {}\n",
        simulator.base_url()
    ));
    let store = state.store.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::serve(listener, state, async move {
        let _ = stopped.await;
    }));

    let portal = Portal {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(40))
            .build()?,
        base: format!("http://{addr}/v1/tenants/demo"),
        key,
    };
    let outcome = converse(&portal, &simulator, &options.locale).await;

    // Leave nothing behind in the operator's Redis.
    let tag = crate::ids::user_tag(
        &crate::ids::TenantId::parse("demo")?,
        &crate::ids::UserId::parse(DEMO_USER)?,
    );
    if let Err(e) = store.forget_user(&tag).await {
        say(format!("(could not remove the demo user's keys: {e})"));
    }
    let _ = stop.send(());
    let _ = server.await;

    let (status, reason) = outcome?;
    let expected = options.scenario.expected();
    match &reason {
        Some(r) => say(format!("verification {status} ({r})")),
        None => say(format!("verification {status}")),
    }
    let (expected_status, expected_reason) = expected;
    Ok(status == expected_status.as_str()
        && reason.as_deref() == expected_reason.map(|r| r.as_str()))
}

struct Portal {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Portal {
    async fn send(&self, request: reqwest::RequestBuilder) -> DemoResult<(u16, Value)> {
        let response = request.bearer_auth(&self.key).send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }
}

/// Plays the portal's part; returns the verification's final status and reason.
async fn converse(
    portal: &Portal,
    simulator: &Arc<SimulatorHandle>,
    locale: &str,
) -> DemoResult<(String, Option<String>)> {
    let body = json!({"phone_number": DEMO_NUMBER, "purpose": "registration", "locale": locale});
    say(format!(
        "portal → POST /users/{DEMO_USER}/verifications {body}"
    ));
    let url = format!("{}/users/{DEMO_USER}/verifications", portal.base);
    let (code, created) = portal.send(portal.http.post(&url).json(&body)).await?;
    say(format!("portal ← {code} {created}\n"));
    if code != 202 {
        return Err(format!("the verification was not started: {created}").into());
    }
    let id = created["id"].as_str().unwrap_or_default().to_owned();

    let printer = tokio::spawn(print_transcript(simulator.clone()));
    let mut status = created["status"].as_str().unwrap_or_default().to_owned();
    let mut reason = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while !is_final(&status) && tokio::time::Instant::now() < deadline {
        let url = format!("{}/verifications/{id}?wait=10", portal.base);
        let (_, v) = portal.send(portal.http.get(&url)).await?;
        let now = v["status"].as_str().unwrap_or_default().to_owned();
        if now != status {
            say(format!("portal   status → {now}"));
            status = now;
            reason = v["reason"].as_str().map(str::to_owned);
        }
    }
    // Let the transcript catch up with the end of the call.
    let _ = tokio::time::timeout(Duration::from_secs(30), printer).await;

    let url = format!("{}/users/{DEMO_USER}/methods", portal.base);
    say(format!("\nportal → GET /users/{DEMO_USER}/methods"));
    let (code, methods) = portal.send(portal.http.get(&url)).await?;
    say(format!(
        "portal ← {code} {}\n",
        serde_json::to_string_pretty(&methods)?
    ));
    Ok((status, reason))
}

fn is_final(status: &str) -> bool {
    !matches!(status, "calling" | "ringing" | "answered" | "")
}

/// Prints the simulated call's transcript line by line while it happens, until the call ends.
async fn print_transcript(simulator: Arc<SimulatorHandle>) {
    let mut printed = 0;
    let mut interval = tokio::time::interval(Duration::from_millis(20));
    loop {
        interval.tick().await;
        let Some(call) = simulator.calls_to(DEMO_E164).pop() else {
            continue;
        };
        let lines = call.lines();
        for line in &lines[printed.min(lines.len())..] {
            say(format!("call     {line}"));
        }
        printed = lines.len();
        if call.status.is_final() {
            return;
        }
    }
}

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}
