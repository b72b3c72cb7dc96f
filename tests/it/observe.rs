//! `observe` sees what others change: a platform provisioned on the local stack, then one change
//! per phase made behind Tenantry's back (with the AWS SDK against moto and the gateway, or on the
//! cluster's Kubernetes double), and that phase's `observe` names the resource and the field,
//! writes nothing, and reports nothing about resources that were not touched. A change to a node
//! group's `desiredSize` alone is the autoscaler's business and is not drift.

use aws_sdk_eks::types::{LogSetup, LogType, Logging, NodegroupScalingConfig};
use aws_sdk_sfn::types::ExecutionStatus;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Instant;
use tenantry::events::RequestKind;
use tenantry_gateway::inspect::tag_filter;

use crate::platform::{env, mutating, platform_calls, Env};

/// Names `examples/platform.json` gives its resources (stem `payments-prod`).
pub(crate) const CLUSTER: &str = "payments-prod";
pub(crate) const AUTOSCALER_ROLE: &str = "tenantry-payments-prod-cluster-autoscaler";
pub(crate) const GENERAL_GROUP: &str = "payments-prod-general";
const CPU_ALARM: &str = "tenantry-payments-prod-node-cpu-high";
pub(crate) const ADMIN: &str = "arn:aws:iam::111122223333:role/platform-admin";
pub(crate) const TENANT: &str = "checkout";
const EGRESS_POLICY: &str = "allow-egress-except-metadata";
pub(crate) const ELB_TAG: &str = "kubernetes.io/role/elb";

/// Runs one phase's `observe`; checks it changed nothing (its own count and the AWS calls it
/// made) and returns its drift.
async fn observe(env: &Env, function: &str, item: Option<&str>) -> Vec<Value> {
    env.stack.reset_calls();
    let payload = json!({
        "platformId": env.platform_id(),
        "requestId": format!("observe-{function}"),
        "action": "observe",
        "item": item,
    });
    let out = tenantry_integration::invoke(&env.stack, function, &payload)
        .await
        .unwrap_or_else(|e| panic!("observe {function} {item:?}: {e:?}"));
    assert_eq!(
        out["changes"],
        json!(0),
        "observe {function} {item:?}: {out}"
    );
    let calls = platform_calls(&env.stack.calls());
    assert_eq!(
        mutating(&calls),
        0,
        "observe {function} {item:?} wrote to AWS: {calls:?}"
    );
    out["drift"].as_array().cloned().unwrap_or_default()
}

/// The drift entry for `resource` and `field`; every other entry must be about `resource` too
/// (nothing else was changed). Panics with the whole report otherwise.
fn reported<'a>(function: &str, drift: &'a [Value], resource: &str, field: &str) -> &'a Value {
    let entry = drift
        .iter()
        .find(|d| d["resource"] == resource && d["field"] == field)
        .unwrap_or_else(|| {
            panic!("{function}: no drift on {resource} field {field}; reported: {drift:#?}")
        });
    let others: Vec<&Value> = drift.iter().filter(|d| d["resource"] != resource).collect();
    assert!(
        others.is_empty(),
        "{function}: drift on resources that were not changed: {others:#?}"
    );
    entry
}

/// A string output of the platform's status record.
fn output(outputs: &BTreeMap<String, Value>, key: &str) -> String {
    outputs
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("output {key}: {:?}", outputs.get(key)))
        .to_owned()
}

