//! Admission of drift checks: the platform must exist and be active (`Active` or `Drifted`); the
//! check's policy is resolved here (the request's modes over the platform's
//! `driftRemediation`; every component report-only while remediation is paused fleet-wide) and
//! travels in the execution's input with the tenants to observe.

use super::{invalid, Refusal};
use crate::drift::{Policy, RemediateRequest};
use crate::error::{ErrorType, FunctionError};
use crate::events::EventError;
use crate::functions::intake::envelope::Request;
use crate::functions::intake::Intake;
use crate::plan::Phase;
use crate::spec::PlatformSpec;
use serde_json::{json, Map, Value};

impl Intake<'_> {
    /// The policy of a drift check.
    pub(in crate::functions::intake) async fn drift_policy(
        &self,
        request: &Request,
        remediate: Option<&RemediateRequest>,
    ) -> Result<Policy, Refusal> {
        let platform = &request.platform_id;
        let Some(stored) = self
            .store
            .get_spec(platform)
            .await
            .map_err(FunctionError::from)?
        else {
            return Err(invalid(format!(
                "platform {platform:?} does not exist: there is nothing to check for drift"
            )));
        };
        // Answered, not retried: redelivering the request would not make the spec parse.
        let spec: PlatformSpec = serde_json::from_value(stored.value).map_err(|e| {
            let message = format!(
                "the stored spec of platform {platform:?} does not parse ({e}): send a \
                 PlatformUpdateRequested with a valid spec before checking it for drift"
            );
            Refusal::Rejected(EventError::new(ErrorType::Terminal, message), Vec::new())
        })?;
        let policy = Policy::resolve(remediate, spec.drift_remediation);
        if !policy.repairs_anything() {
            return Ok(policy);
        }
        // Paused fleet-wide: the check runs report-only, so it takes no lease either.
        match self
            .store
            .get_remediation_pause()
            .await
            .map_err(FunctionError::from)?
        {
            Some(pause) => {
                tracing::warn!(platform = %platform, reason = %pause.reason, paused_by = %pause.paused_by,
                    "remediation is paused: the check runs report-only");
                Ok(Policy::report_only())
            }
            None => Ok(policy),
        }
    }

    /// Checks the platform; returns the execution input's `policy` and `scope` (the components to
    /// check, null for all; the tenants phase finds the Active tenants itself).
    pub(super) async fn admit_drift(
        &self,
        request: &Request,
        remediate: Option<&RemediateRequest>,
        components: Option<&[Phase]>,
    ) -> Result<Map<String, Value>, Refusal> {
        let policy = self.drift_policy(request, remediate).await?;
        let platform = &request.platform_id;
        let state = self.lifecycle(platform).await?;
        if !state.is_some_and(|s| s.is_active()) {
            let state = state.map_or_else(|| "not provisioned".to_owned(), |s| format!("{s:?}"));
            return Err(invalid(format!(
                "platform {platform:?} is {state}: drift is checked only on an Active (or \
                 Drifted) platform, once its provision or update has finished"
            )));
        }
        let mut input = Map::new();
        input.insert("policy".into(), json!(policy));
        // Every observe of the workflow reads `$.scope` (null: every component).
        input.insert("scope".into(), json!(components));
        Ok(input)
    }
}
