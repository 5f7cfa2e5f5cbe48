//! Starting a verification call: choose and check the number, store the verification, ask the
//! provider to dial. A provider refusal becomes a failed verification, never a 500.

use serde::Deserialize;

use super::transition::{Event, Outcome, Transition};
use super::{CallFlow, Purpose, Verification, prompts};
use crate::abuse;
use crate::error::ApiError;
use crate::ids::{TenantId, UserId, VerificationId, user_tag};
use crate::methods::{MethodsDocument, PhoneType};
use crate::phone;
use crate::provider::{Account, CallRequest, ProviderError};
use crate::store::limits::CircuitOp;
use crate::store::undialled::DialMark;
use crate::store::verifications::{Created, NewVerification};

/// `POST …/verifications` body (field names are an API contract).
#[derive(Debug, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    pub purpose: Purpose,
    /// Registration only: the number as the user typed it (an extension is dropped).
    pub phone_number: Option<String>,
    /// ISO 3166 region for numbers typed without `+country`.
    pub region: Option<String>,
    /// Registration only; default `mobile`.
    pub phone_type: Option<PhoneType>,
    /// Sign-in / password reset: the registered phone method to call.
    pub method_id: Option<String>,
    pub locale: Option<String>,
}

/// The number to call and the method it stands for.
struct Target {
    e164: String,
    phone_type: PhoneType,
    /// The number as parsed from the request (registration), so the policy check does not
    /// parse it a second time (the parse is the costliest step of a start).
    parsed: Option<phone::PhoneNumber>,
}

/// Starts a verification and waits for the provider's answer: the verification as dialling
/// left it (placed, refused, or open when the answer was unknown), with Redis' clock.
pub async fn start(
    flow: &CallFlow,
    tenant: &TenantId,
    user: &UserId,
    tag: &str,
    client_ip: Option<std::net::IpAddr>,
    request: StartRequest,
) -> Result<(Verification, i64), ApiError> {
    admit(flow, tenant, user, tag, client_ip, request)
        .await?
        .dialled(flow)
        .await
}

/// A start every synchronous check admitted (policy, fraud block, live slot, rate limits): the
/// verification is stored `calling` and its own task is dialling (the same task [`start`]
/// waits for). A provider refusal after this is recorded by that task as any other: the
/// verification ends `failed` and its long-poll wakes.
pub struct Admitted {
    /// The verification as stored (`calling`, the first account's name).
    pub verification: Verification,
    id: VerificationId,
    dial: tokio::task::JoinHandle<Result<Dialled, ApiError>>,
}

impl Admitted {
    /// Waits for the dial: the verification as it left it, with Redis' clock.
    pub async fn dialled(self, flow: &CallFlow) -> Result<(Verification, i64), ApiError> {
        let dialled = self
            .dial
            .await
            .map_err(|e| ApiError::Internal(format!("dial task: {e}")))??;
        let known = Verification {
            queued_ms: Some(dialled.queued_ms).filter(|ms| *ms > 0),
            provider: dialled.account,
            ..self.verification
        };
        let (transition, provider_error) = (dialled.transition, dialled.provider_error);
        settled(
            flow,
            &self.id,
            transition,
            provider_error.as_deref(),
            &known,
        )
        .await
    }

    /// Waits for the dial without the verification: `Err` when it failed before anything may
    /// have been dialled (the start was undone) or Redis failed while recording it.
    pub async fn dial_outcome(self) -> Result<(), ApiError> {
        let dialled = self.dial.await;
        dialled
            .map_err(|e| ApiError::Internal(format!("dial task: {e}")))?
            .map(|_| ())
    }
}

/// Everything [`start`] does before it waits for the provider: answers as soon as the
/// verification is admitted, its call being dialled in the background. `tag` is the user's
/// [`user_tag`], which the caller has at hand.
pub async fn admit(
    flow: &CallFlow,
    tenant: &TenantId,
    user: &UserId,
    tag: &str,
    client_ip: Option<std::net::IpAddr>,
    request: StartRequest,
) -> Result<Admitted, ApiError> {
    admit_as(
        flow,
        tenant,
        user,
        tag,
        client_ip,
        request,
        VerificationId::generate_for_tag(tag),
    )
    .await
}

