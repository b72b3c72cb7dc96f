//! Lambda `drift`: the bookkeeping steps of a drift check (workflow `drift-check`).
//!
//! * `assess`: classifies the observations of every phase ([`drift::differences`]), records the
//!   report, marks the platform `Drifted` when anything differs, publishes `DriftDetected`, and
//!   returns the phase invocations that repair what the policy allows (`auto`), none while
//!   remediation is paused fleet-wide ([`crate::store::RemediationPause`]).
//! * `confirm`: after those repairs, the phases observed again: marks each repair as done or not,
//!   records the report and the platform's state, publishes `DriftRemediated`.
//!
//! Either step that ends the check publishes `DriftCheckCompleted` with the report's counts.
//! Both are idempotent: a retry rewrites the same report and state (events are at least once).

use crate::deps::Deps;
use crate::drift::{self, DriftReport, DriftSummary, Policy, Remediation};
use crate::error::{ErrorType, FunctionError};
use crate::events::{self, SCHEMA_VERSION};
use crate::phases::PhaseOutput;
use crate::store::{LifecycleState, Store};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const NAME: &str = "drift";

/// Detail-type published when a check found differences.
pub const DRIFT_DETECTED: &str = "DriftDetected";
/// Detail-type published when the repairs of a check were observed again.
pub const DRIFT_REMEDIATED: &str = "DriftRemediated";
/// Detail-type published when a check ends (with or without differences).
pub const DRIFT_CHECK_COMPLETED: &str = "DriftCheckCompleted";
/// At most this many differences are listed in an event (the report holds them all).
const EVENT_DIFFERENCES: usize = 50;
/// Largest report recorded (a DynamoDB item holds at most 400 KB, attribute names included).
const MAX_REPORT_BYTES: usize = 350_000;

/// Which step of the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Assess,
    Confirm,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftInput {
    pub platform_id: String,
    pub request_id: String,
    pub stage: Stage,
    pub policy: Policy,
    /// The `observe` outputs, as the workflow's Parallel and Map states nest them.
    pub observations: Value,
    /// The components checked (`null`: all), as intake put it in the execution's input.
    #[serde(default)]
    pub scope: Option<Vec<crate::plan::Phase>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftOutput {
    pub summary: DriftSummary,
    /// What the workflow runs `ensure` on next (assess only; empty after confirm).
    pub remediations: Vec<Remediation>,
}

/// The detail of `DriftDetected`, `DriftRemediated` and `DriftCheckCompleted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "Tenantry drift event detail")]
pub struct DriftEvent {
    /// Version of this event format: `"1"`.
    pub schema_version: String,
    /// The platform checked.
    pub platform_id: String,
    /// The check (the `requestId` of its `DriftCheckRequested`).
    pub request_id: String,
    /// The platform's state after the step (`Drifted` or `Active`).
    pub state: LifecycleState,
    /// The report's counts.
    pub summary: DriftSummary,
    /// The first differences (at most 50; the report in the state store has every one, with
    /// the desired and actual values, which events leave out).
    pub differences: Vec<ListedDifference>,
}

/// A difference as an event lists it: where, what, and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListedDifference {
    /// The phase whose `observe` found it.
    pub phase: crate::plan::Phase,
    /// The Map item (a tenant's name), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// The resource, in the catalogue's vocabulary.
    pub resource: String,
    /// The field that differs.
    pub field: String,
    /// Missing, changed or unexpected.
    pub class: drift::DriftClass,
    /// Reported only, or repaired.
    pub action: drift::DriftAction,
    /// Open, pending, repaired or not-repaired.
    pub result: drift::DriftResult,
}

impl From<&drift::Difference> for ListedDifference {
    fn from(d: &drift::Difference) -> Self {
        ListedDifference {
            phase: d.phase,
            item: d.item.clone(),
            resource: d.resource.clone(),
            field: d.field.clone(),
            class: d.class,
            action: d.action,
            result: d.result,
        }
    }
}

/// The steps of a check (`assess`, `confirm`) and of a fleet sweep, drift or compliance
/// (`sweep-list`, `sweep-await`, `sweep-report`, see [`super::sweep`]), told apart by `stage`.
pub async fn handle(input: Value, deps: &Deps) -> Result<Value, FunctionError> {
    let stage = input
        .get("stage")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let out = match stage {
        "assess" | "confirm" => json!(check(super::parse(input)?, deps).await?),
        "sweep-list" => super::sweep::list(super::parse(input)?, deps).await?,
        "sweep-await" => json!(super::sweep::await_check(super::parse(input)?, deps).await?),
        "sweep-report" => json!(super::sweep::report(super::parse(input)?, deps).await?),
        "sweep-failed" => super::sweep::failed(super::parse(input)?, deps).await?,
        other => {
            return Err(FunctionError::new(
                ErrorType::InvalidRequest,
                format!(
                    "stage {other:?}: expected assess, confirm, sweep-list, sweep-await, \
                     sweep-report or sweep-failed"
                ),
            ))
        }
    };
    Ok(out)
}

