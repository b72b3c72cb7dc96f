//! The observability phase: the platform secret, Container Insights log groups, the alarm topic
//! and the cluster alarms, all encrypted and tagged.

use serde_json::json;

use super::cloudwatch::CloudWatchDouble;
use super::logs::LogsDouble;
use super::secrets::SecretsDouble;
use super::sns::SnsDouble;
use super::{drift_fields, Calls, Rules, Stage};
use crate::error::ErrorType;
use crate::naming::{Names, TAG_ENVIRONMENT, TAG_PLATFORM};
use crate::phases::outputs;
use crate::phases::Action;
use crate::plan::{Phase, ALARMS, CONTAINER_INSIGHTS_LOG_GROUPS};

const DATA_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/data";
const LOGS_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/logs";

struct World {
    s: Stage,
    logs: LogsDouble,
    sns: SnsDouble,
    cloudwatch: CloudWatchDouble,
    secrets: SecretsDouble,
}

impl World {
    /// The observability phase with the earlier phases' outputs recorded.
    fn new() -> World {
        let calls = Calls::default();
        let logs = LogsDouble::new(&calls);
        let sns = SnsDouble::new(&calls);
        let cloudwatch = CloudWatchDouble::new(&calls);
        let secrets = SecretsDouble::new(&calls);
        let rules = Rules {
            logs: logs.rules(),
            sns: sns.rules(),
            cloudwatch: cloudwatch.rules(),
            secrets: secrets.rules(),
            ..Rules::default()
        };
        let outputs = [
            (outputs::DATA_KEY_ARN.key, json!(DATA_KEY)),
            (outputs::LOGS_KEY_ARN.key, json!(LOGS_KEY)),
            (
                "clusterEndpoint",
                json!("https://EXAMPLE.eks.amazonaws.com"),
            ),
            ("certificateAuthority", json!("Q0E=")),
            ("vpcId", json!("vpc-1")),
            ("privateSubnetIds", json!(["subnet-a", "subnet-b"])),
        ];
        World {
            s: Stage::new(Phase::Observability, &calls, rules, &outputs),
            logs,
            sns,
            cloudwatch,
            secrets,
        }
    }

    fn names(&self) -> Names {
        Names::new(&self.s.spec)
    }

    fn topic(&self) -> String {
        format!(
            "arn:aws:sns:us-east-1:123456789012:{}",
            self.names().sns_topic()
        )
    }
}

