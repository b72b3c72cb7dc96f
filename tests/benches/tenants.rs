//! Benchmark: onboarding and offboarding tenants of an Active platform.
//!
//! Provisions `examples/platform.json` with its `tenants` emptied on the local stack (simulated
//! durations as in the `provision` bench, polls every second), through the event bus, then:
//!
//! 1. **sequential**: onboards N tenants (`bench-00`, ...) one at a time, each waited to its end:
//!    the latency of one onboarding on an otherwise idle platform, and its exact AWS calls;
//! 2. **concurrent**: onboards N more tenants at once: throughput, and latency under contention
//!    (calls are counted for the whole batch and divided by N: the gateway attributes a call to
//!    the function that made it, not to the tenant);
//! 3. **re-ensure**: invokes the `tenant` function directly on each sequential tenant
//!    (`{"action": "ensure", "item": name}`), which must find nothing to change: the cost of an
//!    idempotent no-op (a duplicate onboarding request is refused by intake, so this is not
//!    measured through the bus);
//! 4. **offboard**: offboards the N sequential tenants at once, every other one with
//!    `retainData: true`.
//!
//! Every request goes `PutEvents` → rule → SQS → intake → Step Functions. Latencies come from
//! the execution's own history: "event → done" from the `PutEvents` call to the last history
//! event, "execution" from `ExecutionStarted` to that last event. Calls come from the gateway's
//! call log: platform calls (every service but the control plane's own: DynamoDB, Step
//! Functions, EventBridge, SQS, STS) made by `tenant` invocations, and control-plane calls made
//! by any Tenantry function, by function. The bench watches executions straight at moto, so its
//! polling is not counted. Percentiles are nearest-rank. It is a measurement, not a test:
//! nothing here asserts a time.
//!
//! N: `TENANTRY_BENCH_TENANTS` (default 20). Output: JSON on stdout and in `$BENCH_OUT`
//! (default `target/tenantry-bench/tenants.json`), a summary table on stderr.
//!
//! Run: `cargo bench -p tenantry-integration --bench tenants --profile dev` (`make bench`).

use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tenantry::events::{PlatformRequest, RequestKind, TenantRequest, SCHEMA_VERSION};
use tenantry::spec::TenantSpec;
use tenantry::store::{RequestState, Store, TenantState};
use tenantry_gateway::{CallLog, Durations, LocalStack};

/// How long a request may wait for intake's answer before the bench calls it lost.
const INTAKE_DEADLINE: Duration = Duration::from_secs(900);

