//! Platform-level rules: identity of the request, versions, logging, add-ons, identity, access,
//! observability, tags, compliance; delegates network, node groups and tenants.

use std::sync::LazyLock;

use regex::Regex;

use super::arn::{check_arn, check_hosted_zone, is_region, ArnKind};
use super::cidr::{check_endpoint_access, check_network, check_retention};
use super::names::{check_label, check_unique, Reserved};
use super::text::{check_tag_key, check_tag_value, check_unsafe};
use super::{field, index, key, nodegroups, rules, tenant, Issues};
use crate::naming::{MAX_ENVIRONMENT_LEN, MAX_PLATFORM_ID_LEN};
use crate::spec::{
    Cni, ComplianceProfile, ControlPlaneLogType, OidcIdentityProvider, PlatformSpec,
    ADDON_VERSION_LATEST, BINDABLE_CLUSTER_ROLES, KNOWN_ADDONS, RETIRED_KUBERNETES_VERSIONS,
    SUPPORTED_KUBERNETES_VERSIONS,
};

/// Most cost tags a request may carry (AWS allows 50 per resource; Tenantry adds up to 5 plus
/// `Name` and Kubernetes discovery tags).
pub(crate) const MAX_COST_TAGS: usize = 40;

static ADDON_VERSION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^v[0-9]+\.[0-9]+\.[0-9]+(-eksbuild\.[0-9]+)?$").expect("regex"));
static CLAIM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_:.-]{1,64}$").expect("regex"));
static CLIENT_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9._:/-]{1,256}$").expect("regex"));
static ISSUER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%!&()+,;=:@-]*)*$")
        .expect("regex")
});

/// Every rule of a platform request, field by field in the order of the spec.
pub(crate) fn check(spec: &PlatformSpec, issues: &mut Issues) {
    check_where(spec, issues);
    check_tags(spec, issues);
    check_kubernetes_version(issues, &spec.kubernetes_version);
    check_network(issues, "$.network", &spec.network);
    check_endpoint_access(
        issues,
        "$.endpointAccess",
        &spec.endpoint_access,
        spec.compliance_profile,
    );
    if let Some(arn) = &spec.encryption.kms_key_arn {
        let region = spec.region.as_str();
        check_arn(
            issues,
            "$.encryption.kmsKeyArn",
            arn,
            ArnKind::KmsKey,
            region,
        );
    }
    check_logging(spec, issues);
    if let Some(groups) = &spec.node_groups {
        nodegroups::check(issues, "$.nodeGroups", groups);
    }
    check_addons(spec, issues);
    check_custom_networking_nodes(spec, issues);
    check_identity(spec, issues);
    check_access(spec, issues);
    if let Some(arn) = &spec.observability.alarms.sns_topic_arn {
        let (at, region) = ("$.observability.alarms.snsTopicArn", spec.region.as_str());
        check_arn(issues, at, arn, ArnKind::SnsTopic, region);
    }
    check_compliance(spec, issues);
    check_tenants(spec, issues);
    check_repositories(spec, issues);
    super::fargate::check_platform(spec, issues);
}

/// Which platform, where: id, environment, region, and the target account's role (refused
/// until cross-account provisioning is built).
fn check_where(spec: &PlatformSpec, issues: &mut Issues) {
    let (id_len, env_len) = (MAX_PLATFORM_ID_LEN, MAX_ENVIRONMENT_LEN);
    check_label(
        issues,
        "$.id",
        "platform id",
        &spec.id,
        id_len,
        Reserved::None,
    );
    check_label(
        issues,
        "$.environment",
        "environment",
        &spec.environment,
        env_len,
        Reserved::None,
    );
    let region = spec.region.as_str();
    if !is_region(region) {
        issues.push(
            "$.region",
            rules::REGION,
            format!("{region:?} is not an AWS region name like us-east-1"),
        );
    }
    if let Some(arn) = &spec.target_role_arn {
        check_arn(issues, "$.targetRoleArn", arn, ArnKind::IamRole, region);
    }
}

/// Each tenant on its own and in the platform, then the tenants together (names, namespaces,
/// prefixes, approved secret prefixes and AWS access).
fn check_tenants(spec: &PlatformSpec, issues: &mut Issues) {
    let region = spec.region.as_str();
    let mut tenants = Vec::new();
    for (i, t) in spec.tenants.iter().enumerate() {
        let at = index("$.tenants", i);
        tenant::check_with_region(t, &at, region, issues);
        tenant::check_in_platform(t, &at, spec, issues);
        tenants.push((at, t));
    }
    let stem = crate::naming::stem(&spec.id, &spec.environment);
    tenant::check_all(issues, &tenants, &stem);
    tenant::check_approved_secret_prefixes(spec, issues);
    super::aws_access::check_approved(spec, issues);
}

