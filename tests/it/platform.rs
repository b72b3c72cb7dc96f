//! Provision and decommission a platform end to end, the way users do it: a request event on
//! the Tenantry bus → EventBridge rule → SQS → intake → Step Functions (the real ASL on moto's
//! interpreter) → phase functions through the gateway's Lambda Invoke API → AWS (moto).

use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tenantry::drift::RemediateRequest;
use tenantry::events::{PlatformRequest, RequestKind, SCHEMA_VERSION};
use tenantry::store::{LifecycleState, RequestState, Store};
use tenantry_gateway::control_plane::ControlPlane;
use tenantry_gateway::inspect::{tag_filter, tagged_resources};
use tenantry_gateway::{CallLog, CrashRule, Durations, Faults, LocalStack};
use tenantry_integration::Execution;

/// Services Tenantry uses for its own bookkeeping (state, workflows, events), not the platform.
const CONTROL_PLANE_SERVICES: &[&str] = &["dynamodb", "states", "events", "sqs", "sts"];

pub(crate) struct Env {
    pub(crate) stack: LocalStack,
    _control_plane: ControlPlane,
    pub(crate) aws: aws_config::SdkConfig,
    pub(crate) store: Store,
    pub(crate) spec: Value,
}

pub(crate) async fn env() -> Env {
    env_on(tenantry_integration::stack().await).await
}

/// The control plane deployed on `stack` (e.g. one running the real function binaries).
pub(crate) async fn env_on(stack: LocalStack) -> Env {
    std::env::set_var("TENANTRY_POLL_SECONDS", "1");
    let control_plane = tenantry_gateway::control_plane::deploy(&stack)
        .await
        .expect("control plane");
    let aws = stack.sdk_config().await;
    let store = Store::from_config(&aws, stack.table_name());
    let spec: Value = serde_json::from_str(include_str!("../../examples/platform.json")).unwrap();
    Env {
        stack,
        _control_plane: control_plane,
        aws,
        store,
        spec,
    }
}

impl Env {
    pub(crate) fn platform_id(&self) -> String {
        self.spec["id"].as_str().unwrap().to_owned()
    }

    async fn put(&self, kind: RequestKind, request_id: &str, spec: Option<Value>) {
        self.put_detail(kind, request_id, spec, None).await
    }

