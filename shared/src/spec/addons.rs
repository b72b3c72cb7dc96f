//! EKS managed add-ons.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Cni;

/// The version keyword that means "the newest version compatible with the cluster".
pub const ADDON_VERSION_LATEST: &str = "latest";

/// Add-ons Tenantry knows (the default set plus a few common EKS add-ons); other names are refused.
pub const KNOWN_ADDONS: &[&str] = &[
    "coredns",
    "kube-proxy",
    "vpc-cni",
    "aws-ebs-csi-driver",
    "aws-efs-csi-driver",
    "eks-pod-identity-agent",
    "amazon-cloudwatch-observability",
    "aws-guardduty-agent",
    "snapshot-controller",
    "adot",
    "eks-node-monitoring-agent",
    "aws-mountpoint-s3-csi-driver",
    "metrics-server",
];

/// An EKS managed add-on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddonSpec {
    /// Add-on name, e.g. `coredns` (one of the add-ons Tenantry knows). Required.
    pub name: String,
    /// `latest` (the newest version compatible with the cluster's Kubernetes version, resolved at
    /// provisioning time) or a pinned version such as `v1.19.0-eksbuild.1`. Default: `latest`.
    #[serde(default = "default_version")]
    pub version: String,
    /// Add-on configuration values (a JSON object, sent as the add-on's `configurationValues`).
    /// Default: none (the add-on's defaults; for `vpc-cni` Tenantry always sets
    /// `enableNetworkPolicy: "true"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_values: Option<serde_json::Map<String, serde_json::Value>>,
}

fn default_version() -> String {
    ADDON_VERSION_LATEST.to_string()
}

impl AddonSpec {
    /// An add-on at `latest` with no configuration values.
    pub fn latest(name: &str) -> AddonSpec {
        AddonSpec {
            name: name.to_string(),
            version: default_version(),
            configuration_values: None,
        }
    }
}

/// The default add-on set for a CNI: coredns, kube-proxy, vpc-cni (network policy on; not with
/// Calico), aws-ebs-csi-driver, eks-pod-identity-agent, amazon-cloudwatch-observability.
pub fn default_addons(cni: Cni) -> Vec<AddonSpec> {
    let mut out = vec![
        AddonSpec::latest("coredns"),
        AddonSpec::latest("kube-proxy"),
    ];
    if cni == Cni::VpcCni {
        let mut config = serde_json::Map::new();
        config.insert(
            "enableNetworkPolicy".to_string(),
            serde_json::Value::String("true".to_string()),
        );
        out.push(AddonSpec {
            configuration_values: Some(config),
            ..AddonSpec::latest("vpc-cni")
        });
    }
    out.push(AddonSpec::latest("aws-ebs-csi-driver"));
    out.push(AddonSpec::latest("eks-pod-identity-agent"));
    out.push(AddonSpec::latest("amazon-cloudwatch-observability"));
    out
}
