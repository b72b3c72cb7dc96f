//! The `addons` phase: EKS managed add-ons and the pod identity associations of workload roles.
//!
//! - `ensure` (one item = one add-on, or every add-on when the workflow sends no item):
//!   resolves the version (`latest` = the newest version `DescribeAddonVersions` lists as
//!   compatible with the cluster's Kubernetes version; a pinned version must be listed), renders
//!   the configuration values (`vpc-cni` always gets `enableNetworkPolicy: "true"`), gives the
//!   EBS CSI driver its role (IRSA `serviceAccountRoleArn`, or a pod identity association), and
//!   creates the add-on with `resolveConflicts: OVERWRITE`, or updates one whose version,
//!   configuration or role differs. The add-on API may refuse for a few minutes after the
//!   cluster turns ACTIVE: that is `Tenantry.Retryable`.
//!   Without an item it also creates the pod identity associations of the other workload roles
//!   (Pod Identity platforms) and deletes add-ons of the platform the spec no longer names.
//!   Ready once every targeted add-on is ACTIVE; the workflow polls by calling `ensure` again.
//!   DEGRADED is not ready: CoreDNS reports it until its pods run (nodes, and with Calico a pod
//!   network), so it is polled again, and one DEGRADED longer than
//!   [`addon::DEGRADED_GRACE_SECS`] after its last change fails with its health issues. What
//!   is compared, and how an add-on is made, updated and judged ready, is the catalogue's
//!   [`crate::resources::addon`].
//! - `observe`: the same walk as `ensure`, in report mode: a missing add-on, one installed by
//!   someone else, a version, configuration or role that differs; without an item, also the
//!   controllers' pod identity associations (missing, another role, or no longer wanted) and
//!   add-ons of the platform the spec no longer names.
//! - `delete`: deletes the platform's add-ons and associations, ready once they are gone.

use super::{aws_error, Action, PhaseContext, PhaseInput, PhaseOutput};
use crate::deps::Deps;
use crate::error::{ErrorType, FunctionError};
use crate::naming::{self, TAG_COMPONENT, TAG_PLATFORM};
use crate::phases::outputs::{self, OutputMap};
use crate::plan::Phase;
use crate::policies::{enabled_service_accounts, SERVICE_ACCOUNTS};
use crate::resources::addon::{self, Desired};
use crate::resources::pod_identity_association::{self as pod_identity, Created};
use crate::resources::Kind;
use crate::spec::{AddonSpec, Cni, PlatformSpec, TrustMechanism, ADDON_VERSION_LATEST};
use aws_sdk_eks::types::{Addon, AddonStatus};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The `tenantry:component` tag value of this phase's resources.
pub const COMPONENT: &str = "addons";
/// The add-on that runs the EBS CSI driver, and its controller's service account.
const EBS_CSI: &str = "aws-ebs-csi-driver";

pub async fn handle(input: PhaseInput, deps: &Deps) -> Result<PhaseOutput, FunctionError> {
    run(PhaseContext::load(Phase::Addons, input, deps).await?).await
}

/// Runs the phase's action in a loaded context.
pub async fn run(mut ctx: PhaseContext<'_>) -> Result<PhaseOutput, FunctionError> {
    let eks = ctx.clients.eks().clone();
    match ctx.input.action {
        Action::Ensure | Action::Observe => converge(&mut ctx, &eks).await,
        Action::Delete => delete(&mut ctx, &eks).await,
    }
}

/// The add-ons this invocation handles: the item, or every add-on of the spec.
fn targets(ctx: &PhaseContext<'_>) -> Result<Vec<AddonSpec>, FunctionError> {
    let mut seen = BTreeSet::new();
    let addons: Vec<AddonSpec> = ctx
        .spec
        .effective_addons()
        .into_iter()
        .filter(|a| seen.insert(a.name.clone()))
        .collect();
    match &ctx.input.item {
        None => Ok(addons),
        Some(item) => addons
            .into_iter()
            .find(|a| &a.name == item)
            .map(|a| vec![a])
            .ok_or_else(|| {
                FunctionError::new(
                    ErrorType::InvalidRequest,
                    format!(
                        "item {item:?}: the spec of platform {:?} names no add-on of that name",
                        ctx.platform_id()
                    ),
                )
            }),
    }
}

