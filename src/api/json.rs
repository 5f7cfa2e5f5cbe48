//! `Json` that rejects with our problem+json (not axum's plain text) and names what was wrong.
//! A body with a duplicate object key, at any depth, is refused (422) on every route: readers
//! disagree on which of the two counts (first, last, error), so a proxy or the portal's own
//! validation may have seen another value than the one we would store.

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::{DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::ApiError;

pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as Content-Type: application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == 413 {
                ApiError::PayloadTooLarge("the request body is larger than allowed".into())
            } else {
                ApiError::InvalidRequest(e.body_text())
            }
        })?;
        reject_duplicate_keys(&bytes)?;
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::InvalidRequest(format!(
                "malformed JSON: {}",
                e.body_text()
            ))),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::InvalidRequest(format!(
                "invalid body: {}",
                e.body_text()
            ))),
            Err(other) => Err(ApiError::InvalidRequest(other.body_text())),
        }
    }
}

/// `application/json` or `application/<anything>+json`, parameters allowed (as axum accepts).
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype.len() > 5
                && subtype.is_char_boundary(subtype.len() - 5)
                && subtype[subtype.len() - 5..].eq_ignore_ascii_case("+json"))
}

/// 422 when an object in `body` repeats a key. Malformed JSON passes here and is reported by the
/// typed parse, with its position.
fn reject_duplicate_keys(body: &[u8]) -> Result<(), ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    match de.deserialize_any(UniqueKeys) {
        Err(e) if e.is_data() => Err(ApiError::InvalidRequest(format!("invalid body: {e}"))),
        _ => Ok(()),
    }
}

/// Walks a JSON value and fails (a data error) on the first repeated key of an object.
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeys)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            map.next_value::<UniqueKeys>()?;
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate key `{key}`"
                )));
            }
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slug(body: &str) -> Option<&'static str> {
        reject_duplicate_keys(body.as_bytes())
            .err()
            .map(|e| e.kind().1)
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        assert_eq!(slug(r#"{"a": 1, "a": 2}"#), Some("invalid-request"));
        assert_eq!(slug(r#"{"a": {"b": 1, "b": 1}}"#), Some("invalid-request"));
        assert_eq!(
            slug(r#"[{"x": 1}, {"y": [{"z": 1, "z": 2}]}]"#),
            Some("invalid-request")
        );
        // An escaped spelling of the same key is the same key.
        assert_eq!(
            slug(r#"{"kind": 1, "\u006bind": 2}"#),
            Some("invalid-request")
        );
        assert_eq!(slug(r#"{"a": 1, "b": {"a": 2}}"#), None);
        assert_eq!(slug(r#"[1, "a", null, true, 2.5, -3]"#), None);
        assert_eq!(slug("{not json"), None, "left to the typed parse");
    }

    #[test]
    fn json_content_types_are_recognised() {
        let ok = |v: &str| {
            let mut h = axum::http::HeaderMap::new();
            h.insert(header::CONTENT_TYPE, v.parse().unwrap());
            is_json(&h)
        };
        assert!(ok("application/json"));
        assert!(ok("Application/JSON; charset=utf-8"));
        assert!(ok("application/merge-patch+json"));
        assert!(!ok("text/json"));
        assert!(!ok("application/x-www-form-urlencoded"));
        assert!(!ok("application/+json"));
        assert!(!ok("json"));
    }
}
