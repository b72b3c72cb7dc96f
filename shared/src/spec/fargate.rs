//! AWS Fargate: profiles that run selected pods on Fargate instead of on the node groups.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The most selectors an EKS Fargate profile takes.
pub const MAX_FARGATE_SELECTORS: usize = 5;
/// The most labels one selector of a Fargate profile takes.
pub const MAX_FARGATE_LABELS: usize = 5;
/// The most platform-level Fargate profiles a request may ask for (EKS allows 10 per cluster;
/// the CoreDNS profile and the tenants' profiles come on top, see the README).
pub const MAX_PLATFORM_FARGATE_PROFILES: usize = 5;
/// The longest profile name in a request: `<stem>-p-<name>` must fit the 100 characters EKS
/// allows with the longest stem.
pub const MAX_FARGATE_PROFILE_NAME_LEN: usize = 60;

/// Fargate settings of the platform. Fargate pods run in the platform's private subnets with
/// the platform's pod execution role (`tenantry-<id>-<environment>-fargate-pods`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FargateSpec {
    /// Platform-level profiles (at most 5), each created as the EKS Fargate profile
    /// `<id>-<environment>-p-<name>`. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5))]
    pub profiles: Vec<FargateProfileSpec>,
    /// Run CoreDNS on Fargate: a profile `<id>-<environment>-coredns` selecting
    /// `kube-system` pods labelled `k8s-app: kube-dns`, created before the `coredns` add-on,
    /// whose configuration then carries `computeType: Fargate`. Default: `false`.
    #[serde(default)]
    pub core_dns: bool,
    /// Ship the logs of Fargate pods to CloudWatch Logs with Fargate's built-in Fluent Bit: the
    /// namespace `aws-observability` with its `aws-logging` ConfigMap, into the log group
    /// `/aws/eks/<id>-<environment>/fargate` (encrypted with the platform's logs key), and a
    /// logs policy on the pod execution role for that group only. Default: `false`.
    #[serde(default)]
    pub logging: bool,
}

impl FargateSpec {
    /// Whether the request leaves the field as its default (it is then not serialized).
    pub fn is_default(&self) -> bool {
        *self == FargateSpec::default()
    }

    /// Whether the platform asks for any platform-level profile (CoreDNS's included).
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty() && !self.core_dns
    }
}

/// A platform-level Fargate profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FargateProfileSpec {
    /// Name: 1 to 60 characters, letters, digits, `-` and `_`, starting with a letter or digit,
    /// unique in the platform. Required.
    #[schemars(length(min = 1, max = 60), pattern(r"^[0-9A-Za-z][0-9A-Za-z_-]*$"))]
    pub name: String,
    /// Which pods run on Fargate: 1 to 5 selectors; a pod matching any one of them does.
    /// Required.
    #[schemars(length(min = 1, max = 5))]
    pub selectors: Vec<FargateSelector>,
}

/// Pods of one namespace, optionally narrowed by labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FargateSelector {
    /// The namespace: a DNS-1123 label, no wildcards. `kube-system` is refused (use `coreDns`);
    /// a tenant's namespace is selected by the tenant's own `fargate`. Required.
    pub namespace: String,
    /// Labels a pod must all carry (at most 5). Default: none, every pod of the namespace.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A tenant's Fargate profile: pods of the tenant's own namespace only, created as
/// `<id>-<environment>-t-<tenant>` at onboarding and deleted at offboarding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantFargateSpec {
    /// Which of the tenant's pods run on Fargate: 1 to 5 selectors. Default: one selector, all
    /// pods of the namespace.
    #[serde(default = "every_pod")]
    #[schemars(length(min = 1, max = 5))]
    pub selectors: Vec<TenantFargateSelector>,
}

fn every_pod() -> Vec<TenantFargateSelector> {
    vec![TenantFargateSelector::default()]
}

/// Pods of the tenant's namespace, optionally narrowed by labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantFargateSelector {
    /// The namespace, if given, must be the tenant's own (its name): a tenant never selects
    /// another namespace. Default: the tenant's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels a pod must all carry (at most 5). Default: none, every pod of the namespace.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}
