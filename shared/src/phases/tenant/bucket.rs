//! The platform's tenant-data bucket (one per platform, tenants share it by prefix) and the
//! removal of object data: a tenant's prefix when it is offboarded, the whole bucket when the
//! platform is decommissioned.
//!
//! The bucket is found by its deterministic name (`Names::bucket`) and must carry this
//! platform's `tenantry:platform` tag to be adopted. Every setting is read and compared before it
//! is written: SSE-KMS with the platform data key (S3 Bucket Keys on), all four public access
//! blocks, `BucketOwnerEnforced` ownership (ACLs off), versioning, the TLS-only / SSE-KMS-only
//! bucket policy ([`policies::tenant_bucket_policy`]), and the tags.

use crate::resources::Kind;
use std::collections::BTreeMap;

use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, Delete,
    ObjectIdentifier, ObjectOwnership, OwnershipControls, OwnershipControlsRule,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
    VersioningConfiguration,
};
use serde_json::{json, Value};

use crate::error::{ErrorType, FunctionError};
use crate::naming::TAG_PLATFORM;
use crate::phases::aws_error;
use crate::phases::common::error_code;
use crate::phases::outputs;
use crate::phases::PhaseContext;
use crate::policies;
use crate::store::ResourceRecord;

/// Tag component of the bucket.
pub const COMPONENT: &str = "tenant-data";
/// Object versions deleted per `DeleteObjects` call (the S3 maximum).
pub const DELETE_BATCH: i32 = 1000;
/// `DeleteObjects` calls per invocation before it reports `ready: false` and the state machine
/// calls again (a prefix of millions of objects is emptied over many invocations, each well
/// within the Lambda time limit).
pub const DELETE_BATCHES_PER_CALL: usize = 20;

fn not_found(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "NoSuchBucket"
                | "NotFound"
                | "NoSuchBucketPolicy"
                | "NoSuchTagSet"
                | "NoSuchPublicAccessBlockConfiguration"
                | "OwnershipControlsNotFoundError"
                | "ServerSideEncryptionConfigurationNotFoundError"
        )
    )
}

/// Whether the bucket exists (and is this platform's); an error when it exists but another
/// account or platform owns it.
pub(super) async fn exists(
    ctx: &PhaseContext<'_>,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> Result<bool, FunctionError> {
    match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => {}
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => return Ok(false),
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) => {
            return Err(FunctionError::new(
                ErrorType::Terminal,
                format!("S3 bucket {bucket} exists and belongs to another account"),
            ))
        }
        Err(e) => return Err(aws_error("s3:HeadBucket", e)),
    }
    let tags = tags_of(s3, bucket).await?;
    let owner = tags.get(TAG_PLATFORM).map(String::as_str);
    // A bucket of this platform's name without any tag was created by this platform and not
    // tagged yet: a concurrent onboarding between its two calls, or a crash in between. The name
    // carries a hash of the platform's stem, region and account role, so it is adopted.
    if owner.is_none() && tags.is_empty() {
        return Ok(true);
    }
    if owner != Some(ctx.platform_id()) {
        return Err(FunctionError::new(
            ErrorType::Terminal,
            format!(
                "S3 bucket {bucket} exists but is not tagged {TAG_PLATFORM}={} (owner: {owner:?}); \
                 refusing to adopt or empty it",
                ctx.platform_id()
            ),
        ));
    }
    Ok(true)
}

