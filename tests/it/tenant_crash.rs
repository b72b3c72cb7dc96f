//! Crash safety of a tenant's onboarding (the `tenant` function with the tenant as its item),
//! run through the gateway's Lambda Invoke API: on the provisioned seed-004 platform
//! (`examples/payments-fargate.json`), for every mutating AWS call N of a clean onboarding's first
//! invocation, a new tenant (on Fargate, with a repository and an `allowFrom` rule naming
//! `payment`) whose first invocation the gateway crashes right after call N converges on the
//! workflow's re-runs to exactly what the clean onboarding built (its census: role, repository,
//! Fargate profile, pod security group with its rules, its rules in the cluster group and in
//! `payment`'s group, its inventory), and a further run changes nothing.
//!
//! Each crash point onboards a tenant of its own name and offboards it afterwards (nothing of it
//! may be left), so one platform serves them all, each point from the same state. The
//! crashed run is checked to have made exactly the clean run's first N calls (every AWS call of
//! the invocation counts, reads and the state table's included), so a crash that lands elsewhere
//! fails the test instead of testing another point.

use std::collections::BTreeMap;
use std::time::Instant;

use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::{json, Value};
use tenantry::events::RequestKind;
use tenantry::spec::TenantSpec;
use tenantry::store::{TenantRecord, TenantState};
use tenantry_gateway::{CallRecord, CrashRule, Faults};

use crate::platform::{env, Env};

const PLATFORM: &str = "paycore";
const STEM: &str = "paycore-prod";

/// What exists of one tenant, by kind, with ids made relative (`self`, `cluster`, `payment`).
type Census = BTreeMap<String, usize>;

fn tenant(name: &str) -> TenantSpec {
    serde_json::from_value(json!({
        "name": name,
        "owners": ["arn:aws:iam::111122223333:role/team-crash"],
        "costCentre": "cc-crash",
        "fargate": {},
        "allowFrom": [{ "tenant": "payment", "ports": [8080] }],
        "repositories": [{ "name": "svc", "keepImages": 5 }],
    }))
    .expect("tenant spec")
}

/// One invocation of the tenant function for `name`, as the onboarding workflow makes it.
async fn invoke(env: &Env, name: &str, request: &str) -> Result<Value, (String, String)> {
    let payload = json!({ "platformId": PLATFORM, "requestId": request, "action": "ensure",
                          "item": name });
    tenantry_integration::invoke(&env.stack, "tenant", &payload).await
}

/// Records `name` as being onboarded by `request` (what intake and the workflow do first).
async fn record(env: &Env, name: &str, request: &str) {
    let r = TenantRecord::new(tenant(name), TenantState::Onboarding, request);
    env.store
        .put_tenant_record(PLATFORM, &r, None)
        .await
        .expect("tenant record");
}

/// Runs ensure until ready, as the workflow's polls do (at most 5 times); the last output.
async fn converge(env: &Env, name: &str, request: &str) -> Result<Value, String> {
    let mut last = Value::Null;
    for _ in 0..5 {
        last = invoke(env, name, request)
            .await
            .map_err(|e| format!("a re-run failed: {e:?}"))?;
        if last["ready"] == json!(true) {
            return Ok(last);
        }
    }
    Err(format!("not ready after 5 runs: {last}"))
}

/// Offboards `name` as the offboarding workflow does (state, then delete until done), so that
/// the next crash point starts from the same platform; nothing of it may be left.
async fn offboard(env: &Env, name: &str) -> Result<(), String> {
    env.store
        .set_tenant_state(PLATFORM, name, TenantState::Offboarding, None)
        .await
        .map_err(|e| format!("offboarding state: {e}"))?;
    let payload = json!({ "platformId": PLATFORM, "requestId": format!("off-{name}"),
                          "action": "delete", "item": name });
    let mut done = false;
    for _ in 0..5 {
        let out = tenantry_integration::invoke(&env.stack, "tenant", &payload)
            .await
            .map_err(|e| format!("offboarding failed: {e:?}"))?;
        if out["ready"] == json!(true) {
            done = true;
            break;
        }
    }
    if !done {
        return Err("offboarding not done after 5 runs".into());
    }
    env.store
        .set_tenant_state(PLATFORM, name, TenantState::Offboarded, None)
        .await
        .map_err(|e| format!("offboarded state: {e}"))?;
    let left = census(env, name).await;
    match left.is_empty() {
        true => Ok(()),
        false => Err(format!("left after offboarding: {left:?}")),
    }
}

