//! What the OpenAPI document states beyond the handlers' annotations, in one place so that it
//! holds for every route alike: the shape of each path parameter (the id formats of
//! `crate::ids`), the region enum, and the problem responses any route can give — 401, 403, 404
//! (no such route), 422 (a bad path or query parameter), 500 and 503, plus 413 and 415 where a
//! body is read. An annotation that already documents a status keeps its own description.

use serde_json::{Value, json};

/// Tenant and user ids: 1-64 of `A-Z a-z 0-9 . _ @ -` (`crate::ids`).
const NAME_PATTERN: &str = "^[A-Za-z0-9._@-]{1,64}$";
/// Verification ids: 48 lowercase hex.
const VERIFICATION_ID_PATTERN: &str = "^[0-9a-f]{48}$";
/// Method ids: lowercase UUIDs.
const METHOD_ID_PATTERN: &str = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    })
}

/// The schema of path parameter `name` on `path`.
fn path_parameter(path: &str, name: &str) -> Option<Value> {
    let string = |pattern: &str, min: usize, max: usize| json!({"type": "string", "pattern": pattern, "minLength": min, "maxLength": max});
    Some(match name {
        "tenant" | "user" => string(NAME_PATTERN, 1, 64),
        "id" if path.contains("/verifications/") => string(VERIFICATION_ID_PATTERN, 48, 48),
        "id" if path.contains("/methods/") => string(METHOD_ID_PATTERN, 36, 36),
        _ => return None,
    })
}

/// The `Region` enum (`openapi_shapes`): what the API accepts (uppercase only).
fn regions() -> Value {
    json!({"$ref": "#/components/schemas/Region"})
}

/// Completes `doc` (see the module doc).
pub fn complete(doc: &mut Value) {
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(operations) = item.as_object_mut() else {
                continue;
            };
            for operation in operations.values_mut() {
                complete_parameters(path, operation);
                complete_responses(operation);
            }
        }
    }
}

fn complete_parameters(path: &str, operation: &mut Value) {
    let Some(parameters) = operation["parameters"].as_array_mut() else {
        return;
    };
    for parameter in parameters {
        let name = parameter["name"].as_str().unwrap_or_default().to_owned();
        match parameter["in"].as_str() {
            Some("path") => {
                if let Some(schema) = path_parameter(path, &name) {
                    parameter["schema"] = schema;
                }
            }
            Some("query") if name == "region" => parameter["schema"] = regions(),
            _ => {}
        }
    }
}

fn complete_responses(operation: &mut Value) {
    let reads_body = operation.get("requestBody").is_some();
    let Some(responses) = operation["responses"].as_object_mut() else {
        return;
    };
    let mut add = |status: &str, description: &str| {
        responses
            .entry(status)
            .or_insert_with(|| problem(description));
    };
    add(
        "401",
        "`unauthenticated`: no, malformed or unknown bearer key, or more than one Authorization header",
    );
    add(
        "403",
        "`forbidden`: another tenant's key; `admin-key-required` on admin routes",
    );
    add(
        "404",
        "`not-found`: no such route (e.g. an empty path segment) or no such resource",
    );
    add(
        "422",
        "`invalid-request`: a malformed path or query parameter",
    );
    if reads_body {
        add(
            "413",
            "`payload-too-large`: the body is over `server.body_limit_bytes`",
        );
        add(
            "415",
            "`unsupported-media-type`: the body is not `application/json`",
        );
    }
    add(
        "500",
        "`internal`: a fault on our side, logged with the request id",
    );
    add(
        "503",
        "`unavailable`: Redis did not answer in time (or refused our credentials), or the request timed out",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_documents_the_problems_any_route_can_give() {
        let doc: Value = serde_json::from_str(crate::api::openapi::document()).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                let mut wanted = vec!["401", "403", "404", "422", "500", "503"];
                if op.get("requestBody").is_some() {
                    wanted.extend(["413", "415"]);
                }
                for status in wanted {
                    assert!(responses.contains_key(status), "{method} {path}: {status}");
                }
                for (status, response) in responses {
                    assert!(
                        response["description"].is_string(),
                        "{method} {path} {status}"
                    );
                }
                for parameter in op["parameters"].as_array().into_iter().flatten() {
                    let name = parameter["name"].as_str().unwrap();
                    if parameter["in"] == "path" && name != "number" {
                        assert!(parameter["schema"]["pattern"].is_string(), "{path} {name}");
                    }
                    if ["wait", "limit", "region"].contains(&name) {
                        assert_eq!(parameter["in"], "query", "{path} {name}");
                    }
                }
            }
        }
        let create = &doc["paths"]["/v1/tenants/{tenant}/users/{user}/verifications"]["post"];
        for status in ["409", "423", "429"] {
            assert!(create["responses"][status].is_object(), "{status}");
        }
    }
}
