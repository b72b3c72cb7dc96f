//! The drift report: every difference the phases' `observe` named, classified, with what the
//! check did about it. Pure: built from the observations, recorded by the `drift` function.

use super::policy::Policy;
use crate::phases::{Drift, PhaseOutput};
use crate::plan::Phase;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

/// How a resource differs from what the platform's request asks for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum DriftClass {
    /// Desired, and not there.
    Missing,
    /// There, with a field that differs.
    Changed,
    /// Tagged or labelled as this platform's, and not desired.
    Unexpected,
}

/// What the check did, or will do, about one difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DriftAction {
    /// The policy is `report-only` for its component: left as found.
    Reported,
    /// To be repaired (the phase's `ensure`), then observed again.
    Remediate,
}

/// Where a difference ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DriftResult {
    /// Reported only.
    Open,
    /// Repair not confirmed yet.
    Pending,
    /// Observed again after the repair, and gone.
    Repaired,
    /// Observed again after the repair, and still there.
    NotRepaired,
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Difference {
    /// The phase whose `observe` found it (and whose `ensure` repairs it).
    pub phase: Phase,
    /// The Map item the phase observed (a tenant's name), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// The resource, in the catalogue's vocabulary (`ec2:vpc-endpoint/...`).
    pub resource: String,
    /// The field that differs (`exists` when the resource is missing or unexpected).
    pub field: String,
    /// Missing, changed or unexpected.
    pub class: DriftClass,
    /// The value the platform's request asks for.
    pub desired: Value,
    /// The value found.
    pub actual: Value,
    /// Reported only, or to be repaired (per the check's policy).
    pub action: DriftAction,
    /// Where it ended: open, pending, repaired or not-repaired.
    pub result: DriftResult,
}

/// One phase invocation to repair with: `function` is the Lambda function name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Remediation {
    pub phase: Phase,
    pub function: String,
    /// The item (tenant) to repair, or `null` for the whole phase.
    pub item: Option<String>,
}

/// A drift check's report, as recorded in the state store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftReport {
    pub platform_id: String,
    pub request_id: String,
    #[schemars(with = "String")]
    pub checked_at: DateTime<Utc>,
    /// When the repairs were observed again (auto only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub confirmed_at: Option<DateTime<Utc>>,
    pub policy: Policy,
    pub differences: Vec<Difference>,
    /// Differences the second observation found that the first did not (something changed
    /// during the repair).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new_differences: Vec<Difference>,
    /// The components checked, when not all of them were (a check started by a change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Vec<Phase>>,
    /// Set when remediation was paused fleet-wide as the check assessed: it repaired nothing,
    /// whatever it asked for (`tenantry remediation resume` lifts the pause).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation_paused: Option<crate::store::RemediationPause>,
}

/// Counts of a report, kept on the platform's status for `tenantry status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DriftSummary {
    /// The check (its request id).
    pub request_id: String,
    /// When the check first observed the platform (RFC 3339).
    #[schemars(with = "String")]
    pub checked_at: DateTime<Utc>,
    /// Differences the first observation found.
    pub differences: usize,
    /// Of those, repaired and confirmed by the second observation.
    pub repaired: usize,
    /// Differences still there when the check ended.
    pub open: usize,
}

/// The class of one `observe` entry: on field `exists`, an absent actual value (`false` or
/// `null`) is missing, an absent desired value unexpected; on any field, something present where
/// nothing is desired (an extra inline policy, an attached managed policy) is unexpected; anything
/// else changed.
pub fn classify(drift: &Drift) -> DriftClass {
    let absent = |v: &Value| matches!(v, Value::Null | Value::Bool(false));
    match drift.field.as_str() {
        "exists" if absent(&drift.actual) => DriftClass::Missing,
        "exists" if absent(&drift.desired) => DriftClass::Unexpected,
        _ if drift.desired.is_null() && !drift.actual.is_null() => DriftClass::Unexpected,
        _ => DriftClass::Changed,
    }
}

