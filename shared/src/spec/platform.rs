//! The platform request and its cluster-level settings.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    default_true, AccessSpec, AddonSpec, AwsService, FargateSpec, IdentitySpec, NetworkSpec,
    NodeGroupSpec, RepositorySpec, TenantSpec, DEFAULT_KUBERNETES_VERSION,
};

/// A request for a multi-tenant Amazon EKS platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "Tenantry platform request")]
pub struct PlatformSpec {
    /// Platform id: a DNS-1123 label (lowercase letters, digits, `-`), starting with a letter,
    /// at most 20 characters so that every AWS name derived from it fits. Required.
    #[schemars(length(min = 1, max = 20), pattern(r"^[a-z]([a-z0-9-]*[a-z0-9])?$"))]
    pub id: String,
    /// Environment suffix appended to derived names (`<id>-<environment>`), e.g. `prod`: a
    /// DNS-1123 label starting with a letter, at most 8 characters. Required.
    #[schemars(length(min = 1, max = 8), pattern(r"^[a-z]([a-z0-9-]*[a-z0-9])?$"))]
    pub environment: String,
    /// AWS region, e.g. `us-east-1`. Required.
    pub region: String,
    /// IAM role in another account that every phase assumes (with Tenantry's external id) to
    /// build, observe and delete the platform there; the account deploys it from
    /// `infra/target-account-role.yaml` and must be one of the deployment's `TargetAccountIds`.
    /// Fixed once provisioned. Default: none, the platform is built in Tenantry's own account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_role_arn: Option<String>,
    /// Cost-allocation tags put on every resource, besides Tenantry's own `tenantry:*` tags
    /// (keys may not start with `tenantry:` or `aws:`). Default: none.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Kubernetes version (`major.minor`). Default: `1.35`. Versions Amazon EKS no longer
    /// supports are refused; supported today: 1.32, 1.33 (extended support), 1.34, 1.35, 1.36.
    #[serde(default = "default_kubernetes_version")]
    pub kubernetes_version: String,
    /// VPC, subnets, NAT, VPC endpoints and flow logs. Default: see each field.
    #[serde(default)]
    pub network: NetworkSpec,
    /// Cluster API endpoint access. Default: private on, public off.
    #[serde(default)]
    pub endpoint_access: EndpointAccess,
    /// KMS envelope encryption of Kubernetes secrets. Default: Tenantry creates a key (rotation on).
    #[serde(default)]
    pub encryption: EncryptionSpec,
    /// Control-plane logging. Default: all five log types, 90 days retention.
    #[serde(default)]
    pub logging: LoggingSpec,
    /// Managed node groups. Default (field omitted or `null`): the standard layout, `critical`
    /// (on-demand m5.large, tainted `workload=critical:NoSchedule`), `general` (on-demand
    /// t3.medium), `general-spot` (spot t3.medium) and `batch` (spot c5.large, tainted
    /// `workload=batch:NoSchedule`), all Bottlerocket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_groups: Option<Vec<NodeGroupSpec>>,
    /// EKS managed add-ons. Default (field omitted or `null`): coredns, kube-proxy, vpc-cni
    /// (network policy on; left out when `cni` is `calico`), aws-ebs-csi-driver,
    /// eks-pod-identity-agent, amazon-cloudwatch-observability, all at `latest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addons: Option<Vec<AddonSpec>>,
    /// Container network interface. Default: `vpc-cni`. Network policy enforcement is always on
    /// (tenant isolation depends on it).
    #[serde(default)]
    pub cni: Cni,
    /// Workload identity and the service roles Tenantry creates. Default: IRSA and Pod Identity on,
    /// cluster-autoscaler and ALB controller roles on, external-dns and external-secrets off.
    #[serde(default)]
    pub identity: IdentitySpec,
    /// Who may administer the cluster. Default: no extra admin principals, no OIDC identity provider.
    #[serde(default)]
    pub access: AccessSpec,
    /// Container Insights and alarms. Default: Container Insights on, alarms on to a new SNS topic.
    #[serde(default)]
    pub observability: ObservabilitySpec,
    /// Compliance profile the platform is checked against. Default: `cis-eks`.
    #[serde(default)]
    pub compliance_profile: ComplianceProfile,
    /// What the drift detector does with differences. Default: `report-only`.
    #[serde(default)]
    pub drift_remediation: DriftRemediation,
    /// Tenants onboarded with the platform. Default: none.
    #[serde(default)]
    pub tenants: Vec<TenantSpec>,
    /// Secrets Manager name prefixes (each ending in `/`, outside `tenantry/`) under which a
    /// tenant may place its `secretsPrefix`. Without them a tenant's prefix stays in its own
    /// space, `tenantry/<id>-<environment>/<tenant>/`. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenant_secrets_prefixes: Vec<String>,
    /// The actions tenants may ask for in their `awsAccess`, per service (`dynamodb`, `sqs`,
    /// `sns`, `s3`, `athena`), each from that service's catalogue (see the README). A tenant's
    /// grant is always cut down to this list, also when it narrows later. Default: none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tenant_aws_access: BTreeMap<AwsService, Vec<String>>,
    /// Container image repositories of the platform (at most 20), under
    /// `tenantry/<id>-<environment>/`: the nodes pull from them. Decommissioning removes them.
    /// Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub repositories: Vec<RepositorySpec>,
    /// AWS Fargate profiles of the platform, CoreDNS on Fargate, and Fargate logging (tenants
    /// ask for their own profile in their `fargate`). Fargate pods are not reached by
    /// NetworkPolicies: see the README. Default: nothing on Fargate.
    #[serde(default, skip_serializing_if = "FargateSpec::is_default")]
    pub fargate: FargateSpec,
}

