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

use crate::resources::{oidc_provider, role, Kind};
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::outputs::{self, OutputMap};
use super::{Action, PhaseContext, PhaseInput, PhaseOutput};
use crate::deps::Deps;
use crate::error::FunctionError;
use crate::naming::{self, TAG_COMPONENT, TAG_PLATFORM};
use crate::plan::Phase;
use crate::policies::{self, ServiceAccount, Target, SERVICE_ACCOUNTS};
use crate::store::ResourceRecord;

const COMPONENT: &str = "identity";

/// The roles that do not need the cluster: cluster, node, and flow logs (when on).
pub fn base_roles(t: &Target, secrets_key_arn: Option<&str>) -> Vec<role::Desired> {
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
        role::Desired {
            purpose: naming::ROLE_CLUSTER.to_owned(),
            name: names.role(naming::ROLE_CLUSTER),
            description: format!("Tenantry {stem}: EKS cluster role"),
            trust: policies::cluster_trust(t),
            managed: policies::cluster_managed_policies(t).into_iter().collect(),
            inline: cluster_inline,
            tags: tags.clone(),
        },
        role::Desired {
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
        roles.push(role::Desired {
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
pub fn fargate_pods_role(t: &Target, tags: BTreeMap<String, String>) -> role::Desired {
    let mut inline = BTreeMap::new();
    if t.spec.fargate.logging {
        inline.insert(
            policies::FARGATE_LOGS_POLICY_NAME.to_owned(),
            policies::fargate_logs_policy(t),
        );
    }
    role::Desired {
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
pub fn service_role(t: &Target, issuer: Option<&str>, sa: &ServiceAccount) -> role::Desired {
    role::Desired {
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
    let iam = ctx.clients.iam().clone();
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

/// Whether the role `name` exists (the prefetched roles when the run has them).
pub(crate) async fn role_exists(
    ctx: &PhaseContext<'_>,
    iam: &aws_sdk_iam::Client,
    name: &str,
) -> Result<bool, FunctionError> {
    match &ctx.prefetched.roles {
        Some(roles) => Ok(roles.contains_key(name)),
        None => Ok(role::get(iam, name).await?.is_some()),
    }
}

/// Ensures one role ([`role`]); returns its ARN (None in `observe` when it does not exist).
/// Recorded in the inventory under the run's phase. The run's prefetched roles are used when it
/// has them.
pub(crate) async fn ensure_role(
    ctx: &mut PhaseContext<'_>,
    iam: &aws_sdk_iam::Client,
    want: &role::Desired,
) -> Result<Option<String>, FunctionError> {
    let resource = format!("{}/{}", Kind::IamRole, want.name);
    let boundary = ctx.target.role_boundary_arn.clone();
    let found = match &ctx.prefetched.roles {
        Some(roles) => roles.get(&want.name).cloned(),
        None => role::find(iam, &want.name).await?,
    };
    let live = match found {
        Some(live) => {
            role::check_owner(&live, ctx.platform_id())?;
            let differences = want.differences(&live, boundary.as_deref());
            for field in ctx.repairs(&resource, differences) {
                role::repair(iam, want, &live, field, boundary.as_deref()).await?;
            }
            live
        }
        None => {
            if !ctx.differs(&resource, "exists", json!(true), json!(false)) {
                return Ok(None);
            }
            let arn = role::create(iam, want, boundary.as_deref()).await?;
            role::Live {
                arn,
                ..role::Live::default()
            }
        }
    };
    let mut record = ResourceRecord::new(Kind::IamRole, &want.name, ctx.phase.as_str());
    record.arn = Some(live.arn.clone());
    record.tags = want.tags.clone();
    record.attributes = Some(json!({ "purpose": want.purpose }));
    ctx.record(record).await?;
    converge_managed(ctx, iam, want, &resource, &live.attached).await?;
    converge_inline(ctx, iam, want, &resource, &live.inline).await?;
    Ok(Some(live.arn))
}

/// Attaches missing managed policies and detaches the ones the role should not have.
async fn converge_managed(
    ctx: &mut PhaseContext<'_>,
    iam: &aws_sdk_iam::Client,
    want: &role::Desired,
    resource: &str,
    actual: &BTreeSet<String>,
) -> Result<(), FunctionError> {
    for arn in want.managed.difference(actual) {
        if ctx.differs(resource, "managedPolicies", json!(arn), Value::Null) {
            role::attach(iam, &want.name, arn).await?;
        }
    }
    for arn in actual.difference(&want.managed) {
        if ctx.differs(resource, "managedPolicies", Value::Null, json!(arn)) {
            role::detach(iam, &want.name, arn).await?;
        }
    }
    Ok(())
}

/// Puts inline policies that are missing or differ and deletes the ones not desired.
async fn converge_inline(
    ctx: &mut PhaseContext<'_>,
    iam: &aws_sdk_iam::Client,
    want: &role::Desired,
    resource: &str,
    actual: &BTreeMap<String, Value>,
) -> Result<(), FunctionError> {
    for (policy_name, desired) in &want.inline {
        let actual = actual.get(policy_name).cloned().unwrap_or(Value::Null);
        let field = format!("inlinePolicy/{policy_name}");
        if !policies::same_policy(desired, &actual)
            && ctx.differs(resource, &field, desired.clone(), actual)
        {
            role::put_inline(iam, &want.name, policy_name, desired).await?;
        }
    }
    for extra in actual.keys().filter(|n| !want.inline.contains_key(*n)) {
        let field = format!("inlinePolicy/{extra}");
        if ctx.differs(resource, &field, Value::Null, json!("present")) {
            role::delete_inline(iam, &want.name, extra).await?;
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
    let Some(live) = role::get(iam, name).await? else {
        return ctx.forget(Kind::IamRole, name).await;
    };
    role::check_owner(&live, ctx.platform_id())?;
    let resource = format!("{}/{name}", Kind::IamRole);
    if !ctx.differs(&resource, "exists", json!(false), json!(true)) {
        return Ok(());
    }
    role::remove(iam, name).await?;
    ctx.forget(Kind::IamRole, name).await
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