/// [`admit`] under an id the caller chose beforehand (`VerificationId::generate_for_tag(tag)`),
/// so it can name the verification before it exists (an External MFA sign-in stores it with
/// the sign-in, `crate::external_mfa`). The id must carry the user's tag: the verification's
/// keys live in the user's slot. A refused start stores nothing under it.
pub async fn admit_as(
    flow: &CallFlow,
    tenant: &TenantId,
    user: &UserId,
    tag: &str,
    client_ip: Option<std::net::IpAddr>,
    request: StartRequest,
    id: VerificationId,
) -> Result<Admitted, ApiError> {
    if id.user_tag() != tag {
        debug_assert_eq!(
            id.user_tag(),
            tag,
            "a chosen verification id carries the user's tag"
        );
        return Err(ApiError::Internal(
            "a chosen verification id does not carry the user's tag".into(),
        ));
    }
    // Tenant policy (see crate::policy): locale default here, number checks below.
    let settings = &flow.settings;
    let policy = settings.policy(flow, tenant).await?;
    let locale = resolve_locale(request.locale.as_deref(), &policy.default_locale)?;
    debug_assert_eq!(tag, user_tag(tenant, user));
    let target = match request.purpose {
        Purpose::Registration => registration_target(&request)?,
        Purpose::SignIn | Purpose::PasswordReset => {
            if request.phone_number.is_some()
                || request.region.is_some()
                || request.phone_type.is_some()
            {
                return Err(ApiError::InvalidRequest(
                    "sign-in and password-reset calls go to a registered phone: send method_id (optional), not phone_number".into(),
                ));
            }
            let methods =
                (flow.store.methods(tag).await?).with_effective_default(&policy.enabled_options());
            registered_target(&methods, request.purpose, request.method_id.as_deref())?
        }
    };
    match &target.parsed {
        Some(number) => crate::policy::check_call(&policy, target.phone_type, number)?,
        None => crate::policy::check_call_e164(&policy, target.phone_type, &target.e164)?,
    }
    if request.purpose == Purpose::Registration && target.phone_type == PhoneType::AlternateMobile {
        let methods = flow.store.methods(tag).await?;
        if methods.phone(PhoneType::Mobile).is_none() {
            return Err(ApiError::Conflict(
                "register a mobile phone before an alternate mobile phone".into(),
            ));
        }
    }

    let accounts: Vec<Account> = flow.providers.for_tenant(tenant.as_str()).to_vec();
    let first = accounts
        .first()
        .ok_or_else(|| ApiError::Internal("no provider account configured".into()))?
        .clone();
    let config = &settings.verification;
    let subject = abuse::limits::CallSubject {
        tenant,
        user,
        e164: &target.e164,
        number_key: &settings.number_key,
        client_ip,
    };
    let counted = abuse::limits::plan(settings.limits_for(tenant), subject);
    // Stored with its first reconciliation check (`Store::create_scheduled`: in the same script
    // on a single node, just before it on a cluster): a start that fails after storing — even by
    // a timeout whose write lands later — is found by reconciliation, which releases a
    // verification never dialled (slot and counts; `undialled.rs`). A refused start schedules
    // nothing.
    let first_check_ms = settings.verification.reconcile_interval_secs * 1000;
    let new = NewVerification {
        id: &id,
        tenant: tenant.as_str(),
        user: user.as_str(),
        purpose: request.purpose,
        phone_e164: &target.e164,
        phone_type: target.phone_type.as_str(),
        method_id: target.phone_type.method_id(),
        locale,
        provider: first.name(),
        counted: &counted.encode(),
        ttl_secs: config.ttl_secs,
        retain_secs: config.retain_secs,
        fraud_block_secs: settings.fraud_block_secs,
        default_options: &policy.enabled_options(),
    };
    let created = flow.store.create_scheduled(&new, first_check_ms).await?;

    // --- abuse protection (`crate::abuse`): fraud block and one live call per user
    // (checked atomically at creation), rate limits, then the provider account's pacing. ---
    // The start's clock for its dialling mark (`try_account`): its creation is confirmed now.
    let confirmed = tokio::time::Instant::now();
    let (created_at, expires_at) = match created {
        Created::Stored(created_at, expires_at) => {
            crate::ops::metrics::verification_started(request.purpose.as_str());
            (created_at, expires_at)
        }
        refused => {
            abuse::check_created(refused)?;
            return Err(ApiError::Internal(
                "verification neither stored nor refused".into(),
            ));
        }
    };
    // What the answer shows, known without reading the verification back from Redis.
    let known = Verification {
        id: id.as_str().to_owned(),
        tenant: tenant.as_str().to_owned(),
        user: user.as_str().to_owned(),
        purpose: request.purpose,
        status: crate::verification::Status::Calling,
        reason: None,
        provider_error: None,
        phone_e164: target.e164.clone(),
        phone_type: target.phone_type.as_str().to_owned(),
        locale: locale.to_owned(),
        provider: first.name().to_owned(),
        method_id: Some(target.phone_type.method_id().to_owned()),
        created_at,
        expires_at,
        updated_at: created_at,
        queued_ms: None,
    };
    let counted = abuse::limits::admit(&flow.store, &id, counted).await?;
    // From here until a provider may have dialled, any failure undoes the start (`abandon`):
    // the verification and its live slot go, the rate-limit counts are refunded. If the undo
    // fails too (Redis stalled), reconciliation releases it (`undialled.rs`).
    // --- end abuse protection ---

    // Dialled from a task of its own so a portal hanging up during a pacing wait does not
    // leave a verification that holds the user's live slot without a call.
    let dial = tokio::spawn(dial(
        flow.clone(),
        accounts,
        id.clone(),
        target.e164,
        request.purpose,
        counted,
        confirmed,
    ));
    Ok(Admitted {
        verification: known,
        id,
        dial,
    })
}

