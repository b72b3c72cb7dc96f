//! Finding the local stack: from any directory inside the repository, upward as git finds its
//! repository; a named state directory (flag or TENANTRY_STATE_DIR) wins.

mod common;
use common::{isolated, text};
use std::path::Path;

/// A stack record answering nowhere (port 1), with `endpoint` to tell it apart.
fn record(state_dir: &Path, port: u16) {
    std::fs::create_dir_all(state_dir).unwrap();
    let file = serde_json::json!({
        "awsEndpoint": format!("http://127.0.0.1:{port}"),
        "motoEndpoint": "http://127.0.0.1:1",
        "kubeEndpoint": "http://127.0.0.1:1",
        "region": "eu-west-1",
        "tableName": "tenantry",
        "pid": 1,
        "startedAt": "2026-01-01T00:00:00Z",
        "stateMachines": {},
    });
    std::fs::write(state_dir.join("stack.json"), file.to_string()).unwrap();
}

fn endpoint_seen(dir: &std::path::PathBuf, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut all = vec!["dev", "status", "--json"];
    all.extend_from_slice(args);
    let out = isolated(dir, &all, env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["running"], false);
    v["awsEndpoint"].as_str().unwrap_or("none").to_owned()
}

#[test]
fn the_stack_is_found_from_a_subdirectory_and_a_named_one_wins() {
    let root = common::empty_dir("stack", "upward");
    let repo = root.join("repo");
    let deep = repo.join("services/payments/src");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::create_dir_all(repo.join(".git")).unwrap();
    // Another project's stack, above the repository: never this one's.
    record(&root.join(".tenantry"), 7);
    assert_eq!(endpoint_seen(&deep, &[], &[]), "none");

    record(&repo.join(".tenantry"), 2);
    assert_eq!(endpoint_seen(&deep, &[], &[]), "http://127.0.0.1:2");
    assert_eq!(endpoint_seen(&repo, &[], &[]), "http://127.0.0.1:2");
    let named = root.join("elsewhere");
    record(&named, 3);
    let env = [("TENANTRY_STATE_DIR", named.to_str().unwrap())];
    assert_eq!(endpoint_seen(&deep, &[], &env), "http://127.0.0.1:3");
    assert_eq!(
        endpoint_seen(&deep, &["--state-dir", named.to_str().unwrap()], &[]),
        "http://127.0.0.1:3"
    );

    // A command that talks to AWS goes to the stack found, not to AWS (no credentials here).
    let out = isolated(&deep, &["status"], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.starts_with("error: cannot reach the AWS endpoint."),
        "{stderr}"
    );
    // Without a stack anywhere up to the repository's root, it goes to AWS.
    std::fs::remove_dir_all(repo.join(".tenantry")).unwrap();
    let out = isolated(&deep, &["status"], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.starts_with("error: no local stack and no AWS credentials"),
        "{stderr}"
    );
}
