//! The platform's Fargate profiles, in the node groups phase: the request's `fargate.profiles`
//! (`<stem>-p-<name>`) and, with `fargate.coreDns`, CoreDNS's (`<stem>-coredns`, selecting
//! `kube-system` pods labelled `k8s-app: kube-dns`). Tenants' profiles belong to the tenant phase
//! (see `phases::tenant::fargate`); this module never touches them.
//!
//! One step per invocation (EKS allows one profile CREATING or DELETING per cluster): ensure and
//! status both call [`converge`], which waits while a profile of the platform is in flight,
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
use crate::phases::{outputs, Drift, PhaseContext};
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

/// One step towards the desired profiles (see the module docs); true when converged.
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
    let live = fargate_profile::list_ours(&c.eks, &cluster, &platform).await?;
    // A profile of the name that another owner holds is refused before anything is written.
    for d in &desired {
        if !live.iter().any(|l| l.name == d.name) {
            if let Some(other) = fargate_profile::find(&c.eks, &cluster, &d.name).await? {
                fargate_profile::refuse_foreign(&other, &platform)?;
            }
        }
    }
    if let Some(e) = live.iter().find_map(fargate_profile::failed) {
        return Err(e);
    }
    if live.iter().any(Live::in_flight) {
        return Ok(false);
    }
    let live = ours(ctx, live);
    for d in &desired {
        match live.iter().find(|l| l.name == d.name) {
            None => {
                fargate_profile::create(&c.eks, &cluster, d).await?;
                return Ok(false);
            }
            Some(l) => {
                ctx.record_new(
                    Kind::FargateProfile,
                    &d.name,
                    d.tags.clone(),
                    json!({ "arn": l.arn }),
                )
                .await?;
                let diffs = d.differences(l);
                if diffs.iter().any(fargate_profile::immutable) {
                    for x in &diffs {
                        tracing::info!(profile = %d.name, field = x.field, "Fargate profile differs; EKS cannot change it in place: re-creating");
                    }
                    fargate_profile::delete(&c.eks, &cluster, &d.name).await?;
                    return Ok(false);
                }
                if !diffs.is_empty() {
                    fargate_profile::retag(&c.eks, l, d).await?;
                }
            }
        }
    }
    let wanted: BTreeSet<&str> = desired.iter().map(|d| d.name.as_str()).collect();
    if let Some(stale) = live.iter().find(|l| !wanted.contains(l.name.as_str())) {
        if fargate_profile::delete(&c.eks, &cluster, &stale.name).await? == Step::Started {
            ctx.forget(Kind::FargateProfile, &stale.name).await?;
        }
        return Ok(false);
    }
    Ok(true)
}

/// The differences of the platform's profiles from the request, no writes.
pub async fn observe(ctx: &PhaseContext<'_>, c: &Clients) -> Result<Vec<Drift>, FunctionError> {
    let mut drift = Vec::new();
    let Some(desired) = desired(ctx)? else {
        return Ok(drift);
    };
    let cluster = ctx.names.cluster();
    let live = ours(
        ctx,
        fargate_profile::list_ours(&c.eks, &cluster, ctx.platform_id()).await?,
    );
    let mut note = |resource: String, field: &str, desired, actual| {
        drift.push(Drift::new(resource, field, desired, actual))
    };
    for d in &desired {
        let resource = format!("{}/{}", Kind::FargateProfile, d.name);
        match live.iter().find(|l| l.name == d.name) {
            None => note(resource, "exists", json!(true), json!(false)),
            Some(l) => {
                for x in d.differences(l) {
                    note(resource.clone(), x.field, x.desired, x.actual);
                }
            }
        }
    }
    for l in &live {
        if !desired.iter().any(|d| d.name == l.name) {
            let resource = format!("{}/{}", Kind::FargateProfile, l.name);
            note(resource, "exists", json!(false), json!(true));
        }
    }
    Ok(drift)
}

/// Deletes the platform-level profiles one at a time; true once none is left. Runs before the
/// node groups go (and so before the cluster).
pub async fn delete(ctx: &mut PhaseContext<'_>, c: &Clients) -> Result<bool, FunctionError> {
    let cluster = ctx.names.cluster();
    let all = fargate_profile::list_ours(&c.eks, &cluster, ctx.platform_id()).await?;
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
        fargate_profile::delete(&c.eks, &cluster, &first.name).await?;
    }
    Ok(false)
}
