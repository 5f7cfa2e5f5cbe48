//! Plays one call from creation to its final status: ringing, answer, the TwiML conversation
//! (see `interpreter`), status callbacks, and hang-up requests from the Calls API.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::Shared;
use super::callee::{Behaviour, Callee, Pickup};
use super::dialect::{self, Dialect};
use super::interpreter;
use super::phone::VirtualPhone;
use super::registry::CallSlot;
use super::transcript::{CallStatus, Entry, HangupCause, WebhookKind};
use super::twiml::Method;
use super::webhook::{self, Answer, Failure};

/// Simulated seconds a phone rings before the callee picks up.
const RING_SECS: f64 = 2.0;
/// Simulated seconds until the network reports a busy line or a failed connection.
const NETWORK_VERDICT_SECS: f64 = 1.0;

/// A validated `POST …/Calls.json`.
#[derive(Clone, Debug)]
pub struct CallRequest {
    pub to: String,
    pub from: String,
    pub url: Url,
    pub method: Method,
    pub status_callback: Option<Url>,
    pub status_callback_method: Method,
    /// Subset of `initiated`, `ringing`, `answered`; `completed` is always sent.
    pub status_callback_events: Vec<String>,
    pub timeout_secs: u32,
    /// `MachineDetection` was asked for: webhooks carry `AnsweredBy`.
    pub machine_detection: bool,
}

/// Everything the task playing a call needs.
pub struct ActiveCall {
    pub shared: Arc<Shared>,
    pub slot: Arc<CallSlot>,
    pub sid: String,
    pub request: CallRequest,
    /// The disorder this call meets.
    pub chaos: super::Chaos,
    /// `AnsweredBy` on the answered call's webhooks (answering-machine detection asked).
    pub answered_by: Option<&'static str>,
}

/// Starts playing a call the Calls API (of any dialect) accepted: to the number's virtual phone
/// if it has one, else as its scripted behaviour says, meeting its chaos (the call's own, or
/// the run's). Returns that chaos: the API's answer may meet it too (a timeout or a 5xx after
/// placing).
pub fn place(
    shared: &Arc<Shared>,
    slot: Arc<CallSlot>,
    sid: String,
    request: CallRequest,
) -> super::Chaos {
    let phone = shared.phone_for(&request.to);
    let behaviour = shared.behaviour_for(&request.to);
    let chaos = behaviour.chaos.unwrap_or_default();
    let machine = phone.is_none() && behaviour.pickup == Pickup::Machine;
    // Telnyx TeXML reports a machine as `AnsweredBy=machine`; Twilio and SignalWire as
    // `machine_end_beep` after `DetectMessageEnd`-style detection.
    let machine_word = match shared.options.dialect {
        Dialect::Telnyx => "machine",
        _ => "machine_end_beep",
    };
    let answered_by =
        request
            .machine_detection
            .then_some(if machine { machine_word } else { "human" });
    let call = ActiveCall {
        shared: Arc::clone(shared),
        slot,
        sid,
        request,
        chaos,
        answered_by,
    };
    match phone {
        Some(phone) => spawn_to_phone(call, &phone),
        None => spawn(call, behaviour),
    }
    chaos
}

/// Chaos [`super::ApiChaos::ThrottleOnce`]: whether this create (the first to `to`) is
/// throttled instead of placed.
pub fn throttled_once(shared: &Shared, to: &str) -> bool {
    let behaviour = shared.behaviour_for(to);
    if behaviour.chaos.unwrap_or_default().api != super::ApiChaos::ThrottleOnce {
        return false;
    }
    let mut throttled = shared.throttled.lock().unwrap_or_else(|e| e.into_inner());
    throttled.insert(to.to_owned())
}

/// Chaos after placing: the Calls API's answer stalls (the client times out) or fails; `true`
/// when it fails with a 5xx.
pub async fn after_placing(chaos: super::Chaos) -> bool {
    match chaos.api {
        super::ApiChaos::TimeoutAfterPlacing { stall_ms } => {
            tokio::time::sleep(Duration::from_millis(stall_ms)).await;
            false
        }
        super::ApiChaos::ErrorAfterPlacing => true,
        super::ApiChaos::Orderly | super::ApiChaos::ThrottleOnce => false,
    }
}

