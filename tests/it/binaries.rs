//! A platform's whole life on the real function binaries: each Lambda task of the real ASL is
//! served by the deployable binary of its function (`functions/*`, lambda_runtime's loop, its
//! error mapping, its cold start) behind the gateway's local Lambda Runtime API, not by the
//! handler inside the gateway's process.

use crate::platform::env_on;
use aws_sdk_sfn::types::ExecutionStatus;
use std::collections::BTreeMap;
use tenantry::events::RequestKind;
use tenantry::store::LifecycleState;
use tenantry_gateway::inspect::tagged_resources;
use tenantry_gateway::{CrashRule, Faults};

#[tokio::test]
async fn a_platform_is_provisioned_and_decommissioned_on_the_real_function_binaries() {
    let env = env_on(tenantry_integration::stack_on_binaries().await).await;
    let platform = env.platform_id();

    // The network process is killed (SIGKILL) right after its 6th AWS call, mid-invocation:
    // Lambda reports Runtime.ExitError, Step Functions retries, a fresh process converges.
    env.stack.set_faults(Faults {
        crash_after_calls: Some(CrashRule::new("network", 6)),
        ..Faults::default()
    });
    let run = env
        .run(RequestKind::PlatformProvision, "provision-on-binaries")
        .await;
    assert_eq!(
        run.status,
        ExecutionStatus::Succeeded,
        "{:?} {:?}",
        run.cause,
        run.failures()
    );
    assert!(
        run.failures()
            .iter()
            .any(|f| f.starts_with("Runtime.ExitError") && f.contains("process killed")),
        "the network process was killed mid-invocation: {:?}",
        run.failures()
    );

    let log = env.stack.calls();
    assert!(
        log.invocations
            .iter()
            .all(|i| i.access_key.starts_with("TPRC")),
        "every invocation ran on a function process"
    );
    let mut cold: BTreeMap<String, usize> = BTreeMap::new();
    for c in env.stack.cold_starts() {
        *cold.entry(c.function).or_default() += 1;
    }
    for function in [
        "intake",
        "network",
        "encryption",
        "identity",
        "cluster",
        "nodegroups",
        "addons",
        "bootstrap",
        "access",
        "observability",
        "finalize",
    ] {
        assert!(
            cold.contains_key(function),
            "{function} ran as a process: {cold:?}"
        );
    }
    assert_eq!(
        cold["network"], 2,
        "the killed network process was replaced by one fresh process: {cold:?}"
    );
    let found = tagged_resources(&env.aws, &platform).await.unwrap();
    assert_eq!(
        (
            found["ec2:vpc"],
            found["ec2:subnet"],
            found["ec2:nat-gateway"]
        ),
        (1, 9, 3),
        "the retry after the kill duplicated nothing: {found:?}"
    );
    let status = env
        .store
        .get_status(&platform)
        .await
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(status.state, LifecycleState::Active);
    crate::complete::assert_complete_platform(&env.stack, &env.aws, &env.spec, &status).await;

    let gone = env
        .run(
            RequestKind::PlatformDecommission,
            "decommission-on-binaries",
        )
        .await;
    assert_eq!(
        gone.status,
        ExecutionStatus::Succeeded,
        "{:?} {:?}",
        gone.cause,
        gone.failures()
    );
    let left = tagged_resources(&env.aws, &platform).await.unwrap();
    assert!(left.values().all(|n| *n == 0), "left behind: {left:?}");
    assert!(
        env.stack.function_processes("network") <= 1,
        "idle processes are reused, not multiplied"
    );
}

/// Each function binary links the construction of only the AWS clients its handler builds
/// (`aws::Clients` builds each client on first use): a service the handler never calls leaves
/// only the drop glue of its empty slot (a handful of symbols), where building its client takes
/// about 180 (client, configuration, endpoint resolver) and calling it thousands.
#[test]
fn a_function_binary_links_only_the_clients_its_handler_builds() {
    let dir = tenantry_gateway::StackOptions::default()
        .with_function_binaries_beside_exe()
        .unwrap_or_else(|e| panic!("{e:#}"))
        .function_binaries
        .expect("the binaries' directory");
    // (binary, services its handler calls, services it never calls)
    let cases = [
        (
            "selftest",
            &["dynamodb"][..],
            &["eks", "ec2", "s3", "kms", "iam"][..],
        ),
        (
            "encryption",
            &["kms", "dynamodb"][..],
            &["eks", "ec2", "s3", "iam"][..],
        ),
        (
            "network",
            &["ec2", "dynamodb"][..],
            &["eks", "s3", "kms", "iam"][..],
        ),
    ];
    for (binary, calls, never) in cases {
        let counts = sdk_symbols(&dir.join(binary));
        for service in calls {
            let n = counts.get(*service).copied().unwrap_or(0);
            assert!(
                n > 500,
                "{binary} calls {service}: {n} symbols of it, {counts:?}"
            );
        }
        for service in never {
            let n = counts.get(*service).copied().unwrap_or(0);
            assert!(
                n <= 20,
                "{binary} never calls {service} but links {n} symbols of it"
            );
        }
    }
}

/// The defined symbols of `binary` per `aws_sdk_<service>` crate they name (`nm`, demangled).
fn sdk_symbols(binary: &std::path::Path) -> BTreeMap<String, usize> {
    let out = std::process::Command::new("nm")
        .args(["--defined-only", "-C"])
        .arg(binary)
        .output()
        .expect("nm (binutils) runs");
    assert!(out.status.success(), "nm {}: {out:?}", binary.display());
    let mut counts = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut crates: Vec<&str> = line
            .split("aws_sdk_")
            .skip(1)
            .filter_map(|rest| rest.split("::").next())
            .collect();
        crates.sort_unstable();
        crates.dedup();
        for service in crates {
            *counts.entry(service.to_owned()).or_default() += 1;
        }
    }
    counts
}
