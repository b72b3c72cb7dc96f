//! `finalize`: the last state of every platform execution, on success and (through `Catch`) on
//! failure. It records the outcome (lifecycle state, last error with the failed phase, a run
//! history entry with the outputs and the inventory), marks the request finished, releases the
//! platform's lease and publishes `<Kind>Succeeded` or `<Kind>Failed`.
//!
//! A decommission only succeeds when the platform's inventory is empty; leftovers make it fail,
//! listed in the error.
//!
//! Tenant executions (`operation` `onboard` / `offboard`) end here too: the tenant record whose
//! `requestId` is the execution's request (the `tenant` named in the input is the same tenant)
//! becomes `Active` / `Offboarded` (the record stays, for history) or `Failed` with the phase and
//! reason; the platform's status is left alone; the request's share of the platform's lease is
//! released and `TenantOnboarding{Succeeded,Failed}` / `TenantOffboarding{...}` published, naming
//! the tenant. The state change is conditioned on the record still being this request's, in the
//! state the request left it in, so a late re-run never overwrites a newer request's work.
//!
//! A compliance sweep (`operation` `compliance`) is read-only: finalize records the run (its
//! detail carries the sweep's `summary`, handed over by the state machine), marks the request
//! finished and publishes `ComplianceSweep{Succeeded,Failed}`; it never writes the platform's
//! status (lifecycle state, drift bookkeeping) and releases no lease (a sweep takes none).
//!
//! Idempotent: once the request is marked finished, a re-run only releases the lease (a no-op if
//! it is gone) and publishes the result again; it never overwrites the status of a platform that
//! another request may own by then.

use super::Deps;
use crate::error::{ErrorType, FunctionError};
use crate::events::{self, EventError, RequestKind, ResultEvent, ResultStatus};
use crate::plan::Phase;
use crate::store::{
    LastError, LifecycleState, PhaseState, PhaseStatus, PlatformStatus, RequestInfo,
    RequestOutcome, RequestState, ResourceRecord, RunRecord, RunStatus, Store, StoreError,
    TenantFailure, TenantRecord, TenantTransition, Versioned,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub const NAME: &str = "finalize";

/// The phase named in a tenant failure that names none.
pub const TENANT_PHASE: &str = "tenant";

/// How many times a status write is retried after losing a version race.
const STATUS_ATTEMPTS: usize = 3;

/// The operation an execution ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Provision,
    Update,
    Decommission,
    /// A tenant onboarding.
    Onboard,
    /// A tenant offboarding.
    Offboard,
    /// A drift check: its report and the platform's state are the `drift` function's; finalize
    /// records the run, releases the lease and publishes the result.
    Drift,
    /// A compliance sweep: its report is the `compliance` function's; finalize records the run
    /// and publishes the result, and changes nothing of the platform (no lease to release).
    Compliance,
}

impl Operation {
    fn kind(self) -> RequestKind {
        match self {
            Operation::Provision => RequestKind::PlatformProvision,
            Operation::Update => RequestKind::PlatformUpdate,
            Operation::Decommission => RequestKind::PlatformDecommission,
            Operation::Onboard => RequestKind::TenantOnboarding,
            Operation::Offboard => RequestKind::TenantOffboarding,
            Operation::Drift => RequestKind::DriftCheck,
            Operation::Compliance => RequestKind::ComplianceSweep,
        }
    }

    /// Whether the execution served a tenant request.
    pub fn is_tenant(self) -> bool {
        matches!(self, Operation::Onboard | Operation::Offboard)
    }

    /// Whether the execution only read the platform: it holds no lease and its outcome leaves the
    /// platform's status alone.
    pub fn is_read_only(self) -> bool {
        matches!(self, Operation::Compliance)
    }
}

/// How the execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Succeeded,
    Failed,
}

/// The error a Step Functions `Catch` hands over (`ResultPath` of the caught error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatesError {
    /// The error name: a `Tenantry.*` errorType, `States.Timeout`, `Runtime.ExitError`, ...
    #[serde(rename = "Error")]
    pub error: String,
    /// For a Lambda error, the JSON `{"errorType", "errorMessage"}`; otherwise free text.
    #[serde(rename = "Cause", default)]
    pub cause: Option<String>,
}

