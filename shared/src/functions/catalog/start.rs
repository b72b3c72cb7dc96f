//! The event from CloudFormation: start the catalog workflow, named after the request id, with
//! the event and the time by which it must answer. An event sent again finds its execution
//! (`ExecutionAlreadyExists`) and starts nothing. When the workflow cannot be started at all,
//! CloudFormation is answered FAILED here and now, rather than left waiting for its timeout.

use super::event::Event;
use super::response::Answer;
use super::submit::unchanged_physical_id;
use crate::deps::Deps;
use crate::error::FunctionError;
use crate::functions::intake::{execution_arn, state_machine_arn};
use crate::store::Store;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The catalog workflow (state machine `tenantry-catalog-request`).
pub const WORKFLOW: &str = crate::workflows::CATALOG_REQUEST.name;
/// Seconds kept between the answer and the custom resource's timeout: the last poll, the answer
/// step and its PUT fit in them.
pub const ANSWER_MARGIN_SECS: i64 = 30;

/// What the function tells its invoker (CloudFormation reads only the ResponseURL).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    pub execution_arn: Option<String>,
    /// False when an earlier delivery of the event started it.
    pub started: bool,
    /// Set when the workflow could not start and CloudFormation was answered FAILED directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered: Option<String>,
}

pub async fn start(raw: Value, deps: &Deps) -> Result<Started, FunctionError> {
    let event = Event::parse(raw.clone())?;
    let name = event.tenantry_request_id();
    let now = Store::from_deps(deps).now().timestamp();
    let input = json!({
        "event": raw,
        "answerBy": now + event.service_timeout_secs() - ANSWER_MARGIN_SECS,
        "pollSeconds": crate::functions::intake::poll_seconds(),
        // Filled by the workflow's Submit and Request steps; empty until then, so that every
        // path reaches the same Answer step.
        "submit": {"decision": {}},
        "intake": {"outcome": {}},
    });
    let machine = state_machine_arn(deps, WORKFLOW).await?;
    let started = aws_sdk_sfn::Client::new(&deps.aws)
        .start_execution()
        .state_machine_arn(&machine)
        .name(&name)
        .input(input.to_string())
        .send()
        .await;
    let (arn, fresh) = match started {
        Ok(out) => (out.execution_arn().to_owned(), true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_execution_already_exists()) =>
        {
            (execution_arn(&machine, &name), false)
        }
        Err(e) => {
            return answer_unstarted(&event, crate::phases::aws_error("StartExecution", e)).await
        }
    };
    tracing::info!(request_id = %event.request_id, execution = %arn, fresh, "catalog request");
    Ok(Started {
        execution_arn: Some(arn),
        started: fresh,
        answered: None,
    })
}

/// The workflow did not start: CloudFormation hears FAILED with why, now.
async fn answer_unstarted(event: &Event, error: FunctionError) -> Result<Started, FunctionError> {
    let reason = format!(
        "Tenantry could not start its catalog workflow: {}: {}",
        error.error_type.as_str(),
        error.error_message
    );
    let answer = Answer::failed(&unchanged_physical_id(event), reason.clone());
    let body = super::response::body(event, &answer);
    super::answer::put(&event.response_url, &body).await?;
    tracing::warn!(request_id = %event.request_id, %reason, "answered FAILED without a workflow");
    Ok(Started {
        execution_arn: None,
        started: false,
        answered: Some(reason),
    })
}
