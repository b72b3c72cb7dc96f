//! Container image repositories (ECR): scanned on push, tags immutable, a lifecycle policy, a
//! customer-managed key.

use super::{judge, not_applicable, platform, Verdict};
use crate::compliance::live::{Live, Repository};
use serde_json::json;

fn each(live: &Live, check: impl Fn(&Repository) -> Verdict) -> Vec<Verdict> {
    if live.repositories.is_empty() {
        return vec![not_applicable(
            platform(live),
            "the platform and its tenants have no container image repository",
        )];
    }
    live.repositories.iter().map(check).collect()
}

pub fn scan_on_push(live: &Live) -> Vec<Verdict> {
    each(live, |r| {
        judge(
            &r.arn,
            r.scan_on_push,
            "images are scanned on push",
            "images are not scanned on push",
            json!({"scanOnPush": r.scan_on_push}),
        )
    })
}

pub fn immutable_tags(live: &Live) -> Vec<Verdict> {
    each(live, |r| {
        judge(
            &r.arn,
            // IMMUTABLE_WITH_EXCLUSION leaves the excluded tags movable: not immutable.
            r.tag_mutability == "IMMUTABLE",
            "tags are immutable",
            "tags are mutable (or some are exempt): a pushed tag can be moved to another, unscanned image",
            json!({"imageTagMutability": r.tag_mutability}),
        )
    })
}

pub fn lifecycle_policy(live: &Live) -> Vec<Verdict> {
    each(live, |r| {
        judge(
            &r.arn,
            r.lifecycle_policy,
            "a lifecycle policy expires old images",
            "no lifecycle policy: old, unpatched images stay pullable",
            json!({"lifecyclePolicy": r.lifecycle_policy}),
        )
    })
}

pub fn kms_key(live: &Live) -> Vec<Verdict> {
    each(live, |r| {
        let own = r
            .kms_key
            .as_deref()
            .is_some_and(|k| live.keys.iter().any(|key| key.arn == k));
        judge(
            &r.arn,
            own,
            "images are encrypted with a key of the platform or its tenant",
            format!(
                "images are encrypted with {}",
                r.kms_key.as_deref().unwrap_or("AES-256 (no KMS key)")
            ),
            json!({"kmsKey": r.kms_key}),
        )
    })
}
