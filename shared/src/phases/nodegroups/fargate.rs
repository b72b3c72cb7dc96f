//! The platform's Fargate profiles, in the node groups phase: the request's `fargate.profiles`
//! (`<stem>-p-<name>`) and, with `fargate.coreDns`, CoreDNS's (`<stem>-coredns`, selecting
//! `kube-system` pods labelled `k8s-app: kube-dns`). Tenants' profiles belong to the tenant phase
//! (see `phases::tenant::fargate`); this module never touches them.
//!
//! One step per invocation (EKS allows one profile CREATING or DELETING per cluster): ensure
//! and observe both call [`converge`] (observe only reports), which waits while a profile of the platform is in flight,
//! otherwise creates the first missing profile, re-creates (deletes) the first one whose
//! immutable fields differ, or deletes the first one the request dropped; ready once none of
//! those is left. The provision workflow runs it as the node groups Map's [`FARGATE_ITEM`],
//! so the CoreDNS profile exists before the add-ons that need nodes (CoreDNS) are created.

use std::collections::BTreeSet;

use serde_json::json;

use super::COMPONENT;
use crate::aws::Clients;
use crate::error::FunctionError;
use crate::naming::TAG_COMPONENT;
use crate::phases::{outputs, PhaseContext};
use crate::resources::fargate_profile::{self, Desired, Live, Step};
use crate::resources::Kind;

pub use crate::plan::FARGATE_ITEM;
pub use crate::resources::fargate_profile::platform_profiles;

/// What the platform's profiles should be; None while the role or subnets are not recorded yet
/// (nothing to create then; with no profile asked for, an empty list).
fn desired(ctx: &PhaseContext<'_>) -> Result<Option<Vec<Desired>>, FunctionError> {
    let wanted = platform_profiles(&ctx.spec, &ctx.names);
    if wanted.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let (Some(role), Some(subnets)) = (
        ctx.optional(outputs::FARGATE_POD_ROLE_ARN)?,
        ctx.optional(outputs::PRIVATE_SUBNET_IDS)?,
    ) else {
        return Ok(None);
    };
    let tags = ctx.tags(COMPONENT);
    Ok(Some(
        wanted
            .into_iter()
            .map(|(name, selectors)| {
                Desired::new(name, selectors, subnets.clone(), role.clone(), tags.clone())
            })
            .collect(),
    ))
}

/// The platform-level profiles among the platform's (tenants' carry another component).
fn ours(_ctx: &PhaseContext<'_>, all: Vec<Live>) -> Vec<Live> {
    all.into_iter()
        .filter(|l| l.tags.get(TAG_COMPONENT).map(String::as_str) == Some(COMPONENT))
        .collect()
}

/// One step towards the desired profiles (see the module docs); true when converged. Under
/// `observe` the same walk names every difference (a missing profile, a field that differs, one
/// the request dropped) and takes no step; it does not judge profiles in flight or failed.
pub async fn converge(ctx: &mut PhaseContext<'_>, c: &Clients) -> Result<bool, FunctionError> {
    let Some(desired) = desired(ctx)? else {
        return Err(crate::error::FunctionError::new(
            crate::error::ErrorType::Terminal,
            "the Fargate pod execution role or the private subnets are not recorded yet (identity \
             and network run first)",
        ));
    };
    let cluster = ctx.names.cluster();
    let platform = ctx.platform_id().to_owned();
    let live = fargate_profile::list_ours(c.eks(), &cluster, &platform).await?;
    if ctx.writes() && !may_step(c, &cluster, &platform, &desired, &live).await? {
        return Ok(false);
    }
    let live = ours(ctx, live);
    for d in &desired {
        let resource = format!("{}/{}", Kind::FargateProfile, d.name);
        let Some(l) = live.iter().find(|l| l.name == d.name) else {
            if ctx.differs(&resource, "exists", json!(true), json!(false)) {
                fargate_profile::create(c.eks(), &cluster, d).await?;
                return Ok(false);
            }
            continue;
        };
        let attributes = json!({ "arn": l.arn });
        ctx.record_new(Kind::FargateProfile, &d.name, d.tags.clone(), attributes)
            .await?;
        let diffs = d.differences(l);
        let mut repair = false;
        for x in &diffs {
            // Every difference is noted under `observe`: no short circuit.
            repair |= ctx.differs(&resource, x.field, x.desired.clone(), x.actual.clone());
        }
        if !repair {
            continue;
        }
        if diffs.iter().any(fargate_profile::immutable) {
            tracing::info!(profile = %d.name, "Fargate profile differs; EKS cannot change it in place: re-creating");
            fargate_profile::delete(c.eks(), &cluster, &d.name).await?;
            return Ok(false);
        }
        fargate_profile::retag(c.eks(), l, d).await?;
    }
    let wanted: BTreeSet<&str> = desired.iter().map(|d| d.name.as_str()).collect();
    for stale in live.iter().filter(|l| !wanted.contains(l.name.as_str())) {
        let resource = format!("{}/{}", Kind::FargateProfile, stale.name);
        if ctx.differs(&resource, "exists", json!(false), json!(true)) {
            if fargate_profile::delete(c.eks(), &cluster, &stale.name).await? == Step::Started {
                ctx.forget(Kind::FargateProfile, &stale.name).await?;
            }
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether `ensure` may take a step now. A profile of a wanted name that another owner holds is
/// refused before anything is written, and a failed profile fails the run; while a profile of
/// the platform is in flight, the step waits (EKS allows one per cluster).
async fn may_step(
    c: &Clients,
    cluster: &str,
    platform: &str,
    desired: &[Desired],
    live: &[Live],
) -> Result<bool, FunctionError> {
    for d in desired {
        if !live.iter().any(|l| l.name == d.name) {
            if let Some(other) = fargate_profile::find(c.eks(), cluster, &d.name).await? {
                fargate_profile::refuse_foreign(&other, platform)?;
            }
        }
    }
    if let Some(e) = live.iter().find_map(fargate_profile::failed) {
        return Err(e);
    }
    Ok(!live.iter().any(Live::in_flight))
}

/// Deletes the platform-level profiles one at a time; true once none is left. Runs before the
/// node groups go (and so before the cluster).
pub async fn delete(ctx: &mut PhaseContext<'_>, c: &Clients) -> Result<bool, FunctionError> {
    let cluster = ctx.names.cluster();
    let all = fargate_profile::list_ours(c.eks(), &cluster, ctx.platform_id()).await?;
    let busy = all.iter().any(Live::in_flight);
    let live = ours(ctx, all);
    let names: BTreeSet<String> = live.iter().map(|l| l.name.clone()).collect();
    for recorded in ctx.recorded(Kind::FargateProfile, None) {
        if !names.contains(&recorded) {
            ctx.forget(Kind::FargateProfile, &recorded).await?;
        }
    }
    let Some(first) = live.first() else {
        return Ok(true);
    };
    if !busy {
        fargate_profile::delete(c.eks(), &cluster, &first.name).await?;
    }
    Ok(false)
}
