//! `intake`, `finalize` and the `cluster` phase on the local stack.
//!
//! The provision and decommission state machines are stood in for by one-state machines of the
//! same names (the real definitions are exercised end to end elsewhere): what is checked here is
//! what intake and finalize do around them. Result events are read from an SQS queue that an
//! EventBridge rule on the Tenantry bus fills, as any consumer would.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tenantry::deps::Deps;
use tenantry::events::{self, RequestKind};
use tenantry::functions::finalize::{self, FinalizeInput, Operation, Outcome, StatesError};
use tenantry::functions::intake::{self, Disposition, IntakeInput, IntakeOutcome, IntakeOutput};
use tenantry::phases::{cluster, Action, PhaseInput, PhaseOutput};
use tenantry::store::{
    LifecycleState, PhaseState, PhaseStatus, PlatformStatus, RequestState, ResourceRecord, Store,
};
use tenantry_gateway::{Durations, LocalStack};
use tenantry_integration::invoke;

/// A state machine that succeeds at once (stands in for the real workflows).
const STAND_IN: &str = r#"{"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": true}}}"#;

/// A local stack with the state table, the Tenantry bus, a queue receiving every result event,
/// and the stand-in state machines.
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
        for name in [intake::PROVISION_WORKFLOW, intake::DECOMMISSION_WORKFLOW] {
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
        let results_queue = tenantry_integration::results_queue(&deps.aws, &sqs, "results").await;
        World {
            stack,
            deps,
            store,
            sfn,
            sqs,
            results_queue,
        }
    }

    async fn deliver(&self, envelope: &Value) -> IntakeOutcome {
        match intake::handle(IntakeInput::Event(envelope.clone()), &self.deps).await {
            Ok(IntakeOutput::Outcome(outcome)) => outcome,
            other => panic!("intake answered {other:?}"),
        }
    }

    /// Delivers through the SQS path (as the event source mapping does); returns the ids of the
    /// messages to redeliver.
    async fn deliver_sqs(&self, envelopes: &[Value]) -> Vec<String> {
        let records: Vec<Value> = envelopes
            .iter()
            .enumerate()
            .map(|(i, e)| json!({"messageId": format!("m-{i}"), "body": e.to_string()}))
            .collect();
        let input: IntakeInput =
            serde_json::from_value(json!({ "Records": records })).expect("an SQS event");
        match intake::handle(input, &self.deps).await {
            Ok(IntakeOutput::Batch(batch)) => batch
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect(),
            other => panic!("intake answered {other:?}"),
        }
    }

    /// Result events published so far and not yet read: (detail-type, detail).
    async fn results(&self, at_least: usize) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
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
                assert_eq!(envelope["source"], events::RESULT_SOURCE);
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
        self.sfn
            .list_executions()
            .state_machine_arn(arn)
            .send()
            .await
            .expect("list executions")
            .executions()
            .iter()
            .map(|e| e.name().to_owned())
            .collect()
    }

    async fn status(&self, platform: &str) -> PlatformStatus {
        self.store
            .get_status(platform)
            .await
            .expect("status read")
            .expect("status exists")
            .value
    }

    async fn finalize(&self, input: FinalizeInput) -> events::ResultEvent {
        finalize::handle(input, &self.deps).await.expect("finalize")
    }
}

fn example_spec() -> Value {
    serde_json::from_str(include_str!("../../examples/platform.json")).expect("JSON")
}

const PLATFORM: &str = "payments";

fn envelope(kind: RequestKind, request_id: &str, platform: &str, spec: Option<Value>) -> Value {
    let mut detail = json!({"schemaVersion": "1", "requestId": request_id, "platformId": platform});
    if let Some(spec) = spec {
        detail["spec"] = spec;
    }
    json!({
        "version": "0", "id": tenantry_integration::unique("event"), "detail-type": kind.detail_type(),
        "source": "acme.platform-team", "account": "123456789012", "time": "2026-11-22T10:00:00Z",
        "region": "us-east-1", "resources": [], "detail": detail
    })
}

