//! The `tenant` phase (function `tenant`, plan phase `tenants`): the platform's tenant-data
//! bucket, and each tenant's role, key, namespace, pod identity association and owners' access.
//!
//! Invocations:
//! - `ensure` without an item: the bucket ([`bucket`]), once per platform.
//! - `observe` without an item: the bucket and every Active tenant in one invocation, reading
//!   the account's roles (`GetAccountAuthorizationDetails`) and the cluster's pod identity
//!   associations once for all of them, and each owner's entry once however many tenants it
//!   owns (`observe_all`); each difference names its tenant.
//! - `ensure` with item `<tenant>`: the tenant, in dependency order: its IAM role (trusted only
//!   by the `workload` service account of its namespace), its KMS key (rotation on, alias
//!   `alias/tenantry/<stem>/tenant/<name>`, a policy naming the role; a key pending deletion from
//!   an earlier offboarding is restored), the role's `tenant-access` policy (its prefix, its key,
//!   its secrets), the namespace and what lives in it ([`kubernetes::tenant_manifests`]), the pod
//!   identity association (Pod Identity platforms), and the owners' access entries
//!   ([`owners`]). Everything AWS carries the tenant's tags (`tenantry:tenant`,
//!   `tenantry:cost-centre`, and the platform's cost tags).
//! - `delete` with item `<tenant>`: the same in reverse. The data follows the tenant record's
//!   options: without `retainData` the prefix is emptied (every version and delete marker, in
//!   batches; `ready: false` until done) and the key scheduled for deletion in
//!   [`KEY_DELETION_MIN_DAYS`]; with it the prefix and key stay, the key scheduled for deletion
//!   in [`KEY_DELETION_MAX_DAYS`] only when `scheduleKeyDeletion` asks. Nothing is lost at once.
//! - `delete` without an item (decommission): every tenant as above without `retainData`, then
//!   the bucket, unless it still holds the prefix of a tenant offboarded with `retainData` (it is
//!   then kept, and said so in the outputs).
//!
//! Which tenant spec: the tenant record this request wrote (onboarding requests, recorded by
//! intake); otherwise the platform spec's tenant (the provision workflow onboards those, and
//! records them here as `Onboarding` for this request: finalize makes them `Active`).

pub mod access_logs;
pub mod bucket;
mod fargate;
pub mod owners;
mod peers;
mod pod_group;
mod registry;
mod stale;

use crate::resources::pod_identity_association::{self as pod_identity, Created};
use crate::resources::{role, Kind};
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::identity;
use super::outputs::{self, OutputMap, RetainedBucket, TenantOutput};
use super::{Action, PhaseContext, PhaseInput, PhaseOutput};
use crate::deps::Deps;
use crate::error::{ErrorType, FunctionError};
use crate::kubernetes;
use crate::naming;
use crate::plan::Phase;
use crate::policies::{self, TENANT_POLICY_NAME};
use crate::resources::kms_key::{self, TAG_PURPOSE};
use crate::spec::{TenantSpec, TrustMechanism};
use crate::store::{ResourceRecord, StoreError, TenantRecord, TenantState, Versioned};

/// Tag component of a tenant's own resources.
pub const COMPONENT: &str = "tenant";
/// Key deletion window without `retainData` (the KMS minimum).
pub const KEY_DELETION_MIN_DAYS: i32 = 7;
/// Key deletion window with `retainData` and `scheduleKeyDeletion` (the KMS maximum).
pub const KEY_DELETION_MAX_DAYS: i32 = 30;

pub async fn handle(input: PhaseInput, deps: &Deps) -> Result<PhaseOutput, FunctionError> {
    run(PhaseContext::load(Phase::Tenants, input, deps).await?).await
}

