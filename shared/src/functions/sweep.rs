//! The fleet sweep (workflow `fleet-sweep`): one drift check or one compliance sweep per active
//! platform, each requested through intake like any other request (same admission, lease and
//! idempotency), awaited, and reported per platform. A platform whose request is refused or fails
//! is reported as such; the sweep goes on. It is started by the schedules (the nightly drift sweep
//! and the weekly compliance sweep, see [`crate::workflows::SCHEDULES`]), by `tenantry drift --all`,
//! and by a `DriftCheckRequested` or `ComplianceSweepRequested` whose `platformId` is
//! [`ALL_PLATFORMS`] (intake starts the sweep with the request id as its id; the report then ends
//! the request). The `drift` function runs its stages (`sweep-list`, `sweep-await`,
//! `sweep-report`): it reads the store and publishes events, as the sweep needs, and nothing else.

use crate::compliance::ComplianceSummary;
use crate::deps::Deps;
use crate::drift::{DriftSummary, RemediateRequest};
use crate::error::{ErrorType, FunctionError};
use crate::events::{
    self, PlatformRequest, RequestKind, ResultEvent, ResultStatus, SCHEMA_VERSION,
};
use crate::store::{RequestOutcome, RequestState, Store};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Detail-type published when a drift sweep has heard from every platform.
pub const DRIFT_SWEEP_COMPLETED: &str = "DriftSweepCompleted";
/// Detail-type published when a compliance sweep of the fleet has heard from every platform
/// (each platform's own `ComplianceSweepCompleted` carries its counts).
pub const COMPLIANCE_FLEET_SWEEP_COMPLETED: &str = "ComplianceFleetSweepCompleted";
/// `source` of the requests a sweep hands to intake.
pub const SWEEP_SOURCE: &str = "tenantry.fleet-sweep";
/// The `platformId` of a drift check or compliance sweep that asks for every active platform.
pub const ALL_PLATFORMS: &str = "*";
/// How long the sweep waits for one platform's request: past it, the platform is reported
/// `TimedOut` (the request itself goes on) and the sweep does not wait any longer. A check that
/// repairs a node group's launch template can take half an hour in AWS; a hung one must not hold
/// the report.
pub const CHECK_DEADLINE_MINUTES: i64 = 120;

/// What a sweep asks of each platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SweepKind {
    /// A drift check (`DriftCheckRequested`), repairing what each platform's policy (or the
    /// sweep's `remediate`) allows. The default: the nightly sweep predates compliance.
    #[default]
    Drift,
    /// A compliance sweep (`ComplianceSweepRequested`): read-only.
    Compliance,
}

impl SweepKind {
    /// The request each platform gets.
    pub fn request_kind(self) -> RequestKind {
        match self {
            SweepKind::Drift => RequestKind::DriftCheck,
            SweepKind::Compliance => RequestKind::ComplianceSweep,
        }
    }

    /// The event published with the report.
    pub fn completed_detail_type(self) -> &'static str {
        match self {
            SweepKind::Drift => DRIFT_SWEEP_COMPLETED,
            SweepKind::Compliance => COMPLIANCE_FLEET_SWEEP_COMPLETED,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            SweepKind::Drift => "drift",
            SweepKind::Compliance => "compliance",
        }
    }
}

/// The sweep's input, as the schedules, the CLI and intake start it: `{kind?, remediate?}`
/// (read field by field in [`list`], so that an error names the field).
#[derive(Debug, Clone, Default)]
struct SweepInput {
    kind: SweepKind,
    /// Drift only: what each check may repair (default: each platform's `driftRemediation`).
    remediate: Option<RemediateRequest>,
}

/// `sweep-list`: the sweep's id (its execution name) and its input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListInput {
    pub sweep_id: String,
    #[serde(default)]
    pub input: Value,
}

/// One platform of the sweep: its request's id and the event that requests it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepItem {
    pub platform_id: String,
    pub request_id: String,
    pub kind: SweepKind,
    /// A `DriftCheckRequested` or `ComplianceSweepRequested` EventBridge envelope, as intake
    /// reads it.
    pub envelope: Value,
}