/// Services Tenantry uses for its own bookkeeping (state, workflows, events), not the platform.
const CONTROL_PLANE_SERVICES: &[&str] = &["dynamodb", "states", "events", "sqs", "sts"];
/// The function whose calls are the tenant's platform calls.
const TENANT_FUNCTION: &str = "tenant";
const POLL_SECONDS: u64 = 1;
const DEFAULT_TENANTS: usize = 20;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bench_started = Instant::now();
    std::env::set_var("TENANTRY_POLL_SECONDS", POLL_SECONDS.to_string());
    let n: usize = match std::env::var("TENANTRY_BENCH_TENANTS") {
        Ok(v) => v
            .parse()
            .map_err(|e| anyhow::anyhow!("TENANTRY_BENCH_TENANTS={v:?}: {e}"))?,
        Err(_) => DEFAULT_TENANTS,
    };
    anyhow::ensure!(
        (1..=50).contains(&n),
        "TENANTRY_BENCH_TENANTS must be 1..=50 (two batches of names bench-NN)"
    );

    let stack = tenantry_integration::stack().await;
    let control_plane = tenantry_gateway::control_plane::deploy(&stack).await?;
    let durations = Durations {
        cluster_creating_secs: 10,
        nodegroup_creating_secs: 3,
        addon_creating_secs: 1,
        cluster_deleting_secs: 3,
        nodegroup_deleting_secs: 2,
        cluster_updating_secs: 2,
        // Not what this benchmark measures: its platforms are ready without the wait.
        nat_pending_secs: 0,
    };
    stack.set_durations(durations.clone());
    let mut spec: Value = serde_json::from_str(include_str!("../../examples/platform.json"))?;
    spec["tenants"] = json!([]);
    let platform = spec["id"].as_str().unwrap_or_default().to_owned();
    let bench = Arc::new(Bench::new(&stack, &platform).await);

    // The platform, without tenants.
    let provision = bench
        .request(
            RequestKind::PlatformProvision,
            "bench-provision",
            serde_json::to_string(&PlatformRequest {
                schema_version: SCHEMA_VERSION.to_owned(),
                request_id: "bench-provision".to_owned(),
                platform_id: platform.clone(),
                spec: Some(spec),
                remediate: None,
                components: None,
            })?,
            Duration::from_millis(500),
        )
        .await;
    eprintln!(
        "provision: {} after {:.1}s",
        provision.status,
        provision.event_to_done_ms() / 1000.0
    );
    anyhow::ensure!(
        provision.status == ExecutionStatus::Succeeded.as_str(),
        "the platform did not provision: {}",
        provision.failure.clone().unwrap_or_default()
    );

    // 1. Sequential onboardings.
    let sequential_names: Vec<String> = (0..n).map(|i| format!("bench-{i:02}")).collect();
    let mut sequential = Vec::new();
    let mut sequential_logs = Vec::new();
    let sequential_started = Instant::now();
    for name in &sequential_names {
        stack.reset_calls();
        let mut sample = bench.onboard(name, Duration::from_millis(250)).await;
        let log = stack.calls();
        let calls = platform_calls(&log);
        sample.platform_calls = Some((
            calls.values().map(|(m, _)| m).sum(),
            calls.values().map(|(_, r)| r).sum(),
        ));
        sequential_logs.push(log);
        eprintln!(
            "onboard {name}: {} in {:.0} ms (execution {:.0} ms, {} transitions)",
            sample.status,
            sample.event_to_done_ms(),
            sample.execution_ms(),
            sample.transitions
        );
        sequential.push(sample);
    }
    let sequential_wall = sequential_started.elapsed();

    // 2. Concurrent onboardings.
    let concurrent_names: Vec<String> = (n..2 * n).map(|i| format!("bench-{i:02}")).collect();
    stack.reset_calls();
    let concurrent_started = Instant::now();
    let concurrent = all(&bench, &concurrent_names, |b, name| async move {
        b.onboard(&name, Duration::from_secs(1)).await
    })
    .await?;
    let concurrent_wall = concurrent_started.elapsed();
    let concurrent_log = stack.calls();
    eprintln!(
        "concurrent onboarding of {n}: {:.1}s",
        concurrent_wall.as_secs_f64()
    );

    // 3. Idempotent re-ensure of each sequential tenant, straight through the function.
    let mut reensure = Vec::new();
    let mut reensure_logs = Vec::new();
    for (i, name) in sequential_names.iter().enumerate() {
        stack.reset_calls();
        let payload = json!({
            "platformId": platform,
            "requestId": format!("bench-reensure-{i:02}"),
            "action": "ensure",
            "item": name,
        });
        let t0 = Instant::now();
        let answer = tenantry_integration::invoke(&stack, TENANT_FUNCTION, &payload).await;
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        reensure_logs.push(stack.calls());
        reensure.push(match answer {
            Ok(out) => json!({
                "tenant": name, "ms": ms, "ready": out["ready"], "changes": out["changes"],
                "drift": out["drift"],
            }),
            Err((t, m)) => json!({ "tenant": name, "ms": ms, "error": format!("{t}: {m}") }),
        });
    }

    // 4. Concurrent offboardings of the sequential tenants, every other one keeping its data.
    stack.reset_calls();
    let offboard_started = Instant::now();
    let offboard = all(&bench, &sequential_names, |b, name| async move {
        let index: usize = name
            .trim_start_matches("bench-")
            .parse()
            .unwrap_or_default();
        b.offboard(&name, index % 2 == 0, Duration::from_secs(1))
            .await
    })
    .await?;
    let offboard_wall = offboard_started.elapsed();
    let offboard_log = stack.calls();
    eprintln!("offboarding of {n}: {:.1}s", offboard_wall.as_secs_f64());

    let records = bench.store.list_tenant_records(&platform).await?;
    let tenant_states: BTreeMap<String, usize> =
        records.iter().fold(BTreeMap::new(), |mut acc, r| {
            *acc.entry(state_name(r.value.state)).or_default() += 1;
            acc
        });

    let sequential_log = merge(&sequential_logs);
    let reensure_log = merge(&reensure_logs);
    let per_onboarding_platform: Vec<f64> = sequential_logs
        .iter()
        .map(|l| platform_total(l) as f64)
        .collect();
    let reensure_ms: Vec<f64> = reensure.iter().filter_map(|r| r["ms"].as_f64()).collect();

    let report = json!({
        "benchmark": "tenants",
        "spec": "examples/platform.json (tenants emptied)",
        "tenant": "examples/tenant.json (name bench-NN, one owner, default prefixes)",
        "n": n,
        "sequential": mode(&sequential, &sequential_log, n, sequential_wall, json!({
            "platformCallsPerOnboarding": {
                "min": per_onboarding_platform.iter().copied().fold(f64::INFINITY, f64::min),
                "max": per_onboarding_platform.iter().copied().fold(0.0, f64::max),
                "first": per_onboarding_platform.first(),
                "last": per_onboarding_platform.last(),
            },
            "attribution": "exact (one onboarding at a time)",
        })),
        "concurrent": mode(&concurrent, &concurrent_log, n, concurrent_wall, json!({
            "throughputPerMinute": throughput(&concurrent),
            "makespanMs": makespan_ms(&concurrent),
            "attribution": "batch totals / N",
        })),
        "reensure": {
            "how": "tenant function invoked directly: {platformId, requestId, action: ensure, item}",
            "latencyMs": percentiles(&reensure_ms),
            "samples": reensure,
            "awsCallsPerTenant": calls_per(&platform_calls(&reensure_log), n),
            "awsCallsPerTenantByOperation": operations_per(&reensure_log, n, true),
            "mutatingPlatformCalls": platform_calls(&reensure_log).values().map(|(m, _)| m).sum::<usize>(),
            "controlPlaneCallsPerTenant": control_plane_calls(&reensure_log, n),
            "controlPlaneCallsPerTenantByOperation": operations_per(&reensure_log, n, false),
        },
        "offboard": mode(&offboard, &offboard_log, n, offboard_wall, json!({
            "retainData": "every other tenant (even indices)",
            "throughputPerMinute": throughput(&offboard),
            "makespanMs": makespan_ms(&offboard),
            "attribution": "batch totals / N",
        })),
        "tenantRecordsAtEnd": tenant_states,
        "environment": {
            "pollSeconds": POLL_SECONDS,
            "simulatedDurations": durations,
            "provisionSeconds": provision.event_to_done_ms() / 1000.0,
            "provisionStateTransitions": provision.transitions,
            "sequentialWallSeconds": sequential_wall.as_secs_f64(),
            "concurrentWallSeconds": concurrent_wall.as_secs_f64(),
            "offboardWallSeconds": offboard_wall.as_secs_f64(),
            "benchSeconds": bench_started.elapsed().as_secs_f64(),
            "cpus": std::thread::available_parallelism().map(|p| p.get()).unwrap_or(0),
            "controlPlaneServices": CONTROL_PLANE_SERVICES,
        },
    });

    summary(&report);
    let text = serde_json::to_string_pretty(&report)?;
    println!("{text}");
    let out = std::env::var("BENCH_OUT").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/tenantry-bench/tenants.json"
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

