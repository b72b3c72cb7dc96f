//! The platform's CloudWatch alarms ([`crate::plan::ALARMS`]).
//!
//! An alarm's definition is compared as an [`AlarmView`]: the fields `PutMetricAlarm` sets, with
//! the API's defaults filled in where a service leaves a field out (`DatapointsToAlarm` =
//! `EvaluationPeriods`, `TreatMissingData` = `missing`, `ActionsEnabled` = true), so an alarm as
//! specified compares equal whatever the service chose to echo.

use crate::resources::Kind;
use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricAlarm, Statistic, Tag};
use serde::Serialize;
use serde_json::json;

use super::{missing_tags, owned, Clients, Desired};
use crate::error::FunctionError;
use crate::naming::Names;
use crate::phases::aws_error;
use crate::phases::PhaseContext;
use crate::plan::{AlarmDefinition, Phase, ALARMS, ALARM_NAMESPACE};
use crate::store::ResourceRecord;

/// The dimension every alarm filters on.
pub const CLUSTER_DIMENSION: &str = "ClusterName";
/// `DeleteAlarms` takes at most this many names.
const DELETE_BATCH: usize = 100;

/// The comparable definition of a metric alarm.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmView {
    pub name: String,
    pub description: String,
    pub namespace: String,
    pub metric: String,
    pub dimensions: BTreeMap<String, String>,
    pub statistic: String,
    pub period: i32,
    pub evaluation_periods: i32,
    pub datapoints_to_alarm: i32,
    pub threshold: f64,
    pub comparison: String,
    pub treat_missing_data: String,
    pub actions_enabled: bool,
    pub alarm_actions: BTreeSet<String>,
    pub ok_actions: BTreeSet<String>,
    pub insufficient_data_actions: BTreeSet<String>,
}

impl AlarmView {
    /// The alarm `def` of the platform `names`, notifying `topic` on ALARM and OK.
    pub fn desired(def: &AlarmDefinition, names: &Names, topic: &str) -> AlarmView {
        AlarmView {
            name: names.alarm(def.name),
            description: format!("Tenantry {}: {}", names.stem(), def.description),
            namespace: ALARM_NAMESPACE.to_owned(),
            metric: def.metric.to_owned(),
            dimensions: BTreeMap::from([(CLUSTER_DIMENSION.to_owned(), names.cluster())]),
            statistic: def.statistic.to_owned(),
            period: def.period_seconds,
            evaluation_periods: def.evaluation_periods,
            datapoints_to_alarm: def.evaluation_periods,
            threshold: def.threshold,
            comparison: def.comparison.to_owned(),
            treat_missing_data: def.treat_missing_data.to_owned(),
            actions_enabled: true,
            alarm_actions: BTreeSet::from([topic.to_owned()]),
            ok_actions: BTreeSet::from([topic.to_owned()]),
            insufficient_data_actions: BTreeSet::new(),
        }
    }