/// `sweep-await`: where one platform's request is.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwaitInput {
    pub platform_id: String,
    pub request_id: String,
    #[serde(default)]
    pub kind: SweepKind,
}

/// One platform's outcome in the sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlatformResult {
    /// The platform.
    pub platform_id: String,
    /// The request the sweep sent for it (`<sweep>-<platform>`, or a digest when that is too
    /// long): its run, report and result events carry this id.
    pub request_id: String,
    /// False while the request runs.
    #[serde(default)]
    pub done: bool,
    /// `Succeeded`, `Failed`, `Rejected` (by intake: the reason is in `error`), `Started`...;
    /// `Error` when the sweep could not even make or follow the request.
    pub state: String,
    /// Why it was refused or failed (`{code, message}` from intake or finalize; `{Error, Cause}`
    /// when the sweep could not make or follow the request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// A drift check's counts, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<DriftSummary>,
    /// A compliance sweep's counts, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compliance: Option<ComplianceSummary>,
}

/// `sweep-report`: every platform's result.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportInput {
    pub sweep_id: String,
    #[serde(default)]
    pub kind: SweepKind,
    pub results: Vec<PlatformResult>,
}

/// The sweep's report: recorded in the state store and published (`DriftSweepCompleted`,
/// `ComplianceFleetSweepCompleted`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "Tenantry fleet sweep report")]
pub struct SweepReport {
    /// Version of this event format: `"1"`.
    pub schema_version: String,
    /// The sweep's id: its execution name, and the `requestId` of the request that started it
    /// (when a request did; a schedule names it after the time).
    pub request_id: String,
    /// Always `"*"`: the sweep is about every active platform.
    pub platform_id: String,
    /// What each platform was asked for.
    #[serde(default)]
    pub kind: SweepKind,
    /// Platforms swept: the active ones (`Active` or `Drifted`) when it started.
    pub platforms: usize,
    /// Requests that ran to the end and found nothing: no difference left open (drift), no
    /// failed control (compliance).
    pub clean: usize,
    /// Requests that ran to the end and found something: differences still open (drift), failed
    /// controls (compliance).
    pub flagged: usize,
    /// Requests refused by intake, failed, or timed out.
    pub failed: usize,
    /// One per platform (at most 100 in the event; the stored report has every one).
    pub results: Vec<PlatformResult>,
}

/// Every active platform (`Active` or `Drifted`), with the request for it.
pub async fn list(input: ListInput, deps: &Deps) -> Result<Value, FunctionError> {
    let sweep: SweepInput = match &input.input {
        Value::Null => SweepInput::default(),
        raw => SweepInput {
            kind: match raw.get("kind") {
                None | Some(Value::Null) => SweepKind::default(),
                Some(k) => serde_json::from_value(k.clone()).map_err(|e| {
                    FunctionError::new(
                        ErrorType::InvalidRequest,
                        format!("sweep input `kind`: {e} (\"drift\" or \"compliance\")"),
                    )
                })?,
            },
            remediate: match raw.get("remediate") {
                None | Some(Value::Null) => None,
                Some(r) => Some(serde_json::from_value(r.clone()).map_err(|e| {
                    FunctionError::new(
                        ErrorType::InvalidRequest,
                        format!(
                            "sweep input `remediate`: {e} (\"auto\", \"report-only\" or per \
                             component)"
                        ),
                    )
                })?),
            },
        },
    };
    if sweep.kind == SweepKind::Compliance && sweep.remediate.is_some() {
        return Err(FunctionError::new(
            ErrorType::InvalidRequest,
            "sweep input `remediate`: a compliance sweep only reads; `remediate` is for drift",
        ));
    }
    let store = Store::from_deps(deps);
    let items: Vec<SweepItem> = store
        .active_platforms()
        .await?
        .iter()
        .map(|id| item(&input.sweep_id, id, &sweep, deps))
        .collect();
    Ok(json!({
        "platforms": items,
        "kind": sweep.kind,
        "pollSeconds": crate::functions::intake::poll_seconds(),
    }))
}

