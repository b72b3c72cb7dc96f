//! Follows a Step Functions execution to its end with a live progress line: the state it is in
//! and the time elapsed, one line per state entered.

use crate::errors::ActionExt;
use anyhow::Context;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType};
use indicatif::{ProgressBar, ProgressStyle};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How an execution ended.
#[derive(Debug)]
pub struct Outcome {
    pub status: ExecutionStatus,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub output: Option<String>,
}

impl Outcome {
    pub fn exit_code(&self) -> ExitCode {
        if self.status == ExecutionStatus::Succeeded {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
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
    follow(sfn, started.execution_arn()).await
}

/// Polls the execution's history until it ends, printing each state entered.
pub async fn follow(sfn: &aws_sdk_sfn::Client, execution_arn: &str) -> anyhow::Result<Outcome> {
    let t0 = Instant::now();
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("static template"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    // Without a terminal the spinner is hidden: print the state lines plainly instead.
    let line = |text: String| {
        if bar.is_hidden() {
            println!("{text}");
        } else {
            bar.println(text);
        }
    };
    let mut seen = 0usize;
    let mut states_entered = 0usize;
    loop {
        let history = sfn
            .get_execution_history()
            .execution_arn(execution_arn)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .action("states:GetExecutionHistory")
            .context("reading the execution history")?;
        for event in history.iter().skip(seen) {
            if let Some(entered) = event.state_entered_event_details() {
                states_entered += 1;
                line(format!(
                    "  {:>6.1}s  {}",
                    t0.elapsed().as_secs_f64(),
                    entered.name()
                ));
                bar.set_message(entered.name().to_owned());
            }
            if event.r#type() == &HistoryEventType::TaskFailed {
                if let Some(d) = event.task_failed_event_details() {
                    line(format!(
                        "  {:>6.1}s    task failed: {} {}",
                        t0.elapsed().as_secs_f64(),
                        d.error().unwrap_or_default(),
                        d.cause().unwrap_or_default()
                    ));
                }
            }
        }
        seen = history.len();
        let execution = sfn
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .action("states:DescribeExecution")
            .context("describing the execution")?;
        if execution.status() != &ExecutionStatus::Running {
            bar.finish_and_clear();
            let outcome = Outcome {
                status: execution.status().clone(),
                error: execution.error().map(str::to_owned),
                cause: execution.cause().map(str::to_owned),
                output: execution.output().map(str::to_owned),
            };
            match &outcome.error {
                None => println!(
                    "{} after {:.1}s, {states_entered} states entered; output: {}",
                    outcome.status,
                    t0.elapsed().as_secs_f64(),
                    outcome.output.as_deref().unwrap_or("{}")
                ),
                Some(error) => println!(
                    "{} after {:.1}s: {error}: {}",
                    outcome.status,
                    t0.elapsed().as_secs_f64(),
                    outcome.cause.as_deref().unwrap_or("")
                ),
            }
            return Ok(outcome);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
