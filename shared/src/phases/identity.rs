//! The `identity` phase: the IAM roles of the platform and, once the cluster exists, its IAM OIDC
//! provider and the workload roles of its controllers.
//!
//! - Always: the cluster role (trusts EKS), the node role (trusts EC2) and, with flow logs on,
//!   the flow logs role (trusts VPC Flow Logs of this account).
//! - When the `cluster` phase has recorded `oidcIssuer` and `clusterName`: the OIDC provider for
//!   the issuer (with IRSA on) and one role per enabled controller, whose trust names exactly one
//!   service account (IRSA `sub` + `aud`, and/or Pod Identity session tags). Roles of controllers
//!   the spec turned off are deleted.
//!
//! Roles are found by their deterministic names; a role of that name without this platform's
//! tag is someone else's and is refused. Trust, inline policies, managed policy attachments and
//! tags are read and compared (as JSON values) before anything is written. Documents come from
//! [`crate::policies`]. IAM eventual consistency (a principal IAM does not know yet) is
//! `Tenantry.Retryable` ([`crate::error::classify_aws_code`]).
//!
//! `delete` removes the workload roles, the OIDC provider, then the base roles (managed policies
//! detached, inline policies and instance profiles removed first); "no such entity" is success.

use crate::resources::{oidc_provider, Kind};
use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_iam::types::Tag;
use serde_json::{json, Value};

use super::outputs::{self, OutputMap};
use super::{aws_error, Action, PhaseContext, PhaseInput, PhaseOutput};
use crate::deps::Deps;
use crate::error::{ErrorType, FunctionError};
use crate::naming::{self, TAG_COMPONENT, TAG_PLATFORM};
use crate::plan::Phase;
use crate::policies::{self, ServiceAccount, Target, SERVICE_ACCOUNTS};
use crate::store::ResourceRecord;

const COMPONENT: &str = "identity";

/// A role as it should be.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredRole {
    pub purpose: String,
    pub name: String,
    pub description: String,
    pub trust: Value,
    /// Managed policy ARNs.
    pub managed: BTreeSet<String>,
    /// Inline policies by name.
    pub inline: BTreeMap<String, Value>,
    /// Tags set at creation and kept (never removes foreign tags).
    pub tags: BTreeMap<String, String>,
}

/// The roles that do not need the cluster: cluster, node, and flow logs (when on).
pub fn base_roles(t: &Target, secrets_key_arn: Option<&str>) -> Vec<DesiredRole> {
    let names = &t.names;
    let tags = naming::tags(t.spec, None, COMPONENT);
    let stem = names.stem();
    let mut cluster_inline = BTreeMap::new();
    if let Some(key) = secrets_key_arn {
        cluster_inline.insert(
            policies::CLUSTER_SECRETS_POLICY_NAME.to_owned(),
            policies::cluster_secrets_policy(key),
        );
    }
    let mut roles = vec![
        DesiredRole {
            purpose: naming::ROLE_CLUSTER.to_owned(),
            name: names.role(naming::ROLE_CLUSTER),
            description: format!("Tenantry {stem}: EKS cluster role"),
            trust: policies::cluster_trust(t),
            managed: policies::cluster_managed_policies(t).into_iter().collect(),
            inline: cluster_inline,
            tags: tags.clone(),
        },
        DesiredRole {
            purpose: naming::ROLE_NODE.to_owned(),
            name: names.role(naming::ROLE_NODE),
            description: format!("Tenantry {stem}: node role"),
            trust: policies::node_trust(),
            managed: policies::node_managed_policies(t).into_iter().collect(),
            inline: BTreeMap::new(),
            tags: tags.clone(),
        },
    ];
    if t.spec.network.flow_logs.enabled {
        roles.push(DesiredRole {
            purpose: naming::ROLE_FLOW_LOGS.to_owned(),
            name: names.role(naming::ROLE_FLOW_LOGS),
            description: format!("Tenantry {stem}: VPC flow logs delivery"),
            trust: policies::flow_logs_trust(t),
            managed: BTreeSet::new(),
            inline: BTreeMap::from([(
                policies::FLOW_LOGS_POLICY_NAME.to_owned(),
                policies::flow_logs_policy(t),
            )]),
            tags: tags.clone(),
        });
    }
    if t.spec.uses_fargate() {
        roles.push(fargate_pods_role(t, tags));
    }
    roles
}

