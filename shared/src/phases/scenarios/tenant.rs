//! The tenant phase, one tenant at a time (`item: <tenant>`): its role, key, `tenant-access`
//! policy, namespace and what lives in it (on the Kubernetes double, served in process), pod
//! identity association and owners' access entry; and its offboarding. The phase loads the
//! platform's spec and status from the state table, so the world records them there first (an
//! Active platform, its cluster ACTIVE), with the store's own code.
//!
//! The tenant is the example's `reconciliation`: the one with its own KMS key.

use std::sync::Arc;

use serde_json::{json, Value};
use tenantry_kube_double::KubeDoubles;

use super::ecr::EcrDouble;
use super::eks::EksDouble;
use super::eks_access::AccessDouble;
use super::iam::IamDouble;
use super::kms::KmsDouble;
use super::s3::S3Double;
use super::store::StoreDouble;
use super::{drift_fields, example_spec, Calls, Rules};
use crate::deps::Deps;
use crate::error::{ErrorType, FunctionError};
use crate::kubernetes::{self, owner_group, OWNER_ROLE, TENANT_LABEL};
use crate::naming::{Names, TAG_TENANT};
use crate::phases::objects::object_id;
use crate::phases::outputs;
use crate::phases::tenant;
use crate::phases::{Action, PhaseInput, PhaseOutput};
use crate::policies::{ROLE_PATH, TENANT_POLICY_NAME};
use crate::spec::{PlatformSpec, TenantSpec};
use crate::store::{LifecycleState, PlatformStatus, Store, TenantRecord, TenantState};

const BOUNDARY: &str = crate::aws::LOCAL_ROLE_BOUNDARY_ARN;
const DATA_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/data";
const TENANT: &str = "reconciliation";
const ONBOARD: &str = "req-onboard";
const OFFBOARD: &str = "req-offboard";

struct World {
    calls: Calls,
    store: StoreDouble,
    deps: Deps,
    spec: PlatformSpec,
    iam: IamDouble,
    kms: KmsDouble,
    eks: EksDouble,
    access: AccessDouble,
    s3: S3Double,
    ecr: EcrDouble,
    /// The platform's VPC and its cluster security group (Fargate tenants' pod groups).
    ec2: super::ec2::Ec2Double,
    kube: Arc<KubeDoubles>,
    /// A client of the cluster's double, through the same HTTP front the phase uses.
    client: kube::Client,
    _server: tokio::task::JoinHandle<()>,
}

impl World {
    /// An Active platform (the example) with its cluster ACTIVE and nothing of the tenant yet.
    async fn new() -> World {
        World::with_spec(|_| {}).await
    }

    /// The same, with the example's spec changed by `change` first.
    async fn with_spec(change: impl FnOnce(&mut PlatformSpec)) -> World {
        let calls = Calls::default();
        let mut spec = example_spec();
        change(&mut spec);
        let eks = EksDouble::new(&calls);
        let (endpoint, kube, server) = super::active_cluster(&eks, &spec).await;
        let client = kube::Client::try_from(kube::Config::new(endpoint.parse().expect("url")))
            .expect("client");
        let mut w = World {
            store: StoreDouble::new(&calls),
            iam: IamDouble::new(&calls),
            kms: KmsDouble::new(&calls),
            access: AccessDouble::new(&calls),
            s3: S3Double::new(&calls),
            ecr: EcrDouble::new(&calls),
            ec2: super::ec2::Ec2Double::new(&calls),
            deps: Rules::default().deps(),
            calls,
            spec,
            eks,
            kube,
            client,
            _server: server,
        };
        w.deps = w.with_kms(true);
        let store = Store::from_deps(&w.deps);
        let spec = serde_json::to_value(&w.spec).expect("spec");
        store.put_spec(&w.spec.id, &spec, None).await.expect("spec");
        let mut status = PlatformStatus::new(LifecycleState::Active);
        status
            .outputs
            .insert("clusterEndpoint".into(), json!(endpoint));
        status
            .outputs
            .insert(outputs::DATA_KEY_ARN.key.into(), json!(DATA_KEY));
        status.outputs.insert(
            outputs::PRIVATE_SUBNET_IDS.key.into(),
            json!(["subnet-a", "subnet-b"]),
        );
        let (vpc, cluster_group) = w.ec2.with_network(|n| {
            let vpc = n.add_vpc("10.0.0.0/16", Vec::new());
            let req =
                aws_sdk_ec2::operation::create_security_group::CreateSecurityGroupInput::builder()
                    .group_name("eks-cluster-sg")
                    .description("EKS's cluster security group")
                    .vpc_id(&vpc)
                    .build()
                    .expect("input");
            let group = n.create_security_group(&req).expect("cluster group");
            (vpc, group.group_id().unwrap_or_default().to_owned())
        });
        status
            .outputs
            .insert(outputs::VPC_ID.key.into(), json!(vpc));
        status.outputs.insert(
            outputs::CLUSTER_SECURITY_GROUP_ID.key.into(),
            json!(cluster_group),
        );
        store
            .update_status(&w.spec.id, &status, None)
            .await
            .expect("status");
        w
    }