/// Input of `finalize` (extra fields of the execution's state are ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalizeInput {
    pub platform_id: String,
    pub request_id: String,
    pub operation: Operation,
    pub outcome: Outcome,
    #[serde(default)]
    pub error: Option<StatesError>,
    /// The phase that failed, when the state machine knows it (set by each `Catch`); otherwise
    /// taken from the platform's phase statuses.
    #[serde(default)]
    pub phase: Option<String>,
    /// A compliance sweep's counts (the `compliance` function's `summary`), kept in the run's
    /// detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Value>,
}

/// Records the outcome, releases the lease, publishes the result event (also returned).
pub async fn handle(input: FinalizeInput, deps: &Deps) -> Result<ResultEvent, FunctionError> {
    let store = Store::from_deps(deps);
    let request = store.get_request(&input.request_id).await?;
    let kind = input.operation.kind();
    if input.operation.is_tenant() {
        let tenant = tenant_of(&store, &input).await?;
        let result = match request.as_ref().filter(|r| is_finished(r)) {
            Some(done) => replay_tenant(&input, done, tenant.as_ref()),
            None => record_tenant(&store, &input, request.as_ref(), tenant.as_ref()).await?,
        };
        store
            .release_shared_lease(&input.platform_id, &input.request_id)
            .await?;
        let client = aws_sdk_eventbridge::Client::new(&deps.aws);
        events::publish_result(&client, Some(kind), &result).await?;
        return Ok(result);
    }
    let result = match request.as_ref().filter(|r| is_finished(r)) {
        Some(done) => replay(&store, &input, done).await?,
        None => record(&store, &input, request.as_ref()).await?,
    };
    if !input.operation.is_read_only() {
        store
            .release_lease(&input.platform_id, &input.request_id)
            .await?;
    }
    let client = aws_sdk_eventbridge::Client::new(&deps.aws);
    events::publish_result(&client, Some(kind), &result).await?;
    Ok(result)
}

fn is_finished(request: &RequestInfo) -> bool {
    matches!(
        request.state,
        RequestState::Succeeded | RequestState::Failed
    )
}

/// First run: decides the outcome and records it everywhere.
async fn record(
    store: &Store,
    input: &FinalizeInput,
    request: Option<&RequestInfo>,
) -> Result<ResultEvent, FunctionError> {
    let platform = &input.platform_id;
    let mut error = match input.outcome {
        Outcome::Failed => Some(error_of(input)),
        Outcome::Succeeded => None,
    };
    let inventory = store.list_resources(platform).await?;
    if error.is_none() && input.operation == Operation::Decommission && !inventory.is_empty() {
        error = Some(leftovers(&inventory));
    }
    if let Some(e) = &mut error {
        if e.phase.is_none() {
            e.phase = match input.operation {
                // The sweep's one step failed, not one of the platform's phases.
                Operation::Compliance => Some(super::compliance::NAME.to_owned()),
                _ => failed_phase(store, platform, input.operation).await?,
            };
        }
    }
    let status = if input.operation.is_read_only() {
        read_status(store, platform).await?
    } else {
        write_status(store, input, error.as_ref()).await?
    };
    settle_tenants(store, input, error.as_ref()).await?;
    let execution_arn = request.and_then(|r| r.execution_arn.clone());
    record_run(store, input, request, &status, &inventory, error.as_ref()).await?;
    if request.is_some() {
        let outcome = outcome_of(request, error.as_ref());
        store.complete_request(&input.request_id, &outcome).await?;
    }
    Ok(result_event(input, execution_arn, &status, error))
}

/// A re-run after the outcome was recorded: rebuilds the result from the records.
async fn replay(
    store: &Store,
    input: &FinalizeInput,
    done: &RequestInfo,
) -> Result<ResultEvent, FunctionError> {
    let status = read_status(store, &input.platform_id).await?;
    let error = done.error.as_ref().map(EventError::from);
    Ok(result_event(
        input,
        done.execution_arn.clone(),
        &status,
        error,
    ))
}

/// The platform's status as stored (`Failed` when none is).
async fn read_status(store: &Store, platform: &str) -> Result<PlatformStatus, FunctionError> {
    Ok(store
        .get_status(platform)
        .await?
        .map(|s| s.value)
        .unwrap_or_else(|| PlatformStatus::new(LifecycleState::Failed)))
}