/// The verification as the `placed` or `refused` transition left it, with Redis' clock at that
/// moment: built from what the start already knows plus the transition's reply, which saves the
/// read-back (`HGETALL`) and clock (`TIME`) round trips. Anything unusual (the verification ended
/// or changed hands meanwhile) is read back instead.
async fn settled(
    flow: &CallFlow,
    id: &VerificationId,
    t: Transition,
    provider_error: Option<&str>,
    known: &Verification,
) -> Result<(Verification, i64), ApiError> {
    if t.outcome == Outcome::Ok
        && let Some(status) = t.status
    {
        let verification = Verification {
            status,
            reason: t.reason,
            provider_error: provider_error.map(str::to_owned),
            updated_at: t.updated_at,
            ..known.clone()
        };
        return Ok((verification, t.now));
    }
    let verification =
        flow.store.verification(id).await?.ok_or_else(|| {
            ApiError::Internal("verification vanished right after creation".into())
        })?;
    Ok((verification, t.now))
}

/// What dialling ended with: the transition it recorded, the account that placed the call (or
/// refused it last), the provider's error text, and the pacing wait.
struct Dialled {
    transition: Transition,
    account: String,
    provider_error: Option<String>,
    queued_ms: u64,
}

/// The call a start is placing: its verification, number, and when its creation was confirmed.
struct Attempt<'a> {
    id: &'a VerificationId,
    e164: &'a str,
    confirmed: tokio::time::Instant,
}

/// First pause after a throttled request (doubled each time, with jitter).
const THROTTLE_BACKOFF: std::time::Duration = std::time::Duration::from_millis(200);

/// Tries the tenant's accounts in order, and records the outcome. Until a provider may have
/// dialled, a failure (Redis) undoes the start: no live slot, no counts.
async fn dial(
    flow: CallFlow,
    accounts: Vec<Account>,
    id: VerificationId,
    e164: String,
    purpose: Purpose,
    counted: abuse::limits::Counted,
    confirmed: tokio::time::Instant,
) -> Result<Dialled, ApiError> {
    let mut maybe_dialled = false;
    let attempt = Attempt {
        id: &id,
        e164: &e164,
        confirmed,
    };
    let dialled = dial_accounts(
        &flow,
        &accounts,
        &attempt,
        purpose,
        &counted,
        &mut maybe_dialled,
    )
    .await;
    if dialled.is_err() && !maybe_dialled {
        abandon(&flow, &id, &counted).await;
    }
    dialled
}

