//! The cluster phase: the control-plane log group, then the private, encrypted EKS cluster with
//! every log type, API authentication and deletion protection; one update at a time.

use aws_sdk_eks::types::{LogSetup, LogType, Logging};
use serde_json::json;

use super::eks::{EksDouble, ENDPOINT, ISSUER};
use super::logs::LogsDouble;
use super::{drift_fields, Calls, Rules, Stage};
use crate::error::ErrorType;
use crate::naming::{Names, TAG_PLATFORM};
use crate::phases::outputs;
use crate::phases::Action;
use crate::plan::Phase;
use crate::resources::Kind;

const SECRETS_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/secrets";
const LOGS_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/logs";

struct World {
    s: Stage,
    eks: EksDouble,
    logs: LogsDouble,
}

impl World {
    /// The cluster phase with the earlier phases' outputs recorded.
    fn new() -> World {
        let calls = Calls::default();
        let eks = EksDouble::new(&calls);
        let logs = LogsDouble::new(&calls);
        let rules = Rules {
            eks: eks.rules(),
            logs: logs.rules(),
            ..Rules::default()
        };
        let outputs = [
            (
                outputs::CLUSTER_ROLE_ARN.key,
                json!("arn:aws:iam::123456789012:role/tenantry/c"),
            ),
            (
                outputs::PRIVATE_SUBNET_IDS.key,
                json!(["subnet-a", "subnet-b", "subnet-c"]),
            ),
            (outputs::SECRETS_KEY_ARN.key, json!(SECRETS_KEY)),
            (outputs::LOGS_KEY_ARN.key, json!(LOGS_KEY)),
        ];
        World {
            s: Stage::new(Phase::Cluster, &calls, rules, &outputs),
            eks,
            logs,
        }
    }

    async fn converge(&self) -> Vec<Vec<String>> {
        self.s.converge(|| self.eks.settle()).await
    }

    fn name(&self) -> String {
        Names::new(&self.s.spec).cluster()
    }

    fn log_group(&self) -> String {
        Names::new(&self.s.spec).cluster_log_group()
    }
}

#[tokio::test]
async fn fresh_platform_gets_a_private_encrypted_logged_cluster() {
    let w = World::new();
    let rounds = w.converge().await;
    assert_eq!(
        rounds,
        [
            vec![
                "logs:CreateLogGroup",
                "logs:PutRetentionPolicy",
                "eks:CreateCluster"
            ],
            vec![],
        ]
    );
    let group = &w.logs.groups()[&w.log_group()];
    assert_eq!(group.retention, Some(365));
    assert_eq!(group.kms_key.as_deref(), Some(LOGS_KEY));
    assert_eq!(group.tags.get(TAG_PLATFORM), Some(&w.s.spec.id));

    let c = w.eks.cluster(&w.name()).expect("cluster");
    let vpc = c.resources_vpc_config().expect("vpc");
    assert!(vpc.endpoint_private_access() && !vpc.endpoint_public_access());
    let logged: Vec<_> = c.logging().unwrap().cluster_logging()[0].types().to_vec();
    assert_eq!(logged.len(), 5, "{logged:?}");
    let key = c.encryption_config()[0]
        .provider()
        .and_then(|p| p.key_arn());
    assert_eq!(key, Some(SECRETS_KEY));
    assert_eq!(
        c.access_config().and_then(|a| a.authentication_mode()),
        Some(&aws_sdk_eks::types::AuthenticationMode::Api)
    );
    assert_eq!(c.deletion_protection(), Some(true));
    assert_eq!(
        c.tags().and_then(|t| t.get(TAG_PLATFORM)),
        Some(&w.s.spec.id)
    );

    let out = w.s.run(Action::Ensure).await;
    assert_eq!(out.outputs["clusterEndpoint"], json!(ENDPOINT));
    assert_eq!(out.outputs["oidcIssuer"], json!(ISSUER));
    assert!(w.s.recorded(Kind::Cluster, &w.name()));
    assert!(w.s.recorded(Kind::LogGroup, &w.log_group()));
}

#[tokio::test]
async fn converged_platform_costs_no_mutating_call() {
    let w = World::new();
    w.converge().await;
    let out = w.s.run(Action::Ensure).await;
    assert!(out.ready);
    assert_eq!(out.changes, 0);
    assert_eq!(w.s.calls.mutating(), ["dynamodb:UpdateItem(phase)"]);
    let observed = w.s.run(Action::Observe).await;
    assert!(observed.drift.is_empty(), "{:?}", observed.drift);
    assert_eq!(w.s.calls.mutating(), Vec::<String>::new());
}

