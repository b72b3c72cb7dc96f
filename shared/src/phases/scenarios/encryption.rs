//! The encryption phase: three platform keys, each aliased, rotated, with its policy and tags.

use aws_sdk_kms::types::KeyState;
use serde_json::json;

use super::kms::KmsDouble;
use super::{Calls, Rules, Stage};
use crate::naming::{Names, TAG_PLATFORM};
use crate::phases::{encryption, Action};
use crate::plan::Phase;
use crate::policies::{KEY_DATA, KEY_PURPOSES};
use crate::resources::Kind;

/// The example platform's account and region, as KMS and the state table hold them.
/// The example platform's keys, in KMS and in the state table.
struct World {
    s: Stage,
    kms: KmsDouble,
}

impl World {
    fn new() -> World {
        let calls = Calls::default();
        let kms = KmsDouble::new(&calls);
        let rules = Rules {
            kms: kms.rules(),
            ..Rules::default()
        };
        World {
            s: Stage::new(Phase::Encryption, &calls, rules, &[]),
            kms,
        }
    }

    fn alias(&self, purpose: &str) -> String {
        Names::new(&self.s.spec).kms_alias(purpose)
    }
}

#[tokio::test]
async fn fresh_platform_gets_one_rotated_tagged_key_per_purpose() {
    let w = World::new();
    let out = w.s.run(Action::Ensure).await;
    assert!(out.ready);
    assert_eq!(w.kms.keys().len(), KEY_PURPOSES.len());
    for purpose in KEY_PURPOSES {
        let alias = w.alias(purpose);
        let (id, key) = w.kms.aliased(&alias).unwrap_or_else(|| panic!("{alias}"));
        assert_eq!(key.state, KeyState::Enabled, "{alias}");
        assert!(key.rotation, "{alias}: rotation");
        assert_eq!(key.tags.get(TAG_PLATFORM), Some(&w.s.spec.id), "{alias}");
        assert_eq!(
            key.tags
                .get(crate::resources::kms_key::TAG_PURPOSE)
                .map(String::as_str),
            Some(*purpose)
        );
        let policy: serde_json::Value = serde_json::from_str(&key.policy).expect("policy");
        assert!(policy["Statement"]
            .as_array()
            .is_some_and(|s| !s.is_empty()));
        assert_eq!(
            out.outputs[encryption::output_of(purpose).key],
            json!(format!("arn:aws:kms:us-east-1:123456789012:key/{id}"))
        );
        assert!(w.s.recorded(Kind::KmsKey, &id), "{id} recorded");
        assert!(w.s.recorded(Kind::KmsAlias, &alias), "{alias} recorded");
        assert!(
            !w.s.recorded(Kind::KmsKeyPending, &alias),
            "{alias} still pending"
        );
    }
    // Create, alias and enable rotation per key; the policy and tags go in with CreateKey.
    assert_eq!(
        w.s.calls.mutating_aws().len(),
        3 * KEY_PURPOSES.len(),
        "{:?}",
        w.s.calls.mutating_aws()
    );
    assert_eq!(out.changes as usize, w.s.calls.mutating_aws().len());
    assert_eq!(w.s.store.phases(), ["encryption"]);
}

#[tokio::test]
async fn converged_platform_costs_no_mutating_call() {
    let w = World::new();
    w.s.run(Action::Ensure).await;
    let out = w.s.run(Action::Ensure).await;
    assert!(out.ready);
    assert_eq!(out.changes, 0);
    assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new());
    // Nothing is recorded again either: only the phase's own status entry is written.
    assert_eq!(w.s.calls.mutating(), ["dynamodb:UpdateItem(phase)"]);

    let observed = w.s.run(Action::Observe).await;
    assert!(observed.drift.is_empty(), "{:?}", observed.drift);
    assert_eq!(w.s.calls.mutating(), Vec::<String>::new());
}