/// The platform's own ECR repositories: names, then their full paths.
fn check_repositories(spec: &PlatformSpec, issues: &mut Issues) {
    let (repositories, at) = (&spec.repositories, "$.repositories");
    let limit = crate::spec::MAX_PLATFORM_REPOSITORIES;
    super::registry::check(repositories, at, limit, issues);
    let names = crate::naming::Names::new(spec);
    super::registry::check_paths(repositories, at, |n| names.repository(n), issues);
}

fn check_tags(spec: &PlatformSpec, issues: &mut Issues) {
    if spec.tags.len() > MAX_COST_TAGS {
        issues.push(
            "$.tags",
            rules::TAG_COUNT,
            format!("{} tags; at most {MAX_COST_TAGS} (AWS allows 50 per resource and Tenantry adds its own)", spec.tags.len()),
        );
    }
    for (k, v) in &spec.tags {
        let path = key("$.tags", k);
        check_tag_key(issues, &path, k);
        check_tag_value(issues, &path, v, false);
    }
}

/// Refuses versions EKS no longer supports (with that message) and unknown ones.
pub(crate) fn check_kubernetes_version(issues: &mut Issues, version: &str) {
    if SUPPORTED_KUBERNETES_VERSIONS.contains(&version) {
        return;
    }
    let supported = SUPPORTED_KUBERNETES_VERSIONS.join(", ");
    let retired = RETIRED_KUBERNETES_VERSIONS.contains(&version)
        || version
            .strip_prefix("1.")
            .and_then(|minor| minor.parse::<u32>().ok())
            .zip(
                SUPPORTED_KUBERNETES_VERSIONS
                    .first()
                    .and_then(|v| v.strip_prefix("1."))
                    .and_then(|m| m.parse::<u32>().ok()),
            )
            .is_some_and(|(minor, oldest)| minor < oldest);
    let message = if retired {
        format!("Kubernetes {version} is no longer supported by Amazon EKS; use one of {supported}")
    } else {
        format!("{version:?} is not a Kubernetes version Amazon EKS supports (`major.minor`, one of {supported})")
    };
    issues.push("$.kubernetesVersion", rules::KUBERNETES_VERSION, message);
}

fn check_logging(spec: &PlatformSpec, issues: &mut Issues) {
    let types = &spec.logging.types;
    for (i, t) in types.iter().enumerate() {
        if types[..i].contains(t) {
            issues.push(
                index("$.logging.types", i),
                rules::DUPLICATE_LOG_TYPE,
                format!("log type `{}` is listed twice", t.as_str()),
            );
        }
    }
    check_retention(
        issues,
        "$.logging.retentionDays",
        spec.logging.retention_days,
    );
}

/// A vpc-cni add-on's `env` setting `name`, if the request sets it.
fn cni_env<'a>(addon: &'a crate::spec::AddonSpec, name: &str) -> Option<&'a serde_json::Value> {
    addon
        .configuration_values
        .as_ref()
        .and_then(|c| c.get("env"))
        .and_then(|env| env.get(name))
}

fn is_true(v: &serde_json::Value) -> bool {
    v == &serde_json::json!("true") || v == &serde_json::json!(true)
}

/// Custom networking follows from `network.podCidr` (see `PlatformSpec::custom_networking`); the
/// add-on's own settings may repeat it, but not contradict it, and the label that names each
/// node's `ENIConfig` is Tenantry's, since it names the `ENIConfig`s.
fn check_custom_networking(
    spec: &PlatformSpec,
    at: &str,
    addon: &crate::spec::AddonSpec,
    issues: &mut Issues,
) {
    use crate::kubernetes::{CUSTOM_NETWORK_ENV, ENI_CONFIG_LABEL, LABEL_DEF_ENV};
    let env_path = |name: &str| field(&field(&field(at, "configurationValues"), "env"), name);
    match cni_env(addon, CUSTOM_NETWORK_ENV) {
        Some(v) if is_true(v) && spec.network.pod_cidr.is_none() => issues.push(
            env_path(CUSTOM_NETWORK_ENV),
            rules::POD_SUBNETS_MISSING,
            "custom networking gives pods addresses from pod subnets, and there are none: set \
             `network.podCidr` (inside 100.64.0.0/10, e.g. 100.64.0.0/16), which also turns \
             custom networking on, and remove this setting",
        ),
        Some(v) if !is_true(v) && spec.network.pod_cidr.is_some() => issues.push(
            "$.network.podCidr",
            rules::POD_SUBNETS_UNUSED,
            format!(
                "the pod subnets of `network.podCidr` are used only by custom networking, which \
                 {at}.configurationValues.env.{CUSTOM_NETWORK_ENV} turns off: remove one of the two"
            ),
        ),
        _ => {}
    }
    if let Some(v) = cni_env(addon, LABEL_DEF_ENV) {
        if v != &serde_json::json!(ENI_CONFIG_LABEL) {
            issues.push(
                env_path(LABEL_DEF_ENV),
                rules::CNI_MANAGED_SETTING,
                format!(
                    "Tenantry names each ENIConfig for its availability zone, so this must be \
                     {ENI_CONFIG_LABEL:?} or absent (Tenantry sets it)"
                ),
            );
        }
    }
}