/// Runs the phase's action in a loaded context: for one tenant (`item`), or for the platform
/// (the buckets and repositories; `observe` walks every tenant too).
pub async fn run(mut ctx: PhaseContext<'_>) -> Result<PhaseOutput, FunctionError> {
    let clients = ctx.clients.clone();
    let item = ctx.input.item.clone();
    let (ready, outputs) = match (ctx.input.action, item) {
        (Action::Delete, Some(name)) => {
            let done = offboard_one(&mut ctx, &clients, &name).await?;
            // The tenant's output is cleared once it is gone.
            let mut cleared = Outputs::new();
            if done {
                outputs::TENANT.insert(&mut cleared, &name, None);
            }
            (done, cleared)
        }
        (Action::Delete, None) => decommission(&mut ctx, &clients).await?,
        (Action::Observe, None) => observe_all(&mut ctx, &clients).await?,
        (_, None) => {
            let bucket = bucket::ensure(&mut ctx, clients.s3()).await?;
            let repositories = registry::ensure_platform(&mut ctx, clients.ecr()).await?;
            let mut out = Outputs::new();
            // Written even when empty, so a dropped last repository does not linger here.
            outputs::REPOSITORY_URIS.insert(&mut out, repositories);
            let ready = bucket.is_some();
            if let Some(name) = bucket {
                outputs::TENANT_BUCKET.insert(&mut out, name);
            }
            (ready, out)
        }
        (_, Some(name)) => {
            let tenant = desired_tenant(&mut ctx, &name).await?;
            let present = peers::present(&ctx).await?;
            ensure(&mut ctx, &clients, &tenant, Owners::Converge, &present).await?
        }
    };
    ctx.finish(ready, outputs).await
}

pub use crate::aws::Clients;

/// The tags of a tenant's resources.
pub(crate) fn tenant_tags(ctx: &PhaseContext<'_>, tenant: &TenantSpec) -> BTreeMap<String, String> {
    naming::tags(&ctx.spec, Some(tenant), COMPONENT)
}

fn not_found(name: &str, platform: &str) -> FunctionError {
    FunctionError::new(
        ErrorType::InvalidRequest,
        format!("tenant {name:?} is neither recorded for platform {platform:?} nor in its spec"),
    )
}

