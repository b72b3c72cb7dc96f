//! What a sweep read: a snapshot of one platform's live AWS and Kubernetes state, in the plain
//! terms the controls judge. [`super::gather`] fills it (the only code here that calls a
//! service); the controls read it; each result quotes the part it read as its evidence.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One platform's live state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Live {
    pub platform_id: String,
    pub account: String,
    pub region: String,
    /// What the request asked for (not judged: it names who and what is expected).
    pub asked: Asked,
    /// `None`: the cluster does not exist.
    pub cluster: Option<Cluster>,
    /// The versions EKS supports now (`DescribeClusterVersions`).
    pub versions: Vec<ClusterVersion>,
    /// `None`: the VPC does not exist.
    pub vpc_id: Option<String>,
    pub access_entries: Vec<AccessEntry>,
    pub addons: Vec<Addon>,
    pub nodegroups: Vec<Nodegroup>,
    /// The platform's subnets by id.
    pub subnets: BTreeMap<String, Subnet>,
    pub flow_logs: Vec<FlowLog>,
    pub vpc_endpoints: Vec<VpcEndpoint>,
    pub security_groups: Vec<SecurityGroup>,
    pub keys: Vec<Key>,
    pub log_groups: Vec<LogGroup>,
    pub roles: Vec<Role>,
    /// The cluster's OIDC issuer host and path (`oidc.eks.<region>.amazonaws.com/id/...`).
    pub oidc_issuer: Option<String>,
    /// `None`: the platform has no tenant-data bucket (no tenant yet).
    pub bucket: Option<Bucket>,
    /// The platform's and its tenants' container image repositories.
    #[serde(default)]
    pub repositories: Vec<Repository>,
    /// `None`: the Kubernetes API was not reachable (no cluster).
    pub kubernetes: Option<Kubernetes>,
}