fn result_event(
    input: &FinalizeInput,
    execution_arn: Option<String>,
    status: &PlatformStatus,
    error: Option<EventError>,
) -> ResultEvent {
    let kind = input.operation.kind();
    let state = if error.is_some() {
        ResultStatus::Failed
    } else {
        ResultStatus::Succeeded
    };
    let mut result = ResultEvent::new(&input.request_id, &input.platform_id, Some(kind), state);
    result.execution_arn = execution_arn;
    if error.is_none() && (input.operation != Operation::Decommission || !status.outputs.is_empty())
    {
        result.outputs = Some(status.outputs.clone());
    }
    result.error = error;
    result
}

/// The error of a failed execution, from the `Catch`'s `Error` and `Cause`.
pub fn error_of(input: &FinalizeInput) -> EventError {
    caught_error(input.error.as_ref(), input.phase.clone())
}

/// The error a `Catch` handed over (`None`: it handed none), in the phase named, if any.
pub fn caught_error(caught: Option<&StatesError>, phase: Option<String>) -> EventError {
    let Some(caught) = caught else {
        return EventError {
            code: ErrorType::Terminal.as_str().to_owned(),
            message: "the execution failed without reporting an error".to_owned(),
            phase,
            retryable: false,
        };
    };
    let (error_type, message) = parse_cause(caught);
    EventError {
        code: aws_code(&message).unwrap_or_else(|| error_type.clone()),
        retryable: ErrorType::parse(&error_type).is_some_and(ErrorType::is_retryable),
        phase: phase.or_else(|| phase_prefix(&message)),
        message,
    }
}

/// The phase a phase function's error message starts with (`"cluster: CreateCluster failed: ..."`).
fn phase_prefix(message: &str) -> Option<String> {
    let (prefix, _) = message.split_once(": ")?;
    Phase::ALL
        .iter()
        .find(|p| p.as_str() == prefix)
        .map(|p| p.as_str().to_owned())
}

/// (error type, message): a Lambda error's Cause is `{"errorType", "errorMessage"}`; anything
/// else is taken as text.
fn parse_cause(caught: &StatesError) -> (String, String) {
    let cause = caught.cause.clone().unwrap_or_default();
    match serde_json::from_str::<Value>(&cause) {
        Ok(v) if v.get("errorMessage").is_some() => {
            let error_type = v["errorType"].as_str().unwrap_or(&caught.error).to_owned();
            let message = v["errorMessage"].as_str().unwrap_or_default().to_owned();
            (error_type, message)
        }
        _ if cause.is_empty() => (caught.error.clone(), caught.error.clone()),
        _ => (caught.error.clone(), cause),
    }
}

/// The AWS error code in a phase's message (`"<Operation> failed: <Code>: <message>"`).
fn aws_code(message: &str) -> Option<String> {
    let (_, rest) = message.split_once(" failed: ")?;
    let (code, _) = rest.split_once(": ")?;
    let plausible = !code.is_empty()
        && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
        && code.starts_with(|c: char| c.is_ascii_uppercase());
    plausible.then(|| code.to_owned())
}

/// The phase that failed, from the platform's phase statuses: one marked failed, else the last
/// one (in provisioning order) still running.
async fn failed_phase(
    store: &Store,
    platform: &str,
    operation: Operation,
) -> Result<Option<String>, FunctionError> {
    let Some(status) = store.get_status(platform).await? else {
        return Ok(None);
    };
    let in_state = |state: PhaseState| -> Vec<&'static str> {
        Phase::ALL
            .iter()
            .map(|p| p.as_str())
            .filter(|p| {
                status
                    .value
                    .phases
                    .get(*p)
                    .is_some_and(|s| s.state == state)
            })
            .collect()
    };
    if let Some(p) = in_state(PhaseState::Failed).first() {
        return Ok(Some((*p).to_owned()));
    }
    let running = in_state(PhaseState::Running);
    let pick = match operation {
        // Decommission runs the phases in reverse order.
        Operation::Decommission => running.first(),
        _ => running.last(),
    };
    Ok(pick.map(|p| (*p).to_owned()))
}

fn leftovers(inventory: &[ResourceRecord]) -> EventError {
    let listed: Vec<String> = inventory
        .iter()
        .map(|r| format!("{}/{} ({})", r.resource_type, r.id, r.phase))
        .collect();
    EventError {
        code: ErrorType::Terminal.as_str().to_owned(),
        message: format!(
            "decommission finished but {} resource(s) remain in the inventory: {}",
            listed.len(),
            listed.join(", ")
        ),
        phase: Some("decommission".to_owned()),
        retryable: true,
    }
}

