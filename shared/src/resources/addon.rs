//! `eks:addon`: an EKS managed add-on (`vpc-cni`, `coredns`, `kube-proxy`, the EBS CSI driver,
//! the Pod Identity agent, CloudWatch observability).
//!
//! - **Found by** its name on the platform's cluster ([`find`]). Ownership is the tag
//!   `tenantry:platform`: an add-on someone else installed is refused, never adopted (the
//!   phase's `check_owner`).
//! - **Desired** ([`Desired`]): the resolved version, the configuration values, the IRSA role of
//!   its service account, or (Pod Identity) the association made with it.
//! - **Owned fields** ([`Desired::differences`]): `addonVersion`, `configurationValues`
//!   (compared as JSON), `serviceAccountRoleArn` (when one is desired). Left to others: the
//!   add-on's own objects in the cluster, other tags, and the Pod Identity association after
//!   creation (the phase's association check owns those).
//! - **Create, update** ([`create`], [`update`]), both with `resolveConflicts: OVERWRITE`.
//!   EKS runs one update per add-on at a time: an update already running is not an error.
//! - **Ready** ([`ready`]): ACTIVE. CREATING, UPDATING and (within [`DEGRADED_GRACE_SECS`])
//!   DEGRADED are polled again; CoreDNS reports DEGRADED until its pods can run.

use aws_sdk_eks::types::{Addon, AddonPodIdentityAssociations, AddonStatus, ResolveConflicts};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

use super::Difference;
use crate::error::{ErrorType, FunctionError};
use crate::phases::aws_error;
use crate::phases::common::health_issues;

/// How long an add-on may stay DEGRADED after its last change before the run fails: nodes join
/// and Calico comes up in minutes; longer means something is broken.
pub const DEGRADED_GRACE_SECS: i64 = 30 * 60;

/// What an add-on should be.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub name: String,
    pub version: String,
    pub configuration: Option<Map<String, Value>>,
    /// IRSA role of the add-on's service account.
    pub role: Option<String>,
    /// Pod Identity: `(service account, role)`, set at creation.
    pub pod_identity: Option<(String, String)>,
}

impl Desired {
    /// The owned fields of `live` that differ from this.
    pub fn differences(&self, live: &Addon) -> Vec<Difference> {
        let mut out = Vec::new();
        if live.addon_version() != Some(self.version.as_str()) {
            let actual = json!(live.addon_version());
            out.push(Difference::new("addonVersion", json!(self.version), actual));
        }
        if !same_configuration(self.configuration.as_ref(), live.configuration_values()) {
            let (desired, actual) = (
                json!(self.configuration),
                json!(live.configuration_values()),
            );
            out.push(Difference::new("configurationValues", desired, actual));
        }
        if self.role.is_some() && live.service_account_role_arn() != self.role.as_deref() {
            let actual = json!(live.service_account_role_arn());
            out.push(Difference::new(
                "serviceAccountRoleArn",
                json!(self.role),
                actual,
            ));
        }
        out
    }

    fn configuration_text(&self) -> String {
        self.configuration
            .as_ref()
            .map(|c| Value::Object(c.clone()).to_string())
            .unwrap_or_default()
    }
}

/// Whether the configuration EKS reports equals the desired one (compared as JSON, so key order
/// and whitespace do not count).
pub fn same_configuration(desired: Option<&Map<String, Value>>, actual: Option<&str>) -> bool {
    let actual: Option<Value> = actual
        .filter(|s| !s.trim().is_empty())
        .map(|s| serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_owned())));
    match (desired, actual) {
        (None, None) => true,
        (Some(d), Some(a)) => Value::Object(d.clone()) == a,
        (Some(d), None) => d.is_empty(),
        (None, Some(a)) => a.as_object().is_some_and(Map::is_empty),
    }
}

/// The add-on `name` of `cluster`, if installed.
pub async fn find(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    name: &str,
) -> Result<Option<Addon>, FunctionError> {
    let result = eks
        .describe_addon()
        .cluster_name(cluster)
        .addon_name(name)
        .send()
        .await;
    match result {
        Ok(out) => Ok(out.addon),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error("DescribeAddon", e)),
    }
}

/// Installs the add-on with its tags (idempotent through its client token). One that exists
/// already is described; the add-on API refusing for a few minutes after the cluster turned
/// ACTIVE is retryable.
pub async fn create(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    want: &Desired,
    tags: BTreeMap<String, String>,
) -> Result<Addon, FunctionError> {
    let pod_identity = match &want.pod_identity {
        Some((sa, role)) => Some(vec![AddonPodIdentityAssociations::builder()
            .service_account(sa)
            .role_arn(role)
            .build()
            .map_err(|e| FunctionError::new(ErrorType::Terminal, e.to_string()))?]),
        None => None,
    };
    let created = eks
        .create_addon()
        .cluster_name(cluster)
        .addon_name(&want.name)
        .addon_version(&want.version)
        .set_configuration_values(
            want.configuration
                .as_ref()
                .map(|_| want.configuration_text()),
        )
        .set_service_account_role_arn(want.role.clone())
        .set_pod_identity_associations(pod_identity)
        .resolve_conflicts(ResolveConflicts::Overwrite)
        .set_tags(Some(tags.into_iter().collect()))
        .client_request_token(format!("tenantry-{}-{}", cluster, want.name))
        .send()
        .await;
    match created {
        Ok(out) => out.addon.ok_or_else(|| {
            FunctionError::new(ErrorType::Retryable, "CreateAddon returned no add-on")
        }),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            find(eks, cluster, &want.name).await?.ok_or_else(|| {
                FunctionError::new(
                    ErrorType::Retryable,
                    format!("add-on {:?} exists but cannot be described yet", want.name),
                )
            })
        }
        // The add-on API is not ready yet after the cluster turned ACTIVE: retry.
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_invalid_request_exception()) =>
        {
            let mut err = aws_error("CreateAddon", e);
            err.error_type = ErrorType::Retryable;
            Err(err)
        }
        Err(e) => Err(aws_error("CreateAddon", e)),
    }
}

