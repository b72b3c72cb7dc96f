//! The `access` phase: who may use the cluster.
//!
//! - `ensure`:
//!   - no access policy on the entry of a principal the spec does not name (neither an admin
//!     principal nor the cluster creator; entries tagged as this platform's, such as tenant
//!     owners', are their phase's): such policies are disassociated, the entry itself is kept
//!     (node roles and other tools have entries without policies). Until the cluster phase has
//!     recorded the creator (platforms provisioned before it did), no entry counts as a
//!     stranger: the creator's untagged admin entry could not be told apart;
//!   - an access entry per admin principal with `AmazonEKSClusterAdminPolicy` at cluster scope;
//!     entries of this phase the spec no longer names are deleted (entries of other components,
//!     such as tenants' namespace-scoped ones, and the cluster creator's are never touched);
//!   - the OIDC identity provider config (e.g. Azure AD: issuer, client id, username and groups
//!     claims, groups prefix). EKS cannot change a config in place: a different one is
//!     disassociated first and associated again on a later poll. Association is a cluster update
//!     that takes minutes in AWS, so `ready` is false while it is CREATING or DELETING;
//!   - one ClusterRoleBinding per group mapping (`tenantry:<kubernetesGroup>` binding
//!     `<groupsPrefix><idpGroup>` to its cluster role), applied server-side with field manager
//!     `tenantry`; bindings the spec no longer names are deleted.
//!
//!   The workflow calls it again while the identity provider associates (`ready: false`).
//! - `observe`: the same walk in report mode: missing or extra entries, an admin entry without
//!   its cluster-scoped policy, an access policy on a stranger's entry (unexpected), a provider
//!   config that differs, is missing or is no longer wanted, bindings missing, changed or no
//!   longer wanted.
//! - `delete`: bindings (while the cluster is reachable), the provider config and the entries.

use super::objects;
use super::outputs::{self, OutputMap};
use super::{Action, PhaseContext, PhaseInput, PhaseOutput};
use crate::deps::Deps;
use crate::error::{ErrorType, FunctionError};
use crate::kubernetes;
use crate::naming::{TAG_COMPONENT, TAG_PLATFORM};
use crate::plan::Phase;
use crate::resources::access_entry::{self, ADMIN_POLICY};
use crate::resources::identity_provider_config as provider;
use crate::resources::Kind;
use aws_sdk_eks::types::ConfigStatus;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The `tenantry:component` tag value of this phase's resources.
pub const COMPONENT: &str = "access";

pub async fn handle(input: PhaseInput, deps: &Deps) -> Result<PhaseOutput, FunctionError> {
    run(PhaseContext::load(Phase::Access, input, deps).await?).await
}

/// One action on a loaded context (the scenario tests build the context themselves).
pub async fn run(mut ctx: PhaseContext<'_>) -> Result<PhaseOutput, FunctionError> {
    let eks = ctx.clients.eks().clone();
    match ctx.input.action {
        Action::Ensure | Action::Observe => ensure(&mut ctx, &eks).await,
        Action::Delete => delete(&mut ctx, &eks).await,
    }
}

fn ours(ctx: &PhaseContext<'_>, tags: &std::collections::HashMap<String, String>) -> bool {
    tags.get(TAG_PLATFORM).map(String::as_str) == Some(ctx.platform_id())
        && tags.get(TAG_COMPONENT).map(String::as_str) == Some(COMPONENT)
}

async fn ensure(
    ctx: &mut PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
) -> Result<PhaseOutput, FunctionError> {
    let cluster = ctx.names.cluster();
    ensure_entries(ctx, eks, &cluster).await?;
    let idp_ready = ensure_identity_provider(ctx, eks, &cluster).await?;
    ensure_bindings(ctx).await?;
    let mut out = OutputMap::new();
    outputs::ADMIN_ACCESS_ENTRIES.insert(&mut out, ctx.spec.access.admin_principals.clone());
    ctx.finish(idp_ready, out).await
}

// ----- access entries -----

/// The access entries on the cluster, by whose they are.
#[derive(Default)]
struct Entries {
    /// This phase's (tagged with the platform and component `access`).
    ours: Vec<String>,
    /// Neither Tenantry's (no tag of this platform), nor an admin principal's, nor the cluster
    /// creator's: node roles, other tools, people. They may exist, but hold no access policy.
    strangers: Vec<String>,
}

