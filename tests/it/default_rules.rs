//! The default sign-in method's rules in their two halves agree: what the Lua scripts leave in
//! Redis (`repair_default` in `src/store/scripts/methods_lib.lua`, run by adding, deleting,
//! setting the default and an approved registration in `transition.lua`) must be what the Rust
//! rule (`callverify::methods::effective_default`, the read path's) computes — for random
//! method sets, tenant policies and operations, on a real Redis, after every operation.

use std::sync::atomic::{AtomicUsize, Ordering};

use callverify::ids::{MethodId, TenantId, UserId, VerificationId, user_tag};
use callverify::methods::{
    DefaultMethod, MethodDetails, MethodKind, MethodsDocument, PhoneType, effective_default,
};
use callverify::policy::{KindPolicy, MethodsPolicy, PhonePolicy, Policy};
use callverify::store::Store;
use callverify::store::methods::{AddOutcome, DefaultChange, DeleteOutcome, SetDefaultOutcome};
use callverify::store::verifications::{Created, NewVerification};
use callverify::verification::Purpose;
use callverify::verification::transition::{Event, GatherStep, Outcome};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;

use crate::support::store_runs::{runner, runtime_and_store};

const TENANT: &str = "contoso";
const ACCOUNT: &str = "acme";

/// The tenant policy's method switches (what decides the enabled options).
#[derive(Clone, Copy, Debug)]
struct Switches {
    phone: bool,
    office: bool,
    authenticator_app: bool,
    security_key: bool,
    email: bool,
    security_questions: bool,
}

impl Switches {
    fn policy(self) -> Policy {
        let kind = |enabled| KindPolicy { enabled };
        Policy {
            methods: MethodsPolicy {
                phone: PhonePolicy {
                    enabled: self.phone,
                    office_phone_allowed: self.office,
                },
                authenticator_app: kind(self.authenticator_app),
                security_key: kind(self.security_key),
                email: kind(self.email),
                security_questions: kind(self.security_questions),
            },
            allowed_countries: None,
            blocked_number_types: Vec::new(),
            default_locale: "en-US".into(),
        }
    }
}

/// One change to the user's methods, as the API and the call flow make them.
#[derive(Clone, Copy, Debug)]
enum Op {
    Add(MethodKind),
    /// The method at this index (modulo their number) of the user's methods.
    Delete(usize),
    /// The user's phone of this type, if registered.
    DeletePhone(PhoneType),
    SetDefault(DefaultMethod),
    /// A registration call for this phone, approved (`#`) through `transition.lua`.
    Register(PhoneType),
}

fn switches() -> impl Strategy<Value = Switches> {
    // Mostly on, so that most options count and the order among them decides.
    let on = || prop_oneof![4 => Just(true), 1 => Just(false)];
    (on(), on(), on(), on(), on(), on()).prop_map(
        |(phone, office, authenticator_app, security_key, email, security_questions)| Switches {
            phone,
            office,
            authenticator_app,
            security_key,
            email,
            security_questions,
        },
    )
}

fn op() -> impl Strategy<Value = Op> {
    let kind = select(vec![
        MethodKind::AuthenticatorApp,
        MethodKind::SecurityKey,
        MethodKind::Email,
        MethodKind::SecurityQuestions,
    ]);
    let phone = || {
        select(vec![
            PhoneType::Mobile,
            PhoneType::AlternateMobile,
            PhoneType::Office,
        ])
    };
    prop_oneof![
        4 => kind.prop_map(Op::Add),
        2 => (0usize..8).prop_map(Op::Delete),
        1 => phone().prop_map(Op::DeletePhone),
        2 => select(DefaultMethod::ALL.to_vec()).prop_map(Op::SetDefault),
        3 => phone().prop_map(Op::Register),
    ]
}

/// A new method of `kind` (security keys each with their own credential).
fn details(kind: MethodKind, n: usize) -> MethodDetails {
    match kind {
        MethodKind::AuthenticatorApp => MethodDetails::AuthenticatorApp {
            display_name: format!("app {n}"),
            device: None,
        },
        MethodKind::SecurityKey => MethodDetails::SecurityKey {
            display_name: format!("key {n}"),
            credential_id: format!("credential{n:08}"),
        },
        MethodKind::Email => MethodDetails::Email {
            address: format!("user{n}@example.com"),
        },
        MethodKind::SecurityQuestions => MethodDetails::SecurityQuestions { answered_count: 3 },
        MethodKind::Phone => unreachable!("phones come from a registration call"),
    }
}

