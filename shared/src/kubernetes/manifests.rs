//! What Tenantry puts into a platform's cluster, rendered as pure functions of the spec.
//!
//! Objects are built as typed k8s-openapi values (so a misspelt field does not compile) and
//! returned as `serde_json::Value`s with `apiVersion` and `kind`, ready for
//! [`super::apply`]. Every object carries [`LABEL_MANAGED_BY`]`: tenantry` and
//! [`LABEL_PLATFORM`]`: <platform id>`.
//!
//! [`bootstrap_manifests`], in apply order:
//! 1. Pod Security Admission labels on the cluster's own namespaces (label-only manifests: the
//!    namespaces exist already; Tenantry labels them and never deletes them);
//! 2. Tenantry's PriorityClasses;
//! 3. cluster-autoscaler (when its service role is enabled): ServiceAccount, RBAC, the priority
//!    expander's ConfigMap and the Deployment (see [`super::autoscaler`]).
//!
//! [`storage_manifests`] renders the default StorageClass (with the EBS CSI add-on), applied with
//! them. [`super::access_manifests`] renders the OIDC group bindings.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde_json::Value;

use crate::spec::PlatformSpec;

/// Label naming the tool that manages an object.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Value of [`LABEL_MANAGED_BY`].
pub const MANAGED_BY: &str = "tenantry";
/// Label holding the platform id.
pub const LABEL_PLATFORM: &str = "tenantry.io/platform";
/// The platform's environment (`spec.environment`), on every object as on every AWS resource
/// (`tenantry:environment`).
pub const LABEL_ENVIRONMENT: &str = "tenantry.io/environment";

/// The cluster's own namespaces, which get Pod Security labels.
pub const SYSTEM_NAMESPACES: &[&str] = super::apply::SYSTEM_NAMESPACES;

/// Pod Security level of the system namespaces.
pub const POD_SECURITY_BASELINE: &str = "baseline";
/// Pod Security level enforced on `kube-system` (see [`pod_security_labels`]).
pub const POD_SECURITY_PRIVILEGED: &str = "privileged";

/// PriorityClass of the platform's controllers (cluster-autoscaler...).
pub const PRIORITY_PLATFORM_CRITICAL: &str = "tenantry-platform-critical";
/// PriorityClass of tenants' important workloads.
pub const PRIORITY_TENANT_HIGH: &str = "tenantry-tenant-high";
/// PriorityClass of tenants' ordinary workloads (not the cluster default).
pub const PRIORITY_TENANT_DEFAULT: &str = "tenantry-tenant-default";
/// PriorityClass of batch jobs (never preempts).
pub const PRIORITY_BATCH: &str = "tenantry-batch";

/// The labels every object of the platform carries.
pub fn common_labels(spec: &PlatformSpec) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_MANAGED_BY.to_owned(), MANAGED_BY.to_owned()),
        (LABEL_PLATFORM.to_owned(), spec.id.clone()),
        (LABEL_ENVIRONMENT.to_owned(), spec.environment.clone()),
    ])
}

/// A controller's image: by tag, and by digest too when the request pins one (`imageDigest`).
pub(crate) fn pinned_image(image: &str, digest: Option<&String>) -> String {
    match digest {
        Some(digest) => format!("{image}@{digest}"),
        None => image.to_owned(),
    }
}

/// Metadata with `name`, optional `namespace` and the common labels plus `extra_labels`.
pub(crate) fn meta(
    spec: &PlatformSpec,
    name: &str,
    namespace: Option<&str>,
    extra_labels: &[(&str, &str)],
) -> ObjectMeta {
    let mut labels = common_labels(spec);
    for (k, v) in extra_labels {
        labels.insert((*k).to_owned(), (*v).to_owned());
    }
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

/// A typed object as JSON (with `apiVersion` and `kind`, which k8s-openapi's serialisers write).
pub(crate) fn to_value<T: Serialize>(object: &T) -> Value {
    // k8s-openapi objects hold only strings, numbers, booleans, string-keyed maps and lists,
    // all of which serde_json represents: serialising them cannot fail (the same invariant
    // `serde_json::json!` relies on).
    serde_json::to_value(object).expect("k8s-openapi objects serialise to JSON")
}

/// The Pod Security Admission version label value: `v<major.minor>`.
pub fn pod_security_version(spec: &PlatformSpec) -> String {
    format!("v{}", spec.kubernetes_version)
}

/// Pod Security Admission labels of a system namespace.
///
/// `audit` and `warn` are `baseline` everywhere, and so is `enforce`, except on `kube-system`,
/// which enforces `privileged`: the DaemonSets EKS and its add-ons run there need what baseline
/// forbids. `aws-node` (vpc-cni) and `kube-proxy` run privileged containers with `hostNetwork`,
/// `ebs-csi-node` runs privileged with `hostPath` mounts, and `eks-pod-identity-agent` uses
/// `hostNetwork`; kube-proxy runs with either CNI. Enforcing baseline there would stop those
/// pods from being created on new nodes. `audit`/`warn` stay `baseline` so anything else that
/// needs more than baseline in `kube-system` is still reported.
pub fn pod_security_labels(spec: &PlatformSpec, namespace: &str) -> BTreeMap<String, String> {
    let version = pod_security_version(spec);
    let enforce = if namespace == "kube-system" {
        POD_SECURITY_PRIVILEGED
    } else {
        POD_SECURITY_BASELINE
    };
    let mut labels = BTreeMap::new();
    for (mode, level) in [
        ("enforce", enforce),
        ("audit", POD_SECURITY_BASELINE),
        ("warn", POD_SECURITY_BASELINE),
    ] {
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}"),
            level.to_owned(),
        );
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}-version"),
            version.clone(),
        );
    }
    labels
}

