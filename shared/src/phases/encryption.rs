//! The `encryption` phase: the platform's KMS keys (Kubernetes secrets, logs, data), rotation
//! on, one alias each, key policies from [`crate::policies::key_policy`].
//!
//! A key is found by its alias first; when the alias is missing (a crash between `CreateKey` and
//! `CreateAlias`), by the tags it got at creation (`tenantry:platform`, `tenantry:component`,
//! [`TAG_PURPOSE`]) among keys still Enabled, so a re-run adopts it instead of creating a second
//! key. Policy, rotation and tags are compared before anything is written.
//!
//! `delete` removes the aliases, then schedules every key tagged with the platform for deletion
//! ([`DELETION_WINDOW_DAYS`]); a key already pending deletion counts as gone. A key the spec
//! brings (`encryption.kmsKeyArn`) is never created, changed or deleted.

use super::outputs::{self, Output, OutputMap};
use crate::resources::Kind;
use std::collections::BTreeMap;

use aws_sdk_kms::types::{KeyManagerType, KeyMetadata, KeyState, Tag};
use serde_json::{json, Value};

use super::{aws_error, Action, PhaseContext, PhaseInput, PhaseOutput};
use crate::deps::Deps;
use crate::error::{ErrorType, FunctionError};
use crate::naming::{TAG_COMPONENT, TAG_PLATFORM};
use crate::plan::Phase;
use crate::policies::{self, KEY_DATA, KEY_LOGS, KEY_PURPOSES, KEY_SECRETS};
use crate::store::ResourceRecord;

/// Tag telling the platform's keys apart (`cluster`, `logs`, `data`), set at creation.
pub const TAG_PURPOSE: &str = "tenantry:purpose";
/// Days a deleted key stays recoverable (the planner's `deletionWindowDays`; KMS allows 7-30).
pub const DELETION_WINDOW_DAYS: i32 = 30;

const COMPONENT: &str = "encryption";

/// The output naming a purpose's key ARN.
pub fn output_of(purpose: &str) -> Output<String> {
    match purpose {
        KEY_SECRETS => outputs::SECRETS_KEY_ARN,
        KEY_LOGS => outputs::LOGS_KEY_ARN,
        _ => outputs::DATA_KEY_ARN,
    }
}

/// A customer-managed key as it should be: found by `alias`, or (after a crash before the alias)
/// by its `tags` `tenantry:platform`, `tenantry:component` and [`TAG_PURPOSE`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DesiredKey {
    pub alias: String,
    pub description: String,
    pub policy: Value,
    /// Set at creation; must include `tenantry:component` and [`TAG_PURPOSE`].
    pub tags: BTreeMap<String, String>,
}

impl DesiredKey {
    fn tag(&self, key: &str) -> &str {
        self.tags.get(key).map(String::as_str).unwrap_or_default()
    }
}

/// The platform key of `purpose`.
fn platform_key(ctx: &PhaseContext, purpose: &str) -> DesiredKey {
    let mut tags = ctx.tags(COMPONENT);
    tags.insert(TAG_PURPOSE.to_owned(), purpose.to_owned());
    DesiredKey {
        alias: ctx.names.kms_alias(purpose),
        description: description(ctx.names.stem(), purpose),
        policy: policies::key_policy(&ctx.target(), purpose),
        tags,
    }
}

fn description(stem: &str, purpose: &str) -> String {
    let what = match purpose {
        KEY_SECRETS => "EKS secrets envelope encryption",
        KEY_LOGS => "CloudWatch Logs encryption (cluster, flow logs, Container Insights)",
        KEY_DATA => "Tenant bucket and platform secrets",
        other => other,
    };
    format!("Tenantry {stem}: {what}")
}

/// Runs the phase.
pub async fn handle(input: PhaseInput, deps: &Deps) -> Result<PhaseOutput, FunctionError> {
    run(PhaseContext::load(Phase::Encryption, input, deps).await?).await
}

/// Runs the phase's action in a loaded context.
pub async fn run(mut ctx: PhaseContext<'_>) -> Result<PhaseOutput, FunctionError> {
    let kms = ctx.clients.kms.clone();
    let (ready, outputs) = match ctx.input.action {
        Action::Delete => delete(&mut ctx, &kms).await?,
        _ => ensure(&mut ctx, &kms).await?,
    };
    ctx.finish(ready, outputs).await
}

// --- ensure -------------------------------------------------------------------------------------

