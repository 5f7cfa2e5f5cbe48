//! The state machine's specification (`src/verification/model.rs`) against the script that runs
//! it (`src/store/scripts/transition.lua`, through `Store::transition_from`) on a real Redis:
//! random event sequences must leave the same state and have the same effects after every step.

use std::sync::atomic::{AtomicUsize, Ordering};

use callverify::call::CallProgress;
use callverify::ids::{TenantId, UserId, VerificationId};
use callverify::methods::{DefaultMethod, PhoneType};
use callverify::store::Store;
use callverify::store::verifications::{Created, NewVerification};
use callverify::verification::model::{
    Call, Clock, Hangup, Input, Keys, Setup, Source, State, Webhook, step,
};
use callverify::verification::transition::{Event, GatherStep};
use callverify::verification::{FailureReason, Purpose, Status};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;
use redis::AsyncCommands;

use crate::support::store_runs::{runner, runtime_and_store};
use crate::support::{TestRedis, redis};

/// The account that places every call here; webhooks from any other are foreign.
const ACCOUNT: &str = "acme";
/// A grace no test outlives: only `Clock::Grace` ends it.
const GRACE_MS: u64 = 600_000;

fn setup() -> impl Strategy<Value = Setup> {
    let purpose = select(vec![
        Purpose::Registration,
        Purpose::SignIn,
        Purpose::PasswordReset,
    ]);
    (purpose, 1u32..=3, any::<bool>(), any::<bool>()).prop_map(
        |(purpose, max_prompts, fraud_block, had_default)| Setup {
            purpose,
            max_prompts,
            fraud_block,
            had_default,
        },
    )
}

fn input() -> impl Strategy<Value = Input> {
    let source = prop_oneof![
        10 => Just(Source::Account(Call::Ours)),
        1 => Just(Source::Account(Call::Stray)),
        1 => Just(Source::OtherAccount),
    ];
    // Weighted so that approvals, fraud reports and used-up prompts all happen within a dozen
    // events (endings by call progress, refusal or cancel would otherwise cut most runs short).
    let keys = prop_oneof![
        3 => Just(Keys::Hash),
        3 => Just(Keys::Zero),
        2 => Just(Keys::Other),
        2 => Just(Keys::Silence),
    ];
    let gather_step = prop_oneof![1 => Just(GatherStep::Prompt), 1 => Just(GatherStep::Fraud)];
    let progress = select(vec![
        CallProgress::Queued,
        CallProgress::Ringing,
        CallProgress::Answered,
        CallProgress::Completed,
        CallProgress::Busy,
        CallProgress::NoAnswer,
        CallProgress::Failed,
        CallProgress::Canceled,
        CallProgress::Unknown,
    ]);
    let webhook = prop_oneof![
        2 => Just(Webhook::Voice),
        1 => Just(Webhook::Machine),
        8 => (keys, gather_step, proptest::option::of(0u32..4))
            .prop_map(|(keys, step, prompt)| Webhook::Gather { keys, step, prompt }),
        3 => (progress, any::<bool>())
            .prop_map(|(progress, grace)| Webhook::Progress { progress, grace }),
    ];
    let refusal = select(vec![
        FailureReason::InvalidNumber,
        FailureReason::ProviderRejected,
        FailureReason::ProviderThrottled,
        FailureReason::ProviderUnknown,
    ]);
    prop_oneof![
        2 => Just(Input::Placed),
        1 => refusal.prop_map(Input::Refused),
        1 => Just(Input::Uncertain),
        1 => Just(Input::Cancel),
        1 => Just(Input::Settle),
        14 => (source, webhook).prop_map(|(source, webhook)| Input::Webhook(source, webhook)),
        1 => Just(Input::Clock(Clock::Expiry)),
        2 => Just(Input::Clock(Clock::Grace)),
    ]
}

/// One verification in Redis, as the model sees it.
struct Stored {
    id: VerificationId,
    vkey: String,
    mkey: String,
    akey: String,
    live: String,
    blocked: String,
    audited: usize,
}

