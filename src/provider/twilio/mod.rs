//! Twilio (and the built-in carrier simulator, which speaks its protocol): the Calls API
//! client, `X-Twilio-Signature` validation, webhook parameters and TwiML. Wire facts:
//! docs/PROVIDERS.md (Twilio).

pub mod client;
pub mod config;
pub mod form;
pub mod shared_key;
pub mod signature;
pub mod twiml;

use super::dialect::{Dialect, DialectProvider};
use super::settings::AccountCommon;
use super::{CallProgress, WebhookRequest};
use crate::config::Secret;
use client::TwilioClient;
use config::TwilioKeys;
use form::FormParams;

pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// One Twilio account.
pub type Twilio = DialectProvider<TwilioClient, AuthTokens>;

impl Twilio {
    pub fn new(
        account: &AccountCommon,
        keys: &TwilioKeys,
        default_locale: &str,
    ) -> Result<Self, String> {
        let client = TwilioClient::new(account, keys)?;
        let tokens = AuthTokens {
            primary: keys.auth_token.clone(),
            secondary: keys.auth_token_secondary.clone(),
            shared_keys: keys.webhook_shared_keys.clone(),
        };
        Self::with(&account.name, client, tokens, default_locale)
    }
}

/// The auth token that signs the webhooks (and is the REST password unless an API key is
/// configured), and a second one also accepted during a token rotation.
pub struct AuthTokens {
    primary: Secret,
    secondary: Option<Secret>,
    /// SharedKeys a webhook may name in `X-Twilio-Webhooks-Signature-Settings`.
    shared_keys: Vec<shared_key::SharedKey>,
}

impl Dialect for AuthTokens {
    fn is_signed(&self, request: &WebhookRequest<'_>) -> bool {
        request.header(SIGNATURE_HEADER).is_some()
    }

    fn is_valid(&self, request: &WebhookRequest<'_>, params: &FormParams) -> bool {
        let Some(signature) = request.header(SIGNATURE_HEADER) else {
            return false;
        };
        let pairs = params.to_vec();
        let signed_with = |token: &Secret| {
            signature::validate_form(token.expose(), signature, request.url, &pairs)
        };
        match request.header(shared_key::SETTINGS_HEADER) {
            Some(settings) => {
                shared_key::validate(&self.shared_keys, settings, signature, request.url, &pairs)
            }
            None => signed_with(&self.primary) || self.secondary.as_ref().is_some_and(signed_with),
        }
    }
}

/// Twilio's `CallStatus` in neutral terms.
pub fn progress(call_status: &str) -> CallProgress {
    match call_status {
        "queued" | "initiated" => CallProgress::Queued,
        "ringing" => CallProgress::Ringing,
        "in-progress" | "answered" => CallProgress::Answered,
        "completed" => CallProgress::Completed,
        "busy" => CallProgress::Busy,
        "no-answer" => CallProgress::NoAnswer,
        "failed" => CallProgress::Failed,
        "canceled" => CallProgress::Canceled,
        _ => CallProgress::Unknown,
    }
}

/// `AnsweredBy` (answering-machine detection): `machine_start`, `machine_end_*` or `fax`;
/// `human` and `unknown` are treated as a person.
pub fn answered_by_machine(answered_by: &str) -> bool {
    answered_by.starts_with("machine_") || answered_by == "fax"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_statuses_map_onto_neutral_progress() {
        assert_eq!(progress("in-progress"), CallProgress::Answered);
        assert_eq!(progress("no-answer"), CallProgress::NoAnswer);
        assert_eq!(progress("completed"), CallProgress::Completed);
        assert_eq!(progress("initiated"), CallProgress::Queued);
        assert_eq!(progress("bogus"), CallProgress::Unknown);
    }

    #[test]
    fn machines_and_faxes_are_not_people() {
        for machine in [
            "machine_start",
            "machine_end_beep",
            "machine_end_other",
            "fax",
        ] {
            assert!(answered_by_machine(machine), "{machine}");
        }
        for person in ["human", "unknown", ""] {
            assert!(!answered_by_machine(person), "{person}");
        }
    }
}