/// Custom networking leaves a node's primary interface without pods, so the node's max pods
/// must be lowered to what its other interfaces hold; Calico's pods are not bound by the
/// interfaces, so it is raised to 110. Tenantry sets max pods in Bottlerocket's settings only.
fn check_custom_networking_nodes(spec: &PlatformSpec, issues: &mut Issues) {
    let why = if spec.custom_networking() {
        "custom networking (`network.podCidr`) needs max pods lowered to what the node's \
         secondary interfaces hold"
    } else if spec.cni == Cni::Calico {
        "`cni: calico` needs max pods raised to 110 (Calico's pods are not bound by the node's \
         network interfaces)"
    } else {
        return;
    };
    let Some(groups) = &spec.node_groups else {
        return;
    };
    for (i, g) in groups.iter().enumerate() {
        if !g.ami_type.is_bottlerocket() {
            issues.push(
                field(&index("$.nodeGroups", i), "amiType"),
                rules::NOT_BUILDABLE,
                format!(
                    "{why}, and Tenantry sets that only on Bottlerocket nodes: use \
                     BOTTLEROCKET_x86_64 or BOTTLEROCKET_ARM_64, not {}",
                    g.ami_type.as_str()
                ),
            );
        }
    }
}

fn check_addons(spec: &PlatformSpec, issues: &mut Issues) {
    if spec.cni == Cni::Calico && spec.network.pod_cidr.is_none() {
        issues.push(
            "$.network.podCidr",
            rules::CALICO_POD_CIDR,
            "`cni: calico` gives pods addresses from Calico's IP pool on an overlay, and the pool \
             is `network.podCidr`: set it (inside 100.64.0.0/10 and apart from the VPC, e.g. \
             100.64.0.0/16); with Calico it is not added to the VPC",
        );
    }
    if let Some(list) = &spec.addons {
        let mut names = Vec::new();
        for (i, a) in list.iter().enumerate() {
            let at = index("$.addons", i);
            check_addon(spec, issues, &at, a);
            names.push((field(&at, "name"), a.name.as_str()));
        }
        check_unique(issues, "add-on", &names);
    }
    check_required_addons(spec, issues);
}

/// One add-on: a known name, `latest` or an eksbuild version, and for `vpc-cni` the CNI choice,
/// custom networking and network policy enforcement.
fn check_addon(spec: &PlatformSpec, issues: &mut Issues, at: &str, a: &crate::spec::AddonSpec) {
    let name_path = field(at, "name");
    if !check_unsafe(issues, &name_path, "add-on name", &a.name, false)
        && !KNOWN_ADDONS.contains(&a.name.as_str())
    {
        issues.push(
            name_path.as_str(),
            rules::ADDON_UNKNOWN,
            format!(
                "{:?} is not an add-on Tenantry knows; known: {}",
                a.name,
                KNOWN_ADDONS.join(", ")
            ),
        );
    }
    if a.version != ADDON_VERSION_LATEST && !ADDON_VERSION.is_match(&a.version) {
        issues.push(
            field(at, "version"),
            rules::ADDON_VERSION,
            format!(
                "add-on version {:?} must be `latest` or like v1.19.0-eksbuild.1",
                a.version
            ),
        );
    }
    if a.name != "vpc-cni" {
        return;
    }
    if spec.cni == Cni::Calico {
        issues.push(
            at,
            rules::CNI_CONFLICT,
            "cni is `calico`, so the `vpc-cni` add-on must be absent",
        );
    }
    check_custom_networking(spec, at, a, issues);
    let disabled = a
        .configuration_values
        .as_ref()
        .and_then(|c| c.get("enableNetworkPolicy"))
        .is_some_and(|v| v != &serde_json::json!("true") && v != &serde_json::json!(true));
    if disabled {
        issues.push(
            field(&field(at, "configurationValues"), "enableNetworkPolicy"),
            rules::NETWORK_POLICY_DISABLED,
            "network policy enforcement must stay on: tenant isolation depends on it",
        );
    }
}

