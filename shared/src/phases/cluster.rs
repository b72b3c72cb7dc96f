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
//! A cluster that exists under the platform's name but is not tagged with the platform's id is
//! never adopted nor deleted.

use super::outputs::{self, Output, OutputMap};
use super::{aws_error, Action, Drift, PhaseContext, PhaseInput, PhaseOutput};
use crate::aws::Clients;
use crate::deps::Deps;
use crate::error::{ErrorType, FunctionError};
use crate::plan::Phase;
use crate::resources::{log_group, Kind};
use crate::spec::Cni;
use crate::store::ResourceRecord;
use aws_sdk_eks::types::{
    AuthenticationMode, Cluster, ClusterStatus, CreateAccessConfigRequest, EncryptionConfig,
    LogSetup, LogType, Logging, Provider, UpdateAccessConfigRequest, VpcConfigRequest,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

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
#[derive(Debug, Clone, PartialEq)]
struct Desired {
    name: String,
    version: String,
    private: bool,
    public: bool,
    public_cidrs: BTreeSet<String>,
    log_types: BTreeSet<String>,
    /// `None` when the encryption phase has not run (observe/status of a half-built platform).
    secrets_key: Option<String>,
    log_group: String,
    retention_days: i32,
    logs_key: Option<String>,
}

impl Desired {
    fn of(ctx: &PhaseContext<'_>) -> Result<Desired, FunctionError> {
        let spec = &ctx.spec;
        let secrets_key = match &spec.encryption.kms_key_arn {
            Some(key) => Some(key.clone()),
            None => ctx.optional(outputs::SECRETS_KEY_ARN)?,
        };
        Ok(Desired {
            name: ctx.names.cluster(),
            version: spec.kubernetes_version.clone(),
            private: spec.endpoint_access.private,
            public: spec.endpoint_access.public(),
            public_cidrs: spec
                .endpoint_access
                .public_access_cidrs
                .iter()
                .cloned()
                .collect(),
            log_types: spec
                .logging
                .types
                .iter()
                .map(|t| t.as_str().to_owned())
                .collect(),
            secrets_key,
            log_group: ctx.names.cluster_log_group(),
            retention_days: i32::try_from(spec.logging.retention_days).unwrap_or(i32::MAX),
            logs_key: ctx.optional(outputs::LOGS_KEY_ARN)?,
        })
    }

    /// The cluster's log group: EKS writes the control-plane logs there (and would create it,
    /// unencrypted and kept forever, if it did not exist first).
    fn log_group(&self, ctx: &PhaseContext<'_>) -> log_group::Desired {
        log_group::Desired {
            name: self.log_group.clone(),
            retention_days: self.retention_days,
            kms_key: self.logs_key.clone(),
            tags: ctx.tags(COMPONENT),
        }
    }
}

/// One difference between the desired and the actual cluster.
#[derive(Debug, Clone, PartialEq)]
enum Difference {
    /// Behind the desired version: upgrade to `next` (one minor version at a time).
    Version {
        actual: String,
        next: String,
    },
    Endpoint {
        actual: Value,
    },
    Logging {
        actual: BTreeSet<String>,
    },
    /// Authentication mode not yet `API`: move one step (CONFIG_MAP → API_AND_CONFIG_MAP → API).
    AuthenticationMode {
        actual: String,
        next: AuthenticationMode,
    },
    /// Newer than the desired version: EKS cannot downgrade; `ensure` refuses (a terminal error).
    Newer {
        actual: String,
    },
    /// Secrets encrypted with another key (or not at all): EKS cannot change it; reported only.
    Encryption {
        actual: Option<String>,
    },
    /// Deletion protection turned off (Tenantry creates clusters with it on; only decommission
    /// turns it off).
    DeletionProtection,
}

impl Difference {
    fn drift(&self, desired: &Desired) -> Drift {
        let resource = format!("eks:cluster/{}", desired.name);
        let (field, want, actual) = match self {
            Difference::Version { actual, .. } | Difference::Newer { actual } => {
                ("version", json!(desired.version), json!(actual))
            }
            Difference::Endpoint { actual } => {
                ("endpointAccess", endpoint_json(desired), actual.clone())
            }
            Difference::Logging { actual } => ("logTypes", json!(desired.log_types), json!(actual)),
            Difference::AuthenticationMode { actual, .. } => {
                ("authenticationMode", json!("API"), json!(actual))
            }
            Difference::Encryption { actual } => {
                ("secretsKeyArn", json!(desired.secrets_key), json!(actual))
            }
            Difference::DeletionProtection => ("deletionProtection", json!(true), json!(false)),
        };
        Drift::new(resource, field, want, actual)
    }

    fn fixable(&self) -> bool {
        !matches!(
            self,
            Difference::Encryption { .. } | Difference::Newer { .. }
        )
    }
}

fn endpoint_json(d: &Desired) -> Value {
    json!({
        "endpointPrivateAccess": d.private,
        "endpointPublicAccess": d.public,
        "publicAccessCidrs": if d.public { json!(d.public_cidrs) } else { json!([]) },
    })
}

/// `(major, minor)` of a `major.minor[.patch]` version.
fn minor_version(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Every difference between `desired` and `cluster`, fixable ones in the order they are applied.
/// Fields the API does not report (older emulators omit the access config) are not compared.
fn differences(desired: &Desired, cluster: &Cluster) -> Vec<Difference> {
    let mut out = Vec::new();
    if let Some(vpc) = cluster.resources_vpc_config() {
        // With the public endpoint off, EKS still reports its default allow-list: ignore it then.
        let cidrs: BTreeSet<String> = vpc.public_access_cidrs().iter().cloned().collect();
        let same = vpc.endpoint_private_access() == desired.private
            && vpc.endpoint_public_access() == desired.public
            && (!desired.public || cidrs == desired.public_cidrs);
        if !same {
            out.push(Difference::Endpoint {
                actual: json!({
                    "endpointPrivateAccess": vpc.endpoint_private_access(),
                    "endpointPublicAccess": vpc.endpoint_public_access(),
                    "publicAccessCidrs": cidrs,
                }),
            });
        }
    }
    let enabled = enabled_log_types(cluster);
    if enabled != desired.log_types {
        out.push(Difference::Logging { actual: enabled });
    }
    if let Some(mode) = cluster
        .access_config()
        .and_then(|a| a.authentication_mode())
    {
        let next = match mode {
            AuthenticationMode::Api => None,
            AuthenticationMode::ConfigMap => Some(AuthenticationMode::ApiAndConfigMap),
            _ => Some(AuthenticationMode::Api),
        };
        if let Some(next) = next {
            out.push(Difference::AuthenticationMode {
                actual: mode.as_str().to_owned(),
                next,
            });
        }
    }
    if let Some(diff) = version_difference(desired, cluster.version().unwrap_or_default()) {
        out.push(diff);
    }
    let key = cluster
        .encryption_config()
        .iter()
        .find_map(|e| e.provider())
        .and_then(|p| p.key_arn())
        .map(str::to_owned);
    if desired.secrets_key.is_some() && key != desired.secrets_key {
        out.push(Difference::Encryption { actual: key });
    }
    // Not compared when the API does not report it (older emulators).
    if cluster.deletion_protection() == Some(false) {
        out.push(Difference::DeletionProtection);
    }
    out
}

fn version_difference(desired: &Desired, actual: &str) -> Option<Difference> {
    let (Some(want), Some(have)) = (minor_version(&desired.version), minor_version(actual)) else {
        return None;
    };
    let actual = actual.to_owned();
    match have.cmp(&want) {
        std::cmp::Ordering::Greater => Some(Difference::Newer { actual }),
        std::cmp::Ordering::Less => Some(Difference::Version {
            actual,
            next: format!("{}.{}", have.0, have.1 + 1),
        }),
        std::cmp::Ordering::Equal => None,
    }
}

fn enabled_log_types(cluster: &Cluster) -> BTreeSet<String> {
    cluster
        .logging()
        .map(|l| l.cluster_logging())
        .unwrap_or_default()
        .iter()
        .filter(|s| s.enabled() == Some(true))
        .flat_map(|s| s.types().iter().map(|t| t.as_str().to_owned()))
        .collect()
}

/// Every log type on or off as desired (EKS takes both lists; an empty list is left out).
fn logging(desired: &BTreeSet<String>) -> Logging {
    let all: Vec<&str> = crate::spec::ControlPlaneLogType::ALL
        .iter()
        .map(|t| t.as_str())
        .collect();
    let setup = |enabled: bool| {
        let types: Vec<LogType> = all
            .iter()
            .filter(|t| desired.contains(**t) == enabled)
            .map(|t| LogType::from(*t))
            .collect();
        (!types.is_empty()).then(|| {
            LogSetup::builder()
                .set_types(Some(types))
                .enabled(enabled)
                .build()
        })
    };
    Logging::builder()
        .set_cluster_logging(Some(
            [setup(true), setup(false)].into_iter().flatten().collect(),
        ))
        .build()
}

fn vpc_config(desired: &Desired, subnets: Option<Vec<String>>) -> VpcConfigRequest {
    VpcConfigRequest::builder()
        .set_subnet_ids(subnets)
        .endpoint_private_access(desired.private)
        .endpoint_public_access(desired.public)
        .set_public_access_cidrs(
            desired
                .public
                .then(|| desired.public_cidrs.iter().cloned().collect()),
        )
        .build()
}

/// What the status poll reports: name, ARN, endpoint, OIDC issuer, security group, CA, version.
fn produced(cluster: &Cluster, desired: &Desired) -> OutputMap {
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
    put(outputs::CLUSTER_LOG_GROUP, Some(&desired.log_group));
    out
}

async fn describe(eks: &aws_sdk_eks::Client, name: &str) -> Result<Option<Cluster>, FunctionError> {
    match eks.describe_cluster().name(name).send().await {
        Ok(out) => Ok(out.cluster),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error("DescribeCluster", e)),
    }
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
    let desired = Desired::of(ctx)?;
    let resource = format!("{}/{}", Kind::Cluster, desired.name);
    let existing = describe(&aws.eks, &desired.name).await?;
    if let Some(cluster) = &existing {
        if !owned(ctx, &resource, cluster)? {
            return ctx.finish(false, OutputMap::new()).await;
        }
    }
    // Before the cluster: EKS would otherwise create the group itself, unencrypted, kept forever.
    log_group(ctx, aws, &desired).await?;
    let cluster = match existing {
        Some(cluster) => cluster,
        None if ctx.differs(&resource, "exists", json!(true), json!(false)) => {
            let cluster = create(ctx, aws, &desired).await?;
            owned(ctx, &resource, &cluster)?;
            cluster
        }
        None => return ctx.finish(false, OutputMap::new()).await,
    };
    record_cluster(ctx, &cluster).await?;
    let ready = converge(ctx, aws, &desired, &cluster).await?;
    let mut out = produced(&cluster, &desired);
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
    desired: &Desired,
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
    for diff in differences(desired, cluster) {
        let d = diff.drift(desired);
        if !ctx.differs(&d.resource, &d.field, d.desired, d.actual) {
            continue;
        }
        match diff {
            Difference::Newer { actual } => {
                return Err(FunctionError::new(
                    ErrorType::Terminal,
                    format!(
                        "cluster {} runs Kubernetes {actual}, newer than the requested {}: EKS cannot downgrade",
                        desired.name, desired.version
                    ),
                ))
            }
            _ if !diff.fixable() => {
                tracing::warn!(?diff, "cluster differs in a way EKS cannot change in place")
            }
            _ if next.is_none() => next = Some(diff),
            _ => {}
        }
    }
    match next {
        Some(diff) => apply(aws, desired, &diff).await.map(|()| false),
        None => Ok(active),
    }
}

/// Starts one cluster update. An update already running is not an error: poll again.
async fn apply(aws: &Clients, desired: &Desired, diff: &Difference) -> Result<(), FunctionError> {
    tracing::info!(?diff, cluster = %desired.name, "updating cluster");
    let result = match diff {
        Difference::Version { next, .. } => aws
            .eks
            .update_cluster_version()
            .name(&desired.name)
            .version(next)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| busy_or("UpdateClusterVersion", e)),
        Difference::Endpoint { .. } => {
            update_config(aws, desired, |u| {
                u.resources_vpc_config(vpc_config(desired, None))
            })
            .await
        }
        Difference::Logging { .. } => {
            update_config(aws, desired, |u| u.logging(logging(&desired.log_types))).await
        }
        Difference::AuthenticationMode { next, .. } => {
            update_config(aws, desired, |u| {
                u.access_config(
                    UpdateAccessConfigRequest::builder()
                        .authentication_mode(next.clone())
                        .build(),
                )
            })
            .await
        }
        Difference::DeletionProtection => {
            update_config(aws, desired, |u| u.deletion_protection(true)).await
        }
        Difference::Encryption { .. } | Difference::Newer { .. } => Ok(()),
    };
    match result {
        Ok(()) => Ok(()),
        Err(None) => Ok(()),
        Err(Some(e)) => Err(e),
    }
}

