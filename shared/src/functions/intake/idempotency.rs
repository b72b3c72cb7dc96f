//! Idempotency: the request id is recorded before anything else, so a redelivery of a request
//! whose intake finished changes nothing, and a request id reused for another request is refused
//! without touching the first one.

use super::envelope::Request;
use super::reply::{outcome, Disposition, IntakeOutcome};
use super::Intake;
use crate::error::{ErrorType, FunctionError};
use crate::events::{self, EventError, ResultStatus};
use crate::store::{RequestInfo, RequestRecord, RequestState};

impl Intake<'_> {
    /// `Some` when the request must not be processed (again): a redelivery of a request whose
    /// intake finished, or a request id reused for another request.
    pub(super) async fn check_duplicate(
        &self,
        request: &Request,
    ) -> Result<Option<IntakeOutcome>, FunctionError> {
        let Some(existing) = self.record_request(request).await? else {
            return Ok(None);
        };
        if existing.payload_hash != request.payload_hash {
            return self.reject_reused_id(request, &existing).await.map(Some);
        }
        if intake_finished(&existing) {
            let id = &request.request_id;
            tracing::info!(request_id = %id, state = ?existing.state, "duplicate delivery: nothing to do");
            let arn = existing.execution_arn;
            return Ok(Some(outcome(request, Disposition::Duplicate, arn, None)));
        }
        // Recorded but unfinished: an earlier delivery crashed mid-way; carry on from the start.
        Ok(None)
    }

    /// Records the request id; `None` when this delivery recorded it, else the request already
    /// recorded under that id. A read first, so a duplicate costs no write.
    async fn record_request(
        &self,
        request: &Request,
    ) -> Result<Option<RequestInfo>, FunctionError> {
        let id = &request.request_id;
        if let Some(existing) = self.store.get_request(id).await? {
            return Ok(Some(existing));
        }
        let recorded = self
            .store
            .record_request_from(
                id,
                &request.platform_id,
                request.operation(),
                &request.payload_hash,
                Some(&request.origin),
            )
            .await?;
        match recorded {
            RequestRecord::New(_) => Ok(None),
            RequestRecord::Duplicate { existing, .. } => Ok(Some(existing)),
        }
    }

    /// A client reused a request id: answer it, but touch nothing of the first request.
    async fn reject_reused_id(
        &self,
        request: &Request,
        existing: &RequestInfo,
    ) -> Result<IntakeOutcome, FunctionError> {
        let error = EventError::new(
            ErrorType::Conflict,
            format!(
                "request id {:?} was already used for another request ({} of platform {:?}); \
                 use a new request id",
                request.request_id, existing.kind, existing.platform_id
            ),
        );
        let mut result = request.result(ResultStatus::Rejected);
        result.error = Some(error.clone());
        events::publish_result(&self.events, Some(request.kind), &result).await?;
        let reason = Some(error.message);
        Ok(outcome(request, Disposition::Rejected, None, reason))
    }
}

/// Whether intake of a recorded request finished (anything but the initial `Accepted`).
fn intake_finished(info: &RequestInfo) -> bool {
    info.state != RequestState::Accepted
}
