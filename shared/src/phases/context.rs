//! [`PhaseContext`]: the one runtime every phase invocation runs on. It is loaded once per
//! invocation and carries the clients (built once per cold start in [`Deps`], scoped to the
//! platform's region and counting their own changes), the store, the spec and status, the
//! phase's slice of the inventory, the mode ([`Action`]) and the differences found.
//!
//! The contract, stated once:
//! - `ensure` converges: [`PhaseContext::differs`] says "repair it now";
//! - `observe` walks the same resources and reports: [`PhaseContext::differs`] notes a
//!   difference instead, [`PhaseContext::record`] and [`PhaseContext::forget`] write nothing,
//!   and the AWS clients, the store and the Kubernetes client refuse every write before it is
//!   sent, so a phase cannot write by mistake;
//! - `delete` removes, with "already gone" counting as success;
//! - [`PhaseContext::finish`] records the phase (`ensure`, `delete`) or returns the differences
//!   (`observe`); changes are counted by the clients, never by hand.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::inventory::Inventory;
use super::outputs::{self, Output};
use super::{Action, Drift, PhaseInput, PhaseOutput};
use crate::aws::changes::ChangeCounter;
use crate::aws::Clients;
use crate::deps::Deps;
use crate::error::{ErrorType, FunctionError};
use crate::naming::{self, Names};
use crate::plan::Phase;
use crate::policies::Target;
use crate::resources::Kind;
use crate::spec::PlatformSpec;
use crate::store::{PhaseState, PhaseStatus, PlatformStatus, ResourceRecord, Store};

/// One phase invocation: everything it works from, what it has recorded, what it found.
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
    /// The state store; for `observe`, on a client that refuses every write before it is sent.
    pub store: Store,
    pub phase: Phase,
    pub input: PhaseInput,
    pub spec: PlatformSpec,
    pub names: Names,
    /// The platform's status record: outputs of earlier phases.
    pub status: PlatformStatus,
    /// The account the platform lives in ([`Self::target`]'s).
    pub account: String,
    inventory: Inventory,
    /// `observe`: the differences found instead of repaired.
    pub drift: Vec<Drift>,
    /// The item differences are noted under, when one invocation observes several (every
    /// tenant of the platform).
    pub observing: Option<String>,
    /// Reads made once for many items (see [`Prefetched`]).
    pub(crate) prefetched: Prefetched,
}

