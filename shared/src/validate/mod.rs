//! Validation of platform and tenant requests.
//!
//! Parsing ([`parse_platform`], [`parse_tenant`]) first deserializes the JSON strictly (unknown
//! fields, wrong types and unknown enum values are refused with the JSON path of the offending
//! value; malformed JSON with its line and column), then runs every semantic rule and reports
//! **all** problems at once. Each [`Issue`] names the JSON path (`$.nodeGroups[1].taints[0].effect`)
//! and a stable rule id (see [`rules`]).
//!
//! Note: serde stops at the first type-level error, so a request with a typo *and* a wrong type
//! reports only the first of those; the semantic rules always all run.

mod arn;
mod aws_access;
mod cidr;
mod fargate;
mod names;
mod nodegroups;
mod parse;
mod platform;
mod registry;
mod tenant;
mod text;

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::spec::{PlatformSpec, TenantSpec};

pub use names::{normalise_name, RESERVED_NAMESPACES};

/// Stable ids of the validation rules (the `rule` of an [`Issue`]).
pub mod rules {
    /// Malformed JSON (the message carries line and column).
    pub const JSON_SYNTAX: &str = "json-syntax";
    /// A field the request model does not have.
    pub const UNKNOWN_FIELD: &str = "unknown-field";
    /// A required field is missing.
    pub const MISSING_FIELD: &str = "missing-field";
    /// The same field twice in one JSON object (parsers disagree on which one wins).
    pub const DUPLICATE_FIELD: &str = "duplicate-field";
    /// A value of the wrong JSON type.
    pub const INVALID_TYPE: &str = "invalid-type";
    /// A value outside the allowed set (unknown enum value such as a taint effect, number out of range).
    pub const INVALID_VALUE: &str = "invalid-value";

    /// Not a DNS-1123 label starting with a letter (uppercase, spaces, leading digit...).
    pub const NAME_SYNTAX: &str = "name-syntax";
    /// Characters that could inject into IAM policy documents, ARNs or tag values
    /// (quotes, `\`, `*`, `?`, `$`, `{`, `}`, `/`, control characters, non-ASCII).
    pub const UNSAFE_CHARACTERS: &str = "unsafe-characters";
    /// A reserved name (`default`, `kube-*`, platform component namespaces, `system:`...).
    pub const RESERVED_NAME: &str = "reserved-name";
    /// A name too long once prefixed into the AWS names derived from it.
    pub const NAME_TOO_LONG: &str = "name-too-long";
    /// The same name twice in one list.
    pub const DUPLICATE_NAME: &str = "duplicate-name";
    /// Two different names that become the same after normalisation (case, `_`, spaces).
    pub const NAME_COLLISION: &str = "name-collision";

    /// Not an AWS region name.
    pub const REGION: &str = "region";
    /// A malformed ARN (or not the kind of ARN the field takes).
    pub const ARN: &str = "arn";
    /// An ARN in another partition than the platform's region.
    pub const ARN_PARTITION: &str = "arn-partition";
    /// An ARN of a regional resource in another region than the platform's.
    pub const ARN_REGION: &str = "arn-region";
    /// A Kubernetes version Amazon EKS does not (or no longer) support.
    pub const KUBERNETES_VERSION: &str = "kubernetes-version";
    /// A retention CloudWatch Logs does not accept.
    pub const RETENTION_DAYS: &str = "retention-days";
    /// The same control-plane log type twice.
    pub const DUPLICATE_LOG_TYPE: &str = "duplicate-log-type";

