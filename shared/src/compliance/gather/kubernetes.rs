//! The cluster's side of a sweep: what the CIS section 4 controls judge (namespaces, RBAC,
//! default service accounts, pods in `default`, NetworkPolicies, quotas) and, with Calico, the
//! Installation's CNI. The client is read-only (`kubernetes::connect_read_only`).

use super::super::live::*;
use crate::error::{ErrorType, FunctionError};
use k8s_openapi::api::core::v1::{Namespace, Pod, ResourceQuota, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy as K8sNetworkPolicy;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role as K8sRole, RoleBinding, RoleRef, Subject,
};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde_json::Value;

/// The `spec.cni` of Calico's `Installation` (`None` when there is none).
pub(super) async fn calico_cni(
    client: &Client,
    spec: &crate::spec::PlatformSpec,
) -> Result<Option<Value>, FunctionError> {
    let wanted = crate::kubernetes::installation(spec, "");
    Ok(crate::kubernetes::get(client, &wanted)
        .await?
        .map(|live| live["spec"]["cni"].clone()))
}

/// The cluster-side state the CIS section 4 controls judge.
pub(super) async fn kubernetes(client: &Client) -> Result<Kubernetes, FunctionError> {
    let c = client.clone();
    let namespaces = list(Api::<Namespace>::all(c.clone()), "namespaces").await?;
    let service_accounts = list(Api::<ServiceAccount>::all(c.clone()), "serviceaccounts").await?;
    let in_default = Api::<Pod>::namespaced(c.clone(), "default");
    let pods = list(in_default, "pods in default").await?;
    let policies = list(Api::<K8sNetworkPolicy>::all(c.clone()), "networkpolicies").await?;
    let quotas = list(Api::<ResourceQuota>::all(c.clone()), "resourcequotas").await?;
    let mut k = Kubernetes {
        namespaces: namespaces
            .iter()
            .map(|n| (n.name_any(), n.labels().clone()))
            .collect(),
        cluster_role_bindings: Vec::new(),
        role_bindings: Vec::new(),
        cluster_roles: Vec::new(),
        roles: Vec::new(),
        default_service_accounts: service_accounts
            .iter()
            .filter(|sa| sa.name_any() == "default")
            .map(|sa| {
                (
                    sa.namespace().unwrap_or_default(),
                    sa.automount_service_account_token,
                )
            })
            .collect(),
        default_namespace_pods: pods.iter().map(|p| p.name_any()).collect(),
        network_policies: policies.iter().map(network_policy).collect(),
        quota_namespaces: quotas.iter().filter_map(|q| q.namespace()).collect(),
        calico_cni: None,
    };
    rbac(c, &mut k).await?;
    Ok(k)
}

/// Roles, cluster roles and their bindings.
async fn rbac(c: Client, k: &mut Kubernetes) -> Result<(), FunctionError> {
    let cluster_bindings = Api::<ClusterRoleBinding>::all(c.clone());
    k.cluster_role_bindings = list(cluster_bindings, "clusterrolebindings")
        .await?
        .iter()
        .map(|b| binding(b.name_any(), &b.role_ref, b.subjects.as_ref()))
        .collect();
    k.role_bindings = list(Api::<RoleBinding>::all(c.clone()), "rolebindings")
        .await?
        .iter()
        .map(|b| {
            let name = format!("{}/{}", b.namespace().unwrap_or_default(), b.name_any());
            binding(name, &b.role_ref, b.subjects.as_ref())
        })
        .collect();
    k.cluster_roles = list(Api::<ClusterRole>::all(c.clone()), "clusterroles")
        .await?
        .iter()
        .map(|r| RbacRole {
            name: r.name_any(),
            rules: rules(r.rules.as_ref()),
        })
        .collect();
    k.roles = list(Api::<K8sRole>::all(c), "roles")
        .await?
        .iter()
        .map(|r| RbacRole {
            name: format!("{}/{}", r.namespace().unwrap_or_default(), r.name_any()),
            rules: rules(r.rules.as_ref()),
        })
        .collect();
    Ok(())
}

async fn list<K>(api: Api<K>, what: &str) -> Result<Vec<K>, FunctionError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&ListParams::default())
        .await
        .map(|l| l.items)
        .map_err(|e| FunctionError::new(ErrorType::Retryable, format!("listing {what}: {e}")))
}

fn rules(rules: Option<&Vec<PolicyRule>>) -> Vec<RbacRule> {
    rules
        .into_iter()
        .flatten()
        .map(|r| RbacRule {
            api_groups: r.api_groups.clone().unwrap_or_default(),
            resources: r.resources.clone().unwrap_or_default(),
            verbs: r.verbs.clone(),
        })
        .collect()
}

/// A binding's subjects as `Kind/name`, service accounts as `ServiceAccount/namespace/name`.
fn binding(name: String, role: &RoleRef, subjects: Option<&Vec<Subject>>) -> Binding {
    Binding {
        name,
        role: format!("{}/{}", role.kind, role.name),
        subjects: subjects
            .into_iter()
            .flatten()
            .map(|s| match &s.namespace {
                Some(ns) if s.kind == "ServiceAccount" => {
                    format!("ServiceAccount/{ns}/{}", s.name)
                }
                _ => format!("{}/{}", s.kind, s.name),
            })
            .collect(),
    }
}

fn network_policy(p: &K8sNetworkPolicy) -> NetworkPolicy {
    let spec = p.spec.clone().unwrap_or_default();
    NetworkPolicy {
        namespace: p.namespace().unwrap_or_default(),
        name: p.name_any(),
        selects_all: spec.pod_selector.as_ref().is_none_or(|s| {
            s.match_labels.as_ref().is_none_or(|m| m.is_empty())
                && s.match_expressions.as_ref().is_none_or(|m| m.is_empty())
        }),
        policy_types: spec.policy_types.clone().unwrap_or_default(),
        has_ingress_rules: spec.ingress.as_ref().is_some_and(|r| !r.is_empty()),
        has_egress_rules: spec.egress.as_ref().is_some_and(|r| !r.is_empty()),
    }
}
