//! The shapes the OpenAPI document gives code generators, beyond what the derives state: the
//! method unions as a `oneOf` of titled objects with a `discriminator` on `kind`, named enums for
//! every closed set of strings (kinds, phone types, locales, audit actions and outcomes, problem
//! types), `format: date-time` on timestamps, the licence, `servers`, and the headers every
//! response carries (`x-request-id`; `Retry-After` on 429 and 503).

use serde_json::{Map, Value, json};

use crate::error::PROBLEM_BASE;
use crate::methods::MethodKind;
use crate::verification::FailureReason;

/// SPDX licence expression of the project (the same as `license` in Cargo.toml).
pub const LICENSE: &str = "MIT OR Apache-2.0";

/// Every problem `type` slug the API answers with (`crate::error::ApiError::kind`).
pub const PROBLEM_SLUGS: [&str; 23] = [
    "unauthenticated",
    "forbidden",
    "admin-key-required",
    "not-found",
    "method-not-allowed",
    "invalid-request",
    "invalid-phone-number",
    "number-type-blocked",
    "country-not-allowed",
    "no-phone-method",
    "method-disabled",
    "invalid-default-method",
    "phone-method-needs-verification",
    "conflict",
    "verification-in-progress",
    "verification-ended",
    "user-blocked",
    "rate-limited",
    "payload-too-large",
    "unsupported-media-type",
    "idempotency-key-reused",
    "unavailable",
    "internal",
];

/// Audit `action` values (the scripts in src/store/scripts and `Store::unblock`); External MFA
/// sign-ins add theirs (`crate::external_mfa::audit::Outcome::action`).
const AUDIT_ACTIONS: [&str; 7] = [
    "method.registered",
    "method.deleted",
    "default_method.changed",
    "verification.approved",
    "verification.failed",
    "verification.fraud_reported",
    "user.unblocked",
];

/// Audit `outcome` values: what happened, or the status a verification ended with; External
/// MFA sign-ins add theirs (`crate::external_mfa::audit::Outcome::as_str`).
const AUDIT_OUTCOMES: [&str; 9] = [
    "registered",
    "deleted",
    "changed",
    "approved",
    "fraud_reported",
    "failed",
    "expired",
    "canceled",
    "unblocked",
];

/// Why a default sign-in method changed (`default_method.changed`).
const DEFAULT_CHANGE_REASONS: [&str; 3] = ["requested", "method_deleted", "method_registered"];

const KINDS: [MethodKind; 5] = [
    MethodKind::Phone,
    MethodKind::AuthenticatorApp,
    MethodKind::SecurityKey,
    MethodKind::Email,
    MethodKind::SecurityQuestions,
];

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn nullable(name: &str) -> Value {
    json!({ "oneOf": [reference(name), {"type": "null"}] })
}

fn string_enum(description: &str, values: impl IntoIterator<Item = String>) -> Value {
    let values: Vec<String> = values.into_iter().collect();
    json!({ "type": "string", "description": description, "enum": values })
}

fn date_time(description: &str) -> Value {
    json!({ "type": "string", "format": "date-time", "description": description })
}

/// `security_questions` → `SecurityQuestions`.
fn camel(snake: &str) -> String {
    snake
        .split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// Completes `doc` (see the module doc).
pub fn complete(doc: &mut Value) {
    doc["info"]["license"] = json!({ "name": LICENSE, "identifier": LICENSE });
    doc["servers"] = json!([{
        "url": "http://127.0.0.1:8080",
        "description": "A local callverify (`server.listen` default); use your own `server.public_url`"
    }]);
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    named_enums(schemas);
    method_unions(schemas);
    typed_fields(schemas);
    let headers = doc["components"]
        .as_object_mut()
        .map(|c| c.entry("headers").or_insert_with(|| json!({})));
    if let Some(headers) = headers {
        headers["RequestId"] = json!({
            "description": "The request's id: the caller's `x-request-id` when it is 1-64 visible ASCII characters, else a new one. Quote it when reporting a problem.",
            "required": true,
            "schema": {"type": "string", "minLength": 1, "maxLength": 64}
        });
        headers["RetryAfter"] = json!({
            "description": "Seconds to wait before trying again.",
            "schema": {"type": "integer", "minimum": 0}
        });
    }
    response_headers(doc);
}

/// `values` without repeats, in first-seen order.
fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut seen = Vec::new();
    for v in values {
        if !seen.iter().any(|s: &String| s == v) {
            seen.push(v.to_owned());
        }
    }
    seen
}