    /// Dependencies on every double; with KMS down (`kms` false) `CreateKey` fails.
    fn with_kms(&self, kms: bool) -> Deps {
        use aws_sdk_kms::operation::create_key::CreateKeyError;
        use aws_sdk_kms::types::error::KmsInternalException;
        let mut kms_rules = Vec::new();
        if !kms {
            let down = KmsInternalException::builder().message("down").build();
            kms_rules.push(
                aws_smithy_mocks::mock!(aws_sdk_kms::Client::create_key).then_compute_response(
                    move |_| {
                        aws_smithy_mocks::MockResponse::Error(CreateKeyError::KmsInternalException(
                            down.clone(),
                        ))
                    },
                ),
            );
        }
        kms_rules.extend(self.kms.rules());
        let mut dynamodb = self.store.rules();
        dynamodb.extend(self.store.record_rules());
        let mut eks = self.eks.rules();
        eks.extend(self.access.rules());
        let rules = Rules {
            dynamodb,
            eks,
            iam: self.iam.rules(),
            kms: kms_rules,
            s3: self.s3.rules(),
            ecr: self.ecr.rules(),
            ec2: self.ec2.rules(),
            ..Rules::default()
        };
        rules.deps().with_role_boundary(BOUNDARY)
    }

    fn tenant(&self) -> TenantSpec {
        let t = self.spec.tenants.iter().find(|t| t.name == TENANT);
        t.expect("tenant").clone()
    }

    fn names(&self) -> Names {
        Names::new(&self.spec)
    }

    /// One invocation for the tenant, as the workflow makes it; the logs are cleared first.
    async fn try_run_with(
        &self,
        deps: &Deps,
        action: Action,
        request: &str,
    ) -> Result<PhaseOutput, FunctionError> {
        self.calls.clear();
        self.kube.clear_requests();
        let input = PhaseInput {
            platform_id: self.spec.id.clone(),
            request_id: request.to_owned(),
            action,
            item: Some(TENANT.to_owned()),
            scope: None,
        };
        tenant::handle(input, deps).await
    }

    async fn run(&self, action: Action, request: &str) -> PhaseOutput {
        self.try_run_with(&self.deps, action, request)
            .await
            .unwrap_or_else(|e| panic!("{action:?}: {e}"))
    }

    async fn onboard(&self) -> PhaseOutput {
        self.run(Action::Ensure, ONBOARD).await
    }

    /// Records the tenant as an offboarding request does, with its data options.
    async fn record_offboarding(&self, retain_data: bool) {
        let mut record = TenantRecord::new(self.tenant(), TenantState::Offboarding, OFFBOARD);
        record.retain_data = retain_data;
        let store = Store::from_deps(&self.deps);
        store
            .put_tenant_record(&self.spec.id, &record, Some(1))
            .await
            .expect("record");
    }

    /// `delete` until ready (the prefix empties in batches); the AWS writes of every round.
    async fn offboard(&self) -> Vec<Vec<String>> {
        let mut rounds = Vec::new();
        for _ in 0..5 {
            let out = self.run(Action::Delete, OFFBOARD).await;
            rounds.push(self.calls.mutating_aws());
            if out.ready {
                return rounds;
            }
        }
        panic!("offboarding not done after 5 rounds: {rounds:?}");
    }

    /// The tenant's object of `kind` and `name`, as the cluster holds it.
    async fn live(&self, kind: &str, name: &str) -> Option<Value> {
        let manifest = self.manifest(kind, name);
        kubernetes::get(&self.client, &manifest).await.expect("get")
    }

