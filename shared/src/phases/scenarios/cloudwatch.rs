//! CloudWatch metric alarms and their tags, as `PutMetricAlarm` leaves them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_cloudwatch::types::{MetricAlarm, Tag};
use aws_sdk_cloudwatch::Client;
use aws_smithy_mocks::{MockResponse as R, Rule};

use super::{answer, Calls, ACCOUNT};

#[derive(Default)]
struct State {
    alarms: BTreeMap<String, MetricAlarm>,
    tags: BTreeMap<String, BTreeMap<String, String>>,
}

/// The alarms of one account and region, by name; tags by ARN.
#[derive(Clone, Default)]
pub struct CloudWatchDouble {
    state: Arc<Mutex<State>>,
    calls: Calls,
}

fn arn(name: &str) -> String {
    format!("arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{name}")
}

fn tag_pairs(tags: &[Tag]) -> impl Iterator<Item = (String, String)> + '_ {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
}

impl CloudWatchDouble {
    pub fn new(calls: &Calls) -> Self {
        CloudWatchDouble {
            calls: calls.clone(),
            ..Default::default()
        }
    }

    pub fn alarms(&self) -> BTreeMap<String, MetricAlarm> {
        self.state.lock().expect("cloudwatch").alarms.clone()
    }

    /// Changes an alarm out of band (the SDK type's fields are public).
    pub fn edit(&self, name: &str, change: impl FnOnce(&mut MetricAlarm)) {
        let mut state = self.state.lock().expect("cloudwatch");
        change(state.alarms.get_mut(name).expect("alarm"));
    }

    /// Deletes an alarm out of band.
    pub fn remove(&self, name: &str) {
        let mut state = self.state.lock().expect("cloudwatch");
        state.alarms.remove(name);
        state.tags.remove(&arn(name));
    }

    /// An alarm's tags.
    pub fn tags(&self, name: &str) -> BTreeMap<String, String> {
        let state = self.state.lock().expect("cloudwatch");
        state.tags.get(&arn(name)).cloned().unwrap_or_default()
    }

    /// Changes an alarm's tags out of band.
    pub fn edit_tags(&self, name: &str, change: impl FnOnce(&mut BTreeMap<String, String>)) {
        let mut state = self.state.lock().expect("cloudwatch");
        change(state.tags.entry(arn(name)).or_default());
    }

    /// Adds an alarm named `name` out of band, a copy of `like` with `tags`.
    pub fn add(&self, name: &str, like: &str, tags: &[(&str, &str)]) {
        let mut state = self.state.lock().expect("cloudwatch");
        let mut alarm = state.alarms[like].clone();
        alarm.alarm_name = Some(name.to_owned());
        alarm.alarm_arn = Some(arn(name));
        state.alarms.insert(name.to_owned(), alarm);
        let tags = tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        state.tags.insert(arn(name), tags.collect());
    }

    pub fn rules(&self) -> Vec<Rule> {
        use aws_sdk_cloudwatch::operation::*;
        vec![
            answer!(
                self,
                Client::describe_alarms,
                "cloudwatch:DescribeAlarms",
                |me, req| {
                    let prefix = req.alarm_name_prefix().unwrap_or_default();
                    let alarms = me
                        .alarms()
                        .into_iter()
                        .filter(|(name, _)| name.starts_with(prefix))
                        .map(|(_, a)| a)
                        .collect();
                    R::Output(
                        describe_alarms::DescribeAlarmsOutput::builder()
                            .set_metric_alarms(Some(alarms))
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::put_metric_alarm,
                "cloudwatch:PutMetricAlarm",
                |me, req| {
                    let name = req.alarm_name().unwrap_or_default().to_owned();
                    let alarm = MetricAlarm::builder()
                        .alarm_name(&name)
                        .alarm_arn(arn(&name))
                        .set_alarm_description(req.alarm_description().map(str::to_owned))
                        .set_namespace(req.namespace().map(str::to_owned))
                        .set_metric_name(req.metric_name().map(str::to_owned))
                        .set_dimensions(Some(req.dimensions().to_vec()))
                        .set_statistic(req.statistic().cloned())
                        .set_period(req.period())
                        .set_evaluation_periods(req.evaluation_periods())
                        .set_datapoints_to_alarm(req.datapoints_to_alarm())
                        .set_threshold(req.threshold())
                        .set_comparison_operator(req.comparison_operator().cloned())
                        .set_treat_missing_data(req.treat_missing_data().map(str::to_owned))
                        .actions_enabled(req.actions_enabled().unwrap_or(true))
                        .set_alarm_actions(Some(req.alarm_actions().to_vec()))
                        .set_ok_actions(Some(req.ok_actions().to_vec()))
                        .set_insufficient_data_actions(Some(
                            req.insufficient_data_actions().to_vec(),
                        ))
                        .build();
                    let mut state = me.state.lock().expect("cloudwatch");
                    // Tags apply when the call creates the alarm, as CloudWatch does.
                    if !state.alarms.contains_key(&name) {
                        state
                            .tags
                            .insert(arn(&name), tag_pairs(req.tags()).collect());
                    }
                    state.alarms.insert(name, alarm);
                    R::Output(put_metric_alarm::PutMetricAlarmOutput::builder().build())
                }
            ),
            answer!(
                self,
                Client::delete_alarms,
                "cloudwatch:DeleteAlarms",
                |me, req| {
                    let mut state = me.state.lock().expect("cloudwatch");
                    for name in req.alarm_names() {
                        state.alarms.remove(name);
                        state.tags.remove(&arn(name));
                    }
                    R::Output(delete_alarms::DeleteAlarmsOutput::builder().build())
                }
            ),
            answer!(
                self,
                Client::list_tags_for_resource,
                "cloudwatch:ListTagsForResource",
                |me, req| {
                    let state = me.state.lock().expect("cloudwatch");
                    let tags = state
                        .tags
                        .get(req.resource_arn().unwrap_or_default())
                        .cloned()
                        .unwrap_or_default();
                    R::Output(
                        list_tags_for_resource::ListTagsForResourceOutput::builder()
                            .set_tags(Some(
                                tags.iter()
                                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                                    .collect(),
                            ))
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::tag_resource,
                "cloudwatch:TagResource",
                |me, req| {
                    let new: Vec<_> = tag_pairs(req.tags()).collect();
                    let mut state = me.state.lock().expect("cloudwatch");
                    let arn = req.resource_arn().unwrap_or_default().to_owned();
                    state.tags.entry(arn).or_default().extend(new);
                    R::Output(tag_resource::TagResourceOutput::builder().build())
                }
            ),
        ]
    }
}
