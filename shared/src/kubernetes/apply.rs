//! Server-side apply of rendered manifests, and reads and deletes of the objects they name.
//!
//! Every write is a server-side apply with field manager [`FIELD_MANAGER`] and `force`, so
//! Tenantry takes back fields someone changed by hand (drift) and never fights over fields it
//! does not render. An unchanged platform costs no write: [`apply`] reads the live object first
//! and skips the apply when
//!
//! 1. every field of the manifest has the same value in the live object (the API server's
//!    defaults and fields owned by others may be there too), and
//! 2. the live object carries the manifest's digest in the annotation [`DIGEST_ANNOTATION`].
//!
//! The digest covers what (1) cannot see: a field Tenantry rendered last time and no longer
//! renders (say the IRSA role annotation after a switch to Pod Identity) is still in the live
//! object and would pass (1), but the digest differs, so the manifest is applied and server-side
//! apply removes the field Tenantry no longer claims.
//!
//! The kinds Tenantry renders are listed in one table ([`resource_of`]): the API resource
//! (plural) and whether objects of a kind live in a namespace come from k8s-openapi's types,
//! not from discovery calls.

use std::any::TypeId;

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::NamespaceResourceScope;
use serde_json::Value;

use crate::error::{ErrorType, FunctionError};
use crate::naming::fnv1a64;
use crate::store::canonical_json;

/// Field manager of every Tenantry apply.
pub const FIELD_MANAGER: &str = "tenantry";

/// Annotation holding the digest of the manifest last applied (see the module docs).
pub const DIGEST_ANNOTATION: &str = "tenantry.io/applied-digest";

/// Namespaces every cluster has, which Tenantry labels but never deletes.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["kube-system", "kube-public", "kube-node-lease", "default"];

/// Where an object of a known kind lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindInfo {
    /// The API resource (group, version, kind, plural).
    pub resource: ApiResource,
    /// Whether objects of the kind are namespaced.
    pub namespaced: bool,
}

fn info<K>() -> KindInfo
where
    K: kube::Resource<DynamicType = ()>,
    K::Scope: 'static,
{
    KindInfo {
        resource: ApiResource::erase::<K>(&()),
        namespaced: TypeId::of::<K::Scope>() == TypeId::of::<NamespaceResourceScope>(),
    }
}

/// The API resource of `apiVersion`/`kind`, for the kinds Tenantry renders.
pub fn resource_of(api_version: &str, kind: &str) -> Option<KindInfo> {
    use k8s_openapi::api::{apps, core, networking, policy, rbac, scheduling, storage};
    let info = match (api_version, kind) {
        ("v1", "Namespace") => info::<core::v1::Namespace>(),
        ("v1", "ServiceAccount") => info::<core::v1::ServiceAccount>(),
        ("v1", "ConfigMap") => info::<core::v1::ConfigMap>(),
        ("v1", "Secret") => info::<core::v1::Secret>(),
        ("v1", "Service") => info::<core::v1::Service>(),
        ("v1", "ResourceQuota") => info::<core::v1::ResourceQuota>(),
        ("v1", "LimitRange") => info::<core::v1::LimitRange>(),
        ("apps/v1", "Deployment") => info::<apps::v1::Deployment>(),
        ("apps/v1", "DaemonSet") => info::<apps::v1::DaemonSet>(),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => info::<rbac::v1::ClusterRole>(),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            info::<rbac::v1::ClusterRoleBinding>()
        }
        ("rbac.authorization.k8s.io/v1", "Role") => info::<rbac::v1::Role>(),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => info::<rbac::v1::RoleBinding>(),
        ("scheduling.k8s.io/v1", "PriorityClass") => info::<scheduling::v1::PriorityClass>(),
        ("networking.k8s.io/v1", "NetworkPolicy") => info::<networking::v1::NetworkPolicy>(),
        ("policy/v1", "PodDisruptionBudget") => info::<policy::v1::PodDisruptionBudget>(),
        ("storage.k8s.io/v1", "StorageClass") => info::<storage::v1::StorageClass>(),
        ("crd.k8s.amazonaws.com/v1alpha1", "ENIConfig") => info::<super::EniConfig>(),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
            info::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>()
        }
        ("operator.tigera.io/v1", "Installation") => info::<super::Installation>(),
        ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration") => {
            info::<k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration>()
        }
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") => {
            info::<k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration>()
        }
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy") => {
            info::<k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicy>()
        }
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding") => {
            info::<k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicyBinding>()
        }
        ("networking.k8s.io/v1", "IngressClass") => info::<networking::v1::IngressClass>(),
        // The VPC resource controller's CRD, in every EKS cluster; no k8s-openapi type.
        ("vpcresources.k8s.aws/v1beta1", "SecurityGroupPolicy") => KindInfo {
            resource: ApiResource {
                group: "vpcresources.k8s.aws".to_owned(),
                version: "v1beta1".to_owned(),
                api_version: api_version.to_owned(),
                kind: kind.to_owned(),
                plural: "securitygrouppolicies".to_owned(),
            },
            namespaced: true,
        },
        _ => return None,
    };
    Some(info)
}

