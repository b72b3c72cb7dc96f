//! The `nodegroups` phase: per node group of the spec, a launch template and a managed node group.
//!
//! - `ensure` (one item = one group, or every group when the workflow sends no item):
//!   - the launch template `<stem>-<group>`: IMDSv2 required with hop limit 1 (no pod reaches
//!     IMDS; host-network daemons do), encrypted gp3 volumes with the platform's data
//!     key, no SSH key, and for Bottlerocket a settings TOML (kernel lockdown, admin container
//!     off) as base64 user data;
//!   - the managed node group `<stem>-<group>` on the private subnets with the node role, labels,
//!     taints, capacity and AMI type, instance types, scaling bounds, the platform's tags and the
//!     cluster-autoscaler discovery tags.
//!
//!   An ACTIVE group whose scaling bounds, labels or taints differ gets one
//!   `UpdateNodegroupConfig`. `desiredSize` belongs to the cluster autoscaler after creation and
//!   is never reset; it is only clamped into new bounds because EKS requires
//!   `min <= desired <= max`.
//!   Without an item, groups of the platform that the spec no longer names are deleted too.
//!   Ready once every targeted group is ACTIVE and as specified (and, without an item, every
//!   removed group is gone); the workflow polls by calling `ensure` again.
//! - `observe`: the same walk in report mode: every difference as drift, including the ones EKS
//!   cannot change in place (instance types, capacity type, AMI type), launch template settings
//!   and version, another owner's group, groups and Fargate profiles the spec no longer names.
//! - `delete`: deletes every node group of the platform, waits until they are gone, then deletes
//!   their launch templates. "Already gone" is success.

pub mod fargate;
mod max_pods;

use super::common::{error_code, health_issues};
use super::outputs::{self, OutputMap};
use super::{aws_error, Action, PhaseContext, PhaseInput, PhaseOutput};
use crate::aws::Clients;
use crate::deps::Deps;
use crate::error::{ErrorType, FunctionError};
use crate::kubernetes;
use crate::naming::TAG_PLATFORM;
use crate::plan::Phase;
use crate::resources::launch_template::{
    self, find_latest, version_of, Latest, TemplateShape, Volume,
};
use crate::resources::Kind;
use crate::spec::{CapacityType, Cni, NodeGroupSpec};
use aws_sdk_eks::types::{
    CapacityTypes, LaunchTemplateSpecification, Nodegroup, NodegroupScalingConfig, NodegroupStatus,
    Taint, TaintEffect, UpdateLabelsPayload, UpdateTaintsPayload,
};
use base64::Engine;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The `tenantry:component` tag value of this phase's resources.
pub const COMPONENT: &str = "nodegroups";
/// Cluster-autoscaler auto-discovery tag (EKS copies node group tags it knows to the ASG; the
/// autoscaler's `--node-group-auto-discovery` matches on these).
pub const AUTOSCALER_ENABLED_TAG: &str = "k8s.io/cluster-autoscaler/enabled";
/// IMDS hop limit: 1, so that an IMDSv2 token never reaches a pod (one network hop away from
/// the node) and no pod can read the node role's credentials, whatever a tenant does to its
/// NetworkPolicies. Pods get AWS credentials from IRSA or Pod Identity; what runs on the host
/// network (VPC CNI, kube-proxy, the Pod Identity agent) still reaches IMDS; the
/// cluster-autoscaler gets its region from `AWS_REGION` (see `kubernetes::autoscaler`).
pub const IMDS_HOP_LIMIT: i32 = 1;

/// Bottlerocket settings put in every Bottlerocket launch template (EKS merges its own
/// `[settings.kubernetes]` bootstrap settings into these).
pub const BOTTLEROCKET_SETTINGS: &str = "\
[settings.kernel]
lockdown = \"integrity\"

[settings.host-containers.admin]
enabled = false

[settings.host-containers.control]
enabled = true
";

