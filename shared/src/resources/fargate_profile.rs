//! `eks:fargate-profile`: a Fargate profile of the platform's cluster (platform-level,
//! CoreDNS's, or one tenant's).
//!
//! - **Found by** its name in the cluster (`Names::fargate_profile`,
//!   `Names::tenant_fargate_profile`, `Names::coredns_fargate_profile`). It is this platform's
//!   when tagged `tenantry:platform=<id>` (tags go on with `CreateFargateProfile`); a profile of
//!   another owner is never changed or deleted.
//! - **Desired** ([`Desired`]): selectors, the platform's private subnets (never public ones:
//!   Fargate refuses them, and pods there would be reachable from the internet gateway's side),
//!   the pod execution role, Tenantry's tags.
//! - **Owned fields** ([`Desired::differences`]): selectors, subnets, pod execution role, tags.
//!   EKS cannot change the first three: a profile that differs in them is deleted and created
//!   again ([`immutable`]); missing tags are put back in place. Foreign tags are
//!   left alone.
//! - **One at a time**: EKS allows one profile CREATING or DELETING per cluster, so the callers
//!   make at most one such call per invocation and poll ([`Step`]); a `ResourceInUseException`
//!   (another profile in flight, a tenant's say) means "later", not failure.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_eks::types::{FargateProfile, FargateProfileSelector, FargateProfileStatus};
use serde_json::{json, Value};

use super::{Difference, Differences};
use crate::error::{ErrorType, FunctionError};
use crate::naming::{Names, TAG_PLATFORM};
use crate::phases::aws_error;
use crate::spec::{PlatformSpec, TenantFargateSpec, TenantSpec};

/// The namespace and labels of CoreDNS's pods.
pub const COREDNS_NAMESPACE: &str = "kube-system";
pub const COREDNS_LABEL: (&str, &str) = ("k8s-app", "kube-dns");

/// The platform-level profiles of `spec`: `(EKS name, selectors)`, CoreDNS's last.
pub fn platform_profiles(spec: &PlatformSpec, names: &Names) -> Vec<(String, Vec<Selector>)> {
    let mut out: Vec<_> = spec
        .fargate
        .profiles
        .iter()
        .map(|p| {
            (
                names.fargate_profile(&p.name),
                p.selectors
                    .iter()
                    .map(|s| (s.namespace.clone(), s.labels.clone()))
                    .collect(),
            )
        })
        .collect();
    if spec.fargate.core_dns {
        out.push((
            names.coredns_fargate_profile(),
            vec![(
                COREDNS_NAMESPACE.to_owned(),
                BTreeMap::from([(COREDNS_LABEL.0.to_owned(), COREDNS_LABEL.1.to_owned())]),
            )],
        ));
    }
    out
}

/// A tenant's selectors: always its own namespace (validation refuses any other; this is the
/// second lock), with the labels asked for.
pub fn tenant_selectors(tenant: &TenantSpec, fargate: &TenantFargateSpec) -> Vec<Selector> {
    fargate
        .selectors
        .iter()
        .map(|s| (tenant.name.clone(), s.labels.clone()))
        .collect()
}

/// One selector, normalised: a namespace and its labels.
pub type Selector = (String, BTreeMap<String, String>);

/// What a profile should be.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub name: String,
    /// Sorted, so that the request's order is not drift.
    pub selectors: Vec<Selector>,
    pub subnets: BTreeSet<String>,
    pub pod_execution_role_arn: String,
    pub tags: BTreeMap<String, String>,
}

/// A live profile: what Tenantry owns of it, its state and address.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    pub name: String,
    pub arn: String,
    pub status: Option<FargateProfileStatus>,
    pub selectors: Vec<Selector>,
    pub subnets: BTreeSet<String>,
    pub pod_execution_role_arn: String,
    pub tags: BTreeMap<String, String>,
}

/// Whether EKS cannot change the differing field in place (the profile is then created again).
pub fn immutable(d: &Difference) -> bool {
    d.field != "tags"
}

impl Desired {
    pub fn new(
        name: String,
        selectors: impl IntoIterator<Item = Selector>,
        subnets: impl IntoIterator<Item = String>,
        pod_execution_role_arn: String,
        tags: BTreeMap<String, String>,
    ) -> Desired {
        let mut selectors: Vec<Selector> = selectors.into_iter().collect();
        selectors.sort();
        selectors.dedup();
        Desired {
            name,
            selectors,
            subnets: subnets.into_iter().collect(),
            pod_execution_role_arn,
            tags,
        }
    }