/// What the bench talks to: the bus through the gateway (counted, as a user's call), the store
/// and Step Functions straight at moto (not counted).
struct Bench {
    platform: String,
    events: aws_sdk_eventbridge::Client,
    store: Store,
    sfn: aws_sdk_sfn::Client,
    tenant: TenantSpec,
}

impl Bench {
    async fn new(stack: &LocalStack, platform: &str) -> Bench {
        let aws = stack.sdk_config().await;
        let direct = stack.moto_sdk_config().await;
        let mut tenant: Value = serde_json::from_str(include_str!("../../examples/tenant.json"))
            .expect("examples/tenant.json is JSON");
        if let Some(t) = tenant.as_object_mut() {
            // Defaults derived from the name (`tenants/<name>/`, `tenantry/<stem>/<name>/`).
            t.remove("s3Prefix");
            t.remove("secretsPrefix");
        }
        Bench {
            platform: platform.to_owned(),
            events: aws_sdk_eventbridge::Client::new(&aws),
            store: Store::from_config(&direct, stack.table_name()),
            sfn: aws_sdk_sfn::Client::new(&direct),
            tenant: serde_json::from_value(tenant).expect("examples/tenant.json is a tenant"),
        }
    }

    fn tenant(&self, name: &str) -> TenantSpec {
        let mut t = self.tenant.clone();
        t.name = name.to_owned();
        t.owners = vec![format!("arn:aws:iam::111122223333:role/team-{name}")];
        t
    }

