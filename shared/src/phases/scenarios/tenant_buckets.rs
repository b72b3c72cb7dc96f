//! The tenants phase for the platform (no `item`): the tenant-data bucket and the bucket its
//! access logs go to, each locked down (ACLs off, every public access block, TLS-only policy,
//! default encryption, versioning on the data bucket), tagged, and the data bucket logging into
//! the other.

use serde_json::json;

use super::ecr::EcrDouble;
use super::s3::S3Double;
use super::{drift_fields, Calls, Rules, Stage};
use crate::error::ErrorType;
use crate::naming::{Names, TAG_ENVIRONMENT, TAG_PLATFORM};
use crate::phases::outputs;
use crate::phases::Action;
use crate::plan::Phase;
use crate::policies::ACCESS_LOG_PREFIX;

const DATA_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/data";

struct World {
    s: Stage,
    s3: S3Double,
}

impl World {
    fn new() -> World {
        let calls = Calls::default();
        let s3 = S3Double::new(&calls);
        let rules = Rules {
            s3: s3.rules(),
            ecr: EcrDouble::new(&calls).rules(),
            ..Rules::default()
        };
        let outputs = [(outputs::DATA_KEY_ARN.key, json!(DATA_KEY))];
        World {
            s: Stage::new(Phase::Tenants, &calls, rules, &outputs),
            s3,
        }
    }

    fn names(&self) -> Names {
        Names::new(&self.s.spec)
    }
}

#[tokio::test]
async fn fresh_platform_gets_locked_down_data_and_log_buckets_then_costs_nothing() {
    let w = World::new();
    assert!(w.s.run(Action::Ensure).await.ready);
    let buckets = w.s3.buckets();
    let (data, logs) = (w.names().bucket(), w.names().access_log_bucket());
    for name in [&data, &logs] {
        let b = &buckets[name];
        assert_eq!(
            b.ownership.as_deref(),
            Some("BucketOwnerEnforced"),
            "{name}"
        );
        assert_eq!(b.public_access, Some([true; 4]), "{name}");
        assert_eq!(b.tags.get(TAG_PLATFORM), Some(&w.s.spec.id), "{name}");
        let policy = b.policy.as_deref().unwrap_or_default();
        assert!(policy.contains("aws:SecureTransport"), "{name}: {policy}");
    }
    let d = &buckets[&data];
    assert_eq!(
        d.encryption,
        Some(("aws:kms".to_owned(), Some(DATA_KEY.to_owned()), true))
    );
    assert_eq!(d.versioning.as_deref(), Some("Enabled"));
    assert_eq!(
        d.logging,
        Some((logs.clone(), ACCESS_LOG_PREFIX.to_owned()))
    );
    // S3 log delivery writes only into SSE-S3.
    assert_eq!(
        buckets[&logs].encryption,
        Some(("AES256".to_owned(), None, false))
    );

    let again = w.s.run(Action::Ensure).await;
    assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new());
    assert_eq!(again.changes, 0);
    let observed = w.s.run(Action::Observe).await;
    assert!(observed.drift.is_empty(), "{:?}", observed.drift);
    assert_eq!(w.s.calls.mutating(), Vec::<String>::new());
}

/// The data bucket opened by hand: public access allowed, SSE-S3 instead of the data key,
/// versioning suspended, logging off, a tag lost (and a team's tag added). `observe` names each
/// field; `ensure` puts back exactly those, keeping the team's tag.
#[tokio::test]
async fn a_bucket_opened_by_hand_is_named_then_locked_again() {
    let w = World::new();
    w.s.run(Action::Ensure).await;
    let data = w.names().bucket();
    w.s3.edit(&data, |b| {
        b.public_access = Some([false; 4]);
        b.encryption = Some(("AES256".to_owned(), None, false));
        b.versioning = Some("Suspended".to_owned());
        b.logging = None;
        b.tags.remove(TAG_ENVIRONMENT);
        b.tags.insert("team".to_owned(), "payments-sre".to_owned());
    });
    let observed = w.s.run(Action::Observe).await;
    let mut fields = drift_fields(&observed);
    fields.sort();
    let resource = format!("s3:bucket/{data}");
    let expected: Vec<(String, String)> = [
        "accessLogging",
        "encryption",
        "publicAccessBlock",
        "tags",
        "versioning",
    ]
    .iter()
    .map(|f| (resource.clone(), (*f).to_owned()))
    .collect();
    assert_eq!(fields, expected);
    assert_eq!(w.s.calls.mutating(), Vec::<String>::new(), "observe wrote");

    let repaired = w.s.run(Action::Ensure).await;
    let mut writes = w.s.calls.mutating_aws();
    writes.sort();
    assert_eq!(
        writes,
        [
            "s3:PutBucketEncryption",
            "s3:PutBucketLogging",
            "s3:PutBucketTagging",
            "s3:PutBucketVersioning",
            "s3:PutPublicAccessBlock",
        ]
    );
    assert_eq!(repaired.changes, 5);
    let b = &w.s3.buckets()[&data];
    assert_eq!(b.tags["team"], "payments-sre");
    assert_eq!(b.tags.get(TAG_ENVIRONMENT), Some(&w.s.spec.environment));
    assert!(w.s.run(Action::Observe).await.drift.is_empty());
}

/// A crash between `CreateBucket` and `PutBucketTagging` leaves the data bucket untagged, with
/// nothing set: the re-run adopts it (its name is the platform's) and completes it without a
/// second `CreateBucket` for it.
#[tokio::test]
async fn half_created_bucket_is_adopted_and_completed() {
    let w = World::new();
    let data = w.names().bucket();
    w.s3.edit(&data, |_| {});
    w.s.run(Action::Ensure).await;
    let writes = w.s.calls.mutating_aws();
    let creates = writes.iter().filter(|c| *c == "s3:CreateBucket").count();
    assert_eq!(creates, 1, "only the log bucket is created: {writes:?}");
    let b = &w.s3.buckets()[&data];
    assert_eq!(b.tags.get(TAG_PLATFORM), Some(&w.s.spec.id));
    assert_eq!(b.ownership.as_deref(), Some("BucketOwnerEnforced"));
    assert_eq!(b.public_access, Some([true; 4]));
    w.s.run(Action::Ensure).await;
    assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new());
}

/// A bucket of the data bucket's name tagged with another platform is neither adopted nor
/// changed: `ensure` fails naming it, before any write.
#[tokio::test]
async fn another_platforms_bucket_of_the_name_is_refused_untouched() {
    let w = World::new();
    let data = w.names().bucket();
    w.s3.edit(&data, |b| {
        b.tags.insert(TAG_PLATFORM.to_owned(), "cards".to_owned());
    });
    let err = w.s.try_run(Action::Ensure).await.expect_err("adopted");
    assert_eq!(err.error_type, ErrorType::Terminal);
    assert!(err.error_message.contains(&data), "{}", err.error_message);
    assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new());
    let b = &w.s3.buckets()[&data];
    assert_eq!(b.public_access, None);
    assert_eq!(b.tags.len(), 1);
}
