//! Replies: what `intake` answers its caller, and the result events (`<Kind>Rejected`,
//! `<Kind>Failed`) of requests it does not start, with the request's recorded outcome.

use super::admission::Refusal;
use super::envelope::{Body, Rejection, Request};
use super::{Intake, INTAKE_PHASE};
use crate::error::{ErrorType, FunctionError};
use crate::events::{self, EventError, ResultEvent, ResultStatus};
use crate::store::{
    LastError, LifecycleState, RequestOutcome, RequestState, TenantFailure, TenantTransition,
};
use crate::validate::Issue;
use aws_lambda_events::event::sqs::SqsBatchResponse;
use serde::{Deserialize, Serialize};

/// What `intake` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntakeOutput {
    /// To SQS: the messages to deliver again (retryable failures).
    Batch(SqsBatchResponse),
    /// To a direct invocation: what became of the request.
    Outcome(IntakeOutcome),
}

/// What became of one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntakeOutcome {
    pub request_id: String,
    pub platform_id: String,
    pub disposition: Disposition,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    /// Why, for rejections and failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Disposition {
    /// An execution runs (started now, or by an earlier delivery that crashed).
    Accepted,
    /// Refused; a `<Kind>Rejected` event says why.
    Rejected,
    /// Could not be started after it was accepted for processing (deployment problem); a
    /// `<Kind>Failed` event says why.
    Failed,
    /// A redelivery of a request whose intake already finished: nothing done.
    Duplicate,
    /// An event Tenantry published itself: nothing done.
    Ignored,
}

/// What became of `request`.
pub(super) fn outcome(
    request: &Request,
    disposition: Disposition,
    execution_arn: Option<String>,
    reason: Option<String>,
) -> IntakeOutcome {
    IntakeOutcome {
        request_id: request.request_id.clone(),
        platform_id: request.platform_id.clone(),
        disposition,
        execution_arn,
        reason,
    }
}

/// One of Tenantry's own result events: nothing done.
pub(super) fn ignored(detail_type: String) -> IntakeOutcome {
    tracing::info!(detail_type, "ignoring Tenantry's own event");
    IntakeOutcome {
        request_id: String::new(),
        platform_id: String::new(),
        disposition: Disposition::Ignored,
        execution_arn: None,
        reason: Some(format!("{detail_type} is a Tenantry result event")),
    }
}

impl Intake<'_> {
    /// Answers a request that took the lease: started, refused, or failed for a reason retrying
    /// will not fix; any other error is the caller's (the message is delivered again).
    pub(super) async fn answer(
        &self,
        request: &Request,
        accepted: Result<IntakeOutcome, Refusal>,
    ) -> Result<IntakeOutcome, FunctionError> {
        match accepted {
            Ok(outcome) => Ok(outcome),
            Err(Refusal::Rejected(error, issues)) => self.reject(request, error, issues).await,
            Err(Refusal::Error(e))
                if matches!(
                    e.error_type,
                    ErrorType::Terminal | ErrorType::InvalidRequest
                ) =>
            {
                self.fail(request, e).await
            }
            Err(Refusal::Error(e)) => Err(e),
        }
    }

    /// A bad request: answered, nothing recorded.
    pub(super) async fn reject_unrecorded(
        &self,
        r: Rejection,
    ) -> Result<IntakeOutcome, FunctionError> {
        let status = ResultStatus::Rejected;
        let mut result = ResultEvent::new(&r.request_id, &r.platform_id, r.kind, status);
        result.error = Some(r.error.clone());
        result.issues = r.issues;
        result.tenant = r.tenant;
        events::publish_result(&self.events, r.kind, &result).await?;
        Ok(IntakeOutcome {
            request_id: r.request_id,
            platform_id: r.platform_id,
            disposition: Disposition::Rejected,
            execution_arn: None,
            reason: Some(r.error.message),
        })
    }

    /// Refuses a recorded request: releases the lease if it holds it, publishes `Rejected`,
    /// records the outcome.
    pub(super) async fn reject(
        &self,
        request: &Request,
        error: EventError,
        issues: Vec<Issue>,
    ) -> Result<IntakeOutcome, FunctionError> {
        self.release(request).await?;
        self.finish(request, Disposition::Rejected, error, issues)
            .await
    }

    /// A request that could not be started for a reason retrying will not fix (e.g. the state
    /// machine does not exist): the platform (or the tenant) is marked failed, the lease
    /// released, `Failed` published.
    async fn fail(
        &self,
        request: &Request,
        e: FunctionError,
    ) -> Result<IntakeOutcome, FunctionError> {
        tracing::error!(request_id = %request.request_id, error = %e, "intake failed");
        let mut error = EventError::from(&e);
        error.phase = Some(INTAKE_PHASE.to_owned());
        self.mark_failed(request, &error).await?;
        self.release(request).await?;
        self.finish(request, Disposition::Failed, error, Vec::new())
            .await
    }

    /// The tenant of a tenant request fails, not the platform (and only a record this request
    /// owns changes); a platform request fails its platform, if it has a status. A compliance
    /// sweep, or any sweep of the fleet, holds no lease and changes no platform: only its request
    /// fails.
    async fn mark_failed(
        &self,
        request: &Request,
        error: &EventError,
    ) -> Result<(), FunctionError> {
        let platform = &request.platform_id;
        if let Body::Compliance | Body::Fleet { .. } = request.body {
            return Ok(());
        }
        if let Some(tenant) = request.tenant_name() {
            let failure = TenantFailure {
                phase: INTAKE_PHASE.to_owned(),
                reason: error.message.clone(),
                code: Some(error.code.clone()),
            };
            let (id, fail) = (&request.request_id, TenantTransition::Fail);
            self.store
                .move_tenant(platform, tenant, id, fail, Some(&failure))
                .await?;
        } else if self.store.get_status(platform).await?.is_some() {
            let last = Some(LastError::from(error));
            self.set_state(platform, LifecycleState::Failed, last)
                .await?;
        }
        Ok(())
    }

    /// Publishes the `Rejected` or `Failed` result with `error` and records the request's outcome.
    async fn finish(
        &self,
        request: &Request,
        disposition: Disposition,
        error: EventError,
        issues: Vec<Issue>,
    ) -> Result<IntakeOutcome, FunctionError> {
        let (status, state) = match disposition {
            Disposition::Failed => (ResultStatus::Failed, RequestState::Failed),
            _ => (ResultStatus::Rejected, RequestState::Rejected),
        };
        let mut result = request.result(status);
        result.error = Some(error.clone());
        result.issues = issues;
        events::publish_result(&self.events, Some(request.kind), &result).await?;
        let mut recorded = RequestOutcome::new(state);
        recorded.error = Some(LastError::from(&error));
        self.store
            .complete_request(&request.request_id, &recorded)
            .await?;
        Ok(outcome(request, disposition, None, Some(error.message)))
    }
}
