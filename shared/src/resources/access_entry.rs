//! `eks:access-entry` and `eks:tenant-owner-entry`: an EKS access entry (one per principal and
//! cluster) and the access policies associated with it. The access phase keeps the admin
//! principals' entries, each with the cluster-scoped admin policy, and takes every policy off
//! strangers' entries; the tenants phase keeps one entry per tenant owner, whose
//! `kubernetesGroups` name the tenants it owns and which holds no policy; the compliance sweep
//! reads them all.
//!
//! - **Found by** the principal on the cluster ([`list`], [`describe`]); whose an entry is, is
//!   told by its tags (`tenantry:platform`, `tenantry:component`), read by [`describe`].
//! - **Desired**: per phase, since what an entry should hold depends on who the principal is
//!   (an admin, an owner of some tenants, a stranger).
//! - **Owned fields**: `accessPolicies` ([`policies`]: each association with its scope) and,
//!   for owners, the owner groups among `kubernetesGroups` ([`set_groups`]). Left to others:
//!   the entry's username, other groups, and entries of principals Tenantry does not manage
//!   (node roles, other tools), which may exist without a policy.
//! - **Create, update, delete** ([`create`]: tagged, with its groups, idempotent through a
//!   client token; [`associate_cluster_policy`], [`disassociate_policy`], [`set_groups`];
//!   [`remove`]: already gone counts as removed).

use std::collections::{BTreeSet, HashMap};

use aws_sdk_eks::types::{AccessScope, AccessScopeType};
use serde::Serialize;

use crate::error::FunctionError;
use crate::phases::aws_error;
use crate::phases::common::{removal, Removal};

/// The access policy admin principals get, at cluster scope.
pub const ADMIN_POLICY: &str = "AmazonEKSClusterAdminPolicy";

/// `arn:<partition>:eks::aws:cluster-access-policy/<name>`.
pub fn policy_arn(partition: &str, name: &str) -> String {
    format!("arn:{partition}:eks::aws:cluster-access-policy/{name}")
}

/// A live access entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    /// `STANDARD`, `EC2_LINUX`...
    pub kind: String,
    pub groups: BTreeSet<String>,
    pub tags: HashMap<String, String>,
}

/// One access policy associated with an entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Association {
    pub policy_arn: String,
    /// `cluster` or `namespace`.
    pub scope: String,
    /// The namespaces of a `namespace` scope (empty for `cluster`).
    pub namespaces: Vec<String>,
}

impl Association {
    pub fn is_cluster_wide(&self) -> bool {
        self.scope == AccessScopeType::Cluster.as_str()
    }
}

/// The principals of the cluster's access entries; `None` when the cluster does not exist.
pub async fn list(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
) -> Result<Option<Vec<String>>, FunctionError> {
    let mut pages = eks
        .list_access_entries()
        .cluster_name(cluster)
        .into_paginator()
        .items()
        .send();
    let mut principals = Vec::new();
    while let Some(item) = pages.next().await {
        match item {
            Ok(p) => principals.push(p),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(aws_error("eks:ListAccessEntries", e)),
        }
    }
    Ok(Some(principals))
}

/// The principal's entry; `None` when it has none.
pub async fn describe(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
) -> Result<Option<Entry>, FunctionError> {
    let out = eks
        .describe_access_entry()
        .cluster_name(cluster)
        .principal_arn(principal)
        .send()
        .await;
    match out {
        Ok(out) => Ok(Some(out.access_entry.map_or_else(Entry::default, |e| {
            Entry {
                kind: e.r#type().unwrap_or_default().to_owned(),
                groups: e.kubernetes_groups().iter().cloned().collect(),
                tags: e.tags.unwrap_or_default(),
            }
        }))),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error("eks:DescribeAccessEntry", e)),
    }
}

/// The access policies associated with the principal's entry (none when it has no entry).
pub async fn policies(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
) -> Result<Vec<Association>, FunctionError> {
    let out = eks
        .list_associated_access_policies()
        .cluster_name(cluster)
        .principal_arn(principal)
        .send()
        .await;
    let out = match out {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(Vec::new())
        }
        Err(e) => return Err(aws_error("eks:ListAssociatedAccessPolicies", e)),
    };
    Ok(out
        .associated_access_policies()
        .iter()
        .filter_map(|p| {
            let scope = p.access_scope();
            Some(Association {
                policy_arn: p.policy_arn()?.to_owned(),
                scope: scope
                    .and_then(|s| s.r#type())
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
                namespaces: scope.map(|s| s.namespaces().to_vec()).unwrap_or_default(),
            })
        })
        .collect())
}

/// Whether an entry was made by [`create`] or was there already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    /// The principal already has an entry (made by hand, or by a concurrent run).
    Existed,
}

/// Creates the principal's `STANDARD` entry with `groups` and `tags`; `token` makes a retried
/// call the same request.
pub async fn create(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
    groups: &BTreeSet<String>,
    tags: HashMap<String, String>,
    token: &str,
) -> Result<Created, FunctionError> {
    let created = eks
        .create_access_entry()
        .cluster_name(cluster)
        .principal_arn(principal)
        .r#type("STANDARD")
        .set_kubernetes_groups((!groups.is_empty()).then(|| groups.iter().cloned().collect()))
        .set_tags(Some(tags))
        .client_request_token(token)
        .send()
        .await;
    match created {
        Ok(_) => Ok(Created::New),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            Ok(Created::Existed)
        }
        Err(e) => Err(aws_error("eks:CreateAccessEntry", e)),
    }
}

/// Sets the entry's Kubernetes groups to exactly `groups`.
pub async fn set_groups(
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

/// Associates `policy` with the principal's entry at cluster scope.
pub async fn associate_cluster_policy(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
    policy: &str,
) -> Result<(), FunctionError> {
    eks.associate_access_policy()
        .cluster_name(cluster)
        .principal_arn(principal)
        .policy_arn(policy)
        .access_scope(
            AccessScope::builder()
                .r#type(AccessScopeType::Cluster)
                .build(),
        )
        .send()
        .await
        .map_err(|e| aws_error("eks:AssociateAccessPolicy", e))?;
    Ok(())
}

/// Removes `policy` from the principal's entry; one already gone counts as removed.
pub async fn disassociate_policy(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
    policy: &str,
) -> Result<Removal, FunctionError> {
    let removed = eks
        .disassociate_access_policy()
        .cluster_name(cluster)
        .principal_arn(principal)
        .policy_arn(policy)
        .send()
        .await;
    removal("eks:DisassociateAccessPolicy", removed)
}

/// Deletes the principal's entry; one already gone counts as deleted.
pub async fn remove(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
) -> Result<(), FunctionError> {
    let deleted = eks
        .delete_access_entry()
        .cluster_name(cluster)
        .principal_arn(principal)
        .send()
        .await;
    removal("eks:DeleteAccessEntry", deleted).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_policy_arn_follows_the_partition() {
        assert_eq!(
            policy_arn("aws-us-gov", ADMIN_POLICY),
            "arn:aws-us-gov:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
        );
    }

    #[test]
    fn only_a_cluster_scope_is_cluster_wide() {
        let mut a = Association {
            policy_arn: policy_arn("aws", ADMIN_POLICY),
            scope: "cluster".to_owned(),
            namespaces: Vec::new(),
        };
        assert!(a.is_cluster_wide());
        a.scope = "namespace".to_owned();
        a.namespaces = vec!["payments".to_owned()];
        assert!(!a.is_cluster_wide());
    }
}
