//! cluster-autoscaler: ServiceAccount, RBAC, priority expander ConfigMap and Deployment.
//!
//! The RBAC is upstream's for AWS (kubernetes/autoscaler
//! `cluster-autoscaler/cloudprovider/aws/examples/cluster-autoscaler-autodiscover.yaml`) plus
//! the read access newer releases list (`volumeattachments`, `cronjobs`, as in upstream's Helm
//! chart), and nothing of the chart's optional extras: no node create/delete (AWS scales node
//! groups through the Auto Scaling API, not by creating Node objects), no cluster-wide
//! ConfigMap reads (the Role in `kube-system` covers its two ConfigMaps).
//!
//! The Deployment passes Pod Security `restricted` (non-root user 65534, no privilege
//! escalation, all capabilities dropped, RuntimeDefault seccomp, read-only root filesystem),
//! runs at [`PRIORITY_PLATFORM_CRITICAL`] on the critical node group, and discovers this
//! cluster's node groups by the tags EKS puts on their Auto Scaling groups.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, Container, ContainerPort, EnvVar, HTTPGetAction, PodSecurityContext,
    PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecurityContext,
    ServiceAccount, Toleration,
};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::manifests::{meta, to_value, PRIORITY_PLATFORM_CRITICAL};
use crate::naming::Names;
use crate::spec::{CapacityType, NodeRole, PlatformSpec};

/// Namespace of the autoscaler (its IAM role trusts this service account: see
/// [`crate::policies::SERVICE_ACCOUNTS`]).
pub const AUTOSCALER_NAMESPACE: &str = "kube-system";
/// Name of the ServiceAccount, RBAC objects and Deployment.
pub const AUTOSCALER_NAME: &str = "cluster-autoscaler";
/// The priority expander's ConfigMap (the name cluster-autoscaler reads).
pub const PRIORITY_EXPANDER_CONFIGMAP: &str = "cluster-autoscaler-priority-expander";
/// The status ConfigMap cluster-autoscaler writes.
pub const STATUS_CONFIGMAP: &str = "cluster-autoscaler-status";
/// Expander priority of spot node groups.
pub const SPOT_PRIORITY: u32 = 50;
/// Expander priority of every other node group.
pub const DEFAULT_PRIORITY: u32 = 10;
/// IRSA annotation of a ServiceAccount.
pub const IRSA_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// Node label of a node group's role.
pub const NODE_ROLE_LABEL: &str = "tenantry.io/role";
/// Port of the autoscaler's metrics and health check.
pub const METRICS_PORT: i32 = 8085;

const NAME_LABEL: &str = "app.kubernetes.io/name";
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// The autoscaler's image for the spec's Kubernetes minor (`v<major.minor>.0`: releases of
/// cluster-autoscaler follow Kubernetes minors).
pub fn autoscaler_image(spec: &PlatformSpec) -> String {
    let image = format!(
        "registry.k8s.io/autoscaling/cluster-autoscaler:v{}.0",
        spec.kubernetes_version
    );
    super::manifests::pinned_image(
        &image,
        spec.identity
            .service_roles
            .cluster_autoscaler
            .image_digest
            .as_ref(),
    )
}

/// The autoscaler's command-line arguments.
pub fn autoscaler_args(spec: &PlatformSpec) -> Vec<String> {
    let cluster = Names::new(spec).cluster();
    vec![
        "--cloud-provider=aws".to_owned(),
        "--expander=priority".to_owned(),
        format!(
            "--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/{cluster}"
        ),
        "--balance-similar-node-groups".to_owned(),
        "--skip-nodes-with-system-pods=false".to_owned(),
    ]
}

/// Regex matching the Auto Scaling group EKS creates for the managed node group `nodegroup`
/// (`eks-<nodegroup>-<uuid>`): the priority expander matches Auto Scaling group names. The uuid
/// is matched exactly, so `general` never matches the group of `general-spot`.
pub fn asg_regex(nodegroup: &str) -> String {
    format!(
        "^eks-{}-[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}$",
        escape_regex(nodegroup)
    )
}

