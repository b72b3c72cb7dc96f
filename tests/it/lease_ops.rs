//! `tenantry lease show | release` (`tenantry::operator::lease`) on the local stack: a lease left
//! behind by an execution that was stopped, or whose finalize failed, is shown with its request
//! and execution, released by running finalize for it, and the platform then takes a new request;
//! a release is refused, with nothing changed, for a running holder and for one the lease does
//! not name.

use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::{json, Value};
use std::time::Duration;
use tenantry::deps::Deps;
use tenantry::events::{RequestKind, ResultStatus};
use tenantry::functions::intake::{self, Disposition, IntakeInput, IntakeOutcome, IntakeOutput};
use tenantry::operator::lease::{self, Execution, LeaseError, Released, Role};
use tenantry::store::{LifecycleState, RequestState, Store};
use tenantry_gateway::{CrashRule, Faults};

/// A provision workflow that runs until it is stopped (stands in for the real one).
const HOLDS: &str = r#"{"StartAt": "Hold", "States": {
  "Hold": {"Type": "Wait", "Seconds": 3000, "Next": "Done"},
  "Done": {"Type": "Pass", "End": true}}}"#;

fn provision(request_id: &str, platform: &str) -> Value {
    let spec: Value =
        serde_json::from_str(include_str!("../../examples/platform.json")).expect("JSON");
    json!({
        "version": "0", "id": tenantry_integration::unique("event"),
        "detail-type": RequestKind::PlatformProvision.detail_type(),
        "source": "acme.platform-team", "account": "123456789012", "time": "2026-12-04T10:00:00Z",
        "region": "us-east-1", "resources": [],
        "detail": {"schemaVersion": "1", "requestId": request_id, "platformId": platform, "spec": spec}
    })
}

async fn deliver(deps: &Deps, envelope: &Value) -> IntakeOutcome {
    match intake::handle(IntakeInput::Event(envelope.clone()), deps).await {
        Ok(IntakeOutput::Outcome(outcome)) => outcome,
        other => panic!("intake answered {other:?}"),
    }
}