/// The cluster's access entries, sorted by [`Entries`]. Entries of other components of this
/// platform (tenant owners') are the tenant phase's.
async fn entries(
    ctx: &PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
    cluster: &str,
) -> Result<Entries, FunctionError> {
    let Some(principals) = access_entry::list(eks, cluster).await? else {
        return Ok(Entries::default());
    };
    let creator = ctx.optional(outputs::CLUSTER_CREATOR)?;
    if creator.is_none() {
        tracing::warn!("the cluster creator is not recorded yet (the cluster phase's next ensure records it): strangers' entries are not checked");
    }
    let named = |p: &str| {
        ctx.spec.access.admin_principals.iter().any(|a| a == p) || creator.as_deref() == Some(p)
    };
    let mut out = Entries::default();
    for principal in principals {
        let Some(entry) = access_entry::describe(eks, cluster, &principal).await? else {
            continue;
        };
        let platform = entry.tags.get(TAG_PLATFORM);
        if ours(ctx, &entry.tags) {
            out.ours.push(principal);
        } else if creator.is_some()
            && platform.map(String::as_str) != Some(ctx.platform_id())
            && !named(&principal)
        {
            out.strangers.push(principal);
        }
    }
    Ok(out)
}

/// Takes every access policy from the entries of principals the spec does not name: the spec
/// says who administers the cluster, and an entry's policies are how EKS grants it. The entries
/// themselves stay (a node role's, or another tool's with Kubernetes groups, are legitimate).
/// `observe` names each such grant.
async fn disarm_strangers(
    ctx: &mut PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    strangers: &[String],
) -> Result<(), FunctionError> {
    for principal in strangers {
        let policies = access_entry::policies(eks, cluster, principal).await?;
        let resource = format!("{}/{principal}", Kind::AccessEntry);
        // Desired null: a grant nothing desires is classified as unexpected.
        if policies.is_empty()
            || !ctx.differs(&resource, "accessPolicies", Value::Null, json!(policies))
        {
            continue;
        }
        for policy in policies {
            let arn = &policy.policy_arn;
            tracing::warn!(%principal, policy = %arn, "removing an access policy from a principal the platform spec does not name");
            access_entry::disassociate_policy(eks, cluster, principal, arn).await?;
        }
    }
    Ok(())
}

/// The admin principals' entries, each with the cluster-scoped admin policy; entries of this
/// phase the spec no longer names are deleted. `observe` names a set of entries that differs
/// (on the cluster) and an admin entry without its policy.
async fn ensure_entries(
    ctx: &mut PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
    cluster: &str,
) -> Result<(), FunctionError> {
    let Entries {
        ours: existing,
        strangers,
    } = entries(ctx, eks, cluster).await?;
    disarm_strangers(ctx, eks, cluster, &strangers).await?;
    let wanted = ctx.spec.access.admin_principals.clone();
    let (have, want): (BTreeSet<&String>, BTreeSet<&String>) =
        (existing.iter().collect(), wanted.iter().collect());
    let resource = format!("{}/{cluster}", Kind::Cluster);
    let repair = have != want && ctx.differs(&resource, "accessEntries", json!(want), json!(have));
    for principal in &wanted {
        if !existing.contains(principal) {
            if !repair {
                continue;
            }
            create_entry(ctx, eks, cluster, principal).await?;
        }
        ensure_admin_policy(ctx, eks, cluster, principal).await?;
        ctx.record_new(
            Kind::AccessEntry,
            principal,
            ctx.tags(COMPONENT),
            json!({ "policy": ADMIN_POLICY, "scope": "cluster" }),
        )
        .await?;
    }
    for principal in existing.iter().filter(|p| !wanted.contains(p)) {
        if repair {
            delete_entry(ctx, eks, cluster, principal).await?;
        }
    }
    Ok(())
}

