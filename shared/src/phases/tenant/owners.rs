//! The tenants' owners: one EKS access entry per owner principal whose `kubernetesGroups` are
//! the owner groups ([`kubernetes::owner_group`]) of exactly the tenants that principal owns;
//! each tenant namespace binds its group to the owners' Role ([`kubernetes::OWNER_ROLE`]), which
//! Tenantry defines (workloads yes; NetworkPolicies, quotas, RBAC and the namespace itself
//! read-only). No EKS access policy is associated: `AmazonEKSEditPolicy` would let owners delete
//! the NetworkPolicies that isolate them.
//!
//! An access entry belongs to a principal, not to a tenant (EKS allows one per principal and
//! cluster), so a principal owning several tenants has one entry whose namespace scope lists
//! them all. The scope is computed from the tenant records every time (the tenants that are
//! Requested, Onboarding or Active, plus the platform spec's tenants that have no record yet),
//! so onboardings and offboardings running side by side converge on the same answer. The entry
//! carries the platform's tags and component [`COMPONENT`], not one tenant's; Tenantry deletes
//! only entries with that component, and only once no tenant lists the principal.

use crate::resources::access_entry::{self, Created, Entry, ADMIN_POLICY};
use crate::resources::Kind;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use crate::error::FunctionError;
use crate::kubernetes;
use crate::naming::{TAG_COMPONENT, TAG_PLATFORM};
use crate::phases::PhaseContext;
use crate::spec::TenantSpec;
use crate::store::{TenantRecord, TenantState};

/// Tag component of owners' access entries.
pub const COMPONENT: &str = "tenant-owners";
/// The access policy owners got from earlier versions of Tenantry; converge removes it.
pub const EDIT_POLICY: &str = "AmazonEKSEditPolicy";

/// Namespaces each owner principal should reach, from the records and the spec, leaving out
/// `leaving` (the tenant being offboarded).
pub(crate) async fn scopes(
    ctx: &PhaseContext<'_>,
    also: Option<&TenantSpec>,
    leaving: Option<&str>,
) -> Result<BTreeMap<String, BTreeSet<String>>, FunctionError> {
    let records: Vec<TenantRecord> = ctx
        .store
        .list_tenant_records(ctx.platform_id())
        .await?
        .into_iter()
        .map(|r| r.value)
        .collect();
    Ok(owner_scopes(&ctx.spec.tenants, &records, also, leaving))
}

/// Owner principal → the names of the tenants it owns: the spec's tenants, overridden by their
/// records (a record Requested, Onboarding or Active counts with its spec; Offboarding,
/// Offboarded or Failed does not), plus `also`, minus `leaving`.
pub fn owner_scopes(
    spec_tenants: &[TenantSpec],
    records: &[TenantRecord],
    also: Option<&TenantSpec>,
    leaving: Option<&str>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut tenants: BTreeMap<&str, &TenantSpec> =
        spec_tenants.iter().map(|t| (t.name.as_str(), t)).collect();
    for r in records {
        let live = matches!(
            r.state,
            TenantState::Requested | TenantState::Onboarding | TenantState::Active
        );
        if live {
            tenants.insert(&r.name, &r.spec);
        } else {
            tenants.remove(r.name.as_str());
        }
    }
    if let Some(t) = also {
        tenants.insert(&t.name, t);
    }
    if let Some(leaving) = leaving {
        tenants.remove(leaving);
    }
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for t in tenants.values() {
        for owner in &t.owners {
            out.entry(owner.clone()).or_default().insert(t.name.clone());
        }
    }
    out
}

/// Converges the entry of each principal in `principals` on its scope in `scopes`: the entry's
/// `kubernetesGroups` are the owner groups of exactly the tenants it owns (each bound in its
/// namespace to the owners' Role by the tenant's manifests). No scope: the entry is deleted when
/// Tenantry created it for owners, or its owner groups are taken off otherwise. Any access
/// policy on an owner's entry Tenantry made (the Edit association of earlier versions, or one
/// added out of band) is removed; an owner who is also an admin principal keeps the admin one.
pub(crate) async fn converge(
    ctx: &mut PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principals: &BTreeSet<String>,
    scopes: &BTreeMap<String, BTreeSet<String>>,
) -> Result<(), FunctionError> {
    for principal in principals {
        let wanted = scopes.get(principal).cloned().unwrap_or_default();
        converge_one(ctx, eks, cluster, principal, &wanted).await?;
    }
    Ok(())
}

