//! `s3:bucket`: the platform's tenant-data bucket (one per platform; tenants share it by
//! prefix) and the bucket its server access logs go to.
//!
//! - **Found by** its deterministic name ([`find`]: `HeadBucket`, then its tags). A bucket of the
//!   name in another account is refused; so is one tagged with another platform ([`check_owner`]).
//!   One with no tag at all is adopted: the name carries a hash of the platform's stem, region
//!   and account role, and a crash between `CreateBucket` and `PutBucketTagging` leaves exactly
//!   that.
//! - **Desired** ([`Desired`]): SSE-KMS with the platform data key and S3 Bucket Keys (or SSE-S3,
//!   the only default encryption S3 log delivery writes into), all four public access blocks,
//!   `BucketOwnerEnforced` ownership (ACLs off), versioning where asked, the bucket policy, and
//!   Tenantry's tags.
//! - **Owned fields** ([`Desired::differences`], read by [`read`]): `tags` (Tenantry's; foreign
//!   tags stay), `objectOwnership`, `publicAccessBlock`, `encryption`, `versioning`, `policy`.
//!   The data bucket's `accessLogging` is read and set apart ([`access_logging`],
//!   [`enable_access_logging`]): it can only be set once its target bucket exists. Left to
//!   others: objects, lifecycle rules, replication, notifications.
//! - **Create, update, delete** ([`create`]: created with ACLs off, then tagged before anything
//!   else; [`repair`]; [`empty_prefix`], [`remove`]: a bucket already gone counts as removed).

use std::collections::BTreeMap;

use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketLoggingStatus, BucketVersioningStatus,
    CreateBucketConfiguration, Delete, LoggingEnabled, ObjectIdentifier, ObjectOwnership,
    OwnershipControls, OwnershipControlsRule, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Tag, Tagging, VersioningConfiguration,
};
use serde_json::{json, Value};

use super::{Difference, Differences};
use crate::error::{ErrorType, FunctionError};
use crate::naming::TAG_PLATFORM;
use crate::phases::aws_error;
use crate::phases::common::error_code;
use crate::policies;

/// Object versions deleted per `DeleteObjects` call (the S3 maximum).
pub const DELETE_BATCH: i32 = 1000;
/// `DeleteObjects` calls per invocation before it reports `ready: false` and the state machine
/// calls again (a prefix of millions of objects is emptied over many invocations, each well
/// within the Lambda time limit).
pub const DELETE_BATCHES_PER_CALL: usize = 20;

/// All four public access blocks on.
const ALL_BLOCKED: [Option<bool>; 4] = [Some(true); 4];

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

fn terminal(message: impl Into<String>) -> FunctionError {
    FunctionError::new(ErrorType::Terminal, message)
}

/// A bucket to have.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub name: String,
    pub region: String,
    /// Default encryption: SSE-KMS with this key and S3 Bucket Keys; `None`: SSE-S3.
    pub kms_key: Option<String>,
    /// Whether versioning must be on (false: left as it is).
    pub versioned: bool,
    pub policy: Value,
    pub tags: BTreeMap<String, String>,
}

/// What Tenantry owns of a live bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    pub tags: BTreeMap<String, String>,
    pub object_ownership: Option<String>,
    /// `[BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets]`; `None`:
    /// no configuration.
    pub public_access: Option<[Option<bool>; 4]>,
    /// As [`Desired::encryption`] shapes it; `None`: no default encryption rule.
    pub encryption: Option<Value>,
    /// `None` when never enabled, or when not read (the bucket is not [`Desired::versioned`]).
    pub versioning: Option<String>,
    /// `Null` when it has none.
    pub policy: Value,
}

impl Desired {
    /// The default encryption, as compared.
    pub fn encryption(&self) -> Value {
        match &self.kms_key {
            Some(key) => json!({
                "sseAlgorithm": "aws:kms", "kmsMasterKeyId": key, "bucketKeyEnabled": true,
            }),
            None => json!({
                "sseAlgorithm": "AES256", "kmsMasterKeyId": null, "bucketKeyEnabled": false,
            }),
        }
    }