    /// A malformed CIDR (not IPv4, host bits set).
    pub const CIDR_SYNTAX: &str = "cidr-syntax";
    /// VPC CIDR prefix outside /16../24.
    pub const VPC_CIDR_SIZE: &str = "vpc-cidr-size";
    /// VPC CIDR outside the private ranges (RFC 1918, 100.64.0.0/10).
    pub const VPC_CIDR_RANGE: &str = "vpc-cidr-range";
    /// Two CIDRs that overlap.
    pub const CIDR_OVERLAP: &str = "cidr-overlap";
    /// A subnet outside the VPC CIDR.
    pub const SUBNET_OUTSIDE_VPC: &str = "subnet-outside-vpc";
    /// An explicit subnet list whose length is not the AZ count.
    pub const SUBNET_COUNT: &str = "subnet-count";
    /// Subnets that cannot be carved from (or are too small for) the VPC.
    pub const SUBNET_FIT: &str = "subnet-fit";
    /// A pod CIDR outside 100.64.0.0/10.
    pub const POD_CIDR_RANGE: &str = "pod-cidr-range";
    /// A pod CIDR prefix outside /16../24.
    pub const POD_CIDR_SIZE: &str = "pod-cidr-size";
    /// AZ count outside 2..=6.
    pub const AZ_COUNT: &str = "az-count";
    /// The same VPC endpoint twice.
    pub const DUPLICATE_ENDPOINT: &str = "duplicate-endpoint";
    /// `natMode: none` without the endpoints nodes need.
    pub const NAT_ENDPOINTS: &str = "nat-endpoints";
    /// A public-access CIDR in a private range.
    pub const PUBLIC_ACCESS_PRIVATE_RANGE: &str = "public-access-private-range";
    /// Public endpoint open to the whole internet under a compliance profile.
    pub const PUBLIC_ACCESS_OPEN: &str = "public-access-open";
    /// More public-access CIDRs than EKS accepts (40).
    pub const PUBLIC_ACCESS_CIDR_COUNT: &str = "public-access-cidr-count";
    /// Both the private and the public endpoint off.
    pub const ENDPOINT_ACCESS_NONE: &str = "endpoint-access-none";

    /// Compliance profile: log retention too short.
    pub const COMPLIANCE_RETENTION: &str = "compliance-retention";
    /// Compliance profile: not all control-plane log types enabled.
    pub const COMPLIANCE_LOG_TYPES: &str = "compliance-log-types";
    /// Compliance profile: flow logs off.
    pub const COMPLIANCE_FLOW_LOGS: &str = "compliance-flow-logs";
    /// Compliance profile: private endpoint off.
    pub const COMPLIANCE_PRIVATE_ENDPOINT: &str = "compliance-private-endpoint";

    /// `nodeGroups` given but empty.
    pub const NODEGROUPS_EMPTY: &str = "nodegroups-empty";
    /// More node groups than EKS allows per cluster (30).
    pub const NODEGROUPS_COUNT: &str = "nodegroups-count";
    /// Not `min <= desired <= max`, `max >= 1`, `max <= 450`.
    pub const SCALING_BOUNDS: &str = "scaling-bounds";
    /// A malformed EC2 instance type.
    pub const INSTANCE_TYPE: &str = "instance-type";
    /// No instance types.
    pub const INSTANCE_TYPES_EMPTY: &str = "instance-types-empty";
    /// Instance types of the wrong architecture for the AMI type.
    pub const INSTANCE_ARCHITECTURE: &str = "instance-architecture";
    /// Disk size outside 20..=16384 GiB.
    pub const DISK_SIZE: &str = "disk-size";
    /// A malformed node label key or value.
    pub const LABEL_SYNTAX: &str = "label-syntax";
    /// A label key under a prefix Kubernetes/EKS reserve.
    pub const RESERVED_LABEL: &str = "reserved-label";
    /// A malformed taint key or value.
    pub const TAINT_SYNTAX: &str = "taint-syntax";
    /// The same taint key and effect twice.
    pub const DUPLICATE_TAINT: &str = "duplicate-taint";

    /// An add-on Tenantry does not know.
    pub const ADDON_UNKNOWN: &str = "addon-unknown";
    /// An add-on version that is neither `latest` nor `vX.Y.Z[-eksbuild.N]`.
    pub const ADDON_VERSION: &str = "addon-version";
    /// An add-on another setting needs is missing.
    pub const ADDON_REQUIRED: &str = "addon-required";
    /// `vpc-cni` with `cni: calico`.
    pub const CNI_CONFLICT: &str = "cni-conflict";
    /// A setting Tenantry accepts in the schema but cannot build (custom networking or Calico
    /// on Amazon Linux nodes, whose max pods Tenantry does not set): refused rather than built
    /// half-way.
    pub const NOT_BUILDABLE: &str = "not-buildable";
    /// `targetRoleArn` names an account this Tenantry may not build in (intake, from its
    /// deployment's `TargetAccountIds`).
    pub const TARGET_ACCOUNT: &str = "target-account";
    /// `cni: calico` without `network.podCidr`: Calico's IP pool needs one.
    pub const CALICO_POD_CIDR: &str = "calico-pod-cidr";
    /// VPC CNI custom networking asked for in the add-on's settings, with no `network.podCidr`
    /// to carve the pod subnets from: pods would get no address.
    pub const POD_SUBNETS_MISSING: &str = "pod-subnets-missing";
    /// A `network.podCidr` whose subnets nothing would use (custom networking turned off).
    pub const POD_SUBNETS_UNUSED: &str = "pod-subnets-unused";
    /// A VPC CNI setting Tenantry derives itself (custom networking's label definition).
    pub const CNI_MANAGED_SETTING: &str = "cni-managed-setting";
    /// vpc-cni configured with network policy off.
    pub const NETWORK_POLICY_DISABLED: &str = "network-policy-disabled";

