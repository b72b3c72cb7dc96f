//! The state store against the local stack, through the real DynamoDB API (the gateway in front
//! of moto): versioned writes racing, the platform lease, request idempotency, run history,
//! inventory and the platform index.

use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;
use tenantry::error::{ErrorType, FunctionError};
use tenantry::store::{
    payload_hash, LastError, LifecycleState, ManualClock, PhaseState, PhaseStatus, PlatformStatus,
    RequestOutcome, RequestRecord, RequestState, ResourceRecord, RunRecord, RunStatus, StoreError,
};
use tenantry_integration::{peer, stack, store, unique};

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_writers_race_on_the_spec_and_exactly_one_wins() {
    let stack = stack().await;
    let a = store(&stack).await;
    let b = peer(&stack, &a, ManualClock::starting_now()).await;
    let platform = unique("race");
    assert_eq!(
        a.put_spec(&platform, &json!({"rev": 0}), None)
            .await
            .unwrap(),
        1
    );

    let spec_a = json!({"rev": "a", "nodes": 3});
    let spec_b = json!({"rev": "b", "nodes": 5});
    let (ra, rb) = tokio::join!(
        a.put_spec(&platform, &spec_a, Some(1)),
        b.put_spec(&platform, &spec_b, Some(1))
    );
    let (winner, loser) = match (&ra, &rb) {
        (Ok(2), Err(e)) => (&spec_a, e),
        (Err(e), Ok(2)) => (&spec_b, e),
        other => panic!("expected exactly one winner at version 2, got {other:?}"),
    };
    assert!(
        matches!(loser, StoreError::VersionConflict { expected: Some(1), actual: Some(2), key } if key.ends_with("/SPEC")),
        "{loser:?}"
    );
    let stored = a.get_spec(&platform).await.unwrap().unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(&stored.value, winner);

    // The loser's error is a Conflict in the state machines' contract.
    let loser = if ra.is_err() { ra } else { rb }.unwrap_err();
    assert_eq!(FunctionError::from(loser).error_type, ErrorType::Conflict);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_writers_exactly_one_wins_creation_and_update() {
    let stack = stack().await;
    let base = store(&stack).await;
    let platform = unique("racers");
    let mut writers = Vec::new();
    for _ in 0..10 {
        writers.push(peer(&stack, &base, tenantry::store::SystemClock).await);
    }

    // Creation: everyone expects the platform not to exist.
    let handles: Vec<_> = writers
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, w)| {
            let platform = platform.clone();
            tokio::spawn(async move { w.put_spec(&platform, &json!({"writer": i}), None).await })
        })
        .collect();
    let mut created = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        match h.await.unwrap() {
            Ok(v) => created.push((i, v)),
            Err(StoreError::VersionConflict {
                expected: None,
                actual: Some(1),
                ..
            }) => {}
            Err(e) => panic!("writer {i}: unexpected {e:?}"),
        }
    }
    assert_eq!(created.len(), 1, "exactly one creator: {created:?}");
    let (creator, version) = created[0];
    assert_eq!(version, 1);
    assert_eq!(
        base.get_spec(&platform).await.unwrap().unwrap().value,
        json!({"writer": creator})
    );

    // Update: everyone read version 1.
    let handles: Vec<_> = writers
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, w)| {
            let platform = platform.clone();
            tokio::spawn(
                async move { w.put_spec(&platform, &json!({"updater": i}), Some(1)).await },
            )
        })
        .collect();
    let mut updated = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        match h.await.unwrap() {
            Ok(v) => updated.push((i, v)),
            Err(StoreError::VersionConflict {
                expected: Some(1),
                actual: Some(2),
                ..
            }) => {}
            Err(e) => panic!("writer {i}: unexpected {e:?}"),
        }
    }
    assert_eq!(updated.len(), 1, "exactly one updater: {updated:?}");
    let (updater, version) = updated[0];
    assert_eq!(version, 2);
    let stored = base.get_spec(&platform).await.unwrap().unwrap();
    assert_eq!(
        (stored.version, stored.value),
        (2, json!({"updater": updater}))
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn versioned_status_tenants_and_stale_writes() {
    let stack = stack().await;
    let s = store(&stack).await;
    let platform = unique("status");

    // A stale version names the version actually stored; a missing record names none.
    assert!(matches!(
        s.update_status(
            &platform,
            &PlatformStatus::new(LifecycleState::Active),
            Some(1)
        )
        .await,
        Err(StoreError::VersionConflict {
            expected: Some(1),
            actual: None,
            ..
        })
    ));
    let mut status = PlatformStatus::new(LifecycleState::Provisioning);
    status.outputs.insert("vpcId".into(), json!("vpc-0abc"));
    assert_eq!(s.update_status(&platform, &status, None).await.unwrap(), 1);

    // Parallel branches report their phases without conflicting with each other.
    let mut running = PhaseStatus::new(PhaseState::Running);
    running.started_at = Some(s.now());
    let succeeded = PhaseStatus::new(PhaseState::Succeeded);
    let (v1, v2) = tokio::join!(
        s.set_phase(&platform, "network", &running),
        s.set_phase(&platform, "encryption", &succeeded)
    );
    let mut versions = [v1.unwrap(), v2.unwrap()];
    versions.sort();
    assert_eq!(versions, [2, 3]);

    let read = s.get_status(&platform).await.unwrap().unwrap();
    assert_eq!(read.version, 3);
    assert_eq!(read.value.phases["network"], running);
    assert_eq!(read.value.phases["encryption"].state, PhaseState::Succeeded);
    assert_eq!(read.value.outputs["vpcId"], json!("vpc-0abc"));

    // A writer that read version 1 before the phases were set loses.
    let mut failed = read.value.clone();
    failed.state = LifecycleState::Failed;
    failed.last_error = Some(LastError {
        code: "InvalidParameterException".into(),
        message: "Subnets specified must be in at least two different AZs".into(),
        phase: Some("cluster".into()),
        retryable: false,
    });
    assert!(matches!(
        s.update_status(&platform, &failed, Some(1)).await,
        Err(StoreError::VersionConflict {
            expected: Some(1),
            actual: Some(3),
            ..
        })
    ));
    assert_eq!(
        s.update_status(&platform, &failed, Some(3)).await.unwrap(),
        4
    );
    assert_eq!(
        s.get_status(&platform).await.unwrap().unwrap().value,
        failed
    );
    assert!(matches!(
        s.set_phase(&unique("missing"), "network", &running).await,
        Err(StoreError::NotFound { .. })
    ));

    // Tenants are versioned the same way.
    assert_eq!(
        s.put_tenant(&platform, "team-a", &json!({"quota": {"cpu": "4"}}), None)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.put_tenant(&platform, "team-b", &json!({"quota": {"cpu": "8"}}), None)
            .await
            .unwrap(),
        1
    );
    assert!(matches!(
        s.put_tenant(&platform, "team-a", &json!({}), None).await,
        Err(StoreError::VersionConflict {
            expected: None,
            actual: Some(1),
            ..
        })
    ));
    assert_eq!(
        s.put_tenant(
            &platform,
            "team-a",
            &json!({"quota": {"cpu": "6"}}),
            Some(1)
        )
        .await
        .unwrap(),
        2
    );
    let tenants = s.list_tenants(&platform).await.unwrap();
    let names: Vec<_> = tenants
        .iter()
        .map(|t| (t.name.as_str(), t.record.version))
        .collect();
    assert_eq!(names, [("team-a", 2), ("team-b", 1)]);
    assert_eq!(
        s.get_tenant(&platform, "team-a")
            .await
            .unwrap()
            .unwrap()
            .value,
        json!({"quota": {"cpu": "6"}})
    );
    assert!(s.delete_tenant(&platform, "team-b", Some(1)).await.unwrap());
    assert!(!s.delete_tenant(&platform, "team-b", None).await.unwrap());
    assert_eq!(s.list_tenants(&platform).await.unwrap().len(), 1);
    stack.shutdown().await;
}

#[tokio::test]
async fn lease_contention_expiry_and_reentry() {
    let stack = stack().await;
    let clock = ManualClock::starting_now();
    let a = store(&stack).await.with_clock(clock.clone());
    let b = peer(&stack, &a, clock.clone()).await;
    let platform = unique("lease");
    let ttl = Duration::from_secs(30);

    let first = a
        .acquire_lease(&platform, "exec-a", "provision", ttl)
        .await
        .unwrap();
    assert_eq!(first.holder, "exec-a");
    assert_eq!(first.expires_at, a.now() + ttl);

    // Contention: the second holder is refused, told who holds it, for what and until when.
    let err = b
        .acquire_lease(&platform, "exec-b", "update", ttl)
        .await
        .unwrap_err();
    match &err {
        StoreError::LeaseHeld {
            platform: p,
            holder,
            operation,
            expires_at,
        } => {
            assert_eq!(p, &platform);
            assert_eq!(holder, "exec-a");
            assert_eq!(operation, "provision");
            assert_eq!(*expires_at, first.expires_at);
        }
        other => panic!("expected LeaseHeld, got {other:?}"),
    }
    assert_eq!(FunctionError::from(err).error_type, ErrorType::Conflict);

    // Re-entrant: the same execution, retried after a crash, gets it back.
    clock.advance(Duration::from_secs(10));
    let again = a
        .acquire_lease(&platform, "exec-a", "provision", ttl)
        .await
        .unwrap();
    assert_eq!(again.expires_at, first.expires_at + Duration::from_secs(10));
    assert!(again.fence > first.fence);

    // Renewal extends it; the other holder is still refused just before expiry.
    let renewed = a.renew_lease(&platform, "exec-a", MINUTE).await.unwrap();
    assert_eq!(renewed.expires_at, a.now() + MINUTE);
    assert_eq!(renewed.fence, again.fence);
    clock.advance(MINUTE - Duration::from_millis(1));
    assert!(matches!(
        b.acquire_lease(&platform, "exec-b", "update", ttl).await,
        Err(StoreError::LeaseHeld { .. })
    ));

    // Expiry: once the lease has run out, the other holder takes it over...
    clock.advance(Duration::from_millis(1));
    let taken = b
        .acquire_lease(&platform, "exec-b", "update", ttl)
        .await
        .unwrap();
    assert_eq!(
        (taken.holder.as_str(), taken.operation.as_str()),
        ("exec-b", "update")
    );
    assert!(taken.fence > renewed.fence);
    // ...and the old holder can neither renew nor take it back.
    assert!(matches!(
        a.renew_lease(&platform, "exec-a", ttl).await,
        Err(StoreError::LeaseNotHeld { .. })
    ));
    assert!(matches!(
        a.acquire_lease(&platform, "exec-a", "provision", ttl).await,
        Err(StoreError::LeaseHeld { holder, .. }) if holder == "exec-b"
    ));
    stack.shutdown().await;
}

#[tokio::test]
async fn lease_release_only_by_its_holder() {
    let stack = stack().await;
    let a = store(&stack).await;
    let platform = unique("release");
    let lease = a
        .acquire_lease(&platform, "exec-a", "provision", MINUTE)
        .await
        .unwrap();

    // Someone else's release changes nothing.
    assert!(!a.release_lease(&platform, "exec-b").await.unwrap());
    assert_eq!(
        a.get_lease(&platform).await.unwrap().unwrap().holder,
        "exec-a"
    );
    assert!(matches!(
        a.acquire_lease(&platform, "exec-b", "update", MINUTE).await,
        Err(StoreError::LeaseHeld { .. })
    ));

    // The holder's release frees it at once; releasing again is a no-op.
    assert!(a.release_lease(&platform, "exec-a").await.unwrap());
    assert!(!a.release_lease(&platform, "exec-a").await.unwrap());
    assert_eq!(a.get_lease(&platform).await.unwrap(), None);
    let next = a
        .acquire_lease(&platform, "exec-b", "update", MINUTE)
        .await
        .unwrap();
    assert!(
        next.fence > lease.fence,
        "fencing token keeps counting across releases"
    );
    // Releasing a lease that never existed is a no-op too.
    assert!(!a.release_lease(&unique("never"), "exec-a").await.unwrap());
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lease_expires_in_real_time_and_only_one_of_many_takes_it() {
    let stack = stack().await;
    let a = store(&stack).await;
    let platform = unique("realtime");
    a.acquire_lease(&platform, "exec-a", "provision", Duration::from_secs(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;

    // Eight contenders for the expired lease: exactly one gets it, the others are told who.
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let (store, platform) = (a.clone(), platform.clone());
            tokio::spawn(async move {
                store
                    .acquire_lease(&platform, &format!("exec-{i}"), "drift", MINUTE)
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut refused_by = BTreeSet::new();
    for h in handles {
        match h.await.unwrap() {
            Ok(lease) => winners.push(lease.holder),
            Err(StoreError::LeaseHeld { holder, .. }) => {
                refused_by.insert(holder);
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(refused_by, BTreeSet::from([winners[0].clone()]));
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repeated_request_id_is_recognised() {
    let stack = stack().await;
    let s = store(&stack).await;
    let platform = unique("idem");
    let request_id = unique("req");
    let payload = json!({"platformId": platform, "action": "provision", "spec": {"nodes": 3}});
    let hash = payload_hash(&payload);

    let first = s
        .record_request(&request_id, &platform, "provision", &hash)
        .await
        .unwrap();
    let RequestRecord::New(info) = first else {
        panic!("first delivery must be new: {first:?}")
    };
    assert_eq!(info.state, RequestState::Accepted);
    assert!(info.expires_at > s.now().timestamp());

    // The same request delivered again.
    match s
        .record_request(&request_id, &platform, "provision", &hash)
        .await
        .unwrap()
    {
        RequestRecord::Duplicate {
            existing,
            same_payload,
        } => {
            assert!(same_payload);
            assert_eq!(existing, info);
        }
        other => panic!("expected Duplicate, got {other:?}"),
    }

    // The request id reused with another payload is told apart from a redelivery.
    let other = payload_hash(&json!({"platformId": platform, "action": "decommission"}));
    match s
        .record_request(&request_id, &platform, "decommission", &other)
        .await
        .unwrap()
    {
        RequestRecord::Duplicate {
            existing,
            same_payload,
        } => {
            assert!(!same_payload);
            assert_eq!(existing.kind, "provision");
        }
        other => panic!("expected Duplicate, got {other:?}"),
    }

    // Progress and outcome are recorded on the same record and seen by later duplicates.
    let arn = format!("arn:aws:states:us-east-1:123456789012:execution:provision:{request_id}");
    let mut started = RequestOutcome::new(RequestState::Started);
    started.execution_arn = Some(arn.clone());
    assert_eq!(
        s.complete_request(&request_id, &started)
            .await
            .unwrap()
            .state,
        RequestState::Started
    );
    let mut failed = RequestOutcome::new(RequestState::Failed);
    failed.error = Some(LastError {
        code: "ThrottlingException".into(),
        message: "Rate exceeded".into(),
        phase: Some("network".into()),
        retryable: true,
    });
    let done = s.complete_request(&request_id, &failed).await.unwrap();
    assert_eq!(done.execution_arn.as_deref(), Some(arn.as_str()));
    assert_eq!(done.error, failed.error);
    match s
        .record_request(&request_id, &platform, "provision", &hash)
        .await
        .unwrap()
    {
        RequestRecord::Duplicate { existing, .. } => {
            assert_eq!(existing.state, RequestState::Failed)
        }
        other => panic!("expected Duplicate, got {other:?}"),
    }
    assert!(matches!(
        s.complete_request(&unique("unknown"), &started).await,
        Err(StoreError::NotFound { .. })
    ));

    // Concurrent deliveries of a fresh request: exactly one is new.
    let fresh = unique("req");
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let (s, fresh, platform, hash) =
                (s.clone(), fresh.clone(), platform.clone(), hash.clone());
            tokio::spawn(async move {
                s.record_request(&fresh, &platform, "provision", &hash)
                    .await
            })
        })
        .collect();
    let mut new = 0;
    for h in handles {
        match h.await.unwrap().unwrap() {
            RequestRecord::New(_) => new += 1,
            RequestRecord::Duplicate { same_payload, .. } => assert!(same_payload),
        }
    }
    assert_eq!(new, 1);
    stack.shutdown().await;
}

#[tokio::test]
async fn runs_are_listed_newest_first_with_a_ttl() {
    let stack = stack().await;
    let s = store(&stack)
        .await
        .with_run_ttl(Duration::from_secs(7 * 24 * 3600));
    let platform = unique("runs");
    let t0 = s.now();
    let kinds = ["provision", "drift", "compliance", "drift", "update"];
    for (i, kind) in kinds.iter().enumerate() {
        let mut run = RunRecord::new(
            *kind,
            t0 + Duration::from_secs(60 * i as u64),
            RunStatus::Running,
        );
        run.execution_arn = Some(format!(
            "arn:aws:states:us-east-1:123456789012:execution:{kind}:{i}"
        ));
        s.record_run(&platform, &run).await.unwrap();
    }
    // Finishing a run re-records it in place.
    let mut finished = RunRecord::new("drift", t0 + Duration::from_secs(180), RunStatus::Succeeded);
    finished.finished_at = Some(t0 + Duration::from_secs(200));
    finished.detail = Some(json!({"differences": [], "checked": 42}));
    s.record_run(&platform, &finished).await.unwrap();
    // Another platform's runs stay apart.
    s.record_run(
        &unique("other"),
        &RunRecord::new("drift", t0, RunStatus::Running),
    )
    .await
    .unwrap();

    let runs = s.list_runs(&platform, 3).await.unwrap();
    let listed: Vec<_> = runs.iter().map(|r| (r.kind.as_str(), r.status)).collect();
    assert_eq!(
        listed,
        [
            ("update", RunStatus::Running),
            ("drift", RunStatus::Succeeded),
            ("compliance", RunStatus::Running)
        ]
    );
    assert_eq!(runs[1].detail, finished.detail);
    assert_eq!(runs[1].finished_at, finished.finished_at);
    for run in &runs {
        assert_eq!(
            run.expires_at,
            Some(run.started_at.timestamp() + 7 * 24 * 3600)
        );
    }
    let all = s.list_runs(&platform, 100).await.unwrap();
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|w| w[0].started_at > w[1].started_at));

    // The table has TTL on `expiresAt`.
    let ttl = s
        .client()
        .describe_time_to_live()
        .table_name(s.table())
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("expiresAt"));
    assert_eq!(
        ttl.time_to_live_status().map(|s| s.as_str()),
        Some("ENABLED")
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn inventory_round_trip() {
    let stack = stack().await;
    let s = store(&stack).await;
    let platform = unique("inventory");
    let mut vpc = ResourceRecord::new("vpc", "vpc-0abc", "network");
    vpc.arn = Some("arn:aws:ec2:us-east-1:123456789012:vpc/vpc-0abc".into());
    vpc.tags
        .insert("tenantry:platform".into(), platform.clone());
    vpc.tags
        .insert("tenantry:component".into(), "network".into());
    vpc.attributes = Some(json!({"cidr": "10.0.0.0/16"}));
    let mut subnets = Vec::new();
    for (i, az) in ["a", "b", "c"].iter().enumerate() {
        let mut subnet = ResourceRecord::new("subnet", format!("subnet-{i}"), "network");
        subnet.attributes = Some(json!({"az": format!("us-east-1{az}")}));
        subnets.push(subnet);
    }
    let mut role = ResourceRecord::new("iam-role", "tenantry-team-a", "tenant");
    role.tenant = Some("team-a".into());

    let stored = s.put_resource(&platform, &vpc).await.unwrap();
    let created_at = stored.created_at.unwrap();
    for r in subnets.iter().chain([&role]) {
        s.put_resource(&platform, r).await.unwrap();
    }
    // Recording again is an upsert that keeps the creation time.
    vpc.attributes = Some(json!({"cidr": "10.0.0.0/16", "flowLogs": true}));
    vpc.arn = None;
    let again = s.put_resource(&platform, &vpc).await.unwrap();
    assert_eq!(again.created_at, Some(created_at));
    assert_eq!(again.arn, None);
    assert_eq!(again.attributes, vpc.attributes);

    let all = s.list_resources(&platform).await.unwrap();
    let ids: Vec<_> = all
        .iter()
        .map(|r| (r.resource_type.as_str(), r.id.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            ("iam-role", "tenantry-team-a"),
            ("subnet", "subnet-0"),
            ("subnet", "subnet-1"),
            ("subnet", "subnet-2"),
            ("vpc", "vpc-0abc")
        ]
    );
    assert_eq!(all[4].tags, vpc.tags);
    assert_eq!(all[0].tenant.as_deref(), Some("team-a"));
    assert_eq!(
        s.list_resources_of_type(&platform, "subnet")
            .await
            .unwrap()
            .len(),
        3
    );

    assert!(s
        .delete_resource(&platform, "subnet", "subnet-1")
        .await
        .unwrap());
    assert!(!s
        .delete_resource(&platform, "subnet", "subnet-1")
        .await
        .unwrap());
    assert_eq!(
        s.list_resources_of_type(&platform, "subnet")
            .await
            .unwrap()
            .len(),
        2
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn platforms_are_listed_through_the_index() {
    let stack = stack().await;
    let s = store(&stack).await;
    // Creating the table again is a no-op.
    s.create_table_if_missing().await.unwrap();
    assert!(s.list_platforms().await.unwrap().is_empty());

    let mut expected = BTreeSet::new();
    for i in 0..5 {
        let platform = unique(&format!("platform{i}"));
        s.put_spec(&platform, &json!({"i": i}), None).await.unwrap();
        expected.insert(platform);
    }
    let first = expected.iter().next().unwrap().clone();
    s.put_spec(&first, &json!({"i": "updated"}), Some(1))
        .await
        .unwrap();
    // Status, tenants, leases, runs and resources do not appear as platforms.
    s.update_status(&first, &PlatformStatus::new(LifecycleState::Active), None)
        .await
        .unwrap();
    s.put_tenant(&first, "team-a", &json!({}), None)
        .await
        .unwrap();
    s.acquire_lease(&first, "exec", "drift", MINUTE)
        .await
        .unwrap();

    let platforms = s.list_platforms().await.unwrap();
    let ids: BTreeSet<_> = platforms.iter().map(|p| p.platform_id.clone()).collect();
    assert_eq!(ids, expected);
    assert_eq!(platforms.len(), 5);
    let updated = platforms.iter().find(|p| p.platform_id == first).unwrap();
    assert_eq!(updated.spec_version, 2);
    stack.shutdown().await;
}
