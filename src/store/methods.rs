//! The user's security-info methods and default sign-in method (one hash per user).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{AUDIT_CAP, Store};
use crate::ids::MethodId;
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
        let usable_for = self.details.usable_for();
        Method {
            id: self.id,
            details: self.details,
            created_at: crate::clock::rfc3339(self.created_at),
            usable_for,
        }
    }
}

/// A new method as the add script receives it (the script adds `created_at`).
#[derive(Serialize)]
struct NewStoredMethod<'a> {
    id: &'a str,
    #[serde(flatten)]
    details: &'a MethodDetails,
}

/// The JSON a new method is stored from (the scripts' `put_method` adds `created_at`).
fn new_method_json(id: &str, details: &MethodDetails) -> redis::RedisResult<String> {
    serde_json::to_string(&NewStoredMethod { id, details })
        .map_err(|e| unexpected("method json", e.to_string()))
}

/// What became of the default sign-in method in a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefaultChange {
    pub default: Option<DefaultMethod>,
    pub previous: Option<DefaultMethod>,
    pub changed: bool,
}

#[derive(Debug)]
pub enum AddOutcome {
    Added {
        method: Method,
        default: DefaultChange,
    },
    /// The user already has the most methods of this kind allowed.
    LimitReached,
    /// Same credential (security key) or a singleton kind already present.
    Duplicate,
}

#[derive(Debug)]
pub enum DeleteOutcome {
    Deleted {
        method: Method,
        default: DefaultChange,
    },
    Missing,
    /// The mobile phone cannot go while an alternate mobile exists.
    MobileHasAlternate,
}

#[derive(Debug, PartialEq, Eq)]
pub enum SetDefaultOutcome {
    Set(DefaultChange),
    /// Not among the enabled options passed in.
    Disabled,
    /// No method backs the option (now).
    NotBacked,
}

/// The default's change a method script reports from field `first` on: the default now, the
/// one before ('' = none), and 1 if they differ.
fn default_change(reply: &[redis::Value], first: usize) -> redis::RedisResult<DefaultChange> {
    let option = |i| reply_field::<String>(reply, i).map(|s| DefaultMethod::parse(&s));
    Ok(DefaultChange {
        default: option(first)?,
        previous: option(first + 1)?,
        changed: reply_field::<u8>(reply, first + 2)? == 1,
    })
}

fn unexpected(what: &str, outcome: String) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Parse,
        "unexpected script reply",
        format!("{what}: {outcome}"),
    ))
}

impl Store {
    /// Adds a non-phone method (see `scripts/add_method.lua`): one round trip, with its audit
    /// entries and the default's upkeep under the `enabled` options.
    pub async fn add_method(
        &self,
        user_tag: &str,
        id: &MethodId,
        details: &MethodDetails,
        enabled: &[DefaultMethod],
    ) -> redis::RedisResult<AddOutcome> {
        let kind = details.kind();
        let json = new_method_json(id.as_str(), details)?;
        let unique = match details {
            MethodDetails::SecurityKey { .. } => "credential_id",
            _ => "",
        };
        let mut script = self.on_methods(&self.scripts.add_method, user_tag);
        script.arg(id.as_str()).arg(kind.as_str()).arg(json);
        script.arg(kind.max_per_user()).arg(unique).arg(AUDIT_CAP);
        let (outcome, reply) = self.run_on_methods(script, enabled).await?;
        match outcome.as_str() {
            "ok" => {
                let created_at: i64 = reply_field(&reply, 1)?;
                let default = default_change(&reply, 2)?;
                let method = StoredMethod {
                    id: id.as_str().to_owned(),
                    details: details.clone(),
                    created_at,
                }
                .into_method();
                Ok(AddOutcome::Added { method, default })
            }
            "limit" => Ok(AddOutcome::LimitReached),
            "duplicate" => Ok(AddOutcome::Duplicate),
            _ => Err(unexpected("add_method", outcome)),
        }
    }

    /// Deletes a method and moves the default if it has to (see `scripts/delete_method.lua`).
    pub async fn delete_method(
        &self,
        user_tag: &str,
        id: &MethodId,
        enabled: &[DefaultMethod],
    ) -> redis::RedisResult<DeleteOutcome> {
        let mut script = self.on_methods(&self.scripts.delete_method, user_tag);
        script.arg(id.as_str()).arg(AUDIT_CAP);
        script.arg(PhoneType::Mobile.method_id());
        script.arg(PhoneType::AlternateMobile.method_id());
        let (outcome, reply) = self.run_on_methods(script, enabled).await?;
        match outcome.as_str() {
            "ok" => {
                let json: String = reply_field(&reply, 1)?;
                let method = serde_json::from_str::<StoredMethod>(&json)
                    .map_err(|e| unexpected("deleted method", e.to_string()))?
                    .into_method();
                let default = default_change(&reply, 2)?;
                Ok(DeleteOutcome::Deleted { method, default })
            }
            "missing" => Ok(DeleteOutcome::Missing),
            "has_alternate" => Ok(DeleteOutcome::MobileHasAlternate),
            _ => Err(unexpected("delete_method", outcome)),
        }
    }

    /// Sets the default sign-in option if it is enabled and backed (see `scripts/set_default.lua`).
    pub async fn set_default(
        &self,
        user_tag: &str,
        option: DefaultMethod,
        enabled: &[DefaultMethod],
    ) -> redis::RedisResult<SetDefaultOutcome> {
        let mut script = self.on_methods(&self.scripts.set_default, user_tag);
        script.arg(option.as_str()).arg(AUDIT_CAP);
        let (outcome, reply) = self.run_on_methods(script, enabled).await?;
        match outcome.as_str() {
            "ok" => Ok(SetDefaultOutcome::Set(default_change(&reply, 1)?)),
            "disabled" => Ok(SetDefaultOutcome::Disabled),
            "unbacked" => Ok(SetDefaultOutcome::NotBacked),
            _ => Err(unexpected("set_default", outcome)),
        }
    }

    /// A method script's invocation on its two keys: the user's methods hash and audit stream.
    fn on_methods<'a>(
        &self,
        script: &'a redis::Script,
        user_tag: &str,
    ) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        invocation
            .key(self.keys.methods(user_tag))
            .key(self.keys.audit(user_tag));
        invocation
    }

    /// Runs a method script with the `enabled` options' mask as its last argument: its outcome
    /// (the reply's first field) and the whole reply.
    async fn run_on_methods(
        &self,
        mut invocation: redis::ScriptInvocation<'_>,
        enabled: &[DefaultMethod],
    ) -> redis::RedisResult<(String, Vec<redis::Value>)> {
        let reply: Vec<redis::Value> = invocation
            .arg(DefaultMethod::mask(enabled))
            .invoke_async(&mut self.conn())
            .await?;
        Ok((reply_field(&reply, 0)?, reply))
    }

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

fn reply_field<T: redis::FromRedisValue>(
    reply: &[redis::Value],
    index: usize,
) -> redis::RedisResult<T> {
    let value = reply
        .get(index)
        .ok_or_else(|| unexpected("script reply", format!("no field {index}")))?;
    Ok(redis::from_redis_value_ref(value)?)
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
