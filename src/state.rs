//! The application state every handler shares: cheap, cloneable handles.

use std::sync::Arc;

use crate::api::auth::KeyRing;
use crate::config::Config;
use crate::notify::Notifier;
use crate::provider::twilio::TwilioClient;
use crate::store::Store;
use crate::telephony::twiml::Twiml;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub twilio: TwilioClient,
    pub notifier: Notifier,
    pub twiml: Arc<Twiml>,
    pub keys: Arc<KeyRing>,
    /// `server.public_url` without a trailing slash.
    pub public_url: Arc<str>,
}

impl AppState {
    /// The provider's auth token: Basic-auth password and webhook signing key.
    pub fn auth_token(&self) -> &str {
        self.config.provider.twilio.auth_token.expose()
    }
}
