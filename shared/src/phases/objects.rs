//! Kubernetes objects on the phase runtime: how a rendered manifest is named in the inventory
//! and in drift reports, and [`converge`], the one walk of one object that `ensure` and
//! `observe` share.

use serde_json::{json, Value};

use super::PhaseContext;
use crate::error::FunctionError;
use crate::kubernetes::{self, webhook_tls};
use crate::resources::Kind;

/// The catalogue kind of a manifest (every object Tenantry applies has one: a unit test checks
/// the bootstrap manifests, so a missing one is a bug, reported as terminal).
pub fn object_kind(manifest: &Value) -> Result<Kind, FunctionError> {
    let k8s_kind = manifest["kind"].as_str().unwrap_or_default();
    Kind::of_k8s(k8s_kind).ok_or_else(|| {
        FunctionError::new(
            crate::error::ErrorType::Terminal,
            format!("Kubernetes kind {k8s_kind:?} is not in the resource catalogue"),
        )
    })
}

/// Inventory id of a manifest (its type is [`object_kind`]): `apiVersion/kind/namespace/name` (namespace empty when
/// cluster-scoped).
pub fn object_id(manifest: &Value) -> String {
    format!(
        "{}/{}/{}/{}",
        manifest["apiVersion"].as_str().unwrap_or_default(),
        manifest["kind"].as_str().unwrap_or_default(),
        manifest["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default(),
        manifest["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// The manifest naming the object of an inventory id (enough to get or delete it).
pub(crate) fn stub(id: &str) -> Option<Value> {
    let parts: Vec<&str> = id.rsplitn(3, '/').collect();
    let [name, namespace, rest] = parts.as_slice() else {
        return None;
    };
    let (api_version, kind) = rest.rsplit_once('/')?;
    let mut metadata = json!({ "name": name });
    if !namespace.is_empty() {
        metadata["namespace"] = json!(namespace);
    }
    Some(json!({ "apiVersion": api_version, "kind": kind, "metadata": metadata }))
}

/// One object, one walk: reads the live object and compares it with `manifest` as
/// [`kubernetes::apply`] would. When it differs, `ensure` applies it (one write, counted) and
/// `observe` notes it under `k8s:<object id>` (field `exists` or `spec`; a Secret's data is
/// redacted, never a private key in a report). Returns whether it is as desired once the walk
/// is done: `false` only for a difference `observe` noted.
pub async fn converge(
    ctx: &mut PhaseContext<'_>,
    client: &kube::Client,
    manifest: &Value,
) -> Result<bool, FunctionError> {
    let live = kubernetes::get(client, manifest).await?;
    if live
        .as_ref()
        .is_some_and(|l| kubernetes::is_applied(l, manifest))
    {
        return Ok(true);
    }
    let resource = format!("k8s:{}", object_id(manifest));
    let field = if live.is_some() { "spec" } else { "exists" };
    let desired = webhook_tls::redact(manifest);
    let actual = live.as_ref().map_or(Value::Null, webhook_tls::redact);
    if !ctx.differs(&resource, field, desired, actual) {
        return Ok(false);
    }
    kubernetes::apply_unread(client, manifest).await?;
    ctx.cluster_writes(1);
    Ok(true)
}

/// An object the spec no longer asks for (`stub` names it): when it is still there, `ensure`
/// deletes it (one write, counted) and `observe` notes it. A kind Tenantry never deletes (the
/// system namespaces it only labels) is left alone.
pub async fn remove(
    ctx: &mut PhaseContext<'_>,
    client: &kube::Client,
    stub: &Value,
) -> Result<(), FunctionError> {
    if !kubernetes::deletable(stub) {
        return Ok(());
    }
    let Some(live) = kubernetes::get(client, stub).await? else {
        return Ok(());
    };
    let resource = format!("k8s:{}", object_id(stub));
    // Desired null: an object nothing asks for is reported as unexpected.
    if ctx.differs(&resource, "exists", Value::Null, webhook_tls::redact(&live))
        && kubernetes::delete(client, stub).await?
    {
        ctx.cluster_writes(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_ids_round_trip_to_stubs() {
        let m = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                       "metadata": {"name": "cluster-autoscaler", "namespace": "kube-system"}});
        let id = object_id(&m);
        assert_eq!(
            id,
            "rbac.authorization.k8s.io/v1/RoleBinding/kube-system/cluster-autoscaler"
        );
        assert_eq!(stub(&id).unwrap(), m);
        let pc = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                        "metadata": {"name": "tenantry-batch"}});
        assert_eq!(stub(&object_id(&pc)).unwrap(), pc);
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}});
        assert_eq!(stub(&object_id(&ns)).unwrap(), ns);
    }
}
