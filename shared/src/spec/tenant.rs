//! Tenants: a namespace, its quotas, and the AWS resources scoped to it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use super::aws_access::AwsService;
use super::default_true;
use super::fargate::TenantFargateSpec;
use super::registry::RepositorySpec;

/// A tenant of a platform (onboarded with the platform or by a tenant request).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "Tenantry tenant request")]
pub struct TenantSpec {
    /// Tenant name, also its namespace: a DNS-1123 label (lowercase ASCII letters, digits, `-`),
    /// starting with a letter, at most 23 characters (the tenant IAM role
    /// `tenantry-<id>-<environment>-t-<name>` must fit in 64). `default`, `kube-*`,
    /// `tenantry*` and the namespaces of platform components are reserved. Required.
    #[schemars(length(min = 1, max = 23), pattern(r"^[a-z]([a-z0-9-]*[a-z0-9])?$"))]
    pub name: String,
    /// IAM role or user ARNs given namespace-scoped edit access to the tenant's namespace.
    /// Default: none.
    #[serde(default)]
    pub owners: Vec<String>,
    /// ResourceQuota of the namespace. Default: see each field.
    #[serde(default)]
    pub quotas: TenantQuotas,
    /// LimitRange defaults for containers of the namespace. Default: see each field.
    #[serde(default)]
    pub limits: LimitDefaults,
    /// Prefix of the platform bucket the tenant role may use (relative, ends with `/`, characters
    /// `A-Za-z0-9/_.-`, no `..`). Default: `tenants/<name>/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_prefix: Option<String>,
    /// Give the tenant its own KMS key (rotation on), the only key its role may use.
    /// Default: `true`.
    #[serde(default = "default_true")]
    pub own_kms_key: bool,
    /// Secrets Manager name prefix the tenant role may read (characters `A-Za-z0-9/_+=.@-`, no
    /// wildcards). Default: `tenantry/<id>-<environment>/<name>/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_prefix: Option<String>,
    /// Cost centre, put in the `tenantry:cost-centre` tag of the tenant's resources (tag-value
    /// characters). Required.
    pub cost_centre: String,
    /// Other tenants of the platform whose pods may connect to this tenant's pods, each on the
    /// ports given (at most 8 rules, one per tenant). Each rule becomes two NetworkPolicies:
    /// ingress into this namespace from the named tenant's, and egress from the named tenant's
    /// namespace to this one; everything else stays denied. A rule naming a tenant that is
    /// offboarded is removed with it. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub allow_from: Vec<AllowFrom>,
    /// AWS actions the tenant's role gets on the tenant's own resources, per service: tables,
    /// queues, topics and Athena workgroups named `<id>-<environment>_<tenant>_*`, and objects
    /// under its S3 prefix. Each action must be one the platform approves
    /// (`tenantAwsAccess`). Default: none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aws_access: BTreeMap<AwsService, Vec<String>>,
    /// Container image repositories of the tenant (at most 10), under
    /// `tenantry/<id>-<environment>/<tenant>/`: the tenant's role may push and pull, the nodes pull.
    /// Offboarding removes them unless the tenant's data is retained. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub repositories: Vec<RepositorySpec>,
    /// Run the tenant's pods (all, or those the selectors name) on AWS Fargate: a Fargate
    /// profile of the tenant's own namespace, created at onboarding and deleted at offboarding.
    /// NetworkPolicies do not reach Fargate pods (see the README); refused with `cni: calico`.
    /// Default: none, the tenant's pods run on the node groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fargate: Option<TenantFargateSpec>,
}

/// Traffic another tenant may send to this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllowFrom {
    /// The tenant whose pods may connect: another tenant of the same platform. Required.
    pub tenant: String,
    /// Destination ports on this tenant's pods: 1 to 8 distinct ports, each 1-65535. Required.
    #[schemars(length(min = 1, max = 8))]
    pub ports: Vec<u16>,
    /// `TCP` or `UDP`. Default: `TCP`.
    #[serde(default)]
    pub protocol: Protocol,
}

