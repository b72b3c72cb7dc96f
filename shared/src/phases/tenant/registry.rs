//! Container image repositories (`ecr:repository`, described in `resources::repository`): the
//! platform's, kept beside the tenant-data bucket, and each tenant's. The nodes pull from all of
//! them; a tenant's role pushes to and pulls from its own. A repository the request no longer
//! names is deleted (`observe` reports it).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::tenant_tags;
use crate::error::FunctionError;
use crate::naming::ROLE_NODE;
use crate::phases::{outputs, PhaseContext};
use crate::policies::registry::repository_policy;
use crate::resources::repository::{self, Desired};
use crate::resources::Kind;
use crate::spec::TenantSpec;

/// The tag component of the platform's repositories.
const COMPONENT: &str = "registry";

/// Converges the platform's repositories; their URIs by request name.
pub(super) async fn ensure_platform(
    ctx: &mut PhaseContext<'_>,
    ecr: &aws_sdk_ecr::Client,
) -> Result<BTreeMap<String, String>, FunctionError> {
    let key = ctx.output(outputs::DATA_KEY_ARN)?;
    let policy = repository_policy(&node_role_arn(ctx), None);
    let tags = ctx.tags(COMPONENT);
    let desired = ctx
        .spec
        .repositories
        .iter()
        .map(|r| {
            let name = ctx.names.repository(&r.name);
            let d = Desired::new(name, r, key.clone(), policy.clone(), tags.clone());
            (r.name.clone(), d)
        })
        .collect();
    converge_all(ctx, ecr, desired, None).await
}

/// Converges `tenant`'s repositories, encrypted with `key_arn` (its own key or the data key);
/// their URIs by request name.
pub(super) async fn ensure_tenant(
    ctx: &mut PhaseContext<'_>,
    ecr: &aws_sdk_ecr::Client,
    tenant: &TenantSpec,
    role_arn: &str,
    key_arn: &str,
) -> Result<BTreeMap<String, String>, FunctionError> {
    let policy = repository_policy(&node_role_arn(ctx), Some(role_arn));
    let tags = tenant_tags(ctx, tenant);
    let desired = tenant
        .repositories
        .iter()
        .map(|r| {
            let name = ctx.names.tenant_repository(&tenant.name, &r.name);
            let d = Desired::new(name, r, key_arn.to_owned(), policy.clone(), tags.clone());
            (r.name.clone(), d)
        })
        .collect();
    converge_all(ctx, ecr, desired, Some(&tenant.name)).await
}

/// Converges each of `desired` (request name, repository), then deletes the repositories
/// recorded for the same owner that it does not name.
async fn converge_all(
    ctx: &mut PhaseContext<'_>,
    ecr: &aws_sdk_ecr::Client,
    desired: Vec<(String, Desired)>,
    tenant: Option<&str>,
) -> Result<BTreeMap<String, String>, FunctionError> {
    let mut uris = BTreeMap::new();
    for (name, d) in &desired {
        if let Some(uri) = repository::converge(ctx, ecr, d, tenant).await? {
            uris.insert(name.clone(), uri);
        }
    }
    let wanted: BTreeSet<&str> = desired.iter().map(|(_, d)| d.name.as_str()).collect();
    for stale in ctx.recorded(Kind::Repository, tenant) {
        if wanted.contains(stale.as_str()) {
            continue;
        }
        let resource = format!("{}/{stale}", Kind::Repository);
        if ctx.differs(&resource, "exists", json!(false), json!(true)) {
            repository::remove(ctx, ecr, &stale).await?;
        }
    }
    Ok(uris)
}

/// Offboarding `tenant`: its repositories are deleted with their images, or, when its data is
/// retained, kept and handed over (out of the platform's inventory, like a retained key).
pub(super) async fn remove_tenant(
    ctx: &mut PhaseContext<'_>,
    ecr: &aws_sdk_ecr::Client,
    tenant: &TenantSpec,
    retain_data: bool,
) -> Result<(), FunctionError> {
    let mut names: BTreeSet<String> = ctx
        .recorded(Kind::Repository, Some(&tenant.name))
        .into_iter()
        .collect();
    names.extend(
        tenant
            .repositories
            .iter()
            .map(|r| ctx.names.tenant_repository(&tenant.name, &r.name)),
    );
    for name in names {
        match retain_data {
            true => ctx.forget(Kind::Repository, &name).await?,
            false => repository::remove(ctx, ecr, &name).await?,
        }
    }
    Ok(())
}

/// Decommission: deletes the platform's repositories with their images.
pub(super) async fn remove_platform(
    ctx: &mut PhaseContext<'_>,
    ecr: &aws_sdk_ecr::Client,
) -> Result<(), FunctionError> {
    let mut names: BTreeSet<String> = ctx.recorded(Kind::Repository, None).into_iter().collect();
    names.extend(
        ctx.spec
            .repositories
            .iter()
            .map(|r| ctx.names.repository(&r.name)),
    );
    for name in names {
        repository::remove(ctx, ecr, &name).await?;
    }
    Ok(())
}

fn node_role_arn(ctx: &PhaseContext<'_>) -> String {
    let t = ctx.target();
    t.role_arn(&t.names.role(ROLE_NODE))
}
