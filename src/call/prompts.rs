//! What the callee hears, independent of any provider's markup: the sentences of each locale
//! (`twiml/locales/<locale>.toml`, compiled in) and the [`Answer`] a webhook gives. Each provider
//! adapter renders an `Answer` in its own markup (Twilio: `src/provider/twilio/twiml.rs`).

use serde::Deserialize;

use super::Purpose;

/// The locales we speak, with their prompt files.
const LOCALES: [(&str, &str); 2] = [
    ("en-US", include_str!("../../twiml/locales/en-US.toml")),
    ("nl-NL", include_str!("../../twiml/locales/nl-NL.toml")),
];

/// Every sentence of one locale (see `twiml/locales/en-US.toml`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prompts {
    /// BCP 47 language of the `<Say>`.
    pub language: String,
    /// The text-to-speech voice (providers without that voice use their default).
    pub voice: String,
    pub prompt_registration: String,
    pub prompt_sign_in: String,
    pub prompt_password_reset: String,
    pub fraud_hint: String,
    pub invalid_key: String,
    pub no_key: String,
    pub confirm_fraud: String,
    pub approved: String,
    pub fraud_reported: String,
    pub no_input: String,
    pub gone: String,
    pub apology: String,
}

impl Prompts {
    /// The question for `purpose`, followed by the fraud hint.
    pub fn ask(&self, purpose: Purpose) -> String {
        let ask = match purpose {
            Purpose::Registration => &self.prompt_registration,
            Purpose::SignIn => &self.prompt_sign_in,
            Purpose::PasswordReset => &self.prompt_password_reset,
        };
        format!("{ask} {}", self.fraud_hint)
    }

    pub fn preface(&self, preface: Preface) -> &str {
        match preface {
            Preface::InvalidKey => &self.invalid_key,
            Preface::NoKey => &self.no_key,
        }
    }

    pub fn closing(&self, closing: Closing) -> &str {
        match closing {
            Closing::Approved => &self.approved,
            Closing::FraudReported => &self.fraud_reported,
            Closing::NoInput => &self.no_input,
            Closing::Gone => &self.gone,
            Closing::Apology => &self.apology,
        }
    }
}

/// Said before the prompt when it is repeated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Preface {
    InvalidKey,
    NoKey,
}

/// The last sentence before hanging up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Closing {
    Approved,
    FraudReported,
    NoInput,
    /// The verification ended or never existed.
    Gone,
    /// Our side failed (Redis down, …): a short apology instead of the provider's error message.
    Apology,
}

impl Closing {
    pub const ALL: [Closing; 5] = [
        Closing::Approved,
        Closing::FraudReported,
        Closing::NoInput,
        Closing::Gone,
        Closing::Apology,
    ];
}

/// What a voice or gather webhook answers, before a provider puts it in its markup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer<'a> {
    /// Ask for one key: the purpose's prompt (after `preface` when repeated); the key, or
    /// silence after `timeout_secs`, is posted to `action`.
    Prompt {
        locale: &'a str,
        purpose: Purpose,
        preface: Option<Preface>,
        action: &'a str,
        timeout_secs: u32,
    },
    /// After `0`: ask for `#` to confirm the fraud report.
    ConfirmFraud {
        locale: &'a str,
        action: &'a str,
        timeout_secs: u32,
    },
    /// Say the closing sentence and hang up.
    Goodbye { locale: &'a str, closing: Closing },
    /// Hang up without a word (an answering machine: nothing is read out).
    Hangup,
}

/// Every supported locale with its sentences, parsed once (the files are compiled in and
/// checked by the tests below, so parsing cannot fail at run time).
pub fn all() -> &'static [(&'static str, Prompts)] {
    static PARSED: std::sync::OnceLock<Vec<(&'static str, Prompts)>> = std::sync::OnceLock::new();
    PARSED.get_or_init(|| {
        LOCALES
            .iter()
            .map(|(locale, text)| {
                let prompts = toml::from_str(text)
                    .unwrap_or_else(|e| panic!("twiml/locales/{locale}.toml: {e}"));
                (*locale, prompts)
            })
            .collect()
    })
}

pub fn locales() -> impl Iterator<Item = &'static str> {
    LOCALES.iter().map(|(l, _)| *l)
}

/// The supported locale for a requested one: exact (case-insensitive) match, else the same
/// language (`nl-BE` → `nl-NL`), else `None`.
pub fn match_locale(requested: &str) -> Option<&'static str> {
    let lang = requested.split(['-', '_']).next().unwrap_or_default();
    locales()
        .find(|l| l.eq_ignore_ascii_case(requested))
        .or_else(|| {
            locales().find(|l| {
                l.split('-')
                    .next()
                    .is_some_and(|x| x.eq_ignore_ascii_case(lang))
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_locale_parses_with_every_sentence() {
        assert_eq!(all().len(), LOCALES.len());
        for (locale, p) in all() {
            assert_eq!(&p.language, locale);
            assert!(p.ask(Purpose::Registration).contains(&p.fraud_hint));
            for c in Closing::ALL {
                assert!(!p.closing(c).is_empty());
            }
        }
    }

    #[test]
    fn locales_match_exactly_or_by_language() {
        assert_eq!(match_locale("nl-NL"), Some("nl-NL"));
        assert_eq!(match_locale("nl-be"), Some("nl-NL"));
        assert_eq!(match_locale("en-GB"), Some("en-US"));
        assert_eq!(match_locale("de-DE"), None);
    }
}
