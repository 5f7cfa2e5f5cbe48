//! The simulator's interactive callee: a virtual phone whose keys come from the test (as the web
//! demo's keypad sends a person's), over real signed HTTP to a tiny IVR application.

#[path = "support/ivr_app.rs"]
#[allow(dead_code)]
mod ivr_app;

use std::time::Duration;

use callverify_simulator::{CallStatus, Entry, HangupCause, PhoneError, PhoneView, VirtualPhone};
use ivr_app::{Harness, digits};

const NUMBER: &str = "+31612345678";

/// Slow enough that a test acting on what the phone shows is not outrun by the call.
const TIME_SCALE: f64 = 0.05;

/// Waits (long-poll, no sleeping loop) until the phone shows what `done` looks for.
async fn until(phone: &VirtualPhone, done: impl Fn(&PhoneView) -> bool) -> PhoneView {
    let mut view = phone.view();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done(&view) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "phone stuck at {view:?}"
        );
        view = phone
            .wait_for_change(&view.version, Duration::from_secs(5))
            .await;
    }
    view
}

fn status_is(status: CallStatus) -> impl Fn(&PhoneView) -> bool {
    move |v| v.status == Some(status)
}

#[tokio::test]
async fn a_person_presses_pound_while_the_prompt_is_spoken() {
    let h = Harness::start_with_time_scale(TIME_SCALE).await;
    let phone = h.sim.virtual_phone(NUMBER);
    assert_eq!(phone.press('#'), Err(PhoneError::NoCall), "no call yet");

    let created = h.place(NUMBER, "/ivr/voice", &[]).await;
    let speaking = until(&phone, |v| v.speaking.is_some()).await;
    assert!(
        speaking
            .speaking
            .unwrap()
            .text
            .contains("press the pound key"),
        "the handset shows the prompt while it is spoken"
    );
    phone.press('#').unwrap();

    let t = h.finished(&created).await;
    assert_eq!(t.status, CallStatus::Completed);
    assert_eq!(digits(&t), vec!["#"]);
    assert_eq!(t.pressed(), vec!["#"]);
    assert!(
        t.entries.iter().any(|e| matches!(
            e,
            Entry::Said { interrupted: true, text, .. } if text.contains("pound key")
        )),
        "the key barged in"
    );
    let view = until(&phone, status_is(CallStatus::Completed)).await;
    assert_eq!(
        view.said.last().unwrap().text,
        "Thank you, you are verified."
    );
    assert_eq!(view.pressed, vec!["#"]);
    assert_eq!(
        phone.press('1'),
        Err(PhoneError::NoCall),
        "the call is over"
    );
}

#[tokio::test]
async fn zero_then_pound_in_quick_succession_reaches_the_fraud_step() {
    let h = Harness::start_with_time_scale(TIME_SCALE).await;
    let phone = h.sim.virtual_phone(NUMBER);
    let created = h.place(NUMBER, "/ivr/voice", &[]).await;
    until(&phone, status_is(CallStatus::InProgress)).await;
    // Pressed before the first gather starts: the keys wait for it, then one per gather.
    phone.press('0').unwrap();
    phone.press('#').unwrap();
    let t = h.finished(&created).await;
    assert_eq!(digits(&t), vec!["0", "#"]);
    assert_eq!(t.said().last(), Some(&"Fraud reported."));
    assert_eq!(phone.press('x'), Err(PhoneError::NotAKey('x')));
}

#[tokio::test]
async fn hanging_up_a_ringing_phone_declines_and_an_answered_one_ends_the_call() {
    let h = Harness::start_with_time_scale(TIME_SCALE).await;
    let phone = h.sim.virtual_phone(NUMBER);
    let created = h.place(NUMBER, "/ivr/voice", &[]).await;
    until(&phone, status_is(CallStatus::Ringing)).await;
    phone.hang_up().unwrap();
    let t = h.finished(&created).await;
    assert_eq!(t.status, CallStatus::Busy, "declined");

    let created = h.place(NUMBER, "/ivr/voice", &[]).await;
    until(&phone, |v| v.speaking.is_some()).await;
    phone.hang_up().unwrap();
    let t = h.finished(&created).await;
    assert_eq!(t.status, CallStatus::Completed);
    assert!(digits(&t).is_empty(), "no gather action after a hang-up");
    assert!(t.entries.contains(&Entry::HungUp {
        cause: HangupCause::Callee
    }));
}

#[tokio::test]
async fn a_phone_in_a_call_is_busy_for_a_second_one_and_silence_times_out() {
    let h = Harness::start_with_time_scale(TIME_SCALE).await;
    let phone = h.sim.virtual_phone(NUMBER);
    let first = h.place(NUMBER, "/ivr/voice", &[]).await;
    until(&phone, status_is(CallStatus::InProgress)).await;
    let second = h.place(NUMBER, "/ivr/voice", &[]).await;
    assert_eq!(h.finished(&second).await.status, CallStatus::Busy);

    // Nobody presses anything: the gather times out and the IVR says goodbye.
    let t = h.finished(&first).await;
    assert_eq!(digits(&t), vec![""]);
    assert!(t.entries.contains(&Entry::Silence));
    assert_eq!(
        t.said().last(),
        Some(&"We did not get your answer. Goodbye.")
    );
}