async fn tags_of(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> Result<BTreeMap<String, String>, FunctionError> {
    match s3.get_bucket_tagging().bucket(bucket).send().await {
        Ok(out) => Ok(out.tag_set.into_iter().map(|t| (t.key, t.value)).collect()),
        Err(e) if not_found(error_code(&e)) => Ok(BTreeMap::new()),
        Err(e) => Err(aws_error("s3:GetBucketTagging", e)),
    }
}

/// Ensures the bucket and every setting; returns its name (None in `observe` when missing).
pub(crate) async fn ensure(
    ctx: &mut PhaseContext<'_>,
    s3: &aws_sdk_s3::Client,
) -> Result<Option<String>, FunctionError> {
    let bucket = ctx.names.bucket();
    let resource = format!("s3:bucket/{bucket}");
    let data_key = ctx.output(outputs::DATA_KEY_ARN)?;
    let tags = ctx.tags(COMPONENT);
    if !exists(ctx, s3, &bucket).await? {
        if !ctx.differs(&resource, "exists", json!(true), json!(false)) {
            return Ok(None);
        }
        create(ctx, s3, &bucket, &tags).await?;
    }
    let mut record = ResourceRecord::new(Kind::Bucket, &bucket, ctx.phase.as_str());
    record.arn = Some(format!("arn:{}:s3:::{bucket}", ctx.spec.partition()));
    record.tags = tags.clone();
    ctx.record(record).await?;
    converge_tags(ctx, s3, &bucket, &resource, &tags).await?;
    converge_ownership(ctx, s3, &bucket, &resource).await?;
    converge_public_access(ctx, s3, &bucket, &resource).await?;
    converge_encryption(ctx, s3, &bucket, &resource, Some(&data_key)).await?;
    converge_versioning(ctx, s3, &bucket, &resource).await?;
    let policy = policies::tenant_bucket_policy(&ctx.target(), &bucket);
    converge_policy(ctx, s3, &bucket, &resource, policy).await?;
    super::access_logs::ensure(ctx, s3, &bucket).await?;
    Ok(Some(bucket))
}

pub(super) async fn create(
    ctx: &mut PhaseContext<'_>,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), FunctionError> {
    let region = ctx.spec.region.clone();
    let mut request = s3
        .create_bucket()
        .bucket(bucket)
        .object_ownership(ObjectOwnership::BucketOwnerEnforced);
    // us-east-1 is the one region that takes no location constraint.
    if region != "us-east-1" {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.as_str()))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => {}
        // A concurrent onboarding created it first.
        Err(e) if error_code(&e) == Some("BucketAlreadyOwnedByYou") => {}
        Err(e) => return Err(aws_error("s3:CreateBucket", e)),
    }
    // Tagged before anything else, so that a crash right after leaves a bucket the next run
    // recognises as this platform's.
    put_tags(s3, bucket, tags).await
}

async fn put_tags(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), FunctionError> {
    let tag_set = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| FunctionError::new(ErrorType::Terminal, format!("building S3 tags: {e}")))?;
    let tagging = Tagging::builder()
        .set_tag_set(Some(tag_set))
        .build()
        .map_err(|e| FunctionError::new(ErrorType::Terminal, format!("building S3 tags: {e}")))?;
    s3.put_bucket_tagging()
        .bucket(bucket)
        .tagging(tagging)
        .send()
        .await
        .map_err(|e| aws_error("s3:PutBucketTagging", e))?;
    Ok(())
}

/// Adds missing or changed tags, keeping foreign ones (`PutBucketTagging` replaces the set).
pub(super) async fn converge_tags(
    ctx: &mut PhaseContext<'_>,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    resource: &str,
    desired: &BTreeMap<String, String>,
) -> Result<(), FunctionError> {
    let actual = tags_of(s3, bucket).await?;
    if desired.iter().all(|(k, v)| actual.get(k) == Some(v))
        || !ctx.differs(resource, "tags", json!(desired), json!(actual))
    {
        return Ok(());
    }
    let mut merged = actual;
    merged.extend(desired.iter().map(|(k, v)| (k.clone(), v.clone())));
    put_tags(s3, bucket, &merged).await
}

pub(super) async fn converge_ownership(
    ctx: &mut PhaseContext<'_>,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    resource: &str,
) -> Result<(), FunctionError> {
    let actual = match s3
        .get_bucket_ownership_controls()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => out
            .ownership_controls
            .and_then(|c| c.rules.into_iter().next())
            .map(|r| r.object_ownership.as_str().to_owned()),
        Err(e) if not_found(error_code(&e)) => None,
        Err(e) => return Err(aws_error("s3:GetBucketOwnershipControls", e)),
    };
    let desired = ObjectOwnership::BucketOwnerEnforced;
    if actual.as_deref() == Some(desired.as_str())
        || !ctx.differs(
            resource,
            "objectOwnership",
            json!(desired.as_str()),
            json!(actual),
        )
    {
        return Ok(());
    }
    let rule = OwnershipControlsRule::builder()
        .object_ownership(desired)
        .build()
        .map_err(|e| FunctionError::new(ErrorType::Terminal, e.to_string()))?;
    let controls = OwnershipControls::builder()
        .rules(rule)
        .build()
        .map_err(|e| FunctionError::new(ErrorType::Terminal, e.to_string()))?;
    s3.put_bucket_ownership_controls()
        .bucket(bucket)
        .ownership_controls(controls)
        .send()
        .await
        .map_err(|e| aws_error("s3:PutBucketOwnershipControls", e))?;
    Ok(())
}