    async fn onboard(&self, name: &str, every: Duration) -> Sample {
        let id = format!("bench-onboard-{name}");
        let detail = TenantRequest::onboarding(&id, &self.platform, self.tenant(name));
        self.tenant_request(RequestKind::TenantOnboarding, name, &id, &detail, every)
            .await
    }

    async fn offboard(&self, name: &str, retain_data: bool, every: Duration) -> Sample {
        let id = format!("bench-offboard-{name}");
        let detail = TenantRequest::offboarding(&id, &self.platform, name, retain_data, false);
        let mut sample = self
            .tenant_request(RequestKind::TenantOffboarding, name, &id, &detail, every)
            .await;
        sample.retain_data = Some(retain_data);
        sample
    }

    async fn tenant_request(
        &self,
        kind: RequestKind,
        name: &str,
        id: &str,
        detail: &TenantRequest,
        every: Duration,
    ) -> Sample {
        let detail = serde_json::to_string(detail).expect("tenant request serialises");
        let mut sample = self.request(kind, id, detail, every).await;
        sample.tenant = name.to_owned();
        sample
    }

    /// Puts one request on the bus and waits for intake's verdict and the execution's end.
    async fn request(
        &self,
        kind: RequestKind,
        request_id: &str,
        detail: String,
        every: Duration,
    ) -> Sample {
        let mut sample = Sample::new(request_id);
        sample.put_at = epoch_now();
        let put = self
            .events
            .put_events()
            .entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .event_bus_name(tenantry::events::event_bus())
                    .source("bench")
                    .detail_type(kind.detail_type())
                    .detail(detail)
                    .build(),
            )
            .send()
            .await;
        match put {
            Ok(out) if out.failed_entry_count() == 0 => {}
            Ok(out) => {
                sample.failure = Some(format!("PutEvents failed: {:?}", out.entries()));
                return sample;
            }
            Err(e) => {
                sample.failure = Some(format!("PutEvents: {e}"));
                return sample;
            }
        }
        let arn = match self.verdict(request_id, every).await {
            Ok(arn) => arn,
            Err(why) => {
                sample.status = "REJECTED".to_owned();
                sample.failure = Some(why);
                return sample;
            }
        };
        match self.wait(&arn, every).await {
            Ok(Ended {
                status,
                error,
                cause,
                history,
            }) => {
                sample.status = status.as_str().to_owned();
                sample.start = history.first().map(at);
                sample.stop = history.last().map(at);
                sample.transitions = history
                    .iter()
                    .filter(|e| e.state_entered_event_details().is_some())
                    .count();
                sample.history_events = history.len();
                if status != ExecutionStatus::Succeeded {
                    let tasks: Vec<String> = history
                        .iter()
                        .filter_map(|e| e.task_failed_event_details())
                        .map(|d| {
                            format!(
                                "{} {}",
                                d.error().unwrap_or_default(),
                                d.cause().unwrap_or_default()
                            )
                        })
                        .collect();
                    sample.failure = Some(format!(
                        "execution {}: error {:?}, cause {:?}, failed tasks {tasks:?}",
                        status.as_str(),
                        error,
                        cause
                    ));
                }
            }
            Err(why) => sample.failure = Some(why),
        }
        sample
    }

    /// The execution intake started for `request_id`, or why there is none.
    async fn verdict(&self, request_id: &str, every: Duration) -> Result<String, String> {
        // The local stand-in for the SQS event source mapping runs intake one batch after
        // another (Lambda's runs batches concurrently), so with 50 requests at once the last
        // ones wait minutes for intake: the deadline only catches a request that was lost.
        let deadline = Instant::now() + INTAKE_DEADLINE;
        while Instant::now() < deadline {
            match self.store.get_request(request_id).await {
                Ok(Some(info)) if info.state == RequestState::Rejected => {
                    return Err(format!("rejected by intake: {:?}", info.error));
                }
                Ok(Some(info)) if info.execution_arn.is_some() => {
                    return Ok(info.execution_arn.unwrap_or_default());
                }
                Ok(_) => {}
                Err(e) => return Err(format!("reading request {request_id}: {e}")),
            }
            tokio::time::sleep(every).await;
        }
        Err(format!("intake never answered {request_id}"))
    }

    /// Polls an execution until it ends; its status, error, cause and whole history.
    async fn wait(&self, arn: &str, every: Duration) -> Result<Ended, String> {
        let deadline = Instant::now() + Duration::from_secs(900);
        while Instant::now() < deadline {
            let d = self
                .sfn
                .describe_execution()
                .execution_arn(arn)
                .send()
                .await
                .map_err(|e| format!("describe execution {arn}: {e}"))?;
            if d.status() != &ExecutionStatus::Running {
                let history = self
                    .sfn
                    .get_execution_history()
                    .execution_arn(arn)
                    .into_paginator()
                    .items()
                    .send()
                    .collect::<Result<Vec<_>, _>>()
                    .await
                    .map_err(|e| format!("history of {arn}: {e}"))?;
                return Ok(Ended {
                    status: d.status().clone(),
                    error: d.error().map(str::to_owned),
                    cause: d.cause().map(str::to_owned),
                    history,
                });
            }
            tokio::time::sleep(every).await;
        }
        Err(format!("execution {arn} still running after 900 s"))
    }
}