    pub(crate) async fn put_detail(
        &self,
        kind: RequestKind,
        request_id: &str,
        spec: Option<Value>,
        remediate: Option<RemediateRequest>,
    ) {
        // A spec names its platform; requests without one are for this env's.
        let platform_id = spec
            .as_ref()
            .and_then(|s| s["id"].as_str())
            .map_or_else(|| self.platform_id(), str::to_owned);
        let detail = PlatformRequest {
            schema_version: SCHEMA_VERSION.to_owned(),
            request_id: request_id.to_owned(),
            platform_id,
            spec,
            remediate,
            components: None,
        };
        let out = aws_sdk_eventbridge::Client::new(&self.aws)
            .put_events()
            .entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .event_bus_name(tenantry::events::event_bus())
                    .source("tests")
                    .detail_type(kind.detail_type())
                    .detail(serde_json::to_string(&detail).unwrap())
                    .build(),
            )
            .send()
            .await
            .expect("put events");
        assert_eq!(out.failed_entry_count(), 0);
    }

    /// Waits for intake's verdict on a request.
    pub(crate) async fn verdict(&self, request_id: &str) -> tenantry::store::RequestInfo {
        for _ in 0..200 {
            if let Some(info) = self.store.get_request(request_id).await.unwrap() {
                if info.state == RequestState::Rejected || info.execution_arn.is_some() {
                    return info;
                }
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        panic!("intake never answered request {request_id}");
    }

    /// Runs a request to the end of its execution; returns the execution's status and history.
    pub(crate) async fn run(&self, kind: RequestKind, request_id: &str) -> Execution {
        let spec = kind.needs_spec().then(|| self.spec.clone());
        self.run_detail(kind, request_id, spec, None).await
    }

    /// Asks to provision another platform, `spec`, on the same stack; [`Env::finish`] waits.
    pub(crate) async fn provision(&self, spec: Value, request_id: &str) {
        self.put_detail(RequestKind::PlatformProvision, request_id, Some(spec), None)
            .await
    }

    /// Runs a drift check (`DriftCheckRequested` with `remediate`) to the end of its execution.
    pub(crate) async fn check_drift(
        &self,
        request_id: &str,
        remediate: Option<RemediateRequest>,
    ) -> Execution {
        self.run_detail(RequestKind::DriftCheck, request_id, None, remediate)
            .await
    }

    /// A compliance sweep of this env's platform, run to its end.
    pub(crate) async fn sweep_compliance(&self, request_id: &str) -> Execution {
        self.run_detail(RequestKind::ComplianceSweep, request_id, None, None)
            .await
    }

    async fn run_detail(
        &self,
        kind: RequestKind,
        request_id: &str,
        spec: Option<Value>,
        remediate: Option<RemediateRequest>,
    ) -> Execution {
        let t0 = Instant::now();
        self.put_detail(kind, request_id, spec, remediate).await;
        let mut run = self.finish(request_id).await;
        run.elapsed = t0.elapsed();
        run
    }

    /// Waits for a request put on the bus to be started and for its execution to end.
    pub(crate) async fn finish(&self, request_id: &str) -> Execution {
        let info = self.verdict(request_id).await;
        // Started, or already finished by the time it is looked at (finalize records the end).
        assert_ne!(
            info.state,
            RequestState::Rejected,
            "{request_id}: {:?}",
            info.error
        );
        let arn = info
            .execution_arn
            .unwrap_or_else(|| panic!("{request_id}: no execution"));
        wait_execution(&self.aws, &arn).await
    }
}

async fn wait_execution(aws: &aws_config::SdkConfig, arn: &str) -> Execution {
    let sfn = aws_sdk_sfn::Client::new(aws);
    tenantry_integration::wait_execution(&sfn, arn, Duration::from_secs(300)).await
}

/// Mutating and read calls per service, platform services only.
pub(crate) fn platform_calls(log: &CallLog) -> BTreeMap<String, (usize, usize)> {
    log.by_service()
        .into_iter()
        .filter(|(service, _)| !CONTROL_PLANE_SERVICES.contains(&service.as_str()))
        .collect()
}

pub(crate) fn mutating(calls: &BTreeMap<String, (usize, usize)>) -> usize {
    calls.values().map(|(m, _)| m).sum()
}

#[tokio::test]
async fn provision_rerun_and_decommission_through_the_event_bus() {
    let env = env().await;
    let platform = env.platform_id();

    // 1. Provision.
    env.stack.reset_calls();
    let first = env.run(RequestKind::PlatformProvision, "provision-1").await;
    assert_eq!(
        first.status,
        ExecutionStatus::Succeeded,
        "{:?} {:?}",
        first.cause,
        first.failures()
    );
    let provision_calls = platform_calls(&env.stack.calls());
    let status = env
        .store
        .get_status(&platform)
        .await
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(status.state, LifecycleState::Active);
    eprintln!(
        "provision: {:.1}s, {} state transitions, platform calls (mutating, read) by service: {provision_calls:?}; all calls: {} mutating / {} read",
        first.elapsed.as_secs_f64(),
        first.transitions(),
        env.stack.calls().mutating_count(),
        env.stack.calls().read_count()
    );

    // What the platform looks like in AWS.
    let ec2 = aws_sdk_ec2::Client::new(&env.aws);
    let subnets = ec2
        .describe_subnets()
        .filters(tag_filter(&platform))
        .send()
        .await
        .unwrap();
    let subnet_azs: std::collections::BTreeSet<_> = subnets
        .subnets()
        .iter()
        .filter_map(|s| s.availability_zone())
        .collect();
    assert_eq!(subnet_azs.len(), 3, "subnets in 3 AZs");
    let elb_tagged = subnets
        .subnets()
        .iter()
        .filter(|s| {
            s.tags()
                .iter()
                .any(|t| t.key() == Some("kubernetes.io/role/elb"))
        })
        .count();
    let internal_tagged = subnets
        .subnets()
        .iter()
        .filter(|s| {
            s.tags()
                .iter()
                .any(|t| t.key() == Some("kubernetes.io/role/internal-elb"))
        })
        .count();
    assert_eq!(
        (elb_tagged, internal_tagged),
        (3, 3),
        "public and private subnet per AZ with discovery tags"
    );
    let before = tagged_resources(&env.aws, &platform).await.unwrap();
    assert_eq!(before["ec2:nat-gateway"], 3, "one NAT per AZ");
    assert_eq!(before["ec2:vpc"], 1);
    assert_eq!(
        before["ec2:vpc-endpoint"], 6,
        "S3 gateway + 5 interface endpoints"
    );

    let eks = aws_sdk_eks::Client::new(&env.aws);
    let cluster_name = status.outputs["clusterName"].as_str().unwrap().to_owned();
    let cluster = eks
        .describe_cluster()
        .name(&cluster_name)
        .send()
        .await
        .unwrap();
    let cluster = cluster.cluster().unwrap();
    assert_eq!(cluster.version(), env.spec["kubernetesVersion"].as_str());
    let vpc_config = cluster.resources_vpc_config().unwrap();
    assert!(vpc_config.endpoint_private_access());
    assert!(
        !vpc_config.endpoint_public_access(),
        "the example keeps the public endpoint off"
    );
    let enabled_logs: usize = cluster
        .logging()
        .unwrap()
        .cluster_logging()
        .iter()
        .filter(|l| l.enabled() == Some(true))
        .map(|l| l.types().len())
        .sum();
    assert_eq!(enabled_logs, 5, "all five control-plane log types");
    let encryption = cluster.encryption_config();
    assert_eq!(
        encryption[0].provider().and_then(|p| p.key_arn()),
        status.outputs["secretsKeyArn"].as_str(),
        "secrets encrypted with the platform key"
    );
    let issuer = cluster
        .identity()
        .unwrap()
        .oidc()
        .unwrap()
        .issuer()
        .unwrap()
        .to_owned();
    let iam = aws_sdk_iam::Client::new(&env.aws);
    let provider_arn = status.outputs["oidcProviderArn"].as_str().unwrap();
    let provider = iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(provider_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        provider.url().map(|u| u.trim_start_matches("https://")),
        Some(issuer.trim_start_matches("https://")),
        "OIDC provider URL equals the cluster issuer"
    );
    let autoscaler = status.outputs["serviceRoleArns"]["cluster-autoscaler"]
        .as_str()
        .unwrap();
    let role = iam
        .get_role()
        .role_name(autoscaler.rsplit('/').next().unwrap())
        .send()
        .await
        .unwrap();
    let trust = role.role().unwrap().assume_role_policy_document().unwrap();
    let trust = tenantry::policies::parse_returned(trust).expect("trust policy JSON");
    let host = issuer.trim_start_matches("https://");
    let condition = &trust["Statement"][0]["Condition"]["StringEquals"];
    assert_eq!(
        condition[format!("{host}:sub")],
        "system:serviceaccount:kube-system:cluster-autoscaler"
    );
    assert_eq!(condition[format!("{host}:aud")], "sts.amazonaws.com");
    let kms = aws_sdk_kms::Client::new(&env.aws);
    let rotation = kms
        .get_key_rotation_status()
        .key_id(status.outputs["secretsKeyArn"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(rotation.key_rotation_enabled());

    crate::complete::assert_complete_platform(&env.stack, &env.aws, &env.spec, &status).await;
    crate::catalogue::assert_plan_matches_inventory(&env).await;
    crate::catalogue::assert_roles_are_bounded(&env).await;
    crate::catalogue::assert_observe_is_silent(&env).await;

    // 2. The same spec under a new request id: nothing to do for the platform's resources.
    env.stack.reset_calls();
    let again = env.run(RequestKind::PlatformProvision, "provision-2").await;
    assert_eq!(
        again.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        again.failures()
    );
    let rerun_calls = platform_calls(&env.stack.calls());
    eprintln!(
        "no-op re-run: {:.1}s, {} state transitions, platform calls (mutating, read): {rerun_calls:?}",
        again.elapsed.as_secs_f64(),
        again.transitions()
    );
    assert_eq!(
        mutating(&rerun_calls),
        0,
        "a re-run of an unchanged spec mutates nothing: {rerun_calls:?} {:?}",
        env.stack
            .calls()
            .calls
            .iter()
            .filter(|c| c.mutating && !CONTROL_PLANE_SERVICES.contains(&c.service.as_str()))
            .map(|c| format!("{} {}", c.service, c.operation))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        tagged_resources(&env.aws, &platform).await.unwrap(),
        before,
        "and creates nothing"
    );

    // 3. The same event delivered twice: one execution.
    env.put(
        RequestKind::PlatformProvision,
        "provision-2",
        Some(env.spec.clone()),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sfn = aws_sdk_sfn::Client::new(&env.aws);
    let provision_arn = &env._control_plane.state_machines["provision-platform"];
    let executions = sfn
        .list_executions()
        .state_machine_arn(provision_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        executions.executions().len(),
        2,
        "provision-1 and provision-2, nothing more"
    );

    // 4. Decommission: nothing tagged with the platform remains.
    env.stack.reset_calls();
    let gone = env
        .run(RequestKind::PlatformDecommission, "decommission-1")
        .await;
    assert_eq!(
        gone.status,
        ExecutionStatus::Succeeded,
        "{:?} {:?}",
        gone.cause,
        gone.failures()
    );
    eprintln!(
        "decommission: {:.1}s, {} state transitions, platform calls: {:?}",
        gone.elapsed.as_secs_f64(),
        gone.transitions(),
        platform_calls(&env.stack.calls())
    );
    let left = tagged_resources(&env.aws, &platform).await.unwrap();
    assert!(left.values().all(|n| *n == 0), "left behind: {left:?}");
    let status = env
        .store
        .get_status(&platform)
        .await
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(status.state, LifecycleState::Decommissioned);
    assert!(
        env.store
            .list_resources(&platform)
            .await
            .unwrap()
            .is_empty(),
        "inventory empty"
    );
}

#[tokio::test]
async fn a_conflicting_request_during_a_provision_is_refused_with_its_reason() {
    let env = env().await;
    // Keep the cluster CREATING long enough for the second request to arrive mid-provision.
    env.stack.set_durations(Durations {
        cluster_creating_secs: 6,
        ..Durations::default()
    });
    env.put(
        RequestKind::PlatformProvision,
        "first",
        Some(env.spec.clone()),
    )
    .await;
    let first = env.verdict("first").await;
    assert_eq!(first.state, RequestState::Started);

    env.put(RequestKind::PlatformDecommission, "second", None)
        .await;
    let second = env.verdict("second").await;
    assert_eq!(second.state, RequestState::Rejected);
    let error = second.error.expect("rejection reason");
    assert_eq!(error.code, "Tenantry.Conflict");
    assert!(
        error.message.contains("first"),
        "names the operation in flight: {}",
        error.message
    );

    let run = wait_execution(&env.aws, first.execution_arn.as_deref().unwrap()).await;
    assert_eq!(
        run.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        run.failures()
    );
    let sfn = aws_sdk_sfn::Client::new(&env.aws);
    let decommissions = sfn
        .list_executions()
        .state_machine_arn(&env._control_plane.state_machines["decommission-platform"])
        .send()
        .await
        .unwrap();
    assert!(
        decommissions.executions().is_empty(),
        "the refused request started nothing"
    );
}

#[tokio::test]
async fn a_phase_crashed_mid_way_is_retried_by_the_state_machine_and_converges() {
    let env = env().await;
    // Crash the network function right after its 6th AWS call (the VPC exists, tagged, the rest
    // does not): Step Functions retries the task (Runtime.ExitError) and the re-run converges.
    env.stack.set_faults(Faults {
        crash_after_calls: Some(CrashRule::new("network", 6)),
        ..Faults::default()
    });
    let run = env.run(RequestKind::PlatformProvision, "crashy").await;
    assert_eq!(
        run.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        run.failures()
    );
    assert!(
        run.failures()
            .iter()
            .any(|f| f.starts_with("Runtime.ExitError")),
        "the crash happened: {:?}",
        run.failures()
    );
    let crashed = env
        .stack
        .calls()
        .invocations
        .iter()
        .filter(|i| i.function == "network")
        .count();
    assert!(crashed >= 2, "network ran again after the crash");
    let found = tagged_resources(&env.aws, &env.platform_id())
        .await
        .unwrap();
    assert_eq!(
        (
            found["ec2:vpc"],
            found["ec2:subnet"],
            found["ec2:nat-gateway"]
        ),
        (1, 9, 3),
        "no duplicates: {found:?}"
    );
}

/// A queue receiving every result event Tenantry publishes on the bus.
async fn results_queue(env: &Env) -> (aws_sdk_sqs::Client, String) {
    let sqs = aws_sdk_sqs::Client::new(&env.aws);
    let url = tenantry_integration::results_queue(&env.aws, &sqs, "results").await;
    (sqs, url)
}

/// The first result event about `request_id`: (detail-type, detail).
async fn result_for(sqs: &aws_sdk_sqs::Client, url: &str, request_id: &str) -> (String, Value) {
    for _ in 0..60 {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in out.messages() {
            let envelope: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            if envelope["detail"]["requestId"] == request_id {
                return (
                    envelope["detail-type"].as_str().unwrap().to_owned(),
                    envelope["detail"].clone(),
                );
            }
        }
    }
    panic!("no result event for {request_id}");
}

#[tokio::test]
async fn an_invalid_request_is_rejected_with_every_issue_and_changes_nothing() {
    let env = env().await;
    let (sqs, results) = results_queue(&env).await;
    let mut spec = env.spec.clone();
    spec["network"]["azCount"] = json!(9);
    spec["logging"]["retentionDays"] = json!(13);
    env.stack.reset_calls();
    env.put(RequestKind::PlatformProvision, "bad-1", Some(spec))
        .await;
    let (detail_type, detail) = result_for(&sqs, &results, "bad-1").await;
    assert_eq!(detail_type, "PlatformProvisionRejected");
    let paths: Vec<&str> = detail["issues"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["path"].as_str())
        .collect();
    assert!(
        paths.contains(&"$.network.azCount") && paths.contains(&"$.logging.retentionDays"),
        "{paths:?}"
    );
    assert_eq!(detail["error"]["code"], "Tenantry.InvalidRequest");
    assert!(
        env.store
            .get_spec(&env.platform_id())
            .await
            .unwrap()
            .is_none(),
        "no spec recorded"
    );
    assert!(
        env.store
            .get_lease(&env.platform_id())
            .await
            .unwrap()
            .is_none(),
        "no lease taken"
    );
    assert_eq!(
        mutating(&platform_calls(&env.stack.calls())),
        0,
        "no AWS resource created"
    );
    let sfn = aws_sdk_sfn::Client::new(&env.aws);
    let executions = sfn
        .list_executions()
        .state_machine_arn(&env._control_plane.state_machines["provision-platform"])
        .send()
        .await
        .unwrap();
    assert!(executions.executions().is_empty(), "no execution started");
}

/// NAT gateways `pending` for a while, as AWS's are: the provision polls the network
/// (`NetworkRoutes`) until they are available and routed before any node group starts, and the
/// network phase ends `Succeeded` (not left `Running` behind an `Active` platform).
#[tokio::test]
async fn a_provision_routes_the_nat_gateways_once_available_before_the_node_groups() {
    let env = env().await;
    env.stack.set_durations(Durations {
        nat_pending_secs: 5,
        ..Durations::default()
    });
    let run = env.run(RequestKind::PlatformProvision, "nat-pending").await;
    assert_eq!(
        run.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        run.failures()
    );
    assert!(
        run.entered("NetworkRoutes") >= 2,
        "polled while pending: {}",
        run.entered("NetworkRoutes")
    );
    let entered = |name: &str| {
        run.history
            .iter()
            .filter(|e| {
                e.state_entered_event_details()
                    .is_some_and(|d| d.name() == name)
            })
            .map(|e| e.timestamp().as_secs_f64())
            .collect::<Vec<_>>()
    };
    let last_poll = entered("NetworkRoutes")
        .into_iter()
        .fold(f64::MIN, f64::max);
    let first_node_group = entered("NodeGroup").into_iter().fold(f64::MAX, f64::min);
    assert!(
        last_poll < first_node_group,
        "node groups start after the network is ready"
    );
    let status = env
        .store
        .get_status(&env.platform_id())
        .await
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(status.state, LifecycleState::Active);
    assert_eq!(
        status.phases["network"].state,
        tenantry::store::PhaseState::Succeeded
    );
    let refused: Vec<_> = env
        .stack
        .calls()
        .calls
        .into_iter()
        .filter(|c| c.operation.ends_with("Route") && c.status >= 400)
        .collect();
    assert!(refused.is_empty(), "routes to pending NATs: {refused:?}");
}
