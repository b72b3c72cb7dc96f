//! S3 objects as offboarding uses them: the versions under a prefix (`ListObjectVersions`) and
//! their removal (`DeleteObjects`). One version per key, no delete markers.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use aws_sdk_s3::operation::delete_objects::DeleteObjectsOutput;
use aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput;
use aws_sdk_s3::types::{DeletedObject, ObjectVersion};
use aws_sdk_s3::Client;
use aws_smithy_mocks::{MockResponse as R, Rule};

use super::{answer, Calls};

/// The objects of one account's buckets, as `(bucket, key)`.
#[derive(Clone, Default)]
pub struct S3Double {
    objects: Arc<Mutex<BTreeSet<(String, String)>>>,
    calls: Calls,
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

    pub fn rules(&self) -> Vec<Rule> {
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
}
