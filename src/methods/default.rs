//! The default sign-in method: its options, their order of preference and the rule that picks
//! one. This table and [`effective_default`] are the Rust half of the rules; the other half is
//! `repair_default` in `src/store/scripts/methods_lib.lua`, the only Lua code that chooses a
//! default (every script that writes methods — adding, deleting, setting the default, and an
//! approved registration in `transition.lua` — calls it). Lua gets [`OPTIONS`] itself, as a
//! table put in front of the library in those scripts ([`lua_options`]), and the options a policy enables as a
//! mask over it ([`DefaultMethod::mask`]), so the order lives here and nowhere else.
//!
//! The rules (docs/ARCHITECTURE.md, "The default sign-in method"):
//! - Only the options below can be the default: e-mail and security questions serve password
//!   reset only and are not options at all.
//! - An option counts while the tenant policy enables it ([`crate::policy::Policy::enabled_options`])
//!   and one of the user's methods backs it ([`Backing`]).
//! - A stored default that still counts stays. Otherwise — the first method registered, the
//!   default's method deleted, the policy switched it off — it is the first option that counts,
//!   in the order of [`OPTIONS`], or none.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Method, MethodKind, PhoneType};

/// The default sign-in method options (their order here means nothing: [`OPTIONS`] orders them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DefaultMethod {
    SecurityKey,
    AuthenticatorPush,
    AuthenticatorCode,
    VoiceMobile,
    Sms,
    VoiceAlternateMobile,
    VoiceOffice,
}

/// What must be registered for an option to be the default: a method of a kind (authenticator
/// app, security key) or the phone of one type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    Kind(MethodKind),
    Phone(PhoneType),
}

/// Every option, its name (API, Redis, Lua) and what backs it, **in order of preference**: the
/// one place that order is written. To change the order, move a row; to add an option, add a
/// variant above and a row here.
pub const OPTIONS: [(DefaultMethod, &str, Backing); 7] = [
    (
        DefaultMethod::SecurityKey,
        "security_key",
        Backing::Kind(MethodKind::SecurityKey),
    ),
    (
        DefaultMethod::AuthenticatorPush,
        "authenticator_push",
        Backing::Kind(MethodKind::AuthenticatorApp),
    ),
    (
        DefaultMethod::AuthenticatorCode,
        "authenticator_code",
        Backing::Kind(MethodKind::AuthenticatorApp),
    ),
    (
        DefaultMethod::VoiceMobile,
        "voice_mobile",
        Backing::Phone(PhoneType::Mobile),
    ),
    (DefaultMethod::Sms, "sms", Backing::Phone(PhoneType::Mobile)),
    (
        DefaultMethod::VoiceAlternateMobile,
        "voice_alternate_mobile",
        Backing::Phone(PhoneType::AlternateMobile),
    ),
    (
        DefaultMethod::VoiceOffice,
        "voice_office",
        Backing::Phone(PhoneType::Office),
    ),
];

impl DefaultMethod {
    /// Every option in order of preference (the first column of [`OPTIONS`]).
    pub const ALL: [DefaultMethod; OPTIONS.len()] = {
        let mut all = [DefaultMethod::SecurityKey; OPTIONS.len()];
        let mut i = 0;
        while i < OPTIONS.len() {
            all[i] = OPTIONS[i].0;
            i += 1;
        }
        all
    };

