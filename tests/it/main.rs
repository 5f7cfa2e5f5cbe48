//! Integration tests: one binary, a real callverify on loopback, a real Redis (own key prefix per
//! test, so they run in parallel), provider traffic over real signed HTTP.

mod abuse;
mod call_me;
mod cancel;
mod cluster;
mod connections;
mod demo;
mod deploy;
mod disorder;
mod display_names;
mod events;
mod external_mfa;
mod hostile;
mod idempotency;
mod invariants;
mod key_names;
mod methods;
mod ops;
mod placing_account;
mod policy;
mod private_redis;
mod process;
mod providers;
mod reconciliation;
mod serving;
mod shared_key;
mod simulated;
mod slow_body;
mod soak;
mod stalled_keypress;
mod stalled_start;
mod state_machine;
mod support;
mod telnyx_contract;
mod web_demo;
mod webhooks;
