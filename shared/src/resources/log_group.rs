//! `logs:log-group`: a CloudWatch Logs group: the cluster's control-plane logs, the VPC flow
//! logs and Container Insights' groups.
//!
//! - **Found by** its name ([`find`], or [`find_all`] for one prefix in one paginated read).
//!   Ownership is by name: each name is derived from the platform's stem, and AWS services
//!   (EKS, the CloudWatch agent) create these groups themselves when they find none, so a group
//!   of the name is adopted and corrected rather than refused.
//! - **Desired** ([`Desired`]): retention, the platform's logs key, and Tenantry's tags.
//! - **Owned fields** ([`Desired::differences`]): `retentionInDays`, `kmsKeyId`, and the tags
//!   Tenantry sets (only when they were read: [`read_tags`]). Left to others: other tags, the
//!   streams, metric filters and subscriptions.
//! - **Create, update, delete** ([`create`], [`repair`], [`remove`]). `CreateLogGroup` takes the
//!   key and tags but no retention: a crash between it and `PutRetentionPolicy` leaves a group
//!   whose retention the next run sets (it is a difference like any other). A group created by
//!   someone else since the read ("already exists") is compared on the next run.
//!
//! Every group goes through one walk for `ensure` and `observe`: [`converge`] (observability's
//! Container Insights groups, the cluster's control-plane group), or its two halves
//! [`found_or_created`] and [`repair_differences`] for the VPC flow log group, whose tags the
//! network phase does not read.

use std::collections::BTreeMap;

use aws_sdk_cloudwatchlogs::types::LogGroup;
use serde_json::json;

use super::{same_key, Difference, Kind};
use crate::error::FunctionError;
use crate::phases::{aws_error, PhaseContext};
use crate::store::ResourceRecord;

/// What a log group should be.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub name: String,
    pub retention_days: i32,
    /// The key its events are encrypted with; `None` leaves the group's key as it is.
    pub kms_key: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// What Tenantry owns of a live log group, and its address.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    /// Without the `:*` suffix (what the tagging APIs take).
    pub arn: Option<String>,
    pub retention_days: Option<i32>,
    pub kms_key: Option<String>,
    /// `None`: not read (tags are one more call per group; see [`read_tags`]).
    pub tags: Option<BTreeMap<String, String>>,
}

impl Desired {
    /// The owned fields of `live` that differ from this.
    pub fn differences(&self, live: &Live) -> Vec<Difference> {
        let mut out = Vec::new();
        if live.retention_days != Some(self.retention_days) {
            out.push(Difference::new(
                "retentionInDays",
                json!(self.retention_days),
                json!(live.retention_days),
            ));
        }
        if let Some(want) = &self.kms_key {
            if !live.kms_key.as_deref().is_some_and(|k| same_key(want, k)) {
                out.push(Difference::new(
                    "kmsKeyId",
                    json!(want),
                    json!(live.kms_key),
                ));
            }
        }
        if let Some(actual) = &live.tags {
            let missing = super::missing_tags(&self.tags, actual);
            if !missing.is_empty() {
                out.push(Difference::new("tags", json!(missing), json!(actual)));
            }
        }
        out
    }
}

fn live(group: &LogGroup) -> Live {
    Live {
        arn: group
            .log_group_arn()
            .map(str::to_owned)
            .or_else(|| group.arn().map(|a| a.trim_end_matches(":*").to_owned())),
        retention_days: group.retention_in_days(),
        kms_key: group.kms_key_id().map(str::to_owned),
        tags: None,
    }
}

/// The group named `name`, if it exists (tags not read).
pub async fn find(
    logs: &aws_sdk_cloudwatchlogs::Client,
    name: &str,
) -> Result<Option<Live>, FunctionError> {
    Ok(find_all(logs, name).await?.remove(name))
}