/// The Fargate pod execution role: what Fargate's kubelet runs as to pull images and, with
/// `fargate.logging`, to ship the pods' logs.
pub fn fargate_pods_role(t: &Target, tags: BTreeMap<String, String>) -> DesiredRole {
    let mut inline = BTreeMap::new();
    if t.spec.fargate.logging {
        inline.insert(
            policies::FARGATE_LOGS_POLICY_NAME.to_owned(),
            policies::fargate_logs_policy(t),
        );
    }
    DesiredRole {
        purpose: naming::ROLE_FARGATE_PODS.to_owned(),
        name: t.names.role(naming::ROLE_FARGATE_PODS),
        description: format!("Tenantry {}: Fargate pod execution", t.names.stem()),
        trust: policies::fargate_pods_trust(t),
        managed: policies::fargate_pods_managed_policies(t)
            .into_iter()
            .collect(),
        inline,
        tags,
    }
}

/// A controller's workload role.
pub fn service_role(t: &Target, issuer: Option<&str>, sa: &ServiceAccount) -> DesiredRole {
    DesiredRole {
        purpose: sa.purpose.to_owned(),
        name: t.names.role(sa.purpose),
        description: format!(
            "Tenantry {}: {} ({}/{})",
            t.names.stem(),
            sa.purpose,
            sa.namespace,
            sa.name
        ),
        trust: policies::workload_trust(t, issuer, sa),
        managed: policies::service_managed_policies(t, sa.purpose)
            .into_iter()
            .collect(),
        inline: policies::service_policy(t, sa.purpose)
            .map(|p| BTreeMap::from([(policies::SERVICE_POLICY_NAME.to_owned(), p)]))
            .unwrap_or_default(),
        tags: naming::tags(t.spec, None, COMPONENT),
    }
}

/// Runs the phase.
pub async fn handle(input: PhaseInput, deps: &Deps) -> Result<PhaseOutput, FunctionError> {
    run(PhaseContext::load(Phase::Identity, input, deps).await?).await
}

/// Runs the phase's action in a loaded context.
pub async fn run(mut ctx: PhaseContext<'_>) -> Result<PhaseOutput, FunctionError> {
    let iam = ctx.clients.iam.clone();
    let (ready, outputs) = match ctx.input.action {
        Action::Delete => (delete(&mut ctx, &iam).await?, BTreeMap::new()),
        _ => ensure(&mut ctx, &iam).await?,
    };
    ctx.finish(ready, outputs).await
}

/// The cluster's issuer when the cluster phase has recorded it (and the cluster's name).
fn cluster_issuer(ctx: &PhaseContext) -> Result<Option<String>, FunctionError> {
    let issuer = ctx.optional(outputs::OIDC_ISSUER)?;
    let named = ctx.optional(outputs::CLUSTER_NAME)?.is_some();
    Ok(issuer.filter(|_| named))
}

// --- ensure -------------------------------------------------------------------------------------

async fn ensure(
    ctx: &mut PhaseContext<'_>,
    iam: &aws_sdk_iam::Client,
) -> Result<(bool, OutputMap), FunctionError> {
    let mut out = OutputMap::new();
    let mut complete = true;
    let secrets_key = ctx.optional(outputs::SECRETS_KEY_ARN)?;
    for role in base_roles(&ctx.target(), secrets_key.as_deref()) {
        let output = match role.purpose.as_str() {
            naming::ROLE_CLUSTER => outputs::CLUSTER_ROLE_ARN,
            naming::ROLE_NODE => outputs::NODE_ROLE_ARN,
            naming::ROLE_FARGATE_PODS => outputs::FARGATE_POD_ROLE_ARN,
            _ => outputs::FLOW_LOGS_ROLE_ARN,
        };
        match ensure_role(ctx, iam, &role).await? {
            Some(arn) => output.insert(&mut out, arn),
            None => complete = false,
        }
    }
    let Some(issuer) = cluster_issuer(ctx)? else {
        return Ok((complete, out));
    };
    if ctx.spec.identity.irsa {
        match ensure_oidc_provider(ctx, iam, &issuer).await? {
            Some(arn) => outputs::OIDC_PROVIDER_ARN.insert(&mut out, arn),
            None => complete = false,
        }
    } else {
        delete_oidc_providers(ctx, iam).await?;
    }
    let enabled = policies::enabled_service_accounts(&ctx.spec);
    let mut service = BTreeMap::new();
    for sa in &enabled {
        let role = service_role(&ctx.target(), Some(&issuer), sa);
        match ensure_role(ctx, iam, &role).await? {
            Some(arn) => {
                service.insert(sa.purpose.to_owned(), arn);
            }
            None => complete = false,
        }
    }
    for sa in SERVICE_ACCOUNTS.iter().filter(|sa| !enabled.contains(sa)) {
        let name = ctx.names.role(sa.purpose);
        delete_role(ctx, iam, &name).await?;
    }
    outputs::SERVICE_ROLE_ARNS.insert(&mut out, service);
    Ok((complete, out))
}

