//! `eks:nodegroup`: one of the platform's managed node groups, `<stem>-<group>`.
//!
//! - **Found by** its name on the cluster ([`describe`]; [`list`] for every group of the
//!   cluster, whose tags tell the platform's).
//! - **Desired**: the spec's [`NodeGroupSpec`] (instance types, capacity and AMI type, scaling
//!   bounds, labels, taints), on the private subnets with the node role, launched from its launch
//!   template (`ec2:launch-template`, a version number, never `$Latest`), with the platform's
//!   tags and the cluster-autoscaler discovery tags.
//! - **Owned fields**: `scalingConfig` bounds, `labels`, `taints` ([`config_change`]: what one
//!   `UpdateNodegroupConfig` changes), the launch template version ([`update_version`]); and
//!   `instanceTypes`, `capacityType`, `amiType` ([`immutable_differences`]), which EKS cannot
//!   change in place: reported, not fixed. `desiredSize` belongs to the cluster autoscaler after
//!   creation: it is never reset, only clamped into new bounds, since EKS requires
//!   `min <= desired <= max`.
//! - **Create, update, delete** ([`create`]: idempotent through a client token; a group of the
//!   name made by a first attempt is taken; [`update_config`], [`update_version`]: a group busy
//!   with another update is left to the next poll; [`remove`]: already gone counts as removed).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_eks::types::{
    CapacityTypes, LaunchTemplateSpecification, Nodegroup, NodegroupScalingConfig, Taint,
    TaintEffect, UpdateLabelsPayload, UpdateTaintsPayload,
};
use serde_json::{json, Value};

use crate::error::{ErrorType, FunctionError};
use crate::phases::aws_error;
use crate::phases::common::error_code;
use crate::spec::{CapacityType, NodeGroupSpec};

/// Where a new group goes: its cluster and name, the node role, the subnets.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub cluster: String,
    pub name: String,
    pub role: String,
    pub subnets: Vec<String>,
}

/// What `UpdateNodegroupConfig` must change on a group, if anything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigChange {
    /// `(min, desired, max)`; desired is the current one, clamped into the new bounds.
    pub scaling: Option<(i32, i32, i32)>,
    pub add_labels: BTreeMap<String, String>,
    pub remove_labels: Vec<String>,
    pub add_taints: Vec<(String, String, String)>,
    pub remove_taints: Vec<(String, String, String)>,
}

impl ConfigChange {
    pub fn is_empty(&self) -> bool {
        *self == ConfigChange::default()
    }
}

fn as_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// `(key, value, EKS effect)` of the spec's taints.
pub fn desired_taints(group: &NodeGroupSpec) -> BTreeSet<(String, String, String)> {
    group
        .taints
        .iter()
        .map(|t| {
            (
                t.key.clone(),
                t.value.clone(),
                t.effect.eks_name().to_owned(),
            )
        })
        .collect()
}