/// Tries the tenant's accounts in order: each waits for its pacing slot, then asks its
/// provider to place the call. A failure that certainly dialled nothing (refused, unreachable,
/// misconfigured, throttled past its retries, circuit open; never an invalid number) moves on
/// to the next account. An unknown outcome (timeout, 5xx, unreadable answer) stops here: a call
/// may be ringing, so nothing is refunded and the verification stays `calling` (the first call
/// that reports back binds; reconciliation ends it `provider_unknown` if none does).
/// `maybe_dialled` turns true once a provider may have placed the call.
async fn dial_accounts(
    flow: &CallFlow,
    accounts: &[Account],
    attempt: &Attempt<'_>,
    purpose: Purpose,
    counted: &abuse::limits::Counted,
    maybe_dialled: &mut bool,
) -> Result<Dialled, ApiError> {
    let (id, e164) = (attempt.id, attempt.e164);
    let mut last: Option<(String, ProviderError)> = None;
    let mut queued_ms = 0;
    for (i, account) in accounts.iter().enumerate() {
        let name = account.name();
        if i > 0 {
            flow.store.set_provider(id, name).await?;
            tracing::warn!(verification = %id, provider = name, "failing over to the next provider account");
        }
        let outcome = try_account(flow, account, attempt, &mut queued_ms, maybe_dialled).await?;
        let error = match outcome {
            Ok(call_id) => {
                let since = std::time::Instant::now();
                // No id ('' to the transition script): the first signed callback binds one.
                let sid = call_id.as_deref().unwrap_or_default();
                let placed = flow.transition_settled(id, "", sid, Event::Placed, since);
                let placed = placed.await?;
                // Canceled while the call was being placed: end it now that it has an id (a
                // call placed without one cannot be named; it hears "no longer valid").
                if placed.status == Some(crate::verification::Status::Canceled)
                    && let Some(call_id) = &call_id
                    && let Err(error) = account.provider.end_call(call_id).await
                {
                    tracing::warn!(verification = %id, provider = name, %error, "canceled call not ended by the provider");
                }
                tracing::info!(verification = %id, purpose = purpose.as_str(), provider = name, to = %phone::mask_e164(e164), "call placed");
                crate::ops::metrics::provider_call(name, "placed");
                flow.ended(id, &placed, false);
                return Ok(Dialled {
                    transition: placed,
                    account: name.to_owned(),
                    provider_error: None,
                    queued_ms,
                });
            }
            Err(error) => error,
        };
        crate::ops::metrics::provider_call(name, error.outcome());
        if !error.certainly_not_placed() {
            // The call may ring: nothing is refunded, no other account is tried, and the
            // verification stays `calling`. The first call that reports back binds;
            // reconciliation ends it `provider_unknown` if none does within the ring timeout
            // plus a margin.
            tracing::warn!(verification = %id, provider = name, %error, "provider's answer unknown: the verification stays open");
            let detail = error.to_string();
            let event = Event::Uncertain { detail: &detail };
            let since = std::time::Instant::now();
            let open = flow.transition_settled(id, "", "", event, since).await?;
            return Ok(Dialled {
                transition: open,
                account: name.to_owned(),
                provider_error: Some(detail),
                queued_ms,
            });
        }
        if let ProviderError::Misconfigured { code, .. } = &error {
            tracing::error!(verification = %id, provider = name, code, %error, "provider account misconfigured: fix the provider configuration");
            let code = code.to_string();
            metrics::counter!(crate::ops::metrics::PROVIDER_MISCONFIGURED, "provider" => name.to_owned(), "code" => code).increment(1);
        } else {
            tracing::warn!(verification = %id, provider = name, %error, "provider did not place the call");
        }
        let fails_over = error.fails_over();
        last = Some((name.to_owned(), error));
        if !fails_over {
            break;
        }
    }
    let (account, error) = last.unwrap_or_else(|| {
        (
            String::new(),
            ProviderError::Unreachable("no provider account".into()),
        )
    });
    // Nothing was dialled, so nothing counts against the rate limits.
    abuse::limits::refund(&flow.store, id, counted).await;
    let detail = error.to_string();
    let refused = flow
        .store
        .transition(
            id,
            "",
            Event::Refused {
                reason: error.reason(),
                detail: &detail,
            },
        )
        .await?;
    flow.ended(id, &refused, false);
    Ok(Dialled {
        transition: refused,
        account,
        provider_error: Some(detail),
        queued_ms,
    })
}

/// Undoes a start that failed before anything may have been dialled: refunds the rate-limit
/// counts and drops the verification with its live slot and its reconciliation check. Failures
/// are logged (the live slot expires with the verification; counts with their windows).
async fn abandon(flow: &CallFlow, id: &VerificationId, counted: &abuse::limits::Counted) {
    abuse::limits::refund(&flow.store, id, counted).await;
    if let Err(e) = flow.store.discard_verification(id).await {
        tracing::warn!(verification = %id, error = %e, "abandoned verification not discarded");
    }
    if let Err(e) = flow.store.unschedule_reconcile(id.as_str()).await {
        tracing::warn!(verification = %id, error = %e, "abandoned verification still scheduled");
    }
}