/// The Lambda function serving a phase (the tenants phase is served per tenant by `tenant`).
pub fn function_of(phase: Phase) -> String {
    let name = match phase {
        Phase::Tenants => "tenant",
        other => other.as_str(),
    };
    format!("{}{name}", crate::workflows::NAME_PREFIX)
}

/// Every difference of `observations`, classified, with the action the policy allows.
pub fn differences(observations: &[PhaseOutput], policy: &Policy) -> Vec<Difference> {
    let mut out = Vec::new();
    for o in observations {
        let (action, result) = if policy.repairs(o.phase) {
            (DriftAction::Remediate, DriftResult::Pending)
        } else {
            (DriftAction::Reported, DriftResult::Open)
        };
        for d in &o.drift {
            out.push(Difference {
                phase: o.phase,
                item: d.item.clone().or_else(|| o.item.clone()),
                resource: d.resource.clone(),
                field: d.field.clone(),
                class: classify(d),
                desired: d.desired.clone(),
                actual: d.actual.clone(),
                action,
                result,
            });
        }
    }
    out
}

/// The phase invocations that repair the differences to remediate, in phase order, each once.
pub fn remediations(differences: &[Difference]) -> Vec<Remediation> {
    let set: BTreeSet<Remediation> = differences
        .iter()
        .filter(|d| d.action == DriftAction::Remediate)
        .map(|d| Remediation {
            phase: d.phase,
            function: function_of(d.phase),
            item: d.item.clone(),
        })
        .collect();
    set.into_iter().collect()
}

impl DriftReport {
    /// Marks each repair as done or not from the second observation, and keeps what only the
    /// second observation found.
    pub fn confirm(&mut self, after: &[PhaseOutput], at: DateTime<Utc>) {
        let again = differences(after, &self.policy);
        let key = |d: &Difference| (d.phase, d.item.clone(), d.resource.clone(), d.field.clone());
        let still: BTreeSet<_> = again.iter().map(key).collect();
        let before: BTreeSet<_> = self.differences.iter().map(key).collect();
        for d in &mut self.differences {
            if d.action == DriftAction::Remediate {
                d.result = if still.contains(&key(d)) {
                    DriftResult::NotRepaired
                } else {
                    DriftResult::Repaired
                };
            }
        }
        self.new_differences = again
            .into_iter()
            .filter(|d| !before.contains(&key(d)))
            .map(|mut d| {
                d.action = DriftAction::Reported;
                d.result = DriftResult::Open;
                d
            })
            .collect();
        self.confirmed_at = Some(at);
    }

    /// The report, its values cut until it serializes to at most `max_bytes` (a DynamoDB item
    /// holds 400 KB): values over 1 KB first, then every value. A value cut says how big it was.
    pub fn compacted(&self, max_bytes: usize) -> DriftReport {
        let size = |r: &DriftReport| serde_json::to_vec(r).map_or(usize::MAX, |v| v.len());
        let mut out = self.clone();
        for threshold in [1024, 0] {
            if size(&out) <= max_bytes {
                break;
            }
            for d in out
                .differences
                .iter_mut()
                .chain(out.new_differences.iter_mut())
            {
                for value in [&mut d.desired, &mut d.actual] {
                    let bytes = value.to_string().len();
                    if bytes > threshold && !value.is_null() {
                        *value = Value::String(format!("({bytes} bytes, not kept)"));
                    }
                }
            }
        }
        out
    }

    /// The counts of the report.
    /// The components with a difference still open.
    pub fn open_phases(&self) -> BTreeSet<Phase> {
        let open = self
            .differences
            .iter()
            .filter(|d| d.result != DriftResult::Repaired);
        open.chain(&self.new_differences).map(|d| d.phase).collect()
    }

    /// The components of the platform left drifted after this check: a check of every component
    /// replaces `before`; a check of some keeps what it did not look at.
    pub fn drifted_after(&self, before: &BTreeSet<Phase>) -> BTreeSet<Phase> {
        let mut out = match &self.scope {
            None => BTreeSet::new(),
            Some(scope) => before
                .iter()
                .filter(|p| !scope.contains(p))
                .copied()
                .collect(),
        };
        out.extend(self.open_phases());
        out
    }