fn op(c: &CallRecord) -> String {
    format!("{}:{}", c.service, c.operation)
}

fn is_platform_mutation(c: &CallRecord) -> bool {
    c.mutating && !["dynamodb", "sts"].contains(&c.service.as_str())
}

async fn census(env: &Env, name: &str) -> Census {
    let mut c = Census::new();
    let iam = aws_sdk_iam::Client::new(&env.aws);
    let role = format!("tenantry-{STEM}-t-{name}");
    if iam.get_role().role_name(&role).send().await.is_ok() {
        let policies = iam
            .list_role_policies()
            .role_name(&role)
            .send()
            .await
            .expect("role policies");
        *c.entry("iam:role".into()).or_default() += 1;
        *c.entry("iam:role-policy".into()).or_default() += policies.policy_names().len();
    }
    let ecr = aws_sdk_ecr::Client::new(&env.aws);
    let repos = ecr
        .describe_repositories()
        .send()
        .await
        .expect("repositories");
    let prefix = format!("tenantry/{STEM}/{name}/");
    c.insert(
        "ecr:repository".into(),
        repos
            .repositories()
            .iter()
            .filter(|r| r.repository_name().is_some_and(|n| n.starts_with(&prefix)))
            .count(),
    );
    let eks = aws_sdk_eks::Client::new(&env.aws);
    let profiles = eks
        .list_fargate_profiles()
        .cluster_name(STEM)
        .send()
        .await
        .expect("profiles");
    let profile = format!("{STEM}-t-{name}");
    c.insert(
        "eks:fargate-profile".into(),
        profiles
            .fargate_profile_names()
            .iter()
            .filter(|p| **p == profile)
            .count(),
    );
    let status = env.store.get_status(PLATFORM).await.unwrap().unwrap().value;
    let cluster_group = status.outputs["clusterSecurityGroupId"]
        .as_str()
        .expect("cluster group")
        .to_owned();
    let ec2 = aws_sdk_ec2::Client::new(&env.aws);
    let groups = ec2.describe_security_groups().send().await.expect("groups");
    let own_name = format!("tenantry-{STEM}-t-{name}-pods");
    let mine: Vec<_> = groups
        .security_groups()
        .iter()
        .filter(|g| g.group_name() == Some(own_name.as_str()))
        .collect();
    c.insert("ec2:security-group".into(), mine.len());
    let by_name: BTreeMap<String, String> = groups
        .security_groups()
        .iter()
        .filter_map(|g| Some((g.group_id()?.to_owned(), g.group_name()?.to_owned())))
        .collect();
    let relative = |id: &str| -> String {
        if id == cluster_group {
            return "cluster".into();
        }
        match by_name.get(id).map(String::as_str) {
            Some(n) if n == own_name => "self".into(),
            Some(n) => n
                .trim_start_matches(&format!("tenantry-{STEM}-t-"))
                .trim_end_matches("-pods")
                .into(),
            None => id.into(),
        }
    };
    let mut rules = |group: &aws_sdk_ec2::types::SecurityGroup, what: &str, only: Option<&str>| {
        for (dir, perms) in [
            ("in", group.ip_permissions()),
            ("out", group.ip_permissions_egress()),
        ] {
            for p in perms {
                let port = p.from_port().unwrap_or(-1);
                let proto = p.ip_protocol().unwrap_or_default();
                let peers =
                    p.user_id_group_pairs()
                        .iter()
                        .map(|g| (g.description(), relative(g.group_id().unwrap_or_default())))
                        .chain(p.ip_ranges().iter().map(|r| {
                            (r.description(), r.cidr_ip().unwrap_or_default().to_owned())
                        }));
                for (description, peer) in peers {
                    let description = description.unwrap_or_default();
                    if only
                        .is_some_and(|o| !description.starts_with(o) && !description.ends_with(o))
                    {
                        continue;
                    }
                    *c.entry(format!("{what} {dir} {proto}/{port} {peer}"))
                        .or_default() += 1;
                }
            }
        }
    };
    for g in &mine {
        rules(g, "own", None);
    }
    let cluster_prefix = format!("tenantry:{name}:");
    let payment_suffix = format!("-{name}");
    for g in groups.security_groups() {
        if g.group_id() == Some(cluster_group.as_str()) {
            rules(g, "cluster", Some(&cluster_prefix));
        }
        if g.group_name() == Some(format!("tenantry-{STEM}-t-payment-pods").as_str()) {
            rules(g, "payment", Some(&payment_suffix));
        }
    }
    for r in env.store.list_resources(PLATFORM).await.expect("inventory") {
        if r.tenant.as_deref() == Some(name) {
            *c.entry(format!("inventory/{}", r.resource_type))
                .or_default() += 1;
        }
    }
    c.retain(|_, n| *n > 0);
    c
}