/// Creates `principal`'s entry, tagged as this phase's. One that exists untagged (made by hand)
/// is kept: only its policy is made sure of.
async fn create_entry(
    ctx: &PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
) -> Result<(), FunctionError> {
    let tags = ctx.tags(COMPONENT).into_iter().collect();
    let token = format!("tenantry-{cluster}-{principal}");
    let created =
        access_entry::create(eks, cluster, principal, &BTreeSet::new(), tags, &token).await?;
    if created == access_entry::Created::Existed {
        tracing::warn!(%principal, "an access entry exists that Tenantry did not tag; associating the admin policy only");
    }
    Ok(())
}

/// The cluster-scoped admin policy on `principal`'s entry (`observe`: named when missing).
async fn ensure_admin_policy(
    ctx: &mut PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
) -> Result<(), FunctionError> {
    let policy = access_entry::policy_arn(ctx.spec.partition(), ADMIN_POLICY);
    let associated = access_entry::policies(eks, cluster, principal).await?;
    if associated
        .iter()
        .any(|a| a.policy_arn == policy && a.is_cluster_wide())
    {
        return Ok(());
    }
    let resource = format!("{}/{principal}", Kind::AccessEntry);
    let desired = json!([{ "policyArn": policy, "accessScope": "cluster" }]);
    if !ctx.differs(
        &resource,
        "accessPolicies",
        desired,
        json!("no cluster-scoped admin policy"),
    ) {
        return Ok(());
    }
    access_entry::associate_cluster_policy(eks, cluster, principal, &policy).await
}

async fn delete_entry(
    ctx: &mut PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
) -> Result<(), FunctionError> {
    access_entry::remove(eks, cluster, principal).await?;
    ctx.forget(Kind::AccessEntry, principal).await
}

// ----- identity provider -----

/// The config the spec asks for, if any.
fn wanted_provider(ctx: &PhaseContext<'_>) -> Option<provider::Desired> {
    let provider = ctx.spec.access.oidc_identity_provider.clone()?;
    Some(provider::Desired {
        provider,
        tags: ctx.tags(COMPONENT).into_iter().collect(),
    })
}

/// Ready when the wanted provider (if any) is ACTIVE and no other of ours remains. `observe`
/// names a config that differs, one no longer wanted, and a missing one.
async fn ensure_identity_provider(
    ctx: &mut PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
    cluster: &str,
) -> Result<bool, FunctionError> {
    let want = wanted_provider(ctx);
    let mut ready = true;
    let mut want_present = false;
    for name in provider::names(eks, cluster).await? {
        let Some(have) = provider::describe(eks, cluster, &name).await? else {
            continue;
        };
        if !ours(ctx, &have.tags) {
            continue;
        }
        match have.status {
            Some(ConfigStatus::Deleting) => {
                ready = false;
                continue;
            }
            Some(ConfigStatus::Creating) => ready = false,
            _ => {}
        }
        match &want {
            Some(w) if w.provider.name == name && w.differences(&have).is_empty() => {
                want_present = true;
                ctx.record_new(
                    Kind::IdentityProviderConfig,
                    &name,
                    ctx.tags(COMPONENT),
                    json!({ "issuerUrl": w.provider.issuer_url }),
                )
                .await?;
            }
            _ => {
                retire_provider(ctx, eks, cluster, want.as_ref(), &name, &have).await?;
                ready = false;
            }
        }
    }
    let Some(w) = want else { return Ok(ready) };
    if want_present || !ready {
        return Ok(ready);
    }
    let resource = format!("{}/{}", Kind::IdentityProviderConfig, w.provider.name);
    if ctx.differs(&resource, "oidc", w.oidc(), Value::Null) {
        provider::associate(eks, cluster, &w).await?;
    }
    // Association is a cluster update: the next poll sees it ACTIVE.
    Ok(false)
}

/// A config of ours other than the wanted one: its fields differ (EKS cannot change a config in
/// place, so it is disassociated first and associated again later) or it is no longer wanted.
/// `observe` names it; one still CREATING is left to finish first.
async fn retire_provider(
    ctx: &mut PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    want: Option<&provider::Desired>,
    name: &str,
    have: &provider::Live,
) -> Result<(), FunctionError> {
    let resource = format!("{}/{name}", Kind::IdentityProviderConfig);
    let (field, desired, actual) = match want {
        Some(w) if w.provider.name == name => ("oidc", w.oidc(), have.oidc.clone()),
        _ => ("exists", json!(false), json!(true)),
    };
    if ctx.differs(&resource, field, desired, actual) && have.status != Some(ConfigStatus::Creating)
    {
        tracing::info!(provider = %name, "identity provider config differs or is no longer wanted: disassociating");
        provider::disassociate(eks, cluster, name).await?;
        ctx.forget(Kind::IdentityProviderConfig, name).await?;
    }
    Ok(())
}

