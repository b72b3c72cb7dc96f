//! `eks:cluster`: the platform's EKS cluster.
//!
//! - **Found by** its deterministic name ([`describe`]); one not tagged with the platform is
//!   neither adopted nor deleted (the phase checks the tags it reports).
//! - **Desired** ([`Desired`]): the Kubernetes version, private endpoint and public access per
//!   spec, every requested control-plane log type, envelope encryption of secrets with the
//!   platform's key, authentication mode `API`, deletion protection, tags.
//! - **Owned fields** ([`changes`], each named by [`Change::difference`]): `version`,
//!   `endpointAccess`, `logTypes`, `authenticationMode`, `secretsKeyArn`, `deletionProtection`.
//!   EKS runs one cluster update at a time, so a difference is a [`Change`], the one update that
//!   removes it, and [`changes`] lists them in the order they are applied. A newer version (EKS
//!   cannot downgrade) and another secrets key (EKS cannot change it) are reported only. Left to
//!   others: the cluster's add-ons, access entries, node groups (their own kinds), and fields
//!   EKS fills in (the certificate, the endpoint, the cluster security group).
//! - **Create, update, delete** ([`create`]: everything in the creating call; [`apply`]: one
//!   update; [`delete_step`]: one step towards deletion). A cluster busy with another update is
//!   "try again on the next poll", not an error.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_eks::types::{
    AuthenticationMode, Cluster, ClusterStatus, CreateAccessConfigRequest, EncryptionConfig,
    LogSetup, LogType, Logging, Provider, UpdateAccessConfigRequest, VpcConfigRequest,
};
use serde_json::{json, Value};

use super::Difference;
use crate::error::{ErrorType, FunctionError};
use crate::phases::aws_error;
use crate::phases::outputs;

/// The cluster as the spec wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub name: String,
    pub version: String,
    pub private: bool,
    pub public: bool,
    pub public_cidrs: BTreeSet<String>,
    pub log_types: BTreeSet<String>,
    /// `None` when the encryption phase has not run (observe of a half-built platform).
    pub secrets_key: Option<String>,
    pub tags: HashMap<String, String>,
}

/// One difference between the desired and the actual cluster, as the update that removes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
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

impl Change {
    /// The difference as drift names it (field, desired, actual).
    pub fn difference(&self, desired: &Desired) -> Difference {
        let (field, want, actual) = match self {
            Change::Version { actual, .. } | Change::Newer { actual } => {
                ("version", json!(desired.version), json!(actual))
            }
            Change::Endpoint { actual } => {
                ("endpointAccess", endpoint_json(desired), actual.clone())
            }
            Change::Logging { actual } => ("logTypes", json!(desired.log_types), json!(actual)),
            Change::AuthenticationMode { actual, .. } => {
                ("authenticationMode", json!("API"), json!(actual))
            }
            Change::Encryption { actual } => {
                ("secretsKeyArn", json!(desired.secrets_key), json!(actual))
            }
            Change::DeletionProtection => ("deletionProtection", json!(true), json!(false)),
        };
        Difference::new(field, want, actual)
    }

