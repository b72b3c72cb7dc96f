//! Crash safety of the `encryption`, `identity` (both stages) and `cluster` phases, run through
//! the gateway's Lambda Invoke API as Step Functions runs them: for every mutating call N that a
//! clean `ensure` makes to a platform service, a fresh platform whose `ensure` the gateway crashes
//! right after call N, then a re-run, converges to exactly what the clean run built (no
//! duplicate, nothing missing), and a third run changes nothing.
//!
//! The gateway's crash rule counts *every* AWS call of an invocation (reads, STS, DynamoDB), so
//! the crash point of mutating call N is its position in the clean run's ordered call list. Each
//! crashed run is checked to have made exactly the clean run's first calls, in order, ending with
//! call N: a crash that lands anywhere else fails the test instead of testing another point.
//!
//! The census is the test's own, not `tenantry_gateway::inspect::tagged_resources`: that one
//! reads one page of ListRoles / DescribeLogGroups, which undercounts once dozens of platforms
//! share a stack.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{json, Value};
use tenantry::aws::Clients;
use tenantry::naming::{Names, MAX_PLATFORM_ID_LEN, TAG_PLATFORM};
use tenantry::phases::{identity, Action, PhaseInput};
use tenantry::spec::PlatformSpec;
use tenantry::store::{PhaseState, PhaseStatus, Store};
use tenantry_gateway::{CallRecord, CrashRule, Faults, LocalStack};
use tenantry_integration::{stack, unique};

const ACCOUNT: &str = "123456789012";
const SECRETS_KEY: &str =
    "arn:aws:kms:us-east-1:123456789012:key/0f0e0d0c-0000-4000-8000-000000000001";
const LOGS_KEY: &str =
    "arn:aws:kms:us-east-1:123456789012:key/0f0e0d0c-0000-4000-8000-000000000002";

/// Tenantry's own bookkeeping (state table, caller identity): not platform resources.
const BOOKKEEPING: &[&str] = &["dynamodb", "sts"];

/// What exists for a platform, by kind (and purpose where a platform has several of a kind).
type Census = BTreeMap<String, usize>;

/// The phase (and stage) under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Encryption,
    /// Identity before the cluster exists: the base roles.
    IdentityBase,
    /// Identity once the cluster phase recorded its issuer: OIDC provider and workload roles
    /// (the base roles exist from the first stage).
    IdentityIrsa,
    Cluster,
}

impl Target {
    fn function(self) -> &'static str {
        match self {
            Target::Encryption => "encryption",
            Target::IdentityBase | Target::IdentityIrsa => "identity",
            Target::Cluster => "cluster",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Target::Encryption => "cenc",
            Target::IdentityBase => "cidb",
            Target::IdentityIrsa => "cidi",
            Target::Cluster => "ccls",
        }
    }
}

/// A platform recorded for one run.
struct Platform {
    spec: PlatformSpec,
    names: Names,
}

impl Platform {
    fn id(&self) -> &str {
        &self.spec.id
    }
}

/// A fresh, valid platform id (`<prefix>-<pid>-<n>`), within the platform id limit.
fn platform_id(prefix: &str) -> String {
    let id = unique(prefix);
    assert!(
        id.len() <= MAX_PLATFORM_ID_LEN,
        "{id} is longer than {MAX_PLATFORM_ID_LEN}"
    );
    id
}

