//! The access phase: the admin principals' access entries with the cluster-admin policy, no
//! policy on a stranger's entry, the OIDC identity provider, and its group bindings in the
//! cluster (the Kubernetes double, served in process).

use std::sync::Arc;

use aws_sdk_eks::types::{AccessScope, AccessScopeType, ClusterStatus};
use serde_json::json;
use tenantry_kube_double::KubeDoubles;

use super::eks::EksDouble;
use super::eks_access::AccessDouble;
use super::{drift_fields, Calls, Rules, Stage};
use crate::naming::{Names, TAG_PLATFORM};
use crate::phases::outputs;
use crate::phases::Action;
use crate::plan::Phase;

const ADMIN: &str = "arn:aws:iam::111122223333:role/platform-admin";
const CREATOR: &str = "arn:aws:iam::123456789012:role/tenantry-cluster";
const STRANGER: &str = "arn:aws:iam::123456789012:role/someone";
const ADMIN_POLICY: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy";

fn cluster_scope() -> AccessScope {
    AccessScope::builder()
        .r#type(AccessScopeType::Cluster)
        .build()
}

struct World {
    s: Stage,
    eks: EksDouble,
    access: AccessDouble,
    kube: Arc<KubeDoubles>,
    _server: tokio::task::JoinHandle<()>,
}

impl World {
    /// The access phase of the example: its cluster ACTIVE, the creator's admin entry (which
    /// EKS makes with the cluster) in place and recorded by the cluster phase.
    async fn new() -> World {
        let calls = Calls::default();
        let eks = EksDouble::new(&calls);
        let access = AccessDouble::new(&calls);
        let (endpoint, kube, server) = super::active_cluster(&eks, &super::example_spec()).await;
        access.edit_entry(CREATOR, |e| {
            e.policies.insert(ADMIN_POLICY.to_owned(), cluster_scope());
        });
        let outputs = [
            ("clusterEndpoint", json!(endpoint)),
            (outputs::CLUSTER_CREATOR.key, json!(CREATOR)),
        ];
        let mut rules = eks.rules();
        rules.extend(access.rules());
        let rules = Rules {
            eks: rules,
            ..Rules::default()
        };
        World {
            s: Stage::new(Phase::Access, &calls, rules, &outputs),
            eks,
            access,
            kube,
            _server: server,
        }
    }

    async fn converge(&self) -> Vec<Vec<String>> {
        self.s.converge(|| self.access.settle()).await
    }

