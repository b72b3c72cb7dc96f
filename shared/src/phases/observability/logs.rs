//! The Container Insights log groups `/aws/containerinsights/<cluster>/<kind>`, and with
//! `fargate.logging` the Fargate pods' group `/aws/eks/<cluster>/fargate` (same key, retention
//! and tags).
//!
//! All four are read with one `DescribeLogGroups` by the prefix `/aws/containerinsights/<cluster>/`.
//! A group is created with the logs key and the tags (one call), then given its retention
//! (`CreateLogGroup` takes none): a crash in between leaves a group whose retention the next run
//! sets. A group the CloudWatch agent created first (unencrypted, kept forever, untagged) is
//! corrected in place: retention, key (`AssociateKmsKey`) and tags.

use std::collections::BTreeMap;

use serde_json::json;

use super::{Clients, Desired};
use crate::error::FunctionError;
use crate::phases::PhaseContext;
use crate::plan::{Phase, CONTAINER_INSIGHTS_LOG_GROUPS};
use crate::resources::{log_group, Kind};
use crate::store::ResourceRecord;

/// Ensures the log groups; returns the Container Insights groups' names (empty when Container
/// Insights is off).
pub(super) async fn ensure(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    d: &Desired,
) -> Result<Vec<String>, FunctionError> {
    let mut existing = BTreeMap::new();
    if !d.log_groups.is_empty() {
        existing = log_group::find_all(c.logs(), &d.names.container_insights_log_group("")).await?;
    }
    if let Some(fargate) = &d.fargate_log_group {
        existing.extend(log_group::find_all(c.logs(), fargate).await?);
    }
    for name in d.log_groups.iter().chain(&d.fargate_log_group) {
        ensure_group(ctx, c, d, name, existing.remove(name)).await?;
    }
    Ok(d.log_groups.clone())
}

async fn ensure_group(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    d: &Desired,
    name: &str,
    found: Option<log_group::Live>,
) -> Result<(), FunctionError> {
    let desired = log_group::Desired {
        name: name.to_owned(),
        retention_days: d.retention_days,
        kms_key: d.logs_key.clone(),
        tags: d.tags.clone(),
    };
    let mut record = ResourceRecord::new(Kind::LogGroup, name, Phase::Observability.as_str());
    record.tags = d.tags.clone();
    record.attributes = Some(json!({ "retentionDays": d.retention_days }));
    let arn = d.arn("logs", &format!("log-group:{name}"));
    log_group::converge(ctx, c.logs(), &desired, found, record, &arn).await
}

/// Deletes every Container Insights group of the cluster and the Fargate pods' group (whatever
/// the spec says now).
pub(super) async fn delete(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    d: &Desired,
) -> Result<(), FunctionError> {
    let mut existing =
        log_group::find_all(c.logs(), &d.names.container_insights_log_group("")).await?;
    let fargate = d.names.fargate_log_group();
    existing.extend(log_group::find_all(c.logs(), &fargate).await?);
    let names = CONTAINER_INSIGHTS_LOG_GROUPS
        .iter()
        .map(|kind| d.names.container_insights_log_group(kind))
        .chain(std::iter::once(fargate));
    for name in names {
        if existing.contains_key(&name) {
            log_group::remove(c.logs(), &name).await?;
        }
        ctx.forget(Kind::LogGroup, &name).await?;
    }
    Ok(())
}