type UpdateConfig =
    aws_sdk_eks::operation::update_cluster_config::builders::UpdateClusterConfigFluentBuilder;

async fn update_config(
    aws: &Clients,
    desired: &Desired,
    set: impl FnOnce(UpdateConfig) -> UpdateConfig,
) -> Result<(), Option<FunctionError>> {
    set(aws.eks.update_cluster_config().name(&desired.name))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| busy_or("UpdateClusterConfig", e))
}

/// `None` when the cluster is busy with another update (ResourceInUse / InvalidRequest): retry
/// on the next poll. Otherwise the mapped error.
fn busy_or<E, R>(
    op: &str,
    e: aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> Option<FunctionError>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = e
        .as_service_error()
        .and_then(|s| s.code())
        .unwrap_or_default();
    if matches!(code, "ResourceInUseException" | "InvalidRequestException") {
        tracing::info!(
            op,
            code,
            "cluster busy; the update is retried on the next poll"
        );
        None
    } else {
        Some(aws_error(op, e))
    }
}

/// Envelope encryption of the cluster's secrets with the platform's key.
fn secrets_encryption(key: String) -> EncryptionConfig {
    // `resources` is deprecated (EKS now encrypts all API data) but `secrets` is still the value
    // the API documents and emulators expect.
    #[allow(deprecated)]
    EncryptionConfig::builder()
        .resources("secrets")
        .provider(Provider::builder().key_arn(key).build())
        .build()
}