/// What the script reported about the default must be what it stored.
fn reported(change: DefaultChange, before: &MethodsDocument, after: &MethodsDocument) -> bool {
    change.default == after.default_method
        && change.previous == before.default_method
        && change.changed == (after.default_method != before.default_method)
}

/// Applies `op` through the real store operation and returns the default the Rust rule says
/// Redis must now hold.
async fn apply(
    store: &Store,
    user: &UserId,
    policy: &Policy,
    op: Op,
    n: usize,
) -> Result<Option<DefaultMethod>, TestCaseError> {
    let tenant = TenantId::parse(TENANT).unwrap();
    let tag = user_tag(&tenant, user);
    let enabled = policy.enabled_options();
    let before = store.methods(&tag).await.unwrap();
    let unchanged = Ok(before.default_method);
    // After a change of methods: the stored default if it still counts, else the best option.
    let by_rule = |after: &MethodsDocument| {
        effective_default(before.default_method, &enabled, &after.methods)
    };
    match op {
        Op::Add(kind) => {
            if !policy.kind_enabled(kind) {
                return unchanged; // the API refuses it before the store
            }
            let outcome = store
                .add_method(&tag, &MethodId::generate(), &details(kind, n), &enabled)
                .await
                .unwrap();
            let AddOutcome::Added { default, .. } = outcome else {
                return unchanged; // over the limit, or a second e-mail: nothing written
            };
            let after = store.methods(&tag).await.unwrap();
            prop_assert!(reported(default, &before, &after), "{default:?}");
            Ok(by_rule(&after))
        }
        Op::Delete(_) | Op::DeletePhone(_) => {
            let id = match op {
                Op::DeletePhone(t) => before.phone(t).map(|(m, _)| &m.id),
                Op::Delete(i) if !before.methods.is_empty() => {
                    Some(&before.methods[i % before.methods.len()].id)
                }
                _ => None,
            };
            let Some(id) = id else {
                return unchanged;
            };
            let outcome = store
                .delete_method(&tag, &MethodId::parse(id).unwrap(), &enabled)
                .await
                .unwrap();
            let DeleteOutcome::Deleted { default, .. } = outcome else {
                return unchanged; // the mobile while an alternate mobile exists
            };
            let after = store.methods(&tag).await.unwrap();
            prop_assert!(reported(default, &before, &after), "{default:?}");
            Ok(by_rule(&after))
        }
        Op::SetDefault(option) => {
            let outcome = store.set_default(&tag, option, &enabled).await.unwrap();
            let expected = if !enabled.contains(&option) {
                SetDefaultOutcome::Disabled
            } else if !option.is_backed_by(&before.methods) {
                SetDefaultOutcome::NotBacked
            } else {
                let changed = before.default_method != Some(option);
                SetDefaultOutcome::Set(DefaultChange {
                    default: Some(option),
                    previous: before.default_method,
                    changed,
                })
            };
            prop_assert_eq!(&outcome, &expected);
            match outcome {
                SetDefaultOutcome::Set(_) => Ok(Some(option)),
                _ => unchanged,
            }
        }
        Op::Register(phone_type) => {
            if !policy.phone_allowed(phone_type) {
                return unchanged; // the start refuses it (`policy::check_call`)
            }
            let id = VerificationId::generate(&tenant, user);
            let new = NewVerification {
                id: &id,
                tenant: TENANT,
                user: user.as_str(),
                purpose: Purpose::Registration,
                phone_e164: "+31612345678",
                phone_type: phone_type.as_str(),
                method_id: phone_type.method_id(),
                locale: "en-US",
                provider: ACCOUNT,
                counted: "",
                ttl_secs: 600,
                retain_secs: 60,
                fraud_block_secs: 0,
                default_options: &enabled,
            };
            let created = store.create_verification(&new).await.unwrap();
            prop_assert!(matches!(created, Created::Stored(..)), "{:?}", created);
            let hash = Event::Gather {
                digits: "#",
                step: GatherStep::Prompt,
                max_prompts: 3,
                prompt: None,
            };
            let t = store
                .transition_from(&id, ACCOUNT, "CA-registration", hash)
                .await
                .unwrap();
            prop_assert_eq!(t.outcome, Outcome::Approved);
            let after = store.methods(&tag).await.unwrap();
            prop_assert!(after.phone(phone_type).is_some(), "{:?}", after);
            Ok(by_rule(&after))
        }
    }
}

