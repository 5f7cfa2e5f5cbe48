//! The id_token callverify posts back to Entra after an approved call
//! (docs/ENTRA.md#the-id_token): RS256 under the current key's `kid`; `iss` the issuer, `aud`
//! the client ID, `sub` the hint's, the request's `nonce`, `acr` the chosen value, `amr` `tel`.

use jsonwebtoken::{Algorithm, Header};
use serde::Serialize;

use super::keys::SigningKeys;

/// How long an id_token is valid.
pub const LIFETIME_SECS: i64 = 300;

/// The `amr` of a phone call: "confirmation by telephone" (RFC 8176).
pub const AMR_TEL: &str = "tel";

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    nonce: &'a str,
    iat: i64,
    exp: i64,
    acr: &'a str,
    amr: [&'a str; 1],
}

/// What goes into one id_token.
#[derive(Debug)]
pub struct TokenFor<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub sub: &'a str,
    pub nonce: &'a str,
    pub acr: &'a str,
    pub now: i64,
}

pub fn issue(keys: &SigningKeys, t: &TokenFor<'_>) -> Result<String, String> {
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("JWT".into());
    header.kid = Some(keys.kid.clone());
    let claims = Claims {
        iss: t.issuer,
        aud: t.client_id,
        sub: t.sub,
        nonce: t.nonce,
        iat: t.now,
        exp: t.now + LIFETIME_SECS,
        acr: t.acr,
        amr: [AMR_TEL],
    };
    jsonwebtoken::encode(&header, &claims, &keys.key).map_err(|e| e.to_string())
}