pub async fn handle(input: PhaseInput, deps: &Deps) -> Result<PhaseOutput, FunctionError> {
    run(PhaseContext::load(Phase::Nodegroups, input, deps).await?).await
}

/// Runs the phase's action in a loaded context.
pub async fn run(mut ctx: PhaseContext<'_>) -> Result<PhaseOutput, FunctionError> {
    let c = ctx.clients.clone();
    match ctx.input.action {
        Action::Ensure | Action::Observe
            if ctx.input.item.as_deref() == Some(fargate::FARGATE_ITEM) =>
        {
            let ready = fargate::converge(&mut ctx, &c).await?;
            ctx.finish(ready, BTreeMap::new()).await
        }
        Action::Ensure | Action::Observe => converge(&mut ctx, &c).await,
        Action::Delete => delete(&mut ctx, &c).await,
    }
}

/// The groups this invocation handles: the item, or every group of the spec.
fn targets(ctx: &PhaseContext<'_>) -> Result<Vec<NodeGroupSpec>, FunctionError> {
    let groups = ctx.spec.effective_node_groups();
    match &ctx.input.item {
        None => Ok(groups),
        Some(item) if item == fargate::FARGATE_ITEM => Ok(Vec::new()),
        Some(item) => groups
            .into_iter()
            .find(|g| &g.name == item)
            .map(|g| vec![g])
            .ok_or_else(|| {
                FunctionError::new(
                    ErrorType::InvalidRequest,
                    format!(
                        "item {item:?}: the spec of platform {:?} has no node group of that name",
                        ctx.platform_id()
                    ),
                )
            }),
    }
}

// ----- desired state (pure) -----

/// Bottlerocket's `[settings.kubernetes]` with the max pods of custom networking (see
/// [`max_pods`]) or of Calico; EKS merges its own bootstrap settings into the same table.
fn max_pods_settings(max_pods: u32) -> String {
    format!("\n[settings.kubernetes]\nmax-pods = {max_pods}\n")
}

/// The launch template `group` needs: [`desired_template`] with its max pods, which custom
/// networking sets (it costs one `DescribeInstanceTypes`) and Calico sets to
/// [`kubernetes::CALICO_MAX_PODS`]: Calico IPAM is not bound by the node's network interfaces,
/// while Bottlerocket's default would still count them as the VPC CNI does.
async fn wanted_template(
    ctx: &PhaseContext<'_>,
    c: &Clients,
    group: &NodeGroupSpec,
    data_key: &str,
) -> Result<TemplateShape, FunctionError> {
    let bottlerocket = group.ami_type.is_bottlerocket();
    let max_pods = if ctx.spec.custom_networking() && bottlerocket {
        Some(max_pods::for_instance_types(&c.ec2, &group.name, &group.instance_types).await?)
    } else if ctx.spec.cni == Cni::Calico && bottlerocket {
        Some(kubernetes::CALICO_MAX_PODS)
    } else {
        None
    };
    let mut shape = desired_template(group, data_key, max_pods);
    shape.volumes.sort();
    Ok(shape)
}

/// What the launch template of `group` must contain; `max_pods` is set on Bottlerocket only.
pub fn desired_template(
    group: &NodeGroupSpec,
    data_key: &str,
    max_pods: Option<u32>,
) -> TemplateShape {
    let volume = |device: &str, size: u32| Volume {
        device: device.to_owned(),
        size_gib: i32::try_from(size).unwrap_or(i32::MAX),
        volume_type: "gp3".to_owned(),
        encrypted: true,
        kms_key: Some(data_key.to_owned()),
    };
    let bottlerocket = group.ami_type.is_bottlerocket();
    let volumes = if bottlerocket {
        // Bottlerocket: /dev/xvda is the OS volume, /dev/xvdb the data volume (images, pods).
        vec![
            volume("/dev/xvda", 4),
            volume("/dev/xvdb", group.disk_size_gib),
        ]
    } else {
        vec![volume("/dev/xvda", group.disk_size_gib)]
    };
    TemplateShape {
        http_tokens: "required".to_owned(),
        hop_limit: IMDS_HOP_LIMIT,
        volumes,
        user_data: bottlerocket.then(|| {
            let mut settings = BOTTLEROCKET_SETTINGS.to_owned();
            settings.extend(max_pods.map(max_pods_settings));
            base64::engine::general_purpose::STANDARD.encode(settings)
        }),
        key_name: None,
    }
}

