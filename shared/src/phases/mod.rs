//! The phase contract (docs/ARCHITECTURE.md, section 3).
//!
//! Every provisioning phase is one Lambda function taking a [`PhaseInput`] (platform id, request
//! id, [`Action`]) and returning a [`PhaseOutput`]. Payloads stay small: the desired spec and the
//! outputs of earlier phases are read from the state store, and each phase records what it
//! produced there ([`PhaseContext::finish`]) and in the platform's inventory
//! ([`PhaseContext::record`]). [`PhaseContext`] is the one runtime every phase runs on.
//!
//! Rules every phase keeps:
//! - `ensure` finds existing resources by deterministic name or by the `tenantry:*` tags set *at
//!   creation* (TagSpecifications, `Tags` on create), never by memory of a previous run, so a crash
//!   between any two calls converges on re-run with nothing duplicated;
//! - `ensure` compares before it writes: a platform that is already as specified costs no mutating
//!   call;
//! - `delete` treats "already gone" as success;
//! - no phase sleeps: a long operation returns `ready: false` and the state machine polls.

pub mod access;
pub mod addons;
pub mod bootstrap;
pub mod cluster;
pub mod common;
mod context;
pub mod encryption;
pub mod identity;
mod inventory;
pub mod network;
pub mod nodegroups;
pub mod objects;
pub mod observability;
pub mod outputs;
pub mod tenant;

#[cfg(test)]
mod scenarios;

pub use context::PhaseContext;

use crate::error::FunctionError;
use crate::plan::Phase;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// What a phase is asked to do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// Create what is missing, update what differs, never duplicate; `ready` tells whether
    /// everything has settled. A workflow polls a long operation (cluster creation, a node
    /// group's rolling update) by calling `ensure` again: each call takes the next step, and a
    /// call with nothing left to do changes nothing.
    Ensure,
    /// Read actual state and report differences from the desired state; no writes.
    Observe,
    /// Remove what the phase created, in reverse dependency order; "already gone" is success.
    Delete,
}

/// Input of every phase function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhaseInput {
    pub platform_id: String,
    /// The request this run serves (the Step Functions execution name).
    pub request_id: String,
    pub action: Action,
    /// The one item (node group, add-on) this invocation handles, when the workflow fans a phase
    /// out over a Map state; `None` means the whole phase, including removing what the spec no
    /// longer names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// `observe` in a drift check of some components only: the phases to observe. Another
    /// phase answers with nothing observed, without a call (see `functions::run_phase`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Vec<Phase>>,
}

/// One field that differs between desired and actual state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    /// The resource, e.g. `ec2:vpc/vpc-123`.
    pub resource: String,
    pub field: String,
    pub desired: Value,
    pub actual: Value,
    /// The item the difference belongs to when one invocation observed several (the tenants
    /// phase observes every tenant at once); otherwise the output's `item`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
}

impl Drift {
    /// A difference of `field` on `resource`, not tied to an item.
    pub fn new(
        resource: impl Into<String>,
        field: impl Into<String>,
        desired: Value,
        actual: Value,
    ) -> Drift {
        Drift {
            resource: resource.into(),
            field: field.into(),
            desired,
            actual,
            item: None,
        }
    }
}

/// Output of every phase function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhaseOutput {
    pub phase: Phase,
    pub action: Action,
    /// False while a long operation (cluster creation, NAT deletion...) is still running.
    pub ready: bool,
    /// Mutating AWS calls this invocation made (0 when everything was already as specified).
    pub changes: u32,
    /// The item of the input (node group, add-on, tenant), so that the results of a Map say
    /// which item they are about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// What the phase produced (VPC id, subnet ids, key ARNs...), also recorded in the store.
    #[serde(default)]
    pub outputs: BTreeMap<String, Value>,
    /// `observe` only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Drift>,
}

/// Maps an AWS SDK error to a [`FunctionError`] naming the operation.
pub fn aws_error<E, R>(
    operation: &str,
    err: aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> FunctionError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let kind = crate::error::classify_sdk_error(&err);
    let detail = match err.as_service_error() {
        Some(e) => format!(
            "{}: {}",
            e.code().unwrap_or("Unknown"),
            e.message().unwrap_or_default()
        ),
        None => format!("{err:?}"),
    };
    FunctionError::new(kind, format!("{operation} failed: {detail}"))
}
