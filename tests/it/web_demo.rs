//! `callverify demo --web` over real HTTP, without a browser: the portal back-end (which calls
//! callverify's API with the tenant key) and the simulator's interactive callee behind the
//! page's virtual phone. The browser test (tests/browser/) drives the same routes from the page.

use std::time::{Duration, Instant};

use callverify::config::Config;
use figment::Figment;
use figment::providers::{Format, Toml};
use serde_json::{Value, json};
use tokio::net::TcpListener;

struct Demo {
    base: String,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
}

impl Demo {
    async fn start() -> Self {
        let overlay = format!(
            "[redis]\nurl = \"{}\"\nprefix = \"{}\"\n",
            crate::support::redis_url(),
            crate::support::unique_prefix()
        );
        let figment = Figment::from(Toml::string(callverify::config::DEFAULT_TOML))
            .merge(Toml::string(&overlay));
        let config = Config::from_figment(figment).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            callverify::demo::web::run(listener, config, shutdown)
                .await
                .unwrap();
        });
        Self {
            base,
            http: reqwest::Client::new(),
            stop: Some(stop),
            served: Some(served),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        self.send(self.http.post(url).json(&body)).await
    }

    async fn page(&self, path: &str) -> String {
        let url = format!("{}{path}", self.base);
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn call_me(&self, number: &str) -> (u16, Value) {
        let body = json!({"country": "US", "number": number, "lang": "en"});
        self.post("/api/calls", body).await
    }

    /// Long-polls the virtual phone until `done` holds.
    async fn phone_until(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let mut version = String::new();
        for _ in 0..50 {
            let (code, view) = self.get(&format!("/phone/{id}?since={version}")).await;
            assert_eq!(code, 200, "{view}");
            if done(&view) {
                return view;
            }
            version = view["version"].as_str().unwrap().to_owned();
        }
        panic!("the phone never showed what we waited for");
    }

    /// Long-polls the call's status as the page does, until it is final.
    async fn final_status(&self, id: &str) -> Value {
        let mut known = String::new();
        for _ in 0..50 {
            let (code, view) = self.get(&format!("/api/calls/{id}?known={known}")).await;
            assert_eq!(code, 200, "{view}");
            known = view["status"].as_str().unwrap().to_owned();
            if !matches!(known.as_str(), "calling" | "ringing" | "answered") {
                return view;
            }
        }
        panic!("the call never ended");
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.served.take().unwrap().await.unwrap();
    }
}

fn speaking(view: &Value) -> bool {
    view["speaking"]["text"].is_string()
}

#[tokio::test]
async fn the_web_demo_registers_a_phone_by_a_key_pressed_on_the_virtual_phone() {
    let demo = Demo::start().await;
    assert!(demo.page("/").await.contains("<h1>Security info</h1>"));
    assert!(
        demo.page("/?lang=nl")
            .await
            .contains("<h1>Beveiligingsgegevens</h1>")
    );
    let (_, listed) = demo.get("/api/methods").await;
    assert_eq!(listed["methods"], json!([]));

    let (code, started) = demo.call_me("425 555 1234").await;
    assert_eq!(code, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    let view = demo.phone_until(&id, speaking).await;
    assert!(
        view["speaking"]["text"]
            .as_str()
            .unwrap()
            .contains("press the pound key")
    );
    let (code, _) = demo
        .post(&format!("/phone/{id}/keys"), json!({"key": "#"}))
        .await;
    assert_eq!(code, 204);
    let pressed = Instant::now();
    let done = demo.final_status(&id).await;
    assert_eq!(done["status"], "approved", "{done}");
    assert!(
        pressed.elapsed() < Duration::from_secs(1),
        "the long-poll answers within a second of the key: {:?}",
        pressed.elapsed()
    );

    let (_, listed) = demo.get("/api/methods").await;
    assert_eq!(listed["default_method"], "voice_mobile");
    let phone = &listed["methods"][0];
    assert_eq!(phone["kind"], "phone");
    assert_eq!(phone["detail"], "+1********34", "masked by the portal");
    assert_eq!(listed["options"], json!(["voice_mobile", "sms"]));

    // A refused change passes callverify's problem through to the page.
    let url = format!("{}/api/default-method", demo.base);
    let (code, problem) = demo
        .send(demo.http.put(url).json(&json!({"default_method": "email"})))
        .await;
    assert_eq!(code, 422);
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("/invalid-default-method")
    );
    assert!(problem["detail"].is_string());

    let url = format!(
        "{}/api/methods/{}",
        demo.base,
        phone["id"].as_str().unwrap()
    );
    let (code, _) = demo.send(demo.http.delete(url)).await;
    assert_eq!(code, 204);
    let (_, listed) = demo.get("/api/methods").await;
    assert_eq!(listed["methods"], json!([]));
    assert_eq!(listed["default_method"], Value::Null);

    let view = demo.phone_until(&id, |v| v["status"] == "completed").await;
    assert_eq!(view["pressed"], json!(["#"]));
    let (code, _) = demo
        .post(&format!("/phone/{id}/keys"), json!({"key": "1"}))
        .await;
    assert_eq!(code, 409, "that call is over");
    demo.stop().await;
}

