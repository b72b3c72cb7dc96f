//! `tenantry provision | decommission | submit`: put request events on the Tenantry event bus,
//! the same path every user takes, and optionally follow the run they start.

use super::read_input;
use crate::connect::{Connected, Connection};
use crate::follow;
use anyhow::{bail, Context};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tenantry::events::{PlatformRequest, RequestKind, SCHEMA_VERSION};
use tenantry::store::RequestState;

/// Source of the events the CLI puts on the bus.
const CLI_SOURCE: &str = "tenantry.cli";
/// How long `--wait` waits for intake to accept or reject a request.
const INTAKE_TIMEOUT: Duration = Duration::from_secs(120);

fn new_request_id(operation: &str) -> String {
    format!("{operation}-{}", uuid::Uuid::new_v4().simple())
}

pub async fn provision(
    conn: &Connection,
    file: &Path,
    request_id: Option<String>,
    wait: bool,
) -> anyhow::Result<ExitCode> {
    let text = read_input(file)?;
    // Checked here first so that a bad request fails fast; intake checks again (it trusts no one).
    let spec = match tenantry::validate::parse_platform(&text) {
        Ok(spec) => spec,
        Err(errors) => {
            eprintln!(
                "{}: {} problem(s); nothing was sent",
                file.display(),
                errors.0.len()
            );
            for issue in &errors.0 {
                eprintln!("  {}  [{}]  {}", issue.path, issue.rule, issue.message);
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let request = PlatformRequest {
        schema_version: SCHEMA_VERSION.to_owned(),
        request_id: request_id.unwrap_or_else(|| new_request_id("provision")),
        platform_id: spec.id.clone(),
        spec: Some(serde_json::from_str(&text)?),
    };
    send(conn, RequestKind::PlatformProvision, &request, wait).await
}

pub async fn decommission(
    conn: &Connection,
    platform_id: &str,
    request_id: Option<String>,
    wait: bool,
) -> anyhow::Result<ExitCode> {
    let request = PlatformRequest {
        schema_version: SCHEMA_VERSION.to_owned(),
        request_id: request_id.unwrap_or_else(|| new_request_id("decommission")),
        platform_id: platform_id.to_owned(),
        spec: None,
    };
    send(conn, RequestKind::PlatformDecommission, &request, wait).await
}

/// `submit EVENT.json`: an EventBridge entry (`Source`, `DetailType`, `Detail`) or event envelope
/// (`source`, `detail-type`, `detail`), put on the bus as is.
pub async fn submit(conn: &Connection, file: &Path) -> anyhow::Result<ExitCode> {
    let text = read_input(file)?;
    let event: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    let field = |a: &str, b: &str| event.get(a).or_else(|| event.get(b)).cloned();
    let detail_type = field("DetailType", "detail-type")
        .and_then(|v| v.as_str().map(str::to_owned))
        .context("the event has no `detail-type` (or `DetailType`)")?;
    let source = field("Source", "source")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| CLI_SOURCE.to_owned());
    let detail =
        match field("Detail", "detail").context("the event has no `detail` (or `Detail`)")? {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
    let connected = conn.connect().await?;
    put_event(&connected, &source, &detail_type, &detail).await?;
    println!(
        "put {detail_type} on the {} bus ({})",
        tenantry::events::event_bus(),
        connected.target
    );
    Ok(ExitCode::SUCCESS)
}

async fn put_event(
    connected: &Connected,
    source: &str,
    detail_type: &str,
    detail: &str,
) -> anyhow::Result<()> {
    let events = aws_sdk_eventbridge::Client::new(&connected.aws);
    let out = events
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .event_bus_name(tenantry::events::event_bus())
                .source(source)
                .detail_type(detail_type)
                .detail(detail)
                .build(),
        )
        .send()
        .await
        .with_context(|| format!("putting the event on {}", connected.target))?;
    if out.failed_entry_count() > 0 {
        let reason = out
            .entries()
            .iter()
            .filter_map(|e| e.error_message())
            .collect::<Vec<_>>()
            .join("; ");
        bail!("EventBridge refused the event: {reason}");
    }
    Ok(())
}

async fn send(
    conn: &Connection,
    kind: RequestKind,
    request: &PlatformRequest,
    wait: bool,
) -> anyhow::Result<ExitCode> {
    let connected = conn.connect().await?;
    put_event(
        &connected,
        CLI_SOURCE,
        &kind.detail_type(),
        &serde_json::to_string(request)?,
    )
    .await?;
    println!(
        "{} request {} for platform {:?} sent ({})",
        kind.operation(),
        request.request_id,
        request.platform_id,
        connected.target
    );
    if !wait {
        println!("follow it with `tenantry status {}`", request.platform_id);
        return Ok(ExitCode::SUCCESS);
    }
    follow_request(&connected, &request.request_id, &request.platform_id).await
}

/// Waits for intake's verdict on the request, then follows the execution it started.
async fn follow_request(
    connected: &Connected,
    request_id: &str,
    platform_id: &str,
) -> anyhow::Result<ExitCode> {
    let store = connected.store();
    let t0 = Instant::now();
    let info = loop {
        if let Some(info) = store.get_request(request_id).await? {
            match info.state {
                RequestState::Rejected => {
                    let reason = info
                        .error
                        .as_ref()
                        .map(|e| format!("{}: {}", e.code, e.message));
                    eprintln!(
                        "request {request_id} rejected: {}",
                        reason.unwrap_or_default()
                    );
                    return Ok(ExitCode::FAILURE);
                }
                _ if info.execution_arn.is_some() => break info,
                _ => {}
            }
        }
        if t0.elapsed() > INTAKE_TIMEOUT {
            bail!("intake did not answer request {request_id} within {INTAKE_TIMEOUT:?}: is the event bus wired to it?");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let execution_arn = info
        .execution_arn
        .context("accepted request without an execution")?;
    println!("accepted: execution {execution_arn}");
    let sfn = aws_sdk_sfn::Client::new(&connected.aws);
    let outcome = follow::follow(&sfn, &execution_arn).await?;
    if outcome.exit_code() != ExitCode::SUCCESS {
        if let Some(status) = store.get_status(platform_id).await? {
            if let Some(e) = status.value.last_error {
                eprintln!(
                    "failed in phase {}: {}: {}",
                    e.phase.as_deref().unwrap_or("?"),
                    e.code,
                    e.message
                );
            }
        }
    }
    Ok(outcome.exit_code())
}