    pub fn summary(&self) -> DriftSummary {
        let repaired = self
            .differences
            .iter()
            .filter(|d| d.result == DriftResult::Repaired)
            .count();
        DriftSummary {
            request_id: self.request_id.clone(),
            checked_at: self.checked_at,
            differences: self.differences.len(),
            repaired,
            open: self.differences.len() - repaired + self.new_differences.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phases::Action;
    use crate::spec::DriftRemediation;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn observed(
        phase: Phase,
        item: Option<&str>,
        drift: &[(&str, &str, Value, Value)],
    ) -> PhaseOutput {
        PhaseOutput {
            phase,
            action: Action::Observe,
            ready: drift.is_empty(),
            changes: 0,
            item: item.map(str::to_owned),
            outputs: BTreeMap::new(),
            drift: drift
                .iter()
                .map(|(resource, field, desired, actual)| {
                    Drift::new(*resource, *field, desired.clone(), actual.clone())
                })
                .collect(),
        }
    }

    fn policy(network: DriftRemediation) -> Policy {
        let mut p = Policy::resolve(None, DriftRemediation::Auto);
        p.0.insert(Phase::Network, network);
        p
    }

    #[test]
    fn differences_are_classified_and_follow_the_policy() {
        let observations = [
            observed(
                Phase::Network,
                None,
                &[("ec2:vpc-endpoint/sts", "exists", json!(true), json!(false))],
            ),
            observed(
                Phase::Tenants,
                Some("checkout"),
                &[
                    (
                        "k8s:resource-quota/checkout/q",
                        "spec.hard",
                        json!({"pods": "10"}),
                        json!({"pods": "99"}),
                    ),
                    (
                        "k8s:role/checkout/stranger",
                        "exists",
                        json!(false),
                        json!(true),
                    ),
                ],
            ),
            observed(Phase::Cluster, None, &[]),
        ];
        let found = differences(&observations, &policy(DriftRemediation::ReportOnly));
        let classes: Vec<_> = found.iter().map(|d| (d.class, d.action)).collect();
        assert_eq!(
            classes,
            [
                (DriftClass::Missing, DriftAction::Reported),
                (DriftClass::Changed, DriftAction::Remediate),
                (DriftClass::Unexpected, DriftAction::Remediate),
            ]
        );
        assert_eq!(
            remediations(&found),
            [Remediation {
                phase: Phase::Tenants,
                function: "tenantry-tenant".into(),
                item: Some("checkout".into()),
            }],
            "one invocation per phase and item, none for a report-only component"
        );
    }

    /// The tenants phase observes every tenant in one invocation: each difference carries its
    /// tenant, and each tenant is repaired on its own.
    #[test]
    fn differences_of_one_invocation_over_many_items_keep_their_items() {
        let mut all = observed(
            Phase::Tenants,
            None,
            &[
                (
                    "s3:bucket/data",
                    "publicAccessBlock",
                    json!(true),
                    json!(false),
                ),
                ("iam:role/a", "inlinePolicy/x", json!({}), json!(null)),
                ("iam:role/b", "exists", json!(true), json!(false)),
            ],
        );
        all.drift[1].item = Some("alpha".into());
        all.drift[2].item = Some("beta".into());
        let found = differences(&[all], &policy(DriftRemediation::Auto));
        let items: Vec<_> = found.iter().map(|d| d.item.as_deref()).collect();
        assert_eq!(items, [None, Some("alpha"), Some("beta")]);
        let repairs: Vec<_> = remediations(&found).into_iter().map(|r| r.item).collect();
        assert_eq!(repairs, [None, Some("alpha".into()), Some("beta".into())]);
    }

    /// A check of some components keeps the others as the last checks found them; a check of
    /// every component starts over.
    #[test]
    fn a_component_check_keeps_the_drift_of_the_components_it_did_not_look_at() {
        let mut report = DriftReport {
            platform_id: "p".into(),
            request_id: "r".into(),
            checked_at: Utc::now(),
            confirmed_at: None,
            policy: policy(DriftRemediation::Auto),
            differences: differences(
                &[observed(
                    Phase::Network,
                    None,
                    &[("ec2:vpc/v", "enableDnsSupport", json!(true), json!(false))],
                )],
                &policy(DriftRemediation::Auto),
            ),
            new_differences: Vec::new(),
            remediation_paused: None,
            scope: Some(vec![Phase::Network]),
        };
        let before = BTreeSet::from([Phase::Tenants, Phase::Network]);
        let open = report.drifted_after(&before);
        assert_eq!(open, BTreeSet::from([Phase::Network, Phase::Tenants]));
        report.differences[0].result = DriftResult::Repaired;
        assert_eq!(
            report.drifted_after(&before),
            BTreeSet::from([Phase::Tenants])
        );
        report.scope = None;
        assert!(
            report.drifted_after(&before).is_empty(),
            "a full check starts over"
        );
    }

    #[test]
    fn a_large_report_keeps_every_difference_and_cuts_values() {
        let big = json!({ "manifest": "x".repeat(5000) });
        let drift: Vec<_> = (0..100)
            .map(|i| (format!("k8s:v1/ConfigMap/t/{i}"), big.clone()))
            .collect();
        let entries: Vec<(&str, &str, Value, Value)> = drift
            .iter()
            .map(|(r, v)| (r.as_str(), "spec", v.clone(), json!({"small": true})))
            .collect();
        let report = DriftReport {
            platform_id: "p".into(),
            request_id: "r".into(),
            checked_at: Utc::now(),
            confirmed_at: None,
            policy: policy(DriftRemediation::ReportOnly),
            differences: differences(
                &[observed(Phase::Tenants, Some("t"), &entries)],
                &policy(DriftRemediation::ReportOnly),
            ),
            new_differences: Vec::new(),
            remediation_paused: None,
            scope: None,
        };
        let small = report.compacted(100_000);
        assert!(serde_json::to_vec(&small).unwrap().len() <= 100_000);
        assert_eq!(small.differences.len(), 100, "every difference stays");
        assert_eq!(
            small.differences[0].desired,
            json!(format!("({} bytes, not kept)", big.to_string().len()))
        );
        assert_eq!(
            small.differences[0].actual,
            json!({"small": true}),
            "small values stay"
        );
        assert_eq!(
            report.compacted(10_000_000),
            report,
            "a report that fits is unchanged"
        );
    }

    #[test]
    fn confirmation_marks_repairs_and_keeps_new_differences() {
        let first = [observed(
            Phase::Network,
            None,
            &[
                ("ec2:route/a", "exists", json!(true), json!(false)),
                ("ec2:subnet/b", "tags", json!({"k": "v"}), json!({})),
            ],
        )];
        let p = policy(DriftRemediation::Auto);
        let mut report = DriftReport {
            platform_id: "p".into(),
            request_id: "r".into(),
            checked_at: Utc::now(),
            confirmed_at: None,
            differences: differences(&first, &p),
            policy: p,
            new_differences: Vec::new(),
            remediation_paused: None,
            scope: None,
        };
        let second = [observed(
            Phase::Network,
            None,
            &[
                ("ec2:subnet/b", "tags", json!({"k": "v"}), json!({})),
                ("ec2:nat-gateway/c", "exists", json!(true), json!(false)),
            ],
        )];
        report.confirm(&second, Utc::now());
        let results: Vec<_> = report.differences.iter().map(|d| d.result).collect();
        assert_eq!(results, [DriftResult::Repaired, DriftResult::NotRepaired]);
        assert_eq!(report.new_differences.len(), 1);
        let summary = report.summary();
        assert_eq!(
            (summary.differences, summary.repaired, summary.open),
            (2, 1, 2)
        );
    }
}