/// An execution that ended.
struct Ended {
    status: ExecutionStatus,
    error: Option<String>,
    cause: Option<String>,
    history: Vec<HistoryEvent>,
}

/// Runs `f` for every name at once; the samples in the order of `names`.
async fn all<F, Fut>(bench: &Arc<Bench>, names: &[String], f: F) -> anyhow::Result<Vec<Sample>>
where
    F: Fn(Arc<Bench>, String) -> Fut,
    Fut: std::future::Future<Output = Sample> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for (i, name) in names.iter().enumerate() {
        let run = f(bench.clone(), name.clone());
        set.spawn(async move { (i, run.await) });
    }
    let mut out: Vec<Option<Sample>> = names.iter().map(|_| None).collect();
    while let Some(done) = set.join_next().await {
        let (i, sample) = done?;
        out[i] = Some(sample);
    }
    Ok(out.into_iter().flatten().collect())
}

/// One request's measurements (times in epoch seconds).
struct Sample {
    request_id: String,
    tenant: String,
    status: String,
    put_at: f64,
    start: Option<f64>,
    stop: Option<f64>,
    transitions: usize,
    history_events: usize,
    retain_data: Option<bool>,
    /// Platform calls of this request alone, (mutating, read): sequential mode only.
    platform_calls: Option<(usize, usize)>,
    failure: Option<String>,
}

