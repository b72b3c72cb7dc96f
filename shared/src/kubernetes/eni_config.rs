//! VPC CNI custom networking: one `ENIConfig` per availability zone.
//!
//! With custom networking on (`AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG=true`), the VPC CNI gives pods
//! addresses from the secondary network interfaces it attaches to each node, and it creates those
//! interfaces in the subnet, with the security groups, of the `ENIConfig` whose name is the
//! node's value of [`ENI_CONFIG_LABEL`] (`ENI_CONFIG_LABEL_DEF`): here the node's zone. A node
//! whose zone has no `ENIConfig` gets no pod addresses at all, so Tenantry applies one per AZ,
//! naming that AZ's pod subnet and the cluster security group (the group EKS gives managed nodes
//! without their own, so pods and nodes share their rules, as AWS's guide for custom networking
//! advises).
//!
//! The `ENIConfig` CRD (`crd.k8s.amazonaws.com/v1alpha1`, cluster-scoped) is installed with the
//! VPC CNI; k8s-openapi has no type for it, so [`EniConfig`] declares the resource by hand.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::manifests::meta;
use crate::spec::PlatformSpec;

/// The node label whose value names a node's `ENIConfig` (`ENI_CONFIG_LABEL_DEF`).
pub const ENI_CONFIG_LABEL: &str = "topology.kubernetes.io/zone";

/// The VPC CNI setting that turns custom networking on.
pub const CUSTOM_NETWORK_ENV: &str = "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG";

/// The VPC CNI setting naming the node label that selects the `ENIConfig`.
pub const LABEL_DEF_ENV: &str = "ENI_CONFIG_LABEL_DEF";

/// An `ENIConfig` object (the VPC CNI's custom resource).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EniConfig {
    pub metadata: ObjectMeta,
    pub spec: EniConfigSpec,
}

/// Where the VPC CNI puts a node's pod interfaces.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EniConfigSpec {
    /// The pod subnet of the node's zone.
    pub subnet: String,
    /// The interfaces' security groups.
    pub security_groups: Vec<String>,
}

impl kube::Resource for EniConfig {
    type DynamicType = ();
    type Scope = kube::core::ClusterResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "ENIConfig".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "crd.k8s.amazonaws.com".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1alpha1".into()
    }
    fn api_version(_: &()) -> Cow<'_, str> {
        "crd.k8s.amazonaws.com/v1alpha1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "eniconfigs".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// One pod subnet: its availability zone and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSubnet {
    pub zone: String,
    pub subnet_id: String,
}

/// The `ENIConfig`s of a platform with custom networking (none without): one per pod subnet,
/// named for its zone.
pub fn eni_config_manifests(
    spec: &PlatformSpec,
    pod_subnets: &[PodSubnet],
    security_group: &str,
) -> Vec<Value> {
    if !spec.custom_networking() {
        return Vec::new();
    }
    pod_subnets
        .iter()
        .map(|s| {
            let object = EniConfig {
                metadata: meta(spec, &s.zone, None, &[]),
                spec: EniConfigSpec {
                    subnet: s.subnet_id.clone(),
                    security_groups: vec![security_group.to_owned()],
                },
            };
            let mut value = json!({
                "apiVersion": "crd.k8s.amazonaws.com/v1alpha1",
                "kind": "ENIConfig",
            });
            if let (Some(v), Ok(Value::Object(body))) =
                (value.as_object_mut(), serde_json::to_value(&object))
            {
                v.extend(body);
            }
            value
        })
        .collect()
}

/// The VPC CNI settings custom networking needs, merged into the add-on's `env`.
pub fn custom_networking_env() -> [(&'static str, &'static str); 2] {
    [
        (CUSTOM_NETWORK_ENV, "true"),
        (LABEL_DEF_ENV, ENI_CONFIG_LABEL),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::manifests::tests::example;

    fn subnets() -> Vec<PodSubnet> {
        ["a", "b", "c"]
            .iter()
            .map(|z| PodSubnet {
                zone: format!("us-east-1{z}"),
                subnet_id: format!("subnet-pods-{z}"),
            })
            .collect()
    }

    #[test]
    fn one_eni_config_per_zone_names_its_pod_subnet_and_the_cluster_group() {
        let spec = example();
        assert!(
            spec.custom_networking(),
            "the example uses custom networking"
        );
        let all = eni_config_manifests(&spec, &subnets(), "sg-cluster");
        assert_eq!(all.len(), 3);
        for (m, z) in all.iter().zip(["a", "b", "c"]) {
            assert_eq!(m["apiVersion"], "crd.k8s.amazonaws.com/v1alpha1");
            assert_eq!(m["kind"], "ENIConfig");
            assert_eq!(m["metadata"]["name"], format!("us-east-1{z}"));
            assert!(m["metadata"].get("namespace").is_none(), "cluster-scoped");
            assert_eq!(m["spec"]["subnet"], format!("subnet-pods-{z}"));
            assert_eq!(m["spec"]["securityGroups"], json!(["sg-cluster"]));
            crate::kubernetes::manifests::tests::assert_common_labels(m, "payments");
        }
    }

    #[test]
    fn no_eni_config_without_a_pod_cidr() {
        let mut spec = example();
        spec.network.pod_cidr = None;
        assert!(eni_config_manifests(&spec, &subnets(), "sg-cluster").is_empty());
    }
}
