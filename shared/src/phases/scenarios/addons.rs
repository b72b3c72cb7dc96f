//! The addons phase: the spec's managed add-ons at their resolved versions and configuration,
//! the EBS CSI driver's role, and the pod identity associations of the controllers' roles.

use serde_json::json;

use super::eks::{EksDouble, ADDON_VERSIONS, KUBERNETES};
use super::{Calls, Rules, Stage};
use crate::error::ErrorType;
use crate::naming::TAG_PLATFORM;
use crate::phases::outputs;
use crate::phases::Action;
use crate::plan::Phase;

const LATEST: &str = ADDON_VERSIONS[1];

fn role(purpose: &str) -> String {
    format!("arn:aws:iam::123456789012:role/tenantry/tenantry-payments-prod-{purpose}")
}

struct World {
    s: Stage,
    eks: EksDouble,
}

impl World {
    /// The addons phase once the identity phase has recorded the controllers' roles.
    fn new() -> World {
        let calls = Calls::default();
        let eks = EksDouble::new(&calls);
        let rules = Rules {
            eks: eks.rules(),
            ..Rules::default()
        };
        let roles = [
            "ebs-csi",
            "cluster-autoscaler",
            "alb-controller",
            "external-dns",
            "external-secrets",
        ]
        .map(|p| (p.to_owned(), json!(role(p))));
        let outputs = [
            (
                outputs::SERVICE_ROLE_ARNS.key,
                json!(serde_json::Map::from_iter(roles)),
            ),
            ("clusterVersion", json!(KUBERNETES)),
        ];
        World {
            s: Stage::new(Phase::Addons, &calls, rules, &outputs),
            eks,
        }
    }

    async fn converge(&self) -> Vec<Vec<String>> {
        self.s.converge(|| self.eks.settle()).await
    }

