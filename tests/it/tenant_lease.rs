//! The reader/writer platform lease against the local stack, through the real DynamoDB API:
//! tenant operations share it, platform operations take it exclusively, neither while the other
//! is live, and expiry frees both. Plus tenant records (versioned, guarded state changes).

use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;
use tenantry::store::{ManualClock, StoreError, TenantFailure, TenantRecord, TenantState};
use tenantry_integration::{peer, stack, store, unique};

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_tenant_acquisitions_all_succeed_and_keep_platform_operations_out() {
    let stack = stack().await;
    let a = store(&stack).await;
    let platform = unique("shared");
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let (store, platform) = (a.clone(), platform.clone());
            tokio::spawn(async move {
                store
                    .acquire_shared_lease(&platform, &format!("req-t{i:02}"), "onboard", MINUTE)
                    .await
            })
        })
        .collect();
    let mut holders = BTreeSet::new();
    for h in handles {
        let lease = h
            .await
            .unwrap()
            .expect("every tenant operation gets a share");
        assert_eq!(lease.operation, "onboard");
        holders.insert(lease.holder);
    }
    assert_eq!(holders.len(), 20);
    let shares = a.list_shared_leases(&platform).await.unwrap();
    assert_eq!(shares.len(), 20);
    assert!(
        a.get_lease(&platform).await.unwrap().is_none(),
        "no exclusive holder"
    );
    // A duplicate acquisition (redelivery of the same request) holds one share, not two.
    a.acquire_shared_lease(&platform, "req-t00", "onboard", MINUTE)
        .await
        .unwrap();
    assert_eq!(a.list_shared_leases(&platform).await.unwrap().len(), 20);

    // A platform operation is refused while any share is held, told which tenant operation.
    for (i, holder) in holders.iter().enumerate() {
        match a
            .acquire_lease(&platform, "req-provision", "update", MINUTE)
            .await
        {
            Err(StoreError::LeaseHeld {
                holder: named,
                operation,
                ..
            }) => {
                assert!(holders.contains(&named), "{named}");
                assert_eq!(operation, "onboard");
            }
            other => panic!("platform operation with {} shares held: {other:?}", 20 - i),
        }
        assert!(a.release_shared_lease(&platform, holder).await.unwrap());
    }
    assert!(
        !a.release_shared_lease(&platform, "req-t00").await.unwrap(),
        "releasing twice is a no-op"
    );
    assert!(a.list_shared_leases(&platform).await.unwrap().is_empty());
    let lease = a
        .acquire_lease(&platform, "req-provision", "update", MINUTE)
        .await
        .expect("free once every share is released");
    assert_eq!(lease.holder, "req-provision");
    stack.shutdown().await;
}

#[tokio::test]
async fn a_tenant_acquisition_fails_while_a_platform_operation_holds_the_lease() {
    let stack = stack().await;
    let a = store(&stack).await;
    let platform = unique("exclusive");
    let held = a
        .acquire_lease(&platform, "req-decommission", "decommission", MINUTE)
        .await
        .unwrap();
    let err = a
        .acquire_shared_lease(&platform, "req-t1", "onboard", MINUTE)
        .await
        .unwrap_err();
    match &err {
        StoreError::LeaseHeld {
            holder,
            operation,
            expires_at,
            ..
        } => {
            assert_eq!(holder, "req-decommission");
            assert_eq!(operation, "decommission");
            assert_eq!(*expires_at, held.expires_at);
        }
        other => panic!("expected LeaseHeld, got {other:?}"),
    }
    assert!(a.list_shared_leases(&platform).await.unwrap().is_empty());
    // The exclusive holder is re-entrant as before, and releasing frees the platform for tenants.
    a.acquire_lease(&platform, "req-decommission", "decommission", MINUTE)
        .await
        .unwrap();
    assert!(a
        .release_lease(&platform, "req-decommission")
        .await
        .unwrap());
    a.acquire_shared_lease(&platform, "req-t1", "onboard", MINUTE)
        .await
        .expect("free after release");
    // Releasing a share never releases the exclusive lease and vice versa.
    assert!(!a.release_lease(&platform, "req-t1").await.unwrap());
    assert_eq!(a.list_shared_leases(&platform).await.unwrap().len(), 1);
    stack.shutdown().await;
}

