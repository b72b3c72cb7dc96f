//! Platforms in another account. The spec names a `targetRoleArn` in the local stack's second
//! account; that account has deployed the role of `infra/target-account-role.yaml` (its trust
//! policy, read from the file, is what the gateway judges every `AssumeRole` against). Every
//! phase works there through the role; the state store stays in Tenantry's own account.

use crate::platform::{env, env_on, Env};
use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::{json, Value};
use tenantry::aws::{LOCAL_ACCOUNT_ID, LOCAL_EXTERNAL_ID, LOCAL_TARGET_ACCOUNT_ID};
use tenantry::events::RequestKind;
use tenantry::store::LifecycleState;
use tenantry_gateway::inspect::tagged_resources;

const TARGET_ROLE: &str = "tenantry-target";

fn target_role_arn() -> String {
    format!("arn:aws:iam::{LOCAL_TARGET_ACCOUNT_ID}:role/tenantry/{TARGET_ROLE}")
}

/// The trust policy of `infra/target-account-role.yaml`, its parameters given: Tenantry's
/// account, stack name `tenantry`, and `external_id`.
fn trust_policy(external_id: &str) -> Value {
    let text = include_str!("../../infra/target-account-role.yaml");
    let template: Value = serde_norway::from_str(text).expect("the target role template parses");
    let trust = template["Resources"]["TenantryTargetRole"]["Properties"]
        ["AssumeRolePolicyDocument"]
        .clone();
    resolve(trust, external_id)
}

/// `Fn::Sub` and `Ref` of the template's parameters, as CloudFormation would resolve them.
fn resolve(value: Value, external_id: &str) -> Value {
    match value {
        Value::Object(map) if map.len() == 1 && map.contains_key("Fn::Sub") => Value::String(
            map["Fn::Sub"]
                .as_str()
                .expect("Fn::Sub of a string")
                .replace("${AWS::Partition}", "aws")
                .replace("${TenantryAccountId}", LOCAL_ACCOUNT_ID)
                .replace("${TenantryStackName}", "tenantry"),
        ),
        Value::Object(map) if map.get("Ref") == Some(&json!("ExternalIds")) => json!([external_id]),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, resolve(v, external_id)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| resolve(v, external_id)).collect())
        }
        other => other,
    }
}

/// The target account deploys the role, requiring `external_id`.
async fn deploy_target_role(target: &aws_config::SdkConfig, external_id: &str) {
    aws_sdk_iam::Client::new(target)
        .create_role()
        .role_name(TARGET_ROLE)
        .path("/tenantry/")
        .assume_role_policy_document(trust_policy(external_id).to_string())
        .send()
        .await
        .expect("CreateRole in the target account");
}

async fn target_env(external_id: &str) -> (Env, aws_config::SdkConfig) {
    target_env_on(env().await, external_id).await
}

async fn target_env_on(mut env: Env, external_id: &str) -> (Env, aws_config::SdkConfig) {
    let target = env
        .stack
        .account_sdk_config(LOCAL_TARGET_ACCOUNT_ID)
        .await
        .expect("a session in the second account");
    deploy_target_role(&target, external_id).await;
    env.spec["targetRoleArn"] = json!(target_role_arn());
    (env, target)
}

async fn findings(
    aws: &aws_config::SdkConfig,
) -> Vec<aws_sdk_securityhub::types::AwsSecurityFinding> {
    let client = aws_sdk_securityhub::Client::new(aws);
    let mut out = Vec::new();
    let mut pages = client.get_findings().into_paginator().send();
    while let Some(page) = pages.next().await {
        out.extend(page.expect("GetFindings").findings().to_vec());
    }
    out
}

fn all_zero(census: &std::collections::BTreeMap<&'static str, usize>) -> bool {
    census.values().all(|n| *n == 0)
}

#[tokio::test]
async fn a_platform_with_a_target_role_is_built_and_removed_entirely_in_the_target_account() {
    let (env, target) = target_env(LOCAL_EXTERNAL_ID).await;
    Box::pin(built_and_removed_in_target(&env, &target)).await;
}

/// The same on the real function binaries: each reads the external id from its environment
/// (`TENANTRY_EXTERNAL_ID`, as the template sets it) and assumes the role itself.
#[tokio::test]
async fn the_real_binaries_build_and_remove_a_platform_in_the_target_account() {
    let stack = tenantry_integration::stack_on_binaries().await;
    let (env, target) = target_env_on(env_on(stack).await, LOCAL_EXTERNAL_ID).await;
    Box::pin(built_and_removed_in_target(&env, &target)).await;
    let log = env.stack.calls();
    assert!(
        log.invocations
            .iter()
            .all(|i| i.access_key.starts_with("TPRC")),
        "every invocation ran on a function process"
    );
}

