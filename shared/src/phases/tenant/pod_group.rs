//! The pod security groups of the platform's Fargate tenants (`resources::pod_security_group`):
//! made at a Fargate tenant's onboarding, before its namespace's `SecurityGroupPolicy` and
//! before its owners get access; deleted at its offboarding once its pods are gone.
//!
//! A group's rules name its peers' groups, so whichever tenant is onboarded or offboarded
//! converges the groups of every Fargate tenant linked to it by an `allowFrom` rule (either
//! way), and their rules in the cluster security group, from the same view of the platform: the
//! tenants in force ([`super::peers::present`]) and the groups that exist. A platform without a
//! Fargate tenant costs no call.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::SecurityGroup;
use serde_json::json;

use super::{tenant_tags, Clients};
use crate::error::FunctionError;
use crate::phases::{outputs, PhaseContext};
use crate::resources::pod_security_group::{self as psg, Links, Rule};
use crate::resources::Kind;
use crate::spec::TenantSpec;
use crate::store::ResourceRecord;

/// What the platform's groups look like now.
struct View {
    live: BTreeMap<String, SecurityGroup>,
    ids: BTreeMap<String, String>,
    cluster_group: String,
    cluster_rules: Vec<Rule>,
}

async fn view(ctx: &PhaseContext<'_>, c: &Clients) -> Result<View, FunctionError> {
    let names = ctx.names.clone();
    let vpc: String = ctx.output(outputs::VPC_ID)?;
    let live = psg::find_tenant_groups(c.ec2(), ctx.platform_id(), &vpc, |t| {
        names.security_group(&psg::purpose(t))
    })
    .await?;
    let ids = live
        .iter()
        .map(|(t, g)| (t.clone(), g.group_id().unwrap_or_default().to_owned()))
        .collect();
    let cluster_group: String = ctx.output(outputs::CLUSTER_SECURITY_GROUP_ID)?;
    let cluster_rules = psg::describe(c.ec2(), &cluster_group)
        .await?
        .map(|g| psg::live_rules(&g))
        .unwrap_or_default();
    Ok(View {
        live,
        ids,
        cluster_group,
        cluster_rules,
    })
}

/// Converges `tenant`'s pod group (made if it is on Fargate) and the groups linked to it;
/// returns its group's id when it is on Fargate, and whether all is as desired (`observe`
/// reports the differences of its own group and its rules in the cluster group).
pub(super) async fn ensure(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    tenant: &TenantSpec,
    present: &BTreeMap<String, TenantSpec>,
) -> Result<(Option<String>, bool), FunctionError> {
    let mut tenants = present.clone();
    tenants.insert(tenant.name.clone(), tenant.clone());
    // A tenant that left Fargate still has its recorded group to remove.
    let had_group = ctx
        .recorded_for(Some(&tenant.name))
        .iter()
        .any(|(kind, _)| *kind == Kind::SecurityGroup);
    if !had_group && !tenants.values().any(|t| t.fargate.is_some()) {
        return Ok((None, true));
    }
    let mut v = view(ctx, c).await?;
    let mut own = None;
    if tenant.fargate.is_some() {
        let Some(id) = own_group(ctx, c, tenant, &mut v).await? else {
            return Ok((None, false));
        };
        own = Some(id);
    }
    // No longer on Fargate: its group goes, once the rules naming it have left the others.
    let stale = match tenant.fargate {
        None if ctx.writes() => v.ids.remove(&tenant.name),
        _ => None,
    };
    let mut ready = true;
    let linked = linked_on_fargate(tenant, &tenants, &v);
    for x in &linked {
        // Observe looks at the tenant's own group only (the others are observed as theirs).
        if !ctx.writes() && x.name != tenant.name {
            continue;
        }
        ready &= converge(ctx, c, x, &tenants, &v).await?;
    }
    if let Some(id) = stale {
        ready &= delete_own(ctx, c, tenant, &v, &id).await?;
    }
    Ok((own, ready))
}

/// A Fargate tenant's own group: found, or made under `ensure` (added to `v`), and recorded.
/// None when `observe` finds none (noted).
async fn own_group(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    tenant: &TenantSpec,
    v: &mut View,
) -> Result<Option<String>, FunctionError> {
    let name = ctx.names.security_group(&psg::purpose(&tenant.name));
    let resource = format!("{}/{name}", Kind::SecurityGroup);
    let id = match v.ids.get(&tenant.name) {
        Some(id) => id.clone(),
        None if !ctx.differs(&resource, "exists", json!(true), json!(false)) => return Ok(None),
        None => {
            let vpc: String = ctx.output(outputs::VPC_ID)?;
            let tags = group_tags(ctx, tenant);
            let id = psg::create(c.ec2(), &name, &tenant.name, &vpc, &tags).await?;
            if let Some(g) = psg::describe(c.ec2(), &id).await? {
                v.live.insert(tenant.name.clone(), g);
            }
            v.ids.insert(tenant.name.clone(), id.clone());
            id
        }
    };
    let mut record = ResourceRecord::new(Kind::SecurityGroup, &id, ctx.phase.as_str());
    record.tenant = Some(tenant.name.clone());
    record.tags = group_tags(ctx, tenant);
    record.attributes = Some(json!({ "name": name }));
    ctx.record(record).await?;
    Ok(Some(id))
}

