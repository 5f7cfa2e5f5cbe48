//! The document as generators read it: unions, named schemas, enums, headers, summaries.

use super::*;

fn doc() -> Value {
    serde_json::from_str(crate::api::openapi::document()).unwrap()
}

#[test]
fn method_unions_are_titled_objects_with_a_discriminator() {
    let doc = doc();
    let schemas = &doc["components"]["schemas"];
    for (union, count) in [("Method", 5), ("NewMethod", 4)] {
        let schema = &schemas[union];
        assert!(schema.get("allOf").is_none(), "{union}");
        assert_eq!(schema["discriminator"]["propertyName"], "kind");
        let variants = schema["oneOf"].as_array().unwrap();
        assert_eq!(variants.len(), count, "{union}");
        for variant in variants {
            let name = variant["$ref"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap();
            let object = &schemas[name];
            assert_eq!(object["title"], name);
            assert_eq!(object["type"], "object");
            let kind = object["properties"]["kind"]["enum"][0].as_str().unwrap();
            assert_eq!(schema["discriminator"]["mapping"][kind], variant["$ref"]);
            if union == "Method" {
                for field in ["id", "kind", "created_at", "usable_for"] {
                    assert!(
                        object["required"]
                            .as_array()
                            .unwrap()
                            .contains(&json!(field)),
                        "{name} {field}"
                    );
                }
                assert_eq!(object["properties"]["created_at"]["format"], "date-time");
            } else {
                assert_eq!(object["additionalProperties"], false);
            }
        }
    }
    assert!(schemas.get("MethodDetails").is_none());
    assert!(
        schemas["PhoneMethod"]["properties"]["phone_number"]["description"]
            .as_str()
            .unwrap()
            .contains("masked")
    );
}

#[test]
fn every_schema_is_named_and_closed_sets_are_enums() {
    let doc = doc();
    let text = doc.to_string();
    assert!(!text.contains("\"allOf\""));
    let schemas = &doc["components"]["schemas"];
    let view = &schemas["VerificationView"]["properties"];
    assert_eq!(view["phone_type"]["$ref"], "#/components/schemas/PhoneType");
    assert_eq!(view["locale"]["$ref"], "#/components/schemas/Locale");
    assert_eq!(view["created_at"]["format"], "date-time");
    let audit = &schemas["AuditEvent"]["properties"];
    assert_eq!(audit["action"]["$ref"], "#/components/schemas/AuditAction");
    assert_eq!(
        audit["outcome"]["$ref"],
        "#/components/schemas/AuditOutcome"
    );
    assert_eq!(audit["at"]["format"], "date-time");
    let problem_types = schemas["ProblemType"]["enum"].as_array().unwrap();
    assert!(problem_types.contains(&json!(format!("{PROBLEM_BASE}idempotency-key-reused"))));
    let regions = schemas["Region"]["enum"].as_array().unwrap();
    assert!(regions.contains(&json!("NL")) && !regions.contains(&json!("nl")));
    assert_eq!(doc["info"]["license"]["identifier"], LICENSE);
    assert!(doc["servers"][0]["url"].is_string());
    // Every request and response body is a named schema (a $ref), not an inline object.
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            let bodies = op["responses"]
                .as_object()
                .unwrap()
                .values()
                .chain(op.get("requestBody"))
                .filter_map(|r| r["content"].as_object())
                .flat_map(|c| c.values());
            for body in bodies {
                assert!(body["schema"]["$ref"].is_string(), "{body}");
            }
        }
    }
}

#[test]
fn every_operation_has_a_summary_a_description_and_its_headers() {
    let doc = doc();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(op["summary"].is_string(), "{method} {path}: summary");
            assert!(
                op["description"].is_string(),
                "{method} {path}: description"
            );
            for (status, response) in op["responses"].as_object().unwrap() {
                let headers = &response["headers"];
                assert!(
                    headers["x-request-id"].is_object(),
                    "{method} {path} {status}"
                );
                if status == "429" || status == "503" {
                    assert!(
                        headers["Retry-After"].is_object(),
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    let create = &doc["paths"]["/v1/tenants/{tenant}/users/{user}/verifications"]["post"];
    let conflict = create["responses"]["409"]["description"].as_str().unwrap();
    assert!(conflict.contains("verification-in-progress"), "{conflict}");
}

#[test]
fn every_problem_the_api_answers_is_in_the_enum() {
    use crate::error::ApiError;
    let s = String::new;
    let errors = [
        ApiError::Unauthenticated,
        ApiError::Forbidden(s()),
        ApiError::AdminRequired(s()),
        ApiError::NotFound(s()),
        ApiError::MethodNotAllowed(s()),
        ApiError::InvalidRequest(s()),
        ApiError::InvalidPhoneNumber(s()),
        ApiError::NumberTypeBlocked(s()),
        ApiError::CountryNotAllowed(s()),
        ApiError::NoPhoneMethod(s()),
        ApiError::MethodDisabled(s()),
        ApiError::InvalidDefaultMethod(s()),
        ApiError::PhoneMethodNeedsCall(s()),
        ApiError::Conflict(s()),
        ApiError::VerificationInProgress {
            detail: s(),
            verification_id: s(),
        },
        ApiError::UserBlocked(s()),
        ApiError::VerificationEnded(s()),
        ApiError::IdempotencyKeyReused(s()),
        ApiError::RateLimited {
            detail: s(),
            limit: s(),
            retry_after_secs: 1,
        },
        ApiError::PayloadTooLarge(s()),
        ApiError::UnsupportedMediaType(s()),
        ApiError::Unavailable(s()),
        ApiError::Internal(s()),
    ];
    for error in errors {
        let (_, slug, _) = error.kind();
        assert!(PROBLEM_SLUGS.contains(&slug), "{slug}");
    }
}
