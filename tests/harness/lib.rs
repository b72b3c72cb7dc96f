//! Shared helpers for the integration tests: a local stack per test, and a state store on a
//! table of its own, so that tests share nothing and can run in parallel.

use std::sync::atomic::{AtomicU64, Ordering};
use tenantry::store::{Clock, Store};
pub use tenantry_gateway::{LocalStack, StackOptions};

/// Starts a local stack (moto + gateway) with default options. Panics with the reason when it
/// cannot start, which fails the calling test.
pub async fn stack() -> LocalStack {
    match LocalStack::start(StackOptions::default()).await {
        Ok(stack) => stack,
        Err(e) => panic!("local stack did not start: {e:#}"),
    }
}

/// A name no other test (in this or a concurrent test process) uses: `<prefix>-<pid>-<n>`.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A state store on a freshly created table of its own, through the stack's gateway (the real
/// DynamoDB API, as handlers use it).
pub async fn store(stack: &LocalStack) -> Store {
    let store = Store::from_config(&stack.sdk_config().await, unique("tenantry-test"));
    if let Err(e) = store.create_table_if_missing().await {
        panic!("creating table {}: {e}", store.table());
    }
    store
}

/// Another store on the same table with its own client (another Lambda, another process),
/// using `clock`.
pub async fn peer(stack: &LocalStack, of: &Store, clock: impl Clock + 'static) -> Store {
    Store::from_config(&stack.sdk_config().await, of.table()).with_clock(clock)
}

/// `examples/platform.json`, validated.
pub fn example_spec() -> tenantry::spec::PlatformSpec {
    let text = include_str!("../../examples/platform.json");
    match tenantry::validate::parse_platform(text) {
        Ok(spec) => spec,
        Err(e) => panic!("examples/platform.json is invalid: {e}"),
    }
}

/// Records `spec` in the store as intake would before a provision: the spec (version 1) and a
/// `Provisioning` status record, so phase handlers can be run on it directly.
pub async fn record_platform(store: &Store, spec: &tenantry::spec::PlatformSpec) {
    let value = serde_json::to_value(spec).expect("spec serialises");
    if let Err(e) = store.put_spec(&spec.id, &value, None).await {
        panic!("put spec of {}: {e}", spec.id);
    }
    let status =
        tenantry::store::PlatformStatus::new(tenantry::store::LifecycleState::Provisioning);
    if let Err(e) = store.update_status(&spec.id, &status, None).await {
        panic!("put status of {}: {e}", spec.id);
    }
}