impl Sample {
    fn new(request_id: &str) -> Sample {
        Sample {
            request_id: request_id.to_owned(),
            tenant: String::new(),
            status: "NOT_STARTED".to_owned(),
            put_at: 0.0,
            start: None,
            stop: None,
            transitions: 0,
            history_events: 0,
            retain_data: None,
            platform_calls: None,
            failure: None,
        }
    }

    fn succeeded(&self) -> bool {
        self.status == ExecutionStatus::Succeeded.as_str()
    }

    /// `PutEvents` → the execution's last history event.
    fn event_to_done_ms(&self) -> f64 {
        self.stop
            .map(|s| (s - self.put_at).max(0.0) * 1000.0)
            .unwrap_or(f64::NAN)
    }

    /// `ExecutionStarted` → the last history event.
    fn execution_ms(&self) -> f64 {
        match (self.start, self.stop) {
            (Some(a), Some(b)) => (b - a).max(0.0) * 1000.0,
            _ => f64::NAN,
        }
    }

    /// `PutEvents` → `ExecutionStarted` (rule, queue, poller, intake).
    fn event_to_start_ms(&self) -> f64 {
        self.start
            .map(|s| (s - self.put_at).max(0.0) * 1000.0)
            .unwrap_or(f64::NAN)
    }

    fn to_json(&self) -> Value {
        let mut v = json!({
            "tenant": self.tenant,
            "requestId": self.request_id,
            "status": self.status,
            "eventToDoneMs": finite(self.event_to_done_ms()),
            "executionMs": finite(self.execution_ms()),
            "eventToStartMs": finite(self.event_to_start_ms()),
            "stateTransitions": self.transitions,
            "historyEvents": self.history_events,
        });
        if let Some(r) = self.retain_data {
            v["retainData"] = json!(r);
        }
        if let Some((m, r)) = self.platform_calls {
            v["platformCalls"] = json!({ "mutating": m, "read": r });
        }
        if let Some(f) = &self.failure {
            v["failure"] = json!(f);
        }
        v
    }
}

fn finite(x: f64) -> Value {
    if x.is_finite() {
        json!((x * 10.0).round() / 10.0)
    } else {
        Value::Null
    }
}

fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

fn at(e: &HistoryEvent) -> f64 {
    e.timestamp().as_secs_f64()
}

fn state_name(state: TenantState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{state:?}"))
}

/// Nearest-rank percentiles of the samples: p50, p95, max (and the count).
fn percentiles(samples: &[f64]) -> Value {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let rank = |p: f64| -> Value {
        if sorted.is_empty() {
            return Value::Null;
        }
        let r = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
        finite(sorted[r.min(sorted.len()) - 1])
    };
    json!({
        "count": sorted.len(),
        "p50": rank(50.0),
        "p95": rank(95.0),
        "max": rank(100.0),
        "mean": if sorted.is_empty() { Value::Null } else { finite(sorted.iter().sum::<f64>() / sorted.len() as f64) },
    })
}