async fn create(store: &Store, conn: &mut TestRedis, user: &str, setup: Setup) -> Stored {
    let tenant = TenantId::parse("contoso").unwrap();
    let id = VerificationId::generate(&tenant, &UserId::parse(user).unwrap());
    let keys = store.keys();
    let tag = id.user_tag();
    let stored = Stored {
        vkey: keys.verification(&id),
        mkey: keys.methods(tag),
        akey: keys.audit(tag),
        live: keys.live(tag),
        blocked: keys.blocked(tag),
        audited: 0,
        id,
    };
    if setup.had_default {
        // A usable default: an authenticator app backs `authenticator_push`.
        let app = r#"{"id":"app","kind":"authenticator_app","display_name":"a","created_at":1}"#;
        let _: () = conn
            .hset_multiple(
                &stored.mkey,
                &[("m:app", app), ("default", "authenticator_push")],
            )
            .await
            .unwrap();
    }
    let new = NewVerification {
        id: &stored.id,
        tenant: "contoso",
        user,
        purpose: setup.purpose,
        phone_e164: "+31612345678",
        phone_type: "mobile",
        method_id: PhoneType::Mobile.method_id(),
        locale: "en-US",
        provider: ACCOUNT,
        counted: "",
        ttl_secs: 600,
        retain_secs: 60,
        fraud_block_secs: if setup.fraud_block { 600 } else { 0 },
        default_options: &DefaultMethod::ALL,
    };
    let created = store.create_verification(&new).await.unwrap();
    assert!(matches!(created, Created::Stored(..)), "{created:?}");
    stored
}

/// Applies `input` to the stored verification: time by moving its stored times into the past
/// (Redis' clock cannot be wound forward), events through the real store operation.
async fn apply(
    store: &Store,
    conn: &mut TestRedis,
    v: &Stored,
    setup: Setup,
    input: Input,
) -> Option<(callverify::verification::transition::Outcome, bool)> {
    let call_id = |call| match call {
        Call::Ours => "CA-ours",
        Call::Stray => "CA-stray",
    };
    let (account, call_sid, event) = match input {
        Input::Clock(clock) => {
            let field = match clock {
                Clock::Expiry => "expires_at",
                Clock::Grace => "settle_at",
            };
            let set: bool = conn.hexists(&v.vkey, field).await.unwrap();
            if set {
                let _: () = conn.hset(&v.vkey, field, 1).await.unwrap();
            }
            return None;
        }
        Input::Placed => ("", call_id(Call::Ours), Event::Placed),
        Input::Refused(reason) => (
            "",
            "",
            Event::Refused {
                reason,
                detail: "refused",
            },
        ),
        Input::Uncertain => ("", "", Event::Uncertain { detail: "timeout" }),
        Input::Cancel => ("", "", Event::Cancel),
        Input::Settle => ("", "", Event::Settle),
        Input::Webhook(source, webhook) => {
            let (account, call_sid) = match source {
                Source::Account(call) => (ACCOUNT, call_id(call)),
                Source::OtherAccount => ("other", call_id(Call::Ours)),
            };
            let event = match webhook {
                Webhook::Voice => Event::Voice,
                Webhook::Machine => Event::Machine,
                Webhook::Gather { keys, step, prompt } => Event::Gather {
                    digits: keys.digits(),
                    step,
                    max_prompts: setup.max_prompts,
                    prompt,
                },
                Webhook::Progress { progress, grace } => Event::Status {
                    progress,
                    grace_ms: if grace { GRACE_MS } else { 0 },
                },
            };
            (account, call_sid, event)
        }
    };
    let t = store
        .transition_from(&v.id, account, call_sid, event)
        .await
        .unwrap();
    Some((t.outcome, t.ended))
}