pub(crate) fn default_kubernetes_version() -> String {
    DEFAULT_KUBERNETES_VERSION.to_string()
}

impl PlatformSpec {
    /// The node groups to create: the request's, or the standard layout when it names none.
    pub fn effective_node_groups(&self) -> Vec<NodeGroupSpec> {
        match &self.node_groups {
            Some(groups) => groups.clone(),
            None => super::standard_node_groups(),
        }
    }

    /// The add-ons to install: the request's, or the default set for the chosen CNI.
    pub fn effective_addons(&self) -> Vec<AddonSpec> {
        match &self.addons {
            Some(addons) => addons.clone(),
            None => super::default_addons(self.cni),
        }
    }

    /// Whether pods take their addresses from the pod subnets (VPC CNI custom networking): the
    /// VPC CNI with a `network.podCidr`. Tenantry then sets the add-on's custom-networking
    /// settings and applies one `ENIConfig` per AZ (see `kubernetes::eni_config_manifests`).
    pub fn custom_networking(&self) -> bool {
        self.cni == Cni::VpcCni && self.network.pod_cidr.is_some()
    }

    /// The network as built in the VPC: the request's, except that with Calico the pod CIDR is
    /// Calico's overlay IP pool and not part of the VPC (no secondary CIDR, no pod subnets:
    /// nothing in the VPC would use them, and VPC routes for the same range would only mislead).
    pub fn vpc_network(&self) -> std::borrow::Cow<'_, NetworkSpec> {
        match self.cni {
            Cni::VpcCni => std::borrow::Cow::Borrowed(&self.network),
            Cni::Calico => std::borrow::Cow::Owned(NetworkSpec {
                pod_cidr: None,
                ..self.network.clone()
            }),
        }
    }

    /// Whether anything of the platform runs on Fargate (a platform or tenant profile, or
    /// CoreDNS): then the pod execution role exists.
    pub fn uses_fargate(&self) -> bool {
        !self.fargate.is_empty() || self.tenants.iter().any(|t| t.fargate.is_some())
    }

    /// AWS partition of the platform's region (`aws`, `aws-cn` or `aws-us-gov`).
    pub fn partition(&self) -> &'static str {
        partition_of(&self.region)
    }
}

/// AWS partition a region belongs to.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Cluster API endpoint access.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointAccess {
    /// Private endpoint (reachable from inside the VPC). Default: `true`.
    #[serde(default = "default_true")]
    pub private: bool,
    /// Public endpoint allow-list (IPv4 CIDRs, public ranges only, at most 40). Empty means the
    /// public endpoint is off. Default: empty. `0.0.0.0/0` is refused under a compliance profile.
    #[serde(default)]
    pub public_access_cidrs: Vec<String>,
}

impl Default for EndpointAccess {
    fn default() -> Self {
        EndpointAccess {
            private: true,
            public_access_cidrs: Vec::new(),
        }
    }
}

impl EndpointAccess {
    /// Whether the public endpoint is on.
    pub fn public(&self) -> bool {
        !self.public_access_cidrs.is_empty()
    }
}