    /// Whether EKS can make the change in place (a newer version or another key it cannot).
    pub fn fixable(&self) -> bool {
        !matches!(self, Change::Encryption { .. } | Change::Newer { .. })
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

/// Every difference between `desired` and `cluster`, as changes, fixable ones in the order they
/// are applied.
/// Fields the API does not report (older emulators omit the access config) are not compared.
pub fn changes(desired: &Desired, cluster: &Cluster) -> Vec<Change> {
    let mut out = Vec::new();
    if let Some(vpc) = cluster.resources_vpc_config() {
        // With the public endpoint off, EKS still reports its default allow-list: ignore it then.
        let cidrs: BTreeSet<String> = vpc.public_access_cidrs().iter().cloned().collect();
        let same = vpc.endpoint_private_access() == desired.private
            && vpc.endpoint_public_access() == desired.public
            && (!desired.public || cidrs == desired.public_cidrs);
        if !same {
            out.push(Change::Endpoint {
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
        out.push(Change::Logging { actual: enabled });
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
            out.push(Change::AuthenticationMode {
                actual: mode.as_str().to_owned(),
                next,
            });
        }
    }
    if let Some(change) = version_change(desired, cluster.version().unwrap_or_default()) {
        out.push(change);
    }
    let key = cluster
        .encryption_config()
        .iter()
        .find_map(|e| e.provider())
        .and_then(|p| p.key_arn())
        .map(str::to_owned);
    if desired.secrets_key.is_some() && key != desired.secrets_key {
        out.push(Change::Encryption { actual: key });
    }
    // Not compared when the API does not report it (older emulators).
    if cluster.deletion_protection() == Some(false) {
        out.push(Change::DeletionProtection);
    }
    out
}

fn version_change(desired: &Desired, actual: &str) -> Option<Change> {
    let (Some(want), Some(have)) = (minor_version(&desired.version), minor_version(actual)) else {
        return None;
    };
    let actual = actual.to_owned();
    match have.cmp(&want) {
        std::cmp::Ordering::Greater => Some(Change::Newer { actual }),
        std::cmp::Ordering::Less => Some(Change::Version {
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
pub fn logging(desired: &BTreeSet<String>) -> Logging {
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

/// The cluster named `name`; `None` when it does not exist.
pub async fn describe(
    eks: &aws_sdk_eks::Client,
    name: &str,
) -> Result<Option<Cluster>, FunctionError> {
    match eks.describe_cluster().name(name).send().await {
        Ok(out) => Ok(out.cluster),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error("eks:DescribeCluster", e)),
    }
}

/// Starts one cluster update. An update already running is not an error: poll again.
pub async fn apply(
    eks: &aws_sdk_eks::Client,
    desired: &Desired,
    change: &Change,
) -> Result<(), FunctionError> {
    tracing::info!(?change, cluster = %desired.name, "updating cluster");
    let result = match change {
        Change::Version { next, .. } => eks
            .update_cluster_version()
            .name(&desired.name)
            .version(next)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| busy_or("eks:UpdateClusterVersion", e)),
        Change::Endpoint { .. } => {
            update_config(eks, desired, |u| {
                u.resources_vpc_config(vpc_config(desired, None))
            })
            .await
        }
        Change::Logging { .. } => {
            update_config(eks, desired, |u| u.logging(logging(&desired.log_types))).await
        }
        Change::AuthenticationMode { next, .. } => {
            update_config(eks, desired, |u| {
                u.access_config(
                    UpdateAccessConfigRequest::builder()
                        .authentication_mode(next.clone())
                        .build(),
                )
            })
            .await
        }
        Change::DeletionProtection => {
            update_config(eks, desired, |u| u.deletion_protection(true)).await
        }
        Change::Encryption { .. } | Change::Newer { .. } => Ok(()),
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
    eks: &aws_sdk_eks::Client,
    desired: &Desired,
    set: impl FnOnce(UpdateConfig) -> UpdateConfig,
) -> Result<(), Option<FunctionError>> {
    set(eks.update_cluster_config().name(&desired.name))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| busy_or("eks:UpdateClusterConfig", e))
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

/// Creates the cluster as desired, with its role and subnets (`vpc_cni`: whether EKS installs
/// the VPC CNI it bootstraps by default; with Calico it must not). A retried call whose first
/// attempt went through answers with the cluster as it is.
pub async fn create(
    eks: &aws_sdk_eks::Client,
    desired: &Desired,
    role: String,
    subnets: Vec<String>,
    vpc_cni: bool,
) -> Result<Cluster, FunctionError> {
    let key = desired.secrets_key.clone().ok_or_else(|| {
        FunctionError::new(
            ErrorType::Terminal,
            format!(
                "output {:?} of the encryption phase is missing and the spec names no key",
                outputs::SECRETS_KEY_ARN.key
            ),
        )
    })?;
    let created = eks
        .create_cluster()
        .name(&desired.name)
        .version(&desired.version)
        .role_arn(role)
        .resources_vpc_config(vpc_config(desired, Some(subnets)))
        .logging(logging(&desired.log_types))
        .encryption_config(secrets_encryption(key))
        .access_config(access_config())
        .bootstrap_self_managed_addons(vpc_cni)
        .deletion_protection(true)
        .set_tags(Some(desired.tags.clone()))
        .send()
        .await;
    match created {
        Ok(out) => out.cluster.ok_or_else(|| {
            FunctionError::new(ErrorType::Retryable, "CreateCluster returned no cluster")
        }),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            describe(eks, &desired.name).await?.ok_or_else(|| {
                FunctionError::new(
                    ErrorType::Retryable,
                    "cluster exists but cannot be described yet",
                )
            })
        }
        Err(e) => Err(aws_error("eks:CreateCluster", e)),
    }
}

/// One step towards deletion: wait for a running operation, turn deletion protection off, or
/// delete. The cluster is gone only when DescribeCluster no longer finds it.
pub async fn delete_step(
    eks: &aws_sdk_eks::Client,
    cluster: &Cluster,
) -> Result<(), FunctionError> {
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
        let result = eks
            .update_cluster_config()
            .name(name)
            .deletion_protection(false)
            .send()
            .await;
        return match result.map_err(|e| busy_or("eks:UpdateClusterConfig", e)) {
            Ok(_) => Ok(()),
            Err(None) => Ok(()),
            Err(Some(e)) => Err(e),
        };
    }
    match eks.delete_cluster().name(name).send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(())
        }
        // Node groups or an update still attached: the poll tries again.
        Err(e) => match busy_or("eks:DeleteCluster", e) {
            None => Ok(()),
            Some(e) => Err(e),
        },
    }
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
            tags: HashMap::new(),
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
        assert_eq!(changes(&d, &cluster(&d).build()), vec![]);
        let protected = cluster(&d).deletion_protection(true).build();
        assert_eq!(changes(&d, &protected), vec![]);
    }

    #[test]
    fn deletion_protection_turned_off_is_a_difference_to_repair() {
        let d = desired();
        let off = cluster(&d).deletion_protection(false).build();
        let diffs = changes(&d, &off);
        assert_eq!(diffs, vec![Change::DeletionProtection]);
        assert!(diffs[0].fixable());
        let difference = diffs[0].difference(&d);
        assert_eq!(
            (difference.field, difference.desired),
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
        let diffs = changes(&d, &c);
        assert!(matches!(diffs[0], Change::Endpoint { .. }), "{diffs:?}");
        assert!(matches!(diffs[1], Change::Logging { .. }));
        assert_eq!(
            diffs[2],
            Change::AuthenticationMode {
                actual: "CONFIG_MAP".into(),
                next: AuthenticationMode::ApiAndConfigMap
            }
        );
        assert_eq!(
            diffs[3],
            Change::Version {
                actual: "1.33".into(),
                next: "1.34".into()
            }
        );
    }

    #[test]
    fn downgrades_and_foreign_keys_are_not_applied() {
        let d = desired();
        let newer = changes(&d, &cluster(&d).version("1.36").build());
        let actual = "1.36".to_owned();
        assert_eq!(newer, vec![Change::Newer { actual }]);
        assert!(!newer[0].fixable());
        assert_eq!(newer[0].difference(&d).field, "version");
        let c = cluster(&d).set_encryption_config(Some(vec![])).build();
        let diffs = changes(&d, &c);
        assert_eq!(diffs, vec![Change::Encryption { actual: None }]);
        assert!(!diffs[0].fixable());
        assert_eq!(diffs[0].difference(&d).field, "secretsKeyArn");
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
        assert_eq!(changes(&d, &c), vec![]);
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
}
