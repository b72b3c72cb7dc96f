//! Cluster access: admin principals and an OIDC identity provider.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Who may administer the cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessSpec {
    /// IAM role or user ARNs given cluster-admin access entries. Default: none.
    #[serde(default)]
    pub admin_principals: Vec<String>,
    /// An OIDC identity provider for people (e.g. Azure AD / Entra ID). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_identity_provider: Option<OidcIdentityProvider>,
}

/// An OIDC identity provider associated with the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OidcIdentityProvider {
    /// Identity provider config name (DNS-1123 label). Default: `oidc`.
    #[serde(default = "default_idp_name")]
    pub name: String,
    /// Issuer URL (`https://`), e.g. `https://login.microsoftonline.com/<tenant-id>/v2.0`. Required.
    pub issuer_url: String,
    /// Client (application) id. Required.
    pub client_id: String,
    /// Claim holding the user name. Default: `email`.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// Claim holding the groups. Default: `groups`.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Prefix put before group names in Kubernetes (may not start with `system:`). Default: `oidc:`.
    #[serde(default = "default_groups_prefix")]
    pub groups_prefix: String,
    /// Identity-provider group → Kubernetes group (bound to a cluster role). Default: none.
    #[serde(default)]
    pub group_mappings: Vec<GroupMapping>,
}

fn default_idp_name() -> String {
    "oidc".to_string()
}
fn default_username_claim() -> String {
    "email".to_string()
}
fn default_groups_claim() -> String {
    "groups".to_string()
}
fn default_groups_prefix() -> String {
    "oidc:".to_string()
}

/// Maps an identity-provider group to a Kubernetes group and the cluster role it is bound to.
///
/// EKS presents the provider's groups to Kubernetes as `<groupsPrefix><idpGroup>`; Tenantry binds
/// that group to `clusterRole` with a ClusterRoleBinding named `tenantry:<kubernetesGroup>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupMapping {
    /// The group as the identity provider sends it (e.g. an Azure AD group object id). Required.
    pub idp_group: String,
    /// Kubernetes group name of the mapping (DNS-1123 label, unique; `system:` is reserved).
    /// Required.
    pub kubernetes_group: String,
    /// Cluster role bound to the group: `cluster-admin`, `admin`, `edit` or `view`. Default: `view`.
    #[serde(default = "default_cluster_role")]
    pub cluster_role: String,
}

fn default_cluster_role() -> String {
    "view".to_string()
}

/// Cluster roles a group mapping may bind.
pub const BINDABLE_CLUSTER_ROLES: &[&str] = &["cluster-admin", "admin", "edit", "view"];
