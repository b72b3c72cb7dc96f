//! The tenant-data bucket: encryption, public access block, TLS only.

use super::{condition_has, judge, not_applicable, platform, statements, Verdict};
use crate::compliance::live::{Bucket, Live};
use serde_json::json;

fn on_bucket(live: &Live, check: impl FnOnce(&Bucket) -> Verdict) -> Vec<Verdict> {
    match &live.bucket {
        Some(b) => vec![check(b)],
        None => vec![not_applicable(
            platform(live),
            "the platform has no tenant-data bucket (no tenant has been onboarded)",
        )],
    }
}

fn arn(bucket: &Bucket) -> String {
    format!("arn:aws:s3:::{}", bucket.name)
}

pub fn kms_encryption(live: &Live) -> Vec<Verdict> {
    on_bucket(live, |b| {
        let kms = b
            .encryption
            .as_deref()
            .is_some_and(|a| a.starts_with("aws:kms"));
        judge(
            arn(b),
            kms,
            "default encryption is SSE-KMS",
            format!(
                "default encryption is {}",
                b.encryption.as_deref().unwrap_or("not set")
            ),
            json!({"sseAlgorithm": b.encryption}),
        )
    })
}

pub fn public_access_blocked(live: &Live) -> Vec<Verdict> {
    on_bucket(live, |b| {
        let all = b
            .public_access_block
            .is_some_and(|s| s.iter().all(|on| *on));
        judge(
            arn(b),
            all,
            "all four public access block settings are on",
            "a public access block setting is off or unset",
            json!({"publicAccessBlock": b.public_access_block.map(|[acls, policy, ignore, restrict]| json!({
                "BlockPublicAcls": acls, "BlockPublicPolicy": policy,
                "IgnorePublicAcls": ignore, "RestrictPublicBuckets": restrict,
            }))}),
        )
    })
}

pub fn tls_only(live: &Live) -> Vec<Verdict> {
    on_bucket(live, |b| {
        let deny = statements(&b.policy).into_iter().find(|s| {
            s["Effect"] == "Deny"
                && condition_has(s, "aws:SecureTransport")
                && s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
        });
        judge(
            arn(b),
            deny.is_some(),
            "the bucket policy denies requests without TLS",
            "no bucket policy statement denies aws:SecureTransport false",
            json!({"statement": deny}),
        )
    })
}