/// The node group's tags: the platform's plus the autoscaler discovery tags.
pub fn nodegroup_tags(ctx: &PhaseContext<'_>) -> BTreeMap<String, String> {
    let mut tags = ctx.tags(COMPONENT);
    tags.insert(AUTOSCALER_ENABLED_TAG.to_owned(), "true".to_owned());
    tags.insert(
        format!("k8s.io/cluster-autoscaler/{}", ctx.names.cluster()),
        "owned".to_owned(),
    );
    tags
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
fn desired_taints(group: &NodeGroupSpec) -> BTreeSet<(String, String, String)> {
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

fn actual_taints(ng: &Nodegroup) -> BTreeSet<(String, String, String)> {
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

// ----- one walk: ensure and observe -----

/// Converges the targeted groups (and, without an item, removes the platform's groups the spec
/// no longer names and converges the Fargate profiles). Under `observe` the same walk reports
/// each difference through [`PhaseContext::differs`] and repairs nothing.
async fn converge(ctx: &mut PhaseContext<'_>, c: &Clients) -> Result<PhaseOutput, FunctionError> {
    let groups = targets(ctx)?;
    let cluster = ctx.names.cluster();
    let mut ready = true;
    let mut out = OutputMap::new();
    for group in &groups {
        let (group_ready, arn) = converge_group(ctx, c, group).await?;
        ready &= group_ready;
        if let Some(arn) = arn {
            outputs::NODE_GROUP.insert(&mut out, &group.name, arn);
        }
    }
    if ctx.input.item.is_none() {
        let wanted: BTreeSet<String> = groups
            .iter()
            .map(|g| ctx.names.nodegroup(&g.name))
            .collect();
        let mut stale = Vec::new();
        for name in ours(ctx, c, &cluster, &wanted).await? {
            let resource = format!("{}/{name}", Kind::Nodegroup);
            if ctx.differs(&resource, "exists", json!(false), json!(true)) {
                stale.push(name);
            }
        }
        if !stale.is_empty() {
            ready &= remove(ctx, c, &cluster, &stale).await?;
        }
        ready &= fargate::converge(ctx, c).await?;
    }
    ctx.finish(ready, out).await
}

/// One group: found or created, recorded, then (once ACTIVE) its launch template and its
/// scaling, labels and taints brought to the spec, one update per call. `(ready, arn)`.
/// `observe` notes every difference, including those EKS cannot change in place, and does not
/// judge the group's status.
async fn converge_group(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    group: &NodeGroupSpec,
) -> Result<(bool, Option<String>), FunctionError> {
    let cluster = ctx.names.cluster();
    let name = ctx.names.nodegroup(&group.name);
    let (resource, what) = (
        format!("{}/{name}", Kind::Nodegroup),
        format!("a node group named {name:?}"),
    );
    let ng = match describe(&c.eks, &cluster, &name).await? {
        Some(ng) if ctx.owned(&resource, ng.tags(), ErrorType::Terminal, &what)? => ng,
        Some(_) => return Ok((false, None)),
        None if ctx.differs(&resource, "exists", json!(true), json!(false)) => {
            let template = ensure_template(ctx, c, group).await?;
            create_group(ctx, c, group, &template).await?
        }
        None => return Ok((false, None)),
    };
    record_group(ctx, group, &ng).await?;
    let arn = ng.nodegroup_arn().map(str::to_owned);
    if ctx.writes() && !active(&name, &ng)? {
        return Ok((false, arn));
    }
    for (field, want, have) in immutable_differences(group, &ng) {
        if ctx.differs(&resource, &field, want.clone(), have.clone()) {
            tracing::warn!(nodegroup = %name, field, %want, %have, "node group differs in a way EKS cannot change in place");
        }
    }
    if converge_template(ctx, c, group, &ng).await? {
        return Ok((false, arn));
    }
    let change = config_change(group, &ng);
    if change.is_empty() || !config_differs(ctx, &resource, group, &ng, &change) {
        return Ok((true, arn));
    }
    update_config(c, &cluster, &name, &change).await?;
    Ok((false, arn))
}

/// Notes each in-place change of `change` (scaling bounds, not `desiredSize`, which is the
/// autoscaler's; labels; taints); whether to apply it now.
fn config_differs(
    ctx: &mut PhaseContext<'_>,
    resource: &str,
    group: &NodeGroupSpec,
    ng: &Nodegroup,
    change: &ConfigChange,
) -> bool {
    let mut repair = false;
    if let Some((min, _, max)) = change.scaling {
        let s = ng.scaling_config();
        let actual = json!({
            "minSize": s.and_then(|s| s.min_size()),
            "maxSize": s.and_then(|s| s.max_size()),
        });
        let desired = json!({ "minSize": min, "maxSize": max });
        repair |= ctx.differs(resource, "scalingConfig", desired, actual);
    }
    if !change.add_labels.is_empty() || !change.remove_labels.is_empty() {
        let (desired, actual) = (json!(group.labels), json!(ng.labels()));
        repair |= ctx.differs(resource, "labels", desired, actual);
    }
    if !change.add_taints.is_empty() || !change.remove_taints.is_empty() {
        let (desired, actual) = (json!(desired_taints(group)), json!(actual_taints(ng)));
        repair |= ctx.differs(resource, "taints", desired, actual);
    }
    repair
}

/// Records the group and its launch template in the inventory (once: `PhaseContext::record` skips
/// what it already lists).
async fn record_group(
    ctx: &mut PhaseContext<'_>,
    group: &NodeGroupSpec,
    ng: &Nodegroup,
) -> Result<(), FunctionError> {
    if let Some(t) = ng.launch_template().and_then(|t| t.id()) {
        ctx.record_new(
            Kind::LaunchTemplate,
            &ctx.names.launch_template(&group.name),
            ctx.tags(COMPONENT),
            json!({ "launchTemplateId": t }),
        )
        .await?;
    }
    ctx.record_new(
        Kind::Nodegroup,
        &ctx.names.nodegroup(&group.name),
        nodegroup_tags(ctx),
        json!({ "arn": ng.nodegroup_arn(), "group": group.name }),
    )
    .await
}

/// Whether the group is ACTIVE (false while CREATING, UPDATING or DEGRADED: poll again). A
/// failed group is a terminal error naming its health issues; one being deleted is retried,
/// to be created again once gone.
fn active(name: &str, ng: &Nodegroup) -> Result<bool, FunctionError> {
    match ng.status() {
        Some(NodegroupStatus::Active) => Ok(true),
        Some(status @ (NodegroupStatus::CreateFailed | NodegroupStatus::DeleteFailed)) => {
            let issues = health_issues(
                ng.health()
                    .map(|h| h.issues())
                    .unwrap_or_default()
                    .iter()
                    .map(|i| (i.code().map(|c| c.as_str()), i.message())),
            );
            Err(FunctionError::new(
                ErrorType::Terminal,
                format!("node group {name:?} is {}: {issues}", status.as_str()),
            ))
        }
        Some(NodegroupStatus::Deleting) => Err(FunctionError::new(
            ErrorType::Retryable,
            format!("node group {name:?} is being deleted; it is created again once gone"),
        )),
        _ => Ok(false),
    }
}

/// Brings the group's nodes to the desired launch template: a latest version that differs (IMDS,
/// volumes, encryption, user data) gets a new version with the desired data, and a group not on
/// the latest version is moved to it (EKS replaces the nodes, honouring PodDisruptionBudgets).
/// Checked in that order so that a crash between the two calls converges. True when an update
/// started. `observe` notes either difference.
async fn converge_template(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    group: &NodeGroupSpec,
    ng: &Nodegroup,
) -> Result<bool, FunctionError> {
    let template = ctx.names.launch_template(&group.name);
    let Some(found) = find_latest(&c.ec2, &template).await? else {
        return Ok(false);
    };
    let Some(latest) = latest_version(ctx, c, group, &found).await? else {
        return Ok(false);
    };
    let created_now = latest != version_of(found.number);
    follow_version(ctx, c, group, ng, &found.id, &latest, created_now).await
}

/// The template's latest version number, after adding a version with the desired data when the
/// latest one differs. None: `observe` noted the difference (the repair is a new version, which
/// the group then follows), or EC2 reported no version or no number.
async fn latest_version(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    group: &NodeGroupSpec,
    found: &Latest,
) -> Result<Option<String>, FunctionError> {
    let Some(data) = &found.data else {
        return Ok(None);
    };
    let data_key = ctx.output(outputs::DATA_KEY_ARN)?;
    let want = wanted_template(ctx, c, group, &data_key).await?;
    let have = TemplateShape::of(data);
    if have == want {
        return Ok(found.number.map(|v| v.to_string()));
    }
    let template = ctx.names.launch_template(&group.name);
    let resource = format!("{}/{template}", Kind::LaunchTemplate);
    let (desired, actual) = (json!(format!("{want:?}")), json!(format!("{have:?}")));
    if !ctx.differs(&resource, "launchTemplateData", desired, actual) {
        return Ok(None);
    }
    let tags = ctx.tags(COMPONENT);
    launch_template::create_version(&c.ec2, &found.id, &want, &tags).await
}

/// Moves the group to version `latest` of its template `id` (`observe`: notes that it is on
/// another). Groups made by earlier releases follow `$Latest`: moved only when a version was
/// just made (`created_now`). True when an update started.
async fn follow_version(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    group: &NodeGroupSpec,
    ng: &Nodegroup,
    id: &str,
    latest: &str,
    created_now: bool,
) -> Result<bool, FunctionError> {
    let current = ng.launch_template().and_then(|t| t.version());
    if current == Some(latest) || (current == Some("$Latest") && !created_now) {
        return Ok(false);
    }
    let name = ctx.names.nodegroup(&group.name);
    let resource = format!("{}/{name}", Kind::Nodegroup);
    let (desired, actual) = (json!(latest), json!(current));
    if !ctx.differs(&resource, "launchTemplateVersion", desired, actual) {
        return Ok(false);
    }
    let version = LaunchTemplateSpecification::builder()
        .id(id)
        .version(latest)
        .build();
    let result = c
        .eks
        .update_nodegroup_version()
        .cluster_name(ctx.names.cluster())
        .nodegroup_name(&name)
        .launch_template(version)
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        // Another update is running: the next poll moves the group.
        Err(e)
            if matches!(
                error_code(&e),
                Some("ResourceInUseException") | Some("InvalidRequestException")
            ) =>
        {
            Ok(true)
        }
        Err(e) => Err(aws_error("UpdateNodegroupVersion", e)),
    }
}

async fn describe(
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
        Err(e) => Err(aws_error("DescribeNodegroup", e)),
    }
}

/// Finds or creates the group's launch template; returns its id. Settings that differ on an
/// existing template are reported by `observe` (replacing it means rolling the node group).
async fn ensure_template(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    group: &NodeGroupSpec,
) -> Result<(String, String), FunctionError> {
    let name = ctx.names.launch_template(&group.name);
    if let Some(Latest { id, number, .. }) = find_latest(&c.ec2, &name).await? {
        return Ok((id, version_of(number)));
    }
    let data_key = ctx.output(outputs::DATA_KEY_ARN)?;
    let shape = wanted_template(ctx, c, group, &data_key).await?;
    let tags = ctx.tags(COMPONENT);
    let (id, version) = launch_template::create(&c.ec2, &name, &shape, &tags).await?;
    ctx.record_new(
        Kind::LaunchTemplate,
        &name,
        tags,
        json!({ "launchTemplateId": id }),
    )
    .await?;
    Ok((id, version))
}

async fn create_group(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    group: &NodeGroupSpec,
    (template_id, version): &(String, String),
) -> Result<Nodegroup, FunctionError> {
    let cluster = ctx.names.cluster();
    let name = ctx.names.nodegroup(&group.name);
    let role = ctx.output(outputs::NODE_ROLE_ARN)?;
    let subnets = ctx.output(outputs::PRIVATE_SUBNET_IDS)?;
    let taints = group
        .taints
        .iter()
        .map(|t| eks_taint(&t.key, &t.value, t.effect.eks_name()))
        .collect();
    let created = c
        .eks
        .create_nodegroup()
        .cluster_name(&cluster)
        .nodegroup_name(&name)
        .node_role(role)
        .set_subnets(Some(subnets))
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
                // run the template's latest data (see `converge_template`).
                .version(version)
                .build(),
        )
        .set_tags(Some(nodegroup_tags(ctx).into_iter().collect()))
        // The same token for every retry of this creation: EKS answers a repeat with the group.
        .client_request_token(format!("tenantry-{name}"))
        .send()
        .await;
    created_or_existing(c, &cluster, &name, created).await
}