/// The spec of the tenant to ensure (see the module docs). For a platform spec tenant, records
/// it as `Onboarding` for this request unless it is already `Active` as specified.
async fn desired_tenant(
    ctx: &mut PhaseContext<'_>,
    name: &str,
) -> Result<TenantSpec, FunctionError> {
    let platform = ctx.platform_id().to_owned();
    let request = ctx.input.request_id.clone();
    let record = ctx.store.get_tenant_record(&platform, name).await?;
    if let Some(r) = record.as_ref().filter(|r| r.value.request_id == request) {
        return Ok(r.value.spec.clone());
    }
    let Some(spec) = ctx.spec.tenants.iter().find(|t| t.name == name).cloned() else {
        return match record {
            Some(r) if r.value.state == TenantState::Active => Ok(r.value.spec),
            _ => Err(not_found(name, &platform)),
        };
    };
    let settled = record
        .as_ref()
        .is_some_and(|r| r.value.state == TenantState::Active && r.value.spec == spec);
    if ctx.writes() && !settled {
        match ctx
            .store
            .onboard_with_platform(&platform, &spec, &request, record.as_ref())
            .await
        {
            Ok(_) => {}
            Err(StoreError::VersionConflict { .. }) => {
                return Err(FunctionError::new(
                    ErrorType::Retryable,
                    format!("tenant record {name:?} changed while it was being recorded"),
                ))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(spec)
}

// --- ensure -------------------------------------------------------------------------------------

/// `observe` of the whole phase, in one invocation: the bucket, then every Active tenant of the
/// platform, each difference noted under its tenant's name (`Drift::item`, so a repair runs
/// per tenant). The account's roles and the cluster's pod identity associations are read once
/// for all tenants instead of once per tenant.
async fn observe_all(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
) -> Result<(bool, Outputs), FunctionError> {
    bucket::ensure(ctx, c.s3()).await?;
    registry::ensure_platform(ctx, c.ecr()).await?;
    let tenants: Vec<TenantSpec> = ctx
        .store
        .list_tenant_records(ctx.platform_id())
        .await?
        .into_iter()
        .filter(|r| r.value.state == TenantState::Active)
        .map(|r| r.value.spec)
        .collect();
    if !tenants.is_empty() {
        ctx.prefetched.roles = Some(role::find_all(c.iam()).await?);
        let cluster = ctx.names.cluster();
        ctx.prefetched.pod_identities = Some(all_pod_identities(c, &cluster).await?);
    }
    let present = peers::present(ctx).await?;
    for tenant in &tenants {
        ctx.observing = Some(tenant.name.clone());
        ensure(ctx, c, tenant, Owners::Later, &present).await?;
    }
    // Each owner's entry once, however many tenants it owns; a difference is noted under the
    // first of them (repairing that tenant converges the entry on every tenant it owns).
    let scopes = owners::scopes(ctx, None, None).await?;
    let cluster = ctx.names.cluster();
    let mut seen = BTreeSet::new();
    for tenant in &tenants {
        let principals: BTreeSet<String> = tenant
            .owners
            .iter()
            .filter(|p| seen.insert((*p).clone()))
            .cloned()
            .collect();
        ctx.observing = Some(tenant.name.clone());
        owners::converge(ctx, c.eks(), &cluster, &principals, &scopes).await?;
    }
    ctx.observing = None;
    Ok((ctx.drift.is_empty(), Outputs::new()))
}

type Outputs = OutputMap;

/// Whether [`ensure`] converges the tenant's owners' entries, or its caller does it afterwards
/// for many tenants at once.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Owners {
    Converge,
    Later,
}

async fn ensure(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    tenant: &TenantSpec,
    owner_entries: Owners,
    present: &BTreeMap<String, TenantSpec>,
) -> Result<(bool, Outputs), FunctionError> {
    // Before anything is created: a namespace of this name that Tenantry did not make for this
    // tenant is someone else's, and is never adopted.
    refuse_foreign_namespace(ctx, tenant).await?;
    let Some((role_arn, key_arn)) = ensure_role_and_key(ctx, c, tenant).await? else {
        return Ok((false, Outputs::new()));
    };
    let repositories = registry::ensure_tenant(ctx, c.ecr(), tenant, &role_arn, &key_arn).await?;
    // The pod security group before the profile: a pod started on Fargate without its
    // SecurityGroupPolicy would get the cluster security group, open to every node pod.
    let (pod_group, groups_ready) = pod_group::ensure(ctx, c, tenant, present).await?;
    let on_fargate = match (&tenant.fargate, &pod_group) {
        (Some(_), None) if ctx.writes() => false,
        _ => fargate::ensure(ctx, c, tenant).await?,
    };
    let group = pod_group.as_deref();
    let in_cluster = ensure_in_cluster(ctx, c, tenant, &role_arn, group, present).await?;
    if owner_entries == Owners::Converge {
        let cluster = ctx.names.cluster();
        let scopes = owners::scopes(ctx, Some(tenant), None).await?;
        let principals: BTreeSet<String> = tenant.owners.iter().cloned().collect();
        owners::converge(ctx, c.eks(), &cluster, &principals, &scopes).await?;
    }
    let given = TenantOutput {
        role_arn,
        key_arn,
        namespace: tenant.name.clone(),
        bucket: ctx.names.bucket(),
        s3_prefix: tenant.effective_s3_prefix(),
        repositories,
    };
    let mut out = Outputs::new();
    outputs::TENANT.insert(&mut out, &tenant.name, Some(given));
    Ok((in_cluster && on_fargate && groups_ready, out))
}

/// The tenant's role and key, `(role ARN, key ARN)`; `None` while one is not there yet. The key
/// policy names the role, and the role's policy names the key: the role is created first with
/// its trust alone, then the key, then the role's permissions.
async fn ensure_role_and_key(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    tenant: &TenantSpec,
) -> Result<Option<(String, String)>, FunctionError> {
    let role = desired_role(ctx, tenant, None)?;
    if !identity::role_exists(ctx, c.iam(), &role.name).await? {
        let bare = role::Desired {
            inline: BTreeMap::new(),
            ..role.clone()
        };
        if identity::ensure_role(ctx, c.iam(), &bare).await?.is_none() {
            return Ok(None);
        }
    }
    let role_arn = ctx.target().role_arn(&role.name);
    let key_arn = match tenant.own_kms_key {
        true => {
            let key = desired_key(ctx, tenant, &role_arn);
            match kms_key::converge(ctx, c.kms(), &key).await? {
                Some(meta) => meta.arn.unwrap_or_default(),
                None => return Ok(None),
            }
        }
        // Without its own key the tenant uses the platform data key, through S3 and Secrets
        // Manager only: what it can decrypt is still bounded by the objects and secrets its
        // role may read.
        false => ctx.output(outputs::DATA_KEY_ARN)?,
    };
    let role = desired_role(ctx, tenant, Some(&key_arn))?;
    let role_arn = identity::ensure_role(ctx, c.iam(), &role).await?;
    Ok(role_arn.map(|role_arn| (role_arn, key_arn)))
}

/// The tenant's objects in the cluster (namespace, SecurityGroupPolicy, RBAC, policies, quotas,
/// service account) and its pod identity; true when all are in place.
async fn ensure_in_cluster(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    tenant: &TenantSpec,
    role_arn: &str,
    pod_group: Option<&str>,
    present: &BTreeMap<String, TenantSpec>,
) -> Result<bool, FunctionError> {
    let irsa = ctx.spec.identity.trust() == TrustMechanism::Irsa;
    let mut rendered = kubernetes::tenant_manifests(&ctx.spec, tenant, irsa.then_some(role_arn));
    if let Some(group) = pod_group {
        // Right after the namespace: applied before the owners can start a pod.
        let policy = kubernetes::security_group_policy(&ctx.spec, tenant, group);
        rendered.insert(1, policy);
    }
    stale::prune(ctx, tenant, &rendered).await?;
    let (manifests, waiting) = peers::applicable(ctx, rendered, present).await?;
    let in_cluster = converge_manifests(ctx, tenant, &manifests).await? && !waiting;
    let cluster = ctx.names.cluster();
    match irsa {
        false => ensure_pod_identity(ctx, c, &cluster, tenant, role_arn).await?,
        true => remove_pod_identity(ctx, c, &cluster, tenant).await?,
    }
    Ok(in_cluster)
}

/// The tenant's namespace as it is in the cluster, if it exists.
async fn live_namespace(
    client: &kubernetes::Client,
    tenant: &TenantSpec,
) -> Result<Option<Value>, FunctionError> {
    let namespace = json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": tenant.name },
    });
    kubernetes::get(client, &namespace).await
}