/// Identity of a manifest: kind, namespace, name and where it lives.
#[derive(Debug, Clone)]
struct Target {
    kind: String,
    namespace: Option<String>,
    name: String,
    info: KindInfo,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

fn invalid(message: String) -> FunctionError {
    FunctionError::new(ErrorType::InvalidRequest, message)
}

fn target(manifest: &Value) -> Result<Target, FunctionError> {
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let api_version = text(&manifest["apiVersion"])
        .ok_or_else(|| invalid("manifest without apiVersion".to_owned()))?;
    let kind =
        text(&manifest["kind"]).ok_or_else(|| invalid("manifest without kind".to_owned()))?;
    let name = text(&manifest["metadata"]["name"])
        .ok_or_else(|| invalid(format!("{kind} manifest without metadata.name")))?;
    let info = resource_of(&api_version, &kind).ok_or_else(|| {
        invalid(format!(
            "{kind} {name}: Tenantry does not apply {api_version} {kind}"
        ))
    })?;
    let namespace = text(&manifest["metadata"]["namespace"]);
    match (info.namespaced, &namespace) {
        (true, None) => Err(invalid(format!(
            "{kind} {name} is namespaced but its manifest has no metadata.namespace"
        ))),
        (false, Some(ns)) => Err(invalid(format!(
            "{kind} {name} is cluster-scoped but its manifest names namespace {ns}"
        ))),
        _ => Ok(Target {
            kind,
            namespace,
            name,
            info,
        }),
    }
}

fn api(client: &kube::Client, t: &Target) -> Api<DynamicObject> {
    match &t.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &t.info.resource),
        None => Api::all_with(client.clone(), &t.info.resource),
    }
}

/// Maps a kube error on `verb` of `t` to the error contract: 409 → Conflict; 429, 5xx and
/// connection failures → Retryable; other 4xx and anything else → Terminal.
fn kube_error(verb: &str, t: &Target, e: kube::Error) -> FunctionError {
    let error_type = match &e {
        kube::Error::Api(status) => match status.code {
            409 => ErrorType::Conflict,
            429 => ErrorType::Retryable,
            500..=599 => ErrorType::Retryable,
            _ => ErrorType::Terminal,
        },
        // A write the read-only client of `observe` refused is a bug, not a hiccup.
        kube::Error::Service(e) if e.downcast_ref::<super::client::WriteRefused>().is_some() => {
            ErrorType::Terminal
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => ErrorType::Retryable,
        _ => ErrorType::Terminal,
    };
    let detail = match &e {
        kube::Error::Api(status) => format!(
            "{} {}: {}",
            status.code,
            if status.reason.is_empty() {
                "Failure"
            } else {
                &status.reason
            },
            status.message
        ),
        other => other.to_string(),
    };
    FunctionError::new(error_type, format!("{verb} {t}: {detail}"))
}

/// Stable digest of a manifest: FNV-1a of its canonical JSON (object keys sorted).
pub fn digest(manifest: &Value) -> String {
    format!("{:016x}", fnv1a64(&canonical_json(manifest)))
}

/// Whether every field of `desired` has the same value in `live` (objects: each key of
/// `desired` present in `live` and contained; arrays: same length, element-wise contained;
/// anything else: equal).
pub fn contains(live: &Value, desired: &Value) -> bool {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => d
            .iter()
            .all(|(k, dv)| l.get(k).is_some_and(|lv| contains(lv, dv))),
        (Value::Array(l), Value::Array(d)) => {
            l.len() == d.len() && l.iter().zip(d).all(|(lv, dv)| contains(lv, dv))
        }
        (l, d) => l == d,
    }
}