/// The group CreateNodegroup made, or, when one of the name exists already (a retried creation
/// whose first attempt went through), the group as described.
async fn created_or_existing(
    c: &Clients,
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
            describe(&c.eks, cluster, name).await?.ok_or_else(|| {
                FunctionError::new(
                    ErrorType::Retryable,
                    format!("node group {name:?} exists but cannot be described yet"),
                )
            })
        }
        Err(e) => Err(aws_error("CreateNodegroup", e)),
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

async fn update_config(
    c: &Clients,
    cluster: &str,
    name: &str,
    change: &ConfigChange,
) -> Result<(), FunctionError> {
    tracing::info!(nodegroup = %name, ?change, "updating node group");
    let update = c
        .eks
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
        Err(e) => Err(aws_error("UpdateNodegroupConfig", e)),
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

// ----- delete -----

/// EKS names of the cluster's node groups tagged with this platform, other than those in
/// `skip` (described already by the caller).
async fn ours(
    ctx: &PhaseContext<'_>,
    c: &Clients,
    cluster: &str,
    skip: &BTreeSet<String>,
) -> Result<Vec<String>, FunctionError> {
    let mut names = Vec::new();
    let mut pages = c
        .eks
        .list_nodegroups()
        .cluster_name(cluster)
        .into_paginator()
        .items()
        .send();
    while let Some(name) = pages.next().await {
        match name {
            Ok(name) => names.push(name),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(Vec::new())
            }
            Err(e) => return Err(aws_error("ListNodegroups", e)),
        }
    }
    let mut out = Vec::new();
    for name in names.into_iter().filter(|n| !skip.contains(n)) {
        if let Some(ng) = describe(&c.eks, cluster, &name).await? {
            if ng
                .tags()
                .and_then(|t| t.get(TAG_PLATFORM))
                .map(String::as_str)
                == Some(ctx.platform_id())
            {
                out.push(name);
            }
        }
    }
    Ok(out)
}

