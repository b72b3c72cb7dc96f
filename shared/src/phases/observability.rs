//! The `observability` phase: Container Insights log groups, the alarm topic, the cluster health
//! alarms and the platform configuration secret.
//!
//! - **Container Insights log groups** (`spec.observability.containerInsights`):
//!   `/aws/containerinsights/<cluster>/{application,dataplane,host,performance}`, created before
//!   the CloudWatch agent does (which would leave them unencrypted and kept forever) with the logs
//!   key and `spec.logging.retentionDays`, tagged; retention, key and tags are corrected on
//!   `ensure`. Turning Container Insights off does not delete them (they hold data); `delete` does.
//! - **Alarm topic** `tenantry-<stem>-alarms` when alarms are on and the request names no topic:
//!   encrypted with the platform's data key (whose key policy lets CloudWatch use it, see
//!   [`crate::policies::key_policy`]), with a topic policy letting this account's alarms of this
//!   platform publish ([`crate::resources::topic::policy`]), tagged. It is found by its ARN (derived from the
//!   account, region and name), and a topic of that name not tagged with the platform is neither
//!   adopted nor deleted.
//! - **Alarms** ([`crate::plan::ALARMS`], one definition for the plan and the phase) on the
//!   `ContainerInsights` namespace, dimension `ClusterName=<cluster>`, alarm and OK actions to the
//!   topic, tagged at creation. The platform's alarms are read with one `DescribeAlarms` by the
//!   prefix `tenantry-<stem>-`; an alarm is put again only when its definition differs
//!   ([`crate::resources::alarm::AlarmView`]). Alarms under the prefix that are tagged with the platform but no
//!   longer defined (an older release's, or all of them once alarms are turned off) are deleted.
//! - **Platform configuration secret** `tenantry/<stem>/platform-config` in Secrets Manager,
//!   encrypted with the data key, tagged, holding the platform's non-secret connection facts as
//!   JSON ([`crate::resources::secret::document`]); its value is written only when it differs.
//!
//! `ensure` creates in the order secret, log groups, topic, alarms; `delete` removes in the
//! reverse order. `observe` runs `ensure` without writing and reports every difference as drift.
//! Every resource is created with its tags in the creating call and found again by its
//! deterministic name, so a crash between any two calls converges on the next run.

mod alarms;
mod logs;
mod secret;
mod topic;

use std::collections::BTreeMap;

use serde_json::Value;

use super::outputs::{self, Output, OutputMap};
use super::{Action, PhaseContext, PhaseInput, PhaseOutput};
use crate::deps::Deps;
use crate::error::{ErrorType, FunctionError};
use crate::naming::{Names, TAG_COMPONENT, TAG_PLATFORM};
use crate::plan::{Phase, CONTAINER_INSIGHTS_LOG_GROUPS};
use crate::spec::partition_of;

/// The `tenantry:component` tag of this phase's resources.
pub const COMPONENT: &str = "observability";

pub use crate::aws::Clients;

/// Runs the phase.
pub async fn handle(input: PhaseInput, deps: &Deps) -> Result<PhaseOutput, FunctionError> {
    run(PhaseContext::load(Phase::Observability, input, deps).await?).await
}

/// Runs the phase's action in a loaded context.
pub async fn run(mut ctx: PhaseContext<'_>) -> Result<PhaseOutput, FunctionError> {
    let clients = ctx.clients.clone();
    let desired = Desired::of(&ctx)?;
    let (ready, outputs) = match ctx.input.action {
        Action::Delete => (delete(&mut ctx, &clients, &desired).await?, Outputs::new()),
        _ => ensure(&mut ctx, &clients, &desired).await?,
    };
    ctx.finish(ready, outputs).await
}

type Outputs = BTreeMap<String, Value>;

/// What the phase wants, from the spec, the names and the outputs of earlier phases.
pub(crate) struct Desired {
    pub platform_id: String,
    pub names: Names,
    pub region: String,
    pub account: String,
    pub partition: &'static str,
    pub tags: BTreeMap<String, String>,
    /// Container Insights log groups to ensure (empty when Container Insights is off).
    pub log_groups: Vec<String>,
    /// The Fargate pods' log group (`fargate.logging`), where Fluent Bit on Fargate writes.
    pub fargate_log_group: Option<String>,
    pub retention_days: i32,
    /// `None` only in `observe`/`delete` of a platform whose encryption phase has not
    /// recorded its keys (`ensure` requires them).
    pub logs_key: Option<String>,
    pub data_key: Option<String>,
    /// The topic the alarms notify; `None` when alarms are off.
    pub alarm_topic: Option<String>,
    /// Whether [`Desired::alarm_topic`] is the platform's own topic (created here).
    pub own_topic: bool,
    /// The secret's value, or why it cannot be built yet (an earlier output is missing).
    pub secret: Result<Value, String>,
}

