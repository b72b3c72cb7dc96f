//! CloudWatch Logs log groups: retention, KMS key, tags.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_cloudwatchlogs::operation::delete_log_group::DeleteLogGroupError;
use aws_sdk_cloudwatchlogs::types::error::ResourceNotFoundException;
use aws_sdk_cloudwatchlogs::types::LogGroup;
use aws_sdk_cloudwatchlogs::Client;
use aws_smithy_mocks::{MockResponse as R, Rule};

use super::{answer, Calls, ACCOUNT};

/// One log group.
#[derive(Clone, Debug, Default)]
pub struct Group {
    pub retention: Option<i32>,
    pub kms_key: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// The log groups of one account and region.
#[derive(Clone, Default)]
pub struct LogsDouble {
    groups: Arc<Mutex<BTreeMap<String, Group>>>,
    calls: Calls,
}

/// The log group an ARN names (`arn:aws:logs:<region>:<account>:log-group:<name>[:*]`).
fn group_of(arn: Option<&str>) -> &str {
    let arn = arn.unwrap_or_default().trim_end_matches(":*");
    arn.split_once(":log-group:").map_or(arn, |(_, name)| name)
}

impl LogsDouble {
    pub fn new(calls: &Calls) -> Self {
        LogsDouble {
            calls: calls.clone(),
            ..Default::default()
        }
    }

    pub fn groups(&self) -> BTreeMap<String, Group> {
        self.groups.lock().expect("logs").clone()
    }

    /// Changes a log group out of band.
    pub fn edit(&self, name: &str, change: impl FnOnce(&mut Group)) {
        change(
            self.groups
                .lock()
                .expect("logs")
                .get_mut(name)
                .expect("group"),
        );
    }

    fn with<T>(&self, name: Option<&str>, f: impl FnOnce(&mut Group) -> T) -> T {
        let mut groups = self.groups.lock().expect("logs");
        f(groups
            .get_mut(name.unwrap_or_default())
            .expect("a group the scenario knows"))
    }

    pub fn rules(&self) -> Vec<Rule> {
        use aws_sdk_cloudwatchlogs::operation::*;
        vec![
            answer!(
                self,
                Client::describe_log_groups,
                "logs:DescribeLogGroups",
                |me, req| {
                    let prefix = req.log_group_name_prefix().unwrap_or_default();
                    let groups = me
                        .groups()
                        .into_iter()
                        .filter(|(name, _)| name.starts_with(prefix))
                        .map(|(name, g)| {
                            LogGroup::builder()
                                .arn(format!(
                                    "arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{name}:*"
                                ))
                                .log_group_name(name)
                                .set_retention_in_days(g.retention)
                                .set_kms_key_id(g.kms_key)
                                .build()
                        })
                        .collect();
                    R::Output(
                        describe_log_groups::DescribeLogGroupsOutput::builder()
                            .set_log_groups(Some(groups))
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::create_log_group,
                "logs:CreateLogGroup",
                |me, req| {
                    let group = Group {
                        retention: None,
                        kms_key: req.kms_key_id().map(str::to_owned),
                        tags: req
                            .tags()
                            .cloned()
                            .unwrap_or_default()
                            .into_iter()
                            .collect(),
                    };
                    let name = req.log_group_name().unwrap_or_default().to_owned();
                    me.groups.lock().expect("logs").insert(name, group);
                    R::Output(create_log_group::CreateLogGroupOutput::builder().build())
                }
            ),
            answer!(
                self,
                Client::put_retention_policy,
                "logs:PutRetentionPolicy",
                |me, req| {
                    let days = req.retention_in_days();
                    me.with(req.log_group_name(), |g| g.retention = days);
                    R::Output(put_retention_policy::PutRetentionPolicyOutput::builder().build())
                }
            ),
            answer!(
                self,
                Client::associate_kms_key,
                "logs:AssociateKmsKey",
                |me, req| {
                    let key = req.kms_key_id().map(str::to_owned);
                    me.with(req.log_group_name(), |g| g.kms_key = key);
                    R::Output(associate_kms_key::AssociateKmsKeyOutput::builder().build())
                }
            ),
            answer!(
                self,
                Client::list_tags_for_resource,
                "logs:ListTagsForResource",
                |me, req| {
                    let tags = me.with(Some(group_of(req.resource_arn())), |g| g.tags.clone());
                    R::Output(
                        list_tags_for_resource::ListTagsForResourceOutput::builder()
                            .set_tags(Some(tags.into_iter().collect()))
                            .build(),
                    )
                }
            ),
            answer!(self, Client::tag_resource, "logs:TagResource", |me, req| {
                let new = req.tags().cloned().unwrap_or_default();
                me.with(Some(group_of(req.resource_arn())), |g| g.tags.extend(new));
                R::Output(tag_resource::TagResourceOutput::builder().build())
            }),
            answer!(
                self,
                Client::delete_log_group,
                "logs:DeleteLogGroup",
                |me, req| {
                    let name = req.log_group_name().unwrap_or_default();
                    match me.groups.lock().expect("logs").remove(name) {
                        Some(_) => {
                            R::Output(delete_log_group::DeleteLogGroupOutput::builder().build())
                        }
                        None => R::Error(DeleteLogGroupError::ResourceNotFoundException(
                            ResourceNotFoundException::builder().message("gone").build(),
                        )),
                    }
                }
            ),
        ]
    }
}