/// One account's attempt: its circuit breaker, its pacing slot, its provider (asked again,
/// with backoff, while it throttles and the account's `max_queue_ms` allows). Redis failures
/// are the caller's (`Err`); the provider's answer is the inner result.
async fn try_account(
    flow: &CallFlow,
    account: &Account,
    attempt: &Attempt<'_>,
    queued_ms: &mut u64,
    maybe_dialled: &mut bool,
) -> Result<Result<Option<String>, ProviderError>, ApiError> {
    let (id, e164) = (attempt.id, attempt.e164);
    let settings = &flow.settings;
    let name = account.name();
    let (failures, cooldown) = (settings.circuit_failures, settings.circuit_cooldown_ms);
    let circuit_on = failures > 0;
    let budget_ms = settings.dial_budget_ms();
    // The circuit breaker and the pacing slot: one round trip (none when both are off). On a
    // single Redis node it also marks the verification `dialling` (see below) when no pacing
    // wait comes first.
    let pacing = account.pacing;
    let mark = DialMark {
        id,
        budget_ms,
        deadline_ms: mark_deadline_ms(flow, attempt),
    };
    let admission = abuse::pacing::admit(
        &flow.store,
        name,
        circuit_on.then_some(cooldown),
        pacing.calls_per_second,
        pacing.max_queue_ms,
        &mark,
    )
    .await?;
    // circuit 1: closed with nothing counted, so a success has nothing to reset (no round trip).
    let (queued, circuit, marked) = match admission {
        abuse::pacing::Admission::Dial {
            wait,
            circuit,
            marked,
        } => (wait, circuit, marked),
        abuse::pacing::Admission::CircuitOpen => return Ok(Err(ProviderError::CircuitOpen)),
        abuse::pacing::Admission::QueueFull => {
            return Ok(Err(ProviderError::Throttled {
                code: 0,
                message: "the provider account's call queue is full (calls_per_second)".into(),
            }));
        }
    };
    if !queued.is_zero() {
        *queued_ms += queued.as_millis() as u64;
        flow.store.set_queued(id, *queued_ms).await?;
        tokio::time::sleep(queued).await;
    }
    let base = settings.webhook_base(name, id.as_str());
    let (answer_url, status_url, fallback_url) = (
        format!("{base}voice"),
        format!("{base}status"),
        format!("{base}fallback"),
    );
    let call = CallRequest {
        to_e164: e164,
        answer_url: &answer_url,
        status_url: &status_url,
        fallback_url: &fallback_url,
    };
    // The last step before a provider may dial: marked, only while the start is young enough
    // that reconciliation has not released it (the same script's clock decides both), so a
    // mark that lands late after a stall is refused instead of stranding the verification.
    // Set by the gate's script on a single node when nothing was waited for; otherwise now,
    // after the wait, with a deadline counted from now.
    let marked = match marked {
        Some(marked) => marked,
        None => {
            let deadline_ms = mark_deadline_ms(flow, attempt);
            flow.store.mark_dialling(id, budget_ms, deadline_ms).await?
        }
    };
    if !marked {
        return Err(ApiError::Unavailable(
            "the start ran out of time before dialling".into(),
        ));
    }
    let give_up_at =
        tokio::time::Instant::now() + std::time::Duration::from_millis(pacing.max_queue_ms);
    let mut backoff = THROTTLE_BACKOFF;
    let placed = loop {
        let placed = account.provider.place_call(call).await;
        let pause = jittered(backoff);
        match placed {
            Err(ProviderError::Throttled { .. })
                if tokio::time::Instant::now() + pause < give_up_at =>
            {
                tracing::info!(verification = %id, provider = name, "provider throttled the call; retrying");
                tokio::time::sleep(pause).await;
                backoff *= 2;
            }
            placed => break placed,
        }
    };
    if placed.as_ref().is_ok() || placed.as_ref().is_err_and(|e| !e.certainly_not_placed()) {
        *maybe_dialled = true;
    }
    if circuit_on {
        match &placed {
            Ok(_) if circuit == 1 => {}
            Ok(_) => {
                flow.store
                    .circuit(name, CircuitOp::Ok, failures, cooldown)
                    .await?;
            }
            Err(e) if e.counts_against_account() => {
                flow.store
                    .circuit(name, CircuitOp::Fail, failures, cooldown)
                    .await?;
            }
            Err(_) => {}
        }
    }
    Ok(placed)
}

