//! `POST …/methods` bodies: the non-phone methods a portal adds after proving them itself, parsed
//! into normalised [`MethodDetails`] or refused with a precise problem.

use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::MethodDetails;
use crate::error::ApiError;

/// The kinds of security-info method (policy switches them on and off per tenant).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MethodKind {
    Phone,
    AuthenticatorApp,
    SecurityKey,
    Email,
    SecurityQuestions,
}

impl MethodKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MethodKind::Phone => "phone",
            MethodKind::AuthenticatorApp => "authenticator_app",
            MethodKind::SecurityKey => "security_key",
            MethodKind::Email => "email",
            MethodKind::SecurityQuestions => "security_questions",
        }
    }

    /// Kinds a user holds at most one of (a second add is a 409); authenticator apps and
    /// security keys can be several, each with its own random id, up to `max_per_user`.
    pub fn max_per_user(self) -> u32 {
        match self {
            MethodKind::AuthenticatorApp => 5,
            MethodKind::SecurityKey => 20,
            MethodKind::Phone => 3,
            MethodKind::Email | MethodKind::SecurityQuestions => 1,
        }
    }
}

/// A `POST …/methods` body. Unknown fields are refused; `phone` is not a kind here (phones are
/// added by an approved registration call).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum NewMethod {
    AuthenticatorApp {
        /// 1–64 characters, no control characters.
        display_name: String,
        /// Optional device description, up to 128 characters.
        #[serde(default)]
        device: Option<String>,
    },
    SecurityKey {
        /// 1–64 characters, no control characters.
        display_name: String,
        /// WebAuthn credential id: base64url without padding, 16–1023 bytes decoded.
        credential_id: String,
    },
    Email {
        /// A mailbox address (`local@domain.tld`), at most 254 characters.
        address: String,
    },
    SecurityQuestions {
        /// 1–20 (the answers themselves never reach callverify).
        #[schema(minimum = 1, maximum = 20)]
        answered_count: u8,
    },
}

const MAX_NAME: usize = 64;
const MAX_DEVICE: usize = 128;
const MAX_ANSWERED: u8 = 20;

impl NewMethod {
    /// Reads a request body: `kind: "phone"` points to the verification flow, anything else must
    /// be a valid new method.
    pub fn from_body(body: serde_json::Value) -> Result<MethodDetails, ApiError> {
        if body.get("kind").and_then(|k| k.as_str()) == Some("phone") {
            return Err(ApiError::PhoneMethodNeedsCall(
                "phone methods are added by a registration call: POST /v1/tenants/{tenant}/users/{user}/verifications with purpose \"registration\"".into(),
            ));
        }
        let new: NewMethod = serde_json::from_value(body)
            .map_err(|e| ApiError::InvalidRequest(format!("invalid body: {e}")))?;
        new.validate()
    }

    fn validate(self) -> Result<MethodDetails, ApiError> {
        Ok(match self {
            NewMethod::AuthenticatorApp {
                display_name,
                device,
            } => MethodDetails::AuthenticatorApp {
                display_name: text("display_name", &display_name, MAX_NAME)?,
                device: device.map(|d| text("device", &d, MAX_DEVICE)).transpose()?,
            },
            NewMethod::SecurityKey {
                display_name,
                credential_id,
            } => MethodDetails::SecurityKey {
                display_name: text("display_name", &display_name, MAX_NAME)?,
                credential_id: credential(&credential_id)?,
            },
            NewMethod::Email { address } => MethodDetails::Email {
                address: email(&address)?,
            },
            NewMethod::SecurityQuestions { answered_count } => {
                if !(1..=MAX_ANSWERED).contains(&answered_count) {
                    return Err(ApiError::InvalidRequest(format!(
                        "answered_count must be 1..={MAX_ANSWERED}"
                    )));
                }
                MethodDetails::SecurityQuestions { answered_count }
            }
        })
    }
}

/// A trimmed display text without control characters or bidi controls, with at least one
/// visible character (a letter, number, punctuation or symbol by its Unicode general category,
/// not one that renders blank). Portals show these names to the user and to help-desk staff: a U+202E
/// can make "evil\u{202E}yek" read as another key's name, and a zero-width-only name looks
/// like no name at all.
fn text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let value = value.trim();
    let visible = value.chars().any(is_visible);
    let refused = value.chars().any(|c| c.is_control() || is_bidi_control(c));
    if !visible || refused || value.chars().count() > max {
        return Err(ApiError::InvalidRequest(format!(
            "{field} must be 1-{max} characters with a visible one, without control or \
             bidirectional-formatting characters"
        )));
    }
    Ok(value.to_owned())
}

/// Explicit directional embeddings, overrides and isolates, and the LRM/RLM marks.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{061C}')
}

/// A character that shows on its own: its general category is a letter, number, punctuation or
/// symbol (not a separator, a mark alone, a control or format character, private use, a
/// surrogate or unassigned — U+FFFF included), and it is not one of the blank ones below.
fn is_visible(c: char) -> bool {
    use unicode_properties::{GeneralCategoryGroup as G, UnicodeGeneralCategory};
    let shown = matches!(
        c.general_category_group(),
        G::Letter | G::Number | G::Punctuation | G::Symbol
    );
    shown && !is_invisible(c)
}

/// Characters that render as nothing (some are letters or symbols by category): the blank
/// Braille pattern, zero-width spaces and joiners, word joiner and invisible
/// operators, soft hyphen, BOM, fillers, variation selectors, tags.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{2800}' | '\u{00AD}' | '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{E0000}'..='\u{E0FFF}')
}

