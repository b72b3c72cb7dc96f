//! Managed node groups.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A managed node group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeGroupSpec {
    /// Name: a DNS-1123 label starting with a letter, unique in the platform, at most 33
    /// characters (the EKS node group is named `<id>-<environment>-<name>`, at most 63). Required.
    #[schemars(length(min = 1, max = 33), pattern(r"^[a-z]([a-z0-9-]*[a-z0-9])?$"))]
    pub name: String,
    /// What the group is for; sets the `tenantry.io/role` node label. Required.
    pub role: NodeRole,
    /// EC2 instance types, e.g. `m5.large`; all must match the AMI's architecture.
    /// Default: `["t3.medium"]`.
    #[serde(default = "default_instance_types")]
    pub instance_types: Vec<String>,
    /// Capacity type. Default: `ON_DEMAND`.
    #[serde(default)]
    pub capacity_type: CapacityType,
    /// AMI type. Default: `BOTTLEROCKET_x86_64`.
    #[serde(default)]
    pub ami_type: AmiType,
    /// Minimum size. Default: 1.
    #[serde(default = "default_min")]
    pub min_size: u32,
    /// Desired size at creation (afterwards the cluster autoscaler owns it). Default: 2.
    #[serde(default = "default_desired")]
    pub desired_size: u32,
    /// Maximum size (at least 1). Default: 5.
    #[serde(default = "default_max")]
    pub max_size: u32,
    /// Kubernetes node labels (keys may not use the `kubernetes.io/`, `k8s.io/` or
    /// `eks.amazonaws.com/` prefixes). Default: none.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Kubernetes node taints. Default: none.
    #[serde(default)]
    pub taints: Vec<Taint>,
    /// Root volume size in GiB (20-16384), encrypted. Default: 50.
    #[serde(default = "default_disk")]
    #[schemars(range(min = 20, max = 16384))]
    pub disk_size_gib: u32,
}

fn default_instance_types() -> Vec<String> {
    vec!["t3.medium".to_string()]
}
fn default_min() -> u32 {
    1
}
fn default_desired() -> u32 {
    2
}
fn default_max() -> u32 {
    5
}
fn default_disk() -> u32 {
    50
}

/// What a node group is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NodeRole {
    /// Platform-critical workloads (on-demand, tainted).
    Critical,
    /// General workloads.
    General,
    /// Interruptible batch jobs (spot, tainted).
    Batch,
}

impl NodeRole {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeRole::Critical => "critical",
            NodeRole::General => "general",
            NodeRole::Batch => "batch",
        }
    }
}

/// EC2 capacity type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CapacityType {
    /// On-demand instances.
    #[default]
    OnDemand,
    /// Spot instances.
    Spot,
}

/// Node AMI type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AmiType {
    /// Bottlerocket, x86_64.
    #[default]
    #[serde(rename = "BOTTLEROCKET_x86_64")]
    BottlerocketX86_64,
    /// Bottlerocket, arm64 (Graviton instance types).
    #[serde(rename = "BOTTLEROCKET_ARM_64")]
    BottlerocketArm64,
    /// Amazon Linux 2023, x86_64.
    #[serde(rename = "AL2023_x86_64_STANDARD")]
    Al2023X86_64Standard,
    /// Amazon Linux 2023, arm64 (Graviton instance types).
    #[serde(rename = "AL2023_ARM_64_STANDARD")]
    Al2023Arm64Standard,
}

impl AmiType {
    /// The EKS API name.
    pub fn as_str(self) -> &'static str {
        match self {
            AmiType::BottlerocketX86_64 => "BOTTLEROCKET_x86_64",
            AmiType::BottlerocketArm64 => "BOTTLEROCKET_ARM_64",
            AmiType::Al2023X86_64Standard => "AL2023_x86_64_STANDARD",
            AmiType::Al2023Arm64Standard => "AL2023_ARM_64_STANDARD",
        }
    }

    /// Whether the AMI is for arm64 (Graviton) instances.
    pub fn is_arm(self) -> bool {
        matches!(
            self,
            AmiType::BottlerocketArm64 | AmiType::Al2023Arm64Standard
        )
    }

    /// Whether the nodes run Bottlerocket.
    pub fn is_bottlerocket(self) -> bool {
        matches!(
            self,
            AmiType::BottlerocketX86_64 | AmiType::BottlerocketArm64
        )
    }
}