/// Access entries only (no aws-auth ConfigMap), the creator an admin.
fn access_config() -> CreateAccessConfigRequest {
    CreateAccessConfigRequest::builder()
        .authentication_mode(AuthenticationMode::Api)
        // Tenantry's own role administers the cluster (the bootstrap phase applies manifests).
        .bootstrap_cluster_creator_admin_permissions(true)
        .build()
}

async fn create(
    ctx: &mut PhaseContext<'_>,
    aws: &Clients,
    desired: &Desired,
) -> Result<Cluster, FunctionError> {
    let role = ctx.output(outputs::CLUSTER_ROLE_ARN)?;
    let subnets = ctx.output(outputs::PRIVATE_SUBNET_IDS)?;
    let key = desired.secrets_key.clone().ok_or_else(|| {
        FunctionError::new(
            ErrorType::Terminal,
            format!(
                "output {:?} of the encryption phase is missing and the spec names no key",
                outputs::SECRETS_KEY_ARN.key
            ),
        )
    })?;
    let (encryption, access) = (secrets_encryption(key), access_config());
    let tags = ctx.tags(COMPONENT).into_iter().collect();
    let created = aws
        .eks
        .create_cluster()
        .name(&desired.name)
        .version(&desired.version)
        .role_arn(role)
        .resources_vpc_config(vpc_config(desired, Some(subnets)))
        .logging(logging(&desired.log_types))
        .encryption_config(encryption)
        .access_config(access)
        // With Calico, EKS must not install the VPC CNI it bootstraps by default.
        .bootstrap_self_managed_addons(ctx.spec.cni == Cni::VpcCni)
        .deletion_protection(true)
        .set_tags(Some(tags))
        .send()
        .await;
    match created {
        Ok(out) => out.cluster.ok_or_else(|| {
            FunctionError::new(ErrorType::Retryable, "CreateCluster returned no cluster")
        }),
        // A retried CreateCluster whose first attempt went through.
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            describe(&aws.eks, &desired.name).await?.ok_or_else(|| {
                FunctionError::new(
                    ErrorType::Retryable,
                    "cluster exists but cannot be described yet",
                )
            })
        }
        Err(e) => Err(aws_error("CreateCluster", e)),
    }
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
/// its differences noted under `observe` (the same walk, [`log_group::converge`]).
async fn log_group(
    ctx: &mut PhaseContext<'_>,
    aws: &Clients,
    desired: &Desired,
) -> Result<(), FunctionError> {
    let want = desired.log_group(ctx);
    let found = log_group::find(&aws.logs, &want.name).await?;
    let mut record = ResourceRecord::new(Kind::LogGroup, &want.name, Phase::Cluster.as_str());
    record.tags = want.tags.clone();
    let arn = ctx.target().log_group_arn(&want.name);
    log_group::converge(ctx, &aws.logs, &want, found, record, &arn).await
}

