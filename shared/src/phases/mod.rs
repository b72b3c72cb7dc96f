//! The phase contract (docs/ARCHITECTURE.md, section 3).
//!
//! Every provisioning phase is one Lambda function taking a [`PhaseInput`] (platform id, request
//! id, [`Action`]) and returning a [`PhaseOutput`]. Payloads stay small: the desired spec and the
//! outputs of earlier phases are read from the state store, and each phase records what it
//! produced there ([`PhaseContext::finish`]) and in the platform's inventory
//! ([`PhaseContext::record_resource`]).
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
pub mod encryption;
pub mod identity;
pub mod network;
pub mod nodegroups;
pub mod observability;
pub mod outputs;
mod run;
pub mod tenant;

#[cfg(test)]
mod scenarios;

pub(crate) use run::Run;

use crate::aws::changes::ChangeCounter;
use crate::aws::Clients;
use crate::deps::Deps;
use crate::error::{ErrorType, FunctionError};
use crate::naming::{self, Names};
use crate::plan::Phase;
use crate::resources::Kind;
use crate::spec::PlatformSpec;
use crate::store::{PhaseState, PhaseStatus, PlatformStatus, ResourceRecord, Store};
use outputs::Output;
use serde::de::DeserializeOwned;
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

/// Everything a phase works from, loaded once per invocation.
pub struct PhaseContext<'a> {
    /// Tenantry's own dependencies (the state store's table).
    pub deps: &'a Deps,
    /// The platform's account: the same as [`Self::deps`], or a session of its
    /// `targetRoleArn` ([`Deps::for_platform`]). Clients, identity and role boundary come from it.
    pub target: Deps,
    /// The AWS clients in the platform's region; read-only for `observe` (a call that could
    /// change something fails before it is sent). They count their own changes.
    pub clients: Clients,
    /// The successful mutating calls made through [`Self::clients`].
    aws_changes: ChangeCounter,
    /// Writes to the cluster (objects applied or deleted), counted by the phase.
    cluster_writes: u32,
    pub store: Store,
    pub phase: Phase,
    pub input: PhaseInput,
    pub spec: PlatformSpec,
    pub names: Names,
    /// The platform's status record: outputs of earlier phases.
    pub status: PlatformStatus,
}

impl<'a> PhaseContext<'a> {
    /// Loads the platform's spec and status from the store.
    pub async fn load(
        phase: Phase,
        input: PhaseInput,
        deps: &'a Deps,
    ) -> Result<Self, FunctionError> {
        let store = Store::from_deps(deps);
        let spec = store.get_spec(&input.platform_id).await?.ok_or_else(|| {
            FunctionError::new(
                ErrorType::InvalidRequest,
                format!("platform {:?} has no recorded spec", input.platform_id),
            )
        })?;
        let spec: PlatformSpec = serde_json::from_value(spec.value).map_err(|e| {
            FunctionError::new(
                ErrorType::Terminal,
                format!(
                    "recorded spec of {:?} does not parse: {e}",
                    input.platform_id
                ),
            )
        })?;
        let status = store
            .get_status(&input.platform_id)
            .await?
            .map(|v| v.value)
            .unwrap_or_else(|| PlatformStatus::new(crate::store::LifecycleState::Requested));
        let target = deps.for_platform(&spec, phase.as_str()).await?;
        Ok(PhaseContext::new(phase, input, deps, target, spec, status))
    }

    /// A context from a spec and status already at hand (what [`PhaseContext::load`] reads),
    /// working in `target`'s account.
    pub fn new(
        phase: Phase,
        input: PhaseInput,
        deps: &'a Deps,
        target: Deps,
        spec: PlatformSpec,
        status: PlatformStatus,
    ) -> Self {
        let read_only = input.action == Action::Observe;
        let aws_changes = ChangeCounter::default();
        PhaseContext {
            deps,
            clients: target
                .clients
                .scoped(&spec.region, read_only)
                .counting(&aws_changes),
            target,
            aws_changes,
            cluster_writes: 0,
            store: Store::from_deps(deps),
            phase,
            names: Names::new(&spec),
            spec,
            status,
            input,
        }
    }

    pub fn platform_id(&self) -> &str {
        &self.input.platform_id
    }

    /// The AWS configuration in the platform's region, which signs the cluster's tokens (phases
    /// call AWS through [`PhaseContext::clients`]). For `observe` it is read-only, like the
    /// clients.
    pub fn aws(&self) -> aws_config::SdkConfig {
        let aws = self
            .target
            .aws
            .to_builder()
            .region(aws_config::Region::new(self.spec.region.clone()))
            .build();
        match self.input.action {
            Action::Observe => crate::aws::read_only::read_only(&aws),
            _ => aws,
        }
    }

