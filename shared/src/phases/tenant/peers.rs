//! Traffic between tenants (`allowFrom`): which rules are in force, and removing them.
//!
//! A rule of tenant U naming tenant T is two NetworkPolicies that belong to U
//! (`kubernetes::tenant_manifests`): ingress into U's namespace from T's, and egress from T's
//! namespace to U's. They are in force while T is `Active` or being onboarded ([`present`]), and
//! the egress side goes only into a namespace Tenantry made for T ([`applicable`]); offboarding
//! T removes every rule that names it, in every other tenant's namespace ([`remove`]).

use std::collections::BTreeMap;

use serde_json::Value;

use super::{remaining_tenants, tenants_in};
use crate::error::FunctionError;
use crate::kubernetes;
use crate::phases::objects::{object_id, object_kind};
use crate::phases::PhaseContext;
use crate::spec::TenantSpec;
use crate::store::TenantState;

/// The tenants whose `allowFrom` rules are in force, by name: `Active` or `Onboarding` (being
/// built), and the spec's tenants with no record yet. A rule naming a tenant that is requested,
/// failed, leaving or gone waits: its policies are not applied.
pub(super) async fn present(
    ctx: &PhaseContext<'_>,
) -> Result<BTreeMap<String, TenantSpec>, FunctionError> {
    let in_force = |s| matches!(s, TenantState::Active | TenantState::Onboarding);
    Ok(tenants_in(ctx, in_force).await?.0)
}

/// What of `manifests` (one tenant's) to converge now, and whether some wait: a policy of a rule
/// whose peer is not `present` is left out; one that goes into the peer's namespace goes only
/// into a namespace Tenantry made for that peer (a namespace of another owner is never
/// written), and waits while that namespace does not exist yet (the caller reports not ready,
/// so the workflow polls).
pub(super) async fn applicable(
    ctx: &PhaseContext<'_>,
    manifests: Vec<Value>,
    present: &BTreeMap<String, TenantSpec>,
) -> Result<(Vec<Value>, bool), FunctionError> {
    let mut out = Vec::new();
    let mut waiting = false;
    for m in manifests {
        let Some(peer) = kubernetes::peer_of(&m).map(str::to_owned) else {
            out.push(m);
            continue;
        };
        let Some(peer_spec) = present.get(&peer) else {
            continue;
        };
        if m["metadata"]["namespace"] != peer.as_str() {
            out.push(m);
            continue;
        }
        let client = ctx.kube_client().await?;
        match super::live_namespace(&client, peer_spec).await? {
            None => waiting = true,
            Some(live) => match kubernetes::foreign_namespace(&ctx.spec, peer_spec, &live) {
                None => out.push(m),
                Some(why) => tracing::warn!(%peer, "allowFrom policy not applied: {why}"),
            },
        }
    }
    Ok((out, waiting))
}

/// Offboarding `tenant`: deletes its own policies in other tenants' namespaces and every other
/// tenant's policies naming it, and forgets them.
pub(super) async fn remove(
    ctx: &mut PhaseContext<'_>,
    tenant: &TenantSpec,
) -> Result<(), FunctionError> {
    let (others, _) = remaining_tenants(ctx).await?;
    let spec = ctx.spec.clone();
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
    let client = ctx.kube_client().await?;
    for manifest in &doomed {
        if kubernetes::delete(&client, manifest).await? {
            ctx.cluster_writes(1);
        }
        ctx.forget(object_kind(manifest)?, &object_id(manifest))
            .await?;
    }
    Ok(())
}
