//! `intake`: turns request events into Step Functions executions.
//!
//! Per request: parse the envelope and detail, validate the spec (a bad request is answered with a
//! `<Kind>Rejected` event carrying every issue, and nothing else changes), record the request id
//! (a duplicate whose intake finished changes nothing), take the platform's lease (held by another
//! request: rejected, naming it), record the spec and the platform's new lifecycle state, start the
//! execution named after the request id, publish `<Kind>Accepted` and mark the request started.
//!
//! Every step is idempotent, so a crash at any point followed by a redelivery converges: the
//! idempotency record stays `Accepted` until the end, the lease is re-entrant for the same request,
//! the spec and status are only written when they differ, and a second `StartExecution` of the same
//! name finds the first execution. The `Accepted` event is published *before* the request is marked
//! started, so a crash in between re-publishes it (at least once) rather than losing it.
//!
//! Tenant onboarding and offboarding requests take a *share* of the platform's lease (tenants of
//! one platform run side by side; no platform operation runs meanwhile, see
//! [`Store::acquire_shared_lease`]), check the platform (it must exist and be Active) and the
//! tenant (onboarding: [`validate::validate_new_tenant`] against the platform's spec and its tenant
//! records that are not `Offboarded`; offboarding: the tenant is `Active` or `Failed`), write the
//! tenant record through the store's tenant transitions (`Request` then `StartOnboarding`, or
//! `StartOffboarding` with `retainData` and `scheduleKeyDeletion`; see
//! [`TenantTransition`](crate::store::TenantTransition)) and start `onboard-tenant` /
//! `offboard-tenant` with input `{platformId, requestId, operation, pollSeconds, tenant}`. A new
//! tenant is recorded first and checked again against the records of concurrent onboardings
//! (write, then read: of two requests that conflict, at least the later one sees the other), and
//! withdrawn if it now conflicts. A rejected tenant request leaves no tenant record and no share
//! behind.
//!
//! A compliance sweep only reads: it takes no lease, checks that the platform exists and is Active
//! or Drifted, records nothing of the platform and starts `compliance-sweep` with input
//! `{platformId, requestId, operation: "compliance", pollSeconds}`.
//!
//! A drift check or compliance sweep whose `platformId` is `"*"` asks for every active platform:
//! it takes no lease and starts `fleet-sweep` (named after the request id, with input `{kind,
//! remediate?}`), which sends one request per platform through intake, each admitted on its own;
//! the sweep's report ends the request.
//!
//! Input: an SQS event whose bodies are EventBridge envelopes (the production shape: rule → queue
//! → event source mapping; answered with `batchItemFailures` for the messages to redeliver), or a
//! bare EventBridge event (rule → Lambda).
//!
//! One module per step, in the order [`Intake::process`] takes them: [`envelope`] (and
//! [`detail`]) parse, [`idempotency`] records the request id, [`lease`] takes the platform,
//! [`admission`] checks and records the platform or tenant request, [`execution`] starts the
//! workflow, [`reply`] answers (result events and the request's outcome).
//!
//! [`Store::acquire_shared_lease`]: crate::store::Store::acquire_shared_lease
//! [`validate::validate_new_tenant`]: crate::validate::validate_new_tenant

mod admission;
mod change;
mod detail;
mod envelope;
mod execution;
mod idempotency;
mod lease;
mod reply;

pub use envelope::IntakeInput;
pub(crate) use execution::poll_seconds;
pub use execution::{
    execution_arn, state_machine_arn, COMPLIANCE_WORKFLOW, DECOMMISSION_WORKFLOW,
    DEFAULT_POLL_SECONDS, DRIFT_WORKFLOW, OFFBOARD_WORKFLOW, ONBOARD_WORKFLOW, POLL_SECONDS_ENV,
    PROVISION_WORKFLOW,
};
pub use lease::{LEASE_TTL, TENANT_LEASE_TTL};
pub use reply::{Disposition, IntakeOutcome, IntakeOutput};

use super::Deps;
use crate::error::FunctionError;
use crate::store::Store;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use envelope::Parsed;
use serde_json::{json, Value};

pub const NAME: &str = "intake";

/// The phase named in the failure of a request that could not be started.
const INTAKE_PHASE: &str = NAME;

pub async fn handle(input: IntakeInput, deps: &Deps) -> Result<IntakeOutput, FunctionError> {
    let intake = Intake::new(deps);
    match input {
        IntakeInput::Event(envelope) => intake.process(envelope).await.map(IntakeOutput::Outcome),
        IntakeInput::Sqs(event) => Ok(IntakeOutput::Batch(intake.process_batch(event).await)),
    }
}

/// The handler's clients, built once per invocation; each step adds its methods in its module.
struct Intake<'a> {
    deps: &'a Deps,
    store: Store,
    events: aws_sdk_eventbridge::Client,
}

impl<'a> Intake<'a> {
    fn new(deps: &'a Deps) -> Self {
        Intake {
            deps,
            store: Store::from_deps(deps),
            events: aws_sdk_eventbridge::Client::new(&deps.aws),
        }
    }

    /// One envelope, start to finish: the recipe.
    async fn process(&self, envelope: Value) -> Result<IntakeOutcome, FunctionError> {
        let request = match envelope::parse(envelope) {
            Parsed::Request(request) => request,
            Parsed::Rejected(rejection) => return self.reject_unrecorded(*rejection).await,
            Parsed::Ignored { detail_type } => return Ok(reply::ignored(detail_type)),
            Parsed::Change(change) => match self.change_request(&change).await? {
                Some(request) => Box::new(request),
                None => return Ok(reply::ignored(change::CLOUDTRAIL_DETAIL_TYPE.to_owned())),
            },
        };
        if let Some(outcome) = self.check_duplicate(&request).await? {
            return Ok(outcome);
        }
        if let Err(held) = self.lease(&request).await? {
            return self.reject(&request, held, Vec::new()).await;
        }
        let accepted = match self.admit(&request).await {
            Ok(extra) => self.start(&request, extra).await.map_err(Into::into),
            Err(refusal) => Err(refusal),
        };
        self.answer(&request, accepted).await
    }

    /// Each message of an SQS batch; the ones whose intake failed go back to the queue.
    async fn process_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for message in event.records {
            let id = message.message_id.clone().unwrap_or_default();
            let result = match message.body.as_deref().map(serde_json::from_str::<Value>) {
                Some(Ok(envelope)) => self.process(envelope).await,
                Some(Err(e)) => {
                    self.process(json!({ "unparseable-body": e.to_string() }))
                        .await
                }
                None => self.process(Value::Null).await,
            };
            match result {
                Ok(outcome) => tracing::info!(message_id = %id, ?outcome, "intake done"),
                Err(error) => {
                    // Unhandled errors go back to the queue (and to its DLQ after maxReceiveCount).
                    tracing::warn!(message_id = %id, %error, "intake failed; message will be redelivered");
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = id;
                    response.batch_item_failures.push(failure);
                }
            }
        }
        response
    }
}
