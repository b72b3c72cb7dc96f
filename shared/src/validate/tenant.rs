//! Tenant rules.

use super::arn::{check_arn, ArnKind};
use super::names::{check_label, check_unique, Reserved};
use super::text::{check_tag_value, check_unsafe, quantity};
use super::{field, index, rules, Issues};
use crate::naming::MAX_TENANT_NAME_LEN;
use crate::spec::{PlatformSpec, TenantSpec};

/// Every rule of one tenant. `at` is the path of the tenant object.
pub(crate) fn check(t: &TenantSpec, at: &str, issues: &mut Issues) {
    check_with_region(t, at, "", issues);
}

/// As [`check`], with the platform's region for ARN partition checks (empty: unknown).
pub(crate) fn check_with_region(t: &TenantSpec, at: &str, region: &str, issues: &mut Issues) {
    super::registry::check(
        &t.repositories,
        &field(at, "repositories"),
        crate::spec::MAX_TENANT_REPOSITORIES,
        issues,
    );
    check_label(
        issues,
        &field(at, "name"),
        "tenant name",
        &t.name,
        MAX_TENANT_NAME_LEN,
        Reserved::Namespace,
    );
    let owners_path = field(at, "owners");
    for (i, owner) in t.owners.iter().enumerate() {
        check_arn(
            issues,
            &index(&owners_path, i),
            owner,
            ArnKind::IamPrincipal,
            region,
        );
    }
    check_quantities(t, at, issues);
    if let Some(prefix) = &t.s3_prefix {
        let path = field(at, "s3Prefix");
        if !check_unsafe(issues, &path, "S3 prefix", prefix, true) {
            let ok = !prefix.is_empty()
                && prefix.len() <= 512
                && prefix.ends_with('/')
                && !prefix.starts_with('/')
                && !prefix.contains("//")
                && !prefix.split('/').any(|seg| seg == "." || seg == "..")
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/_.-".contains(c));
            if !ok {
                issues.push(
                    path,
                    rules::S3_PREFIX,
                    format!("S3 prefix {prefix:?} must be relative, end with `/`, use only letters, digits and `/_.-`, and contain no `.`/`..` segments or `//`"),
                );
            }
        }
    }
    if let Some(prefix) = &t.secrets_prefix {
        check_secret_prefix(issues, &field(at, "secretsPrefix"), prefix);
    }
    check_tag_value(issues, &field(at, "costCentre"), &t.cost_centre, true);
    check_allow_from(t, at, issues);
    super::fargate::check_tenant(t, at, issues);
}

/// Most ports one `allowFrom` rule may open, and most rules a tenant may have.
const MAX_ALLOW_FROM: usize = 8;

