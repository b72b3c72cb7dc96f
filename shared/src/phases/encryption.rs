//! The `encryption` phase: the platform's KMS keys (Kubernetes secrets, logs, data), rotation
//! on, one alias each, key policies from [`crate::policies::key_policy`]. How a key is found,
//! compared, created and deleted is the catalogue's ([`crate::resources::kms_key`]); this phase
//! lists the keys it wants.
//!
//! `delete` removes the aliases, then schedules every key tagged with the platform for deletion
//! ([`DELETION_WINDOW_DAYS`]); a key already pending deletion counts as gone. A key the spec
//! brings (`encryption.kmsKeyArn`) is never created, changed or deleted.

use super::outputs::{self, Output, OutputMap};
use crate::resources::kms_key::{self, TAG_PURPOSE};
use crate::resources::Kind;

use aws_sdk_kms::types::KeyState;

use super::{aws_error, Action, PhaseContext, PhaseInput, PhaseOutput};
use crate::deps::Deps;
use crate::error::FunctionError;
use crate::plan::Phase;
use crate::policies::{self, KEY_DATA, KEY_LOGS, KEY_PURPOSES, KEY_SECRETS};

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

/// The platform key of `purpose`.
fn platform_key(ctx: &PhaseContext, purpose: &str) -> kms_key::Desired {
    let mut tags = ctx.tags(COMPONENT);
    tags.insert(TAG_PURPOSE.to_owned(), purpose.to_owned());
    kms_key::Desired {
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
    let kms = ctx.clients.kms().clone();
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
                kms_key::converge(ctx, kms, &key)
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
        if kms_key::describe(kms, &alias).await?.is_some() {
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
    for (meta, purpose) in kms_key::tagged(ctx, kms, COMPONENT).await? {
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
            kms_key::schedule_deletion(kms, &key_id, DELETION_WINDOW_DAYS).await?;
        }
        ctx.forget(Kind::KmsKey, &key_id).await?;
    }
    Ok((true, out))
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
