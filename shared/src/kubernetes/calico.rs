//! Calico in place of the VPC CNI (`cni: calico`): the Tigera operator and its `Installation`.
//!
//! What Tenantry applies, in order (bootstrap's `calico` item, before any node group exists:
//! without a CNI, EKS nodes never become Ready and a managed node group never turns ACTIVE):
//! 1. the operator's CustomResourceDefinitions and the operator itself (namespace
//!    `tigera-operator`, its service account, RBAC and Deployment), the upstream manifests of
//!    Calico [`CALICO_VERSION`] vendored under `shared/manifests/calico/<version>/` with their
//!    source (`SOURCE.md`); the operator image (`quay.io/tigera/operator`, [`OPERATOR_VERSION`])
//!    deploys exactly that Calico release, so both versions are pinned by the vendored files;
//! 2. the `Installation` named `default` ([`installation`]): `kubernetesProvider: EKS`, the
//!    Calico CNI with Calico IPAM, and one IP pool on the platform's `network.podCidr` with VXLAN
//!    encapsulation (no BGP, which VPC routing would not carry) and outgoing NAT. The operator
//!    turns that pool into the `IPPool` `default-ipv4-ippool` and runs `calico-node`, which then
//!    enforces Kubernetes NetworkPolicies (the tenants' default-deny ones).
//!
//! Pods get their addresses from the pool on Calico's overlay, not from the VPC: the pod CIDR is
//! not added to the VPC and no pod subnets exist (see `PlatformSpec::vpc_pod_cidr`), and the
//! nodes' max pods is no longer bound by their network interfaces ([`CALICO_MAX_PODS`]).
//!
//! `objects.json` (0.3 MB) is derived from the upstream YAML by `scripts/vendor_calico.py` (the
//! CRD schemas' descriptions removed: 1.2 MB of JSON otherwise). Only the binaries that call
//! [`calico_manifests`] embed it: the bootstrap function, the compliance function (the
//! operator's ClusterRole as vendored) and the CLI (`tenantry plan`); the linker drops it from
//! the others (checked: the cluster function's binary does not contain it).

use std::borrow::Cow;
use std::sync::LazyLock;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::manifests::common_labels;
use crate::spec::{Cni, PlatformSpec};

/// The pinned Calico release whose manifests are vendored.
pub const CALICO_VERSION: &str = "v3.31.7";
/// The Tigera operator release of [`CALICO_VERSION`] (its Deployment's image tag).
pub const OPERATOR_VERSION: &str = "v1.40.15";
/// The name of the operator's `Installation` (the operator reads only `default`).
pub const INSTALLATION_NAME: &str = "default";
/// The name the operator gives the IP pool it creates from the Installation.
pub const IP_POOL_NAME: &str = "default-ipv4-ippool";
/// Max pods of a node under Calico: the Kubernetes default (Calico IPAM is not bound by the
/// node's network interfaces, as the VPC CNI is).
pub const CALICO_MAX_PODS: u32 = 110;
/// The namespace the operator runs in.
pub const OPERATOR_NAMESPACE: &str = "tigera-operator";

/// The operator's `Installation` (`operator.tigera.io/v1`, cluster-scoped): k8s-openapi has no
/// type for it, so the resource is declared by hand (its body stays JSON: [`installation`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Installation {
    pub metadata: ObjectMeta,
    pub spec: Value,
}

impl kube::Resource for Installation {
    type DynamicType = ();
    type Scope = kube::core::ClusterResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Installation".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "operator.tigera.io".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn api_version(_: &()) -> Cow<'_, str> {
        "operator.tigera.io/v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "installations".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The vendored objects (CRDs, then the operator), parsed once.
static VENDORED: LazyLock<Vec<Value>> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../../manifests/calico/v3.31.7/objects.json"))
        // The file is checked in, and a unit test parses it: a failure here is a broken build.
        .unwrap_or_default()
});

/// The vendored upstream objects, in apply order (CRDs first).
pub fn vendored_objects() -> &'static [Value] {
    &VENDORED
}

/// The `Installation` of a platform on `pod_cidr`.
pub fn installation(spec: &PlatformSpec, pod_cidr: &str) -> Value {
    json!({
        "apiVersion": "operator.tigera.io/v1",
        "kind": "Installation",
        "metadata": { "name": INSTALLATION_NAME, "labels": common_labels(spec) },
        "spec": {
            "kubernetesProvider": "EKS",
            "variant": "Calico",
            "cni": { "type": "Calico", "ipam": { "type": "Calico" } },
            "calicoNetwork": {
                "bgp": "Disabled",
                "ipPools": [{
                    "name": IP_POOL_NAME,
                    "cidr": pod_cidr,
                    "encapsulation": "VXLAN",
                    "natOutgoing": "Enabled",
                    "nodeSelector": "all()",
                }],
            },
        },
    })
}