/// Label-only Namespace manifests for the system namespaces (Pod Security and common labels).
pub fn namespace_manifests(spec: &PlatformSpec) -> Vec<Value> {
    SYSTEM_NAMESPACES
        .iter()
        .map(|ns| {
            let mut metadata = meta(spec, ns, None, &[]);
            if let Some(labels) = metadata.labels.as_mut() {
                labels.extend(pod_security_labels(spec, ns));
            }
            to_value(&Namespace {
                metadata,
                ..Namespace::default()
            })
        })
        .collect()
}

/// A namespace's `default` service account (`metadata` names it), with no token mounted (CIS
/// EKS 4.1.5: pods that name no service account get no API credentials). Kubernetes creates the
/// account; this manifest only sets the one field, by server-side apply.
pub(crate) fn default_service_account(metadata: ObjectMeta) -> Value {
    use k8s_openapi::api::core::v1::ServiceAccount;
    to_value(&ServiceAccount {
        metadata,
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    })
}

/// Tenantry's PriorityClasses: name, value, whether it may preempt, description.
pub const PRIORITY_CLASSES: &[(&str, i32, bool, &str)] = &[
    (
        PRIORITY_PLATFORM_CRITICAL,
        1_000_000,
        true,
        "Tenantry platform controllers (cluster-autoscaler and other cluster services).",
    ),
    (
        PRIORITY_TENANT_HIGH,
        1_000,
        true,
        "Tenant workloads that must be scheduled before ordinary ones.",
    ),
    (
        PRIORITY_TENANT_DEFAULT,
        100,
        true,
        "Ordinary tenant workloads.",
    ),
    (
        PRIORITY_BATCH,
        10,
        false,
        "Interruptible batch jobs; they wait for capacity and never preempt other pods.",
    ),
];

/// The PriorityClasses. None is the cluster default (`globalDefault: false`): pods without a
/// class keep priority 0.
pub fn priority_class_manifests(spec: &PlatformSpec) -> Vec<Value> {
    PRIORITY_CLASSES
        .iter()
        .map(|(name, value, preempts, description)| {
            to_value(&PriorityClass {
                metadata: meta(spec, name, None, &[]),
                value: *value,
                global_default: Some(false),
                preemption_policy: Some(
                    if *preempts {
                        "PreemptLowerPriority"
                    } else {
                        "Never"
                    }
                    .to_owned(),
                ),
                description: Some((*description).to_owned()),
            })
        })
        .collect()
}

/// Everything the `bootstrap` phase applies, in order: system namespace labels, PriorityClasses,
/// then (when `spec.identity.serviceRoles.clusterAutoscaler.enabled`) the cluster-autoscaler's
/// ServiceAccount, RBAC, priority expander ConfigMap and Deployment.
///
/// `autoscaler_role_arn` is the autoscaler's IAM role ARN when IRSA is the trust mechanism
/// (it becomes the ServiceAccount's `eks.amazonaws.com/role-arn` annotation); pass `None` under
/// Pod Identity, where a pod identity association links the role instead.
pub fn bootstrap_manifests(spec: &PlatformSpec, autoscaler_role_arn: Option<&str>) -> Vec<Value> {
    let mut out = namespace_manifests(spec);
    // Kubernetes' own namespaces run system components that may use their default accounts;
    // `default` runs nothing of theirs.
    out.push(default_service_account(meta(
        spec,
        "default",
        Some("default"),
        &[],
    )));
    out.extend(priority_class_manifests(spec));
    if spec.identity.service_roles.cluster_autoscaler.enabled {
        out.extend(super::autoscaler::autoscaler_manifests(
            spec,
            autoscaler_role_arn,
        ));
    }
    out.extend(super::fargate_logging::fargate_logging_manifests(spec));
    out
}

