//! `GET /openapi.json`: the OpenAPI 3.1 document of every `/v1` route, generated from the
//! handlers' `#[utoipa::path]` annotations and the request/response types.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{audit, blocks, methods, phone_numbers, policy, verifications};
use crate::error::Problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "callverify management API",
        description = "Phone-call verification and security-info methods. Errors are RFC 9457 \
            application/problem+json with a stable `type` under https://callverify.dev/problems/."
    ),
    paths(
        verifications::create,
        verifications::read,
        verifications::cancel,
        methods::list,
        methods::add,
        methods::delete,
        methods::set_default,
        audit::list,
        policy::read,
        policy::replace,
        blocks::unblock,
        phone_numbers::lookup,
    ),
    components(schemas(Problem)),
    modifiers(&BearerKeys),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document, rendered once.
pub fn document() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serialises");
        super::openapi_contract::complete(&mut doc);
        super::openapi_shapes::complete(&mut doc);
        super::openapi_webhooks::add(&mut doc);
        serde_json::to_string(&doc).expect("the document serialises")
    })
}

pub(super) async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_v1_route_is_documented_with_its_method() {
        let doc: serde_json::Value = serde_json::from_str(document()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let routes = crate::api::routes();
        assert!(routes.len() >= 9);
        for route in &routes {
            let method = route.method.as_str().to_ascii_lowercase();
            let op = &doc["paths"][route.path][&method];
            assert!(
                op.is_object(),
                "{} {} is not documented",
                route.method,
                route.path
            );
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('4')),
                "{} {} documents no error response",
                route.method,
                route.path
            );
        }
        let mut ids: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .map(|op| op["operationId"].as_str().unwrap())
            .collect();
        ids.sort();
        let before = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), before, "operationIds are unique");
        // And nothing is documented that is not routed.
        let documented: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum();
        assert_eq!(documented, routes.len());
    }
}
