//! Benchmark: what a drift check costs, and what the nightly sweep projects to.
//!
//! Provisions `examples/platform.json` with its `tenants` emptied on the local stack, then for
//! 1, 10 and 100 tenants (onboarded through the bus, 20 at a time) runs a report-only drift
//! check through the bus and counts, from the gateway's call log: the platform calls every phase
//! function made (by service; mutating calls must be 0), the control-plane calls (state,
//! workflows, events), the state transitions of the execution, and its wall time. From those:
//! the calls each tenant adds beyond the platform's fixed cost, and a projection of a nightly
//! sweep over 1,000 platforms of each size (calls per service, and the sustained call rate at the
//! sweep's `MaxConcurrency` of 10 given the measured check time, per operation against the rate
//! limits AWS documents: EC2's non-mutating token bucket). At each size it also runs a compliance
//! sweep and records the same counts for it (`complianceSweep`: its only writes are Security
//! Hub imports, in batches of 100). It measures; it asserts nothing about time.
//!
//! Tenant counts: `TENANTRY_BENCH_DRIFT_TENANTS` (default `1,10,100`). Output: JSON on stdout and
//! in `$BENCH_OUT` (default `target/tenantry-bench/drift.json`), a summary on stderr.
//!
//! Run: `cargo bench -p tenantry-integration --bench drift --profile dev` (`make bench`).

use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tenantry::drift::RemediateRequest;
use tenantry::events::{PlatformRequest, RequestKind, TenantRequest, SCHEMA_VERSION};
use tenantry::spec::{DriftRemediation, TenantSpec};
use tenantry::store::{RequestState, Store};
use tenantry_gateway::{CallLog, Durations, LocalStack};

const CONTROL_PLANE_SERVICES: &[&str] = &["dynamodb", "states", "events", "sqs", "sts"];
const BATCH: usize = 20;
const FLEET: f64 = 1000.0;
const SWEEP_CONCURRENCY: f64 = 10.0;
/// EC2's documented refill rate of a non-mutating operation's token bucket (per second).
const EC2_NON_MUTATING_REFILL: f64 = 20.0;

struct Bench {
    platform: String,
    events: aws_sdk_eventbridge::Client,
    store: Store,
    sfn: aws_sdk_sfn::Client,
    tenant: TenantSpec,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    std::env::set_var("TENANTRY_POLL_SECONDS", "1");
    let levels: Vec<usize> = std::env::var("TENANTRY_BENCH_DRIFT_TENANTS")
        .unwrap_or_else(|_| "1,10,100".to_owned())
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()?;
    let stack = tenantry_integration::stack().await;
    let control_plane = tenantry_gateway::control_plane::deploy(&stack).await?;
    stack.set_durations(Durations {
        cluster_creating_secs: 10,
        nodegroup_creating_secs: 3,
        addon_creating_secs: 1,
        cluster_deleting_secs: 3,
        nodegroup_deleting_secs: 2,
        cluster_updating_secs: 2,
        // Not what this benchmark measures: its platforms are ready without the wait.
        nat_pending_secs: 0,
    });
    let mut spec: Value = serde_json::from_str(include_str!("../../examples/platform.json"))?;
    spec["tenants"] = json!([]);
    let platform = spec["id"].as_str().unwrap_or_default().to_owned();
    let bench = std::sync::Arc::new(Bench::new(&stack, &platform).await);
    let provision = PlatformRequest {
        schema_version: SCHEMA_VERSION.to_owned(),
        request_id: "bench-drift-provision".to_owned(),
        platform_id: platform.clone(),
        spec: Some(spec),
        remediate: None,
        components: None,
    };
    bench
        .request(
            RequestKind::PlatformProvision,
            &provision.request_id,
            serde_json::to_string(&provision)?,
        )
        .await?;