pub fn spawn(call: ActiveCall, behaviour: Behaviour) {
    let callee = Callee::new(&behaviour);
    tokio::spawn(run(call, behaviour.pickup, callee));
}

/// A call to a virtual phone: a person answers (or the phone is busy with another call).
pub fn spawn_to_phone(call: ActiveCall, phone: &VirtualPhone) {
    match phone.pick_up(&call.slot) {
        Some(line) => tokio::spawn(run(call, Pickup::Answer, Callee::person(line))),
        None => tokio::spawn(run(call, Pickup::Busy, Callee::new(&Behaviour::busy()))),
    };
}

/// Simulated time: every delay is slept for real, multiplied by the time scale, and counted in
/// simulated seconds so durations read the same at any scale.
pub struct Clock {
    scale: f64,
    now_secs: f64,
    answered_at: Option<f64>,
}

impl Clock {
    /// Sleeps `secs` (simulated) unless `until` resolves first; then only the time that passed
    /// counts.
    pub async fn sleep_unless<F: std::future::Future>(
        &mut self,
        secs: f64,
        until: F,
    ) -> Option<F::Output> {
        let secs = secs.max(0.0);
        let started = tokio::time::Instant::now();
        let real = Duration::from_secs_f64(secs * self.scale);
        tokio::select! {
            biased;
            out = until => {
                let passed = if self.scale > 0.0 {
                    started.elapsed().as_secs_f64() / self.scale
                } else {
                    0.0
                };
                self.now_secs += passed.min(secs);
                Some(out)
            }
            () = tokio::time::sleep(real) => {
                self.now_secs += secs;
                None
            }
        }
    }

    pub async fn sleep(&mut self, secs: f64) {
        let secs = secs.max(0.0);
        self.now_secs += secs;
        if secs * self.scale > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(secs * self.scale)).await;
        }
    }

    /// Whole simulated seconds since answer, rounded up like billed call time.
    fn talk_secs(&self) -> u64 {
        self.answered_at
            .map_or(0, |t| (self.now_secs - t).max(0.0).ceil() as u64)
    }
}

enum Stop {
    Played(CallStatus),
    HangupRequested,
    ShuttingDown,
}

async fn run(call: ActiveCall, pickup: Pickup, mut callee: Callee) {
    let mut clock = Clock {
        scale: call.shared.options.time_scale,
        now_secs: 0.0,
        answered_at: None,
    };
    let mut callbacks = StatusCallbacks { sequence: 0 };
    let mut hangup = call.slot.hangup_requests();
    let mut racing = None;
    let mut stopping = call.shared.stopping.subscribe();
    let call = Arc::new(call);
    let stop = tokio::select! {
        status = play(&call, pickup, &mut callee, &mut clock, &mut callbacks, &mut racing) => Stop::Played(status),
        _ = hangup.wait_for(|requested| *requested) => Stop::HangupRequested,
        _ = stopping.wait_for(|stopping| *stopping) => Stop::ShuttingDown,
    };
    let answered = clock.answered_at.is_some();
    let status = match stop {
        Stop::Played(status) => status,
        _ if !answered => CallStatus::Canceled,
        Stop::HangupRequested => {
            call.slot.record(Entry::HungUp {
                cause: HangupCause::Api,
            });
            CallStatus::Completed
        }
        Stop::ShuttingDown => CallStatus::Completed,
    };
    call.slot.set_status(status);
    let duration = clock.talk_secs();
    // Nobody would receive it once the simulator is stopping; chaos may lose it.
    if !matches!(stop, Stop::ShuttingDown) && !call.chaos.drop_final {
        let completed = callbacks.notify(&call, "completed", status, Some(duration));
        match &racing {
            // The callee's last keys and the hang-up go out together.
            Some(last) => {
                let _ = tokio::join!(interpreter::fetch(&call, last), completed);
            }
            None => completed.await,
        }
    } else if let Some(last) = &racing {
        let _ = interpreter::fetch(&call, last).await;
    }
    // Last: whoever waits for the call sees every entry, the final callback included.
    call.slot.finish(duration);
    tracing::info!(call_sid = %call.sid, %status, duration, "simulated call finished");
    // Debug only: webhook URLs and spoken text may carry what logs must not.
    tracing::debug!(call_sid = %call.sid, "transcript:\n{}", call.slot.transcript());
}