    /// An alarm as `DescribeAlarms` reports it.
    pub fn of(alarm: &MetricAlarm) -> AlarmView {
        let evaluation_periods = alarm.evaluation_periods().unwrap_or_default();
        let set = |items: &[String]| items.iter().cloned().collect::<BTreeSet<_>>();
        AlarmView {
            name: alarm.alarm_name().unwrap_or_default().to_owned(),
            description: alarm.alarm_description().unwrap_or_default().to_owned(),
            namespace: alarm.namespace().unwrap_or_default().to_owned(),
            metric: alarm.metric_name().unwrap_or_default().to_owned(),
            dimensions: alarm
                .dimensions()
                .iter()
                .map(|d| {
                    (
                        d.name().unwrap_or_default().to_owned(),
                        d.value().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
            statistic: alarm
                .statistic()
                .map(|s| s.as_str())
                .or(alarm.extended_statistic())
                .unwrap_or_default()
                .to_owned(),
            period: alarm.period().unwrap_or_default(),
            evaluation_periods,
            datapoints_to_alarm: alarm.datapoints_to_alarm().unwrap_or(evaluation_periods),
            // An alarm without a threshold (a metric-math alarm) never equals a desired one.
            threshold: alarm.threshold().unwrap_or(f64::NAN),
            comparison: alarm
                .comparison_operator()
                .map(|c| c.as_str())
                .unwrap_or_default()
                .to_owned(),
            treat_missing_data: alarm.treat_missing_data().unwrap_or("missing").to_owned(),
            actions_enabled: alarm.actions_enabled().unwrap_or(true),
            alarm_actions: set(alarm.alarm_actions()),
            ok_actions: set(alarm.ok_actions()),
            insufficient_data_actions: set(alarm.insufficient_data_actions()),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// The alarms the platform wants (none when alarms are off).
pub fn desired_alarms(d: &Desired) -> Vec<AlarmView> {
    match &d.alarm_topic {
        Some(topic) => ALARMS
            .iter()
            .map(|def| AlarmView::desired(def, &d.names, topic))
            .collect(),
        None => Vec::new(),
    }
}

/// Whether `name` is one of the alarm names the platform can have (whatever the spec says now).
fn defined_name(names: &Names, name: &str) -> bool {
    ALARMS.iter().any(|def| names.alarm(def.name) == name)
}

fn alarm_arn(d: &Desired, alarm: Option<&MetricAlarm>, name: &str) -> String {
    alarm
        .and_then(|a| a.alarm_arn())
        .map(str::to_owned)
        .unwrap_or_else(|| d.arn("cloudwatch", &format!("alarm:{name}")))
}

/// Creates or corrects the platform's alarms and removes stale ones; returns the alarm names.
pub(super) async fn ensure(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    d: &Desired,
) -> Result<Vec<String>, FunctionError> {
    let desired = desired_alarms(d);
    let mut existing = describe(c, &d.names.alarm("")).await?;
    let mut names = Vec::new();
    for view in &desired {
        let resource = format!("cloudwatch:alarm/{}", view.name);
        let found = existing.remove(&view.name);
        let arn = alarm_arn(d, found.as_ref(), &view.name);
        match &found {
            None => {
                if !ctx.differs(&resource, "exists", json!(true), json!(false)) {
                    continue;
                }
                put(c, view, Some(&d.tags)).await?;
            }
            Some(alarm) => converge_one(ctx, c, d, view, alarm, &arn).await?,
        }
        let mut record =
            ResourceRecord::new(Kind::Alarm, &view.name, Phase::Observability.as_str());
        record.arn = Some(arn);
        record.tags = d.tags.clone();
        record.attributes = Some(json!({ "metric": view.metric }));
        ctx.record(record).await?;
        names.push(view.name.clone());
    }
    // Left over under the platform's prefix: alarms no longer defined (or alarms turned off).
    let mut stale = Vec::new();
    for (name, alarm) in &existing {
        let wanted = desired.iter().any(|v| &v.name == name);
        if wanted || !ours(c, d, alarm, name).await? {
            continue;
        }
        let resource = format!("cloudwatch:alarm/{name}");
        if ctx.differs(&resource, "exists", json!(false), json!(true)) {
            stale.push(name.clone());
        }
    }
    delete_names(ctx, c, &stale).await?;
    Ok(names)
}

/// Puts back an existing alarm's definition and Tenantry's tags where they differ (noted under
/// `observe`).
async fn converge_one(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    d: &Desired,
    view: &AlarmView,
    alarm: &MetricAlarm,
    arn: &str,
) -> Result<(), FunctionError> {
    let resource = format!("cloudwatch:alarm/{}", view.name);
    let actual = AlarmView::of(alarm);
    if actual != *view && ctx.differs(&resource, "definition", view.to_json(), actual.to_json()) {
        put(c, view, None).await?;
    }
    let tags = list_tags(c, arn).await?;
    let missing = missing_tags(&d.tags, &tags);
    if missing.is_empty() || !ctx.differs(&resource, "tags", json!(missing), json!(tags)) {
        return Ok(());
    }
    c.cloudwatch
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(cloudwatch_tags(&missing)))
        .send()
        .await
        .map_err(|e| aws_error("cloudwatch:TagResource", e))?;
    Ok(())
}

/// Whether an alarm under the platform's prefix is the platform's: one of its defined names, or
/// tagged with it (the prefix `tenantry-<stem>-` may also begin another platform's names).
async fn ours(
    c: &Clients,
    d: &Desired,
    alarm: &MetricAlarm,
    name: &str,
) -> Result<bool, FunctionError> {
    if defined_name(&d.names, name) {
        return Ok(true);
    }
    let tags = list_tags(c, &alarm_arn(d, Some(alarm), name)).await?;
    Ok(owned(&tags, &d.platform_id))
}

/// Deletes every alarm of the platform (defined names, and stale ones tagged with it).
pub(super) async fn delete(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    d: &Desired,
) -> Result<(), FunctionError> {
    let existing = describe(c, &d.names.alarm("")).await?;
    let mut doomed = Vec::new();
    for (name, alarm) in &existing {
        if ours(c, d, alarm, name).await? {
            doomed.push(name.clone());
        }
    }
    delete_names(ctx, c, &doomed).await?;
    for def in ALARMS {
        ctx.forget(Kind::Alarm, &d.names.alarm(def.name)).await?;
    }
    Ok(())
}

async fn delete_names(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    names: &[String],
) -> Result<(), FunctionError> {
    for batch in names.chunks(DELETE_BATCH) {
        match c
            .cloudwatch
            .delete_alarms()
            .set_alarm_names(Some(batch.to_vec()))
            .send()
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found()) => {}
            Err(e) => return Err(aws_error("cloudwatch:DeleteAlarms", e)),
        }
        for name in batch {
            ctx.forget(Kind::Alarm, name).await?;
        }
    }
    Ok(())
}

/// The metric alarms whose names begin with `prefix`, by name.
async fn describe(
    c: &Clients,
    prefix: &str,
) -> Result<BTreeMap<String, MetricAlarm>, FunctionError> {
    let mut pages = c
        .cloudwatch
        .describe_alarms()
        .alarm_name_prefix(prefix)
        .into_paginator()
        .send();
    let mut out = BTreeMap::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error("cloudwatch:DescribeAlarms", e))?;
        for alarm in page.metric_alarms() {
            if let Some(name) = alarm.alarm_name().filter(|n| n.starts_with(prefix)) {
                out.insert(name.to_owned(), alarm.clone());
            }
        }
    }
    Ok(out)
}

async fn list_tags(c: &Clients, arn: &str) -> Result<BTreeMap<String, String>, FunctionError> {
    match c
        .cloudwatch
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
    {
        Ok(out) => Ok(out
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                )
            })
            .collect()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(BTreeMap::new())
        }
        Err(e) => Err(aws_error("cloudwatch:ListTagsForResource", e)),
    }
}

