//! `kms:key` (with `kms:alias` and `kms:key-pending`): a customer-managed KMS key, one of the
//! platform's (secrets, logs, data) or one tenant's.
//!
//! - **Found by** its alias first; when the alias is missing (a crash between `CreateKey` and
//!   `CreateAlias`, recorded as `kms:key-pending`, or an alias deleted out of band), by the tags
//!   it got at creation (`tenantry:platform`, `tenantry:component`, [`TAG_PURPOSE`]) among keys
//!   still Enabled ([`find_tagged`]), so a re-run adopts it instead of creating a second key. A
//!   key without this platform's tags is never adopted, changed or deleted ([`tagged`]).
//! - **Desired** ([`Desired`]): alias, description, key policy and tags, from the phase recipe
//!   (the encryption phase's platform keys, the tenants phase's tenant keys).
//! - **Owned fields**: state (Enabled: a key pending deletion is restored), the alias, the key
//!   policy (compared as a policy, [`crate::policies::same_policy`]), rotation on, and
//!   Tenantry's tags. Left to others: foreign tags, grants, the key material's rotation dates.
//! - **Create, update, delete** ([`converge`], [`schedule_deletion`]): one `CreateKey` call with
//!   tags and policy, so a crash leaves a findable key; each owned field repaired by its own
//!   call, and under `observe` only reported ([`PhaseContext::differs`]). A key is never deleted
//!   at once: it is scheduled for deletion, and a key already pending deletion counts as gone.

use std::collections::BTreeMap;

use aws_sdk_kms::types::{KeyManagerType, KeyMetadata, KeyState, Tag};
use serde_json::{json, Value};

use super::Kind;
use crate::error::{ErrorType, FunctionError};
use crate::naming::{TAG_COMPONENT, TAG_PLATFORM};
use crate::phases::{aws_error, PhaseContext};
use crate::policies;
use crate::store::ResourceRecord;

/// Tag telling the platform's keys apart (`cluster`, `logs`, `data`), set at creation.
pub const TAG_PURPOSE: &str = "tenantry:purpose";

/// A customer-managed key as it should be: found by `alias`, or (after a crash before the alias)
/// by its `tags` `tenantry:platform`, `tenantry:component` and [`TAG_PURPOSE`].
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub alias: String,
    pub description: String,
    pub policy: Value,
    /// Set at creation; must include `tenantry:component` and [`TAG_PURPOSE`].
    pub tags: BTreeMap<String, String>,
}

impl Desired {
    fn tag(&self, key: &str) -> &str {
        self.tags.get(key).map(String::as_str).unwrap_or_default()
    }
}

/// KMS tags from a map.
fn kms_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, FunctionError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder().tag_key(k).tag_value(v).build().map_err(|e| {
                FunctionError::new(ErrorType::Terminal, format!("building KMS tag {k}: {e}"))
            })
        })
        .collect()
}

/// Ensures one key: Enabled (a key pending deletion is restored), aliased, with its policy,
/// rotation and tags. Returns its metadata (None in `observe` when it does not exist); recorded
/// in the inventory under the invocation's phase.
pub async fn converge(
    ctx: &mut PhaseContext<'_>,
    kms: &aws_sdk_kms::Client,
    key: &Desired,
) -> Result<Option<KeyMetadata>, FunctionError> {
    let alias = key.alias.clone();
    let (found, has_alias) = find_key(ctx, kms, key).await?;
    let meta = match found {
        Some(meta) => meta,
        None => {
            if !ctx.differs(
                &format!("kms:alias/{alias}"),
                "exists",
                json!(true),
                json!(false),
            ) {
                return Ok(None);
            }
            let mut pending = ResourceRecord::new(Kind::KmsKeyPending, &alias, ctx.phase.as_str());
            pending.tags = key.tags.clone();
            ctx.record(pending).await?;
            create(kms, key).await?
        }
    };
    let key_id = meta.key_id().to_owned();
    let arn = meta.arn().unwrap_or_default().to_owned();
    let resource = format!("kms:key/{key_id}");
    let phase = ctx.phase.as_str();
    let mut record = ResourceRecord::new(Kind::KmsKey, &key_id, phase);
    record.arn = Some(arn.clone());
    record.tags = key.tags.clone();
    record.attributes = Some(json!({ "alias": alias, "purpose": key.tag(TAG_PURPOSE) }));
    ctx.record(record).await?;
    converge_state(ctx, kms, &resource, &meta).await?;
    if !has_alias && ctx.differs(&resource, "alias", json!(alias), Value::Null) {
        kms.create_alias()
            .alias_name(&alias)
            .target_key_id(&key_id)
            .send()
            .await
            .map_err(|e| aws_error("kms:CreateAlias", e))?;
    }
    let mut alias_record = ResourceRecord::new(Kind::KmsAlias, &alias, phase);
    alias_record.attributes = Some(json!({ "keyId": key_id }));
    ctx.record(alias_record).await?;
    ctx.forget(Kind::KmsKeyPending, &alias).await?;
    converge_policy(ctx, kms, &resource, &key_id, &key.policy).await?;
    converge_rotation(ctx, kms, &resource, &key_id).await?;
    converge_tags(ctx, kms, &resource, &key_id, &key.tags).await?;
    Ok(Some(meta))
}