// ----- desired state (pure) -----

/// Sort key of an add-on version such as `v1.19.0-eksbuild.1`: its numbers in order.
pub fn version_key(version: &str) -> Vec<u64> {
    version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(u64::MAX))
        .collect()
}

/// Picks the version to install from the versions compatible with the cluster.
pub fn choose_version(
    addon: &AddonSpec,
    kubernetes_version: &str,
    compatible: &[String],
) -> Result<String, FunctionError> {
    if addon.version == ADDON_VERSION_LATEST {
        return compatible
            .iter()
            .max_by_key(|v| version_key(v))
            .cloned()
            .ok_or_else(|| {
                FunctionError::new(
                    ErrorType::InvalidRequest,
                    format!(
                        "addons[{}].version: EKS lists no version of {} for Kubernetes {kubernetes_version}",
                        addon.name, addon.name
                    ),
                )
            });
    }
    if compatible.contains(&addon.version) {
        return Ok(addon.version.clone());
    }
    let mut listed = compatible.to_vec();
    listed.sort_by_key(|v| std::cmp::Reverse(version_key(v)));
    Err(FunctionError::new(
        ErrorType::InvalidRequest,
        format!(
            "addons[{}].version: {} is not available for Kubernetes {kubernetes_version}; \
             compatible versions: {}",
            addon.name,
            addon.version,
            listed.join(", ")
        ),
    ))
}

/// The configuration values sent for an add-on (`None` = the add-on's defaults): the request's,
/// with network policy enforcement always on for the VPC CNI and, with custom networking, the
/// settings that make it read the `ENIConfig` of each node's zone.
pub fn configuration(addon: &AddonSpec, spec: &PlatformSpec) -> Option<Map<String, Value>> {
    let mut config = addon.configuration_values.clone().unwrap_or_default();
    if addon.name == "vpc-cni" && spec.cni == Cni::VpcCni {
        config.insert("enableNetworkPolicy".into(), Value::String("true".into()));
        if spec.custom_networking() {
            let env = config
                .entry("env")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(env) = env.as_object_mut() {
                for (name, value) in crate::kubernetes::custom_networking_env() {
                    env.insert(name.into(), Value::String(value.into()));
                }
            }
        }
    }
    if addon.name == "coredns" && spec.fargate.core_dns {
        // CoreDNS on Fargate: the add-on drops the node-only parts of its Deployment (the
        // `eks.amazonaws.com/compute-type: ec2` annotation) so that the `coredns` Fargate
        // profile, created before the add-on, schedules its pods.
        config.insert("computeType".into(), Value::String("Fargate".into()));
    }
    (!config.is_empty()).then_some(config)
}

/// The workload role of `purpose` that the identity phase recorded.
fn service_role(ctx: &PhaseContext<'_>, purpose: &str) -> Result<Option<String>, FunctionError> {
    let roles = ctx.optional(outputs::SERVICE_ROLE_ARNS)?;
    Ok(roles.and_then(|mut roles| roles.remove(purpose)))
}

/// The cluster's version as the cluster phase recorded it (the spec's before the cluster exists).
fn kubernetes_version(ctx: &PhaseContext<'_>) -> Result<String, FunctionError> {
    let recorded = ctx.optional(outputs::CLUSTER_VERSION)?;
    Ok(recorded.unwrap_or_else(|| ctx.spec.kubernetes_version.clone()))
}