async fn delete(ctx: &mut PhaseContext<'_>, aws: &Clients) -> Result<PhaseOutput, FunctionError> {
    let name = ctx.names.cluster();
    let gone = match describe(&aws.eks, &name).await? {
        None => true,
        Some(cluster) => {
            // Under `delete` a foreign cluster is refused, never deleted.
            owned(ctx, &format!("{}/{name}", Kind::Cluster), &cluster)?;
            start_deletion(aws, &cluster).await?;
            false
        }
    };
    if gone {
        ctx.forget(Kind::Cluster, &name).await?;
        delete_log_group(ctx, aws).await?;
    }
    ctx.finish(gone, BTreeMap::new()).await
}

/// One step towards deletion: wait for a running operation, turn deletion protection off, or
/// delete. The cluster is gone only when DescribeCluster no longer finds it.
async fn start_deletion(aws: &Clients, cluster: &Cluster) -> Result<(), FunctionError> {
    let name = cluster.name().unwrap_or_default();
    let busy = matches!(
        cluster.status(),
        Some(
            ClusterStatus::Deleting
                | ClusterStatus::Creating
                | ClusterStatus::Updating
                | ClusterStatus::Pending
        )
    );
    if busy {
        return Ok(());
    }
    if cluster.deletion_protection() == Some(true) {
        let result = aws
            .eks
            .update_cluster_config()
            .name(name)
            .deletion_protection(false)
            .send()
            .await;
        return match result.map_err(|e| busy_or("UpdateClusterConfig", e)) {
            Ok(_) => Ok(()),
            Err(None) => Ok(()),
            Err(Some(e)) => Err(e),
        };
    }
    match aws.eks.delete_cluster().name(name).send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(())
        }
        // Node groups or an update still attached: the poll tries again.
        Err(e) => match busy_or("DeleteCluster", e) {
            None => Ok(()),
            Some(e) => Err(e),
        },
    }
}

