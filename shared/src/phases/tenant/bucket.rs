//! The tenants phase's walk of its buckets ([`crate::resources::bucket`]): the platform's
//! tenant-data bucket (one per platform, tenants share it by prefix) and, through
//! [`super::access_logs`], the bucket its access logs go to. Each is found by its deterministic
//! name, refused when another platform's, created and tagged, then corrected field by field.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::error::FunctionError;
use crate::phases::outputs;
use crate::phases::PhaseContext;
use crate::policies;
use crate::resources::{bucket, Kind};
use crate::store::ResourceRecord;

pub use crate::resources::bucket::{empty_prefix, holds_data};

/// Tag component of the bucket.
pub const COMPONENT: &str = "tenant-data";

/// Ensures the data bucket, its settings and its access logs; returns its name (None in
/// `observe` when missing).
pub(crate) async fn ensure(
    ctx: &mut PhaseContext<'_>,
    s3: &aws_sdk_s3::Client,
) -> Result<Option<String>, FunctionError> {
    let name = ctx.names.bucket();
    let want = bucket::Desired {
        region: ctx.spec.region.clone(),
        kms_key: Some(ctx.output(outputs::DATA_KEY_ARN)?),
        versioned: true,
        policy: policies::tenant_bucket_policy(&ctx.target(), &name),
        tags: ctx.tags(COMPONENT),
        name,
    };
    if !converge(ctx, s3, &want, Value::Null).await? {
        return Ok(None);
    }
    super::access_logs::ensure(ctx, s3, &want.name).await?;
    Ok(Some(want.name))
}

/// Finds, creates and corrects one bucket, recording it with `attributes` (null: none). False in
/// `observe` when it does not exist.
pub(super) async fn converge(
    ctx: &mut PhaseContext<'_>,
    s3: &aws_sdk_s3::Client,
    want: &bucket::Desired,
    attributes: Value,
) -> Result<bool, FunctionError> {
    let resource = format!("{}/{}", Kind::Bucket, want.name);
    let tags = match owned_tags(ctx, s3, &want.name).await? {
        Some(tags) => tags,
        None => {
            if !ctx.differs(&resource, "exists", json!(true), json!(false)) {
                return Ok(false);
            }
            bucket::create(s3, want).await?;
            want.tags.clone()
        }
    };
    let mut record = ResourceRecord::new(Kind::Bucket, &want.name, ctx.phase.as_str());
    record.arn = Some(format!("arn:{}:s3:::{}", ctx.spec.partition(), want.name));
    record.tags = want.tags.clone();
    record.attributes = (!attributes.is_null()).then_some(attributes);
    ctx.record(record).await?;
    let live = bucket::read(s3, want, tags).await?;
    for field in ctx.repairs(&resource, want.differences(&live)) {
        bucket::repair(s3, want, &live, field).await?;
    }
    Ok(true)
}

/// Deletes the (empty) bucket if it is the platform's; a missing bucket is success.
pub(crate) async fn delete(
    ctx: &mut PhaseContext<'_>,
    s3: &aws_sdk_s3::Client,
    name: &str,
) -> Result<(), FunctionError> {
    if exists(ctx, s3, name).await? {
        bucket::remove(s3, name).await?;
    }
    ctx.forget(Kind::Bucket, name).await
}

/// Whether the bucket exists; an error when it exists but another account or platform owns it.
pub(super) async fn exists(
    ctx: &PhaseContext<'_>,
    s3: &aws_sdk_s3::Client,
    name: &str,
) -> Result<bool, FunctionError> {
    Ok(owned_tags(ctx, s3, name).await?.is_some())
}

/// The tags of the platform's bucket `name`; `None` when it does not exist, an error when
/// another account or platform owns it.
async fn owned_tags(
    ctx: &PhaseContext<'_>,
    s3: &aws_sdk_s3::Client,
    name: &str,
) -> Result<Option<BTreeMap<String, String>>, FunctionError> {
    let Some(tags) = bucket::find(s3, name).await? else {
        return Ok(None);
    };
    bucket::check_owner(name, &tags, ctx.platform_id())?;
    Ok(Some(tags))
}
