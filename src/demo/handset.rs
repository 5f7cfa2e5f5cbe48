//! The virtual phone in the demo page: the simulator's interactive callee for each call the
//! portal placed, reachable from the browser. Not part of a portal: with a real provider the
//! person holds a real phone, and these routes do not exist.
//!
//! `GET /phone/{verification}?since=VERSION` (long-poll: what the handset shows, as soon as it
//! changes), `POST /phone/{verification}/keys` `{"key": "#"}`, `POST /phone/{verification}/hang-up`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use callverify_simulator::{PhoneError, SimulatorHandle, VirtualPhone};
use serde::Deserialize;
use serde_json::json;

/// How long a handset long-poll waits for a change.
const PHONE_WAIT: Duration = Duration::from_secs(25);

/// The virtual phones of the calls the demo portal placed, by verification id.
#[derive(Clone)]
pub struct Handsets {
    simulator: Arc<SimulatorHandle>,
    by_verification: Arc<Mutex<HashMap<String, VirtualPhone>>>,
}

impl Handsets {
    pub fn new(simulator: Arc<SimulatorHandle>) -> Self {
        Self {
            simulator,
            by_verification: Arc::default(),
        }
    }

    /// Before a call to `e164` is placed: a person will answer it in the browser.
    pub fn hand_out(&self, e164: &str) -> VirtualPhone {
        self.simulator.virtual_phone(e164)
    }

    /// The call for `verification` rings `phone`.
    pub fn remember(&self, verification: &str, phone: VirtualPhone) {
        let mut map = self
            .by_verification
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.insert(verification.to_owned(), phone);
    }

    fn phone(&self, verification: &str) -> Option<VirtualPhone> {
        let map = self
            .by_verification
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.get(verification).cloned()
    }
}

pub fn router(handsets: Handsets) -> Router {
    Router::new()
        .route("/phone/{verification}", get(view))
        .route("/phone/{verification}/keys", post(press))
        .route("/phone/{verification}/hang-up", post(hang_up))
        .with_state(handsets)
}

#[derive(Deserialize)]
struct Since {
    #[serde(default)]
    since: String,
}

fn no_phone() -> Response {
    let body = json!({"title": "No such call", "detail": "no call of this page has that id"});
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

fn refused(error: PhoneError) -> Response {
    let body = json!({"title": "The phone did not take that", "detail": error.to_string()});
    (StatusCode::CONFLICT, Json(body)).into_response()
}

async fn view(
    State(handsets): State<Handsets>,
    Path(verification): Path<String>,
    Query(since): Query<Since>,
) -> Response {
    let Some(phone) = handsets.phone(&verification) else {
        return no_phone();
    };
    Json(phone.wait_for_change(&since.since, PHONE_WAIT).await).into_response()
}

#[derive(Deserialize)]
struct Key {
    key: String,
}

async fn press(
    State(handsets): State<Handsets>,
    Path(verification): Path<String>,
    Json(key): Json<Key>,
) -> Response {
    let Some(phone) = handsets.phone(&verification) else {
        return no_phone();
    };
    let mut chars = key.key.chars();
    let (Some(key), None) = (chars.next(), chars.next()) else {
        return refused(PhoneError::NotAKey(' '));
    };
    match phone.press(key) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refused(e),
    }
}

async fn hang_up(State(handsets): State<Handsets>, Path(verification): Path<String>) -> Response {
    let Some(phone) = handsets.phone(&verification) else {
        return no_phone();
    };
    match phone.hang_up() {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refused(e),
    }
}