    /// The owned fields of `live` that differ from this, in the order [`repair`] puts them back.
    pub fn differences(&self, live: &Live) -> Vec<Difference> {
        let mut d = Differences::default();
        d.tags(&self.tags, &live.tags);
        let ownership = ObjectOwnership::BucketOwnerEnforced.as_str();
        let same = live.object_ownership.as_deref() == Some(ownership);
        d.check(
            "objectOwnership",
            json!(ownership),
            json!(live.object_ownership),
            same,
        );
        let same = live.public_access == Some(ALL_BLOCKED);
        d.check(
            "publicAccessBlock",
            json!(ALL_BLOCKED),
            json!(live.public_access),
            same,
        );
        let encryption = self.encryption();
        let same = live.encryption.as_ref() == Some(&encryption);
        d.check("encryption", encryption, json!(live.encryption), same);
        if self.versioned {
            let same = live.versioning.as_deref() == Some("Enabled");
            d.check("versioning", json!("Enabled"), json!(live.versioning), same);
        }
        let same = policies::same_policy(&self.policy, &live.policy);
        d.check("policy", self.policy.clone(), live.policy.clone(), same);
        d.0
    }
}

/// The bucket's tags, if it exists in this account; an error when it belongs to another account.
pub async fn find(
    s3: &aws_sdk_s3::Client,
    name: &str,
) -> Result<Option<BTreeMap<String, String>>, FunctionError> {
    match s3.head_bucket().bucket(name).send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error().is_some_and(|s| s.is_not_found())
                || e.raw_response().is_some_and(|r| r.status().as_u16() == 404) =>
        {
            return Ok(None)
        }
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) => {
            return Err(terminal(format!(
                "S3 bucket {name} exists and belongs to another account"
            )))
        }
        Err(e) => return Err(aws_error("s3:HeadBucket", e)),
    }
    match s3.get_bucket_tagging().bucket(name).send().await {
        Ok(out) => Ok(Some(
            out.tag_set.into_iter().map(|t| (t.key, t.value)).collect(),
        )),
        Err(e) if not_found(error_code(&e)) => Ok(Some(BTreeMap::new())),
        Err(e) => Err(aws_error("s3:GetBucketTagging", e)),
    }
}

/// Refuses a bucket tagged with another platform (or with other tags but not the platform's);
/// one with no tag at all is the platform's, created and not tagged yet.
pub fn check_owner(
    name: &str,
    tags: &BTreeMap<String, String>,
    platform: &str,
) -> Result<(), FunctionError> {
    let owner = tags.get(TAG_PLATFORM).map(String::as_str);
    if owner == Some(platform) || tags.is_empty() {
        return Ok(());
    }
    Err(terminal(format!(
        "S3 bucket {name} exists but is not tagged {TAG_PLATFORM}={platform} (owner: {owner:?}); \
         refusing to adopt or empty it"
    )))
}

/// Reads the owned fields of an existing bucket whose tags [`find`] read.
pub async fn read(
    s3: &aws_sdk_s3::Client,
    desired: &Desired,
    tags: BTreeMap<String, String>,
) -> Result<Live, FunctionError> {
    let bucket = &desired.name;
    let object_ownership = match s3
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
    let public_access = match s3.get_public_access_block().bucket(bucket).send().await {
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
    let versioning = match desired.versioned {
        true => s3
            .get_bucket_versioning()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| aws_error("s3:GetBucketVersioning", e))?
            .status
            .map(|s| s.as_str().to_owned()),
        false => None,
    };
    let policy = match s3.get_bucket_policy().bucket(bucket).send().await {
        Ok(out) => out
            .policy
            .and_then(|p| policies::parse_returned(&p))
            .unwrap_or(Value::Null),
        Err(e) if not_found(error_code(&e)) => Value::Null,
        Err(e) => return Err(aws_error("s3:GetBucketPolicy", e)),
    };
    Ok(Live {
        tags,
        object_ownership,
        public_access,
        encryption: encryption(s3, bucket).await?,
        versioning,
        policy,
    })
}

async fn encryption(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<Option<Value>, FunctionError> {
    match s3.get_bucket_encryption().bucket(bucket).send().await {
        Ok(out) => Ok(out
            .server_side_encryption_configuration
            .and_then(|c| c.rules.into_iter().next())
            .map(|r| {
                let default = r.apply_server_side_encryption_by_default;
                json!({
                    "sseAlgorithm": default.as_ref().map(|d| d.sse_algorithm.as_str().to_owned()),
                    "kmsMasterKeyId": default.and_then(|d| d.kms_master_key_id),
                    "bucketKeyEnabled": r.bucket_key_enabled.unwrap_or(false),
                })
            })),
        Err(e) if not_found(error_code(&e)) => Ok(None),
        Err(e) => Err(aws_error("s3:GetBucketEncryption", e)),
    }
}

/// Creates the bucket with ACLs off, then tags it before anything else, so that a crash right
/// after leaves a bucket the next run recognises as the platform's. One a concurrent run created
/// first counts as created.
pub async fn create(s3: &aws_sdk_s3::Client, desired: &Desired) -> Result<(), FunctionError> {
    let mut request = s3
        .create_bucket()
        .bucket(&desired.name)
        .object_ownership(ObjectOwnership::BucketOwnerEnforced);
    // us-east-1 is the one region that takes no location constraint.
    if desired.region != "us-east-1" {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(desired.region.as_str()))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => {}
        Err(e) if error_code(&e) == Some("BucketAlreadyOwnedByYou") => {}
        Err(e) => return Err(aws_error("s3:CreateBucket", e)),
    }
    put_tags(s3, &desired.name, &desired.tags).await
}