/// Escapes the metacharacters of RE2 (cluster-autoscaler's Go regexps) and of Rust's `regex`.
/// Node group names are DNS labels and hold none; `-` stays as it is outside classes.
fn escape_regex(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The priority expander's `priorities` (YAML): spot node groups at [`SPOT_PRIORITY`], every
/// group at [`DEFAULT_PRIORITY`]. The expander picks the highest priority whose regexes match a
/// group that can take the pending pods, so spot capacity is used first and on-demand when spot
/// cannot help.
pub fn priorities_yaml(spec: &PlatformSpec) -> String {
    let names = Names::new(spec);
    let spot: Vec<String> = spec
        .effective_node_groups()
        .iter()
        .filter(|g| g.capacity_type == CapacityType::Spot)
        .map(|g| asg_regex(&names.nodegroup(&g.name)))
        .collect();
    // Single-quoted YAML scalars: regexes hold no `'`, and quoting keeps `{`, `$`, `*` literal.
    let mut yaml = String::new();
    if !spot.is_empty() {
        yaml.push_str(&format!("{SPOT_PRIORITY}:\n"));
        for re in &spot {
            yaml.push_str(&format!("  - '{re}'\n"));
        }
    }
    yaml.push_str(&format!("{DEFAULT_PRIORITY}:\n  - '.*'\n"));
    yaml
}

fn autoscaler_meta(spec: &PlatformSpec, name: &str, namespaced: bool) -> ObjectMeta {
    meta(
        spec,
        name,
        namespaced.then_some(AUTOSCALER_NAMESPACE),
        &[(NAME_LABEL, AUTOSCALER_NAME)],
    )
}

fn rule(groups: &[&str], resources: &[&str], names: &[&str], verbs: &[&str]) -> PolicyRule {
    let owned = |xs: &[&str]| xs.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(owned(groups)),
        resources: Some(owned(resources)),
        resource_names: (!names.is_empty()).then(|| owned(names)),
        verbs: owned(verbs),
        non_resource_urls: None,
    }
}

/// The autoscaler's cluster-wide permissions.
pub fn cluster_role_rules() -> Vec<PolicyRule> {
    const READ: &[&str] = &["watch", "list", "get"];
    vec![
        rule(&[""], &["events", "endpoints"], &[], &["create", "patch"]),
        rule(&[""], &["pods/eviction"], &[], &["create"]),
        rule(&[""], &["pods/status"], &[], &["update"]),
        rule(
            &[""],
            &["endpoints"],
            &[AUTOSCALER_NAME],
            &["get", "update"],
        ),
        rule(&[""], &["nodes"], &[], &["watch", "list", "get", "update"]),
        rule(
            &[""],
            &[
                "namespaces",
                "pods",
                "services",
                "replicationcontrollers",
                "persistentvolumeclaims",
                "persistentvolumes",
            ],
            &[],
            READ,
        ),
        rule(&["extensions"], &["replicasets", "daemonsets"], &[], READ),
        rule(
            &["policy"],
            &["poddisruptionbudgets"],
            &[],
            &["watch", "list"],
        ),
        rule(
            &["apps"],
            &["statefulsets", "replicasets", "daemonsets"],
            &[],
            READ,
        ),
        rule(
            &["storage.k8s.io"],
            &[
                "storageclasses",
                "csinodes",
                "csidrivers",
                "csistoragecapacities",
                "volumeattachments",
            ],
            &[],
            READ,
        ),
        rule(&["batch"], &["cronjobs"], &[], READ),
        rule(
            &["batch", "extensions"],
            &["jobs"],
            &[],
            &["get", "list", "watch", "patch"],
        ),
        rule(&["coordination.k8s.io"], &["leases"], &[], &["create"]),
        rule(
            &["coordination.k8s.io"],
            &["leases"],
            &[AUTOSCALER_NAME],
            &["get", "update"],
        ),
    ]
}

/// The autoscaler's permissions in `kube-system`: its status and priority expander ConfigMaps.
pub fn role_rules() -> Vec<PolicyRule> {
    vec![
        rule(&[""], &["configmaps"], &[], &["create", "list", "watch"]),
        rule(
            &[""],
            &["configmaps"],
            &[STATUS_CONFIGMAP, PRIORITY_EXPANDER_CONFIGMAP],
            &["delete", "get", "update", "watch"],
        ),
    ]
}

fn subject() -> Subject {
    Subject {
        kind: "ServiceAccount".to_owned(),
        name: AUTOSCALER_NAME.to_owned(),
        namespace: Some(AUTOSCALER_NAMESPACE.to_owned()),
        api_group: None,
    }
}

