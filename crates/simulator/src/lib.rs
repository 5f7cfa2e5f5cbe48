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
//! A number can instead be given a [`VirtualPhone`] ([`Simulator::virtual_phone`]): its calls
//! are answered by a person (or a test) whose keys come from the phone, not from a script.
//!
//! Code tour: `calls_api` (REST) → `call` (one call's life) → `interpreter` (TwiML documents)
//! → `gather` (prompts and keys) → `webhook` (requests signed by `signing`); `twiml` parses,
//! `registry` keeps calls, `transcript` records.

mod call;
pub mod callee;
mod calls_api;
mod calls_api_plivo;
mod calls_api_telnyx;
pub mod chaos;
pub mod dialect;
mod gather;
mod interpreter;
pub mod phone;
mod plivo_xml;
mod registry;
mod signing;
mod texml;
pub mod transcript;
pub mod twiml;
mod webhook;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use callee::{Behaviour, GatherResponse, Pickup};
pub use chaos::{ApiChaos, Chaos};
pub use dialect::Dialect;
pub use interpreter::APPLICATION_ERROR_SPEECH;
pub use phone::{PhoneError, PhoneView, Speech, VirtualPhone};
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
    /// The provider imitated: its Calls API, webhook parameters, signatures and markup.
    pub dialect: Dialect,
    /// SignalWire only: the Signing Key webhooks are signed with (apart from `auth_token`,
    /// the REST password). Telnyx signs with an Ed25519 key of the simulator's own
    /// ([`Simulator::public_key_base64`]).
    pub signing_key: String,
}

impl fmt::Debug for SimulatorOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatorOptions")
            .field("listen", &self.listen)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .field("time_scale", &self.time_scale)
            .field("dialect", &self.dialect)
            .finish()
    }
}

/// State shared by the API handlers and the tasks playing calls.
struct Shared {
    options: SimulatorOptions,
    client: reqwest::Client,
    registry: registry::Registry,
    scripts: Mutex<HashMap<String, Behaviour>>,
    /// Numbers answered by a person at a virtual phone (they take precedence over scripts).
    phones: Mutex<HashMap<String, VirtualPhone>>,
    /// The chaos of calls whose behaviour names none (`Simulator::set_chaos`).
    chaos: Mutex<Chaos>,
    /// Numbers whose first create was already throttled (`ApiChaos::ThrottleOnce`).
    throttled: Mutex<std::collections::HashSet<String>>,
    /// Set when the simulator stops: calls in progress end without further webhooks.
    stopping: watch::Sender<bool>,
    /// Signs every webhook as the dialect's provider does.
    signer: dialect::Signer,
    /// Telnyx: the public half of the key webhooks are signed with (base64).
    public_key: String,
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

    fn phone_for(&self, number: &str) -> Option<VirtualPhone> {
        let phones = self.phones.lock().unwrap_or_else(|e| e.into_inner());
        phones.get(number).cloned()
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
        let telnyx_key = {
            use rand::RngExt;
            ed25519_dalek::SigningKey::from_bytes(&rand::rng().random::<[u8; 32]>())
        };
        let public_key =
            base64::engine::general_purpose::STANDARD.encode(telnyx_key.verifying_key().as_bytes());
        let signer = match options.dialect {
            Dialect::Twilio => dialect::Signer::Twilio {
                auth_token: options.auth_token.clone(),
            },
            Dialect::Signalwire => dialect::Signer::SignalWire {
                signing_key: options.signing_key.clone(),
            },
            Dialect::Telnyx => dialect::Signer::Telnyx { key: telnyx_key },
            Dialect::Plivo => dialect::Signer::Plivo {
                auth_token: options.auth_token.clone(),
            },
        };
        Ok(Self {
            shared: Arc::new(Shared {
                options,
                client,
                registry: registry::Registry::default(),
                scripts: Mutex::new(HashMap::new()),
                phones: Mutex::new(HashMap::new()),
                chaos: Mutex::new(Chaos::default()),
                throttled: Mutex::default(),
                stopping: watch::Sender::new(false),
                signer,
                public_key,
            }),
        })
    }

    /// The Calls API routes of the dialect, to serve on any listener.
    pub fn router(&self) -> axum::Router {
        let shared = Arc::clone(&self.shared);
        match self.shared.options.dialect {
            Dialect::Twilio => calls_api::router(shared),
            // SignalWire's Compatibility API is Twilio's under `/api/laml`.
            Dialect::Signalwire => axum::Router::new().nest("/api/laml", calls_api::router(shared)),
            Dialect::Telnyx => calls_api_telnyx::router(shared),
            Dialect::Plivo => calls_api_plivo::router(shared),
        }
    }

    /// Telnyx: the base64 Ed25519 public key that verifies this simulator's webhooks.
    pub fn public_key_base64(&self) -> String {
        self.shared.public_key.clone()
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

    /// The virtual phone of `number` (E.164), created on first use: from now on calls to the
    /// number ring it and a person answers (see [`phone`]).
    pub fn virtual_phone(&self, number: &str) -> VirtualPhone {
        let mut phones = self.shared.phones.lock().unwrap_or_else(|e| e.into_inner());
        phones
            .entry(number.to_owned())
            .or_insert_with(VirtualPhone::new)
            .clone()
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
    /// `http://127.0.0.1:PORT`: the `api_base` for a Twilio, Telnyx or Plivo client
    /// (SignalWire's is this + `/api/laml`).
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The `api_base` a client of the simulator's dialect uses.
    pub fn api_base(&self) -> String {
        match self.simulator.shared.options.dialect {
            Dialect::Signalwire => format!("{}/api/laml", self.base_url),
            _ => self.base_url.clone(),
        }
    }

    /// See [`Simulator::public_key_base64`].
    pub fn public_key_base64(&self) -> String {
        self.simulator.public_key_base64()
    }

    pub fn simulator(&self) -> &Simulator {
        &self.simulator
    }

    /// See [`Simulator::script`].
    pub fn script(&self, number: &str, behaviour: Behaviour) {
        self.simulator.script(number, behaviour);
    }

    /// See [`Simulator::virtual_phone`].
    pub fn virtual_phone(&self, number: &str) -> VirtualPhone {
        self.simulator.virtual_phone(number)
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
