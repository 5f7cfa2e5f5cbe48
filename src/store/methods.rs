//! The user's security-info methods and default sign-in method (one hash per user).

use std::collections::HashMap;

use serde::Deserialize;

use super::Store;
use crate::methods::{DefaultMethod, Method, MethodDetails, MethodsDocument, PhoneType};

/// A method as stored (`m:<id>` → JSON): `created_at` in Unix seconds, no derived fields.
#[derive(Debug, Deserialize)]
struct StoredMethod {
    id: String,
    #[serde(flatten)]
    details: MethodDetails,
    created_at: i64,
}

impl StoredMethod {
    fn into_method(self) -> Method {
        let usable_for = match &self.details {
            MethodDetails::Phone { phone_type, .. } => phone_type.usable_for().to_vec(),
        };
        Method {
            id: self.id,
            details: self.details,
            created_at: crate::clock::rfc3339(self.created_at),
            usable_for,
        }
    }
}

impl Store {
    /// The user's methods (oldest first) and default sign-in method.
    pub async fn methods(&self, user_tag: &str) -> redis::RedisResult<MethodsDocument> {
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.keys.methods(user_tag))
            .query_async(&mut self.conn())
            .await?;
        Ok(document_from_fields(fields))
    }
}

impl Store {
    /// Deletes everything kept about a user that does not expire by itself (methods, audit).
    pub async fn forget_user(&self, user_tag: &str) -> redis::RedisResult<()> {
        redis::cmd("DEL")
            .arg(self.keys.methods(user_tag))
            .arg(self.keys.audit(user_tag))
            .query_async::<i64>(&mut self.conn())
            .await
            .map(|_| ())
    }
}

fn document_from_fields(fields: HashMap<String, String>) -> MethodsDocument {
    let mut default_method = None;
    let mut stored = Vec::new();
    for (field, value) in fields {
        if field == "default" {
            default_method = DefaultMethod::parse(&value);
        } else if field.starts_with("m:") {
            match serde_json::from_str::<StoredMethod>(&value) {
                Ok(m) => stored.push(m),
                Err(e) => tracing::error!(error = %e, "skipping unreadable stored method"),
            }
        }
    }
    stored.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    MethodsDocument {
        default_method,
        methods: stored.into_iter().map(StoredMethod::into_method).collect(),
    }
}

/// The phone a stored method id names, if it is a phone method id.
pub fn phone_type_of(method_id: &str) -> Option<PhoneType> {
    PhoneType::from_method_id(method_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lua_written_phone_methods_are_read_back() {
        // The exact shape transition.lua writes with cjson (numbers as numbers, "/" escaped).
        let json = r#"{"phone_type":"office","created_at":1795737600,"id":"e37fc753-ff3b-4958-9484-eaa9425c82bc","kind":"phone","phone_number":"+31201234567"}"#;
        let doc = document_from_fields(HashMap::from([
            ("m:e37fc753-ff3b-4958-9484-eaa9425c82bc".into(), json.into()),
            ("default".into(), "voice_office".into()),
        ]));
        assert_eq!(doc.default_method, Some(DefaultMethod::VoiceOffice));
        assert_eq!(doc.methods[0].created_at, "2026-11-27T00:00:00Z");
        assert_eq!(
            doc.phone(PhoneType::Office).map(|(_, n)| n),
            Some("+31201234567")
        );
    }
}