/// Fails (as an invalid request, so the state machine does not retry) when the tenant's
/// namespace exists without the labels Tenantry gives its own.
async fn refuse_foreign_namespace(
    ctx: &PhaseContext<'_>,
    tenant: &TenantSpec,
) -> Result<(), FunctionError> {
    let client = ctx.kube_client().await?;
    match live_namespace(&client, tenant).await? {
        Some(live) => match kubernetes::foreign_namespace(&ctx.spec, tenant, &live) {
            Some(why) => Err(FunctionError::new(ErrorType::InvalidRequest, why)),
            None => Ok(()),
        },
        None => Ok(()),
    }
}

/// The tenant's role; without `key_arn`, its trust alone.
fn desired_role(
    ctx: &PhaseContext<'_>,
    tenant: &TenantSpec,
    key_arn: Option<&str>,
) -> Result<role::Desired, FunctionError> {
    let t = ctx.target();
    let issuer = ctx.optional(outputs::OIDC_ISSUER)?;
    if ctx.spec.identity.trust() == TrustMechanism::Irsa && issuer.is_none() {
        return Err(FunctionError::new(
            ErrorType::Terminal,
            format!(
                "tenant {:?}: the cluster's OIDC issuer is not recorded yet (the cluster phase \
                 records it); an IRSA tenant role cannot be trusted without it",
                tenant.name
            ),
        ));
    }
    let inline = key_arn
        .map(|key| {
            BTreeMap::from([(
                TENANT_POLICY_NAME.to_owned(),
                policies::tenant_role_policy(&t, &t.names.bucket(), tenant, key),
            )])
        })
        .unwrap_or_default();
    Ok(role::Desired {
        purpose: format!("tenant/{}", tenant.name),
        name: t.names.tenant_role(&tenant.name),
        description: format!("Tenantry {}: tenant {}", t.names.stem(), tenant.name),
        trust: policies::tenant_trust(&t, issuer.as_deref(), tenant),
        managed: BTreeSet::new(),
        inline,
        tags: tenant_tags(ctx, tenant),
    })
}

