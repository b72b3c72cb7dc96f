//! `tenantry drift --all` and `tenantry compliance --all`: start the fleet sweep (what the nightly
//! and weekly schedules start) and, with `--wait`, follow it and print one line per platform.

use super::requests::new_request_id;
use super::status::table;
use crate::connect::Connection;
use crate::progress::{Mode, Output, Progress};
use anyhow::Context;
use serde_json::{json, Value};
use std::process::ExitCode;
use tenantry::functions::sweep::SweepKind;

/// Starts the sweep of every active platform; with `wait`, follows it and prints its report
/// (`json`: the stored report as is).
pub async fn run(
    conn: &Connection,
    kind: SweepKind,
    remediate: Option<Value>,
    wait: bool,
    json: bool,
    sweep_id: Option<String>,
) -> anyhow::Result<ExitCode> {
    if !wait {
        start(conn, kind, remediate, json, sweep_id).await?;
        return Ok(ExitCode::SUCCESS);
    }
    Ok(run_and_wait(conn, kind, remediate, json, sweep_id)
        .await?
        .err()
        .unwrap_or(ExitCode::SUCCESS))
}

/// Starts the sweep, follows it, prints its report and returns it; `Err(code)` when the sweep's
/// execution itself did not succeed.
pub async fn run_and_wait(
    conn: &Connection,
    kind: SweepKind,
    remediate: Option<Value>,
    json: bool,
    sweep_id: Option<String>,
) -> anyhow::Result<Result<Value, ExitCode>> {
    let (connected, sfn, execution, sweep_id, mut progress) =
        start(conn, kind, remediate, json, sweep_id).await?;
    let outcome = crate::follow::follow(&sfn, &execution, &mut progress).await?;
    if !outcome.succeeded() {
        return Ok(Err(outcome.exit_code()));
    }
    let report = connected
        .store()
        .get_sweep_report(&sweep_id)
        .await?
        .with_context(|| format!("the sweep {sweep_id} recorded no report"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(kind, &report));
    }
    Ok(Ok(report))
}

/// What [`start`] leaves to follow the sweep with.
type Started = (
    crate::connect::Connected,
    aws_sdk_sfn::Client,
    String,
    String,
    Progress,
);

/// Starts the fleet sweep's execution, named `sweep_id` (default: generated).
async fn start(
    conn: &Connection,
    kind: SweepKind,
    remediate: Option<Value>,
    json: bool,
    sweep_id: Option<String>,
) -> anyhow::Result<Started> {
    let connected = conn.connect().await?;
    let sfn = aws_sdk_sfn::Client::new(&connected.aws);
    let name = format!(
        "{}{}",
        tenantry::workflows::NAME_PREFIX,
        tenantry::workflows::FLEET_SWEEP.name
    );
    let machines = sfn.list_state_machines().send().await?;
    let arn = machines
        .state_machines()
        .iter()
        .find(|m| m.name() == name)
        .map(|m| m.state_machine_arn().to_owned())
        .with_context(|| {
            crate::errors::not_found(format!(
                "no state machine {name} ({}): is Tenantry deployed there?",
                connected.target
            ))
        })?;
    let what = label(kind);
    let sweep_id = sweep_id.unwrap_or_else(|| new_request_id("sweep"));
    let input = json!({ "kind": kind, "remediate": remediate });
    let started = sfn
        .start_execution()
        .state_machine_arn(&arn)
        .name(&sweep_id)
        .input(input.to_string())
        .send()
        .await?;
    let output = if json { Output::Json } else { Output::Text };
    let progress = Progress::new(Mode::for_output(output), format!("{what} {sweep_id}"));
    progress.note(
        &format!("{what} {sweep_id} started ({})", connected.target),
        json!({"event": "started", "sweepId": sweep_id, "executionArn": started.execution_arn()}),
    );
    let execution = started.execution_arn().to_owned();
    Ok((connected, sfn, execution, sweep_id, progress))
}

fn label(kind: SweepKind) -> &'static str {
    match kind {
        SweepKind::Drift => "drift sweep",
        SweepKind::Compliance => "compliance sweep of every platform",
    }
}

/// The headline and one row per platform.
fn render(kind: SweepKind, report: &Value) -> String {
    let found = match kind {
        SweepKind::Drift => "drifted",
        SweepKind::Compliance => "with failed controls",
    };
    let headline = format!(
        "{} {}: {} platform(s), {} clean, {} {found}, {} failed",
        label(kind),
        text(&report["requestId"]),
        report["platforms"],
        report["clean"],
        report["flagged"],
        report["failed"]
    );
    let counts: [(&str, &str, &str); 2] = match kind {
        SweepKind::Drift => [
            ("differences", "summary", "differences"),
            ("open", "summary", "open"),
        ],
        SweepKind::Compliance => [
            ("passed", "compliance", "passed"),
            ("failed", "compliance", "failed"),
        ],
    };
    let mut t = table(vec![
        "platform",
        "request",
        "state",
        counts[0].0,
        counts[1].0,
        "error",
    ]);
    for r in report["results"].as_array().into_iter().flatten() {
        t.add_row(vec![
            text(&r["platformId"]),
            text(&r["requestId"]),
            text(&r["state"]),
            text(&r[counts[0].1][counts[0].2]),
            text(&r[counts[1].1][counts[1].2]),
            r["error"]["message"]
                .as_str()
                .or(r["error"]["Cause"].as_str())
                .or(r["error"]["errorMessage"].as_str())
                .unwrap_or("")
                .chars()
                .take(80)
                .collect(),
        ]);
    }
    format!("{headline}\n{t}\n")
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compliance_report_shows_each_platforms_counts() {
        let report = json!({
            "requestId": "weekly-1", "kind": "compliance", "platforms": 2, "clean": 1,
            "flagged": 1, "failed": 0,
            "results": [
                {"platformId": "payments", "requestId": "weekly-1-payments", "state": "Succeeded",
                 "compliance": {"passed": 60, "failed": 2}},
                {"platformId": "cards", "requestId": "weekly-1-cards", "state": "Rejected",
                 "error": {"message": "platform \"cards\" is Provisioning"}},
            ],
        });
        let out = render(SweepKind::Compliance, &report);
        assert!(
            out.starts_with("compliance sweep of every platform weekly-1: 2 platform(s), 1 clean, 1 with failed controls, 0 failed"),
            "{out}"
        );
        assert!(out.contains("payments") && out.contains("60"), "{out}");
        assert!(out.contains("is Provisioning"), "{out}");
        let drift = render(
            SweepKind::Drift,
            &json!({"requestId": "n", "platforms": 0, "clean": 0, "flagged": 0, "failed": 0, "results": []}),
        );
        assert!(
            drift.contains("0 drifted") && drift.contains("differences"),
            "{drift}"
        );
    }
}
