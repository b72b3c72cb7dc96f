//! A tenant's Fargate profile (`eks:fargate-profile`, described in
//! `resources::fargate_profile`): `<stem>-t-<tenant>`, selecting the tenant's own namespace only,
//! in the platform's private subnets, with the platform's pod execution role. Created at
//! onboarding, deleted at offboarding (and before the cluster at decommission).
//!
//! EKS allows one profile CREATING or DELETING per cluster, and the platform's profiles and other
//! tenants' may be in flight: the onboarding poll (`ensure` again) goes on with the creation once the
//! cluster is free, so that a tenant onboarded beside others is not refused for waiting its turn.

use serde_json::json;

use super::{tenant_tags, Clients};
use crate::error::FunctionError;
use crate::phases::identity;
use crate::phases::{outputs, Action, PhaseContext};
use crate::resources::fargate_profile::{self, tenant_selectors, Desired, Live};
use crate::resources::Kind;
use crate::spec::TenantSpec;
use crate::store::ResourceRecord;

/// Converges the tenant's profile (or removes one it no longer asks for); true once it is
/// ACTIVE as desired (or gone).
pub(super) async fn ensure(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    tenant: &TenantSpec,
) -> Result<bool, FunctionError> {
    let name = ctx.names.tenant_fargate_profile(&tenant.name);
    let Some(f) = &tenant.fargate else {
        // A tenant that never asked costs no call; one that asked and no longer does loses it.
        if !ctx.is_known(Kind::FargateProfile, &name) {
            return Ok(true);
        }
        return remove(ctx, c, tenant).await;
    };
    let cluster = ctx.names.cluster();
    let resource = format!("{}/{name}", Kind::FargateProfile);
    let Some(role_arn) = pod_role(ctx, c).await? else {
        return Ok(false);
    };
    let subnets = ctx.output(outputs::PRIVATE_SUBNET_IDS)?;
    let desired = Desired::new(
        name.clone(),
        tenant_selectors(tenant, f),
        subnets,
        role_arn,
        tenant_tags(ctx, tenant),
    );
    let platform = ctx.platform_id().to_owned();
    let live = fargate_profile::find(c.eks(), &cluster, &name).await?;
    if let Some(l) = &live {
        fargate_profile::refuse_foreign(l, &platform)?;
        if let Some(e) = fargate_profile::failed(l) {
            return Err(e);
        }
    }
    let Some(live) = live else {
        // Noted (observe); created under ensure and under the onboarding poll, when no other
        // profile of the cluster is in flight.
        if ctx.input.action == Action::Observe {
            ctx.differs(&resource, "exists", json!(true), json!(false));
            return Ok(false);
        }
        if !cluster_busy(c, &cluster, &platform).await? {
            fargate_profile::create(c.eks(), &cluster, &desired).await?;
        }
        return Ok(false);
    };
    if live.in_flight() {
        return Ok(false);
    }
    let mut record = ResourceRecord::new(Kind::FargateProfile, &name, ctx.phase.as_str());
    record.arn = Some(live.arn.clone());
    record.tenant = Some(tenant.name.clone());
    record.tags = desired.tags.clone();
    ctx.record(record).await?;
    repair(ctx, c, &desired, &live).await
}

/// Each difference of a live profile: noted under `observe`; under `ensure` the tags put back,
/// or, for a field EKS cannot change, the profile deleted (made again on a later call). True
/// when there is none.
async fn repair(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    desired: &Desired,
    live: &Live,
) -> Result<bool, FunctionError> {
    let resource = format!("{}/{}", Kind::FargateProfile, desired.name);
    let mut ready = true;
    for d in desired.differences(live) {
        if !ctx.differs(&resource, d.field, d.desired.clone(), d.actual.clone()) {
            ready = false;
            continue;
        }
        if fargate_profile::immutable(&d) {
            let cluster = ctx.names.cluster();
            fargate_profile::delete(c.eks(), &cluster, &desired.name).await?;
            return Ok(false);
        }
        fargate_profile::retag(c.eks(), live, desired).await?;
    }
    Ok(ready)
}

/// The pod execution role's ARN. The identity phase makes it when the platform request uses
/// Fargate; a tenant asking for Fargate on a platform that did not gets it made here (and the
/// tenant phase's decommission deletes it).
async fn pod_role(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
) -> Result<Option<String>, FunctionError> {
    if let Some(arn) = ctx.optional(outputs::FARGATE_POD_ROLE_ARN)? {
        return Ok(Some(arn));
    }
    let tags = crate::naming::tags(&ctx.spec, None, "identity");
    let role = identity::fargate_pods_role(&ctx.target(), tags);
    identity::ensure_role(ctx, c.iam(), &role).await
}

/// Whether a profile of the platform is being created or deleted (EKS would refuse another).
async fn cluster_busy(c: &Clients, cluster: &str, platform: &str) -> Result<bool, FunctionError> {
    let all = fargate_profile::list_ours(c.eks(), cluster, platform).await?;
    Ok(all.iter().any(Live::in_flight))
}

/// Deletes the tenant's profile; true once it is gone (and forgotten).
pub(super) async fn remove(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    tenant: &TenantSpec,
) -> Result<bool, FunctionError> {
    let cluster = ctx.names.cluster();
    let name = ctx.names.tenant_fargate_profile(&tenant.name);
    let platform = ctx.platform_id().to_owned();
    match fargate_profile::find(c.eks(), &cluster, &name).await? {
        None => {
            ctx.forget(Kind::FargateProfile, &name).await?;
            Ok(true)
        }
        Some(l) if !l.is_of(&platform) => {
            tracing::warn!(profile = %name, "not deleted: not this platform's");
            ctx.forget(Kind::FargateProfile, &name).await?;
            Ok(true)
        }
        Some(l) if l.in_flight() => Ok(false),
        Some(_) => {
            let resource = format!("{}/{name}", Kind::FargateProfile);
            // As for creation, the poll (`delete` again) goes on with the deletion too.
            if ctx.input.action == Action::Observe {
                ctx.differs(&resource, "exists", json!(false), json!(true));
            } else if !cluster_busy(c, &cluster, &platform).await? {
                fargate_profile::delete(c.eks(), &cluster, &name).await?;
            }
            Ok(false)
        }
    }
}

/// Decommission, once every tenant is gone: the pod execution role, if a tenant's onboarding
/// made it (the identity phase deletes the one it made).
pub(super) async fn remove_pod_role(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
) -> Result<(), FunctionError> {
    let name = ctx.names.role(crate::naming::ROLE_FARGATE_PODS);
    if ctx.is_known(Kind::IamRole, &name) {
        identity::delete_role(ctx, c.iam(), &name).await?;
    }
    Ok(())
}