    let mut onboarded = 0;
    let mut results = Vec::new();
    for (i, &level) in levels.iter().enumerate() {
        while onboarded < level {
            let batch: Vec<String> = (onboarded..level.min(onboarded + BATCH))
                .map(|t| format!("t{t:03}"))
                .collect();
            let started = Instant::now();
            let mut runs = tokio::task::JoinSet::new();
            for name in batch.clone() {
                let bench = bench.clone();
                runs.spawn(async move { bench.onboard(&name).await });
            }
            while let Some(r) = runs.join_next().await {
                r??;
            }
            onboarded += batch.len();
            eprintln!(
                "{onboarded} tenants onboarded ({:.1}s for the batch)",
                started.elapsed().as_secs_f64()
            );
        }
        stack.reset_calls();
        let check = PlatformRequest {
            schema_version: SCHEMA_VERSION.to_owned(),
            request_id: format!("bench-drift-{i}"),
            platform_id: platform.clone(),
            spec: None,
            remediate: Some(RemediateRequest::All(DriftRemediation::ReportOnly)),
            components: None,
        };
        let started = Instant::now();
        let transitions = bench
            .request(
                RequestKind::DriftCheck,
                &check.request_id,
                serde_json::to_string(&check)?,
            )
            .await?;
        let seconds = started.elapsed().as_secs_f64();
        let log = stack.calls();
        let (platform_calls, mutating) = platform_calls(&log);
        let total: usize = platform_calls.values().sum();
        let report = bench
            .store
            .get_drift_report(&platform, &check.request_id)
            .await?;
        let differences = report.map(|r| r.differences.len());
        eprintln!(
            "{level} tenants: {total} platform calls ({mutating} mutating), {} control-plane calls, {transitions} transitions, {seconds:.1}s, differences {differences:?}",
            control_plane_calls(&log)
        );
        let compliance = bench
            .sweep(&stack, &format!("bench-compliance-{i}"))
            .await?;
        eprintln!(
            "{level} tenants, compliance sweep: {} platform calls ({} Security Hub imports), {} transitions, {:.1}s, {} results ({} failed)",
            compliance["platformCalls"],
            compliance["securityHubImports"],
            compliance["transitions"],
            compliance["seconds"].as_f64().unwrap_or_default(),
            compliance["results"],
            compliance["failed"],
        );
        results.push(json!({
            "tenants": level,
            "platformCalls": total,
            "mutatingCalls": mutating,
            "platformCallsByService": platform_calls,
            "platformCallsByOperation": platform_operations(&log),
            "controlPlaneCalls": control_plane_calls(&log),
            "transitions": transitions,
            "seconds": seconds,
            "differences": differences,
            "complianceSweep": compliance,
        }));
    }

    let calls = |r: &Value| r["platformCalls"].as_f64().unwrap_or(0.0);
    let tenants = |r: &Value| r["tenants"].as_f64().unwrap_or(0.0);
    let per_tenant = match (results.first(), results.last()) {
        (Some(a), Some(b)) if tenants(b) > tenants(a) => {
            Some((calls(b) - calls(a)) / (tenants(b) - tenants(a)))
        }
        _ => None,
    };
    let projection: Vec<Value> = results
        .iter()
        .map(|r| {
            let seconds = r["seconds"].as_f64().unwrap_or(1.0);
            json!({
                "tenantsPerPlatform": r["tenants"],
                "platformCalls": calls(r) * FLEET,
                "callsByService": r["platformCallsByService"].as_object().map(|m| {
                    m.iter().map(|(k, v)| (k.clone(), json!(v.as_f64().unwrap_or(0.0) * FLEET))).collect::<serde_json::Map<_, _>>()
                }),
                "sweepHours": FLEET / SWEEP_CONCURRENCY * seconds / 3600.0,
                "callsPerSecond": SWEEP_CONCURRENCY * calls(r) / seconds,
                "transitions": r["transitions"].as_f64().unwrap_or(0.0) * FLEET,
                "rateLimits": r["platformCallsByOperation"].as_object().map(|m| {
                    let ops = m.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0) as usize)).collect();
                    against_rate_limits(&ops, seconds)
                }),
            })
        })
        .collect();
    let out = json!({
        "bench": "drift",
        "checks": results,
        "callsPerTenantBeyondFixed": per_tenant,
        "fleetProjection": { "platforms": FLEET, "maxConcurrency": SWEEP_CONCURRENCY, "bySize": projection },
    });
    let text = serde_json::to_string_pretty(&out)?;
    println!("{text}");
    let path = std::env::var("BENCH_OUT")
        .unwrap_or_else(|_| "target/tenantry-bench/drift.json".to_owned());
    if let Some(dir) = std::path::Path::new(&path).parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, text + "\n")?;
    eprintln!(
        "calls per tenant beyond the platform's fixed cost: {per_tenant:?}; written to {path}"
    );
    drop(control_plane);
    stack.shutdown().await;
    Ok(())
}