fn iam_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, FunctionError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder().key(k).value(v).build().map_err(|e| {
                FunctionError::new(ErrorType::Terminal, format!("building IAM tag {k}: {e}"))
            })
        })
        .collect()
}

fn not_found<E: aws_smithy_types::error::metadata::ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("NoSuchEntity")
}

fn is_not_found<E, R>(e: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    e.as_service_error().is_some_and(not_found)
}

pub(crate) async fn get_role(
    iam: &aws_sdk_iam::Client,
    name: &str,
) -> Result<Option<aws_sdk_iam::types::Role>, FunctionError> {
    match iam.get_role().role_name(name).send().await {
        Ok(out) => Ok(out.role),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(aws_error("iam:GetRole", e)),
    }
}

/// A role as Tenantry compares it: what `GetRole`, `ListAttachedRolePolicies`,
/// `ListRolePolicies` and `GetRolePolicy` return, or one entry of
/// `GetAccountAuthorizationDetails` (which returns all of it for every role at once).
#[derive(Debug, Clone, Default)]
pub struct RoleView {
    pub name: String,
    pub arn: String,
    /// The trust policy as returned (URL-encoded JSON).
    pub trust: Option<String>,
    pub boundary: Option<String>,
    pub tags: Vec<Tag>,
    pub attached: BTreeSet<String>,
    /// Inline policies by name, parsed.
    pub inline: BTreeMap<String, Value>,
}

impl RoleView {
    /// The view of one role of `GetAccountAuthorizationDetails`.
    pub fn from_detail(d: &aws_sdk_iam::types::RoleDetail) -> RoleView {
        RoleView {
            name: d.role_name().unwrap_or_default().to_owned(),
            arn: d.arn().unwrap_or_default().to_owned(),
            trust: d.assume_role_policy_document().map(str::to_owned),
            boundary: d
                .permissions_boundary()
                .and_then(|b| b.permissions_boundary_arn())
                .map(str::to_owned),
            tags: d.tags().to_vec(),
            attached: d
                .attached_managed_policies()
                .iter()
                .filter_map(|p| p.policy_arn())
                .map(str::to_owned)
                .collect(),
            inline: d
                .role_policy_list()
                .iter()
                .filter_map(|p| {
                    let doc = p.policy_document().and_then(policies::parse_returned)?;
                    Some((p.policy_name()?.to_owned(), doc))
                })
                .collect(),
        }
    }
}

/// Every role of the account, with its policies and tags: `GetAccountAuthorizationDetails`
/// (filter `Role`), paged. One call per thousand roles instead of five per role, for observing
/// many roles at once.
pub(crate) async fn all_roles(
    iam: &aws_sdk_iam::Client,
) -> Result<BTreeMap<String, RoleView>, FunctionError> {
    let mut pages = iam
        .get_account_authorization_details()
        .filter(aws_sdk_iam::types::EntityType::Role)
        .max_items(1000)
        .into_paginator()
        .send();
    let mut out = BTreeMap::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error("iam:GetAccountAuthorizationDetails", e))?;
        for d in page.role_detail_list() {
            let view = RoleView::from_detail(d);
            out.insert(view.name.clone(), view);
        }
    }
    Ok(out)
}

