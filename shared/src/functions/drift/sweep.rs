//! The fleet sweep (workflow `drift-sweep`, started nightly by the EventBridge Scheduler
//! schedule or by `tenantry drift --all`): one drift check per active platform, each requested
//! through intake like any other (same admission, lease and idempotency), awaited, and reported
//! per platform. A platform whose check is refused or fails is reported as such; the sweep goes on.

use crate::deps::Deps;
use crate::drift::{DriftSummary, RemediateRequest};
use crate::error::{ErrorType, FunctionError};
use crate::events::{self, PlatformRequest, RequestKind, SCHEMA_VERSION};
use crate::store::{RequestState, Store};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Detail-type published when a sweep has heard from every platform.
pub const DRIFT_SWEEP_COMPLETED: &str = "DriftSweepCompleted";
/// `source` of the requests a sweep hands to intake.
pub const SWEEP_SOURCE: &str = "tenantry.drift-sweep";
/// How long the sweep waits for one platform's check: past it, the platform is reported
/// `TimedOut` (the check itself goes on) and the sweep does not wait any longer. A check that
/// repairs a node group's launch template can take half an hour in AWS; a hung one must not hold
/// the nightly report.
pub const CHECK_DEADLINE_MINUTES: i64 = 120;

/// `sweep-list`: the sweep's id (its execution name) and its input (`{remediate?}`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListInput {
    pub sweep_id: String,
    #[serde(default)]
    pub input: Value,
}

/// One platform of the sweep: its check's request id and the event that requests it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepItem {
    pub platform_id: String,
    pub request_id: String,
    /// A `DriftCheckRequested` EventBridge envelope, as intake reads it.
    pub envelope: Value,
}

/// `sweep-await`: where one platform's check is.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwaitInput {
    pub platform_id: String,
    pub request_id: String,
}

/// One platform's outcome in the sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlatformResult {
    pub platform_id: String,
    pub request_id: String,
    /// False while the check runs.
    #[serde(default)]
    pub done: bool,
    /// `Succeeded`, `Failed`, `Rejected` (by intake: the reason is in `error`), `Started`...;
    /// `Error` when the sweep could not even request or follow the check.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// The check's counts, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<DriftSummary>,
}

/// `sweep-report`: every platform's result.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportInput {
    pub sweep_id: String,
    pub results: Vec<PlatformResult>,
}

/// The sweep's report: recorded in the state store and published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    pub schema_version: String,
    pub sweep_id: String,
    pub platforms: usize,
    /// Checks that ran to the end and left nothing open.
    pub clean: usize,
    /// Checks that ran to the end with differences still open.
    pub drifted: usize,
    /// Checks refused by intake or failed.
    pub failed: usize,
    pub results: Vec<PlatformResult>,
}

/// Every active platform (`Active` or `Drifted`), with the request that checks it.
pub async fn list(input: ListInput, deps: &Deps) -> Result<Value, FunctionError> {
    let remediate: Option<RemediateRequest> = match input.input.get("remediate") {
        None | Some(Value::Null) => None,
        Some(r) => Some(serde_json::from_value(r.clone()).map_err(|e| {
            FunctionError::new(
                ErrorType::InvalidRequest,
                format!(
                    "sweep input `remediate`: {e} (\"auto\", \"report-only\" or per component)"
                ),
            )
        })?),
    };
    let store = Store::from_deps(deps);
    let items: Vec<SweepItem> = store
        .active_platforms()
        .await?
        .iter()
        .map(|id| item(&input.sweep_id, id, remediate.clone(), deps))
        .collect();
    Ok(json!({
        "platforms": items,
        "pollSeconds": crate::functions::intake::poll_seconds(),
    }))
}

/// The check of `platform` in sweep `sweep_id`: its request id is derived from both, so a
/// retried step requests the same check (intake's idempotency starts it once).
fn item(
    sweep_id: &str,
    platform: &str,
    remediate: Option<RemediateRequest>,
    deps: &Deps,
) -> SweepItem {
    let request_id = request_id(sweep_id, platform);
    let detail = PlatformRequest {
        schema_version: SCHEMA_VERSION.to_owned(),
        request_id: request_id.clone(),
        platform_id: platform.to_owned(),
        spec: None,
        remediate,
        components: None,
    };
    let region = deps.aws.region().map(|r| r.to_string());
    SweepItem {
        platform_id: platform.to_owned(),
        request_id,
        envelope: json!({
            "version": "0",
            "id": format!("{sweep_id}/{platform}"),
            "detail-type": RequestKind::DriftCheck.detail_type(),
            "source": SWEEP_SOURCE,
            "region": region,
            "resources": [],
            "detail": detail,
        }),
    }
}

