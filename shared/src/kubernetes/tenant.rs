//! A tenant's objects in the platform's cluster: its namespace (Pod Security `restricted`), the
//! NetworkPolicies that isolate it, its ResourceQuota and LimitRange, and the service account its
//! workloads run as to use the tenant's IAM role.
//!
//! Like the other manifests they are typed k8s-openapi values returned as JSON with
//! `apiVersion`/`kind`, carrying the common labels plus [`TENANT_LABEL`]`: <tenant name>`, so a
//! tenant's objects can be listed (and offboarded) by label.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    LimitRange, LimitRangeItem, LimitRangeSpec, Namespace, ResourceQuota, ResourceQuotaSpec,
    ServiceAccount,
};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::autoscaler::IRSA_ANNOTATION;
use super::manifests::{meta, pod_security_version, to_value};
use crate::policies::TENANT_SERVICE_ACCOUNT;
use crate::spec::{PlatformSpec, TenantSpec, TrustMechanism};

/// Label holding the tenant's name, on every object of the tenant.
pub const TENANT_LABEL: &str = "tenantry.io/tenant";

/// Names of the tenant namespace's NetworkPolicies, in apply order (the planner records the
/// same names).
pub const TENANT_NETWORK_POLICIES: &[&str] = &[
    POLICY_DEFAULT_DENY,
    POLICY_SAME_NAMESPACE,
    POLICY_DNS,
    POLICY_EGRESS_EXCEPT_METADATA,
];

const POLICY_DEFAULT_DENY: &str = "default-deny";
const POLICY_SAME_NAMESPACE: &str = "allow-same-namespace";
const POLICY_DNS: &str = "allow-dns";
const POLICY_EGRESS_EXCEPT_METADATA: &str = "allow-egress-except-metadata";

/// Label naming the other tenant an `allowFrom` policy opens traffic with.
pub const PEER_LABEL: &str = "tenantry.io/peer";
/// The label the API server puts on every namespace, holding its name: it cannot be set to
/// another namespace's name, so a peer selected by it is that namespace and no other.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Pod Security Standards level of tenant namespaces (enforce, audit and warn).
const POD_SECURITY_RESTRICTED: &str = "restricted";

/// The EC2 instance metadata service (IPv4): the node's instance profile credentials live there.
const INSTANCE_METADATA_CIDR: &str = "169.254.169.254/32";
/// The EKS Pod Identity agent (a `hostNetwork` DaemonSet listening on this link-local address,
/// HTTP port 80): where the SDKs of pods bound by Pod Identity fetch their credentials.
const POD_IDENTITY_AGENT_CIDR: &str = "169.254.170.23/32";
/// Port of the EKS Pod Identity agent's credentials endpoint.
const POD_IDENTITY_AGENT_PORT: i32 = 80;

/// Name of the tenant namespace's ResourceQuota.
const QUOTA_NAME: &str = "quota";
/// Name of the tenant namespace's LimitRange.
const LIMIT_RANGE_NAME: &str = "limits";

/// Metadata of a tenant object: common labels plus [`TENANT_LABEL`].
fn tenant_meta(
    spec: &PlatformSpec,
    tenant: &TenantSpec,
    name: &str,
    namespace: Option<&str>,
) -> ObjectMeta {
    meta(spec, name, namespace, &[(TENANT_LABEL, &tenant.name)])
}

/// Pod Security Admission labels of a tenant namespace: `restricted` for enforce, audit and
/// warn, each pinned to the cluster's version (`v<major.minor>`) so that a control-plane upgrade
/// does not silently change what is enforced; the pin moves with `spec.kubernetesVersion`.
pub(crate) fn restricted_pod_security_labels(spec: &PlatformSpec) -> BTreeMap<String, String> {
    let version = pod_security_version(spec);
    let mut labels = BTreeMap::new();
    for mode in ["enforce", "audit", "warn"] {
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}"),
            POD_SECURITY_RESTRICTED.to_owned(),
        );
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}-version"),
            version.clone(),
        );
    }
    labels
}

/// The tenant's namespace, named after the tenant. Tenants run untrusted-by-default workloads
/// next to each other, so the namespace enforces the `restricted` Pod Security Standard (no
/// privilege, host namespaces, host paths, root or added capabilities), and audits and warns at
/// the same level so that nothing passes silently.
fn namespace(spec: &PlatformSpec, tenant: &TenantSpec) -> Value {
    let mut metadata = tenant_meta(spec, tenant, &tenant.name, None);
    if let Some(labels) = metadata.labels.as_mut() {
        labels.extend(restricted_pod_security_labels(spec));
    }
    to_value(&Namespace {
        metadata,
        ..Namespace::default()
    })
}

/// Name of the Role (and its RoleBinding) tenant owners get in their namespace.
pub const OWNER_ROLE: &str = "tenantry-owner";

