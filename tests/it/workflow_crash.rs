//! Crash safety of the phases the per-phase sweeps (`crash.rs`: encryption, identity, cluster;
//! `network`'s soak sweep; `intake.rs`; `tenant_crash.rs`: onboarding) do not cover, through the
//! whole workflow as Step Functions runs it: node groups, add-ons, access, bootstrap and tenants
//! in a provision, and every phase function of a decommission.
//!
//! A clean run on a stack of its own records each invocation's calls in order (in process, each
//! invocation signs with its own access key). A crash point is a position N in one invocation of
//! function F whose call is a mutating call to a platform service. For each point, a fresh stack
//! runs the same workflow with the gateway killing F's first invocation that reaches N calls
//! right after call N (its side effect happened, the handler never sees the answer). Step
//! Functions retries the task (`Runtime.ExitError`), and the workflow must succeed with:
//! - provision: the census identical to the clean run's (every resource tagged with the platform
//!   by kind, and the inventory by kind): nothing duplicated, nothing missing;
//! - decommission: 0 resources tagged with the platform and an empty inventory.
//!
//! Kubernetes API calls count too (bootstrap makes only those): the gateway's front of the cluster
//! doubles attributes each to its invocation by the access key in its EKS token, and kills the
//! invocation after the N-th (`Faults::crash_after_kube_calls`).
//!
//! `make soak` runs every point on its own. `make test` runs the same points in groups, one
//! workflow per group, each function crashed once in it: per API, the first point of every
//! function, then the last point of every function.

use aws_sdk_sfn::types::ExecutionStatus;
use std::collections::{BTreeMap, BTreeSet};
use tenantry::events::RequestKind;
use tenantry_gateway::faults::Api;
use tenantry_gateway::inspect::tagged_resources;
use tenantry_gateway::{CallLog, CrashRule, Faults};

use crate::platform::{env, Env};

/// Tenantry's own bookkeeping and workflow services: not platform resources.
const BOOKKEEPING: &[&str] = &["dynamodb", "sts", "states", "events", "sqs"];

/// The provision phases swept here.
const PROVISION: &[&str] = &["nodegroups", "addons", "access", "bootstrap", "tenant"];

/// What exists for a platform: live resources tagged with it, and its inventory, by kind.
type Census = BTreeMap<String, usize>;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Point {
    function: String,
    /// `AWS` or `Kubernetes`: the calls the crash rule counts.
    api: &'static str,
    after_calls: u32,
    /// `service Operation` of the call the crash follows (in the clean run).
    call: String,
}

/// Every mutating call of `functions` in a clean run's `log`, AWS and Kubernetes, as the crash
/// point after it, with the access key of the invocation that made it.
fn mutating_calls(log: &CallLog, functions: &[&str]) -> Vec<(Point, String)> {
    let mut out = Vec::new();
    let mut position: BTreeMap<&str, u32> = BTreeMap::new();
    for c in &log.calls {
        let (Some(function), Some(key)) = (c.invocation.as_deref(), c.access_key.as_deref()) else {
            continue;
        };
        let n = position.entry(key).or_default();
        *n += 1;
        if functions.contains(&function)
            && c.mutating
            && c.fault.is_none()
            && !BOOKKEEPING.contains(&c.service.as_str())
        {
            let point = Point {
                function: function.to_owned(),
                api: "AWS",
                after_calls: *n,
                call: format!("{} {}", c.service, c.operation),
            };
            out.push((point, key.to_owned()));
        }
    }
    let mut position: BTreeMap<&str, u32> = BTreeMap::new();
    for c in &log.kube_calls {
        let n = position.entry(c.access_key.as_str()).or_default();
        *n += 1;
        if functions.contains(&c.function.as_str()) && c.mutating {
            let point = Point {
                function: c.function.clone(),
                api: "Kubernetes",
                after_calls: *n,
                call: format!("{} {}", c.method, c.path),
            };
            out.push((point, c.access_key.clone()));
        }
    }
    out
}

/// Every crash point of `functions` in a clean run's `log`, AWS and Kubernetes calls, in
/// function, API, then position order (one per position).
fn crash_points(log: &CallLog, functions: &[&str]) -> Vec<Point> {
    let points: BTreeSet<Point> = mutating_calls(log, functions)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    let mut seen = BTreeSet::new();
    points
        .into_iter()
        .filter(|p| seen.insert((p.function.clone(), p.api, p.after_calls)))
        .collect()
}

