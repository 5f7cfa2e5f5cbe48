//! Integration tests: one binary, a real callverify on loopback, a real Redis (own key prefix per
//! test, so they run in parallel), provider traffic over real signed HTTP.

mod call_me;
mod ops;
mod support;