/// What Calico needs in the cluster, in apply order: the vendored objects (with Tenantry's
/// common labels added) and the `Installation`. Empty unless `cni` is `calico`; validation
/// refuses `calico` without `network.podCidr`.
pub fn calico_manifests(spec: &PlatformSpec) -> Vec<Value> {
    if spec.cni != Cni::Calico {
        return Vec::new();
    }
    let labels = common_labels(spec);
    let mut out: Vec<Value> = vendored_objects()
        .iter()
        .map(|object| {
            let mut object = object.clone();
            if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                let all = meta.entry("labels").or_insert_with(|| json!({}));
                if let Some(all) = all.as_object_mut() {
                    for (k, v) in &labels {
                        all.insert(k.clone(), json!(v));
                    }
                }
            }
            object
        })
        .collect();
    let pod_cidr = spec.network.pod_cidr.as_deref().unwrap_or_default();
    out.push(installation(spec, pod_cidr));
    out
}

/// Whether a manifest is one of Calico's (the bootstrap function's `calico` item applies these).
pub fn is_calico_object(manifest: &Value) -> bool {
    let api_version = manifest["apiVersion"].as_str().unwrap_or_default();
    let name = manifest["metadata"]["name"].as_str().unwrap_or_default();
    let namespace = manifest["metadata"]["namespace"].as_str();
    api_version.starts_with("operator.tigera.io/")
        || namespace == Some(OPERATOR_NAMESPACE)
        || name.starts_with("tigera-operator")
        || (manifest["kind"] == "CustomResourceDefinition"
            && vendored_objects()
                .iter()
                .any(|o| o["metadata"]["name"].as_str() == Some(name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::manifests::tests::{assert_common_labels, calico_example, example};

    fn calico() -> PlatformSpec {
        calico_example()
    }

    #[test]
    fn the_vendored_objects_are_the_operator_and_its_crds_of_the_pinned_release() {
        let objects = vendored_objects();
        assert!(!objects.is_empty(), "objects.json parses");
        let crds = objects
            .iter()
            .take_while(|o| o["kind"] == "CustomResourceDefinition")
            .count();
        assert_eq!(crds, 32, "every CRD first");
        let rest: Vec<(&str, &str)> = objects[crds..]
            .iter()
            .map(|o| {
                (
                    o["kind"].as_str().unwrap_or_default(),
                    o["metadata"]["name"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            rest,
            [
                ("Namespace", "tigera-operator"),
                ("ServiceAccount", "tigera-operator"),
                ("ClusterRole", "tigera-operator-secrets"),
                ("ClusterRole", "tigera-operator"),
                ("ClusterRoleBinding", "tigera-operator"),
                ("RoleBinding", "tigera-operator-secrets"),
                ("Deployment", "tigera-operator"),
            ]
        );
        let image =
            &objects[objects.len() - 1]["spec"]["template"]["spec"]["containers"][0]["image"];
        assert_eq!(
            image,
            &json!(format!("quay.io/tigera/operator:{OPERATOR_VERSION}"))
        );
        assert!(objects.iter().any(|o| o["metadata"]["name"]
            == "installations.operator.tigera.io"
            && o["spec"]["scope"] == "Cluster"));
    }

    #[test]
    fn the_installation_is_calico_ipam_on_the_pod_cidr_with_vxlan_for_eks() {
        let all = calico_manifests(&calico());
        let installation = all.last().expect("installation last");
        assert_eq!(installation["kind"], "Installation");
        assert_eq!(installation["metadata"]["name"], "default");
        let spec = &installation["spec"];
        assert_eq!(spec["kubernetesProvider"], "EKS");
        assert_eq!(
            spec["cni"],
            json!({"type": "Calico", "ipam": {"type": "Calico"}})
        );
        let pool = &spec["calicoNetwork"]["ipPools"][0];
        assert_eq!(pool["cidr"], "100.64.0.0/16");
        assert_eq!(pool["encapsulation"], "VXLAN");
        assert_eq!(spec["calicoNetwork"]["bgp"], "Disabled");
        for m in &all {
            assert_common_labels(m, "payments");
            assert!(is_calico_object(m), "{}", m["metadata"]["name"]);
        }
        assert_eq!(all.len(), vendored_objects().len() + 1);
    }

    #[test]
    fn nothing_of_calico_with_the_vpc_cni() {
        assert!(calico_manifests(&example()).is_empty());
        for m in crate::kubernetes::bootstrap_manifests(&example(), Some("arn:role")) {
            assert!(!is_calico_object(&m), "{}", m["metadata"]["name"]);
        }
    }
}
