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
/// for a tenant's repository, the tenant's role pulls and pushes. No other principal is named.
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