pub fn actual_taints(ng: &Nodegroup) -> BTreeSet<(String, String, String)> {
    ng.taints()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
                t.effect()
                    .map(|e| e.as_str().to_owned())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// The in-place changes that bring `ng` to `group` (never touching desiredSize otherwise).
pub fn config_change(group: &NodeGroupSpec, ng: &Nodegroup) -> ConfigChange {
    let mut change = ConfigChange::default();
    let scaling = ng.scaling_config();
    let (min, max) = (as_i32(group.min_size), as_i32(group.max_size));
    let current_min = scaling.and_then(|s| s.min_size()).unwrap_or_default();
    let current_max = scaling.and_then(|s| s.max_size()).unwrap_or_default();
    let current_desired = scaling.and_then(|s| s.desired_size()).unwrap_or(min);
    if (current_min, current_max) != (min, max) {
        change.scaling = Some((min, current_desired.clamp(min, max), max));
    }
    let actual_labels: BTreeMap<String, String> = ng
        .labels()
        .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    for (k, v) in &group.labels {
        if actual_labels.get(k) != Some(v) {
            change.add_labels.insert(k.clone(), v.clone());
        }
    }
    change.remove_labels = actual_labels
        .keys()
        .filter(|k| !group.labels.contains_key(*k))
        .cloned()
        .collect();
    let (want, have) = (desired_taints(group), actual_taints(ng));
    change.add_taints = want.difference(&have).cloned().collect();
    change.remove_taints = have
        .difference(&want)
        // A taint whose key stays (with another value or effect) is replaced by the add.
        .filter(|(k, _, _)| !want.iter().any(|(wk, _, _)| wk == k))
        .cloned()
        .collect();
    change
}

/// Differences EKS cannot change in place (the group must be replaced): reported, not fixed.
pub fn immutable_differences(group: &NodeGroupSpec, ng: &Nodegroup) -> Vec<(String, Value, Value)> {
    let mut out = Vec::new();
    let types: BTreeSet<&str> = ng.instance_types().iter().map(String::as_str).collect();
    let want: BTreeSet<&str> = group.instance_types.iter().map(String::as_str).collect();
    if types != want {
        out.push(("instanceTypes".to_owned(), json!(want), json!(types)));
    }
    let capacity = ng
        .capacity_type()
        .map(|c| c.as_str())
        .unwrap_or("ON_DEMAND");
    let want_capacity = capacity_type(group.capacity_type);
    if capacity != want_capacity.as_str() {
        out.push((
            "capacityType".to_owned(),
            json!(want_capacity.as_str()),
            json!(capacity),
        ));
    }
    let ami = ng.ami_type().map(|a| a.as_str()).unwrap_or_default();
    if !ami.is_empty() && ami != group.ami_type.as_str() {
        out.push((
            "amiType".to_owned(),
            json!(group.ami_type.as_str()),
            json!(ami),
        ));
    }
    out
}

fn capacity_type(c: CapacityType) -> CapacityTypes {
    match c {
        CapacityType::OnDemand => CapacityTypes::OnDemand,
        CapacityType::Spot => CapacityTypes::Spot,
    }
}

/// The node group `name` of `cluster`; `None` when it does not exist.
pub async fn describe(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    name: &str,
) -> Result<Option<Nodegroup>, FunctionError> {
    match eks
        .describe_nodegroup()
        .cluster_name(cluster)
        .nodegroup_name(name)
        .send()
        .await
    {
        Ok(out) => Ok(out.nodegroup),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error("eks:DescribeNodegroup", e)),
    }
}

/// The names of the cluster's node groups (none when the cluster does not exist).
pub async fn list(eks: &aws_sdk_eks::Client, cluster: &str) -> Result<Vec<String>, FunctionError> {
    let pages = eks
        .list_nodegroups()
        .cluster_name(cluster)
        .into_paginator()
        .items()
        .send();
    super::cluster_listing(pages, "eks:ListNodegroups", |e| {
        e.is_resource_not_found_exception()
    })
    .await
}

/// Creates the group as `group` describes it, from version `version` of the launch template
/// `template_id`. The same client token for every retry: EKS answers a repeat with the group.
pub async fn create(
    eks: &aws_sdk_eks::Client,
    placement: &Placement,
    group: &NodeGroupSpec,
    (template_id, version): &(String, String),
    tags: HashMap<String, String>,
) -> Result<Nodegroup, FunctionError> {
    let Placement {
        cluster,
        name,
        role,
        subnets,
    } = placement;
    let taints = group
        .taints
        .iter()
        .map(|t| eks_taint(&t.key, &t.value, t.effect.eks_name()))
        .collect();
    let created = eks
        .create_nodegroup()
        .cluster_name(cluster)
        .nodegroup_name(name)
        .node_role(role)
        .set_subnets(Some(subnets.clone()))
        .scaling_config(scaling(
            as_i32(group.min_size),
            as_i32(group.desired_size),
            as_i32(group.max_size),
        ))
        .set_instance_types(Some(group.instance_types.clone()))
        .capacity_type(capacity_type(group.capacity_type))
        .ami_type(aws_sdk_eks::types::AmiTypes::from(group.ami_type.as_str()))
        .set_labels(Some(group.labels.clone().into_iter().collect()))
        .set_taints(Some(taints))
        .launch_template(
            LaunchTemplateSpecification::builder()
                .id(template_id)
                // A number, not `$Latest`: the group's version then tells whether its nodes
                // run the template's latest data.
                .version(version)
                .build(),
        )
        .set_tags(Some(tags))
        .client_request_token(format!("tenantry-{name}"))
        .send()
        .await;
    created_or_existing(eks, cluster, name, created).await
}

