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

use crate::resources::Kind;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use crate::error::FunctionError;
use crate::kubernetes;
use crate::naming::{TAG_COMPONENT, TAG_PLATFORM};
use crate::phases::aws_error;
use crate::phases::common::{disassociate_access_policy, removal};
use crate::phases::PhaseContext;
use crate::spec::TenantSpec;
use crate::store::{TenantRecord, TenantState};

/// Tag component of owners' access entries.
pub const COMPONENT: &str = "tenant-owners";
/// The access policy owners got from earlier versions of Tenantry; converge removes it.
pub const EDIT_POLICY: &str = "AmazonEKSEditPolicy";

fn edit_policy_arn(partition: &str) -> String {
    format!("arn:{partition}:eks::aws:cluster-access-policy/{EDIT_POLICY}")
}

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
    let entry = describe(eks, cluster, principal).await?;
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
            let resource = format!("eks:access-entry/{principal}");
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
    let created = eks
        .create_access_entry()
        .cluster_name(cluster)
        .principal_arn(principal)
        .r#type("STANDARD")
        .set_kubernetes_groups(Some(groups.iter().cloned().collect()))
        .set_tags(Some(tags.into_iter().collect()))
        .client_request_token(format!("tenantry-{cluster}-owner-{principal}"))
        .send()
        .await;
    match created {
        Ok(_) => Ok(None),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            describe(eks, cluster, principal).await
        }
        Err(e) => Err(aws_error("eks:CreateAccessEntry", e)),
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
    let resource = format!("eks:access-entry/{principal}");
    if entry.groups != desired
        && ctx.differs(
            &resource,
            "kubernetesGroups",
            json!(desired),
            json!(entry.groups),
        )
    {
        set_groups(eks, cluster, principal, &desired).await?;
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
    let associated = associations(eks, cluster, principal).await?;
    let allowed = allowed_policies(ctx, principal);
    let extra: Vec<&String> = associated
        .keys()
        .filter(|arn| !allowed.contains(*arn))
        .collect();
    let resource = format!("eks:access-entry/{principal}");
    if !extra.is_empty() && ctx.differs(&resource, "accessPolicies", json!(allowed), json!(extra)) {
        for arn in extra {
            disassociate_access_policy(eks, cluster, principal, arn).await?;
        }
    }
    Ok(())
}

/// The access policies an owner's entry may carry: the cluster admin policy when the owner is
/// also one of the platform's admin principals, nothing otherwise.
fn allowed_policies(ctx: &PhaseContext<'_>, principal: &str) -> Vec<String> {
    let spec = &ctx.spec;
    match spec.access.admin_principals.iter().any(|a| a == principal) {
        true => vec![format!(
            "arn:{}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
            spec.partition()
        )],
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

async fn set_groups(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
    groups: &BTreeSet<String>,
) -> Result<(), FunctionError> {
    eks.update_access_entry()
        .cluster_name(cluster)
        .principal_arn(principal)
        .set_kubernetes_groups(Some(groups.iter().cloned().collect()))
        .send()
        .await
        .map_err(|e| aws_error("eks:UpdateAccessEntry", e))?;
    Ok(())
}

/// An access entry as owners' convergence needs it.
struct Entry {
    tags: Tags,
    groups: BTreeSet<String>,
}

type Tags = std::collections::HashMap<String, String>;

/// The principal's entry, or None when it has none.
async fn describe(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
) -> Result<Option<Entry>, FunctionError> {
    match eks
        .describe_access_entry()
        .cluster_name(cluster)
        .principal_arn(principal)
        .send()
        .await
    {
        Ok(out) => {
            let entry = out.access_entry;
            Ok(Some(Entry {
                groups: entry
                    .as_ref()
                    .map(|e| e.kubernetes_groups().iter().cloned().collect())
                    .unwrap_or_default(),
                tags: entry.and_then(|e| e.tags).unwrap_or_default(),
            }))
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error("eks:DescribeAccessEntry", e)),
    }
}

/// The access policies associated with `principal`: policy ARN → namespaces of its scope
/// (empty for cluster scope).
async fn associations(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
) -> Result<BTreeMap<String, BTreeSet<String>>, FunctionError> {
    let out = match eks
        .list_associated_access_policies()
        .cluster_name(cluster)
        .principal_arn(principal)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            return Ok(BTreeMap::new())
        }
        Err(e) => return Err(aws_error("eks:ListAssociatedAccessPolicies", e)),
    };
    Ok(out
        .associated_access_policies()
        .iter()
        .filter_map(|p| {
            let namespaces = p
                .access_scope()
                .map(|s| s.namespaces().iter().cloned().collect())
                .unwrap_or_default();
            p.policy_arn().map(|arn| (arn.to_owned(), namespaces))
        })
        .collect())
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
    let resource = format!("eks:access-entry/{principal}");
    let legacy = edit_policy_arn(ctx.spec.partition());
    let associated = associations(eks, cluster, principal).await?;
    let tag = |k: &str| entry.tags.get(k).map(String::as_str);
    let ours =
        tag(TAG_PLATFORM) == Some(ctx.platform_id()) && tag(TAG_COMPONENT) == Some(COMPONENT);
    let only_owners = associated.keys().all(|arn| arn == &legacy)
        && entry.groups.iter().all(|g| is_owner_group(g));
    if ours && only_owners {
        if !ctx.differs(&resource, "exists", json!(false), json!(true)) {
            return Ok(());
        }
        let deleted = eks
            .delete_access_entry()
            .cluster_name(cluster)
            .principal_arn(principal)
            .send()
            .await;
        removal("eks:DeleteAccessEntry", deleted)?;
        return Ok(());
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
        set_groups(eks, cluster, principal, &others).await?;
    }
    if associated.contains_key(&legacy)
        && ctx.differs(&resource, "accessPolicies", json!([]), json!([EDIT_POLICY]))
    {
        disassociate_access_policy(eks, cluster, principal, &legacy).await?;
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