/// Converges one principal's entry on the tenants it owns (`wanted`; none: see [`converge`]).
async fn converge_one(
    ctx: &mut PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
    wanted: &BTreeSet<String>,
) -> Result<(), FunctionError> {
    let entry = access_entry::describe(eks, cluster, principal).await?;
    // Created now, or carrying the platform's tag: Tenantry's to keep clean. An entry the
    // owner had before is not (the access phase takes policies off strangers' entries).
    let ours = entry
        .as_ref()
        .is_none_or(|e| e.tags.get(TAG_PLATFORM).map(String::as_str) == Some(ctx.platform_id()));
    if wanted.is_empty() {
        if let Some(entry) = &entry {
            remove(ctx, eks, cluster, principal, entry).await?;
        }
        return ctx.forget(Kind::TenantOwnerEntry, principal).await;
    }
    let groups = owner_groups(wanted);
    let entry = match entry {
        Some(entry) => Some(entry),
        None => {
            let resource = format!("{}/{principal}", Kind::TenantOwnerEntry);
            if !ctx.differs(&resource, "exists", json!(true), json!(false)) {
                return Ok(());
            }
            create(ctx, eks, cluster, principal, &groups).await?
        }
    };
    if let Some(entry) = entry {
        converge_groups(ctx, eks, cluster, principal, &entry, &groups).await?;
    }
    if ours {
        strip_policies(ctx, eks, cluster, principal).await?;
    }
    let mut record =
        crate::store::ResourceRecord::new(Kind::TenantOwnerEntry, principal, ctx.phase.as_str());
    record.attributes = Some(json!({ "kubernetesGroups": groups, "namespaces": wanted }));
    ctx.record(record).await
}

/// Creates the owner's entry with its groups. `None`: created now, with exactly them; the entry
/// as it is when it was created meanwhile (a concurrent onboarding, or an admin entry), whose
/// groups the caller converges.
async fn create(
    ctx: &PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
    groups: &BTreeSet<String>,
) -> Result<Option<Entry>, FunctionError> {
    let mut tags = ctx.tags(COMPONENT);
    tags.insert(TAG_COMPONENT.to_owned(), COMPONENT.to_owned());
    let token = format!("tenantry-{cluster}-owner-{principal}");
    let tags = tags.into_iter().collect();
    match access_entry::create(eks, cluster, principal, groups, tags, &token).await? {
        Created::New => Ok(None),
        Created::Existed => access_entry::describe(eks, cluster, principal).await,
    }
}

/// Owner groups stay only if wanted; groups that are not the owners' (an administrator's own)
/// are kept as they are.
async fn converge_groups(
    ctx: &mut PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
    entry: &Entry,
    groups: &BTreeSet<String>,
) -> Result<(), FunctionError> {
    let keep = entry.groups.iter().filter(|g| !is_owner_group(g)).cloned();
    let desired: BTreeSet<String> = keep.chain(groups.iter().cloned()).collect();
    let resource = format!("{}/{principal}", Kind::TenantOwnerEntry);
    if entry.groups != desired
        && ctx.differs(
            &resource,
            "kubernetesGroups",
            json!(desired),
            json!(entry.groups),
        )
    {
        access_entry::set_groups(eks, cluster, principal, &desired).await?;
    }
    Ok(())
}

/// No access policy on an owner's entry (the legacy Edit one included): a policy here would
/// reach beyond the owner's namespaces. An owner who is also an admin principal keeps the
/// admin policy the access phase gives it.
async fn strip_policies(
    ctx: &mut PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
) -> Result<(), FunctionError> {
    let associated = access_entry::policies(eks, cluster, principal).await?;
    let allowed = allowed_policies(ctx, principal);
    let extra: Vec<&String> = associated
        .iter()
        .map(|a| &a.policy_arn)
        .filter(|arn| !allowed.contains(*arn))
        .collect();
    let resource = format!("{}/{principal}", Kind::TenantOwnerEntry);
    if !extra.is_empty() && ctx.differs(&resource, "accessPolicies", json!(allowed), json!(extra)) {
        for arn in extra {
            access_entry::disassociate_policy(eks, cluster, principal, arn).await?;
        }
    }
    Ok(())
}

/// The access policies an owner's entry may carry: the cluster admin policy when the owner is
/// also one of the platform's admin principals, nothing otherwise.
fn allowed_policies(ctx: &PhaseContext<'_>, principal: &str) -> Vec<String> {
    let spec = &ctx.spec;
    match spec.access.admin_principals.iter().any(|a| a == principal) {
        true => vec![access_entry::policy_arn(spec.partition(), ADMIN_POLICY)],
        false => Vec::new(),
    }
}