/// One crash point: tenant `name` crashed after call `after` of its first invocation, then
/// converged; compared with the clean onboarding's census.
async fn crash_point(
    env: &Env,
    name: &str,
    after: usize,
    reference_ops: &[String],
    expected: &Census,
) -> Result<(), String> {
    let request = format!("crash-{name}");
    record(env, name, &request).await;
    env.stack.reset_calls();
    env.stack.set_faults(Faults {
        crash_after_calls: Some(CrashRule::new(
            "tenant",
            u32::try_from(after).expect("few calls"),
        )),
        ..Faults::default()
    });
    let crashed = invoke(env, name, &request).await;
    env.stack.set_faults(Faults::default());
    match crashed {
        Err((t, _)) if t == "Runtime.ExitError" => {}
        other => return Err(format!("the first run did not crash: {other:?}")),
    }
    let made: Vec<String> = env.stack.calls().for_function("tenant").map(op).collect();
    if made != reference_ops[..after] {
        return Err(format!(
            "the crashed run's calls differ from the reference's first {after}: {made:?}"
        ));
    }
    converge(env, name, &request).await?;
    let again = invoke(env, name, &request)
        .await
        .map_err(|e| format!("the last run failed: {e:?}"))?;
    let mut problems = Vec::new();
    if again["changes"] != json!(0) || again["ready"] != json!(true) {
        problems.push(format!(
            "a converged run: ready {} changes {}",
            again["ready"], again["changes"]
        ));
    }
    let found = census(env, name).await;
    if let Some(diff) = crate::crash::census_diff(expected, &found) {
        problems.push(diff);
    }
    if let Err(e) = offboard(env, name).await {
        problems.push(e);
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(problems.join(" / ")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_onboarding_converges_after_a_crash_after_any_mutating_call() {
    let mut env = env().await;
    env.spec = serde_json::from_str(include_str!("../../examples/payments-fargate.json")).unwrap();
    let run = env
        .run(RequestKind::PlatformProvision, "tenant-crash-1")
        .await;
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.cause);

    // The clean onboarding: its first invocation's calls, then converged.
    let request = "crash-ref";
    record(&env, "ref", request).await;
    env.stack.reset_calls();
    invoke(&env, "ref", request).await.expect("clean first run");
    let calls = env.stack.calls();
    let reference: Vec<&CallRecord> = calls.for_function("tenant").collect();
    let reference_ops: Vec<String> = reference.iter().map(|c| op(c)).collect();
    let points: Vec<usize> = reference
        .iter()
        .enumerate()
        .filter(|(_, c)| is_platform_mutation(c))
        .map(|(i, _)| i + 1)
        .collect();
    converge(&env, "ref", request)
        .await
        .expect("clean onboarding");
    let expected = census(&env, "ref").await;
    offboard(&env, "ref")
        .await
        .expect("the clean tenant offboards to nothing");
    for kind in [
        "ec2:security-group",
        "eks:fargate-profile",
        "ecr:repository",
        "iam:role",
    ] {
        assert_eq!(expected.get(kind), Some(&1), "{kind} in {expected:#?}");
    }
    assert!(
        expected.contains_key("payment out tcp/8080 self")
            && expected.contains_key("own in tcp/8080 payment"),
        "the allowFrom rule on both groups: {expected:#?}"
    );
    assert!(
        points.len() >= 10,
        "mutating calls of the first run: {reference_ops:?}"
    );

    let started = Instant::now();
    let mut failures = Vec::new();
    for (i, after) in points.iter().enumerate() {
        // Named after `payment`, as `ref` is: the linked groups converge in name order.
        let name = format!("s{i}");
        let point = format!("crash after call {after} ({})", reference_ops[after - 1]);
        if let Err(e) = crash_point(&env, &name, *after, &reference_ops, &expected).await {
            eprintln!("FAILED {point}: {e}");
            failures.push(format!("{point}: {e}"));
        }
    }
    eprintln!(
        "tenant onboarding: {} crash points in {:?}",
        points.len(),
        started.elapsed()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
