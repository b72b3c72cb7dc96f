//! The identity phase: the cluster, node and flow-log roles, the IRSA OIDC provider and the
//! controllers' roles, each under `/tenantry/` with the permissions boundary.

use serde_json::json;

use super::iam::IamDouble;
use super::{example_spec, Calls, Rules, Stage};
use crate::error::ErrorType;
use crate::naming::{self, Names, TAG_PLATFORM};
use crate::phases::outputs;
use crate::phases::Action;
use crate::plan::Phase;
use crate::policies::ROLE_PATH;
use crate::resources::Kind;

const BOUNDARY: &str = crate::aws::LOCAL_ROLE_BOUNDARY_ARN;
const ISSUER: &str = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE0123456789";

struct World {
    s: Stage,
    iam: IamDouble,
}

impl World {
    /// The identity phase once the cluster exists (its issuer recorded).
    fn new() -> World {
        let calls = Calls::default();
        let iam = IamDouble::new(&calls);
        let rules = Rules {
            iam: iam.rules(),
            ..Rules::default()
        };
        let cluster = Names::new(&example_spec()).cluster();
        let outputs = [
            (outputs::OIDC_ISSUER.key, json!(ISSUER)),
            (outputs::CLUSTER_NAME.key, json!(cluster)),
        ];
        let mut s = Stage::new(Phase::Identity, &calls, rules, &outputs);
        s.deps = s.deps.with_role_boundary(BOUNDARY);
        World { s, iam }
    }

    fn role(&self, purpose: &str) -> String {
        Names::new(&self.s.spec).role(purpose)
    }
}

#[tokio::test]
async fn fresh_platform_gets_bounded_roles_under_the_path_and_its_oidc_provider() {
    let w = World::new();
    let out = w.s.run(Action::Ensure).await;
    assert!(out.ready);
    let roles = w.iam.roles();
    for purpose in [
        naming::ROLE_CLUSTER,
        naming::ROLE_NODE,
        naming::ROLE_FLOW_LOGS,
    ] {
        let name = w.role(purpose);
        let role = roles.get(&name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(role.path, ROLE_PATH, "{name}");
        assert_eq!(role.boundary.as_deref(), Some(BOUNDARY), "{name}");
        assert_eq!(role.tags.get(TAG_PLATFORM), Some(&w.s.spec.id), "{name}");
        assert!(w.s.recorded(Kind::IamRole, &name));
    }
    // The controllers' roles (the four enabled in the spec, and the EBS CSI driver's), each
    // trusted by its own service account only.
    let services = out.outputs[outputs::SERVICE_ROLE_ARNS.key]
        .as_object()
        .expect("service roles")
        .clone();
    assert_eq!(services.len(), 5, "{services:?}");
    for arn in services.values() {
        let name = arn.as_str().unwrap().rsplit('/').next().unwrap();
        let trust: serde_json::Value = serde_json::from_str(&roles[name].trust).expect("trust");
        let text = trust.to_string();
        assert!(text.contains("system:serviceaccount:"), "{name}: {text}");
        assert!(!text.contains("\"*\""), "{name} trusts anyone: {text}");
        assert_eq!(roles[name].boundary.as_deref(), Some(BOUNDARY));
    }
    let providers = w.iam.providers();
    assert_eq!(providers.len(), 1);
    let provider = providers.values().next().unwrap();
    assert_eq!(provider.url, ISSUER);
    assert_eq!(provider.client_ids, ["sts.amazonaws.com"]);
    assert_eq!(out.changes as usize, w.s.calls.mutating_aws().len());
}

#[tokio::test]
async fn converged_platform_costs_no_mutating_call() {
    let w = World::new();
    w.s.run(Action::Ensure).await;
    let out = w.s.run(Action::Ensure).await;
    assert_eq!(out.changes, 0);
    assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new());
    let observed = w.s.run(Action::Observe).await;
    assert!(observed.drift.is_empty(), "{:?}", observed.drift);
    assert_eq!(w.s.calls.mutating(), Vec::<String>::new());
}

#[tokio::test]
async fn widened_trust_and_policy_and_a_dropped_boundary_are_named_then_repaired() {
    let w = World::new();
    w.s.run(Action::Ensure).await;
    let node = w.role(naming::ROLE_NODE);
    let autoscaler = w.role("cluster-autoscaler");
    let everyone = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "*"}, "Action": "sts:AssumeRoleWithWebIdentity"}]});
    w.iam.edit(&autoscaler, |r| {
        r.trust = everyone.to_string();
        r.boundary = None;
        let name = r.inline.keys().next().expect("an inline policy").clone();
        r.inline.insert(
            name,
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Action": "*", "Resource": "*"}]})
            .to_string(),
        );
    });
    w.iam.edit(&node, |r| {
        r.managed
            .insert("arn:aws:iam::aws:policy/AdministratorAccess".to_owned());
    });

    let observed = w.s.run(Action::Observe).await;
    let mut found: Vec<(String, String)> = observed
        .drift
        .iter()
        .map(|d| {
            (
                d.resource.clone(),
                d.field.split('/').next().unwrap().to_owned(),
            )
        })
        .collect();
    found.sort();
    let at = |role: &str, field: &str| (format!("iam:role/{role}"), field.to_owned());
    assert_eq!(
        found,
        [
            at(&autoscaler, "assumeRolePolicy"),
            at(&autoscaler, "inlinePolicy"),
            at(&autoscaler, "permissionsBoundary"),
            at(&node, "managedPolicies"),
        ]
    );
    assert_eq!(w.s.calls.mutating(), Vec::<String>::new(), "observe wrote");

    w.s.run(Action::Ensure).await;
    let mut writes = w.s.calls.mutating_aws();
    writes.sort();
    assert_eq!(
        writes,
        [
            "iam:DetachRolePolicy",
            "iam:PutRolePermissionsBoundary",
            "iam:PutRolePolicy",
            "iam:UpdateAssumeRolePolicy",
        ]
    );
    assert!(w.s.run(Action::Observe).await.drift.is_empty());
}