/// Each `allowFrom` rule on its own: a tenant name other than this one's, named once, and 1-8
/// distinct ports in 1-65535 (which tenants exist is [`check_all`]'s).
fn check_allow_from(t: &TenantSpec, at: &str, issues: &mut Issues) {
    let rules_path = field(at, "allowFrom");
    if t.allow_from.len() > MAX_ALLOW_FROM {
        issues.push(
            rules_path.as_str(),
            rules::ALLOW_FROM,
            format!(
                "{} rules; at most {MAX_ALLOW_FROM}, one per tenant",
                t.allow_from.len()
            ),
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, rule) in t.allow_from.iter().enumerate() {
        let path = index(&rules_path, i);
        let peer = field(&path, "tenant");
        check_label(
            issues,
            &peer,
            "tenant name",
            &rule.tenant,
            MAX_TENANT_NAME_LEN,
            Reserved::Namespace,
        );
        if rule.tenant == t.name {
            issues.push(
                peer,
                rules::ALLOW_FROM,
                format!(
                    "tenant {:?} cannot allow itself: its pods already reach each other",
                    t.name
                ),
            );
        } else if !seen.insert(rule.tenant.as_str()) {
            issues.push(
                peer,
                rules::ALLOW_FROM,
                format!(
                    "tenant {:?} is named by two rules; put its ports in one",
                    rule.tenant
                ),
            );
        }
        check_ports(issues, &field(&path, "ports"), &rule.ports);
    }
}

fn check_ports(issues: &mut Issues, path: &str, ports: &[u16]) {
    let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
    let problem = if ports.is_empty() {
        Some("no port: name 1 to 8".to_owned())
    } else if ports.len() > MAX_ALLOW_FROM {
        Some(format!("{} ports; at most {MAX_ALLOW_FROM}", ports.len()))
    } else if distinct.contains(&0) {
        Some("port 0 is not a port: use 1-65535".to_owned())
    } else if distinct.len() != ports.len() {
        Some(format!("ports {ports:?} repeat a port"))
    } else {
        None
    };
    if let Some(problem) = problem {
        issues.push(path, rules::PORTS, problem);
    }
}

/// Tenantry's own space in Secrets Manager: every platform's secrets and its tenants' default
/// prefixes live under it.
const TENANTRY_SECRETS: &str = "tenantry/";

/// The secrets of the platform's external-secrets controller (enabled or not: enabling it later
/// must not hand a tenant's secrets to it).
fn controller_secret_prefixes(platform: &PlatformSpec) -> &[String] {
    &platform
        .identity
        .service_roles
        .external_secrets
        .secret_prefixes
}

/// Whether two name prefixes nest (one could match the other's names).
fn nests(a: &str, b: &str) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Rules of a tenant that need its platform: its secrets prefix stays in the tenant's own space
/// (`tenantry/<stem>/<tenant>/`) or under a prefix the platform request approves, ends with `/`
/// (so that `team` cannot also match `team-admin/`), and nests with no secret of the platform's
/// controllers. A tenant may otherwise name any prefix, e.g. `rds`, whose secrets (RDS-managed
/// master passwords) its role would then read.
pub(crate) fn check_in_platform(
    t: &TenantSpec,
    at: &str,
    platform: &PlatformSpec,
    issues: &mut Issues,
) {
    super::aws_access::check_requested(t, at, platform, issues);
    let names = crate::naming::Names::new(platform);
    super::registry::check_paths(
        &t.repositories,
        &field(at, "repositories"),
        |n| names.tenant_repository(&t.name, n),
        issues,
    );
    super::fargate::check_tenant_in_platform(t, at, platform, issues);
    let Some(prefix) = &t.secrets_prefix else {
        return;
    };
    let path = field(at, "secretsPrefix");
    let stem = crate::naming::stem(&platform.id, &platform.environment);
    let own = format!("{TENANTRY_SECRETS}{stem}/{}/", t.name);
    if !prefix.ends_with('/') {
        issues.push(
            path.as_str(),
            rules::SECRET_PREFIX_SCOPE,
            format!("secrets prefix {prefix:?} must end with `/`: without it, it also matches the secrets of names that merely start the same way"),
        );
        return;
    }
    let approved = &platform.tenant_secrets_prefixes;
    if !prefix.starts_with(&own) && !approved.iter().any(|a| prefix.starts_with(a.as_str())) {
        let allowed = std::iter::once(own.as_str())
            .chain(approved.iter().map(String::as_str))
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        issues.push(
            path.as_str(),
            rules::SECRET_PREFIX_SCOPE,
            format!("secrets prefix {prefix:?} is outside the tenant's space: it must start with one of {allowed} (the platform request's `tenantSecretsPrefixes` approves more)"),
        );
    }
    if let Some(other) = controller_secret_prefixes(platform)
        .iter()
        .find(|c| nests(prefix, c))
    {
        issues.push(
            path,
            rules::SECRET_PREFIX_SCOPE,
            format!("secrets prefix {prefix:?} nests with {other:?}, which the platform's external-secrets controller reads (identity.serviceRoles.externalSecrets.secretPrefixes)"),
        );
    }
}

/// The platform's `tenantSecretsPrefixes`: well-formed, ending with `/`, outside Tenantry's own
/// `tenantry/` space (other platforms' tenants and platform secrets live there), and nesting with
/// no secret of the platform's controllers.
pub(crate) fn check_approved_secret_prefixes(platform: &PlatformSpec, issues: &mut Issues) {
    for (i, prefix) in platform.tenant_secrets_prefixes.iter().enumerate() {
        let path = index("$.tenantSecretsPrefixes", i);
        let before = issues.0.len();
        check_secret_prefix(issues, &path, prefix);
        if issues.0.len() > before {
            continue;
        }
        let problem = if !prefix.ends_with('/') {
            Some("must end with `/`".to_owned())
        } else if nests(prefix, TENANTRY_SECRETS) {
            Some(format!("nests with {TENANTRY_SECRETS:?}, where every platform keeps its own secrets and its tenants' default prefixes"))
        } else {
            controller_secret_prefixes(platform)
                .iter()
                .find(|c| nests(prefix, c))
                .map(|c| {
                    format!(
                        "nests with {c:?}, which the platform's external-secrets controller reads"
                    )
                })
        };
        if let Some(problem) = problem {
            issues.push(
                path,
                rules::SECRET_PREFIX_SCOPE,
                format!("approved tenant secrets prefix {prefix:?} {problem}"),
            );
        }
    }
}

/// Secrets Manager name prefix: safe characters, the Secrets Manager charset, no wildcard.
pub(crate) fn check_secret_prefix(issues: &mut Issues, path: &str, prefix: &str) {
    if check_unsafe(issues, path, "secret prefix", prefix, true) {
        return;
    }
    let ok = !prefix.is_empty()
        && prefix.len() <= 400
        && !prefix.starts_with('/')
        && !prefix.split('/').any(|seg| seg == "..")
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
    if !ok {
        issues.push(
            path,
            rules::SECRET_PREFIX,
            format!("secret prefix {prefix:?} must be 1-400 characters of letters, digits and `/_+=.@-`, not start with `/` and contain no `..` segment"),
        );
    }
}

/// Quotas and limit-range defaults: each a Kubernetes quantity, and none above the one it must
/// fit under ([`QUANTITY_ORDER`]).
fn check_quantities(t: &TenantSpec, at: &str, issues: &mut Issues) {
    let values = parse_quantities(t, at, issues);
    for (small, big) in QUANTITY_ORDER {
        if let (Some(s), Some(b)) = (values.get(small.field), values.get(big.field)) {
            if s > b {
                issues.push(
                    field(&field(at, small.section), small.field),
                    rules::QUANTITY_ORDER,
                    format!("{} exceeds {}", small.name, big.name),
                );
            }
        }
    }
}

/// One quantity of a tenant's spec: where it is (`section.field`) and what an error calls it.
struct Quantity {
    section: &'static str,
    field: &'static str,
    name: &'static str,
}

const fn quantity_at(section: &'static str, field: &'static str, name: &'static str) -> Quantity {
    Quantity {
        section,
        field,
        name,
    }
}

/// Pairs (smaller, larger) where the first may not exceed the second: a default request is at
/// most its default limit, a default limit at most the namespace's limit quota, and a request
/// quota at most the matching limit quota.
const QUANTITY_ORDER: [(Quantity, Quantity); 6] = {
    const D_REQ_CPU: Quantity =
        quantity_at("limits", "defaultRequestCpu", "the default CPU request");
    const D_REQ_MEM: Quantity = quantity_at(
        "limits",
        "defaultRequestMemory",
        "the default memory request",
    );
    const D_CPU: Quantity = quantity_at("limits", "defaultCpu", "the default CPU limit");
    const D_MEM: Quantity = quantity_at("limits", "defaultMemory", "the default memory limit");
    const REQ_CPU: Quantity = quantity_at("quotas", "requestsCpu", "the requests.cpu quota");
    const REQ_MEM: Quantity = quantity_at("quotas", "requestsMemory", "the requests.memory quota");
    const LIM_CPU: Quantity = quantity_at("quotas", "limitsCpu", "the limits.cpu quota");
    const LIM_MEM: Quantity = quantity_at("quotas", "limitsMemory", "the limits.memory quota");
    [
        (D_REQ_CPU, D_CPU),
        (D_REQ_MEM, D_MEM),
        (D_CPU, LIM_CPU),
        (D_MEM, LIM_MEM),
        (REQ_CPU, LIM_CPU),
        (REQ_MEM, LIM_MEM),
    ]
};

/// The tenant's quantities that parse, by field name; each that does not is an issue.
fn parse_quantities<'t>(
    t: &'t TenantSpec,
    at: &str,
    issues: &mut Issues,
) -> std::collections::BTreeMap<&'static str, f64> {
    let (q, l) = (&t.quotas, &t.limits);
    let all: [(&str, &str, &'t str); 9] = [
        ("quotas", "requestsCpu", &q.requests_cpu),
        ("quotas", "requestsMemory", &q.requests_memory),
        ("quotas", "limitsCpu", &q.limits_cpu),
        ("quotas", "limitsMemory", &q.limits_memory),
        ("quotas", "requestsStorage", &q.requests_storage),
        ("limits", "defaultRequestCpu", &l.default_request_cpu),
        ("limits", "defaultRequestMemory", &l.default_request_memory),
        ("limits", "defaultCpu", &l.default_cpu),
        ("limits", "defaultMemory", &l.default_memory),
    ];
    let mut values = std::collections::BTreeMap::new();
    for (section, name, value) in all {
        match quantity(value) {
            Some(v) => {
                values.insert(name, v);
            }
            None => issues.push(
                field(&field(at, section), name),
                rules::QUANTITY,
                format!("{value:?} is not a Kubernetes quantity like 4, 500m or 8Gi"),
            ),
        }
    }
    values
}