/// The request for `platform` in sweep `sweep_id`: its id is derived from both, so a retried
/// step sends the same request (intake's idempotency starts it once).
fn item(sweep_id: &str, platform: &str, sweep: &SweepInput, deps: &Deps) -> SweepItem {
    let request_id = request_id(sweep.kind, sweep_id, platform);
    let detail = PlatformRequest {
        schema_version: SCHEMA_VERSION.to_owned(),
        request_id: request_id.clone(),
        platform_id: platform.to_owned(),
        spec: None,
        remediate: sweep.remediate.clone(),
        components: None,
    };
    let region = deps.aws.region().map(|r| r.to_string());
    SweepItem {
        platform_id: platform.to_owned(),
        request_id,
        kind: sweep.kind,
        envelope: json!({
            "version": "0",
            "id": format!("{sweep_id}/{platform}"),
            "detail-type": sweep.kind.request_kind().detail_type(),
            "source": SWEEP_SOURCE,
            "region": region,
            "resources": [],
            "detail": detail,
        }),
    }
}

/// `<sweep>-<platform>` when that is a valid request id, else a digest of it.
fn request_id(kind: SweepKind, sweep_id: &str, platform: &str) -> String {
    let readable = format!("{sweep_id}-{platform}");
    let valid = readable.len() <= events::MAX_REQUEST_ID_LEN
        && readable
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    match valid {
        true => readable,
        false => format!(
            "{}-{:016x}",
            kind.as_str(),
            crate::naming::fnv1a64(&readable)
        ),
    }
}

/// Where the request is: done once intake refused it or its execution finished.
pub async fn await_check(input: AwaitInput, deps: &Deps) -> Result<PlatformResult, FunctionError> {
    let store = Store::from_deps(deps);
    let info = store.get_request(&input.request_id).await?;
    let state = info.as_ref().map(|i| i.state);
    let done = matches!(
        state,
        Some(RequestState::Succeeded | RequestState::Failed | RequestState::Rejected)
    );
    if let Some(i) = info.as_ref().filter(|i| !done && overdue(i, store.now())) {
        return Ok(PlatformResult {
            platform_id: input.platform_id,
            request_id: input.request_id,
            done: true,
            state: TIMED_OUT.to_owned(),
            error: Some(json!({
                "errorType": "Tenantry.Timeout",
                "errorMessage": format!(
                    "the {} was still {} {CHECK_DEADLINE_MINUTES} minutes after it was \
                     requested; the sweep stopped waiting (it goes on: see its run)",
                    input.kind.request_kind().operation(),
                    i.state.as_str()
                ),
            })),
            summary: None,
            compliance: None,
        });
    }
    let succeeded = state == Some(RequestState::Succeeded);
    let (mut summary, mut compliance) = (None, None);
    match input.kind {
        SweepKind::Drift if done => {
            summary = store
                .get_status(&input.platform_id)
                .await?
                .and_then(|s| s.value.last_drift)
                .filter(|d| d.request_id == input.request_id);
        }
        SweepKind::Compliance if succeeded => {
            compliance = store
                .get_compliance_report(&input.platform_id, Some(&input.request_id))
                .await?
                .map(|r| r.summary());
        }
        _ => {}
    }
    Ok(PlatformResult {
        platform_id: input.platform_id,
        request_id: input.request_id,
        done,
        state: state.map_or("Requested", |s| s.as_str()).to_owned(),
        error: info.and_then(|i| i.error).map(|e| json!(e)),
        summary,
        compliance,
    })
}

/// The state of a platform whose request outlived [`CHECK_DEADLINE_MINUTES`].
pub const TIMED_OUT: &str = "TimedOut";

