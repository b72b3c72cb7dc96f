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
//! - `observe`: the same walk in report mode ([`objects::converge`]): every object that is
//!   missing or not as applied, and every recorded object the spec no longer asks for, as drift.
//! - `delete`: deletes the objects while the cluster exists (deleting the cluster removes them
//!   anyway); the system namespaces are only ever labelled, never deleted.

use super::objects::{self, object_id, object_kind, stub};
use super::{Action, PhaseContext, PhaseInput, PhaseOutput};
use crate::deps::Deps;
use crate::error::FunctionError;
use crate::kubernetes;
use crate::kubernetes::webhook_tls::{self, WebhookTls};
use crate::naming;
use crate::phases::outputs::{self, OutputMap};
use crate::plan::Phase;
use crate::spec::TrustMechanism;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

/// The item of the workflow's step that applies Calico alone, before the node groups.
pub const CALICO_ITEM: &str = "calico";

pub async fn handle(input: PhaseInput, deps: &Deps) -> Result<PhaseOutput, FunctionError> {
    run(PhaseContext::load(Phase::Bootstrap, input, deps).await?).await
}

/// One action on a loaded context (the scenario tests build the context themselves).
pub async fn run(mut ctx: PhaseContext<'_>) -> Result<PhaseOutput, FunctionError> {
    match ctx.input.action {
        Action::Ensure | Action::Observe => ensure(&mut ctx).await,
        Action::Delete => {
            let eks = ctx.clients.eks().clone();
            delete(&mut ctx, &eks).await
        }
    }
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
    let mut ready = true;
    if !desired.is_empty() {
        let client = ctx.kube_client().await?;
        ready = converge_all(ctx, &client, &desired).await?;
    }
    let mut out = OutputMap::new();
    outputs::BOOTSTRAP_OBJECTS.insert(&mut out, desired.len());
    ctx.finish(ready, out).await
}

/// Every object, one walk for `ensure` and `observe` (see [`objects::converge`]); objects
/// recorded earlier that the spec no longer asks for are removed, dependents first.
async fn ensure_all(ctx: &mut PhaseContext<'_>) -> Result<PhaseOutput, FunctionError> {
    let client = ctx.kube_client().await?;
    let recorded = ctx.recorded_for(None);
    // A certificate is made only when the walk may write it.
    let certs = webhook_certs(ctx, &client, ctx.writes()).await?;
    let desired = manifests(ctx, &certs)?;
    let ready = converge_all(ctx, &client, &desired).await?;
    let wanted: BTreeSet<String> = desired.iter().map(object_id).collect();
    for (kind, id) in recorded.iter().rev().filter(|(_, id)| !wanted.contains(id)) {
        if let Some(stub) = stub(id) {
            objects::remove(ctx, &client, &stub).await?;
        }
        ctx.forget(*kind, id).await?;
    }
    let mut out = OutputMap::new();
    outputs::BOOTSTRAP_OBJECTS.insert(&mut out, desired.len());
    ctx.finish(ready, out).await
}

/// Converges and records each object; whether they all are as desired (see
/// [`objects::converge`]).
async fn converge_all(
    ctx: &mut PhaseContext<'_>,
    client: &kube::Client,
    desired: &[Value],
) -> Result<bool, FunctionError> {
    let mut ready = true;
    for manifest in desired {
        ready &= objects::converge(ctx, client, manifest).await?;
        let (kind, id) = (object_kind(manifest)?, object_id(manifest));
        ctx.record_new(kind, &id, BTreeMap::new(), Value::Null)
            .await?;
    }
    Ok(ready)
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