#[tokio::test]
async fn the_web_demo_reports_fraud_blocks_the_user_and_explains_refusals() {
    let demo = Demo::start().await;
    let (code, problem) = demo.call_me("12").await;
    assert_eq!(code, 422, "{problem}");
    assert!(problem["detail"].is_string(), "{problem}");

    let (code, started) = demo.call_me("425 555 1236").await;
    assert_eq!(code, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    demo.phone_until(&id, speaking).await;
    for key in ["0", "#"] {
        let (code, _) = demo
            .post(&format!("/phone/{id}/keys"), json!({"key": key}))
            .await;
        assert_eq!(code, 204);
    }
    let done = demo.final_status(&id).await;
    assert_eq!(done["status"], "fraud_reported", "{done}");
    let view = demo.phone_until(&id, |v| v["status"] == "completed").await;
    assert_eq!(view["pressed"], json!(["0", "#"]));

    let (code, problem) = demo.call_me("425 555 1237").await;
    assert_eq!(code, 423, "{problem}");
    assert!(problem["type"].as_str().unwrap().ends_with("/user-blocked"));
    let url = format!("{}/api/block", demo.base);
    let (code, _) = demo.send(demo.http.delete(url)).await;
    assert_eq!(code, 204, "the demo's admin key lifts the block");

    // Hanging up the virtual phone while it rings declines the call.
    let (code, started) = demo.call_me("425 555 1237").await;
    assert_eq!(code, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    demo.phone_until(&id, |v| v["status"] == "ringing").await;
    let (code, _) = demo
        .post(&format!("/phone/{id}/hang-up"), json!(null))
        .await;
    assert_eq!(code, 204);
    let done = demo.final_status(&id).await;
    assert_eq!(
        (&done["status"], &done["reason"]),
        (&json!("failed"), &json!("busy"))
    );
    demo.stop().await;
}

#[tokio::test]
async fn the_web_demo_plays_entra_posts_to_callverify_and_receives_the_answer() {
    use crate::external_mfa::entra::{Page, field};
    let demo = Demo::start().await;
    let (code, started) = demo.call_me("425 555 1240").await;
    assert_eq!(code, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    demo.phone_until(&id, speaking).await;
    demo.post(&format!("/phone/{id}/keys"), json!({"key": "#"}))
        .await;
    assert_eq!(demo.final_status(&id).await["status"], "approved");

    // The fake Entra's start page: an auto-posting form to callverify's authorize endpoint.
    let start = Page::of(
        demo.http
            .get(format!("{}/entra/start", demo.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let action = start.attribute("id=\"authorize\"", "action").unwrap();
    assert!(action.ends_with("/external-mfa/demo/authorize"), "{action}");
    let (_, fields) = {
        let body = start.body.replace("id=\"authorize\"", "id=\"post-back\"");
        Page { body, ..start }.post_back().unwrap()
    };
    let callverify = action
        .trim_end_matches("/external-mfa/demo/authorize")
        .to_owned();
    let form = |url: &str, fields: &[(String, String)]| {
        demo.http
            .post(url.to_owned())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(crate::external_mfa::entra::encode(fields))
            .send()
    };
    let calling = Page::of(form(&action, &fields).await.unwrap()).await;
    assert!(calling.body.contains("re calling +1"), "{}", calling.body);

    // Cancel on callverify's page: the demo's stand-in for Entra's redirect URI gets
    // access_denied and the state. (The browser test presses # on the virtual phone instead.)
    let cancel = calling.attribute("id=\"cancel\"", "action").unwrap();
    let back = Page::of(form(&format!("{callverify}{cancel}"), &[]).await.unwrap()).await;
    let (redirect, fields) = back.post_back().unwrap();
    assert_eq!(
        redirect,
        format!("{}/entra/federation/externalauthprovider", demo.base)
    );
    assert_eq!(field(&fields, "error"), Some("access_denied"));
    assert_eq!(field(&fields, "state"), Some("demo-state"));
    let result = Page::of(form(&redirect, &fields).await.unwrap()).await;
    assert!(
        result.body.contains("<h1>Sign-in refused</h1>"),
        "{}",
        result.body
    );
    demo.stop().await;
}