fn desired_key(ctx: &PhaseContext<'_>, tenant: &TenantSpec, role_arn: &str) -> kms_key::Desired {
    let mut tags = tenant_tags(ctx, tenant);
    tags.insert(TAG_PURPOSE.to_owned(), format!("tenant/{}", tenant.name));
    kms_key::Desired {
        alias: ctx.names.tenant_kms_alias(&tenant.name),
        description: format!(
            "Tenantry {}: tenant {} data and secrets",
            ctx.names.stem(),
            tenant.name
        ),
        policy: policies::tenant_key_policy(&ctx.target(), role_arn),
        tags,
    }
}

/// Converges the tenant's objects, one walk for `ensure` and `observe` (see
/// [`super::objects::converge`]), and records them. Returns whether the cluster holds them all.
async fn converge_manifests(
    ctx: &mut PhaseContext<'_>,
    tenant: &TenantSpec,
    manifests: &[Value],
) -> Result<bool, FunctionError> {
    let client = ctx.kube_client().await?;
    let mut complete = true;
    for manifest in manifests {
        complete &= super::objects::converge(ctx, &client, manifest).await?;
    }
    for manifest in manifests {
        let kind = super::objects::object_kind(manifest)?;
        let id = super::objects::object_id(manifest);
        let mut record = ResourceRecord::new(kind, id, ctx.phase.as_str());
        record.tenant = Some(tenant.name.clone());
        ctx.record(record).await?;
    }
    Ok(complete)
}

/// The tenant's association (`<namespace>/workload`): `(association id, role ARN)`.
async fn find_pod_identity(
    ctx: &PhaseContext<'_>,
    c: &Clients,
    cluster: &str,
    tenant: &TenantSpec,
) -> Result<Option<(String, String)>, FunctionError> {
    let (namespace, account) = policies::tenant_service_account(tenant);
    let id = match &ctx.prefetched.pod_identities {
        Some(all) => all
            .get(&(namespace.to_owned(), account.to_owned()))
            .cloned(),
        None => pod_identity::list(c.eks(), cluster, Some((&namespace, &account)))
            .await?
            .into_iter()
            .next()
            .map(|a| a.association_id),
    };
    let Some(id) = id else { return Ok(None) };
    // Gone between the list and the describe: as good as never found.
    Ok(pod_identity::describe(c.eks(), cluster, &id)
        .await?
        .map(|a| (id, a.role_arn().unwrap_or_default().to_owned())))
}

/// Every pod identity association of the cluster, `(namespace, service account)` → id: one
/// paged `ListPodIdentityAssociations` for all tenants.
async fn all_pod_identities(
    c: &Clients,
    cluster: &str,
) -> Result<BTreeMap<(String, String), String>, FunctionError> {
    Ok(pod_identity::list(c.eks(), cluster, None)
        .await?
        .into_iter()
        .map(|a| ((a.namespace, a.service_account), a.association_id))
        .collect())
}

async fn ensure_pod_identity(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    cluster: &str,
    tenant: &TenantSpec,
    role_arn: &str,
) -> Result<(), FunctionError> {
    let (namespace, account) = policies::tenant_service_account(tenant);
    let id = format!("{namespace}/{account}");
    let resource = format!("eks:pod-identity-association/{id}");
    let association = match find_pod_identity(ctx, c, cluster, tenant).await? {
        Some((association, role)) if role == role_arn => association,
        Some((association, role)) => {
            if ctx.differs(&resource, "roleArn", json!(role_arn), json!(role)) {
                pod_identity::set_role(c.eks(), cluster, &association, role_arn).await?;
            }
            association
        }
        None => {
            if !ctx.differs(&resource, "exists", json!(true), json!(false)) {
                return Ok(());
            }
            let tags = tenant_tags(ctx, tenant).into_iter().collect();
            match pod_identity::create(c.eks(), cluster, &namespace, &account, role_arn, tags)
                .await?
            {
                Created::Id(association) => association,
                // Created meanwhile by a retry of this invocation.
                Created::InUse => {
                    return Err(FunctionError::new(
                        ErrorType::Retryable,
                        format!("pod identity association {id} is being created"),
                    ))
                }
            }
        }
    };
    let mut record = ResourceRecord::new(Kind::PodIdentityAssociation, &id, ctx.phase.as_str());
    record.tags = tenant_tags(ctx, tenant);
    record.attributes = Some(json!({ "associationId": association }));
    ctx.record(record).await
}

