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
//!   `min <= desired <= max`. The calls and owned fields are
//!   [`crate::resources::nodegroup`]'s and [`crate::resources::launch_template`]'s; this module
//!   holds the walk and what each group's template must contain.
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

use super::common::health_issues;
use super::outputs::{self, OutputMap};
use super::{Action, PhaseContext, PhaseInput, PhaseOutput};
use crate::aws::Clients;
use crate::deps::Deps;
use crate::error::{ErrorType, FunctionError};
use crate::kubernetes;
use crate::naming::TAG_PLATFORM;
use crate::plan::Phase;
use crate::resources::launch_template::{
    self, find_latest, version_of, Latest, TemplateShape, Volume,
};
use crate::resources::{nodegroup, Kind};
use crate::spec::{Cni, NodeGroupSpec};
use aws_sdk_eks::types::{Nodegroup, NodegroupStatus};
use base64::Engine;
use serde_json::json;
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
        Some(max_pods::for_instance_types(c.ec2(), &group.name, &group.instance_types).await?)
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
    let ng = match nodegroup::describe(c.eks(), &cluster, &name).await? {
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
    for (field, want, have) in nodegroup::immutable_differences(group, &ng) {
        if ctx.differs(&resource, &field, want.clone(), have.clone()) {
            tracing::warn!(nodegroup = %name, field, %want, %have, "node group differs in a way EKS cannot change in place");
        }
    }
    if converge_template(ctx, c, group, &ng).await? {
        return Ok((false, arn));
    }
    let change = nodegroup::config_change(group, &ng);
    if change.is_empty() || !config_differs(ctx, &resource, group, &ng, &change) {
        return Ok((true, arn));
    }
    nodegroup::update_config(c.eks(), &cluster, &name, &change).await?;
    Ok((false, arn))
}

/// Notes each in-place change of `change` (scaling bounds, not `desiredSize`, which is the
/// autoscaler's; labels; taints); whether to apply it now.
fn config_differs(
    ctx: &mut PhaseContext<'_>,
    resource: &str,
    group: &NodeGroupSpec,
    ng: &Nodegroup,
    change: &nodegroup::ConfigChange,
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
        let (desired, actual) = (
            json!(nodegroup::desired_taints(group)),
            json!(nodegroup::actual_taints(ng)),
        );
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
    let Some(found) = find_latest(c.ec2(), &template).await? else {
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
    launch_template::create_version(c.ec2(), &found.id, &want, &tags).await
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
    nodegroup::update_version(c.eks(), &ctx.names.cluster(), &name, id, latest).await
}

/// Finds or creates the group's launch template; returns its id. Settings that differ on an
/// existing template are reported by `observe` (replacing it means rolling the node group).
async fn ensure_template(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    group: &NodeGroupSpec,
) -> Result<(String, String), FunctionError> {
    let name = ctx.names.launch_template(&group.name);
    if let Some(Latest { id, number, .. }) = find_latest(c.ec2(), &name).await? {
        return Ok((id, version_of(number)));
    }
    let data_key = ctx.output(outputs::DATA_KEY_ARN)?;
    let shape = wanted_template(ctx, c, group, &data_key).await?;
    let tags = ctx.tags(COMPONENT);
    let (id, version) = launch_template::create(c.ec2(), &name, &shape, &tags).await?;
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
    template: &(String, String),
) -> Result<Nodegroup, FunctionError> {
    let placement = nodegroup::Placement {
        cluster: ctx.names.cluster(),
        name: ctx.names.nodegroup(&group.name),
        role: ctx.output(outputs::NODE_ROLE_ARN)?,
        subnets: ctx.output(outputs::PRIVATE_SUBNET_IDS)?,
    };
    let tags = nodegroup_tags(ctx).into_iter().collect();
    nodegroup::create(c.eks(), &placement, group, template, tags).await
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
    let names = nodegroup::list(c.eks(), cluster).await?;
    let mut out = Vec::new();
    for name in names.into_iter().filter(|n| !skip.contains(n)) {
        if let Some(ng) = nodegroup::describe(c.eks(), cluster, &name).await? {
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
        match nodegroup::describe(c.eks(), cluster, name).await? {
            Some(ng) if ng.status() == Some(&NodegroupStatus::Deleting) => gone = false,
            Some(_) => {
                nodegroup::remove(c.eks(), cluster, name).await?;
                gone = false;
            }
            None => {
                ctx.forget(Kind::Nodegroup, name).await?;
                let group = name
                    .strip_prefix(&format!("{}-", ctx.names.stem()))
                    .unwrap_or(name);
                let template = ctx.names.launch_template(group);
                // Looked up first so that deleting what is already gone makes no mutating call.
                if find_latest(c.ec2(), &template).await?.is_some() {
                    launch_template::remove(c.ec2(), &template).await?;
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
}
