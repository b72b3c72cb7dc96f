//! Admission: under the lease, checks a request against what is stored and records it, so that
//! the execution can start: the spec and lifecycle state of a platform request ([`platform`]),
//! the tenant record of a tenant request ([`tenant`], with the onboarding checks of
//! [`conflicts`]), a drift check's policy ([`drift`]); a compliance sweep ([`compliance`], no
//! lease) is only checked.

mod compliance;
mod conflicts;
mod drift;
mod platform;
mod tenant;

use super::envelope::{Body, Request};
use super::Intake;
use crate::error::{ErrorType, FunctionError};
use crate::events::{EventError, RequestKind};
use crate::store::LifecycleState;
use crate::validate::Issue;
use serde_json::{Map, Value};

/// Why admission stopped: a refusal to answer (with the validation issues, if any), or an error.
pub(in crate::functions::intake) enum Refusal {
    Rejected(EventError, Vec<Issue>),
    Error(FunctionError),
}

impl From<FunctionError> for Refusal {
    fn from(e: FunctionError) -> Self {
        Refusal::Error(e)
    }
}

/// A refusal of an invalid request.
fn invalid(message: String) -> Refusal {
    Refusal::Rejected(
        EventError::new(ErrorType::InvalidRequest, message),
        Vec::new(),
    )
}

/// A refusal of a request that conflicts with another one.
fn conflict(message: String) -> Refusal {
    Refusal::Rejected(EventError::new(ErrorType::Conflict, message), Vec::new())
}

/// A refusal listing `issues` (the message names the first, its field and rule).
fn refused(error_type: ErrorType, issues: Vec<Issue>) -> Refusal {
    let message = super::detail::summary(&issues);
    Refusal::Rejected(EventError::new(error_type, message), issues)
}

impl Intake<'_> {
    /// Checks and records the request: the spec and lifecycle state, or the tenant record.
    /// Returns what the execution's input carries beyond the request's own fields.
    pub(in crate::functions::intake) async fn admit(
        &self,
        request: &Request,
    ) -> Result<Map<String, Value>, Refusal> {
        match (&request.body, request.kind) {
            (Body::Tenant(detail), RequestKind::TenantOnboarding) => {
                self.admit_onboarding(request, detail).await?
            }
            (Body::Tenant(detail), _) => self.admit_offboarding(request, detail).await?,
            (Body::Platform { spec }, _) => self.admit_platform(request, spec.as_deref()).await?,
            (Body::Compliance, _) => self.admit_compliance(request).await?,
            // The fleet sweep admits each platform's request as it sends it.
            (Body::Fleet { kind, remediate }, _) => {
                let mut input = Map::new();
                input.insert("kind".to_owned(), serde_json::json!(kind));
                if let Some(remediate) = remediate {
                    input.insert("remediate".to_owned(), serde_json::json!(remediate));
                }
                return Ok(input);
            }
            (
                Body::Drift {
                    remediate,
                    components,
                },
                _,
            ) => {
                return self
                    .admit_drift(request, remediate.as_ref(), components.as_deref())
                    .await
            }
        }
        Ok(Map::new())
    }

    /// The platform's lifecycle state (`None`: no status recorded).
    async fn lifecycle(&self, platform: &str) -> Result<Option<LifecycleState>, FunctionError> {
        Ok(self
            .store
            .get_status(platform)
            .await?
            .map(|s| s.value.state))
    }
}
