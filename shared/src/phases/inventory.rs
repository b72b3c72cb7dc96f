//! The phase's slice of the platform's inventory, read once per invocation, so that a resource
//! found again (say, after a crash between its creation and its recording) is recorded without
//! rewriting the records that are already there. Only [`super::PhaseContext`] holds one.

use std::collections::BTreeMap;

use crate::error::FunctionError;
use crate::plan::Phase;
use crate::resources::Kind;
use crate::store::{ResourceRecord, Store};

pub(super) struct Inventory {
    /// `(kind, id)` → the tenant the record belongs to, if any.
    known: BTreeMap<(String, String), Option<String>>,
}

impl Inventory {
    /// The records `phase` made for `platform`.
    pub async fn load(store: &Store, platform: &str, phase: Phase) -> Result<Self, FunctionError> {
        let known = store
            .list_resources(platform)
            .await?
            .into_iter()
            .filter(|r| r.phase == phase.as_str())
            .map(|r| ((r.resource_type, r.id), r.tenant))
            .collect();
        Ok(Inventory { known })
    }

    pub fn contains(&self, kind: Kind, id: &str) -> bool {
        self.known.contains_key(&(kind.into(), id.to_owned()))
    }

    /// The ids of the records of `kind` belonging to `tenant` (None: to the platform itself).
    pub fn ids_of(&self, kind: Kind, tenant: Option<&str>) -> Vec<String> {
        self.known
            .iter()
            .filter(|((k, _), t)| k == kind.as_str() && t.as_deref() == tenant)
            .map(|((_, id), _)| id.clone())
            .collect()
    }

    /// The `(kind, id)` of every record belonging to `tenant` (None: to the platform itself), in
    /// the store's order, skipping kinds the catalogue no longer knows.
    pub fn of_tenant(&self, tenant: Option<&str>) -> Vec<(Kind, String)> {
        self.known
            .iter()
            .filter(|(_, t)| t.as_deref() == tenant)
            .filter_map(|((kind, id), _)| Some((Kind::parse(kind)?, id.clone())))
            .collect()
    }

    /// Records a resource unless it is recorded already.
    pub async fn put(
        &mut self,
        store: &Store,
        platform: &str,
        record: ResourceRecord,
    ) -> Result<(), FunctionError> {
        let key = (record.resource_type.clone(), record.id.clone());
        if self.known.contains_key(&key) {
            return Ok(());
        }
        let tenant = record.tenant.clone();
        store.put_resource(platform, &record).await?;
        self.known.insert(key, tenant);
        Ok(())
    }

    /// Removes a resource from the inventory (no call when it is not recorded).
    pub async fn forget(
        &mut self,
        store: &Store,
        platform: &str,
        kind: Kind,
        id: &str,
    ) -> Result<(), FunctionError> {
        if self.known.remove(&(kind.into(), id.to_owned())).is_some() {
            store.delete_resource(platform, kind.as_str(), id).await?;
        }
        Ok(())
    }

    /// Forgets every remaining record of the phase (after a complete delete).
    pub async fn forget_all(&mut self, store: &Store, platform: &str) -> Result<(), FunctionError> {
        for (kind, id) in std::mem::take(&mut self.known).into_keys() {
            store.delete_resource(platform, &kind, &id).await?;
        }
        Ok(())
    }
}
