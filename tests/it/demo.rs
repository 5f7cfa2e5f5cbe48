//! `callverify demo` run as a process, the way the README tells a newcomer to run it.

use std::process::Command;

fn demo(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_callverify"))
        .arg("demo")
        .args(args)
        .envs(crate::support::redis_env())
        .env_remove("CALLVERIFY_CONFIG")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8(output.stdout).unwrap();
    (output.status.success(), stdout)
}

#[test]
fn the_demo_registers_the_reference_number_and_says_so_last() {
    let (ok, out) = demo(&[]);
    assert!(ok, "{out}");
    assert_eq!(
        out.trim_end().lines().last(),
        Some("verification approved"),
        "{out}"
    );
    assert!(
        out.contains("+1 4255551234X12345"),
        "the number as the user typed it"
    );
    assert!(out.contains("press the pound key"), "the prompt is printed");
    assert!(out.contains("⌨ pressed #"));
    assert!(out.contains("\"default_method\": \"voice_mobile\""));
    assert!(
        out.contains("\"phone_number\": \"+14255551234\""),
        "extension removed"
    );
}

#[test]
fn the_demo_shows_failures_and_dutch_prompts() {
    let (ok, out) = demo(&["--scenario", "busy"]);
    assert!(ok, "{out}");
    assert_eq!(
        out.trim_end().lines().last(),
        Some("verification failed (busy)")
    );
    assert!(out.contains("\"methods\": []"));

    let (ok, out) = demo(&["--scenario", "fraud", "--locale", "nl-NL"]);
    assert!(ok, "{out}");
    assert!(out.contains("[nl-NL]") && out.contains("hekje"), "{out}");
    assert_eq!(
        out.trim_end().lines().last(),
        Some("verification fraud_reported")
    );
}

#[test]
fn an_unknown_scenario_is_refused() {
    let (ok, _) = demo(&["--scenario", "teleport"]);
    assert!(!ok);
}

#[tokio::test]
async fn the_standalone_simulator_serves_the_calls_api() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_callverify"))
        .args(["simulator", "--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--account-sid",
            "AC11111111111111111111111111111111",
            "--auth-token",
            "tok",
        ])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!(
        "http://127.0.0.1:{port}/2010-04-01/Accounts/AC11111111111111111111111111111111/Calls.json"
    );
    let http = reqwest::Client::new();
    let mut answer = None;
    for _ in 0..100 {
        let sent = http
            .post(&url)
            .basic_auth("AC11111111111111111111111111111111", Some("wrong"))
            .form(&[("To", "+14255551234")])
            .send()
            .await;
        if let Ok(r) = sent {
            answer = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let r = answer.expect("the simulator listens");
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], 20003);
    let r = http
        .post(&url)
        .basic_auth("AC11111111111111111111111111111111", Some("tok"))
        .form(&[("From", "+15005550006")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "no To");
    child.kill().await.unwrap();
}

#[test]
fn the_demo_plays_every_providers_dialect_and_a_failover() {
    for provider in ["signalwire", "telnyx", "plivo"] {
        let (ok, out) = demo(&["--provider", provider]);
        assert!(ok, "{provider}: {out}");
        assert!(
            out.contains(&format!("\"provider\":\"{provider}\"")),
            "{out}"
        );
        assert!(out.contains("⌨ pressed #"), "{provider}");
    }
    let (ok, out) = demo(&["--provider", "telnyx", "--scenario", "failover"]);
    assert!(ok, "{out}");
    assert!(out.contains("\"provider\":\"backup\""), "{out}");
    assert_eq!(out.trim_end().lines().last(), Some("verification approved"));
}

#[test]
fn the_demo_shows_the_races_of_a_real_network() {
    let (ok, out) = demo(&["--scenario", "hash-then-hangup"]);
    assert!(ok, "{out}");
    assert_eq!(out.trim_end().lines().last(), Some("verification approved"));

    let (ok, out) = demo(&["--scenario", "voicemail"]);
    assert!(ok, "{out}");
    assert!(
        !out.contains("press the pound key"),
        "nothing read out: {out}"
    );
    assert_eq!(
        out.trim_end().lines().last(),
        Some("verification failed (voicemail)")
    );
    // Machine detection in another dialect (Telnyx reports AnsweredBy, Plivo Machine=true).
    for provider in ["telnyx", "plivo"] {
        let (ok, out) = demo(&["--provider", provider, "--scenario", "voicemail"]);
        assert!(ok, "{provider}: {out}");
        assert_eq!(
            out.trim_end().lines().last(),
            Some("verification failed (voicemail)"),
            "{provider}"
        );
    }
}
