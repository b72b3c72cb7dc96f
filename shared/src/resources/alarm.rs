//! `cloudwatch:alarm`: one of the platform's CloudWatch alarms ([`crate::plan::ALARMS`]).
//!
//! - **Found by** the name prefix `tenantry-<stem>-` ([`find_all`]: one paginated
//!   `DescribeAlarms`). The prefix may also begin another platform's names, so an alarm under it
//!   is the platform's when its name is one the platform defines, or by its tags ([`read_tags`]).
//! - **Desired** ([`Desired`]): its definition ([`AlarmView::desired`]) and Tenantry's tags.
//! - **Owned fields** ([`Desired::differences`]): `definition` (every field `PutMetricAlarm`
//!   sets, compared as an [`AlarmView`]) and the tags Tenantry sets. Left to others: the alarm's
//!   state, its history, other tags.
//! - **Create, update, delete** ([`create`]: tagged in the creating call; [`repair`]: a
//!   definition is put whole again; [`remove`]: in batches, already gone counting as removed).
//!
//! An alarm's definition is compared as an [`AlarmView`]: the fields `PutMetricAlarm` sets, with
//! the API's defaults filled in where a service leaves a field out (`DatapointsToAlarm` =
//! `EvaluationPeriods`, `TreatMissingData` = `missing`, `ActionsEnabled` = true), so an alarm as
//! specified compares equal whatever the service chose to echo.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricAlarm, Statistic, Tag};
use serde::Serialize;

use super::{missing_tags, Difference, Differences};
use crate::error::FunctionError;
use crate::naming::Names;
use crate::phases::aws_error;
use crate::plan::{AlarmDefinition, ALARM_NAMESPACE};

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

    /// As JSON, for a difference.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// An alarm to have.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub view: AlarmView,
    pub tags: BTreeMap<String, String>,
}

/// A live alarm: its definition, and its address and tags.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    pub arn: Option<String>,
    pub view: AlarmView,
    /// `None`: not read (tags are one more call per alarm; see [`read_tags`]).
    pub tags: Option<BTreeMap<String, String>>,
}

impl Desired {
    /// The owned fields of `live` that differ from this.
    pub fn differences(&self, live: &Live) -> Vec<Difference> {
        let mut d = Differences::default();
        let same = live.view == self.view;
        d.check("definition", self.view.to_json(), live.view.to_json(), same);
        if let Some(tags) = &live.tags {
            d.tags(&self.tags, tags);
        }
        d.0
    }
}

/// The metric alarms whose names begin with `prefix`, by name (tags not read).
pub async fn find_all(
    cw: &aws_sdk_cloudwatch::Client,
    prefix: &str,
) -> Result<BTreeMap<String, Live>, FunctionError> {
    let mut pages = cw
        .describe_alarms()
        .alarm_name_prefix(prefix)
        .into_paginator()
        .send();
    let mut out = BTreeMap::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error("cloudwatch:DescribeAlarms", e))?;
        for alarm in page.metric_alarms() {
            if let Some(name) = alarm.alarm_name().filter(|n| n.starts_with(prefix)) {
                let live = Live {
                    arn: alarm.alarm_arn().map(str::to_owned),
                    view: AlarmView::of(alarm),
                    tags: None,
                };
                out.insert(name.to_owned(), live);
            }
        }
    }
    Ok(out)
}

/// Reads the alarm's tags into `live` (`arn` is used when the alarm did not report one); an
/// alarm gone since it was read has none.
pub async fn read_tags(
    cw: &aws_sdk_cloudwatch::Client,
    live: &mut Live,
    arn: &str,
) -> Result<(), FunctionError> {
    let arn = live.arn.get_or_insert_with(|| arn.to_owned()).clone();
    let tags = match cw.list_tags_for_resource().resource_arn(&arn).send().await {
        Ok(out) => out
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            BTreeMap::new()
        }
        Err(e) => return Err(aws_error("cloudwatch:ListTagsForResource", e)),
    };
    live.tags = Some(tags);
    Ok(())
}

/// Creates the alarm, tagged.
pub async fn create(
    cw: &aws_sdk_cloudwatch::Client,
    desired: &Desired,
) -> Result<(), FunctionError> {
    put(cw, &desired.view, Some(&desired.tags)).await
}

/// Puts one owned field back (a field of [`Desired::differences`]): the definition whole, or the
/// missing tags.
pub async fn repair(
    cw: &aws_sdk_cloudwatch::Client,
    desired: &Desired,
    live: &Live,
    field: &str,
) -> Result<(), FunctionError> {
    if field == "definition" {
        return put(cw, &desired.view, None).await;
    }
    let Some(arn) = &live.arn else {
        return Ok(());
    };
    let empty = BTreeMap::new();
    let actual = live.tags.as_ref().unwrap_or(&empty);
    let missing = missing_tags(&desired.tags, actual);
    cw.tag_resource()
        .resource_arn(arn)
        .set_tags(Some(cloudwatch_tags(&missing)))
        .send()
        .await
        .map_err(|e| aws_error("cloudwatch:TagResource", e))?;
    Ok(())
}

/// Deletes the alarms `names` (in batches of [`DELETE_BATCH`]); already gone counts as deleted.
pub async fn remove(
    cw: &aws_sdk_cloudwatch::Client,
    names: &[String],
) -> Result<(), FunctionError> {
    for batch in names.chunks(DELETE_BATCH) {
        match cw
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
    }
    Ok(())
}

fn cloudwatch_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Puts an alarm as `view` describes it; `tags` apply only when the call creates the alarm.
async fn put(
    cw: &aws_sdk_cloudwatch::Client,
    view: &AlarmView,
    tags: Option<&BTreeMap<String, String>>,
) -> Result<(), FunctionError> {
    let dimensions = view
        .dimensions
        .iter()
        .map(|(k, v)| Dimension::builder().name(k).value(v).build())
        .collect();
    cw.put_metric_alarm()
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
    use crate::plan::ALARMS;
    use serde_json::json;

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
}
