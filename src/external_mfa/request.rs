//! The authorization request Entra POSTs (`application/x-www-form-urlencoded`, parameters in
//! docs/ENTRA.md#the-authorization-request): parsed and checked before anything else happens.
//! Two kinds of refusal: one where the redirect URI cannot be trusted ([`Refusal::Page`], a 400
//! page, nothing sent anywhere), and one that goes back to Entra as an OAuth error
//! ([`Refusal::Entra`]). Parameters not in the table are ignored, as Microsoft asks.

use serde_json::Value;

use super::config::TenantExternalMfa;

/// The largest value accepted per parameter (bytes, after decoding).
fn max_len(name: &str) -> usize {
    match name {
        "id_token_hint" => 16 * 1024,
        "state" | "claims" => 8 * 1024,
        _ => 2 * 1024,
    }
}

const KNOWN: [&str; 10] = [
    "scope",
    "response_type",
    "response_mode",
    "client_id",
    "redirect_uri",
    "nonce",
    "state",
    "id_token_hint",
    "claims",
    "client-request-id",
];

/// The acr values a telephone call (`amr` `tel`, a possession factor) satisfies.
pub const PHONE_ACR: [&str; 4] = [
    "possession",
    "possessionorinherence",
    "knowledgeorpossession",
    "knowledgeorpossessionorinherence",
];

/// A checked authorization request.
#[derive(Clone, Debug)]
pub struct AuthRequest {
    pub redirect_uri: String,
    pub nonce: String,
    pub state: String,
    pub id_token_hint: String,
    /// The requested acr this sign-in answers with.
    pub acr: String,
    pub client_request_id: Option<String>,
}

/// Why a request is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The client or the redirect URI is wrong: a 400 page; nothing goes to the URI.
    Page(String),
    /// Goes back to Entra's redirect URI as an OAuth error.
    Entra(OAuthError),
}

/// An OAuth error response (RFC 6749 §4.2.2.1): `error`, `error_description`, `state`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthError {
    pub redirect_uri: String,
    pub error: &'static str,
    pub description: String,
    pub state: Option<String>,
}

/// Parses and checks `body` for `tenant`.
pub fn parse(body: &[u8], tenant: &TenantExternalMfa) -> Result<AuthRequest, Refusal> {
    let mut fields: Vec<(&'static str, Vec<String>)> =
        KNOWN.iter().map(|k| (*k, Vec::new())).collect();
    // A value too long to keep is refused before the redirect URI is known good: a page.
    for (name, value) in form_urlencoded::parse(body) {
        if let Some((known, values)) = fields.iter_mut().find(|(k, _)| *k == name) {
            if value.len() > max_len(known) {
                return Err(Refusal::Page(format!("{known} is too long")));
            }
            values.push(value.into_owned());
        }
    }
    let one = |name: &str| -> Result<Option<&str>, String> {
        let values = &fields.iter().find(|(k, _)| *k == name).expect("known").1;
        match values.as_slice() {
            [] => Ok(None),
            [v] => Ok(Some(v.as_str())),
            _ => Err(format!("{name} is sent more than once")),
        }
    };
    let client_id = one("client_id").map_err(Refusal::Page)?;
    if client_id != Some(tenant.client_id.as_str()) {
        return Err(Refusal::Page("unknown client_id".into()));
    }
    let expected_redirect = tenant.redirect_uri();
    let redirect_uri = one("redirect_uri").map_err(Refusal::Page)?;
    if redirect_uri != Some(expected_redirect.as_str()) {
        return Err(Refusal::Page("redirect_uri is not Entra's".into()));
    }
    let state = one("state").ok().flatten().map(str::to_owned);
    let error = |error: &'static str, description: String| {
        Refusal::Entra(OAuthError {
            redirect_uri: expected_redirect.clone(),
            error,
            description,
            state: state.clone(),
        })
    };
    let invalid = |d: String| error("invalid_request", d);
    let required = |name: &str| -> Result<&str, Refusal> {
        match one(name).map_err(invalid)? {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(invalid(format!("{name} is missing"))),
        }
    };
    let expect = |name: &str, wanted: &str| -> Result<(), Refusal> {
        let got = required(name)?;
        if got == wanted || (name == "response_type" && got.eq_ignore_ascii_case(wanted)) {
            Ok(())
        } else {
            Err(invalid(format!("{name} must be {wanted}")))
        }
    };
    let state_value = required("state")?.to_owned();
    expect("response_type", "id_token")?;
    expect("response_mode", "form_post")?;
    if !required("scope")?.split(' ').any(|s| s == "openid") {
        return Err(invalid("scope must include openid".into()));
    }
    let nonce = required("nonce")?.to_owned();
    let id_token_hint = required("id_token_hint")?.to_owned();
    let claims = required("claims")?;
    let acr = choose_acr(claims).map_err(|(code, d)| error(code, d))?;
    let client_request_id = one("client-request-id")
        .map_err(invalid)?
        .filter(|id| id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map(str::to_owned);
    Ok(AuthRequest {
        redirect_uri: expected_redirect.clone(),
        nonce,
        state: state_value,
        id_token_hint,
        acr,
        client_request_id,
    })
}

/// The acr to answer with: the first requested value a phone call satisfies (docs/ENTRA.md#acr).
fn choose_acr(claims: &str) -> Result<String, (&'static str, String)> {
    let claims: Value = serde_json::from_str(claims)
        .map_err(|_| ("invalid_request", "claims is not JSON".to_owned()))?;
    let acr = &claims["id_token"]["acr"];
    let requested: Vec<&str> = match (&acr["values"], &acr["value"]) {
        (Value::Array(values), _) => values.iter().filter_map(Value::as_str).collect(),
        (_, Value::String(value)) => vec![value.as_str()],
        _ => {
            return Err((
                "invalid_request",
                "claims requests no acr values".to_owned(),
            ));
        }
    };
    if let Some(amr) = claims["id_token"]["amr"]["values"].as_array()
        && !amr.iter().any(|v| v == "tel")
    {
        return Err((
            "access_denied",
            "the requested amr values do not include tel (a phone call)".to_owned(),
        ));
    }
    requested
        .into_iter()
        .find(|v| PHONE_ACR.contains(v))
        .map(str::to_owned)
        .ok_or((
            "access_denied",
            "a phone call cannot satisfy the requested acr".to_owned(),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_possession_acr_is_chosen() {
        let c = r#"{"id_token":{"acr":{"essential":true,"values":["knowledgeorinherence","possessionorinherence"]},"amr":{"essential":true,"values":["sms","tel"]}}}"#;
        assert_eq!(choose_acr(c).unwrap(), "possessionorinherence");
    }

    #[test]
    fn an_acr_no_call_satisfies_is_access_denied() {
        let c = r#"{"id_token":{"acr":{"essential":true,"values":["knowledgeorinherence"]}}}"#;
        assert_eq!(choose_acr(c).unwrap_err().0, "access_denied");
        assert_eq!(choose_acr("{").unwrap_err().0, "invalid_request");
        assert_eq!(choose_acr("{}").unwrap_err().0, "invalid_request");
    }
}