/// The manifest as applied: `manifest` with its digest annotation.
fn with_digest(manifest: &Value) -> Value {
    let digest = digest(manifest);
    let mut out = manifest.clone();
    if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(map) = annotations.as_object_mut() {
            map.insert(DIGEST_ANNOTATION.to_owned(), Value::String(digest));
        }
    }
    out
}

/// Server-side applies `manifest` (field manager `tenantry`, forced). Returns whether anything
/// was written: `false` when the live object already matches (see the module docs).
pub async fn apply(client: &kube::Client, manifest: &Value) -> Result<bool, FunctionError> {
    let live = get(client, manifest).await?;
    if live.is_some_and(|live| is_applied(&live, manifest)) {
        return Ok(false);
    }
    apply_unread(client, manifest).await?;
    Ok(true)
}

/// Whether the live object is `manifest` as [`apply`] leaves it: every field it renders, and
/// its digest (see the module docs).
pub fn is_applied(live: &Value, manifest: &Value) -> bool {
    contains(live, &with_digest(manifest))
}

/// Server-side applies `manifest` without reading the live object first: for a caller that has
/// compared it already ([`is_applied`]).
pub async fn apply_unread(client: &kube::Client, manifest: &Value) -> Result<(), FunctionError> {
    let t = target(manifest)?;
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api(client, &t)
        .patch(&t.name, &params, &Patch::Apply(&with_digest(manifest)))
        .await
        .map_err(|e| kube_error("applying", &t, e))?;
    tracing::info!(object = %t, "applied");
    Ok(())
}

/// Applies `manifests` in order. Returns how many were written.
pub async fn apply_all(client: &kube::Client, manifests: &[Value]) -> Result<usize, FunctionError> {
    let mut changed = 0;
    for manifest in manifests {
        if apply(client, manifest).await? {
            changed += 1;
        }
    }
    Ok(changed)
}

/// The live object `manifest` names, or `None` when it does not exist.
pub async fn get(client: &kube::Client, manifest: &Value) -> Result<Option<Value>, FunctionError> {
    let t = target(manifest)?;
    let live = api(client, &t)
        .get_opt(&t.name)
        .await
        .map_err(|e| kube_error("reading", &t, e))?;
    live.map(|o| {
        serde_json::to_value(&o)
            .map_err(|e| FunctionError::new(ErrorType::Terminal, format!("reading {t}: {e}")))
    })
    .transpose()
}

/// Whether [`delete`] may delete the object `manifest` names: not the cluster's own namespaces.
pub fn deletable(manifest: &Value) -> bool {
    let system_namespace = manifest["apiVersion"] == "v1"
        && manifest["kind"] == "Namespace"
        && manifest["metadata"]["name"]
            .as_str()
            .is_some_and(|n| SYSTEM_NAMESPACES.contains(&n));
    !system_namespace
}

/// Deletes the object `manifest` names. Returns `false` when it was already gone. Refuses
/// (InvalidRequest) the cluster's own namespaces, which Tenantry only labels.
pub async fn delete(client: &kube::Client, manifest: &Value) -> Result<bool, FunctionError> {
    let t = target(manifest)?;
    if !deletable(manifest) {
        return Err(invalid(format!(
            "refusing to delete {t}: Tenantry labels the cluster's own namespaces, it does not own them"
        )));
    }
    match api(client, &t)
        .delete(&t.name, &DeleteParams::default())
        .await
    {
        Ok(_) => {
            tracing::info!(object = %t, "deleted");
            Ok(true)
        }
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(e) => Err(kube_error("deleting", &t, e)),
    }
}

