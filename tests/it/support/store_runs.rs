//! For property tests that drive a `Store` directly (no server): a single-threaded runtime, a
//! store under a fresh key prefix, and a proptest runner that runs `cases` without persisting
//! failures.

use callverify::store::Store;
use proptest::test_runner::{Config, TestRunner};

use super::{redis_config, unique_prefix};

/// A current-thread runtime and a store on the test Redis under a key prefix of its own.
pub fn runtime_and_store() -> (tokio::runtime::Runtime, Store) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rt
        .block_on(Store::open(&redis_config(&unique_prefix(), 2000)))
        .unwrap();
    (rt, store)
}

pub fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}