/// The key: by its alias, or, when the alias is missing and the inventory says a key was made,
/// by its tags. Also whether the alias exists.
async fn find_key(
    ctx: &PhaseContext<'_>,
    kms: &aws_sdk_kms::Client,
    key: &Desired,
) -> Result<(Option<KeyMetadata>, bool), FunctionError> {
    let alias = &key.alias;
    if let Some(meta) = describe(kms, alias).await? {
        return Ok((Some(meta), true));
    }
    // A key may exist without its alias: an earlier attempt crashed between creating and
    // aliasing it, or the alias was deleted behind Tenantry's back.
    if ctx.is_known(Kind::KmsKeyPending, alias) || ctx.is_known(Kind::KmsAlias, alias) {
        return Ok((find_tagged(ctx, kms, key).await?, false));
    }
    Ok((None, false))
}

/// DescribeKey by id, ARN or alias; None when it does not exist.
pub async fn describe(
    kms: &aws_sdk_kms::Client,
    key: &str,
) -> Result<Option<KeyMetadata>, FunctionError> {
    match kms.describe_key().key_id(key).send().await {
        Ok(out) => Ok(out.key_metadata),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error("kms:DescribeKey", e)),
    }
}

/// Creates a key with its tags and policy (one call, so a crash leaves a findable key), then
/// turns rotation on. The alias is created by the caller.
async fn create(kms: &aws_sdk_kms::Client, key: &Desired) -> Result<KeyMetadata, FunctionError> {
    let tags = kms_tags(&key.tags)?;
    let out = kms
        .create_key()
        .description(&key.description)
        .key_usage(aws_sdk_kms::types::KeyUsageType::EncryptDecrypt)
        .key_spec(aws_sdk_kms::types::KeySpec::SymmetricDefault)
        .policy(key.policy.to_string())
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| aws_error("kms:CreateKey", e))?;
    out.key_metadata.ok_or_else(|| {
        FunctionError::new(ErrorType::Terminal, "CreateKey returned no key metadata")
    })
}

/// The platform's keys by tag: (metadata, purpose) of every customer-managed key tagged with
/// this platform and `component`, whatever its state.
pub async fn tagged(
    ctx: &PhaseContext<'_>,
    kms: &aws_sdk_kms::Client,
    component: &str,
) -> Result<Vec<(KeyMetadata, String)>, FunctionError> {
    let mut keys = kms.list_keys().into_paginator().items().send();
    let mut out = Vec::new();
    while let Some(entry) = keys.next().await {
        let entry = entry.map_err(|e| aws_error("kms:ListKeys", e))?;
        let Some(key_id) = entry.key_id() else {
            continue;
        };
        let tags = match kms.list_resource_tags().key_id(key_id).send().await {
            Ok(out) => out.tags.unwrap_or_default(),
            // AWS managed keys and keys another principal owns are not ours to read.
            Err(e)
                if e.as_service_error().and_then(|s| s.meta().code())
                    == Some("AccessDeniedException") =>
            {
                continue
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_not_found_exception()) =>
            {
                continue
            }
            Err(e) => return Err(aws_error("kms:ListResourceTags", e)),
        };
        let tag = |k: &str| {
            tags.iter()
                .find(|t| t.tag_key() == k)
                .map(|t| t.tag_value())
        };
        if tag(TAG_PLATFORM) != Some(ctx.platform_id()) || tag(TAG_COMPONENT) != Some(component) {
            continue;
        }
        let purpose = tag(TAG_PURPOSE).unwrap_or_default().to_owned();
        if let Some(meta) = describe(kms, key_id).await? {
            if meta.key_manager() != Some(&KeyManagerType::Aws) {
                out.push((meta, purpose));
            }
        }
    }
    Ok(out)
}

/// A key a crashed invocation created and did not alias yet: the oldest Enabled one with the key's
/// component and purpose tags.
async fn find_tagged(
    ctx: &PhaseContext<'_>,
    kms: &aws_sdk_kms::Client,
    key: &Desired,
) -> Result<Option<KeyMetadata>, FunctionError> {
    let purpose = key.tag(TAG_PURPOSE);
    let mut candidates: Vec<KeyMetadata> = tagged(ctx, kms, key.tag(TAG_COMPONENT))
        .await?
        .into_iter()
        .filter(|(meta, p)| p == purpose && meta.key_state() == Some(&KeyState::Enabled))
        .map(|(meta, _)| meta)
        .collect();
    candidates.sort_by_key(|m| {
        (
            m.creation_date().map(|d| d.as_nanos()),
            m.key_id().to_owned(),
        )
    });
    Ok(candidates.into_iter().next())
}