    /// The tenant's object of `kind` and `name`, as the phase renders it.
    fn manifest(&self, kind: &str, name: &str) -> Value {
        kubernetes::tenant_manifests(&self.spec, &self.tenant(), None)
            .into_iter()
            .find(|m| m["kind"] == kind && m["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name}"))
    }

    fn owner(&self) -> String {
        self.tenant().owners[0].clone()
    }

    fn key(&self) -> Option<(String, super::kms::Key)> {
        self.kms.aliased(&self.names().tenant_kms_alias(TENANT))
    }
}

#[tokio::test]
async fn fresh_tenant_gets_a_bounded_role_scoped_to_its_prefix_and_key_and_an_isolated_namespace() {
    let w = World::new().await;
    let out = w.onboard().await;
    assert!(out.ready);
    let names = w.names();
    // The role: under the path, bounded, tagged, its policy naming its prefix and its key only.
    let role_name = names.tenant_role(TENANT);
    let roles = w.iam.roles();
    let role = &roles[&role_name];
    assert_eq!(role.path, ROLE_PATH);
    assert_eq!(role.boundary.as_deref(), Some(BOUNDARY));
    assert_eq!(role.tags[TAG_TENANT], TENANT);
    let (key_id, key) = w.key().expect("the tenant's key, aliased");
    let key_arn = format!("arn:aws:kms:us-east-1:{}:key/{key_id}", super::ACCOUNT);
    let policy = &role.inline[TENANT_POLICY_NAME];
    let objects = format!("arn:aws:s3:::{}/tenants/{TENANT}/*", names.bucket());
    assert!(policy.contains(&objects), "{policy}");
    assert!(policy.contains(&key_arn), "{policy}");
    assert!(!policy.contains(DATA_KEY), "{policy}");
    // The key: rotating, usable by the role.
    let tenant_out = &out.outputs[&format!("tenant/{TENANT}")];
    let role_arn = tenant_out["roleArn"].as_str().expect("role ARN");
    assert!(key.rotation);
    assert!(key.policy.contains(role_arn), "{}", key.policy);
    assert_eq!(key.tags[TAG_TENANT], TENANT);
    assert_eq!(tenant_out["keyArn"], json!(key_arn));
    // The cluster side.
    let ns = w.live("Namespace", TENANT).await.expect("namespace");
    let labels = &ns["metadata"]["labels"];
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");
    assert_eq!(labels[TENANT_LABEL], TENANT);
    let deny = w.live("NetworkPolicy", "default-deny").await.expect("deny");
    assert_eq!(deny["spec"]["podSelector"], json!({}));
    assert_eq!(deny["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    let quota = w.live("ResourceQuota", "quota").await.expect("quota");
    assert_eq!(quota["spec"]["hard"]["requests.cpu"], "16");
    let default = w.live("ServiceAccount", "default").await.expect("sa");
    assert_eq!(default["automountServiceAccountToken"], false);
    let binding = w.live("RoleBinding", OWNER_ROLE).await.expect("binding");
    assert_eq!(binding["subjects"][0]["name"], owner_group(TENANT));
    // Pod Identity for its workload account, and the owner's entry with its group, no policy.
    let associations = w.eks.associations();
    let a = associations.values().next().expect("association");
    assert_eq!(
        (a.namespace(), a.service_account()),
        (Some(TENANT), Some("workload"))
    );
    assert_eq!(a.role_arn(), Some(role_arn));
    let entries = w.access.entries();
    let entry = &entries[&w.owner()];
    assert_eq!(entry.groups, [owner_group(TENANT)]);
    assert!(entry.policies.is_empty());
}

#[tokio::test]
async fn converged_tenant_costs_no_write_and_observe_is_silent() {
    let w = World::new().await;
    w.onboard().await;
    let again = w.onboard().await;
    assert_eq!((again.ready, again.changes), (true, 0));
    assert_eq!(w.calls.mutating_aws(), Vec::<String>::new());
    assert_eq!(w.kube.writes(), Vec::<String>::new());
    let observed = w.run(Action::Observe, ONBOARD).await;
    assert!(observed.drift.is_empty(), "{:?}", drift_fields(&observed));
    assert_eq!(w.calls.mutating(), Vec::<String>::new());
    assert_eq!(w.kube.writes(), Vec::<String>::new());
}

#[tokio::test]
async fn a_widened_policy_and_a_deleted_default_deny_are_named_then_put_back() {
    let w = World::new().await;
    w.onboard().await;
    let role = w.names().tenant_role(TENANT);
    let star = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "s3:*", "Resource": "*"}]});
    w.iam.edit(&role, |r| {
        r.inline
            .insert(TENANT_POLICY_NAME.to_owned(), star.to_string());
    });
    let deny = w.manifest("NetworkPolicy", "default-deny");
    kubernetes::delete(&w.client, &deny)
        .await
        .expect("out of band");

    let observed = w.run(Action::Observe, ONBOARD).await;
    let mut found: Vec<(String, String)> = drift_fields(&observed)
        .into_iter()
        .map(|(r, f)| (r, f.split('/').next().unwrap().to_owned()))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("iam:role/".to_owned() + &role, "inlinePolicy".to_owned()),
            (format!("k8s:{}", object_id(&deny)), "exists".to_owned()),
        ]
    );
    assert_eq!(w.calls.mutating(), Vec::<String>::new(), "observe wrote");
    assert_eq!(w.kube.writes(), Vec::<String>::new(), "observe wrote");

    w.onboard().await;
    assert_eq!(w.calls.mutating_aws(), ["iam:PutRolePolicy"]);
    assert_eq!(w.kube.writes().len(), 1, "{:?}", w.kube.writes());
    assert!(w.live("NetworkPolicy", "default-deny").await.is_some());
    assert!(!w.iam.roles()[&role].inline[TENANT_POLICY_NAME].contains("s3:*"));
    assert!(w.run(Action::Observe, ONBOARD).await.drift.is_empty());
}