pub(super) async fn converge_public_access(
    ctx: &mut PhaseContext<'_>,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    resource: &str,
) -> Result<(), FunctionError> {
    let actual = match s3.get_public_access_block().bucket(bucket).send().await {
        Ok(out) => out.public_access_block_configuration.map(|c| {
            [
                c.block_public_acls,
                c.ignore_public_acls,
                c.block_public_policy,
                c.restrict_public_buckets,
            ]
        }),
        Err(e) if not_found(error_code(&e)) => None,
        Err(e) => return Err(aws_error("s3:GetPublicAccessBlock", e)),
    };
    let all = [Some(true); 4];
    if actual == Some(all) || !ctx.differs(resource, "publicAccessBlock", json!(all), json!(actual))
    {
        return Ok(());
    }
    s3.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .map_err(|e| aws_error("s3:PutPublicAccessBlock", e))?;
    Ok(())
}

/// Default encryption: SSE-KMS with `key_arn` and S3 Bucket Keys, or SSE-S3 without a key (the
/// only default encryption S3 server access log delivery accepts on its target bucket).
pub(super) async fn converge_encryption(
    ctx: &mut PhaseContext<'_>,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    resource: &str,
    key_arn: Option<&str>,
) -> Result<(), FunctionError> {
    let actual = match s3.get_bucket_encryption().bucket(bucket).send().await {
        Ok(out) => out
            .server_side_encryption_configuration
            .and_then(|c| c.rules.into_iter().next())
            .map(|r| {
                let default = r.apply_server_side_encryption_by_default;
                json!({
                    "sseAlgorithm": default.as_ref().map(|d| d.sse_algorithm.as_str().to_owned()),
                    "kmsMasterKeyId": default.and_then(|d| d.kms_master_key_id),
                    "bucketKeyEnabled": r.bucket_key_enabled.unwrap_or(false),
                })
            }),
        Err(e) if not_found(error_code(&e)) => None,
        Err(e) => return Err(aws_error("s3:GetBucketEncryption", e)),
    };
    let desired = match key_arn {
        Some(key_arn) => json!({
            "sseAlgorithm": "aws:kms", "kmsMasterKeyId": key_arn, "bucketKeyEnabled": true,
        }),
        None => {
            json!({ "sseAlgorithm": "AES256", "kmsMasterKeyId": null, "bucketKeyEnabled": false })
        }
    };
    if actual.as_ref() == Some(&desired)
        || !ctx.differs(resource, "encryption", desired, json!(actual))
    {
        return Ok(());
    }
    put_encryption(s3, bucket, key_arn).await
}

/// Puts the bucket's default encryption: SSE-KMS with `key_arn` and a bucket key, or SSE-S3.
async fn put_encryption(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key_arn: Option<&str>,
) -> Result<(), FunctionError> {
    let default = match key_arn {
        Some(key_arn) => ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::AwsKms)
            .kms_master_key_id(key_arn),
        None => {
            ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::Aes256)
        }
    }
    .build()
    .map_err(|e| FunctionError::new(ErrorType::Terminal, e.to_string()))?;
    let config = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(default)
                .bucket_key_enabled(key_arn.is_some())
                .build(),
        )
        .build()
        .map_err(|e| FunctionError::new(ErrorType::Terminal, e.to_string()))?;
    s3.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(config)
        .send()
        .await
        .map_err(|e| aws_error("s3:PutBucketEncryption", e))?;
    Ok(())
}

async fn converge_versioning(
    ctx: &mut PhaseContext<'_>,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    resource: &str,
) -> Result<(), FunctionError> {
    let actual = s3
        .get_bucket_versioning()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| aws_error("s3:GetBucketVersioning", e))?
        .status;
    if actual == Some(BucketVersioningStatus::Enabled)
        || !ctx.differs(
            resource,
            "versioning",
            json!("Enabled"),
            json!(actual.as_ref().map(|s| s.as_str())),
        )
    {
        return Ok(());
    }
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .map_err(|e| aws_error("s3:PutBucketVersioning", e))?;
    Ok(())
}