/// A key that is aliased but pending deletion or disabled is brought back (the alias says the
/// platform still wants it).
async fn converge_state(
    ctx: &mut PhaseContext<'_>,
    kms: &aws_sdk_kms::Client,
    resource: &str,
    meta: &KeyMetadata,
) -> Result<(), FunctionError> {
    let state = meta.key_state().cloned();
    let pending = state == Some(KeyState::PendingDeletion);
    if !pending && state != Some(KeyState::Disabled) {
        return Ok(());
    }
    let actual = json!(state.as_ref().map(|s| s.as_str()));
    if !ctx.differs(resource, "keyState", json!("Enabled"), actual) {
        return Ok(());
    }
    if pending {
        kms.cancel_key_deletion()
            .key_id(meta.key_id())
            .send()
            .await
            .map_err(|e| aws_error("kms:CancelKeyDeletion", e))?;
    }
    // CancelKeyDeletion leaves the key Disabled.
    enable(kms, meta.key_id()).await
}

async fn enable(kms: &aws_sdk_kms::Client, key_id: &str) -> Result<(), FunctionError> {
    kms.enable_key()
        .key_id(key_id)
        .send()
        .await
        .map_err(|e| aws_error("kms:EnableKey", e))?;
    Ok(())
}

async fn converge_policy(
    ctx: &mut PhaseContext<'_>,
    kms: &aws_sdk_kms::Client,
    resource: &str,
    key_id: &str,
    desired: &Value,
) -> Result<(), FunctionError> {
    let actual = kms
        .get_key_policy()
        .key_id(key_id)
        .policy_name("default")
        .send()
        .await
        .map_err(|e| aws_error("kms:GetKeyPolicy", e))?
        .policy
        .and_then(|p| policies::parse_returned(&p))
        .unwrap_or(Value::Null);
    if policies::same_policy(desired, &actual)
        || !ctx.differs(resource, "policy", desired.clone(), actual)
    {
        return Ok(());
    }
    kms.put_key_policy()
        .key_id(key_id)
        .policy_name("default")
        .policy(desired.to_string())
        .send()
        .await
        .map_err(|e| aws_error("kms:PutKeyPolicy", e))?;
    Ok(())
}

async fn converge_rotation(
    ctx: &mut PhaseContext<'_>,
    kms: &aws_sdk_kms::Client,
    resource: &str,
    key_id: &str,
) -> Result<(), FunctionError> {
    let enabled = kms
        .get_key_rotation_status()
        .key_id(key_id)
        .send()
        .await
        .map_err(|e| aws_error("kms:GetKeyRotationStatus", e))?
        .key_rotation_enabled;
    if enabled || !ctx.differs(resource, "keyRotationEnabled", json!(true), json!(false)) {
        return Ok(());
    }
    kms.enable_key_rotation()
        .key_id(key_id)
        .send()
        .await
        .map_err(|e| aws_error("kms:EnableKeyRotation", e))?;
    Ok(())
}

/// Adds tags that are missing or differ (cost tags may change); never removes foreign tags.
async fn converge_tags(
    ctx: &mut PhaseContext<'_>,
    kms: &aws_sdk_kms::Client,
    resource: &str,
    key_id: &str,
    desired: &BTreeMap<String, String>,
) -> Result<(), FunctionError> {
    let actual: BTreeMap<String, String> = kms
        .list_resource_tags()
        .key_id(key_id)
        .send()
        .await
        .map_err(|e| aws_error("kms:ListResourceTags", e))?
        .tags
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.tag_key, t.tag_value))
        .collect();
    let missing = super::missing_tags(desired, &actual);
    if missing.is_empty() || !ctx.differs(resource, "tags", json!(missing), json!(actual)) {
        return Ok(());
    }
    kms.tag_resource()
        .key_id(key_id)
        .set_tags(Some(kms_tags(&missing)?))
        .send()
        .await
        .map_err(|e| aws_error("kms:TagResource", e))?;
    Ok(())
}

/// Schedules a key for deletion in `days` (7-30); already pending or gone is success.
pub async fn schedule_deletion(
    kms: &aws_sdk_kms::Client,
    key_id: &str,
    days: i32,
) -> Result<(), FunctionError> {
    let result = kms
        .schedule_key_deletion()
        .key_id(key_id)
        .pending_window_in_days(days)
        .send()
        .await;
    match result {
        Ok(_) => {}
        // Gone, or already pending deletion (a concurrent delete): the outcome we want.
        Err(e)
            if e.as_service_error().is_some_and(|s| {
                s.is_not_found_exception() || s.is_kms_invalid_state_exception()
            }) => {}
        Err(e) => return Err(aws_error("kms:ScheduleKeyDeletion", e)),
    }
    Ok(())
}
