//! Workload identity (IRSA, EKS Pod Identity) and the service roles Tenantry creates.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::default_true;

/// Workload identity settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentitySpec {
    /// IAM roles for service accounts (an IAM OIDC provider for the cluster). Default: `true`.
    #[serde(default = "default_true")]
    pub irsa: bool,
    /// EKS Pod Identity (needs the `eks-pod-identity-agent` add-on). When on, service and tenant
    /// roles trust `pods.eks.amazonaws.com`; otherwise they trust the cluster's OIDC provider.
    /// At least one of `irsa` and `podIdentity` must be on. Default: `true`.
    #[serde(default = "default_true")]
    pub pod_identity: bool,
    /// Roles for the platform's controllers. Default: see each role.
    #[serde(default)]
    pub service_roles: ServiceRoles,
}

impl Default for IdentitySpec {
    fn default() -> Self {
        IdentitySpec {
            irsa: true,
            pod_identity: true,
            service_roles: ServiceRoles::default(),
        }
    }
}

/// How a workload role is assumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TrustMechanism {
    /// EKS Pod Identity (`pods.eks.amazonaws.com`, a pod identity association per service account).
    PodIdentity,
    /// IRSA (the cluster's IAM OIDC provider, a service account annotation).
    Irsa,
}

impl IdentitySpec {
    /// The mechanism service and tenant roles trust: Pod Identity when on, else IRSA.
    pub fn trust(&self) -> TrustMechanism {
        if self.pod_identity {
            TrustMechanism::PodIdentity
        } else {
            TrustMechanism::Irsa
        }
    }
}

/// Roles for the platform's controllers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceRoles {
    /// cluster-autoscaler (auto-discovery by tags, priority expander preferring spot groups).
    /// Default: enabled.
    #[serde(default)]
    pub cluster_autoscaler: ServiceRole,
    /// AWS Load Balancer Controller. Default: enabled.
    #[serde(default)]
    pub alb_controller: ServiceRole,
    /// external-dns, limited to the listed hosted zones. Default: disabled.
    #[serde(default)]
    pub external_dns: ExternalDnsRole,
    /// external-secrets, limited to the listed Secrets Manager prefixes. Default: disabled.
    #[serde(default)]
    pub external_secrets: ExternalSecretsRole,
}

/// A service role that only needs switching on or off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceRole {
    /// Create the role (and install the controller). Default: `true`.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Pin the controller's image by digest as well as by tag: `sha256:` and 64 lowercase hex
    /// digits, the digest of the pinned release's image (Tenantry installs
    /// `<image>:<pinned tag>@<digest>`). Default: by tag only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
}

impl Default for ServiceRole {
    fn default() -> Self {
        ServiceRole {
            enabled: true,
            image_digest: None,
        }
    }
}

/// The external-dns role.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalDnsRole {
    /// Create the role (and install external-dns). Default: `false`.
    #[serde(default)]
    pub enabled: bool,
    /// Route 53 hosted zones it may change: ids like `Z0123456789ABCDEFGHIJ` or hosted zone ARNs.
    /// Required (non-empty) when enabled. Default: none.
    #[serde(default)]
    pub hosted_zones: Vec<String>,
    /// Pin the controller's image by digest as well as by tag: `sha256:` and 64 lowercase hex
    /// digits, the digest of the pinned release's image (Tenantry installs
    /// `<image>:<pinned tag>@<digest>`). Default: by tag only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
}

/// The external-secrets role.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalSecretsRole {
    /// Create the role (and install external-secrets). Default: `false`.
    #[serde(default)]
    pub enabled: bool,
    /// Secrets Manager name prefixes it may read, e.g. `payments/prod/` (characters
    /// `A-Za-z0-9/_+=.@-`, no wildcards). Required (non-empty) when enabled. Default: none.
    #[serde(default)]
    pub secret_prefixes: Vec<String>,
    /// Pin the controller's image by digest as well as by tag: `sha256:` and 64 lowercase hex
    /// digits, the digest of the pinned release's image (Tenantry installs
    /// `<image>:<pinned tag>@<digest>`). Default: by tag only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
}
