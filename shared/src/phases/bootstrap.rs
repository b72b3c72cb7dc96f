//! The `bootstrap` phase: what Tenantry puts inside the cluster (see [`crate::kubernetes`]).
//!
//! In AWS this function runs attached to the platform's VPC (the endpoint is private) and
//! authenticates with an EKS token from an STS presigned URL; locally it reaches the gateway's
//! Kubernetes double.
//!
//! - `ensure`: with `cni: calico`, first Calico: the Tigera operator's CRDs, the operator and
//!   its `Installation` ([`kubernetes::calico_manifests`]). The workflow runs item
//!   [`CALICO_ITEM`] (those objects only) before the node groups, since nodes without a CNI never
//!   become Ready; the full run later finds them applied. Then it server-side applies (field
//!   manager `tenantry`) Pod Security labels on the system namespaces, the default PriorityClasses and the cluster-autoscaler (IRSA-annotated service
//!   account, RBAC, priority expander preferring spot groups, hardened Deployment), the default
//!   StorageClass, the enabled controllers (external-dns; the AWS Load Balancer Controller and the
//!   External Secrets Operator: CRDs, RBAC, their webhooks' Services, TLS Secrets and
//!   configurations, Deployments; see
//!   [`kubernetes::controller_manifests`]) and, with custom networking, one `ENIConfig` per AZ.
//!   A webhook's certificate is read back from its Secret and kept while valid, so a re-run
//!   writes nothing. Objects are
//!   compared first, so an unchanged cluster costs no write. Objects recorded earlier that the
//!   spec no longer asks for (the autoscaler switched off) are deleted.
//! - `observe`: every object whose live state lacks a desired field, as drift.
//! - `delete`: deletes the objects while the cluster exists (deleting the cluster removes them
//!   anyway); the system namespaces are only ever labelled, never deleted.

use super::{Action, Drift, PhaseContext, PhaseInput, PhaseOutput};
use crate::deps::Deps;
use crate::error::FunctionError;
use crate::kubernetes;
use crate::kubernetes::webhook_tls::{self, WebhookTls};
use crate::naming;
use crate::phases::outputs::{self, OutputMap};
use crate::plan::Phase;
use crate::resources::Kind;
use crate::spec::TrustMechanism;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

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

/// The item of the workflow's step that applies Calico alone, before the node groups.
pub const CALICO_ITEM: &str = "calico";

pub async fn handle(input: PhaseInput, deps: &Deps) -> Result<PhaseOutput, FunctionError> {
    run(PhaseContext::load(Phase::Bootstrap, input, deps).await?).await
}

