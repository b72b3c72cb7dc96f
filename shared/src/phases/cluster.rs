//! The `cluster` phase: the cluster's log group and the EKS cluster itself.
//!
//! - `ensure`: the log group `/aws/eks/<stem>/cluster` (created before the cluster so that it has
//!   the platform's retention and logs key, rather than the one EKS would create on its own), then
//!   the cluster, found by its deterministic name: created with the requested version, the private
//!   subnets, private endpoint, public access per spec, every requested log type, envelope
//!   encryption of secrets with the platform key, access config authentication mode `API`,
//!   deletion protection and the platform's tags. An existing ACTIVE cluster is compared field by
//!   field and *one* update is applied per call (EKS runs one cluster update at a time); `ready`
//!   is true once the cluster is ACTIVE and as specified. The output `clusterCreator` names this
//!   function's role, to which EKS gives the creator's cluster-admin access entry.
//!   The workflow's poll loop calls `ensure` again: while the cluster is CREATING or UPDATING it
//!   is not ready; once ACTIVE, remaining differences are applied one per call.
//! - `observe`: the same walk in report mode: the differences (a missing or foreign cluster,
//!   version, endpoint access, log types, encryption key, authentication mode, deletion
//!   protection, the log group's retention, key and tags) as drift; not ready while the cluster
//!   is not ACTIVE.
//! - `delete`: turns deletion protection off, deletes the cluster, waits until it is gone, then
//!   deletes the log group. "Already gone" is success.
//!
//! The cluster's calls and owned fields are [`crate::resources::cluster`]'s; this module holds
//! the walk. A cluster that exists under the platform's name but is not tagged with the
//! platform's id is never adopted nor deleted.

use super::outputs::{self, Output, OutputMap};
use super::{Action, PhaseContext, PhaseInput, PhaseOutput};
use crate::aws::Clients;
use crate::deps::Deps;
use crate::error::{ErrorType, FunctionError};
use crate::plan::Phase;
use crate::resources::cluster::{self, Change};
use crate::resources::{log_group, Kind};
use crate::spec::Cni;
use crate::store::ResourceRecord;
use aws_sdk_eks::types::{Cluster, ClusterStatus};
use serde_json::json;
use std::collections::BTreeMap;

/// The `tenantry:component` tag value of this phase's resources.
pub const COMPONENT: &str = "cluster";

pub async fn handle(input: PhaseInput, deps: &Deps) -> Result<PhaseOutput, FunctionError> {
    run(PhaseContext::load(Phase::Cluster, input, deps).await?).await
}

/// Runs the phase's action in a loaded context.
pub async fn run(mut ctx: PhaseContext<'_>) -> Result<PhaseOutput, FunctionError> {
    let aws = ctx.clients.clone();
    match ctx.input.action {
        Action::Ensure | Action::Observe => ensure(&mut ctx, &aws).await,
        Action::Delete => delete(&mut ctx, &aws).await,
    }
}

/// The cluster as the spec wants it.
fn desired(ctx: &PhaseContext<'_>) -> Result<cluster::Desired, FunctionError> {
    let spec = &ctx.spec;
    let secrets_key = match &spec.encryption.kms_key_arn {
        Some(key) => Some(key.clone()),
        None => ctx.optional(outputs::SECRETS_KEY_ARN)?,
    };
    let endpoint = &spec.endpoint_access;
    Ok(cluster::Desired {
        name: ctx.names.cluster(),
        version: spec.kubernetes_version.clone(),
        private: endpoint.private,
        public: endpoint.public(),
        public_cidrs: endpoint.public_access_cidrs.iter().cloned().collect(),
        log_types: spec
            .logging
            .types
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect(),
        secrets_key,
        tags: ctx.tags(COMPONENT).into_iter().collect(),
    })
}

