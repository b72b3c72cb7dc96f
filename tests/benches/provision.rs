//! Benchmark: how close a provision's wall time comes to its critical path.
//!
//! Runs `examples/platform.json` through intake and the real provision state machine on the
//! local stack with simulated durations (cluster 10 s, node group 3 s, add-on 1 s, NAT gateways
//! pending for a minute as AWS's are; polls every second), then a decommission, and writes JSON (stdout and `$BENCH_OUT`, default
//! `target/tenantry-bench/provision.json`).
//!
//! The critical path is measured from the execution's own history, along the dependency chain
//! the platform cannot shorten:
//!   start → (foundations, network, cluster, IRSA) → the network ready (its NAT gateways
//!   available and routed; with a 10 s cluster the minute of NAT dominates, where in AWS the
//!   cluster's ten minutes hide it) → slowest node group iteration → slowest
//!   add-on-that-needs-nodes iteration → reconcile → finalize.
//! Everything else (DaemonSet add-ons, access, observability, bootstrap) runs beside it, so
//! `wall / critical` shows what the parallel branches and the fan-out cost on top (target:
//! at most 1.15). It is a measurement, not a test: nothing here asserts a time.
//!
//! Run: `cargo bench -p tenantry-integration --bench provision --profile dev` (`make bench`).

use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tenantry::events::RequestKind;
use tenantry::store::{RequestState, Store};
use tenantry_gateway::Durations;

/// How long a new NAT gateway stays `pending` (about a minute in AWS).
const NAT_PENDING_SECS: u64 = 60;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    std::env::set_var("TENANTRY_POLL_SECONDS", "1");
    let stack = tenantry_integration::stack().await;
    let control_plane = tenantry_gateway::control_plane::deploy(&stack).await?;
    let durations = Durations {
        cluster_creating_secs: 10,
        nodegroup_creating_secs: 3,
        addon_creating_secs: 1,
        cluster_deleting_secs: 3,
        nodegroup_deleting_secs: 2,
        cluster_updating_secs: 2,
        nat_pending_secs: NAT_PENDING_SECS,
    };
    stack.set_durations(durations.clone());
    let aws = stack.sdk_config().await;
    let store = Store::from_config(&aws, stack.table_name());
    let spec: Value = serde_json::from_str(include_str!("../../examples/platform.json"))?;
    let platform = spec["id"].as_str().unwrap_or_default().to_owned();

    stack.reset_calls();
    let provision = run(
        &stack,
        &store,
        RequestKind::PlatformProvision,
        "bench-provision",
        &platform,
        Some(&spec),
    )
    .await?;
    let provision_calls = stack.calls();
    let critical = critical_path(&provision.history);
    let wall = span(&provision.history);
    let ratio = wall.as_secs_f64() / critical.total.as_secs_f64();
    eprintln!(
        "provision: wall {:.1}s, critical path {:.1}s, ratio {ratio:.3}",
        wall.as_secs_f64(),
        critical.total.as_secs_f64()
    );

    stack.reset_calls();
    let decommission = run(
        &stack,
        &store,
        RequestKind::PlatformDecommission,
        "bench-decommission",
        &platform,
        None,
    )
    .await?;
    let decommission_calls = stack.calls();

    let report = json!({
        "benchmark": "provision",
        "spec": "examples/platform.json",
        "simulatedDurations": durations,
        "pollSeconds": 1,
        "provision": {
            "status": provision.status,
            "wallSeconds": wall.as_secs_f64(),
            "criticalPathSeconds": critical.total.as_secs_f64(),
            "criticalPath": critical.parts.iter().map(|(k, v)| (k.clone(), v.as_secs_f64())).collect::<BTreeMap<_, _>>(),
            "wallOverCriticalPath": ratio,
            "target": 1.15,
            "stateTransitions": transitions(&provision.history),
            "callsByService": provision_calls.by_service(),
            "mutatingCalls": provision_calls.mutating_count(),
            "readCalls": provision_calls.read_count(),
        },
        "decommission": {
            "status": decommission.status,
            "wallSeconds": span(&decommission.history).as_secs_f64(),
            "stateTransitions": transitions(&decommission.history),
            "callsByService": decommission_calls.by_service(),
            "mutatingCalls": decommission_calls.mutating_count(),
            "readCalls": decommission_calls.read_count(),
        },
    });
    let text = serde_json::to_string_pretty(&report)?;
    println!("{text}");
    let out = std::env::var("BENCH_OUT").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/tenantry-bench/provision.json"
        )
        .to_owned()
    });
    if let Some(dir) = std::path::Path::new(&out).parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, text + "\n")?;
    eprintln!("written to {out}");
    drop(control_plane);
    stack.shutdown().await;
    Ok(())
}

struct Run {
    status: String,
    history: Vec<HistoryEvent>,
}