/// The example platform under a fresh id, recorded with the outputs of the phases `target`
/// needs (and, for the IRSA stage, after a clean first identity stage).
async fn platform(stack: &LocalStack, target: Target) -> Platform {
    let deps = stack.deps().await;
    let store = Store::from_deps(&deps);
    store.create_table_if_missing().await.expect("state table");
    let mut spec = tenantry_integration::example_spec();
    spec.id = platform_id(target.prefix());
    if let Err(e) = tenantry::validate::validate_platform(&spec) {
        panic!("{} is not a valid platform id: {e:?}", spec.id);
    }
    tenantry_integration::record_platform(&store, &spec).await;
    let names = Names::new(&spec);
    let p = Platform { spec, names };
    match target {
        Target::Encryption => {}
        Target::IdentityBase => {
            record(
                &store,
                p.id(),
                "encryption",
                json!({ "secretsKeyArn": SECRETS_KEY }),
            )
            .await;
        }
        Target::IdentityIrsa => {
            record(
                &store,
                p.id(),
                "encryption",
                json!({ "secretsKeyArn": SECRETS_KEY }),
            )
            .await;
            let first = identity::handle(
                PhaseInput {
                    platform_id: p.id().to_owned(),
                    request_id: unique("req"),
                    action: Action::Ensure,
                    item: None,
                    scope: None,
                },
                &deps,
            )
            .await
            .expect("first identity stage");
            assert!(first.ready, "base roles ready");
            // One issuer per platform: IAM allows one OIDC provider per URL.
            let issuer = format!(
                "https://oidc.eks.us-east-1.amazonaws.com/id/{}",
                p.id().replace('-', "").to_uppercase()
            );
            let cluster = json!({ "oidcIssuer": issuer, "clusterName": p.names.cluster() });
            record(&store, p.id(), "cluster", cluster).await;
        }
        Target::Cluster => {
            let subnets = json!({ "privateSubnetIds": ["subnet-a", "subnet-b", "subnet-c"] });
            record(&store, p.id(), "network", subnets).await;
            let keys = json!({ "secretsKeyArn": SECRETS_KEY, "logsKeyArn": LOGS_KEY });
            record(&store, p.id(), "encryption", keys).await;
            let role = format!(
                "arn:aws:iam::{ACCOUNT}:role/{}",
                p.names.role(tenantry::naming::ROLE_CLUSTER)
            );
            record(
                &store,
                p.id(),
                "identity",
                json!({ "clusterRoleArn": role }),
            )
            .await;
        }
    }
    p
}

async fn record(store: &Store, id: &str, phase: &str, outputs: Value) {
    let outputs: BTreeMap<String, Value> = serde_json::from_value(outputs).expect("outputs");
    store
        .record_phase(
            id,
            phase,
            &PhaseStatus::new(PhaseState::Succeeded),
            &outputs,
        )
        .await
        .unwrap_or_else(|e| panic!("record {phase} outputs of {id}: {e}"));
}

/// Runs `ensure` of `function` for the platform through the gateway's Lambda Invoke API.
async fn ensure(
    stack: &LocalStack,
    function: &str,
    platform_id: &str,
) -> Result<Value, (String, String)> {
    let payload =
        json!({ "platformId": platform_id, "requestId": unique("req"), "action": "ensure" });
    tenantry_integration::invoke(stack, function, &payload).await
}

fn is_platform_mutation(c: &CallRecord) -> bool {
    c.mutating && !BOOKKEEPING.contains(&c.service.as_str())
}

fn op(c: &CallRecord) -> String {
    format!("{}:{}", c.service, c.operation)
}

/// Empties moto (and so the state table, created again): every run then starts from the same
/// account state as the reference run.
pub(crate) async fn reset_moto(stack: &LocalStack) {
    let resp = reqwest::Client::new()
        .post(format!("{}/moto-api/reset", stack.moto_endpoint()))
        .send()
        .await
        .expect("moto reset");
    assert!(resp.status().is_success(), "moto reset: {}", resp.status());
    Store::from_deps(&stack.deps().await)
        .create_table_if_missing()
        .await
        .expect("state table");
}

