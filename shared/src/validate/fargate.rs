//! `fargate` rules (platform and tenant): profile names EKS accepts, each once; at most 5
//! selectors of at most 5 labels; namespaces that are the platform's to give, never
//! `kube-system` (CoreDNS has its own switch) and, for a tenant, only its own; and no tenant on
//! Fargate where the CNI's network policy cannot reach Fargate pods (Calico).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::Regex;

use super::nodegroups::{is_label_value, is_qualified_name};
use super::{field, index, key, rules, Issues};
use crate::spec::{
    Cni, FargateSpec, PlatformSpec, TenantSpec, TrustMechanism, MAX_FARGATE_LABELS,
    MAX_FARGATE_PROFILE_NAME_LEN, MAX_FARGATE_SELECTORS, MAX_PLATFORM_FARGATE_PROFILES,
};

/// Fargate profiles per cluster (EKS's default quota).
const MAX_CLUSTER_FARGATE_PROFILES: usize = 10;

/// A Fargate profile name as EKS defines it.
static PROFILE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[0-9A-Za-z][0-9A-Za-z_-]*$").expect("valid regex"));
/// A namespace: a DNS-1123 label (EKS would also take `*` and `?` wildcards, which could
/// capture namespaces created later, a tenant's among them: refused).
static NAMESPACE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$").expect("valid regex"));

/// The platform's `fargate` at `$.fargate`.
pub(crate) fn check_platform(spec: &PlatformSpec, issues: &mut Issues) {
    let f: &FargateSpec = &spec.fargate;
    let at = "$.fargate.profiles";
    check_profile_counts(spec, issues);
    check_coredns_placement(spec, issues);
    let tenants: BTreeSet<&str> = spec.tenants.iter().map(|t| t.name.as_str()).collect();
    let mut seen = BTreeSet::new();
    for (i, p) in f.profiles.iter().enumerate() {
        let here = index(at, i);
        let name = &p.name;
        if name.is_empty()
            || name.len() > MAX_FARGATE_PROFILE_NAME_LEN
            || !PROFILE_NAME.is_match(name)
        {
            issues.push(
                field(&here, "name"),
                rules::FARGATE_PROFILE,
                format!(
                    "{name:?} is not a Fargate profile name: 1 to {MAX_FARGATE_PROFILE_NAME_LEN} \
                     letters, digits, '-' and '_', starting with a letter or digit"
                ),
            );
        } else if !seen.insert(name.as_str()) {
            issues.push(
                field(&here, "name"),
                rules::FARGATE_PROFILE,
                format!("Fargate profile {name:?} is named twice"),
            );
        }
        let selectors = field(&here, "selectors");
        check_selector_count(p.selectors.len(), &selectors, issues);
        for (j, s) in p.selectors.iter().enumerate() {
            let sel = index(&selectors, j);
            check_platform_namespace(&s.namespace, &field(&sel, "namespace"), &tenants, issues);
            check_labels(&s.labels, &field(&sel, "labels"), issues);
        }
    }
}

/// The platform's own profiles, and all the cluster's together (EKS's default quota: 10 per
/// cluster, CoreDNS's and the tenants' included).
fn check_profile_counts(spec: &PlatformSpec, issues: &mut Issues) {
    let f = &spec.fargate;
    if f.profiles.len() > MAX_PLATFORM_FARGATE_PROFILES {
        issues.push(
            "$.fargate.profiles",
            rules::FARGATE_PROFILE,
            format!(
                "{} Fargate profiles; at most {MAX_PLATFORM_FARGATE_PROFILES}",
                f.profiles.len()
            ),
        );
    }
    let total = f.profiles.len()
        + usize::from(f.core_dns)
        + spec.tenants.iter().filter(|t| t.fargate.is_some()).count();
    if total > MAX_CLUSTER_FARGATE_PROFILES {
        issues.push(
            "$.fargate",
            rules::FARGATE_PROFILE,
            format!(
                "{total} Fargate profiles (platform, CoreDNS and tenants); EKS allows \
                 {MAX_CLUSTER_FARGATE_PROFILES} per cluster"
            ),
        );
    }
}

/// A platform profile's namespace: a valid name, neither the cluster's own nor a tenant's.
fn check_platform_namespace(
    ns: &str,
    ns_path: &str,
    tenants: &BTreeSet<&str>,
    issues: &mut Issues,
) {
    if !check_namespace(ns, ns_path, issues) {
        return;
    }
    if ns == "kube-system" || ns.starts_with("kube-") || ns.starts_with("tenantry") {
        issues.push(
            ns_path,
            rules::FARGATE_NAMESPACE,
            format!(
                "namespace {ns:?} is the cluster's own: a profile may not move its \
                 pods to Fargate (for CoreDNS, set fargate.coreDns)"
            ),
        );
    } else if tenants.contains(ns) {
        issues.push(
            ns_path,
            rules::FARGATE_NAMESPACE,
            format!(
                "namespace {ns:?} is a tenant's: the tenant asks for Fargate in its \
                 own `fargate` (so that offboarding removes the profile)"
            ),
        );
    }
}

/// CoreDNS on Fargate with configuration that pins it to nodes (`nodeSelector`, `affinity`):
/// Fargate schedules a pod only if nothing in it asks for an EC2 node, so CoreDNS would stay
/// Pending and the cluster would have no DNS.
fn check_coredns_placement(spec: &PlatformSpec, issues: &mut Issues) {
    if !spec.fargate.core_dns {
        return;
    }
    for (i, addon) in spec.addons.iter().flatten().enumerate() {
        let Some(config) = addon.configuration_values.as_ref() else {
            continue;
        };
        if addon.name != "coredns" {
            continue;
        }
        for pin in ["nodeSelector", "affinity"] {
            if config.contains_key(pin) {
                issues.push(
                    format!("$.addons[{i}].configurationValues.{pin}"),
                    rules::FARGATE_PROFILE,
                    format!(
                        "fargate.coreDns runs CoreDNS on Fargate, and {pin} would keep its pods \
                         off Fargate (Pending: no DNS in the cluster). Remove {pin}, or leave \
                         fargate.coreDns out"
                    ),
                );
            }
        }
    }
}