async fn remove_pod_identity(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    cluster: &str,
    tenant: &TenantSpec,
) -> Result<(), FunctionError> {
    let (namespace, account) = policies::tenant_service_account(tenant);
    let id = format!("{namespace}/{account}");
    if let Some((association, _)) = find_pod_identity(ctx, c, cluster, tenant).await? {
        if ctx.differs(
            &format!("eks:pod-identity-association/{id}"),
            "exists",
            json!(false),
            json!(true),
        ) {
            pod_identity::delete(c.eks(), cluster, &association).await?;
        }
    }
    ctx.forget(Kind::PodIdentityAssociation, &id).await
}

// --- delete -------------------------------------------------------------------------------------

/// What offboarding does with a tenant's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataOptions {
    pub retain_data: bool,
    pub schedule_key_deletion: bool,
}

impl DataOptions {
    /// The deletion window of the tenant's key: the minimum without `retainData`; with it, the
    /// maximum when `scheduleKeyDeletion` asks, otherwise none (the key is kept).
    pub fn key_deletion_days(self) -> Option<i32> {
        match (self.retain_data, self.schedule_key_deletion) {
            (false, _) => Some(KEY_DELETION_MIN_DAYS),
            (true, true) => Some(KEY_DELETION_MAX_DAYS),
            (true, false) => None,
        }
    }
}

/// Offboards the tenant the request names, with the options its record holds.
async fn offboard_one(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    name: &str,
) -> Result<bool, FunctionError> {
    let platform = ctx.platform_id().to_owned();
    let record = ctx.store.get_tenant_record(&platform, name).await?;
    let (spec, options) = match record {
        Some(r) => {
            let options = DataOptions {
                retain_data: r.value.retain_data,
                schedule_key_deletion: r.value.schedule_key_deletion,
            };
            (r.value.spec, options)
        }
        None => return Err(not_found(name, &platform)),
    };
    let cluster = ctx.names.cluster();
    let cluster_there = super::common::cluster_reachable(c.eks(), &cluster).await?;
    offboard(ctx, c, &spec, options, cluster_there).await
}

/// Removes a tenant in reverse order; returns whether it is done (false: call again). Without
/// the cluster (`cluster_there` false) its in-cluster side and access are gone with it.
pub(crate) async fn offboard(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    tenant: &TenantSpec,
    options: DataOptions,
    cluster_there: bool,
) -> Result<bool, FunctionError> {
    let cluster = ctx.names.cluster();
    if cluster_there {
        // The profile first: its pods would otherwise keep running on Fargate while the
        // namespace goes.
        if !fargate::remove(ctx, c, tenant).await? {
            return Ok(false);
        }
        let scopes = owners::scopes(ctx, None, Some(&tenant.name)).await?;
        let principals: BTreeSet<String> = tenant.owners.iter().cloned().collect();
        owners::converge(ctx, c.eks(), &cluster, &principals, &scopes).await?;
        remove_pod_identity(ctx, c, &cluster, tenant).await?;
        let rendered = kubernetes::tenant_manifests(&ctx.spec, tenant, None);
        stale::prune(ctx, tenant, &rendered).await?;
        peers::remove(ctx, tenant).await?;
        if !delete_namespace(ctx, tenant).await? {
            return Ok(false);
        }
    }
    // After the namespace, whose pods held the group (with the cluster or without it).
    let present = peers::present(ctx).await?;
    if !pod_group::remove(ctx, c, tenant, &present).await? {
        return Ok(false);
    }
    let policy = kubernetes::security_group_policy(&ctx.spec, tenant, "");
    ctx.forget(
        Kind::SecurityGroupPolicy,
        &super::objects::object_id(&policy),
    )
    .await?;
    // The objects' ids do not depend on the role (only the IRSA annotation does).
    for manifest in kubernetes::tenant_manifests(&ctx.spec, tenant, None) {
        let kind = super::objects::object_kind(&manifest)?;
        ctx.forget(kind, &super::objects::object_id(&manifest))
            .await?;
    }
    // Gone with the cluster, if it is.
    let profile = ctx.names.tenant_fargate_profile(&tenant.name);
    ctx.forget(Kind::FargateProfile, &profile).await?;
    // Before the role: their policies name it.
    registry::remove_tenant(ctx, c.ecr(), tenant, options.retain_data).await?;
    let role = ctx.names.tenant_role(&tenant.name);
    identity::delete_role(ctx, c.iam(), &role).await?;
    if !options.retain_data {
        let bucket = ctx.names.bucket();
        if !bucket::empty_prefix(c.s3(), &bucket, &tenant.effective_s3_prefix()).await? {
            return Ok(false);
        }
    }
    if tenant.own_kms_key {
        release_key(ctx, c, tenant, options.key_deletion_days()).await?;
    }
    Ok(true)
}