/// Moves the group to version `version` of the launch template `id` (EKS replaces the nodes,
/// honouring PodDisruptionBudgets). True when an update started or one is running already (the
/// next poll moves the group then).
pub async fn update_version(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    name: &str,
    id: &str,
    version: &str,
) -> Result<bool, FunctionError> {
    let template = LaunchTemplateSpecification::builder()
        .id(id)
        .version(version)
        .build();
    let result = eks
        .update_nodegroup_version()
        .cluster_name(cluster)
        .nodegroup_name(name)
        .launch_template(template)
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                error_code(&e),
                Some("ResourceInUseException") | Some("InvalidRequestException")
            ) =>
        {
            Ok(true)
        }
        Err(e) => Err(aws_error("eks:UpdateNodegroupVersion", e)),
    }
}

/// Starts deleting the group; one already gone, or already being deleted, counts as started.
pub async fn remove(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    name: &str,
) -> Result<(), FunctionError> {
    let result = eks
        .delete_nodegroup()
        .cluster_name(cluster)
        .nodegroup_name(name)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error().is_some_and(|e| {
                e.is_resource_not_found_exception() || e.is_resource_in_use_exception()
            }) =>
        {
            Ok(())
        }
        Err(e) => Err(aws_error("eks:DeleteNodegroup", e)),
    }
}

/// The group CreateNodegroup made, or, when one of the name exists already (a retried creation
/// whose first attempt went through), the group as described.
async fn created_or_existing(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    name: &str,
    created: Result<
        aws_sdk_eks::operation::create_nodegroup::CreateNodegroupOutput,
        aws_sdk_eks::error::SdkError<
            aws_sdk_eks::operation::create_nodegroup::CreateNodegroupError,
        >,
    >,
) -> Result<Nodegroup, FunctionError> {
    match created {
        Ok(out) => out.nodegroup.ok_or_else(|| {
            FunctionError::new(
                ErrorType::Retryable,
                "CreateNodegroup returned no node group",
            )
        }),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            describe(eks, cluster, name).await?.ok_or_else(|| {
                FunctionError::new(
                    ErrorType::Retryable,
                    format!("node group {name:?} exists but cannot be described yet"),
                )
            })
        }
        Err(e) => Err(aws_error("eks:CreateNodegroup", e)),
    }
}

/// An EKS taint; `effect` as EKS names it (`NO_SCHEDULE`...).
fn eks_taint(key: &str, value: &str, effect: &str) -> Taint {
    Taint::builder()
        .key(key)
        .value(value)
        .effect(TaintEffect::from(effect))
        .build()
}

fn scaling(min: i32, desired: i32, max: i32) -> NodegroupScalingConfig {
    NodegroupScalingConfig::builder()
        .min_size(min)
        .desired_size(desired)
        .max_size(max)
        .build()
}