fn provision(request_id: &str) -> Value {
    envelope(
        RequestKind::PlatformProvision,
        request_id,
        PLATFORM,
        Some(example_spec()),
    )
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

#[tokio::test]
async fn a_valid_provision_is_accepted_once_and_a_redelivery_changes_nothing() {
    let w = World::new().await;
    let event = provision("req-provision-1");
    w.stack.reset_calls();
    assert_eq!(
        w.deliver_sqs(std::slice::from_ref(&event)).await,
        Vec::<String>::new()
    );
    println!("accepted delivery: {:?}", w.stack.calls().by_operation());

    let results = w.results(1).await;
    assert_eq!(results.len(), 1, "{results:?}");
    let (detail_type, detail) = &results[0];
    assert_eq!(detail_type, "PlatformProvisionAccepted");
    assert_eq!(detail["requestId"], "req-provision-1");
    assert_eq!(detail["platformId"], PLATFORM);
    assert_eq!(detail["operation"], "provision");
    let arn = detail["executionArn"]
        .as_str()
        .expect("execution ARN")
        .to_owned();
    assert!(
        arn.ends_with(":execution:tenantry-provision-platform:req-provision-1"),
        "{arn}"
    );
    assert_eq!(
        w.executions(intake::PROVISION_WORKFLOW).await,
        vec!["req-provision-1"]
    );

    let request = w
        .store
        .get_request("req-provision-1")
        .await
        .unwrap()
        .expect("request record");
    assert_eq!(request.state, RequestState::Started);
    assert_eq!(request.execution_arn.as_deref(), Some(arn.as_str()));
    // Who asked, as the envelope says it: account, source, event id and time, kept with the
    // request for the audit trail.
    let origin = request.origin.expect("origin recorded");
    assert_eq!(origin.channel, "eventbridge");
    assert_eq!(origin.account.as_deref(), Some("123456789012"));
    assert_eq!(origin.source, "acme.platform-team");
    assert!(
        origin
            .event_id
            .as_deref()
            .is_some_and(|id| id.starts_with("event")),
        "{origin:?}"
    );
    assert_eq!(origin.time.as_deref(), Some("2026-11-22T10:00:00+00:00"));
    let lease = w.store.get_lease(PLATFORM).await.unwrap().expect("lease");
    assert_eq!(
        (lease.holder.as_str(), lease.operation.as_str()),
        ("req-provision-1", "provision")
    );
    assert_eq!(
        w.store
            .get_spec(PLATFORM)
            .await
            .unwrap()
            .expect("spec")
            .value["id"],
        PLATFORM
    );
    assert_eq!(w.status(PLATFORM).await.state, LifecycleState::Provisioning);

    // The same event again (SQS redelivery): one read, nothing else.
    w.stack.reset_calls();
    let again = w.deliver(&event).await;
    assert_eq!(again.disposition, Disposition::Duplicate);
    assert_eq!(again.execution_arn.as_deref(), Some(arn.as_str()));
    let calls = w.stack.calls();
    println!("duplicate delivery: {:?}", calls.by_operation());
    assert_eq!(calls.mutating_count(), 0, "{:?}", calls.by_operation());
    assert_eq!(calls.read_count(), 1, "{:?}", calls.by_operation());
    assert_eq!(w.executions(intake::PROVISION_WORKFLOW).await.len(), 1);
    assert!(
        w.results(0).await.is_empty(),
        "a duplicate publishes nothing"
    );
}

#[tokio::test]
async fn a_request_for_a_busy_platform_is_refused_naming_the_holder() {
    let w = World::new().await;
    assert_eq!(
        w.deliver(&provision("req-first")).await.disposition,
        Disposition::Accepted
    );
    w.results(1).await;

    let second = w.deliver(&provision("req-second")).await;
    assert_eq!(second.disposition, Disposition::Rejected);
    let decommission = envelope(
        RequestKind::PlatformDecommission,
        "req-third",
        PLATFORM,
        None,
    );
    assert_eq!(
        w.deliver(&decommission).await.disposition,
        Disposition::Rejected
    );

    let results = w.results(2).await;
    let types: Vec<&str> = results.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        ["PlatformProvisionRejected", "PlatformDecommissionRejected"]
    );
    for (_, detail) in &results {
        let error = &detail["error"];
        assert_eq!(error["code"], "Tenantry.Conflict");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("req-first") && message.contains("provision"),
            "{message}"
        );
    }
    assert_eq!(
        w.executions(intake::PROVISION_WORKFLOW).await,
        vec!["req-first"]
    );
    assert!(w.executions(intake::DECOMMISSION_WORKFLOW).await.is_empty());
    let refused = w
        .store
        .get_request("req-second")
        .await
        .unwrap()
        .expect("recorded");
    assert_eq!(refused.state, RequestState::Rejected);
    assert_eq!(
        w.store
            .get_lease(PLATFORM)
            .await
            .unwrap()
            .expect("lease")
            .holder,
        "req-first"
    );
}

