//! `catalog`: launches platforms from AWS Service Catalog. The product
//! (`infra/service-catalog/`) creates a `Custom::TenantryPlatform` custom resource; CloudFormation
//! sends its Create, Update and Delete events here.
//!
//! Each event becomes one platform request whose id is CloudFormation's RequestId (the
//! idempotency key): [`start`] starts the `catalog-request` workflow named after it (an event
//! sent again finds that execution and starts nothing), whose steps are this function's stages:
//! - [`submit`]: the properties become a platform spec (a bad property is answered FAILED naming
//!   it, and nothing is created); Create provisions, Update updates (a new platform id provisions
//!   the replacement; CloudFormation then deletes the old one), Delete decommissions (a platform
//!   Tenantry does not manage is answered SUCCESS at once). The request goes to intake as the
//!   event bus would deliver it, so admission, lease and idempotency are the same as for any
//!   request;
//! - [`progress`] (`await`): polls the request's record until it is done or the custom resource's
//!   `ServiceTimeout` nears;
//! - [`answer`]: PUTs the answer to the pre-signed ResponseURL ([`response`]: at most 4096 bytes,
//!   outputs as string Data). Every step's `Catch` answers FAILED, so a stack never waits out its
//!   timeout.

pub mod answer;
pub mod event;
pub mod progress;
pub mod properties;
pub mod response;
pub mod start;
pub mod submit;

use crate::deps::Deps;
use crate::error::{ErrorType, FunctionError};
use serde_json::{json, Value};

pub const NAME: &str = "catalog";

/// A CloudFormation event (it has a `RequestType`) starts the workflow; the workflow's steps
/// name their `stage`.
pub async fn handle(input: Value, deps: &Deps) -> Result<Value, FunctionError> {
    let stage = input
        .get("stage")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let out = match stage.as_deref() {
        None if input.get("RequestType").is_some() => json!(start::start(input, deps).await?),
        Some("submit") => json!(submit::submit(super::parse(input)?, deps).await?),
        Some("await") => json!(progress::await_request(super::parse(input)?, deps).await?),
        Some("answer") => json!(answer::answer(super::parse(input)?, deps).await?),
        other => {
            return Err(FunctionError::new(
                ErrorType::InvalidRequest,
                format!(
                    "stage {other:?}: expected a CloudFormation custom-resource event (with \
                     RequestType) or stage submit, await or answer"
                ),
            ))
        }
    };
    Ok(out)
}
