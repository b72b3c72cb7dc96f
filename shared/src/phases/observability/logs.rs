//! The Container Insights log groups `/aws/containerinsights/<cluster>/<kind>`, and with
//! `fargate.logging` the Fargate pods' group `/aws/eks/<cluster>/fargate` (same key, retention
//! and tags).
//!
//! All four are read with one `DescribeLogGroups` by the prefix `/aws/containerinsights/<cluster>/`.
//! A group is created with the logs key and the tags (one call), then given its retention
//! (`CreateLogGroup` takes none): a crash in between leaves a group whose retention the next run
//! sets. A group the CloudWatch agent created first (unencrypted, kept forever, untagged) is
//! corrected in place: retention, key (`AssociateKmsKey`) and tags.

use crate::resources::Kind;
use std::collections::BTreeMap;

use aws_sdk_cloudwatchlogs::types::LogGroup;
use serde_json::json;

use super::{missing_tags, same_key, Clients, Desired};
use crate::error::FunctionError;
use crate::phases::aws_error;
use crate::phases::Run;
use crate::plan::{Phase, CONTAINER_INSIGHTS_LOG_GROUPS};
use crate::store::ResourceRecord;

/// Ensures the log groups; returns their names (empty when Container Insights is off).
pub(super) async fn ensure(
    run: &mut Run<'_>,
    c: &Clients,
    d: &Desired,
) -> Result<Vec<String>, FunctionError> {
    let mut existing = BTreeMap::new();
    if !d.log_groups.is_empty() {
        existing = describe(c, &d.names.container_insights_log_group("")).await?;
    }
    if let Some(fargate) = &d.fargate_log_group {
        existing.extend(describe(c, fargate).await?);
    }
    for name in d.log_groups.iter().chain(&d.fargate_log_group) {
        ensure_group(run, c, d, name, existing.get(name)).await?;
    }
    Ok(d.log_groups.clone())
}

async fn ensure_group(
    run: &mut Run<'_>,
    c: &Clients,
    d: &Desired,
    name: &str,
    found: Option<&LogGroup>,
) -> Result<(), FunctionError> {
    let resource = format!("logs:log-group/{name}");
    let arn = group_arn(d, found, name);
    let (retention, key, tags) = match found {
        Some(group) => (
            group.retention_in_days(),
            group.kms_key_id().map(str::to_owned),
            Some(list_tags(c, &arn).await?),
        ),
        None => {
            if !run.differs(&resource, "exists", json!(true), json!(false)) {
                return Ok(());
            }
            create(c, d, name).await?;
            (None, d.logs_key.clone(), None)
        }
    };
    let mut record = ResourceRecord::new(Kind::LogGroup, name, Phase::Observability.as_str());
    record.arn = Some(arn.clone());
    record.tags = d.tags.clone();
    record.attributes = Some(json!({ "retentionDays": d.retention_days }));
    run.record(record).await?;
    if retention != Some(d.retention_days)
        && run.differs(
            &resource,
            "retentionInDays",
            json!(d.retention_days),
            json!(retention),
        )
    {
        c.logs
            .put_retention_policy()
            .log_group_name(name)
            .retention_in_days(d.retention_days)
            .send()
            .await
            .map_err(|e| aws_error("logs:PutRetentionPolicy", e))?;
    }
    if let Some(want) = &d.logs_key {
        let same = key.as_deref().is_some_and(|k| same_key(want, k));
        if !same && run.differs(&resource, "kmsKeyId", json!(want), json!(key)) {
            c.logs
                .associate_kms_key()
                .log_group_name(name)
                .kms_key_id(want)
                .send()
                .await
                .map_err(|e| aws_error("logs:AssociateKmsKey", e))?;
        }
    }
    if let Some(actual) = tags {
        let missing = missing_tags(&d.tags, &actual);
        if !missing.is_empty() && run.differs(&resource, "tags", json!(missing), json!(actual)) {
            c.logs
                .tag_resource()
                .resource_arn(&arn)
                .set_tags(Some(missing.into_iter().collect()))
                .send()
                .await
                .map_err(|e| aws_error("logs:TagResource", e))?;
        }
    }
    Ok(())
}

async fn create(c: &Clients, d: &Desired, name: &str) -> Result<(), FunctionError> {
    let created = c
        .logs
        .create_log_group()
        .log_group_name(name)
        .set_kms_key_id(d.logs_key.clone())
        .set_tags(Some(d.tags.clone().into_iter().collect()))
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        // Created concurrently (the CloudWatch agent): corrected by the caller's next run.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_already_exists_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(aws_error("logs:CreateLogGroup", e)),
    }
}

/// Deletes every Container Insights group of the cluster and the Fargate pods' group (whatever
/// the spec says now).
pub(super) async fn delete(
    run: &mut Run<'_>,
    c: &Clients,
    d: &Desired,
) -> Result<(), FunctionError> {
    let mut existing = describe(c, &d.names.container_insights_log_group("")).await?;
    let fargate = d.names.fargate_log_group();
    existing.extend(describe(c, &fargate).await?);
    let names = CONTAINER_INSIGHTS_LOG_GROUPS
        .iter()
        .map(|kind| d.names.container_insights_log_group(kind))
        .chain(std::iter::once(fargate));
    for name in names {
        if existing.contains_key(&name) {
            match c.logs.delete_log_group().log_group_name(&name).send().await {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) => {}
                Err(e) => return Err(aws_error("logs:DeleteLogGroup", e)),
            }
        }
        run.forget(Kind::LogGroup, &name).await?;
    }
    Ok(())
}

/// The log groups whose names begin with `prefix`, by name.
async fn describe(c: &Clients, prefix: &str) -> Result<BTreeMap<String, LogGroup>, FunctionError> {
    let mut groups = c
        .logs
        .describe_log_groups()
        .log_group_name_prefix(prefix)
        .into_paginator()
        .items()
        .send();
    let mut out = BTreeMap::new();
    while let Some(group) = groups.next().await {
        let group = group.map_err(|e| aws_error("logs:DescribeLogGroups", e))?;
        if let Some(name) = group.log_group_name().map(str::to_owned) {
            out.insert(name, group);
        }
    }
    Ok(out)
}

/// The group's ARN without the `:*` suffix (what the tagging APIs take).
fn group_arn(d: &Desired, group: Option<&LogGroup>, name: &str) -> String {
    group
        .and_then(|g| {
            g.log_group_arn()
                .map(str::to_owned)
                .or_else(|| g.arn().map(|a| a.trim_end_matches(":*").to_owned()))
        })
        .unwrap_or_else(|| d.arn("logs", &format!("log-group:{name}")))
}

async fn list_tags(c: &Clients, arn: &str) -> Result<BTreeMap<String, String>, FunctionError> {
    match c
        .logs
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
    {
        Ok(out) => Ok(out
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(BTreeMap::new())
        }
        Err(e) => Err(aws_error("logs:ListTagsForResource", e)),
    }
}
