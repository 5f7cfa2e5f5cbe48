//! The carrier simulator: a Twilio-compatible Calls API that plays calls against an
//! application's webhooks (callverify's, for its demo and its tests).
//!
//! It answers `POST /2010-04-01/Accounts/{AccountSid}/Calls.json` (and fetch / cancel / hang-up
//! on `…/Calls/{CallSid}.json`) like Twilio, then plays each call: status callbacks, the signed
//! TwiML webhooks, `<Say>`, `<Gather>`, `<Redirect>`… against a scripted callee (see [`callee`]
//! for the behaviour table by destination number). Every delay is simulated time multiplied by
//! [`SimulatorOptions::time_scale`]. Each call leaves a [`Transcript`].
//!
//! It shares no code with callverify: it signs webhooks and parses TwiML on its own, so a
//! mistake in the server cannot be mirrored here and go unnoticed.
//!
//! A chaos mode ([`Chaos`]) plays the disorder of a real network: unordered and duplicated
//! callbacks, retries, lost final callbacks, early keys, a throttling or unreliable Calls API.
//! Answering-machine detection reports `AnsweredBy` for [`Pickup::Machine`] callees.
//!
//! Not simulated: inline `Twiml`, `FallbackUrl`, `SendDigits`, speech input; verbs such as `<Dial>` or `<Record>` are skipped (an `Unsupported` entry).
//!
//! Code tour: `calls_api` (REST) → `call` (one call's life) → `interpreter` (TwiML documents)
//! → `gather` (prompts and keys) → `webhook` (requests signed by `signing`); `twiml` parses,
//! `registry` keeps calls, `transcript` records.

mod call;
pub mod callee;
mod calls_api;
pub mod chaos;
mod gather;
mod interpreter;
mod registry;
mod signing;
pub mod transcript;
pub mod twiml;
mod webhook;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use callee::{Behaviour, GatherResponse, Pickup};
pub use chaos::{ApiChaos, Chaos};
pub use interpreter::APPLICATION_ERROR_SPEECH;
pub use transcript::{CallStatus, Entry, HangupCause, Transcript, WebhookKind};

/// Where the simulator listens, the one account it accepts, and how fast simulated time runs.
#[derive(Clone)]
pub struct SimulatorOptions {
    /// Where to listen; port 0 = any free port.
    pub listen: SocketAddr,
    /// The only account the Calls API accepts (Basic-auth user name and path segment).
    pub account_sid: String,
    /// Basic-auth password, and the key every webhook is signed with.
    pub auth_token: String,
    /// Multiplies every simulated delay; 1.0 = real time, 0.01 for tests.
    pub time_scale: f64,
}

impl fmt::Debug for SimulatorOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatorOptions")
            .field("listen", &self.listen)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .field("time_scale", &self.time_scale)
            .finish()
    }
}

/// State shared by the API handlers and the tasks playing calls.
struct Shared {
    options: SimulatorOptions,
    client: reqwest::Client,
    registry: registry::Registry,
    scripts: Mutex<HashMap<String, Behaviour>>,
    /// The chaos of calls whose behaviour names none (`Simulator::set_chaos`).
    chaos: Mutex<Chaos>,
    /// Numbers whose first create was already throttled (`ApiChaos::ThrottleOnce`).
    throttled: Mutex<std::collections::HashSet<String>>,
    /// Set when the simulator stops: calls in progress end without further webhooks.
    stopping: watch::Sender<bool>,
}

impl Shared {
    fn behaviour_for(&self, number: &str) -> Behaviour {
        let scripts = self.scripts.lock().unwrap_or_else(|e| e.into_inner());
        let mut behaviour = scripts
            .get(number)
            .cloned()
            .unwrap_or_else(|| Behaviour::for_number(number));
        if behaviour.chaos.is_none() {
            let chaos = *self.chaos.lock().unwrap_or_else(|e| e.into_inner());
            behaviour.chaos = (chaos != Chaos::default()).then_some(chaos);
        }
        behaviour
    }
}

/// The simulator without a listener: its routes, callee scripts and transcripts.
#[derive(Clone)]
pub struct Simulator {
    shared: Arc<Shared>,
}

