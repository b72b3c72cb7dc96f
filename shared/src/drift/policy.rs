//! What a drift check may repair: `auto` or `report-only`, for the whole platform or per
//! component (phase). A request that names no mode takes the platform's `driftRemediation`.

use crate::plan::Phase;
use crate::spec::DriftRemediation;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `remediate` field of a `DriftCheckRequested` detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RemediateRequest {
    /// One mode for every component: `"auto"` or `"report-only"`.
    All(DriftRemediation),
    /// A mode per component (`network`, `cluster`, `tenants`...); the components it does not
    /// name take the platform's `driftRemediation`.
    PerComponent(BTreeMap<Phase, DriftRemediation>),
}

/// The mode of every component, resolved once by intake and carried by the execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Policy(pub BTreeMap<Phase, DriftRemediation>);

impl Policy {
    /// The request's modes over the platform's default.
    pub fn resolve(request: Option<&RemediateRequest>, platform_default: DriftRemediation) -> Self {
        let mode = |phase: &Phase| match request {
            None => platform_default,
            Some(RemediateRequest::All(mode)) => *mode,
            Some(RemediateRequest::PerComponent(modes)) => {
                modes.get(phase).copied().unwrap_or(platform_default)
            }
        };
        Policy(Phase::ALL.iter().map(|p| (*p, mode(p))).collect())
    }

    /// Every component report-only: what a check runs as while remediation is paused
    /// ([`crate::store::RemediationPause`]).
    pub fn report_only() -> Self {
        Policy(
            Phase::ALL
                .iter()
                .map(|p| (*p, DriftRemediation::ReportOnly))
                .collect(),
        )
    }

    /// Whether differences of `phase` are repaired.
    pub fn repairs(&self, phase: Phase) -> bool {
        self.0.get(&phase) == Some(&DriftRemediation::Auto)
    }

    /// Whether anything may be repaired: only then does the check take the platform's lease (a
    /// report-only check reads, so it never blocks tenant or platform operations).
    pub fn repairs_anything(&self) -> bool {
        Phase::ALL.iter().any(|p| self.repairs(*p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_request_overrides_the_platform_default_per_component() {
        let request: RemediateRequest =
            serde_json::from_value(json!({"network": "auto", "tenants": "report-only"})).unwrap();
        let policy = Policy::resolve(Some(&request), DriftRemediation::ReportOnly);
        assert!(policy.repairs(Phase::Network));
        assert!(!policy.repairs(Phase::Tenants));
        assert!(!policy.repairs(Phase::Cluster));
        assert!(policy.repairs_anything());

        let all: RemediateRequest = serde_json::from_value(json!("report-only")).unwrap();
        let policy = Policy::resolve(Some(&all), DriftRemediation::Auto);
        assert!(!policy.repairs_anything());

        let policy = Policy::resolve(None, DriftRemediation::Auto);
        assert!(Phase::ALL.iter().all(|p| policy.repairs(*p)));
        // What a paused fleet runs: the same components, none repaired.
        assert_eq!(Policy::report_only().0.len(), Phase::ALL.len());
        assert!(!Policy::report_only().repairs_anything());
    }

    #[test]
    fn unknown_components_and_modes_are_refused() {
        assert!(serde_json::from_value::<RemediateRequest>(json!({"vpc": "auto"})).is_err());
        assert!(serde_json::from_value::<RemediateRequest>(json!("sometimes")).is_err());
    }
}
