//! The application state every handler shares: cheap, cloneable handles.

use std::sync::Arc;

use crate::api::auth::KeyRing;
use crate::config::Config;
use crate::events::Emitter;
use crate::notify::Notifier;
use crate::provider::twilio::TwilioClient;
use crate::store::Store;
use crate::telephony::twiml::Twiml;

#[derive(Clone)]
/// Every field is a handle (`Arc` or a type built on one): axum clones the state for every
/// request, so a field that owns strings or collections would cost allocations on the hot path.
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub twilio: Arc<TwilioClient>,
    pub notifier: Notifier,
    pub events: Arc<Emitter>,
    pub twiml: Arc<Twiml>,
    pub keys: Arc<KeyRing>,
    /// Tenant policies as the verification start reads them (fresh for about a second).
    pub policies: Arc<crate::policy::cache::PolicyCache>,
    /// `server.public_url` without a trailing slash.
    pub public_url: Arc<str>,
    /// The in-process carrier simulator when `provider.kind = "simulator"` (kept alive here).
    pub simulator: Option<Arc<callverify_simulator::SimulatorHandle>>,
}

impl AppState {
    /// Announces a verification that just ended, off the caller's path (a webhook's answer does
    /// not wait for it).
    pub fn announce_end(&self, id: &crate::ids::VerificationId) {
        // No tenant takes events: nothing to read, nothing to queue.
        if self.events.is_off() {
            return;
        }
        let (state, id) = (self.clone(), id.clone());
        tokio::spawn(async move {
            match state.store.verification(&id).await {
                // It just ended, so its view no longer depends on the clock: its own
                // `updated_at` serves as "now" (no extra `TIME` round trip).
                Ok(Some(v)) => {
                    let now = v.updated_at;
                    state.events.verification_ended(&state.store, &v, now).await
                }
                Ok(None) => {}
                Err(e) => tracing::error!(verification = %id, error = %e, "end not announced"),
            }
        });
    }

    /// The provider's auth token: Basic-auth password and webhook signing key.
    pub fn auth_token(&self) -> &str {
        self.config.provider.twilio.auth_token.expose()
    }
}