/// Puts one owned field back (a field of [`Desired::differences`]). Tags are merged into the
/// live set, since `PutBucketTagging` replaces it.
pub async fn repair(
    s3: &aws_sdk_s3::Client,
    desired: &Desired,
    live: &Live,
    field: &str,
) -> Result<(), FunctionError> {
    let bucket = &desired.name;
    match field {
        "tags" => {
            let mut merged = live.tags.clone();
            merged.extend(desired.tags.clone());
            put_tags(s3, bucket, &merged).await
        }
        "objectOwnership" => put_ownership(s3, bucket).await,
        "publicAccessBlock" => s3
            .put_public_access_block()
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
            .map(drop)
            .map_err(|e| aws_error("s3:PutPublicAccessBlock", e)),
        "encryption" => put_encryption(s3, bucket, desired.kms_key.as_deref()).await,
        "versioning" => s3
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .map(drop)
            .map_err(|e| aws_error("s3:PutBucketVersioning", e)),
        "policy" => s3
            .put_bucket_policy()
            .bucket(bucket)
            .policy(desired.policy.to_string())
            .send()
            .await
            .map(drop)
            .map_err(|e| aws_error("s3:PutBucketPolicy", e)),
        other => {
            tracing::warn!(%bucket, field = other, "not a field of a bucket");
            Ok(())
        }
    }
}

async fn put_ownership(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<(), FunctionError> {
    let rule = OwnershipControlsRule::builder()
        .object_ownership(ObjectOwnership::BucketOwnerEnforced)
        .build()
        .map_err(|e| terminal(e.to_string()))?;
    let controls = OwnershipControls::builder()
        .rules(rule)
        .build()
        .map_err(|e| terminal(e.to_string()))?;
    s3.put_bucket_ownership_controls()
        .bucket(bucket)
        .ownership_controls(controls)
        .send()
        .await
        .map_err(|e| aws_error("s3:PutBucketOwnershipControls", e))?;
    Ok(())
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
        .map_err(|e| terminal(format!("building S3 tags: {e}")))?;
    let tagging = Tagging::builder()
        .set_tag_set(Some(tag_set))
        .build()
        .map_err(|e| terminal(format!("building S3 tags: {e}")))?;
    s3.put_bucket_tagging()
        .bucket(bucket)
        .tagging(tagging)
        .send()
        .await
        .map_err(|e| aws_error("s3:PutBucketTagging", e))?;
    Ok(())
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
    .map_err(|e| terminal(e.to_string()))?;
    let config = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(default)
                .bucket_key_enabled(key_arn.is_some())
                .build(),
        )
        .build()
        .map_err(|e| terminal(e.to_string()))?;
    s3.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(config)
        .send()
        .await
        .map_err(|e| aws_error("s3:PutBucketEncryption", e))?;
    Ok(())
}

/// Where `bucket`'s server access logs go: `{targetBucket, targetPrefix}`, `None` when off.
pub async fn access_logging(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> Result<Option<Value>, FunctionError> {
    Ok(s3
        .get_bucket_logging()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| aws_error("s3:GetBucketLogging", e))?
        .logging_enabled
        .map(|l| json!({ "targetBucket": l.target_bucket, "targetPrefix": l.target_prefix })))
}