fn credential(value: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::InvalidRequest(
            "credential_id must be base64url without padding (A-Z a-z 0-9 - _), 16-1023 bytes"
                .into(),
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| bad())?;
    if !(16..=1023).contains(&bytes.len()) {
        return Err(bad());
    }
    Ok(value.to_owned())
}

/// A pragmatic mailbox check: dot-atom local part, a domain of at least two DNS labels with an
/// alphabetic top level. The domain is lowercased (it is case-insensitive; the local part is not).
fn email(value: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::InvalidRequest(
            "address must be an e-mail address such as user@example.com".into(),
        )
    };
    if value.len() > 254 {
        return Err(bad());
    }
    let (local, domain) = value.rsplit_once('@').ok_or_else(bad)?;
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
    let local_ok = (1..=64).contains(&local.len())
        && local
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(atext));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len())
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    if !local_ok || !domain_ok {
        return Err(bad());
    }
    Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn slug(e: ApiError) -> &'static str {
        e.kind().1
    }

    #[test]
    fn each_kind_parses_into_normalised_details() {
        let m = NewMethod::from_body(json!({"kind": "email", "address": "Ann@Example.COM"}));
        assert_eq!(
            m.unwrap(),
            MethodDetails::Email {
                address: "Ann@example.com".into()
            }
        );
        let m =
            NewMethod::from_body(json!({"kind": "authenticator_app", "display_name": " Pixel 8 "}));
        assert_eq!(
            m.unwrap(),
            MethodDetails::AuthenticatorApp {
                display_name: "Pixel 8".into(),
                device: None
            }
        );
        let id = "AAECAwQFBgcICQoLDA0ODw";
        let m = NewMethod::from_body(
            json!({"kind": "security_key", "display_name": "YubiKey", "credential_id": id}),
        );
        assert!(matches!(m, Ok(MethodDetails::SecurityKey { .. })));
        let m = NewMethod::from_body(json!({"kind": "security_questions", "answered_count": 3}));
        assert!(m.is_ok());
    }

    #[test]
    fn phone_unknown_fields_and_bad_values_are_refused() {
        let cases = [
            (
                json!({"kind": "phone", "phone_number": "+14255551234"}),
                "phone-method-needs-verification",
            ),
            (
                json!({"kind": "email", "address": "a@b.co", "extra": 1}),
                "invalid-request",
            ),
            (json!({"kind": "fax"}), "invalid-request"),
            (json!({"address": "a@b.co"}), "invalid-request"),
            (
                json!({"kind": "email", "address": "a@b"}),
                "invalid-request",
            ),
            (
                json!({"kind": "email", "address": "a..b@b.co"}),
                "invalid-request",
            ),
            (
                json!({"kind": "email", "address": "a b@b.co"}),
                "invalid-request",
            ),
            (
                json!({"kind": "email", "address": "@b.co"}),
                "invalid-request",
            ),
            (
                json!({"kind": "security_key", "display_name": "k", "credential_id": "AAECAwQFBgcICQoLDA0ODw=="}),
                "invalid-request",
            ),
            (
                json!({"kind": "security_key", "display_name": "k", "credential_id": "AAEC"}),
                "invalid-request",
            ),
            (
                json!({"kind": "security_key", "display_name": "k", "credential_id": "AAECAwQFBgcICQoLDA0OD+"}),
                "invalid-request",
            ),
            (
                json!({"kind": "authenticator_app", "display_name": "  "}),
                "invalid-request",
            ),
            (
                json!({"kind": "authenticator_app", "display_name": "a\u{7}b"}),
                "invalid-request",
            ),
            (
                json!({"kind": "security_questions", "answered_count": 0}),
                "invalid-request",
            ),
            (
                json!({"kind": "security_questions", "answered_count": 300}),
                "invalid-request",
            ),
        ];
        for (body, expected) in cases {
            let got = NewMethod::from_body(body.clone()).map_err(slug);
            assert_eq!(got.err(), Some(expected), "{body}");
        }
    }

    #[test]
    fn display_names_refuse_bidi_controls_and_invisible_only_text() {
        let name = |n: &str| {
            NewMethod::from_body(json!({"kind": "authenticator_app", "display_name": n}))
                .map_err(slug)
        };
        for refused in [
            "evil\u{202E}yek",
            "\u{202A}a",
            "a\u{2066}b\u{2069}",
            "a\u{200E}",
            "\u{200F}a",
            "\u{200B}\u{200C}\u{200D}",
            "\u{2060}\u{FEFF} \u{00AD}",
            "a\u{0}b",
            "a\u{9f}b",
            "\u{2800}",
            " \u{2800}\u{2800} ",
            "\u{FFFF}",
            "\u{E000}\u{F8FF}",
            "\u{F0000}",
            "\u{3164}\u{115F}",
            "\u{0301}\u{0308}",
            "\u{3000}\u{2003}",
        ] {
            assert_eq!(name(refused).err(), Some("invalid-request"), "{refused:?}");
        }
        for accepted in [
            "Pixel 8",
            "Jan's 📱",
            "👩\u{200D}💻 laptop",
            "Ünïcödé",
            "華為",
            "7",
            "-",
            "⠁⠃ braille",
        ] {
            assert!(name(accepted).is_ok(), "{accepted:?}");
        }
    }
}
