//! Tenant onboarding and offboarding through `intake` and `finalize` on the local stack.
//!
//! As in `intake.rs`, the state machines are stood in for by one-state machines of the same names:
//! what is checked here is what intake and finalize do around them (tenant records, the shared
//! platform lease, executions, result events read from an SQS queue fed by an EventBridge rule).

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tenantry::deps::Deps;
use tenantry::events::{self, RequestKind};
use tenantry::functions::finalize::{self, FinalizeInput, Operation, Outcome, StatesError};
use tenantry::functions::intake::{self, Disposition, IntakeInput, IntakeOutcome, IntakeOutput};
use tenantry::store::{LifecycleState, PlatformStatus, RequestState, Store, TenantState};
use tenantry_gateway::LocalStack;

const STAND_IN: &str = r#"{"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": true}}}"#;
const PLATFORM: &str = "payments";

struct World {
    stack: LocalStack,
    deps: Deps,
    store: Store,
    sfn: aws_sdk_sfn::Client,
    sqs: aws_sdk_sqs::Client,
    results_queue: String,
}

impl World {
    async fn new() -> World {
        let stack = tenantry_integration::stack().await;
        let deps = stack.deps().await;
        let store = Store::from_deps(&deps);
        store.create_table_if_missing().await.expect("state table");
        let sfn = aws_sdk_sfn::Client::new(&deps.aws);
        for name in [
            intake::PROVISION_WORKFLOW,
            intake::DECOMMISSION_WORKFLOW,
            intake::ONBOARD_WORKFLOW,
            intake::OFFBOARD_WORKFLOW,
        ] {
            let workflow = tenantry::workflows::Workflow {
                name,
                definition: STAND_IN,
            };
            tenantry::workflows::deploy(
                &sfn,
                &workflow,
                STAND_IN,
                tenantry::aws::LOCAL_STATES_ROLE_ARN,
            )
            .await
            .expect("stand-in state machine");
        }
        let sqs = aws_sdk_sqs::Client::new(&deps.aws);
        let results_queue =
            tenantry_integration::results_queue(&deps.aws, &sqs, "tenant-results").await;
        World {
            stack,
            deps,
            store,
            sfn,
            sqs,
            results_queue,
        }
    }

    /// The example platform, recorded as provisioned and Active.
    async fn active_platform(&self) {
        tenantry_integration::record_platform(&self.store, &tenantry_integration::example_spec())
            .await;
        self.set_platform_state(LifecycleState::Active).await;
    }

    async fn set_platform_state(&self, state: LifecycleState) {
        let current = self.store.get_status(PLATFORM).await.unwrap();
        let version = current.as_ref().map(|c| c.version);
        let mut status = current
            .map(|c| c.value)
            .unwrap_or_else(|| PlatformStatus::new(state));
        status.state = state;
        self.store
            .update_status(PLATFORM, &status, version)
            .await
            .expect("status");
    }

    async fn deliver(&self, envelope: &Value) -> IntakeOutcome {
        match intake::handle(IntakeInput::Event(envelope.clone()), &self.deps).await {
            Ok(IntakeOutput::Outcome(outcome)) => outcome,
            other => panic!("intake answered {other:?}"),
        }
    }

    /// Result events published so far and not yet read: (detail-type, detail).
    async fn results(&self, at_least: usize) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.results_queue)
                .max_number_of_messages(10)
                .wait_time_seconds(if out.len() >= at_least { 0 } else { 1 })
                .send()
                .await
                .expect("receive results");
            let messages = received.messages.unwrap_or_default();
            for m in &messages {
                let envelope: Value =
                    serde_json::from_str(m.body().unwrap_or("{}")).expect("JSON envelope");
                out.push((
                    envelope["detail-type"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    envelope["detail"].clone(),
                ));
                if let Some(handle) = m.receipt_handle() {
                    self.sqs
                        .delete_message()
                        .queue_url(&self.results_queue)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .expect("delete result");
                }
            }
            if (messages.is_empty() && out.len() >= at_least) || Instant::now() > deadline {
                return out;
            }
        }
    }

    async fn executions(&self, workflow: &str) -> Vec<String> {
        let arn = intake::state_machine_arn(&self.deps, workflow)
            .await
            .expect("state machine ARN");
        let mut names: Vec<String> = self
            .sfn
            .list_executions()
            .state_machine_arn(arn)
            .send()
            .await
            .expect("list executions")
            .executions()
            .iter()
            .map(|e| e.name().to_owned())
            .collect();
        names.sort();
        names
    }

    async fn execution_input(&self, arn: &str) -> Value {
        let described = self
            .sfn
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .expect("describe execution");
        serde_json::from_str(described.input().unwrap_or("{}")).expect("JSON input")
    }

    async fn tenant_state(&self, name: &str) -> Option<TenantState> {
        self.store
            .get_tenant_record(PLATFORM, name)
            .await
            .expect("tenant record read")
            .map(|r| r.value.state)
    }

    async fn finalize(
        &self,
        request_id: &str,
        operation: Operation,
        outcome: Outcome,
    ) -> events::ResultEvent {
        finalize::handle(finalize_input(request_id, operation, outcome), &self.deps)
            .await
            .expect("finalize")
    }
}