/// Envelope encryption of Kubernetes secrets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EncryptionSpec {
    /// ARN of an existing symmetric KMS key to use. Default: none, Tenantry creates a key with
    /// rotation on (alias `alias/tenantry/<id>-<environment>/cluster`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
}

/// Control-plane log types.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum ControlPlaneLogType {
    /// API server logs.
    Api,
    /// Kubernetes audit logs.
    Audit,
    /// AWS IAM authenticator logs.
    Authenticator,
    /// Controller manager logs.
    ControllerManager,
    /// Scheduler logs.
    Scheduler,
}

impl ControlPlaneLogType {
    /// All five log types, in EKS order.
    pub const ALL: [ControlPlaneLogType; 5] = [
        ControlPlaneLogType::Api,
        ControlPlaneLogType::Audit,
        ControlPlaneLogType::Authenticator,
        ControlPlaneLogType::ControllerManager,
        ControlPlaneLogType::Scheduler,
    ];

    /// The name EKS uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ControlPlaneLogType::Api => "api",
            ControlPlaneLogType::Audit => "audit",
            ControlPlaneLogType::Authenticator => "authenticator",
            ControlPlaneLogType::ControllerManager => "controllerManager",
            ControlPlaneLogType::Scheduler => "scheduler",
        }
    }
}

/// Control-plane logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoggingSpec {
    /// Log types to enable. Default: all five (api, audit, authenticator, controllerManager,
    /// scheduler). Duplicates are refused.
    #[serde(default = "default_log_types")]
    pub types: Vec<ControlPlaneLogType>,
    /// Retention of the cluster log group in days: a value CloudWatch Logs accepts (1, 3, 5, 7,
    /// 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288,
    /// 3653). Default: 90. At least 365 under `pci-dss-v4` (PCI DSS 10.5.1).
    #[serde(default = "default_retention")]
    pub retention_days: u32,
}

fn default_log_types() -> Vec<ControlPlaneLogType> {
    ControlPlaneLogType::ALL.to_vec()
}

pub(crate) fn default_retention() -> u32 {
    90
}

impl Default for LoggingSpec {
    fn default() -> Self {
        LoggingSpec {
            types: default_log_types(),
            retention_days: default_retention(),
        }
    }
}

/// Container network interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Cni {
    /// Amazon VPC CNI (managed add-on `vpc-cni`) with network policy enforcement.
    #[default]
    VpcCni,
    /// Calico v3.31 (Tigera operator) instead of the VPC CNI: Calico IPAM on `network.podCidr`
    /// (required) with VXLAN, network policy enforced by Calico, max pods 110 (Bottlerocket
    /// nodes only). The `vpc-cni` add-on must then be absent.
    Calico,
}

/// Observability settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObservabilitySpec {
    /// CloudWatch Container Insights (needs the `amazon-cloudwatch-observability` add-on).
    /// Default: `true`.
    #[serde(default = "default_true")]
    pub container_insights: bool,
    /// CloudWatch alarms on cluster health. Default: on, notifying a new SNS topic.
    #[serde(default)]
    pub alarms: AlarmsSpec,
}

impl Default for ObservabilitySpec {
    fn default() -> Self {
        ObservabilitySpec {
            container_insights: true,
            alarms: AlarmsSpec::default(),
        }
    }
}

/// CloudWatch alarms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlarmsSpec {
    /// Create the alarms (node CPU, node memory, failed nodes, pod restarts). Default: `true`.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Existing SNS topic to notify. Default: none, Tenantry creates `tenantry-<id>-<environment>-alarms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sns_topic_arn: Option<String>,
}

impl Default for AlarmsSpec {
    fn default() -> Self {
        AlarmsSpec {
            enabled: true,
            sns_topic_arn: None,
        }
    }
}

/// Compliance profile the platform is checked against (and which tightens validation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ComplianceProfile {
    /// No profile: only Tenantry's own rules apply.
    None,
    /// CIS Amazon EKS Benchmark: the public endpoint may not be open to `0.0.0.0/0`.
    #[default]
    CisEks,
    /// PCI DSS v4 (and CIS): additionally all five control-plane log types, log retention of at
    /// least 365 days (10.5.1), VPC flow logs on, private endpoint on.
    PciDssV4,
}

/// What the drift detector does with differences it finds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DriftRemediation {
    /// Repair drift automatically (never fighting the autoscaler over `desiredSize`).
    Auto,
    /// Report drift only.
    #[default]
    ReportOnly,
}
