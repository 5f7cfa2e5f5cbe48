//! Which numbers may be called at all, and the lookup a portal makes before offering "call me".

use serde::Serialize;

use crate::error::ApiError;
use crate::methods::PhoneType;
use crate::phone::{self, NumberType};
use crate::policy::Policy;

/// Why a valid number may not be called under the tenant's `policy` (as a mobile phone), as the
/// problem a start request would get.
pub fn refusal(policy: &Policy, number: &phone::PhoneNumber) -> Option<ApiError> {
    crate::policy::check_call(policy, PhoneType::Mobile, number).err()
}

/// `GET …/phone-numbers/{number}` answer (field names are an API contract).
#[derive(Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Lookup {
    pub e164: Option<String>,
    pub country: Option<String>,
    #[serde(rename = "type")]
    pub type_: Option<NumberType>,
    pub valid: bool,
    pub callable: bool,
    /// Why it is not callable: the problem `type` slug a start request would get.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// An extension the input carried: it is never dialled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
}

/// Looks a typed number up. An unparsable number is an answer (`valid: false`), not an error:
/// the portal asked "can I call this?" and "no, because…" is the answer.
pub fn lookup(policy: &Policy, typed: &str, region: Option<&str>) -> Lookup {
    let parsed = match phone::parse(typed, region) {
        Ok(parsed) => parsed,
        Err(e) => {
            return Lookup {
                e164: None,
                country: None,
                type_: None,
                valid: false,
                callable: false,
                reason: Some("invalid-phone-number"),
                detail: Some(e.to_string()),
                extension: None,
            };
        }
    };
    let refusal = refusal(policy, &parsed.number);
    Lookup {
        e164: Some(parsed.number.e164().to_owned()),
        country: parsed.number.country().map(str::to_owned),
        type_: Some(parsed.number.number_type()),
        valid: true,
        callable: refusal.is_none(),
        reason: refusal.as_ref().map(|e| e.kind().1),
        detail: refusal.map(|e| e.to_string()),
        extension: parsed.extension,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        crate::config::Config::from_toml_overlay("")
            .unwrap()
            .default_policy()
    }

    #[test]
    fn the_tenant_policy_decides_what_is_callable() {
        let mut p = policy();
        p.allowed_countries = Some(vec!["US".into()]);
        let l = lookup(&p, "+31 6 12345678", None);
        assert!(l.valid && !l.callable);
        assert_eq!(l.reason, Some("country-not-allowed"));
        p.methods.phone.enabled = false;
        assert_eq!(
            lookup(&p, "+1 425 555 0123", None).reason,
            Some("method-disabled")
        );
    }

    #[test]
    fn a_mobile_number_is_callable_and_its_extension_reported() {
        let l = lookup(&policy(), "06 12345678 x 12", Some("NL"));
        assert!(l.valid && l.callable, "{l:?}");
        assert_eq!(l.e164.as_deref(), Some("+31612345678"));
        assert_eq!(l.country.as_deref(), Some("NL"));
        assert_eq!(l.type_, Some(NumberType::Mobile));
        assert_eq!(l.extension.as_deref(), Some("12"));
        assert_eq!(l.reason, None);
    }

    #[test]
    fn premium_rate_is_valid_but_not_callable() {
        let l = lookup(&policy(), "+44 909 879 0000", None);
        assert!(l.valid && !l.callable);
        assert_eq!(l.reason, Some("number-type-blocked"));
    }

    #[test]
    fn garbage_is_invalid_with_a_reason() {
        let l = lookup(&policy(), "+1 425", None);
        assert!(!l.valid && !l.callable);
        assert_eq!(l.reason, Some("invalid-phone-number"));
        assert!(l.detail.is_some() && l.e164.is_none());
    }
}