fn finalize_input(request_id: &str, operation: Operation, outcome: Outcome) -> FinalizeInput {
    FinalizeInput {
        platform_id: PLATFORM.to_owned(),
        request_id: request_id.to_owned(),
        operation,
        outcome,
        error: None,
        phase: None,
        summary: None,
    }
}

fn envelope(kind: RequestKind, detail: Value) -> Value {
    json!({
        "version": "0", "id": tenantry_integration::unique("event"), "detail-type": kind.detail_type(),
        "source": "acme.platform-team", "account": "123456789012", "time": "2026-11-22T10:00:00Z",
        "region": "us-east-1", "resources": [], "detail": detail
    })
}

fn onboard(request_id: &str, tenant: Value) -> Value {
    envelope(
        RequestKind::TenantOnboarding,
        json!({"schemaVersion": "1", "requestId": request_id, "platformId": PLATFORM, "tenant": tenant}),
    )
}

fn tenant(name: &str) -> Value {
    json!({"name": name, "costCentre": "cc-1234", "owners": []})
}

fn offboard(request_id: &str, name: &str, retain_data: Option<bool>) -> Value {
    let mut detail = json!({"schemaVersion": "1", "requestId": request_id, "platformId": PLATFORM, "tenantName": name});
    if let Some(retain) = retain_data {
        detail["retainData"] = json!(retain);
    }
    envelope(RequestKind::TenantOffboarding, detail)
}

fn platform_request(kind: RequestKind, request_id: &str) -> Value {
    let mut detail = json!({"schemaVersion": "1", "requestId": request_id, "platformId": PLATFORM});
    if kind.needs_spec() {
        detail["spec"] =
            serde_json::from_str(include_str!("../../examples/platform.json")).expect("JSON");
    }
    envelope(kind, detail)
}