    /// Neither IRSA nor Pod Identity.
    pub const IDENTITY_MECHANISM: &str = "identity-mechanism";
    /// A service role enabled without what it needs (hosted zones, secret prefixes).
    pub const SERVICE_ROLE_CONFIG: &str = "service-role-config";
    /// A malformed Route 53 hosted zone id or ARN.
    pub const HOSTED_ZONE: &str = "hosted-zone";
    /// A malformed Secrets Manager prefix.
    pub const SECRET_PREFIX: &str = "secret-prefix";
    /// A tenant's secrets prefix outside its own space and the platform's approved prefixes, or
    /// nesting with the secrets of the platform's controllers.
    pub const SECRET_PREFIX_SCOPE: &str = "secret-prefix-scope";
    /// A new tenant taking the name of a tenant whose data was kept at offboarding.
    pub const RETAINED_DATA: &str = "retained-data";
    /// A malformed S3 prefix.
    pub const S3_PREFIX: &str = "s3-prefix";
    /// Two tenants whose S3 or secret prefixes nest (one could read the other's data).
    pub const PREFIX_OVERLAP: &str = "prefix-overlap";

    /// OIDC issuer not an `https://` URL.
    pub const OIDC_ISSUER: &str = "oidc-issuer";
    /// Malformed OIDC client id.
    pub const OIDC_CLIENT_ID: &str = "oidc-client-id";
    /// Malformed OIDC claim name or groups prefix.
    pub const OIDC_CLAIM: &str = "oidc-claim";
    /// A cluster role a group mapping may not bind.
    pub const CLUSTER_ROLE: &str = "cluster-role";

    /// A malformed tag key.
    pub const TAG_KEY: &str = "tag-key";
    /// A malformed tag value.
    pub const TAG_VALUE: &str = "tag-value";
    /// A tag key under a reserved prefix (`aws:`, `tenantry:`).
    pub const TAG_RESERVED: &str = "tag-reserved";
    /// More than 40 cost tags (AWS allows 50 per resource; Tenantry adds its own).
    pub const TAG_COUNT: &str = "tag-count";

    /// An `allowFrom` rule naming no other tenant of the platform, the tenant itself, or a
    /// tenant twice.
    pub const ALLOW_FROM: &str = "allow-from";
    /// Ports outside 1-65535, repeated, none, or more than 8.
    pub const PORTS: &str = "ports";
    /// An `awsAccess` action the platform does not approve, or a `tenantAwsAccess` action
    /// outside its service's catalogue, or either named twice.
    pub const AWS_ACCESS: &str = "aws-access";
    /// A `repositories` entry: a name ECR refuses or named twice, a `keepImages` out of range,
    /// or too many repositories.
    pub const REPOSITORY: &str = "repository";

    /// A `fargate` profile: a name EKS refuses or named twice, or too many profiles.
    pub const FARGATE_PROFILE: &str = "fargate-profile";
    /// A Fargate profile with no selector or more than 5, or a selector with more than 5 labels.
    pub const FARGATE_SELECTOR: &str = "fargate-selector";
    /// A Fargate selector's namespace: malformed or a wildcard, the cluster's own
    /// (`kube-system`...), a tenant's named by the platform, or, in a tenant's profile, any
    /// namespace but the tenant's own.
    pub const FARGATE_NAMESPACE: &str = "fargate-namespace";
    /// A tenant on Fargate where the platform's network policy cannot reach Fargate pods
    /// (`cni: calico`).
    pub const FARGATE_NETWORK_POLICY: &str = "fargate-network-policy";

    /// A tenant's Fargate profile that leaves some of its pods on nodes (every selector has
    /// labels): its pod security group and its NetworkPolicies could not isolate it together.
    pub const FARGATE_WHOLE_NAMESPACE: &str = "fargate-whole-namespace";

    /// A tenant on Fargate whose role trusts EKS Pod Identity only: Fargate pods have no Pod
    /// Identity agent (a DaemonSet), so they could not get the role's credentials.
    pub const FARGATE_POD_IDENTITY: &str = "fargate-pod-identity";