/// An object recorded for the tenant that its request no longer renders (an `allowFrom` rule
/// taken out): `observe` names it without writing, `ensure` deletes it and forgets its record.
#[tokio::test]
async fn an_object_the_request_no_longer_asks_for_is_named_then_removed() {
    let w = World::new().await;
    w.onboard().await;
    let mut dropped = w.manifest("NetworkPolicy", "default-deny");
    dropped["metadata"]["name"] = json!("allow-from-ledger");
    kubernetes::apply(&w.client, &dropped).await.expect("apply");
    let id = object_id(&dropped);
    let mut record = crate::store::ResourceRecord::new(
        crate::resources::Kind::NetworkPolicy,
        id.clone(),
        crate::plan::Phase::Tenants.as_str(),
    );
    record.tenant = Some(TENANT.to_owned());
    let store = Store::from_deps(&w.deps);
    store
        .put_resource(&w.spec.id, &record)
        .await
        .expect("record");

    let observed = w.run(Action::Observe, ONBOARD).await;
    assert_eq!(
        drift_fields(&observed),
        [(format!("k8s:{id}"), "exists".to_owned())]
    );
    assert_eq!(w.kube.writes(), Vec::<String>::new(), "observe wrote");

    let out = w.onboard().await;
    assert_eq!((out.ready, out.changes), (true, 1), "{:?}", w.kube.writes());
    assert!(w.live("NetworkPolicy", "default-deny").await.is_some());
    let gone = kubernetes::get(&w.client, &dropped).await.expect("get");
    assert!(gone.is_none(), "{gone:?}");
    let recorded = store.list_resources(&w.spec.id).await.expect("list");
    assert!(recorded.iter().all(|r| r.id != id), "still recorded");
    assert!(w.run(Action::Observe, ONBOARD).await.drift.is_empty());
}

/// A run that crashed after creating the role (`CreateKey` failed): no key, policy or namespace.
#[tokio::test]
async fn half_created_tenant_is_completed_without_a_second_role() {
    let w = World::new().await;
    let no_kms = w.with_kms(false);
    let crashed = w.try_run_with(&no_kms, Action::Ensure, ONBOARD).await;
    let err = crashed.expect_err("KMS is down");
    assert!(
        err.error_message.contains("CreateKey"),
        "{}",
        err.error_message
    );
    let role = w.names().tenant_role(TENANT);
    assert!(w.iam.roles()[&role].inline.is_empty(), "created bare");
    assert!(w.live("Namespace", TENANT).await.is_none());

    let out = w.onboard().await;
    assert!(out.ready);
    let writes = w.calls.mutating_aws();
    assert!(!writes.contains(&"iam:CreateRole".to_owned()), "{writes:?}");
    assert_eq!(writes.iter().filter(|c| *c == "kms:CreateKey").count(), 1);
    assert!(
        writes.contains(&"iam:PutRolePolicy".to_owned()),
        "{writes:?}"
    );
    assert_eq!(w.iam.roles().len(), 1);
    assert_eq!(w.kms.keys().len(), 1);
    assert!(w.live("Namespace", TENANT).await.is_some());
    assert_eq!(w.onboard().await.changes, 0);
}

