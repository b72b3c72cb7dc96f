//! `awsAccess` rules: what a platform approves is in each service's catalogue, and what a tenant
//! asks for is approved by its platform.

use std::collections::{BTreeMap, BTreeSet};

use super::{field, index, rules, Issues};
use crate::spec::{AwsService, PlatformSpec, TenantSpec};

type Grants = BTreeMap<AwsService, Vec<String>>;

/// The platform's `tenantAwsAccess`: each action in its service's catalogue, named once.
pub(crate) fn check_approved(platform: &PlatformSpec, issues: &mut Issues) {
    check_each(
        &platform.tenant_aws_access,
        "$.tenantAwsAccess",
        issues,
        |service, action| {
            (!service.actions().contains(&action)).then(|| {
                format!(
                    "{action:?} is not an action Tenantry grants on a tenant's own {} resources; \
                 these are: {:?}",
                    service.prefix(),
                    service.actions()
                )
            })
        },
    );
}

/// A tenant's `awsAccess` (at `at`): each action approved by the platform for its service.
pub(crate) fn check_requested(
    t: &TenantSpec,
    at: &str,
    platform: &PlatformSpec,
    issues: &mut Issues,
) {
    let approved = &platform.tenant_aws_access;
    check_each(
        &t.aws_access,
        &field(at, "awsAccess"),
        issues,
        |service, action| {
            let allowed = approved
                .get(&service)
                .map(Vec::as_slice)
                .unwrap_or_default();
            (!allowed.iter().any(|a| a == action)).then(|| {
            format!(
                "{action:?} is not approved by the platform for {} (tenantAwsAccess.{}: {allowed:?})",
                service.prefix(),
                service.prefix()
            )
        })
        },
    );
}

/// Runs `problem` on every action of `grants` (and refuses an action named twice).
fn check_each(
    grants: &Grants,
    at: &str,
    issues: &mut Issues,
    problem: impl Fn(AwsService, &str) -> Option<String>,
) {
    for (service, actions) in grants {
        let list = field(at, service.prefix());
        let mut seen = BTreeSet::new();
        for (i, action) in actions.iter().enumerate() {
            let message = match seen.insert(action.as_str()) {
                false => Some(format!("{action:?} is named twice")),
                true => problem(*service, action),
            };
            if let Some(message) = message {
                issues.push(index(&list, i), rules::AWS_ACCESS, message);
            }
        }
    }
}
