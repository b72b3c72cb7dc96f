//! The `encryption` and `identity` phases on the local stack, for `examples/platform.json`:
//! what they create (read back from moto), that a second `ensure` makes no mutating call (the
//! gateway's call log), that a run interrupted between CreateKey and CreateAlias converges
//! without a second key, and that `delete` leaves nothing tagged with the platform, twice.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use tenantry::deps::Deps;
use tenantry::phases::{encryption, identity, Action, PhaseInput, PhaseOutput};
use tenantry::policies;
use tenantry::store::{PhaseState, PhaseStatus, Store};
use tenantry_gateway::{CallLog, CrashRule, Faults, LocalStack};
use tenantry_integration::invoke;

const ISSUER: &str = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";
const ISSUER_HOST: &str = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";

/// Records the example platform's spec and status; returns its id.
async fn platform(deps: &Deps) -> (Store, String) {
    let store = Store::from_deps(deps);
    store.create_table_if_missing().await.expect("state table");
    let spec = tenantry_integration::example_spec();
    tenantry_integration::record_platform(&store, &spec).await;
    (store, spec.id)
}

fn input(id: &str, action: Action) -> PhaseInput {
    PhaseInput {
        platform_id: id.to_owned(),
        request_id: "it-security".to_owned(),
        action,
        item: None,
        scope: None,
    }
}

/// Mutating and read calls to one service since the last reset.
fn counts(calls: &CallLog, service: &str) -> (usize, usize) {
    calls.by_service().get(service).copied().unwrap_or_default()
}

async fn run_encryption(
    stack: &LocalStack,
    deps: &Deps,
    id: &str,
    action: Action,
) -> (PhaseOutput, CallLog) {
    stack.reset_calls();
    let out = encryption::handle(input(id, action), deps)
        .await
        .unwrap_or_else(|e| panic!("encryption {action:?}: {e}"));
    (out, stack.calls())
}

async fn run_identity(
    stack: &LocalStack,
    deps: &Deps,
    id: &str,
    action: Action,
) -> (PhaseOutput, CallLog) {
    stack.reset_calls();
    let out = identity::handle(input(id, action), deps)
        .await
        .unwrap_or_else(|e| panic!("identity {action:?}: {e}"));
    (out, stack.calls())
}

/// Every key tagged with the platform: key id → (state, purpose tag).
async fn platform_keys(deps: &Deps, id: &str) -> BTreeMap<String, (String, String)> {
    let kms = deps.clients.kms().clone();
    let mut out = BTreeMap::new();
    let keys = kms.list_keys().send().await.expect("ListKeys");
    for key in keys.keys() {
        let key_id = key.key_id().unwrap_or_default();
        let tags = kms
            .list_resource_tags()
            .key_id(key_id)
            .send()
            .await
            .expect("tags");
        let tag = |k: &str| {
            tags.tags()
                .iter()
                .find(|t| t.tag_key() == k)
                .map(|t| t.tag_value().to_owned())
        };
        if tag("tenantry:platform").as_deref() != Some(id) {
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
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default();
        out.insert(
            key_id.to_owned(),
            (
                state,
                tag(tenantry::resources::kms_key::TAG_PURPOSE).unwrap_or_default(),
            ),
        );
    }
    out
}

/// The key an alias points to, with its rotation status and policy as moto stores them.
async fn aliased_key(deps: &Deps, alias: &str) -> Option<(String, bool, Value)> {
    let kms = deps.clients.kms().clone();
    let meta = kms.describe_key().key_id(alias).send().await.ok()?;
    let key_id = meta.key_metadata()?.key_id().to_owned();
    let rotation = kms
        .get_key_rotation_status()
        .key_id(&key_id)
        .send()
        .await
        .expect("GetKeyRotationStatus")
        .key_rotation_enabled();
    let policy = kms
        .get_key_policy()
        .key_id(&key_id)
        .policy_name("default")
        .send()
        .await
        .expect("GetKeyPolicy");
    let policy = serde_json::from_str(policy.policy().unwrap_or("null")).expect("policy is JSON");
    Some((key_id, rotation, policy))
}

fn statement<'a>(policy: &'a Value, sid: &str) -> &'a Value {
    policy["Statement"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["Sid"] == sid))
        .unwrap_or_else(|| panic!("no statement {sid} in {policy}"))
}