fn cloudwatch_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Puts an alarm as `view` describes it; `tags` apply only when the call creates the alarm.
async fn put(
    c: &Clients,
    view: &AlarmView,
    tags: Option<&BTreeMap<String, String>>,
) -> Result<(), FunctionError> {
    let dimensions = view
        .dimensions
        .iter()
        .map(|(k, v)| Dimension::builder().name(k).value(v).build())
        .collect();
    c.cloudwatch
        .put_metric_alarm()
        .alarm_name(&view.name)
        .alarm_description(&view.description)
        .actions_enabled(view.actions_enabled)
        .set_alarm_actions(Some(view.alarm_actions.iter().cloned().collect()))
        .set_ok_actions(Some(view.ok_actions.iter().cloned().collect()))
        .namespace(&view.namespace)
        .metric_name(&view.metric)
        .set_dimensions(Some(dimensions))
        .statistic(Statistic::from(view.statistic.as_str()))
        .period(view.period)
        .evaluation_periods(view.evaluation_periods)
        .datapoints_to_alarm(view.datapoints_to_alarm)
        .threshold(view.threshold)
        .comparison_operator(ComparisonOperator::from(view.comparison.as_str()))
        .treat_missing_data(&view.treat_missing_data)
        .set_tags(tags.map(cloudwatch_tags))
        .send()
        .await
        .map_err(|e| aws_error("cloudwatch:PutMetricAlarm", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:tenantry-payments-prod-alarms";

    fn names() -> Names {
        let spec = serde_json::from_value(json!({
            "id": "payments", "environment": "prod", "region": "us-east-1"
        }))
        .expect("spec");
        Names::new(&spec)
    }

    fn def(name: &str) -> &'static AlarmDefinition {
        ALARMS
            .iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("{name} is not defined"))
    }

    /// The alarm as a service would report it after `PutMetricAlarm` of `view`.
    fn reported(view: &AlarmView) -> aws_sdk_cloudwatch::types::builders::MetricAlarmBuilder {
        let mut b = MetricAlarm::builder()
            .alarm_name(&view.name)
            .alarm_arn(format!(
                "arn:aws:cloudwatch:us-east-1:111122223333:alarm:{}",
                view.name
            ))
            .alarm_description(&view.description)
            .namespace(&view.namespace)
            .metric_name(&view.metric)
            .statistic(Statistic::from(view.statistic.as_str()))
            .period(view.period)
            .evaluation_periods(view.evaluation_periods)
            .threshold(view.threshold)
            .comparison_operator(ComparisonOperator::from(view.comparison.as_str()))
            .treat_missing_data(&view.treat_missing_data);
        for (k, v) in &view.dimensions {
            b = b.dimensions(Dimension::builder().name(k).value(v).build());
        }
        for a in &view.alarm_actions {
            b = b.alarm_actions(a);
        }
        for a in &view.ok_actions {
            b = b.ok_actions(a);
        }
        b
    }

    #[test]
    fn the_four_alarms_watch_container_insights_of_the_cluster() {
        let defined: BTreeSet<&str> = ALARMS.iter().map(|a| a.name).collect();
        assert_eq!(
            defined,
            BTreeSet::from([
                "node-cpu-high",
                "node-memory-high",
                "failed-nodes",
                "apiserver-errors"
            ])
        );
        let n = names();
        for def in ALARMS {
            let v = AlarmView::desired(def, &n, TOPIC);
            assert_eq!(v.namespace, "ContainerInsights");
            assert_eq!(v.dimensions["ClusterName"], "payments-prod");
            assert!(v.name.starts_with("tenantry-payments-prod-"), "{}", v.name);
            assert_eq!(v.alarm_actions, BTreeSet::from([TOPIC.to_owned()]));
            assert_eq!(v.ok_actions, v.alarm_actions);
            assert_eq!(v.comparison, "GreaterThanThreshold");
            // Every value is one the SDK knows.
            assert!(Statistic::values().contains(&v.statistic.as_str()));
            assert!(ComparisonOperator::values().contains(&v.comparison.as_str()));
        }
        let failed = AlarmView::desired(def("failed-nodes"), &n, TOPIC);
        assert_eq!(
            (
                failed.metric.as_str(),
                failed.statistic.as_str(),
                failed.threshold
            ),
            ("cluster_failed_node_count", "Maximum", 0.0)
        );
        assert_eq!(failed.treat_missing_data, "notBreaching");
        let api = AlarmView::desired(def("apiserver-errors"), &n, TOPIC);
        assert_eq!(
            (
                api.metric.as_str(),
                api.statistic.as_str(),
                api.period,
                api.threshold
            ),
            ("apiserver_request_total_5xx", "Sum", 300, 0.0)
        );
        assert_eq!(api.treat_missing_data, "notBreaching");
        let cpu = AlarmView::desired(def("node-cpu-high"), &n, TOPIC);
        assert_eq!(
            (cpu.metric.as_str(), cpu.threshold),
            ("node_cpu_utilization", 80.0)
        );
        let mem = AlarmView::desired(def("node-memory-high"), &n, TOPIC);
        assert_eq!(
            (mem.metric.as_str(), mem.threshold),
            ("node_memory_utilization", 80.0)
        );
    }

    #[test]
    fn an_alarm_as_put_compares_equal_with_the_api_defaults_filled_in() {
        let n = names();
        for def in ALARMS {
            let view = AlarmView::desired(def, &n, TOPIC);
            // Services may leave out DatapointsToAlarm and ActionsEnabled when they are defaults.
            assert_eq!(
                AlarmView::of(&reported(&view).build()),
                view,
                "{}",
                def.name
            );
            let full = reported(&view)
                .datapoints_to_alarm(view.datapoints_to_alarm)
                .actions_enabled(true)
                .build();
            assert_eq!(AlarmView::of(&full), view);
        }
    }

    #[test]
    fn every_changed_field_is_a_difference() {
        let view = AlarmView::desired(def("node-cpu-high"), &names(), TOPIC);
        let changed = [
            reported(&view).threshold(90.0).build(),
            reported(&view).statistic(Statistic::Maximum).build(),
            reported(&view).period(60).build(),
            reported(&view).treat_missing_data("breaching").build(),
            reported(&view).actions_enabled(false).build(),
            reported(&view).set_ok_actions(Some(vec![])).build(),
            reported(&view)
                .alarm_actions("arn:aws:sns:us-east-1:111122223333:other")
                .build(),
            reported(&view).insufficient_data_actions(TOPIC).build(),
            reported(&view).set_dimensions(Some(vec![])).build(),
            reported(&view).metric_name("node_cpu_limit").build(),
            reported(&view).set_threshold(None).build(),
        ];
        for alarm in changed {
            assert_ne!(AlarmView::of(&alarm), view, "{alarm:?}");
        }
    }

    #[test]
    fn only_the_platforms_alarm_names_are_defined_names() {
        let n = names();
        assert!(defined_name(&n, "tenantry-payments-prod-failed-nodes"));
        assert!(!defined_name(&n, "tenantry-payments-prod-pod-restarts"));
        assert!(!defined_name(&n, "tenantry-payments-prod-x-failed-nodes"));
    }
}