/// The Fargate tenants whose groups name `tenant`'s pods or are named by its rules (itself
/// among them when it is on Fargate).
fn linked_on_fargate(
    tenant: &TenantSpec,
    tenants: &BTreeMap<String, TenantSpec>,
    v: &View,
) -> Vec<TenantSpec> {
    let links = links(tenants, v);
    tenants
        .values()
        .filter(|x| x.fargate.is_some() && links.linked(tenant, &x.name))
        .cloned()
        .collect()
}

fn links<'a>(tenants: &'a BTreeMap<String, TenantSpec>, v: &'a View) -> Links<'a> {
    Links {
        tenants,
        groups: &v.ids,
        cluster_group: &v.cluster_group,
    }
}

/// The group's tags: the tenant's, and the cluster's, by which the AWS Load Balancer Controller
/// finds the group to open to its load balancers (and the network phase leaves it alone).
fn group_tags(ctx: &PhaseContext<'_>, tenant: &TenantSpec) -> BTreeMap<String, String> {
    let mut tags = tenant_tags(ctx, tenant);
    let cluster = ctx.names.cluster();
    tags.insert(
        format!("kubernetes.io/cluster/{cluster}"),
        "owned".to_owned(),
    );
    tags
}

/// Converges `x`'s group and its rules in the cluster group; true when they were as desired.
async fn converge(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    x: &TenantSpec,
    tenants: &BTreeMap<String, TenantSpec>,
    v: &View,
) -> Result<bool, FunctionError> {
    let (Some(id), Some(group)) = (v.ids.get(&x.name), v.live.get(&x.name)) else {
        return Ok(true);
    };
    let links = links(tenants, v);
    let desired = psg::pod_rules(x, id, &links);
    let live = psg::live_rules(group);
    let live_refs: Vec<&Rule> = live.iter().collect();
    let (add, remove) = psg::changes(&desired, &live_refs);
    let cluster_desired = psg::cluster_rules(x, id, &links);
    let cluster_live = psg::owned_by(&v.cluster_rules, &x.name);
    let (cluster_add, cluster_remove) = psg::changes(&cluster_desired, &cluster_live);
    let same =
        add.is_empty() && remove.is_empty() && cluster_add.is_empty() && cluster_remove.is_empty();
    if same {
        return Ok(true);
    }
    let name = group.group_name().unwrap_or_default();
    let shown = |rules: &[&Rule]| rules.iter().map(|r| r.show()).collect::<Vec<_>>();
    let resource = format!("{}/{name}", Kind::SecurityGroup);
    if !ctx.differs(
        &resource,
        "rules",
        json!({ "missing": shown(&add), "clusterMissing": shown(&cluster_add) }),
        json!({ "extra": shown(&remove), "clusterExtra": shown(&cluster_remove) }),
    ) {
        return Ok(false);
    }
    psg::revoke(c.ec2(), id, &remove).await?;
    psg::authorize(c.ec2(), id, &add).await?;
    psg::revoke(c.ec2(), &v.cluster_group, &cluster_remove).await?;
    psg::authorize(c.ec2(), &v.cluster_group, &cluster_add).await?;
    Ok(true)
}

/// Offboarding `tenant` (its pods gone): the rules naming it leave its peers' groups and the
/// cluster group, then its group goes. True once it is gone (false: still in use).
pub(super) async fn remove(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    tenant: &TenantSpec,
    present: &BTreeMap<String, TenantSpec>,
) -> Result<bool, FunctionError> {
    let mut tenants = present.clone();
    tenants.remove(&tenant.name);
    if tenant.fargate.is_none() && !tenants.values().any(|t| t.fargate.is_some()) {
        return Ok(true);
    }
    let v = view(ctx, c).await?;
    let linked = linked_on_fargate(tenant, &tenants, &v);
    for x in &linked {
        converge(ctx, c, x, &tenants, &v).await?;
    }
    match v.ids.get(&tenant.name) {
        Some(id) => delete_own(ctx, c, tenant, &v, id).await,
        None => {
            let mine = psg::owned_by(&v.cluster_rules, &tenant.name);
            psg::revoke(c.ec2(), &v.cluster_group, &mine).await?;
            Ok(true)
        }
    }
}

/// Takes `tenant`'s rules out of the cluster group and deletes its group `id`; true once it is
/// gone (false while its pods' network interfaces still hold it).
async fn delete_own(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    tenant: &TenantSpec,
    v: &View,
    id: &str,
) -> Result<bool, FunctionError> {
    let mine = psg::owned_by(&v.cluster_rules, &tenant.name);
    psg::revoke(c.ec2(), &v.cluster_group, &mine).await?;
    if !psg::delete(c.ec2(), id).await? {
        tracing::info!(tenant = %tenant.name, group = %id, "pod security group still in use; later");
        return Ok(false);
    }
    ctx.forget(Kind::SecurityGroup, id).await?;
    Ok(true)
}