// ----- group bindings (Kubernetes) -----

/// Names of the ClusterRoleBindings of group mappings Tenantry manages on the cluster.
async fn managed_bindings(
    client: &kube::Client,
    platform_id: &str,
) -> Result<Vec<String>, FunctionError> {
    let api: kube::Api<ClusterRoleBinding> = kube::Api::all(client.clone());
    let selector =
        format!("app.kubernetes.io/managed-by=tenantry,tenantry.io/platform={platform_id}");
    let list = api
        .list(&kube::api::ListParams::default().labels(&selector))
        .await
        .map_err(|e| {
            FunctionError::new(
                ErrorType::Retryable,
                format!("listing ClusterRoleBindings: {e}"),
            )
        })?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|b| b.metadata.name)
        .filter(|n| n.starts_with(kubernetes::GROUP_BINDING_PREFIX))
        .collect())
}

fn binding_stub(name: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": { "name": name },
    })
}

/// One ClusterRoleBinding per group mapping; bindings the spec no longer names are deleted
/// (`observe`: named, see [`objects::converge`] and [`objects::remove`]).
async fn ensure_bindings(ctx: &mut PhaseContext<'_>) -> Result<(), FunctionError> {
    let manifests = kubernetes::access_manifests(&ctx.spec);
    if manifests.is_empty() && ctx.recorded(Kind::ClusterRoleBinding, None).is_empty() {
        // Nothing wanted and nothing recorded: no need to reach the cluster.
        return Ok(());
    }
    let client = ctx.kube_client().await?;
    let existing = managed_bindings(&client, ctx.platform_id()).await?;
    let mut wanted = BTreeSet::new();
    for m in &manifests {
        let name = m["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        objects::converge(ctx, &client, m).await?;
        ctx.record_new(
            Kind::ClusterRoleBinding,
            &name,
            BTreeMap::new(),
            json!({ "subjects": m["subjects"], "roleRef": m["roleRef"] }),
        )
        .await?;
        wanted.insert(name);
    }
    for name in existing.iter().filter(|n| !wanted.contains(*n)) {
        objects::remove(ctx, &client, &binding_stub(name)).await?;
        ctx.forget(Kind::ClusterRoleBinding, name).await?;
    }
    Ok(())
}

// ----- delete -----

async fn delete(
    ctx: &mut PhaseContext<'_>,
    eks: &aws_sdk_eks::Client,
) -> Result<PhaseOutput, FunctionError> {
    let cluster = ctx.names.cluster();
    if !super::common::cluster_reachable(eks, &cluster).await? {
        // Entries, provider configs and bindings live inside the cluster: gone with it.
        ctx.forget_all().await?;
        return ctx.finish(true, BTreeMap::new()).await;
    }
    if ctx.optional(outputs::CLUSTER_ENDPOINT)?.is_some() {
        let client = ctx.kube_client().await?;
        for name in managed_bindings(&client, ctx.platform_id()).await? {
            if kubernetes::delete(&client, &binding_stub(&name)).await? {
                ctx.cluster_writes(1);
            }
            ctx.forget(Kind::ClusterRoleBinding, &name).await?;
        }
    }
    let mut gone = true;
    for name in provider::names(eks, &cluster).await? {
        if let Some(have) = provider::describe(eks, &cluster, &name).await? {
            if ours(ctx, &have.tags) {
                if have.status != Some(ConfigStatus::Deleting) {
                    provider::disassociate(eks, &cluster, &name).await?;
                }
                gone = false;
            }
        }
    }
    for principal in entries(ctx, eks, &cluster).await?.ours {
        delete_entry(ctx, eks, &cluster, &principal).await?;
    }
    if gone {
        ctx.forget_all().await?;
    }
    ctx.finish(gone, BTreeMap::new()).await
}
