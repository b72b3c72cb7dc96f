//! S3 server access logging of the tenant-data bucket (PCI DSS 10.2: who read or wrote which
//! tenant object), into a bucket of its own, `Names::access_log_bucket`, under
//! [`policies::ACCESS_LOG_PREFIX`].
//!
//! The log bucket is built like the data bucket (tagged at creation, ACLs off, every public
//! access block, nothing over plain HTTP), except its default encryption: SSE-S3, the only one S3
//! log delivery writes into. Its policy lets S3's log delivery write for the data bucket of this
//! account only ([`policies::access_log_bucket_policy`]); S3 refuses `PutBucketLogging` until it
//! does. Decommission empties and deletes it after the data bucket; when the data bucket is kept
//! (retained tenant data), its logs are kept with it.

use aws_sdk_s3::types::{BucketLoggingStatus, LoggingEnabled};
use serde_json::json;

use super::bucket;
use crate::error::{ErrorType, FunctionError};
use crate::phases::aws_error;
use crate::phases::PhaseContext;
use crate::policies;
use crate::resources::Kind;
use crate::store::ResourceRecord;

/// Tag component of the access-log bucket.
pub const COMPONENT: &str = "tenant-data-access-logs";

/// Ensures the log bucket and the data bucket's logging into it.
pub(crate) async fn ensure(
    ctx: &mut PhaseContext<'_>,
    s3: &aws_sdk_s3::Client,
    data_bucket: &str,
) -> Result<(), FunctionError> {
    let logs = ctx.names.access_log_bucket();
    let resource = format!("s3:bucket/{logs}");
    let tags = ctx.tags(COMPONENT);
    if !bucket::exists(ctx, s3, &logs).await? {
        if !ctx.differs(&resource, "exists", json!(true), json!(false)) {
            return Ok(());
        }
        bucket::create(ctx, s3, &logs, &tags).await?;
    }
    let mut record = ResourceRecord::new(Kind::Bucket, &logs, ctx.phase.as_str());
    record.arn = Some(format!("arn:{}:s3:::{logs}", ctx.spec.partition()));
    record.tags = tags.clone();
    record.attributes = Some(json!({ "accessLogsOf": data_bucket }));
    ctx.record(record).await?;
    bucket::converge_tags(ctx, s3, &logs, &resource, &tags).await?;
    bucket::converge_ownership(ctx, s3, &logs, &resource).await?;
    bucket::converge_public_access(ctx, s3, &logs, &resource).await?;
    bucket::converge_encryption(ctx, s3, &logs, &resource, None).await?;
    let policy = policies::access_log_bucket_policy(&ctx.target(), &logs, data_bucket);
    bucket::converge_policy(ctx, s3, &logs, &resource, policy).await?;
    converge_logging(ctx, s3, data_bucket, &logs).await
}

/// The data bucket logs into `logs` under the prefix.
async fn converge_logging(
    ctx: &mut PhaseContext<'_>,
    s3: &aws_sdk_s3::Client,
    data_bucket: &str,
    logs: &str,
) -> Result<(), FunctionError> {
    let actual = s3
        .get_bucket_logging()
        .bucket(data_bucket)
        .send()
        .await
        .map_err(|e| aws_error("s3:GetBucketLogging", e))?
        .logging_enabled
        .map(|l| json!({ "targetBucket": l.target_bucket, "targetPrefix": l.target_prefix }));
    let desired = json!({ "targetBucket": logs, "targetPrefix": policies::ACCESS_LOG_PREFIX });
    let resource = format!("s3:bucket/{data_bucket}");
    if actual.as_ref() == Some(&desired)
        || !ctx.differs(&resource, "accessLogging", desired, json!(actual))
    {
        return Ok(());
    }
    let enabled = LoggingEnabled::builder()
        .target_bucket(logs)
        .target_prefix(policies::ACCESS_LOG_PREFIX)
        .build()
        .map_err(|e| FunctionError::new(ErrorType::Terminal, e.to_string()))?;
    s3.put_bucket_logging()
        .bucket(data_bucket)
        .bucket_logging_status(
            BucketLoggingStatus::builder()
                .logging_enabled(enabled)
                .build(),
        )
        .send()
        .await
        .map_err(|e| aws_error("s3:PutBucketLogging", e))?;
    Ok(())
}

/// Empties and deletes the log bucket (after the data bucket, so no log arrives for it later);
/// true once it is gone.
pub(crate) async fn remove(
    ctx: &mut PhaseContext<'_>,
    s3: &aws_sdk_s3::Client,
) -> Result<bool, FunctionError> {
    let logs = ctx.names.access_log_bucket();
    if bucket::exists(ctx, s3, &logs).await? {
        // The bucket is going: its policy first, which also lifts the policy's TLS-only Deny
        // for the deletes below (moto reads that Deny as applying to every request).
        match s3.delete_bucket_policy().bucket(&logs).send().await {
            Ok(_) => {}
            Err(e) if crate::phases::common::error_code(&e) == Some("NoSuchBucket") => {}
            Err(e) => return Err(aws_error("s3:DeleteBucketPolicy", e)),
        }
    }
    if !bucket::empty_prefix(s3, &logs, "").await? {
        return Ok(false);
    }
    bucket::delete(ctx, s3, &logs).await?;
    Ok(true)
}