/// `<sweep>-<platform>` when that is a valid request id, else a digest of it.
fn request_id(sweep_id: &str, platform: &str) -> String {
    let readable = format!("{sweep_id}-{platform}");
    let valid = readable.len() <= events::MAX_REQUEST_ID_LEN
        && readable
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    match valid {
        true => readable,
        false => format!("drift-{:016x}", crate::naming::fnv1a64(&readable)),
    }
}

/// Where the check is: done once intake refused it or its execution finished.
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
                    "the check was still {} {CHECK_DEADLINE_MINUTES} minutes after it was \
                     requested; the sweep stopped waiting (the check goes on: see its run)",
                    i.state.as_str()
                ),
            })),
            summary: None,
        });
    }
    let summary = match done {
        true => store
            .get_status(&input.platform_id)
            .await?
            .and_then(|s| s.value.last_drift)
            .filter(|d| d.request_id == input.request_id),
        false => None,
    };
    Ok(PlatformResult {
        platform_id: input.platform_id,
        request_id: input.request_id,
        done,
        state: state.map_or("Requested", |s| s.as_str()).to_owned(),
        error: info.and_then(|i| i.error).map(|e| json!(e)),
        summary,
    })
}

/// The state of a platform whose check outlived [`CHECK_DEADLINE_MINUTES`].
pub const TIMED_OUT: &str = "TimedOut";

/// Whether the sweep has waited long enough for the check `info`.
fn overdue(info: &crate::store::RequestInfo, now: chrono::DateTime<chrono::Utc>) -> bool {
    now - info.created_at > chrono::Duration::minutes(CHECK_DEADLINE_MINUTES)
}

/// Records and publishes the sweep's report.
pub async fn report(input: ReportInput, deps: &Deps) -> Result<SweepReport, FunctionError> {
    let report = tally(input.sweep_id, input.results);
    Store::from_deps(deps)
        .put_sweep_report(&report.sweep_id, &json!(report))
        .await?;
    let client = aws_sdk_eventbridge::Client::new(&deps.aws);
    let mut published = report.clone();
    // An event holds at most 256 KB: the per-platform list is in the store and the execution.
    published.results.truncate(100);
    events::publish(
        &client,
        &events::event_bus(),
        DRIFT_SWEEP_COMPLETED,
        &published,
    )
    .await?;
    Ok(report)
}

/// The counts of a sweep's results.
fn tally(sweep_id: String, results: Vec<PlatformResult>) -> SweepReport {
    let finished = |r: &&PlatformResult| r.state == RequestState::Succeeded.as_str();
    let open = |r: &&PlatformResult| r.summary.as_ref().is_some_and(|s| s.open > 0);
    SweepReport {
        schema_version: SCHEMA_VERSION.to_owned(),
        sweep_id,
        platforms: results.len(),
        clean: results.iter().filter(finished).filter(|r| !open(r)).count(),
        drifted: results.iter().filter(finished).filter(open).count(),
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
        let report = tally("s".into(), vec![timed_out, result("Succeeded", Some(0))]);
        assert_eq!(
            (report.clean, report.failed),
            (1, 1),
            "a timeout is not clean"
        );
    }

    #[test]
    fn request_ids_are_stable_and_valid() {
        assert_eq!(request_id("sweep-1", "payments"), "sweep-1-payments");
        let long = "x".repeat(80);
        let hashed = request_id(&long, "payments");
        assert!(
            hashed.starts_with("drift-") && hashed.len() == 22,
            "{hashed}"
        );
        assert_eq!(
            hashed,
            request_id(&long, "payments"),
            "stable across retries"
        );
        assert_ne!(hashed, request_id(&long, "cards"));
        assert!(
            request_id("a:b", "p").starts_with("drift-"),
            "':' is not allowed"
        );
    }

    #[test]
    fn a_refused_or_failed_check_counts_as_failed_not_clean() {
        let report = tally(
            "s".into(),
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
                report.drifted,
                report.failed
            ),
            (4, 1, 1, 2)
        );
    }
}