fn named_enums(schemas: &mut Map<String, Value>) {
    let kinds = KINDS.iter().map(|k| k.as_str().to_owned());
    schemas.insert(
        "MethodKind".into(),
        string_enum("The kinds of security-info method.", kinds),
    );
    let locales = crate::verification::prompts::locales().map(str::to_owned);
    schemas.insert(
        "Locale".into(),
        string_enum("A prompt language callverify speaks.", locales),
    );
    let sign_ins = crate::external_mfa::audit::Outcome::ALL;
    let actions = AUDIT_ACTIONS
        .into_iter()
        .chain(sign_ins.map(|o| o.action()))
        .map(str::to_owned);
    schemas.insert(
        "AuditAction".into(),
        string_enum("What an audit entry records.", actions),
    );
    let outcomes = distinct(
        AUDIT_OUTCOMES
            .into_iter()
            .chain(sign_ins.map(|o| o.as_str())),
    );
    schemas.insert(
        "AuditOutcome".into(),
        string_enum(
            "What happened, or the status a verification ended with.",
            outcomes,
        ),
    );
    let reasons = FailureReason::ALL
        .iter()
        .map(|r| r.as_str())
        .chain(DEFAULT_CHANGE_REASONS)
        .chain(crate::external_mfa::audit::REASONS);
    let reasons = distinct(reasons);
    schemas.insert(
        "AuditReason".into(),
        string_enum(
            "A verification's failure reason, why the default sign-in method changed, or why an External MFA sign-in was refused or denied.",
            reasons,
        ),
    );
    let types = PROBLEM_SLUGS.iter().map(|s| format!("{PROBLEM_BASE}{s}"));
    schemas.insert(
        "ProblemType".into(),
        string_enum(
            "The problem's stable type: switch on it (docs/API.md lists when each is answered).",
            types,
        ),
    );
    let regions = crate::phone::known_regions().iter().map(|r| r.to_string());
    schemas.insert(
        "Region".into(),
        string_enum(
            "ISO 3166-1 alpha-2 region libphonenumber knows, uppercase (as accepted).",
            regions,
        ),
    );
}

/// `Method` and `NewMethod` as a `oneOf` of one titled object per kind, with a discriminator on
/// `kind` (the `Method` variants carry `id`, `created_at` and `usable_for` themselves: no `allOf`
/// around a `oneOf`, which generators cannot merge).
fn method_unions(schemas: &mut Map<String, Value>) {
    let details = schemas.remove("MethodDetails").unwrap_or_default();
    let method_description = schemas["Method"]["description"].clone();
    let variants = split_by_kind(&details, |kind| format!("{}Method", camel(kind)));
    let mut mapping = Map::new();
    for (kind, name, mut variant) in variants {
        let properties = variant["properties"].as_object_mut().expect("an object");
        properties.insert(
            "id".into(),
            json!({"type": "string", "description": "The method's id: fixed per phone type for phones, else a random lowercase UUID."}),
        );
        properties.insert(
            "created_at".into(),
            date_time("When it was registered (RFC 3339, second precision)."),
        );
        properties.insert(
            "usable_for".into(),
            json!({"type": "array", "items": reference("Usage")}),
        );
        if kind == "phone" {
            properties.insert(
                "phone_number".into(),
                json!({"type": "string", "description": "E.164 without extension (`+14255551234`) in API answers; masked (`+1********34`) in events and audit entries."}),
            );
        }
        let required = variant["required"].as_array_mut().expect("required");
        for field in ["id", "created_at", "usable_for"] {
            required.push(json!(field));
        }
        mapping.insert(kind, json!(format!("#/components/schemas/{name}")));
        schemas.insert(name, variant);
    }
    let one_of: Vec<Value> = mapping.values().map(|r| json!({ "$ref": r })).collect();
    schemas.insert(
        "Method".into(),
        json!({"description": method_description, "oneOf": one_of,
            "discriminator": {"propertyName": "kind", "mapping": mapping}}),
    );

    let new = schemas.remove("NewMethod").unwrap_or_default();
    let variants = split_by_kind(&new, |kind| format!("New{}", camel(kind)));
    let mut mapping = Map::new();
    for (kind, name, mut variant) in variants {
        variant["additionalProperties"] = json!(false);
        mapping.insert(kind, json!(format!("#/components/schemas/{name}")));
        schemas.insert(name, variant);
    }
    let one_of: Vec<Value> = mapping.values().map(|r| json!({ "$ref": r })).collect();
    schemas.insert(
        "NewMethod".into(),
        json!({"description": new["description"], "oneOf": one_of,
            "discriminator": {"propertyName": "kind", "mapping": mapping}}),
    );
}

