//! Inside the cluster (CIS EKS section 4): RBAC, service accounts, Pod Security, namespaces.

use super::{each_tenant, judge, k8s, not_applicable, on_kubernetes, platform, Verdict};
use crate::compliance::live::{Kubernetes, Live, RbacRole};
use serde_json::json;

const ENFORCE: &str = "pod-security.kubernetes.io/enforce";

/// Built-in roles Kubernetes and EKS own (judging them would judge upstream's choices).
fn is_builtin(name: &str) -> bool {
    name.starts_with("system:")
        || name.starts_with("eks:")
        || ["cluster-admin", "admin", "edit", "view"].contains(&name)
}

pub fn cluster_admin_bindings(live: &Live) -> Vec<Verdict> {
    on_kubernetes(live, |k| {
        let allowed = |s: &str| {
            s == "Group/system:masters"
                || live
                    .asked
                    .admin_groups
                    .iter()
                    .any(|g| s == format!("Group/{g}"))
        };
        let bindings: Vec<_> = k
            .cluster_role_bindings
            .iter()
            .filter(|b| b.role == "ClusterRole/cluster-admin")
            .collect();
        if bindings.is_empty() {
            return vec![judge(
                platform(live),
                true,
                "no ClusterRoleBinding grants cluster-admin",
                "",
                json!({"bindings": []}),
            )];
        }
        bindings
            .into_iter()
            .map(|b| {
                let strangers: Vec<&str> = b
                    .subjects
                    .iter()
                    .map(String::as_str)
                    .filter(|s| !allowed(s))
                    .collect();
                judge(
                    k8s("clusterrolebinding", &b.name),
                    strangers.is_empty(),
                    "binds cluster-admin only to system:masters and the groups the request names",
                    format!("binds cluster-admin to {}", strangers.join(", ")),
                    json!({"subjects": b.subjects, "namedGroups": live.asked.admin_groups}),
                )
            })
            .collect()
    })
}

/// The non-built-in cluster roles and roles, as `(resource name, role)`.
/// The roles to judge: not Kubernetes' or EKS's own, nor a platform component's ClusterRole as
/// Tenantry vendored it (`Asked::platform_roles`; changed, it is judged like any other).
fn own_roles<'a>(live: &Live, k: &'a Kubernetes) -> Vec<(String, &'a RbacRole)> {
    k.cluster_roles
        .iter()
        .filter(|r| !is_builtin(&r.name))
        .filter(|r| live.asked.platform_roles.get(&r.name) != Some(&r.rules))
        .map(|r| (k8s("clusterrole", &r.name), r))
        .chain(k.roles.iter().map(|r| (k8s("role", &r.name), r)))
        .collect()
}

fn judge_roles(
    live: &Live,
    k: &Kubernetes,
    bad: impl Fn(&RbacRole) -> Vec<String>,
    passed: &str,
    failed: &str,
) -> Vec<Verdict> {
    let roles = own_roles(live, k);
    if roles.is_empty() {
        return vec![not_applicable(
            platform(live),
            "the cluster has no roles besides the built-in ones",
        )];
    }
    roles
        .into_iter()
        .map(|(name, role)| {
            let found = bad(role);
            judge(
                name,
                found.is_empty(),
                passed,
                format!("{failed}: {}", found.join("; ")),
                json!({"rules": role.rules}),
            )
        })
        .collect()
}

pub fn no_wildcard_rbac(live: &Live) -> Vec<Verdict> {
    on_kubernetes(live, |k| {
        judge_roles(
            live,
            k,
            |role| {
                role.rules
                    .iter()
                    .filter(|r| {
                        [&r.api_groups, &r.resources, &r.verbs]
                            .iter()
                            .any(|l| l.iter().any(|x| x == "*"))
                    })
                    .map(|r| {
                        format!(
                            "{} on {}/{}",
                            r.verbs.join(","),
                            r.api_groups.join(","),
                            r.resources.join(",")
                        )
                    })
                    .collect()
            },
            "no wildcard in any rule",
            "rules with a wildcard",
        )
    })
}

pub fn no_escalation_verbs(live: &Live) -> Vec<Verdict> {
    on_kubernetes(live, |k| {
        judge_roles(
            live,
            k,
            |role| {
                role.rules
                    .iter()
                    .flat_map(|r| r.verbs.iter())
                    .filter(|v| ["bind", "escalate", "impersonate"].contains(&v.as_str()))
                    .cloned()
                    .collect()
            },
            "grants no bind, escalate or impersonate",
            "escalation verbs",
        )
    })
}

/// The namespaces whose default service account must not mount a token: every tenant's and
/// `default` (Kubernetes' system namespaces run system components Tenantry does not own).
fn guarded_namespaces(live: &Live) -> Vec<String> {
    let mut out = vec!["default".to_owned()];
    out.extend(live.asked.tenant_namespaces.iter().cloned());
    out
}

pub fn default_service_accounts(live: &Live) -> Vec<Verdict> {
    on_kubernetes(live, |k| {
        guarded_namespaces(live)
            .into_iter()
            .map(|ns| {
                let automount = k.default_service_accounts.get(&ns).copied().flatten();
                judge(
                    k8s("serviceaccount", &format!("{ns}/default")),
                    automount == Some(false),
                    "automountServiceAccountToken is false",
                    match k.default_service_accounts.get(&ns) {
                        None => "the default service account is missing or unread".to_owned(),
                        Some(_) => "automountServiceAccountToken is not false".to_owned(),
                    },
                    json!({"automountServiceAccountToken": automount}),
                )
            })
            .collect()
    })
}

pub fn pod_security_labels(live: &Live) -> Vec<Verdict> {
    on_kubernetes(live, |k| {
        k.namespaces
            .iter()
            .map(|(ns, labels)| {
                let level = labels.get(ENFORCE);
                judge(
                    k8s("namespace", ns),
                    level.is_some(),
                    format!("enforces {}", level.map_or("", String::as_str)),
                    format!("no {ENFORCE} label"),
                    json!({ENFORCE: level}),
                )
            })
            .collect()
    })
}

pub fn tenants_restricted(live: &Live) -> Vec<Verdict> {
    each_tenant(live, |k, ns| {
        let level = k.namespaces.get(ns).and_then(|l| l.get(ENFORCE));
        judge(
            k8s("namespace", ns),
            level.is_some_and(|l| l == "restricted"),
            "enforces restricted",
            format!("enforces {}", level.map_or("nothing", String::as_str)),
            json!({ENFORCE: level}),
        )
    })
}

pub fn default_namespace_unused(live: &Live) -> Vec<Verdict> {
    on_kubernetes(live, |k| {
        vec![judge(
            k8s("namespace", "default"),
            k.default_namespace_pods.is_empty(),
            "no pod runs in default",
            format!("pods in default: {}", k.default_namespace_pods.join(", ")),
            json!({"pods": k.default_namespace_pods}),
        )]
    })
}

pub fn tenant_quotas(live: &Live) -> Vec<Verdict> {
    each_tenant(live, |k, ns| {
        let has = k.quota_namespaces.iter().any(|q| q == ns);
        judge(
            k8s("namespace", ns),
            has,
            "has a ResourceQuota",
            "has no ResourceQuota",
            json!({"resourceQuota": has}),
        )
    })
}
