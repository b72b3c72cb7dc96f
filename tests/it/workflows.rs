//! The state machine contract on the real interpreter: `statemachine/selftest.asl.json` executed by
//! moto's Step Functions engine, its Lambda tasks answered by Tenantry's handlers through the
//! gateway's Invoke API.

use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType};
use serde_json::json;
use std::time::Duration;
use tenantry_gateway::stack::LocalStack;
use tenantry_integration::Execution;

/// A stack with the state table and the selftest state machine deployed.
async fn deployed() -> (LocalStack, aws_sdk_sfn::Client, String) {
    deployed_on(tenantry_integration::stack().await).await
}

/// `stack` with the state table and the selftest state machine deployed.
async fn deployed_on(stack: LocalStack) -> (LocalStack, aws_sdk_sfn::Client, String) {
    let aws = stack.sdk_config().await;
    tenantry::store::Store::from_config(&aws, tenantry::deps::DEFAULT_TABLE)
        .create_table_if_missing()
        .await
        .expect("state table");
    let sfn = aws_sdk_sfn::Client::new(&aws);
    let arns = tenantry::workflows::deploy_all(
        &sfn,
        stack.region(),
        tenantry::aws::LOCAL_ACCOUNT_ID,
        tenantry::aws::LOCAL_STATES_ROLE_ARN,
    )
    .await
    .expect("deploy workflows");
    let arn = arns[tenantry::workflows::SELFTEST.name].clone();
    (stack, sfn, arn)
}

async fn execute(
    sfn: &aws_sdk_sfn::Client,
    arn: &str,
    name: &str,
    input: serde_json::Value,
) -> Execution {
    let execution_arn = sfn
        .start_execution()
        .state_machine_arn(arn)
        .name(name)
        .input(input.to_string())
        .send()
        .await
        .expect("start execution")
        .execution_arn()
        .to_owned();
    tenantry_integration::wait_execution(sfn, &execution_arn, Duration::from_secs(60)).await
}

#[tokio::test]
async fn poll_loop_runs_to_completion_through_the_gateway() {
    let (stack, sfn, arn) = deployed().await;
    stack.reset_calls();
    let run = execute(
        &sfn,
        &arn,
        "poll-3",
        json!({"readyAfter": 3, "pollSeconds": 1}),
    )
    .await;

    assert_eq!(
        run.status,
        ExecutionStatus::Succeeded,
        "error: {:?}",
        run.error
    );
    assert_eq!(run.entered("Probe"), 3, "one task per poll");
    assert_eq!(run.entered("IsReady"), 3);
    assert_eq!(
        run.entered("WaitBeforePoll"),
        2,
        "waits between polls, not after the last"
    );
    assert_eq!(run.entered("Done"), 1);
    assert_eq!(run.count(HistoryEventType::WaitStateExited), 2);

    // Each invocation reached DynamoDB through the gateway, attributed to the selftest function.
    let calls = stack.calls();
    let describe_table: Vec<_> = calls
        .calls
        .iter()
        .filter(|c| c.service == "dynamodb" && c.operation == "DescribeTable")
        .collect();
    assert_eq!(describe_table.len(), 3, "{calls:?}");
    assert!(describe_table
        .iter()
        .all(|c| c.invocation.as_deref() == Some("selftest") && !c.mutating));
}

#[tokio::test]
async fn handler_errors_reach_the_state_machine_as_stable_error_types() {
    let (_stack, sfn, arn) = deployed().await;
    assert_stable_error_types(&sfn, &arn).await;
}

/// The same contract when the selftest function is its real binary behind the local Runtime
/// API: lambda_runtime's error mapping gives Step Functions the same `errorType`s.
#[tokio::test]
async fn the_real_binaries_give_step_functions_the_same_error_types() {
    let (stack, sfn, arn) = deployed_on(tenantry_integration::stack_on_binaries().await).await;
    assert_stable_error_types(&sfn, &arn).await;
    let invocations = stack.calls().invocations;
    assert!(
        invocations.iter().all(|i| i.access_key.starts_with("TPRC")),
        "every invocation ran on a function process: {invocations:?}"
    );
    // One warm process served the executions one after another.
    assert!(invocations.len() >= 6, "{invocations:?}");
    assert_eq!(stack.function_processes("selftest"), 1);
    assert_eq!(stack.cold_starts().len(), 1, "{:?}", stack.cold_starts());
    stack.shutdown().await;
}

async fn assert_stable_error_types(sfn: &aws_sdk_sfn::Client, arn: &str) {
    // Caught: Conflict goes to the failure path, which records the error and fails the execution.
    let run = execute(
        sfn,
        arn,
        "conflict",
        json!({"failWith": "Tenantry.Conflict"}),
    )
    .await;
    assert_eq!(run.status, ExecutionStatus::Failed);
    assert_eq!(
        run.task_errors(),
        vec!["Tenantry.Conflict".to_owned()],
        "caught at once, never retried"
    );
    assert_eq!(run.entered("RecordFailure"), 1);
    assert_eq!(run.error.as_deref(), Some("Tenantry.SelftestFailed"));

    // Invalid input: the handler names the field; the state machine catches InvalidRequest.
    let run = execute(sfn, arn, "invalid", json!({"readyAfter": "soon"})).await;
    assert_eq!(
        run.task_errors(),
        vec!["Tenantry.InvalidRequest".to_owned()]
    );
    assert_eq!(run.entered("RecordFailure"), 1);

    // Retried: Retryable is retried 3 times (4 attempts), then fails the execution uncaught.
    let run = execute(
        sfn,
        arn,
        "retryable",
        json!({"failWith": "Tenantry.Retryable"}),
    )
    .await;
    assert_eq!(run.status, ExecutionStatus::Failed);
    assert_eq!(run.task_errors().len(), 4, "{:?}", run.task_errors());
    assert!(run.task_errors().iter().all(|e| e == "Tenantry.Retryable"));
    assert_eq!(run.entered("RecordFailure"), 0);
    assert_eq!(run.error.as_deref(), Some("Tenantry.Retryable"));

    // No Rust type name ever leaks into the contract.
    assert!(run
        .history
        .iter()
        .filter_map(|e| e.task_failed_event_details())
        .all(|d| !d.error().unwrap_or_default().contains("::")));
}

#[tokio::test]
async fn a_repeated_execution_name_starts_nothing_new() {
    let (_stack, sfn, arn) = deployed().await;
    let first = execute(&sfn, &arn, "req-123", json!({"readyAfter": 1})).await;
    assert_eq!(first.status, ExecutionStatus::Succeeded);
    let again = sfn
        .start_execution()
        .state_machine_arn(&arn)
        .name("req-123")
        .input(json!({"readyAfter": 1}).to_string())
        .send()
        .await;
    // Step Functions refuses a second execution with the same name: the idempotency intake relies on.
    let err = again.expect_err("same name must not start a second execution");
    assert_eq!(
        tenantry::error::classify_sdk_error(&err),
        tenantry::error::ErrorType::Conflict,
        "{err:?}"
    );
}