/// Sends `bucket`'s server access logs to `target` under `prefix` (S3 refuses it until the
/// target's policy lets log delivery write).
pub async fn enable_access_logging(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    target: &str,
    prefix: &str,
) -> Result<(), FunctionError> {
    let enabled = LoggingEnabled::builder()
        .target_bucket(target)
        .target_prefix(prefix)
        .build()
        .map_err(|e| terminal(e.to_string()))?;
    s3.put_bucket_logging()
        .bucket(bucket)
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

/// Deletes the bucket's policy; a bucket already gone has none.
pub async fn delete_policy(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<(), FunctionError> {
    match s3.delete_bucket_policy().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(e) if error_code(&e) == Some("NoSuchBucket") => Ok(()),
        Err(e) => Err(aws_error("s3:DeleteBucketPolicy", e)),
    }
}

/// Deletes every object version and delete marker under `prefix` (the whole bucket for `""`),
/// at most [`DELETE_BATCHES_PER_CALL`] batches per call. Returns whether the prefix is empty
/// (false: call again). A missing bucket is empty.
pub async fn empty_prefix(
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
            .map_err(|e| terminal(e.to_string()))?;
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

/// Deletes the (empty) bucket; one already gone counts as deleted.
pub async fn remove(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<(), FunctionError> {
    match s3.delete_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(e) if not_found(error_code(&e)) => Ok(()),
        Err(e) => Err(aws_error("s3:DeleteBucket", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/data";

    fn desired(kms_key: Option<&str>, versioned: bool) -> Desired {
        Desired {
            name: "tenantry-payments-prod-data-1a2b3c".to_owned(),
            region: "us-east-1".to_owned(),
            kms_key: kms_key.map(str::to_owned),
            versioned,
            policy: json!({"Version": "2012-10-17", "Statement": [{"Sid": "TlsOnly",
                "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}),
            tags: BTreeMap::from([(TAG_PLATFORM.to_owned(), "payments".to_owned())]),
        }
    }

    /// The bucket as `desired` leaves it, with a foreign tag S3 or another team added.
    fn as_built(d: &Desired) -> Live {
        let mut tags = d.tags.clone();
        tags.insert("aws:cloudformation:stack-name".to_owned(), "x".to_owned());
        Live {
            tags,
            object_ownership: Some("BucketOwnerEnforced".to_owned()),
            public_access: Some(ALL_BLOCKED),
            encryption: Some(d.encryption()),
            versioning: d.versioned.then(|| "Enabled".to_owned()),
            policy: d.policy.clone(),
        }
    }

    fn fields(d: &Desired, live: &Live) -> Vec<&'static str> {
        d.differences(live).iter().map(|x| x.field).collect()
    }

    #[test]
    fn a_bucket_as_built_has_no_difference_and_foreign_tags_are_not_drift() {
        for d in [desired(Some(KEY), true), desired(None, false)] {
            assert_eq!(fields(&d, &as_built(&d)), Vec::<&str>::new());
        }
    }

    #[test]
    fn each_weakened_setting_is_named() {
        let d = desired(Some(KEY), true);
        let mut live = as_built(&d);
        live.tags.clear();
        live.object_ownership = Some("ObjectWriter".to_owned());
        live.public_access = Some([Some(true), Some(true), Some(false), Some(true)]);
        live.encryption = Some(json!({
            "sseAlgorithm": "AES256", "kmsMasterKeyId": null, "bucketKeyEnabled": false,
        }));
        live.versioning = Some("Suspended".to_owned());
        live.policy = Value::Null;
        assert_eq!(
            fields(&d, &live),
            [
                "tags",
                "objectOwnership",
                "publicAccessBlock",
                "encryption",
                "versioning",
                "policy"
            ]
        );
        // No configuration at all reads as a difference too, not as "nothing to compare".
        live.public_access = None;
        live.encryption = None;
        assert!(fields(&d, &live).contains(&"publicAccessBlock"));
        assert!(fields(&d, &live).contains(&"encryption"));
    }

    #[test]
    fn the_log_bucket_keeps_sse_s3_and_its_versioning_is_not_compared() {
        let d = desired(None, false);
        assert_eq!(d.encryption()["sseAlgorithm"], "AES256");
        let mut live = as_built(&d);
        live.versioning = Some("Suspended".to_owned());
        assert_eq!(fields(&d, &live), Vec::<&str>::new());
        // SSE-KMS on it would stop S3 log delivery: a difference.
        live.encryption = Some(desired(Some(KEY), true).encryption());
        assert_eq!(fields(&d, &live), ["encryption"]);
    }

    #[test]
    fn only_an_untagged_or_own_bucket_is_adopted() {
        let name = "tenantry-payments-prod-data-1a2b3c";
        let mut tags = BTreeMap::new();
        assert!(check_owner(name, &tags, "payments").is_ok());
        tags.insert(TAG_PLATFORM.to_owned(), "payments".to_owned());
        assert!(check_owner(name, &tags, "payments").is_ok());
        let err = check_owner(name, &tags, "cards").unwrap_err();
        assert_eq!(err.error_type, ErrorType::Terminal);
        assert!(err.error_message.contains(name), "{}", err.error_message);
        let other = BTreeMap::from([("team".to_owned(), "x".to_owned())]);
        assert!(check_owner(name, &other, "payments").is_err());
    }
}