    /// A malformed Kubernetes quantity.
    pub const QUANTITY: &str = "quantity";
    /// A default request above its default limit, or a default limit above the quota.
    pub const QUANTITY_ORDER: &str = "quantity-order";

    /// Every rule id.
    pub const ALL: &[&str] = &[
        JSON_SYNTAX,
        UNKNOWN_FIELD,
        MISSING_FIELD,
        DUPLICATE_FIELD,
        INVALID_TYPE,
        INVALID_VALUE,
        NAME_SYNTAX,
        UNSAFE_CHARACTERS,
        RESERVED_NAME,
        NAME_TOO_LONG,
        DUPLICATE_NAME,
        NAME_COLLISION,
        REGION,
        ARN,
        ARN_PARTITION,
        ARN_REGION,
        KUBERNETES_VERSION,
        RETENTION_DAYS,
        DUPLICATE_LOG_TYPE,
        CIDR_SYNTAX,
        VPC_CIDR_SIZE,
        VPC_CIDR_RANGE,
        CIDR_OVERLAP,
        SUBNET_OUTSIDE_VPC,
        SUBNET_COUNT,
        SUBNET_FIT,
        POD_CIDR_RANGE,
        POD_CIDR_SIZE,
        AZ_COUNT,
        DUPLICATE_ENDPOINT,
        NAT_ENDPOINTS,
        PUBLIC_ACCESS_PRIVATE_RANGE,
        PUBLIC_ACCESS_OPEN,
        PUBLIC_ACCESS_CIDR_COUNT,
        ENDPOINT_ACCESS_NONE,
        COMPLIANCE_RETENTION,
        COMPLIANCE_LOG_TYPES,
        COMPLIANCE_FLOW_LOGS,
        COMPLIANCE_PRIVATE_ENDPOINT,
        NODEGROUPS_EMPTY,
        NODEGROUPS_COUNT,
        SCALING_BOUNDS,
        INSTANCE_TYPE,
        INSTANCE_TYPES_EMPTY,
        INSTANCE_ARCHITECTURE,
        DISK_SIZE,
        LABEL_SYNTAX,
        RESERVED_LABEL,
        TAINT_SYNTAX,
        DUPLICATE_TAINT,
        ADDON_UNKNOWN,
        ADDON_VERSION,
        ADDON_REQUIRED,
        CNI_CONFLICT,
        NOT_BUILDABLE,
        TARGET_ACCOUNT,
        CALICO_POD_CIDR,
        POD_SUBNETS_MISSING,
        POD_SUBNETS_UNUSED,
        CNI_MANAGED_SETTING,
        NETWORK_POLICY_DISABLED,
        IDENTITY_MECHANISM,
        SERVICE_ROLE_CONFIG,
        HOSTED_ZONE,
        SECRET_PREFIX,
        SECRET_PREFIX_SCOPE,
        RETAINED_DATA,
        S3_PREFIX,
        PREFIX_OVERLAP,
        OIDC_ISSUER,
        OIDC_CLIENT_ID,
        OIDC_CLAIM,
        CLUSTER_ROLE,
        TAG_KEY,
        TAG_VALUE,
        TAG_RESERVED,
        TAG_COUNT,
        ALLOW_FROM,
        PORTS,
        AWS_ACCESS,
        REPOSITORY,
        FARGATE_PROFILE,
        FARGATE_SELECTOR,
        FARGATE_NAMESPACE,
        FARGATE_NETWORK_POLICY,
        FARGATE_WHOLE_NAMESPACE,
        FARGATE_POD_IDENTITY,
        QUANTITY,
        QUANTITY_ORDER,
    ];
}

/// One problem in a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Issue {
    /// JSON path of the offending value, e.g. `$.nodeGroups[1].taints[0].effect` (`$` is the
    /// whole request).
    pub path: String,
    /// Stable rule id, e.g. `cidr-overlap` (see [`rules`]).
    pub rule: String,
    /// What is wrong, for people.
    pub message: String,
    /// Line in the JSON text (parse errors only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// Column in the JSON text (parse errors only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

impl Issue {
    /// A semantic issue (no line/column).
    pub fn new(path: impl Into<String>, rule: &str, message: impl Into<String>) -> Issue {
        Issue {
            path: path.into(),
            rule: rule.to_string(),
            message: message.into(),
            line: None,
            column: None,
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} [{}]", self.path, self.message, self.rule)?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, " (line {line}, column {column})")?;
        }
        Ok(())
    }
}

