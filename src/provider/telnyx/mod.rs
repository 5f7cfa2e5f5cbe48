//! Telnyx TeXML (docs/PROVIDERS.md#telnyx-texml): the JSON TeXML Calls API with a Bearer API
//! key, webhooks signed with Ed25519 (`telnyx-signature-ed25519` over `timestamp|body`),
//! Twilio-style form parameters (`CallSid` like `v3:…`, `CallStatus`, `Digits`) and TeXML,
//! which speaks the TwiML verbs callverify uses.

pub mod client;
pub mod config;
pub mod signature;

use ed25519_dalek::VerifyingKey;

use super::WebhookRequest;
use super::dialect::{Dialect, DialectProvider};
use super::settings::AccountCommon;
use super::twilio::answered_by_machine;
use super::twilio::form::FormParams;
use super::twilio::twiml::Twiml;
use client::TelnyxClient;
use config::TelnyxKeys;

/// One Telnyx account (TeXML application).
pub type Telnyx = DialectProvider<TelnyxClient, PublicKey>;

impl Telnyx {
    pub fn new(
        account: &AccountCommon,
        config: &TelnyxKeys,
        default_locale: &str,
    ) -> Result<Self, String> {
        let client = TelnyxClient::new(account, config)?;
        let key = signature::public_key(&config.public_key)
            .map_err(|e| format!("providers.{}: {e}", account.name))?;
        let markup = Twiml::with_templates(
            default_locale,
            include_str!("../../../twiml/gather_telnyx.xml"),
            include_str!("../../../twiml/goodbye.xml"),
        )?;
        Self::with_markup(&account.name, client, PublicKey(key), markup)
    }
}

/// The account's Ed25519 public key, which verifies `telnyx-signature-ed25519`.
pub struct PublicKey(VerifyingKey);

impl Dialect for PublicKey {
    fn is_signed(&self, request: &WebhookRequest<'_>) -> bool {
        request.header(signature::SIGNATURE_HEADER).is_some()
            && request.header(signature::TIMESTAMP_HEADER).is_some()
    }

    fn is_valid(&self, request: &WebhookRequest<'_>, _params: &FormParams) -> bool {
        let (Some(sig), Some(ts)) = (
            request.header(signature::SIGNATURE_HEADER),
            request.header(signature::TIMESTAMP_HEADER),
        ) else {
            return false;
        };
        signature::verify(&self.0, sig, ts, request.body, now_secs()).is_ok()
    }

    /// Answering-machine detection reports `AnsweredBy=machine`
    /// (docs/PROVIDERS.md#telnyx-relied-on-behaviour) besides Twilio's `machine_*` and `fax`.
    fn is_machine(&self, answered_by: &str) -> bool {
        is_machine(answered_by)
    }
}

/// `AnsweredBy` of a Telnyx TeXML call: `machine` (and Twilio's spellings, which TeXML mirrors).
pub fn is_machine(answered_by: &str) -> bool {
    answered_by.eq_ignore_ascii_case("machine") || answered_by_machine(answered_by)
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
