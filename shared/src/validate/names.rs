//! Name rules: DNS-1123 labels, reserved names, lengths once prefixed, duplicates and
//! collisions after normalisation.

use std::collections::BTreeMap;

use super::text::check_unsafe;
use super::{rules, Issues};

/// Namespaces tenants may not take: Kubernetes', EKS add-ons' and Tenantry's components'.
pub const RESERVED_NAMESPACES: &[&str] = &[
    "default",
    "amazon-cloudwatch",
    "amazon-guardduty",
    "aws-observability",
    "calico-system",
    "calico-apiserver",
    "tigera-operator",
    "cluster-autoscaler",
    "aws-load-balancer-controller",
    "external-dns",
    "external-secrets",
    "cert-manager",
    // Common platform tooling: a tenant of that name would take over the namespace the tool
    // expects (and its owners would administer it).
    "monitoring",
    "observability",
    "logging",
    "prometheus",
    "grafana",
    "argocd",
    "argo-rollouts",
    "flux-system",
    "istio-system",
    "istio-ingress",
    "linkerd",
    "karpenter",
    "gatekeeper-system",
    "kyverno",
    "velero",
    "vault",
    "ingress-nginx",
    "keda",
    "falco",
    "kubecost",
    "opentelemetry-operator-system",
    "external-secrets-system",
    "crossplane-system",
    "metallb-system",
    "trivy-system",
    "local-path-storage",
];

/// Prefixes reserved for Kubernetes and Tenantry.
const RESERVED_PREFIXES: &[&str] = &["kube-", "tenantry", "eks-", "aws-", "amazon-"];

/// How strict the reserved-name check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reserved {
    /// Nothing reserved (platform id, environment).
    None,
    /// `default` and `kube-*` (node groups, identity provider names).
    Basic,
    /// Every namespace and prefix Kubernetes, EKS or Tenantry uses (tenants).
    Namespace,
}

/// Checks a DNS-1123 label that starts with a letter, with a maximum length.
/// Returns whether the name passed every check.
pub(crate) fn check_label(
    issues: &mut Issues,
    path: &str,
    what: &str,
    name: &str,
    max_len: usize,
    reserved: Reserved,
) -> bool {
    let before = issues.0.len();
    if !check_unsafe(issues, path, what, name, false) {
        if let Some(problem) = label_problem(name) {
            issues.push(
                path,
                rules::NAME_SYNTAX,
                format!("{what} {name:?} {problem}: use lowercase letters, digits and `-`, starting with a letter and ending with a letter or digit"),
            );
        }
    }
    let length = name.chars().count();
    if length > max_len {
        issues.push(
            path,
            rules::NAME_TOO_LONG,
            format!("{what} {name:?} has {length} characters; at most {max_len} fit once prefixed into the AWS names derived from it"),
        );
    }
    let lower = name.to_ascii_lowercase();
    let reserved_hit = match reserved {
        Reserved::None => false,
        Reserved::Basic => lower == "default" || lower.starts_with("kube-"),
        Reserved::Namespace => {
            RESERVED_NAMESPACES.contains(&lower.as_str())
                || RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p))
        }
    };
    if reserved_hit {
        issues.push(
            path,
            rules::RESERVED_NAME,
            format!("{what} {name:?} is reserved (`default`, `kube-*` and the namespaces and prefixes of platform components)"),
        );
    }
    issues.0.len() == before
}

fn label_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("is empty");
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Some("contains uppercase letters");
    }
    if name.chars().any(char::is_whitespace) {
        return Some("contains spaces");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Some("contains characters other than lowercase letters, digits and `-`");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Some("does not start with a letter");
    }
    if name.ends_with('-') {
        return Some("ends with `-`");
    }
    None
}

/// The form two names are compared in for collisions: ASCII-lowercased, with `_`, `.` and
/// whitespace turned into `-`, runs of `-` collapsed and trimmed.
pub fn normalise_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        let c = c.to_ascii_lowercase();
        let c = if c == '_' || c == '.' || c.is_whitespace() {
            '-'
        } else {
            c
        };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    out.trim_matches('-').to_string()
}

/// Reports duplicates (`duplicate-name`) and names equal after normalisation (`name-collision`)
/// on the later entry. `entries` are (path of the name, name).
pub(crate) fn check_unique(issues: &mut Issues, what: &str, entries: &[(String, &str)]) {
    let mut seen: BTreeMap<String, (&str, &str)> = BTreeMap::new();
    for (path, name) in entries {
        let normal = normalise_name(name);
        match seen.get(&normal) {
            Some((first_path, first)) if first == name => issues.push(
                path.as_str(),
                rules::DUPLICATE_NAME,
                format!("{what} {name:?} is already used at {first_path}"),
            ),
            Some((first_path, first)) => issues.push(
                path.as_str(),
                rules::NAME_COLLISION,
                format!("{what} {name:?} collides with {first:?} at {first_path} once normalised to {normal:?}"),
            ),
            None => {
                seen.insert(normal, (path.as_str(), name));
            }
        }
    }
}