/// The sweep of one phase; returns the number of crash points.
async fn sweep(stack: &LocalStack, target: Target) -> usize {
    // After a crash between CreateKey and CreateAlias, the encryption phase looks for the key among
    // *all* the account's keys (ListKeys, then ListResourceTags per key; see
    // `Kind::KmsKeyPending`), so how many calls precede a crashed run's N-th mutating
    // call depends on how many keys exist: each of its runs starts on an emptied moto. Identity and
    // cluster only look resources up by name (and one unpaginated ListOpenIDConnectProviders), so
    // their call sequences do not depend on other platforms and they share one moto. Either way
    // the crashed run's calls are compared with the reference's below.
    let resets = target == Target::Encryption;
    let function = target.function();
    if resets {
        reset_moto(stack).await;
    }
    let reference = platform(stack, target).await;
    stack.reset_calls();
    let out = ensure(stack, function, reference.id())
        .await
        .unwrap_or_else(|e| panic!("{target:?}: reference ensure failed: {e:?}"));
    let calls: Vec<CallRecord> = stack.calls().for_function(function).cloned().collect();
    let points: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| is_platform_mutation(c))
        .map(|(i, _)| i + 1)
        .collect();
    let ops: Vec<String> = calls.iter().map(op).collect();
    eprintln!(
        "{target:?}: reference ensure made {} AWS calls, {} mutating platform calls: {:?}",
        calls.len(),
        points.len(),
        points.iter().map(|&c| &ops[c - 1]).collect::<Vec<_>>()
    );
    assert_eq!(out["ready"], json!(true), "{target:?}: {out}");
    assert_eq!(
        out["changes"],
        json!(points.len()),
        "{target:?}: changes counts every mutating platform call"
    );
    assert!(!points.is_empty(), "{target:?}: nothing to crash after");
    let again = ensure(stack, function, reference.id())
        .await
        .expect("second reference ensure");
    assert_eq!(
        again["changes"],
        json!(0),
        "{target:?}: reference is stable"
    );
    let expected = census(stack, target, &reference).await;
    eprintln!("{target:?}: reference census {expected:?}");

    let started = Instant::now();
    let mut failures = Vec::new();
    for (n, &after) in points.iter().enumerate() {
        if resets {
            reset_moto(stack).await;
        }
        let p = platform(stack, target).await;
        let point = format!(
            "{target:?}: crash after call {after} ({}, mutating call {} of {})",
            ops[after - 1],
            n + 1,
            points.len()
        );
        if let Err(e) = crash_point(stack, target, &p, after, &ops, &expected).await {
            eprintln!("FAILED {point}: {e}");
            failures.push(format!("{point}: {e}"));
        }
    }
    eprintln!(
        "{target:?}: {} crash points in {:?}",
        points.len(),
        started.elapsed()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    points.len()
}

/// One crash point: crash after call `after`, re-run, run again; compare with the reference.
async fn crash_point(
    stack: &LocalStack,
    target: Target,
    p: &Platform,
    after: usize,
    reference_ops: &[String],
    expected: &Census,
) -> Result<(), String> {
    let function = target.function();
    stack.reset_calls();
    stack.set_faults(Faults {
        crash_after_calls: Some(CrashRule::new(
            function,
            u32::try_from(after).expect("few calls"),
        )),
        ..Faults::default()
    });
    let crashed = ensure(stack, function, p.id()).await;
    stack.set_faults(Faults::default());
    match crashed {
        Err((t, _)) if t == "Runtime.ExitError" => {}
        other => return Err(format!("the first run did not crash: {other:?}")),
    }
    let made: Vec<String> = stack.calls().for_function(function).map(op).collect();
    if made != reference_ops[..after] {
        return Err(format!(
            "the crashed run's calls differ from the reference's first {after}: {made:?}"
        ));
    }
    let rerun = ensure(stack, function, p.id())
        .await
        .map_err(|e| format!("the re-run failed: {e:?}"))?;
    let third = ensure(stack, function, p.id())
        .await
        .map_err(|e| format!("the third run failed: {e:?}"))?;
    let mut problems = Vec::new();
    if third["changes"] != json!(0) || third["ready"] != json!(true) {
        problems.push(format!(
            "third run: ready {} changes {} (re-run: ready {} changes {})",
            third["ready"], third["changes"], rerun["ready"], rerun["changes"]
        ));
    }
    let found = census(stack, target, p).await;
    if let Some(diff) = census_diff(expected, &found) {
        problems.push(diff);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join(" / "))
    }
}