    fn row(self) -> &'static (DefaultMethod, &'static str, Backing) {
        OPTIONS
            .iter()
            .find(|row| row.0 == self)
            .expect("every option has its row in OPTIONS")
    }

    pub fn as_str(self) -> &'static str {
        self.row().1
    }

    pub fn parse(s: &str) -> Option<Self> {
        OPTIONS.iter().find(|row| row.1 == s).map(|row| row.0)
    }

    /// What must be registered for this option to be the default.
    pub fn backing(self) -> Backing {
        self.row().2
    }

    /// Whether one of `methods` backs this option.
    pub fn is_backed_by(self, methods: &[Method]) -> bool {
        methods.iter().any(|m| m.details.backs(self))
    }

    /// The phone a voice default calls, if it is a voice option.
    pub fn voice_phone(self) -> Option<PhoneType> {
        match self {
            DefaultMethod::VoiceMobile => Some(PhoneType::Mobile),
            DefaultMethod::VoiceAlternateMobile => Some(PhoneType::AlternateMobile),
            DefaultMethod::VoiceOffice => Some(PhoneType::Office),
            _ => None,
        }
    }

    /// `enabled` as the Lua scripts receive it: `1` or `0` per row of [`OPTIONS`], in its order
    /// (short enough to be stored with a verification without growing its hash's encoding).
    pub fn mask(enabled: &[DefaultMethod]) -> String {
        Self::ALL
            .iter()
            .map(|d| if enabled.contains(d) { '1' } else { '0' })
            .collect()
    }
}

/// [`OPTIONS`] as the Lua function `OPTIONS()` returning them as a table (`{option, how =
/// 'kind' | 'id', what}` per row, in order of preference), put with the methods library into the method scripts (`src/store/mod.rs`): the Lua side's
/// only copy of the order and the backing.
pub fn lua_options() -> String {
    // A function, not a table: built only by a script that needs it (not on every keypress).
    let mut lua = String::from("local function OPTIONS() return {\n");
    for (option, name, backing) in OPTIONS {
        debug_assert_eq!(option.as_str(), name);
        let (how, what) = match backing {
            Backing::Kind(kind) => ("kind", kind.as_str()),
            Backing::Phone(phone) => ("id", phone.method_id()),
        };
        lua.push_str(&format!(
            "  {{option = '{name}', how = '{how}', what = '{what}'}},\n"
        ));
    }
    lua.push_str("} end\n");
    lua
}

/// The rule (Rust's half; `repair_default` in `methods_lib.lua` is the same rule where Redis
/// writes): `stored` stands while `enabled` has it and one of `methods` backs it; else the
/// first enabled, backed option in order of preference, or none.
pub fn effective_default(
    stored: Option<DefaultMethod>,
    enabled: &[DefaultMethod],
    methods: &[Method],
) -> Option<DefaultMethod> {
    let counts = |d: &DefaultMethod| enabled.contains(d) && d.is_backed_by(methods);
    match stored {
        Some(d) if counts(&d) => Some(d),
        _ => DefaultMethod::ALL.into_iter().find(counts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_has_one_row_and_its_serde_name() {
        for (i, (option, name, _)) in OPTIONS.iter().enumerate() {
            assert_eq!(DefaultMethod::ALL[i], *option);
            assert_eq!(DefaultMethod::parse(name), Some(*option));
            assert_eq!(option.as_str(), *name);
            assert_eq!(serde_json::to_value(option).unwrap(), *name);
            assert_eq!(OPTIONS.iter().filter(|r| r.0 == *option).count(), 1);
        }
        assert_eq!(DefaultMethod::parse("email"), None);
        assert_eq!(DefaultMethod::parse("security_questions"), None);
    }

    #[test]
    fn lua_gets_the_table_in_its_order_and_the_enabled_options_as_a_mask() {
        let shuffled = [
            DefaultMethod::VoiceOffice,
            DefaultMethod::Sms,
            DefaultMethod::SecurityKey,
        ];
        assert_eq!(DefaultMethod::mask(&shuffled), "1000101");
        assert_eq!(DefaultMethod::mask(&[]), "0000000");
        let lua = lua_options();
        let rows: Vec<&str> = lua.lines().skip(1).take(OPTIONS.len()).collect();
        assert_eq!(
            rows[0],
            "  {option = 'security_key', how = 'kind', what = 'security_key'},"
        );
        assert_eq!(
            rows[4],
            format!(
                "  {{option = 'sms', how = 'id', what = '{}'}},",
                PhoneType::Mobile.method_id()
            )
        );
        assert_eq!(lua.lines().count(), OPTIONS.len() + 2);
    }
}
