//! The observability phase's walk of its alarm topic ([`crate::resources::topic`]): found by its
//! derived ARN, refused when not the platform's, created whole, corrected field by field.

use serde_json::json;

use super::{foreign, owned, Clients, Desired};
use crate::error::FunctionError;
use crate::phases::PhaseContext;
use crate::plan::Phase;
use crate::resources::{topic, Kind};
use crate::store::ResourceRecord;

/// The topic the phase wants.
fn wanted(d: &Desired) -> topic::Desired {
    let name = d.names.sns_topic();
    let arn = topic::arn(d.partition, &d.region, &d.account, &name);
    let alarms = d.arn("cloudwatch", &format!("alarm:{}*", d.names.alarm("")));
    topic::Desired {
        policy: topic::policy(&arn, &d.account, &alarms),
        name,
        arn,
        kms_key: d.data_key.clone(),
        tags: d.tags.clone(),
    }
}

/// Ensures the platform's topic; returns its ARN (the derived one in `observe` when missing).
pub(super) async fn ensure(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    d: &Desired,
) -> Result<Option<String>, FunctionError> {
    let want = wanted(d);
    let resource = format!("{}/{}", Kind::Topic, want.name);
    let Some(live) = topic::find(c.sns(), &want.arn).await? else {
        if !ctx.differs(&resource, "exists", json!(true), json!(false)) {
            return Ok(Some(want.arn));
        }
        let arn = topic::create(c.sns(), &want).await?;
        record(ctx, &want, &arn).await?;
        return Ok(Some(arn));
    };
    if !owned(&live.tags, &d.platform_id) {
        return Err(foreign("SNS topic", &want.arn, &d.platform_id));
    }
    record(ctx, &want, &want.arn).await?;
    for field in ctx.repairs(&resource, want.differences(&live)) {
        topic::repair(c.sns(), &want, &live, field).await?;
    }
    Ok(Some(want.arn))
}

async fn record(
    ctx: &mut PhaseContext<'_>,
    want: &topic::Desired,
    arn: &str,
) -> Result<(), FunctionError> {
    let mut record = ResourceRecord::new(Kind::Topic, &want.name, Phase::Observability.as_str());
    record.arn = Some(arn.to_owned());
    record.tags = want.tags.clone();
    ctx.record(record).await
}

/// Deletes the platform's own topic if it exists and is tagged as the platform's (whatever the
/// spec says now: a request that switched to its own topic leaves ours behind until then).
pub(super) async fn delete(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    d: &Desired,
) -> Result<(), FunctionError> {
    let want = wanted(d);
    if let Some(live) = topic::find(c.sns(), &want.arn).await? {
        if !owned(&live.tags, &d.platform_id) {
            return Err(foreign("SNS topic", &want.arn, &d.platform_id));
        }
        topic::remove(c.sns(), &want.arn).await?;
    }
    ctx.forget(Kind::Topic, &want.name).await
}