/// Applies `change` in one `UpdateNodegroupConfig`; a group busy with another update is left to
/// the next poll.
pub async fn update_config(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    name: &str,
    change: &ConfigChange,
) -> Result<(), FunctionError> {
    tracing::info!(nodegroup = %name, ?change, "updating node group");
    let update = eks
        .update_nodegroup_config()
        .cluster_name(cluster)
        .nodegroup_name(name)
        .set_scaling_config(
            change
                .scaling
                .map(|(min, desired, max)| scaling(min, desired, max)),
        )
        .set_labels(labels_payload(change))
        .set_taints(taints_payload(change));
    match update.send().await {
        Ok(_) => Ok(()),
        // Another update is running: the next poll applies this one.
        Err(e)
            if matches!(
                error_code(&e),
                Some("ResourceInUseException") | Some("InvalidRequestException")
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(aws_error("eks:UpdateNodegroupConfig", e)),
    }
}

/// The labels part of an update (None: the labels stay as they are).
fn labels_payload(change: &ConfigChange) -> Option<UpdateLabelsPayload> {
    let (add, remove) = (&change.add_labels, &change.remove_labels);
    (!add.is_empty() || !remove.is_empty()).then(|| {
        UpdateLabelsPayload::builder()
            .set_add_or_update_labels((!add.is_empty()).then(|| add.clone().into_iter().collect()))
            .set_remove_labels((!remove.is_empty()).then(|| remove.clone()))
            .build()
    })
}

/// The taints part of an update (None: the taints stay as they are).
fn taints_payload(change: &ConfigChange) -> Option<UpdateTaintsPayload> {
    let taints = |list: &[(String, String, String)]| {
        (!list.is_empty()).then(|| list.iter().map(|(k, v, e)| eks_taint(k, v, e)).collect())
    };
    let (add, remove) = (&change.add_taints, &change.remove_taints);
    (!add.is_empty() || !remove.is_empty()).then(|| {
        UpdateTaintsPayload::builder()
            .set_add_or_update_taints(taints(add))
            .set_remove_taints(taints(remove))
            .build()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::standard_node_groups;

    fn nodegroup(min: i32, desired: i32, max: i32) -> Nodegroup {
        Nodegroup::builder()
            .scaling_config(
                NodegroupScalingConfig::builder()
                    .min_size(min)
                    .desired_size(desired)
                    .max_size(max)
                    .build(),
            )
            .build()
    }

    #[test]
    fn desired_size_is_kept_and_only_clamped_into_new_bounds() {
        let mut g = standard_node_groups()[1].clone(); // general 1/2/6
                                                       // The autoscaler scaled to 5: the bounds are as specified, so nothing changes.
        let mut ng = nodegroup(1, 5, 6);
        ng.labels = Some(g.labels.clone().into_iter().collect());
        assert!(config_change(&g, &ng).is_empty());
        // New bounds 1..4: desired 5 must come down to 4, not back to the spec's 2.
        g.max_size = 4;
        assert_eq!(config_change(&g, &ng).scaling, Some((1, 4, 4)));
        // New bounds 1..8: desired stays 5.
        g.max_size = 8;
        assert_eq!(config_change(&g, &ng).scaling, Some((1, 5, 8)));
    }

    #[test]
    fn labels_and_taints_are_diffed_both_ways() {
        let g = standard_node_groups()[0].clone(); // critical, tainted
        let mut ng = nodegroup(2, 2, 4);
        ng.labels = Some(
            [
                ("old".to_owned(), "x".to_owned()),
                ("tenantry.io/role".to_owned(), "critical".to_owned()),
            ]
            .into_iter()
            .collect(),
        );
        ng.taints = Some(vec![Taint::builder()
            .key("workload")
            .value("batch")
            .effect(TaintEffect::NoSchedule)
            .build()]);
        let change = config_change(&g, &ng);
        assert_eq!(change.scaling, None);
        assert_eq!(change.remove_labels, vec!["old".to_owned()]);
        assert_eq!(
            change.add_labels.keys().collect::<Vec<_>>(),
            vec!["tenantry.io/capacity"]
        );
        assert_eq!(
            change.add_taints,
            vec![(
                "workload".to_owned(),
                "critical".to_owned(),
                "NO_SCHEDULE".to_owned()
            )]
        );
        // Same key: replaced by the add, not removed.
        assert!(change.remove_taints.is_empty());
    }

    #[test]
    fn instance_and_capacity_changes_are_reported_as_immutable() {
        let g = standard_node_groups()[2].clone(); // general-spot
        let ng = Nodegroup::builder()
            .instance_types("m5.large")
            .capacity_type(CapacityTypes::OnDemand)
            .ami_type(aws_sdk_eks::types::AmiTypes::BottlerocketX8664)
            .build();
        let fields: Vec<String> = immutable_differences(&g, &ng)
            .into_iter()
            .map(|d| d.0)
            .collect();
        assert_eq!(fields, vec!["instanceTypes", "capacityType"]);
    }
}