#[tokio::test]
async fn gone_tenant_loses_its_role_namespace_data_and_key_and_delete_converges() {
    let w = World::new().await;
    w.onboard().await;
    let bucket = w.names().bucket();
    let prefix = w.tenant().effective_s3_prefix();
    w.s3.put(&bucket, &format!("{prefix}ledger.csv"));
    w.s3.put(&bucket, "tenants/ledger/keep.csv");
    w.record_offboarding(false).await;

    w.offboard().await;
    assert!(w.iam.roles().is_empty(), "{:?}", w.iam.roles().keys());
    assert!(w.live("Namespace", TENANT).await.is_none());
    assert!(w.eks.associations().is_empty());
    assert!(!w.access.entries().contains_key(&w.owner()));
    assert!(w.s3.keys(&bucket, &prefix).is_empty());
    assert_eq!(
        w.s3.keys(&bucket, "tenants/ledger/"),
        ["tenants/ledger/keep.csv"]
    );
    let (_, key) = w
        .key()
        .expect("the alias stays, for a return within the window");
    assert_eq!(key.state, aws_sdk_kms::types::KeyState::PendingDeletion);
    assert!(w.store.inventory().is_empty(), "{:?}", w.store.inventory());

    w.run(Action::Delete, OFFBOARD).await;
    assert_eq!(w.calls.mutating_aws(), Vec::<String>::new());
    assert_eq!(w.kube.writes(), Vec::<String>::new());
}

#[tokio::test]
async fn gone_tenant_with_retained_data_keeps_its_prefix_and_key() {
    let w = World::new().await;
    w.onboard().await;
    let bucket = w.names().bucket();
    let prefix = w.tenant().effective_s3_prefix();
    w.s3.put(&bucket, &format!("{prefix}ledger.csv"));
    w.record_offboarding(true).await;

    let rounds = w.offboard().await;
    assert!(rounds
        .concat()
        .iter()
        .all(|c| !c.starts_with("s3:") && !c.starts_with("kms:")));
    assert!(w.iam.roles().is_empty());
    assert_eq!(w.s3.keys(&bucket, &prefix).len(), 1);
    let (_, key) = w.key().expect("key");
    assert_eq!(key.state, aws_sdk_kms::types::KeyState::Enabled);
}

/// A namespace of the tenant's name that Tenantry did not make: never adopted, never deleted.
#[tokio::test]
async fn a_foreign_namespace_of_the_tenants_name_is_refused_and_left_alone() {
    let w = World::new().await;
    let theirs = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": TENANT, "labels": {"team": "someone-else"}}});
    kubernetes::apply(&w.client, &theirs).await.expect("theirs");

    let err = w.try_run_with(&w.deps, Action::Ensure, ONBOARD).await;
    let err = err.expect_err("adopted");
    assert_eq!(err.error_type, ErrorType::InvalidRequest);
    assert!(
        err.error_message.contains("did not create it"),
        "{}",
        err.error_message
    );
    assert_eq!(w.calls.mutating_aws(), Vec::<String>::new());
    assert_eq!(w.kube.writes(), Vec::<String>::new());

    w.record_offboarding(false).await;
    w.offboard().await;
    let live = w.live("Namespace", TENANT).await.expect("left in place");
    assert_eq!(live["metadata"]["labels"]["team"], "someone-else");
    assert!(!w.kube.writes().iter().any(|r| r.starts_with("DELETE ")));
}

// --- the tenant's container image repositories (`ecr:repository`) ------------------------------

const REPOSITORY: &str = "recon-api";

/// The world with the tenant asking for one repository of mutable tags (so that the default,
/// immutable, is a change a hand can make).
async fn with_repository() -> World {
    World::with_spec(|spec| {
        let t = spec.tenants.iter_mut().find(|t| t.name == TENANT);
        t.expect("tenant").repositories = vec![crate::spec::RepositorySpec {
            name: REPOSITORY.into(),
            mutable_tags: true,
            keep_images: 10,
        }];
    })
    .await
}

