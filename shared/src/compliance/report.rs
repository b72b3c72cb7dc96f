//! The results of a sweep: one per control and resource, with evidence, and their counts.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// How bad a failure is (Security Hub's labels).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "CRITICAL",
            Severity::High => "HIGH",
            Severity::Medium => "MEDIUM",
            Severity::Low => "LOW",
        }
    }
}

/// The verdict of one control on one resource.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Fail,
    Pass,
    NotApplicable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::NotApplicable => "not-applicable",
        }
    }
}

/// One control evaluated on one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ControlResult {
    /// The control's id (`TNY-EKS-1`, ...).
    pub control: String,
    /// The resource judged: an ARN, or a Kubernetes object path (`k8s:namespace/ledger`).
    pub resource: String,
    pub status: Status,
    /// Why it passed, failed, or does not apply, in one sentence.
    pub reason: String,
    /// The values the verdict was read from.
    pub evidence: Value,
    /// When a sweep first reported this control on this resource (RFC 3339): the Security Hub
    /// finding's `CreatedAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
}

impl ControlResult {
    /// What identifies the result across sweeps (and its Security Hub finding).
    pub fn key(&self) -> (&str, &str) {
        (&self.control, &self.resource)
    }
}

/// A sweep's results for one platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComplianceReport {
    pub platform_id: String,
    /// The sweep (its request id).
    pub request_id: String,
    /// When the live state was read (RFC 3339).
    pub evaluated_at: String,
    /// The compliance profile of the platform's spec (`pci-dss-v4`, `none`).
    pub profile: String,
    pub results: Vec<ControlResult>,
}

/// Counts of a report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComplianceSummary {
    /// Controls evaluated.
    pub controls: u32,
    /// Results (one per control and resource).
    pub results: u32,
    /// Results that passed.
    pub passed: u32,
    /// Results that failed.
    pub failed: u32,
    /// Results of controls that do not apply (each with its reason in the report).
    pub not_applicable: u32,
    /// Failed results per severity: keys `CRITICAL`, `HIGH`, `MEDIUM`, `LOW` (absent: none).
    #[schemars(with = "BTreeMap<String, u32>")]
    pub failed_by_severity: BTreeMap<Severity, u32>,
}

impl ComplianceReport {
    /// Every control of the catalogue judged on `live`.
    pub fn evaluate(live: &super::Live, request_id: &str, evaluated_at: &str) -> ComplianceReport {
        let results = super::CONTROLS
            .iter()
            .flat_map(|control| {
                (control.check)(live).into_iter().map(|v| ControlResult {
                    control: control.id.to_owned(),
                    resource: v.resource,
                    status: v.status,
                    reason: v.reason,
                    evidence: v.evidence,
                    first_seen: Some(evaluated_at.to_owned()),
                })
            })
            .collect();
        ComplianceReport {
            platform_id: live.platform_id.clone(),
            request_id: request_id.to_owned(),
            evaluated_at: evaluated_at.to_owned(),
            profile: live.asked.profile.clone(),
            results,
        }
    }

    pub fn summary(&self) -> ComplianceSummary {
        let mut summary = ComplianceSummary {
            controls: self
                .results
                .iter()
                .map(|r| r.control.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .len() as u32,
            results: self.results.len() as u32,
            ..ComplianceSummary::default()
        };
        for r in &self.results {
            match r.status {
                Status::Pass => summary.passed += 1,
                Status::NotApplicable => summary.not_applicable += 1,
                Status::Fail => {
                    summary.failed += 1;
                    let severity = super::catalogue::control(&r.control).map(|c| c.severity);
                    *summary
                        .failed_by_severity
                        .entry(severity.unwrap_or(Severity::High))
                        .or_default() += 1;
                }
            }
        }
        summary
    }

    /// Keeps, for each result `previous` (the platform's last report) had too, when it was
    /// first seen.
    pub fn carry_first_seen(&mut self, previous: &ComplianceReport) {
        let seen: std::collections::HashMap<(&str, &str), &str> = previous
            .results
            .iter()
            .map(|r| {
                (
                    r.key(),
                    r.first_seen.as_deref().unwrap_or(&previous.evaluated_at),
                )
            })
            .collect();
        for r in &mut self.results {
            if let Some(first) = seen.get(&r.key()) {
                r.first_seen = Some((*first).to_owned());
            }
        }
    }

    /// The results of `previous` whose control and resource this report no longer has (the
    /// resource is gone, or the control no longer judges it).
    pub fn gone_since<'a>(&self, previous: &'a ComplianceReport) -> Vec<&'a ControlResult> {
        let now: std::collections::HashSet<(&str, &str)> =
            self.results.iter().map(ControlResult::key).collect();
        previous
            .results
            .iter()
            .filter(|r| !now.contains(&r.key()))
            .collect()
    }

    /// The ids of the controls with a failed result, in catalogue order.
    pub fn failed_controls(&self) -> Vec<String> {
        super::CONTROLS
            .iter()
            .filter(|c| {
                self.results
                    .iter()
                    .any(|r| r.control == c.id && r.status == Status::Fail)
            })
            .map(|c| c.id.to_owned())
            .collect()
    }

    /// The report within `max_bytes` of JSON: the evidence of passing results goes first (a
    /// failure keeps its evidence as long as anything can), so a DynamoDB item holds it.
    pub fn compacted(&self, max_bytes: usize) -> ComplianceReport {
        let size = |r: &ComplianceReport| serde_json::to_vec(r).map_or(usize::MAX, |v| v.len());
        let mut out = self.clone();
        for status in [Status::Pass, Status::NotApplicable, Status::Fail] {
            if size(&out) <= max_bytes {
                break;
            }
            for r in out.results.iter_mut().filter(|r| r.status == status) {
                r.evidence = serde_json::json!({"omitted": "report size limit"});
            }
        }
        out
    }
}
