//! Security-info methods (phone, authenticator app, security key, email, security questions)
//! and the user's default sign-in method.

mod default;
mod new;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use default::{Backing, DefaultMethod, OPTIONS, effective_default, lua_options};
pub use new::{MethodKind, NewMethod};

/// The three phone slots a user has, as in the reference product (one number per type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PhoneType {
    Mobile,
    AlternateMobile,
    Office,
}

impl PhoneType {
    pub fn as_str(self) -> &'static str {
        match self {
            PhoneType::Mobile => "mobile",
            PhoneType::AlternateMobile => "alternate_mobile",
            PhoneType::Office => "office",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "mobile" => PhoneType::Mobile,
            "alternate_mobile" => PhoneType::AlternateMobile,
            "office" => PhoneType::Office,
            _ => return None,
        })
    }

    /// Fixed method ids per phone type, the ones Microsoft Graph uses, so "one per type" is
    /// structural and a re-registration replaces the number in place.
    pub fn method_id(self) -> &'static str {
        match self {
            PhoneType::Mobile => "3179e48a-750b-4051-897c-87b9720928f7",
            PhoneType::AlternateMobile => "b6332ec1-7057-4abe-9331-3d72feddfe41",
            PhoneType::Office => "e37fc753-ff3b-4958-9484-eaa9425c82bc",
        }
    }

    pub fn from_method_id(id: &str) -> Option<Self> {
        [
            PhoneType::Mobile,
            PhoneType::AlternateMobile,
            PhoneType::Office,
        ]
        .into_iter()
        .find(|t| t.method_id() == id)
    }

    /// An alternate mobile serves two-step verification only, never password reset.
    pub fn usable_for(self) -> &'static [Usage] {
        match self {
            PhoneType::AlternateMobile => &[Usage::Mfa],
            _ => &[Usage::Mfa, Usage::Sspr],
        }
    }
}

/// What a method can be used for: two-step verification and/or self-service password reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Usage {
    Mfa,
    Sspr,
}

/// A stored method as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Method {
    pub id: String,
    #[serde(flatten)]
    pub details: MethodDetails,
    pub created_at: String,
    pub usable_for: Vec<Usage>,
}

impl Method {
    /// The method as events show it: a phone number masked.
    pub fn masked(&self) -> Method {
        let mut method = self.clone();
        if let MethodDetails::Phone { phone_number, .. } = &mut method.details {
            *phone_number = crate::phone::mask_e164(phone_number);
        }
        method
    }
}

/// A method's kind and its own fields (the `kind` tag and the fields sit beside `id`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MethodDetails {
    /// Added only by an approved registration call (fixed id per phone type).
    Phone {
        /// E.164, without extension.
        phone_number: String,
        phone_type: PhoneType,
    },
    AuthenticatorApp {
        display_name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<String>,
    },
    SecurityKey {
        display_name: String,
        /// The WebAuthn credential id, base64url without padding.
        credential_id: String,
    },
    Email {
        address: String,
    },
    SecurityQuestions {
        /// How many questions the user answered (the answers never reach callverify).
        answered_count: u8,
    },
}

impl MethodDetails {
    pub fn kind(&self) -> MethodKind {
        match self {
            MethodDetails::Phone { .. } => MethodKind::Phone,
            MethodDetails::AuthenticatorApp { .. } => MethodKind::AuthenticatorApp,
            MethodDetails::SecurityKey { .. } => MethodKind::SecurityKey,
            MethodDetails::Email { .. } => MethodKind::Email,
            MethodDetails::SecurityQuestions { .. } => MethodKind::SecurityQuestions,
        }
    }

    /// Two-step verification and/or password reset, as the reference product has it: an
    /// authenticator app serves both, a security key sign-in only, e-mail and security questions
    /// password reset only; phones per type.
    pub fn usable_for(&self) -> Vec<Usage> {
        match self {
            MethodDetails::Phone { phone_type, .. } => phone_type.usable_for().to_vec(),
            MethodDetails::AuthenticatorApp { .. } => vec![Usage::Mfa, Usage::Sspr],
            MethodDetails::SecurityKey { .. } => vec![Usage::Mfa],
            MethodDetails::Email { .. } | MethodDetails::SecurityQuestions { .. } => {
                vec![Usage::Sspr]
            }
        }
    }

