//! A tenant's objects that its request no longer asks for.
//!
//! The objects Tenantry applies for a tenant are recorded under its name. When the request
//! changes, an object it stops rendering (the two NetworkPolicies of an `allowFrom` rule taken
//! out, one of them in the peer's namespace) would otherwise stay in the cluster, and keep
//! traffic open that the tenant closed. [`prune`] removes them under `ensure` and `delete`, and
//! reports them under `observe`.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::error::FunctionError;
use crate::phases::objects::{self, object_id, stub};
use crate::phases::PhaseContext;
use crate::resources::Kind;
use crate::spec::TenantSpec;

/// Deletes (or, in `observe`, reports) every object recorded for `tenant` that is not among
/// `rendered`, the objects its request asks for. The namespace itself is never pruned here:
/// offboarding removes it, on its own path.
pub(super) async fn prune(
    ctx: &mut PhaseContext<'_>,
    tenant: &TenantSpec,
    rendered: &[Value],
) -> Result<(), FunctionError> {
    let wanted: BTreeSet<String> = rendered.iter().map(object_id).collect();
    let stale: Vec<(Kind, String)> = ctx
        .recorded_for(Some(&tenant.name))
        .into_iter()
        .filter(|(kind, id)| {
            kind.info().k8s_kind.is_some() && *kind != Kind::Namespace && !wanted.contains(id)
        })
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    let client = ctx.kube_client().await?;
    for (kind, id) in stale {
        let Some(object) = stub(&id) else {
            continue;
        };
        objects::remove(ctx, &client, &object).await?;
        ctx.forget(kind, &id).await?;
    }
    Ok(())
}