/// The role `name` as it is: from the run's prefetched roles when it has them, else read.
async fn read_role(
    ctx: &PhaseContext<'_>,
    iam: &aws_sdk_iam::Client,
    name: &str,
) -> Result<Option<RoleView>, FunctionError> {
    if let Some(roles) = &ctx.prefetched.roles {
        return Ok(roles.get(name).cloned());
    }
    let Some(role) = get_role(iam, name).await? else {
        return Ok(None);
    };
    let attached = attached_policies(iam, name).await?.unwrap_or_default();
    let mut inline = BTreeMap::new();
    for policy_name in inline_policy_names(iam, name).await?.unwrap_or_default() {
        let out = iam
            .get_role_policy()
            .role_name(name)
            .policy_name(&policy_name)
            .send()
            .await
            .map_err(|e| aws_error("iam:GetRolePolicy", e))?;
        let doc = policies::parse_returned(&out.policy_document).unwrap_or(Value::Null);
        inline.insert(policy_name, doc);
    }
    Ok(Some(RoleView {
        name: role.role_name().to_owned(),
        arn: role.arn().to_owned(),
        trust: role.assume_role_policy_document().map(str::to_owned),
        boundary: role
            .permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn())
            .map(str::to_owned),
        tags: role.tags().to_vec(),
        attached,
        inline,
    }))
}

/// Whether the role `name` exists (the prefetched roles when the run has them).
pub(crate) async fn role_exists(
    ctx: &PhaseContext<'_>,
    iam: &aws_sdk_iam::Client,
    name: &str,
) -> Result<bool, FunctionError> {
    match &ctx.prefetched.roles {
        Some(roles) => Ok(roles.contains_key(name)),
        None => Ok(get_role(iam, name).await?.is_some()),
    }
}

/// Refuses a role of one of our names that this platform did not create.
fn check_owner(ctx: &PhaseContext, name: &str, tags: &[Tag]) -> Result<(), FunctionError> {
    let owner = tags
        .iter()
        .find(|t| t.key() == TAG_PLATFORM)
        .map(|t| t.value());
    if owner == Some(ctx.platform_id()) {
        return Ok(());
    }
    Err(FunctionError::new(
        ErrorType::Terminal,
        format!(
            "IAM role {} exists but is not tagged {TAG_PLATFORM}={} (owner: {owner:?}); \
             refusing to adopt or delete it",
            name,
            ctx.platform_id()
        ),
    ))
}

/// Ensures one role; returns its ARN (None in `observe` when it does not exist). Recorded in
/// the inventory under the run's phase.
pub(crate) async fn ensure_role(
    ctx: &mut PhaseContext<'_>,
    iam: &aws_sdk_iam::Client,
    role: &DesiredRole,
) -> Result<Option<String>, FunctionError> {
    let resource = format!("iam:role/{}", role.name);
    let tags = role.tags.clone();
    let found = read_role(ctx, iam, &role.name).await?;
    let (arn, created) = match &found {
        Some(actual) => {
            check_owner(ctx, &actual.name, &actual.tags)?;
            converge_boundary(ctx, iam, role, &resource, actual).await?;
            converge_trust(ctx, iam, role, &resource, actual).await?;
            converge_role_tags(ctx, iam, &role.name, &resource, &tags, &actual.tags).await?;
            (actual.arn.clone(), false)
        }
        None => {
            if !ctx.differs(&resource, "exists", json!(true), json!(false)) {
                return Ok(None);
            }
            let out = iam
                .create_role()
                .role_name(&role.name)
                .path(policies::ROLE_PATH)
                .set_permissions_boundary(ctx.target.role_boundary_arn.clone())
                .description(&role.description)
                .assume_role_policy_document(role.trust.to_string())
                .set_tags(Some(iam_tags(&tags)?))
                .send()
                .await
                .map_err(|e| aws_error("iam:CreateRole", e))?;
            let arn = out.role.map(|r| r.arn).unwrap_or_default();
            (arn, true)
        }
    };
    let mut record = ResourceRecord::new(Kind::IamRole, &role.name, ctx.phase.as_str());
    record.arn = Some(arn.clone());
    record.tags = tags;
    record.attributes = Some(json!({ "purpose": role.purpose }));
    ctx.record(record).await?;
    let (attached, inline) = match found {
        Some(actual) if !created => (actual.attached, actual.inline),
        _ => Default::default(),
    };
    converge_managed(ctx, iam, role, &resource, &attached).await?;
    converge_inline(ctx, iam, role, &resource, &inline).await?;
    Ok(Some(arn))
}