#[tokio::test]
async fn expiry_frees_both_sides() {
    let stack = stack().await;
    let clock = ManualClock::starting_now();
    let a = store(&stack).await.with_clock(clock.clone());
    let b = peer(&stack, &a, clock.clone()).await;
    let platform = unique("expiry");
    let ttl = Duration::from_secs(30);

    // Two tenant operations crash holding their shares; a third renews its share.
    for holder in ["req-t1", "req-t2", "req-t3"] {
        a.acquire_shared_lease(&platform, holder, "onboard", ttl)
            .await
            .unwrap();
    }
    clock.advance(Duration::from_secs(20));
    let renewed = a
        .renew_shared_lease(&platform, "req-t3", ttl)
        .await
        .unwrap();
    assert_eq!(renewed.expires_at, a.now() + ttl);
    clock.advance(Duration::from_secs(10));
    // t1 and t2 expired; t3 still blocks.
    assert!(matches!(
        b.acquire_lease(&platform, "req-update", "update", ttl).await,
        Err(StoreError::LeaseHeld { holder, .. }) if holder == "req-t3"
    ));
    clock.advance(Duration::from_secs(20));
    let taken = b
        .acquire_lease(&platform, "req-update", "update", ttl)
        .await
        .expect("every share expired");
    assert_eq!(taken.holder, "req-update");
    assert!(
        a.list_shared_leases(&platform).await.unwrap().is_empty(),
        "the expired shares were cleared"
    );
    assert!(matches!(
        a.renew_shared_lease(&platform, "req-t1", ttl).await,
        Err(StoreError::LeaseNotHeld { .. })
    ));

    // The platform operation crashes too: once its lease expires, tenants get in, and the
    // crashed holder can no longer renew.
    assert!(matches!(
        a.acquire_shared_lease(&platform, "req-t4", "offboard", ttl)
            .await,
        Err(StoreError::LeaseHeld { holder, .. }) if holder == "req-update"
    ));
    clock.advance(ttl);
    a.acquire_shared_lease(&platform, "req-t4", "offboard", ttl)
        .await
        .expect("the platform lease expired");
    assert!(a.get_lease(&platform).await.unwrap().is_none());
    assert!(matches!(
        b.renew_lease(&platform, "req-update", ttl).await,
        Err(StoreError::LeaseNotHeld { .. })
    ));
    assert!(!b.release_lease(&platform, "req-update").await.unwrap());
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tenant_and_platform_operations_racing_never_both_hold_the_lease() {
    let stack = stack().await;
    let a = store(&stack).await;
    for round in 0..3 {
        let platform = unique("race");
        let tenants: Vec<_> = (0..10)
            .map(|i| {
                let (store, platform) = (a.clone(), platform.clone());
                tokio::spawn(async move {
                    store
                        .acquire_shared_lease(&platform, &format!("req-t{i}"), "onboard", MINUTE)
                        .await
                })
            })
            .collect();
        let exclusive = {
            let (store, platform) = (a.clone(), platform.clone());
            tokio::spawn(async move {
                store
                    .acquire_lease(&platform, "req-update", "update", MINUTE)
                    .await
            })
        };
        let mut shares = 0;
        for t in tenants {
            match t.await.unwrap() {
                Ok(_) => shares += 1,
                Err(StoreError::LeaseHeld { holder, .. }) => assert_eq!(holder, "req-update"),
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        match exclusive.await.unwrap() {
            Ok(_) => assert_eq!(shares, 0, "round {round}: exclusive and shared at once"),
            Err(StoreError::LeaseHeld { holder, .. }) => {
                assert!(
                    shares > 0,
                    "round {round}: refused by {holder} without shares"
                );
                assert!(holder.starts_with("req-t"), "{holder}");
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
        assert_eq!(a.list_shared_leases(&platform).await.unwrap().len(), shares);
    }
    stack.shutdown().await;
}

fn tenant(name: &str) -> tenantry::spec::TenantSpec {
    serde_json::from_value(json!({"name": name, "costCentre": "cc-42"})).expect("tenant spec")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tenant_records_are_versioned_and_state_changes_are_guarded() {
    let stack = stack().await;
    let a = store(&stack).await;
    let platform = unique("records");

    // Twenty concurrent creations of distinct tenants: each recorded once.
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let (store, platform) = (a.clone(), platform.clone());
            tokio::spawn(async move {
                let record = TenantRecord::new(
                    tenant(&format!("team-{i}")),
                    TenantState::Requested,
                    format!("req-{i}"),
                );
                store.put_tenant_record(&platform, &record, None).await
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.await.unwrap().unwrap(), 1);
    }
    // Two requests racing for one name: exactly one creates it.
    let rx = TenantRecord::new(tenant("shared"), TenantState::Requested, "req-x");
    let ry = TenantRecord::new(tenant("shared"), TenantState::Requested, "req-y");
    let (x, y) = tokio::join!(
        a.put_tenant_record(&platform, &rx, None),
        a.put_tenant_record(&platform, &ry, None)
    );
    assert!(
        matches!(
            (&x, &y),
            (Ok(1), Err(StoreError::VersionConflict { .. }))
                | (Err(StoreError::VersionConflict { .. }), Ok(1))
        ),
        "{x:?} {y:?}"
    );
    let records = a.list_tenant_records(&platform).await.unwrap();
    assert_eq!(records.len(), 21);
    assert!(records
        .iter()
        .all(|r| r.value.state == TenantState::Requested));
    // The spec is also what the older tenant API reads.
    let plain = a.get_tenant(&platform, "team-3").await.unwrap().unwrap();
    assert_eq!(plain.value["costCentre"], "cc-42");
    assert_eq!(a.list_tenants(&platform).await.unwrap().len(), 21);

    // Guarded transitions: only the request that owns the record, only from the named states.
    let moved = a
        .transition_tenant(
            &platform,
            "team-3",
            "req-3",
            &[TenantState::Requested],
            TenantState::Onboarding,
            None,
        )
        .await
        .unwrap()
        .expect("moved");
    assert_eq!(moved.version, 2);
    assert_eq!(moved.value.state, TenantState::Onboarding);
    assert_eq!(
        a.transition_tenant(
            &platform,
            "team-3",
            "req-other",
            &[TenantState::Onboarding],
            TenantState::Active,
            None
        )
        .await
        .unwrap(),
        None
    );
    assert_eq!(
        a.transition_tenant(
            &platform,
            "team-3",
            "req-3",
            &[TenantState::Requested],
            TenantState::Active,
            None
        )
        .await
        .unwrap(),
        None
    );
    let failure = TenantFailure {
        phase: "tenant".into(),
        reason: "CreateKey failed".into(),
        code: Some("LimitExceededException".into()),
    };
    let failed = a
        .set_tenant_state(&platform, "team-3", TenantState::Failed, Some(&failure))
        .await
        .unwrap();
    assert_eq!(failed.version, 3);
    assert_eq!(failed.value.failure.as_ref(), Some(&failure));
    let active = a
        .set_tenant_state(&platform, "team-3", TenantState::Active, None)
        .await
        .unwrap();
    assert_eq!(active.value.failure, None, "a success clears the failure");
    assert!(matches!(
        a.set_tenant_state(&platform, "nobody", TenantState::Active, None)
            .await,
        Err(StoreError::NotFound { .. })
    ));

    // Offboarding options are stored; a stale versioned write loses.
    let mut offboarding = active.value.clone();
    offboarding.state = TenantState::Offboarding;
    offboarding.retain_data = true;
    offboarding.schedule_key_deletion = true;
    offboarding.request_id = "req-off".into();
    assert!(matches!(
        a.put_tenant_record(&platform, &offboarding, Some(active.version - 1))
            .await,
        Err(StoreError::VersionConflict { .. })
    ));
    a.put_tenant_record(&platform, &offboarding, Some(active.version))
        .await
        .unwrap();
    let stored = a
        .get_tenant_record(&platform, "team-3")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.value.retain_data && stored.value.schedule_key_deletion);
    assert_eq!(stored.value.request_id, "req-off");
    assert_eq!(stored.value.updated_at, stored.updated_at);
    stack.shutdown().await;
}
