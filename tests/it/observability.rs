//! The `observability` phase against the local stack (moto for Logs, SNS and Secrets Manager;
//! the gateway's CloudWatch alarms in CBOR), run through the gateway's Lambda Invoke API as Step
//! Functions runs it: `ensure` builds every resource with its settings, a second `ensure` makes no
//! mutating call, `observe` reports injected drift and `ensure` repairs it, `delete` leaves
//! nothing tagged with the platform (the secret pending deletion excepted, and asserted as
//! such), a second `delete` is a no-op, and a re-provision within the secret's recovery window
//! restores the secret. A crash sweep (as `crash.rs` does for other phases) shows that a crash
//! after any mutating call converges on re-run.
//!
//! The test crate does not depend on the SNS, CloudWatch and Secrets Manager SDKs: it reads AWS
//! through [`observability::Clients`], the phase's own clients (their methods are callable
//! without naming their crates).

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{json, Value};
use tenantry::naming::{Names, MAX_PLATFORM_ID_LEN, TAG_COMPONENT, TAG_PLATFORM};
use tenantry::phases::observability::Clients;
use tenantry::phases::{encryption, PhaseInput};
use tenantry::plan::{ALARMS, CONTAINER_INSIGHTS_LOG_GROUPS};
use tenantry::spec::PlatformSpec;
use tenantry::store::{PhaseState, PhaseStatus, Store};
use tenantry_gateway::{CallRecord, CrashRule, Faults, LocalStack};
use tenantry_integration::{stack, unique};

const FUNCTION: &str = "observability";
const ENDPOINT: &str = "https://0123456789ABCDEF.gr7.us-east-1.eks.amazonaws.com";
const CA: &str = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==";
/// Key ARNs recorded for the crash sweep (moto does not check that a key exists).
const LOGS_KEY: &str =
    "arn:aws:kms:us-east-1:123456789012:key/0f0e0d0c-0000-4000-8000-000000000002";
const DATA_KEY: &str =
    "arn:aws:kms:us-east-1:123456789012:key/0f0e0d0c-0000-4000-8000-000000000003";
/// Tenantry's own bookkeeping (state table, caller identity): not platform resources.
const BOOKKEEPING: &[&str] = &["dynamodb", "sts"];

struct Platform {
    spec: PlatformSpec,
    names: Names,
}

impl Platform {
    fn id(&self) -> &str {
        &self.spec.id
    }
}

/// The example platform under a fresh id, with the outputs of the network and cluster phases
/// recorded, and the encryption phase run for real (`real_keys`) or its outputs recorded.
async fn platform(stack: &LocalStack, prefix: &str, real_keys: bool) -> Platform {
    let deps = stack.deps().await;
    let store = Store::from_deps(&deps);
    store.create_table_if_missing().await.expect("state table");
    let mut spec = tenantry_integration::example_spec();
    spec.id = unique(prefix);
    assert!(spec.id.len() <= MAX_PLATFORM_ID_LEN, "{}", spec.id);
    tenantry_integration::record_platform(&store, &spec).await;
    let names = Names::new(&spec);
    let p = Platform { spec, names };
    let network = json!({
        "vpcId": "vpc-0123456789abcdef0",
        "privateSubnetIds": ["subnet-a1", "subnet-b1", "subnet-c1"],
        "publicSubnetIds": ["subnet-a0", "subnet-b0", "subnet-c0"],
        "podSubnetIds": ["subnet-a2", "subnet-b2", "subnet-c2"],
    });
    record(&store, p.id(), "network", network).await;
    let cluster = json!({
        "clusterName": p.names.cluster(),
        "clusterEndpoint": ENDPOINT,
        "certificateAuthority": CA,
        "oidcIssuer": format!("https://oidc.eks.us-east-1.amazonaws.com/id/{}", p.id()),
    });
    record(&store, p.id(), "cluster", cluster).await;
    if real_keys {
        let out = encryption::handle(input(p.id(), "ensure"), &deps)
            .await
            .expect("encryption ensure");
        assert!(out.ready, "keys ready");
    } else {
        let keys = json!({ "logsKeyArn": LOGS_KEY, "dataKeyArn": DATA_KEY });
        record(&store, p.id(), "encryption", keys).await;
    }
    p
}