/// Runs `steps` for a fresh user; after each, Redis' default must be the Rust rule's.
async fn agree(store: &Store, user: &str, steps: &[(Switches, Op)]) -> Result<(), TestCaseError> {
    let user = UserId::parse(user).unwrap();
    let tag = user_tag(&TenantId::parse(TENANT).unwrap(), &user);
    for (n, &(switches, op)) in steps.iter().enumerate() {
        let policy = switches.policy();
        let expected = apply(store, &user, &policy, op, n).await?;
        let stored = store.methods(&tag).await.unwrap();
        prop_assert_eq!(
            stored.default_method,
            expected,
            "step {} ({:?} under {:?}) of {:?}; methods {:?}",
            n,
            op,
            switches,
            steps,
            stored.methods
        );
    }
    Ok(())
}

#[test]
fn redis_keeps_the_default_the_rust_rule_computes() {
    let (rt, store) = runtime_and_store();
    let cases = AtomicUsize::new(0);
    let mut runner = runner(128);
    let steps = proptest::collection::vec((switches(), op()), 1..=14);
    runner
        .run(&steps, |steps| {
            let user = format!("dr{}", cases.fetch_add(1, Ordering::Relaxed));
            rt.block_on(agree(&store, &user, &steps))
        })
        .unwrap();
}

/// The cases the random runs may miss, each once: the order decides among several counting
/// options, and a registration keeps the policy's view of the default.
#[test]
fn each_default_rule_holds_in_redis() {
    use MethodKind::{AuthenticatorApp, SecurityKey};
    let all_on = Switches {
        phone: true,
        office: true,
        authenticator_app: true,
        security_key: true,
        email: true,
        security_questions: true,
    };
    let no_keys = Switches {
        security_key: false,
        ..all_on
    };
    let paths: Vec<Vec<(Switches, Op)>> = vec![
        // The first phone is the default; a security key added later does not take it.
        vec![
            (all_on, Op::Register(PhoneType::Office)),
            (all_on, Op::Add(SecurityKey)),
        ],
        // Deleting the default moves it to the best remaining option: the security key
        // (preferred) over the authenticator app and the phones.
        vec![
            (all_on, Op::Register(PhoneType::Mobile)),
            (all_on, Op::Add(AuthenticatorApp)),
            (all_on, Op::Add(SecurityKey)),
            (all_on, Op::SetDefault(DefaultMethod::Sms)),
            (all_on, Op::DeletePhone(PhoneType::Mobile)), // sms goes with it
        ],
        // A default the policy switched off is replaced at the next change, a registration
        // included: by the best enabled option, not by the new phone.
        vec![
            (all_on, Op::Add(SecurityKey)),
            (all_on, Op::Add(AuthenticatorApp)),
            (no_keys, Op::Register(PhoneType::AlternateMobile)),
        ],
        // E-mail and security questions never become the default.
        vec![
            (all_on, Op::Add(MethodKind::Email)),
            (all_on, Op::Add(MethodKind::SecurityQuestions)),
        ],
    ];
    let (rt, store) = runtime_and_store();
    for (n, steps) in paths.iter().enumerate() {
        rt.block_on(agree(&store, &format!("rule{n}"), steps))
            .unwrap_or_else(|e| panic!("path {n}: {e}"));
    }
    // The paths end where the rules say, read back through the same rule the API uses.
    let tenant = TenantId::parse(TENANT).unwrap();
    let default_of = |n: usize| {
        let tag = user_tag(&tenant, &UserId::parse(&format!("rule{n}")).unwrap());
        rt.block_on(store.methods(&tag)).unwrap().default_method
    };
    assert_eq!(default_of(0), Some(DefaultMethod::VoiceOffice));
    assert_eq!(default_of(1), Some(DefaultMethod::SecurityKey));
    assert_eq!(default_of(2), Some(DefaultMethod::AuthenticatorPush));
    assert_eq!(default_of(3), None);
}