/// A Kubernetes node taint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Taint {
    /// Key: a Kubernetes qualified name (`[prefix/]name`). Required.
    pub key: String,
    /// Value (at most 63 characters, label-value syntax). Default: empty.
    #[serde(default)]
    pub value: String,
    /// Effect. Required.
    pub effect: TaintEffect,
}

/// Taint effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TaintEffect {
    /// Do not schedule pods that do not tolerate the taint.
    NoSchedule,
    /// Avoid scheduling pods that do not tolerate the taint.
    PreferNoSchedule,
    /// Evict running pods that do not tolerate the taint.
    NoExecute,
}

impl TaintEffect {
    /// The EKS API name (`NO_SCHEDULE`...).
    pub fn eks_name(self) -> &'static str {
        match self {
            TaintEffect::NoSchedule => "NO_SCHEDULE",
            TaintEffect::PreferNoSchedule => "PREFER_NO_SCHEDULE",
            TaintEffect::NoExecute => "NO_EXECUTE",
        }
    }
}

fn group(
    name: &str,
    role: NodeRole,
    instance: &str,
    capacity: CapacityType,
    sizes: (u32, u32, u32),
    taint: Option<&str>,
) -> NodeGroupSpec {
    let mut labels = BTreeMap::new();
    labels.insert("tenantry.io/role".to_string(), role.as_str().to_string());
    labels.insert(
        "tenantry.io/capacity".to_string(),
        match capacity {
            CapacityType::OnDemand => "on-demand",
            CapacityType::Spot => "spot",
        }
        .to_string(),
    );
    NodeGroupSpec {
        name: name.to_string(),
        role,
        instance_types: vec![instance.to_string()],
        capacity_type: capacity,
        ami_type: AmiType::BottlerocketX86_64,
        min_size: sizes.0,
        desired_size: sizes.1,
        max_size: sizes.2,
        labels,
        taints: taint
            .map(|value| Taint {
                key: "workload".to_string(),
                value: value.to_string(),
                effect: TaintEffect::NoSchedule,
            })
            .into_iter()
            .collect(),
        disk_size_gib: default_disk(),
    }
}

/// The standard layout, used when a request names no node groups:
///
/// | name           | role     | capacity  | instance  | min/desired/max | taint                        |
/// |----------------|----------|-----------|-----------|-----------------|------------------------------|
/// | `critical`     | critical | on-demand | m5.large  | 2/2/4           | `workload=critical:NoSchedule` |
/// | `general`      | general  | on-demand | t3.medium | 1/2/6           | none                         |
/// | `general-spot` | general  | spot      | t3.medium | 0/2/10          | none                         |
/// | `batch`        | batch    | spot      | c5.large  | 0/0/10          | `workload=batch:NoSchedule`  |
///
/// All Bottlerocket x86_64, 50 GiB, labelled `tenantry.io/role` and `tenantry.io/capacity`.
/// The general pair gives the autoscaler's priority expander a spot group to prefer.
pub fn standard_node_groups() -> Vec<NodeGroupSpec> {
    vec![
        group(
            "critical",
            NodeRole::Critical,
            "m5.large",
            CapacityType::OnDemand,
            (2, 2, 4),
            Some("critical"),
        ),
        group(
            "general",
            NodeRole::General,
            "t3.medium",
            CapacityType::OnDemand,
            (1, 2, 6),
            None,
        ),
        group(
            "general-spot",
            NodeRole::General,
            "t3.medium",
            CapacityType::Spot,
            (0, 2, 10),
            None,
        ),
        group(
            "batch",
            NodeRole::Batch,
            "c5.large",
            CapacityType::Spot,
            (0, 0, 10),
            Some("batch"),
        ),
    ]
}