/// Deletes the deletable objects of `manifests` in reverse order (dependents first). Returns how
/// many were deleted.
pub async fn delete_all(
    client: &kube::Client,
    manifests: &[Value],
) -> Result<usize, FunctionError> {
    let mut deleted = 0;
    for manifest in manifests.iter().rev().filter(|m| deletable(m)) {
        if delete(client, manifest).await? {
            deleted += 1;
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_kind_table_knows_scopes_and_plurals() {
        let ns = resource_of("v1", "Namespace").expect("namespace");
        assert!(!ns.namespaced);
        assert_eq!(ns.resource.plural, "namespaces");
        let d = resource_of("apps/v1", "Deployment").expect("deployment");
        assert!(d.namespaced);
        assert_eq!(d.resource.group, "apps");
        assert_eq!(d.resource.plural, "deployments");
        let pc = resource_of("scheduling.k8s.io/v1", "PriorityClass").expect("pc");
        assert!(!pc.namespaced);
        assert_eq!(pc.resource.plural, "priorityclasses");
        assert!(
            resource_of("rbac.authorization.k8s.io/v1", "RoleBinding")
                .expect("rb")
                .namespaced
        );
        assert!(
            !resource_of("rbac.authorization.k8s.io/v1", "ClusterRoleBinding")
                .expect("crb")
                .namespaced
        );
        assert!(resource_of("apps/v1beta1", "Deployment").is_none());
        assert!(resource_of("v1", "Pod").is_none());
    }

    #[test]
    fn targets_are_checked_against_the_scope() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
        let e = target(&cm).expect_err("namespace missing");
        assert_eq!(e.error_type, ErrorType::InvalidRequest);
        let ns = json!({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": "x", "namespace": "y"}});
        assert!(target(&ns).is_err());
        let t = target(&json!({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": "x", "namespace": "kube-system"}}))
        .expect("ok");
        assert_eq!(t.to_string(), "ConfigMap kube-system/x");
        assert!(target(&json!({"kind": "ConfigMap"})).is_err());
    }

    #[test]
    fn containment_ignores_server_fields_but_not_changes() {
        let desired = json!({"metadata": {"name": "a", "labels": {"x": "1"}},
                             "spec": {"args": ["--a", "--b"], "c": [{"k": 1}]}});
        let live = json!({"metadata": {"name": "a", "labels": {"x": "1", "y": "2"},
                                       "resourceVersion": "7"},
                          "spec": {"args": ["--a", "--b"], "c": [{"k": 1, "d": true}],
                                   "defaulted": 3}});
        assert!(contains(&live, &desired));
        let mut changed = live.clone();
        changed["metadata"]["labels"]["x"] = json!("2");
        assert!(!contains(&changed, &desired));
        let mut reordered = live.clone();
        reordered["spec"]["args"] = json!(["--b", "--a"]);
        assert!(!contains(&reordered, &desired));
        let mut longer = live.clone();
        longer["spec"]["args"] = json!(["--a", "--b", "--c"]);
        assert!(!contains(&longer, &desired));
    }

    #[test]
    fn digest_is_stable_and_key_order_free() {
        let a = json!({"b": 1, "a": [1, {"y": "2", "x": null}]});
        let b: Value =
            serde_json::from_str(r#"{"a": [1, {"x": null, "y": "2"}], "b": 1}"#).expect("json");
        assert_eq!(digest(&a), digest(&b));
        assert_eq!(digest(&a).len(), 16);
        assert_ne!(
            digest(&a),
            digest(&json!({"b": 2, "a": [1, {"y": "2", "x": null}]}))
        );
        let m = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
        assert_eq!(
            with_digest(&m)["metadata"]["annotations"][DIGEST_ANNOTATION],
            json!(digest(&m))
        );
    }

    #[test]
    fn system_namespaces_are_never_deletable() {
        for ns in SYSTEM_NAMESPACES {
            assert!(!deletable(
                &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            ));
        }
        assert!(deletable(
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "checkout"}})
        ));
    }

    #[test]
    fn api_errors_map_to_the_error_contract() {
        let t = target(&json!({"apiVersion": "apps/v1", "kind": "Deployment",
                               "metadata": {"name": "ca", "namespace": "kube-system"}}))
        .expect("target");
        let status = |code: u16| {
            let mut s = kube::core::Status::failure("nope", "Reason");
            s.code = code;
            kube::Error::Api(Box::new(s))
        };
        assert_eq!(
            kube_error("applying", &t, status(409)).error_type,
            ErrorType::Conflict
        );
        assert_eq!(
            kube_error("applying", &t, status(503)).error_type,
            ErrorType::Retryable
        );
        assert_eq!(
            kube_error("applying", &t, status(429)).error_type,
            ErrorType::Retryable
        );
        let e = kube_error("applying", &t, status(422));
        assert_eq!(e.error_type, ErrorType::Terminal);
        assert!(
            e.error_message.contains("Deployment kube-system/ca"),
            "{}",
            e.error_message
        );
        assert!(e.error_message.contains("422"), "{}", e.error_message);
    }
}