/// Whether the sweep has waited long enough for the request `info`.
fn overdue(info: &crate::store::RequestInfo, now: chrono::DateTime<chrono::Utc>) -> bool {
    now - info.created_at > chrono::Duration::minutes(CHECK_DEADLINE_MINUTES)
}

/// `sweep-failed`: one of the sweep's own steps failed (a platform's request failing is only
/// that platform's result): its input and the error the `Catch` handed over.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedInput {
    pub sweep_id: String,
    #[serde(default)]
    pub input: Value,
    #[serde(default)]
    pub error: Option<crate::functions::finalize::StatesError>,
}

/// Ends the request that started a sweep that could not finish, with the error, so that it is
/// never left `Started`; the workflow then fails.
pub async fn failed(input: FailedInput, deps: &Deps) -> Result<Value, FunctionError> {
    let kind = input
        .input
        .get("kind")
        .and_then(|k| serde_json::from_value(k.clone()).ok())
        .unwrap_or_default();
    let error = crate::functions::finalize::caught_error(input.error.as_ref(), None);
    end_request(deps, &input.sweep_id, kind, Some(&error)).await?;
    Ok(json!({ "sweepId": input.sweep_id, "error": error }))
}

/// Records and publishes the sweep's report; a sweep started by a request (`platformId` "*")
/// then ends that request, as finalize ends a platform's.
pub async fn report(input: ReportInput, deps: &Deps) -> Result<SweepReport, FunctionError> {
    let report = tally(input.sweep_id, input.kind, input.results);
    let store = Store::from_deps(deps);
    store
        .put_sweep_report(&report.request_id, &json!(report))
        .await?;
    let client = aws_sdk_eventbridge::Client::new(&deps.aws);
    let mut published = report.clone();
    // An event holds at most 256 KB: the per-platform list is in the store and the execution.
    published.results.truncate(100);
    events::publish(
        &client,
        &events::event_bus(),
        report.kind.completed_detail_type(),
        &published,
    )
    .await?;
    end_request(deps, &report.request_id, report.kind, None).await?;
    Ok(report)
}

/// Ends the `"*"` request named `sweep_id`, if a request started the sweep: its `Succeeded`
/// (or, with `error`, `Failed`) result, then its record. Published before it is recorded, so a
/// retry publishes it again rather than never.
async fn end_request(
    deps: &Deps,
    sweep_id: &str,
    kind: SweepKind,
    error: Option<&events::EventError>,
) -> Result<(), FunctionError> {
    let store = Store::from_deps(deps);
    let request = store
        .get_request(sweep_id)
        .await?
        .filter(|r| r.platform_id == ALL_PLATFORMS);
    let Some(request) = request.filter(|r| r.state == RequestState::Started) else {
        return Ok(());
    };
    let (status, state) = match error {
        None => (ResultStatus::Succeeded, RequestState::Succeeded),
        Some(_) => (ResultStatus::Failed, RequestState::Failed),
    };
    let kind = kind.request_kind();
    let mut result = ResultEvent::new(sweep_id, ALL_PLATFORMS, Some(kind), status);
    result.error = error.cloned();
    let client = aws_sdk_eventbridge::Client::new(&deps.aws);
    events::publish_result(&client, Some(kind), &result).await?;
    let mut outcome = RequestOutcome::new(state);
    outcome.execution_arn = request.execution_arn;
    outcome.error = error.map(crate::store::LastError::from);
    store.complete_request(sweep_id, &outcome).await?;
    Ok(())
}

