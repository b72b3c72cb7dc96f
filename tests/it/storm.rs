//! Every workflow under a storm of faults: 20% of the AWS calls through the gateway answered with
//! the service's throttling error and 5% with 503, on every service (Step Functions' own
//! service integrations included). The SDK's retries, the phases' idempotence and the state
//! machines' `Retry` must carry each workflow to the state a calm run reaches: provision, update,
//! onboard, drift check with remediation, compliance sweep, offboard, decommission. Nothing is
//! duplicated (the plan and the inventory agree kind by kind, the census holds) and nothing
//! leaks (0 resources tagged with the platform after decommission).
//!
//! The faults apply while a workflow runs; the test's own checks run without them.

use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::json;
use tenantry::drift::RemediateRequest;
use tenantry::events::RequestKind;
use tenantry::spec::DriftRemediation;
use tenantry::store::{LifecycleState, TenantState};
use tenantry_gateway::inspect::tagged_resources;
use tenantry_gateway::Faults;
use tenantry_integration::Execution;

use crate::catalogue::assert_plan_matches_inventory;
use crate::platform::{env, Env};

/// The storm: a fixed seed, so every run sees the same dice.
fn storm(seed: u64) -> Faults {
    Faults {
        throttle_percent: 20,
        server_error_percent: 5,
        seed: Some(seed),
        ..Faults::default()
    }
}

/// Runs a workflow under the storm of `seed` to its end; it must succeed.
async fn stormy(
    env: &Env,
    seed: u64,
    what: &str,
    run: impl std::future::Future<Output = Execution>,
) -> Execution {
    env.stack.reset_calls();
    env.stack.set_faults(storm(seed));
    let execution = run.await;
    env.stack.set_faults(Faults::default());
    let log = env.stack.calls();
    let faults = log.calls.iter().filter(|c| c.fault.is_some()).count();
    eprintln!(
        "storm {what}: {:?} in {:.1}s, {} AWS calls, {faults} answered with a fault, {} task failures retried",
        execution.status,
        execution.elapsed.as_secs_f64(),
        log.calls.len(),
        execution.failures().len()
    );
    assert_eq!(
        execution.status,
        ExecutionStatus::Succeeded,
        "{what} under the storm: {:?} {:?}",
        execution.cause,
        execution.failures()
    );
    assert!(
        faults * 100 >= log.calls.len() * 15,
        "{what}: the storm hit {faults} of {} calls",
        log.calls.len()
    );
    execution
}

async fn put_tenant_request(env: &Env, kind: RequestKind, detail: serde_json::Value) {
    let out = aws_sdk_eventbridge::Client::new(&env.aws)
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .event_bus_name(tenantry::events::event_bus())
                .source("tests")
                .detail_type(kind.detail_type())
                .detail(detail.to_string())
                .build(),
        )
        .send()
        .await
        .expect("put events");
    assert_eq!(out.failed_entry_count(), 0);
}

async fn tenant_state(env: &Env, name: &str) -> Option<TenantState> {
    env.store
        .get_tenant_record(&env.platform_id(), name)
        .await
        .expect("tenant record read")
        .map(|r| r.value.state)
}

#[tokio::test]
async fn every_workflow_converges_under_a_storm_of_throttling_and_server_errors() {
    every_workflow_under_the_storm(env().await, 2026).await;
}

/// The full version (`make soak`): the same life under three more storms, on the real function
/// binaries.
#[tokio::test]
#[ignore = "soak: make soak"]
async fn soak_every_workflow_converges_under_three_more_storms_on_the_real_binaries() {
    for seed in [1, 2, 3] {
        let env = crate::platform::env_on(tenantry_integration::stack_on_binaries().await).await;
        every_workflow_under_the_storm(env, seed).await;
    }
}

async fn every_workflow_under_the_storm(mut env: Env, seed: u64) {
    let platform = env.platform_id();

    stormy(
        &env,
        seed,
        "provision",
        env.run(RequestKind::PlatformProvision, "storm-provision"),
    )
    .await;
    assert_plan_matches_inventory(&env).await;
    let census = tagged_resources(&env.aws, &platform).await.unwrap();
    assert_eq!(
        (
            census["ec2:vpc"],
            census["ec2:subnet"],
            census["ec2:nat-gateway"]
        ),
        (1, 9, 3),
        "{census:?}"
    );

    // Update: one node group may grow further.
    env.spec["nodeGroups"][0]["maxSize"] = json!(7);
    stormy(
        &env,
        seed,
        "update",
        env.run(RequestKind::PlatformUpdate, "storm-update"),
    )
    .await;
    assert_plan_matches_inventory(&env).await;
    let spec: tenantry::spec::PlatformSpec = serde_json::from_value(env.spec.clone()).unwrap();
    let names = tenantry::naming::Names::new(&spec);
    let group = aws_sdk_eks::Client::new(&env.aws)
        .describe_nodegroup()
        .cluster_name(names.cluster())
        .nodegroup_name(names.nodegroup(env.spec["nodeGroups"][0]["name"].as_str().unwrap()))
        .send()
        .await
        .expect("the updated node group");
    assert_eq!(
        group
            .nodegroup()
            .and_then(|g| g.scaling_config())
            .and_then(|s| s.max_size()),
        Some(7)
    );
    assert_eq!(tagged_resources(&env.aws, &platform).await.unwrap(), census);

    // Onboard a tenant through the bus.
    put_tenant_request(
        &env,
        RequestKind::TenantOnboarding,
        json!({"schemaVersion": "1", "requestId": "storm-onboard", "platformId": platform,
               "tenant": {"name": "fraud-scoring", "costCentre": "cc-7781", "owners": []}}),
    )
    .await;
    stormy(&env, seed, "onboard", env.finish("storm-onboard")).await;
    assert_eq!(
        tenant_state(&env, "fraud-scoring").await,
        Some(TenantState::Active)
    );

    // Drift with remediation: every phase broken out of band, repaired under the storm; a calm
    // check afterwards finds nothing.
    crate::drift::break_platform(&env).await;
    stormy(
        &env,
        seed,
        "drift check (auto)",
        env.check_drift(
            "storm-drift",
            Some(RemediateRequest::All(DriftRemediation::Auto)),
        ),
    )
    .await;
    let calm = crate::drift::check(&env, "storm-drift-calm", DriftRemediation::ReportOnly).await;
    assert!(
        calm.differences.is_empty(),
        "what the stormy check left: {:#?}",
        calm.differences
    );

    stormy(
        &env,
        seed,
        "compliance sweep",
        env.sweep_compliance("storm-compliance"),
    )
    .await;
    let report = env
        .store
        .get_compliance_report(&platform, Some("storm-compliance"))
        .await
        .unwrap();
    assert!(report.is_some(), "the sweep recorded its report");

    put_tenant_request(
        &env,
        RequestKind::TenantOffboarding,
        json!({"schemaVersion": "1", "requestId": "storm-offboard", "platformId": platform,
               "tenantName": "fraud-scoring"}),
    )
    .await;
    stormy(&env, seed, "offboard", env.finish("storm-offboard")).await;
    assert_eq!(
        tenant_state(&env, "fraud-scoring").await,
        Some(TenantState::Offboarded)
    );

    stormy(
        &env,
        seed,
        "decommission",
        env.run(RequestKind::PlatformDecommission, "storm-decommission"),
    )
    .await;
    let left = tagged_resources(&env.aws, &platform).await.unwrap();
    assert!(left.values().all(|n| *n == 0), "left behind: {left:?}");
    let status = env
        .store
        .get_status(&platform)
        .await
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(status.state, LifecycleState::Decommissioned);
}
