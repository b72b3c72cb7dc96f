//! What the built binary says, and how it exits, when it has nothing to connect to.

mod common;
use common::{isolated, text};

fn empty_dir(tag: &str) -> std::path::PathBuf {
    common::empty_dir("errors", tag)
}

#[test]
fn no_stack_and_no_credentials_names_both_ways_out() {
    let dir = empty_dir("no-credentials");
    for args in [&["status"][..], &["status", "payments"][..]] {
        let out = isolated(&dir, args, &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: no local stack and no AWS credentials"),
            "{stderr}"
        );
        for needle in [
            "`tenantry dev up`",
            "AWS_PROFILE",
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            "AWS_REGION or --region",
        ] {
            assert!(stderr.contains(needle), "{needle:?} missing:\n{stderr}");
        }
    }
    // The same through the CLI's own EventBridge call, region set.
    let out = isolated(
        &dir,
        &["decommission", "payments"],
        &[("AWS_REGION", "eu-west-1")],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("no local stack and no AWS credentials"),
        "{stderr}"
    );
    assert!(stderr.contains("details: events:PutEvents"), "{stderr}");
}

#[test]
fn a_missing_region_says_what_sets_it() {
    let dir = empty_dir("no-region");
    // EventBridge resolves its endpoint (which needs the region) before the credentials.
    let out = isolated(&dir, &["decommission", "payments"], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.starts_with("error: no AWS region is set: pass --region REGION, or set AWS_REGION"),
        "{stderr}"
    );
    assert!(stderr.contains("`tenantry dev up`"), "{stderr}");
}

#[test]
fn an_unreadable_input_file_exits_2() {
    let dir = empty_dir("input");
    let out = isolated(&dir, &["validate", "missing.json"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("error: reading missing.json:"));
}

#[test]
fn help_lists_the_exit_codes() {
    let dir = empty_dir("help");
    let out = isolated(&dir, &["--help"], &[]);
    let help = text(&out.stdout);
    assert!(help.contains("Exit codes:"), "{help}");
    assert!(help.contains("3  cannot connect"), "{help}");
    assert!(help.contains("--region"), "{help}");
}