/// The Kubernetes group of a tenant's owners: their access entries carry it
/// (`kubernetesGroups`), and the namespace's RoleBinding binds it to [`OWNER_ROLE`].
pub fn owner_group(tenant: &str) -> String {
    format!("tenantry:owners:{tenant}")
}

/// Every verb on a resource.
const WRITE: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];
/// Reading only.
const READ: &[&str] = &["get", "list", "watch"];

/// What owners may do in their namespace: run workloads (the usual workload resources, all
/// verbs), and only read what isolates the namespace (NetworkPolicies, ResourceQuota,
/// LimitRange, Roles, RoleBindings) and the service accounts, whose annotations bind the
/// tenant's IAM role. Unlike `AmazonEKSEditPolicy`, no delete of the NetworkPolicies that keep
/// pods away from the instance metadata service, no `impersonate`, and no namespace write (so no
/// relabelling of its Pod Security level).
const OWNER_RULES: &[(&str, &[&str], &[&str])] = &[
    (
        "",
        &[
            "pods",
            "pods/log",
            "pods/exec",
            "pods/attach",
            "pods/portforward",
            "services",
            "endpoints",
            "configmaps",
            "secrets",
            "persistentvolumeclaims",
        ],
        WRITE,
    ),
    (
        "",
        &["serviceaccounts", "resourcequotas", "limitranges", "events"],
        READ,
    ),
    (
        "apps",
        &["deployments", "statefulsets", "daemonsets", "replicasets"],
        WRITE,
    ),
    ("batch", &["jobs", "cronjobs"], WRITE),
    ("autoscaling", &["horizontalpodautoscalers"], WRITE),
    ("policy", &["poddisruptionbudgets"], WRITE),
    ("networking.k8s.io", &["ingresses"], WRITE),
    ("networking.k8s.io", &["networkpolicies"], READ),
    ("discovery.k8s.io", &["endpointslices"], READ),
    (
        "rbac.authorization.k8s.io",
        &["roles", "rolebindings"],
        READ,
    ),
];

/// The owners' Role in the tenant's namespace ([`OWNER_RULES`]).
fn owner_role(spec: &PlatformSpec, tenant: &TenantSpec) -> Value {
    let strings = |xs: &[&str]| xs.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    to_value(&Role {
        metadata: tenant_meta(spec, tenant, OWNER_ROLE, Some(&tenant.name)),
        rules: Some(
            OWNER_RULES
                .iter()
                .map(|(group, resources, verbs)| PolicyRule {
                    api_groups: Some(vec![(*group).to_owned()]),
                    resources: Some(strings(resources)),
                    verbs: strings(verbs),
                    ..PolicyRule::default()
                })
                .collect(),
        ),
    })
}

/// Binds the owners' group ([`owner_group`]) to their Role, in the namespace only.
fn owner_binding(spec: &PlatformSpec, tenant: &TenantSpec) -> Value {
    to_value(&RoleBinding {
        metadata: tenant_meta(spec, tenant, OWNER_ROLE, Some(&tenant.name)),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name: OWNER_ROLE.to_owned(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "Group".to_owned(),
            name: owner_group(&tenant.name),
            namespace: None,
        }]),
    })
}

/// Why the live namespace `live` is not this tenant's to take over or delete, if it is not:
/// Tenantry adopts or deletes a namespace only when it carries the labels Tenantry gave it at
/// creation (this platform, this tenant). Another team's namespace of the same name (or one a
/// tenant request names to reach it) is left alone.
pub fn foreign_namespace(spec: &PlatformSpec, tenant: &TenantSpec, live: &Value) -> Option<String> {
    let labels = &live["metadata"]["labels"];
    let expected = [
        (super::manifests::LABEL_PLATFORM, spec.id.as_str()),
        (TENANT_LABEL, tenant.name.as_str()),
    ];
    let missing: Vec<String> = expected
        .iter()
        .filter(|(k, v)| labels[*k].as_str() != Some(*v))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "namespace {:?} exists and Tenantry did not create it for tenant {:?} of platform              {:?} (labels {} missing): Tenantry neither adopts nor deletes a namespace it does              not own; choose another tenant name, or remove or rename that namespace first",
            tenant.name,
            tenant.name,
            spec.id,
            missing.join(", ")
        )
    })
}

/// The empty selector: every pod (of the policy's namespace, when used in a peer).
fn all_pods() -> Option<LabelSelector> {
    Some(LabelSelector::default())
}

fn labels_selector(pairs: &[(&str, &str)]) -> Option<LabelSelector> {
    Some(LabelSelector {
        match_labels: Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        match_expressions: None,
    })
}

fn port(protocol: &str, number: i32) -> NetworkPolicyPort {
    NetworkPolicyPort {
        protocol: Some(protocol.to_owned()),
        port: Some(IntOrString::Int(number)),
        end_port: None,
    }
}