#[tokio::test]
async fn opened_endpoint_dropped_log_type_and_short_retention_are_named_then_repaired() {
    let w = World::new();
    w.converge().await;
    w.eks.edit(&w.name(), |c| {
        let vpc = c.resources_vpc_config.as_mut().unwrap();
        vpc.endpoint_public_access = true;
        vpc.public_access_cidrs = Some(vec!["0.0.0.0/0".to_owned()]);
        let only_api = LogSetup::builder()
            .enabled(true)
            .types(LogType::Api)
            .build();
        c.logging = Some(Logging::builder().cluster_logging(only_api).build());
    });
    w.logs.edit(&w.log_group(), |g| {
        g.retention = Some(1);
        g.kms_key = None;
    });

    let observed = w.s.run(Action::Observe).await;
    let cluster = format!("eks:cluster/{}", w.name());
    let group = format!("logs:log-group/{}", w.log_group());
    assert_eq!(
        drift_fields(&observed),
        [
            (cluster.clone(), "endpointAccess".to_owned()),
            (cluster, "logTypes".to_owned()),
            (group.clone(), "kmsKeyId".to_owned()),
            (group, "retentionInDays".to_owned()),
        ]
    );
    assert_eq!(w.s.calls.mutating(), Vec::<String>::new(), "observe wrote");

    // One cluster update at a time; each waits for the one before.
    let rounds = w.converge().await;
    assert_eq!(
        rounds,
        [
            vec![
                "logs:PutRetentionPolicy",
                "logs:AssociateKmsKey",
                "eks:UpdateClusterConfig"
            ],
            vec!["eks:UpdateClusterConfig"],
            vec![],
        ]
    );
    assert!(w.s.run(Action::Observe).await.drift.is_empty());
}

#[tokio::test]
async fn an_older_cluster_is_upgraded_one_minor_version_at_a_time_and_never_downgraded() {
    let w = World::new();
    w.converge().await;
    w.eks
        .edit(&w.name(), |c| c.version = Some("1.33".to_owned()));
    let rounds = w.converge().await;
    assert_eq!(
        rounds,
        [
            vec!["eks:UpdateClusterVersion"],
            vec!["eks:UpdateClusterVersion"],
            vec![]
        ]
    );
    assert_eq!(w.eks.cluster(&w.name()).unwrap().version(), Some("1.35"));

    w.eks
        .edit(&w.name(), |c| c.version = Some("1.36".to_owned()));
    let err = w.s.try_run(Action::Ensure).await.expect_err("downgraded");
    assert_eq!(err.error_type, ErrorType::Terminal);
    assert!(
        err.error_message.contains("cannot downgrade"),
        "{}",
        err.error_message
    );
    assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new());
    // `observe` walks the same code: the newer version is named, not an error.
    let observed = w.s.run(Action::Observe).await;
    let resource = format!("eks:cluster/{}", w.name());
    assert_eq!(drift_fields(&observed), [(resource, "version".to_owned())]);
}

/// A crash after `CreateCluster`, before the cluster was recorded: the re-run records the
/// cluster it finds and creates nothing.
#[tokio::test]
async fn half_created_cluster_is_recorded_not_created_again() {
    let w = World::new();
    w.s.run(Action::Ensure).await;
    w.s.store.forget(&w.s.spec.id, Kind::Cluster, &w.name());
    w.logs.edit(&w.log_group(), |g| g.retention = None);

    let out = w.s.run(Action::Ensure).await;
    assert!(!out.ready, "still creating");
    assert_eq!(w.s.calls.mutating_aws(), ["logs:PutRetentionPolicy"]);
    assert!(w.s.recorded(Kind::Cluster, &w.name()));
}

#[tokio::test]
async fn a_cluster_of_our_name_without_our_tag_is_refused_untouched() {
    let w = World::new();
    w.converge().await;
    w.eks.edit(&w.name(), |c| {
        let tags = c.tags.get_or_insert_with(Default::default);
        tags.insert(TAG_PLATFORM.to_owned(), "someone-else".to_owned());
    });
    for action in [Action::Ensure, Action::Delete] {
        let err = w.s.try_run(action).await.expect_err("adopted");
        assert_eq!(err.error_type, ErrorType::Terminal, "{action:?}");
        assert!(
            err.error_message.contains(&w.name()),
            "{}",
            err.error_message
        );
        assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new(), "{action:?}");
    }
    let observed = w.s.run(Action::Observe).await;
    let resource = format!("eks:cluster/{}", w.name());
    let field = format!("tags.{TAG_PLATFORM}");
    assert_eq!(drift_fields(&observed), [(resource, field)]);
}

#[tokio::test]
async fn gone_platform_deletes_without_a_call_and_delete_converges() {
    let w = World::new();
    assert!(w.s.run(Action::Delete).await.ready);
    assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new());

    w.converge().await;
    let mut rounds = Vec::new();
    loop {
        let out = w.s.run(Action::Delete).await;
        rounds.push(w.s.calls.mutating_aws());
        if out.ready {
            break;
        }
        w.eks.settle();
    }
    assert_eq!(
        rounds,
        [
            vec!["eks:UpdateClusterConfig"],
            vec!["eks:DeleteCluster"],
            vec!["logs:DeleteLogGroup"],
        ]
    );
    assert!(w.eks.cluster(&w.name()).is_none());
    assert!(w.logs.groups().is_empty());
    assert!(
        w.s.store.inventory().is_empty(),
        "{:?}",
        w.s.store.inventory()
    );
    w.s.run(Action::Delete).await;
    assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new());
}
