//! The tenants' owners: one EKS access entry per owner principal with `AmazonEKSEditPolicy`
//! scoped to the namespaces of exactly the tenants that principal owns.
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

use aws_sdk_eks::types::{AccessScope, AccessScopeType};
use serde_json::json;

use crate::error::FunctionError;
use crate::naming::{TAG_COMPONENT, TAG_PLATFORM};
use crate::phases::aws_error;
use crate::phases::common::{removal, Removal};
use crate::phases::encryption::Run;
use crate::spec::TenantSpec;
use crate::store::{TenantRecord, TenantState};

/// Tag component of owners' access entries.
pub const COMPONENT: &str = "tenant-owners";
/// The access policy owners get on their namespaces.
pub const EDIT_POLICY: &str = "AmazonEKSEditPolicy";

fn edit_policy_arn(partition: &str) -> String {
    format!("arn:{partition}:eks::aws:cluster-access-policy/{EDIT_POLICY}")
}

/// Namespaces each owner principal should reach, from the records and the spec, leaving out
/// `leaving` (the tenant being offboarded).
pub(crate) async fn scopes(
    run: &Run<'_>,
    also: Option<&TenantSpec>,
    leaving: Option<&str>,
) -> Result<BTreeMap<String, BTreeSet<String>>, FunctionError> {
    let records: Vec<TenantRecord> = run
        .ctx
        .store
        .list_tenant_records(run.ctx.platform_id())
        .await?
        .into_iter()
        .map(|r| r.value)
        .collect();
    Ok(owner_scopes(&run.ctx.spec.tenants, &records, also, leaving))
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

/// Converges the entry of each principal in `principals` on its scope in `scopes` (no scope:
/// the Edit association is removed, and the entry too when Tenantry created it for owners).
pub(crate) async fn converge(
    run: &mut Run<'_>,
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principals: &BTreeSet<String>,
    scopes: &BTreeMap<String, BTreeSet<String>>,
) -> Result<(), FunctionError> {
    let policy = edit_policy_arn(run.ctx.spec.partition());
    for principal in principals {
        let resource = format!("eks:access-entry/{principal}");
        let wanted = scopes.get(principal).cloned().unwrap_or_default();
        let entry = describe(eks, cluster, principal).await?;
        if wanted.is_empty() {
            if entry.is_some() {
                remove(run, eks, cluster, principal, &policy, entry.as_ref()).await?;
            }
            run.forget(Kind::AccessPolicyAssociation, principal).await?;
            continue;
        }
        if entry.is_none() {
            if !run.differs(&resource, "exists", json!(true), json!(false)) {
                continue;
            }
            let mut tags = run.ctx.tags(COMPONENT);
            tags.insert(TAG_COMPONENT.to_owned(), COMPONENT.to_owned());
            let created = eks
                .create_access_entry()
                .cluster_name(cluster)
                .principal_arn(principal)
                .r#type("STANDARD")
                .set_tags(Some(tags.into_iter().collect()))
                .client_request_token(format!("tenantry-{cluster}-owner-{principal}"))
                .send()
                .await;
            match created {
                Ok(_) => run.ctx.changed(),
                // Created meanwhile (a concurrent onboarding, or an admin entry): scope it.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_resource_in_use_exception()) => {}
                Err(e) => return Err(aws_error("eks:CreateAccessEntry", e)),
            }
        }
        let actual = associations(eks, cluster, principal).await?.remove(&policy);
        if actual.as_ref() != Some(&wanted)
            && run.differs(&resource, "namespaces", json!(wanted), json!(actual))
        {
            eks.associate_access_policy()
                .cluster_name(cluster)
                .principal_arn(principal)
                .policy_arn(&policy)
                .access_scope(
                    AccessScope::builder()
                        .r#type(AccessScopeType::Namespace)
                        .set_namespaces(Some(wanted.iter().cloned().collect()))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| aws_error("eks:AssociateAccessPolicy", e))?;
            run.ctx.changed();
        }
        let mut record = crate::store::ResourceRecord::new(
            Kind::AccessPolicyAssociation,
            principal,
            run.ctx.phase.as_str(),
        );
        record.attributes = Some(json!({ "policy": EDIT_POLICY, "namespaces": wanted }));
        run.record(record).await?;
    }
    Ok(())
}

type Tags = std::collections::HashMap<String, String>;

/// The entry's tags, or None when the principal has no entry.
async fn describe(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
) -> Result<Option<Tags>, FunctionError> {
    match eks
        .describe_access_entry()
        .cluster_name(cluster)
        .principal_arn(principal)
        .send()
        .await
    {
        Ok(out) => Ok(Some(
            out.access_entry.and_then(|e| e.tags).unwrap_or_default(),
        )),
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

/// Removes the Edit association; deletes the whole entry when Tenantry created it for owners
/// and nothing else (an admin policy added later, say) is associated with it.
async fn remove(
    run: &mut Run<'_>,
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
    policy: &str,
    tags: Option<&Tags>,
) -> Result<(), FunctionError> {
    let resource = format!("eks:access-entry/{principal}");
    let associated = associations(eks, cluster, principal).await?;
    let tag = |k: &str| tags.and_then(|t| t.get(k)).map(String::as_str);
    let ours =
        tag(TAG_PLATFORM) == Some(run.ctx.platform_id()) && tag(TAG_COMPONENT) == Some(COMPONENT);
    let only_edit = associated.keys().all(|arn| arn == policy);
    if ours && only_edit {
        if !run.differs(&resource, "exists", json!(false), json!(true)) {
            return Ok(());
        }
        let deleted = eks
            .delete_access_entry()
            .cluster_name(cluster)
            .principal_arn(principal)
            .send()
            .await;
        if removal("eks:DeleteAccessEntry", deleted)? == Removal::Done {
            run.ctx.changed();
        }
        return Ok(());
    }
    if associated.contains_key(policy)
        && run.differs(
            &resource,
            "namespaces",
            json!([]),
            json!(associated.get(policy)),
        )
    {
        let removed = eks
            .disassociate_access_policy()
            .cluster_name(cluster)
            .principal_arn(principal)
            .policy_arn(policy)
            .send()
            .await;
        if removal("eks:DisassociateAccessPolicy", removed)? == Removal::Done {
            run.ctx.changed();
        }
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