/// Brings version, configuration and role to `want` in one update (an update already running
/// is not an error: the next poll sees it).
pub async fn update(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    want: &Desired,
) -> Result<(), FunctionError> {
    let result = eks
        .update_addon()
        .cluster_name(cluster)
        .addon_name(&want.name)
        .addon_version(&want.version)
        .configuration_values(want.configuration_text())
        .set_service_account_role_arn(want.role.clone())
        .resolve_conflicts(ResolveConflicts::Overwrite)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(aws_error("UpdateAddon", e)),
    }
}

/// Whether the add-on is ACTIVE at `now` (epoch seconds): false while CREATING, UPDATING or,
/// within the grace period, DEGRADED. A failed one, or one DEGRADED for too long, is a terminal
/// error naming its health issues; one being deleted is retried, to be created again once gone.
pub fn ready(live: &Addon, now: i64) -> Result<bool, FunctionError> {
    let name = live.addon_name().unwrap_or_default();
    let issues = || {
        health_issues(
            live.health()
                .map(|h| h.issues())
                .unwrap_or_default()
                .iter()
                .map(|i| (i.code().map(|c| c.as_str()), i.message())),
        )
    };
    match live.status() {
        Some(AddonStatus::Active) => Ok(true),
        Some(AddonStatus::Degraded) => {
            let since = live.modified_at().or(live.created_at());
            if degraded_too_long(since.map(|t| t.secs()), now) {
                return Err(FunctionError::new(
                    ErrorType::Terminal,
                    format!(
                        "add-on {name:?} is still DEGRADED {} minutes after its last change: {}",
                        DEGRADED_GRACE_SECS / 60,
                        issues()
                    ),
                ));
            }
            tracing::warn!(addon = %name, issues = %issues(), "add-on is DEGRADED, polling");
            Ok(false)
        }
        Some(status @ (AddonStatus::CreateFailed | AddonStatus::UpdateFailed)) => {
            Err(FunctionError::new(
                ErrorType::Terminal,
                format!("add-on {name:?} is {}: {}", status.as_str(), issues()),
            ))
        }
        Some(AddonStatus::Deleting) => Err(FunctionError::new(
            ErrorType::Retryable,
            format!("add-on {name:?} is being deleted; it is created again once gone"),
        )),
        _ => Ok(false),
    }
}

/// Whether an add-on DEGRADED since `since` (epoch seconds; unknown: not too long) has been so
/// past the grace period at `now`.
fn degraded_too_long(since: Option<i64>, now: i64) -> bool {
    since.is_some_and(|t| now.saturating_sub(t) > DEGRADED_GRACE_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degraded_is_polled_within_the_grace_period_then_fails() {
        assert!(!degraded_too_long(None, 10_000));
        assert!(!degraded_too_long(
            Some(10_000),
            10_000 + DEGRADED_GRACE_SECS
        ));
        assert!(degraded_too_long(
            Some(10_000),
            10_000 + DEGRADED_GRACE_SECS + 1
        ));
    }

    #[test]
    fn configuration_compares_as_json() {
        let d: Map<String, Value> = serde_json::from_str(r#"{"b": "x", "a": 1}"#).unwrap();
        assert!(same_configuration(Some(&d), Some(r#"{"a":1,"b":"x"}"#)));
        assert!(!same_configuration(Some(&d), Some(r#"{"a": 2, "b": "x"}"#)));
        assert!(!same_configuration(Some(&d), None));
        assert!(same_configuration(None, Some("")));
        assert!(same_configuration(None, None));
    }

    #[test]
    fn differences_name_only_owned_fields_and_a_role_only_when_one_is_desired() {
        let want = Desired {
            name: "coredns".into(),
            version: "v1.11.4-eksbuild.2".into(),
            configuration: None,
            role: None,
            pod_identity: None,
        };
        let live = Addon::builder()
            .addon_name("coredns")
            .addon_version("v1.11.4-eksbuild.2")
            .service_account_role_arn("arn:aws:iam::1:role/someone")
            .tags("team", "ops")
            .build();
        assert_eq!(want.differences(&live), []);
        let older = Addon::builder()
            .addon_name("coredns")
            .addon_version("v1.11.1-eksbuild.1")
            .build();
        let with_role = Desired {
            role: Some("arn:aws:iam::1:role/ours".into()),
            ..want.clone()
        };
        let fields: Vec<&str> = with_role
            .differences(&older)
            .iter()
            .map(|d| d.field)
            .collect();
        assert_eq!(fields, ["addonVersion", "serviceAccountRoleArn"]);
    }
}