/// The variants of a serde-tagged enum's `oneOf`, each as `(kind, schema name, titled object)`.
fn split_by_kind(union: &Value, name: impl Fn(&str) -> String) -> Vec<(String, String, Value)> {
    let variants = union["oneOf"].as_array().cloned().unwrap_or_default();
    variants
        .into_iter()
        .filter_map(|mut variant| {
            let kind = variant["properties"]["kind"]["enum"][0]
                .as_str()?
                .to_owned();
            let name = name(&kind);
            variant["title"] = json!(name);
            variant["type"] = json!("object");
            variant["properties"]["kind"] = json!({"type": "string", "enum": [kind]});
            Some((kind, name, variant))
        })
        .collect()
}

/// Fields the derives show as plain strings that are one of a closed set, or a timestamp.
fn typed_fields(schemas: &mut Map<String, Value>) {
    let mut set = |pointer: &str, schema: Value| {
        let (name, path) = pointer.split_once('/').expect("schema/property");
        if let Some(target) = schemas.get_mut(name).and_then(|s| {
            s.pointer_mut(&format!(
                "/properties/{}",
                path.replace('/', "/properties/")
            ))
        }) {
            let description = target["description"].clone();
            *target = schema;
            if description.is_string() && target.get("description").is_none() {
                target["description"] = description;
            }
        }
    };
    set("VerificationView/phone_type", reference("PhoneType"));
    set("VerificationView/locale", reference("Locale"));
    set(
        "VerificationView/phone_number",
        json!({"type": "string", "description": "Masked (`+1********34`): the API never echoes a full number it is verifying."}),
    );
    for field in ["created_at", "updated_at", "expires_at"] {
        set(
            &format!("VerificationView/{field}"),
            date_time("RFC 3339, second precision."),
        );
    }
    set("Policy/default_locale", reference("Locale"));
    set("PolicyInput/default_locale", nullable("Locale"));
    set(
        "Policy/allowed_countries",
        json!({"type": ["array", "null"], "items": {"type": "string", "pattern": "^[A-Z]{2}$"},
            "description": "ISO 3166-1 alpha-2 codes callverify may call, or null for every country."}),
    );
    set("AuditEvent/at", date_time("RFC 3339, second precision."));
    set("AuditEvent/action", reference("AuditAction"));
    set("AuditEvent/outcome", reference("AuditOutcome"));
    set("AuditEvent/kind", reference("MethodKind"));
    set("AuditEvent/purpose", reference("Purpose"));
    set("AuditEvent/reason", reference("AuditReason"));
    set("AuditEvent/previous", reference("DefaultMethod"));
    set("Problem/type", reference("ProblemType"));
    set(
        "StartRequest/locale",
        json!({"type": ["string", "null"], "maxLength": 35, "pattern": "^[A-Za-z0-9_-]+$",
            "description": "BCP 47 prompt language (`nl-NL`); one callverify does not speak falls back to the tenant's default."}),
    );
    if let Some(region) = schemas
        .get_mut("StartRequest")
        .and_then(|s| s.pointer_mut("/properties/region"))
    {
        *region = json!({"oneOf": [reference("Region"), {"type": "null"}],
            "description": "ISO 3166-1 alpha-2 region for a number typed without `+country`."});
    }
}

/// `x-request-id` on every response; `Retry-After` on every 429 and 503; the form of an
/// `Idempotency-Key`.
fn response_headers(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for item in paths.values_mut() {
        let Some(operations) = item.as_object_mut() else {
            continue;
        };
        for operation in operations.values_mut() {
            for parameter in operation["parameters"].as_array_mut().into_iter().flatten() {
                if parameter["name"] == "Idempotency-Key" {
                    // 1-255 visible ASCII characters, spaces only inside (`api::idempotency`).
                    parameter["schema"] = json!({"type": "string", "minLength": 1,
                        "maxLength": crate::api::idempotency::MAX_KEY_LEN,
                        "pattern": "^[!-~]([ -~]*[!-~])?$"});
                }
            }
            let Some(responses) = operation["responses"].as_object_mut() else {
                continue;
            };
            for (status, response) in responses.iter_mut() {
                let headers = response
                    .as_object_mut()
                    .expect("a response")
                    .entry("headers")
                    .or_insert_with(|| json!({}));
                headers["x-request-id"] = json!({"$ref": "#/components/headers/RequestId"});
                if status == "429" || status == "503" {
                    headers["Retry-After"] = json!({"$ref": "#/components/headers/RetryAfter"});
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