/// The add-ons the rest of the spec depends on (after defaults: `effective_addons`).
fn check_required_addons(spec: &PlatformSpec, issues: &mut Issues) {
    let addons = spec.effective_addons();
    let has = |name: &str| addons.iter().any(|a| a.name == name);
    let mut required: Vec<(&str, &str)> = vec![
        ("coredns", "cluster DNS"),
        ("kube-proxy", "Service networking"),
    ];
    if spec.cni == Cni::VpcCni {
        required.push(("vpc-cni", "cni `vpc-cni`"));
    }
    if spec.identity.pod_identity {
        required.push(("eks-pod-identity-agent", "identity.podIdentity"));
    }
    if spec.observability.container_insights {
        required.push((
            "amazon-cloudwatch-observability",
            "observability.containerInsights",
        ));
    }
    for (name, why) in required {
        if !has(name) {
            issues.push(
                "$.addons",
                rules::ADDON_REQUIRED,
                format!("add-on `{name}` is required by {why}"),
            );
        }
    }
}

fn check_identity(spec: &PlatformSpec, issues: &mut Issues) {
    let id = &spec.identity;
    if !id.irsa && !id.pod_identity {
        issues.push(
            "$.identity",
            rules::IDENTITY_MECHANISM,
            "turn on irsa or podIdentity (or both): service and tenant roles need one",
        );
    }
    let roles = "$.identity.serviceRoles";
    let dns = &id.service_roles.external_dns;
    let zones_path = format!("{roles}.externalDns.hostedZones");
    if dns.enabled && dns.hosted_zones.is_empty() {
        issues.push(
            zones_path.as_str(),
            rules::SERVICE_ROLE_CONFIG,
            "external-dns is enabled but no hosted zone is listed: its role would have nothing (or everything) to change",
        );
    }
    for (i, zone) in dns.hosted_zones.iter().enumerate() {
        check_hosted_zone(issues, &index(&zones_path, i), zone, &spec.region);
    }
    let secrets = &id.service_roles.external_secrets;
    let prefixes_path = format!("{roles}.externalSecrets.secretPrefixes");
    if secrets.enabled && secrets.secret_prefixes.is_empty() {
        issues.push(
            prefixes_path.as_str(),
            rules::SERVICE_ROLE_CONFIG,
            "external-secrets is enabled but no secret prefix is listed",
        );
    }
    for (i, prefix) in secrets.secret_prefixes.iter().enumerate() {
        tenant::check_secret_prefix(issues, &index(&prefixes_path, i), prefix);
    }
    let r = &id.service_roles;
    for (field, digest) in [
        ("clusterAutoscaler", &r.cluster_autoscaler.image_digest),
        ("albController", &r.alb_controller.image_digest),
        ("externalDns", &dns.image_digest),
        ("externalSecrets", &secrets.image_digest),
    ] {
        if let Some(d) = digest {
            if !is_image_digest(d) {
                issues.push(
                    format!("{roles}.{field}.imageDigest").as_str(),
                    rules::SERVICE_ROLE_CONFIG,
                    "an image digest is sha256: and 64 lowercase hexadecimal digits",
                );
            }
        }
    }
}

/// `sha256:` and 64 lowercase hex digits (an OCI image digest).
fn is_image_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn check_access(spec: &PlatformSpec, issues: &mut Issues) {
    for (i, arn) in spec.access.admin_principals.iter().enumerate() {
        check_arn(
            issues,
            &index("$.access.adminPrincipals", i),
            arn,
            ArnKind::IamPrincipal,
            &spec.region,
        );
    }
    if let Some(idp) = &spec.access.oidc_identity_provider {
        check_identity_provider(issues, idp);
    }
}

/// The OIDC identity provider at `$.access.oidcIdentityProvider`.
fn check_identity_provider(issues: &mut Issues, idp: &OidcIdentityProvider) {
    let base = "$.access.oidcIdentityProvider";
    check_label(
        issues,
        &field(base, "name"),
        "identity provider name",
        &idp.name,
        63,
        Reserved::Basic,
    );
    let issuer_path = field(base, "issuerUrl");
    if !check_unsafe(issues, &issuer_path, "issuer URL", &idp.issuer_url, true)
        && (!ISSUER.is_match(&idp.issuer_url) || idp.issuer_url.len() > 2048)
    {
        issues.push(
            issuer_path,
            rules::OIDC_ISSUER,
            format!(
                "issuer {:?} must be an https:// URL without query or fragment",
                idp.issuer_url
            ),
        );
    }
    let client_path = field(base, "clientId");
    if !check_unsafe(issues, &client_path, "client id", &idp.client_id, true)
        && !CLIENT_ID.is_match(&idp.client_id)
    {
        issues.push(
            client_path,
            rules::OIDC_CLIENT_ID,
            format!(
                "client id {:?} must be 1-256 letters, digits and `._:/-`",
                idp.client_id
            ),
        );
    }
    check_claims(issues, base, idp);
    check_group_mappings(issues, base, idp);
}