/// Platform calls (every service but the control plane's) by service, and how many mutated.
fn platform_calls(log: &CallLog) -> (BTreeMap<String, usize>, usize) {
    let mut by_service = BTreeMap::new();
    let mut mutating = 0;
    for c in log.calls.iter().filter(|c| c.invocation.is_some()) {
        if CONTROL_PLANE_SERVICES.contains(&c.service.as_str()) {
            continue;
        }
        *by_service.entry(c.service.clone()).or_default() += 1;
        mutating += usize::from(c.mutating);
    }
    (by_service, mutating)
}

/// Platform calls by `service:Operation` (AWS throttles per operation).
fn platform_operations(log: &CallLog) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for c in log.calls.iter().filter(|c| c.invocation.is_some()) {
        if !CONTROL_PLANE_SERVICES.contains(&c.service.as_str()) {
            *out.entry(format!("{}:{}", c.service, c.operation))
                .or_default() += 1;
        }
    }
    out
}

/// The sweep against the rate limits AWS documents as defaults: per operation, its sustained
/// rate over the sweep (`MaxConcurrency` checks at a time, each taking `seconds`), and for EC2's
/// non-mutating operations (a token bucket of 100 refilled at 20 per second, per operation,
/// account and region) the shortest sweep the refill allows. Other services publish their
/// defaults per account in Service Quotas, not as fixed numbers: their rates are listed to
/// compare with the account's quotas.
fn against_rate_limits(operations: &BTreeMap<String, usize>, seconds: f64) -> Value {
    let mut busiest: Vec<(&String, &usize)> = operations.iter().collect();
    busiest.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let rate = |n: usize| SWEEP_CONCURRENCY * n as f64 / seconds;
    let ec2_floor_hours = operations
        .iter()
        .filter(|(op, _)| op.starts_with("ec2:Describe"))
        .map(|(_, &n)| FLEET * n as f64 / EC2_NON_MUTATING_REFILL / 3600.0)
        .fold(0.0, f64::max);
    json!({
        "busiestOperations": busiest.iter().take(8).map(|(op, &n)| json!({
            "operation": op,
            "callsPerCheck": n,
            "perSecondDuringSweep": rate(n),
        })).collect::<Vec<_>>(),
        "ec2NonMutatingRefillPerSecond": EC2_NON_MUTATING_REFILL,
        "ec2SweepFloorHours": ec2_floor_hours,
        "ec2WithinRefill": operations
            .iter()
            .filter(|(op, _)| op.starts_with("ec2:Describe"))
            .all(|(_, &n)| rate(n) <= EC2_NON_MUTATING_REFILL),
    })
}

fn control_plane_calls(log: &CallLog) -> usize {
    log.calls
        .iter()
        .filter(|c| c.invocation.is_some() && CONTROL_PLANE_SERVICES.contains(&c.service.as_str()))
        .count()
}