impl World {
    fn repository(&self) -> String {
        self.names().tenant_repository(TENANT, REPOSITORY)
    }
}

#[tokio::test]
async fn fresh_repository_is_encrypted_with_the_tenants_key_scanned_and_pulled_by_the_nodes() {
    let w = with_repository().await;
    let out = w.onboard().await;
    let name = w.repository();
    let repo = &w.ecr.repositories()[&name];
    let (key_id, _) = w.key().expect("the tenant's key");
    let key_arn = format!("arn:aws:kms:us-east-1:{}:key/{key_id}", super::ACCOUNT);
    assert_eq!(repo.kms_key.as_deref(), Some(key_arn.as_str()));
    assert!(repo.scan_on_push && repo.mutable_tags);
    assert_eq!(repo.tags[TAG_TENANT], TENANT);
    let lifecycle: Value = serde_json::from_str(repo.lifecycle.as_deref().expect("lifecycle"))
        .expect("lifecycle JSON");
    assert_eq!(lifecycle["rules"][0]["selection"]["countNumber"], 10);
    // The policy allows two principals: the nodes pull, the tenant's role pushes too; every
    // other principal is denied the push.
    let policy: Value =
        serde_json::from_str(repo.policy.as_deref().expect("policy")).expect("policy JSON");
    let tenant_out = &out.outputs[&format!("tenant/{TENANT}")];
    let role_arn = tenant_out["roleArn"].as_str().expect("role ARN");
    let node = format!(
        "arn:aws:iam::{}:role{ROLE_PATH}{}",
        super::ACCOUNT,
        w.names().role(crate::naming::ROLE_NODE)
    );
    let principals: Vec<&Value> = policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .map(|s| &s["Principal"]["AWS"])
        .collect();
    assert_eq!(principals, [&json!(node), &json!(role_arn)]);
    let deny = &policy["Statement"][2];
    assert_eq!(
        (&deny["Effect"], &deny["Principal"]),
        (&json!("Deny"), &json!("*"))
    );
    assert_eq!(
        deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"],
        json!(role_arn)
    );
    assert_eq!(
        tenant_out["repositories"][REPOSITORY],
        json!(super::ecr::uri(&name))
    );
    // The role may push to its own path only.
    let role = &w.iam.roles()[&w.names().tenant_role(TENANT)];
    let own = format!("repository/{}*", w.names().tenant_repository_prefix(TENANT));
    assert!(role.inline[TENANT_POLICY_NAME].contains(&own));

    let again = w.onboard().await;
    assert_eq!((again.ready, again.changes), (true, 0));
    assert_eq!(w.calls.mutating_aws(), Vec::<String>::new());
}

#[tokio::test]
async fn a_repository_changed_by_hand_is_named_then_put_back() {
    let w = with_repository().await;
    w.onboard().await;
    let name = w.repository();
    w.ecr.edit(&name, |r| {
        r.mutable_tags = false;
        r.lifecycle = None;
        r.tags.insert("added-by-hand".into(), "x".into());
    });
    let observed = w.run(Action::Observe, ONBOARD).await;
    let resource = format!("ecr:repository/{name}");
    assert_eq!(
        drift_fields(&observed),
        [
            (resource.clone(), "imageTagMutability".to_owned()),
            (resource, "lifecyclePolicy".to_owned()),
        ],
        "a tag someone else added is not drift"
    );
    assert_eq!(w.calls.mutating(), Vec::<String>::new(), "observe wrote");

    w.onboard().await;
    assert_eq!(
        w.calls.mutating_aws(),
        ["ecr:PutImageTagMutability", "ecr:PutLifecyclePolicy"]
    );
    assert!(w.ecr.repositories()[&name].mutable_tags);
    assert!(w.run(Action::Observe, ONBOARD).await.drift.is_empty());
}

#[tokio::test]
async fn a_foreign_repository_of_the_name_is_refused_and_left_alone() {
    let w = with_repository().await;
    let foreign = super::ecr::Repository {
        mutable_tags: false,
        scan_on_push: false,
        kms_key: None,
        lifecycle: None,
        policy: None,
        tags: [("team".to_owned(), "other".to_owned())].into(),
    };
    w.ecr.put(&w.repository(), foreign.clone());
    let err = w
        .try_run_with(&w.deps, Action::Ensure, ONBOARD)
        .await
        .expect_err("refused");
    assert_eq!(err.error_type, ErrorType::Terminal);
    assert!(
        err.error_message.contains("refusing to adopt"),
        "{}",
        err.error_message
    );
    assert_eq!(w.ecr.repositories()[&w.repository()], foreign);
}