/// The claims Kubernetes reads from the provider's tokens: plain names, none in `system:`.
fn check_claims(issues: &mut Issues, base: &str, idp: &OidcIdentityProvider) {
    for (name, value) in [
        ("usernameClaim", &idp.username_claim),
        ("groupsClaim", &idp.groups_claim),
        ("groupsPrefix", &idp.groups_prefix),
    ] {
        let path = field(base, name);
        if check_unsafe(issues, &path, name, value, false) {
            continue;
        }
        if !CLAIM.is_match(value) {
            issues.push(
                path.as_str(),
                rules::OIDC_CLAIM,
                format!("{name} {value:?} must be 1-64 letters, digits and `_:.-`"),
            );
        }
        if value.starts_with("system:") {
            issues.push(
                path,
                rules::RESERVED_NAME,
                format!("{name} {value:?} may not start with `system:` (reserved by Kubernetes)"),
            );
        }
    }
}

/// Each provider group's mapping: a Kubernetes group of its own, bound to a ClusterRole Tenantry
/// lets it bind.
fn check_group_mappings(issues: &mut Issues, base: &str, idp: &OidcIdentityProvider) {
    let mut groups = Vec::new();
    for (i, m) in idp.group_mappings.iter().enumerate() {
        let at = index(&field(base, "groupMappings"), i);
        let idp_path = field(&at, "idpGroup");
        if !check_unsafe(
            issues,
            &idp_path,
            "identity-provider group",
            &m.idp_group,
            true,
        ) && (m.idp_group.trim().is_empty() || m.idp_group.len() > 256)
        {
            issues.push(
                idp_path,
                rules::NAME_SYNTAX,
                "idpGroup must be 1-256 characters",
            );
        }
        let group_path = field(&at, "kubernetesGroup");
        if check_label(
            issues,
            &group_path,
            "Kubernetes group",
            &m.kubernetes_group,
            63,
            Reserved::Basic,
        ) && m.kubernetes_group.starts_with("system")
        {
            issues.push(
                group_path.as_str(),
                rules::RESERVED_NAME,
                format!(
                    "Kubernetes group {:?} is reserved (`system*`)",
                    m.kubernetes_group
                ),
            );
        }
        groups.push((group_path, m.kubernetes_group.as_str()));
        if !BINDABLE_CLUSTER_ROLES.contains(&m.cluster_role.as_str()) {
            issues.push(
                field(&at, "clusterRole"),
                rules::CLUSTER_ROLE,
                format!(
                    "clusterRole {:?} must be one of {}",
                    m.cluster_role,
                    BINDABLE_CLUSTER_ROLES.join(", ")
                ),
            );
        }
    }
    check_unique(issues, "Kubernetes group", &groups);
}

fn check_compliance(spec: &PlatformSpec, issues: &mut Issues) {
    if spec.compliance_profile != ComplianceProfile::PciDssV4 {
        return;
    }
    if spec.logging.retention_days < 365 {
        issues.push(
            "$.logging.retentionDays",
            rules::COMPLIANCE_RETENTION,
            format!("pci-dss-v4 needs 12 months of audit log history (10.5.1): retentionDays {} is below 365", spec.logging.retention_days),
        );
    }
    let missing: Vec<&str> = ControlPlaneLogType::ALL
        .iter()
        .filter(|t| !spec.logging.types.contains(t))
        .map(|t| t.as_str())
        .collect();
    if !missing.is_empty() {
        issues.push(
            "$.logging.types",
            rules::COMPLIANCE_LOG_TYPES,
            format!(
                "pci-dss-v4 needs every control-plane log type; missing {}",
                missing.join(", ")
            ),
        );
    }
    if !spec.network.flow_logs.enabled {
        issues.push(
            "$.network.flowLogs.enabled",
            rules::COMPLIANCE_FLOW_LOGS,
            "pci-dss-v4 needs VPC flow logs",
        );
    }
    if !spec.endpoint_access.private {
        issues.push(
            "$.endpointAccess.private",
            rules::COMPLIANCE_PRIVATE_ENDPOINT,
            "pci-dss-v4 needs the private endpoint on",
        );
    }
}