#[tokio::test]
async fn an_invalid_request_is_rejected_with_every_issue_and_nothing_else() {
    let w = World::new().await;
    let text = include_str!("../../examples/invalid-platform.json");
    let expected = tenantry::validate::parse_platform(text).expect_err("the example is invalid");
    let spec: Value = serde_json::from_str(text).expect("JSON");
    let id = spec["id"].as_str().unwrap_or_default().to_owned();

    let outcome = w
        .deliver(&envelope(
            RequestKind::PlatformProvision,
            "req-invalid",
            &id,
            Some(spec),
        ))
        .await;
    assert_eq!(outcome.disposition, Disposition::Rejected);
    let results = w.results(1).await;
    assert_eq!(results.len(), 1);
    let (detail_type, detail) = &results[0];
    assert_eq!(detail_type, "PlatformProvisionRejected");
    assert_eq!(detail["error"]["code"], "Tenantry.InvalidRequest");
    let issues: Vec<tenantry::validate::Issue> =
        serde_json::from_value(detail["issues"].clone()).expect("issues");
    assert_eq!(
        issues, expected.0,
        "every validation issue, as the validator reports them"
    );
    assert!(issues.len() >= 3, "{issues:?}");

    assert!(w.store.get_lease(&id).await.unwrap().is_none(), "no lease");
    assert!(w.store.get_spec(&id).await.unwrap().is_none(), "no spec");
    assert!(
        w.store.get_request("req-invalid").await.unwrap().is_none(),
        "no record"
    );
    assert!(
        w.executions(intake::PROVISION_WORKFLOW).await.is_empty(),
        "no execution"
    );

    // A compliance sweep of a platform that does not exist: refused, naming why.
    let sweep = envelope(RequestKind::ComplianceSweep, "req-sweep", PLATFORM, None);
    assert_eq!(w.deliver(&sweep).await.disposition, Disposition::Rejected);
    let (detail_type, detail) = &w.results(1).await[0];
    assert_eq!(detail_type, "ComplianceSweepRejected");
    assert!(
        detail["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("does not exist"),
        "{detail}"
    );

    // A drift check of a platform that does not exist: refused, naming why; nothing recorded.
    let drift = envelope(RequestKind::DriftCheck, "req-drift", PLATFORM, None);
    assert_eq!(w.deliver(&drift).await.disposition, Disposition::Rejected);
    let (detail_type, detail) = &w.results(1).await[0];
    assert_eq!(detail_type, "DriftCheckRejected");
    assert!(
        detail["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("does not exist"),
        "{detail}"
    );
    assert!(
        w.store.get_lease(PLATFORM).await.unwrap().is_none(),
        "no lease"
    );
}

#[tokio::test]
async fn intake_converges_after_a_crash_at_any_step() {
    let w = World::new().await;
    // Crash after the idempotency record and the lease (before spec, status, execution).
    let event = provision("req-crash-a");
    let hash = tenantry::store::payload_hash(&json!({
        "detailType": "PlatformProvisionRequested", "detail": event["detail"]
    }));
    w.store
        .record_request("req-crash-a", PLATFORM, "provision", &hash)
        .await
        .unwrap();
    w.store
        .acquire_lease(PLATFORM, "req-crash-a", "provision", intake::LEASE_TTL)
        .await
        .unwrap();
    let outcome = w.deliver(&event).await;
    assert_eq!(outcome.disposition, Disposition::Accepted, "{outcome:?}");
    assert_eq!(
        w.executions(intake::PROVISION_WORKFLOW).await,
        vec!["req-crash-a"]
    );
    assert_eq!(w.results(1).await[0].0, "PlatformProvisionAccepted");
    w.finalize(finalize_input(
        "req-crash-a",
        Operation::Provision,
        Outcome::Succeeded,
    ))
    .await;
    w.results(1).await;

    // Crash after StartExecution (the execution exists, nothing recorded after it).
    let event = provision("req-crash-b");
    let hash = tenantry::store::payload_hash(&json!({
        "detailType": "PlatformProvisionRequested", "detail": event["detail"]
    }));
    w.store
        .record_request("req-crash-b", PLATFORM, "provision", &hash)
        .await
        .unwrap();
    w.store
        .acquire_lease(PLATFORM, "req-crash-b", "provision", intake::LEASE_TTL)
        .await
        .unwrap();
    let arn = intake::state_machine_arn(&w.deps, intake::PROVISION_WORKFLOW)
        .await
        .unwrap();
    let first = w
        .sfn
        .start_execution()
        .state_machine_arn(&arn)
        .name("req-crash-b")
        .input(r#"{"crashed": true}"#)
        .send()
        .await
        .expect("first start")
        .execution_arn()
        .to_owned();
    let outcome = w.deliver(&event).await;
    assert_eq!(outcome.disposition, Disposition::Accepted, "{outcome:?}");
    assert_eq!(outcome.execution_arn.as_deref(), Some(first.as_str()));
    let mut names = w.executions(intake::PROVISION_WORKFLOW).await;
    names.sort();
    assert_eq!(names, ["req-crash-a", "req-crash-b"], "no second execution");
    let request = w
        .store
        .get_request("req-crash-b")
        .await
        .unwrap()
        .expect("record");
    assert_eq!(request.state, RequestState::Started);
    // And delivered once more after all that: a duplicate.
    assert_eq!(w.deliver(&event).await.disposition, Disposition::Duplicate);
}

#[tokio::test]
async fn finalize_records_success_and_failure_and_releases_the_lease() {
    let w = World::new().await;
    assert_eq!(
        w.deliver(&provision("req-ok")).await.disposition,
        Disposition::Accepted
    );
    w.store
        .record_phase(
            PLATFORM,
            "network",
            &PhaseStatus::new(PhaseState::Succeeded),
            &BTreeMap::from([("vpcId".to_owned(), json!("vpc-123"))]),
        )
        .await
        .unwrap();
    w.results(1).await;

    let result = w
        .finalize(finalize_input(
            "req-ok",
            Operation::Provision,
            Outcome::Succeeded,
        ))
        .await;
    assert_eq!(result.status, events::ResultStatus::Succeeded);
    let status = w.status(PLATFORM).await;
    assert_eq!(status.state, LifecycleState::Active);
    assert_eq!(status.outputs["vpcId"], "vpc-123");
    assert!(
        w.store.get_lease(PLATFORM).await.unwrap().is_none(),
        "lease released"
    );
    let request = w
        .store
        .get_request("req-ok")
        .await
        .unwrap()
        .expect("record");
    assert_eq!(request.state, RequestState::Succeeded);
    let (detail_type, detail) = &w.results(1).await[0];
    assert_eq!(detail_type, "PlatformProvisionSucceeded");
    assert_eq!(detail["outputs"]["vpcId"], "vpc-123");
    // Re-run (a retried finalize): same result, one run entry, the event again.
    w.finalize(finalize_input(
        "req-ok",
        Operation::Provision,
        Outcome::Succeeded,
    ))
    .await;
    assert_eq!(w.store.list_runs(PLATFORM, 10).await.unwrap().len(), 1);
    assert_eq!(w.results(1).await[0].0, "PlatformProvisionSucceeded");

    // An update that fails in the cluster phase.
    let update = envelope(
        RequestKind::PlatformUpdate,
        "req-bad",
        PLATFORM,
        Some(example_spec()),
    );
    assert_eq!(w.deliver(&update).await.disposition, Disposition::Accepted);
    assert_eq!(w.status(PLATFORM).await.state, LifecycleState::Updating);
    w.store
        .set_phase(PLATFORM, "cluster", &PhaseStatus::new(PhaseState::Running))
        .await
        .unwrap();
    w.results(1).await;
    let mut failed = finalize_input("req-bad", Operation::Update, Outcome::Failed);
    failed.error = Some(StatesError {
        error: "Tenantry.Terminal".to_owned(),
        cause: Some(
            json!({"errorType": "Tenantry.Terminal",
                   "errorMessage": "UpdateClusterVersion failed: InvalidParameterException: unsupported version"})
            .to_string(),
        ),
    });
    let result = w.finalize(failed).await;
    let error = result.error.expect("error");
    assert_eq!(error.phase.as_deref(), Some("cluster"));
    assert_eq!(error.code, "InvalidParameterException");
    let status = w.status(PLATFORM).await;
    assert_eq!(status.state, LifecycleState::Failed);
    let last = status.last_error.expect("last error");
    assert_eq!(last.phase.as_deref(), Some("cluster"));
    assert!(
        last.message.contains("unsupported version"),
        "{}",
        last.message
    );
    assert_eq!(status.phases["cluster"].state, PhaseState::Failed);
    assert!(
        w.store.get_lease(PLATFORM).await.unwrap().is_none(),
        "lease released"
    );
    let (detail_type, detail) = &w.results(1).await[0];
    assert_eq!(detail_type, "PlatformUpdateFailed");
    assert_eq!(detail["error"]["phase"], "cluster");
    assert_eq!(detail["error"]["retryable"], false);
}

#[tokio::test]
async fn decommission_succeeds_only_with_an_empty_inventory() {
    let w = World::new().await;
    let decommission = |id: &str| envelope(RequestKind::PlatformDecommission, id, PLATFORM, None);
    // Nothing to decommission yet.
    assert_eq!(
        w.deliver(&decommission("req-d0")).await.disposition,
        Disposition::Rejected
    );
    assert!(
        w.store.get_lease(PLATFORM).await.unwrap().is_none(),
        "lease released"
    );
    let (detail_type, _) = &w.results(1).await[0];
    assert_eq!(detail_type, "PlatformDecommissionRejected");

    assert_eq!(
        w.deliver(&provision("req-p")).await.disposition,
        Disposition::Accepted
    );
    w.finalize(finalize_input(
        "req-p",
        Operation::Provision,
        Outcome::Succeeded,
    ))
    .await;
    w.store
        .put_resource(PLATFORM, &ResourceRecord::new("vpc", "vpc-123", "network"))
        .await
        .unwrap();
    w.results(2).await;

    assert_eq!(
        w.deliver(&decommission("req-d1")).await.disposition,
        Disposition::Accepted
    );
    assert_eq!(
        w.status(PLATFORM).await.state,
        LifecycleState::Decommissioning
    );
    assert_eq!(
        w.executions(intake::DECOMMISSION_WORKFLOW).await,
        vec!["req-d1"]
    );
    let result = w
        .finalize(finalize_input(
            "req-d1",
            Operation::Decommission,
            Outcome::Succeeded,
        ))
        .await;
    let error = result.error.expect("leftovers fail the decommission");
    assert!(error.message.contains("vpc/vpc-123"), "{}", error.message);
    assert_eq!(w.status(PLATFORM).await.state, LifecycleState::Failed);

    w.store
        .delete_resource(PLATFORM, "vpc", "vpc-123")
        .await
        .unwrap();
    assert_eq!(
        w.deliver(&decommission("req-d2")).await.disposition,
        Disposition::Accepted
    );
    let result = w
        .finalize(finalize_input(
            "req-d2",
            Operation::Decommission,
            Outcome::Succeeded,
        ))
        .await;
    assert_eq!(result.status, events::ResultStatus::Succeeded);
    let status = w.status(PLATFORM).await;
    assert_eq!(status.state, LifecycleState::Decommissioned);
    assert!(status.outputs.is_empty());
    let types: Vec<String> = w.results(4).await.into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        types,
        [
            "PlatformDecommissionAccepted",
            "PlatformDecommissionFailed",
            "PlatformDecommissionAccepted",
            "PlatformDecommissionSucceeded"
        ]
    );
    // Decommissioned: nothing more to decommission.
    assert_eq!(
        w.deliver(&decommission("req-d3")).await.disposition,
        Disposition::Rejected
    );
}

// ---- the cluster phase

const SECRETS_KEY: &str =
    "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555";
const LOGS_KEY: &str =
    "arn:aws:kms:us-east-1:123456789012:key/66666666-7777-8888-9999-000000000000";

/// A platform whose earlier phases "ran": spec, status and their outputs recorded.
async fn platform_ready_for_cluster(store: &Store, spec: &Value) {
    let id = spec["id"].as_str().unwrap_or_default();
    let parsed = serde_json::from_value(spec.clone()).expect("spec");
    tenantry_integration::record_platform(store, &parsed).await;
    let done = PhaseStatus::new(PhaseState::Succeeded);
    let outputs = [
        (
            "network",
            json!({"vpcId": "vpc-0abc", "privateSubnetIds": ["subnet-a", "subnet-b", "subnet-c"]}),
        ),
        (
            "encryption",
            json!({"secretsKeyArn": SECRETS_KEY, "logsKeyArn": LOGS_KEY}),
        ),
        (
            "identity",
            json!({"clusterRoleArn": "arn:aws:iam::123456789012:role/tenantry-payments-prod-cluster"}),
        ),
    ];
    for (phase, values) in outputs {
        let values: BTreeMap<String, Value> = serde_json::from_value(values).unwrap();
        store.record_phase(id, phase, &done, &values).await.unwrap();
    }
}

async fn run_phase(deps: &Deps, action: Action) -> PhaseOutput {
    let input = PhaseInput {
        platform_id: PLATFORM.to_owned(),
        request_id: "req-cluster".to_owned(),
        action,
        item: None,
        scope: None,
    };
    cluster::handle(input, deps).await.expect("cluster phase")
}

/// Mutating AWS calls, state store writes left out.
fn mutating_aws(stack: &LocalStack) -> Vec<String> {
    stack
        .calls()
        .calls
        .iter()
        .filter(|c| c.mutating && c.service != "dynamodb")
        .map(|c| format!("{}:{}", c.service, c.operation))
        .collect()
}

#[tokio::test]
async fn the_cluster_phase_creates_polls_updates_and_deletes() {
    let stack = tenantry_integration::stack().await;
    let deps = stack.deps().await;
    let store = Store::from_deps(&deps);
    store.create_table_if_missing().await.unwrap();
    let mut spec = example_spec();
    platform_ready_for_cluster(&store, &spec).await;
    let eks = aws_sdk_eks::Client::new(&deps.aws);
    let name = "payments-prod";

    // Creation, held CREATING for a moment by the gateway: ensure and the first polls not ready.
    stack.set_durations(Durations {
        cluster_creating_secs: 2,
        ..Durations::default()
    });
    stack.reset_calls();
    let created = run_phase(&deps, Action::Ensure).await;
    println!("first ensure: {:?}", stack.calls().by_service());
    assert!(!created.ready);
    assert_eq!(
        mutating_aws(&stack),
        [
            "logs:CreateLogGroup",
            "logs:PutRetentionPolicy",
            "eks:CreateCluster"
        ]
    );
    assert_eq!(created.changes, 3);
    // The poll is `ensure` again: while CREATING it only reads (printed: the calls a poll costs).
    stack.reset_calls();
    let poll = run_phase(&deps, Action::Ensure).await;
    let reads: Vec<String> = stack
        .calls()
        .calls
        .iter()
        .filter(|c| c.service != "dynamodb")
        .map(|c| format!("{}:{}", c.service, c.operation))
        .collect();
    println!("a poll while CREATING: {reads:?}");
    assert!(!poll.ready);
    assert_eq!(poll.changes, 0);
    assert_eq!(mutating_aws(&stack), Vec::<String>::new());
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let polled = run_phase(&deps, Action::Ensure).await;
    assert!(polled.ready);
    for key in [
        "clusterName",
        "clusterArn",
        "clusterEndpoint",
        "oidcIssuer",
        "certificateAuthority",
    ] {
        assert!(
            polled.outputs.contains_key(key),
            "{key} missing from {:?}",
            polled.outputs
        );
    }
    assert_eq!(
        store
            .get_status(PLATFORM)
            .await
            .unwrap()
            .unwrap()
            .value
            .outputs["clusterName"],
        name
    );

    let described = eks
        .describe_cluster()
        .name(name)
        .send()
        .await
        .unwrap()
        .cluster
        .expect("cluster");
    assert_eq!(described.version(), Some("1.35"));
    let vpc = described.resources_vpc_config().expect("vpc config");
    assert!(vpc.endpoint_private_access());
    assert!(!vpc.endpoint_public_access());
    assert_eq!(vpc.subnet_ids(), ["subnet-a", "subnet-b", "subnet-c"]);
    let enabled: Vec<&str> = described
        .logging()
        .expect("logging")
        .cluster_logging()
        .iter()
        .filter(|s| s.enabled() == Some(true))
        .flat_map(|s| s.types().iter().map(|t| t.as_str()))
        .collect();
    assert_eq!(
        enabled,
        [
            "api",
            "audit",
            "authenticator",
            "controllerManager",
            "scheduler"
        ]
    );
    let key = described.encryption_config()[0]
        .provider()
        .and_then(|p| p.key_arn());
    assert_eq!(key, Some(SECRETS_KEY));
    assert_eq!(described.tags().unwrap()["tenantry:platform"], PLATFORM);
    let inventory = store.list_resources(PLATFORM).await.unwrap();
    let mut kinds: Vec<&str> = inventory.iter().map(|r| r.resource_type.as_str()).collect();
    kinds.sort();
    assert_eq!(kinds, ["eks:cluster", "logs:log-group"]);

    // The same spec again: no mutating AWS call.
    stack.reset_calls();
    let again = run_phase(&deps, Action::Ensure).await;
    let calls = stack.calls();
    println!("no-op ensure: {:?}", calls.by_service());
    assert!(again.ready);
    assert_eq!(again.changes, 0);
    assert_eq!(mutating_aws(&stack), Vec::<String>::new());
    assert!(run_phase(&deps, Action::Observe).await.drift.is_empty());

    // A spec change (one log type fewer): one update, then ready.
    spec["logging"]["types"] = json!(["api", "audit", "authenticator", "controllerManager"]);
    let version = store.get_spec(PLATFORM).await.unwrap().unwrap().version;
    store
        .put_spec(PLATFORM, &spec, Some(version))
        .await
        .unwrap();
    let drift = run_phase(&deps, Action::Observe).await.drift;
    assert_eq!(drift.len(), 1, "{drift:?}");
    assert_eq!(drift[0].field, "logTypes");
    stack.reset_calls();
    let updated = run_phase(&deps, Action::Ensure).await;
    assert_eq!(mutating_aws(&stack), ["eks:UpdateClusterConfig"]);
    assert!(!updated.ready);
    assert!(run_phase(&deps, Action::Ensure).await.ready);
    let logging = eks
        .describe_cluster()
        .name(name)
        .send()
        .await
        .unwrap()
        .cluster
        .unwrap();
    let enabled: usize = logging
        .logging()
        .unwrap()
        .cluster_logging()
        .iter()
        .filter(|s| s.enabled() == Some(true))
        .map(|s| s.types().len())
        .sum();
    assert_eq!(enabled, 4);

    // Delete: deletion protection comes off, the cluster goes, then its log group; again is a
    // no-op.
    stack.reset_calls();
    assert!(!run_phase(&deps, Action::Delete).await.ready);
    assert_eq!(mutating_aws(&stack), ["eks:UpdateClusterConfig"]);
    stack.reset_calls();
    assert!(!run_phase(&deps, Action::Delete).await.ready);
    assert_eq!(mutating_aws(&stack), ["eks:DeleteCluster"]);
    stack.reset_calls();
    assert!(run_phase(&deps, Action::Delete).await.ready);
    assert_eq!(mutating_aws(&stack), ["logs:DeleteLogGroup"]);
    let gone = eks.describe_cluster().name(name).send().await.unwrap_err();
    assert!(gone
        .as_service_error()
        .is_some_and(|e| e.is_resource_not_found_exception()));
    assert!(store.list_resources(PLATFORM).await.unwrap().is_empty());
    stack.reset_calls();
    let again = run_phase(&deps, Action::Delete).await;
    assert!(again.ready);
    assert_eq!(again.changes, 0);
    assert_eq!(mutating_aws(&stack), Vec::<String>::new());
}

#[tokio::test]
async fn a_foreign_cluster_of_the_same_name_is_neither_adopted_nor_deleted() {
    let stack = tenantry_integration::stack().await;
    let deps = stack.deps().await;
    let store = Store::from_deps(&deps);
    store.create_table_if_missing().await.unwrap();
    platform_ready_for_cluster(&store, &example_spec()).await;
    let eks = aws_sdk_eks::Client::new(&deps.aws);
    eks.create_cluster()
        .name("payments-prod")
        .role_arn("arn:aws:iam::123456789012:role/someone-else")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-x")
                .build(),
        )
        .tags("owner", "someone-else")
        .send()
        .await
        .unwrap();
    for action in [Action::Ensure, Action::Delete] {
        let input = PhaseInput {
            platform_id: PLATFORM.to_owned(),
            request_id: "req-foreign".to_owned(),
            action,
            item: None,
            scope: None,
        };
        let err = cluster::handle(input, &deps).await.expect_err("refused");
        assert_eq!(err.error_type, tenantry::error::ErrorType::Terminal);
        assert!(
            err.error_message.contains("not tagged"),
            "{}",
            err.error_message
        );
    }
    assert!(eks
        .describe_cluster()
        .name("payments-prod")
        .send()
        .await
        .is_ok());
}

#[tokio::test]
async fn a_crash_of_intake_after_any_aws_call_converges_on_redelivery() {
    use tenantry_gateway::{CrashRule, Faults};
    let w = World::new().await;
    let request = |n: usize| {
        let mut spec = example_spec();
        let platform = format!("crash{n}");
        spec["id"] = json!(platform);
        envelope(
            RequestKind::PlatformProvision,
            &format!("req-crash-{n}"),
            &platform,
            Some(spec),
        )
    };
    // A clean run tells how many AWS calls an intake makes.
    w.stack.reset_calls();
    let clean = invoke(&w.stack, "intake", &request(0))
        .await
        .expect("clean intake");
    assert_eq!(clean["disposition"], "Accepted");
    let calls = w.stack.calls().invocations[0].aws_calls as usize;
    assert!(calls >= 8, "an intake makes {calls} AWS calls");

    let mut crashes = 0;
    for n in 1..=calls {
        let event = request(n);
        let id = format!("req-crash-{n}");
        w.stack.set_faults(Faults {
            crash_after_calls: Some(CrashRule::new("intake", n as u32)),
            ..Faults::default()
        });
        let crashed = invoke(&w.stack, "intake", &event).await;
        w.stack.set_faults(Faults::default());
        match crashed {
            Err((error_type, _)) => {
                assert_eq!(error_type, "Runtime.ExitError", "crash after call {n}");
                crashes += 1;
            }
            // The clean run made one call more than later ones: the account id (STS) is looked
            // up once per process.
            Ok(outcome) => assert_eq!(outcome["disposition"], "Accepted", "call {n}"),
        }
        let redelivered = invoke(&w.stack, "intake", &event)
            .await
            .expect("redelivery");
        let disposition = redelivered["disposition"].as_str().unwrap_or_default();
        assert!(
            ["Accepted", "Duplicate"].contains(&disposition),
            "crash after call {n}: redelivery answered {redelivered}"
        );
        let platform = format!("crash{n}");
        let record = w
            .store
            .get_request(&id)
            .await
            .unwrap()
            .expect("request record");
        assert_eq!(record.state, RequestState::Started, "crash after call {n}");
        let lease = w.store.get_lease(&platform).await.unwrap().expect("lease");
        assert_eq!(lease.holder, id);
        assert_eq!(
            w.status(&platform).await.state,
            LifecycleState::Provisioning
        );
        w.stack.reset_calls();
        let third = invoke(&w.stack, "intake", &event)
            .await
            .expect("third delivery");
        assert_eq!(third["disposition"], "Duplicate");
        assert_eq!(w.stack.calls().mutating_count(), 0);
    }
    assert!(crashes + 1 >= calls, "{crashes} crashes for {calls} calls");
    println!("intake: {calls} AWS calls, crashed after each of {crashes}, all converged");
    let mut names = w.executions(intake::PROVISION_WORKFLOW).await;
    names.sort();
    let mut expected: Vec<String> = (0..=calls).map(|n| format!("req-crash-{n}")).collect();
    expected.sort();
    assert_eq!(names, expected, "one execution per request, none twice");
    // Every request was announced at least once (a crash between publishing and recording the
    // start publishes again: at least once, never lost).
    let results = w.results(calls + 1).await;
    for n in 0..=calls {
        let id = format!("req-crash-{n}");
        let accepted = results
            .iter()
            .filter(|(t, d)| t == "PlatformProvisionAccepted" && d["requestId"] == id.as_str())
            .count();
        assert!(
            (1..=2).contains(&accepted),
            "{id} announced {accepted} times"
        );
    }
}

/// A `targetRoleArn` must name an account of the deployment's `TargetAccountIds` (on the local
/// stack, its second account): any other is refused at admission, naming the field and the
/// rule, and nothing is recorded or started.
#[tokio::test]
async fn a_target_account_this_tenantry_may_not_build_in_is_refused() {
    let w = World::new().await;
    let mut spec = example_spec();
    spec["targetRoleArn"] = json!("arn:aws:iam::333333333333:role/tenantry/tenantry-target");
    let request = envelope(
        RequestKind::PlatformProvision,
        "req-foreign-account",
        PLATFORM,
        Some(spec),
    );
    assert_eq!(w.deliver(&request).await.disposition, Disposition::Rejected);
    let (detail_type, detail) = &w.results(1).await[0];
    assert_eq!(detail_type, "PlatformProvisionRejected");
    assert_eq!(detail["error"]["code"], "Tenantry.InvalidRequest");
    let issue = &detail["issues"][0];
    assert_eq!(issue["path"], "$.targetRoleArn", "{detail}");
    assert_eq!(issue["rule"], "target-account", "{detail}");
    let message = issue["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("333333333333")
            && message.contains(tenantry::aws::LOCAL_TARGET_ACCOUNT_ID),
        "names the account and the allowed ones: {message}"
    );
    assert!(
        w.store.get_spec(PLATFORM).await.unwrap().is_none(),
        "no spec recorded"
    );
}

/// A platform keeps the CNI, region and account it was built with: an update to Calico, to
/// another region or to a target account is refused at admission, naming the field, and
/// changes nothing (the stored spec and the platform's state stay).
#[tokio::test]
async fn an_update_that_changes_the_cni_region_or_account_is_refused() {
    let w = World::new().await;
    assert_eq!(
        w.deliver(&provision("req-cni-1")).await.disposition,
        Disposition::Accepted
    );
    w.results(1).await;
    w.finalize(finalize_input(
        "req-cni-1",
        Operation::Provision,
        Outcome::Succeeded,
    ))
    .await;
    w.results(1).await;
    let stored = w.store.get_spec(PLATFORM).await.unwrap().expect("spec");

    let mut calico = example_spec();
    calico["cni"] = json!("calico");
    let kept: Vec<Value> = calico["addons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["name"] != "vpc-cni")
        .cloned()
        .collect();
    calico["addons"] = json!(kept);
    tenantry::validate::parse_platform(&calico.to_string()).expect("a valid spec on its own");
    let update = envelope(
        RequestKind::PlatformUpdate,
        "req-cni-2",
        PLATFORM,
        Some(calico),
    );
    assert_eq!(w.deliver(&update).await.disposition, Disposition::Rejected);
    let (detail_type, detail) = &w.results(1).await[0];
    assert_eq!(detail_type, "PlatformUpdateRejected");
    assert_eq!(detail["error"]["code"], "Tenantry.InvalidRequest");
    let message = detail["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("$.cni") && message.contains("vpc-cni"),
        "{detail}"
    );
    assert_eq!(w.status(PLATFORM).await.state, LifecycleState::Active);
    let after = w.store.get_spec(PLATFORM).await.unwrap().expect("spec");
    assert_eq!(after.value, stored.value, "the stored spec is unchanged");

    // So do its region and its account: every resource lives there.
    for (n, (field, path, value)) in [
        ("region", "$.region", json!("eu-west-1")),
        (
            "targetRoleArn",
            "$.targetRoleArn",
            json!("arn:aws:iam::210987654321:role/tenantry/tenantry-target"),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut moved = example_spec();
        moved[field] = value;
        let request_id = format!("req-fixed-{n}");
        let update = envelope(
            RequestKind::PlatformUpdate,
            &request_id,
            PLATFORM,
            Some(moved),
        );
        assert_eq!(w.deliver(&update).await.disposition, Disposition::Rejected);
        let (_, detail) = &w.results(1).await[0];
        let message = detail["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(&format!("{path}: ")) && message.contains("cannot change"),
            "{detail}"
        );
        let after = w.store.get_spec(PLATFORM).await.unwrap().expect("spec");
        assert_eq!(after.value, stored.value, "the stored spec is unchanged");
    }
}