/// The groups whose names begin with `prefix`, by name (tags not read).
pub async fn find_all(
    logs: &aws_sdk_cloudwatchlogs::Client,
    prefix: &str,
) -> Result<BTreeMap<String, Live>, FunctionError> {
    let mut pages = logs
        .describe_log_groups()
        .log_group_name_prefix(prefix)
        .into_paginator()
        .items()
        .send();
    let mut out = BTreeMap::new();
    while let Some(group) = pages.next().await {
        let group = group.map_err(|e| aws_error("logs:DescribeLogGroups", e))?;
        if let Some(name) = group.log_group_name() {
            out.insert(name.to_owned(), live(&group));
        }
    }
    Ok(out)
}

/// Reads the group's tags into `live` (`arn` is used when the group did not report one).
pub async fn read_tags(
    logs: &aws_sdk_cloudwatchlogs::Client,
    live: &mut Live,
    arn: &str,
) -> Result<(), FunctionError> {
    let arn = live.arn.get_or_insert_with(|| arn.to_owned()).clone();
    let tags = match logs
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
    {
        Ok(out) => out
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            BTreeMap::new()
        }
        Err(e) => return Err(aws_error("logs:ListTagsForResource", e)),
    };
    live.tags = Some(tags);
    Ok(())
}

/// Creates the group with its key and tags; what it is now (retention still to set). A group
/// created by someone else since the read counts as created: the next run compares it.
pub async fn create(
    logs: &aws_sdk_cloudwatchlogs::Client,
    desired: &Desired,
) -> Result<Live, FunctionError> {
    let created = logs
        .create_log_group()
        .log_group_name(&desired.name)
        .set_kms_key_id(desired.kms_key.clone())
        .set_tags(Some(desired.tags.clone().into_iter().collect()))
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_already_exists_exception()) => {}
        Err(e) => return Err(aws_error("logs:CreateLogGroup", e)),
    }
    Ok(Live {
        arn: None,
        retention_days: None,
        kms_key: desired.kms_key.clone(),
        tags: Some(desired.tags.clone()),
    })
}

/// Puts one owned field back (a field of [`Desired::differences`]).
pub async fn repair(
    logs: &aws_sdk_cloudwatchlogs::Client,
    desired: &Desired,
    live: &Live,
    field: &str,
) -> Result<(), FunctionError> {
    let name = &desired.name;
    match field {
        "retentionInDays" => logs
            .put_retention_policy()
            .log_group_name(name)
            .retention_in_days(desired.retention_days)
            .send()
            .await
            .map(drop)
            .map_err(|e| aws_error("logs:PutRetentionPolicy", e)),
        "kmsKeyId" => match &desired.kms_key {
            Some(key) => logs
                .associate_kms_key()
                .log_group_name(name)
                .kms_key_id(key)
                .send()
                .await
                .map(drop)
                .map_err(|e| aws_error("logs:AssociateKmsKey", e)),
            None => Ok(()),
        },
        "tags" => {
            let Some(arn) = &live.arn else {
                return Ok(());
            };
            logs.tag_resource()
                .resource_arn(arn)
                .set_tags(Some(desired.tags.clone().into_iter().collect()))
                .send()
                .await
                .map(drop)
                .map_err(|e| aws_error("logs:TagResource", e))
        }
        other => {
            tracing::warn!(log_group = %name, field = other, "not a field of a log group");
            Ok(())
        }
    }
}

/// Converges the group (`found`: as read before) to `desired` and records it as `record`, with
/// its ARN (`arn`: the one to use when AWS reported none). Under `observe` a missing group or a
/// differing field is only noted.
pub(crate) async fn converge(
    ctx: &mut PhaseContext<'_>,
    logs: &aws_sdk_cloudwatchlogs::Client,
    desired: &Desired,
    found: Option<Live>,
    mut record: ResourceRecord,
    arn: &str,
) -> Result<(), FunctionError> {
    let found = match found {
        Some(mut live) => {
            read_tags(logs, &mut live, arn).await?;
            Some(live)
        }
        None => None,
    };
    let Some(live) = found_or_created(ctx, logs, desired, found).await? else {
        return Ok(());
    };
    record.arn = Some(live.arn.clone().unwrap_or_else(|| arn.to_owned()));
    ctx.record(record).await?;
    repair_differences(ctx, logs, desired, &live).await
}