/// Rules across tenants: unique names (also after normalisation), S3 and secret prefixes that
/// do not nest. `tenants` are (path of the tenant, tenant); `stem` resolves default prefixes.
pub(crate) fn check_all(issues: &mut Issues, tenants: &[(String, &TenantSpec)], stem: &str) {
    let names: Vec<(String, &str)> = tenants
        .iter()
        .map(|(path, t)| (field(path, "name"), t.name.as_str()))
        .collect();
    check_unique(issues, "tenant name", &names);
    let s3: Vec<(String, String)> = tenants
        .iter()
        .map(|(path, t)| (field(path, "s3Prefix"), t.effective_s3_prefix()))
        .collect();
    check_nesting(issues, "S3 prefix", &s3);
    let secrets: Vec<(String, String)> = tenants
        .iter()
        .map(|(path, t)| {
            (
                field(path, "secretsPrefix"),
                t.effective_secrets_prefix(stem),
            )
        })
        .collect();
    check_nesting(issues, "secret prefix", &secrets);
    check_peers(issues, tenants);
}

/// Every `allowFrom` rule names another tenant of the platform.
fn check_peers(issues: &mut Issues, tenants: &[(String, &TenantSpec)]) {
    let names: std::collections::BTreeSet<&str> =
        tenants.iter().map(|(_, t)| t.name.as_str()).collect();
    for (path, t) in tenants {
        for (i, rule) in t.allow_from.iter().enumerate() {
            if rule.tenant != t.name && !names.contains(rule.tenant.as_str()) {
                let known: Vec<&&str> = names.iter().filter(|n| **n != t.name).collect();
                issues.push(
                    field(&index(&field(path, "allowFrom"), i), "tenant"),
                    rules::ALLOW_FROM,
                    format!(
                        "tenant {:?} is not a tenant of this platform (its other tenants: {known:?})",
                        rule.tenant
                    ),
                );
            }
        }
    }
}

