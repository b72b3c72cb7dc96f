//! Traffic between tenants (`allowFrom`): which rules are in force, and removing them.
//!
//! A rule of tenant U naming tenant T is two NetworkPolicies that belong to U
//! (`kubernetes::tenant_manifests`): ingress into U's namespace from T's, and egress from T's
//! namespace to U's. They are in force while T is on the platform: a rule naming a tenant that
//! is not (offboarded, or never onboarded) is left out of U's objects, and offboarding T removes
//! every rule that names it, in every other tenant's namespace.

use std::collections::BTreeSet;

use serde_json::Value;

use super::remaining_tenants;
use crate::error::FunctionError;
use crate::kubernetes;
use crate::phases::bootstrap::{object_id, object_kind};
use crate::phases::Run;
use crate::spec::TenantSpec;

/// The names of the tenants on the platform: recorded and not offboarded, or in its spec.
pub(super) async fn present(run: &Run<'_>) -> Result<BTreeSet<String>, FunctionError> {
    let (tenants, _) = remaining_tenants(run).await?;
    Ok(tenants.into_iter().map(|t| t.name).collect())
}

/// Leaves out the policies of rules naming a tenant that is not `present`.
pub(super) fn in_force(manifests: Vec<Value>, present: &BTreeSet<String>) -> Vec<Value> {
    manifests
        .into_iter()
        .filter(|m| kubernetes::peer_of(m).is_none_or(|peer| present.contains(peer)))
        .collect()
}

/// Offboarding `tenant`: deletes its own policies in other tenants' namespaces and every other
/// tenant's policies naming it, and forgets them.
pub(super) async fn remove(run: &mut Run<'_>, tenant: &TenantSpec) -> Result<(), FunctionError> {
    let (others, _) = remaining_tenants(run).await?;
    let spec = run.ctx.spec.clone();
    let own = kubernetes::tenant_manifests(&spec, tenant, None)
        .into_iter()
        .filter(|m| {
            kubernetes::peer_of(m).is_some() && m["metadata"]["namespace"] != tenant.name.as_str()
        });
    let naming_it = others
        .iter()
        .filter(|o| o.name != tenant.name)
        .flat_map(|o| kubernetes::tenant_manifests(&spec, o, None))
        .filter(|m| kubernetes::peer_of(m) == Some(tenant.name.as_str()));
    let doomed: Vec<Value> = own.chain(naming_it).collect();
    if doomed.is_empty() {
        return Ok(());
    }
    let client = run.ctx.kube_client().await?;
    for manifest in &doomed {
        if kubernetes::delete(&client, manifest).await? {
            run.ctx.cluster_writes(1);
        }
        run.forget(object_kind(manifest)?, &object_id(manifest))
            .await?;
    }
    Ok(())
}