/// What the status poll reports: name, ARN, endpoint, OIDC issuer, security group, CA, version.
fn produced(cluster: &Cluster, log_group: &str) -> OutputMap {
    let mut out = OutputMap::new();
    let mut put = |output: Output<String>, value: Option<&str>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            output.insert(&mut out, v.to_owned());
        }
    };
    put(outputs::CLUSTER_NAME, cluster.name());
    put(outputs::CLUSTER_ARN, cluster.arn());
    put(outputs::CLUSTER_ENDPOINT, cluster.endpoint());
    put(
        outputs::OIDC_ISSUER,
        cluster
            .identity()
            .and_then(|i| i.oidc())
            .and_then(|o| o.issuer()),
    );
    put(
        outputs::CLUSTER_SECURITY_GROUP_ID,
        cluster
            .resources_vpc_config()
            .and_then(|v| v.cluster_security_group_id()),
    );
    put(
        outputs::CERTIFICATE_AUTHORITY,
        cluster.certificate_authority().and_then(|c| c.data()),
    );
    put(outputs::CLUSTER_VERSION, cluster.version());
    put(outputs::CLUSTER_LOG_GROUP, Some(log_group));
    out
}

/// Whether the cluster of the platform's name is tagged with the platform. One that is not is
/// refused (`ensure`: a terminal error) or noted (`observe`); Tenantry neither adopts nor
/// deletes it.
fn owned(
    ctx: &mut PhaseContext<'_>,
    resource: &str,
    cluster: &Cluster,
) -> Result<bool, FunctionError> {
    let what = format!(
        "an EKS cluster named {:?}",
        cluster.name().unwrap_or_default()
    );
    ctx.owned(resource, cluster.tags(), ErrorType::Terminal, &what)
}

/// One walk for `ensure` and `observe`: the log group, the cluster (created when missing), then
/// one update towards the spec per call. Under `observe` every difference is noted through
/// [`PhaseContext::differs`] and nothing is changed.
async fn ensure(ctx: &mut PhaseContext<'_>, aws: &Clients) -> Result<PhaseOutput, FunctionError> {
    let desired = desired(ctx)?;
    let resource = resource(&desired.name);
    let existing = cluster::describe(aws.eks(), &desired.name).await?;
    if let Some(cluster) = &existing {
        if !owned(ctx, &resource, cluster)? {
            return ctx.finish(false, OutputMap::new()).await;
        }
    }
    // Before the cluster: EKS would otherwise create the group itself, unencrypted, kept forever.
    let log_group = log_group(ctx, aws).await?;
    let cluster = match existing {
        Some(cluster) => cluster,
        None if ctx.differs(&resource, "exists", json!(true), json!(false)) => {
            let role = ctx.output(outputs::CLUSTER_ROLE_ARN)?;
            let subnets = ctx.output(outputs::PRIVATE_SUBNET_IDS)?;
            let vpc_cni = ctx.spec.cni == Cni::VpcCni;
            let cluster = cluster::create(aws.eks(), &desired, role, subnets, vpc_cni).await?;
            owned(ctx, &resource, &cluster)?;
            cluster
        }
        None => return ctx.finish(false, OutputMap::new()).await,
    };
    record_cluster(ctx, &cluster).await?;
    let ready = converge(ctx, aws, &desired, &cluster).await?;
    let mut out = produced(&cluster, &log_group);
    // Only this function creates clusters, so its own principal is the creator (recorded on the
    // first ensure after the create, also when a crash came between the two).
    if ctx.writes() && ctx.optional(outputs::CLUSTER_CREATOR)?.is_none() {
        outputs::CLUSTER_CREATOR.insert(&mut out, ctx.target.principal_arn().await?);
    }
    ctx.finish(ready, out).await
}

/// Ready when ACTIVE with nothing left to change; otherwise applies the next update, if any.
/// `observe` notes every difference, also while the cluster is not ACTIVE (then not ready).
async fn converge(
    ctx: &mut PhaseContext<'_>,
    aws: &Clients,
    desired: &cluster::Desired,
    cluster: &Cluster,
) -> Result<bool, FunctionError> {
    let active = match cluster.status() {
        Some(ClusterStatus::Active) => true,
        Some(ClusterStatus::Failed) if ctx.writes() => {
            return Err(FunctionError::new(
                ErrorType::Terminal,
                format!("EKS cluster {:?} is FAILED", desired.name),
            ))
        }
        Some(ClusterStatus::Deleting) if ctx.writes() => {
            return Err(FunctionError::new(
                ErrorType::Retryable,
                format!(
                    "EKS cluster {:?} is being deleted; it is created again once gone",
                    desired.name
                ),
            ))
        }
        // CREATING, UPDATING, PENDING: poll again.
        _ => false,
    };
    if !active && ctx.writes() {
        return Ok(false);
    }
    let mut next = None;
    for change in cluster::changes(desired, cluster) {
        let d = change.difference(desired);
        if !ctx.differs(&resource(&desired.name), d.field, d.desired, d.actual) {
            continue;
        }
        match change {
            Change::Newer { actual } => {
                return Err(FunctionError::new(
                    ErrorType::Terminal,
                    format!(
                        "cluster {} runs Kubernetes {actual}, newer than the requested {}: EKS cannot downgrade",
                        desired.name, desired.version
                    ),
                ))
            }
            _ if !change.fixable() => {
                tracing::warn!(?change, "cluster differs in a way EKS cannot change in place")
            }
            _ if next.is_none() => next = Some(change),
            _ => {}
        }
    }
    match next {
        Some(change) => cluster::apply(aws.eks(), desired, &change)
            .await
            .map(|()| false),
        None => Ok(active),
    }
}