    fn admin_policies(&self, principal: &str) -> Vec<String> {
        self.access
            .entries()
            .get(principal)
            .map(|e| e.policies.keys().cloned().collect())
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn fresh_cluster_gets_the_admin_entry_the_provider_and_its_bindings() {
    let w = World::new().await;
    let rounds = w.converge().await;
    assert_eq!(
        rounds[0],
        [
            "eks:CreateAccessEntry",
            "eks:AssociateAccessPolicy",
            "eks:AssociateIdentityProviderConfig"
        ]
    );
    assert!(rounds[1..].iter().all(Vec::is_empty), "{rounds:?}");
    let entries = w.access.entries();
    assert_eq!(entries[ADMIN].tags[TAG_PLATFORM], w.s.spec.id);
    assert_eq!(w.admin_policies(ADMIN), [ADMIN_POLICY]);
    assert_eq!(
        w.admin_policies(CREATOR),
        [ADMIN_POLICY],
        "the creator kept"
    );
    let providers = w.access.providers();
    let azure = &providers["azure-ad"];
    assert_eq!(azure.groups_prefix(), Some("aad:"));
    // One ClusterRoleBinding per group mapping, applied once.
    let bindings: Vec<String> = w
        .kube
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("PATCH ") && r.contains("clusterrolebindings"))
        .collect();
    assert_eq!(bindings.len(), 2, "{bindings:#?}");
}

#[tokio::test]
async fn converged_cluster_costs_no_write_and_observe_is_silent() {
    let w = World::new().await;
    w.converge().await;
    w.kube.clear_requests();
    let again = w.s.run(Action::Ensure).await;
    assert_eq!((again.ready, again.changes), (true, 0));
    assert!(w.s.calls.mutating_aws().is_empty());
    assert_eq!(w.kube.writes(), Vec::<String>::new());
    let observed = w.s.run(Action::Observe).await;
    assert!(observed.drift.is_empty(), "{:?}", drift_fields(&observed));
    assert!(w.s.calls.mutating_aws().is_empty());
    assert_eq!(w.kube.writes(), Vec::<String>::new());
}

#[tokio::test]
async fn a_removed_admin_policy_and_a_strangers_grant_are_named_then_repaired() {
    let w = World::new().await;
    w.converge().await;
    w.access.edit_entry(ADMIN, |e| e.policies.clear());
    w.access.edit_entry(STRANGER, |e| {
        e.policies.insert(ADMIN_POLICY.to_owned(), cluster_scope());
    });
    let observed = w.s.run(Action::Observe).await;
    assert_eq!(
        drift_fields(&observed),
        [
            (
                format!("eks:access-entry/{ADMIN}"),
                "accessPolicies".to_owned()
            ),
            (
                format!("eks:access-entry/{STRANGER}"),
                "accessPolicies".to_owned()
            ),
        ]
    );
    assert!(w.s.calls.mutating_aws().is_empty(), "observe wrote");

    let repaired = w.s.run(Action::Ensure).await;
    let mut writes = w.s.calls.mutating_aws();
    writes.sort();
    assert_eq!(
        writes,
        ["eks:AssociateAccessPolicy", "eks:DisassociateAccessPolicy"]
    );
    assert_eq!(repaired.changes, 2);
    assert_eq!(w.admin_policies(ADMIN), [ADMIN_POLICY]);
    assert!(w.admin_policies(STRANGER).is_empty(), "disarmed");
    assert!(
        w.access.entries().contains_key(STRANGER),
        "the entry itself stays"
    );
    assert_eq!(
        w.admin_policies(CREATOR),
        [ADMIN_POLICY],
        "the creator untouched"
    );
}

#[tokio::test]
async fn a_changed_provider_is_replaced_by_disassociating_first() {
    let w = World::new().await;
    w.converge().await;
    w.access
        .edit_provider("azure-ad", |p| p.groups_prefix = Some("evil:".into()));
    let observed = w.s.run(Action::Observe).await;
    assert_eq!(
        drift_fields(&observed),
        [(
            "eks:identity-provider-config/azure-ad".to_owned(),
            "oidc".to_owned()
        )]
    );
    let rounds = w.converge().await;
    assert_eq!(rounds[0], ["eks:DisassociateIdentityProviderConfig"]);
    assert_eq!(rounds[1], ["eks:AssociateIdentityProviderConfig"]);
    assert_eq!(
        w.access.providers()["azure-ad"].groups_prefix(),
        Some("aad:")
    );
}

#[tokio::test]
async fn an_entry_created_before_a_crash_only_gets_its_policy() {
    let w = World::new().await;
    // A run that crashed between CreateAccessEntry and AssociateAccessPolicy.
    let tags = crate::naming::tags(&w.s.spec, None, crate::phases::access::COMPONENT);
    w.access
        .edit_entry(ADMIN, |e| e.tags = tags.into_iter().collect());
    w.s.run(Action::Ensure).await;
    assert_eq!(
        w.s.calls.mutating_aws(),
        [
            "eks:AssociateAccessPolicy",
            "eks:AssociateIdentityProviderConfig"
        ]
    );
    assert_eq!(w.admin_policies(ADMIN), [ADMIN_POLICY]);
}

#[tokio::test]
async fn gone_cluster_deletes_without_a_call_and_delete_converges() {
    let w = World::new().await;
    w.converge().await;
    let cluster = Names::new(&w.s.spec).cluster();
    w.eks
        .edit(&cluster, |c| c.status = Some(ClusterStatus::Deleting));
    w.eks.settle();
    w.kube.clear_requests();
    let out = w.s.run(Action::Delete).await;
    assert!(out.ready);
    assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new());
    assert_eq!(w.kube.requests(), Vec::<String>::new());
    assert!(w.s.store.inventory().is_empty());
}

#[tokio::test]
async fn delete_removes_bindings_provider_and_entries_but_not_the_creators() {
    let w = World::new().await;
    w.converge().await;
    let rounds = {
        let mut rounds = Vec::new();
        for _ in 0..5 {
            let out = w.s.run(Action::Delete).await;
            rounds.push(w.s.calls.mutating_aws());
            if out.ready {
                break;
            }
            w.access.settle();
        }
        rounds
    };
    assert!(rounds
        .concat()
        .contains(&"eks:DeleteAccessEntry".to_owned()));
    assert!(w.access.providers().is_empty());
    let entries = w.access.entries();
    assert!(!entries.contains_key(ADMIN));
    assert!(
        entries.contains_key(CREATOR),
        "the creator's entry is EKS's"
    );
    assert!(w.s.store.inventory().is_empty());
}