/// The stored verification read back in the model's terms, and the audit entries since the
/// last look.
async fn observe(conn: &mut TestRedis, v: &mut Stored, setup: Setup) -> (State, Vec<String>) {
    let f: Vec<Option<String>> = redis::cmd("HMGET")
        .arg(&v.vkey)
        .arg(&[
            "status",
            "reason",
            "prompts",
            "call_sid",
            "fraud_asked",
            "settle_at",
            "expires_at",
        ])
        .query_async(conn)
        .await
        .unwrap();
    let field = |i: usize| f[i].clone().unwrap_or_default();
    let hangup = match f[5].as_deref() {
        None => Hangup::None,
        Some("1") => Hangup::Due,
        Some(_) => Hangup::Pending,
    };
    let call = match field(3).as_str() {
        "" => None,
        "CA-ours" => Some(Call::Ours),
        other => {
            assert_eq!(other, "CA-stray");
            Some(Call::Stray)
        }
    };
    let reply: redis::streams::StreamRangeReply = conn.xrange_all(&v.akey).await.unwrap();
    let entries = reply.ids;
    let audit = entries[v.audited..]
        .iter()
        .map(|e| e.get::<String>("action").unwrap_or_default())
        .collect();
    v.audited = entries.len();
    let state = State {
        setup,
        status: Status::parse(&field(0)).expect("a stored status"),
        reason: FailureReason::parse(&field(1)),
        prompts: field(2).parse().unwrap(),
        call,
        fraud_asked: field(4) == "1",
        hangup,
        past_expiry: field(6) == "1",
        holds_live_slot: conn.exists(&v.live).await.unwrap(),
        method_registered: conn
            .hexists(&v.mkey, format!("m:{}", PhoneType::Mobile.method_id()))
            .await
            .unwrap(),
        has_default: conn.hexists(&v.mkey, "default").await.unwrap(),
        fraud_blocked: conn.exists(&v.blocked).await.unwrap(),
    };
    (state, audit)
}

/// Runs `inputs` through the model and the script side by side; the first difference fails.
async fn same_path(store: &Store, user: &str, setup: Setup, inputs: &[Input]) -> Checked {
    let mut conn = redis().await;
    let mut v = create(store, &mut conn, user, setup).await;
    let mut model = State::new(setup);
    let (stored, _) = observe(&mut conn, &mut v, setup).await;
    prop_assert_eq!(&stored, &model, "as created");
    let mut endings = 0;
    for (i, &input) in inputs.iter().enumerate() {
        let (next, expected) = step(model, input);
        model = next;
        let reply = apply(store, &mut conn, &v, setup, input).await;
        let (stored, audit) = observe(&mut conn, &mut v, setup).await;
        let ended = reply.is_some_and(|(_, ended)| ended);
        let at = format!("step {i} ({input:?}) of {setup:?} {inputs:?}");
        prop_assert_eq!(
            (reply.map(|(outcome, _)| outcome), ended),
            (expected.outcome, expected.ended),
            "{}",
            at
        );
        prop_assert_eq!(&audit, &expected.audit, "{}", at);
        prop_assert_eq!(&stored, &model, "{}", at);
        endings += usize::from(ended);
    }
    prop_assert!(endings <= 1, "ended {} times: {:?}", endings, inputs);
    Ok(model)
}

type Checked = Result<State, TestCaseError>;

#[test]
fn transition_lua_does_what_the_model_says_for_random_event_sequences() {
    let (rt, store) = runtime_and_store();
    let cases = AtomicUsize::new(0);
    let mut runner = runner(96);
    let sequences = (setup(), proptest::collection::vec(input(), 1..=12));
    runner
        .run(&sequences, |(setup, inputs)| {
            let user = format!("sm{}", cases.fetch_add(1, Ordering::Relaxed));
            rt.block_on(same_path(&store, &user, setup, &inputs))
                .map(|_| ())
        })
        .unwrap();
}