/// A crash after `CreateRole`, before its policies and before it was recorded.
/// The OIDC provider lost the STS audience (IRSA tokens would be refused) and a tag Tenantry
/// set; another audience and a team's tag were added. `observe` names the two fields; `ensure`
/// adds the audience and the tag back and removes nothing.
#[tokio::test]
async fn a_provider_without_the_sts_audience_is_named_then_repaired() {
    let w = World::new();
    w.s.run(Action::Ensure).await;
    let arn = w.iam.providers().into_keys().next().unwrap();
    w.iam.edit_provider(&arn, |p| {
        p.client_ids = vec!["vault".to_owned()];
        p.tags.remove(naming::TAG_ENVIRONMENT);
        p.tags.insert("team".to_owned(), "sre".to_owned());
    });
    let observed = w.s.run(Action::Observe).await;
    let resource = format!(
        "iam:oidc-provider/{}",
        ISSUER.trim_start_matches("https://")
    );
    let mut fields = super::drift_fields(&observed);
    fields.sort();
    assert_eq!(
        fields,
        [
            (resource.clone(), "clientIdList".to_owned()),
            (resource, "tags".to_owned())
        ]
    );
    assert_eq!(w.s.calls.mutating(), Vec::<String>::new(), "observe wrote");

    w.s.run(Action::Ensure).await;
    assert_eq!(
        w.s.calls.mutating_aws(),
        [
            "iam:AddClientIDToOpenIDConnectProvider",
            "iam:TagOpenIDConnectProvider"
        ]
    );
    let p = &w.iam.providers()[&arn];
    assert_eq!(p.client_ids, ["vault", "sts.amazonaws.com"]);
    assert_eq!(p.tags["team"], "sre");
    assert_eq!(
        p.tags.get(naming::TAG_ENVIRONMENT),
        Some(&w.s.spec.environment)
    );
    assert!(w.s.run(Action::Observe).await.drift.is_empty());
}

#[tokio::test]
async fn half_created_role_gets_its_policies_without_being_created_again() {
    let w = World::new();
    w.s.run(Action::Ensure).await;
    let node = w.role(naming::ROLE_NODE);
    let managed = w.iam.roles()[&node].managed.len();
    assert!(managed > 0);
    w.iam.edit(&node, |r| r.managed.clear());
    w.s.store.forget(&w.s.spec.id, Kind::IamRole, &node);

    let out = w.s.run(Action::Ensure).await;
    assert_eq!(
        w.s.calls.mutating_aws(),
        vec!["iam:AttachRolePolicy"; managed]
    );
    assert_eq!(out.changes as usize, managed);
    assert!(w.s.recorded(Kind::IamRole, &node));
}

/// A role of one of the platform's names that another platform (or a person) made is neither
/// adopted nor changed.
#[tokio::test]
async fn a_role_of_our_name_without_our_tag_is_refused_untouched() {
    let w = World::new();
    w.s.run(Action::Ensure).await;
    let cluster = w.role(naming::ROLE_CLUSTER);
    w.iam.edit(&cluster, |r| {
        r.tags
            .insert(TAG_PLATFORM.to_owned(), "someone-else".to_owned());
        r.trust = "{}".to_owned();
    });
    let err = w.s.try_run(Action::Ensure).await.expect_err("adopted");
    assert_eq!(err.error_type, ErrorType::Terminal);
    assert!(
        err.error_message.contains(&cluster),
        "{}",
        err.error_message
    );
    assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new());
    assert_eq!(w.iam.roles()[&cluster].trust, "{}");
}

#[tokio::test]
async fn gone_platform_deletes_without_a_call_and_delete_converges() {
    let w = World::new();
    w.s.run(Action::Delete).await;
    assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new());

    w.s.run(Action::Ensure).await;
    assert!(w.s.run(Action::Delete).await.ready);
    assert!(w.iam.roles().is_empty(), "{:?}", w.iam.roles().keys());
    assert!(w.iam.providers().is_empty());
    assert!(
        w.s.store.inventory().is_empty(),
        "{:?}",
        w.s.store.inventory()
    );
    w.s.run(Action::Delete).await;
    assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new());
}