/// A phase input as the state machine sends it (from JSON, so fields added later default).
fn input(platform: &str, action: &str) -> PhaseInput {
    let payload = json!({ "platformId": platform, "requestId": unique("req"), "action": action });
    serde_json::from_value(payload).expect("phase input")
}

async fn record(store: &Store, id: &str, phase: &str, outputs: Value) {
    let outputs: BTreeMap<String, Value> = serde_json::from_value(outputs).expect("outputs");
    store
        .record_phase(
            id,
            phase,
            &PhaseStatus::new(PhaseState::Succeeded),
            &outputs,
        )
        .await
        .unwrap_or_else(|e| panic!("record {phase} outputs of {id}: {e}"));
}

/// Runs the phase through the gateway's Lambda Invoke API.
async fn run(stack: &LocalStack, platform: &str, action: &str) -> Result<Value, (String, String)> {
    let payload = json!({ "platformId": platform, "requestId": unique("req"), "action": action });
    tenantry_integration::invoke(stack, FUNCTION, &payload).await
}

async fn run_ok(stack: &LocalStack, platform: &str, action: &str) -> Value {
    run(stack, platform, action)
        .await
        .unwrap_or_else(|e| panic!("{action} of {platform} failed: {e:?}"))
}

async fn clients(stack: &LocalStack) -> Clients {
    Clients::new(&stack.sdk_config().await)
}

fn tagged_with(tags: &BTreeMap<String, String>, platform: &str) -> bool {
    tags.get(TAG_PLATFORM).map(String::as_str) == Some(platform)
}

// --- what exists ---------------------------------------------------------------------------------

