//! Starting the execution: the workflow of a request, its input, `StartExecution` named after
//! the request id (a second start of the same name finds the first execution), then the
//! `Accepted` reply and the request marked started.

use super::envelope::{Body, Request};
use super::reply::{outcome, Disposition, IntakeOutcome};
use super::{Deps, Intake};
use crate::error::FunctionError;
use crate::events::{self, RequestKind, ResultStatus};
use crate::store::{RequestOutcome, RequestState};
use serde_json::{json, Map, Value};

/// Environment variable: seconds the state machines wait between polls.
pub const POLL_SECONDS_ENV: &str = "TENANTRY_POLL_SECONDS";
/// Poll interval when [`POLL_SECONDS_ENV`] is not set.
pub const DEFAULT_POLL_SECONDS: u32 = 30;
/// Workflow (state machine) serving provisions and updates.
pub const PROVISION_WORKFLOW: &str = "provision-platform";
/// Workflow (state machine) serving decommissions.
pub const DECOMMISSION_WORKFLOW: &str = "decommission-platform";
/// Workflow (state machine) serving tenant onboardings.
pub const ONBOARD_WORKFLOW: &str = crate::workflows::ONBOARD_TENANT.name;
/// Workflow (state machine) serving drift checks.
pub const DRIFT_WORKFLOW: &str = crate::workflows::DRIFT_CHECK.name;
/// Workflow (state machine) serving compliance sweeps.
pub const COMPLIANCE_WORKFLOW: &str = crate::workflows::COMPLIANCE_SWEEP.name;
/// Workflow (state machine) serving drift checks and compliance sweeps of every platform.
pub const FLEET_WORKFLOW: &str = crate::workflows::FLEET_SWEEP.name;
/// Workflow (state machine) serving tenant offboardings.
pub const OFFBOARD_WORKFLOW: &str = crate::workflows::OFFBOARD_TENANT.name;

/// The state machine ARN of a workflow (`provision-platform`, ...):
/// `arn:<partition>:states:<region>:<account>:stateMachine:tenantry-<workflow>`.
pub async fn state_machine_arn(deps: &Deps, workflow: &str) -> Result<String, FunctionError> {
    let region = region(deps);
    let account = deps.account_id().await?;
    Ok(format!(
        "arn:{}:states:{region}:{account}:stateMachine:{}{workflow}",
        crate::spec::partition_of(&region),
        crate::workflows::NAME_PREFIX,
    ))
}

/// The execution ARN of execution `name` of a state machine.
pub fn execution_arn(state_machine_arn: &str, name: &str) -> String {
    format!(
        "{}:{name}",
        state_machine_arn.replacen(":stateMachine:", ":execution:", 1)
    )
}

fn region(deps: &Deps) -> String {
    deps.aws
        .region()
        .map(|r| r.as_ref().to_owned())
        .unwrap_or_else(|| crate::aws::DEFAULT_REGION.to_owned())
}

pub(crate) fn poll_seconds() -> u32 {
    std::env::var(POLL_SECONDS_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_POLL_SECONDS)
}

fn workflow(request: &Request) -> &'static str {
    if let Body::Fleet { .. } = request.body {
        return FLEET_WORKFLOW;
    }
    match request.kind {
        RequestKind::PlatformDecommission => DECOMMISSION_WORKFLOW,
        RequestKind::TenantOnboarding => ONBOARD_WORKFLOW,
        RequestKind::TenantOffboarding => OFFBOARD_WORKFLOW,
        RequestKind::DriftCheck => DRIFT_WORKFLOW,
        RequestKind::ComplianceSweep => COMPLIANCE_WORKFLOW,
        _ => PROVISION_WORKFLOW,
    }
}

/// The execution's input: `{platformId, requestId, operation, pollSeconds}`, plus the work items
/// of a provision or update, the tenant of a tenant request, and what admission added (`extra`:
/// a drift check's policy and tenants).
fn input(request: &Request, extra: Map<String, Value>) -> Value {
    let mut input = json!({
        "platformId": request.platform_id,
        "requestId": request.request_id,
        "operation": request.operation(),
        "pollSeconds": poll_seconds(),
    });
    // What the provision workflow's Map states fan out over.
    if let Some(spec) = request.spec() {
        input["items"] = json!(crate::plan::work_items(spec));
    }
    if let Some(tenant) = request.tenant_name() {
        input["tenant"] = json!(tenant);
    }
    for (key, value) in extra {
        input[key] = value;
    }
    input
}

impl Intake<'_> {
    /// Starts the execution, publishes `Accepted`, marks the request started.
    pub(super) async fn start(
        &self,
        request: &Request,
        extra: Map<String, Value>,
    ) -> Result<IntakeOutcome, FunctionError> {
        let execution_arn = self.start_execution(request, extra).await?;
        let mut result = request.result(ResultStatus::Accepted);
        result.execution_arn = Some(execution_arn.clone());
        events::publish_result(&self.events, Some(request.kind), &result).await?;
        let mut recorded = RequestOutcome::new(RequestState::Started);
        recorded.execution_arn = Some(execution_arn.clone());
        self.store
            .complete_request(&request.request_id, &recorded)
            .await?;
        let arn = Some(execution_arn);
        Ok(outcome(request, Disposition::Accepted, arn, None))
    }

    async fn start_execution(
        &self,
        request: &Request,
        extra: Map<String, Value>,
    ) -> Result<String, FunctionError> {
        let arn = state_machine_arn(self.deps, workflow(request)).await?;
        let started = aws_sdk_sfn::Client::new(&self.deps.aws)
            .start_execution()
            .state_machine_arn(&arn)
            .name(&request.request_id)
            .input(input(request, extra).to_string())
            .send()
            .await;
        match started {
            Ok(out) => Ok(out.execution_arn().to_owned()),
            // An earlier delivery started it (names are unique per state machine for 90 days).
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_execution_already_exists()) =>
            {
                Ok(execution_arn(&arn, &request.request_id))
            }
            Err(e) => Err(crate::phases::aws_error("StartExecution", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_arns_derive_from_the_state_machine() {
        assert_eq!(
            execution_arn(
                "arn:aws:states:us-east-1:1:stateMachine:tenantry-provision-platform",
                "r-1"
            ),
            "arn:aws:states:us-east-1:1:execution:tenantry-provision-platform:r-1"
        );
    }
}