/// The parts of the request a control needs to know who and what is expected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Asked {
    /// `pci-dss-v4` or `none`.
    pub profile: String,
    /// Principals the request names as cluster admins, and the cluster's creator.
    pub admins: Vec<String>,
    /// Kubernetes groups the request binds to admin roles.
    pub admin_groups: Vec<String>,
    /// The CNI (`vpc-cni`, `calico`).
    pub cni: String,
    /// The Active tenants' namespaces.
    pub tenant_namespaces: Vec<String>,
    /// The permissions boundary roles must carry, when the deployment sets one.
    pub role_boundary: Option<String>,
    /// ClusterRoles of platform components Tenantry installs from pinned upstream manifests
    /// (Calico's operator, which creates Calico's own RBAC and so needs `bind` and `escalate`),
    /// with their rules as vendored: judged as system roles while their live rules are exactly
    /// these, and as any other role once changed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub platform_roles: BTreeMap<String, Vec<RbacRule>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    pub name: String,
    pub arn: String,
    pub version: String,
    pub endpoint_public: bool,
    pub endpoint_private: bool,
    pub public_access_cidrs: Vec<String>,
    /// The KMS key ARN of the cluster's envelope encryption (secrets), if any.
    pub encryption_key: Option<String>,
    /// Control-plane log types enabled.
    pub log_types: Vec<String>,
    pub deletion_protection: bool,
    /// `API`, `API_AND_CONFIG_MAP`, `CONFIG_MAP`.
    pub authentication_mode: String,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterVersion {
    pub version: String,
    /// `STANDARD_SUPPORT`, `EXTENDED_SUPPORT`, ...
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessEntry {
    pub principal: String,
    /// `STANDARD`, `EC2_LINUX`, ...
    pub kind: String,
    pub groups: Vec<String>,
    /// Access policy ARNs associated at cluster scope.
    pub cluster_policies: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Addon {
    pub name: String,
    pub status: String,
    /// The configuration values, parsed (JSON or YAML), `null` when unset.
    pub configuration: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Nodegroup {
    pub name: String,
    pub arn: String,
    pub ami_type: String,
    pub subnets: Vec<String>,
    /// The SSH key of `remoteAccess`, if any.
    pub remote_access_key: Option<String>,
    /// The version of the launch template it runs, `None` without one.
    pub launch_template: Option<LaunchTemplate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchTemplate {
    pub id: String,
    pub version: String,
    /// `required` or `optional` (`None`: unset, which is optional).
    pub http_tokens: Option<String>,
    pub hop_limit: Option<i32>,
    pub key_name: Option<String>,
    /// For each block device: whether its volume is encrypted.
    pub volumes_encrypted: Vec<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subnet {
    pub id: String,
    pub map_public_ip: bool,
    /// Its route table sends traffic to an internet gateway.
    pub routes_to_internet_gateway: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowLog {
    pub id: String,
    pub resource: String,
    pub status: String,
    pub traffic_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VpcEndpoint {
    pub id: String,
    pub service: String,
    /// The endpoint policy, parsed (`null`: none).
    pub policy: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    /// Ingress rules open to the whole internet: `tcp 443 0.0.0.0/0`, ...
    pub open_ingress: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Key {
    pub id: String,
    pub arn: String,
    /// `Enabled`, `PendingDeletion`, ...
    pub state: String,
    pub rotation: bool,
    /// The key policy, parsed.
    pub policy: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogGroup {
    pub name: String,
    pub arn: String,
    pub kms_key: Option<String>,
    pub retention_days: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    pub name: String,
    pub arn: String,
    /// The tenant whose role it is, if any.
    pub tenant: Option<String>,
    /// The trust policy, parsed.
    pub trust: Value,
    pub managed_policies: Vec<String>,
    /// Inline policies by name, parsed.
    pub inline_policies: BTreeMap<String, Value>,
    pub boundary: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    pub name: String,
    /// `aws:kms`, `AES256`, ... (`None`: no default encryption).
    pub encryption: Option<String>,
    /// The four settings of the public access block (`None`: none set).
    pub public_access_block: Option<[bool; 4]>,
    /// The bucket policy, parsed (`null`: none).
    pub policy: Value,
}

/// An ECR repository, as `resources::repository::find` reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    pub name: String,
    pub arn: String,
    pub scan_on_push: bool,
    /// `IMMUTABLE`, `MUTABLE`, or a `*_WITH_EXCLUSION` variant (tags exempt from the rule).
    pub tag_mutability: String,
    /// Whether it has a lifecycle policy.
    pub lifecycle_policy: bool,
    /// The KMS key of its images (`None`: AES-256).
    pub kms_key: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Kubernetes {
    /// Namespace name → labels.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    pub cluster_role_bindings: Vec<Binding>,
    pub role_bindings: Vec<Binding>,
    pub cluster_roles: Vec<RbacRole>,
    pub roles: Vec<RbacRole>,
    /// Namespace → `automountServiceAccountToken` of its `default` service account (`None`:
    /// unset, which mounts).
    pub default_service_accounts: BTreeMap<String, Option<bool>>,
    /// Pods in the `default` namespace.
    pub default_namespace_pods: Vec<String>,
    pub network_policies: Vec<NetworkPolicy>,
    /// Namespaces with a ResourceQuota.
    pub quota_namespaces: Vec<String>,
    /// With `cni: calico`: the `spec.cni` of the Tigera operator's `Installation` `default`
    /// (`None`: no Installation, or the platform runs the VPC CNI and it was not read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calico_cni: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    /// `namespace/name` for a RoleBinding, `name` for a ClusterRoleBinding.
    pub name: String,
    /// `ClusterRole/cluster-admin`, `Role/x`.
    pub role: String,
    /// `Group/system:masters`, `User/alice`, `ServiceAccount/ns/name`.
    pub subjects: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RbacRole {
    pub name: String,
    /// Rules as `verbs on apiGroups/resources`, with `*` kept.
    pub rules: Vec<RbacRule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RbacRule {
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicy {
    pub namespace: String,
    pub name: String,
    /// Its pod selector selects every pod of the namespace.
    pub selects_all: bool,
    pub policy_types: Vec<String>,
    pub has_ingress_rules: bool,
    pub has_egress_rules: bool,
}

impl NetworkPolicy {
    /// Denies all ingress and egress to every pod of its namespace (other policies then allow).
    pub fn is_default_deny(&self) -> bool {
        self.selects_all
            && ["Ingress", "Egress"]
                .iter()
                .all(|t| self.policy_types.iter().any(|p| p == t))
            && !self.has_ingress_rules
            && !self.has_egress_rules
    }
}