/// The JSON of one mode: latencies, transitions, calls per tenant, samples.
fn mode(samples: &[Sample], log: &CallLog, n: usize, wall: Duration, extra: Value) -> Value {
    let ok: Vec<&Sample> = samples.iter().filter(|s| s.succeeded()).collect();
    let mean = |f: fn(&Sample) -> usize| -> Value {
        if ok.is_empty() {
            Value::Null
        } else {
            finite(ok.iter().map(|s| f(s) as f64).sum::<f64>() / ok.len() as f64)
        }
    };
    let platform = platform_calls(log);
    let mut v = json!({
        "requests": samples.len(),
        "succeeded": ok.len(),
        "failures": samples.iter().filter(|s| !s.succeeded()).map(Sample::to_json).collect::<Vec<_>>(),
        "eventToDoneMs": percentiles(&ok.iter().map(|s| s.event_to_done_ms()).collect::<Vec<_>>()),
        "executionMs": percentiles(&ok.iter().map(|s| s.execution_ms()).collect::<Vec<_>>()),
        "eventToStartMs": percentiles(&ok.iter().map(|s| s.event_to_start_ms()).collect::<Vec<_>>()),
        "meanStateTransitions": mean(|s| s.transitions),
        "meanHistoryEvents": mean(|s| s.history_events),
        "tenantInvocationsPerTenant": log.invocations_of(TENANT_FUNCTION) as f64 / n as f64,
        "awsCallsPerTenant": calls_per(&platform, n),
        "awsCallsPerTenantByOperation": operations_per(log, n, true),
        "controlPlaneCallsPerTenant": control_plane_calls(log, n),
        "controlPlaneCallsPerTenantByOperation": operations_per(log, n, false),
        "wallSeconds": wall.as_secs_f64(),
        "samples": samples.iter().map(Sample::to_json).collect::<Vec<_>>(),
    });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, x) in e {
            o.insert(k.clone(), x.clone());
        }
    }
    v
}