pub(super) async fn converge_policy(
    ctx: &mut PhaseContext<'_>,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    resource: &str,
    desired: Value,
) -> Result<(), FunctionError> {
    let actual = match s3.get_bucket_policy().bucket(bucket).send().await {
        Ok(out) => out
            .policy
            .and_then(|p| policies::parse_returned(&p))
            .unwrap_or(Value::Null),
        Err(e) if not_found(error_code(&e)) => Value::Null,
        Err(e) => return Err(aws_error("s3:GetBucketPolicy", e)),
    };
    if policies::same_policy(&desired, &actual)
        || !ctx.differs(resource, "policy", desired.clone(), actual)
    {
        return Ok(());
    }
    s3.put_bucket_policy()
        .bucket(bucket)
        .policy(desired.to_string())
        .send()
        .await
        .map_err(|e| aws_error("s3:PutBucketPolicy", e))?;
    Ok(())
}

/// Deletes every object version and delete marker under `prefix` (the whole bucket for `""`),
/// at most [`DELETE_BATCHES_PER_CALL`] batches per call. Returns whether the prefix is empty
/// (false: call again). A missing bucket is empty.
pub(crate) async fn empty_prefix(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<bool, FunctionError> {
    for _ in 0..DELETE_BATCHES_PER_CALL {
        let listed = s3
            .list_object_versions()
            .bucket(bucket)
            .prefix(prefix)
            .max_keys(DELETE_BATCH)
            .send()
            .await;
        let listed = match listed {
            Ok(out) => out,
            Err(e) if not_found(error_code(&e)) => return Ok(true),
            Err(e) => return Err(aws_error("s3:ListObjectVersions", e)),
        };
        let objects = identifiers(&listed);
        if objects.is_empty() {
            return Ok(true);
        }
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| FunctionError::new(ErrorType::Terminal, e.to_string()))?;
        let out = s3
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| aws_error("s3:DeleteObjects", e))?;
        if let Some(err) = out.errors().first() {
            return Err(FunctionError::new(
                ErrorType::Retryable,
                format!(
                    "s3:DeleteObjects could not delete {:?} in {bucket}: {} {}",
                    err.key().unwrap_or_default(),
                    err.code().unwrap_or_default(),
                    err.message().unwrap_or_default()
                ),
            ));
        }
    }
    Ok(false)
}

/// Every version and delete marker of a listing, as DeleteObjects names them.
fn identifiers(
    listed: &aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput,
) -> Vec<ObjectIdentifier> {
    let versions = listed.versions().iter().map(|v| (v.key(), v.version_id()));
    let markers = listed
        .delete_markers()
        .iter()
        .map(|m| (m.key(), m.version_id()));
    versions
        .chain(markers)
        .filter_map(|(key, version)| {
            ObjectIdentifier::builder()
                .set_key(key.map(str::to_owned))
                .set_version_id(version.map(str::to_owned))
                .build()
                .ok()
        })
        .collect()
}

/// Whether anything (any version or delete marker) is stored under `prefix`.
pub async fn holds_data(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<bool, FunctionError> {
    match s3
        .list_object_versions()
        .bucket(bucket)
        .prefix(prefix)
        .max_keys(1)
        .send()
        .await
    {
        Ok(out) => Ok(!out.versions().is_empty() || !out.delete_markers().is_empty()),
        Err(e) if not_found(error_code(&e)) => Ok(false),
        Err(e) => Err(aws_error("s3:ListObjectVersions", e)),
    }
}

/// Deletes the (empty) bucket; a missing bucket is success.
pub(crate) async fn delete(
    ctx: &mut PhaseContext<'_>,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> Result<(), FunctionError> {
    if exists(ctx, s3, bucket).await? {
        match s3.delete_bucket().bucket(bucket).send().await {
            Ok(_) => {}
            Err(e) if not_found(error_code(&e)) => {}
            Err(e) => return Err(aws_error("s3:DeleteBucket", e)),
        }
    }
    ctx.forget(Kind::Bucket, bucket).await
}
