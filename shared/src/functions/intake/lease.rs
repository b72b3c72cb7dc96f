//! The platform's lease: platform requests take it exclusively, tenant requests a share of it
//! (see the store's `lease` module); read-only requests (a compliance sweep, a report-only drift
//! check) take none. `finalize` releases it; intake releases it itself only when it answers a
//! request without starting an execution.

use super::envelope::{Body, Request};
use super::Intake;
use crate::error::{ErrorType, FunctionError};
use crate::events::EventError;
use crate::store::StoreError;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// How long a request holds its platform's lease (released by `finalize`; an execution that
/// dies without finalizing frees the platform after this).
pub const LEASE_TTL: Duration = Duration::from_secs(2 * 3600);
/// How long a tenant request holds its share of the platform's lease (released by `finalize`; a
/// tenant execution that dies without finalizing stops blocking platform operations after this).
pub const TENANT_LEASE_TTL: Duration = Duration::from_secs(3600);

impl Intake<'_> {
    /// `Ok(Err(reason))` when another request holds the platform.
    pub(super) async fn lease(
        &self,
        request: &Request,
    ) -> Result<Result<(), EventError>, FunctionError> {
        let (platform, id, operation) = (
            &request.platform_id,
            &request.request_id,
            request.operation(),
        );
        if let Body::Compliance | Body::Fleet { .. } = request.body {
            // A compliance sweep only reads: it takes no lease and blocks nobody. A sweep of
            // the fleet takes none either: each platform's own request takes that platform's.
            return Ok(Ok(()));
        }
        if let Body::Drift { remediate, .. } = &request.body {
            // A report-only check only reads: it takes no lease and blocks nobody. (A policy
            // that cannot be resolved is refused by admission, with the reason.)
            match self.drift_policy(request, remediate.as_ref()).await {
                Ok(policy) if policy.repairs_anything() => {}
                _ => return Ok(Ok(())),
            }
        }
        let acquired = if request.kind.is_tenant() {
            self.store
                .acquire_shared_lease(platform, id, operation, TENANT_LEASE_TTL)
                .await
        } else {
            self.store
                .acquire_lease(platform, id, operation, LEASE_TTL)
                .await
        };
        match acquired {
            Ok(_) => Ok(Ok(())),
            Err(StoreError::LeaseHeld {
                holder,
                operation,
                expires_at,
                ..
            }) => Ok(Err(busy(request, &holder, &operation, expires_at))),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives up what [`Intake::lease`] took (a no-op when it holds nothing).
    pub(super) async fn release(&self, request: &Request) -> Result<bool, StoreError> {
        if let Body::Compliance | Body::Fleet { .. } = request.body {
            // Never took one: nothing to write.
            return Ok(false);
        }
        if request.kind.is_tenant() {
            self.store
                .release_shared_lease(&request.platform_id, &request.request_id)
                .await
        } else {
            self.store
                .release_lease(&request.platform_id, &request.request_id)
                .await
        }
    }
}

/// The refusal of a request whose platform another request holds.
fn busy(request: &Request, holder: &str, operation: &str, expires_at: DateTime<Utc>) -> EventError {
    let rule = if request.kind.is_tenant() {
        "tenant operations never run while a platform operation runs"
    } else {
        "operations on a platform never run concurrently (nor while tenants are being \
         onboarded or offboarded)"
    };
    EventError::new(
        ErrorType::Conflict,
        format!(
            "platform {:?} is busy: request {holder:?} is running its {operation} \
             (lease until {}); {rule}, send this request again (with a new request id) \
             once that one has finished",
            request.platform_id,
            crate::store::keys::timestamp(expires_at),
        ),
    )
}