async fn desired(
    ctx: &PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
    addon: &AddonSpec,
) -> Result<Desired, FunctionError> {
    let k8s = kubernetes_version(ctx)?;
    let compatible = compatible_versions(eks, &addon.name, &k8s).await?;
    let version = choose_version(addon, &k8s, &compatible)?;
    let (mut role, mut pod_identity) = (None, None);
    if addon.name == EBS_CSI {
        let arn = service_role(ctx, naming::ROLE_EBS_CSI)?;
        match ctx.spec.identity.trust() {
            TrustMechanism::Irsa => role = arn,
            TrustMechanism::PodIdentity => {
                pod_identity = arn.map(|a| (ebs_service_account().to_owned(), a))
            }
        }
    }
    Ok(Desired {
        name: addon.name.clone(),
        version,
        configuration: configuration(addon, &ctx.spec),
        role,
        pod_identity,
    })
}

fn ebs_service_account() -> &'static str {
    SERVICE_ACCOUNTS
        .iter()
        .find(|sa| sa.purpose == naming::ROLE_EBS_CSI)
        .map(|sa| sa.name)
        .unwrap_or("ebs-csi-controller-sa")
}

async fn compatible_versions(
    eks: &aws_sdk_eks::Client,
    name: &str,
    kubernetes_version: &str,
) -> Result<Vec<String>, FunctionError> {
    let out = eks
        .describe_addon_versions()
        .addon_name(name)
        .kubernetes_version(kubernetes_version)
        .send()
        .await
        .map_err(|e| aws_error("DescribeAddonVersions", e))?;
    Ok(out
        .addons()
        .iter()
        .filter(|a| a.addon_name() == Some(name))
        .flat_map(|a| a.addon_versions())
        .filter(|v| {
            v.compatibilities()
                .iter()
                .any(|c| c.cluster_version() == Some(kubernetes_version))
        })
        .filter_map(|v| v.addon_version().map(str::to_owned))
        .collect())
}

// ----- one walk: ensure and observe -----

/// Converges the targeted add-ons (and, without an item, the controllers' associations and the
/// add-ons the spec no longer names). Under `observe` the same walk reports each difference
/// through [`PhaseContext::differs`] and repairs nothing.
async fn converge(
    ctx: &mut PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
) -> Result<PhaseOutput, FunctionError> {
    let cluster = ctx.names.cluster();
    let mut ready = true;
    let mut out = OutputMap::new();
    let addons = targets(ctx)?;
    for addon in &addons {
        let want = desired(ctx, eks, addon).await?;
        let Some(current) = live_addon(ctx, eks, &cluster, &want).await? else {
            continue;
        };
        ctx.record_new(
            Kind::Addon,
            &addon.name,
            ctx.tags(COMPONENT),
            json!({ "arn": current.addon_arn(), "version": current.addon_version() }),
        )
        .await?;
        ready &= addon_ready(ctx, eks, &cluster, &want, &current).await?;
        let version = current.addon_version().map(str::to_owned);
        outputs::ADDON.insert(&mut out, &addon.name, version);
    }
    if ctx.input.item.is_none() {
        ensure_pod_identities(ctx, eks, &cluster).await?;
        let wanted: BTreeSet<&str> = addons.iter().map(|a| a.name.as_str()).collect();
        for name in our_addons(ctx, eks, &cluster, &wanted).await? {
            let resource = format!("{}/{name}", Kind::Addon);
            if ctx.differs(&resource, "exists", json!(false), json!(true)) {
                ready &= remove_addon(ctx, eks, &cluster, &name).await?;
            }
        }
    }
    ctx.finish(ready, out).await
}

/// The platform's add-on `want`, created when missing (`observe`: noted as missing, None). One
/// installed by someone else is refused (`observe`: noted as another owner's, None).
async fn live_addon(
    ctx: &mut PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    want: &Desired,
) -> Result<Option<Addon>, FunctionError> {
    let resource = format!("{}/{}", Kind::Addon, want.name);
    match addon::find(eks, cluster, &want.name).await? {
        Some(live) => {
            let what = format!("add-on {:?} on cluster {cluster:?}", want.name);
            let owned = ctx.owned(&resource, live.tags(), ErrorType::Conflict, &what)?;
            Ok(owned.then_some(live))
        }
        None if ctx.differs(&resource, "exists", json!(true), json!(false)) => Ok(Some(
            addon::create(eks, cluster, want, ctx.tags(COMPONENT)).await?,
        )),
        None => Ok(None),
    }
}

