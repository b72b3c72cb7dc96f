//! `tenantry provision | decommission | submit`: put request events on the Tenantry event bus,
//! the same path every user takes, and optionally follow the run they start. `tenantry tenant
//! add | remove` send theirs through [`send`] too.

use super::read_input;
use crate::connect::{Connected, Connection};
use crate::errors::{conflict, failed_run, invalid_input, ActionExt, Exit, Marked};
use crate::follow;
use crate::progress::{Mode, Output, Progress};
use anyhow::{bail, Context};
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tenantry::events::{PlatformRequest, RequestKind, TenantRequest, SCHEMA_VERSION};
use tenantry::store::{RequestState, Store};

/// Source of the events the CLI puts on the bus.
const CLI_SOURCE: &str = "tenantry.cli";
/// How long `--wait` waits for intake to accept or reject a request.
const INTAKE_TIMEOUT: Duration = Duration::from_secs(120);

/// A generated idempotency key: `<operation>-<32 hex digits>` (a valid execution name).
pub fn new_request_id(operation: &str) -> String {
    format!("{operation}-{}", uuid::Uuid::new_v4().simple())
}

pub async fn provision(
    conn: &Connection,
    file: &Path,
    request_id: Option<String>,
    wait: bool,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let text = read_input(file)?;
    // Checked here first so that a bad request fails fast; intake checks again (it trusts no one).
    let spec = match tenantry::validate::parse_platform(&text) {
        Ok(spec) => spec,
        Err(errors) => {
            super::validate::print_issues(
                &file.display().to_string(),
                &errors.0,
                "; nothing was sent",
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let request = PlatformRequest {
        schema_version: SCHEMA_VERSION.to_owned(),
        request_id: request_id.unwrap_or_else(|| new_request_id("provision")),
        platform_id: spec.id.clone(),
        spec: Some(serde_json::from_str(&text)?),
        remediate: None,
        components: None,
    };
    send(
        conn,
        &Outgoing::platform(RequestKind::PlatformProvision, &request)?,
        wait,
        output,
    )
    .await
}

pub async fn decommission(
    conn: &Connection,
    platform_id: &str,
    request_id: Option<String>,
    wait: bool,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let request = PlatformRequest {
        schema_version: SCHEMA_VERSION.to_owned(),
        request_id: request_id.unwrap_or_else(|| new_request_id("decommission")),
        platform_id: platform_id.to_owned(),
        spec: None,
        remediate: None,
        components: None,
    };
    send(
        conn,
        &Outgoing::platform(RequestKind::PlatformDecommission, &request)?,
        wait,
        output,
    )
    .await
}

/// `submit EVENT.json`: an EventBridge entry (`Source`, `DetailType`, `Detail`) or event envelope
/// (`source`, `detail-type`, `detail`), put on the bus as is.
pub async fn submit(conn: &Connection, file: &Path) -> anyhow::Result<ExitCode> {
    let text = read_input(file)?;
    let event: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| invalid_input(format!("{} is not JSON", file.display())))?;
    let field = |a: &str, b: &str| event.get(a).or_else(|| event.get(b)).cloned();
    let detail_type = field("DetailType", "detail-type")
        .and_then(|v| v.as_str().map(str::to_owned))
        .with_context(|| invalid_input("the event has no `detail-type` (or `DetailType`)"))?;
    let source = field("Source", "source")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| CLI_SOURCE.to_owned());
    let detail = match field("Detail", "detail")
        .with_context(|| invalid_input("the event has no `detail` (or `Detail`)"))?
    {
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
        .action("events:PutEvents")
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

/// A request event about to go on the bus, with what it is about (for messages and `--wait`).
pub struct Outgoing {
    pub kind: RequestKind,
    pub request_id: String,
    pub platform_id: String,
    /// The tenant of a tenant request.
    pub tenant: Option<String>,
    /// The event's `detail` (JSON).
    pub detail: String,
}

impl Outgoing {
    /// A platform request (provision, update, decommission).
    pub fn platform(kind: RequestKind, request: &PlatformRequest) -> anyhow::Result<Self> {
        Ok(Outgoing {
            kind,
            request_id: request.request_id.clone(),
            platform_id: request.platform_id.clone(),
            tenant: None,
            detail: serde_json::to_string(request)?,
        })
    }

    /// A tenant request (onboarding, offboarding).
    pub fn tenant(kind: RequestKind, request: &TenantRequest) -> anyhow::Result<Self> {
        Ok(Outgoing {
            kind,
            request_id: request.request_id.clone(),
            platform_id: request.platform_id.clone(),
            tenant: request.name().map(str::to_owned),
            detail: serde_json::to_string(request)?,
        })
    }

    /// `platform "p"` or `tenant "t" of platform "p"`, for messages.
    fn subject(&self) -> String {
        match &self.tenant {
            Some(tenant) => format!("tenant {tenant:?} of platform {:?}", self.platform_id),
            None => format!("platform {:?}", self.platform_id),
        }
    }
}

/// Puts the request on the bus; with `wait`, follows intake's verdict and the run it starts to
/// the end: exit 7 when intake refuses it for a conflict, 1 when it rejects it otherwise, 8 when
/// the run fails.
pub async fn send(
    conn: &Connection,
    request: &Outgoing,
    wait: bool,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let connected = conn.connect().await?;
    put_event(
        &connected,
        CLI_SOURCE,
        &request.kind.detail_type(),
        &request.detail,
    )
    .await?;
    let progress = Progress::new(
        Mode::for_output(output),
        format!("{} of {}", request.kind.operation(), request.subject()),
    );
    progress.note(
        &format!(
            "{} request {} for {} sent ({})",
            request.kind.operation(),
            request.request_id,
            request.subject(),
            connected.target
        ),
        json!({
            "event": "sent",
            "operation": request.kind.operation(),
            "requestId": request.request_id,
            "platformId": request.platform_id,
            "tenant": request.tenant,
            "target": connected.target,
        }),
    );
    if !wait {
        if progress.mode() != Mode::Json {
            match request.tenant {
                Some(_) => println!(
                    "follow it with `tenantry tenant list {}`",
                    request.platform_id
                ),
                None => println!("follow it with `tenantry status {}`", request.platform_id),
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    follow_request(&connected, request, progress).await
}

/// Waits for intake's verdict on the request, then follows the execution it started.
async fn follow_request(
    connected: &Connected,
    request: &Outgoing,
    mut progress: Progress,
) -> anyhow::Result<ExitCode> {
    let request_id = request.request_id.as_str();
    let store = connected.store();
    let execution_arn = await_verdict(&store, request_id, &mut progress).await?;
    progress.note(
        &format!("accepted: execution {execution_arn}"),
        json!({"event": "accepted", "requestId": request_id, "executionArn": execution_arn}),
    );
    let sfn = aws_sdk_sfn::Client::new(&connected.aws);
    let outcome = follow::follow(&sfn, &execution_arn, &mut progress).await?;
    let what = format!("{} of {}", request.kind.operation(), request.subject());
    let details = format!("tenantry runs {} {request_id}", request.platform_id);
    let (phase, code, message) = recorded_failure(&store, request, &outcome, &progress).await?;
    if outcome.succeeded() {
        return Ok(ExitCode::SUCCESS);
    }
    let failed = outcome.timeline.failed();
    let phase = phase.or_else(|| failed.map(|(p, _)| p.entry.name.clone()));
    let code = code
        .or_else(|| failed.and_then(|(p, _)| p.entry.error.as_ref().map(|e| e.0.clone())))
        .or(outcome.error.clone())
        .unwrap_or_else(|| outcome.status.as_str().to_owned());
    let message = message
        .or(outcome.cause.clone())
        .unwrap_or_else(|| "no reason recorded".to_owned());
    Err(failed_run(&what, phase.as_deref(), &code, &message, &details).into())
}

/// Intake's verdict on the request: the ARN of the execution it started, or the refusal as an
/// error (a conflict when the platform was busy).
async fn await_verdict(
    store: &Store,
    request_id: &str,
    progress: &mut Progress,
) -> anyhow::Result<String> {
    let t0 = Instant::now();
    loop {
        if let Some(info) = store.get_request(request_id).await? {
            if info.state == RequestState::Rejected {
                let (code, message) = info
                    .error
                    .as_ref()
                    .map(|e| (e.code.clone(), e.message.clone()))
                    .unwrap_or_default();
                progress.note(
                    &format!("request {request_id} rejected"),
                    json!({"event": "rejected", "requestId": request_id, "code": code, "message": message}),
                );
                let text = format!("request {request_id} was refused ({code}): {message}");
                return Err(if code == tenantry::error::ErrorType::Conflict.as_str() {
                    conflict(text)
                } else {
                    Marked(Exit::Failure, text)
                }
                .into());
            }
            if let Some(arn) = info.execution_arn {
                return Ok(arn);
            }
        }
        if t0.elapsed() > INTAKE_TIMEOUT {
            bail!("intake did not answer request {request_id} within {INTAKE_TIMEOUT:?}: is the event bus wired to it?");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Where the run failed (phase, code, message), as finalize recorded it: on the tenant's record
/// for a tenant request (whose state is printed, failed or not), else on the platform's status.
async fn recorded_failure(
    store: &Store,
    request: &Outgoing,
    outcome: &follow::Outcome,
    progress: &Progress,
) -> anyhow::Result<(Option<String>, Option<String>, Option<String>)> {
    let none = (None, None, None);
    match &request.tenant {
        // A tenant request's result is the tenant's record: say where the tenant is now.
        Some(tenant) => {
            let Some(record) = store
                .get_tenant_record(&request.platform_id, tenant)
                .await?
            else {
                return Ok(none);
            };
            let r = record.value;
            if progress.mode() != Mode::Json {
                println!("tenant {tenant}: {}", r.state.as_str());
            }
            Ok(match r.failure.filter(|_| !outcome.succeeded()) {
                Some(f) => (Some(f.phase), f.code, Some(f.reason)),
                None => none,
            })
        }
        None if !outcome.succeeded() => {
            let error = store
                .get_status(&request.platform_id)
                .await?
                .and_then(|status| status.value.last_error);
            Ok(match error {
                Some(e) => (e.phase, Some(e.code), Some(e.message)),
                None => none,
            })
        }
        None => Ok(none),
    }
}