#[tokio::test]
async fn gone_tenant_loses_its_repository_unless_its_data_is_retained() {
    for retain in [false, true] {
        let w = with_repository().await;
        w.onboard().await;
        w.record_offboarding(retain).await;
        w.offboard().await;
        let kept = w.ecr.repositories().contains_key(&w.repository());
        assert_eq!(kept, retain, "retainData {retain}");
        let store = Store::from_deps(&w.deps);
        let records = store.list_resources(&w.spec.id).await.expect("list");
        assert!(
            records.iter().all(|r| r.resource_type != "ecr:repository"),
            "retainData {retain}: a kept repository is handed over, out of the inventory"
        );
    }
}

/// The ingress rules of the cluster security group, one per peer.
fn cluster_ingress(w: &World) -> usize {
    let net = w.ec2.network();
    let cluster = net
        .groups
        .values()
        .find(|g| g.group_name() == Some("eks-cluster-sg"));
    cluster.map_or(0, |g| {
        g.ip_permissions()
            .iter()
            .map(|p| p.user_id_group_pairs().len() + p.ip_ranges().len())
            .sum()
    })
}

/// A tenant asking for Fargate on a platform that made no pod execution role: onboarding makes
/// the role, waits while another profile of the cluster is in flight (EKS allows one), then
/// creates the tenant's profile on its own namespace only; its pods get their own security
/// group through a SecurityGroupPolicy; offboarding deletes the profile first, then the group.
#[tokio::test]
async fn a_fargate_tenant_waits_its_turn_gets_its_own_namespace_only_and_goes_first() {
    use aws_sdk_eks::types::{FargateProfile, FargateProfileStatus};
    let w = World::with_spec(|s| {
        let t = s.tenants.iter_mut().find(|t| t.name == TENANT).unwrap();
        t.fargate = Some(serde_json::from_value(json!({})).unwrap());
    })
    .await;
    let platform_profile = w.names().fargate_profile("jobs");
    w.eks.add_fargate_profile(
        FargateProfile::builder()
            .fargate_profile_name(&platform_profile)
            .tags(crate::naming::TAG_PLATFORM, &w.spec.id)
            .status(FargateProfileStatus::Creating)
            .build(),
    );
    let out = w.onboard().await;
    assert!(!out.ready, "waits for the profile in flight");
    assert!(
        !w.calls
            .mutating_aws()
            .iter()
            .any(|c| c == "eks:CreateFargateProfile"),
        "{:?}",
        w.calls.mutating_aws()
    );
    let role = w.names().role(crate::naming::ROLE_FARGATE_PODS);
    assert!(
        w.iam.roles().contains_key(&role),
        "the pod execution role is made"
    );
    w.eks.settle();
    // The onboarding poll goes on with the creation once the cluster is free.
    let out = w.run(Action::Ensure, ONBOARD).await;
    assert!(!out.ready);
    assert_eq!(
        w.calls
            .mutating_aws()
            .iter()
            .filter(|c| *c == "eks:CreateFargateProfile")
            .count(),
        1
    );
    w.eks.settle();
    assert!(w.run(Action::Ensure, ONBOARD).await.ready);
    let name = w.names().tenant_fargate_profile(TENANT);
    let profile = w.eks.fargate_profiles()[&name].clone();
    assert_eq!(profile.selectors().len(), 1);
    assert_eq!(profile.selectors()[0].namespace(), Some(TENANT));
    assert_eq!(profile.subnets(), ["subnet-a", "subnet-b"]);
    assert!(profile
        .pod_execution_role_arn()
        .is_some_and(|r| r.ends_with(&format!("{ROLE_PATH}{role}"))));
    assert_eq!(
        profile
            .tags()
            .and_then(|t| t.get(TAG_TENANT))
            .map(String::as_str),
        Some(TENANT)
    );
    // Its pods' only security group, given to every pod of the namespace by its policy.
    let group_name = w
        .names()
        .security_group(&crate::resources::pod_security_group::purpose(TENANT));
    let group = w
        .ec2
        .network()
        .groups
        .values()
        .find(|g| g.group_name() == Some(group_name.as_str()))
        .cloned()
        .expect("the tenant's pod security group");
    let group_id = group.group_id().unwrap_or_default().to_owned();
    let egress: Vec<_> = group
        .ip_permissions_egress()
        .iter()
        .flat_map(|p| {
            p.ip_ranges()
                .iter()
                .map(move |r| (p.ip_protocol(), p.to_port(), r.cidr_ip()))
        })
        .collect();
    assert_eq!(
        egress,
        [(Some("tcp"), Some(443), Some("0.0.0.0/0"))],
        "no allow-all egress left"
    );
    let policy = kubernetes::security_group_policy(&w.spec, &w.tenant(), "");
    let live = kubernetes::get(&w.client, &policy).await.unwrap();
    assert_eq!(
        live.expect("SecurityGroupPolicy")["spec"]["securityGroups"]["groupIds"],
        json!([group_id])
    );
    // The cluster group lets it reach the endpoint and CoreDNS (TCP 443, UDP and TCP 53).
    assert_eq!(cluster_ingress(&w), 3);
    // Offboarding: the profile goes first, one poll at a time, and nothing of it is left.
    w.record_offboarding(false).await;
    let mut deleted = false;
    for _ in 0..6 {
        let out = w.run(Action::Delete, OFFBOARD).await;
        deleted |= w
            .calls
            .mutating_aws()
            .iter()
            .any(|c| c == "eks:DeleteFargateProfile");
        if out.ready {
            break;
        }
        w.eks.settle();
    }
    assert!(deleted);
    assert!(!w.eks.fargate_profiles().contains_key(&name));
    let net = w.ec2.network();
    assert!(!net.groups.contains_key(&group_id), "the pod group is gone");
    assert_eq!(
        cluster_ingress(&w),
        0,
        "its rules in the cluster group are gone"
    );
}