impl Desired {
    fn of(ctx: &PhaseContext<'_>) -> Result<Desired, FunctionError> {
        let spec = &ctx.spec;
        let ensure = ctx.input.action == Action::Ensure;
        let container_insights = spec.observability.container_insights;
        let alarms = &spec.observability.alarms;
        let own_topic = alarms.enabled && alarms.sns_topic_arn.is_none();
        let key = |output: Output<String>, needed: bool| match ensure && needed {
            true => ctx.output(output).map(Some),
            false => ctx.optional(output),
        };
        let partition = partition_of(&spec.region);
        let names = ctx.names.clone();
        let alarm_topic = if !alarms.enabled {
            None
        } else {
            match &alarms.sns_topic_arn {
                Some(arn) => Some(arn.clone()),
                None => Some(crate::resources::topic::arn(
                    partition,
                    &spec.region,
                    &ctx.account,
                    &names.sns_topic(),
                )),
            }
        };
        Ok(Desired {
            platform_id: spec.id.clone(),
            region: spec.region.clone(),
            account: ctx.account.clone(),
            partition,
            tags: ctx.tags(COMPONENT),
            log_groups: if container_insights {
                CONTAINER_INSIGHTS_LOG_GROUPS
                    .iter()
                    .map(|kind| names.container_insights_log_group(kind))
                    .collect()
            } else {
                Vec::new()
            },
            fargate_log_group: spec.fargate.logging.then(|| names.fargate_log_group()),
            retention_days: i32::try_from(spec.logging.retention_days).unwrap_or(i32::MAX),
            logs_key: key(
                outputs::LOGS_KEY_ARN,
                container_insights || spec.fargate.logging,
            )?,
            data_key: key(outputs::DATA_KEY_ARN, true)?,
            alarm_topic,
            own_topic,
            secret: crate::resources::secret::document(spec, &names, &ctx.status.outputs),
            names,
        })
    }

    /// `arn:<partition>:<service>:<region>:<account>:<resource>`.
    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:{}:{service}:{}:{}:{resource}",
            self.partition, self.region, self.account
        )
    }
}

async fn ensure(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    d: &Desired,
) -> Result<(bool, Outputs), FunctionError> {
    let mut out = OutputMap::new();
    if let Some(arn) = secret::ensure(ctx, c, d).await? {
        outputs::PLATFORM_SECRET_ARN.insert(&mut out, arn);
    }
    let groups = logs::ensure(ctx, c, d).await?;
    outputs::CONTAINER_INSIGHTS_LOG_GROUPS.insert(&mut out, groups);
    let topic = match &d.alarm_topic {
        Some(_) if d.own_topic => topic::ensure(ctx, c, d).await?,
        other => other.clone(),
    };
    if let Some(arn) = topic {
        outputs::ALARM_TOPIC_ARN.insert(&mut out, arn);
    }
    let alarm_names = alarms::ensure(ctx, c, d).await?;
    outputs::ALARM_NAMES.insert(&mut out, alarm_names);
    Ok((true, out))
}

/// Alarms, the platform's own topic, the log groups, the secret; "already gone" is success.
async fn delete(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    d: &Desired,
) -> Result<bool, FunctionError> {
    alarms::delete(ctx, c, d).await?;
    topic::delete(ctx, c, d).await?;
    logs::delete(ctx, c, d).await?;
    secret::delete(ctx, c, d).await?;
    Ok(true)
}

// --- helpers shared by the submodules ------------------------------------------------------------

/// Whether `tags` mark a resource of this phase of `platform`.
pub(crate) fn owned(tags: &BTreeMap<String, String>, platform: &str) -> bool {
    tags.get(TAG_PLATFORM).map(String::as_str) == Some(platform)
        && tags.get(TAG_COMPONENT).map(String::as_str) == Some(COMPONENT)
}

/// The error of a resource found under the platform's name but not tagged as its own.
pub(crate) fn foreign(what: &str, name: &str, platform: &str) -> FunctionError {
    FunctionError::new(
        ErrorType::Terminal,
        format!(
            "{what} {name:?} exists but is not tagged {TAG_PLATFORM}={platform}, \
             {TAG_COMPONENT}={COMPONENT}; Tenantry neither adopts nor deletes it"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_needs_platform_and_component() {
        let mut tags = BTreeMap::new();
        tags.insert(TAG_PLATFORM.to_owned(), "payments".to_owned());
        assert!(!owned(&tags, "payments"));
        tags.insert(TAG_COMPONENT.to_owned(), COMPONENT.to_owned());
        assert!(owned(&tags, "payments"));
        assert!(!owned(&tags, "pay"));
        let err = foreign("SNS topic", "tenantry-payments-prod-alarms", "payments");
        assert_eq!(err.error_type, ErrorType::Terminal);
    }
}
