//! Follows a Step Functions execution to its end: reads its history as it grows, folds it into
//! phases ([`Timeline`]) and shows them ([`Progress`]).

use crate::errors::ActionExt;
use crate::progress::Progress;
use crate::run_states;
use crate::timeline::{Event, Timeline, What};
use anyhow::Context;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent, HistoryEventType};
use chrono::{DateTime, Utc};
use std::process::ExitCode;
use std::time::Duration;

/// How an execution ended.
pub struct Outcome {
    pub status: ExecutionStatus,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub timeline: Timeline,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.status == ExecutionStatus::Succeeded
    }

    pub fn exit_code(&self) -> ExitCode {
        if self.succeeded() {
            ExitCode::SUCCESS
        } else {
            crate::errors::Exit::FailedRun.into()
        }
    }
}

/// Starts an execution named `name` (a repeated name joins the existing execution instead of
/// starting a second one) and follows it.
pub async fn start_and_follow(
    sfn: &aws_sdk_sfn::Client,
    state_machine_arn: &str,
    name: &str,
    input: &serde_json::Value,
    progress: &mut Progress,
) -> anyhow::Result<Outcome> {
    let started = sfn
        .start_execution()
        .state_machine_arn(state_machine_arn)
        .name(name)
        .input(input.to_string())
        .send()
        .await
        .action("states:StartExecution")
        .with_context(|| format!("starting execution {name} of {state_machine_arn}"))?;
    follow(sfn, started.execution_arn(), progress).await
}

/// The whole history of an execution, oldest first.
pub async fn history(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> anyhow::Result<Vec<HistoryEvent>> {
    sfn.get_execution_history()
        .execution_arn(execution_arn)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .action("states:GetExecutionHistory")
        .context("reading the execution history")
}

/// The timeline of a finished (or running) execution.
pub async fn timeline(sfn: &aws_sdk_sfn::Client, execution_arn: &str) -> anyhow::Result<Timeline> {
    let workflow = run_states::workflow_of_execution(execution_arn).unwrap_or_default();
    let events = history(sfn, execution_arn).await?;
    Ok(Timeline::of(workflow, events.iter().map(event)))
}

/// Polls the execution's history until it ends, showing its phases as they go.
pub async fn follow(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
    progress: &mut Progress,
) -> anyhow::Result<Outcome> {
    let workflow = run_states::workflow_of_execution(execution_arn).unwrap_or_default();
    let mut timeline = Timeline::new(workflow);
    let mut seen = 0usize;
    loop {
        // Described before the history is read: once it has ended, that history is complete.
        let execution = sfn
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .action("states:DescribeExecution")
            .context("describing the execution")?;
        let events = history(sfn, execution_arn).await?;
        let mut transitions = Vec::new();
        for e in events.iter().skip(seen) {
            transitions.extend(timeline.apply(event(e)));
        }
        seen = events.len();
        let status = execution.status().clone();
        if status != ExecutionStatus::Running && timeline.ended.is_none() {
            let at = execution.stop_date().map_or_else(Utc::now, time);
            transitions.extend(timeline.apply(Event {
                id: i64::MAX,
                prev: 0,
                at,
                what: What::ExecutionEnded {
                    succeeded: status == ExecutionStatus::Succeeded,
                },
            }));
        }
        progress.update(&timeline, &transitions);
        if status != ExecutionStatus::Running {
            progress.finish(&timeline, status.as_str());
            return Ok(Outcome {
                status,
                error: execution.error().map(str::to_owned),
                cause: execution.cause().map(str::to_owned),
                timeline,
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn time(t: &aws_smithy_types::DateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos()).unwrap_or_default()
}

/// The `changes` a phase function reported, from a Lambda task's output
/// (`{"StatusCode": 200, "Payload": {"changes": 3, ...}}`).
fn changes(output: Option<&str>) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(output?).ok()?;
    v["Payload"]["changes"].as_u64().or(v["changes"].as_u64())
}

/// What the timeline reads of a history event.
pub fn event(e: &HistoryEvent) -> Event {
    use HistoryEventType as T;
    let failed = |error: Option<&str>, cause: Option<&str>| What::TaskFailed {
        error: error.unwrap_or("unknown error").to_owned(),
        cause: cause.unwrap_or_default().to_owned(),
    };
    let what = match e.r#type() {
        T::ExecutionStarted => What::ExecutionStarted,
        T::ExecutionSucceeded => What::ExecutionEnded { succeeded: true },
        T::ExecutionFailed | T::ExecutionAborted | T::ExecutionTimedOut => {
            What::ExecutionEnded { succeeded: false }
        }
        T::TaskSucceeded => What::TaskSucceeded {
            changes: changes(e.task_succeeded_event_details().and_then(|d| d.output())),
        },
        T::LambdaFunctionSucceeded => What::TaskSucceeded {
            changes: changes(
                e.lambda_function_succeeded_event_details()
                    .and_then(|d| d.output()),
            ),
        },
        T::TaskFailed => {
            let d = e.task_failed_event_details();
            failed(d.and_then(|d| d.error()), d.and_then(|d| d.cause()))
        }
        T::TaskTimedOut => {
            let d = e.task_timed_out_event_details();
            failed(
                d.and_then(|d| d.error()).or(Some("States.Timeout")),
                d.and_then(|d| d.cause()),
            )
        }
        T::LambdaFunctionFailed => {
            let d = e.lambda_function_failed_event_details();
            failed(d.and_then(|d| d.error()), d.and_then(|d| d.cause()))
        }
        _ => match (
            e.state_entered_event_details(),
            e.state_exited_event_details(),
        ) {
            (Some(d), _) => What::Entered {
                state: d.name().to_owned(),
                item: d
                    .input()
                    .and_then(|i| serde_json::from_str::<serde_json::Value>(i).ok())
                    .and_then(|v| v["item"].as_str().map(str::to_owned)),
                wait: e.r#type() == &T::WaitStateEntered,
            },
            (_, Some(d)) => What::Exited {
                state: d.name().to_owned(),
            },
            _ => What::Other,
        },
    };
    Event {
        id: e.id(),
        prev: e.previous_event_id(),
        at: time(e.timestamp()),
        what,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_read_from_the_lambda_payload() {
        let out = r#"{"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": {"action": "ensure", "changes": 11}}"#;
        assert_eq!(changes(Some(out)), Some(11));
        assert_eq!(changes(Some("{}")), None);
        assert_eq!(changes(None), None);
    }
}
