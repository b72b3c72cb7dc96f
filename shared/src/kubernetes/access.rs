//! People's access through the OIDC identity provider: one ClusterRoleBinding per group mapping.
//!
//! EKS presents the provider's groups to Kubernetes as `<groupsPrefix><idpGroup>`; each mapping
//! binds that group to its cluster role with a ClusterRoleBinding named
//! `tenantry:<kubernetesGroup>` (unique, since validation refuses duplicate Kubernetes groups).

use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use serde_json::Value;

use super::manifests::{meta, to_value};
use crate::spec::{GroupMapping, OidcIdentityProvider, PlatformSpec};

/// Prefix of the names of the group bindings.
pub const GROUP_BINDING_PREFIX: &str = "tenantry:";

/// Name of the ClusterRoleBinding of a group mapping: `tenantry:<kubernetesGroup>`.
pub fn group_binding_name(mapping: &GroupMapping) -> String {
    format!("{GROUP_BINDING_PREFIX}{}", mapping.kubernetes_group)
}

/// The Kubernetes group EKS puts identity-provider group members in: `<groupsPrefix><idpGroup>`.
pub fn oidc_group(idp: &OidcIdentityProvider, mapping: &GroupMapping) -> String {
    format!("{}{}", idp.groups_prefix, mapping.idp_group)
}

/// The ClusterRoleBindings of the spec's group mappings (none without an identity provider).
pub fn access_manifests(spec: &PlatformSpec) -> Vec<Value> {
    let Some(idp) = &spec.access.oidc_identity_provider else {
        return Vec::new();
    };
    idp.group_mappings
        .iter()
        .map(|mapping| {
            to_value(&ClusterRoleBinding {
                metadata: meta(spec, &group_binding_name(mapping), None, &[]),
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".to_owned(),
                    kind: "ClusterRole".to_owned(),
                    name: mapping.cluster_role.clone(),
                },
                subjects: Some(vec![Subject {
                    api_group: Some("rbac.authorization.k8s.io".to_owned()),
                    kind: "Group".to_owned(),
                    name: oidc_group(idp, mapping),
                    namespace: None,
                }]),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::manifests::tests::{assert_common_labels, example, minimal};
    use serde_json::json;

    #[test]
    fn each_group_mapping_is_bound_to_its_cluster_role() {
        let bindings = access_manifests(&example());
        assert_eq!(bindings.len(), 2);
        for b in &bindings {
            assert_common_labels(b, "payments");
            assert_eq!(b["apiVersion"], "rbac.authorization.k8s.io/v1");
            assert_eq!(b["kind"], "ClusterRoleBinding");
            assert!(b["metadata"].get("namespace").is_none());
        }
        assert_eq!(bindings[0]["metadata"]["name"], "tenantry:platform-admins");
        assert_eq!(
            bindings[0]["roleRef"],
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                   "name": "cluster-admin"})
        );
        assert_eq!(
            bindings[0]["subjects"],
            json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                    "name": "aad:3f2a1b0c-9d8e-7f6a-5b4c-3d2e1f0a9b8c"}])
        );
        assert_eq!(bindings[1]["metadata"]["name"], "tenantry:developers");
        assert_eq!(bindings[1]["roleRef"]["name"], "view");
        assert_eq!(
            bindings[1]["subjects"][0]["name"],
            "aad:8c7b6a59-4e3d-2c1b-0a9f-8e7d6c5b4a39"
        );
    }

    #[test]
    fn no_identity_provider_means_no_bindings() {
        assert!(access_manifests(&minimal()).is_empty());
        let mut spec = example();
        if let Some(idp) = spec.access.oidc_identity_provider.as_mut() {
            idp.group_mappings.clear();
        }
        assert!(access_manifests(&spec).is_empty());
    }
}