    /// A Kubernetes client on the platform's cluster, from the endpoint and CA the cluster phase
    /// recorded (EKS token auth over https; plain http to the local stack's double). For
    /// `observe` it refuses every write before it is sent, as [`Self::aws`] does.
    pub async fn kube_client(&self) -> Result<kube::Client, FunctionError> {
        let endpoint = self.output(outputs::CLUSTER_ENDPOINT)?;
        let ca = self.optional(outputs::CERTIFICATE_AUTHORITY)?;
        let (aws, cluster) = (self.aws(), self.names.cluster());
        match self.input.action {
            Action::Observe => {
                crate::kubernetes::connect_read_only(&aws, &cluster, &endpoint, ca.as_deref()).await
            }
            _ => crate::kubernetes::connect(&aws, &cluster, &endpoint, ca.as_deref()).await,
        }
    }

    /// Key of this invocation's entry in the status record's phases: `nodegroups`, or
    /// `nodegroups/critical` for one item, so parallel items do not overwrite each other.
    pub fn phase_key(&self) -> String {
        match &self.input.item {
            Some(item) => format!("{}/{item}", self.phase.as_str()),
            None => self.phase.as_str().to_owned(),
        }
    }

    /// The tags every resource of `component` carries (tenantry:* plus the user's cost tags).
    pub fn tags(&self, component: &str) -> BTreeMap<String, String> {
        naming::tags(&self.spec, None, component)
    }

    /// An output of an earlier phase, e.g. [`outputs::VPC_ID`]; a missing one is a terminal
    /// error naming it.
    pub fn output<T: DeserializeOwned>(&self, output: Output<T>) -> Result<T, FunctionError> {
        self.optional(output)?.ok_or_else(|| {
            FunctionError::new(
                ErrorType::Terminal,
                format!(
                    "output {:?} of an earlier phase is missing for platform {:?}",
                    output.key,
                    self.platform_id()
                ),
            )
        })
    }

    /// An output of an earlier phase, if it has been recorded (and is not null).
    pub fn optional<T: DeserializeOwned>(
        &self,
        output: Output<T>,
    ) -> Result<Option<T>, FunctionError> {
        output.get(&self.status.outputs).map_err(|e| {
            FunctionError::new(
                ErrorType::Terminal,
                format!("output {:?} has the wrong shape: {e}", output.key),
            )
        })
    }

    /// Counts writes to the cluster (AWS calls count themselves, see [`ChangeCounter`]).
    pub fn cluster_writes(&mut self, writes: usize) {
        self.cluster_writes += u32::try_from(writes).unwrap_or(u32::MAX);
    }

    /// What this invocation changed so far: successful mutating AWS calls and cluster writes.
    pub fn changes(&self) -> u32 {
        self.aws_changes.get() + self.cluster_writes
    }

    /// Records a resource in the platform's inventory.
    pub async fn record_resource(&self, record: ResourceRecord) -> Result<(), FunctionError> {
        self.store.put_resource(self.platform_id(), &record).await?;
        Ok(())
    }

    /// Removes a resource from the inventory (after deleting it).
    pub async fn forget_resource(&self, kind: Kind, id: &str) -> Result<(), FunctionError> {
        self.store
            .delete_resource(self.platform_id(), kind.as_str(), id)
            .await?;
        Ok(())
    }

    /// The output of an `observe`: what it found and the differences, ready when there are
    /// none, no change (it cannot write).
    pub fn observed(&self, outputs: BTreeMap<String, Value>, drift: Vec<Drift>) -> PhaseOutput {
        PhaseOutput {
            phase: self.phase,
            action: Action::Observe,
            ready: drift.is_empty(),
            changes: 0,
            item: self.input.item.clone(),
            outputs,
            drift,
        }
    }

    /// Records the phase's state and outputs in the store and builds the output.
    pub async fn finish(
        &self,
        ready: bool,
        outputs: BTreeMap<String, Value>,
    ) -> Result<PhaseOutput, FunctionError> {
        let mut status = PhaseStatus::new(if ready {
            PhaseState::Succeeded
        } else {
            PhaseState::Running
        });
        status.finished_at = ready.then(|| self.store.now());
        status.message = Some(format!(
            "{:?}: {} change(s)",
            self.input.action,
            self.changes()
        ));
        self.store
            .record_phase(self.platform_id(), &self.phase_key(), &status, &outputs)
            .await?;
        Ok(PhaseOutput {
            phase: self.phase,
            action: self.input.action,
            ready,
            changes: self.changes(),
            item: self.input.item.clone(),
            outputs,
            drift: Vec::new(),
        })
    }
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