/// The tenant's pod security group, if it exists.
fn pod_group(w: &World) -> Option<aws_sdk_ec2::types::SecurityGroup> {
    let name = w
        .names()
        .security_group(&crate::resources::pod_security_group::purpose(TENANT));
    let net = w.ec2.network();
    let found = net
        .groups
        .values()
        .find(|g| g.group_name() == Some(name.as_str()));
    found.cloned()
}

/// A tenant that leaves Fargate (its request no longer asks for it), the platform's only one:
/// its profile goes, then its pod security group, and the cluster group keeps none of its rules.
#[tokio::test]
async fn a_tenant_leaving_fargate_loses_its_profile_and_its_pod_group() {
    let w = World::with_spec(|s| {
        let t = s.tenants.iter_mut().find(|t| t.name == TENANT).unwrap();
        t.fargate = Some(serde_json::from_value(json!({})).unwrap());
    })
    .await;
    let mut ready = false;
    for _ in 0..4 {
        ready = w.onboard().await.ready;
        if ready {
            break;
        }
        w.eks.settle();
    }
    assert!(ready, "onboarded on Fargate");
    assert!(pod_group(&w).is_some());
    assert_eq!(cluster_ingress(&w), 3);

    let mut leaving = w.tenant();
    leaving.fargate = None;
    let store = Store::from_deps(&w.deps);
    let current = store
        .get_tenant_record(&w.spec.id, TENANT)
        .await
        .expect("read")
        .expect("record");
    let record = TenantRecord::new(leaving, TenantState::Onboarding, "req-update");
    store
        .put_tenant_record(&w.spec.id, &record, Some(current.version))
        .await
        .expect("record");
    let mut ready = false;
    for _ in 0..6 {
        ready = w.run(Action::Ensure, "req-update").await.ready;
        if ready {
            break;
        }
        w.eks.settle();
    }
    assert!(ready, "converged off Fargate");
    let profile = w.names().tenant_fargate_profile(TENANT);
    assert!(!w.eks.fargate_profiles().contains_key(&profile));
    assert!(pod_group(&w).is_none(), "the pod group is gone");
    assert_eq!(
        cluster_ingress(&w),
        0,
        "its rules in the cluster group are gone"
    );
    let recorded = store.list_resources(&w.spec.id).await.expect("list");
    assert!(
        recorded
            .iter()
            .all(|r| r.resource_type != "ec2:security-group"
                && r.resource_type != "k8s:security-group-policy"),
        "still recorded"
    );
}