/// One step of a check.
pub async fn check(input: DriftInput, deps: &Deps) -> Result<DriftOutput, FunctionError> {
    let store = Store::from_deps(deps);
    let observations = flatten(&input.observations)?;
    let (report, remediations) = match input.stage {
        Stage::Assess => {
            // Paused: repair nothing, even when intake admitted the check before the pause. Read
            // for every check (intake may have made this one report-only already), so that its
            // report says why it repaired nothing.
            let paused = store.get_remediation_pause().await?;
            let policy = match paused {
                Some(_) => Policy::report_only(),
                None => input.policy.clone(),
            };
            let differences = drift::differences(&observations, &policy);
            let remediations = drift::remediations(&differences);
            let report = DriftReport {
                platform_id: input.platform_id.clone(),
                request_id: input.request_id.clone(),
                checked_at: store.now(),
                confirmed_at: None,
                policy,
                differences,
                new_differences: Vec::new(),
                scope: input.scope.clone(),
                remediation_paused: paused,
            };
            (report, remediations)
        }
        Stage::Confirm => {
            let mut report = store
                .get_drift_report(&input.platform_id, &input.request_id)
                .await?
                .ok_or_else(|| {
                    FunctionError::new(
                        ErrorType::Terminal,
                        format!(
                            "no drift report of request {:?} to confirm (assess did not run)",
                            input.request_id
                        ),
                    )
                })?;
            report.confirm(&observations, store.now());
            (report, Vec::new())
        }
    };
    store
        .put_drift_report(&report.compacted(MAX_REPORT_BYTES))
        .await?;
    let state = store.record_drift(&report).await?;
    publish(deps, &input, &report, state, remediations.is_empty()).await?;
    Ok(DriftOutput {
        summary: report.summary(),
        remediations,
    })
}

/// The events of a step: what it found or repaired, and the end of the check.
async fn publish(
    deps: &Deps,
    input: &DriftInput,
    report: &DriftReport,
    state: LifecycleState,
    ends_check: bool,
) -> Result<(), FunctionError> {
    let client = aws_sdk_eventbridge::Client::new(&deps.aws);
    let bus = events::event_bus();
    let listed: Vec<ListedDifference> = report
        .differences
        .iter()
        .chain(&report.new_differences)
        .take(EVENT_DIFFERENCES)
        .map(ListedDifference::from)
        .collect();
    let detail = DriftEvent {
        schema_version: SCHEMA_VERSION.to_owned(),
        platform_id: input.platform_id.clone(),
        request_id: input.request_id.clone(),
        state,
        summary: report.summary(),
        differences: listed,
    };
    let step = match input.stage {
        Stage::Assess if !report.differences.is_empty() => Some(DRIFT_DETECTED),
        Stage::Assess => None,
        Stage::Confirm => Some(DRIFT_REMEDIATED),
    };
    if let Some(detail_type) = step {
        events::publish(&client, &bus, detail_type, &detail).await?;
    }
    if ends_check {
        events::publish(&client, &bus, DRIFT_CHECK_COMPLETED, &detail).await?;
    }
    Ok(())
}

/// The phase outputs in `observations`, however deep the Map results nest them.
fn flatten(observations: &Value) -> Result<Vec<PhaseOutput>, FunctionError> {
    let mut out = Vec::new();
    let mut stack = vec![observations];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items.iter().rev()),
            Value::Object(_) => out.push(super::parse(v.clone())?),
            other => {
                return Err(FunctionError::new(
                    ErrorType::InvalidRequest,
                    format!("observations: expected phase outputs, found {other}"),
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_map_results_flatten_in_order() {
        let out = |phase: &str, item: Option<&str>| json!({"phase": phase, "action": "observe", "ready": true, "changes": 0, "item": item});
        let nested = json!([
            out("network", None),
            [out("tenants", Some("a")), out("tenants", Some("b"))],
            []
        ]);
        let flat = flatten(&nested).unwrap();
        let items: Vec<_> = flat
            .iter()
            .map(|o| (o.phase.as_str(), o.item.clone()))
            .collect();
        assert_eq!(
            items,
            [
                ("network", None),
                ("tenants", Some("a".into())),
                ("tenants", Some("b".into()))
            ]
        );
        assert!(flatten(&json!([1])).is_err());
    }
}