/// The tenant's `fargate` at `at.fargate`: only its own namespace.
pub(crate) fn check_tenant(t: &TenantSpec, at: &str, issues: &mut Issues) {
    let Some(f) = &t.fargate else {
        return;
    };
    let selectors = field(&field(at, "fargate"), "selectors");
    check_selector_count(f.selectors.len(), &selectors, issues);
    for (j, s) in f.selectors.iter().enumerate() {
        let sel = index(&selectors, j);
        if let Some(ns) = &s.namespace {
            let ns_path = field(&sel, "namespace");
            if check_namespace(ns, &ns_path, issues) && *ns != t.name {
                issues.push(
                    ns_path,
                    rules::FARGATE_NAMESPACE,
                    format!(
                        "namespace {ns:?} is not the tenant's: a tenant's Fargate profile selects \
                         its own namespace {:?} only (leave namespace out)",
                        t.name
                    ),
                );
            }
        }
        check_labels(&s.labels, &field(&sel, "labels"), issues);
    }
    if !f.selectors.is_empty() && f.selectors.iter().all(|s| !s.labels.is_empty()) {
        issues.push(
            selectors,
            rules::FARGATE_WHOLE_NAMESPACE,
            "every selector has labels, so some of the tenant's pods would run on nodes: a \
             tenant is on Fargate whole or not at all, since its Fargate pods are isolated by \
             its pod security group and its node pods by NetworkPolicies, and the two could only \
             reach each other through the cluster security group, which every node pod carries. \
             Use `fargate: {}` (see the README: Fargate and NetworkPolicy)",
        );
    }
}

/// A tenant on Fargate in `platform`: refused where the CNI's network policy cannot reach
/// Fargate pods (Calico runs on nodes only), and where a platform profile already takes the
/// tenant's namespace (a new tenant onboarded onto an existing platform).
pub(crate) fn check_tenant_in_platform(
    t: &TenantSpec,
    at: &str,
    platform: &PlatformSpec,
    issues: &mut Issues,
) {
    if t.fargate.is_some() && platform.cni == Cni::Calico {
        issues.push(
            field(at, "fargate"),
            rules::FARGATE_NETWORK_POLICY,
            "the platform's CNI is Calico, which cannot run on Fargate: the tenant's \
             NetworkPolicies (default deny, allowFrom) would not reach its Fargate pods. Leave \
             fargate out, or use a platform with the VPC CNI (see the README: Fargate and \
             NetworkPolicy)",
        );
    }
    if t.fargate.is_some() && platform.identity.trust() == TrustMechanism::PodIdentity {
        issues.push(
            field(at, "fargate"),
            rules::FARGATE_POD_IDENTITY,
            "the platform's tenant roles trust EKS Pod Identity only, and Fargate pods have no \
             Pod Identity agent (it runs as a DaemonSet on nodes): the tenant's pods could not \
             get its role's credentials. Leave fargate out, or use a platform whose tenant roles \
             trust IRSA (identity.irsa true, identity.podIdentity false)",
        );
    }
    let taken = platform
        .fargate
        .profiles
        .iter()
        .any(|p| p.selectors.iter().any(|s| s.namespace == t.name));
    if taken && !platform.tenants.iter().any(|o| o.name == t.name) {
        issues.push(
            field(at, "name"),
            rules::FARGATE_NAMESPACE,
            format!(
                "a platform Fargate profile selects namespace {:?}: a tenant may not take it",
                t.name
            ),
        );
    }
}

fn check_selector_count(n: usize, at: &str, issues: &mut Issues) {
    if n == 0 || n > MAX_FARGATE_SELECTORS {
        issues.push(
            at,
            rules::FARGATE_SELECTOR,
            format!("{n} selectors; a Fargate profile takes 1 to {MAX_FARGATE_SELECTORS}"),
        );
    }
}

/// Whether `ns` is a namespace name (else an issue is pushed).
fn check_namespace(ns: &str, at: &str, issues: &mut Issues) -> bool {
    let ok = ns.len() <= 63 && NAMESPACE.is_match(ns);
    if !ok {
        issues.push(
            at,
            rules::FARGATE_NAMESPACE,
            format!(
                "{ns:?} is not a namespace name: a DNS-1123 label (lowercase letters, digits, \
                 '-'), no wildcards"
            ),
        );
    }
    ok
}

fn check_labels(labels: &BTreeMap<String, String>, at: &str, issues: &mut Issues) {
    if labels.len() > MAX_FARGATE_LABELS {
        issues.push(
            at,
            rules::FARGATE_SELECTOR,
            format!(
                "{} labels; a Fargate selector takes at most {MAX_FARGATE_LABELS}",
                labels.len()
            ),
        );
    }
    for (k, v) in labels {
        let path = key(at, k);
        if !is_qualified_name(k) {
            issues.push(
                path.as_str(),
                rules::LABEL_SYNTAX,
                format!("label key {k:?} is not a Kubernetes qualified name ([prefix/]name)"),
            );
        }
        if !is_label_value(v) {
            issues.push(
                path,
                rules::LABEL_SYNTAX,
                format!("label value {v:?} is not a Kubernetes label value (at most 63 letters, digits, `-_.`)"),
            );
        }
    }
}