/// The owner groups of `tenants`.
fn owner_groups(tenants: &BTreeSet<String>) -> BTreeSet<String> {
    tenants.iter().map(|t| kubernetes::owner_group(t)).collect()
}

/// Whether a Kubernetes group is a tenant owners' group.
fn is_owner_group(group: &str) -> bool {
    group.starts_with(&kubernetes::owner_group(""))
}

/// Takes the owners off `principal`'s entry: deletes the entry when Tenantry created it for
/// owners and nothing else (no access policy but the legacy Edit one) is on it; otherwise removes
/// only the owner groups and the legacy Edit association.
async fn remove(
    ctx: &mut PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
    entry: &Entry,
) -> Result<(), FunctionError> {
    let resource = format!("{}/{principal}", Kind::TenantOwnerEntry);
    let legacy = access_entry::policy_arn(ctx.spec.partition(), EDIT_POLICY);
    let associated = access_entry::policies(eks, cluster, principal).await?;
    let tag = |k: &str| entry.tags.get(k).map(String::as_str);
    let ours =
        tag(TAG_PLATFORM) == Some(ctx.platform_id()) && tag(TAG_COMPONENT) == Some(COMPONENT);
    let only_owners = associated.iter().all(|a| a.policy_arn == legacy)
        && entry.groups.iter().all(|g| is_owner_group(g));
    if ours && only_owners {
        if !ctx.differs(&resource, "exists", json!(false), json!(true)) {
            return Ok(());
        }
        return access_entry::remove(eks, cluster, principal).await;
    }
    let others: BTreeSet<String> = entry
        .groups
        .iter()
        .filter(|g| !is_owner_group(g))
        .cloned()
        .collect();
    if others != entry.groups
        && ctx.differs(
            &resource,
            "kubernetesGroups",
            json!(others),
            json!(entry.groups),
        )
    {
        access_entry::set_groups(eks, cluster, principal, &others).await?;
    }
    if associated.iter().any(|a| a.policy_arn == legacy)
        && ctx.differs(&resource, "accessPolicies", json!([]), json!([EDIT_POLICY]))
    {
        access_entry::disassociate_policy(eks, cluster, principal, &legacy).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str, owners: &[&str]) -> TenantSpec {
        crate::validate::parse_tenant(
            &serde_json::json!({ "name": name, "owners": owners, "costCentre": "cc-1" })
                .to_string(),
        )
        .expect("valid tenant")
    }

    fn record(t: &TenantSpec, state: TenantState) -> TenantRecord {
        TenantRecord::new(t.clone(), state, "req")
    }

    const OPS: &str = "arn:aws:iam::111122223333:role/ops";
    const TEAM: &str = "arn:aws:iam::111122223333:role/team";

    #[test]
    fn a_shared_owner_reaches_exactly_the_live_tenants_it_owns() {
        let a = tenant("a", &[OPS, TEAM]);
        let b = tenant("b", &[OPS]);
        let c = tenant("c", &[OPS]);
        let gone = tenant("gone", &[OPS]);
        let records = [
            record(&b, TenantState::Onboarding),
            record(&c, TenantState::Offboarding),
            record(&gone, TenantState::Offboarded),
        ];
        let scopes = owner_scopes(std::slice::from_ref(&a), &records, None, None);
        let names = |p: &str| scopes[p].iter().cloned().collect::<Vec<_>>();
        assert_eq!(names(OPS), ["a", "b"]);
        assert_eq!(names(TEAM), ["a"]);
    }

    #[test]
    fn the_leaving_tenant_drops_out_and_its_only_owner_with_it() {
        let a = tenant("a", &[OPS, TEAM]);
        let b = tenant("b", &[OPS]);
        let records = [
            record(&a, TenantState::Active),
            record(&b, TenantState::Active),
        ];
        let scopes = owner_scopes(&[], &records, None, Some("a"));
        assert_eq!(scopes[OPS].iter().collect::<Vec<_>>(), ["b"]);
        assert!(!scopes.contains_key(TEAM), "{scopes:?}");
        let joining = tenant("new", &[TEAM]);
        let scopes = owner_scopes(&[], &records, Some(&joining), None);
        assert_eq!(scopes[TEAM].iter().collect::<Vec<_>>(), ["a", "new"]);
    }
}