impl Simulator {
    pub fn new(options: SimulatorOptions) -> io::Result<Self> {
        if !options.time_scale.is_finite() || options.time_scale < 0.0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "simulator time_scale must be a finite number >= 0",
            ));
        }
        let client = reqwest::Client::builder()
            .user_agent("TwilioProxy/1.1 (callverify simulator)")
            .build()
            .map_err(io::Error::other)?;
        Ok(Self {
            shared: Arc::new(Shared {
                options,
                client,
                registry: registry::Registry::default(),
                scripts: Mutex::new(HashMap::new()),
                chaos: Mutex::new(Chaos::default()),
                throttled: Mutex::default(),
                stopping: watch::Sender::new(false),
            }),
        })
    }

    /// The Calls API routes, to serve on any listener.
    pub fn router(&self) -> axum::Router {
        calls_api::router(Arc::clone(&self.shared))
    }

    /// Calls placed to `number` from now on follow `behaviour` instead of the number table.
    pub fn script(&self, number: &str, behaviour: Behaviour) {
        let mut scripts = self
            .shared
            .scripts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        scripts.insert(number.to_owned(), behaviour);
    }

    /// Every call without chaos of its own meets `chaos` from now on (a chaotic run).
    pub fn set_chaos(&self, chaos: Chaos) {
        *self.shared.chaos.lock().unwrap_or_else(|e| e.into_inner()) = chaos;
    }

    /// The call so far (or its whole story once finished).
    pub fn transcript(&self, call_sid: &str) -> Option<Transcript> {
        Some(self.shared.registry.get(call_sid)?.transcript())
    }

    /// Every call placed to `number`, oldest first.
    pub fn calls_to(&self, number: &str) -> Vec<Transcript> {
        self.shared.registry.calls_to(number)
    }

    /// The complete transcript once the call is over (final status callback included), or
    /// `None` if the call is unknown or still going after `timeout`.
    pub async fn wait_until_finished(
        &self,
        call_sid: &str,
        timeout: Duration,
    ) -> Option<Transcript> {
        let slot = self.shared.registry.get(call_sid)?;
        slot.wait_until_finished(timeout).await
    }

    fn stop(&self) {
        self.shared.stopping.send_replace(true);
    }
}

/// Binds `options.listen` and serves the simulator on a background task until the handle is
/// shut down or dropped.
pub async fn start(options: SimulatorOptions) -> io::Result<SimulatorHandle> {
    let listener = TcpListener::bind(options.listen).await?;
    let mut address = listener.local_addr()?;
    // A wildcard address is where we listen, not where clients can connect.
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let simulator = Simulator::new(options)?;
    let mut stopping = simulator.shared.stopping.subscribe();
    let router = simulator.router();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            })
            .await
    });
    Ok(SimulatorHandle {
        simulator,
        base_url: format!("http://{address}"),
        server: Some(server),
    })
}

/// Serves the simulator on `listener` until the process ends (`callverify simulator`).
pub async fn serve(listener: TcpListener, options: SimulatorOptions) -> io::Result<()> {
    let simulator = Simulator::new(options)?;
    axum::serve(listener, simulator.router()).await
}

/// A running simulator. Dropping it stops the server and the calls in progress.
pub struct SimulatorHandle {
    simulator: Simulator,
    base_url: String,
    server: Option<JoinHandle<io::Result<()>>>,
}

impl SimulatorHandle {
    /// `http://127.0.0.1:PORT`: the `api_base` for a Twilio client.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    pub fn simulator(&self) -> &Simulator {
        &self.simulator
    }

    /// See [`Simulator::script`].
    pub fn script(&self, number: &str, behaviour: Behaviour) {
        self.simulator.script(number, behaviour);
    }

    /// See [`Simulator::set_chaos`].
    pub fn set_chaos(&self, chaos: Chaos) {
        self.simulator.set_chaos(chaos);
    }

    /// See [`Simulator::transcript`].
    pub fn transcript(&self, call_sid: &str) -> Option<Transcript> {
        self.simulator.transcript(call_sid)
    }

    /// See [`Simulator::calls_to`].
    pub fn calls_to(&self, number: &str) -> Vec<Transcript> {
        self.simulator.calls_to(number)
    }

    /// See [`Simulator::wait_until_finished`].
    pub async fn wait_until_finished(
        &self,
        call_sid: &str,
        timeout: Duration,
    ) -> Option<Transcript> {
        self.simulator.wait_until_finished(call_sid, timeout).await
    }

    /// Stops accepting requests and waits for the server task to end.
    pub async fn shutdown(mut self) -> io::Result<()> {
        self.simulator.stop();
        match self.server.take() {
            Some(server) => server.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for SimulatorHandle {
    fn drop(&mut self) {
        self.simulator.stop();
    }
}