/// Sends a request through intake (as the event source mapping does) and waits for its
/// execution to end.
async fn run(
    stack: &tenantry_gateway::LocalStack,
    store: &Store,
    kind: RequestKind,
    request_id: &str,
    platform: &str,
    spec: Option<&Value>,
) -> anyhow::Result<Run> {
    let mut detail =
        json!({ "schemaVersion": "1", "requestId": request_id, "platformId": platform });
    if let Some(spec) = spec {
        detail["spec"] = spec.clone();
    }
    let event = json!({
        "version": "0", "id": request_id, "source": "bench", "account": "123456789012",
        "time": "2026-11-22T00:00:00Z", "region": stack.region(), "resources": [],
        "detail-type": kind.detail_type(), "detail": detail,
    });
    tenantry_integration::invoke(stack, "intake", &event)
        .await
        .map_err(|(t, m)| anyhow::anyhow!("intake refused {request_id}: {t}: {m}"))?;
    let info = store
        .get_request(request_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("intake recorded no request {request_id}"))?;
    anyhow::ensure!(
        info.state != RequestState::Rejected,
        "{request_id} rejected: {:?}",
        info.error
    );
    let arn = info
        .execution_arn
        .ok_or_else(|| anyhow::anyhow!("{request_id} started no execution"))?;
    let sfn = aws_sdk_sfn::Client::new(&stack.sdk_config().await);
    let t0 = Instant::now();
    let execution =
        tenantry_integration::wait_execution(&sfn, &arn, Duration::from_secs(600)).await;
    eprintln!(
        "{request_id}: {:?} after {:.1}s",
        execution.status,
        t0.elapsed().as_secs_f64()
    );
    anyhow::ensure!(
        execution.status == aws_sdk_sfn::types::ExecutionStatus::Succeeded,
        "{request_id} ended {:?}: {:?}",
        execution.status,
        execution.failures()
    );
    Ok(Run {
        status: execution.status.as_str().to_owned(),
        history: execution.history,
    })
}

fn at(e: &HistoryEvent) -> f64 {
    e.timestamp().as_secs_f64()
}

fn span(history: &[HistoryEvent]) -> Duration {
    match (history.first(), history.last()) {
        (Some(a), Some(b)) => Duration::from_secs_f64((at(b) - at(a)).max(0.0)),
        _ => Duration::ZERO,
    }
}

fn transitions(history: &[HistoryEvent]) -> usize {
    history
        .iter()
        .filter(|e| e.state_entered_event_details().is_some())
        .count()
}

struct Critical {
    total: Duration,
    parts: Vec<(String, Duration)>,
}

/// When the named state was first entered / last exited.
fn state_time(history: &[HistoryEvent], name: &str, exited: bool) -> Option<f64> {
    let mut times = history.iter().filter(|e| {
        if exited {
            e.state_exited_event_details()
                .is_some_and(|d| d.name() == name)
        } else {
            e.state_entered_event_details()
                .is_some_and(|d| d.name() == name)
        }
    });
    if exited {
        times.next_back()
    } else {
        times.next()
    }
    .map(at)
}

/// The longest iteration of the Map state `map`.
fn longest_iteration(history: &[HistoryEvent], map: &str) -> Duration {
    let mut started: BTreeMap<i32, f64> = BTreeMap::new();
    let mut longest: f64 = 0.0;
    for e in history {
        match e.r#type() {
            HistoryEventType::MapIterationStarted => {
                if let Some(d) = e.map_iteration_started_event_details() {
                    if d.name() == Some(map) {
                        started.insert(d.index(), at(e));
                    }
                }
            }
            HistoryEventType::MapIterationSucceeded => {
                if let Some(d) = e.map_iteration_succeeded_event_details() {
                    if d.name() == Some(map) {
                        if let Some(t0) = started.get(&d.index()) {
                            longest = longest.max(at(e) - t0);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Duration::from_secs_f64(longest)
}

fn critical_path(history: &[HistoryEvent]) -> Critical {
    let start = history.first().map(at).unwrap_or_default();
    let secs = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Duration::from_secs_f64((b - a).max(0.0)),
        _ => Duration::ZERO,
    };
    let parts = vec![
        (
            "foundationsNetworkClusterIdentity".to_owned(),
            secs(Some(start), state_time(history, "ClusterIdentity", true)),
        ),
        (
            "networkReady".to_owned(),
            secs(
                state_time(history, "NetworkRoutes", false),
                state_time(history, "NetworkReady", true),
            ),
        ),
        (
            "slowestNodeGroup".to_owned(),
            longest_iteration(history, "NodeGroups"),
        ),
        (
            "slowestAddonWithNodes".to_owned(),
            longest_iteration(history, "AddonsWithNodes"),
        ),
        (
            "reconcile".to_owned(),
            secs(
                state_time(history, "Reconcile", false),
                state_time(history, "Reconcile", true),
            ),
        ),
        (
            "finalize".to_owned(),
            secs(
                state_time(history, "Finalize", false),
                state_time(history, "Finalize", true),
            ),
        ),
    ];
    Critical {
        total: parts.iter().map(|(_, d)| *d).sum(),
        parts,
    }
}
