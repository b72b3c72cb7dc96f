//! Lambda `compliance`: evaluates the control catalogue ([`crate::compliance`]) on one platform's
//! live state (workflow `compliance-sweep`), records the report and publishes
//! `ComplianceSweepCompleted`. Idempotent: a retry reads again and rewrites the same report.

use crate::compliance::findings::{self, Target};
use crate::compliance::gather::{gather, Stored};
use crate::compliance::{ComplianceReport, ComplianceSummary};
use crate::deps::Deps;
use crate::error::FunctionError;
use crate::events::{self, SCHEMA_VERSION};
use crate::store::Store;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const NAME: &str = "compliance";

/// Detail-type published when a platform's sweep ends.
pub const COMPLIANCE_SWEEP_COMPLETED: &str = "ComplianceSweepCompleted";
/// At most this many failed control ids are listed in an event (the report holds them all).
const EVENT_CONTROLS: usize = 100;
/// Largest report recorded (a DynamoDB item holds at most 400 KB, attribute names included).
const MAX_REPORT_BYTES: usize = 350_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComplianceInput {
    pub platform_id: String,
    pub request_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComplianceOutput {
    pub summary: ComplianceSummary,
}

/// The detail of `ComplianceSweepCompleted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "Tenantry compliance event detail")]
pub struct ComplianceEvent {
    /// Version of this event format: `"1"`.
    pub schema_version: String,
    /// The platform swept.
    pub platform_id: String,
    /// The sweep (the `requestId` of its `ComplianceSweepRequested`).
    pub request_id: String,
    /// The report's counts, by status and by severity.
    pub summary: ComplianceSummary,
    /// The controls that failed (ids, at most 100; the report in the state store has every
    /// result with its evidence).
    pub failed_controls: Vec<String>,
}

/// Environment variable: `disabled` keeps findings out of Security Hub (an account that has
/// not enabled it refuses them); anything else, or unset, imports them.
pub const SECURITY_HUB_ENV: &str = "TENANTRY_SECURITY_HUB";

fn security_hub_enabled() -> bool {
    std::env::var(SECURITY_HUB_ENV).map_or(true, |v| v != "disabled")
}

/// Evaluates every control on the platform, imports the findings into Security Hub, records the
/// report, publishes the event. Safe to retry at any point: the findings are imported before the
/// report is recorded, so a retry still knows the previous sweep (what to archive) and imports
/// the same findings again, which only updates them.
pub async fn handle(
    input: ComplianceInput,
    deps: &Deps,
) -> Result<ComplianceOutput, FunctionError> {
    let store = Store::from_deps(deps);
    let stored = Stored::load(&store, &input.platform_id).await?;
    let previous = store
        .get_compliance_report(&input.platform_id, None)
        .await?
        .filter(|p| p.request_id != input.request_id);
    // The platform's own account (a target account's session) reads its resources and
    // receives its findings.
    let platform_account = deps.for_platform(&stored.spec, "compliance").await?;
    let live = gather(&platform_account, &stored).await?;
    let now = store.now();
    let mut report = ComplianceReport::evaluate(&live, &input.request_id, &now.to_rfc3339());
    if let Some(previous) = &previous {
        report.carry_first_seen(previous);
    }
    if security_hub_enabled() {
        let target = Target::dated(&live.account, &live.region, now, previous.as_ref());
        let clients = platform_account.clients.scoped(&live.region, false);
        let all = findings::findings(&target, &report, previous.as_ref());
        findings::import(clients.securityhub(), all).await?;
    }
    store
        .put_compliance_report(&report.compacted(MAX_REPORT_BYTES), now)
        .await?;
    let summary = report.summary();
    let mut failed_controls = report.failed_controls();
    failed_controls.truncate(EVENT_CONTROLS);
    let detail = ComplianceEvent {
        schema_version: SCHEMA_VERSION.to_owned(),
        platform_id: input.platform_id.clone(),
        request_id: input.request_id.clone(),
        summary: summary.clone(),
        failed_controls,
    };
    let client = aws_sdk_eventbridge::Client::new(&deps.aws);
    events::publish(
        &client,
        &events::event_bus(),
        COMPLIANCE_SWEEP_COMPLETED,
        &detail,
    )
    .await?;
    Ok(ComplianceOutput { summary })
}