async fn built_and_removed_in_target(env: &Env, target: &aws_config::SdkConfig) {
    let platform = env.platform_id();

    let run = env
        .run(RequestKind::PlatformProvision, "provision-in-target")
        .await;
    assert_eq!(
        run.status,
        ExecutionStatus::Succeeded,
        "{:?} {:?}",
        run.cause,
        run.failures()
    );
    let home = tagged_resources(&env.aws, &platform).await.unwrap();
    assert!(
        all_zero(&home),
        "nothing of the platform is in Tenantry's own account: {home:?}"
    );
    let there = tagged_resources(target, &platform).await.unwrap();
    assert_eq!(
        (
            there["ec2:vpc"],
            there["ec2:subnet"],
            there["ec2:nat-gateway"],
            there["eks:cluster"]
        ),
        (1, 9, 3, 1),
        "the platform is in the target account: {there:?}"
    );
    assert!(there["iam:role"] > 0 && there["kms:key"] > 0, "{there:?}");

    // Each step on its own future: together they overflow a debug build's test thread stack.
    Box::pin(recorded_in_target(env, target, &platform)).await;
    Box::pin(drift_in_target(env, &platform)).await;
    Box::pin(compliance_in_target(env, target, &platform)).await;

    let gone = env
        .run(RequestKind::PlatformDecommission, "decommission-in-target")
        .await;
    assert_eq!(
        gone.status,
        ExecutionStatus::Succeeded,
        "{:?} {:?}",
        gone.cause,
        gone.failures()
    );
    let home = tagged_resources(&env.aws, &platform).await.unwrap();
    let there = tagged_resources(target, &platform).await.unwrap();
    assert!(all_zero(&home), "left in Tenantry's account: {home:?}");
    assert!(all_zero(&there), "left in the target account: {there:?}");
}

#[tokio::test]
async fn a_target_role_requiring_another_external_id_refuses_tenantry_and_nothing_is_built() {
    // The account trusts some other Tenantry installation: a requester naming its role must not
    // get this Tenantry to build there (the confused deputy).
    let (env, target) = target_env("another-tenantry").await;
    let platform = env.platform_id();
    let run = env
        .run(RequestKind::PlatformProvision, "provision-untrusted")
        .await;
    assert_eq!(run.status, ExecutionStatus::Failed);
    let home = tagged_resources(&env.aws, &platform).await.unwrap();
    let there = tagged_resources(&target, &platform).await.unwrap();
    assert!(all_zero(&home), "{home:?}");
    assert!(all_zero(&there), "{there:?}");
    let status = env
        .store
        .get_status(&platform)
        .await
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(status.state, LifecycleState::Failed);
    let error = status.last_error.expect("the status names the error");
    assert!(
        error.phase.is_some(),
        "the status names the phase: {error:?}"
    );
    assert!(!error.retryable, "not retried: {error:?}");
    assert!(
        error.message.contains("could not assume targetRoleArn")
            && error.message.contains(&target_role_arn())
            && error.message.contains("AccessDenied"),
        "the error names the role and why: {}",
        error.message
    );
}

/// The store (in Tenantry's account) names the target account's resources, the platform is
/// complete there, cluster side included, and the roles created there carry its boundary.
async fn recorded_in_target(env: &Env, target: &aws_config::SdkConfig, platform: &str) {
    // What the store records (in Tenantry's account) names the target account's resources,
    // and the platform is complete there, cluster side included.
    let status = env.store.get_status(platform).await.unwrap().unwrap().value;
    assert_eq!(status.state, LifecycleState::Active);
    let inventory = env.store.list_resources(platform).await.unwrap();
    let arns: Vec<&str> = inventory
        .iter()
        .filter_map(|r| r.arn.as_deref())
        .filter(|a| a.starts_with("arn:aws:iam::") || a.starts_with("arn:aws:kms:"))
        .collect();
    assert!(!arns.is_empty(), "the inventory records ARNs");
    for arn in &arns {
        assert!(
            arn.contains(&format!(":{LOCAL_TARGET_ACCOUNT_ID}:")),
            "{arn} is in the target account"
        );
    }
    crate::complete::assert_complete_platform(&env.stack, target, &env.spec, &status).await;

    // Roles Tenantry created there carry the target account's copy of the boundary.
    let iam = aws_sdk_iam::Client::new(target);
    let roles = iam
        .list_roles()
        .path_prefix("/tenantry/")
        .send()
        .await
        .unwrap();
    let created: Vec<_> = roles
        .roles()
        .iter()
        .filter(|r| r.role_name() != TARGET_ROLE)
        .collect();
    assert!(!created.is_empty());
    for role in created {
        let got = iam
            .get_role()
            .role_name(role.role_name())
            .send()
            .await
            .unwrap();
        let boundary = got
            .role()
            .and_then(|r| r.permissions_boundary())
            .and_then(|b| b.permissions_boundary_arn())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            boundary,
            format!(
                "arn:aws:iam::{LOCAL_TARGET_ACCOUNT_ID}:policy/tenantry/tenantry-role-boundary"
            ),
            "{}",
            role.role_name()
        );
    }
}

/// A drift check observes the target account: a fresh platform shows nothing.
async fn drift_in_target(env: &Env, platform: &str) {
    // A drift check observes the target account: a fresh platform shows nothing.
    let drift = env.check_drift("drift-in-target", None).await;
    assert_eq!(
        drift.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        drift.cause
    );
    let report = env
        .store
        .get_drift_report(platform, "drift-in-target")
        .await
        .unwrap()
        .expect("a drift report");
    assert!(
        report.differences.is_empty(),
        "no drift: {:?}",
        report.differences
    );
}

async fn compliance_in_target(env: &Env, target: &aws_config::SdkConfig, platform: &str) {
    // A compliance sweep reads the target account and files its findings there, as that
    // account's own (Security Hub refuses findings of another account).
    let sweep = env.sweep_compliance("compliance-in-target").await;
    assert_eq!(
        sweep.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        sweep.cause
    );
    let report = env
        .store
        .get_compliance_report(platform, Some("compliance-in-target"))
        .await
        .unwrap()
        .expect("a compliance report");
    assert!(!report.results.is_empty());
    let there = findings(target).await;
    assert!(!there.is_empty(), "findings in the target account");
    assert!(there
        .iter()
        .all(|f| f.aws_account_id() == Some(LOCAL_TARGET_ACCOUNT_ID)));
    assert!(
        findings(&env.aws).await.is_empty(),
        "no findings in Tenantry's account"
    );
}
