//! The application state every HTTP handler shares. Only the HTTP layer (`api/`, `telephony/`,
//! `lib.rs`) sees it; domain code takes the handles it uses.

use std::ops::Deref;
use std::sync::Arc;

use crate::api::auth::KeyRing;
use crate::config::Config;
use crate::notify::Notifier;
use crate::store::Store;
use crate::verification::CallFlow;

/// One `Arc`: axum clones the state for every request (and every layer that takes it), so a
/// clone must cost one reference count, not one per handle inside.
#[derive(Clone)]
pub struct AppState(Arc<Handles>);

/// What handlers reach through [`AppState`] (by `Deref`: `state.store`, `state.flow`, …).
pub struct Handles {
    pub config: Arc<Config>,
    pub store: Store,
    /// The verification lifecycle and the handles it works with.
    pub flow: CallFlow,
    pub notifier: Notifier,
    pub keys: Arc<KeyRing>,
    /// The Entra External MFA provider (`[external_mfa]`), when configured.
    pub external_mfa: Option<Arc<crate::external_mfa::ExternalMfa>>,
    /// The in-process carrier simulator when `provider.kind = "simulator"` (kept alive here).
    pub simulator: Option<Arc<callverify_simulator::SimulatorHandle>>,
    /// Every simulator account's carrier, by account name (`kind = "simulator"`), file order.
    pub simulators: Arc<Vec<(String, Arc<callverify_simulator::SimulatorHandle>)>>,
}

impl AppState {
    pub fn new(handles: Handles) -> Self {
        Self(Arc::new(handles))
    }
}

impl Deref for AppState {
    type Target = Handles;

    fn deref(&self) -> &Handles {
        &self.0
    }
}
