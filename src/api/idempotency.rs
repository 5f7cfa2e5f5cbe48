//! `Idempotency-Key` on the POSTs that create something (a verification, a method): the same key
//! with the same body answers the same result — the same id — for 24 h, and never runs twice.
//!
//! The record lives in Redis under the user's hash tag, named by a hash of the operation and the
//! key (never the key itself, which a caller may fill with anything). A request first claims it
//! (`SET NX`, pending); the claim's owner runs the operation in a task of its own (a caller that
//! hangs up does not leave the claim pending) and stores the answer. A concurrent request with
//! the same key waits for that answer; one with another body is a 422 `idempotency-key-reused`.
//! A failed operation (any problem answer) gives the claim up, so a retry runs it again.

use std::future::Future;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::store::Store;

pub const HEADER: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on an answer repeated from the record.
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;
/// How long an answer is kept.
pub const KEEP: Duration = Duration::from_secs(24 * 3600);

/// A request's idempotency: its key (hashed with the operation) and its body's fingerprint.
#[derive(Debug, Clone)]
pub struct Idempotency {
    key_hash: String,
    fingerprint: String,
}

/// What the record holds: the body's fingerprint, and the answer once there is one.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    fingerprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<serde_json::Value>,
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
        hasher.update([0x1f]);
    }
    hex::encode(hasher.finalize())
}

/// The request's `Idempotency-Key` for `operation`, if it sent one: 1-255 visible ASCII
/// characters (spaces inside allowed), once. `body` is the parsed request body.
pub fn from_request(
    headers: &HeaderMap,
    operation: &str,
    body: &serde_json::Value,
) -> Result<Option<Idempotency>, ApiError> {
    let mut values = headers.get_all(&HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let bad = || {
        ApiError::InvalidRequest(format!(
            "Idempotency-Key must be sent once, as 1-{MAX_KEY_LEN} visible ASCII characters"
        ))
    };
    let key = value.as_bytes();
    let visible = key.iter().all(|b| (0x20..0x7f).contains(b));
    if values.next().is_some()
        || key.is_empty()
        || key.len() > MAX_KEY_LEN
        || !visible
        || key.first() == Some(&b' ')
        || key.last() == Some(&b' ')
    {
        return Err(bad());
    }
    Ok(Some(Idempotency {
        key_hash: sha256_hex(&[operation.as_bytes(), key])[..32].to_owned(),
        // serde_json's maps are sorted: equal bodies give equal text, whatever the key order.
        fingerprint: sha256_hex(&[body.to_string().as_bytes()]),
    }))
}

fn answer(status: u16, body: serde_json::Value, replayed: bool) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = (status, axum::Json(body)).into_response();
    if replayed {
        response
            .headers_mut()
            .insert(REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

fn decode(record: &str) -> Result<Record, ApiError> {
    serde_json::from_str(record)
        .map_err(|e| ApiError::Internal(format!("unreadable idempotency record: {e}")))
}

/// Runs `operation` once per key (see the module doc); without a key, simply runs it.
/// `lock` bounds how long a claim stays pending if its instance dies while running it.
pub async fn once<F>(
    store: &Store,
    user_tag: &str,
    idempotency: Option<Idempotency>,
    lock: Duration,
    operation: F,
) -> Result<Response, ApiError>
where
    F: Future<Output = Result<(StatusCode, serde_json::Value), ApiError>> + Send + 'static,
{
    let Some(idem) = idempotency else {
        let (status, body) = operation.await?;
        return Ok(answer(status.as_u16(), body, false));
    };
    let owner = hex::encode(rand::rng().random::<[u8; 16]>());
    let pending = serde_json::to_string(&Record {
        fingerprint: idem.fingerprint.clone(),
        owner: Some(owner),
        status: None,
        body: None,
    })
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let lock_ms = lock.as_millis() as u64;
    let reused = || {
        ApiError::IdempotencyKeyReused(
            "this Idempotency-Key was used with another request body".into(),
        )
    };
    // Claim the record, or follow the request that holds it until it answers.
    let mut pause = Duration::from_millis(10);
    let mut existing = store
        .idempotency_claim(user_tag, &idem.key_hash, &pending, lock_ms)
        .await?;
    while let Some(record) = existing {
        let record = decode(&record)?;
        if record.fingerprint != idem.fingerprint {
            return Err(reused());
        }
        if let (Some(status), Some(body)) = (record.status, record.body) {
            return Ok(answer(status, body, true));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
        existing = match store.idempotency_read(user_tag, &idem.key_hash).await? {
            Some(record) => Some(record),
            // Its holder failed and gave it up: claim it.
            None => {
                store
                    .idempotency_claim(user_tag, &idem.key_hash, &pending, lock_ms)
                    .await?
            }
        };
    }
    // Ours: run it to the end even if this caller hangs up.
    let (store, tag) = (store.clone(), user_tag.to_owned());
    let task = tokio::spawn(async move {
        let result = operation.await;
        match &result {
            Ok((status, body)) => {
                let done = Record {
                    fingerprint: idem.fingerprint.clone(),
                    owner: None,
                    status: Some(status.as_u16()),
                    body: Some(body.clone()),
                };
                let done = serde_json::to_string(&done).unwrap_or_default();
                let keep = KEEP.as_millis() as u64;
                if let Err(e) = store
                    .idempotency_store(&tag, &idem.key_hash, &done, keep)
                    .await
                {
                    tracing::warn!(error = %e, "idempotent answer not stored: a retry may run again once the claim expires");
                }
            }
            Err(_) => {
                if let Err(e) = store
                    .idempotency_release(&tag, &idem.key_hash, &pending)
                    .await
                {
                    tracing::warn!(error = %e, "idempotency claim not released: it expires");
                }
            }
        }
        result
    });
    let (status, body) = task
        .await
        .map_err(|e| ApiError::Internal(format!("idempotent operation: {e}")))??;
    Ok(answer(status.as_u16(), body, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(HEADER, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn keys_are_checked_and_never_stored_as_sent() {
        let body = serde_json::json!({"b": 1, "a": 2});
        assert!(from_request(&headers(&[]), "op", &body).unwrap().is_none());
        let idem = from_request(&headers(&["order 42"]), "op", &body)
            .unwrap()
            .unwrap();
        assert!(!idem.key_hash.contains("order"));
        assert_eq!(idem.key_hash.len(), 32);
        let other_op = from_request(&headers(&["order 42"]), "op2", &body)
            .unwrap()
            .unwrap();
        assert_ne!(idem.key_hash, other_op.key_hash);
        let reordered: serde_json::Value = serde_json::from_str(r#"{"a":2,"b":1}"#).unwrap();
        let same = from_request(&headers(&["order 42"]), "op", &reordered)
            .unwrap()
            .unwrap();
        assert_eq!(idem.fingerprint, same.fingerprint);
        let long = "k".repeat(MAX_KEY_LEN + 1);
        for bad in [&["a", "b"][..], &[""], &[" a"], &[long.as_str()]] {
            assert!(from_request(&headers(bad), "op", &body).is_err(), "{bad:?}");
        }
    }
}