async fn log_group_tags(c: &Clients, arn: &str) -> BTreeMap<String, String> {
    let out = c
        .logs()
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .expect("logs ListTagsForResource");
    out.tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

async fn topic_tags(c: &Clients, arn: &str) -> BTreeMap<String, String> {
    let out = c
        .sns()
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .expect("sns ListTagsForResource");
    out.tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

async fn alarm_tags(c: &Clients, arn: &str) -> BTreeMap<String, String> {
    let out = c
        .cloudwatch()
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .expect("cloudwatch ListTagsForResource");
    out.tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Everything in Logs, SNS, CloudWatch and Secrets Manager tagged with the platform, by kind and
/// the settings that matter (and the phase's inventory records), for the crash sweep.
async fn census(stack: &LocalStack, p: &Platform) -> BTreeMap<String, usize> {
    let c = clients(stack).await;
    let mut out = BTreeMap::new();
    let mut groups = c
        .logs()
        .describe_log_groups()
        .into_paginator()
        .items()
        .send();
    while let Some(g) = groups.next().await {
        let g = g.expect("DescribeLogGroups");
        let arn = g.log_group_arn().unwrap_or_default().to_owned();
        if tagged_with(&log_group_tags(&c, &arn).await, p.id()) {
            let key = format!(
                "log-group/retention={}/kms={}",
                g.retention_in_days().unwrap_or_default(),
                g.kms_key_id().is_some()
            );
            *out.entry(key).or_default() += 1;
        }
    }
    let mut topics = c.sns().list_topics().into_paginator().items().send();
    while let Some(t) = topics.next().await {
        let t = t.expect("ListTopics");
        let arn = t.topic_arn().unwrap_or_default().to_owned();
        if tagged_with(&topic_tags(&c, &arn).await, p.id()) {
            let attrs = c
                .sns()
                .get_topic_attributes()
                .topic_arn(&arn)
                .send()
                .await
                .expect("GetTopicAttributes");
            let kms = attrs
                .attributes()
                .and_then(|a| a.get("KmsMasterKeyId"))
                .is_some_and(|k| !k.is_empty());
            *out.entry(format!("sns-topic/kms={kms}")).or_default() += 1;
        }
    }
    let mut pages = c.cloudwatch().describe_alarms().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.expect("DescribeAlarms");
        for a in page.metric_alarms() {
            let arn = a.alarm_arn().unwrap_or_default();
            if tagged_with(&alarm_tags(&c, arn).await, p.id()) {
                let key = format!("alarm/{}", a.metric_name().unwrap_or_default());
                *out.entry(key).or_default() += 1;
            }
        }
    }
    let mut pages = c
        .secrets()
        .list_secrets()
        .include_planned_deletion(true)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.expect("ListSecrets");
        for s in page.secret_list() {
            let tags: BTreeMap<String, String> = s
                .tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_owned(),
                        t.value().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            if tagged_with(&tags, p.id()) {
                let state = if s.deleted_date().is_some() {
                    "pending-deletion"
                } else {
                    "live"
                };
                *out.entry(format!("secret/{state}")).or_default() += 1;
            }
        }
    }
    let deps = stack.deps().await;
    for r in Store::from_deps(&deps)
        .list_resources(p.id())
        .await
        .expect("inventory")
    {
        if r.phase == FUNCTION {
            *out.entry(format!("inventory/{}", r.resource_type))
                .or_default() += 1;
        }
    }
    out
}

// --- the phase end to end ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn observability_builds_converges_repairs_drift_and_leaves_nothing_behind() {
    let stack = stack().await;
    let p = platform(&stack, "obs", true).await;
    let c = clients(&stack).await;
    let deps = stack.deps().await;
    let store = Store::from_deps(&deps);
    let status = store
        .get_status(p.id())
        .await
        .expect("status")
        .expect("recorded");
    let keys = &status.value.outputs;
    let logs_key = keys["logsKeyArn"].as_str().expect("logs key").to_owned();
    let data_key = keys["dataKeyArn"].as_str().expect("data key").to_owned();
    let retention = i32::try_from(p.spec.logging.retention_days).expect("retention");

    // ensure
    stack.reset_calls();
    let first = run_ok(&stack, p.id(), "ensure").await;
    let calls: Vec<CallRecord> = stack.calls().for_function(FUNCTION).cloned().collect();
    let mutating: Vec<String> = calls
        .iter()
        .filter(|c| c.mutating && !BOOKKEEPING.contains(&c.service.as_str()))
        .map(|c| format!("{}:{}", c.service, c.operation))
        .collect();
    eprintln!(
        "ensure: {} AWS calls, {} mutating platform calls: {mutating:?}",
        calls.len(),
        mutating.len()
    );
    assert_eq!(first["ready"], json!(true), "{first}");
    // Secret 1, log groups 4 x (create + retention), topic 1, alarms 4.
    assert_eq!(first["changes"], json!(14), "{first}");
    assert_eq!(first["changes"], json!(mutating.len()));

    // Log groups: retention, logs key, tags.
    let prefix = p.names.container_insights_log_group("");
    let groups = c
        .logs()
        .describe_log_groups()
        .log_group_name_prefix(&prefix)
        .send()
        .await
        .expect("DescribeLogGroups");
    let groups = groups.log_groups();
    assert_eq!(groups.len(), CONTAINER_INSIGHTS_LOG_GROUPS.len());
    for kind in CONTAINER_INSIGHTS_LOG_GROUPS {
        let name = p.names.container_insights_log_group(kind);
        let g = groups
            .iter()
            .find(|g| g.log_group_name() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(g.retention_in_days(), Some(retention), "{name}");
        assert_eq!(g.kms_key_id(), Some(logs_key.as_str()), "{name}");
        let tags = log_group_tags(&c, g.log_group_arn().unwrap_or_default()).await;
        assert!(tagged_with(&tags, p.id()), "{name}: {tags:?}");
        assert_eq!(tags[TAG_COMPONENT], "observability");
    }

    // Topic: data key, policy letting CloudWatch publish, tags.
    let topic = first["outputs"]["alarmTopicArn"]
        .as_str()
        .expect("alarmTopicArn")
        .to_owned();
    assert!(
        topic.ends_with(&format!(":{}", p.names.sns_topic())),
        "{topic}"
    );
    let attrs = c
        .sns()
        .get_topic_attributes()
        .topic_arn(&topic)
        .send()
        .await
        .expect("GetTopicAttributes");
    let attrs = attrs.attributes().cloned().unwrap_or_default();
    assert_eq!(attrs.get("KmsMasterKeyId"), Some(&data_key));
    let policy: Value =
        serde_json::from_str(attrs.get("Policy").expect("Policy")).expect("policy is JSON");
    let publish = &policy["Statement"][0];
    assert_eq!(publish["Principal"]["Service"], "cloudwatch.amazonaws.com");
    assert_eq!(publish["Action"], "sns:Publish");
    assert_eq!(publish["Resource"], topic.as_str());
    assert_eq!(
        publish["Condition"]["StringEquals"]["aws:SourceAccount"],
        "123456789012"
    );
    assert!(tagged_with(&topic_tags(&c, &topic).await, p.id()));
    // The data key lets CloudWatch use it for this platform's alarms.
    let kms = Clients::new(&stack.sdk_config().await).kms().clone();
    let key_policy = kms
        .get_key_policy()
        .key_id(&data_key)
        .policy_name("default")
        .send()
        .await
        .expect("GetKeyPolicy");
    let key_policy: Value =
        serde_json::from_str(key_policy.policy().unwrap_or_default()).expect("key policy");
    let cloudwatch = key_policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["Principal"]["Service"] == "cloudwatch.amazonaws.com")
        .unwrap_or_else(|| panic!("no CloudWatch statement in {key_policy}"));
    assert_eq!(
        cloudwatch["Condition"]["StringEquals"]["aws:SourceAccount"],
        "123456789012"
    );

    // Alarms: definitions as the gateway reports them, actions to the topic, tags.
    let described = c
        .cloudwatch()
        .describe_alarms()
        .alarm_name_prefix(p.names.alarm(""))
        .send()
        .await
        .expect("DescribeAlarms");
    let alarms = described.metric_alarms();
    assert_eq!(alarms.len(), ALARMS.len());
    for def in ALARMS {
        let name = p.names.alarm(def.name);
        let a = alarms
            .iter()
            .find(|a| a.alarm_name() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(a.namespace(), Some("ContainerInsights"), "{name}");
        assert_eq!(a.metric_name(), Some(def.metric), "{name}");
        let dims: Vec<(String, String)> = a
            .dimensions()
            .iter()
            .map(|d| {
                (
                    d.name().unwrap_or_default().to_owned(),
                    d.value().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        assert_eq!(dims, [("ClusterName".to_owned(), p.names.cluster())]);
        assert_eq!(a.statistic().map(|s| s.as_str()), Some(def.statistic));
        assert_eq!(a.threshold(), Some(def.threshold));
        assert_eq!(
            a.comparison_operator().map(|o| o.as_str()),
            Some(def.comparison)
        );
        assert_eq!(a.period(), Some(def.period_seconds));
        assert_eq!(a.evaluation_periods(), Some(def.evaluation_periods));
        assert_eq!(a.treat_missing_data(), Some(def.treat_missing_data));
        assert_eq!(a.alarm_actions(), std::slice::from_ref(&topic));
        assert_eq!(a.ok_actions(), std::slice::from_ref(&topic));
        let tags = alarm_tags(&c, a.alarm_arn().unwrap_or_default()).await;
        assert!(tagged_with(&tags, p.id()), "{name}: {tags:?}");
    }
    for (name, missing) in [
        ("failed-nodes", "notBreaching"),
        ("apiserver-errors", "notBreaching"),
    ] {
        let a = alarms
            .iter()
            .find(|a| a.alarm_name() == Some(p.names.alarm(name).as_str()))
            .expect("alarm");
        assert_eq!(a.treat_missing_data(), Some(missing));
    }

    // Secret: data key, tags, value shape (connection facts only).
    let secret_name = p.names.platform_secret();
    let secret = c
        .secrets()
        .describe_secret()
        .secret_id(&secret_name)
        .send()
        .await
        .expect("DescribeSecret");
    assert_eq!(secret.kms_key_id(), Some(data_key.as_str()));
    assert_eq!(first["outputs"]["platformSecretArn"].as_str(), secret.arn());
    assert!(secret
        .tags()
        .iter()
        .any(|t| t.key() == Some(TAG_PLATFORM) && t.value() == Some(p.id())));
    let value = c
        .secrets()
        .get_secret_value()
        .secret_id(&secret_name)
        .send()
        .await
        .expect("GetSecretValue");
    let value: Value =
        serde_json::from_str(value.secret_string().unwrap_or_default()).expect("JSON value");
    assert_eq!(value["clusterName"], p.names.cluster().as_str());
    assert_eq!(value["clusterEndpoint"], ENDPOINT);
    assert_eq!(value["certificateAuthority"], CA);
    assert_eq!(value["vpcId"], "vpc-0123456789abcdef0");
    assert_eq!(value["region"], "us-east-1");
    assert_eq!(value["privateSubnetIds"].as_array().map(Vec::len), Some(3));
    assert!(value["oidcIssuer"].is_string());
    let text = value.to_string().to_lowercase();
    assert!(!text.contains("password") && !text.contains("token") && !text.contains("arn:aws:kms"));

    // Outputs and inventory.
    assert_eq!(
        first["outputs"]["alarmNames"].as_array().map(Vec::len),
        Some(ALARMS.len())
    );
    assert_eq!(
        first["outputs"]["containerInsightsLogGroups"]
            .as_array()
            .map(Vec::len),
        Some(4)
    );
    let found = census(&stack, &p).await;
    let expected: BTreeMap<String, usize> = [
        (format!("log-group/retention={retention}/kms=true"), 4),
        ("sns-topic/kms=true".to_owned(), 1),
        ("alarm/node_cpu_utilization".to_owned(), 1),
        ("alarm/node_memory_utilization".to_owned(), 1),
        ("alarm/cluster_failed_node_count".to_owned(), 1),
        ("alarm/apiserver_request_total_5xx".to_owned(), 1),
        ("secret/live".to_owned(), 1),
        ("inventory/logs:log-group".to_owned(), 4),
        ("inventory/sns:topic".to_owned(), 1),
        ("inventory/cloudwatch:alarm".to_owned(), 4),
        ("inventory/secretsmanager:secret".to_owned(), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(found, expected);
    let recorded = store
        .get_status(p.id())
        .await
        .expect("status")
        .expect("status");
    assert_eq!(
        recorded.value.outputs.get("alarmTopicArn"),
        Some(&json!(topic))
    );

    // A second ensure changes nothing and is ready; observe sees nothing to do.
    stack.reset_calls();
    let second = run_ok(&stack, p.id(), "ensure").await;
    let calls: Vec<CallRecord> = stack.calls().for_function(FUNCTION).cloned().collect();
    eprintln!(
        "re-run: {} AWS calls ({} mutating, all bookkeeping)",
        calls.len(),
        calls.iter().filter(|c| c.mutating).count()
    );
    assert_eq!(second["changes"], json!(0), "{second}");
    assert!(calls
        .iter()
        .all(|c| !c.mutating || BOOKKEEPING.contains(&c.service.as_str())));
    assert_eq!(second["ready"], json!(true), "{second}");
    let observed = run_ok(&stack, p.id(), "observe").await;
    assert_eq!(observed["ready"], json!(true), "{observed}");
    assert!(observed.get("drift").is_none(), "{observed}");

    // Drift out of band: retention, alarm threshold, a deleted alarm, topic policy, secret value.
    let host = p.names.container_insights_log_group("host");
    c.logs()
        .put_retention_policy()
        .log_group_name(&host)
        .retention_in_days(1)
        .send()
        .await
        .expect("PutRetentionPolicy");
    let cpu = p.names.alarm("node-cpu-high");
    c.cloudwatch()
        .put_metric_alarm()
        .alarm_name(&cpu)
        .namespace("ContainerInsights")
        .metric_name("node_cpu_utilization")
        .statistic("Average".into())
        .period(300)
        .evaluation_periods(3)
        .threshold(95.0)
        .comparison_operator("GreaterThanThreshold".into())
        .send()
        .await
        .expect("PutMetricAlarm");
    c.cloudwatch()
        .delete_alarms()
        .alarm_names(p.names.alarm("failed-nodes"))
        .send()
        .await
        .expect("DeleteAlarms");
    c.sns()
        .set_topic_attributes()
        .topic_arn(&topic)
        .attribute_name("Policy")
        .attribute_value(r#"{"Version":"2012-10-17","Statement":[]}"#)
        .send()
        .await
        .expect("SetTopicAttributes");
    c.secrets()
        .put_secret_value()
        .secret_id(&secret_name)
        .secret_string(r#"{"clusterEndpoint":"https://elsewhere"}"#)
        .send()
        .await
        .expect("PutSecretValue");
    let observed = run_ok(&stack, p.id(), "observe").await;
    assert_eq!(observed["ready"], json!(false));
    assert_eq!(observed["changes"], json!(0));
    let drift: Vec<(String, String)> = observed["drift"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["resource"].as_str().unwrap_or_default().to_owned(),
                d["field"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected_drift = [
        (
            format!("secretsmanager:secret/{secret_name}"),
            "value".to_owned(),
        ),
        (
            format!("logs:log-group/{host}"),
            "retentionInDays".to_owned(),
        ),
        (
            format!("sns:topic/{}", p.names.sns_topic()),
            "policy".to_owned(),
        ),
        (format!("cloudwatch:alarm/{cpu}"), "definition".to_owned()),
        (
            format!("cloudwatch:alarm/{}", p.names.alarm("failed-nodes")),
            "exists".to_owned(),
        ),
    ];
    assert_eq!(drift, expected_drift, "{observed}");
    // The secret's drift names keys, never values.
    assert!(!observed.to_string().contains("elsewhere"), "{observed}");
    let repaired = run_ok(&stack, p.id(), "ensure").await;
    assert_eq!(repaired["changes"], json!(5), "{repaired}");
    let again = run_ok(&stack, p.id(), "ensure").await;
    assert_eq!(again["changes"], json!(0), "{again}");
    assert_eq!(census(&stack, &p).await, expected);

    // delete: reverse order, nothing tagged with the platform left but the secret pending deletion.
    stack.reset_calls();
    let deleted = run_ok(&stack, p.id(), "delete").await;
    let calls: Vec<CallRecord> = stack.calls().for_function(FUNCTION).cloned().collect();
    let ops: Vec<String> = calls
        .iter()
        .filter(|c| c.mutating && !BOOKKEEPING.contains(&c.service.as_str()))
        .map(|c| c.operation.clone())
        .collect();
    eprintln!("delete: {} AWS calls, mutating: {ops:?}", calls.len());
    assert_eq!(deleted["ready"], json!(true), "{deleted}");
    assert_eq!(
        ops,
        [
            "DeleteAlarms",
            "DeleteTopic",
            "DeleteLogGroup",
            "DeleteLogGroup",
            "DeleteLogGroup",
            "DeleteLogGroup",
            "DeleteSecret"
        ]
    );
    let left = census(&stack, &p).await;
    assert_eq!(
        left,
        [("secret/pending-deletion".to_owned(), 1)]
            .into_iter()
            .collect(),
        "only the secret pending deletion remains"
    );
    let live = c
        .secrets()
        .list_secrets()
        .send()
        .await
        .expect("ListSecrets");
    assert!(
        live.secret_list()
            .iter()
            .all(|s| s.name() != Some(secret_name.as_str())),
        "a secret pending deletion is not listed by default"
    );
    let secret = c
        .secrets()
        .describe_secret()
        .secret_id(&secret_name)
        .send()
        .await
        .expect("DescribeSecret");
    assert!(secret.deleted_date().is_some(), "pending deletion");
    let twice = run_ok(&stack, p.id(), "delete").await;
    assert_eq!(twice["changes"], json!(0), "{twice}");

    // Re-provision within the recovery window: the secret is restored, not created again.
    stack.reset_calls();
    let back = run_ok(&stack, p.id(), "ensure").await;
    let restored = stack
        .calls()
        .for_function(FUNCTION)
        .filter(|c| c.operation == "RestoreSecret")
        .count();
    assert_eq!(restored, 1);
    assert_eq!(back["changes"], json!(14), "{back}");
    assert_eq!(census(&stack, &p).await, expected);
    let stable = run_ok(&stack, p.id(), "ensure").await;
    assert_eq!(stable["changes"], json!(0), "{stable}");
    run_ok(&stack, p.id(), "delete").await;
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn alarms_off_and_a_given_topic_create_no_topic_and_remove_stale_alarms() {
    let stack = stack().await;
    let p = platform(&stack, "obt", false).await;
    let c = clients(&stack).await;
    let first = run_ok(&stack, p.id(), "ensure").await;
    assert_eq!(first["changes"], json!(14), "{first}");
    // An alarm an older release defined, tagged with the platform (the tags of one of its
    // current alarms, copied: the test cannot name the CloudWatch SDK's `Tag`).
    let ours = c
        .cloudwatch()
        .list_tags_for_resource()
        .resource_arn(format!(
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{}",
            p.names.alarm("failed-nodes")
        ))
        .send()
        .await
        .expect("ListTagsForResource");
    let stale = p.names.alarm("pod-restarts");
    c.cloudwatch()
        .put_metric_alarm()
        .alarm_name(&stale)
        .namespace("ContainerInsights")
        .metric_name("pod_number_of_container_restarts")
        .statistic("Maximum".into())
        .period(300)
        .evaluation_periods(1)
        .threshold(5.0)
        .comparison_operator("GreaterThanThreshold".into())
        .set_tags(Some(ours.tags().to_vec()))
        .send()
        .await
        .expect("PutMetricAlarm");
    // Another platform's alarm under the same prefix (`<id>-<env>` of `<id>-x`), untagged for
    // this platform: left alone.
    let neighbour = format!("{}x-failed-nodes", p.names.alarm(""));
    c.cloudwatch()
        .put_metric_alarm()
        .alarm_name(&neighbour)
        .namespace("ContainerInsights")
        .metric_name("cluster_failed_node_count")
        .statistic("Maximum".into())
        .period(300)
        .evaluation_periods(1)
        .threshold(0.0)
        .comparison_operator("GreaterThanThreshold".into())
        .send()
        .await
        .expect("PutMetricAlarm");
    let cleaned = run_ok(&stack, p.id(), "ensure").await;
    assert_eq!(cleaned["changes"], json!(1), "{cleaned}");
    let names: Vec<String> = c
        .cloudwatch()
        .describe_alarms()
        .alarm_name_prefix(p.names.alarm(""))
        .send()
        .await
        .expect("DescribeAlarms")
        .metric_alarms()
        .iter()
        .filter_map(|a| a.alarm_name().map(str::to_owned))
        .collect();
    assert!(!names.contains(&stale), "{names:?}");
    assert!(names.contains(&neighbour), "{names:?}");
    assert_eq!(names.len(), ALARMS.len() + 1);

    // The request now names its own topic: the alarms notify it; the platform's own topic stays
    // until delete (it may have subscribers).
    let deps = stack.deps().await;
    let store = Store::from_deps(&deps);
    let mut spec = p.spec.clone();
    let ops = "arn:aws:sns:us-east-1:123456789012:ops-alarms";
    spec.observability.alarms.sns_topic_arn = Some(ops.to_owned());
    update_spec(&store, &spec).await;
    let moved = run_ok(&stack, p.id(), "ensure").await;
    assert_eq!(moved["changes"], json!(ALARMS.len()), "{moved}");
    assert_eq!(moved["outputs"]["alarmTopicArn"], ops);
    let described = c
        .cloudwatch()
        .describe_alarms()
        .alarm_name_prefix(p.names.alarm(""))
        .send()
        .await
        .expect("DescribeAlarms");
    for a in described.metric_alarms() {
        if a.alarm_name() != Some(neighbour.as_str()) {
            assert_eq!(a.alarm_actions(), [ops.to_owned()]);
        }
    }

    // Alarms off: the alarms go, nothing else changes.
    spec.observability.alarms.enabled = false;
    update_spec(&store, &spec).await;
    let off = run_ok(&stack, p.id(), "ensure").await;
    assert_eq!(off["changes"], json!(1), "one DeleteAlarms: {off}");
    assert_eq!(off["outputs"]["alarmNames"], json!([]));
    assert!(off["outputs"].get("alarmTopicArn").is_none(), "{off}");
    let again = run_ok(&stack, p.id(), "ensure").await;
    assert_eq!(again["changes"], json!(0), "{again}");
    run_ok(&stack, p.id(), "delete").await;
    let left = census(&stack, &p).await;
    assert_eq!(
        left,
        [("secret/pending-deletion".to_owned(), 1)]
            .into_iter()
            .collect()
    );
    stack.shutdown().await;
}

/// Records a new version of the platform's spec (as an update request would).
async fn update_spec(store: &Store, spec: &PlatformSpec) {
    let current = store
        .get_spec(&spec.id)
        .await
        .expect("get spec")
        .expect("spec recorded");
    store
        .put_spec(
            &spec.id,
            &serde_json::to_value(spec).expect("spec"),
            Some(current.version),
        )
        .await
        .expect("spec update");
}

// --- crash sweep -----------------------------------------------------------------------------------

fn is_platform_mutation(c: &CallRecord) -> bool {
    c.mutating && !BOOKKEEPING.contains(&c.service.as_str())
}

fn op(c: &CallRecord) -> String {
    format!("{}:{}", c.service, c.operation)
}

/// For every mutating call N of a clean `ensure`: a fresh platform whose `ensure` the gateway
/// crashes right after call N, then a re-run, converges to what the clean run built (nothing
/// duplicated, nothing missing), and a third run changes nothing. The phase finds everything by
/// name or derived ARN (no account-wide listing), so every platform's calls are the same
/// sequence and the platforms share one moto.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn observability_converges_after_a_crash_after_any_mutating_call() {
    let stack = stack().await;
    let started = Instant::now();
    let reference = platform(&stack, "ocr", false).await;
    stack.reset_calls();
    let out = run_ok(&stack, reference.id(), "ensure").await;
    let calls: Vec<CallRecord> = stack.calls().for_function(FUNCTION).cloned().collect();
    let ops: Vec<String> = calls.iter().map(op).collect();
    let points: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| is_platform_mutation(c))
        .map(|(i, _)| i + 1)
        .collect();
    eprintln!(
        "reference ensure: {} AWS calls, {} mutating platform calls: {:?}",
        calls.len(),
        points.len(),
        points.iter().map(|&n| &ops[n - 1]).collect::<Vec<_>>()
    );
    assert_eq!(out["ready"], json!(true), "{out}");
    assert_eq!(out["changes"], json!(points.len()));
    assert_eq!(
        run_ok(&stack, reference.id(), "ensure").await["changes"],
        json!(0)
    );
    let expected = census(&stack, &reference).await;
    let mut failures = Vec::new();
    for (n, &after) in points.iter().enumerate() {
        let p = platform(&stack, "ocr", false).await;
        let point = format!(
            "crash after call {after} ({}, mutating call {} of {})",
            ops[after - 1],
            n + 1,
            points.len()
        );
        if let Err(e) = crash_point(&stack, &p, after, &ops, &expected).await {
            eprintln!("FAILED {point}: {e}");
            failures.push(format!("{point}: {e}"));
        }
    }
    eprintln!("{} crash points in {:?}", points.len(), started.elapsed());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    stack.shutdown().await;
}

async fn crash_point(
    stack: &LocalStack,
    p: &Platform,
    after: usize,
    reference_ops: &[String],
    expected: &BTreeMap<String, usize>,
) -> Result<(), String> {
    stack.reset_calls();
    stack.set_faults(Faults {
        crash_after_calls: Some(CrashRule::new(
            FUNCTION,
            u32::try_from(after).expect("few calls"),
        )),
        ..Faults::default()
    });
    let crashed = run(stack, p.id(), "ensure").await;
    stack.set_faults(Faults::default());
    match crashed {
        Err((t, _)) if t == "Runtime.ExitError" => {}
        other => return Err(format!("the first run did not crash: {other:?}")),
    }
    let made: Vec<String> = stack.calls().for_function(FUNCTION).map(op).collect();
    if made != reference_ops[..after] {
        return Err(format!(
            "the crashed run's calls differ from the reference's first {after}: {made:?}"
        ));
    }
    let rerun = run(stack, p.id(), "ensure")
        .await
        .map_err(|e| format!("the re-run failed: {e:?}"))?;
    let third = run(stack, p.id(), "ensure")
        .await
        .map_err(|e| format!("the third run failed: {e:?}"))?;
    let mut problems = Vec::new();
    if third["changes"] != json!(0) || third["ready"] != json!(true) {
        problems.push(format!(
            "third run: ready {} changes {} (re-run: ready {} changes {})",
            third["ready"], third["changes"], rerun["ready"], rerun["changes"]
        ));
    }
    let found = census(stack, p).await;
    if &found != expected {
        problems.push(format!(
            "census differs: expected {expected:?}, found {found:?}"
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join(" / "))
    }
}