/// What differs between two censuses, kind by kind (`None` when they are equal).
pub(crate) fn census_diff(
    expected: &BTreeMap<String, usize>,
    found: &BTreeMap<String, usize>,
) -> Option<String> {
    let diff: Vec<String> = expected
        .keys()
        .chain(found.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| expected.get(*k) != found.get(*k))
        .map(|k| {
            format!(
                "{k}: expected {:?}, found {:?}",
                expected.get(k),
                found.get(k)
            )
        })
        .collect();
    (!diff.is_empty()).then(|| format!("census differs: {}", diff.join("; ")))
}

async fn census(stack: &LocalStack, target: Target, p: &Platform) -> Census {
    let mut c = match target {
        Target::Encryption => kms_census(stack, p).await,
        Target::IdentityBase | Target::IdentityIrsa => iam_census(stack, p).await,
        Target::Cluster => cluster_census(stack, p).await,
    };
    let deps = stack.deps().await;
    for r in Store::from_deps(&deps)
        .list_resources(p.id())
        .await
        .expect("inventory")
    {
        if r.phase == target.function() {
            *c.entry(format!("inventory/{}", r.resource_type))
                .or_default() += 1;
        }
    }
    c
}

/// Live keys tagged with the platform, by purpose; the platform's aliases, by purpose, and those
/// that do not point to one of its live keys.
async fn kms_census(stack: &LocalStack, p: &Platform) -> Census {
    let aws = stack.sdk_config().await;
    let kms = Clients::new(&aws)
        .scoped(&p.spec.region, false)
        .kms()
        .clone();
    let mut out = Census::new();
    let mut live = Vec::new();
    let mut keys = kms.list_keys().into_paginator().items().send();
    while let Some(key) = keys.next().await {
        let key = key.expect("ListKeys");
        let Some(key_id) = key.key_id() else { continue };
        let tags = kms
            .list_resource_tags()
            .key_id(key_id)
            .send()
            .await
            .expect("ListResourceTags");
        let tag = |k: &str| {
            tags.tags()
                .iter()
                .find(|t| t.tag_key() == k)
                .map(|t| t.tag_value().to_owned())
        };
        if tag(TAG_PLATFORM).as_deref() != Some(p.id()) {
            continue;
        }
        let meta = kms
            .describe_key()
            .key_id(key_id)
            .send()
            .await
            .expect("DescribeKey");
        let state = meta
            .key_metadata()
            .and_then(|m| m.key_state())
            .map(|s| s.as_str());
        if state == Some("PendingDeletion") {
            continue;
        }
        let purpose = tag(tenantry::resources::kms_key::TAG_PURPOSE).unwrap_or_default();
        *out.entry(format!("kms-key/{purpose}")).or_default() += 1;
        live.push(key_id.to_owned());
    }
    let prefix = format!("alias/tenantry/{}/", p.names.stem());
    let mut aliases = kms.list_aliases().into_paginator().items().send();
    while let Some(alias) = aliases.next().await {
        let alias = alias.expect("ListAliases");
        let Some(purpose) = alias.alias_name().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        *out.entry(format!("kms-alias/{purpose}")).or_default() += 1;
        if !alias
            .target_key_id()
            .is_some_and(|k| live.iter().any(|l| l == k))
        {
            *out.entry(format!("kms-alias/{purpose}/not-on-a-live-key"))
                .or_default() += 1;
        }
    }
    out
}