/// One action on a loaded context (the scenario tests build the context themselves).
pub async fn run(mut ctx: PhaseContext<'_>) -> Result<PhaseOutput, FunctionError> {
    match ctx.input.action {
        Action::Ensure => ensure(&mut ctx).await,
        Action::Observe => observe(&mut ctx).await,
        Action::Delete => {
            let eks = ctx.clients.eks.clone();
            delete(&mut ctx, &eks).await
        }
    }
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

/// The objects bootstrap applies: [`kubernetes::bootstrap_manifests`]; with the EBS CSI add-on,
/// the default StorageClass encrypted with the platform data key (an output of the encryption
/// phase); with custom networking, the `ENIConfig` of each AZ (from the network and cluster
/// phases' outputs). A delete needs only the names.
fn manifests(ctx: &PhaseContext<'_>, certs: &Certs) -> Result<Vec<Value>, FunctionError> {
    let irsa_roles = match ctx.spec.identity.trust() {
        TrustMechanism::Irsa => ctx
            .optional(outputs::SERVICE_ROLE_ARNS)?
            .unwrap_or_default(),
        TrustMechanism::PodIdentity => BTreeMap::new(),
    };
    let role = irsa_roles.get(naming::ROLE_CLUSTER_AUTOSCALER);
    // Calico first: nothing else needs it, but nodes do (see the module docs).
    let mut out = kubernetes::calico_manifests(&ctx.spec);
    out.extend(kubernetes::bootstrap_manifests(
        &ctx.spec,
        role.map(String::as_str),
    ));
    if kubernetes::has_controllers(&ctx.spec) {
        let vpc_id = match ctx.input.action {
            Action::Delete => String::new(),
            _ => ctx.output(outputs::VPC_ID)?,
        };
        out.extend(kubernetes::controller_manifests(
            &ctx.spec,
            &irsa_roles,
            &vpc_id,
            certs,
        ));
    }
    if kubernetes::has_ebs_csi(&ctx.spec) {
        let data_key = match ctx.input.action {
            Action::Delete => String::new(),
            _ => ctx.output(outputs::DATA_KEY_ARN)?,
        };
        out.extend(kubernetes::storage_manifests(&ctx.spec, &data_key));
    }
    if ctx.spec.custom_networking() {
        out.extend(eni_configs(ctx)?);
    }
    Ok(out)
}

/// The controllers' webhook certificate pairs, by Secret name.
type Certs = BTreeMap<String, WebhookTls>;

/// The webhook certificates of the enabled controllers: what their Secrets hold while valid
/// ([`webhook_tls::reuse_or_generate`]); with `generate` off (observe) a missing or invalid
/// one is left out, so the placeholder is rendered and reported as drift, and nothing is made.
async fn webhook_certs(
    ctx: &PhaseContext<'_>,
    client: &kubernetes::Client,
    generate: bool,
) -> Result<Certs, FunctionError> {
    let mut certs = Certs::new();
    for service in kubernetes::controller_webhooks(&ctx.spec) {
        let stub = json!({ "apiVersion": "v1", "kind": "Secret",
                           "metadata": { "name": service.secret, "namespace": service.namespace } });
        let live = kubernetes::get(client, &stub).await?;
        if generate {
            let (tls, _fresh) =
                webhook_tls::reuse_or_generate(&service, live.as_ref(), SystemTime::now())?;
            certs.insert(service.secret.to_owned(), tls);
        } else if let Some(tls) = live.as_ref().and_then(WebhookTls::from_secret) {
            if tls.is_valid_for(&service, SystemTime::now()) {
                certs.insert(service.secret.to_owned(), tls);
            }
        }
    }
    Ok(certs)
}

/// One `ENIConfig` per AZ: the AZ's pod subnet and the cluster security group.
fn eni_configs(ctx: &PhaseContext<'_>) -> Result<Vec<Value>, FunctionError> {
    let zones = ctx.output(outputs::AVAILABILITY_ZONES)?;
    let (subnets, group): (Vec<String>, String) = match ctx.input.action {
        Action::Delete => (vec![String::new(); zones.len()], String::new()),
        _ => (
            ctx.output(outputs::POD_SUBNET_IDS)?,
            ctx.output(outputs::CLUSTER_SECURITY_GROUP_ID)?,
        ),
    };
    if subnets.len() != zones.len() {
        return Err(FunctionError::new(
            crate::error::ErrorType::Terminal,
            format!(
                "the network phase recorded {} pod subnets for {} availability zones",
                subnets.len(),
                zones.len()
            ),
        ));
    }
    let pod_subnets: Vec<kubernetes::PodSubnet> = zones
        .into_iter()
        .zip(subnets)
        .map(|(zone, subnet_id)| kubernetes::PodSubnet { zone, subnet_id })
        .collect();
    Ok(kubernetes::eni_config_manifests(
        &ctx.spec,
        &pod_subnets,
        &group,
    ))
}

async fn ensure(ctx: &mut PhaseContext<'_>) -> Result<PhaseOutput, FunctionError> {
    match ctx.input.item.as_deref() {
        None => ensure_all(ctx).await,
        Some(CALICO_ITEM) => ensure_calico(ctx).await,
        Some(other) => Err(FunctionError::new(
            crate::error::ErrorType::InvalidRequest,
            format!("bootstrap has no item {other:?} (only {CALICO_ITEM:?})"),
        )),
    }
}

/// Calico's objects only (empty unless `cni: calico`), applied and recorded; nothing is pruned
/// here: the full run decides what the spec no longer asks for.
async fn ensure_calico(ctx: &mut PhaseContext<'_>) -> Result<PhaseOutput, FunctionError> {
    let desired = kubernetes::calico_manifests(&ctx.spec);
    if !desired.is_empty() {
        let client = ctx.kube_client().await?;
        for manifest in &desired {
            if kubernetes::apply(&client, manifest).await? {
                ctx.cluster_writes(1);
            }
            let kind = object_kind(manifest)?;
            ctx.record_new(kind, &object_id(manifest), BTreeMap::new(), Value::Null)
                .await?;
        }
    }
    let mut out = OutputMap::new();
    outputs::BOOTSTRAP_OBJECTS.insert(&mut out, desired.len());
    ctx.finish(true, out).await
}

async fn ensure_all(ctx: &mut PhaseContext<'_>) -> Result<PhaseOutput, FunctionError> {
    let client = ctx.kube_client().await?;
    let recorded = ctx.recorded_for(None);
    let certs = webhook_certs(ctx, &client, true).await?;
    let desired = manifests(ctx, &certs)?;
    let mut wanted = BTreeSet::new();
    for manifest in &desired {
        if kubernetes::apply(&client, manifest).await? {
            ctx.cluster_writes(1);
        }
        let id = object_id(manifest);
        ctx.record_new(object_kind(manifest)?, &id, BTreeMap::new(), Value::Null)
            .await?;
        wanted.insert(id);
    }
    // Objects of an earlier spec that this one no longer asks for, dependents first.
    for (kind, id) in recorded.iter().rev().filter(|(_, id)| !wanted.contains(id)) {
        if let Some(stub) = stub(id) {
            if kubernetes::deletable(&stub) && kubernetes::delete(&client, &stub).await? {
                ctx.cluster_writes(1);
            }
        }
        ctx.forget(*kind, id).await?;
    }
    let mut out = OutputMap::new();
    outputs::BOOTSTRAP_OBJECTS.insert(&mut out, desired.len());
    ctx.finish(true, out).await
}

async fn observe(ctx: &mut PhaseContext<'_>) -> Result<PhaseOutput, FunctionError> {
    let client = ctx.kube_client().await?;
    let mut drift = Vec::new();
    let certs = webhook_certs(ctx, &client, false).await?;
    for manifest in manifests(ctx, &certs)? {
        let live = kubernetes::get(&client, &manifest).await?;
        if !live
            .as_ref()
            .is_some_and(|l| kubernetes::contains(l, &manifest))
        {
            drift.push(Drift::new(
                format!("k8s:{}", object_id(&manifest)),
                if live.is_some() { "spec" } else { "exists" },
                // Never a private key in a drift report.
                webhook_tls::redact(&manifest),
                live.as_ref().map_or(Value::Null, webhook_tls::redact),
            ));
        }
    }
    Ok(ctx.observed(BTreeMap::new(), drift))
}

async fn delete(
    ctx: &mut PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
) -> Result<PhaseOutput, FunctionError> {
    let cluster = ctx.names.cluster();
    let exists = super::common::cluster_reachable(eks, &cluster).await?;
    if exists && ctx.optional(outputs::CLUSTER_ENDPOINT)?.is_some() {
        let client = ctx.kube_client().await?;
        let deleted = kubernetes::delete_all(&client, &manifests(ctx, &Certs::new())?).await?;
        ctx.cluster_writes(deleted);
    }
    ctx.forget_all().await?;
    ctx.finish(true, BTreeMap::new()).await
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