/// Writes the platform's final lifecycle state (Active / Decommissioned / Failed with the last
/// error and the failed phase marked), retrying lost version races. Returns the status.
async fn write_status(
    store: &Store,
    input: &FinalizeInput,
    error: Option<&EventError>,
) -> Result<PlatformStatus, FunctionError> {
    let platform = &input.platform_id;
    let mut last_conflict = None;
    for _ in 0..STATUS_ATTEMPTS {
        let current = store.get_status(platform).await?;
        let mut status = current
            .as_ref()
            .map(|c| c.value.clone())
            .unwrap_or_else(|| PlatformStatus::new(LifecycleState::Requested));
        let before = status.clone();
        apply_outcome(&mut status, input.operation, error, store.now());
        if current.is_some() && status == before {
            return Ok(status);
        }
        match store
            .update_status(platform, &status, current.map(|c| c.version))
            .await
        {
            Ok(_) => return Ok(status),
            Err(e @ StoreError::VersionConflict { .. }) => last_conflict = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last_conflict.map(FunctionError::from).unwrap_or_else(|| {
        FunctionError::new(ErrorType::Conflict, "status write kept conflicting")
    }))
}

fn apply_outcome(
    status: &mut PlatformStatus,
    operation: Operation,
    error: Option<&EventError>,
    now: chrono::DateTime<chrono::Utc>,
) {
    if matches!(operation, Operation::Drift | Operation::Compliance) {
        // A check that failed to observe or to repair leaves the platform as it was (Active or
        // Drifted, set by the `drift` function), and a compliance sweep only reads: the run and
        // the result event carry the error.
        return;
    }
    match error {
        None if operation == Operation::Decommission => {
            status.state = LifecycleState::Decommissioned;
            // What a decommission kept on purpose (the tenant-data bucket holding retained tenant
            // data, and the data key it is encrypted with) outlives the platform.
            let kept = [
                crate::phases::outputs::RETAINED_BUCKET.key,
                crate::phases::outputs::RETAINED_DATA_KEY.key,
            ];
            status.outputs.retain(|key, _| kept.contains(&key.as_str()));
            status.last_error = None;
        }
        None => {
            status.state = LifecycleState::Active;
            // Converged as specified: whatever drift was open is gone.
            status.drifted.clear();
            status.last_error = None;
        }
        Some(e) => {
            status.state = LifecycleState::Failed;
            status.last_error = Some(LastError::from(e));
            if let Some(phase) = &e.phase {
                let entry = status
                    .phases
                    .entry(phase.clone())
                    .or_insert_with(|| PhaseStatus::new(PhaseState::Failed));
                if entry.state != PhaseState::Failed {
                    entry.state = PhaseState::Failed;
                    entry.finished_at = Some(now);
                }
                entry.message = Some(format!("{}: {}", e.code, e.message));
            }
        }
    }
}

/// One run history entry per request, keyed by the request's arrival time so a re-run overwrites
/// it rather than adding another.
async fn record_run(
    store: &Store,
    input: &FinalizeInput,
    request: Option<&RequestInfo>,
    status: &PlatformStatus,
    inventory: &[ResourceRecord],
    error: Option<&EventError>,
) -> Result<(), FunctionError> {
    let mut by_type: BTreeMap<&str, usize> = BTreeMap::new();
    for r in inventory {
        *by_type.entry(r.resource_type.as_str()).or_default() += 1;
    }
    let mut detail = json!({
        "outputs": status.outputs,
        "inventory": { "count": inventory.len(), "byType": by_type },
    });
    if input.operation == Operation::Drift {
        let this_check = status
            .last_drift
            .as_ref()
            .filter(|d| d.request_id == input.request_id);
        detail["drift"] = json!(this_check);
    }
    if input.operation == Operation::Compliance {
        detail["compliance"] = json!({ "summary": input.summary });
    }
    let run = run_of(store, input, request, error, detail);
    store.record_run(&input.platform_id, &run).await?;
    Ok(())
}

/// The run history entry of the execution, with `detail`.
fn run_of(
    store: &Store,
    input: &FinalizeInput,
    request: Option<&RequestInfo>,
    error: Option<&EventError>,
    detail: Value,
) -> RunRecord {
    let started_at = request.map_or_else(|| store.now(), |r| r.created_at);
    let run_status = if error.is_some() {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    let kind = input.operation.kind().operation();
    let mut run = RunRecord::new(kind, started_at, run_status);
    run.execution_arn = request.and_then(|r| r.execution_arn.clone());
    run.request_id = Some(input.request_id.clone());
    run.finished_at = Some(store.now());
    run.error = error.map(LastError::from);
    run.detail = Some(detail);
    run
}

/// The request's outcome: succeeded, or failed with `error`.
fn outcome_of(request: Option<&RequestInfo>, error: Option<&EventError>) -> RequestOutcome {
    let mut outcome = RequestOutcome::new(match error {
        Some(_) => RequestState::Failed,
        None => RequestState::Succeeded,
    });
    outcome.execution_arn = request.and_then(|r| r.execution_arn.clone());
    outcome.error = error.map(LastError::from);
    outcome
}

/// A platform run's tenants: the spec's tenants a provision or update recorded as `Onboarding`
/// become `Active`, the tenants a decommission recorded as `Offboarding` become `Offboarded`
/// (`Failed`, with the phase and reason, when the run failed). Only records this request last
/// changed are moved.
async fn settle_tenants(
    store: &Store,
    input: &FinalizeInput,
    error: Option<&EventError>,
) -> Result<(), FunctionError> {
    let as_tenant_operation = match input.operation {
        Operation::Decommission => Operation::Offboard,
        Operation::Drift | Operation::Compliance => return Ok(()),
        _ => Operation::Onboard,
    };
    let transition = tenant_transition(as_tenant_operation, error);
    let failure = error.map(tenant_failure);
    for record in store.list_tenant_records(&input.platform_id).await? {
        let record = record.value;
        if record.request_id != input.request_id || !transition.allows(Some(record.state)) {
            continue;
        }
        store
            .move_tenant(
                &input.platform_id,
                &record.name,
                &input.request_id,
                transition,
                failure.as_ref(),
            )
            .await?;
    }
    Ok(())
}

/// The tenant record the execution's request works on (its `requestId`).
async fn tenant_of(
    store: &Store,
    input: &FinalizeInput,
) -> Result<Option<Versioned<TenantRecord>>, FunctionError> {
    let records = store.list_tenant_records(&input.platform_id).await?;
    let found = records
        .into_iter()
        .find(|r| r.value.request_id == input.request_id);
    if found.is_none() {
        tracing::warn!(request_id = %input.request_id, "no tenant record of this request");
    }
    Ok(found)
}

/// The transition of a tenant whose request ends with `error` (or succeeds).
pub fn tenant_transition(operation: Operation, error: Option<&EventError>) -> TenantTransition {
    match (operation, error) {
        (_, Some(_)) => TenantTransition::Fail,
        (Operation::Offboard, None) => TenantTransition::Offboarded,
        (_, None) => TenantTransition::Onboarded,
    }
}

/// The failure recorded on the tenant: the phase (`tenant` when none is known) and the reason.
pub fn tenant_failure(error: &EventError) -> TenantFailure {
    TenantFailure {
        phase: error
            .phase
            .clone()
            .unwrap_or_else(|| TENANT_PHASE.to_owned()),
        reason: error.message.clone(),
        code: Some(error.code.clone()),
    }
}

/// First run for a tenant request: the tenant's new state, a run history entry, the request's
/// outcome.
async fn record_tenant(
    store: &Store,
    input: &FinalizeInput,
    request: Option<&RequestInfo>,
    tenant: Option<&Versioned<TenantRecord>>,
) -> Result<ResultEvent, FunctionError> {
    let error = match input.outcome {
        Outcome::Failed => {
            let mut e = error_of(input);
            e.phase.get_or_insert_with(|| TENANT_PHASE.to_owned());
            Some(e)
        }
        Outcome::Succeeded => None,
    };
    let transition = tenant_transition(input.operation, error.as_ref());
    let to = transition.rule().to;
    let failure = error.as_ref().map(tenant_failure);
    if let Some(tenant) = tenant {
        let moved = store
            .move_tenant(
                &input.platform_id,
                &tenant.value.name,
                &input.request_id,
                transition,
                failure.as_ref(),
            )
            .await?;
        if moved.is_none() {
            tracing::warn!(tenant = %tenant.value.name, state = %tenant.value.state, to = ?to,
                "tenant record not in a state this request left it in: left as is");
        }
    }
    let detail = json!({
        "tenant": tenant.map(|t| t.value.name.clone()),
        "state": to,
    });
    let run = run_of(store, input, request, error.as_ref(), detail);
    store.record_run(&input.platform_id, &run).await?;
    if request.is_some() {
        let outcome = outcome_of(request, error.as_ref());
        store.complete_request(&input.request_id, &outcome).await?;
    }
    let execution_arn = request.and_then(|r| r.execution_arn.clone());
    Ok(tenant_result(input, execution_arn, tenant, error))
}

/// A re-run for a tenant request after its outcome was recorded.
fn replay_tenant(
    input: &FinalizeInput,
    done: &RequestInfo,
    tenant: Option<&Versioned<TenantRecord>>,
) -> ResultEvent {
    let error = done.error.as_ref().map(EventError::from);
    tenant_result(input, done.execution_arn.clone(), tenant, error)
}

fn tenant_result(
    input: &FinalizeInput,
    execution_arn: Option<String>,
    tenant: Option<&Versioned<TenantRecord>>,
    error: Option<EventError>,
) -> ResultEvent {
    let status = if error.is_some() {
        ResultStatus::Failed
    } else {
        ResultStatus::Succeeded
    };
    let mut result = ResultEvent::new(
        &input.request_id,
        &input.platform_id,
        Some(input.operation.kind()),
        status,
    );
    result.tenant = tenant.map(|t| t.value.name.clone());
    result.execution_arn = execution_arn;
    result.error = error;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TenantState;

    fn input(error: Option<StatesError>, phase: Option<&str>) -> FinalizeInput {
        FinalizeInput {
            platform_id: "acme".into(),
            request_id: "r-1".into(),
            operation: Operation::Provision,
            outcome: Outcome::Failed,
            error,
            phase: phase.map(str::to_owned),
            summary: None,
        }
    }

    #[test]
    fn lambda_causes_are_parsed() {
        let e = error_of(&input(
            Some(StatesError {
                error: "Tenantry.Terminal".into(),
                cause: Some(
                    r#"{"errorType":"Tenantry.Terminal","errorMessage":"CreateCluster failed: InvalidParameterException: bad subnet"}"#
                        .into(),
                ),
            }),
            Some("cluster"),
        ));
        assert_eq!(e.code, "InvalidParameterException");
        assert_eq!(
            e.message,
            "CreateCluster failed: InvalidParameterException: bad subnet"
        );
        assert_eq!(e.phase.as_deref(), Some("cluster"));
        assert!(!e.retryable);
    }

    #[test]
    fn other_causes_are_text() {
        let e = error_of(&input(
            Some(StatesError {
                error: "States.Timeout".into(),
                cause: Some("the task timed out".into()),
            }),
            None,
        ));
        assert_eq!(e.code, "States.Timeout");
        assert_eq!(e.message, "the task timed out");
        let e = error_of(&input(
            Some(StatesError {
                error: "Tenantry.Retryable".into(),
                cause: None,
            }),
            None,
        ));
        assert!(e.retryable);
        assert_eq!(e.code, "Tenantry.Retryable");
        assert_eq!(error_of(&input(None, None)).code, "Tenantry.Terminal");
        let e = error_of(&input(
            Some(StatesError {
                error: "Tenantry.Terminal".into(),
                cause: Some(
                    r#"{"errorType":"Tenantry.Terminal","errorMessage":"network: CreateVpc failed: VpcLimitExceeded: too many"}"#
                        .into(),
                ),
            }),
            None,
        ));
        assert_eq!(e.phase.as_deref(), Some("network"));
        assert_eq!(e.code, "VpcLimitExceeded");
    }

    #[test]
    fn input_parses_from_a_catch() {
        let v = json!({
            "platformId": "acme", "requestId": "r", "operation": "decommission",
            "outcome": "failed", "pollSeconds": 1,
            "error": {"Error": "Tenantry.Terminal", "Cause": "{}"}
        });
        let i: FinalizeInput = serde_json::from_value(v).unwrap();
        assert_eq!(i.operation, Operation::Decommission);
        assert_eq!(i.error.unwrap().error, "Tenantry.Terminal");
    }

    #[test]
    fn tenant_operations_parse_and_move_the_tenant() {
        let v = json!({
            "platformId": "acme", "requestId": "r", "operation": "offboard",
            "outcome": "succeeded", "tenant": "team-a"
        });
        let i: FinalizeInput = serde_json::from_value(v).unwrap();
        assert_eq!(i.operation, Operation::Offboard);
        assert!(i.operation.is_tenant());
        assert_eq!(i.operation.kind(), RequestKind::TenantOffboarding);
        assert!(!Operation::Decommission.is_tenant());
        let onboarded = tenant_transition(Operation::Onboard, None).rule();
        assert_eq!(
            (onboarded.to, onboarded.from),
            (
                Some(TenantState::Active),
                &[TenantState::Requested, TenantState::Onboarding][..]
            )
        );
        assert_eq!(
            tenant_transition(Operation::Offboard, None).rule().to,
            Some(TenantState::Offboarded)
        );
        let e = EventError {
            code: "AccessDenied".into(),
            message: "tenant: PutBucketPolicy failed: AccessDenied: no".into(),
            phase: None,
            retryable: false,
        };
        let failed = tenant_transition(Operation::Offboard, Some(&e)).rule();
        assert_eq!(failed.to, Some(TenantState::Failed));
        assert!(failed.from.contains(&TenantState::Offboarding));
        let failure = tenant_failure(&e);
        assert_eq!(failure.phase, "tenant");
        assert_eq!(failure.code.as_deref(), Some("AccessDenied"));
        assert!(failure.reason.contains("PutBucketPolicy"));
    }

    #[test]
    fn a_compliance_sweep_only_reads_the_platform() {
        let v = json!({
            "platformId": "acme", "requestId": "c-1", "operation": "compliance",
            "outcome": "succeeded", "pollSeconds": 1,
            "summary": {"controls": 3, "failed": 1}
        });
        let i: FinalizeInput = serde_json::from_value(v).unwrap();
        assert_eq!(i.operation, Operation::Compliance);
        assert_eq!(i.operation.kind(), RequestKind::ComplianceSweep);
        assert!(i.operation.is_read_only() && !i.operation.is_tenant());
        assert_eq!(i.summary.as_ref().unwrap()["failed"], 1);
        assert!(!Operation::Drift.is_read_only());
        // Neither success nor failure touches the lifecycle state or the drift bookkeeping.
        let mut status = PlatformStatus::new(LifecycleState::Drifted);
        status.drifted.insert(Phase::Network);
        let before = status.clone();
        let e = EventError {
            code: "AccessDeniedException".into(),
            message: "DescribeCluster failed: AccessDeniedException: no".into(),
            phase: Some("compliance".into()),
            retryable: false,
        };
        for error in [None, Some(&e)] {
            apply_outcome(
                &mut status,
                Operation::Compliance,
                error,
                chrono::Utc::now(),
            );
            assert_eq!(status, before);
        }
        let result = result_event(&i, None, &status, None);
        assert_eq!(
            events::result_detail_type(Some(i.operation.kind()), result.status),
            "ComplianceSweepSucceeded"
        );
        let failed = result_event(&i, None, &status, Some(e));
        assert_eq!(
            events::result_detail_type(Some(i.operation.kind()), failed.status),
            "ComplianceSweepFailed"
        );
    }

    #[test]
    fn failure_marks_the_phase() {
        let mut status = PlatformStatus::new(LifecycleState::Provisioning);
        status
            .phases
            .insert("cluster".into(), PhaseStatus::new(PhaseState::Running));
        let e = EventError {
            code: "X".into(),
            message: "boom".into(),
            phase: Some("cluster".into()),
            retryable: false,
        };
        apply_outcome(
            &mut status,
            Operation::Provision,
            Some(&e),
            chrono::Utc::now(),
        );
        assert_eq!(status.state, LifecycleState::Failed);
        assert_eq!(status.phases["cluster"].state, PhaseState::Failed);
        assert_eq!(
            status.last_error.as_ref().unwrap().phase.as_deref(),
            Some("cluster")
        );
        let mut status2 = status.clone();
        apply_outcome(
            &mut status2,
            Operation::Provision,
            Some(&e),
            chrono::Utc::now(),
        );
        assert_eq!(status2, status, "re-applying changes nothing");
    }
}
