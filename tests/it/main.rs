//! Integration tests: one binary, a real callverify on loopback, a real Redis (own key prefix per
//! test, so they run in parallel), provider traffic over real signed HTTP.

mod abuse;
mod call_me;
mod cluster;
mod connections;
mod demo;
mod deploy;
mod disorder;
mod events;
mod external_mfa;
mod hostile;
mod invariants;
mod methods;
mod ops;
mod policy;
mod process;
mod providers;
mod simulated;
mod soak;
mod support;
mod web_demo;
mod webhooks;