/// Deletes the namespace (and with it everything in it); true once it is gone.
async fn delete_namespace(
    ctx: &mut PhaseContext<'_>,
    tenant: &TenantSpec,
) -> Result<bool, FunctionError> {
    let client = ctx.kube_client().await?;
    let namespace = json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": tenant.name },
    });
    let Some(live) = live_namespace(&client, tenant).await? else {
        return Ok(true);
    };
    if let Some(why) = kubernetes::foreign_namespace(&ctx.spec, tenant, &live) {
        // Never Tenantry's to delete: the tenant is gone as far as Tenantry is concerned.
        tracing::warn!(tenant = %tenant.name, "namespace left in place: {why}");
        return Ok(true);
    }
    if !ctx.differs(
        &format!("k8s:namespace/{}", tenant.name),
        "exists",
        json!(false),
        json!(true),
    ) {
        return Ok(true);
    }
    if kubernetes::delete(&client, &namespace).await? {
        ctx.cluster_writes(1);
    }
    // Namespace deletion finalizes asynchronously (pods terminate first).
    Ok(kubernetes::get(&client, &namespace).await?.is_none())
}

/// Hands the tenant's key (found by alias, or by tags after a crash) over: scheduled for
/// deletion in `days` when given, kept otherwise, and out of the platform's inventory either way
/// (a kept key is the tenant's retained data, which the tenant record accounts for). The alias
/// stays, so that onboarding the tenant again within the window restores the key.
async fn release_key(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    tenant: &TenantSpec,
    days: Option<i32>,
) -> Result<(), FunctionError> {
    let alias = ctx.names.tenant_kms_alias(&tenant.name);
    let purpose = format!("tenant/{}", tenant.name);
    // The aliased key; and only when an onboarding may have crashed between creating a key and
    // aliasing it (its marker is in the inventory), the keys tagged for this tenant.
    let mut keys = Vec::new();
    if ctx.is_known(Kind::KmsKeyPending, &alias) {
        keys = kms_key::tagged(ctx, c.kms(), COMPONENT)
            .await?
            .into_iter()
            .filter(|(_, p)| *p == purpose)
            .map(|(meta, _)| meta)
            .collect();
    }
    if let Some(meta) = kms_key::describe(c.kms(), &alias).await? {
        if !keys.iter().any(|k| k.key_id() == meta.key_id()) {
            keys.push(meta);
        }
    }
    for meta in keys {
        let pending = meta.key_state() == Some(&aws_sdk_kms::types::KeyState::PendingDeletion);
        if let Some(days) = days.filter(|_| !pending) {
            if ctx.differs(
                &format!("kms:key/{}", meta.key_id()),
                "keyState",
                json!("PendingDeletion"),
                json!(meta.key_state().map(|s| s.as_str())),
            ) {
                kms_key::schedule_deletion(c.kms(), meta.key_id(), days).await?;
            }
        }
        ctx.forget(Kind::KmsKey, meta.key_id()).await?;
    }
    ctx.forget(Kind::KmsKeyPending, &alias).await?;
    ctx.forget(Kind::KmsAlias, &alias).await
}

/// Every tenant still on the platform: the records not yet offboarded and the spec's tenants
/// without a record.
async fn remaining_tenants(
    ctx: &PhaseContext<'_>,
) -> Result<(Vec<TenantSpec>, Vec<Versioned<TenantRecord>>), FunctionError> {
    let (tenants, records) = tenants_in(ctx, |s| s != TenantState::Offboarded).await?;
    Ok((tenants.into_values().collect(), records))
}