/// Name of the platform's default StorageClass.
pub const DEFAULT_STORAGE_CLASS: &str = "gp3-encrypted";
/// The annotation that makes a StorageClass the cluster default.
const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
/// The EBS CSI driver's provisioner name.
const EBS_CSI_PROVISIONER: &str = "ebs.csi.aws.com";

/// Whether the spec installs the EBS CSI add-on (which the StorageClass needs).
pub fn has_ebs_csi(spec: &PlatformSpec) -> bool {
    spec.effective_addons()
        .iter()
        .any(|a| a.name == "aws-ebs-csi-driver")
}

/// The default StorageClass when the EBS CSI add-on is installed (none otherwise: no class could
/// provision): gp3, encrypted with the platform data key `data_key_arn`, bound when the pod is
/// scheduled (so the volume lands in the pod's AZ), expandable, deleted with its claim. The
/// add-on's own default class (unencrypted by key) is turned off in the example.
pub fn storage_manifests(spec: &PlatformSpec, data_key_arn: &str) -> Vec<Value> {
    use k8s_openapi::api::storage::v1::StorageClass;
    if !has_ebs_csi(spec) {
        return Vec::new();
    }
    let mut metadata = meta(spec, DEFAULT_STORAGE_CLASS, None, &[]);
    metadata.annotations = Some(BTreeMap::from([(
        DEFAULT_CLASS_ANNOTATION.to_owned(),
        "true".to_owned(),
    )]));
    vec![to_value(&StorageClass {
        metadata,
        provisioner: EBS_CSI_PROVISIONER.to_owned(),
        parameters: Some(BTreeMap::from([
            ("type".to_owned(), "gp3".to_owned()),
            ("encrypted".to_owned(), "true".to_owned()),
            ("kmsKeyId".to_owned(), data_key_arn.to_owned()),
        ])),
        reclaim_policy: Some("Delete".to_owned()),
        volume_binding_mode: Some("WaitForFirstConsumer".to_owned()),
        allow_volume_expansion: Some(true),
        ..StorageClass::default()
    })]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn example() -> PlatformSpec {
        let text = include_str!("../../../examples/platform.json");
        crate::validate::parse_platform(text).expect("the example spec is valid")
    }

    /// The example with Calico instead of the VPC CNI (its `vpc-cni` add-on left out; the pod
    /// CIDR becomes Calico's pool), as `tests/it` derives it from the JSON.
    pub(crate) fn calico_example() -> PlatformSpec {
        let mut spec = example();
        spec.cni = crate::spec::Cni::Calico;
        if let Some(addons) = &mut spec.addons {
            addons.retain(|a| a.name != "vpc-cni");
        }
        spec
    }

    pub(crate) fn minimal() -> PlatformSpec {
        serde_json::from_str(r#"{"id":"demo","environment":"dev","region":"us-east-1"}"#)
            .expect("minimal spec")
    }

    #[test]
    fn the_default_storage_class_is_encrypted_with_the_data_key() {
        let key = "arn:aws:kms:us-east-1:111122223333:key/k";
        let all = storage_manifests(&example(), key);
        assert_eq!(all.len(), 1);
        let sc = &all[0];
        assert_eq!(sc["kind"], "StorageClass");
        assert_eq!(
            sc["metadata"]["annotations"][DEFAULT_CLASS_ANNOTATION],
            "true"
        );
        assert_eq!(sc["provisioner"], "ebs.csi.aws.com");
        assert_eq!(sc["parameters"]["type"], "gp3");
        assert_eq!(sc["parameters"]["encrypted"], "true");
        assert_eq!(sc["parameters"]["kmsKeyId"], key);
        assert_eq!(sc["volumeBindingMode"], "WaitForFirstConsumer");
        assert_common_labels(sc, "payments");
        // No EBS CSI driver, no class (nothing could provision it).
        let mut without = example();
        without.addons = without.addons.map(|a| {
            a.into_iter()
                .filter(|a| a.name != "aws-ebs-csi-driver")
                .collect()
        });
        assert!(!has_ebs_csi(&without));
        assert!(storage_manifests(&without, key).is_empty());
    }

    pub(crate) fn assert_common_labels(manifest: &Value, platform: &str) {
        let labels = &manifest["metadata"]["labels"];
        assert_eq!(labels[LABEL_MANAGED_BY], "tenantry", "{manifest}");
        assert_eq!(labels[LABEL_PLATFORM], platform, "{manifest}");
        assert!(labels[LABEL_ENVIRONMENT].is_string(), "{manifest}");
        assert!(manifest["apiVersion"].is_string(), "{manifest}");
        assert!(manifest["kind"].is_string(), "{manifest}");
    }

    #[test]
    fn system_namespaces_get_pod_security_labels_only() {
        let spec = example();
        let namespaces = namespace_manifests(&spec);
        let names: Vec<&str> = namespaces
            .iter()
            .map(|n| n["metadata"]["name"].as_str().expect("name"))
            .collect();
        assert_eq!(
            names,
            ["kube-system", "kube-public", "kube-node-lease", "default"]
        );
        for ns in &namespaces {
            assert_common_labels(ns, "payments");
            assert_eq!(ns["kind"], "Namespace");
            assert_eq!(ns["apiVersion"], "v1");
            // Label-only: nothing but apiVersion, kind and metadata.name/labels.
            let keys: Vec<&String> = ns.as_object().expect("object").keys().collect();
            assert_eq!(keys.len(), 3, "{ns}");
            let meta_keys: Vec<&String> = ns["metadata"]
                .as_object()
                .expect("metadata")
                .keys()
                .collect();
            assert_eq!(meta_keys.len(), 2, "{ns}");
            let labels = &ns["metadata"]["labels"];
            for mode in ["enforce", "audit", "warn"] {
                assert_eq!(
                    labels[format!("pod-security.kubernetes.io/{mode}-version")],
                    "v1.35"
                );
            }
            assert_eq!(labels["pod-security.kubernetes.io/audit"], "baseline");
            assert_eq!(labels["pod-security.kubernetes.io/warn"], "baseline");
            let enforce = if ns["metadata"]["name"] == "kube-system" {
                "privileged"
            } else {
                "baseline"
            };
            assert_eq!(labels["pod-security.kubernetes.io/enforce"], enforce);
        }
        let mut old = spec.clone();
        old.kubernetes_version = "1.33".into();
        assert_eq!(
            namespace_manifests(&old)[1]["metadata"]["labels"]
                ["pod-security.kubernetes.io/enforce-version"],
            "v1.33"
        );
    }

    #[test]
    fn priority_classes_have_the_agreed_values() {
        let pcs = priority_class_manifests(&minimal());
        let by_name = |n: &str| {
            pcs.iter()
                .find(|p| p["metadata"]["name"] == n)
                .unwrap_or_else(|| panic!("{n}"))
                .clone()
        };
        assert_eq!(pcs.len(), 4);
        for pc in &pcs {
            assert_common_labels(pc, "demo");
            assert_eq!(pc["apiVersion"], "scheduling.k8s.io/v1");
            assert_eq!(pc["kind"], "PriorityClass");
            assert_eq!(pc["globalDefault"], false);
        }
        assert_eq!(by_name("tenantry-platform-critical")["value"], 1_000_000);
        assert_eq!(by_name("tenantry-tenant-high")["value"], 1000);
        assert_eq!(by_name("tenantry-tenant-default")["value"], 100);
        let batch = by_name("tenantry-batch");
        assert_eq!(batch["value"], 10);
        assert_eq!(batch["preemptionPolicy"], "Never");
        assert_eq!(
            by_name("tenantry-tenant-high")["preemptionPolicy"],
            "PreemptLowerPriority"
        );
    }

    #[test]
    fn bootstrap_is_ordered_and_autoscaler_is_optional() {
        let spec = example();
        let all = bootstrap_manifests(&spec, None);
        let kinds: Vec<&str> = all
            .iter()
            .map(|m| m["kind"].as_str().expect("kind"))
            .collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "Namespace",
                "Namespace",
                "Namespace",
                "ServiceAccount",
                "PriorityClass",
                "PriorityClass",
                "PriorityClass",
                "PriorityClass",
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "Role",
                "RoleBinding",
                "ConfigMap",
                "Deployment",
            ]
        );
        for m in &all {
            assert_common_labels(m, "payments");
            assert!(
                super::super::apply::resource_of(
                    m["apiVersion"].as_str().expect("apiVersion"),
                    m["kind"].as_str().expect("kind")
                )
                .is_some(),
                "{m}"
            );
        }
        let mut off = spec.clone();
        off.identity.service_roles.cluster_autoscaler.enabled = false;
        assert_eq!(bootstrap_manifests(&off, None).len(), 9);
    }
}