fn policy_types(types: &[&str]) -> Option<Vec<String>> {
    Some(types.iter().map(|t| (*t).to_owned()).collect())
}

fn network_policy(
    spec: &PlatformSpec,
    tenant: &TenantSpec,
    name: &str,
    policy: NetworkPolicySpec,
) -> Value {
    to_value(&NetworkPolicy {
        metadata: tenant_meta(spec, tenant, name, Some(&tenant.name)),
        spec: Some(policy),
    })
}

/// The tenant namespace's NetworkPolicies, in the order of [`TENANT_NETWORK_POLICIES`].
/// Policies are additive (a connection is allowed when any policy selecting the pod allows it),
/// so isolation starts from a deny-all and each further policy opens one thing:
///
/// - `default-deny`: every pod, both directions, no rules. Without it a pod that no policy
///   selects accepts and sends anything, from and to every other tenant.
/// - `allow-same-namespace`: pods of the namespace may talk to each other (a peer with only a
///   `podSelector` means the policy's own namespace), and nothing from other namespaces may come
///   in; tenants open more themselves (e.g. for load balancer traffic).
/// - `allow-dns`: UDP and TCP 53 to CoreDNS only (`k8s-app: kube-dns` in `kube-system`: both
///   selectors in one peer, so both must match); TCP because large answers are retried over it.
/// - `allow-egress-except-metadata`: HTTPS (TCP 443) anywhere, which is what workloads need to
///   reach AWS APIs (directly, through the VPC endpoints or the NAT) and other HTTPS services,
///   except the instance metadata service: `169.254.169.254/32` serves the node's instance
///   profile credentials, which a tenant must never get. Only 443 because plain-text and other
///   protocols out of the cluster are not something a tenant gets by default (IMDS itself
///   answers on port 80, so the `except` is a second guard, kept so that widening the ports
///   later cannot open it). When the platform's tenant roles trust EKS Pod Identity, the rule
///   also allows TCP 80 to the Pod Identity agent (`169.254.170.23/32`), without which the
///   tenant's workloads cannot obtain the credentials of the tenant role (IRSA needs no such
///   rule: its token is projected into the pod and exchanged with STS over HTTPS). IPv6 is not
///   covered: the platform's clusters are IPv4.
fn network_policies(spec: &PlatformSpec, tenant: &TenantSpec) -> Vec<Value> {
    let default_deny = NetworkPolicySpec {
        pod_selector: all_pods(),
        policy_types: policy_types(&["Ingress", "Egress"]),
        ingress: None,
        egress: None,
    };
    let same_namespace_peer = NetworkPolicyPeer {
        pod_selector: all_pods(),
        ..NetworkPolicyPeer::default()
    };
    let same_namespace = NetworkPolicySpec {
        pod_selector: all_pods(),
        policy_types: policy_types(&["Ingress", "Egress"]),
        ingress: Some(vec![NetworkPolicyIngressRule {
            from: Some(vec![same_namespace_peer.clone()]),
            ports: None,
        }]),
        egress: Some(vec![NetworkPolicyEgressRule {
            to: Some(vec![same_namespace_peer]),
            ports: None,
        }]),
    };
    let dns = NetworkPolicySpec {
        pod_selector: all_pods(),
        policy_types: policy_types(&["Egress"]),
        ingress: None,
        egress: Some(vec![NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                namespace_selector: labels_selector(&[(
                    "kubernetes.io/metadata.name",
                    "kube-system",
                )]),
                pod_selector: labels_selector(&[("k8s-app", "kube-dns")]),
                ip_block: None,
            }]),
            ports: Some(vec![port("UDP", 53), port("TCP", 53)]),
        }]),
    };
    let mut egress = vec![NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            ip_block: Some(IPBlock {
                cidr: "0.0.0.0/0".to_owned(),
                except: Some(vec![INSTANCE_METADATA_CIDR.to_owned()]),
            }),
            ..NetworkPolicyPeer::default()
        }]),
        ports: Some(vec![port("TCP", 443)]),
    }];
    if spec.identity.trust() == TrustMechanism::PodIdentity {
        egress.push(NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                ip_block: Some(IPBlock {
                    cidr: POD_IDENTITY_AGENT_CIDR.to_owned(),
                    except: None,
                }),
                ..NetworkPolicyPeer::default()
            }]),
            ports: Some(vec![port("TCP", POD_IDENTITY_AGENT_PORT)]),
        });
    }
    let egress_except_metadata = NetworkPolicySpec {
        pod_selector: all_pods(),
        policy_types: policy_types(&["Egress"]),
        ingress: None,
        egress: Some(egress),
    };
    [
        (POLICY_DEFAULT_DENY, default_deny),
        (POLICY_SAME_NAMESPACE, same_namespace),
        (POLICY_DNS, dns),
        (POLICY_EGRESS_EXCEPT_METADATA, egress_except_metadata),
    ]
    .into_iter()
    .map(|(name, policy)| network_policy(spec, tenant, name, policy))
    .collect()
}

