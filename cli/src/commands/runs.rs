//! `tenantry runs PLATFORM [REQUEST_ID]`: a platform's run history (the run records finalize
//! writes), and one run's phases with their durations (its Step Functions execution history).

use super::status::table;
use crate::connect::{Connected, Connection};
use crate::errors::not_found;
use crate::follow;
use crate::progress;
use crate::timeline::{self, State};
use chrono::Utc;
use serde_json::json;
use std::process::ExitCode;
use tenantry::store::RunRecord;

/// How many run records `runs PLATFORM REQUEST_ID` looks through for the request.
const SEARCH_LIMIT: usize = 500;

pub async fn run(
    conn: &Connection,
    platform: &str,
    request_id: Option<&str>,
    limit: usize,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let connected = conn.connect().await?;
    match request_id {
        None => list(&connected, platform, limit, json_out).await?,
        Some(request_id) => show(&connected, platform, request_id, json_out).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of the run list: the run, the phase it failed in and its changes (from its
/// execution history, when Step Functions still has it).
struct Listed {
    run: RunRecord,
    failed_phase: Option<String>,
    changes: Option<u64>,
}

/// `tenantry runs PLATFORM`: the platform's last `limit` runs, newest first.
async fn list(
    connected: &Connected,
    platform: &str,
    limit: usize,
    json_out: bool,
) -> anyhow::Result<()> {
    let store = connected.store();
    let runs = store.list_runs(platform, limit).await?;
    if runs.is_empty() && store.get_status(platform).await?.is_none() {
        return Err(not_found(format!(
            "platform {platform:?} is not recorded in table {} ({}); `tenantry status` \
             lists the platforms",
            connected.table, connected.target
        ))
        .into());
    }
    // Each run's changes and failing phase are in its execution history (kept 90 days by
    // Step Functions: an older run shows none).
    let sfn = aws_sdk_sfn::Client::new(&connected.aws);
    let mut listed = Vec::new();
    for run in runs {
        let t = match &run.execution_arn {
            Some(arn) => follow::timeline(&sfn, arn).await.ok(),
            None => None,
        };
        let failed_phase = failed_phase(&sfn, &run, t.as_ref()).await.ok().flatten();
        let changes = t.as_ref().map(|t| t.changes());
        listed.push(Listed {
            run,
            failed_phase,
            changes,
        });
    }
    match json_out {
        true => println!("{}", serde_json::to_string_pretty(&list_json(&listed))?),
        false => print_list(platform, &listed),
    }
    Ok(())
}

fn list_json(listed: &[Listed]) -> Vec<serde_json::Value> {
    listed
        .iter()
        .map(|l| {
            let r = &l.run;
            let mut o = serde_json::to_value(r).unwrap_or_default();
            o["failedPhase"] = json!(l.failed_phase);
            o["changes"] = json!(l.changes);
            o["seconds"] = json!(r
                .finished_at
                .map(|end| timeline::seconds(r.started_at, end)));
            o
        })
        .collect()
}

fn print_list(platform: &str, listed: &[Listed]) {
    let mut t = table(vec![
        "kind",
        "request",
        "started",
        "duration",
        "result",
        "failed phase",
        "changes",
    ]);
    for Listed {
        run: r,
        failed_phase,
        changes,
    } in listed
    {
        t.add_row(vec![
            r.kind.clone(),
            r.request_id.clone().unwrap_or_default(),
            r.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            duration(r),
            result(r),
            failed_phase.clone().unwrap_or_default(),
            changes.map(|n| n.to_string()).unwrap_or_default(),
        ]);
    }
    println!("runs of platform {platform} (newest first)\n{t}");
    if let Some(r) = listed.iter().find_map(|l| l.run.request_id.as_deref()) {
        println!("a run's phases: tenantry runs {platform} {r}");
    }
}

/// `tenantry runs PLATFORM REQUEST_ID`: one run, and its phases from its execution history.
async fn show(
    connected: &Connected,
    platform: &str,
    request_id: &str,
    json_out: bool,
) -> anyhow::Result<()> {
    let runs = connected.store().list_runs(platform, SEARCH_LIMIT).await?;
    let Some(run) = runs
        .into_iter()
        .find(|r| r.request_id.as_deref() == Some(request_id))
    else {
        return Err(not_found(format!(
            "no run of request {request_id:?} is recorded for platform {platform:?}; \
             `tenantry runs {platform}` lists its runs"
        ))
        .into());
    };
    let sfn = aws_sdk_sfn::Client::new(&connected.aws);
    let timeline = match &run.execution_arn {
        Some(arn) => Some(follow::timeline(&sfn, arn).await?),
        None => None,
    };
    let failed = failed_phase(&sfn, &run, timeline.as_ref()).await?;
    if json_out {
        let out = json!({
            "run": run,
            "failedPhase": failed,
            "phases": timeline.as_ref().map(progress::phases_json),
            "changes": timeline.as_ref().map(|t| t.changes()),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{} {request_id} of platform {platform}: {}, started {}, took {}",
        run.kind,
        result(&run),
        run.started_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        duration(&run),
    );
    if let Some(e) = &run.error {
        println!(
            "failed in phase {}: {}: {}",
            failed.as_deref().unwrap_or("?"),
            e.code,
            e.message
        );
    }
    match timeline {
        Some(t) => print_phases(&t),
        None => println!("no execution is recorded for this run"),
    }
    Ok(())
}

/// The run's phases: result, start, duration, changes, polls and items of each.
fn print_phases(t: &timeline::Timeline) {
    let now = t.ended.map_or_else(Utc::now, |(at, _)| at);
    let mut phases = table(vec![
        "phase", "result", "start", "duration", "changes", "polls", "items",
    ]);
    for p in &t.phases {
        let e = &p.entry;
        phases.add_row(vec![
            e.name.clone(),
            match (e.state, &e.error) {
                (State::Failed, Some((code, _))) => format!("failed: {code}"),
                (state, _) => state_name(state).to_owned(),
            },
            format!(
                "+{:.1}s",
                t.started.map_or(0.0, |s| timeline::seconds(s, e.started))
            ),
            human(e.seconds(now)),
            e.changes.to_string(),
            e.polls.to_string(),
            p.items
                .iter()
                .map(|i| format!("{} {}", i.name, human(i.seconds(now))))
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    println!(
        "\nphases ({} states entered, {} changes in all)\n{phases}",
        t.states_entered,
        t.changes()
    );
}

/// The phase a failed run failed in: as finalize recorded it, else as its execution history
/// shows it (a function that crashed recorded nothing).
async fn failed_phase(
    sfn: &aws_sdk_sfn::Client,
    run: &RunRecord,
    timeline: Option<&timeline::Timeline>,
) -> anyhow::Result<Option<String>> {
    let Some(error) = &run.error else {
        return Ok(None);
    };
    if error.phase.is_some() {
        return Ok(error.phase.clone());
    }
    let read;
    let timeline = match (timeline, &run.execution_arn) {
        (Some(t), _) => t,
        (None, Some(arn)) => {
            read = follow::timeline(sfn, arn).await?;
            &read
        }
        (None, None) => return Ok(None),
    };
    Ok(timeline.failed().map(|(p, _)| p.entry.name.clone()))
}

fn state_name(state: State) -> &'static str {
    match state {
        State::Running => "running",
        State::Waiting => "waiting",
        State::Succeeded => "succeeded",
        State::Failed => "failed",
    }
}

fn result(r: &RunRecord) -> String {
    match &r.error {
        Some(e) => format!("{} ({})", r.status.as_str(), e.code),
        None => r.status.as_str().to_owned(),
    }
}

/// From the request's arrival to the run's end.
fn duration(r: &RunRecord) -> String {
    match r.finished_at {
        Some(end) => human(timeline::seconds(r.started_at, end)),
        None => "running".to_owned(),
    }
}

/// `4.2s`, `3m 07s`.
pub fn human(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else {
        let s = seconds.round() as u64;
        format!("{}m {:02}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(4.24), "4.2s");
        assert_eq!(human(187.0), "3m 07s");
    }
}
