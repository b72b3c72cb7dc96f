//! S3 buckets and objects as the tenants phase uses them: each bucket's settings (tags,
//! ownership, public access block, default encryption, versioning, policy, access logging), the
//! object versions under a prefix (`ListObjectVersions`) and their removal (`DeleteObjects`).
//! One version per key, no delete markers. A setting never put answers S3's "not found" code.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use aws_sdk_s3::error::ErrorMetadata;
use aws_sdk_s3::operation::delete_objects::DeleteObjectsOutput;
use aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput;
use aws_sdk_s3::types::{DeletedObject, ObjectVersion};
use aws_sdk_s3::Client;
use aws_smithy_mocks::{MockResponse as R, Rule};

use super::{answer, Calls};

/// One bucket's settings, as the `Put*` calls leave them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bucket {
    pub tags: BTreeMap<String, String>,
    pub ownership: Option<String>,
    /// `[BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets]`.
    pub public_access: Option<[bool; 4]>,
    /// `(algorithm, key, bucket key enabled)`.
    pub encryption: Option<(String, Option<String>, bool)>,
    pub versioning: Option<String>,
    pub policy: Option<String>,
    /// `(target bucket, target prefix)`.
    pub logging: Option<(String, String)>,
}

/// The objects of one account's buckets, as `(bucket, key)`, and the buckets by name.
#[derive(Clone, Default)]
pub struct S3Double {
    objects: Arc<Mutex<BTreeSet<(String, String)>>>,
    buckets: Arc<Mutex<BTreeMap<String, Bucket>>>,
    calls: Calls,
}

/// S3's answer for a bucket or a setting that does not exist (`code`: `NoSuchBucket`,
/// `NoSuchBucketPolicy`...).
fn missing<E: aws_smithy_types::error::metadata::ProvideErrorMetadata>(
    generic: impl Fn(ErrorMetadata) -> E,
    code: &str,
) -> E {
    generic(ErrorMetadata::builder().code(code).message(code).build())
}

impl S3Double {
    pub fn new(calls: &Calls) -> Self {
        S3Double {
            calls: calls.clone(),
            ..Default::default()
        }
    }

    /// Stores an object, as a tenant's workload would.
    pub fn put(&self, bucket: &str, key: &str) {
        let mut objects = self.objects.lock().expect("s3");
        objects.insert((bucket.to_owned(), key.to_owned()));
    }

    /// The keys of `bucket` under `prefix`.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let objects = self.objects.lock().expect("s3");
        objects
            .iter()
            .filter(|(b, k)| b == bucket && k.starts_with(prefix))
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// The buckets, by name.
    pub fn buckets(&self) -> BTreeMap<String, Bucket> {
        self.buckets.lock().expect("s3").clone()
    }

    /// Changes (or adds) a bucket out of band.
    pub fn edit(&self, name: &str, change: impl FnOnce(&mut Bucket)) {
        let mut buckets = self.buckets.lock().expect("s3");
        change(buckets.entry(name.to_owned()).or_default());
    }

    /// Runs `f` on bucket `name`; `None` when it does not exist.
    fn with<T>(&self, name: Option<&str>, f: impl FnOnce(&mut Bucket) -> T) -> Option<T> {
        let mut buckets = self.buckets.lock().expect("s3");
        buckets.get_mut(name.unwrap_or_default()).map(f)
    }

    pub fn rules(&self) -> Vec<Rule> {
        let mut rules = self.object_rules();
        rules.extend(self.bucket_rules());
        rules.extend(self.setting_rules());
        rules
    }