/// Puts the configured permissions boundary on a role that lacks it or carries another one
/// (a role is never left with a boundary removed: without one configured, nothing changes).
async fn converge_boundary(
    ctx: &mut PhaseContext<'_>,
    iam: &aws_sdk_iam::Client,
    role: &DesiredRole,
    resource: &str,
    actual: &RoleView,
) -> Result<(), FunctionError> {
    let Some(wanted) = ctx.target.role_boundary_arn.clone() else {
        return Ok(());
    };
    let current = actual.boundary.as_deref();
    if current == Some(wanted.as_str())
        || !ctx.differs(
            resource,
            "permissionsBoundary",
            json!(wanted),
            json!(current),
        )
    {
        return Ok(());
    }
    iam.put_role_permissions_boundary()
        .role_name(&role.name)
        .permissions_boundary(&wanted)
        .send()
        .await
        .map_err(|e| aws_error("iam:PutRolePermissionsBoundary", e))?;
    Ok(())
}

async fn converge_trust(
    ctx: &mut PhaseContext<'_>,
    iam: &aws_sdk_iam::Client,
    role: &DesiredRole,
    resource: &str,
    actual: &RoleView,
) -> Result<(), FunctionError> {
    let current = actual
        .trust
        .as_deref()
        .and_then(policies::parse_returned)
        .unwrap_or(Value::Null);
    if policies::same_policy(&role.trust, &current)
        || !ctx.differs(resource, "assumeRolePolicy", role.trust.clone(), current)
    {
        return Ok(());
    }
    iam.update_assume_role_policy()
        .role_name(&role.name)
        .policy_document(role.trust.to_string())
        .send()
        .await
        .map_err(|e| aws_error("iam:UpdateAssumeRolePolicy", e))?;
    Ok(())
}