/// The pods of one namespace, as a NetworkPolicy peer.
fn namespace_peer(namespace: &str) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        namespace_selector: labels_selector(&[(NAMESPACE_NAME_LABEL, namespace)]),
        ..NetworkPolicyPeer::default()
    }
}

/// The two NetworkPolicies of each `allowFrom` rule of `tenant`: `allow-from-<peer>` in the
/// tenant's namespace (ingress from the peer's pods on the rule's ports) and `allow-to-<tenant>`
/// in the peer's namespace (egress to the tenant's pods on the same ports), both labelled with
/// the peer ([`PEER_LABEL`]) and belonging to `tenant`, whose offboarding removes them. Both
/// sides are needed: each namespace denies both directions by default.
fn allow_from_policies(spec: &PlatformSpec, tenant: &TenantSpec) -> Vec<Value> {
    let mut out = Vec::new();
    for rule in &tenant.allow_from {
        let ports: Vec<NetworkPolicyPort> = rule
            .ports
            .iter()
            .map(|p| port(rule.protocol.as_str(), i32::from(*p)))
            .collect();
        let ingress = NetworkPolicySpec {
            pod_selector: all_pods(),
            policy_types: policy_types(&["Ingress"]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![namespace_peer(&rule.tenant)]),
                ports: Some(ports.clone()),
            }]),
            egress: None,
        };
        let egress = NetworkPolicySpec {
            pod_selector: all_pods(),
            policy_types: policy_types(&["Egress"]),
            ingress: None,
            egress: Some(vec![NetworkPolicyEgressRule {
                to: Some(vec![namespace_peer(&tenant.name)]),
                ports: Some(ports),
            }]),
        };
        let from = format!("allow-from-{}", rule.tenant);
        let to = format!("allow-to-{}", tenant.name);
        out.push(peer_policy(
            spec,
            tenant,
            &from,
            &tenant.name,
            &rule.tenant,
            ingress,
        ));
        out.push(peer_policy(
            spec,
            tenant,
            &to,
            &rule.tenant,
            &rule.tenant,
            egress,
        ));
    }
    out
}

fn peer_policy(
    spec: &PlatformSpec,
    tenant: &TenantSpec,
    name: &str,
    namespace: &str,
    peer: &str,
    policy: NetworkPolicySpec,
) -> Value {
    let mut metadata = tenant_meta(spec, tenant, name, Some(namespace));
    metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(PEER_LABEL.to_owned(), peer.to_owned());
    to_value(&NetworkPolicy {
        metadata,
        spec: Some(policy),
    })
}

/// The other tenant an `allowFrom` policy opens traffic with, if `manifest` is one.
pub fn peer_of(manifest: &Value) -> Option<&str> {
    manifest["metadata"]["labels"][PEER_LABEL].as_str()
}

fn quantities(pairs: &[(&str, String)]) -> Option<BTreeMap<String, Quantity>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Quantity(v.clone())))
            .collect(),
    )
}

/// The namespace's ResourceQuota (`quota`), from `tenant.quotas`: caps what one tenant can take
/// from the nodes, volumes and load balancers all tenants share. Because it sets CPU and memory
/// requests and limits, every pod must state them; the LimitRange supplies defaults.
fn resource_quota(spec: &PlatformSpec, tenant: &TenantSpec) -> Value {
    let q = &tenant.quotas;
    to_value(&ResourceQuota {
        metadata: tenant_meta(spec, tenant, QUOTA_NAME, Some(&tenant.name)),
        spec: Some(ResourceQuotaSpec {
            hard: quantities(&[
                ("requests.cpu", q.requests_cpu.clone()),
                ("requests.memory", q.requests_memory.clone()),
                ("limits.cpu", q.limits_cpu.clone()),
                ("limits.memory", q.limits_memory.clone()),
                ("requests.storage", q.requests_storage.clone()),
                ("pods", q.pods.to_string()),
                ("services", q.services.to_string()),
                ("services.loadbalancers", q.load_balancers.to_string()),
                (
                    "persistentvolumeclaims",
                    q.persistent_volume_claims.to_string(),
                ),
            ]),
            ..ResourceQuotaSpec::default()
        }),
        status: None,
    })
}