/// The start's own deadline for its dialling mark sent now (ms after the verification's
/// creation): as long as the start has run since its creation was confirmed, plus the Redis
/// deadline for this request and a little transit.
fn mark_deadline_ms(flow: &CallFlow, attempt: &Attempt<'_>) -> u64 {
    let deadline = attempt.confirmed.elapsed() + flow.store.command_timeout();
    deadline.as_millis() as u64 + 100
}

/// `pause` ± 25 %, so instances throttled together do not retry together.
fn jittered(pause: std::time::Duration) -> std::time::Duration {
    use rand::RngExt;
    pause.mul_f64(rand::rng().random_range(0.75..1.25))
}

fn resolve_locale(requested: Option<&str>, default: &str) -> Result<&'static str, ApiError> {
    match requested {
        None => prompts::match_locale(default)
            .ok_or_else(|| ApiError::Internal("configured default locale unsupported".into())),
        Some(l)
            if l.len() > 35
                || !l
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Err(ApiError::InvalidRequest(
                "locale must be a BCP 47 tag such as nl-NL".into(),
            ))
        }
        // A locale we do not speak falls back to the default rather than failing the sign-in.
        Some(l) => Ok(prompts::match_locale(l)
            .or_else(|| prompts::match_locale(default))
            .unwrap_or("en-US")),
    }
}

fn registration_target(request: &StartRequest) -> Result<Target, ApiError> {
    if request.method_id.is_some() {
        return Err(ApiError::InvalidRequest(
            "method_id is for sign-in and password-reset calls".into(),
        ));
    }
    let typed = request.phone_number.as_deref().ok_or_else(|| {
        ApiError::InvalidPhoneNumber("phone_number is required for a registration".into())
    })?;
    if let Some(region) = &request.region
        && (region.len() != 2 || !region.bytes().all(|b| b.is_ascii_uppercase()))
    {
        return Err(ApiError::InvalidRequest(
            "region must be an uppercase ISO 3166 alpha-2 code such as US".into(),
        ));
    }
    let parsed = phone::parse(typed, request.region.as_deref())
        .map_err(|e| ApiError::InvalidPhoneNumber(e.to_string()))?;
    Ok(Target {
        e164: parsed.number.e164().to_owned(),
        phone_type: request.phone_type.unwrap_or(PhoneType::Mobile),
        parsed: Some(parsed.number),
    })
}

/// The registered phone a sign-in or password-reset call goes to.
fn registered_target(
    methods: &MethodsDocument,
    purpose: Purpose,
    method_id: Option<&str>,
) -> Result<Target, ApiError> {
    let phone_type = match method_id {
        Some(id) => {
            let phone_type = PhoneType::from_method_id(id);
            let registered = phone_type.filter(|t| methods.phone(*t).is_some());
            match registered {
                Some(t) => t,
                None if methods.methods.iter().any(|m| m.id == id) => {
                    return Err(ApiError::NoPhoneMethod(
                        "that method is not a phone: only phone methods can be called".into(),
                    ));
                }
                None => return Err(ApiError::NotFound("no such method for this user".into())),
            }
        }
        None => {
            let default_voice = methods
                .default_method
                .and_then(|d| d.voice_phone())
                .filter(|t| methods.phone(*t).is_some());
            default_voice
                .filter(|t| purpose != Purpose::PasswordReset || *t != PhoneType::AlternateMobile)
                .or_else(|| methods.phone(PhoneType::Mobile).map(|_| PhoneType::Mobile))
                .ok_or_else(|| {
                    ApiError::NoPhoneMethod("the user has no phone method to call".into())
                })?
        }
    };
    if purpose == Purpose::PasswordReset && phone_type == PhoneType::AlternateMobile {
        return Err(ApiError::NoPhoneMethod(
            "an alternate mobile phone serves two-step verification only, not password reset"
                .into(),
        ));
    }
    let (_, number) = methods
        .phone(phone_type)
        .ok_or_else(|| ApiError::NoPhoneMethod("the user has no phone method to call".into()))?;
    Ok(Target {
        e164: number.to_owned(),
        phone_type,
        parsed: None,
    })
}