    /// The controllers' associations Tenantry made (not those an add-on owns): (account, role).
    fn tenantry_associations(&self) -> Vec<(String, String)> {
        let mut out: Vec<_> = self
            .eks
            .associations()
            .values()
            .filter(|a| a.owner_arn().is_none())
            .map(|a| {
                (
                    a.service_account().unwrap_or_default().to_owned(),
                    a.role_arn().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        out.sort();
        out
    }
}

#[tokio::test]
async fn fresh_platform_gets_every_addon_at_its_latest_version_and_the_controllers_identities() {
    let w = World::new();
    let rounds = w.converge().await;
    assert_eq!(rounds.len(), 2, "{rounds:?}");
    let created = rounds[0].iter().filter(|c| *c == "eks:CreateAddon").count();
    assert_eq!(created, w.s.spec.effective_addons().len());
    let addons = w.eks.addons();
    for (name, a) in &addons {
        assert_eq!(a.addon_version(), Some(LATEST), "{name}");
        assert_eq!(
            a.tags().and_then(|t| t.get(TAG_PLATFORM)),
            Some(&w.s.spec.id),
            "{name}"
        );
    }
    let coredns: serde_json::Value =
        serde_json::from_str(addons["coredns"].configuration_values().unwrap()).unwrap();
    assert_eq!(coredns["replicaCount"], 3);
    let cni: serde_json::Value =
        serde_json::from_str(addons["vpc-cni"].configuration_values().unwrap()).unwrap();
    assert_eq!(
        cni["enableNetworkPolicy"], "true",
        "NetworkPolicies need the CNI to enforce them"
    );
    // Pod Identity platform: the EBS CSI driver's association belongs to its add-on; the four
    // controllers get one each from Tenantry.
    let ebs = &addons["aws-ebs-csi-driver"];
    assert_eq!(ebs.pod_identity_associations().len(), 1);
    assert_eq!(
        w.tenantry_associations(),
        [
            (
                "aws-load-balancer-controller".to_owned(),
                role("alb-controller")
            ),
            ("cluster-autoscaler".to_owned(), role("cluster-autoscaler")),
            ("external-dns".to_owned(), role("external-dns")),
            ("external-secrets".to_owned(), role("external-secrets")),
        ]
    );
}

#[tokio::test]
async fn converged_platform_costs_no_mutating_call() {
    let w = World::new();
    w.converge().await;
    let out = w.s.run(Action::Ensure).await;
    assert!(out.ready);
    assert_eq!(out.changes, 0);
    assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new());
    let observed = w.s.run(Action::Observe).await;
    assert!(observed.drift.is_empty(), "{:?}", observed.drift);
    assert_eq!(w.s.calls.mutating(), Vec::<String>::new());
}

#[tokio::test]
async fn changed_configuration_old_version_and_deleted_addon_are_named_then_repaired() {
    let w = World::new();
    w.converge().await;
    w.eks.edit_addon("vpc-cni", |a| {
        a.configuration_values = Some(r#"{"enableNetworkPolicy":"false"}"#.to_owned())
    });
    w.eks.edit_addon("coredns", |a| {
        a.addon_version = Some(ADDON_VERSIONS[0].to_owned())
    });
    w.eks.remove_addon("kube-proxy");

    let observed = w.s.run(Action::Observe).await;
    let mut fields: Vec<_> = observed
        .drift
        .iter()
        .map(|d| (d.resource.as_str(), d.field.as_str()))
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            ("eks:addon/coredns", "addonVersion"),
            ("eks:addon/kube-proxy", "exists"),
            ("eks:addon/vpc-cni", "configurationValues"),
        ]
    );
    assert_eq!(w.s.calls.mutating(), Vec::<String>::new(), "observe wrote");

    let rounds = w.converge().await;
    let mut first = rounds[0].clone();
    first.sort();
    assert_eq!(
        first,
        ["eks:CreateAddon", "eks:UpdateAddon", "eks:UpdateAddon"]
    );
    assert!(w.s.run(Action::Observe).await.drift.is_empty());
}

/// A controller's association pointed at another role out of band is named, and pointed back.
#[tokio::test]
async fn a_controller_association_moved_to_another_role_is_moved_back() {
    let w = World::new();
    w.converge().await;
    let (id, _) = w
        .eks
        .associations()
        .into_iter()
        .find(|(_, a)| a.service_account() == Some("external-dns"))
        .expect("external-dns association");
    w.eks.edit_association(&id, |a| {
        a.role_arn = Some("arn:aws:iam::123456789012:role/admin".to_owned())
    });
    let observed = w.s.run(Action::Observe).await;
    let fields: Vec<_> = observed
        .drift
        .iter()
        .map(|d| (d.resource.as_str(), d.field.as_str()))
        .collect();
    assert_eq!(
        fields,
        [(
            "eks:pod-identity-association/external-dns/external-dns",
            "roleArn"
        )]
    );
    w.s.run(Action::Ensure).await;
    assert_eq!(
        w.s.calls.mutating_aws(),
        ["eks:UpdatePodIdentityAssociation"]
    );
    assert_eq!(
        w.eks.associations()[&id].role_arn(),
        Some(role("external-dns").as_str())
    );
}

#[tokio::test]
async fn an_addon_someone_else_installed_is_refused_untouched() {
    let w = World::new();
    w.converge().await;
    w.eks.edit_addon("coredns", |a| {
        a.tags
            .get_or_insert_with(Default::default)
            .insert(TAG_PLATFORM.to_owned(), "someone-else".to_owned());
        a.addon_version = Some(ADDON_VERSIONS[0].to_owned());
    });
    let err = w.s.try_run(Action::Ensure).await.expect_err("adopted");
    assert_eq!(err.error_type, ErrorType::Conflict);
    assert!(
        err.error_message.contains("coredns"),
        "{}",
        err.error_message
    );
    assert!(!w
        .s
        .calls
        .mutating_aws()
        .contains(&"eks:UpdateAddon".to_owned()));
    assert_eq!(
        w.eks.addons()["coredns"].addon_version(),
        Some(ADDON_VERSIONS[0])
    );
}

/// `observe` walks what `ensure` walks: another owner's add-on is named, not an error, and an
/// add-on of the platform the spec no longer names is named, then removed by `ensure`.
#[tokio::test]
async fn observe_names_another_owners_addon_and_one_the_spec_dropped() {
    let mut w = World::new();
    w.converge().await;
    w.eks.edit_addon("coredns", |a| {
        a.tags
            .get_or_insert_with(Default::default)
            .insert(TAG_PLATFORM.to_owned(), "someone-else".to_owned());
    });
    let addons = w.s.spec.addons.as_mut().expect("example add-ons");
    addons.retain(|a| a.name != "kube-proxy");

    let observed = w.s.run(Action::Observe).await;
    assert!(!observed.ready);
    let fields: Vec<_> = observed
        .drift
        .iter()
        .map(|d| (d.resource.as_str(), d.field.as_str(), d.desired.clone()))
        .collect();
    assert_eq!(
        fields,
        [
            (
                "eks:addon/coredns",
                "tags.tenantry:platform",
                json!("payments")
            ),
            ("eks:addon/kube-proxy", "exists", json!(false)),
        ]
    );
    assert_eq!(w.s.calls.mutating(), Vec::<String>::new(), "observe wrote");

    w.eks.edit_addon("coredns", |a| {
        let tags = a.tags.as_mut().expect("tags");
        tags.insert(TAG_PLATFORM.to_owned(), "payments".to_owned());
    });
    w.converge().await;
    assert!(!w.eks.addons().contains_key("kube-proxy"));
    assert!(w.s.run(Action::Observe).await.drift.is_empty());
}

/// An add-on EKS could not install fails the run for good, naming its health issues; the
/// poll does not wait on it.
#[tokio::test]
async fn a_failed_addon_is_a_terminal_error_naming_its_health_issues() {
    use aws_sdk_eks::types::{AddonHealth, AddonIssue, AddonIssueCode, AddonStatus};
    let w = World::new();
    w.converge().await;
    w.eks.edit_addon("coredns", |a| {
        a.status = Some(AddonStatus::CreateFailed);
        a.health = Some(
            AddonHealth::builder()
                .issues(
                    AddonIssue::builder()
                        .code(AddonIssueCode::InsufficientNumberOfReplicas)
                        .message("no node to run on")
                        .build(),
                )
                .build(),
        );
    });
    let err =
        w.s.try_run(Action::Ensure)
            .await
            .expect_err("failed add-on");
    assert_eq!(err.error_type, ErrorType::Terminal);
    assert!(
        err.error_message.contains("\"coredns\" is CREATE_FAILED")
            && err
                .error_message
                .contains("InsufficientNumberOfReplicas: no node to run on"),
        "{}",
        err.error_message
    );
}

#[tokio::test]
async fn gone_platform_deletes_without_a_call_and_delete_converges() {
    let w = World::new();
    assert!(w.s.run(Action::Delete).await.ready);
    assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new());

    w.converge().await;
    let out = w.s.run(Action::Delete).await;
    assert!(!out.ready, "add-ons are DELETING");
    let deletes = w.s.calls.mutating_aws();
    assert_eq!(
        deletes
            .iter()
            .filter(|c| *c == "eks:DeletePodIdentityAssociation")
            .count(),
        4
    );
    w.eks.settle();
    assert!(w.s.run(Action::Delete).await.ready);
    assert!(w.eks.addons().is_empty());
    assert!(
        w.eks.associations().is_empty(),
        "{:?}",
        w.eks.associations()
    );
    w.s.run(Action::Delete).await;
    assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new());
}
