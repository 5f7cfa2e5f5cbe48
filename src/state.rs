//! The application state every HTTP handler shares: cheap, cloneable handles. Only the HTTP
//! layer (`api/`, `telephony/`, `lib.rs`) sees it; domain code takes the handles it uses.

use std::sync::Arc;

use crate::api::auth::KeyRing;
use crate::config::Config;
use crate::notify::Notifier;
use crate::store::Store;
use crate::verification::CallFlow;

#[derive(Clone)]
/// Every field is a handle (`Arc` or a type built on one): axum clones the state for every
/// request, so a field that owns strings or collections would cost allocations on the hot path.
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    /// The verification lifecycle and the handles it works with.
    pub flow: CallFlow,
    pub notifier: Notifier,
    pub keys: Arc<KeyRing>,
    /// The in-process carrier simulator when `provider.kind = "simulator"` (kept alive here).
    pub simulator: Option<Arc<callverify_simulator::SimulatorHandle>>,
    /// Every simulator account's carrier, by account name (`kind = "simulator"`), file order.
    pub simulators: Arc<Vec<(String, Arc<callverify_simulator::SimulatorHandle>)>>,
}