#[tokio::test]
async fn observe_reports_an_out_of_band_change_in_every_phase() {
    let t0 = Instant::now();
    let env = env().await;
    let run = env.run(RequestKind::PlatformProvision, "observe-p-1").await;
    assert_eq!(
        run.status,
        ExecutionStatus::Succeeded,
        "{:?} {:?}",
        run.cause,
        run.failures()
    );
    crate::catalogue::assert_observe_is_silent(&env).await;
    let platform = env.platform_id();
    let outputs = env
        .store
        .get_status(&platform)
        .await
        .unwrap()
        .expect("status")
        .value
        .outputs;
    assert_eq!(output(&outputs, "clusterName"), CLUSTER);

    // encryption: rotation of the secrets key turned off.
    let kms = aws_sdk_kms::Client::new(&env.aws);
    let key_arn = output(&outputs, "secretsKeyArn");
    let key_id = kms
        .describe_key()
        .key_id(&key_arn)
        .send()
        .await
        .unwrap()
        .key_metadata
        .expect("key metadata")
        .key_id;
    kms.disable_key_rotation()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    let drift = observe(&env, "encryption", None).await;
    let d = reported(
        "encryption",
        &drift,
        &format!("kms:key/{key_id}"),
        "keyRotationEnabled",
    );
    assert_eq!((&d["desired"], &d["actual"]), (&json!(true), &json!(false)));

    // identity: the cluster-autoscaler role's trust widened to the whole account.
    let iam = aws_sdk_iam::Client::new(&env.aws);
    let role_arn = outputs["serviceRoleArns"]["cluster-autoscaler"]
        .as_str()
        .expect("autoscaler role output")
        .to_owned();
    assert!(
        role_arn.ends_with(&format!("/{AUTOSCALER_ROLE}")),
        "{role_arn}"
    );
    let account = role_arn.split(':').nth(4).unwrap();
    let wide = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "AWS": format!("arn:aws:iam::{account}:root") },
            "Action": "sts:AssumeRole"
        }]
    });
    iam.update_assume_role_policy()
        .role_name(AUTOSCALER_ROLE)
        .policy_document(wide.to_string())
        .send()
        .await
        .unwrap();
    let drift = observe(&env, "identity", None).await;
    let d = reported(
        "identity",
        &drift,
        &format!("iam:role/{AUTOSCALER_ROLE}"),
        "assumeRolePolicy",
    );
    assert_eq!(
        d["actual"]["Statement"][0]["Principal"],
        wide["Statement"][0]["Principal"]
    );

    // network: the ELB discovery tag removed from a public subnet.
    let ec2 = aws_sdk_ec2::Client::new(&env.aws);
    let subnets = ec2
        .describe_subnets()
        .filters(tag_filter(&platform))
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag-key")
                .values(ELB_TAG)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let subnet = subnets.subnets()[0].subnet_id().unwrap().to_owned();
    ec2.delete_tags()
        .resources(&subnet)
        .tags(aws_sdk_ec2::types::Tag::builder().key(ELB_TAG).build())
        .send()
        .await
        .unwrap();
    let drift = observe(&env, "network", None).await;
    let d = reported(
        "network",
        &drift,
        &format!("ec2:subnet/{subnet}"),
        &format!("tags.{ELB_TAG}"),
    );
    assert_eq!((&d["desired"], &d["actual"]), (&json!("1"), &Value::Null));

    // cluster: the audit log turned off.
    let eks = aws_sdk_eks::Client::new(&env.aws);
    let setup = |enabled: bool, types: &[LogType]| {
        LogSetup::builder()
            .set_types(Some(types.to_vec()))
            .enabled(enabled)
            .build()
    };
    eks.update_cluster_config()
        .name(CLUSTER)
        .logging(
            Logging::builder()
                .cluster_logging(setup(
                    true,
                    &[
                        LogType::Api,
                        LogType::Authenticator,
                        LogType::ControllerManager,
                        LogType::Scheduler,
                    ],
                ))
                .cluster_logging(setup(false, &[LogType::Audit]))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let drift = observe(&env, "cluster", None).await;
    let d = reported(
        "cluster",
        &drift,
        &format!("eks:cluster/{CLUSTER}"),
        "logTypes",
    );
    assert_eq!(
        d["actual"],
        json!(["api", "authenticator", "controllerManager", "scheduler"])
    );
    assert!(
        d["desired"].as_array().unwrap().contains(&json!("audit")),
        "{d}"
    );

    // nodegroups: the autoscaler moves desiredSize (not drift), then someone raises maxSize.
    let scale = |config: NodegroupScalingConfig| {
        eks.update_nodegroup_config()
            .cluster_name(CLUSTER)
            .nodegroup_name(GENERAL_GROUP)
            .scaling_config(config)
            .send()
    };
    scale(NodegroupScalingConfig::builder().desired_size(5).build())
        .await
        .unwrap();
    let scaling = eks
        .describe_nodegroup()
        .cluster_name(CLUSTER)
        .nodegroup_name(GENERAL_GROUP)
        .send()
        .await
        .unwrap()
        .nodegroup
        .and_then(|n| n.scaling_config)
        .expect("scaling config");
    assert_eq!(
        (scaling.min_size, scaling.desired_size, scaling.max_size),
        (Some(1), Some(5), Some(6)),
        "only desiredSize moved"
    );
    let drift = observe(&env, "nodegroups", None).await;
    assert!(
        drift.is_empty(),
        "desiredSize belongs to the autoscaler: {drift:#?}"
    );
    scale(NodegroupScalingConfig::builder().max_size(10).build())
        .await
        .unwrap();
    let drift = observe(&env, "nodegroups", None).await;
    let d = reported(
        "nodegroups",
        &drift,
        &format!("eks:nodegroup/{GENERAL_GROUP}"),
        "scalingConfig",
    );
    assert_eq!(
        (&d["desired"], &d["actual"]),
        (
            &json!({"minSize": 1, "maxSize": 6}),
            &json!({"minSize": 1, "maxSize": 10})
        )
    );
    assert_eq!(
        drift.len(),
        1,
        "desiredSize is still not reported: {drift:#?}"
    );

    // addons: CoreDNS scaled down through its configuration values.
    let coredns = eks
        .describe_addon()
        .cluster_name(CLUSTER)
        .addon_name("coredns")
        .send()
        .await
        .unwrap()
        .addon
        .expect("coredns");
    let mut values: Value =
        serde_json::from_str(coredns.configuration_values().expect("configured")).unwrap();
    assert_eq!(values["replicaCount"], 3, "{values}");
    values["replicaCount"] = json!(1);
    eks.update_addon()
        .cluster_name(CLUSTER)
        .addon_name("coredns")
        .configuration_values(values.to_string())
        .send()
        .await
        .unwrap();
    let drift = observe(&env, "addons", None).await;
    reported("addons", &drift, "eks:addon/coredns", "configurationValues");

    // bootstrap: the cluster-autoscaler Deployment scaled to zero in the cluster.
    let kube = env.stack.kube_client_for(CLUSTER).expect("kube client");
    Api::<Deployment>::namespaced(kube.clone(), "kube-system")
        .patch(
            "cluster-autoscaler",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "replicas": 0 } })),
        )
        .await
        .unwrap();
    let drift = observe(&env, "bootstrap", None).await;
    let d = reported(
        "bootstrap",
        &drift,
        "k8s:apps/v1/Deployment/kube-system/cluster-autoscaler",
        "spec",
    );
    assert_eq!(d["actual"]["spec"]["replicas"], 0, "{d}");

    // access: the admin principal's cluster-admin policy disassociated, then its entry deleted.
    eks.disassociate_access_policy()
        .cluster_name(CLUSTER)
        .principal_arn(ADMIN)
        .policy_arn("arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy")
        .send()
        .await
        .unwrap();
    let drift = observe(&env, "access", None).await;
    reported(
        "access",
        &drift,
        &format!("eks:access-entry/{ADMIN}"),
        "accessPolicies",
    );
    eks.delete_access_entry()
        .cluster_name(CLUSTER)
        .principal_arn(ADMIN)
        .send()
        .await
        .unwrap();
    let drift = observe(&env, "access", None).await;
    let d = reported(
        "access",
        &drift,
        &format!("eks:cluster/{CLUSTER}"),
        "accessEntries",
    );
    assert_eq!((&d["desired"], &d["actual"]), (&json!([ADMIN]), &json!([])));

    // observability: the node CPU alarm's threshold raised from 80 to 95.
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&env.aws);
    let alarm = cloudwatch
        .describe_alarms()
        .alarm_names(CPU_ALARM)
        .send()
        .await
        .unwrap()
        .metric_alarms()
        .first()
        .cloned()
        .expect("cpu alarm");
    assert_eq!(alarm.threshold(), Some(80.0));
    cloudwatch
        .put_metric_alarm()
        .alarm_name(CPU_ALARM)
        .set_alarm_description(alarm.alarm_description().map(str::to_owned))
        .set_namespace(alarm.namespace().map(str::to_owned))
        .set_metric_name(alarm.metric_name().map(str::to_owned))
        .set_dimensions(Some(alarm.dimensions().to_vec()))
        .set_statistic(alarm.statistic().cloned())
        .set_period(alarm.period())
        .set_evaluation_periods(alarm.evaluation_periods())
        .set_datapoints_to_alarm(alarm.datapoints_to_alarm())
        .threshold(95.0)
        .set_comparison_operator(alarm.comparison_operator().cloned())
        .set_treat_missing_data(alarm.treat_missing_data().map(str::to_owned))
        .set_actions_enabled(alarm.actions_enabled())
        .set_alarm_actions(Some(alarm.alarm_actions().to_vec()))
        .set_ok_actions(Some(alarm.ok_actions().to_vec()))
        .send()
        .await
        .unwrap();
    let drift = observe(&env, "observability", None).await;
    let d = reported(
        "observability",
        &drift,
        &format!("cloudwatch:alarm/{CPU_ALARM}"),
        "definition",
    );
    assert_eq!(
        (&d["desired"]["threshold"], &d["actual"]["threshold"]),
        (&json!(80.0), &json!(95.0))
    );

    // tenant: the tenant's egress policy edited to let pods reach instance metadata.
    let policies = Api::<NetworkPolicy>::namespaced(kube, TENANT);
    let live = serde_json::to_value(policies.get(EGRESS_POLICY).await.unwrap()).unwrap();
    let mut egress = live["spec"]["egress"].clone();
    let block = &mut egress[0]["to"][0]["ipBlock"];
    assert_eq!(block["except"], json!(["169.254.169.254/32"]), "{live}");
    block.as_object_mut().unwrap().remove("except");
    policies
        .patch(
            EGRESS_POLICY,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "egress": egress } })),
        )
        .await
        .unwrap();
    let drift = observe(&env, "tenant", Some(TENANT)).await;
    let d = reported(
        "tenant",
        &drift,
        &format!("k8s:networking.k8s.io/v1/NetworkPolicy/{TENANT}/{EGRESS_POLICY}"),
        "spec",
    );
    assert!(
        d["actual"]["spec"]["egress"][0]["to"][0]["ipBlock"]
            .get("except")
            .is_none(),
        "{d}"
    );

    eprintln!(
        "observe drift test: provision {:.1}s, total {:.1}s",
        run.elapsed.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}

