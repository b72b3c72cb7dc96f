//! `tenantry tenant`: the parts that need no AWS (validation, argument rules, help), run through
//! the built binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The workspace root, where `examples/` lives.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ has a parent")
        .to_path_buf()
}

/// Runs `tenantry ARGS` in the workspace root, with no local stack or endpoint to find.
fn tenantry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .args(args)
        .current_dir(root())
        .env("TENANTRY_STATE_DIR", root().join("target/no-stack-here"))
        .env_remove("TENANTRY_AWS_ENDPOINT")
        .stdin(Stdio::null())
        .output()
        .expect("tenantry runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Writes a tenant request with `name` to a temporary file and returns its path.
fn tenant_file(tag: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tenantry-cli-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{tag}.json"));
    let body = serde_json::json!({ "name": name, "costCentre": "cc-3100" });
    std::fs::write(&path, body.to_string()).unwrap();
    path
}

#[test]
fn the_example_tenant_is_valid() {
    let out = tenantry(&["tenant", "validate", "examples/tenant.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("valid tenant request"), "{stdout}");
    assert!(stdout.contains("fraud-scoring"), "{stdout}");
}

#[test]
fn a_tenant_file_from_standard_input() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .args(["tenant", "validate", "-", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let example = std::fs::read(root().join("examples/tenant.json")).unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &example).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["valid"], true);
    assert_eq!(result["issues"], serde_json::json!([]));
}

#[test]
fn hostile_names_are_refused_with_path_and_rule() {
    for (tag, name) in [("traversal", "../x"), ("reserved", "KUBE-SYSTEM")] {
        let file = tenant_file(tag, name);
        let out = tenantry(&["tenant", "validate", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{name:?} was accepted");
        let stderr = text(&out.stderr);
        let line = stderr
            .lines()
            .find(|l| l.trim_start().starts_with("$.name "))
            .unwrap_or_else(|| panic!("no issue at $.name for {name:?}:\n{stderr}"));
        // `  $.name  [rule]  message`
        let rule = line
            .split('[')
            .nth(1)
            .and_then(|r| r.split(']').next())
            .unwrap_or_default();
        assert!(!rule.is_empty(), "no rule in {line:?}");

        let out = tenantry(&["tenant", "validate", "--json", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
        let result: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("--json is not JSON ({e}): {}", text(&out.stdout)));
        assert_eq!(result["valid"], false);
        let issues = result["issues"].as_array().unwrap();
        assert!(
            issues
                .iter()
                .any(|i| i["path"] == "$.name" && i["rule"] == rule),
            "{result:#}"
        );
    }
}

#[test]
fn an_invalid_tenant_is_not_sent() {
    // No local stack and no endpoint: had the request been sent, this would fail differently.
    let file = tenant_file("add", "../x");
    let out = tenantry(&["tenant", "add", "payments", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("nothing was sent"), "{stderr}");
    assert!(stderr.contains("$.name"), "{stderr}");
}

#[test]
fn a_hostile_tenant_name_to_remove_is_not_sent() {
    let out = tenantry(&["tenant", "remove", "payments", "../x"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("nothing was sent"), "{stderr}");
}

#[test]
fn schedule_key_deletion_needs_retain_data() {
    let out = tenantry(&[
        "tenant",
        "remove",
        "payments",
        "fraud-scoring",
        "--schedule-key-deletion",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--retain-data"));
}

#[test]
fn help_says_what_stays_and_what_goes() {
    for args in [
        &["tenant", "--help"][..],
        &["tenant", "remove", "--help"][..],
    ] {
        let out = tenantry(args);
        assert_eq!(out.status.code(), Some(0));
        let help = text(&out.stdout);
        for needle in ["7-day", "30-day", "--retain-data", "every object version"] {
            assert!(help.contains(needle), "{args:?} lacks {needle:?}:\n{help}");
        }
    }
    let out = tenantry(&["--help"]);
    assert!(text(&out.stdout).contains("tenantry tenant add"));
}