    /// Whether this method backs the default option `option`.
    pub fn backs(&self, option: DefaultMethod) -> bool {
        match (option.backing(), self) {
            (Backing::Phone(t), MethodDetails::Phone { phone_type, .. }) => t == *phone_type,
            (Backing::Kind(k), details) => k == details.kind(),
            _ => false,
        }
    }
}

/// `GET …/methods`: the user's methods and default sign-in method.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MethodsDocument {
    pub default_method: Option<DefaultMethod>,
    pub methods: Vec<Method>,
}

impl MethodsDocument {
    /// The document as it takes effect: a stored default that is no longer enabled (policy
    /// changed since) or not backed reads as the best enabled, backed option in preference
    /// order, or null. `enabled` lists the options the tenant policy allows.
    /// (The rule is [`effective_default`].)
    pub fn with_effective_default(mut self, enabled: &[DefaultMethod]) -> Self {
        self.default_method = effective_default(self.default_method, enabled, &self.methods);
        self
    }

    pub fn phone(&self, phone_type: PhoneType) -> Option<(&Method, &str)> {
        self.methods.iter().find_map(|m| match &m.details {
            MethodDetails::Phone {
                phone_number,
                phone_type: t,
            } if *t == phone_type => Some((m, phone_number.as_str())),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_method_ids_are_fixed_per_type() {
        for t in [
            PhoneType::Mobile,
            PhoneType::AlternateMobile,
            PhoneType::Office,
        ] {
            assert_eq!(PhoneType::from_method_id(t.method_id()), Some(t));
            assert!(crate::ids::MethodId::parse(t.method_id()).is_ok());
        }
    }

    fn method(details: MethodDetails) -> Method {
        Method {
            id: "m".into(),
            usable_for: details.usable_for(),
            details,
            created_at: String::new(),
        }
    }

    #[test]
    fn options_are_backed_by_the_right_methods() {
        let mobile = MethodDetails::Phone {
            phone_number: "+14255551234".into(),
            phone_type: PhoneType::Mobile,
        };
        let app = MethodDetails::AuthenticatorApp {
            display_name: "a".into(),
            device: None,
        };
        let email = MethodDetails::Email {
            address: "a@b.co".into(),
        };
        assert!(mobile.backs(DefaultMethod::Sms) && mobile.backs(DefaultMethod::VoiceMobile));
        assert!(!mobile.backs(DefaultMethod::VoiceOffice));
        assert!(app.backs(DefaultMethod::AuthenticatorPush));
        assert!(app.backs(DefaultMethod::AuthenticatorCode));
        assert!(DefaultMethod::ALL.iter().all(|d| !email.backs(*d)));
        assert_eq!(email.usable_for(), vec![Usage::Sspr]);
    }

    #[test]
    fn a_disabled_or_unbacked_default_reads_as_the_next_enabled_option() {
        let doc = MethodsDocument {
            default_method: Some(DefaultMethod::AuthenticatorPush),
            methods: vec![
                method(MethodDetails::AuthenticatorApp {
                    display_name: "a".into(),
                    device: None,
                }),
                method(MethodDetails::Phone {
                    phone_number: "+14255551234".into(),
                    phone_type: PhoneType::Mobile,
                }),
            ],
        };
        let all = DefaultMethod::ALL;
        let effective =
            |enabled: &[DefaultMethod]| doc.clone().with_effective_default(enabled).default_method;
        assert_eq!(effective(&all), Some(DefaultMethod::AuthenticatorPush));
        assert_eq!(effective(&all[3..]), Some(DefaultMethod::VoiceMobile));
        assert_eq!(effective(&all[..1]), None);
    }

    #[test]
    fn phone_methods_serialise_with_kind_tag() {
        let m = Method {
            id: PhoneType::Mobile.method_id().into(),
            details: MethodDetails::Phone {
                phone_number: "+14255551234".into(),
                phone_type: PhoneType::Mobile,
            },
            created_at: "2026-11-27T00:00:00Z".into(),
            usable_for: PhoneType::Mobile.usable_for().to_vec(),
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["kind"], "phone");
        assert_eq!(v["phone_type"], "mobile");
        assert_eq!(v["usable_for"], serde_json::json!(["mfa", "sspr"]));
    }
}