/// The spec's tenants overlaid by the recorded ones: a record whose state `keep` accepts
/// replaces the spec's tenant of its name, any other removes it. Also the records.
async fn tenants_in(
    ctx: &PhaseContext<'_>,
    keep: impl Fn(TenantState) -> bool,
) -> Result<(BTreeMap<String, TenantSpec>, Vec<Versioned<TenantRecord>>), FunctionError> {
    let records = ctx.store.list_tenant_records(ctx.platform_id()).await?;
    let mut out: BTreeMap<String, TenantSpec> = ctx
        .spec
        .tenants
        .iter()
        .map(|t| (t.name.clone(), t.clone()))
        .collect();
    for r in &records {
        if keep(r.value.state) {
            out.insert(r.value.name.clone(), r.value.spec.clone());
        } else {
            out.remove(&r.value.name);
        }
    }
    Ok((out, records))
}

/// Decommission: offboards every remaining tenant (data not retained), then removes the bucket
/// unless a tenant offboarded earlier with `retainData` still has data in it.
async fn decommission(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
) -> Result<(bool, Outputs), FunctionError> {
    let (tenants, records) = remaining_tenants(ctx).await?;
    let options = DataOptions {
        retain_data: false,
        schedule_key_deletion: false,
    };
    let cluster_there = super::common::cluster_reachable(c.eks(), &ctx.names.cluster()).await?;
    for tenant in &tenants {
        mark_offboarding(ctx, tenant, &records).await?;
        if !offboard(ctx, c, tenant, options, cluster_there).await? {
            return Ok((false, Outputs::new()));
        }
    }
    registry::remove_platform(ctx, c.ecr()).await?;
    fargate::remove_pod_role(ctx, c).await?;
    let bucket = ctx.names.bucket();
    let mut retained = Vec::new();
    for r in records
        .iter()
        .filter(|r| r.value.state == TenantState::Offboarded && r.value.retain_data)
    {
        let prefix = r.value.spec.effective_s3_prefix();
        if bucket::holds_data(c.s3(), &bucket, &prefix).await? {
            retained.push(prefix);
        }
    }
    if !retained.is_empty() {
        // Handed over like the retained keys: kept, and out of the platform's inventory.
        tracing::warn!(%bucket, ?retained, "keeping the tenant-data bucket: it holds retained tenant data");
        ctx.forget(Kind::Bucket, &bucket).await?;
        // Its access logs stay with it: the record of who read the retained data.
        let logs = ctx.names.access_log_bucket();
        ctx.forget(Kind::Bucket, &logs).await?;
        let kept = RetainedBucket {
            bucket,
            prefixes: retained,
            access_log_bucket: logs,
        };
        let mut out = Outputs::new();
        outputs::RETAINED_BUCKET.insert(&mut out, kept);
        return Ok((true, out));
    }
    if !bucket::empty_prefix(c.s3(), &bucket, "").await? {
        return Ok((false, Outputs::new()));
    }
    bucket::delete(ctx, c.s3(), &bucket).await?;
    if !access_logs::remove(ctx, c.s3()).await? {
        return Ok((false, Outputs::new()));
    }
    Ok((true, Outputs::new()))
}

/// Records a tenant the decommission removes as `Offboarding` for this request (finalize makes
/// it `Offboarded`), unless it already is.
async fn mark_offboarding(
    ctx: &PhaseContext<'_>,
    tenant: &TenantSpec,
    records: &[Versioned<TenantRecord>],
) -> Result<(), FunctionError> {
    let request = &ctx.input.request_id;
    let current = records.iter().find(|r| r.value.name == tenant.name);
    if current.is_some_and(|r| &r.value.request_id == request) || !ctx.writes() {
        return Ok(());
    }
    match ctx
        .store
        .offboard_with_platform(ctx.platform_id(), tenant, request, current)
        .await
    {
        Ok(_) => Ok(()),
        Err(StoreError::VersionConflict { .. }) => Err(FunctionError::new(
            ErrorType::Retryable,
            format!(
                "tenant record {:?} changed while it was being recorded",
                tenant.name
            ),
        )),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_kept_only_when_the_data_is_retained_and_no_deletion_is_asked() {
        let options = |retain_data, schedule_key_deletion| DataOptions {
            retain_data,
            schedule_key_deletion,
        };
        assert_eq!(options(false, false).key_deletion_days(), Some(7));
        assert_eq!(options(false, true).key_deletion_days(), Some(7));
        assert_eq!(options(true, true).key_deletion_days(), Some(30));
        assert_eq!(options(true, false).key_deletion_days(), None);
    }
}