/// Ready, or applies the one update the add-on needs (EKS runs one update per add-on at a time).
/// `observe` notes the differences and does not judge readiness.
async fn addon_ready(
    ctx: &mut PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    want: &Desired,
    current: &Addon,
) -> Result<bool, FunctionError> {
    if ctx.writes() && !addon::ready(current, now_secs())? {
        return Ok(false);
    }
    let resource = format!("{}/{}", Kind::Addon, want.name);
    // Every difference is noted under `observe`; one update puts them all back.
    if ctx.repairs(&resource, want.differences(current)).is_empty() {
        return Ok(true);
    }
    tracing::info!(addon = %want.name, "updating add-on");
    addon::update(eks, cluster, want).await?;
    Ok(false)
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Pod Identity platforms: an association per enabled workload role (EBS CSI's comes with its
/// add-on). IRSA platforms: none (stale ones are deleted). `observe`: the associations that are
/// missing, point at another role, or are no longer wanted.
async fn ensure_pod_identities(
    ctx: &mut PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
    cluster: &str,
) -> Result<(), FunctionError> {
    let wanted = wanted_pod_identities(ctx)?;
    let existing = our_pod_identities(ctx, eks, cluster).await?;
    let resource = |ns: &str, sa: &str| format!("{}/{ns}/{sa}", Kind::PodIdentityAssociation);
    for (namespace, account, role) in &wanted {
        let found = existing
            .iter()
            .find(|(ns, sa, _, _)| ns == namespace && sa == account);
        let resource = resource(namespace, account);
        let association = match found {
            Some((_, _, current_role, association)) if current_role == role => {
                Some(association.clone())
            }
            Some((_, _, current_role, association)) => {
                if ctx.differs(&resource, "roleArn", json!(role), json!(current_role)) {
                    pod_identity::set_role(eks, cluster, association, role).await?;
                }
                None
            }
            None if ctx.differs(&resource, "exists", json!(true), json!(false)) => {
                let tags = ctx.tags(COMPONENT).into_iter().collect();
                match pod_identity::create(eks, cluster, namespace, account, role, tags).await? {
                    Created::Id(association) => Some(association),
                    // EKS has it already (a retried or concurrent create): the next ensure
                    // lists and records it.
                    Created::InUse => None,
                }
            }
            None => None,
        };
        if let Some(association) = association {
            let id = format!("{namespace}/{account}");
            let attributes = json!({ "associationId": association });
            let (kind, tags) = (Kind::PodIdentityAssociation, ctx.tags(COMPONENT));
            ctx.record_new(kind, &id, tags, attributes).await?;
        }
    }
    for (namespace, account, _, association) in existing {
        let unwanted = !wanted
            .iter()
            .any(|(ns, sa, _)| *ns == namespace && *sa == account);
        let resource = resource(&namespace, &account);
        if unwanted && ctx.differs(&resource, "exists", json!(false), json!(true)) {
            let (ns, sa) = (namespace.as_str(), account.as_str());
            remove_pod_identity(ctx, eks, cluster, ns, sa, &association).await?;
        }
    }
    Ok(())
}

/// `(namespace, service account, role)` of the associations Tenantry makes: one per enabled
/// workload role on Pod Identity platforms (EBS CSI's comes with its add-on), none with IRSA.
fn wanted_pod_identities(
    ctx: &PhaseContext<'_>,
) -> Result<Vec<(String, String, String)>, FunctionError> {
    if ctx.spec.identity.trust() == TrustMechanism::Irsa {
        return Ok(Vec::new());
    }
    let roles = ctx
        .optional(outputs::SERVICE_ROLE_ARNS)?
        .unwrap_or_default();
    Ok(enabled_service_accounts(&ctx.spec)
        .into_iter()
        .filter(|sa| sa.purpose != naming::ROLE_EBS_CSI)
        .filter_map(|sa| {
            let role = roles.get(sa.purpose)?.clone();
            Some((sa.namespace.to_owned(), sa.name.to_owned(), role))
        })
        .collect())
}

/// `(namespace, service account, role, association id)` of the platform's associations (the
/// ones Tenantry tagged; those an add-on owns are the add-on's).
async fn our_pod_identities(
    ctx: &PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
    cluster: &str,
) -> Result<Vec<(String, String, String, String)>, FunctionError> {
    // Only the controllers' namespaces can hold this phase's associations (tenants may not use
    // them): tenants' associations are not described here, so a check's cost does not grow
    // with them.
    let controller = |ns: &str| SERVICE_ACCOUNTS.iter().any(|s| s.namespace == ns);
    let ids: Vec<String> = pod_identity::list(eks, cluster, None)
        .await?
        .into_iter()
        .filter(|a| a.owner_arn.is_none() && controller(&a.namespace))
        .map(|a| a.association_id)
        .collect();
    let mut out = Vec::new();
    for id in ids {
        let Some(a) = pod_identity::describe(eks, cluster, &id).await? else {
            continue;
        };
        // Only this phase's: tenant associations carry the platform tag too.
        let tag = |k: &str| a.tags().and_then(|t| t.get(k)).map(String::as_str);
        if tag(TAG_PLATFORM) == Some(ctx.platform_id()) && tag(TAG_COMPONENT) == Some(COMPONENT) {
            out.push((
                a.namespace().unwrap_or_default().to_owned(),
                a.service_account().unwrap_or_default().to_owned(),
                a.role_arn().unwrap_or_default().to_owned(),
                id,
            ));
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
async fn remove_pod_identity(
    ctx: &mut PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    namespace: &str,
    account: &str,
    association: &str,
) -> Result<(), FunctionError> {
    pod_identity::delete(eks, cluster, association).await?;
    ctx.forget(
        Kind::PodIdentityAssociation,
        &format!("{namespace}/{account}"),
    )
    .await
}

/// Add-ons on the cluster tagged with this platform, other than those in `skip` (described
/// already by the caller).
async fn our_addons(
    ctx: &PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    skip: &BTreeSet<&str>,
) -> Result<Vec<String>, FunctionError> {
    let pages = eks
        .list_addons()
        .cluster_name(cluster)
        .into_paginator()
        .items()
        .send();
    let names = crate::resources::cluster_listing(pages, "ListAddons", |e| {
        e.is_resource_not_found_exception()
    })
    .await?;
    let mut out = Vec::new();
    for name in names.into_iter().filter(|n| !skip.contains(n.as_str())) {
        if let Some(a) = addon::find(eks, cluster, &name).await? {
            if a.tags()
                .and_then(|t| t.get(TAG_PLATFORM))
                .map(String::as_str)
                == Some(ctx.platform_id())
            {
                out.push(name);
            }
        }
    }
    Ok(out)
}

/// Deletes an add-on; true once it is gone.
async fn remove_addon(
    ctx: &mut PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    name: &str,
) -> Result<bool, FunctionError> {
    match addon::find(eks, cluster, name).await? {
        None => {
            ctx.forget(Kind::Addon, name).await?;
            Ok(true)
        }
        Some(a) if a.status() == Some(&AddonStatus::Deleting) => Ok(false),
        Some(_) => {
            match eks
                .delete_addon()
                .cluster_name(cluster)
                .addon_name(name)
                .send()
                .await
            {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) => {}
                Err(e) => return Err(aws_error("DeleteAddon", e)),
            }
            // Gone at once (the local stack) or DELETING: the next poll tells.
            if addon::find(eks, cluster, name).await?.is_some() {
                return Ok(false);
            }
            ctx.forget(Kind::Addon, name).await?;
            Ok(true)
        }
    }
}

// ----- delete -----

async fn delete(
    ctx: &mut PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
) -> Result<PhaseOutput, FunctionError> {
    let cluster = ctx.names.cluster();
    for (namespace, account, _, association) in our_pod_identities(ctx, eks, &cluster).await? {
        remove_pod_identity(ctx, eks, &cluster, &namespace, &account, &association).await?;
    }
    let mut gone = true;
    for name in our_addons(ctx, eks, &cluster, &BTreeSet::new()).await? {
        gone &= remove_addon(ctx, eks, &cluster, &name).await?;
    }
    if gone {
        ctx.forget_all().await?;
    }
    ctx.finish(gone, BTreeMap::new()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn latest_is_the_newest_numerically() {
        let list = versions(&[
            "v1.9.3-eksbuild.2",
            "v1.19.0-eksbuild.1",
            "v1.19.0-eksbuild.10",
            "v1.11.4-eksbuild.1",
        ]);
        let got = choose_version(&AddonSpec::latest("vpc-cni"), "1.35", &list).unwrap();
        assert_eq!(got, "v1.19.0-eksbuild.10");
    }

    #[test]
    fn a_pinned_version_must_be_listed_and_the_error_names_the_field() {
        let mut a = AddonSpec::latest("coredns");
        a.version = "v1.2.3-eksbuild.1".into();
        let list = versions(&["v1.11.4-eksbuild.1", "v1.12.0-eksbuild.2"]);
        let e = choose_version(&a, "1.35", &list).unwrap_err();
        assert_eq!(e.error_type, ErrorType::InvalidRequest);
        assert!(
            e.error_message.starts_with(
                "addons[coredns].version: v1.2.3-eksbuild.1 is not available for Kubernetes 1.35"
            ),
            "{}",
            e.error_message
        );
        assert!(e
            .error_message
            .ends_with("v1.12.0-eksbuild.2, v1.11.4-eksbuild.1"));
        a.version = "v1.11.4-eksbuild.1".into();
        assert_eq!(
            choose_version(&a, "1.35", &list).unwrap(),
            "v1.11.4-eksbuild.1"
        );
        assert!(choose_version(&AddonSpec::latest("coredns"), "1.35", &[]).is_err());
    }

    #[test]
    fn vpc_cni_always_gets_network_policy_unless_calico() {
        let mut a = AddonSpec::latest("vpc-cni");
        let mut user = Map::new();
        user.insert("env".into(), json!({"ENABLE_PREFIX_DELEGATION": "true"}));
        a.configuration_values = Some(user);
        let mut spec = crate::phases::scenarios::example_spec();
        spec.network.pod_cidr = None;
        let c = configuration(&a, &spec).unwrap();
        assert_eq!(c["enableNetworkPolicy"], json!("true"));
        assert_eq!(c["env"]["ENABLE_PREFIX_DELEGATION"], json!("true"));
        assert!(c["env"].get("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG").is_none());
        assert!(configuration(&AddonSpec::latest("coredns"), &spec).is_none());
        spec.cni = Cni::Calico;
        assert!(configuration(&AddonSpec::latest("vpc-cni"), &spec).is_none());
    }

    #[test]
    fn coredns_on_fargate_asks_for_the_fargate_compute_type() {
        let mut spec = crate::phases::scenarios::example_spec();
        assert!(configuration(&AddonSpec::latest("coredns"), &spec).is_none());
        spec.fargate.core_dns = true;
        let c = configuration(&AddonSpec::latest("coredns"), &spec).unwrap();
        assert_eq!(Value::Object(c), json!({"computeType": "Fargate"}));
        assert!(configuration(&AddonSpec::latest("kube-proxy"), &spec).is_none());
    }

    #[test]
    fn custom_networking_sets_the_cni_to_read_each_zones_eni_config() {
        let mut a = AddonSpec::latest("vpc-cni");
        let mut user = Map::new();
        user.insert("env".into(), json!({"ENABLE_PREFIX_DELEGATION": "true"}));
        a.configuration_values = Some(user);
        let spec = crate::phases::scenarios::example_spec();
        assert!(spec.custom_networking());
        let c = configuration(&a, &spec).unwrap();
        assert_eq!(
            c["env"],
            json!({
                "ENABLE_PREFIX_DELEGATION": "true",
                "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG": "true",
                "ENI_CONFIG_LABEL_DEF": "topology.kubernetes.io/zone",
            })
        );
    }
}
