//! The observability phase's walk of the platform configuration secret
//! ([`crate::resources::secret`]): found by name, refused when not the platform's, restored when
//! pending deletion, then corrected field by field.

use serde_json::{json, Value};

use super::{foreign, owned, Clients, Desired};
use crate::error::{ErrorType, FunctionError};
use crate::phases::PhaseContext;
use crate::plan::Phase;
use crate::resources::{secret, Kind};
use crate::store::ResourceRecord;

/// The secret the phase wants. `ensure` needs its value, so a missing earlier output is terminal
/// there; `observe` before the cluster exists does not compare the value.
fn wanted(ctx: &PhaseContext<'_>, d: &Desired) -> Result<secret::Desired, FunctionError> {
    let value = match &d.secret {
        Ok(doc) => Some(doc.clone()),
        Err(why) if ctx.writes() => {
            return Err(FunctionError::new(ErrorType::Terminal, why.clone()))
        }
        Err(_) => None,
    };
    Ok(secret::Desired {
        name: d.names.platform_secret(),
        description: secret::description(&d.names),
        kms_key: d.data_key.clone(),
        value,
        tags: d.tags.clone(),
    })
}

/// Ensures the secret; returns its ARN (`None` in `observe` when it does not exist).
pub(super) async fn ensure(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    d: &Desired,
) -> Result<Option<String>, FunctionError> {
    let want = wanted(ctx, d)?;
    let resource = format!("{}/{}", Kind::Secret, want.name);
    let Some(mut live) = secret::find(c.secrets(), &want.name).await? else {
        if !ctx.differs(&resource, "exists", json!(true), json!(false)) {
            return Ok(None);
        }
        let arn = secret::create(c.secrets(), &want).await?;
        record(ctx, &want, &arn).await?;
        return Ok(Some(arn));
    };
    if !owned(&live.tags, &d.platform_id) {
        return Err(foreign("secret", &want.name, &d.platform_id));
    }
    record(ctx, &want, &live.arn).await?;
    if let Some(deleted) = live.deleted.take() {
        if !ctx.differs(&resource, "deletedDate", Value::Null, json!(deleted)) {
            // Pending deletion: its value cannot be read; restoring it is `ensure`'s job.
            return Ok(Some(live.arn));
        }
        secret::restore(c.secrets(), &live).await?;
    }
    if want.value.is_some() {
        secret::read_value(c.secrets(), &mut live).await?;
    }
    let fields = ctx.repairs(&resource, want.differences(&live));
    secret::repair(c.secrets(), &want, &live, &fields).await?;
    Ok(Some(live.arn))
}

async fn record(
    ctx: &mut PhaseContext<'_>,
    want: &secret::Desired,
    arn: &str,
) -> Result<(), FunctionError> {
    let mut record = ResourceRecord::new(Kind::Secret, &want.name, Phase::Observability.as_str());
    record.arn = Some(arn.to_owned()).filter(|a| !a.is_empty());
    record.tags = want.tags.clone();
    ctx.record(record).await
}

/// Schedules the secret's deletion if it is the platform's; one already pending counts as gone.
pub(super) async fn delete(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    d: &Desired,
) -> Result<(), FunctionError> {
    let name = d.names.platform_secret();
    if let Some(live) = secret::find(c.secrets(), &name).await? {
        if !owned(&live.tags, &d.platform_id) {
            return Err(foreign("secret", &name, &d.platform_id));
        }
        secret::remove(c.secrets(), &live).await?;
    }
    ctx.forget(Kind::Secret, &name).await
}