async fn play(
    call: &Arc<ActiveCall>,
    pickup: Pickup,
    callee: &mut Callee,
    clock: &mut Clock,
    callbacks: &mut StatusCallbacks,
    racing: &mut Option<interpreter::Fetch>,
) -> CallStatus {
    call.slot.set_status(CallStatus::Initiated);
    callbacks
        .notify(call, "initiated", CallStatus::Initiated, None)
        .await;
    match pickup {
        Pickup::Fail => {
            clock.sleep(NETWORK_VERDICT_SECS).await;
            return CallStatus::Failed;
        }
        Pickup::Busy => {
            clock.sleep(NETWORK_VERDICT_SECS).await;
            return CallStatus::Busy;
        }
        Pickup::Answer | Pickup::NoAnswer | Pickup::Machine => {}
    }
    call.slot.set_status(CallStatus::Ringing);
    callbacks
        .notify(call, "ringing", CallStatus::Ringing, None)
        .await;
    let ring_limit = f64::from(call.request.timeout_secs);
    if pickup == Pickup::NoAnswer || ring_limit < RING_SECS {
        clock.sleep(ring_limit).await;
        return CallStatus::NoAnswer;
    }
    match callee.line() {
        Some(line) => {
            // Declined: Twilio reports a rejected call as busy.
            if line.declines_within(clock, RING_SECS).await {
                return CallStatus::Busy;
            }
        }
        None => clock.sleep(RING_SECS).await,
    }
    clock.answered_at = Some(clock.now_secs);
    call.slot.set_status(CallStatus::InProgress);
    callbacks
        .notify(call, "answered", CallStatus::InProgress, None)
        .await;
    interpreter::run(call, callee, clock, racing).await
}

impl ActiveCall {
    /// The parameters of every webhook for this call (docs/PROVIDERS.md#twilio-webhook-parameters).
    pub fn params(&self, status: CallStatus) -> Vec<(String, String)> {
        let dialect = self.shared.options.dialect;
        if dialect == Dialect::Plivo {
            // Plivo's names (docs/PROVIDERS.md#plivo): the request's uuid is the call's.
            let pairs = [
                ("CallUUID", self.sid.as_str()),
                ("RequestUUID", self.sid.as_str()),
                ("ALegUUID", self.sid.as_str()),
                ("ALegRequestUUID", self.sid.as_str()),
                ("From", self.request.from.as_str()),
                ("To", self.request.to.as_str()),
                ("CallStatus", dialect.status_word(status)),
                ("Direction", "outbound"),
                ("Event", "StartApp"),
            ];
            let mut params: Vec<(String, String)> = pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            // Plivo's machine detection: `Machine=true|false` on the answered call.
            if let Some(answered_by) = self.answered_by
                && status == CallStatus::InProgress
            {
                let machine = answered_by.starts_with("machine");
                params.push(("Machine".into(), machine.to_string()));
            }
            return params;
        }
        let pairs = [
            ("CallSid", self.sid.as_str()),
            ("AccountSid", self.shared.options.account_sid.as_str()),
            ("From", self.request.from.as_str()),
            ("To", self.request.to.as_str()),
            ("CallStatus", status.as_str()),
            ("ApiVersion", "2010-04-01"),
            ("Direction", "outbound-api"),
        ];
        let mut params: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        if let Some(answered_by) = self.answered_by
            && status == CallStatus::InProgress
        {
            params.push(("AnsweredBy".into(), answered_by.into()));
        }
        params
    }