/// The platform's roles (by purpose, with their managed and inline policy counts) and its OIDC
/// providers.
async fn iam_census(stack: &LocalStack, p: &Platform) -> Census {
    let aws = stack.sdk_config().await;
    let iam = Clients::new(&aws).iam().clone();
    let mut out = Census::new();
    let prefix = format!("tenantry-{}-", p.names.stem());
    let mut roles = iam.list_roles().into_paginator().items().send();
    let mut ours = Vec::new();
    while let Some(role) = roles.next().await {
        let role = role.expect("ListRoles");
        if let Some(purpose) = role.role_name().strip_prefix(&prefix) {
            ours.push((role.role_name().to_owned(), purpose.to_owned()));
        }
    }
    for (name, purpose) in ours {
        let tags = iam
            .list_role_tags()
            .role_name(&name)
            .send()
            .await
            .expect("ListRoleTags");
        if !tags
            .tags()
            .iter()
            .any(|t| t.key() == TAG_PLATFORM && t.value() == p.id())
        {
            *out.entry(format!("iam-role/{purpose}/untagged"))
                .or_default() += 1;
            continue;
        }
        *out.entry(format!("iam-role/{purpose}")).or_default() += 1;
        let managed = iam
            .list_attached_role_policies()
            .role_name(&name)
            .send()
            .await
            .expect("ListAttachedRolePolicies");
        out.insert(
            format!("iam-role/{purpose}/managed"),
            managed.attached_policies().len(),
        );
        let inline = iam
            .list_role_policies()
            .role_name(&name)
            .send()
            .await
            .expect("ListRolePolicies");
        out.insert(
            format!("iam-role/{purpose}/inline"),
            inline.policy_names().len(),
        );
    }
    let providers = iam
        .list_open_id_connect_providers()
        .send()
        .await
        .expect("ListOpenIDConnectProviders");
    for provider in providers.open_id_connect_provider_list() {
        let Some(arn) = provider.arn() else { continue };
        let got = iam
            .get_open_id_connect_provider()
            .open_id_connect_provider_arn(arn)
            .send()
            .await
            .expect("GetOpenIDConnectProvider");
        if got
            .tags()
            .iter()
            .any(|t| t.key() == TAG_PLATFORM && t.value() == p.id())
        {
            *out.entry("iam-oidc-provider".to_owned()).or_default() += 1;
        }
    }
    out
}

/// EKS clusters tagged with the platform and the platform's cluster log groups.
async fn cluster_census(stack: &LocalStack, p: &Platform) -> Census {
    let aws = stack.sdk_config().await;
    let eks = aws_sdk_eks::Client::new(&aws);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&aws);
    let mut out = Census::new();
    let mut clusters = eks.list_clusters().into_paginator().items().send();
    while let Some(name) = clusters.next().await {
        let name = name.expect("ListClusters");
        let described = eks
            .describe_cluster()
            .name(&name)
            .send()
            .await
            .expect("DescribeCluster");
        let tagged = described
            .cluster()
            .and_then(|c| c.tags())
            .and_then(|t| t.get(TAG_PLATFORM))
            .is_some_and(|v| v == p.id());
        if tagged {
            *out.entry("eks-cluster".to_owned()).or_default() += 1;
        }
    }
    let prefix = format!("/aws/eks/{}/", p.names.stem());
    let mut groups = logs
        .describe_log_groups()
        .log_group_name_prefix(&prefix)
        .into_paginator()
        .items()
        .send();
    while let Some(group) = groups.next().await {
        let group = group.expect("DescribeLogGroups");
        let retention = group.retention_in_days().unwrap_or_default();
        let kms = group.kms_key_id().is_some();
        *out.entry(format!("log-group/retention={retention}/kms={kms}"))
            .or_default() += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn encryption_converges_after_a_crash_after_any_mutating_call() {
    let stack = stack().await;
    let started = Instant::now();
    let k = sweep(&stack, Target::Encryption).await;
    eprintln!("encryption: K = {k}, {:?}", started.elapsed());
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identity_converges_after_a_crash_after_any_mutating_call_of_either_stage() {
    let stack = stack().await;
    let started = Instant::now();
    let base = sweep(&stack, Target::IdentityBase).await;
    let irsa = sweep(&stack, Target::IdentityIrsa).await;
    eprintln!(
        "identity: K = {base} (base roles) + {irsa} (OIDC provider, workload roles), {:?}",
        started.elapsed()
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_converges_after_a_crash_after_any_mutating_call() {
    let stack = stack().await;
    let started = Instant::now();
    let k = sweep(&stack, Target::Cluster).await;
    eprintln!("cluster: K = {k}, {:?}", started.elapsed());
    stack.shutdown().await;
}
