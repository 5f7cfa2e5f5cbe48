//! Readiness: `/readyz` answers 200 once Redis answers (on a cluster: once every slot has a live
//! master, `cluster_state:ok`) and 503 with the cause until then, and
//! `callverify serving` is logged the first time Redis answers. The server starts serving
//! without waiting for Redis (the store connects lazily), so an orchestrator that starts Redis
//! and callverify together sees `/healthz` up at once and `/readyz` turn ready by itself.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use crate::state::AppState;
use crate::store::Store;

/// How long `/readyz` waits for Redis' `PING`.
const PING_DEADLINE: Duration = Duration::from_secs(1);

/// `GET /readyz`: `ready`, or 503 with why Redis is not usable (never the password).
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match ping(&state.store, &state.config.redis.urls()).await {
        Ok(()) => (StatusCode::OK, "ready".to_owned()),
        Err(cause) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("redis unavailable: {cause}"),
        ),
    }
}

/// Waits until Redis answers, logging why not when that changes, then logs `callverify serving`.
pub async fn announce_when_ready(store: Store, redis_urls: Vec<String>, listen: SocketAddr) {
    let mut last_cause = String::new();
    loop {
        match ping(&store, &redis_urls).await {
            Ok(()) => {
                tracing::info!(listen = %listen, "callverify serving");
                return;
            }
            Err(cause) if cause != last_cause => {
                tracing::warn!(%cause, "waiting for Redis; /readyz answers 503 meanwhile");
                last_cause = cause;
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `PING` within [`PING_DEADLINE`]; the error as a sentence without the URL's password.
async fn ping(store: &Store, redis_urls: &[String]) -> Result<(), String> {
    let cause = match tokio::time::timeout(PING_DEADLINE, store.ping()).await {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) if e.kind() == redis::ErrorKind::AuthenticationFailed => {
            "authentication failed: check the user and password in redis.url".to_owned()
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {} ms", PING_DEADLINE.as_millis()),
    };
    Err(redis_urls
        .iter()
        .fold(cause, |cause, url| scrub(cause, url)))
}

/// Removes the URL's password (and user) from `text`, should an error ever quote them.
fn scrub(mut text: String, redis_url: &str) -> String {
    if let Ok(url) = url::Url::parse(redis_url) {
        for secret in [url.password().unwrap_or(""), url.username()] {
            if secret.len() >= 3 {
                text = text.replace(secret, "***");
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_never_carry_the_password() {
        let url = "redis://app:s3cr3t-pw@redis.internal:6379/0";
        assert_eq!(
            scrub("AUTH app s3cr3t-pw refused".into(), url),
            "AUTH *** *** refused"
        );
        assert_eq!(
            scrub("Connection refused".into(), url),
            "Connection refused"
        );
        assert_eq!(scrub("x".into(), "not a url"), "x");
    }
}