/// How drift names the cluster `name`.
fn resource(name: &str) -> String {
    format!("{}/{name}", Kind::Cluster)
}

async fn record_cluster(
    ctx: &mut PhaseContext<'_>,
    cluster: &Cluster,
) -> Result<(), FunctionError> {
    let name = cluster.name().unwrap_or_default();
    let mut record = ResourceRecord::new(Kind::Cluster, name, Phase::Cluster.as_str());
    record.arn = cluster.arn().map(str::to_owned);
    record.tags = ctx.tags(COMPONENT);
    ctx.record(record).await
}

/// The cluster's log group, with retention, the logs key and tags: converged under `ensure`,
/// its differences noted under `observe` (the same walk, [`log_group::converge`]). Its name.
async fn log_group(ctx: &mut PhaseContext<'_>, aws: &Clients) -> Result<String, FunctionError> {
    // EKS writes the control-plane logs there (and would create it, unencrypted and kept
    // forever, if it did not exist first).
    let spec = &ctx.spec;
    let want = log_group::Desired {
        name: ctx.names.cluster_log_group(),
        retention_days: i32::try_from(spec.logging.retention_days).unwrap_or(i32::MAX),
        kms_key: ctx.optional(outputs::LOGS_KEY_ARN)?,
        tags: ctx.tags(COMPONENT),
    };
    let found = log_group::find(aws.logs(), &want.name).await?;
    let mut record = ResourceRecord::new(Kind::LogGroup, &want.name, Phase::Cluster.as_str());
    record.tags = want.tags.clone();
    let arn = ctx.target().log_group_arn(&want.name);
    log_group::converge(ctx, aws.logs(), &want, found, record, &arn).await?;
    Ok(want.name)
}

async fn delete(ctx: &mut PhaseContext<'_>, aws: &Clients) -> Result<PhaseOutput, FunctionError> {
    let name = ctx.names.cluster();
    let gone = match cluster::describe(aws.eks(), &name).await? {
        None => true,
        Some(cluster) => {
            // Under `delete` a foreign cluster is refused, never deleted.
            owned(ctx, &resource(&name), &cluster)?;
            cluster::delete_step(aws.eks(), &cluster).await?;
            false
        }
    };
    if gone {
        ctx.forget(Kind::Cluster, &name).await?;
        delete_log_group(ctx, aws).await?;
    }
    ctx.finish(gone, BTreeMap::new()).await
}

async fn delete_log_group(ctx: &mut PhaseContext<'_>, aws: &Clients) -> Result<(), FunctionError> {
    let name = ctx.names.cluster_log_group();
    // Looked up first so that deleting what is already gone makes no mutating call.
    if log_group::find(aws.logs(), &name).await?.is_some() {
        log_group::remove(aws.logs(), &name).await?;
    }
    ctx.forget(Kind::LogGroup, &name).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_eks::types::{Certificate, ClusterStatus};

    #[test]
    fn outputs_name_the_cluster() {
        let c = Cluster::builder()
            .name("acme-prod")
            .status(ClusterStatus::Active)
            .certificate_authority(Certificate::builder().data("ca").build())
            .build();
        let o = produced(&c, "/aws/eks/acme-prod/cluster");
        assert_eq!(o["clusterName"], json!("acme-prod"));
        assert_eq!(o["certificateAuthority"], json!("ca"));
        assert_eq!(o["clusterLogGroup"], json!("/aws/eks/acme-prod/cluster"));
        assert!(!o.contains_key("clusterEndpoint"));
    }
}