#[tokio::test]
async fn drifted_key_is_named_by_observe_and_repaired_by_ensure() {
    let w = World::new();
    w.s.run(Action::Ensure).await;
    let (id, _) = w.kms.aliased(&w.alias(KEY_DATA)).expect("data key");
    w.kms.edit(&id, |k| {
        k.rotation = false;
        k.policy = json!({"Version": "2012-10-17", "Statement": []}).to_string();
        k.tags.remove(TAG_PLATFORM);
    });

    let observed = w.s.run(Action::Observe).await;
    let resource = format!("kms:key/{id}");
    let fields: Vec<_> = observed
        .drift
        .iter()
        .map(|d| (d.resource.as_str(), d.field.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            (resource.as_str(), "policy"),
            (resource.as_str(), "keyRotationEnabled"),
            (resource.as_str(), "tags"),
        ]
    );
    assert!(!observed.ready, "a drifted phase is not ready");
    assert_eq!(w.s.calls.mutating(), Vec::<String>::new(), "observe wrote");

    let repaired = w.s.run(Action::Ensure).await;
    assert_eq!(
        w.s.calls.mutating_aws(),
        [
            "kms:PutKeyPolicy",
            "kms:EnableKeyRotation",
            "kms:TagResource"
        ]
    );
    assert_eq!(repaired.changes, 3);
    assert!(w.s.run(Action::Observe).await.drift.is_empty());
}

#[tokio::test]
async fn key_pending_deletion_is_restored_not_replaced() {
    let w = World::new();
    w.s.run(Action::Ensure).await;
    let (id, _) = w.kms.aliased(&w.alias(KEY_DATA)).expect("data key");
    w.kms.edit(&id, |k| k.state = KeyState::PendingDeletion);

    w.s.run(Action::Ensure).await;
    assert_eq!(
        w.s.calls.mutating_aws(),
        ["kms:CancelKeyDeletion", "kms:EnableKey"]
    );
    assert_eq!(w.kms.keys()[&id].state, KeyState::Enabled);
    assert_eq!(w.kms.keys().len(), KEY_PURPOSES.len());
}

/// The crash between `CreateKey` and `CreateAlias`: the key exists with its tags, the inventory
/// holds only the pending marker. The re-run adopts that key.
#[tokio::test]
async fn half_created_key_is_adopted_not_duplicated() {
    let w = World::new();
    w.s.run(Action::Ensure).await;
    let alias = w.alias(KEY_DATA);
    let (id, _) = w.kms.aliased(&alias).expect("data key");
    w.kms.delete_alias(&alias);
    w.s.store.forget(&w.s.spec.id, Kind::KmsKey, &id);
    w.s.store.forget(&w.s.spec.id, Kind::KmsAlias, &alias);
    w.s.store
        .record(&w.s.spec.id, "encryption", Kind::KmsKeyPending, &alias);

    let out = w.s.run(Action::Ensure).await;
    assert_eq!(w.s.calls.mutating_aws(), ["kms:CreateAlias"]);
    assert_eq!(
        w.kms.aliases()[&alias],
        id,
        "the alias names the crashed run's key"
    );
    assert_eq!(w.kms.keys().len(), KEY_PURPOSES.len(), "no second key");
    assert!(w.s.recorded(Kind::KmsKey, &id));
    assert!(!w.s.recorded(Kind::KmsKeyPending, &alias));
    assert!(out.ready);
}

#[tokio::test]
async fn gone_platform_deletes_without_a_call_and_delete_converges() {
    let w = World::new();
    let out = w.s.run(Action::Delete).await;
    assert!(out.ready);
    assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new());

    w.s.run(Action::Ensure).await;
    let out = w.s.run(Action::Delete).await;
    assert!(out.ready);
    assert!(w.kms.aliases().is_empty());
    assert!(w
        .kms
        .keys()
        .values()
        .all(|k| k.state == KeyState::PendingDeletion));
    assert!(
        w.s.store.inventory().is_empty(),
        "{:?}",
        w.s.store.inventory()
    );

    w.s.run(Action::Delete).await;
    assert_eq!(
        w.s.calls.mutating_aws(),
        Vec::<String>::new(),
        "already gone"
    );
}