/// The namespace's LimitRange (`limits`): default requests and limits for containers that state
/// none, from `tenant.limits`, so that pods without them are still admitted under the quota
/// (which otherwise refuses them) and are scheduled with a sensible size.
fn limit_range(spec: &PlatformSpec, tenant: &TenantSpec) -> Value {
    let l = &tenant.limits;
    to_value(&LimitRange {
        metadata: tenant_meta(spec, tenant, LIMIT_RANGE_NAME, Some(&tenant.name)),
        spec: Some(LimitRangeSpec {
            limits: vec![LimitRangeItem {
                type_: "Container".to_owned(),
                default_request: quantities(&[
                    ("cpu", l.default_request_cpu.clone()),
                    ("memory", l.default_request_memory.clone()),
                ]),
                default: quantities(&[
                    ("cpu", l.default_cpu.clone()),
                    ("memory", l.default_memory.clone()),
                ]),
                ..LimitRangeItem::default()
            }],
        }),
    })
}

/// The tenant's service account ([`TENANT_SERVICE_ACCOUNT`], `workload`), the only one the
/// tenant role trusts. Under IRSA `irsa_role_arn` becomes its `eks.amazonaws.com/role-arn`
/// annotation; under Pod Identity (`None`) a pod identity association links the role instead.
/// `automountServiceAccountToken` is left unset: workloads need the projected token that IRSA
/// and Pod Identity exchange for the role's credentials.
fn service_account(spec: &PlatformSpec, tenant: &TenantSpec, irsa_role_arn: Option<&str>) -> Value {
    let mut metadata = tenant_meta(spec, tenant, TENANT_SERVICE_ACCOUNT, Some(&tenant.name));
    metadata.annotations =
        irsa_role_arn.map(|arn| BTreeMap::from([(IRSA_ANNOTATION.to_owned(), arn.to_owned())]));
    to_value(&ServiceAccount {
        metadata,
        ..ServiceAccount::default()
    })
}

/// Everything one tenant has in the cluster, in apply order: the Namespace first (everything
/// else lives in it), its `default` ServiceAccount without a mounted token, the NetworkPolicies (default deny before the allowances, so the namespace
/// is never open while half-built; then the two of each `allowFrom` rule, one of them in the
/// other tenant's namespace), the ResourceQuota and LimitRange, the owners' Role and
/// RoleBinding, then the ServiceAccount
/// (with the IRSA annotation when `irsa_role_arn` is given). Offboarding deletes in reverse.
pub fn tenant_manifests(
    spec: &PlatformSpec,
    tenant: &TenantSpec,
    irsa_role_arn: Option<&str>,
) -> Vec<Value> {
    let mut out = vec![namespace(spec, tenant)];
    out.push(super::manifests::default_service_account(tenant_meta(
        spec,
        tenant,
        "default",
        Some(&tenant.name),
    )));
    out.extend(network_policies(spec, tenant));
    out.extend(allow_from_policies(spec, tenant));
    out.push(resource_quota(spec, tenant));
    out.push(limit_range(spec, tenant));
    out.push(owner_role(spec, tenant));
    out.push(owner_binding(spec, tenant));
    out.push(service_account(spec, tenant, irsa_role_arn));
    out
}