/// A transport protocol of a NetworkPolicy port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
}

impl TenantSpec {
    /// The S3 prefix: the request's or `tenants/<name>/`.
    pub fn effective_s3_prefix(&self) -> String {
        self.s3_prefix
            .clone()
            .unwrap_or_else(|| format!("tenants/{}/", self.name))
    }

    /// The Secrets Manager prefix: the request's or `tenantry/<stem>/<name>/`.
    pub fn effective_secrets_prefix(&self, stem: &str) -> String {
        self.secrets_prefix
            .clone()
            .unwrap_or_else(|| format!("tenantry/{stem}/{}/", self.name))
    }
}

/// ResourceQuota of a tenant namespace (Kubernetes quantities such as `4`, `500m`, `8Gi`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantQuotas {
    /// `requests.cpu`. Default: `4`.
    #[serde(default = "q_requests_cpu")]
    pub requests_cpu: String,
    /// `requests.memory`. Default: `8Gi`.
    #[serde(default = "q_requests_memory")]
    pub requests_memory: String,
    /// `limits.cpu`. Default: `8`.
    #[serde(default = "q_limits_cpu")]
    pub limits_cpu: String,
    /// `limits.memory`. Default: `16Gi`.
    #[serde(default = "q_limits_memory")]
    pub limits_memory: String,
    /// `requests.storage`. Default: `100Gi`.
    #[serde(default = "q_requests_storage")]
    pub requests_storage: String,
    /// `pods`. Default: 50.
    #[serde(default = "q_pods")]
    pub pods: u32,
    /// `services`. Default: 20.
    #[serde(default = "q_services")]
    pub services: u32,
    /// `services.loadbalancers`. Default: 2.
    #[serde(default = "q_load_balancers")]
    pub load_balancers: u32,
    /// `persistentvolumeclaims`. Default: 10.
    #[serde(default = "q_pvcs")]
    pub persistent_volume_claims: u32,
}

fn q_requests_cpu() -> String {
    "4".into()
}
fn q_requests_memory() -> String {
    "8Gi".into()
}
fn q_limits_cpu() -> String {
    "8".into()
}
fn q_limits_memory() -> String {
    "16Gi".into()
}
fn q_requests_storage() -> String {
    "100Gi".into()
}
fn q_pods() -> u32 {
    50
}
fn q_services() -> u32 {
    20
}
fn q_load_balancers() -> u32 {
    2
}
fn q_pvcs() -> u32 {
    10
}

impl Default for TenantQuotas {
    fn default() -> Self {
        TenantQuotas {
            requests_cpu: q_requests_cpu(),
            requests_memory: q_requests_memory(),
            limits_cpu: q_limits_cpu(),
            limits_memory: q_limits_memory(),
            requests_storage: q_requests_storage(),
            pods: q_pods(),
            services: q_services(),
            load_balancers: q_load_balancers(),
            persistent_volume_claims: q_pvcs(),
        }
    }
}

/// LimitRange defaults for containers (Kubernetes quantities). Each default request must not
/// exceed its default limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LimitDefaults {
    /// Default CPU request. Default: `100m`.
    #[serde(default = "l_request_cpu")]
    pub default_request_cpu: String,
    /// Default memory request. Default: `128Mi`.
    #[serde(default = "l_request_memory")]
    pub default_request_memory: String,
    /// Default CPU limit. Default: `500m`.
    #[serde(default = "l_cpu")]
    pub default_cpu: String,
    /// Default memory limit. Default: `512Mi`.
    #[serde(default = "l_memory")]
    pub default_memory: String,
}

fn l_request_cpu() -> String {
    "100m".into()
}
fn l_request_memory() -> String {
    "128Mi".into()
}
fn l_cpu() -> String {
    "500m".into()
}
fn l_memory() -> String {
    "512Mi".into()
}

impl Default for LimitDefaults {
    fn default() -> Self {
        LimitDefaults {
            default_request_cpu: l_request_cpu(),
            default_request_memory: l_request_memory(),
            default_cpu: l_cpu(),
            default_memory: l_memory(),
        }
    }
}