    /// The owned fields of `live` that differ from this.
    pub fn differences(&self, live: &Live) -> Vec<Difference> {
        let mut out = Differences::default();
        out.check(
            "selectors",
            selectors_json(&self.selectors),
            selectors_json(&live.selectors),
            self.selectors == live.selectors,
        );
        out.check(
            "subnets",
            json!(self.subnets),
            json!(live.subnets),
            self.subnets == live.subnets,
        );
        out.check(
            "podExecutionRoleArn",
            json!(self.pod_execution_role_arn),
            json!(live.pod_execution_role_arn),
            self.pod_execution_role_arn == live.pod_execution_role_arn,
        );
        out.tags(&self.tags, &live.tags);
        out.0
    }
}

fn selectors_json(selectors: &[Selector]) -> Value {
    Value::Array(
        selectors
            .iter()
            .map(|(ns, labels)| json!({ "namespace": ns, "labels": labels }))
            .collect(),
    )
}

impl Live {
    /// Whether the profile carries `tenantry:platform=<platform>`.
    pub fn is_of(&self, platform: &str) -> bool {
        self.tags.get(TAG_PLATFORM).map(String::as_str) == Some(platform)
    }

    /// Whether EKS is creating or deleting it (no other profile may start meanwhile).
    pub fn in_flight(&self) -> bool {
        matches!(
            self.status,
            Some(FargateProfileStatus::Creating) | Some(FargateProfileStatus::Deleting)
        )
    }
}

fn from_profile(p: &FargateProfile) -> Live {
    let mut selectors: Vec<Selector> = p
        .selectors()
        .iter()
        .map(|s| {
            (
                s.namespace().unwrap_or_default().to_owned(),
                s.labels()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
            )
        })
        .collect();
    selectors.sort();
    Live {
        name: p.fargate_profile_name().unwrap_or_default().to_owned(),
        arn: p.fargate_profile_arn().unwrap_or_default().to_owned(),
        status: p.status().cloned(),
        selectors,
        subnets: p.subnets().iter().cloned().collect(),
        pod_execution_role_arn: p.pod_execution_role_arn().unwrap_or_default().to_owned(),
        tags: p
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    }
}

/// The profile `name` of `cluster`, if it exists (a missing cluster: none).
pub async fn find(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    name: &str,
) -> Result<Option<Live>, FunctionError> {
    match eks
        .describe_fargate_profile()
        .cluster_name(cluster)
        .fargate_profile_name(name)
        .send()
        .await
    {
        Ok(out) => Ok(out.fargate_profile().map(from_profile)),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error("eks:DescribeFargateProfile", e)),
    }
}

/// Every profile of `cluster` tagged with `platform` (none when the cluster is gone).
pub async fn list_ours(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    platform: &str,
) -> Result<Vec<Live>, FunctionError> {
    let pages = eks
        .list_fargate_profiles()
        .cluster_name(cluster)
        .into_paginator()
        .items()
        .send();
    let names = super::cluster_listing(pages, "eks:ListFargateProfiles", |e| {
        e.is_resource_not_found_exception()
    })
    .await?;
    let mut out = Vec::new();
    for name in names {
        if let Some(live) = find(eks, cluster, &name).await? {
            if live.is_of(platform) {
                out.push(live);
            }
        }
    }
    Ok(out)
}

/// Refuses a profile of the name that is not this platform's.
pub fn refuse_foreign(live: &Live, platform: &str) -> Result<(), FunctionError> {
    if live.is_of(platform) {
        return Ok(());
    }
    Err(FunctionError::new(
        ErrorType::Terminal,
        format!(
            "Fargate profile {} exists but is not tagged {TAG_PLATFORM}={platform}; refusing to \
             adopt or change it",
            live.name
        ),
    ))
}

/// What one call did: `Started` (a create or delete is under way: poll), `Busy` (another
/// profile is in flight: try again on the next poll).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Started,
    Busy,
}

/// Starts creating the profile.
pub async fn create(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    desired: &Desired,
) -> Result<Step, FunctionError> {
    let selectors = desired
        .selectors
        .iter()
        .map(|(ns, labels)| {
            FargateProfileSelector::builder()
                .namespace(ns)
                .set_labels((!labels.is_empty()).then(|| labels.clone().into_iter().collect()))
                .build()
        })
        .collect();
    let out = eks
        .create_fargate_profile()
        .cluster_name(cluster)
        .fargate_profile_name(&desired.name)
        .pod_execution_role_arn(&desired.pod_execution_role_arn)
        .set_subnets(Some(desired.subnets.iter().cloned().collect()))
        .set_selectors(Some(selectors))
        .set_tags(Some(desired.tags.clone().into_iter().collect()))
        .send()
        .await;
    match out {
        Ok(_) => Ok(Step::Started),
        // Another profile in flight, or this one created by a concurrent run: look again later.
        Err(e) if e.as_service_error().is_some_and(|e| in_use(e.meta())) => Ok(Step::Busy),
        // A pod execution role just created may not be usable yet (IAM eventual consistency).
        Err(e)
            if e.as_service_error().is_some_and(|e| {
                e.is_invalid_parameter_exception()
                    && e.meta()
                        .message()
                        .is_some_and(|m| m.contains("Role") || m.contains("role"))
            }) =>
        {
            Err(FunctionError::new(
                ErrorType::Retryable,
                format!(
                    "CreateFargateProfile {}: the pod execution role is not usable yet",
                    desired.name
                ),
            ))
        }
        Err(e) => Err(aws_error("eks:CreateFargateProfile", e)),
    }
}