#[tokio::test]
async fn a_tenant_is_onboarded_offboarded_and_onboarded_again() {
    let w = World::new().await;
    w.active_platform().await;

    // Onboarding: recorded, a share of the lease, an execution named after the request.
    let event = onboard("req-on-1", tenant("team-x"));
    let outcome = w.deliver(&event).await;
    assert_eq!(outcome.disposition, Disposition::Accepted, "{outcome:?}");
    let arn = outcome.execution_arn.clone().expect("execution ARN");
    assert!(
        arn.ends_with(":execution:tenantry-onboard-tenant:req-on-1"),
        "{arn}"
    );
    let mut input = w.execution_input(&arn).await;
    assert!(
        input["pollSeconds"].as_u64().is_some_and(|s| s > 0),
        "{input}"
    );
    input["pollSeconds"] = json!(0);
    assert_eq!(
        input,
        json!({"platformId": PLATFORM, "requestId": "req-on-1", "operation": "onboard",
               "pollSeconds": 0, "tenant": "team-x"})
    );
    let record = w
        .store
        .get_tenant_record(PLATFORM, "team-x")
        .await
        .unwrap()
        .expect("tenant record");
    assert_eq!(record.value.state, TenantState::Onboarding);
    assert_eq!(record.value.request_id, "req-on-1");
    assert_eq!(record.value.spec.cost_centre, "cc-1234");
    let shares = w.store.list_shared_leases(PLATFORM).await.unwrap();
    assert_eq!(
        shares
            .iter()
            .map(|l| (l.holder.as_str(), l.operation.as_str()))
            .collect::<Vec<_>>(),
        [("req-on-1", "onboard")]
    );
    assert!(w.store.get_lease(PLATFORM).await.unwrap().is_none());
    let (detail_type, detail) = &w.results(1).await[0];
    assert_eq!(detail_type, "TenantOnboardingAccepted");
    assert_eq!(detail["tenant"], "team-x");
    assert_eq!(detail["operation"], "onboard");
    assert_eq!(detail["executionArn"], arn.as_str());

    // A redelivery: one read, nothing else.
    w.stack.reset_calls();
    assert_eq!(w.deliver(&event).await.disposition, Disposition::Duplicate);
    let calls = w.stack.calls();
    assert_eq!(calls.mutating_count(), 0, "{:?}", calls.by_operation());
    assert_eq!(calls.read_count(), 1, "{:?}", calls.by_operation());
    assert!(w.results(0).await.is_empty());

    // Finalize: Active, share released, result published; a re-run changes nothing more.
    let result = w
        .finalize("req-on-1", Operation::Onboard, Outcome::Succeeded)
        .await;
    assert_eq!(result.status, events::ResultStatus::Succeeded);
    assert_eq!(result.tenant.as_deref(), Some("team-x"));
    assert_eq!(w.tenant_state("team-x").await, Some(TenantState::Active));
    assert!(w
        .store
        .list_shared_leases(PLATFORM)
        .await
        .unwrap()
        .is_empty());
    let request = w.store.get_request("req-on-1").await.unwrap().unwrap();
    assert_eq!(request.state, RequestState::Succeeded);
    let version = w
        .store
        .get_tenant_record(PLATFORM, "team-x")
        .await
        .unwrap()
        .unwrap()
        .version;
    w.finalize("req-on-1", Operation::Onboard, Outcome::Succeeded)
        .await;
    assert_eq!(
        w.store
            .get_tenant_record(PLATFORM, "team-x")
            .await
            .unwrap()
            .unwrap()
            .version,
        version
    );
    let types: Vec<String> = w.results(2).await.into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        types,
        ["TenantOnboardingSucceeded", "TenantOnboardingSucceeded"]
    );
    // The platform's own status is untouched by tenant operations.
    assert_eq!(
        w.store
            .get_status(PLATFORM)
            .await
            .unwrap()
            .unwrap()
            .value
            .state,
        LifecycleState::Active
    );

    // Offboarding, keeping the data.
    let outcome = w
        .deliver(&offboard("req-off-1", "team-x", Some(true)))
        .await;
    assert_eq!(outcome.disposition, Disposition::Accepted, "{outcome:?}");
    let record = w
        .store
        .get_tenant_record(PLATFORM, "team-x")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.value.state, TenantState::Offboarding);
    assert!(record.value.retain_data);
    assert!(!record.value.schedule_key_deletion);
    assert_eq!(record.value.request_id, "req-off-1");
    let input = w
        .execution_input(outcome.execution_arn.as_deref().unwrap_or_default())
        .await;
    assert_eq!(input["operation"], "offboard");
    assert_eq!(input["tenant"], "team-x");
    assert_eq!(w.executions(intake::OFFBOARD_WORKFLOW).await, ["req-off-1"]);
    // Offboarding it again while it runs: refused (a conflict, naming the request).
    let again = w.deliver(&offboard("req-off-2", "team-x", None)).await;
    assert_eq!(again.disposition, Disposition::Rejected);
    assert!(
        again
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("req-off-1"),
        "{again:?}"
    );
    let result = w
        .finalize("req-off-1", Operation::Offboard, Outcome::Succeeded)
        .await;
    assert_eq!(result.status, events::ResultStatus::Succeeded);
    assert_eq!(
        w.tenant_state("team-x").await,
        Some(TenantState::Offboarded)
    );
    assert!(w
        .store
        .list_shared_leases(PLATFORM)
        .await
        .unwrap()
        .is_empty());
    let types: Vec<String> = w.results(3).await.into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        types,
        [
            "TenantOffboardingAccepted",
            "TenantOffboardingRejected",
            "TenantOffboardingSucceeded"
        ]
    );
    // Offboarded: nothing more to offboard, but the name may be onboarded again.
    assert_eq!(
        w.deliver(&offboard("req-off-3", "team-x", None))
            .await
            .disposition,
        Disposition::Rejected
    );
    let outcome = w.deliver(&onboard("req-on-2", tenant("team-x"))).await;
    assert_eq!(outcome.disposition, Disposition::Accepted, "{outcome:?}");
    assert_eq!(
        w.tenant_state("team-x").await,
        Some(TenantState::Onboarding)
    );
    assert_eq!(
        w.executions(intake::ONBOARD_WORKFLOW).await,
        ["req-on-1", "req-on-2"]
    );
    // History: one run per finished request.
    let runs = w.store.list_runs(PLATFORM, 10).await.unwrap();
    let kinds: Vec<&str> = runs.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["offboard", "onboard"]);
    assert_eq!(runs[0].detail.as_ref().unwrap()["tenant"], "team-x");
}