/// Every problem found in a request (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct ValidationErrors(pub Vec<Issue>);

impl ValidationErrors {
    /// The issues.
    pub fn issues(&self) -> &[Issue] {
        &self.0
    }

    /// Whether some issue has this path and rule.
    pub fn has(&self, path: &str, rule: &str) -> bool {
        self.0.iter().any(|i| i.path == path && i.rule == rule)
    }

    /// Whether some issue has this path.
    pub fn has_path(&self, path: &str) -> bool {
        self.0.iter().any(|i| i.path == path)
    }

    fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        writeln!(
            f,
            "request refused: {count} problem{}",
            if count == 1 { "" } else { "s" }
        )?;
        for (n, issue) in self.0.iter().enumerate() {
            if n + 1 < count {
                writeln!(f, "{issue}")?;
            } else {
                write!(f, "{issue}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// Collects issues while the rules run.
#[derive(Debug, Default)]
pub(crate) struct Issues(Vec<Issue>);

impl Issues {
    pub(crate) fn push(&mut self, path: impl Into<String>, rule: &str, message: impl Into<String>) {
        self.0.push(Issue::new(path, rule, message));
    }

    pub(crate) fn finish(self) -> ValidationErrors {
        ValidationErrors(self.0)
    }
}

/// `base.field`
pub(crate) fn field(base: &str, name: &str) -> String {
    format!("{base}.{name}")
}

/// `base[index]`
pub(crate) fn index(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

/// `base.key` for identifier-like keys, `base['key']` otherwise.
pub(crate) fn key(base: &str, key: &str) -> String {
    let plain = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        format!("{base}.{key}")
    } else {
        let escaped = key.replace('\\', "\\\\").replace('\'', "\\'");
        format!("{base}['{escaped}']")
    }
}

/// Parses and validates a platform request: all problems, each with its JSON path and rule.
pub fn parse_platform(json: &str) -> Result<PlatformSpec, ValidationErrors> {
    let spec: PlatformSpec = parse::from_json(json)?;
    validate_platform(&spec)?;
    Ok(spec)
}

/// Parses and validates a tenant request (the rules that do not depend on a platform; see
/// [`validate_new_tenant`] for the ones that do).
pub fn parse_tenant(json: &str) -> Result<TenantSpec, ValidationErrors> {
    let spec: TenantSpec = parse::from_json(json)?;
    validate_tenant(&spec)?;
    Ok(spec)
}

/// Runs every semantic rule on a platform request.
pub fn validate_platform(spec: &PlatformSpec) -> Result<(), ValidationErrors> {
    let mut issues = Issues::default();
    platform::check(spec, &mut issues);
    issues.finish().into_result()
}

/// Runs every semantic rule of a tenant on its own (paths start at `$`).
pub fn validate_tenant(spec: &TenantSpec) -> Result<(), ValidationErrors> {
    let mut issues = Issues::default();
    tenant::check(spec, "$", &mut issues);
    issues.finish().into_result()
}

/// The tenant name rules (syntax, unsafe characters, reserved names, length) applied to a bare
/// name, e.g. of a tenant to offboard, so that a hostile name never reaches a key or a policy.
/// Issues carry `path` (where the caller got the name from).
pub fn tenant_name_issues(name: &str, path: &str) -> Vec<Issue> {
    let probe = serde_json::json!({ "name": name, "costCentre": "x" }).to_string();
    match parse_tenant(&probe) {
        Ok(_) => Vec::new(),
        Err(errors) => errors
            .0
            .into_iter()
            .filter(|i| i.path == "$.name")
            .map(|mut i| {
                i.path = path.to_owned();
                i
            })
            .collect(),
    }
}

/// Validates a tenant about to be onboarded onto an existing platform: the tenant's own rules
/// plus name collisions and prefix overlaps with the platform's tenants.
pub fn validate_new_tenant(
    platform: &PlatformSpec,
    spec: &TenantSpec,
) -> Result<(), ValidationErrors> {
    let mut issues = Issues::default();
    tenant::check_with_region(spec, "$", &platform.region, &mut issues);
    tenant::check_in_platform(spec, "$", platform, &mut issues);
    let stem = crate::naming::stem(&platform.id, &platform.environment);
    let existing: Vec<(String, &TenantSpec)> = platform
        .tenants
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("platform tenants[{i}]"), t))
        .collect();
    tenant::check_against(spec, "$", &existing, &stem, &mut issues);
    issues.finish().into_result()
}

#[cfg(test)]
mod tests;