/// Platform calls (every service but the control plane's) made by `tenant` invocations:
/// (mutating, read) by service.
fn platform_calls(log: &CallLog) -> BTreeMap<String, (usize, usize)> {
    let mut out: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for c in log.for_function(TENANT_FUNCTION) {
        if CONTROL_PLANE_SERVICES.contains(&c.service.as_str()) {
            continue;
        }
        let e = out.entry(c.service.clone()).or_default();
        if c.mutating {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    out
}

fn platform_total(log: &CallLog) -> usize {
    platform_calls(log).values().map(|(m, r)| m + r).sum()
}

/// `{service: {mutating, read}, total: {mutating, read}}`, divided by `n`.
fn calls_per(calls: &BTreeMap<String, (usize, usize)>, n: usize) -> Value {
    let per = |x: usize| finite(x as f64 / n as f64);
    let mut out = serde_json::Map::new();
    let (mut m, mut r) = (0, 0);
    for (service, (sm, sr)) in calls {
        out.insert(
            service.clone(),
            json!({ "mutating": per(*sm), "read": per(*sr) }),
        );
        m += sm;
        r += sr;
    }
    out.insert(
        "total".to_owned(),
        json!({ "mutating": per(m), "read": per(r) }),
    );
    Value::Object(out)
}

/// Control-plane calls made by Tenantry functions, per tenant: by function, then by service.
fn control_plane_calls(log: &CallLog, n: usize) -> Value {
    let mut by_function: BTreeMap<String, BTreeMap<String, (usize, usize)>> = BTreeMap::new();
    let mut all: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for c in &log.calls {
        let Some(function) = &c.invocation else {
            continue;
        };
        if !CONTROL_PLANE_SERVICES.contains(&c.service.as_str()) {
            continue;
        }
        for e in [
            by_function
                .entry(function.clone())
                .or_default()
                .entry(c.service.clone())
                .or_default(),
            all.entry(c.service.clone()).or_default(),
        ] {
            if c.mutating {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
    }
    json!({
        "all": calls_per(&all, n),
        "byFunction": by_function
            .iter()
            .map(|(f, calls)| (f.clone(), calls_per(calls, n)))
            .collect::<BTreeMap<_, _>>(),
    })
}

/// Calls per tenant by `service:Operation`: platform calls of `tenant` invocations
/// (`platform`), or control-plane calls of every Tenantry function.
fn operations_per(log: &CallLog, n: usize, platform: bool) -> BTreeMap<String, Value> {
    let mut out: BTreeMap<String, usize> = BTreeMap::new();
    for c in &log.calls {
        let control = CONTROL_PLANE_SERVICES.contains(&c.service.as_str());
        let counted = if platform {
            !control && c.invocation.as_deref() == Some(TENANT_FUNCTION)
        } else {
            control && c.invocation.is_some()
        };
        if counted {
            *out.entry(format!("{}:{}", c.service, c.operation))
                .or_default() += 1;
        }
    }
    out.into_iter()
        .map(|(k, v)| (k, finite(v as f64 / n as f64)))
        .collect()
}

fn merge(logs: &[CallLog]) -> CallLog {
    let mut out = CallLog::default();
    for l in logs {
        out.calls.extend(l.calls.iter().cloned());
        out.invocations.extend(l.invocations.iter().cloned());
    }
    out
}

/// Requests finished per minute: N over first `PutEvents` → last execution end.
fn throughput(samples: &[Sample]) -> Value {
    let span = makespan_ms(samples);
    match span.as_f64() {
        Some(ms) if ms > 0.0 => finite(samples.len() as f64 * 60_000.0 / ms),
        _ => Value::Null,
    }
}

fn makespan_ms(samples: &[Sample]) -> Value {
    let first = samples
        .iter()
        .map(|s| s.put_at)
        .fold(f64::INFINITY, f64::min);
    let last = samples
        .iter()
        .filter_map(|s| s.stop)
        .fold(f64::NEG_INFINITY, f64::max);
    finite((last - first) * 1000.0)
}

/// The table on stderr.
fn summary(report: &Value) {
    let n = report["n"].as_u64().unwrap_or_default();
    let num = |v: &Value| match v.as_f64() {
        Some(x) => format!("{x:.0}"),
        None => "-".to_owned(),
    };
    let lat = |v: &Value| format!("{}/{}/{}", num(&v["p50"]), num(&v["p95"]), num(&v["max"]));
    let calls = |v: &Value| {
        format!(
            "{:.1}m {:.1}r",
            v["total"]["mutating"].as_f64().unwrap_or_default(),
            v["total"]["read"].as_f64().unwrap_or_default()
        )
    };
    eprintln!();
    eprintln!("tenants bench, N = {n} (latencies in ms: p50/p95/max, nearest rank; calls per tenant: mutating m, read r)");
    eprintln!(
        "{:<12} {:>7} {:>20} {:>20} {:>7} {:>14} {:>14}",
        "mode", "ok", "event→done", "execution", "trans.", "platform", "control plane"
    );
    for key in ["sequential", "concurrent", "offboard"] {
        let m = &report[key];
        eprintln!(
            "{:<12} {:>7} {:>20} {:>20} {:>7} {:>14} {:>14}",
            key,
            format!(
                "{}/{}",
                m["succeeded"].as_u64().unwrap_or_default(),
                m["requests"].as_u64().unwrap_or_default()
            ),
            lat(&m["eventToDoneMs"]),
            lat(&m["executionMs"]),
            m["meanStateTransitions"]
                .as_f64()
                .map(|x| format!("{x:.1}"))
                .unwrap_or_else(|| "-".to_owned()),
            calls(&m["awsCallsPerTenant"]),
            calls(&m["controlPlaneCallsPerTenant"]["all"]),
        );
    }
    let r = &report["reensure"];
    eprintln!(
        "{:<12} {:>7} {:>20} {:>20} {:>7} {:>14} {:>14}",
        "re-ensure",
        format!("{}", r["latencyMs"]["count"].as_u64().unwrap_or_default()),
        lat(&r["latencyMs"]),
        "(direct invoke)",
        "-",
        calls(&r["awsCallsPerTenant"]),
        calls(&r["controlPlaneCallsPerTenant"]["all"]),
    );
    for key in ["concurrent", "offboard"] {
        eprintln!(
            "{key}: throughput {} per minute, makespan {} ms",
            num(&report[key]["throughputPerMinute"]),
            num(&report[key]["makespanMs"])
        );
    }
    for key in ["sequential", "concurrent", "offboard"] {
        if let Some(failures) = report[key]["failures"].as_array() {
            for f in failures.iter().take(3) {
                eprintln!("{key} failure: {f}");
            }
            if failures.len() > 3 {
                eprintln!("{key}: {} more failures in the JSON", failures.len() - 3);
            }
        }
    }
}
