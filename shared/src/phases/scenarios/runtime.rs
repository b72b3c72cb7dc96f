//! The runtime's own contract ([`crate::phases::PhaseContext`]), whatever the phase: under
//! `observe` its inventory methods write nothing (and its store refuses a direct write before
//! it is sent: `store::tests`, since the mocks answer before any HTTP client is reached); under
//! `ensure` a resource is recorded once however often it is found.

use super::{context, Calls, Rules, Stage};
use crate::phases::Action;
use crate::plan::Phase;
use crate::resources::Kind;
use crate::store::ResourceRecord;

fn key_record() -> ResourceRecord {
    ResourceRecord::new(Kind::KmsKey, "alias/scenario", Phase::Encryption.as_str())
}

#[tokio::test]
async fn under_observe_the_inventory_methods_write_nothing() {
    let calls = Calls::default();
    let stage = Stage::new(Phase::Encryption, &calls, Rules::default(), &[]);
    let mut ctx = context(&stage.deps, Phase::Encryption, Action::Observe, &stage.spec)
        .await
        .expect("context");
    calls.clear();

    ctx.record(key_record()).await.expect("record");
    ctx.forget(Kind::KmsKey, "alias/other")
        .await
        .expect("forget");
    assert!(calls.all().is_empty(), "{:?}", calls.all());
    assert!(!ctx.is_known(Kind::KmsKey, "alias/scenario"));
    assert!(!stage.recorded(Kind::KmsKey, "alias/scenario"));
}

#[tokio::test]
async fn under_ensure_a_resource_is_recorded_once_however_often_it_is_found() {
    let calls = Calls::default();
    let stage = Stage::new(Phase::Encryption, &calls, Rules::default(), &[]);
    let mut ctx = context(&stage.deps, Phase::Encryption, Action::Ensure, &stage.spec)
        .await
        .expect("context");
    calls.clear();

    ctx.record(key_record()).await.expect("record");
    ctx.record(key_record()).await.expect("record again");
    assert!(stage.recorded(Kind::KmsKey, "alias/scenario"));
    assert!(ctx.is_known(Kind::KmsKey, "alias/scenario"));
    assert_eq!(calls.mutating(), vec!["dynamodb:UpdateItem(resource)"]);

    ctx.forget(Kind::KmsKey, "alias/scenario")
        .await
        .expect("forget");
    assert!(!stage.recorded(Kind::KmsKey, "alias/scenario"));
}