async fn converge_role_tags(
    ctx: &mut PhaseContext<'_>,
    iam: &aws_sdk_iam::Client,
    name: &str,
    resource: &str,
    desired: &BTreeMap<String, String>,
    actual: &[Tag],
) -> Result<(), FunctionError> {
    let actual: BTreeMap<&str, &str> = actual.iter().map(|t| (t.key(), t.value())).collect();
    let missing: BTreeMap<String, String> = desired
        .iter()
        .filter(|(k, v)| actual.get(k.as_str()) != Some(&v.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if missing.is_empty() || !ctx.differs(resource, "tags", json!(missing), json!(actual)) {
        return Ok(());
    }
    iam.tag_role()
        .role_name(name)
        .set_tags(Some(iam_tags(&missing)?))
        .send()
        .await
        .map_err(|e| aws_error("iam:TagRole", e))?;
    Ok(())
}

async fn attached_policies(
    iam: &aws_sdk_iam::Client,
    name: &str,
) -> Result<Option<BTreeSet<String>>, FunctionError> {
    let mut pages = iam
        .list_attached_role_policies()
        .role_name(name)
        .into_paginator()
        .items()
        .send();
    let mut out = BTreeSet::new();
    while let Some(item) = pages.next().await {
        match item {
            Ok(p) => out.extend(p.policy_arn),
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(aws_error("iam:ListAttachedRolePolicies", e)),
        }
    }
    Ok(Some(out))
}

async fn inline_policy_names(
    iam: &aws_sdk_iam::Client,
    name: &str,
) -> Result<Option<BTreeSet<String>>, FunctionError> {
    let mut pages = iam
        .list_role_policies()
        .role_name(name)
        .into_paginator()
        .items()
        .send();
    let mut out = BTreeSet::new();
    while let Some(item) = pages.next().await {
        match item {
            Ok(p) => {
                out.insert(p);
            }
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(aws_error("iam:ListRolePolicies", e)),
        }
    }
    Ok(Some(out))
}

/// Attaches missing managed policies and detaches the ones the role should not have.
async fn converge_managed(
    ctx: &mut PhaseContext<'_>,
    iam: &aws_sdk_iam::Client,
    role: &DesiredRole,
    resource: &str,
    actual: &BTreeSet<String>,
) -> Result<(), FunctionError> {
    for arn in role.managed.difference(actual) {
        if ctx.differs(resource, "managedPolicies", json!(arn), Value::Null) {
            iam.attach_role_policy()
                .role_name(&role.name)
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| aws_error("iam:AttachRolePolicy", e))?;
        }
    }
    for arn in actual.difference(&role.managed) {
        if ctx.differs(resource, "managedPolicies", Value::Null, json!(arn)) {
            detach(iam, &role.name, arn).await?;
        }
    }
    Ok(())
}

/// Puts inline policies that are missing or differ and deletes the ones not desired.
async fn converge_inline(
    ctx: &mut PhaseContext<'_>,
    iam: &aws_sdk_iam::Client,
    role: &DesiredRole,
    resource: &str,
    actual: &BTreeMap<String, Value>,
) -> Result<(), FunctionError> {
    for (policy_name, desired) in &role.inline {
        let actual = actual.get(policy_name).cloned().unwrap_or(Value::Null);
        let field = format!("inlinePolicy/{policy_name}");
        if policies::same_policy(desired, &actual)
            || !ctx.differs(resource, &field, desired.clone(), actual)
        {
            continue;
        }
        iam.put_role_policy()
            .role_name(&role.name)
            .policy_name(policy_name)
            .policy_document(desired.to_string())
            .send()
            .await
            .map_err(|e| aws_error("iam:PutRolePolicy", e))?;
    }
    for extra in actual.keys().filter(|n| !role.inline.contains_key(*n)) {
        let field = format!("inlinePolicy/{extra}");
        if ctx.differs(resource, &field, Value::Null, json!("present")) {
            delete_inline(iam, &role.name, extra).await?;
        }
    }
    Ok(())
}

/// Ensures the IAM OIDC provider of the issuer ([`oidc_provider`]); returns its ARN.
async fn ensure_oidc_provider(
    ctx: &mut PhaseContext<'_>,
    iam: &aws_sdk_iam::Client,
    issuer: &str,
) -> Result<Option<String>, FunctionError> {
    let want = oidc_provider::Desired {
        arn: ctx.target().oidc_provider_arn(issuer),
        url: issuer.to_owned(),
        tags: ctx.tags(COMPONENT),
    };
    let resource = format!("{}/{}", Kind::OidcProvider, policies::issuer_host(issuer));
    match oidc_provider::find(iam, &want.arn).await? {
        Some(live) => {
            for field in ctx.repairs(&resource, want.differences(&live)) {
                oidc_provider::repair(iam, &want, &live, field).await?;
            }
        }
        None => {
            if !ctx.differs(&resource, "exists", json!(true), json!(false)) {
                return Ok(None);
            }
            oidc_provider::create(iam, &want).await?;
        }
    }
    let mut record = ResourceRecord::new(Kind::OidcProvider, &want.arn, Phase::Identity.as_str());
    record.arn = Some(want.arn.clone());
    record.tags = want.tags;
    record.attributes = Some(json!({ "url": issuer }));
    ctx.record(record).await?;
    Ok(Some(want.arn))
}

// --- delete -------------------------------------------------------------------------------------

async fn delete(
    ctx: &mut PhaseContext<'_>,
    iam: &aws_sdk_iam::Client,
) -> Result<bool, FunctionError> {
    for sa in SERVICE_ACCOUNTS {
        let name = ctx.names.role(sa.purpose);
        delete_role(ctx, iam, &name).await?;
    }
    delete_oidc_providers(ctx, iam).await?;
    for purpose in [
        naming::ROLE_CLUSTER,
        naming::ROLE_NODE,
        naming::ROLE_FLOW_LOGS,
        naming::ROLE_FARGATE_PODS,
    ] {
        let name = ctx.names.role(purpose);
        delete_role(ctx, iam, &name).await?;
    }
    Ok(true)
}

/// Deletes the OIDC providers tagged with this platform's identity component.
async fn delete_oidc_providers(
    ctx: &mut PhaseContext<'_>,
    iam: &aws_sdk_iam::Client,
) -> Result<(), FunctionError> {
    for (arn, live) in oidc_provider::find_all(iam).await? {
        let tag = |k: &str| live.tags.get(k).map(String::as_str);
        if tag(TAG_PLATFORM) != Some(ctx.platform_id()) || tag(TAG_COMPONENT) != Some(COMPONENT) {
            continue;
        }
        if ctx.differs(&format!("iam:{arn}"), "exists", json!(false), json!(true)) {
            oidc_provider::remove(iam, &arn).await?;
            ctx.forget(Kind::OidcProvider, &arn).await?;
        }
    }
    Ok(())
}

/// Deletes a role of this platform with everything attached to it; a missing role is success.
pub(crate) async fn delete_role(
    ctx: &mut PhaseContext<'_>,
    iam: &aws_sdk_iam::Client,
    name: &str,
) -> Result<(), FunctionError> {
    let Some(role) = get_role(iam, name).await? else {
        return ctx.forget(Kind::IamRole, name).await;
    };
    check_owner(ctx, role.role_name(), role.tags())?;
    if !ctx.differs(
        &format!("iam:role/{name}"),
        "exists",
        json!(false),
        json!(true),
    ) {
        return Ok(());
    }
    for arn in attached_policies(iam, name).await?.unwrap_or_default() {
        detach(iam, name, &arn).await?;
    }
    for policy in inline_policy_names(iam, name).await?.unwrap_or_default() {
        delete_inline(iam, name, &policy).await?;
    }
    remove_instance_profiles(iam, name).await?;
    match iam.delete_role().role_name(name).send().await {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(aws_error("iam:DeleteRole", e)),
    }
    ctx.forget(Kind::IamRole, name).await
}

async fn detach(iam: &aws_sdk_iam::Client, name: &str, arn: &str) -> Result<(), FunctionError> {
    match iam
        .detach_role_policy()
        .role_name(name)
        .policy_arn(arn)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(aws_error("iam:DetachRolePolicy", e)),
    }
    Ok(())
}