impl Bench {
    async fn new(stack: &LocalStack, platform: &str) -> Bench {
        let aws = stack.sdk_config().await;
        let direct = stack.moto_sdk_config().await;
        let mut tenant: Value = serde_json::from_str(include_str!("../../examples/tenant.json"))
            .expect("examples/tenant.json is JSON");
        if let Some(t) = tenant.as_object_mut() {
            t.remove("s3Prefix");
            t.remove("secretsPrefix");
        }
        Bench {
            platform: platform.to_owned(),
            events: aws_sdk_eventbridge::Client::new(&aws),
            store: Store::from_config(&direct, stack.table_name()),
            sfn: aws_sdk_sfn::Client::new(&direct),
            tenant: serde_json::from_value(tenant).expect("a tenant"),
        }
    }

    async fn onboard(&self, name: &str) -> anyhow::Result<usize> {
        let mut t = self.tenant.clone();
        t.name = name.to_owned();
        t.owners = vec![format!("arn:aws:iam::111122223333:role/team-{name}")];
        let id = format!("bench-onboard-{name}");
        let detail = TenantRequest::onboarding(&id, &self.platform, t);
        self.request(
            RequestKind::TenantOnboarding,
            &id,
            serde_json::to_string(&detail)?,
        )
        .await
    }

    /// A compliance sweep through the bus: its calls (Security Hub's imports apart, every
    /// platform call is a read), transitions, time and counts.
    async fn sweep(&self, stack: &LocalStack, id: &str) -> anyhow::Result<Value> {
        stack.reset_calls();
        let request = PlatformRequest {
            schema_version: SCHEMA_VERSION.to_owned(),
            request_id: id.to_owned(),
            platform_id: self.platform.clone(),
            spec: None,
            remediate: None,
            components: None,
        };
        let started = Instant::now();
        let transitions = self
            .request(
                RequestKind::ComplianceSweep,
                id,
                serde_json::to_string(&request)?,
            )
            .await?;
        let seconds = started.elapsed().as_secs_f64();
        let log = stack.calls();
        let (by_service, mutating) = platform_calls(&log);
        let report = self
            .store
            .get_compliance_report(&self.platform, Some(id))
            .await?
            .ok_or_else(|| anyhow::anyhow!("{id}: no report"))?;
        let summary = report.summary();
        Ok(json!({
            "platformCalls": by_service.values().sum::<usize>(),
            "mutatingCalls": mutating,
            "securityHubImports": by_service.get("securityhub").copied().unwrap_or_default(),
            "platformCallsByService": by_service,
            "platformCallsByOperation": platform_operations(&log),
            "controlPlaneCalls": control_plane_calls(&log),
            "transitions": transitions,
            "seconds": seconds,
            "results": summary.results,
            "failed": summary.failed,
        }))
    }

    /// Puts a request on the bus and waits for its execution to succeed; its state transitions.
    async fn request(&self, kind: RequestKind, id: &str, detail: String) -> anyhow::Result<usize> {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(tenantry::events::event_bus())
            .source("bench")
            .detail_type(kind.detail_type())
            .detail(detail)
            .build();
        self.events.put_events().entries(entry).send().await?;
        let deadline = Instant::now() + Duration::from_secs(300);
        let arn = loop {
            anyhow::ensure!(Instant::now() < deadline, "intake never answered {id}");
            match self.store.get_request(id).await? {
                Some(info) if info.state == RequestState::Rejected => {
                    anyhow::bail!("{id} rejected: {:?}", info.error)
                }
                Some(info) if info.execution_arn.is_some() => {
                    break info.execution_arn.unwrap_or_default()
                }
                _ => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        };
        let run =
            tenantry_integration::wait_execution(&self.sfn, &arn, Duration::from_secs(900)).await;
        anyhow::ensure!(
            run.status == ExecutionStatus::Succeeded,
            "{id}: {:?} {:?}",
            run.cause,
            run.failures()
        );
        Ok(run.transitions())
    }
}
