//! CloudWatch alarms through `aws-sdk-cloudwatch` (Smithy RPC v2 CBOR) against the local stack:
//! the gateway serves them itself, statefully, since moto answers CloudWatch in XML.

use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, Metric, MetricAlarm, MetricDataQuery, MetricStat, StateValue,
    Statistic, Tag,
};
use aws_sdk_cloudwatch::Client;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tenantry_gateway::{Faults, LocalStack, StackOptions};

async fn start() -> (LocalStack, Client) {
    let stack = LocalStack::start(StackOptions::default())
        .await
        .expect("local stack starts");
    let client = Client::new(&stack.sdk_config().await);
    (stack, client)
}

/// A client of the same stack in another region.
async fn client_in(stack: &LocalStack, region: &'static str) -> Client {
    let conf = aws_sdk_cloudwatch::config::Builder::from(&stack.sdk_config().await)
        .region(aws_sdk_cloudwatch::config::Region::new(region))
        .build();
    Client::from_conf(conf)
}

fn arn(stack: &LocalStack, name: &str) -> String {
    format!(
        "arn:aws:cloudwatch:{}:123456789012:alarm:{name}",
        stack.region()
    )
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

fn tags_of(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Everything one test alarm sets.
struct Spec {
    name: &'static str,
    metric: &'static str,
    statistic: Statistic,
    threshold: f64,
    comparison: ComparisonOperator,
    actions_enabled: bool,
    tags: &'static [(&'static str, &'static str)],
}

fn topic(name: &str) -> String {
    format!("arn:aws:sns:us-east-1:123456789012:{name}")
}

async fn put(cw: &Client, s: &Spec) {
    let mut req = cw
        .put_metric_alarm()
        .alarm_name(s.name)
        .alarm_description(format!("{} is too high", s.metric))
        .namespace("ContainerInsights")
        .metric_name(s.metric)
        .dimensions(
            Dimension::builder()
                .name("ClusterName")
                .value("dev")
                .build(),
        )
        .dimensions(
            Dimension::builder()
                .name("Namespace")
                .value("team-a")
                .build(),
        )
        .statistic(s.statistic.clone())
        .period(300)
        .evaluation_periods(3)
        .datapoints_to_alarm(2)
        .threshold(s.threshold)
        .comparison_operator(s.comparison.clone())
        .treat_missing_data("notBreaching")
        .alarm_actions(topic("alarms"))
        .alarm_actions(topic("pager"))
        .ok_actions(topic("ok"))
        .insufficient_data_actions(topic("insufficient"))
        .actions_enabled(s.actions_enabled);
    for (k, v) in s.tags {
        req = req.tags(tag(k, v));
    }
    req.send().await.expect("PutMetricAlarm");
}

fn assert_alarm(stack: &LocalStack, a: &MetricAlarm, s: &Spec, before: f64) {
    assert_eq!(a.alarm_name(), Some(s.name));
    assert_eq!(a.alarm_arn(), Some(arn(stack, s.name).as_str()));
    let description = format!("{} is too high", s.metric);
    assert_eq!(a.alarm_description(), Some(description.as_str()));
    assert_eq!(a.namespace(), Some("ContainerInsights"));
    assert_eq!(a.metric_name(), Some(s.metric));
    let dims: Vec<(&str, &str)> = a
        .dimensions()
        .iter()
        .map(|d| (d.name().unwrap(), d.value().unwrap()))
        .collect();
    assert_eq!(dims, vec![("ClusterName", "dev"), ("Namespace", "team-a")]);
    assert_eq!(a.statistic(), Some(&s.statistic));
    assert_eq!(a.extended_statistic(), None);
    assert_eq!(a.period(), Some(300));
    assert_eq!(a.evaluation_periods(), Some(3));
    assert_eq!(a.datapoints_to_alarm(), Some(2));
    assert_eq!(a.threshold(), Some(s.threshold));
    assert_eq!(a.comparison_operator(), Some(&s.comparison));
    assert_eq!(a.treat_missing_data(), Some("notBreaching"));
    assert_eq!(a.alarm_actions(), [topic("alarms"), topic("pager")]);
    assert_eq!(a.ok_actions(), [topic("ok")]);
    assert_eq!(a.insufficient_data_actions(), [topic("insufficient")]);
    assert_eq!(a.actions_enabled(), Some(s.actions_enabled));
    assert_eq!(a.state_value(), Some(&StateValue::InsufficientData));
    assert!(a.state_reason().is_some_and(|r| !r.is_empty()));
    for ts in [
        a.alarm_configuration_updated_timestamp(),
        a.state_updated_timestamp(),
    ] {
        let secs = ts.expect("timestamp").as_secs_f64();
        assert!(
            secs >= before - 1.0 && secs <= now_secs() + 1.0,
            "{secs} not between {before} and now"
        );
    }
}

const CPU: Spec = Spec {
    name: "tenantry-dev-cpu",
    metric: "node_cpu_utilization",
    statistic: Statistic::Average,
    threshold: 80.5,
    comparison: ComparisonOperator::GreaterThanThreshold,
    actions_enabled: true,
    tags: &[("tenantry:platform", "dev"), ("team", "a")],
};

const MEM: Spec = Spec {
    name: "tenantry-dev-mem",
    metric: "node_memory_utilization",
    statistic: Statistic::Maximum,
    threshold: 90.0,
    comparison: ComparisonOperator::GreaterThanOrEqualToThreshold,
    actions_enabled: false,
    tags: &[("tenantry:platform", "dev")],
};

#[tokio::test]
async fn alarms_round_trip_and_are_counted() {
    let (stack, cw) = start().await;
    let before = now_secs();
    put(&cw, &CPU).await;
    put(&cw, &MEM).await;
    // Another alarm that the prefix must not match.
    put(
        &cw,
        &Spec {
            name: "other-cpu",
            tags: &[],
            ..CPU
        },
    )
    .await;

    // By prefix: both, sorted by name, every field round-tripped.
    let out = cw
        .describe_alarms()
        .alarm_name_prefix("tenantry-dev-")
        .send()
        .await
        .expect("DescribeAlarms by prefix");
    let alarms = out.metric_alarms();
    assert_eq!(alarms.len(), 2, "{alarms:#?}");
    assert_alarm(&stack, &alarms[0], &CPU, before);
    assert_alarm(&stack, &alarms[1], &MEM, before);
    assert_eq!(out.next_token(), None);

    // By names (a missing name is no error).
    let out = cw
        .describe_alarms()
        .alarm_names(MEM.name)
        .alarm_names("no-such-alarm")
        .send()
        .await
        .expect("DescribeAlarms by names");
    assert_eq!(out.metric_alarms().len(), 1);
    assert_alarm(&stack, &out.metric_alarms()[0], &MEM, before);

    // Filters the SDK offers: state and action prefix.
    let out = cw
        .describe_alarms()
        .state_value(StateValue::Alarm)
        .send()
        .await
        .unwrap();
    assert!(out.metric_alarms().is_empty());
    let out = cw
        .describe_alarms()
        .action_prefix(topic("pager"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.metric_alarms().len(), 3);

    // PutMetricAlarm again replaces the configuration; its tags are ignored on an update.
    let first_update = out.metric_alarms()[1]
        .alarm_configuration_updated_timestamp()
        .unwrap()
        .as_secs_f64();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let changed = Spec {
        threshold: 95.25,
        comparison: ComparisonOperator::LessThanThreshold,
        tags: &[("ignored", "on-update")],
        ..CPU
    };
    put(&cw, &changed).await;
    let out = cw
        .describe_alarms()
        .alarm_names(CPU.name)
        .send()
        .await
        .unwrap();
    assert_eq!(out.metric_alarms().len(), 1);
    let replaced = &out.metric_alarms()[0];
    assert_alarm(&stack, replaced, &changed, before);
    assert!(
        replaced
            .alarm_configuration_updated_timestamp()
            .unwrap()
            .as_secs_f64()
            > first_update
    );

    // Pagination, one record a page: by hand and with the SDK's paginator.
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let out = cw
            .describe_alarms()
            .max_records(1)
            .set_next_token(token.clone())
            .send()
            .await
            .expect("page");
        pages += 1;
        assert!(out.metric_alarms().len() <= 1);
        names.extend(
            out.metric_alarms()
                .iter()
                .map(|a| a.alarm_name().unwrap().to_owned()),
        );
        token = out.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(names, ["other-cpu", "tenantry-dev-cpu", "tenantry-dev-mem"]);
    assert_eq!(pages, 3);
    let paged: Vec<String> = cw
        .describe_alarms()
        .alarm_name_prefix("tenantry-dev-")
        .max_records(1)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("paginator")
        .iter()
        .flat_map(|p| p.metric_alarms())
        .map(|a| a.alarm_name().unwrap().to_owned())
        .collect();
    assert_eq!(paged, ["tenantry-dev-cpu", "tenantry-dev-mem"]);

    // Tags by ARN: as created (not as updated), then tagged and untagged.
    let cpu_arn = arn(&stack, CPU.name);
    let list = |arn: String| {
        let cw = cw.clone();
        async move {
            cw.list_tags_for_resource()
                .resource_arn(arn)
                .send()
                .await
                .map(|o| tags_of(o.tags()))
        }
    };
    let expected = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert_eq!(list(cpu_arn.clone()).await.unwrap(), expected(CPU.tags));
    assert_eq!(
        list(arn(&stack, MEM.name)).await.unwrap(),
        expected(MEM.tags)
    );
    assert!(list(arn(&stack, "other-cpu")).await.unwrap().is_empty());
    cw.tag_resource()
        .resource_arn(&cpu_arn)
        .tags(tag("cost-center", "42"))
        .tags(tag("team", "b"))
        .send()
        .await
        .expect("TagResource");
    assert_eq!(
        list(cpu_arn.clone()).await.unwrap(),
        expected(&[
            ("cost-center", "42"),
            ("team", "b"),
            ("tenantry:platform", "dev")
        ])
    );
    cw.untag_resource()
        .resource_arn(&cpu_arn)
        .tag_keys("team")
        .send()
        .await
        .expect("UntagResource");
    assert_eq!(
        list(cpu_arn.clone()).await.unwrap(),
        expected(&[("cost-center", "42"), ("tenantry:platform", "dev")])
    );

    // Delete (a missing name is fine), then they are gone, tags included.
    cw.delete_alarms()
        .alarm_names(CPU.name)
        .alarm_names(MEM.name)
        .alarm_names("never-existed")
        .send()
        .await
        .expect("DeleteAlarms");
    let out = cw
        .describe_alarms()
        .alarm_name_prefix("tenantry-dev-")
        .send()
        .await
        .unwrap();
    assert!(out.metric_alarms().is_empty());
    let err = list(cpu_arn.clone())
        .await
        .expect_err("tags of a deleted alarm")
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    let err = cw
        .tag_resource()
        .resource_arn(&cpu_arn)
        .tags(tag("a", "b"))
        .send()
        .await
        .expect_err("tagging a deleted alarm")
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");

    // The call log: Put x4, Tag x2 (one failed), Untag, Delete mutate; the rest read.
    let calls = stack.calls();
    assert_eq!(calls.count("cloudwatch", "PutMetricAlarm"), 4);
    assert_eq!(calls.count("cloudwatch", "DeleteAlarms"), 1);
    assert_eq!(calls.count("cloudwatch", "TagResource"), 2);
    assert_eq!(calls.count("cloudwatch", "UntagResource"), 1);
    let describes = calls.count("cloudwatch", "DescribeAlarms");
    let lists = calls.count("cloudwatch", "ListTagsForResource");
    assert_eq!((describes, lists), (11, 6));
    assert_eq!(calls.by_service()["cloudwatch"], (8, describes + lists));
    assert!(calls
        .calls
        .iter()
        .filter(|c| c.service == "cloudwatch")
        .all(|c| c.mutating
            == !matches!(
                c.operation.as_str(),
                "DescribeAlarms" | "ListTagsForResource"
            )));
    stack.shutdown().await;
}

#[tokio::test]
async fn metric_math_alarms_round_trip() {
    let (stack, cw) = start().await;
    let query = |id: &str, metric: &str| {
        MetricDataQuery::builder()
            .id(id)
            .return_data(false)
            .metric_stat(
                MetricStat::builder()
                    .metric(
                        Metric::builder()
                            .namespace("AWS/SQS")
                            .metric_name(metric)
                            .dimensions(
                                Dimension::builder()
                                    .name("QueueName")
                                    .value("intake-dlq")
                                    .build(),
                            )
                            .build(),
                    )
                    .period(60)
                    .stat("Sum")
                    .build(),
            )
            .build()
    };
    cw.put_metric_alarm()
        .alarm_name("dlq-growth")
        .metrics(query("sent", "NumberOfMessagesSent"))
        .metrics(query("deleted", "NumberOfMessagesDeleted"))
        .metrics(
            MetricDataQuery::builder()
                .id("growth")
                .expression("sent - deleted")
                .label("growth")
                .return_data(true)
                .build(),
        )
        .evaluation_periods(1)
        .threshold(0.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .expect("PutMetricAlarm with Metrics");
    let out = cw
        .describe_alarms()
        .alarm_names("dlq-growth")
        .send()
        .await
        .unwrap();
    let a = &out.metric_alarms()[0];
    assert_eq!(a.metric_name(), None);
    assert!(a.dimensions().is_empty());
    assert_eq!(a.threshold(), Some(0.0));
    let metrics = a.metrics();
    assert_eq!(metrics.len(), 3);
    assert_eq!(metrics[2].expression(), Some("sent - deleted"));
    assert_eq!(metrics[2].return_data(), Some(true));
    let stat = metrics[0].metric_stat().unwrap();
    assert_eq!(stat.period(), Some(60));
    assert_eq!(stat.stat(), Some("Sum"));
    let metric = stat.metric().unwrap();
    assert_eq!(metric.metric_name(), Some("NumberOfMessagesSent"));
    assert_eq!(metric.dimensions()[0].value(), Some("intake-dlq"));
    // Defaults AWS fills in.
    assert_eq!(a.actions_enabled(), Some(true));
    assert!(a.alarm_actions().is_empty());

    // The wire format, seen raw: RPC v2 CBOR headers, tag-1 epoch-second timestamps.
    let auth = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/monitoring/aws4_request, \
                SignedHeaders=host, Signature=0";
    let r = reqwest::Client::new()
        .post(format!(
            "{}/service/GraniteServiceVersion20100801/operation/DescribeAlarms",
            stack.endpoint()
        ))
        .header("smithy-protocol", "rpc-v2-cbor")
        .header("content-type", "application/cbor")
        .header("accept", "application/cbor")
        .header("authorization", auth)
        .body(vec![0xa0u8])
        .send()
        .await
        .expect("raw DescribeAlarms");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["smithy-protocol"], "rpc-v2-cbor");
    assert_eq!(r.headers()["content-type"], "application/cbor");
    let body: ciborium::Value = ciborium::from_reader(&r.bytes().await.unwrap()[..]).unwrap();
    let member = |v: &ciborium::Value, k: &str| -> ciborium::Value {
        v.as_map()
            .and_then(|m| m.iter().find(|(x, _)| x.as_text() == Some(k)))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{k} missing in {v:?}"))
    };
    let alarm = member(&body, "MetricAlarms").as_array().unwrap()[0].clone();
    match member(&alarm, "StateUpdatedTimestamp") {
        ciborium::Value::Tag(1, secs) => {
            assert!(secs.as_float().is_some_and(|s| s > 1.7e9), "{secs:?}")
        }
        other => panic!("not a tag-1 timestamp: {other:?}"),
    }
    assert_eq!(member(&alarm, "Threshold"), ciborium::Value::Float(0.0));
    stack.shutdown().await;
}

#[tokio::test]
async fn invalid_input_regions_and_faults() {
    let (stack, cw) = start().await;

    // Missing and invalid parameters, with CloudWatch's awsQuery codes.
    let err = cw
        .put_metric_alarm()
        .metric_name("m")
        .namespace("n")
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .expect_err("no AlarmName")
        .into_service_error();
    assert_eq!(err.meta().code(), Some("MissingParameter"), "{err:?}");
    let err = cw
        .put_metric_alarm()
        .alarm_name("a")
        .metric_name("m")
        .namespace("n")
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::from("Sideways"))
        .send()
        .await
        .expect_err("unknown comparison operator")
        .into_service_error();
    assert_eq!(err.meta().code(), Some("InvalidParameterValue"), "{err:?}");
    let err = cw
        .put_metric_alarm()
        .alarm_name("a")
        .metric_name("m")
        .namespace("n")
        .statistic(Statistic::Sum)
        .extended_statistic("p99")
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .expect_err("Statistic and ExtendedStatistic")
        .into_service_error();
    assert_eq!(
        err.meta().code(),
        Some("InvalidParameterCombination"),
        "{err:?}"
    );
    let err = cw
        .describe_alarms()
        .next_token("not a token")
        .send()
        .await
        .expect_err("bad token")
        .into_service_error();
    assert!(err.is_invalid_next_token(), "{err:?}");
    let err = cw
        .list_tags_for_resource()
        .resource_arn("not-an-arn")
        .send()
        .await
        .expect_err("bad ARN")
        .into_service_error();
    assert!(err.is_invalid_parameter_value_exception(), "{err:?}");

    // State is per region.
    put(&cw, &CPU).await;
    let eu = client_in(&stack, "eu-west-1").await;
    let out = eu.describe_alarms().send().await.unwrap();
    assert!(out.metric_alarms().is_empty());
    let err = eu
        .list_tags_for_resource()
        .resource_arn(arn(&stack, CPU.name))
        .send()
        .await
        .expect_err("an ARN of another region")
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    put(&eu, &MEM).await;
    let out = eu.describe_alarms().send().await.unwrap();
    assert_eq!(
        out.metric_alarms()[0].alarm_arn(),
        Some("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:tenantry-dev-mem")
    );
    assert_eq!(
        cw.describe_alarms()
            .send()
            .await
            .unwrap()
            .metric_alarms()
            .len(),
        1
    );

    // Injected throttling is an RPC v2 CBOR error the SDK recognises and retries.
    stack.reset_calls();
    stack.set_faults(Faults {
        throttle_percent: 100,
        ..Faults::default()
    });
    let err = cw
        .describe_alarms()
        .send()
        .await
        .expect_err("always throttled")
        .into_service_error();
    assert_eq!(err.meta().code(), Some("Throttling"), "{err:?}");
    let calls = stack.calls();
    assert!(
        calls.count("cloudwatch", "DescribeAlarms") > 1,
        "throttling is retried: {calls:?}"
    );
    assert!(calls
        .calls
        .iter()
        .all(|c| c.fault.as_deref() == Some("throttle")));
    stack.set_faults(Faults::default());
    assert_eq!(
        cw.describe_alarms()
            .send()
            .await
            .unwrap()
            .metric_alarms()
            .len(),
        1
    );
    stack.shutdown().await;
}