async fn delete_inline(
    iam: &aws_sdk_iam::Client,
    name: &str,
    policy: &str,
) -> Result<(), FunctionError> {
    match iam
        .delete_role_policy()
        .role_name(name)
        .policy_name(policy)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(aws_error("iam:DeleteRolePolicy", e)),
    }
    Ok(())
}

/// Takes the role out of any instance profile; a profile named like the role is deleted too.
async fn remove_instance_profiles(
    iam: &aws_sdk_iam::Client,
    name: &str,
) -> Result<(), FunctionError> {
    let mut pages = iam
        .list_instance_profiles_for_role()
        .role_name(name)
        .into_paginator()
        .items()
        .send();
    let mut profiles = Vec::new();
    while let Some(item) = pages.next().await {
        match item {
            Ok(p) => profiles.push(p.instance_profile_name),
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(aws_error("iam:ListInstanceProfilesForRole", e)),
        }
    }
    for profile in profiles {
        match iam
            .remove_role_from_instance_profile()
            .instance_profile_name(&profile)
            .role_name(name)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(aws_error("iam:RemoveRoleFromInstanceProfile", e)),
        }
        if profile == name {
            match iam
                .delete_instance_profile()
                .instance_profile_name(&profile)
                .send()
                .await
            {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(aws_error("iam:DeleteInstanceProfile", e)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> crate::spec::PlatformSpec {
        crate::validate::parse_platform(include_str!("../../../examples/platform.json"))
            .expect("example spec is valid")
    }

    #[test]
    fn base_roles_follow_the_plan() {
        let spec = spec();
        let t = Target::new(&spec, "123456789012", "us-east-1");
        let roles = base_roles(&t, Some("arn:aws:kms:us-east-1:123456789012:key/k"));
        let names: Vec<_> = roles.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "tenantry-payments-prod-cluster",
                "tenantry-payments-prod-node",
                "tenantry-payments-prod-flow-logs"
            ]
        );
        let plan = crate::plan::plan(&spec);
        let planned = plan
            .resource("identity/role/node")
            .expect("node role planned");
        let managed: BTreeSet<String> = planned.properties["managedPolicies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|n| t.managed_policy(n))
            .collect();
        assert_eq!(roles[1].managed, managed);
        assert!(roles[0]
            .inline
            .contains_key(policies::CLUSTER_SECRETS_POLICY_NAME));
    }

    #[test]
    fn service_roles_trust_one_service_account() {
        let spec = spec();
        let t = Target::new(&spec, "123456789012", "us-east-1");
        let issuer = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC";
        let sa = &SERVICE_ACCOUNTS[1];
        let role = service_role(&t, Some(issuer), sa);
        assert_eq!(role.name, "tenantry-payments-prod-cluster-autoscaler");
        let statements = role.trust["Statement"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(statements.len(), 2, "IRSA and Pod Identity are both on");
        assert_eq!(
            statements[0]["Condition"]["StringEquals"]
                ["oidc.eks.us-east-1.amazonaws.com/id/ABC:sub"],
            "system:serviceaccount:kube-system:cluster-autoscaler"
        );
        assert!(role.inline.contains_key(policies::SERVICE_POLICY_NAME));
    }
}