/// Reads made once per invocation instead of once per item, when one `observe` covers many
/// items (every tenant): the account's roles with their policies and tags
/// ([`crate::resources::role::find_all`]), and the cluster's pod identity associations. `None`: each
/// read goes to AWS as it is needed.
#[derive(Default)]
pub(crate) struct Prefetched {
    pub roles: Option<BTreeMap<String, crate::resources::role::Live>>,
    /// `(namespace, service account)` → association id.
    pub pod_identities: Option<BTreeMap<(String, String), String>>,
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
        PhaseContext::new(phase, input, deps, target, spec, status).await
    }

    /// A context from a spec and status already at hand (what [`PhaseContext::load`] reads),
    /// working in `target`'s account; reads the phase's inventory records.
    pub async fn new(
        phase: Phase,
        input: PhaseInput,
        deps: &'a Deps,
        target: Deps,
        spec: PlatformSpec,
        status: PlatformStatus,
    ) -> Result<Self, FunctionError> {
        let read_only = input.action == Action::Observe;
        let aws_changes = ChangeCounter::default();
        let store = match read_only {
            true => Store::from_deps(deps).read_only(),
            false => Store::from_deps(deps),
        };
        let inventory = Inventory::load(&store, &input.platform_id, phase).await?;
        let account = target.account_id().await?;
        Ok(PhaseContext {
            deps,
            clients: target
                .clients
                .scoped(&spec.region, read_only)
                .counting(&aws_changes),
            target,
            aws_changes,
            cluster_writes: 0,
            store,
            phase,
            names: Names::new(&spec),
            spec,
            status,
            input,
            account,
            inventory,
            drift: Vec::new(),
            observing: None,
            prefetched: Prefetched::default(),
        })
    }

    /// Whether this invocation writes (`ensure`, `delete`) or only reports (`observe`).
    pub fn writes(&self) -> bool {
        matches!(self.input.action, Action::Ensure | Action::Delete)
    }

    /// The platform's account and region, for rendering policies and ARNs.
    pub fn target(&self) -> Target<'_> {
        Target::new(&self.spec, &self.account, &self.spec.region)
    }

    /// Notes a difference; returns whether the caller should repair it now (`ensure`,
    /// `delete`). Under `observe` it is kept for [`Self::finish`] and nothing is repaired.
    pub fn differs(&mut self, resource: &str, field: &str, desired: Value, actual: Value) -> bool {
        if self.writes() {
            return true;
        }
        self.drift.push(Drift {
            item: self.observing.clone(),
            resource: resource.to_owned(),
            field: field.to_owned(),
            desired,
            actual,
        });
        false
    }

    /// The fields of `resource` to repair now: every difference under `ensure`, none under
    /// `observe` (each is noted, as [`Self::differs`] does).
    pub fn repairs(
        &mut self,
        resource: &str,
        differences: Vec<crate::resources::Difference>,
    ) -> Vec<&'static str> {
        let mut fields = Vec::new();
        for d in differences {
            if self.differs(resource, d.field, d.desired, d.actual) {
                fields.push(d.field);
            }
        }
        fields
    }

    /// Whether a live resource found under the platform's name is the platform's (`tags`: its
    /// tags, `what`: how an error names it). Another owner's is a difference of the
    /// `tenantry:platform` tag: `observe` notes it (false: walk on, leave it alone), `ensure`
    /// and `delete` fail with `error_type`, since Tenantry neither adopts nor deletes what it
    /// did not make.
    pub fn owned(
        &mut self,
        resource: &str,
        tags: Option<&std::collections::HashMap<String, String>>,
        error_type: ErrorType,
        what: &str,
    ) -> Result<bool, FunctionError> {
        let tag = naming::TAG_PLATFORM;
        let owner = tags.and_then(|t| t.get(tag)).map(String::as_str);
        let platform = self.platform_id().to_owned();
        if owner == Some(platform.as_str()) {
            return Ok(true);
        }
        if !self.differs(
            resource,
            &format!("tags.{tag}"),
            json!(platform),
            json!(owner),
        ) {
            return Ok(false);
        }
        Err(FunctionError::new(
            error_type,
            format!(
                "{what} exists but is not tagged {tag}={platform} (found {owner:?}); Tenantry \
                 neither adopts nor deletes it"
            ),
        ))
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

    /// Records a resource in the inventory unless it is already listed (`observe`: nothing).
    pub async fn record(&mut self, record: ResourceRecord) -> Result<(), FunctionError> {
        if !self.writes() {
            return Ok(());
        }
        let platform = &self.input.platform_id;
        self.inventory.put(&self.store, platform, record).await
    }

    /// Records a resource of this phase, with its tags and attributes (null: none).
    pub async fn record_new(
        &mut self,
        kind: Kind,
        id: &str,
        tags: BTreeMap<String, String>,
        attributes: Value,
    ) -> Result<(), FunctionError> {
        let mut record = ResourceRecord::new(kind, id, self.phase.as_str());
        record.tags = tags;
        record.attributes = (!attributes.is_null()).then_some(attributes);
        self.record(record).await
    }

    /// Whether the inventory (as read at the start, plus this invocation's records) lists it.
    pub fn is_known(&self, kind: Kind, id: &str) -> bool {
        self.inventory.contains(kind, id)
    }

    /// The records belonging to `tenant` (None: to the platform itself), as `(kind, id)`.
    pub fn recorded_for(&self, tenant: Option<&str>) -> Vec<(Kind, String)> {
        self.inventory.of_tenant(tenant)
    }

    /// The ids of the records of `kind` belonging to `tenant` (None: to the platform itself).
    pub fn recorded(&self, kind: Kind, tenant: Option<&str>) -> Vec<String> {
        self.inventory.ids_of(kind, tenant)
    }

    /// Forgets a resource if the inventory lists it (`observe`: nothing).
    pub async fn forget(&mut self, kind: Kind, id: &str) -> Result<(), FunctionError> {
        if !self.writes() {
            return Ok(());
        }
        let platform = &self.input.platform_id;
        self.inventory.forget(&self.store, platform, kind, id).await
    }

    /// Forgets every remaining record of the phase, after a complete delete.
    pub async fn forget_all(&mut self) -> Result<(), FunctionError> {
        if !self.writes() {
            return Ok(());
        }
        let platform = &self.input.platform_id;
        self.inventory.forget_all(&self.store, platform).await
    }

    /// Ends the invocation. `ensure` and `delete` record the phase's state and outputs in the
    /// store; `observe` only reports what it found (ready when nothing differs and `ready`).
    pub async fn finish(
        &mut self,
        ready: bool,
        outputs: BTreeMap<String, Value>,
    ) -> Result<PhaseOutput, FunctionError> {
        if !self.writes() {
            // `observe`: the differences `differs` noted; ready when there are none.
            let drift = std::mem::take(&mut self.drift);
            return Ok(PhaseOutput {
                phase: self.phase,
                action: Action::Observe,
                ready: ready && drift.is_empty(),
                changes: 0,
                item: self.input.item.clone(),
                outputs,
                drift,
            });
        }
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