/// Deletes node groups and, once each is gone, its launch template. True when all are gone.
async fn remove(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    cluster: &str,
    names: &[String],
) -> Result<bool, FunctionError> {
    let mut gone = true;
    for name in names {
        match describe(&c.eks, cluster, name).await? {
            Some(ng) if ng.status() == Some(&NodegroupStatus::Deleting) => gone = false,
            Some(_) => {
                let result = c
                    .eks
                    .delete_nodegroup()
                    .cluster_name(cluster)
                    .nodegroup_name(name)
                    .send()
                    .await;
                match result {
                    Ok(_) => {}
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|e| e.is_resource_not_found_exception()) => {}
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|e| e.is_resource_in_use_exception()) => {}
                    Err(e) => return Err(aws_error("DeleteNodegroup", e)),
                }
                gone = false;
            }
            None => {
                ctx.forget(Kind::Nodegroup, name).await?;
                let group = name
                    .strip_prefix(&format!("{}-", ctx.names.stem()))
                    .unwrap_or(name);
                let template = ctx.names.launch_template(group);
                // Looked up first so that deleting what is already gone makes no mutating call.
                if find_latest(&c.ec2, &template).await?.is_some() {
                    launch_template::remove(&c.ec2, &template).await?;
                }
                ctx.forget(Kind::LaunchTemplate, &template).await?;
            }
        }
    }
    Ok(gone)
}

