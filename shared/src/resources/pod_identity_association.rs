//! `eks:pod-identity-association`: a ServiceAccount bound to an IAM role under EKS Pod Identity.
//!
//! Two phases make them: `addons` (the controllers' workload roles) and the tenant phase (each
//! tenant's `workload` ServiceAccount). EKS allows one association per namespace and
//! ServiceAccount, so that pair finds it (inventory id `<namespace>/<serviceAccount>`); the
//! owned field is the role. Session tags stay on (no `disableSessionTags`): the roles' trust
//! requires them. Associations an add-on owns (`ownerArn`) belong to the add-on.

use std::collections::HashMap;

use aws_sdk_eks::types::PodIdentityAssociation;

use crate::error::FunctionError;
use crate::phases::aws_error;
use crate::phases::common::{removal, Removal};

/// The inventory id of the association of `service_account` in `namespace`.
pub fn id(namespace: &str, service_account: &str) -> String {
    format!("{namespace}/{service_account}")
}

/// One association as `ListPodIdentityAssociations` lists it (no role: that takes a describe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub association_id: String,
    pub namespace: String,
    pub service_account: String,
    /// The add-on that owns it, if any.
    pub owner_arn: Option<String>,
}

/// The cluster's associations, every page; those of one `(namespace, service account)` only
/// when `of` names it (EKS filters). A missing cluster has none.
pub async fn list(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    of: Option<(&str, &str)>,
) -> Result<Vec<Listed>, FunctionError> {
    let pages = eks
        .list_pod_identity_associations()
        .cluster_name(cluster)
        .set_namespace(of.map(|(ns, _)| ns.to_owned()))
        .set_service_account(of.map(|(_, sa)| sa.to_owned()))
        .into_paginator()
        .items()
        .send();
    let listed = super::cluster_listing(pages, "eks:ListPodIdentityAssociations", |e| {
        e.is_resource_not_found_exception()
    })
    .await?;
    Ok(listed
        .iter()
        .filter_map(|a| {
            let (ns, sa, id) = (a.namespace()?, a.service_account()?, a.association_id()?);
            Some(Listed {
                association_id: id.to_owned(),
                namespace: ns.to_owned(),
                service_account: sa.to_owned(),
                owner_arn: a.owner_arn().map(str::to_owned),
            })
        })
        .collect())
}

/// The association `association_id`, or `None` once it is gone.
pub async fn describe(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    association_id: &str,
) -> Result<Option<PodIdentityAssociation>, FunctionError> {
    let described = eks
        .describe_pod_identity_association()
        .cluster_name(cluster)
        .association_id(association_id)
        .send()
        .await;
    match described {
        Ok(d) => Ok(d.association),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error("eks:DescribePodIdentityAssociation", e)),
    }
}

/// What [`create`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// The new association's id.
    Id(String),
    /// EKS has one for the pair already: made meanwhile (a retry of the same invocation, or a
    /// concurrent one). Each caller decides whether that is "not ready yet" or a retry.
    InUse,
}

/// Creates the association, idempotent within EKS's client-token window (the token is derived
/// from the cluster and the pair).
pub async fn create(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    namespace: &str,
    service_account: &str,
    role_arn: &str,
    tags: HashMap<String, String>,
) -> Result<Created, FunctionError> {
    let out = eks
        .create_pod_identity_association()
        .cluster_name(cluster)
        .namespace(namespace)
        .service_account(service_account)
        .role_arn(role_arn)
        .set_tags(Some(tags))
        .client_request_token(format!("tenantry-{cluster}-{namespace}-{service_account}"))
        .send()
        .await;
    match out {
        Ok(out) => Ok(Created::Id(
            out.association()
                .and_then(|a| a.association_id())
                .unwrap_or_default()
                .to_owned(),
        )),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            Ok(Created::InUse)
        }
        Err(e) => Err(aws_error("eks:CreatePodIdentityAssociation", e)),
    }
}

/// Points the association at `role_arn`.
pub async fn set_role(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    association_id: &str,
    role_arn: &str,
) -> Result<(), FunctionError> {
    eks.update_pod_identity_association()
        .cluster_name(cluster)
        .association_id(association_id)
        .role_arn(role_arn)
        .send()
        .await
        .map_err(|e| aws_error("eks:UpdatePodIdentityAssociation", e))?;
    Ok(())
}

/// Deletes the association; `false` when it was already gone.
pub async fn delete(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    association_id: &str,
) -> Result<bool, FunctionError> {
    let deleted = eks
        .delete_pod_identity_association()
        .cluster_name(cluster)
        .association_id(association_id)
        .send()
        .await;
    Ok(removal("eks:DeletePodIdentityAssociation", deleted)? != Removal::Gone)
}