#[tokio::test]
async fn twenty_concurrent_onboardings_all_succeed_and_keep_platform_operations_out() {
    let w = World::new().await;
    w.active_platform().await;
    let events: Vec<Value> = (0..20)
        .map(|i| onboard(&format!("req-t{i:02}"), tenant(&format!("team-{i:02}"))))
        .collect();
    let handles: Vec<_> = events
        .iter()
        .cloned()
        .map(|event| {
            let deps = w.deps.clone();
            tokio::spawn(async move {
                intake::handle(IntakeInput::Event(event), &deps)
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    for h in handles {
        match h.await.expect("task") {
            Ok(IntakeOutput::Outcome(o)) => {
                assert_eq!(o.disposition, Disposition::Accepted, "{o:?}")
            }
            other => panic!("intake answered {other:?}"),
        }
    }
    let expected: Vec<String> = (0..20).map(|i| format!("req-t{i:02}")).collect();
    assert_eq!(w.executions(intake::ONBOARD_WORKFLOW).await, expected);
    let records = w.store.list_tenant_records(PLATFORM).await.unwrap();
    assert_eq!(records.len(), 20, "recorded once each");
    assert!(records
        .iter()
        .all(|r| r.value.state == TenantState::Onboarding && r.version == 2));
    assert_eq!(
        w.store.list_shared_leases(PLATFORM).await.unwrap().len(),
        20
    );
    let accepted = w.results(20).await;
    assert_eq!(
        accepted
            .iter()
            .filter(|(t, _)| t == "TenantOnboardingAccepted")
            .count(),
        20
    );

    // Every one delivered again: duplicates, nothing changes.
    w.stack.reset_calls();
    for event in &events {
        assert_eq!(w.deliver(event).await.disposition, Disposition::Duplicate);
    }
    assert_eq!(w.stack.calls().mutating_count(), 0);

    // Platform operations are refused while tenants are onboarded, naming a tenant request.
    for kind in [
        RequestKind::PlatformUpdate,
        RequestKind::PlatformDecommission,
        RequestKind::PlatformProvision,
    ] {
        let id = format!("req-{}", kind.operation());
        let outcome = w.deliver(&platform_request(kind, &id)).await;
        assert_eq!(outcome.disposition, Disposition::Rejected, "{outcome:?}");
        let reason = outcome.reason.unwrap_or_default();
        assert!(
            reason.contains("req-t") && reason.contains("onboard"),
            "{reason}"
        );
    }
    let refused = w.results(3).await;
    for (detail_type, detail) in &refused {
        assert!(detail_type.ends_with("Rejected"), "{detail_type}");
        assert_eq!(detail["error"]["code"], "Tenantry.Conflict");
    }
    assert!(w.executions(intake::DECOMMISSION_WORKFLOW).await.is_empty());
    assert_eq!(
        w.store
            .get_status(PLATFORM)
            .await
            .unwrap()
            .unwrap()
            .value
            .state,
        LifecycleState::Active
    );

    // All finish: the platform is free again.
    for id in &expected {
        w.finalize(id, Operation::Onboard, Outcome::Succeeded).await;
    }
    assert!(w
        .store
        .list_shared_leases(PLATFORM)
        .await
        .unwrap()
        .is_empty());
    let records = w.store.list_tenant_records(PLATFORM).await.unwrap();
    assert!(records.iter().all(|r| r.value.state == TenantState::Active));
    let outcome = w
        .deliver(&platform_request(
            RequestKind::PlatformUpdate,
            "req-update-2",
        ))
        .await;
    assert_eq!(outcome.disposition, Disposition::Accepted, "{outcome:?}");
    // And now tenant operations wait for the platform operation.
    let outcome = w.deliver(&onboard("req-late", tenant("team-late"))).await;
    assert_eq!(outcome.disposition, Disposition::Rejected);
    assert!(
        outcome
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("req-update-2"),
        "{outcome:?}"
    );
    assert_eq!(w.tenant_state("team-late").await, None, "no record");
}

#[tokio::test]
async fn refused_tenant_requests_change_nothing() {
    let w = World::new().await;
    let no_side_effects = |w: &World, name: &'static str| {
        let store = w.store.clone();
        async move {
            assert!(store.list_shared_leases(PLATFORM).await.unwrap().is_empty());
            assert!(store
                .get_tenant_record(PLATFORM, name)
                .await
                .unwrap()
                .is_none());
        }
    };

    // No platform yet.
    let outcome = w.deliver(&onboard("req-a", tenant("team-a"))).await;
    assert_eq!(outcome.disposition, Disposition::Rejected);
    assert!(
        outcome
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("does not exist"),
        "{outcome:?}"
    );
    no_side_effects(&w, "team-a").await;
    // A platform that is not Active.
    tenantry_integration::record_platform(&w.store, &tenantry_integration::example_spec()).await;
    let outcome = w.deliver(&onboard("req-b", tenant("team-a"))).await;
    assert_eq!(outcome.disposition, Disposition::Rejected);
    assert!(
        outcome
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("not Active"),
        "{outcome:?}"
    );
    no_side_effects(&w, "team-a").await;
    w.set_platform_state(LifecycleState::Active).await;
    let results = w.results(2).await;
    assert!(results
        .iter()
        .all(|(t, d)| t == "TenantOnboardingRejected" && d["tenant"] == "team-a"));

    // A hostile name: every issue with field and rule, nothing recorded (not even the request).
    let outcome = w
        .deliver(&onboard(
            "req-c",
            json!({"name": "../x", "costCentre": "cc\"1"}),
        ))
        .await;
    assert_eq!(outcome.disposition, Disposition::Rejected);
    assert!(w.store.get_request("req-c").await.unwrap().is_none());
    let (detail_type, detail) = &w.results(1).await[0];
    assert_eq!(detail_type, "TenantOnboardingRejected");
    assert_eq!(detail["error"]["code"], "Tenantry.InvalidRequest");
    let paths: Vec<&str> = detail["issues"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["path"].as_str())
        .collect();
    assert!(
        paths.contains(&"$.name") && paths.contains(&"$.costCentre"),
        "{paths:?}"
    );

    // A name the platform's spec already has; a prefix nesting with a tenant's.
    let outcome = w.deliver(&onboard("req-d", tenant("checkout"))).await;
    assert_eq!(outcome.disposition, Disposition::Rejected);
    let reason = outcome.reason.unwrap_or_default();
    assert!(
        reason.contains("$.name") && reason.contains("duplicate-name"),
        "{reason}"
    );
    let mut nested = tenant("team-n");
    nested["s3Prefix"] = json!("tenants/checkout/n/");
    let outcome = w.deliver(&onboard("req-e", nested)).await;
    assert_eq!(outcome.disposition, Disposition::Rejected);
    assert!(
        outcome.reason.unwrap_or_default().contains("$.s3Prefix"),
        "s3 prefix overlap"
    );
    no_side_effects(&w, "team-n").await;
    assert!(w
        .store
        .get_tenant_record(PLATFORM, "checkout")
        .await
        .unwrap()
        .is_none());
    let rejected = w.store.get_request("req-d").await.unwrap().unwrap();
    assert_eq!(rejected.state, RequestState::Rejected);

    // Offboarding a tenant that does not exist.
    let outcome = w.deliver(&offboard("req-f", "nobody", None)).await;
    assert_eq!(outcome.disposition, Disposition::Rejected);
    no_side_effects(&w, "nobody").await;

    // A platform operation holds the lease: a conflict naming it.
    w.store
        .acquire_lease(PLATFORM, "req-update", "update", intake::LEASE_TTL)
        .await
        .unwrap();
    let outcome = w.deliver(&onboard("req-g", tenant("team-g"))).await;
    assert_eq!(outcome.disposition, Disposition::Rejected);
    let reason = outcome.reason.unwrap_or_default();
    assert!(
        reason.contains("req-update") && reason.contains("update"),
        "{reason}"
    );
    no_side_effects(&w, "team-g").await;
    let results = w.results(4).await;
    let last = &results.last().expect("results").1;
    assert_eq!(last["error"]["code"], "Tenantry.Conflict");
    assert!(w.executions(intake::ONBOARD_WORKFLOW).await.is_empty());
    assert!(w.executions(intake::OFFBOARD_WORKFLOW).await.is_empty());
}

#[tokio::test]
async fn a_failed_onboarding_records_phase_and_reason_and_can_be_offboarded() {
    let w = World::new().await;
    w.active_platform().await;
    assert_eq!(
        w.deliver(&onboard("req-1", tenant("team-f")))
            .await
            .disposition,
        Disposition::Accepted
    );
    let mut failed = finalize_input("req-1", Operation::Onboard, Outcome::Failed);
    failed.error = Some(StatesError {
        error: "Tenantry.Terminal".to_owned(),
        cause: Some(
            json!({"errorType": "Tenantry.Terminal",
                   "errorMessage": "CreateKey failed: LimitExceededException: too many keys"})
            .to_string(),
        ),
    });
    failed.phase = Some("tenant".to_owned());
    let result = finalize::handle(failed, &w.deps).await.expect("finalize");
    assert_eq!(result.status, events::ResultStatus::Failed);
    let error = result.error.expect("error");
    assert_eq!(error.code, "LimitExceededException");
    assert_eq!(error.phase.as_deref(), Some("tenant"));
    let record = w
        .store
        .get_tenant_record(PLATFORM, "team-f")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.value.state, TenantState::Failed);
    let failure = record.value.failure.expect("failure");
    assert_eq!(failure.phase, "tenant");
    assert!(failure.reason.contains("too many keys"), "{failure:?}");
    assert!(w
        .store
        .list_shared_leases(PLATFORM)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        w.store
            .get_status(PLATFORM)
            .await
            .unwrap()
            .unwrap()
            .value
            .state,
        LifecycleState::Active,
        "a tenant failure does not fail the platform"
    );

    // A Failed tenant is still there: onboarding it again is refused, offboarding it works.
    assert_eq!(
        w.deliver(&onboard("req-2", tenant("team-f")))
            .await
            .disposition,
        Disposition::Rejected
    );
    assert_eq!(
        w.deliver(&offboard("req-3", "team-f", None))
            .await
            .disposition,
        Disposition::Accepted
    );
    let record = w
        .store
        .get_tenant_record(PLATFORM, "team-f")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.value.state, TenantState::Offboarding);
    assert_eq!(record.value.failure, None);
    assert!(!record.value.retain_data);
    // A tenant of the platform's spec (onboarded by the provision workflow, no record yet) can be
    // offboarded too.
    assert_eq!(
        w.deliver(&offboard("req-4", "ledger", Some(false)))
            .await
            .disposition,
        Disposition::Accepted
    );
    assert_eq!(
        w.tenant_state("ledger").await,
        Some(TenantState::Offboarding)
    );
    assert_eq!(w.store.list_shared_leases(PLATFORM).await.unwrap().len(), 2);
    let types: Vec<String> = w.results(5).await.into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        types,
        [
            "TenantOnboardingAccepted",
            "TenantOnboardingFailed",
            "TenantOnboardingRejected",
            "TenantOffboardingAccepted",
            "TenantOffboardingAccepted"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conflicting_concurrent_onboardings_never_both_get_in() {
    let w = World::new().await;
    w.active_platform().await;
    for round in 0..3 {
        // Same name, and nesting prefixes: at most one of each pair is accepted.
        let a_name = format!("same-{round}");
        let mut nested = tenant(&format!("nested-{round}"));
        nested["s3Prefix"] = json!(format!("tenants/outer-{round}/inner/"));
        let mut outer = tenant(&format!("outer-{round}"));
        outer["s3Prefix"] = json!(format!("tenants/outer-{round}/"));
        let pairs = [
            (
                onboard(&format!("req-{round}-a1"), tenant(&a_name)),
                onboard(&format!("req-{round}-a2"), tenant(&a_name)),
            ),
            (
                onboard(&format!("req-{round}-b1"), outer),
                onboard(&format!("req-{round}-b2"), nested),
            ),
        ];
        for (first, second) in pairs {
            let (x, y) = tokio::join!(w.deliver(&first), w.deliver(&second));
            let accepted = [&x, &y]
                .iter()
                .filter(|o| o.disposition == Disposition::Accepted)
                .count();
            assert!(accepted <= 1, "round {round}: {x:?} {y:?}");
            for refused in [&x, &y]
                .into_iter()
                .filter(|o| o.disposition != Disposition::Accepted)
            {
                assert_eq!(refused.disposition, Disposition::Rejected);
                let shares = w.store.list_shared_leases(PLATFORM).await.unwrap();
                assert!(
                    shares.iter().all(|l| l.holder != refused.request_id),
                    "a refused request keeps no share"
                );
            }
        }
    }
    // Every live record is one that was accepted.
    let records = w.store.list_tenant_records(PLATFORM).await.unwrap();
    let accepted = w
        .results(12)
        .await
        .into_iter()
        .filter(|(t, _)| t == "TenantOnboardingAccepted")
        .count();
    assert_eq!(records.len(), accepted);
    assert!(records
        .iter()
        .all(|r| r.value.state == TenantState::Onboarding));
}