fn mutating(calls: &CallLog, service: &str) -> usize {
    counts(calls, service).0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_creates_converges_and_deletes_keys() {
    let stack = tenantry_integration::stack().await;
    let deps = stack.deps().await;
    let (_store, id) = platform(&deps).await;
    let alias = |purpose: &str| format!("alias/tenantry/payments-prod/{purpose}");

    // First ensure: three keys (cluster secrets, logs, data), rotation on, aliased.
    let (out, calls) = run_encryption(&stack, &deps, &id, Action::Ensure).await;
    assert!(out.ready);
    assert_eq!(out.changes as usize, mutating(&calls, "kms"));
    assert_eq!(calls.count("kms", "CreateKey"), 3);
    assert_eq!(calls.count("kms", "EnableKeyRotation"), 3);
    assert_eq!(calls.count("kms", "CreateAlias"), 3);
    assert_eq!(mutating(&calls, "kms"), 9);
    eprintln!(
        "encryption ensure #1: kms {:?}, all {:?}",
        counts(&calls, "kms"),
        calls.by_service()
    );
    for output in ["secretsKeyArn", "logsKeyArn", "dataKeyArn"] {
        assert!(
            out.outputs[output]
                .as_str()
                .is_some_and(|a| a.starts_with("arn:aws:kms:us-east-1:")),
            "{output}"
        );
    }

    let mut key_ids = BTreeMap::new();
    for purpose in ["cluster", "logs", "data"] {
        let (key_id, rotation, policy) = aliased_key(&deps, &alias(purpose))
            .await
            .expect("aliased key");
        assert!(rotation, "{purpose}: rotation on");
        let root = statement(&policy, "AccountAdministration");
        assert_eq!(root["Principal"]["AWS"], "arn:aws:iam::123456789012:root");
        key_ids.insert(purpose, key_id);
        match purpose {
            "cluster" => {
                let eks = statement(&policy, "EksSecretsEncryption");
                assert_eq!(eks["Principal"]["Service"], "eks.amazonaws.com");
                assert_eq!(
                    eks["Condition"]["StringEquals"]["aws:SourceAccount"],
                    "123456789012"
                );
                assert_eq!(
                    eks["Condition"]["ArnLike"]["aws:SourceArn"],
                    "arn:aws:eks:us-east-1:123456789012:cluster/payments-prod"
                );
            }
            "logs" => {
                let logs = statement(&policy, "CloudWatchLogsEncryption");
                assert_eq!(logs["Principal"]["Service"], "logs.us-east-1.amazonaws.com");
                let context =
                    &logs["Condition"]["StringLike"]["kms:EncryptionContext:aws:logs:arn"];
                assert!(context.as_array().is_some_and(|c| c.contains(&json!(
                    "arn:aws:logs:us-east-1:123456789012:log-group:/aws/eks/payments-prod/*"
                ))));
            }
            _ => {
                // The data key: the account, EC2 for encrypted node volumes, and CloudWatch
                // alarms publishing to the platform's encrypted topic (the platform's alarms only).
                assert_eq!(policy["Statement"].as_array().map(Vec::len), Some(3));
                let volumes = &policy["Statement"][1];
                assert_eq!(
                    volumes["Condition"]["StringEquals"]["kms:ViaService"],
                    "ec2.us-east-1.amazonaws.com"
                );
                let alarms = &policy["Statement"][2];
                assert_eq!(alarms["Principal"]["Service"], "cloudwatch.amazonaws.com");
                assert_eq!(
                    alarms["Condition"]["StringEquals"]["aws:SourceAccount"],
                    "123456789012"
                );
            }
        }
    }

    // Second ensure: nothing to do, nothing written to KMS.
    let (out, calls) = run_encryption(&stack, &deps, &id, Action::Ensure).await;
    eprintln!(
        "encryption ensure #2 (no-op): kms {:?}, all {:?}",
        counts(&calls, "kms"),
        calls.by_service()
    );
    assert_eq!(mutating(&calls, "kms"), 0, "{:?}", calls.by_operation());
    assert_eq!(out.changes, 0);

    // observe reports a difference made behind Tenantry's back, without writing.
    let kms = deps.clients.kms().clone();
    kms.disable_key_rotation()
        .key_id(&key_ids["data"])
        .send()
        .await
        .expect("disable rotation");
    let (out, calls) = run_encryption(&stack, &deps, &id, Action::Observe).await;
    assert_eq!(mutating(&calls, "kms"), 0);
    assert_eq!(out.drift.len(), 1, "{:?}", out.drift);
    assert_eq!(out.drift[0].field, "keyRotationEnabled");

    // A key without its alias or rotation (as after a run that stopped right after CreateKey,
    // or an alias deleted by hand): ensure adopts it (found by its tags) instead of creating a
    // second key.
    kms.delete_alias()
        .alias_name(alias("logs"))
        .send()
        .await
        .expect("delete alias");
    kms.disable_key_rotation()
        .key_id(&key_ids["logs"])
        .send()
        .await
        .expect("disable rotation");
    let (_, calls) = run_encryption(&stack, &deps, &id, Action::Ensure).await;
    eprintln!(
        "encryption ensure after interrupted create: {:?}",
        calls.by_operation()
    );
    assert_eq!(calls.count("kms", "CreateKey"), 0);
    assert_eq!(calls.count("kms", "CreateAlias"), 1);
    assert_eq!(
        calls.count("kms", "EnableKeyRotation"),
        2,
        "logs (adopted) and data (drifted)"
    );
    let (logs_key, rotation, _) = aliased_key(&deps, &alias("logs"))
        .await
        .expect("aliased again");
    assert_eq!(logs_key, key_ids["logs"]);
    assert!(rotation);
    let keys = platform_keys(&deps, &id).await;
    let purposes: Vec<_> = keys.values().map(|(_, p)| p.as_str()).collect();
    assert_eq!(keys.len(), 3, "one key per purpose: {keys:?}");
    assert_eq!(purposes.iter().collect::<BTreeSet<_>>().len(), 3);

    // delete: aliases gone, every key pending deletion; again: nothing to do.
    let (out, calls) = run_encryption(&stack, &deps, &id, Action::Delete).await;
    eprintln!("encryption delete: {:?}", calls.by_operation());
    assert!(out.ready);
    assert_eq!(calls.count("kms", "DeleteAlias"), 3);
    assert_eq!(calls.count("kms", "ScheduleKeyDeletion"), 3);
    for purpose in ["cluster", "logs", "data"] {
        assert!(
            aliased_key(&deps, &alias(purpose)).await.is_none(),
            "{purpose}"
        );
    }
    let keys = platform_keys(&deps, &id).await;
    assert!(
        keys.values().all(|(state, _)| state == "PendingDeletion"),
        "{keys:?}"
    );
    let (out, calls) = run_encryption(&stack, &deps, &id, Action::Delete).await;
    assert_eq!(mutating(&calls, "kms"), 0, "{:?}", calls.by_operation());
    assert_eq!(out.changes, 0);
    stack.shutdown().await;
}

/// Roles named for the platform, with their tags.
async fn platform_roles(deps: &Deps) -> BTreeMap<String, BTreeMap<String, String>> {
    let iam = deps.clients.iam().clone();
    let roles = iam.list_roles().send().await.expect("ListRoles");
    let mut out = BTreeMap::new();
    for role in roles.roles() {
        let tags = iam
            .list_role_tags()
            .role_name(role.role_name())
            .send()
            .await
            .expect("tags");
        let tags: BTreeMap<_, _> = tags
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect();
        if role.role_name().starts_with("tenantry-payments-prod-")
            || tags.contains_key("tenantry:platform")
        {
            out.insert(role.role_name().to_owned(), tags);
        }
    }
    out
}

async fn oidc_providers(deps: &Deps) -> Vec<(String, String, Vec<String>)> {
    let iam = deps.clients.iam().clone();
    let list = iam
        .list_open_id_connect_providers()
        .send()
        .await
        .expect("list providers");
    let mut out = Vec::new();
    for p in list.open_id_connect_provider_list() {
        let arn = p.arn().unwrap_or_default().to_owned();
        let got = iam
            .get_open_id_connect_provider()
            .open_id_connect_provider_arn(&arn)
            .send()
            .await
            .expect("get provider");
        out.push((
            arn,
            got.url().unwrap_or_default().to_owned(),
            got.client_id_list().to_vec(),
        ));
    }
    out
}

async fn trust_of(deps: &Deps, role: &str) -> Value {
    let iam = deps.clients.iam().clone();
    let got = iam
        .get_role()
        .role_name(role)
        .send()
        .await
        .expect("GetRole");
    let doc = got
        .role()
        .and_then(|r| r.assume_role_policy_document())
        .unwrap_or_default();
    policies::parse_returned(doc).expect("trust policy is (URL-encoded) JSON")
}

async fn record_phase(store: &Store, id: &str, phase: &str, outputs: BTreeMap<String, Value>) {
    store
        .record_phase(
            id,
            phase,
            &PhaseStatus::new(PhaseState::Succeeded),
            &outputs,
        )
        .await
        .expect("record phase");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_creates_roles_then_irsa_and_deletes_everything() {
    let stack = tenantry_integration::stack().await;
    let deps = stack.deps().await;
    let (store, id) = platform(&deps).await;
    let secrets_key = "arn:aws:kms:us-east-1:123456789012:key/0f0e0d0c-0000-4000-8000-000000000001";
    record_phase(
        &store,
        &id,
        "encryption",
        BTreeMap::from([("secretsKeyArn".to_owned(), json!(secrets_key))]),
    )
    .await;

    // Before the cluster exists: the base roles only.
    let (out, calls) = run_identity(&stack, &deps, &id, Action::Ensure).await;
    eprintln!(
        "identity ensure #1 (base roles): iam {:?}, all {:?}",
        counts(&calls, "iam"),
        calls.by_service()
    );
    assert!(out.ready);
    assert_eq!(out.changes as usize, mutating(&calls, "iam"));
    let roles = platform_roles(&deps).await;
    let names: Vec<_> = roles.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "tenantry-payments-prod-cluster",
            "tenantry-payments-prod-flow-logs",
            "tenantry-payments-prod-node"
        ]
    );
    assert!(roles
        .values()
        .all(|t| t.get("tenantry:platform").map(String::as_str) == Some("payments")));
    assert!(oidc_providers(&deps).await.is_empty());
    for output in ["clusterRoleArn", "nodeRoleArn", "flowLogsRoleArn"] {
        assert!(out.outputs.contains_key(output), "{output}");
    }
    assert!(!out.outputs.contains_key("oidcProviderArn"));
    let iam = deps.clients.iam().clone();
    let attached = iam
        .list_attached_role_policies()
        .role_name("tenantry-payments-prod-node")
        .send()
        .await
        .expect("attached");
    let attached: BTreeSet<_> = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_name())
        .collect();
    for p in [
        "AmazonEKSWorkerNodePolicy",
        "AmazonEKS_CNI_Policy",
        "AmazonEC2ContainerRegistryReadOnly",
        "AmazonSSMManagedInstanceCore",
    ] {
        assert!(attached.contains(p), "node role lacks {p}: {attached:?}");
    }
    let flow_trust = trust_of(&deps, "tenantry-payments-prod-flow-logs").await;
    assert_eq!(
        flow_trust["Statement"][0]["Condition"]["StringEquals"]["aws:SourceAccount"],
        "123456789012"
    );

    let (out, calls) = run_identity(&stack, &deps, &id, Action::Ensure).await;
    eprintln!(
        "identity ensure #2 (no-op): iam {:?}",
        counts(&calls, "iam")
    );
    assert_eq!(mutating(&calls, "iam"), 0, "{:?}", calls.by_operation());
    assert_eq!(out.changes, 0);

    // The cluster phase recorded its issuer: OIDC provider and IRSA roles follow.
    record_phase(
        &store,
        &id,
        "cluster",
        BTreeMap::from([
            ("oidcIssuer".to_owned(), json!(ISSUER)),
            ("clusterName".to_owned(), json!("payments-prod")),
        ]),
    )
    .await;
    let (out, calls) = run_identity(&stack, &deps, &id, Action::Ensure).await;
    eprintln!(
        "identity ensure #3 (OIDC + service roles): iam {:?}",
        counts(&calls, "iam")
    );
    assert!(out.ready);
    let providers = oidc_providers(&deps).await;
    assert_eq!(providers.len(), 1, "{providers:?}");
    let (arn, url, clients) = &providers[0];
    assert_eq!(
        arn,
        &format!("arn:aws:iam::123456789012:oidc-provider/{ISSUER_HOST}")
    );
    assert_eq!(
        url.trim_start_matches("https://"),
        ISSUER_HOST,
        "provider URL is the issuer"
    );
    assert_eq!(clients, &vec!["sts.amazonaws.com".to_owned()]);
    assert_eq!(out.outputs["oidcProviderArn"], json!(arn));
    let service = out.outputs["serviceRoleArns"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let expected = [
        ("ebs-csi", "kube-system", "ebs-csi-controller-sa"),
        ("cluster-autoscaler", "kube-system", "cluster-autoscaler"),
        (
            "alb-controller",
            "kube-system",
            "aws-load-balancer-controller",
        ),
        ("external-dns", "external-dns", "external-dns"),
        ("external-secrets", "external-secrets", "external-secrets"),
    ];
    assert_eq!(service.len(), expected.len(), "{service:?}");
    for (purpose, ns, sa) in expected {
        let role = format!("tenantry-payments-prod-{purpose}");
        let trust = trust_of(&deps, &role).await;
        let irsa = statement(&trust, "Irsa");
        assert_eq!(irsa["Principal"]["Federated"], json!(arn));
        assert_eq!(irsa["Action"], "sts:AssumeRoleWithWebIdentity");
        assert_eq!(
            irsa["Condition"],
            json!({ "StringEquals": {
                format!("{ISSUER_HOST}:sub"): format!("system:serviceaccount:{ns}:{sa}"),
                format!("{ISSUER_HOST}:aud"): "sts.amazonaws.com",
            } }),
            "{role}: exactly sub and aud"
        );
    }
    let dns = iam
        .get_role_policy()
        .role_name("tenantry-payments-prod-external-dns")
        .policy_name("permissions")
        .send()
        .await
        .expect("external-dns policy");
    let dns = policies::parse_returned(dns.policy_document()).expect("JSON");
    assert_eq!(
        dns["Statement"][0]["Resource"],
        json!(["arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ"])
    );

    let (out, calls) = run_identity(&stack, &deps, &id, Action::Ensure).await;
    eprintln!(
        "identity ensure #4 (no-op with cluster): iam {:?}",
        counts(&calls, "iam")
    );
    assert_eq!(mutating(&calls, "iam"), 0, "{:?}", calls.by_operation());
    assert_eq!(out.changes, 0);

    // delete: nothing tagged with the platform remains; again: nothing to do.
    let (out, calls) = run_identity(&stack, &deps, &id, Action::Delete).await;
    eprintln!("identity delete: iam {:?}", counts(&calls, "iam"));
    assert!(out.ready);
    assert!(platform_roles(&deps).await.is_empty());
    assert!(oidc_providers(&deps).await.is_empty());
    let (out, calls) = run_identity(&stack, &deps, &id, Action::Delete).await;
    assert_eq!(mutating(&calls, "iam"), 0, "{:?}", calls.by_operation());
    assert_eq!(out.changes, 0);
    let inventory = store.list_resources(&id).await.expect("inventory");
    assert!(
        inventory.iter().all(|r| r.phase != "identity"),
        "{inventory:?}"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_crash_between_create_key_and_create_alias_converges_with_one_key() {
    let stack = tenantry_integration::stack().await;
    let deps = stack.deps().await;
    let (_store, id) = platform(&deps).await;
    let payload = json!({ "platformId": id, "requestId": "it-crash", "action": "ensure" });

    // Crash the invocation after its n-th AWS call, for growing n, until the call it died after
    // is the first CreateKey: the key exists (tagged at creation), its alias does not.
    let mut crashed_after = None;
    for n in 1..=40 {
        stack.reset_calls();
        stack.set_faults(Faults {
            crash_after_calls: Some(CrashRule::new("encryption", n)),
            ..Faults::default()
        });
        let (error, _) = invoke(&stack, "encryption", &payload)
            .await
            .expect_err("the run crashes");
        assert_eq!(error, "Runtime.ExitError", "crash after call {n}");
        let log = stack.calls();
        let last = log
            .for_function("encryption")
            .last()
            .cloned()
            .expect("a call");
        if last.operation == "CreateKey" {
            crashed_after = Some(n);
            break;
        }
        assert_eq!(
            log.for_function("encryption")
                .filter(|c| c.mutating && c.service == "kms")
                .count(),
            0
        );
    }
    let n = crashed_after.expect("a crash right after CreateKey");
    stack.set_faults(Faults::default());
    let orphans = platform_keys(&deps, &id).await;
    assert_eq!(orphans.len(), 1, "{orphans:?}");
    let (orphan, (state, purpose)) = orphans.into_iter().next().expect("one key");
    assert_eq!((state.as_str(), purpose.as_str()), ("Enabled", "cluster"));
    assert!(aliased_key(&deps, "alias/tenantry/payments-prod/cluster")
        .await
        .is_none());
    eprintln!("crashed after call {n} (CreateKey); key {orphan} left without alias");

    stack.reset_calls();
    let rerun = invoke(&stack, "encryption", &payload)
        .await
        .expect("the re-run succeeds");
    assert_eq!(rerun["ready"], json!(true));
    let calls = stack.calls();
    assert_eq!(
        calls.count("kms", "CreateKey"),
        2,
        "only the two missing keys are created"
    );
    let keys = platform_keys(&deps, &id).await;
    assert_eq!(keys.len(), 3, "one key per purpose: {keys:?}");
    let (adopted, rotation, _) = aliased_key(&deps, "alias/tenantry/payments-prod/cluster")
        .await
        .expect("the cluster alias exists");
    assert_eq!(adopted, orphan, "the crashed run's key was adopted");
    assert!(rotation);

    stack.reset_calls();
    let third = invoke(&stack, "encryption", &payload)
        .await
        .expect("third run");
    assert_eq!(third["changes"], json!(0));
    assert_eq!(mutating(&stack.calls(), "kms"), 0);
    stack.shutdown().await;
}