/// Every rule of the model at least once, whatever the random runs drew: each path ends where
/// the rule says, and the script agrees at every step.
#[test]
fn transition_lua_follows_the_model_through_every_rule() {
    use Input::{Cancel, Placed, Refused, Settle, Uncertain};
    let ours = |w| Input::Webhook(Source::Account(Call::Ours), w);
    let gather = |keys, step, prompt| ours(Webhook::Gather { keys, step, prompt });
    let at_prompt = |keys| gather(keys, GatherStep::Prompt, None);
    let progress = |progress, grace| ours(Webhook::Progress { progress, grace });
    let setup = |purpose, fraud_block, had_default| Setup {
        purpose,
        max_prompts: 2,
        fraud_block,
        had_default,
    };
    let registration = setup(Purpose::Registration, false, false);
    let sign_in = setup(Purpose::SignIn, true, true);
    let (failed, approved) = (Status::Failed, Status::Approved);
    let paths: Vec<(Setup, Vec<Input>, Status, Option<FailureReason>)> = vec![
        // Approval registers the method, and makes it the default only when there is none.
        (
            registration,
            vec![Placed, ours(Webhook::Voice), at_prompt(Keys::Hash)],
            approved,
            None,
        ),
        (
            setup(Purpose::Registration, false, true),
            vec![at_prompt(Keys::Hash)],
            approved,
            None,
        ),
        (
            sign_in,
            vec![at_prompt(Keys::Hash), at_prompt(Keys::Hash)],
            approved,
            None,
        ),
        // A fraud report needs the 0 first; the block only when the verification has one.
        (
            sign_in,
            vec![
                gather(Keys::Hash, GatherStep::Fraud, None),
                at_prompt(Keys::Zero),
                gather(Keys::Hash, GatherStep::Fraud, None),
            ],
            Status::FraudReported,
            None,
        ),
        (
            registration,
            vec![
                at_prompt(Keys::Zero),
                gather(Keys::Hash, GatherStep::Fraud, None),
            ],
            Status::FraudReported,
            None,
        ),
        // Prompts run out; an older prompt's gather does not count.
        (
            sign_in,
            vec![
                ours(Webhook::Voice),
                gather(Keys::Other, GatherStep::Prompt, Some(0)),
                at_prompt(Keys::Silence),
                gather(Keys::Silence, GatherStep::Prompt, Some(2)),
                at_prompt(Keys::Other),
            ],
            failed,
            Some(FailureReason::NoInput),
        ),
        // The hang-up grace: # within it approves, the first event after it ends hung_up.
        (
            registration,
            vec![
                progress(CallProgress::Completed, true),
                Input::Clock(Clock::Grace),
                at_prompt(Keys::Hash),
            ],
            failed,
            Some(FailureReason::HungUp),
        ),
        (
            registration,
            vec![
                progress(CallProgress::Completed, true),
                at_prompt(Keys::Hash),
            ],
            approved,
            None,
        ),
        (
            sign_in,
            vec![
                progress(CallProgress::Completed, true),
                Input::Clock(Clock::Grace),
                Settle,
            ],
            failed,
            Some(FailureReason::HungUp),
        ),
        (
            sign_in,
            vec![progress(CallProgress::Completed, false)],
            failed,
            Some(FailureReason::HungUp),
        ),
        (
            sign_in,
            vec![
                progress(CallProgress::Ringing, false),
                progress(CallProgress::Busy, false),
            ],
            failed,
            Some(FailureReason::Busy),
        ),
        (
            sign_in,
            vec![progress(CallProgress::Canceled, true)],
            Status::Canceled,
            Some(FailureReason::Canceled),
        ),
        (
            sign_in,
            vec![Uncertain, Input::Clock(Clock::Expiry), Settle, Cancel],
            Status::Expired,
            Some(FailureReason::Expired),
        ),
        // Refusal only before a call reported back; a machine ends it.
        (
            sign_in,
            vec![Refused(FailureReason::InvalidNumber)],
            failed,
            Some(FailureReason::InvalidNumber),
        ),
        (
            sign_in,
            vec![
                Placed,
                Refused(FailureReason::ProviderUnknown),
                ours(Webhook::Machine),
            ],
            failed,
            Some(FailureReason::Voicemail),
        ),
        // Another account, or another call (bound first), changes nothing; our own cancel still ends it.
        (
            sign_in,
            vec![
                Input::Webhook(
                    Source::OtherAccount,
                    Webhook::Gather {
                        keys: Keys::Hash,
                        step: GatherStep::Prompt,
                        prompt: None,
                    },
                ),
                Input::Webhook(Source::Account(Call::Stray), Webhook::Voice),
                Placed,
                at_prompt(Keys::Hash),
                Cancel,
            ],
            Status::Canceled,
            Some(FailureReason::Canceled),
        ),
    ];
    let (rt, store) = runtime_and_store();
    for (n, (setup, inputs, status, reason)) in paths.into_iter().enumerate() {
        let end = rt
            .block_on(same_path(&store, &format!("rule{n}"), setup, &inputs))
            .unwrap();
        assert_eq!(
            (end.status, end.reason),
            (status, reason),
            "path {n}: {inputs:?}"
        );
    }
}
