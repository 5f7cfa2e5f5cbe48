//! callverify: a self-hostable phone-call verification (IVR) server.
//!
//! Code tour: `config` (settings) → `lib::app` (routes) → `api` (portal-facing management API) →
//! `telephony` (provider webhooks and TwiML) → `store` (every Redis command) → `provider`
//! (placing calls) → `events` (signed webhooks to portal back-ends) → `simulator` (a carrier for
//! demos and tests).

pub mod config;
pub mod error;
pub mod events;
pub mod ids;
pub mod phone;
pub mod simulator;
pub mod telephony;