    fn object_rules(&self) -> Vec<Rule> {
        vec![
            answer!(
                self,
                Client::list_object_versions,
                "s3:ListObjectVersions",
                |me, req| {
                    let bucket = req.bucket().unwrap_or_default();
                    let max = req.max_keys().unwrap_or(1000).max(1) as usize;
                    let versions = me
                        .keys(bucket, req.prefix().unwrap_or_default())
                        .into_iter()
                        .take(max)
                        .map(|k| ObjectVersion::builder().key(k).version_id("v1").build())
                        .collect();
                    R::Output(
                        ListObjectVersionsOutput::builder()
                            .set_versions(Some(versions))
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::delete_objects,
                "s3:DeleteObjects",
                |me, req| {
                    let bucket = req.bucket().unwrap_or_default().to_owned();
                    let mut deleted = Vec::new();
                    let mut objects = me.objects.lock().expect("s3");
                    for o in req.delete().map(|d| d.objects()).unwrap_or_default() {
                        objects.remove(&(bucket.clone(), o.key().to_owned()));
                        deleted.push(DeletedObject::builder().key(o.key()).build());
                    }
                    R::Output(
                        DeleteObjectsOutput::builder()
                            .set_deleted(Some(deleted))
                            .build(),
                    )
                }
            ),
        ]
    }

    /// The bucket itself: exists, created, tagged, deleted.
    fn bucket_rules(&self) -> Vec<Rule> {
        use aws_sdk_s3::operation::*;
        use aws_sdk_s3::types::Tag;
        vec![
            answer!(self, Client::head_bucket, "s3:HeadBucket", |me, req| {
                match me.with(req.bucket(), |_| ()) {
                    Some(()) => R::Output(head_bucket::HeadBucketOutput::builder().build()),
                    None => R::Error(head_bucket::HeadBucketError::NotFound(
                        aws_sdk_s3::types::error::NotFound::builder().build(),
                    )),
                }
            }),
            answer!(self, Client::create_bucket, "s3:CreateBucket", |me, req| {
                let mut buckets = me.buckets.lock().expect("s3");
                let name = req.bucket().unwrap_or_default().to_owned();
                if buckets.contains_key(&name) {
                    return R::Error(missing(
                        create_bucket::CreateBucketError::generic,
                        "BucketAlreadyOwnedByYou",
                    ));
                }
                let ownership = req.object_ownership().map(|o| o.as_str().to_owned());
                buckets.insert(
                    name,
                    Bucket {
                        ownership,
                        ..Bucket::default()
                    },
                );
                R::Output(create_bucket::CreateBucketOutput::builder().build())
            }),
            answer!(
                self,
                Client::get_bucket_tagging,
                "s3:GetBucketTagging",
                |me, req| {
                    let tags = me.with(req.bucket(), |b| b.tags.clone());
                    match tags {
                        Some(tags) if !tags.is_empty() => {
                            let set = tags
                                .iter()
                                .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
                                .collect();
                            R::Output(
                                get_bucket_tagging::GetBucketTaggingOutput::builder()
                                    .set_tag_set(Some(set))
                                    .build()
                                    .expect("tagging"),
                            )
                        }
                        Some(_) => R::Error(missing(
                            get_bucket_tagging::GetBucketTaggingError::generic,
                            "NoSuchTagSet",
                        )),
                        None => R::Error(missing(
                            get_bucket_tagging::GetBucketTaggingError::generic,
                            "NoSuchBucket",
                        )),
                    }
                }
            ),
            answer!(
                self,
                Client::put_bucket_tagging,
                "s3:PutBucketTagging",
                |me, req| {
                    let tags: BTreeMap<String, String> = req
                        .tagging()
                        .map(|t| t.tag_set())
                        .unwrap_or_default()
                        .iter()
                        .map(|t| (t.key().to_owned(), t.value().to_owned()))
                        .collect();
                    me.with(req.bucket(), |b| b.tags = tags);
                    R::Output(put_bucket_tagging::PutBucketTaggingOutput::builder().build())
                }
            ),
            answer!(self, Client::delete_bucket, "s3:DeleteBucket", |me, req| {
                me.buckets
                    .lock()
                    .expect("s3")
                    .remove(req.bucket().unwrap_or_default());
                R::Output(delete_bucket::DeleteBucketOutput::builder().build())
            }),
        ]
    }

    /// Each setting's `Get*` and `Put*`.
    fn setting_rules(&self) -> Vec<Rule> {
        use aws_sdk_s3::operation::*;
        use aws_sdk_s3::types::*;
        vec![
            answer!(
                self,
                Client::get_bucket_ownership_controls,
                "s3:GetBucketOwnershipControls",
                |me, req| {
                    let error =
                        get_bucket_ownership_controls::GetBucketOwnershipControlsError::generic;
                    match me.with(req.bucket(), |b| b.ownership.clone()).flatten() {
                        Some(o) => R::Output(
                            get_bucket_ownership_controls::GetBucketOwnershipControlsOutput::builder()
                                .ownership_controls(
                                    OwnershipControls::builder()
                                        .rules(
                                            OwnershipControlsRule::builder()
                                                .object_ownership(ObjectOwnership::from(o.as_str()))
                                                .build()
                                                .expect("rule"),
                                        )
                                        .build()
                                        .expect("controls"),
                                )
                                .build(),
                        ),
                        None => R::Error(missing(error, "OwnershipControlsNotFoundError")),
                    }
                }
            ),
            answer!(
                self,
                Client::put_bucket_ownership_controls,
                "s3:PutBucketOwnershipControls",
                |me, req| {
                    let o = req
                        .ownership_controls()
                        .and_then(|c| c.rules().first())
                        .map(|r| r.object_ownership().as_str().to_owned());
                    me.with(req.bucket(), |b| b.ownership = o);
                    R::Output(
                        put_bucket_ownership_controls::PutBucketOwnershipControlsOutput::builder()
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::get_public_access_block,
                "s3:GetPublicAccessBlock",
                |me, req| {
                    let error = get_public_access_block::GetPublicAccessBlockError::generic;
                    match me.with(req.bucket(), |b| b.public_access).flatten() {
                        Some([a, b, c, d]) => R::Output(
                            get_public_access_block::GetPublicAccessBlockOutput::builder()
                                .public_access_block_configuration(
                                    PublicAccessBlockConfiguration::builder()
                                        .block_public_acls(a)
                                        .ignore_public_acls(b)
                                        .block_public_policy(c)
                                        .restrict_public_buckets(d)
                                        .build(),
                                )
                                .build(),
                        ),
                        None => R::Error(missing(error, "NoSuchPublicAccessBlockConfiguration")),
                    }
                }
            ),
            answer!(
                self,
                Client::put_public_access_block,
                "s3:PutPublicAccessBlock",
                |me, req| {
                    let c = req.public_access_block_configuration();
                    let on = |f: fn(&PublicAccessBlockConfiguration) -> Option<bool>| {
                        c.and_then(f).unwrap_or(false)
                    };
                    let block = [
                        on(|c| c.block_public_acls()),
                        on(|c| c.ignore_public_acls()),
                        on(|c| c.block_public_policy()),
                        on(|c| c.restrict_public_buckets()),
                    ];
                    me.with(req.bucket(), |b| b.public_access = Some(block));
                    R::Output(
                        put_public_access_block::PutPublicAccessBlockOutput::builder().build(),
                    )
                }
            ),
            answer!(
                self,
                Client::get_bucket_encryption,
                "s3:GetBucketEncryption",
                |me, req| {
                    let error = get_bucket_encryption::GetBucketEncryptionError::generic;
                    match me.with(req.bucket(), |b| b.encryption.clone()).flatten() {
                        Some((algorithm, key, bucket_key)) => {
                            let default = ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(ServerSideEncryption::from(algorithm.as_str()))
                                .set_kms_master_key_id(key)
                                .build()
                                .expect("default");
                            let rule = ServerSideEncryptionRule::builder()
                                .apply_server_side_encryption_by_default(default)
                                .bucket_key_enabled(bucket_key)
                                .build();
                            R::Output(
                                get_bucket_encryption::GetBucketEncryptionOutput::builder()
                                    .server_side_encryption_configuration(
                                        ServerSideEncryptionConfiguration::builder()
                                            .rules(rule)
                                            .build()
                                            .expect("configuration"),
                                    )
                                    .build(),
                            )
                        }
                        None => R::Error(missing(
                            error,
                            "ServerSideEncryptionConfigurationNotFoundError",
                        )),
                    }
                }
            ),
            answer!(
                self,
                Client::put_bucket_encryption,
                "s3:PutBucketEncryption",
                |me, req| {
                    let rule = req
                        .server_side_encryption_configuration()
                        .and_then(|c| c.rules().first());
                    let default = rule.and_then(|r| r.apply_server_side_encryption_by_default());
                    let encryption = default.map(|d| {
                        (
                            d.sse_algorithm().as_str().to_owned(),
                            d.kms_master_key_id().map(str::to_owned),
                            rule.and_then(|r| r.bucket_key_enabled()).unwrap_or(false),
                        )
                    });
                    me.with(req.bucket(), |b| b.encryption = encryption);
                    R::Output(put_bucket_encryption::PutBucketEncryptionOutput::builder().build())
                }
            ),
            answer!(
                self,
                Client::get_bucket_versioning,
                "s3:GetBucketVersioning",
                |me, req| {
                    let status = me.with(req.bucket(), |b| b.versioning.clone()).flatten();
                    R::Output(
                        get_bucket_versioning::GetBucketVersioningOutput::builder()
                            .set_status(status.map(|s| BucketVersioningStatus::from(s.as_str())))
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::put_bucket_versioning,
                "s3:PutBucketVersioning",
                |me, req| {
                    let status = req
                        .versioning_configuration()
                        .and_then(|v| v.status())
                        .map(|s| s.as_str().to_owned());
                    me.with(req.bucket(), |b| b.versioning = status);
                    R::Output(put_bucket_versioning::PutBucketVersioningOutput::builder().build())
                }
            ),
            answer!(
                self,
                Client::get_bucket_policy,
                "s3:GetBucketPolicy",
                |me, req| {
                    let error = get_bucket_policy::GetBucketPolicyError::generic;
                    match me.with(req.bucket(), |b| b.policy.clone()).flatten() {
                        Some(policy) => R::Output(
                            get_bucket_policy::GetBucketPolicyOutput::builder()
                                .policy(policy)
                                .build(),
                        ),
                        None => R::Error(missing(error, "NoSuchBucketPolicy")),
                    }
                }
            ),
            answer!(
                self,
                Client::put_bucket_policy,
                "s3:PutBucketPolicy",
                |me, req| {
                    let policy = req.policy().map(str::to_owned);
                    me.with(req.bucket(), |b| b.policy = policy);
                    R::Output(put_bucket_policy::PutBucketPolicyOutput::builder().build())
                }
            ),
            answer!(
                self,
                Client::delete_bucket_policy,
                "s3:DeleteBucketPolicy",
                |me, req| {
                    me.with(req.bucket(), |b| b.policy = None);
                    R::Output(delete_bucket_policy::DeleteBucketPolicyOutput::builder().build())
                }
            ),
            answer!(
                self,
                Client::get_bucket_logging,
                "s3:GetBucketLogging",
                |me, req| {
                    let logging = me.with(req.bucket(), |b| b.logging.clone()).flatten();
                    let enabled = logging.map(|(bucket, prefix)| {
                        LoggingEnabled::builder()
                            .target_bucket(bucket)
                            .target_prefix(prefix)
                            .build()
                            .expect("logging")
                    });
                    R::Output(
                        get_bucket_logging::GetBucketLoggingOutput::builder()
                            .set_logging_enabled(enabled)
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::put_bucket_logging,
                "s3:PutBucketLogging",
                |me, req| {
                    let logging = req
                        .bucket_logging_status()
                        .and_then(|s| s.logging_enabled())
                        .map(|l| (l.target_bucket().to_owned(), l.target_prefix().to_owned()));
                    me.with(req.bucket(), |b| b.logging = logging);
                    R::Output(put_bucket_logging::PutBucketLoggingOutput::builder().build())
                }
            ),
        ]
    }
}
