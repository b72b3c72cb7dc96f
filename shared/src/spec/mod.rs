//! The request model: what a platform team asks Tenantry for.
//!
//! Requests are JSON with camelCase field names. Every struct refuses unknown fields, every
//! optional field documents its default (the doc comments become the JSON Schema descriptions,
//! see [`platform_schema`] and the committed `schemas/*.schema.json`).
//!
//! The types only describe the shape of a request; the semantic rules (CIDRs that must fit,
//! names that must be safe, versions EKS still supports...) live in [`crate::validate`], which
//! reports every problem at once. Parse requests with [`crate::validate::parse_platform`] and
//! [`crate::validate::parse_tenant`] rather than with `serde_json` directly: they add the JSON
//! path and the rule to every error.

mod access;
mod addons;
pub mod aws_access;
mod fargate;
mod identity;
mod network;
mod nodegroups;
mod platform;
mod registry;
mod tenant;

pub use access::{AccessSpec, GroupMapping, OidcIdentityProvider, BINDABLE_CLUSTER_ROLES};
pub use addons::{default_addons, AddonSpec, ADDON_VERSION_LATEST, KNOWN_ADDONS};
pub use aws_access::AwsService;
pub use fargate::{
    FargateProfileSpec, FargateSelector, FargateSpec, TenantFargateSelector, TenantFargateSpec,
    MAX_FARGATE_LABELS, MAX_FARGATE_PROFILE_NAME_LEN, MAX_FARGATE_SELECTORS,
    MAX_PLATFORM_FARGATE_PROFILES,
};
pub use identity::{
    ExternalDnsRole, ExternalSecretsRole, IdentitySpec, ServiceRole, ServiceRoles, TrustMechanism,
};
pub use network::{
    FlowLogTraffic, FlowLogs, NatMode, NetworkSpec, SubnetLayout, VpcEndpointService,
    POD_CIDR_RANGE,
};
pub use nodegroups::{
    standard_node_groups, AmiType, CapacityType, NodeGroupSpec, NodeRole, Taint, TaintEffect,
};
pub use platform::{
    partition_of, AlarmsSpec, Cni, ComplianceProfile, ControlPlaneLogType, DriftRemediation,
    EncryptionSpec, EndpointAccess, LoggingSpec, ObservabilitySpec, PlatformSpec,
};
pub use registry::{
    RepositorySpec, DEFAULT_KEEP_IMAGES, MAX_KEEP_IMAGES, MAX_PLATFORM_REPOSITORIES,
    MAX_TENANT_REPOSITORIES,
};
pub use tenant::{AllowFrom, LimitDefaults, Protocol, TenantQuotas, TenantSpec};

/// Kubernetes versions Amazon EKS supports today (2026-11), oldest first. 1.32 and 1.33 are in
/// extended support. Requests for any other version are refused.
pub const SUPPORTED_KUBERNETES_VERSIONS: &[&str] = &["1.32", "1.33", "1.34", "1.35", "1.36"];

/// Those of [`SUPPORTED_KUBERNETES_VERSIONS`] in extended support (the others are in standard
/// support). What EKS says live (`DescribeClusterVersions`) is what compliance judges.
pub const EXTENDED_SUPPORT_KUBERNETES_VERSIONS: &[&str] = &["1.32", "1.33"];

/// Kubernetes versions EKS used to support and no longer does: refused with a specific message.
pub const RETIRED_KUBERNETES_VERSIONS: &[&str] = &[
    "1.10", "1.11", "1.12", "1.13", "1.14", "1.15", "1.16", "1.17", "1.18", "1.19", "1.20", "1.21",
    "1.22", "1.23", "1.24", "1.25", "1.26", "1.27", "1.28", "1.29", "1.30", "1.31",
];

/// The Kubernetes version used when a request does not name one.
pub const DEFAULT_KUBERNETES_VERSION: &str = "1.35";

/// Retention periods (days) CloudWatch Logs accepts.
pub const LOG_RETENTION_DAYS: &[u32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// JSON Schema (draft 2020-12) of a platform request, generated from [`PlatformSpec`].
pub fn platform_schema() -> serde_json::Value {
    serde_json::Value::from(schemars::schema_for!(PlatformSpec))
}

/// JSON Schema (draft 2020-12) of a tenant request, generated from [`TenantSpec`].
pub fn tenant_schema() -> serde_json::Value {
    serde_json::Value::from(schemars::schema_for!(TenantSpec))
}

pub(crate) fn default_true() -> bool {
    true
}