/// Per function and API, how far every one of its invocations got in the clean run: the
/// smallest of their last mutating positions. Items differ and a Map runs them in no fixed order
/// (a tenant whose peer is already there makes more calls than one whose peer is not yet), so a
/// later position may not be reached in another run, and its crash would never happen.
fn reached_by_every_invocation(
    log: &CallLog,
    functions: &[&str],
) -> BTreeMap<(String, &'static str), u32> {
    let mut last: BTreeMap<(String, &'static str, String), u32> = BTreeMap::new();
    for (p, key) in mutating_calls(log, functions) {
        let n = last.entry((p.function, p.api, key)).or_default();
        *n = (*n).max(p.after_calls);
    }
    let mut out: BTreeMap<(String, &'static str), u32> = BTreeMap::new();
    for ((function, api, _), n) in last {
        let reached = out.entry((function, api)).or_insert(n);
        *reached = (*reached).min(n);
    }
    out
}

/// The groups `make test` runs: per API, the first point of every function, then the last one
/// every invocation of the function reaches (`reached`, from [`reached_by_every_invocation`]);
/// a function whose only such point is its first is left out of the second group.
fn groups(points: &[Point], reached: &BTreeMap<(String, &'static str), u32>) -> Vec<Vec<Point>> {
    let mut by_function: BTreeMap<(&str, &str), Vec<&Point>> = BTreeMap::new();
    for p in points {
        by_function.entry((p.api, &p.function)).or_default().push(p);
    }
    let mut out = Vec::new();
    for api in ["AWS", "Kubernetes"] {
        let of_api: Vec<&Vec<&Point>> = by_function
            .iter()
            .filter(|((a, _), _)| *a == api)
            .map(|(_, ps)| ps)
            .collect();
        let first: Vec<Point> = of_api.iter().map(|ps| ps[0].clone()).collect();
        let last: Vec<Point> = of_api
            .iter()
            .filter_map(|ps| {
                let bound = reached.get(&(ps[0].function.clone(), ps[0].api))?;
                let p = ps.iter().rev().find(|p| p.after_calls <= *bound)?;
                (p.after_calls > ps[0].after_calls).then(|| (*p).clone())
            })
            .collect();
        out.extend([first, last].into_iter().filter(|g| !g.is_empty()));
    }
    out
}

async fn census(env: &Env) -> Census {
    let platform = env.platform_id();
    let mut census: Census = tagged_resources(&env.aws, &platform)
        .await
        .expect("census")
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(kind, n)| (kind.to_string(), n))
        .collect();
    for r in env
        .store
        .list_resources(&platform)
        .await
        .expect("inventory")
    {
        *census
            .entry(format!("inventory {}", r.resource_type))
            .or_default() += 1;
    }
    census
}

async fn provision(env: &Env, request_id: &str) {
    let run = env.run(RequestKind::PlatformProvision, request_id).await;
    assert_eq!(
        run.status,
        ExecutionStatus::Succeeded,
        "{request_id}: {:?} {:?}",
        run.cause,
        run.failures()
    );
}

/// The clean runs: the provision's log and census, and the decommission's log.
async fn reference() -> (CallLog, Census, CallLog) {
    let env = env().await;
    env.stack.reset_calls();
    provision(&env, "clean-provision").await;
    let provision_log = env.stack.calls();
    let clean = census(&env).await;
    env.stack.reset_calls();
    let gone = env
        .run(RequestKind::PlatformDecommission, "clean-decommission")
        .await;
    assert_eq!(gone.status, ExecutionStatus::Succeeded, "{:?}", gone.cause);
    (provision_log, clean, env.stack.calls())
}

/// Functions a decommission invokes, the workflow's own (intake, finalize) aside.
fn phase_functions(log: &CallLog) -> Vec<String> {
    log.invocations
        .iter()
        .map(|i| i.function.clone())
        .filter(|f| f != "intake" && f != "finalize")
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Each point's function crashed once, right after its point.
fn crash(points: &[Point]) -> Faults {
    let api = |p: &Point| match p.api {
        "Kubernetes" => Api::Kubernetes,
        _ => Api::Aws,
    };
    Faults {
        more_crashes: points
            .iter()
            .map(|p| (api(p), CrashRule::new(p.function.clone(), p.after_calls)))
            .collect(),
        ..Faults::default()
    }
}

/// Every point's crash happened, and the workflow met `Runtime.ExitError`.
fn assert_crashed(points: &[Point], run: &tenantry_integration::Execution, log: &CallLog) {
    assert!(
        run.failures()
            .iter()
            .any(|f| f.starts_with("Runtime.ExitError")),
        "{points:?}: no crash reached the workflow: {:?}",
        run.failures()
    );
    for p in points {
        let crashed = log
            .invocations
            .iter()
            .filter(|i| i.function == p.function && i.outcome == "crashed")
            .count();
        assert_eq!(crashed, 1, "{p:?}: crashed invocations of {}", p.function);
    }
}

/// Runs `kind` on `env` with each point's crash armed: it must succeed, through every crash.
async fn run_crashed(env: &Env, p: &[Point], kind: RequestKind) {
    env.stack.reset_calls();
    env.stack.set_faults(crash(p));
    let run = env.run(kind, "crashed").await;
    env.stack.set_faults(Faults::default());
    assert_eq!(
        run.status,
        ExecutionStatus::Succeeded,
        "{p:?}: {:?} {:?}",
        run.cause,
        run.failures()
    );
    assert_crashed(p, &run, &env.stack.calls());
}

async fn provision_crashed_at(p: &[Point], clean: &Census) {
    let env = env().await;
    run_crashed(&env, p, RequestKind::PlatformProvision).await;
    assert_eq!(
        &census(&env).await,
        clean,
        "{p:?}: census (left) vs clean run"
    );
}

async fn decommission_crashed_at(p: &[Point]) {
    let env = env().await;
    provision(&env, "provision").await;
    run_crashed(&env, p, RequestKind::PlatformDecommission).await;
    let left = census(&env).await;
    assert!(left.is_empty(), "{p:?}: left behind: {left:?}");
}

async fn sweep(all: bool) {
    let (provision_log, clean, decommission_log) = reference().await;
    let provision_points = crash_points(&provision_log, PROVISION);
    let decommission_functions = phase_functions(&decommission_log);
    let names: Vec<&str> = decommission_functions.iter().map(String::as_str).collect();
    let decommission_points = crash_points(&decommission_log, &names);
    for f in PROVISION {
        assert!(
            provision_points.iter().any(|p| p.function == *f),
            "{f} made no mutating call in a provision: {provision_points:?}"
        );
    }
    let (provision_runs, decommission_runs) = if all {
        let one = |ps: Vec<Point>| ps.into_iter().map(|p| vec![p]).collect::<Vec<_>>();
        (one(provision_points), one(decommission_points))
    } else {
        (
            groups(
                &provision_points,
                &reached_by_every_invocation(&provision_log, PROVISION),
            ),
            groups(
                &decommission_points,
                &reached_by_every_invocation(&decommission_log, &names),
            ),
        )
    };
    eprintln!(
        "crash runs: provision {}, decommission {} (of {decommission_functions:?})",
        provision_runs.len(),
        decommission_runs.len()
    );
    for points in &provision_runs {
        eprintln!("provision, crash after {points:?}");
        provision_crashed_at(points, &clean).await;
    }
    for points in &decommission_runs {
        eprintln!("decommission, crash after {points:?}");
        decommission_crashed_at(points).await;
    }
}

#[tokio::test]
async fn provision_and_decommission_converge_after_a_crash_in_every_phase_at_its_first_and_its_last_mutating_call(
) {
    sweep(false).await;
}

#[tokio::test]
#[ignore = "soak: make soak"]
async fn soak_provision_and_decommission_converge_after_a_crash_after_any_mutating_call() {
    sweep(true).await;
}

#[test]
fn groups_take_the_first_then_the_last_point_every_invocation_reaches_per_api() {
    let p = |f: &str, api, n| Point {
        function: f.to_owned(),
        api,
        after_calls: n,
        call: String::new(),
    };
    let points = [
        p("a", "AWS", 1),
        p("a", "AWS", 2),
        p("a", "AWS", 3),
        p("a", "AWS", 5),
        p("a", "Kubernetes", 1),
        p("b", "AWS", 4),
    ];
    // One invocation of `a` went as far as 5, another stopped at 3: 5 may never come again.
    let reached = BTreeMap::from([
        (("a".to_owned(), "AWS"), 3),
        (("a".to_owned(), "Kubernetes"), 1),
        (("b".to_owned(), "AWS"), 4),
    ]);
    assert_eq!(
        groups(&points, &reached),
        vec![
            vec![p("a", "AWS", 1), p("b", "AWS", 4)],
            vec![p("a", "AWS", 3)],
            vec![p("a", "Kubernetes", 1)],
        ]
    );
}