#[tokio::test]
async fn fresh_platform_gets_encrypted_tagged_logs_topic_alarms_and_secret() {
    let w = World::new();
    let out = w.s.run(Action::Ensure).await;
    assert!(out.ready);
    let groups = w.logs.groups();
    assert_eq!(groups.len(), CONTAINER_INSIGHTS_LOG_GROUPS.len());
    for (name, g) in &groups {
        assert_eq!(g.retention, Some(365), "{name}");
        assert_eq!(g.kms_key.as_deref(), Some(LOGS_KEY), "{name}");
        assert_eq!(g.tags.get(TAG_PLATFORM), Some(&w.s.spec.id), "{name}");
    }
    let topic = &w.sns.topics()[&w.topic()];
    assert_eq!(topic.attributes["KmsMasterKeyId"], DATA_KEY);
    let policy: serde_json::Value = serde_json::from_str(&topic.attributes["Policy"]).unwrap();
    assert_eq!(
        policy["Statement"][0]["Condition"]["StringEquals"]["aws:SourceAccount"],
        "123456789012"
    );
    let alarms = w.cloudwatch.alarms();
    assert_eq!(alarms.len(), ALARMS.len());
    for alarm in alarms.values() {
        assert_eq!(alarm.alarm_actions(), [w.topic()]);
        assert_eq!(alarm.ok_actions(), [w.topic()]);
    }
    let secret = &w.secrets.secrets()[&w.names().platform_secret()];
    assert_eq!(secret.kms_key.as_deref(), Some(DATA_KEY));
    let value: serde_json::Value = serde_json::from_str(&secret.value).unwrap();
    assert_eq!(value["platformId"], json!(w.s.spec.id));
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
async fn out_of_band_changes_are_named_then_repaired() {
    let w = World::new();
    w.s.run(Action::Ensure).await;
    let group = w
        .names()
        .container_insights_log_group(CONTAINER_INSIGHTS_LOG_GROUPS[0]);
    w.logs.edit(&group, |g| g.retention = Some(1));
    w.sns.edit(&w.topic(), |t| {
        t.attributes.remove("KmsMasterKeyId");
    });
    let alarm = w.cloudwatch.alarms().into_keys().next().unwrap();
    w.cloudwatch
        .edit(&alarm, |a| a.threshold = Some(1_000_000.0));
    let secret = w.names().platform_secret();
    w.secrets.edit(&secret, |s| s.value = "{}".to_owned());

    let observed = w.s.run(Action::Observe).await;
    let fields = drift_fields(&observed);
    assert_eq!(fields.len(), 4, "{fields:?}");
    assert!(fields.contains(&(
        format!("logs:log-group/{group}"),
        "retentionInDays".to_owned()
    )));
    assert!(fields.contains(&(
        format!("sns:topic/{}", w.names().sns_topic()),
        "kmsMasterKeyId".to_owned()
    )));
    assert!(
        fields.iter().any(|(r, _)| r.ends_with(&alarm)),
        "{fields:?}"
    );
    assert!(
        fields
            .iter()
            .any(|(r, f)| r.ends_with(&secret) && f == "value"),
        "{fields:?}"
    );
    assert_eq!(w.s.calls.mutating(), Vec::<String>::new(), "observe wrote");

    let repaired = w.s.run(Action::Ensure).await;
    let mut writes = w.s.calls.mutating_aws();
    writes.sort();
    assert_eq!(
        writes,
        [
            "cloudwatch:PutMetricAlarm",
            "logs:PutRetentionPolicy",
            "secretsmanager:PutSecretValue",
            "sns:SetTopicAttributes",
        ]
    );
    assert_eq!(repaired.changes, 4);
    assert!(w.s.run(Action::Observe).await.drift.is_empty());
}

/// An opened topic policy and a lost environment tag: `observe` names both, `ensure` puts back the
/// policy and adds the one tag (the topic's other tags stay).
#[tokio::test]
async fn drifted_topic_policy_and_tag_are_named_then_repaired() {
    let w = World::new();
    w.s.run(Action::Ensure).await;
    w.sns.edit(&w.topic(), |t| {
        t.attributes.insert("Policy".to_owned(), json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sns:Publish", "Resource": "*"}]}).to_string());
        t.tags.remove(TAG_ENVIRONMENT);
        t.tags.insert("team".to_owned(), "sre".to_owned());
    });
    let observed = w.s.run(Action::Observe).await;
    let topic = format!("sns:topic/{}", w.names().sns_topic());
    let mut fields = drift_fields(&observed);
    fields.sort();
    assert_eq!(
        fields,
        [
            (topic.clone(), "policy".to_owned()),
            (topic, "tags".to_owned())
        ]
    );
    assert_eq!(w.s.calls.mutating(), Vec::<String>::new(), "observe wrote");

    let repaired = w.s.run(Action::Ensure).await;
    assert_eq!(
        w.s.calls.mutating_aws(),
        ["sns:SetTopicAttributes", "sns:TagResource"]
    );
    assert_eq!(repaired.changes, 2);
    let topic = &w.sns.topics()[&w.topic()];
    assert_eq!(topic.tags.get(TAG_ENVIRONMENT), Some(&w.s.spec.environment));
    assert_eq!(topic.tags["team"], "sre");
    let policy: serde_json::Value = serde_json::from_str(&topic.attributes["Policy"]).unwrap();
    assert_eq!(
        policy["Statement"][0]["Principal"]["Service"],
        "cloudwatch.amazonaws.com"
    );
    assert!(w.s.run(Action::Observe).await.drift.is_empty());
}

/// A crash after `CreateTopic`, before the alarms: the re-run finds the topic by its ARN and
/// puts only the alarms.
#[tokio::test]
async fn half_created_phase_creates_only_what_is_missing() {
    let w = World::new();
    w.s.run(Action::Ensure).await;
    for name in w.cloudwatch.alarms().into_keys() {
        w.cloudwatch.remove(&name);
    }
    let out = w.s.run(Action::Ensure).await;
    assert_eq!(
        w.s.calls.mutating_aws(),
        vec!["cloudwatch:PutMetricAlarm"; ALARMS.len()]
    );
    assert_eq!(out.changes as usize, ALARMS.len());
    assert_eq!(w.sns.topics().len(), 1, "no second topic");
}

#[tokio::test]
async fn a_secret_of_our_name_without_our_tag_is_refused_untouched() {
    let w = World::new();
    w.s.run(Action::Ensure).await;
    let secret = w.names().platform_secret();
    w.secrets.edit(&secret, |s| {
        s.tags
            .insert(TAG_PLATFORM.to_owned(), "someone-else".to_owned());
        s.value = "theirs".to_owned();
    });
    // `ensure` checks the secret first and stops before any write.
    let err = w.s.try_run(Action::Ensure).await.expect_err("adopted");
    assert_eq!(err.error_type, ErrorType::Terminal);
    assert!(err.error_message.contains(&secret), "{}", err.error_message);
    assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new());
    // `delete` removes the platform's own resources (in reverse order, the secret last) and
    // then fails naming the secret it will not delete.
    let err = w.s.try_run(Action::Delete).await.expect_err("deleted");
    assert_eq!(err.error_type, ErrorType::Terminal);
    assert!(err.error_message.contains(&secret), "{}", err.error_message);
    let writes = w.s.calls.mutating_aws();
    assert!(
        !writes.iter().any(|c| c.starts_with("secretsmanager:")),
        "{writes:?}"
    );
    let kept = &w.secrets.secrets()[&secret];
    assert_eq!((kept.value.as_str(), kept.deleted), ("theirs", false));
}

/// Under the platform's alarm prefix: an alarm that lost Tenantry's environment tag, one tagged
/// as the platform's that no release defines any more, and one of another owner. `observe` names
/// the tag and the stale alarm; `ensure` adds the tag and deletes the stale alarm only.
#[tokio::test]
async fn stale_alarms_go_lost_tags_come_back_and_strangers_stay() {
    let w = World::new();
    w.s.run(Action::Ensure).await;
    let names = w.names();
    let kept = names.alarm(ALARMS[0].name);
    let stale = names.alarm("pod-restarts");
    let stranger = names.alarm("x-team-latency");
    w.cloudwatch
        .edit_tags(&kept, |t| drop(t.remove(TAG_ENVIRONMENT)));
    let ours = w.cloudwatch.tags(&kept);
    let ours: Vec<(&str, &str)> = ours.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    w.cloudwatch.add(&stale, &kept, &ours);
    w.cloudwatch
        .add(&stranger, &kept, &[(TAG_PLATFORM, "payments-x")]);

    let observed = w.s.run(Action::Observe).await;
    let mut fields = drift_fields(&observed);
    fields.sort();
    assert_eq!(
        fields,
        [
            (format!("cloudwatch:alarm/{kept}"), "tags".to_owned()),
            (format!("cloudwatch:alarm/{stale}"), "exists".to_owned()),
        ]
    );
    assert_eq!(w.s.calls.mutating(), Vec::<String>::new(), "observe wrote");

    w.s.run(Action::Ensure).await;
    let mut writes = w.s.calls.mutating_aws();
    writes.sort();
    assert_eq!(
        writes,
        ["cloudwatch:DeleteAlarms", "cloudwatch:TagResource"]
    );
    let alarms = w.cloudwatch.alarms();
    assert!(!alarms.contains_key(&stale));
    assert!(alarms.contains_key(&stranger));
    assert_eq!(
        w.cloudwatch.tags(&kept).get(TAG_ENVIRONMENT),
        Some(&w.s.spec.environment)
    );
    assert!(w.s.run(Action::Observe).await.drift.is_empty());
}

/// A re-provision within the recovery window: the secret is pending deletion, and meanwhile its
/// key and value changed. `observe` names the pending deletion only (a deleted secret's value
/// cannot be read); `ensure` restores it and takes one new version under the data key, which
/// carries the desired value too.
#[tokio::test]
async fn a_secret_pending_deletion_is_restored_then_rekeyed() {
    let w = World::new();
    w.s.run(Action::Ensure).await;
    let secret = w.names().platform_secret();
    w.secrets.edit(&secret, |s| {
        s.deleted = true;
        s.kms_key = Some("arn:aws:kms:us-east-1:123456789012:key/other".to_owned());
        s.value = "{}".to_owned();
    });
    let observed = w.s.run(Action::Observe).await;
    assert_eq!(
        drift_fields(&observed),
        [(
            format!("secretsmanager:secret/{secret}"),
            "deletedDate".to_owned()
        )]
    );
    assert_eq!(w.s.calls.mutating(), Vec::<String>::new(), "observe wrote");

    w.s.run(Action::Ensure).await;
    assert_eq!(
        w.s.calls.mutating_aws(),
        [
            "secretsmanager:RestoreSecret",
            "secretsmanager:UpdateSecret"
        ]
    );
    let restored = &w.secrets.secrets()[&secret];
    assert!(!restored.deleted);
    assert_eq!(restored.kms_key.as_deref(), Some(DATA_KEY));
    let value: serde_json::Value = serde_json::from_str(&restored.value).unwrap();
    assert_eq!(value["platformId"], json!(w.s.spec.id));
    assert!(w.s.run(Action::Observe).await.drift.is_empty());
}

#[tokio::test]
async fn gone_platform_deletes_without_a_call_and_delete_converges() {
    let w = World::new();
    assert!(w.s.run(Action::Delete).await.ready);
    assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new());

    w.s.run(Action::Ensure).await;
    assert!(w.s.run(Action::Delete).await.ready);
    assert!(w.logs.groups().is_empty());
    assert!(w.sns.topics().is_empty());
    assert!(w.cloudwatch.alarms().is_empty());
    assert!(w.secrets.secrets().values().all(|s| s.deleted));
    w.s.run(Action::Delete).await;
    assert_eq!(
        w.s.calls.mutating_aws(),
        Vec::<String>::new(),
        "already gone"
    );
}
