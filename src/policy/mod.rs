//! Tenant policy: which method kinds are enabled, whether office phones may be used, where and
//! what kind of number may be called, and the default prompt locale. Stored per tenant in Redis
//! (`store::policy`); a tenant that never set one gets the `[policy]` section of the config.

pub mod cache;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::ids::TenantId;
use crate::methods::{Backing, DefaultMethod, MethodKind, PhoneType};
use crate::phone::{NumberType, PhoneNumber};
use crate::store::Store;

/// The policy document (`GET`/`PUT /v1/tenants/{tenant}/policy`). Field names are a contract.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Policy {
    pub methods: MethodsPolicy,
    /// ISO 3166-1 alpha-2 codes callverify may call, or null for every country.
    pub allowed_countries: Option<Vec<String>>,
    /// Number types never called.
    pub blocked_number_types: Vec<NumberType>,
    /// Prompt locale when a verification request names none.
    pub default_locale: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MethodsPolicy {
    pub phone: PhonePolicy,
    pub authenticator_app: KindPolicy,
    pub security_key: KindPolicy,
    pub email: KindPolicy,
    pub security_questions: KindPolicy,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhonePolicy {
    pub enabled: bool,
    pub office_phone_allowed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KindPolicy {
    pub enabled: bool,
}

/// A policy as written (`PUT` body, config `[policy]`): fields left out take the configured
/// default (`allowed_countries` left out or null: every country).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    pub methods: MethodsPolicy,
    #[serde(default)]
    pub allowed_countries: Option<Vec<String>>,
    #[serde(default)]
    pub blocked_number_types: Option<Vec<NumberType>>,
    #[serde(default)]
    pub default_locale: Option<String>,
}

/// Number types blocked when neither config nor tenant says otherwise: they cost the tenant
/// money or reach no person.
pub const DEFAULT_BLOCKED_TYPES: [NumberType; 3] = [
    NumberType::PremiumRate,
    NumberType::SharedCost,
    NumberType::Unknown,
];

const MAX_COUNTRIES: usize = 250;

impl PolicyInput {
    /// The validated policy; unset fields come from `fallback_*`.
    pub fn resolve(
        self,
        fallback_blocked: &[NumberType],
        fallback_locale: &str,
    ) -> Result<Policy, String> {
        let allowed_countries = match self.allowed_countries {
            None => None,
            Some(list) => Some(countries(list)?),
        };
        let mut blocked_number_types = self
            .blocked_number_types
            .unwrap_or_else(|| fallback_blocked.to_vec());
        blocked_number_types.sort_by_key(|t| t.as_str());
        blocked_number_types.dedup();
        let default_locale = self
            .default_locale
            .unwrap_or_else(|| fallback_locale.to_owned());
        if crate::call::prompts::match_locale(&default_locale) != Some(default_locale.as_str()) {
            let supported: Vec<_> = crate::call::prompts::locales().collect();
            return Err(format!(
                "default_locale must be one of {}",
                supported.join(", ")
            ));
        }
        Ok(Policy {
            methods: self.methods,
            allowed_countries,
            blocked_number_types,
            default_locale,
        })
    }
}

fn countries(mut list: Vec<String>) -> Result<Vec<String>, String> {
    if list.is_empty() || list.len() > MAX_COUNTRIES {
        return Err("allowed_countries must be null (every country) or 1-250 ISO 3166-1 alpha-2 codes; to stop all calls disable methods.phone".into());
    }
    for code in &list {
        let known = code.len() == 2
            && code.bytes().all(|b| b.is_ascii_uppercase())
            && code.parse::<phonenumber::country::Id>().is_ok();
        if !known {
            return Err(format!(
                "allowed_countries: {code:?} is not an uppercase ISO 3166-1 alpha-2 code such as NL"
            ));
        }
    }
    list.sort();
    list.dedup();
    Ok(list)
}

impl Policy {
    pub fn kind_enabled(&self, kind: MethodKind) -> bool {
        let m = &self.methods;
        match kind {
            MethodKind::Phone => m.phone.enabled,
            MethodKind::AuthenticatorApp => m.authenticator_app.enabled,
            MethodKind::SecurityKey => m.security_key.enabled,
            MethodKind::Email => m.email.enabled,
            MethodKind::SecurityQuestions => m.security_questions.enabled,
        }
    }

    /// Whether the policy lets a phone of this type be registered or called.
    pub fn phone_allowed(&self, phone_type: PhoneType) -> bool {
        self.methods.phone.enabled
            && (phone_type != PhoneType::Office || self.methods.phone.office_phone_allowed)
    }

    pub fn option_enabled(&self, option: DefaultMethod) -> bool {
        match option.backing() {
            Backing::Kind(kind) => self.kind_enabled(kind),
            Backing::Phone(phone_type) => self.phone_allowed(phone_type),
        }
    }

    /// The default sign-in options this policy allows, in preference order.
    pub fn enabled_options(&self) -> Vec<DefaultMethod> {
        DefaultMethod::ALL
            .into_iter()
            .filter(|d| self.option_enabled(*d))
            .collect()
    }
}

/// The tenant's policy: the stored one, else the configured default.
pub async fn load(store: &Store, default: &Policy, tenant: &TenantId) -> Result<Policy, ApiError> {
    match store.policy(tenant).await? {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| ApiError::Internal(format!("stored policy unreadable: {e}"))),
        None => Ok(default.clone()),
    }
}

