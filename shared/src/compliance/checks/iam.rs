//! IAM roles: administrator policies, exact workload trusts, scoped tenant actions, boundary.

use super::{condition_has, judge, not_applicable, platform, statements, strings, Verdict};
use crate::compliance::live::{Live, Role};
use serde_json::{json, Value};

/// AWS managed policies that make a role an administrator.
const ADMIN_MANAGED: [&str; 3] = ["AdministratorAccess", "PowerUserAccess", "IAMFullAccess"];

fn each_role(
    live: &Live,
    roles: Vec<&Role>,
    what: &str,
    check: impl Fn(&Role) -> Verdict,
) -> Vec<Verdict> {
    if roles.is_empty() {
        return vec![not_applicable(
            platform(live),
            format!("the platform has no {what}"),
        )];
    }
    roles.into_iter().map(check).collect()
}

/// Allow statements of the role's inline policies.
fn allows(role: &Role) -> impl Iterator<Item = &Value> {
    role.inline_policies
        .values()
        .flat_map(statements)
        .filter(|s| s["Effect"] == "Allow")
}

pub fn no_admin_policies(live: &Live) -> Vec<Verdict> {
    each_role(live, live.roles.iter().collect(), "IAM roles", |r| {
        let mut admin: Vec<String> = r
            .managed_policies
            .iter()
            .filter(|p| ADMIN_MANAGED.iter().any(|a| p.ends_with(&format!("/{a}"))))
            .cloned()
            .collect();
        admin.extend(
            allows(r)
                .filter(|s| {
                    strings(&s["Action"])
                        .iter()
                        .any(|a| *a == "*" || *a == "*:*")
                        && strings(&s["Resource"]).contains(&"*")
                })
                .map(|s| {
                    format!(
                        "inline statement {}",
                        s["Sid"].as_str().unwrap_or("(no Sid)")
                    )
                }),
        );
        judge(
            &r.arn,
            admin.is_empty(),
            "no administrator policy",
            format!("administrator permissions: {}", admin.join(", ")),
            json!({"managedPolicies": r.managed_policies, "admin": admin}),
        )
    })
}

/// The trust statements that let `principal_key` (`Federated`, `Service`) matching `is` assume.
fn trusts<'a>(
    role: &'a Role,
    principal_key: &str,
    is: impl Fn(&str) -> bool + 'a,
) -> Vec<&'a Value> {
    statements(&role.trust)
        .into_iter()
        .filter(|s| {
            s["Effect"] == "Allow" && strings(&s["Principal"][principal_key]).into_iter().any(&is)
        })
        .collect()
}

pub fn irsa_trust_is_exact(live: &Live) -> Vec<Verdict> {
    let is_oidc = |p: &str| p.contains(":oidc-provider/");
    let roles: Vec<&Role> = live
        .roles
        .iter()
        .filter(|r| !trusts(r, "Federated", is_oidc).is_empty())
        .collect();
    each_role(
        live,
        roles,
        "IRSA roles (the platform uses Pod Identity)",
        |r| {
            let loose: Vec<String> = trusts(r, "Federated", is_oidc)
                .into_iter()
                .filter(|s| {
                    let equals = s["Condition"]["StringEquals"].as_object();
                    let exact = |suffix: &str, want: Option<&str>| {
                        equals.is_some_and(|m| {
                            m.iter().any(|(k, v)| {
                                k.ends_with(suffix)
                                    && !strings(v).is_empty()
                                    && strings(v)
                                        .iter()
                                        .all(|x| !x.contains('*') && want.is_none_or(|w| *x == w))
                            })
                        })
                    };
                    !(exact(":sub", None) && exact(":aud", Some("sts.amazonaws.com")))
                })
                .map(|s| s["Sid"].as_str().unwrap_or("(no Sid)").to_owned())
                .collect();
            judge(
                &r.arn,
                loose.is_empty(),
                "trusts one service account, with StringEquals on sub and aud",
                format!(
                    "OIDC trust without an exact sub and aud: {}",
                    loose.join(", ")
                ),
                json!({"trust": r.trust}),
            )
        },
    )
}

pub fn service_trust_is_guarded(live: &Live) -> Vec<Verdict> {
    // EC2 sets no aws:SourceAccount when it assumes an instance profile's role, so a node
    // role's trust cannot carry one.
    let guardable = |p: &str| p != "ec2.amazonaws.com";
    let roles: Vec<&Role> = live
        .roles
        .iter()
        .filter(|r| !trusts(r, "Service", guardable).is_empty())
        .collect();
    each_role(live, roles, "roles trusted by AWS services", |r| {
        let open: Vec<String> = trusts(r, "Service", guardable)
            .into_iter()
            .filter(|s| {
                !condition_has(s, "aws:SourceAccount") && !condition_has(s, "aws:SourceArn")
            })
            .map(|s| strings(&s["Principal"]["Service"]).join(", "))
            .collect();
        judge(
            &r.arn,
            open.is_empty(),
            "every service trust names the source account",
            format!(
                "service trusts without aws:SourceAccount or aws:SourceArn: {}",
                open.join("; ")
            ),
            json!({"trust": r.trust}),
        )
    })
}

/// Services whose actions read or write tenant data.
const DATA_SERVICES: [&str; 3] = ["s3:", "kms:", "secretsmanager:"];

pub fn tenant_actions_scoped(live: &Live) -> Vec<Verdict> {
    let roles: Vec<&Role> = live.roles.iter().filter(|r| r.tenant.is_some()).collect();
    each_role(live, roles, "tenant roles", |r| {
        let wide: Vec<String> = allows(r)
            .filter(|s| strings(&s["Resource"]).contains(&"*"))
            .flat_map(|s| strings(&s["Action"]))
            .filter(|a| *a == "*" || DATA_SERVICES.iter().any(|p| a.starts_with(p)))
            .map(str::to_owned)
            .collect();
        judge(
            &r.arn,
            wide.is_empty(),
            "every data action names its resources",
            format!("data actions on every resource: {}", wide.join(", ")),
            json!({"tenant": r.tenant, "wildcardActions": wide}),
        )
    })
}

pub fn boundary(live: &Live) -> Vec<Verdict> {
    let Some(want) = &live.asked.role_boundary else {
        return vec![not_applicable(
            platform(live),
            "the deployment sets no permissions boundary (TENANTRY_ROLE_BOUNDARY_ARN)",
        )];
    };
    each_role(live, live.roles.iter().collect(), "IAM roles", |r| {
        judge(
            &r.arn,
            r.boundary.as_ref() == Some(want),
            "carries the deployment's permissions boundary",
            format!("boundary is {}", r.boundary.as_deref().unwrap_or("not set")),
            json!({"boundary": r.boundary, "expected": want}),
        )
    })
}

pub fn no_principal_trust(live: &Live) -> Vec<Verdict> {
    each_role(live, live.roles.iter().collect(), "IAM roles", |r| {
        let principals: Vec<String> = trusts(r, "AWS", |_| true)
            .into_iter()
            .flat_map(|s| strings(&s["Principal"]["AWS"]))
            .map(str::to_owned)
            .chain(
                statements(&r.trust)
                    .into_iter()
                    .filter(|s| s["Effect"] == "Allow" && s["Principal"] == "*")
                    .map(|_| "*".to_owned()),
            )
            .collect();
        judge(
            &r.arn,
            principals.is_empty(),
            "trusted by AWS services or the cluster's identity provider only",
            format!("trusts {}", principals.join(", ")),
            json!({"trust": r.trust}),
        )
    })
}