/// The `SecurityGroupPolicy` (`vpcresources.k8s.aws/v1beta1`, a CRD of every EKS cluster: the
/// VPC resource controller runs in the control plane) of a tenant on Fargate: every pod of its
/// namespace gets the tenant's pod security group, `group_id`, and no other
/// (`resources::pod_security_group`). Owners may not touch it (no rule of [`OWNER_RULES`] names
/// the group `vpcresources.k8s.aws`).
pub fn security_group_policy(spec: &PlatformSpec, tenant: &TenantSpec, group_id: &str) -> Value {
    let metadata = tenant_meta(
        spec,
        tenant,
        crate::resources::pod_security_group::POLICY_NAME,
        Some(&tenant.name),
    );
    serde_json::json!({
        "apiVersion": "vpcresources.k8s.aws/v1beta1",
        "kind": "SecurityGroupPolicy",
        "metadata": serde_json::to_value(metadata).unwrap_or_default(),
        "spec": {
            "podSelector": {},
            "securityGroups": { "groupIds": [group_id] },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::manifests::tests::{assert_common_labels, example};
    use serde_json::json;

    const ROLE: &str = "arn:aws:iam::111122223333:role/tenantry-payments-prod-t-fraud-scoring";

    fn fraud() -> TenantSpec {
        let text = include_str!("../../../examples/tenant.json");
        crate::validate::parse_tenant(text).expect("example tenant is valid")
    }

    fn find<'a>(all: &'a [Value], kind: &str, name: &str) -> &'a Value {
        all.iter()
            .find(|m| m["kind"] == kind && m["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name}"))
    }

    /// The example with IRSA as the only trust mechanism.
    fn irsa_only() -> PlatformSpec {
        let mut spec = example();
        spec.identity.pod_identity = false;
        spec.identity.irsa = true;
        spec
    }

    #[test]
    fn objects_are_in_apply_order_labelled_and_applicable() {
        let all = tenant_manifests(&example(), &fraud(), None);
        let order: Vec<(&str, &str)> = all
            .iter()
            .map(|m| {
                (
                    m["kind"].as_str().expect("kind"),
                    m["metadata"]["name"].as_str().expect("name"),
                )
            })
            .collect();
        assert_eq!(
            order,
            [
                ("Namespace", "fraud-scoring"),
                ("ServiceAccount", "default"),
                ("NetworkPolicy", "default-deny"),
                ("NetworkPolicy", "allow-same-namespace"),
                ("NetworkPolicy", "allow-dns"),
                ("NetworkPolicy", "allow-egress-except-metadata"),
                ("ResourceQuota", "quota"),
                ("LimitRange", "limits"),
                ("Role", OWNER_ROLE),
                ("RoleBinding", OWNER_ROLE),
                ("ServiceAccount", "workload"),
            ]
        );
        for m in &all {
            assert_common_labels(m, "payments");
            assert_eq!(
                m["metadata"]["labels"][TENANT_LABEL], "fraud-scoring",
                "{m}"
            );
            if m["kind"] != "Namespace" {
                assert_eq!(m["metadata"]["namespace"], "fraud-scoring", "{m}");
            } else {
                assert!(m["metadata"].get("namespace").is_none(), "{m}");
            }
            assert!(
                crate::kubernetes::resource_of(
                    m["apiVersion"].as_str().expect("apiVersion"),
                    m["kind"].as_str().expect("kind"),
                )
                .is_some(),
                "{m}"
            );
        }
        let policies: Vec<&str> = all
            .iter()
            .filter(|m| m["kind"] == "NetworkPolicy")
            .map(|m| m["metadata"]["name"].as_str().expect("name"))
            .collect();
        assert_eq!(policies, TENANT_NETWORK_POLICIES);
        assert_eq!(TENANT_SERVICE_ACCOUNT, "workload");
    }

    /// Owners cannot lift their own isolation: every rule is checked as RBAC evaluates it
    /// (group, resource, verb, `*` matching anything).
    #[test]
    fn owners_run_workloads_but_cannot_touch_what_isolates_them() {
        let all = tenant_manifests(&example(), &fraud(), None);
        let role = find(&all, "Role", OWNER_ROLE);
        let rules = role["rules"].as_array().expect("rules");
        let allows = |group: &str, resource: &str, verb: &str| {
            rules.iter().any(|r| {
                let has = |field: &str, x: &str| {
                    r[field]
                        .as_array()
                        .is_some_and(|v| v.iter().any(|v| v == x || v == "*"))
                };
                has("apiGroups", group) && has("resources", resource) && has("verbs", verb)
            })
        };
        for (group, resource) in [
            ("networking.k8s.io", "networkpolicies"),
            ("", "resourcequotas"),
            ("", "limitranges"),
            ("rbac.authorization.k8s.io", "roles"),
            ("rbac.authorization.k8s.io", "rolebindings"),
            ("", "namespaces"),
            ("", "serviceaccounts"),
        ] {
            for verb in ["create", "update", "patch", "delete", "deletecollection"] {
                assert!(
                    !allows(group, resource, verb),
                    "owners may {verb} {group}/{resource}"
                );
            }
        }
        for verb in ["impersonate", "escalate", "bind"] {
            for (group, resource) in [
                ("", "serviceaccounts"),
                ("rbac.authorization.k8s.io", "roles"),
            ] {
                assert!(
                    !allows(group, resource, verb),
                    "owners may {verb} {resource}"
                );
            }
        }
        assert!(
            rules.iter().all(
                |r| r["apiGroups"].as_array().unwrap().iter().all(|g| g != "*")
                    && r["resources"].as_array().unwrap().iter().all(|x| x != "*")
                    && r["verbs"].as_array().unwrap().iter().all(|x| x != "*")
            ),
            "no wildcard: {role}"
        );
        for (group, resource) in [
            ("apps", "deployments"),
            ("", "pods"),
            ("", "secrets"),
            ("batch", "jobs"),
        ] {
            assert!(allows(group, resource, "create"), "{group}/{resource}");
        }
        assert!(allows("networking.k8s.io", "networkpolicies", "get"));
        let binding = find(&all, "RoleBinding", OWNER_ROLE);
        assert_eq!(binding["metadata"]["namespace"], "fraud-scoring");
        assert_eq!(binding["roleRef"]["kind"], "Role");
        assert_eq!(binding["subjects"][0]["kind"], "Group");
        assert_eq!(binding["subjects"][0]["name"], owner_group("fraud-scoring"));
    }

    #[test]
    fn only_a_namespace_with_this_tenants_labels_is_ours() {
        let spec = example();
        let tenant = fraud();
        let ours = namespace(&spec, &tenant);
        assert_eq!(foreign_namespace(&spec, &tenant, &ours), None);
        let foreign = serde_json::json!({
            "metadata": { "name": "fraud-scoring", "labels": { "team": "payroll" } }
        });
        let why = foreign_namespace(&spec, &tenant, &foreign).expect("foreign");
        assert!(why.contains("tenantry.io/tenant=fraud-scoring"), "{why}");
        // Another tenant's (or platform's) label is not ours either.
        let mut other = ours.clone();
        other["metadata"]["labels"][TENANT_LABEL] = "checkout".into();
        assert!(foreign_namespace(&spec, &tenant, &other).is_some());
        let mut other_platform = ours;
        other_platform["metadata"]["labels"]["tenantry.io/platform"] = "other".into();
        assert!(foreign_namespace(&spec, &tenant, &other_platform).is_some());
    }

    #[test]
    fn namespace_enforces_restricted_at_the_cluster_version() {
        let spec = example();
        let all = tenant_manifests(&spec, &fraud(), None);
        let ns = find(&all, "Namespace", "fraud-scoring");
        assert_eq!(ns["apiVersion"], "v1");
        let labels = ns["metadata"]["labels"].as_object().expect("labels");
        for mode in ["enforce", "audit", "warn"] {
            assert_eq!(
                labels[&format!("pod-security.kubernetes.io/{mode}")],
                "restricted"
            );
            assert_eq!(
                labels[&format!("pod-security.kubernetes.io/{mode}-version")],
                "v1.35"
            );
        }
        // Three common labels (manager, platform, environment), the tenant label and six Pod
        // Security labels: nothing else.
        assert_eq!(labels.len(), 10, "{ns}");
        assert!(ns.get("spec").is_none(), "{ns}");

        let mut old = spec.clone();
        old.kubernetes_version = "1.33".into();
        let all = tenant_manifests(&old, &fraud(), None);
        assert_eq!(
            all[0]["metadata"]["labels"]["pod-security.kubernetes.io/warn-version"],
            "v1.33"
        );
    }

    #[test]
    fn network_policies_have_the_agreed_shapes() {
        let all = tenant_manifests(&irsa_only(), &fraud(), None);
        for name in TENANT_NETWORK_POLICIES {
            let p = find(&all, "NetworkPolicy", name);
            assert_eq!(p["apiVersion"], "networking.k8s.io/v1");
            assert_eq!(p["spec"]["podSelector"], json!({}), "{p}");
        }

        let deny = &find(&all, "NetworkPolicy", "default-deny")["spec"];
        assert_eq!(
            *deny,
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
        );

        let same = &find(&all, "NetworkPolicy", "allow-same-namespace")["spec"];
        assert_eq!(
            *same,
            json!({
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [{"podSelector": {}}]}],
                "egress": [{"to": [{"podSelector": {}}]}],
            })
        );

        let dns = &find(&all, "NetworkPolicy", "allow-dns")["spec"];
        assert_eq!(
            *dns,
            json!({
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [{
                    "to": [{
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                        },
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    }],
                    "ports": [
                        {"protocol": "UDP", "port": 53},
                        {"protocol": "TCP", "port": 53},
                    ],
                }],
            })
        );

        let egress = &find(&all, "NetworkPolicy", "allow-egress-except-metadata")["spec"];
        assert_eq!(
            *egress,
            json!({
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [{
                    "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}}],
                    "ports": [{"protocol": "TCP", "port": 443}],
                }],
            })
        );
    }

    #[test]
    fn pod_identity_platforms_may_reach_the_pod_identity_agent_only() {
        // The example trusts Pod Identity: the agent's link-local address on port 80 is open,
        // the instance metadata service still is not.
        let all = tenant_manifests(&example(), &fraud(), None);
        let egress = &find(&all, "NetworkPolicy", "allow-egress-except-metadata")["spec"]["egress"];
        assert_eq!(
            *egress,
            json!([
                {
                    "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}}],
                    "ports": [{"protocol": "TCP", "port": 443}],
                },
                {
                    "to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}],
                    "ports": [{"protocol": "TCP", "port": 80}],
                },
            ])
        );
    }

    #[test]
    fn quota_and_limits_come_from_the_tenant_spec() {
        let tenant = fraud();
        let all = tenant_manifests(&example(), &tenant, None);
        let quota = find(&all, "ResourceQuota", "quota");
        let q = &tenant.quotas;
        assert_eq!(
            quota["spec"],
            json!({"hard": {
                "requests.cpu": q.requests_cpu,
                "requests.memory": q.requests_memory,
                "limits.cpu": q.limits_cpu,
                "limits.memory": q.limits_memory,
                "requests.storage": q.requests_storage,
                "pods": q.pods.to_string(),
                "services": q.services.to_string(),
                "services.loadbalancers": q.load_balancers.to_string(),
                "persistentvolumeclaims": q.persistent_volume_claims.to_string(),
            }})
        );
        // The example's own values, so a mapping mix-up cannot hide behind equal defaults.
        assert_eq!(quota["spec"]["hard"]["requests.cpu"], "8");
        assert_eq!(quota["spec"]["hard"]["limits.memory"], "32Gi");
        assert_eq!(quota["spec"]["hard"]["pods"], "80");
        assert_eq!(quota["spec"]["hard"]["services.loadbalancers"], "1");

        let limits = find(&all, "LimitRange", "limits");
        let l = &tenant.limits;
        assert_eq!(
            limits["spec"],
            json!({"limits": [{
                "type": "Container",
                "defaultRequest": {"cpu": l.default_request_cpu, "memory": l.default_request_memory},
                "default": {"cpu": l.default_cpu, "memory": l.default_memory},
            }]})
        );
        assert_eq!(limits["spec"]["limits"][0]["default"]["cpu"], "1");
        assert_eq!(
            limits["spec"]["limits"][0]["defaultRequest"]["memory"],
            "256Mi"
        );
    }

    #[test]
    fn service_account_is_annotated_only_with_a_role() {
        let spec = irsa_only();
        let with = tenant_manifests(&spec, &fraud(), Some(ROLE));
        let sa = find(&with, "ServiceAccount", "workload");
        assert_eq!(
            sa["metadata"]["annotations"],
            json!({ "eks.amazonaws.com/role-arn": ROLE })
        );
        assert!(sa.get("automountServiceAccountToken").is_none(), "{sa}");

        let without = tenant_manifests(&spec, &fraud(), None);
        let sa = find(&without, "ServiceAccount", "workload");
        assert!(sa["metadata"].get("annotations").is_none(), "{sa}");
        assert!(sa.get("automountServiceAccountToken").is_none(), "{sa}");
        // The annotation is the only difference.
        let mut annotated = without.clone();
        if let Some(last) = annotated.last_mut() {
            last["metadata"]["annotations"] = json!({ "eks.amazonaws.com/role-arn": ROLE });
        }
        assert_eq!(annotated, with);
    }

    /// The example's `ledger`, reachable from `checkout` on TCP 8080.
    fn ledger_open_to_checkout() -> (PlatformSpec, Vec<Value>) {
        let spec = example();
        let mut ledger = spec
            .tenants
            .iter()
            .find(|t| t.name == "ledger")
            .cloned()
            .expect("ledger");
        ledger.allow_from = vec![crate::spec::AllowFrom {
            tenant: "checkout".to_owned(),
            ports: vec![8080],
            protocol: crate::spec::Protocol::Tcp,
        }];
        let mut all = Vec::new();
        for t in &spec.tenants {
            let t = if t.name == "ledger" { &ledger } else { t };
            all.extend(tenant_manifests(&spec, t, None));
        }
        (spec, all)
    }

    fn connects(all: &[Value], from: &str, to: &str, port: u16) -> bool {
        super::super::reach::connects(all, from, to, port, "TCP")
    }

    #[test]
    fn allow_from_opens_exactly_the_named_tenant_on_the_named_port() {
        let (_, all) = ledger_open_to_checkout();
        assert!(connects(&all, "checkout", "ledger", 8080));
        assert!(!connects(&all, "checkout", "ledger", 9090), "another port");
        assert!(!connects(&all, "ledger", "checkout", 8080), "the other way");
        assert!(
            !connects(&all, "reconciliation", "ledger", 8080),
            "another tenant"
        );
        assert!(!connects(&all, "reconciliation", "checkout", 8080));
        // The evaluator is not vacuous: within a namespace traffic flows.
        assert!(connects(&all, "ledger", "ledger", 9090));
    }

    #[test]
    fn allow_from_policies_belong_to_the_declaring_tenant_and_name_the_peer() {
        let (spec, all) = ledger_open_to_checkout();
        let ingress = find(&all, "NetworkPolicy", "allow-from-checkout");
        let egress = find(&all, "NetworkPolicy", "allow-to-ledger");
        assert_eq!(ingress["metadata"]["namespace"], "ledger");
        assert_eq!(egress["metadata"]["namespace"], "checkout");
        for policy in [ingress, egress] {
            assert_common_labels(policy, &spec.id);
            assert_eq!(policy["metadata"]["labels"][TENANT_LABEL], "ledger");
            assert_eq!(peer_of(policy), Some("checkout"));
        }
        assert_eq!(ingress["spec"]["policyTypes"], json!(["Ingress"]));
        assert_eq!(egress["spec"]["policyTypes"], json!(["Egress"]));
        let without = tenant_manifests(&spec, &spec.tenants[2], None);
        assert!(without.iter().all(|m| peer_of(m).is_none()));
    }
}
