//! The checks of the catalogue, one module per area. Each is a plain function of the
//! [`Live`] snapshot: no service is called, so each is unit-tested on hand-built state.

pub mod cluster;
pub mod iam;
pub mod keys;
pub mod kubernetes;
pub mod logs;
pub mod network;
pub mod nodes;
pub mod registry;
pub mod storage;

use super::live::Live;
use super::report::Status;
use serde::Serialize;
use serde_json::{json, Value};

/// One control's verdict on one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub resource: String,
    pub status: Status,
    pub reason: String,
    pub evidence: Value,
}

/// Pass when `ok`, fail otherwise, with the reason that applies.
pub fn judge(
    resource: impl Into<String>,
    ok: bool,
    passed: impl Into<String>,
    failed: impl Into<String>,
    evidence: impl Serialize,
) -> Verdict {
    let (status, reason) = if ok {
        (Status::Pass, passed.into())
    } else {
        (Status::Fail, failed.into())
    };
    Verdict {
        resource: resource.into(),
        status,
        reason,
        evidence: json!(evidence),
    }
}

/// The control does not apply, and why.
pub fn not_applicable(resource: impl Into<String>, reason: impl Into<String>) -> Verdict {
    Verdict {
        resource: resource.into(),
        status: Status::NotApplicable,
        reason: reason.into(),
        evidence: Value::Null,
    }
}

/// The platform itself, as a resource name for controls with nothing to look at.
fn platform(live: &Live) -> String {
    format!("tenantry:platform/{}", live.platform_id)
}

/// Runs `check` on the cluster, or says there is none.
fn on_cluster(live: &Live, check: impl FnOnce(&super::live::Cluster) -> Verdict) -> Vec<Verdict> {
    match &live.cluster {
        Some(cluster) => vec![check(cluster)],
        None => no_cluster(live),
    }
}

/// The verdict of a cluster control on a platform whose cluster is gone: a failure.
fn no_cluster(live: &Live) -> Vec<Verdict> {
    vec![Verdict {
        resource: platform(live),
        status: Status::Fail,
        reason: "the platform's EKS cluster does not exist".into(),
        evidence: Value::Null,
    }]
}

/// Runs `check` on the Kubernetes API's state, or says it could not be read.
fn on_kubernetes(
    live: &Live,
    check: impl FnOnce(&super::live::Kubernetes) -> Vec<Verdict>,
) -> Vec<Verdict> {
    match &live.kubernetes {
        Some(k) => check(k),
        None => vec![not_applicable(
            platform(live),
            "the cluster's Kubernetes API is not reachable (no cluster)",
        )],
    }
}

/// One verdict per tenant namespace (from the cluster's state), or "not applicable" without
/// tenants.
fn each_tenant(
    live: &Live,
    check: impl Fn(&super::live::Kubernetes, &str) -> Verdict,
) -> Vec<Verdict> {
    on_kubernetes(live, |k| {
        if live.asked.tenant_namespaces.is_empty() {
            return vec![not_applicable(
                platform(live),
                "the platform has no tenants",
            )];
        }
        live.asked
            .tenant_namespaces
            .iter()
            .map(|ns| check(k, ns))
            .collect()
    })
}

/// Kubernetes object path used as a resource name: `k8s:<kind>/<name>`.
fn k8s(kind: &str, name: &str) -> String {
    format!("k8s:{kind}/{name}")
}

/// A policy document's statements (a single statement object counts as one).
fn statements(policy: &Value) -> Vec<&Value> {
    match &policy["Statement"] {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![&policy["Statement"]],
        _ => Vec::new(),
    }
}

/// A string-or-list policy field as strings.
fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Whether a statement's condition sets `key` (case-insensitive, under any operator).
fn condition_has(statement: &Value, key: &str) -> bool {
    statement["Condition"]
        .as_object()
        .into_iter()
        .flat_map(|ops| ops.values())
        .filter_map(Value::as_object)
        .any(|keys| keys.keys().any(|k| k.eq_ignore_ascii_case(key)))
}
