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

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_eks::types::{AccessScope, AccessScopeType};
use serde_json::json;

use crate::error::FunctionError;
use crate::naming::{TAG_COMPONENT, TAG_PLATFORM};
use crate::phases::aws_error;
use crate::phases::encryption::Run;
use crate::spec::TenantSpec;
use crate::store::TenantState;

/// Tag component of owners' access entries.
pub const COMPONENT: &str = "tenant-owners";
/// The access policy owners get on their namespaces.
pub const EDIT_POLICY: &str = "AmazonEKSEditPolicy";
/// Inventory type of an owner's access entry.
pub const OWNER_ENTRY_RESOURCE: &str = "eks-access-entry-owner";

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
    let records = run
        .ctx
        .store
        .list_tenant_records(run.ctx.platform_id())
        .await?;
    let mut tenants: BTreeMap<String, TenantSpec> = BTreeMap::new();
    for t in &run.ctx.spec.tenants {
        tenants.insert(t.name.clone(), t.clone());
    }
    for r in records {
        let live = matches!(
            r.value.state,
            TenantState::Requested | TenantState::Onboarding | TenantState::Active
        );
        if live {
            tenants.insert(r.value.name.clone(), r.value.spec);
        } else {
            tenants.remove(&r.value.name);
        }
    }
    if let Some(t) = also {
        tenants.insert(t.name.clone(), t.clone());
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
    Ok(out)
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
            run.forget(OWNER_ENTRY_RESOURCE, principal).await?;
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
            OWNER_ENTRY_RESOURCE,
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
        match eks
            .delete_access_entry()
            .cluster_name(cluster)
            .principal_arn(principal)
            .send()
            .await
        {
            Ok(_) => run.ctx.changed(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) => {}
            Err(e) => return Err(aws_error("eks:DeleteAccessEntry", e)),
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
        match eks
            .disassociate_access_policy()
            .cluster_name(cluster)
            .principal_arn(principal)
            .policy_arn(policy)
            .send()
            .await
        {
            Ok(_) => run.ctx.changed(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) => {}
            Err(e) => return Err(aws_error("eks:DisassociateAccessPolicy", e)),
        }
    }
    Ok(())
}