/// Starts deleting the profile; already gone is `Started` (nothing left to wait for but the
/// next look).
pub async fn delete(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    name: &str,
) -> Result<Step, FunctionError> {
    match eks
        .delete_fargate_profile()
        .cluster_name(cluster)
        .fargate_profile_name(name)
        .send()
        .await
    {
        Ok(_) => Ok(Step::Started),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(Step::Started)
        }
        Err(e) if e.as_service_error().is_some_and(|e| in_use(e.meta())) => Ok(Step::Busy),
        Err(e) => Err(aws_error("eks:DeleteFargateProfile", e)),
    }
}

/// Whether EKS refused because a profile is in flight (or exists already): its model does not
/// list the exception for these operations, so it is recognised by its code.
fn in_use(meta: &aws_smithy_types::error::ErrorMetadata) -> bool {
    meta.code() == Some("ResourceInUseException")
}

/// Puts Tenantry's tags back on the profile (tags are the one owned field EKS changes in place).
pub async fn retag(
    eks: &aws_sdk_eks::Client,
    live: &Live,
    desired: &Desired,
) -> Result<(), FunctionError> {
    eks.tag_resource()
        .resource_arn(&live.arn)
        .set_tags(Some(desired.tags.clone().into_iter().collect()))
        .send()
        .await
        .map(drop)
        .map_err(|e| aws_error("eks:TagResource", e))
}

/// A profile EKS failed to create or delete: the error for the workflow.
pub fn failed(live: &Live) -> Option<FunctionError> {
    match live.status {
        Some(FargateProfileStatus::DeleteFailed) => Some(FunctionError::new(
            ErrorType::Terminal,
            format!(
                "Fargate profile {} is DELETE_FAILED (see its health in the EKS console)",
                live.name
            ),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired() -> Desired {
        Desired::new(
            "pay-prod-p-batch".into(),
            [
                ("jobs".to_owned(), BTreeMap::new()),
                (
                    "batch".to_owned(),
                    BTreeMap::from([("compute".to_owned(), "fargate".to_owned())]),
                ),
            ],
            ["subnet-b".to_owned(), "subnet-a".to_owned()],
            "arn:aws:iam::123456789012:role/tenantry/tenantry-pay-prod-fargate-pods".into(),
            BTreeMap::from([("tenantry:platform".to_owned(), "pay".to_owned())]),
        )
    }

    fn converged(d: &Desired) -> Live {
        let mut tags = d.tags.clone();
        tags.insert("added-by-someone".into(), "x".into());
        Live {
            name: d.name.clone(),
            arn: "arn".into(),
            status: Some(FargateProfileStatus::Active),
            selectors: d.selectors.clone(),
            subnets: d.subnets.clone(),
            pod_execution_role_arn: d.pod_execution_role_arn.clone(),
            tags,
        }
    }

    #[test]
    fn a_converged_profile_has_no_difference_whatever_the_request_order() {
        let d = desired();
        assert_eq!(d.selectors[0].0, "batch", "selectors are sorted");
        assert_eq!(d.differences(&converged(&d)), vec![]);
    }

    #[test]
    fn each_owned_field_is_named_and_only_tags_change_in_place() {
        let d = desired();
        let mut live = converged(&d);
        live.selectors[0].1.clear();
        live.subnets.insert("subnet-public".into());
        live.pod_execution_role_arn = "arn:aws:iam::123456789012:role/other".into();
        live.tags.clear();
        let diffs = d.differences(&live);
        let fields: Vec<&str> = diffs.iter().map(|x| x.field).collect();
        assert_eq!(
            fields,
            ["selectors", "subnets", "podExecutionRoleArn", "tags"]
        );
        let immutable: Vec<bool> = diffs.iter().map(immutable).collect();
        assert_eq!(immutable, [true, true, true, false]);
    }

    #[test]
    fn ownership_is_the_platform_tag() {
        let d = desired();
        let mut live = converged(&d);
        assert!(refuse_foreign(&live, "pay").is_ok());
        assert!(refuse_foreign(&live, "other").is_err());
        live.tags.clear();
        assert!(refuse_foreign(&live, "pay").is_err());
    }
}