/// [`check_call`] for a stored or freshly parsed E.164 number.
pub fn check_call_e164(policy: &Policy, phone_type: PhoneType, e164: &str) -> Result<(), ApiError> {
    let number =
        PhoneNumber::from_e164(e164).map_err(|e| ApiError::InvalidPhoneNumber(e.to_string()))?;
    check_call(policy, phone_type, &number)
}

/// Whether `policy` lets callverify call this phone: phone enabled, office phones allowed,
/// country allowed, number type not blocked.
pub fn check_call(
    policy: &Policy,
    phone_type: PhoneType,
    number: &PhoneNumber,
) -> Result<(), ApiError> {
    if !policy.methods.phone.enabled {
        return Err(ApiError::MethodDisabled(
            "the tenant policy disables phone methods".into(),
        ));
    }
    if !policy.phone_allowed(phone_type) {
        return Err(ApiError::MethodDisabled(
            "the tenant policy does not allow office phones".into(),
        ));
    }
    if let Some(allowed) = &policy.allowed_countries {
        let country = number.country().unwrap_or("");
        if !allowed.iter().any(|c| c == country) {
            return Err(ApiError::CountryNotAllowed(format!(
                "the tenant policy does not allow calls to {}",
                if country.is_empty() {
                    "non-geographic numbers"
                } else {
                    country
                }
            )));
        }
    }
    let number_type = number.number_type();
    if policy.blocked_number_types.contains(&number_type) {
        return Err(ApiError::NumberTypeBlocked(format!(
            "numbers of type {} are not called",
            number_type.as_str()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: serde_json::Value) -> Result<Policy, String> {
        serde_json::from_value::<PolicyInput>(json)
            .map_err(|e| e.to_string())?
            .resolve(&DEFAULT_BLOCKED_TYPES, "en-US")
    }

    fn methods() -> serde_json::Value {
        serde_json::json!({"phone": {"enabled": true, "office_phone_allowed": false},
            "authenticator_app": {"enabled": false}, "security_key": {"enabled": true},
            "email": {"enabled": true}, "security_questions": {"enabled": true}})
    }

    #[test]
    fn unset_fields_take_the_defaults_and_lists_are_normalised() {
        let p = input(serde_json::json!({"methods": methods(),
            "allowed_countries": ["US", "NL", "US"]}))
        .unwrap();
        assert_eq!(p.allowed_countries, Some(vec!["NL".into(), "US".into()]));
        assert_eq!(p.default_locale, "en-US");
        assert_eq!(p.blocked_number_types.len(), 3);
        assert_eq!(
            p.enabled_options(),
            [
                DefaultMethod::SecurityKey,
                DefaultMethod::VoiceMobile,
                DefaultMethod::Sms,
                DefaultMethod::VoiceAlternateMobile
            ]
        );
    }

    #[test]
    fn bad_countries_locales_and_types_are_refused() {
        for bad in [
            serde_json::json!({"methods": methods(), "allowed_countries": ["nl"]}),
            serde_json::json!({"methods": methods(), "allowed_countries": ["XX"]}),
            serde_json::json!({"methods": methods(), "allowed_countries": ["NLD"]}),
            serde_json::json!({"methods": methods(), "allowed_countries": []}),
            serde_json::json!({"methods": methods(), "default_locale": "de-DE"}),
            serde_json::json!({"methods": methods(), "default_locale": "nl-BE"}),
            serde_json::json!({"methods": methods(), "blocked_number_types": ["pricey"]}),
            serde_json::json!({"methods": methods(), "extra": true}),
            serde_json::json!({"allowed_countries": null}),
        ] {
            assert!(input(bad.clone()).is_err(), "{bad}");
        }
    }
}
