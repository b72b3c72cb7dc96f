//! Container image repositories: who may pull and push (the repository's own policy), and the
//! tenant role's statements for its repositories.

use serde_json::{json, Value};

use super::{document, Target};
use crate::spec::TenantSpec;

/// Reading an image: what the kubelet does, with the node role's credentials.
pub const PULL_ACTIONS: &[&str] = &[
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
];
/// Writing an image (a tenant's build pushing to its own repository).
pub const PUSH_ACTIONS: &[&str] = &[
    "ecr:CompleteLayerUpload",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
];

/// The policy of a repository: the platform's node role pulls (nodes pull every pod's image);
/// for a tenant's repository, the tenant's role pulls and pushes, and every other principal is
/// denied the push, whatever its own identity policy allows (an explicit deny in a resource
/// policy wins over any allow). So another tenant's role, or an account-wide CI role, cannot put
/// an image into this tenant's repository.
pub fn repository_policy(node_role_arn: &str, tenant_role_arn: Option<&str>) -> Value {
    let mut statements = vec![json!({
        "Sid": "NodesPull",
        "Effect": "Allow",
        "Principal": { "AWS": node_role_arn },
        "Action": PULL_ACTIONS,
    })];
    if let Some(role) = tenant_role_arn {
        let actions: Vec<&str> = PULL_ACTIONS.iter().chain(PUSH_ACTIONS).copied().collect();
        statements.push(json!({
            "Sid": "TenantPushAndPull",
            "Effect": "Allow",
            "Principal": { "AWS": role },
            "Action": actions,
        }));
        statements.push(json!({
            "Sid": "OnlyTheTenantPushes",
            "Effect": "Deny",
            "Principal": "*",
            "Action": PUSH_ACTIONS,
            "Condition": { "ArnNotEquals": { "aws:PrincipalArn": role } },
        }));
    }
    document(statements)
}

/// The tenant role's statements for its repositories (none without any): pull and push on the
/// tenant's path only, and the registry login token, which ECR grants on `*` alone (it names no
/// repository; what the token reaches is still bounded by the statement before it).
pub(super) fn tenant_statements(t: &Target, tenant: &TenantSpec) -> Vec<Value> {
    if tenant.repositories.is_empty() {
        return Vec::new();
    }
    let prefix = t.names.tenant_repository_prefix(&tenant.name);
    let actions: Vec<&str> = PULL_ACTIONS.iter().chain(PUSH_ACTIONS).copied().collect();
    vec![
        json!({
            "Sid": "OwnRepositories",
            "Effect": "Allow",
            "Action": actions,
            "Resource": t.arn("ecr", &format!("repository/{prefix}*")),
        }),
        json!({
            "Sid": "RegistryLogin",
            "Effect": "Allow",
            "Action": "ecr:GetAuthorizationToken",
            "Resource": "*",
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = "arn:aws:iam::123456789012:role/tenantry-payments-prod-node";
    const TENANT: &str = "arn:aws:iam::123456789012:role/tenantry-payments-prod-t-checkout";

    #[test]
    fn a_tenant_repository_denies_the_push_to_every_principal_but_the_tenant_role() {
        let doc = repository_policy(NODE, Some(TENANT));
        let deny: Vec<&Value> = doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["Effect"] == "Deny")
            .collect();
        assert_eq!(deny.len(), 1, "{doc:#}");
        assert_eq!(deny[0]["Principal"], "*");
        assert_eq!(deny[0]["Action"], json!(PUSH_ACTIONS));
        assert_eq!(
            deny[0]["Condition"]["ArnNotEquals"]["aws:PrincipalArn"],
            TENANT
        );
        // Pulling is not denied: the nodes pull with their own role.
        for a in PULL_ACTIONS {
            assert!(!deny[0]["Action"].to_string().contains(a));
        }
    }

    #[test]
    fn a_platform_repository_grants_the_nodes_pull_and_denies_nothing() {
        let doc = repository_policy(NODE, None);
        let statements = doc["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 1);
        assert_eq!(statements[0]["Effect"], "Allow");
        assert_eq!(statements[0]["Principal"]["AWS"], NODE);
        assert_eq!(statements[0]["Action"], json!(PULL_ACTIONS));
    }
}