async fn wait_until_stopped(sfn: &aws_sdk_sfn::Client, arn: &str) {
    for _ in 0..100 {
        let d = sfn
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .expect("describe execution");
        if d.status() != &ExecutionStatus::Running {
            assert_eq!(d.status(), &ExecutionStatus::Aborted);
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{arn} still running after it was stopped");
}

#[tokio::test]
async fn a_lease_left_by_a_stopped_execution_is_shown_released_once_and_freed() {
    let stack = tenantry_integration::stack().await;
    let deps = stack.deps().await;
    let store = Store::from_deps(&deps);
    store.create_table_if_missing().await.expect("state table");
    let sfn = aws_sdk_sfn::Client::new(&deps.aws);
    let sqs = aws_sdk_sqs::Client::new(&deps.aws);
    // The Tenantry bus (finalize publishes the result on it).
    tenantry_integration::results_queue(&deps.aws, &sqs, "results").await;
    let workflow = tenantry::workflows::Workflow {
        name: intake::PROVISION_WORKFLOW,
        definition: HOLDS,
    };
    tenantry::workflows::deploy(&sfn, &workflow, HOLDS, tenantry::aws::LOCAL_STATES_ROLE_ARN)
        .await
        .expect("stand-in state machine");
    let platform = "payments";
    let accepted = deliver(&deps, &provision("req-stuck", platform)).await;
    assert_eq!(accepted.disposition, Disposition::Accepted, "{accepted:?}");
    let arn = accepted.execution_arn.expect("an execution");

    // Running: shown as such, and a release is refused with nothing changed.
    let report = lease::show(&deps, platform).await.expect("show");
    assert_eq!(report.holders.len(), 1, "{report:?}");
    let h = &report.holders[0];
    assert_eq!(
        (h.role, h.lease.holder.as_str(), h.lease.operation.as_str()),
        (Role::Exclusive, "req-stuck", "provision")
    );
    assert!(!h.expired && !report.is_free());
    assert_eq!(h.request_state, Some(RequestState::Started));
    assert!(
        matches!(&h.execution, Execution::Found { arn: a, status, .. } if a == &arn && status == "RUNNING"),
        "{:?}",
        h.execution
    );
    let before = store.get_lease_holders(platform).await.unwrap();
    match lease::release(&deps, platform, "req-stuck", "INC-1 test").await {
        Err(e @ LeaseError::Running { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("RUNNING") && text.contains("nothing changed"),
                "{text}"
            );
        }
        other => panic!("release of a running holder: {other:?}"),
    }
    match lease::release(&deps, platform, "req-other", "INC-1 test").await {
        Err(e @ LeaseError::NotAHolder { .. }) => {
            assert!(e.to_string().contains("req-stuck (exclusive)"), "{e}");
        }
        other => panic!("release of a holder the lease does not name: {other:?}"),
    }
    assert_eq!(store.get_lease_holders(platform).await.unwrap(), before);
    let request = store.get_request("req-stuck").await.unwrap().unwrap();
    assert_eq!(request.state, RequestState::Started, "nothing changed");
    // And the platform still refuses a new request.
    let refused = deliver(&deps, &provision("req-refused", platform)).await;
    assert_eq!(refused.disposition, Disposition::Rejected, "{refused:?}");

    // Stopped: its lease is left behind.
    sfn.stop_execution()
        .execution_arn(&arn)
        .cause("test: an operator stopped it")
        .send()
        .await
        .expect("stop execution");
    wait_until_stopped(&sfn, &arn).await;
    let report = lease::show(&deps, platform).await.expect("show");
    assert!(
        matches!(&report.holders[0].execution, Execution::Found { status, .. } if status == "ABORTED"),
        "{report:?}"
    );
    assert_eq!(store.get_lease_holders(platform).await.unwrap(), before);

    // Released: finalize ran for it.
    let released = lease::release(&deps, platform, "req-stuck", "INC-1 stopped by hand")
        .await
        .expect("release");
    let Released::Finalized { result, .. } = released else {
        panic!("{released:?}");
    };
    assert_eq!(result.status, ResultStatus::Failed);
    let holders = store.get_lease_holders(platform).await.unwrap();
    assert!(holders.exclusive.is_none(), "{holders:?}");
    assert_eq!(
        holders.fence, before.fence,
        "the item stays, its fence with it"
    );
    let request = store.get_request("req-stuck").await.unwrap().unwrap();
    assert_eq!(request.state, RequestState::Failed);
    let status = store.get_status(platform).await.unwrap().unwrap().value;
    assert_eq!(status.state, LifecycleState::Failed);
    let last = status.last_error.expect("last error");
    assert!(
        last.message.contains("ABORTED") && last.message.contains("INC-1 stopped by hand"),
        "{last:?}"
    );
    assert!(
        lease::show(&deps, platform)
            .await
            .unwrap()
            .holders
            .is_empty(),
        "shown free"
    );

    // Idempotent: a second release says it is already free and changes nothing.
    match lease::release(&deps, platform, "req-stuck", "again").await {
        Ok(Released::AlreadyFree { request_state, .. }) => {
            assert_eq!(request_state, RequestState::Failed)
        }
        other => panic!("second release: {other:?}"),
    }
    assert_eq!(store.get_lease_holders(platform).await.unwrap(), holders);

    // The platform takes the next request.
    let next = deliver(&deps, &provision("req-next", platform)).await;
    assert_eq!(next.disposition, Disposition::Accepted, "{next:?}");
    let holders = store.get_lease_holders(platform).await.unwrap();
    assert_eq!(holders.exclusive.expect("taken").holder, "req-next");
    stack.shutdown().await;
}

/// Finalize failing after its retries ends the execution with `Tenantry.FinalizeFailed` (naming
/// the runbook), not a raw Lambda error; the lease it left is then released by hand.
#[tokio::test]
async fn an_execution_whose_finalize_fails_ends_finalize_failed_and_its_lease_is_released() {
    let stack = tenantry_integration::stack().await;
    let deps = stack.deps().await;
    let store = Store::from_deps(&deps);
    store.create_table_if_missing().await.expect("state table");
    let sfn = aws_sdk_sfn::Client::new(&deps.aws);
    let sqs = aws_sdk_sqs::Client::new(&deps.aws);
    tenantry_integration::results_queue(&deps.aws, &sqs, "results").await;
    let arns = tenantry::workflows::deploy_all(
        &sfn,
        stack.region(),
        tenantry::aws::LOCAL_ACCOUNT_ID,
        tenantry::aws::LOCAL_STATES_ROLE_ARN,
    )
    .await
    .expect("deploy workflows");
    // A provision of a platform without a spec: its first phases fail, RecordFailure runs
    // finalize, which crashes on every attempt.
    let platform = "no-spec";
    store
        .acquire_lease(platform, "req-fin", "provision", Duration::from_secs(3600))
        .await
        .expect("lease");
    stack.set_faults(Faults {
        crash_after_calls: Some(CrashRule {
            times: 100,
            ..CrashRule::new(tenantry::functions::finalize::NAME, 1)
        }),
        ..Faults::default()
    });
    let arn = sfn
        .start_execution()
        .state_machine_arn(&arns[intake::PROVISION_WORKFLOW])
        .name("req-fin")
        .input(
            json!({"platformId": platform, "requestId": "req-fin", "operation": "provision",
                   "pollSeconds": 1})
            .to_string(),
        )
        .send()
        .await
        .expect("start")
        .execution_arn()
        .to_owned();
    let run = tenantry_integration::wait_execution(&sfn, &arn, Duration::from_secs(180)).await;
    stack.set_faults(Faults::default());
    assert_eq!(run.status, ExecutionStatus::Failed, "{:?}", run.failures());
    assert_eq!(run.entered("RecordFailure"), 1, "{:?}", run.failures());
    assert_eq!(
        run.error.as_deref(),
        Some("Tenantry.FinalizeFailed"),
        "{:?}",
        run.failures()
    );
    let cause = run.cause.clone().unwrap_or_default();
    assert!(
        cause.contains("docs/runbooks/stuck-lease.md") && cause.contains("tenantry lease release"),
        "{cause}"
    );
    assert!(
        run.task_errors().iter().any(|e| e == "Runtime.ExitError"),
        "finalize crashed: {:?}",
        run.task_errors()
    );

    // The lease is still held; `lease show` says the execution FAILED; a release settles it.
    let report = lease::show(&deps, platform).await.expect("show");
    assert_eq!(report.holders.len(), 1, "{report:?}");
    assert!(
        matches!(&report.holders[0].execution, Execution::Found { status, .. } if status == "FAILED"),
        "{report:?}"
    );
    let released = lease::release(&deps, platform, "req-fin", "INC-2 finalize crashed")
        .await
        .expect("release");
    assert!(
        matches!(released, Released::Finalized { .. }),
        "{released:?}"
    );
    assert!(store.get_lease(platform).await.unwrap().is_none());
    stack.shutdown().await;
}
