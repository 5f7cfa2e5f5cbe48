//! The issuer's public documents, built once at start: OpenID Connect Discovery 1.0 metadata with
//! every field Entra needs (docs/ENTRA.md#discovery) and the JWKS. Served as fixed bytes, so
//! each answer carries its `Content-Length`.

use serde_json::{Value, json};

/// The issuer of tenant `tenant`: `{public_url}/external-mfa/{tenant}`, no trailing slash.
pub fn issuer(public_url: &str, tenant: &str) -> String {
    format!("{}/external-mfa/{tenant}", public_url.trim_end_matches('/'))
}

/// The discovery URL an administrator pastes into Entra.
pub fn discovery_url(issuer: &str) -> String {
    format!("{issuer}/.well-known/openid-configuration")
}

pub fn metadata(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["id_token"],
        "response_modes_supported": ["form_post"],
        "grant_types_supported": ["implicit"],
        "scopes_supported": ["openid"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claim_types_supported": ["normal"],
        "claims_supported": ["iss", "aud", "sub", "nonce", "iat", "exp", "acr", "amr"],
        "claims_parameter_supported": true,
    })
}