/// The counts of a sweep's results.
fn tally(sweep_id: String, kind: SweepKind, results: Vec<PlatformResult>) -> SweepReport {
    let finished = |r: &&PlatformResult| r.state == RequestState::Succeeded.as_str();
    let found = |r: &&PlatformResult| {
        r.summary.as_ref().is_some_and(|s| s.open > 0)
            || r.compliance.as_ref().is_some_and(|c| c.failed > 0)
    };
    SweepReport {
        schema_version: SCHEMA_VERSION.to_owned(),
        request_id: sweep_id,
        platform_id: ALL_PLATFORMS.to_owned(),
        kind,
        platforms: results.len(),
        clean: results
            .iter()
            .filter(finished)
            .filter(|r| !found(r))
            .count(),
        flagged: results.iter().filter(finished).filter(found).count(),
        failed: results.iter().filter(|r| !finished(r)).count(),
        results,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(state: &str, open: Option<usize>) -> PlatformResult {
        PlatformResult {
            platform_id: "p".into(),
            request_id: "r".into(),
            done: true,
            state: state.into(),
            error: None,
            summary: open.map(|open| DriftSummary {
                request_id: "r".into(),
                checked_at: chrono::Utc::now(),
                differences: open,
                repaired: 0,
                open,
            }),
            compliance: None,
        }
    }

    #[test]
    fn a_check_is_waited_for_until_its_deadline() {
        let now = chrono::Utc::now();
        let requested = |minutes_ago: i64| crate::store::RequestInfo {
            request_id: "r".into(),
            platform_id: "p".into(),
            kind: "drift".into(),
            payload_hash: "h".into(),
            state: RequestState::Started,
            execution_arn: None,
            error: None,
            created_at: now - chrono::Duration::minutes(minutes_ago),
            updated_at: now,
            expires_at: 0,
            origin: None,
        };
        assert!(!overdue(&requested(10), now));
        assert!(!overdue(&requested(CHECK_DEADLINE_MINUTES), now));
        assert!(overdue(&requested(CHECK_DEADLINE_MINUTES + 1), now));
        let timed_out = result(TIMED_OUT, None);
        let report = tally(
            "s".into(),
            SweepKind::Drift,
            vec![timed_out, result("Succeeded", Some(0))],
        );
        assert_eq!(
            (report.clean, report.failed),
            (1, 1),
            "a timeout is not clean"
        );
    }

    #[test]
    fn request_ids_are_stable_and_valid() {
        assert_eq!(
            request_id(SweepKind::Drift, "sweep-1", "payments"),
            "sweep-1-payments"
        );
        let long = "x".repeat(80);
        let hashed = request_id(SweepKind::Drift, &long, "payments");
        assert!(
            hashed.starts_with("drift-") && hashed.len() == 22,
            "{hashed}"
        );
        assert_eq!(
            hashed,
            request_id(SweepKind::Drift, &long, "payments"),
            "stable across retries"
        );
        assert_ne!(hashed, request_id(SweepKind::Drift, &long, "cards"));
        assert!(
            request_id(SweepKind::Drift, "a:b", "p").starts_with("drift-"),
            "':' is not allowed"
        );
    }

    #[test]
    fn a_compliance_sweep_flags_platforms_with_failed_controls() {
        let swept = |failed: u32| PlatformResult {
            compliance: Some(ComplianceSummary {
                controls: 44,
                results: 50,
                passed: 50 - failed,
                failed,
                not_applicable: 0,
                failed_by_severity: Default::default(),
            }),
            ..result("Succeeded", None)
        };
        let report = tally(
            "s".into(),
            SweepKind::Compliance,
            vec![swept(0), swept(3), result("Rejected", None)],
        );
        assert_eq!((report.clean, report.flagged, report.failed), (1, 1, 1));
        assert!(request_id(SweepKind::Compliance, &"x".repeat(80), "p").starts_with("compliance-"));
        assert_eq!(
            SweepKind::Compliance.completed_detail_type(),
            "ComplianceFleetSweepCompleted"
        );
    }

    #[test]
    fn a_refused_or_failed_check_counts_as_failed_not_clean() {
        let report = tally(
            "s".into(),
            SweepKind::Drift,
            vec![
                result("Succeeded", Some(0)),
                result("Succeeded", Some(2)),
                result("Rejected", None),
                result("Error", None),
            ],
        );
        assert_eq!(
            (
                report.platforms,
                report.clean,
                report.flagged,
                report.failed
            ),
            (4, 1, 1, 2)
        );
    }
}
