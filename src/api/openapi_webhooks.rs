//! The events callverify sends to a tenant's `events_url`, as OpenAPI 3.1 `webhooks`: one entry
//! per event type ([`crate::events::EventType`]), with its payload schema and the Standard
//! Webhooks headers it is signed with (`src/events/signature.rs`; docs/API.md#events-to-the-portal-back-end).

use serde_json::{Value, json};

use crate::events::EventType;

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// The payload schema and a sentence on when each event is sent.
fn payload(event: EventType) -> (&'static str, &'static str) {
    match event {
        EventType::VerificationApproved => (
            "VerificationEvent",
            "The callee pressed `#`: the verification is approved (for a registration, `method.registered` follows).",
        ),
        EventType::VerificationFailed => (
            "VerificationEvent",
            "A webhook ended the verification unapproved (busy, no answer, hung up, no input, voicemail, provider failure, expiry seen by a webhook); `reason` says why.",
        ),
        EventType::VerificationFraudReported => (
            "VerificationEvent",
            "The callee pressed `0` then `#`: the call was reported as fraud and the user is blocked from verification calls.",
        ),
        EventType::VerificationCanceled => (
            "VerificationEvent",
            "The portal canceled a live verification (`POST …/verifications/{id}/cancel`).",
        ),
        EventType::MethodRegistered => (
            "MethodEvent",
            "A method was added: by the API, or by an approved registration call (its number masked).",
        ),
        EventType::MethodDeleted => ("MethodEvent", "A method was deleted by the API."),
        EventType::DefaultMethodChanged => (
            "DefaultMethodChangedEvent",
            "The user's default sign-in method changed: asked for, or because a method was added or deleted.",
        ),
    }
}

fn type_name(event: EventType) -> String {
    serde_json::to_value(event)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn event_schema(description: &str, types: &[EventType], data: Value) -> Value {
    let types: Vec<String> = types.iter().copied().map(type_name).collect();
    json!({
        "type": "object",
        "description": description,
        "required": ["type", "tenant", "user", "timestamp", "data"],
        "properties": {
            "type": {"type": "string", "enum": types},
            "tenant": {"type": "string", "description": "The tenant id."},
            "user": {"type": "string", "description": "The user id."},
            "timestamp": {"type": "string", "format": "date-time", "description": "When the event was queued (RFC 3339)."},
            "data": data
        }
    })
}

fn header(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "header", "required": true, "description": description,
        "schema": {"type": "string"}})
}

/// Adds the payload schemas and the `webhooks` section to `doc`.
pub fn add(doc: &mut Value) {
    use EventType::*;
    let schemas = &mut doc["components"]["schemas"];
    schemas["VerificationEvent"] = event_schema(
        "A verification ended. `data.verification` is the verification's view, its number masked.",
        &[
            VerificationApproved,
            VerificationFailed,
            VerificationFraudReported,
            VerificationCanceled,
        ],
        json!({"type": "object", "required": ["verification"],
            "properties": {"verification": reference("VerificationView")}}),
    );
    schemas["MethodEvent"] = event_schema(
        "A method was registered or deleted. A phone method's `phone_number` is masked (`+1********34`), never E.164.",
        &[MethodRegistered, MethodDeleted],
        json!({"type": "object", "required": ["method"],
            "properties": {"method": reference("Method")}}),
    );
    schemas["DefaultMethodChangedEvent"] = event_schema(
        "The default sign-in method changed (null: none).",
        &[DefaultMethodChanged],
        json!({"type": "object", "required": ["default_method", "previous"],
        "properties": {
            "default_method": {"oneOf": [reference("DefaultMethod"), {"type": "null"}]},
            "previous": {"oneOf": [reference("DefaultMethod"), {"type": "null"}]}
        }}),
    );
    let mut webhooks = serde_json::Map::new();
    for event in EventType::ALL {
        let name = type_name(event);
        let (schema, when) = payload(event);
        webhooks.insert(name.clone(), json!({"post": {
            "operationId": format!("on_{}", name.replace('.', "_")),
            "summary": format!("Event `{name}`"),
            "description": format!("{when} Signed per Standard Webhooks: verify `webhook-signature` with the tenant's `events_secret`, reject a `webhook-timestamp` more than 5 minutes off, deduplicate on `webhook-id`."),
            "tags": ["events"],
            "security": [],
            "parameters": [
                header("webhook-id", "The event's id (`msg_…`), the same on every retry: deduplicate on it."),
                header("webhook-timestamp", "Unix seconds of this attempt."),
                header("webhook-signature", "`v1,` + base64 HMAC-SHA256 of `<webhook-id>.<webhook-timestamp>.<body>` with the key after `whsec_`."),
            ],
            "requestBody": {"required": true, "content": {"application/json": {"schema": reference(schema)}}},
            "responses": {
                "200": {"description": "Any 2xx: delivered."},
                "410": {"description": "Gone: delivery to this URL is turned off until another URL is configured."}
            }
        }}));
    }
    doc["webhooks"] = Value::Object(webhooks);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_is_a_webhook_with_its_payload_and_signature_headers() {
        let doc: Value = serde_json::from_str(crate::api::openapi::document()).unwrap();
        let webhooks = doc["webhooks"].as_object().unwrap();
        assert_eq!(webhooks.len(), EventType::ALL.len());
        for event in EventType::ALL {
            let name = type_name(event);
            let post = &webhooks[&name]["post"];
            let schema = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .unwrap();
            let schema = &doc["components"]["schemas"][schema.rsplit('/').next().unwrap()];
            let types = schema["properties"]["type"]["enum"].as_array().unwrap();
            assert!(types.contains(&json!(name)), "{name}");
            let headers: Vec<&str> = post["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(
                headers,
                ["webhook-id", "webhook-timestamp", "webhook-signature"]
            );
        }
    }
}