fn role_ref(kind: &str) -> RoleRef {
    RoleRef {
        api_group: RBAC_GROUP.to_owned(),
        kind: kind.to_owned(),
        name: AUTOSCALER_NAME.to_owned(),
    }
}

fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
        .collect()
}

fn deployment(spec: &PlatformSpec) -> Deployment {
    let selector = BTreeMap::from([(NAME_LABEL.to_owned(), AUTOSCALER_NAME.to_owned())]);
    let critical = spec
        .effective_node_groups()
        .iter()
        .any(|g| g.role == NodeRole::Critical);
    let node_selector = critical.then(|| {
        BTreeMap::from([(
            NODE_ROLE_LABEL.to_owned(),
            NodeRole::Critical.as_str().to_owned(),
        )])
    });
    let user = 65534;
    let container = Container {
        name: AUTOSCALER_NAME.to_owned(),
        image: Some(autoscaler_image(spec)),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        // The image's CMD (not ENTRYPOINT) is the binary: `args` alone would replace it.
        command: Some(vec!["./cluster-autoscaler".to_owned()]),
        args: Some(autoscaler_args(spec)),
        env: Some(vec![EnvVar {
            // Nodes allow one IMDS hop only, so the pod cannot ask IMDS for its region.
            name: "AWS_REGION".to_owned(),
            value: Some(spec.region.clone()),
            value_from: None,
        }]),
        ports: Some(vec![ContainerPort {
            name: Some("metrics".to_owned()),
            container_port: METRICS_PORT,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        liveness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/health-check".to_owned()),
                port: IntOrString::Int(METRICS_PORT),
                ..HTTPGetAction::default()
            }),
            period_seconds: Some(10),
            ..Probe::default()
        }),
        resources: Some(ResourceRequirements {
            requests: Some(quantities(&[("cpu", "100m"), ("memory", "600Mi")])),
            limits: Some(quantities(&[("cpu", "1"), ("memory", "600Mi")])),
            claims: None,
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            run_as_user: Some(user),
            run_as_group: Some(user),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                add: None,
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                localhost_profile: None,
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };
    let mut template_meta = autoscaler_meta(spec, AUTOSCALER_NAME, false);
    template_meta.name = None;
    Deployment {
        metadata: autoscaler_meta(spec, AUTOSCALER_NAME, true),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            revision_history_limit: Some(3),
            selector: LabelSelector {
                match_labels: Some(selector),
                match_expressions: None,
            },
            template: PodTemplateSpec {
                metadata: Some(template_meta),
                spec: Some(PodSpec {
                    service_account_name: Some(AUTOSCALER_NAME.to_owned()),
                    priority_class_name: Some(PRIORITY_PLATFORM_CRITICAL.to_owned()),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(user),
                        run_as_group: Some(user),
                        fs_group: Some(user),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".to_owned(),
                            localhost_profile: None,
                        }),
                        ..PodSecurityContext::default()
                    }),
                    node_selector,
                    tolerations: Some(vec![Toleration {
                        key: Some("workload".to_owned()),
                        operator: Some("Equal".to_owned()),
                        value: Some(NodeRole::Critical.as_str().to_owned()),
                        effect: Some("NoSchedule".to_owned()),
                        toleration_seconds: None,
                    }]),
                    containers: vec![container],
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

/// The autoscaler's objects, in apply order: ServiceAccount (with the IRSA annotation when
/// `role_arn` is given), ClusterRole, ClusterRoleBinding, Role, RoleBinding, priority expander
/// ConfigMap, Deployment.
pub fn autoscaler_manifests(spec: &PlatformSpec, role_arn: Option<&str>) -> Vec<Value> {
    let mut sa_meta = autoscaler_meta(spec, AUTOSCALER_NAME, true);
    sa_meta.annotations =
        role_arn.map(|arn| BTreeMap::from([(IRSA_ANNOTATION.to_owned(), arn.to_owned())]));
    vec![
        to_value(&ServiceAccount {
            metadata: sa_meta,
            ..ServiceAccount::default()
        }),
        to_value(&ClusterRole {
            metadata: autoscaler_meta(spec, AUTOSCALER_NAME, false),
            rules: Some(cluster_role_rules()),
            aggregation_rule: None,
        }),
        to_value(&ClusterRoleBinding {
            metadata: autoscaler_meta(spec, AUTOSCALER_NAME, false),
            role_ref: role_ref("ClusterRole"),
            subjects: Some(vec![subject()]),
        }),
        to_value(&Role {
            metadata: autoscaler_meta(spec, AUTOSCALER_NAME, true),
            rules: Some(role_rules()),
        }),
        to_value(&RoleBinding {
            metadata: autoscaler_meta(spec, AUTOSCALER_NAME, true),
            role_ref: role_ref("Role"),
            subjects: Some(vec![subject()]),
        }),
        to_value(&ConfigMap {
            metadata: autoscaler_meta(spec, PRIORITY_EXPANDER_CONFIGMAP, true),
            data: Some(BTreeMap::from([(
                "priorities".to_owned(),
                priorities_yaml(spec),
            )])),
            ..ConfigMap::default()
        }),
        to_value(&deployment(spec)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::manifests::tests::{assert_common_labels, example, minimal};

    fn find<'a>(all: &'a [Value], kind: &str) -> &'a Value {
        all.iter()
            .find(|m| m["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"))
    }

    #[test]
    fn names_match_the_service_account_its_role_trusts() {
        let sa = crate::policies::SERVICE_ACCOUNTS
            .iter()
            .find(|sa| sa.purpose == crate::naming::ROLE_CLUSTER_AUTOSCALER)
            .expect("autoscaler service account");
        assert_eq!(sa.namespace, AUTOSCALER_NAMESPACE);
        assert_eq!(sa.name, AUTOSCALER_NAME);
    }

    #[test]
    fn service_account_is_annotated_only_with_a_role() {
        let spec = example();
        let arn = "arn:aws:iam::111122223333:role/tenantry-payments-prod-cluster-autoscaler";
        let with = autoscaler_manifests(&spec, Some(arn));
        let sa = find(&with, "ServiceAccount");
        assert_eq!(sa["metadata"]["namespace"], "kube-system");
        assert_eq!(sa["metadata"]["name"], "cluster-autoscaler");
        assert_eq!(sa["metadata"]["annotations"][IRSA_ANNOTATION], arn);
        let without = autoscaler_manifests(&spec, None);
        assert!(find(&without, "ServiceAccount")["metadata"]
            .get("annotations")
            .is_none());
        for m in &with {
            assert_common_labels(m, "payments");
            assert_eq!(
                m["metadata"]["labels"]["app.kubernetes.io/name"],
                AUTOSCALER_NAME
            );
        }
    }

    #[test]
    fn deployment_args_image_and_scheduling() {
        let spec = example();
        let all = autoscaler_manifests(&spec, None);
        let d = find(&all, "Deployment");
        assert_eq!(d["apiVersion"], "apps/v1");
        assert_eq!(d["metadata"]["namespace"], "kube-system");
        let pod = &d["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        assert_eq!(
            c["image"],
            "registry.k8s.io/autoscaling/cluster-autoscaler:v1.35.0"
        );
        assert_eq!(
            c["args"],
            serde_json::json!([
                "--cloud-provider=aws",
                "--expander=priority",
                "--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/payments-prod",
                "--balance-similar-node-groups",
                "--skip-nodes-with-system-pods=false"
            ])
        );
        assert_eq!(c["env"][0]["name"], "AWS_REGION");
        assert_eq!(c["env"][0]["value"], "us-east-1");
        assert_eq!(pod["serviceAccountName"], "cluster-autoscaler");
        assert_eq!(pod["priorityClassName"], "tenantry-platform-critical");
        assert_eq!(pod["nodeSelector"]["tenantry.io/role"], "critical");
        assert_eq!(
            pod["tolerations"],
            serde_json::json!([{"key": "workload", "operator": "Equal", "value": "critical",
                                "effect": "NoSchedule"}])
        );
        let selector = &d["spec"]["selector"]["matchLabels"];
        for (k, v) in selector.as_object().expect("selector") {
            assert_eq!(&d["spec"]["template"]["metadata"]["labels"][k], v);
        }
        for q in ["requests", "limits"] {
            assert!(c["resources"][q]["cpu"].is_string(), "{q}");
            assert!(c["resources"][q]["memory"].is_string(), "{q}");
        }
        let mut old = spec.clone();
        old.kubernetes_version = "1.32".into();
        assert_eq!(
            autoscaler_image(&old),
            "registry.k8s.io/autoscaling/cluster-autoscaler:v1.32.0"
        );
    }

    #[test]
    fn deployment_meets_pod_security_restricted() {
        let all = autoscaler_manifests(&example(), None);
        let pod = &find(&all, "Deployment")["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["securityContext"]["runAsUser"], 65534);
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        assert!(pod.get("hostNetwork").is_none());
        assert!(pod.get("volumes").is_none());
        let sc = &pod["containers"][0]["securityContext"];
        assert_eq!(sc["runAsNonRoot"], true);
        assert_eq!(sc["runAsUser"], 65534);
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
        assert!(sc["capabilities"].get("add").is_none());
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
        assert!(sc.get("privileged").is_none());
    }

    #[test]
    fn no_critical_group_means_no_node_selector() {
        let mut spec = minimal();
        spec.node_groups = Some(
            crate::spec::standard_node_groups()
                .into_iter()
                .filter(|g| g.role != NodeRole::Critical)
                .collect(),
        );
        let all = autoscaler_manifests(&spec, None);
        let pod = &find(&all, "Deployment")["spec"]["template"]["spec"];
        assert!(pod.get("nodeSelector").is_none());
    }

    #[test]
    fn priorities_prefer_the_spot_groups_of_the_standard_layout() {
        let spec = minimal(); // standard node groups
        let yaml = priorities_yaml(&spec);
        let uuid = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
        assert_eq!(
            yaml,
            format!(
                "50:\n  - '^eks-demo-dev-general-spot-{uuid}$'\n  - '^eks-demo-dev-batch-{uuid}$'\n\
                 10:\n  - '.*'\n"
            )
        );
        let all = autoscaler_manifests(&spec, None);
        let cm = find(&all, "ConfigMap");
        assert_eq!(cm["metadata"]["name"], PRIORITY_EXPANDER_CONFIGMAP);
        assert_eq!(cm["metadata"]["namespace"], "kube-system");
        assert_eq!(cm["data"]["priorities"], yaml);
        // The regexes select exactly the spot groups' Auto Scaling groups.
        let asg = |ng: &str| format!("eks-demo-dev-{ng}-0ac6c0f3-5e2d-4b1f-9a8e-7c6d5b4a3f21");
        let spot = regex::Regex::new(&asg_regex("demo-dev-general-spot")).expect("regex");
        assert!(spot.is_match(&asg("general-spot")));
        let general = regex::Regex::new(&asg_regex("demo-dev-general")).expect("regex");
        assert!(general.is_match(&asg("general")));
        assert!(!general.is_match(&asg("general-spot")));
        assert_eq!(escape_regex("a.b-c*"), r"a\.b-c\*");
    }

    #[test]
    fn only_on_demand_groups_means_only_the_default_priority() {
        let mut spec = minimal();
        spec.node_groups = Some(
            crate::spec::standard_node_groups()
                .into_iter()
                .filter(|g| g.capacity_type == CapacityType::OnDemand)
                .collect(),
        );
        assert_eq!(priorities_yaml(&spec), "10:\n  - '.*'\n");
    }

    #[test]
    fn rbac_is_upstreams_least_privilege() {
        let all = autoscaler_manifests(&minimal(), None);
        let cr = find(&all, "ClusterRole");
        let rules = cr["rules"].as_array().expect("rules");
        // No wildcard anywhere, no secrets, no node creation or deletion.
        for r in rules {
            let text = r.to_string();
            assert!(!text.contains('*'), "{text}");
            assert!(!text.contains("secrets"), "{text}");
            if r["resources"] == serde_json::json!(["nodes"]) {
                assert_eq!(
                    r["verbs"],
                    serde_json::json!(["watch", "list", "get", "update"])
                );
            }
        }
        let role = find(&all, "Role");
        assert_eq!(role["metadata"]["namespace"], "kube-system");
        assert_eq!(
            role["rules"][1]["resourceNames"],
            serde_json::json!([STATUS_CONFIGMAP, PRIORITY_EXPANDER_CONFIGMAP])
        );
        for (binding, kind) in [
            ("ClusterRoleBinding", "ClusterRole"),
            ("RoleBinding", "Role"),
        ] {
            let b = find(&all, binding);
            assert_eq!(b["roleRef"]["kind"], kind);
            assert_eq!(b["roleRef"]["name"], AUTOSCALER_NAME);
            assert_eq!(
                b["subjects"],
                serde_json::json!([{"kind": "ServiceAccount", "name": "cluster-autoscaler",
                                    "namespace": "kube-system"}])
            );
        }
    }
}