/// A new tenant against the platform's existing ones (`existing` paths are descriptive).
pub(crate) fn check_against(
    t: &TenantSpec,
    at: &str,
    existing: &[(String, &TenantSpec)],
    stem: &str,
    issues: &mut Issues,
) {
    let mut all: Vec<(String, &TenantSpec)> = existing.to_vec();
    all.push((at.to_string(), t));
    let mut found = Issues::default();
    check_all(&mut found, &all, stem);
    // Only the new tenant's problems matter here.
    for issue in found.0 {
        if issue.path.starts_with(at) && !issue.path.starts_with("platform") {
            issues.0.push(issue);
        }
    }
}

fn check_nesting(issues: &mut Issues, what: &str, prefixes: &[(String, String)]) {
    for (j, (path, prefix)) in prefixes.iter().enumerate() {
        if let Some((other_path, other)) = prefixes[..j].iter().find(|(_, o)| {
            !o.is_empty()
                && !prefix.is_empty()
                && (o.starts_with(prefix.as_str()) || prefix.starts_with(o.as_str()))
        }) {
            issues.push(
                path.as_str(),
                rules::PREFIX_OVERLAP,
                format!("{what} {prefix:?} nests with {other:?} ({other_path}): one tenant could reach the other's data"),
            );
        }
    }
}