/// The group as found, or created under `ensure`; under `observe` a missing group is noted
/// (`exists`) and there is nothing to compare (None).
pub(crate) async fn found_or_created(
    ctx: &mut PhaseContext<'_>,
    logs: &aws_sdk_cloudwatchlogs::Client,
    desired: &Desired,
    found: Option<Live>,
) -> Result<Option<Live>, FunctionError> {
    if found.is_some() {
        return Ok(found);
    }
    let resource = format!("{}/{}", Kind::LogGroup, desired.name);
    if !ctx.differs(&resource, "exists", json!(true), json!(false)) {
        return Ok(None);
    }
    create(logs, desired).await.map(Some)
}

/// Each owned field of `live` that differs from `desired`: repaired under `ensure`, noted under
/// `observe` (tags only when `live` holds them).
pub(crate) async fn repair_differences(
    ctx: &mut PhaseContext<'_>,
    logs: &aws_sdk_cloudwatchlogs::Client,
    desired: &Desired,
    live: &Live,
) -> Result<(), FunctionError> {
    let resource = format!("{}/{}", Kind::LogGroup, desired.name);
    for field in ctx.repairs(&resource, desired.differences(live)) {
        repair(logs, desired, live, field).await?;
    }
    Ok(())
}

/// Deletes the group; already gone is success.
pub async fn remove(
    logs: &aws_sdk_cloudwatchlogs::Client,
    name: &str,
) -> Result<(), FunctionError> {
    match logs.delete_log_group().log_group_name(name).send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(aws_error("logs:DeleteLogGroup", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn desired() -> Desired {
        Desired {
            name: "/aws/eks/payments-prod/cluster".into(),
            retention_days: 365,
            kms_key: Some(KEY.into()),
            tags: BTreeMap::from([("tenantry:platform".to_owned(), "payments".to_owned())]),
        }
    }

    fn converged() -> Live {
        Live {
            arn: Some("arn:aws:logs:eu-west-1:123456789012:log-group:/aws/eks/x".into()),
            retention_days: Some(365),
            kms_key: Some(KEY.into()),
            tags: Some(BTreeMap::from([
                ("tenantry:platform".to_owned(), "payments".to_owned()),
                ("added-by-someone".to_owned(), "x".to_owned()),
            ])),
        }
    }

    #[test]
    fn a_converged_group_has_no_difference_and_foreign_tags_are_not_drift() {
        assert_eq!(desired().differences(&converged()), vec![]);
    }

    #[test]
    fn each_owned_field_is_named_when_it_differs() {
        let live = Live {
            retention_days: None,
            kms_key: None,
            tags: Some(BTreeMap::new()),
            ..converged()
        };
        let fields: Vec<&str> = desired()
            .differences(&live)
            .iter()
            .map(|d| d.field)
            .collect();
        assert_eq!(fields, ["retentionInDays", "kmsKeyId", "tags"]);
    }

    #[test]
    fn tags_not_read_are_not_a_difference_and_no_key_asked_is_none() {
        let mut d = desired();
        d.kms_key = None;
        let live = Live {
            kms_key: None,
            tags: None,
            ..converged()
        };
        assert_eq!(d.differences(&live), vec![]);
    }

    #[test]
    fn a_key_given_by_id_is_the_same_key_as_its_arn() {
        assert!(same_key(KEY, "1234abcd-12ab-34cd-56ef-1234567890ab"));
        assert!(same_key(KEY, KEY));
        assert!(!same_key(
            KEY,
            "arn:aws:kms:eu-west-1:123456789012:key/ffffffff-12ab-34cd-56ef-1234567890ab"
        ));
    }
}
