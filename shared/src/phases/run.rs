//! `Run`: one invocation of a phase that compares before it writes. It wraps the
//! [`PhaseContext`] (clients that count their own changes, the store, the spec and status, the
//! action) with the account, the phase's slice of the inventory read once, and the differences
//! found. [`Run::differs`] is where the action's meaning lives: under `ensure` and `delete` a
//! difference is repaired, under `observe` it is reported and nothing is written
//! ([`Run::record`] and [`Run::finish`] write nothing either).
//!
//! Encryption, identity, observability and tenants run on it; network, cluster, nodegroups,
//! addons, bootstrap and access still use [`PhaseContext`] with an [`Inventory`] of their own.

use std::collections::BTreeMap;

use serde_json::Value;

use super::common::Inventory;
use super::{Action, Drift, PhaseContext, PhaseOutput};
use crate::error::FunctionError;
use crate::policies::Target;
use crate::resources::Kind;
use crate::store::ResourceRecord;

/// One invocation: the context, the account, what the inventory already lists, and (for
/// `observe`) the differences found instead of written.
pub(crate) struct Run<'a> {
    pub ctx: PhaseContext<'a>,
    pub account: String,
    inventory: Inventory,
    pub drift: Vec<Drift>,
    /// The item differences are noted under, when one invocation observes several (every
    /// tenant of the platform).
    pub observing: Option<String>,
    /// Reads made once for many items (see [`Prefetched`]).
    pub prefetched: Prefetched,
}

/// Reads made once per invocation instead of once per item, when one `observe` covers many
/// items (every tenant): the account's roles with their policies and tags
/// ([`super::identity::all_roles`]), and the cluster's pod identity associations. `None`: each
/// read goes to AWS as it is needed.
#[derive(Default)]
pub(crate) struct Prefetched {
    pub roles: Option<BTreeMap<String, super::identity::RoleView>>,
    /// `(namespace, service account)` → association id.
    pub pod_identities: Option<BTreeMap<(String, String), String>>,
}

impl<'a> Run<'a> {
    pub async fn new(ctx: PhaseContext<'a>) -> Result<Run<'a>, FunctionError> {
        let account = ctx.target.account_id().await?;
        let inventory = Inventory::load(&ctx).await?;
        Ok(Run {
            ctx,
            account,
            inventory,
            drift: Vec::new(),
            observing: None,
            prefetched: Prefetched::default(),
        })
    }

    /// Whether this run writes (`ensure`, `delete`) or only reports (`observe`).
    pub fn writes(&self) -> bool {
        matches!(self.ctx.input.action, Action::Ensure | Action::Delete)
    }

    pub fn target(&self) -> Target<'_> {
        Target::new(&self.ctx.spec, &self.account, &self.ctx.spec.region)
    }

    /// Notes a difference; returns whether the caller should repair it now.
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

    /// Records a resource in the inventory unless it is already listed.
    pub async fn record(&mut self, record: ResourceRecord) -> Result<(), FunctionError> {
        if !self.writes() {
            return Ok(());
        }
        self.inventory.put(&self.ctx, record).await
    }

    /// Whether the inventory (as read at the start of the run, plus this run's records) lists it.
    pub fn is_known(&self, kind: Kind, id: &str) -> bool {
        self.inventory.contains(kind, id)
    }

    /// The records belonging to `tenant`, as `(kind, id)`; a kind the catalogue no longer knows
    /// is skipped.
    pub fn recorded_for(&self, tenant: &str) -> Vec<(Kind, String)> {
        self.inventory
            .of_tenant(tenant)
            .into_iter()
            .filter_map(|(kind, id)| Some((Kind::parse(&kind)?, id)))
            .collect()
    }

    /// The ids of the records of `kind` belonging to `tenant` (None: to the platform itself).
    pub fn recorded(&self, kind: Kind, tenant: Option<&str>) -> Vec<String> {
        self.inventory.ids_of(kind, tenant)
    }

    /// Forgets a resource if the inventory lists it.
    pub async fn forget(&mut self, kind: Kind, id: &str) -> Result<(), FunctionError> {
        self.inventory.forget(&self.ctx, kind, id).await
    }

    /// Ends the invocation: `ensure`/`delete` record the phase; `observe` only reports
    /// (ready when nothing differs).
    pub async fn finish(
        self,
        ready: bool,
        outputs: BTreeMap<String, Value>,
    ) -> Result<PhaseOutput, FunctionError> {
        if self.writes() {
            return self.ctx.finish(ready, outputs).await;
        }
        let mut out = self.ctx.observed(outputs, self.drift);
        out.ready &= ready;
        Ok(out)
    }
}