    /// Sends a signed webhook and records it, whatever the outcome, in the transcript.
    pub async fn webhook(
        &self,
        kind: WebhookKind,
        method: Method,
        url: &Url,
        params: Vec<(String, String)>,
    ) -> Result<Answer, Failure> {
        let request = webhook::Request {
            method,
            url,
            params: &params,
        };
        let send = || request.send(&self.shared.client, &self.shared.signer);
        // Chaos: a second delivery of the same request, concurrently (its answer is lost).
        let mut result = if self.chaos.twice() {
            tokio::join!(send(), send()).0
        } else {
            send().await
        };
        // Retried as the URL's connection overrides say (`#rc=`), else as chaos says.
        let retries = super::chaos::override_retries(url).unwrap_or(self.chaos.retries);
        for _ in 0..retries {
            if matches!(&result, Ok(answer) if answer.status < 500) {
                break;
            }
            result = send().await;
        }
        self.slot.record(Entry::Webhook {
            kind,
            method,
            url_path: webhook::path_and_query(url),
            params: params.into_iter().collect::<BTreeMap<_, _>>(),
            status_code: result.as_ref().ok().map(|a| a.status),
        });
        result
    }
}

/// Status callbacks of one call; `SequenceNumber` counts the ones sent.
struct StatusCallbacks {
    sequence: u32,
}

impl StatusCallbacks {
    /// Sends `event` if the call asked for it (`completed` always), and waits for the answer
    /// so callbacks arrive in order. Failures are recorded and otherwise ignored, as by Twilio.
    async fn notify(
        &mut self,
        call: &Arc<ActiveCall>,
        event: &str,
        status: CallStatus,
        duration: Option<u64>,
    ) {
        let request = &call.request;
        let Some(url) = &request.status_callback else {
            return;
        };
        if event != "completed" && !request.status_callback_events.iter().any(|e| e == event) {
            return;
        }
        if call.shared.options.dialect == Dialect::Plivo {
            return self.notify_plivo(call, event, status, duration).await;
        }
        let mut params = call.params(status);
        let timestamp = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        params.extend([
            ("CallbackSource".into(), "call-progress-events".into()),
            ("Timestamp".into(), timestamp),
            ("SequenceNumber".into(), self.sequence.to_string()),
        ]);
        if let Some(secs) = duration {
            params.push(("CallDuration".into(), secs.to_string()));
        }
        self.sequence += 1;
        let method = request.status_callback_method;
        if call.chaos.unordered_callbacks {
            // Concurrent and unordered, like Twilio's: nobody waits for the answer.
            let (call, url) = (Arc::clone(call), url.clone());
            tokio::spawn(async move {
                let jitter = rand::RngExt::random_range(&mut rand::rng(), 0..15);
                tokio::time::sleep(Duration::from_millis(jitter)).await;
                let _ = call
                    .webhook(WebhookKind::StatusCallback, method, &url, params)
                    .await;
            });
            return;
        }
        let _ = call
            .webhook(WebhookKind::StatusCallback, method, url, params)
            .await;
    }
}

impl StatusCallbacks {
    /// Plivo calls `ring_url` when the phone rings and `hangup_url` when the call ends (with
    /// `HangupCause` and `Duration`); there are no initiated or answered callbacks.
    async fn notify_plivo(
        &mut self,
        call: &ActiveCall,
        event: &str,
        status: CallStatus,
        duration: Option<u64>,
    ) {
        let request = &call.request;
        let Some(url) = &request.status_callback else {
            return;
        };
        let wanted = event == "completed"
            || (event == "ringing" && request.status_callback_events.iter().any(|e| e == event));
        if !wanted {
            return;
        }
        let mut params = call.params(status);
        if event == "completed" {
            params.push((
                "HangupCause".into(),
                dialect::plivo_hangup_cause(status).into(),
            ));
            params.push(("Event".into(), "Hangup".into()));
            params.push(("Duration".into(), duration.unwrap_or_default().to_string()));
        } else {
            params.push(("Event".into(), "Ring".into()));
        }
        self.sequence += 1;
        let _ = call
            .webhook(
                WebhookKind::StatusCallback,
                request.status_callback_method,
                url,
                params,
            )
            .await;
    }
}