async fn delete_log_group(ctx: &mut PhaseContext<'_>, aws: &Clients) -> Result<(), FunctionError> {
    let name = ctx.names.cluster_log_group();
    // Looked up first so that deleting what is already gone makes no mutating call.
    if log_group::find(&aws.logs, &name).await?.is_some() {
        log_group::remove(&aws.logs, &name).await?;
    }
    ctx.forget(Kind::LogGroup, &name).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_eks::types::{AccessConfigResponse, Certificate, VpcConfigResponse};

    fn desired() -> Desired {
        Desired {
            name: "acme-prod".into(),
            version: "1.35".into(),
            private: true,
            public: false,
            public_cidrs: BTreeSet::new(),
            log_types: ["api", "audit"].into_iter().map(String::from).collect(),
            secrets_key: Some("arn:aws:kms:us-east-1:1:key/k".into()),
            log_group: "/aws/eks/acme-prod/cluster".into(),
            retention_days: 90,
            logs_key: None,
        }
    }

    fn cluster(d: &Desired) -> aws_sdk_eks::types::builders::ClusterBuilder {
        Cluster::builder()
            .name(&d.name)
            .arn("arn:aws:eks:us-east-1:1:cluster/acme-prod")
            .version(&d.version)
            .status(ClusterStatus::Active)
            .resources_vpc_config(
                VpcConfigResponse::builder()
                    .endpoint_private_access(true)
                    .endpoint_public_access(false)
                    .public_access_cidrs("0.0.0.0/0")
                    .build(),
            )
            .logging(logging(&d.log_types))
            .encryption_config(
                EncryptionConfig::builder()
                    .provider(
                        Provider::builder()
                            .set_key_arn(d.secrets_key.clone())
                            .build(),
                    )
                    .build(),
            )
            .access_config(
                AccessConfigResponse::builder()
                    .authentication_mode(AuthenticationMode::Api)
                    .build(),
            )
            .certificate_authority(Certificate::builder().data("ca").build())
    }

    #[test]
    fn a_cluster_as_specified_has_no_difference() {
        let d = desired();
        assert_eq!(differences(&d, &cluster(&d).build()), vec![]);
        let protected = cluster(&d).deletion_protection(true).build();
        assert_eq!(differences(&d, &protected), vec![]);
    }

    #[test]
    fn deletion_protection_turned_off_is_a_difference_to_repair() {
        let d = desired();
        let off = cluster(&d).deletion_protection(false).build();
        let diffs = differences(&d, &off);
        assert_eq!(diffs, vec![Difference::DeletionProtection]);
        assert!(diffs[0].fixable());
        let drift = diffs[0].drift(&d);
        assert_eq!(
            (drift.field.as_str(), drift.desired.clone()),
            ("deletionProtection", json!(true))
        );
    }

    #[test]
    fn differences_come_in_update_order() {
        let d = desired();
        let c = cluster(&d)
            .version("1.33")
            .logging(logging(&["api".to_owned()].into()))
            .resources_vpc_config(
                VpcConfigResponse::builder()
                    .endpoint_private_access(true)
                    .endpoint_public_access(true)
                    .build(),
            )
            .access_config(
                AccessConfigResponse::builder()
                    .authentication_mode(AuthenticationMode::ConfigMap)
                    .build(),
            )
            .build();
        let diffs = differences(&d, &c);
        assert!(matches!(diffs[0], Difference::Endpoint { .. }), "{diffs:?}");
        assert!(matches!(diffs[1], Difference::Logging { .. }));
        assert_eq!(
            diffs[2],
            Difference::AuthenticationMode {
                actual: "CONFIG_MAP".into(),
                next: AuthenticationMode::ApiAndConfigMap
            }
        );
        assert_eq!(
            diffs[3],
            Difference::Version {
                actual: "1.33".into(),
                next: "1.34".into()
            }
        );
    }

    #[test]
    fn downgrades_and_foreign_keys_are_not_applied() {
        let d = desired();
        let newer = differences(&d, &cluster(&d).version("1.36").build());
        let actual = "1.36".to_owned();
        assert_eq!(newer, vec![Difference::Newer { actual }]);
        assert!(!newer[0].fixable());
        assert_eq!(newer[0].drift(&d).field, "version");
        let c = cluster(&d).set_encryption_config(Some(vec![])).build();
        let diffs = differences(&d, &c);
        assert_eq!(diffs, vec![Difference::Encryption { actual: None }]);
        assert!(!diffs[0].fixable());
        assert_eq!(diffs[0].drift(&d).field, "secretsKeyArn");
    }

    #[test]
    fn public_cidrs_matter_only_with_the_public_endpoint_on() {
        let mut d = desired();
        d.public = true;
        d.public_cidrs = ["203.0.113.0/24".to_owned()].into();
        let c = cluster(&d)
            .resources_vpc_config(
                VpcConfigResponse::builder()
                    .endpoint_private_access(true)
                    .endpoint_public_access(true)
                    .public_access_cidrs("203.0.113.0/24")
                    .build(),
            )
            .build();
        assert_eq!(differences(&d, &c), vec![]);
    }

    #[test]
    fn logging_lists_enabled_and_disabled_types() {
        let l = logging(&["api".to_owned(), "audit".to_owned()].into());
        assert_eq!(l.cluster_logging().len(), 2);
        assert_eq!(l.cluster_logging()[0].types().len(), 2);
        assert_eq!(l.cluster_logging()[1].enabled(), Some(false));
        let all: BTreeSet<String> = crate::spec::ControlPlaneLogType::ALL
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect();
        assert_eq!(logging(&all).cluster_logging().len(), 1);
    }

    #[test]
    fn outputs_name_the_cluster() {
        let d = desired();
        let o = produced(&cluster(&d).build(), &d);
        assert_eq!(o["clusterName"], json!("acme-prod"));
        assert_eq!(o["certificateAuthority"], json!("ca"));
        assert_eq!(o["clusterLogGroup"], json!("/aws/eks/acme-prod/cluster"));
        assert!(!o.contains_key("clusterEndpoint"));
    }
}