async fn delete(ctx: &mut PhaseContext<'_>, c: &Clients) -> Result<PhaseOutput, FunctionError> {
    let cluster = ctx.names.cluster();
    // Groups of the spec plus any other group tagged with the platform (a removed one).
    let mut names: BTreeSet<String> = ctx
        .spec
        .effective_node_groups()
        .iter()
        .map(|g| ctx.names.nodegroup(&g.name))
        .collect();
    let others = ours(ctx, c, &cluster, &names).await?;
    names.extend(others);
    let names: Vec<String> = names.into_iter().collect();
    // Fargate profiles first: one at a time, beside the node groups' deletion.
    let profiles_gone = fargate::delete(ctx, c).await?;
    let gone = remove(ctx, c, &cluster, &names).await?;
    ctx.finish(gone && profiles_gone, BTreeMap::new()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::standard_node_groups;
    use crate::spec::AmiType;

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
    fn bottlerocket_template_requires_imdsv2_and_encrypts_both_volumes() {
        let g = &standard_node_groups()[0];
        let t = desired_template(g, "arn:key", None);
        assert_eq!(t.http_tokens, "required");
        assert_eq!(t.hop_limit, 1);
        assert_eq!(t.key_name, None);
        assert_eq!(t.volumes.len(), 2);
        assert!(t.volumes.iter().all(|v| v.encrypted
            && v.volume_type == "gp3"
            && v.kms_key.as_deref() == Some("arn:key")));
        assert_eq!(t.volumes[1].size_gib, 50);
        let toml = base64::engine::general_purpose::STANDARD
            .decode(t.user_data.unwrap())
            .unwrap();
        let toml = String::from_utf8(toml).unwrap();
        assert!(toml.contains("lockdown = \"integrity\""));
        assert!(toml.contains("[settings.host-containers.admin]\nenabled = false"));
        assert!(
            !toml.contains("max-pods"),
            "Bottlerocket's default without custom networking"
        );
        let t = desired_template(g, "arn:key", Some(20));
        let toml = base64::engine::general_purpose::STANDARD
            .decode(t.user_data.unwrap())
            .unwrap();
        let toml = String::from_utf8(toml).unwrap();
        assert!(
            toml.ends_with("\n[settings.kubernetes]\nmax-pods = 20\n"),
            "{toml}"
        );
    }

    #[test]
    fn al2023_template_has_one_root_volume_and_no_user_data() {
        let mut g = standard_node_groups()[0].clone();
        g.ami_type = AmiType::Al2023X86_64Standard;
        let t = desired_template(&g, "k", Some(20));
        assert_eq!(t.volumes.len(), 1);
        assert_eq!(t.volumes[0].device, "/dev/xvda");
        assert_eq!(t.user_data, None);
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
