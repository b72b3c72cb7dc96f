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

use serde_json::json;

use super::bucket;
use crate::error::FunctionError;
use crate::phases::PhaseContext;
use crate::policies;
use crate::resources::bucket as s3_bucket;

/// Tag component of the access-log bucket.
pub const COMPONENT: &str = "tenant-data-access-logs";

/// Ensures the log bucket and the data bucket's logging into it.
pub(crate) async fn ensure(
    ctx: &mut PhaseContext<'_>,
    s3: &aws_sdk_s3::Client,
    data_bucket: &str,
) -> Result<(), FunctionError> {
    let logs = ctx.names.access_log_bucket();
    let want = s3_bucket::Desired {
        region: ctx.spec.region.clone(),
        kms_key: None,
        versioned: false,
        policy: policies::access_log_bucket_policy(&ctx.target(), &logs, data_bucket),
        tags: ctx.tags(COMPONENT),
        name: logs,
    };
    let attributes = json!({ "accessLogsOf": data_bucket });
    if !bucket::converge(ctx, s3, &want, attributes).await? {
        return Ok(());
    }
    converge_logging(ctx, s3, data_bucket, &want.name).await
}

/// The data bucket logs into `logs` under the prefix.
async fn converge_logging(
    ctx: &mut PhaseContext<'_>,
    s3: &aws_sdk_s3::Client,
    data_bucket: &str,
    logs: &str,
) -> Result<(), FunctionError> {
    let actual = s3_bucket::access_logging(s3, data_bucket).await?;
    let desired = json!({ "targetBucket": logs, "targetPrefix": policies::ACCESS_LOG_PREFIX });
    let resource = format!("{}/{data_bucket}", crate::resources::Kind::Bucket);
    if actual.as_ref() == Some(&desired)
        || !ctx.differs(&resource, "accessLogging", desired, json!(actual))
    {
        return Ok(());
    }
    s3_bucket::enable_access_logging(s3, data_bucket, logs, policies::ACCESS_LOG_PREFIX).await
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
        s3_bucket::delete_policy(s3, &logs).await?;
    }
    if !s3_bucket::empty_prefix(s3, &logs, "").await? {
        return Ok(false);
    }
    bucket::delete(ctx, s3, &logs).await?;
    Ok(true)
}