/// The runtime, not each phase, keeps `observe` from writing: the configuration
/// `PhaseContext::aws` hands to an observe refuses every mutating call of every protocol the
/// phases use (query, JSON, REST, CBOR) before it is sent, and lets reads through. The local
/// stack's own classification of the calls that arrived is the judge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_observe_configuration_sends_no_mutating_call() {
    use tenantry::aws::read_only::{read_only, REFUSED};
    let stack = tenantry_integration::stack().await;
    let aws = read_only(&stack.deps().await.aws);
    let ec2 = aws_sdk_ec2::Client::new(&aws);
    let kms = aws_sdk_kms::Client::new(&aws);
    let iam = aws_sdk_iam::Client::new(&aws);
    let eks = aws_sdk_eks::Client::new(&aws);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&aws);
    let sns = aws_sdk_sns::Client::new(&aws);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&aws);
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    stack.reset_calls();

    let writes: Vec<(&str, String)> = vec![
        (
            "ec2 CreateVpc",
            format!(
                "{:?}",
                ec2.create_vpc().cidr_block("10.9.0.0/16").send().await
            ),
        ),
        (
            "kms CreateKey",
            format!("{:?}", kms.create_key().send().await),
        ),
        (
            "iam CreateRole",
            format!(
                "{:?}",
                iam.create_role()
                    .role_name("observe-must-not")
                    .assume_role_policy_document("{}")
                    .send()
                    .await
            ),
        ),
        (
            "eks DeleteCluster",
            format!(
                "{:?}",
                eks.delete_cluster().name("payments-prod").send().await
            ),
        ),
        (
            "logs DeleteLogGroup",
            format!(
                "{:?}",
                logs.delete_log_group().log_group_name("x").send().await
            ),
        ),
        (
            "sns CreateTopic",
            format!("{:?}", sns.create_topic().name("x").send().await),
        ),
        (
            "cloudwatch DeleteAlarms",
            format!(
                "{:?}",
                cloudwatch.delete_alarms().alarm_names("x").send().await
            ),
        ),
        (
            "secretsmanager CreateSecret",
            format!(
                "{:?}",
                secrets
                    .create_secret()
                    .name("x")
                    .secret_string("y")
                    .send()
                    .await
            ),
        ),
    ];
    for (call, result) in &writes {
        assert!(result.contains(REFUSED), "{call} was not refused: {result}");
    }

    ec2.describe_vpcs().send().await.expect("ec2 DescribeVpcs");
    kms.list_keys().send().await.expect("kms ListKeys");
    iam.list_roles().send().await.expect("iam ListRoles");
    eks.list_clusters().send().await.expect("eks ListClusters");
    logs.describe_log_groups()
        .send()
        .await
        .expect("logs DescribeLogGroups");
    sns.list_topics().send().await.expect("sns ListTopics");
    cloudwatch
        .describe_alarms()
        .send()
        .await
        .expect("cloudwatch DescribeAlarms");
    secrets
        .list_secrets()
        .send()
        .await
        .expect("secretsmanager ListSecrets");

    let log = stack.calls();
    let sent: Vec<_> = log
        .calls
        .iter()
        .map(|c| (&c.service, &c.operation, c.mutating))
        .collect();
    assert_eq!(
        log.mutating_count(),
        0,
        "mutating calls reached the stack: {sent:?}"
    );
    assert_eq!(
        log.read_count(),
        8,
        "every read reaches the stack once: {sent:?}"
    );
}