async fn ensure(
    ctx: &mut PhaseContext<'_>,
    kms: &aws_sdk_kms::Client,
) -> Result<(bool, OutputMap), FunctionError> {
    let mut out = OutputMap::new();
    let mut complete = true;
    for purpose in KEY_PURPOSES {
        let own = match *purpose {
            KEY_SECRETS => ctx.spec.encryption.kms_key_arn.clone(),
            _ => None,
        };
        let arn = match own {
            Some(arn) => Some(arn),
            None => {
                let key = platform_key(ctx, purpose);
                ensure_key(ctx, kms, &key)
                    .await?
                    .map(|m| m.arn.unwrap_or_default())
            }
        };
        match arn {
            Some(arn) => output_of(purpose).insert(&mut out, arn),
            None => complete = false,
        }
    }
    Ok((complete, out))
}

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
/// in the inventory under the run's phase.
pub(crate) async fn ensure_key(
    ctx: &mut PhaseContext<'_>,
    kms: &aws_sdk_kms::Client,
    key: &DesiredKey,
) -> Result<Option<KeyMetadata>, FunctionError> {
    let alias = key.alias.clone();
    let aliased = describe_key(kms, &alias).await?;
    let has_alias = aliased.is_some();
    let found = match aliased {
        Some(meta) => Some(meta),
        // A key may exist without its alias: an earlier attempt crashed between creating and
        // aliasing it, or the alias was deleted behind Tenantry's back.
        None if ctx.is_known(Kind::KmsKeyPending, &alias)
            || ctx.is_known(Kind::KmsAlias, &alias) =>
        {
            find_tagged_key(ctx, kms, key).await?
        }
        None => None,
    };
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
            create_key(kms, key).await?
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

/// DescribeKey by id, ARN or alias; None when it does not exist.
pub(crate) async fn describe_key(
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
async fn create_key(
    kms: &aws_sdk_kms::Client,
    key: &DesiredKey,
) -> Result<KeyMetadata, FunctionError> {
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
pub(crate) async fn tagged_keys(
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
        if let Some(meta) = describe_key(kms, key_id).await? {
            if meta.key_manager() != Some(&KeyManagerType::Aws) {
                out.push((meta, purpose));
            }
        }
    }
    Ok(out)
}

/// A key a crashed run created and did not alias yet: the oldest Enabled one with the key's
/// component and purpose tags.
async fn find_tagged_key(
    ctx: &PhaseContext<'_>,
    kms: &aws_sdk_kms::Client,
    key: &DesiredKey,
) -> Result<Option<KeyMetadata>, FunctionError> {
    let purpose = key.tag(TAG_PURPOSE);
    let mut candidates: Vec<KeyMetadata> = tagged_keys(ctx, kms, key.tag(TAG_COMPONENT))
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
    enable_key(kms, meta.key_id()).await
}

async fn enable_key(kms: &aws_sdk_kms::Client, key_id: &str) -> Result<(), FunctionError> {
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
    let missing: BTreeMap<String, String> = desired
        .iter()
        .filter(|(k, v)| actual.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
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

// --- delete -------------------------------------------------------------------------------------

/// Whether a tenant was offboarded with `retainData`: its S3 objects (the tenant-data bucket's
/// default key) and its repositories (when it had no key of its own) are encrypted with the
/// platform data key, which must then outlive the platform.
async fn retained_data(ctx: &PhaseContext<'_>) -> Result<bool, FunctionError> {
    let records = ctx.store.list_tenant_records(ctx.platform_id()).await?;
    Ok(records
        .iter()
        .any(|r| r.value.state == crate::store::TenantState::Offboarded && r.value.retain_data))
}

/// Deletes the aliases, then schedules every key tagged with the platform for deletion, except
/// the data key while retained tenant data needs it: that one is kept and handed over (out of
/// the inventory, named by the `retainedDataKey` output), like the bucket holding the data.
async fn delete(
    ctx: &mut PhaseContext<'_>,
    kms: &aws_sdk_kms::Client,
) -> Result<(bool, OutputMap), FunctionError> {
    let keep_data_key = retained_data(ctx).await?;
    let mut out = OutputMap::new();
    for purpose in KEY_PURPOSES {
        let alias = ctx.names.kms_alias(purpose);
        if describe_key(kms, &alias).await?.is_some() {
            match kms.delete_alias().alias_name(&alias).send().await {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_not_found_exception()) => {}
                Err(e) => return Err(aws_error("kms:DeleteAlias", e)),
            }
        }
        ctx.forget(Kind::KmsAlias, &alias).await?;
        ctx.forget(Kind::KmsKeyPending, &alias).await?;
    }
    for (meta, purpose) in tagged_keys(ctx, kms, COMPONENT).await? {
        let key_id = meta.key_id().to_owned();
        let pending = matches!(
            meta.key_state(),
            Some(KeyState::PendingDeletion | KeyState::PendingReplicaDeletion)
        );
        if keep_data_key && purpose == KEY_DATA && !pending {
            tracing::warn!(%key_id, "keeping the platform data key: retained tenant data is encrypted with it");
            let arn = meta.arn().unwrap_or_default().to_owned();
            outputs::RETAINED_DATA_KEY.insert(&mut out, arn);
        } else if !pending {
            schedule_deletion(kms, &key_id, DELETION_WINDOW_DAYS).await?;
        }
        ctx.forget(Kind::KmsKey, &key_id).await?;
    }
    Ok((true, out))
}

/// Schedules a key for deletion in `days` (7-30); already pending or gone is success.
pub(crate) async fn schedule_deletion(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_purpose_has_its_own_output() {
        let names: std::collections::BTreeSet<_> =
            KEY_PURPOSES.iter().map(|p| output_of(p).key).collect();
        assert_eq!(names.len(), KEY_PURPOSES.len());
        assert_eq!(output_of(KEY_SECRETS).key, "secretsKeyArn");
        assert_eq!(output_of(KEY_LOGS).key, "logsKeyArn");
        assert!(description("payments-prod", KEY_DATA).starts_with("Tenantry payments-prod: "));
    }
}
