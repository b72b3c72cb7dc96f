//! The bad-request corpus (`tests/bad-requests/`): every file is refused, and the expected JSON
//! path and rule (from `expected.json`) are among the reported issues. The examples are accepted.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use serde::Deserialize;
use tenantry::validate::{parse_platform, parse_tenant, rules, ValidationErrors};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    /// `platform` or `tenant`: which parser the file is for.
    kind: String,
    /// JSON path that must be named.
    path: String,
    /// Rule id that must be reported at that path.
    rule: String,
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn corpus() -> PathBuf {
    workspace().join("tests").join("bad-requests")
}

fn manifest() -> BTreeMap<String, Expected> {
    let text =
        fs::read_to_string(corpus().join("expected.json")).expect("expected.json is readable");
    serde_json::from_str(&text).expect("expected.json maps file names to {kind, path, rule}")
}

fn parse(kind: &str, text: &str) -> Result<(), ValidationErrors> {
    match kind {
        "platform" => parse_platform(text).map(|_| ()),
        "tenant" => parse_tenant(text).map(|_| ()),
        other => panic!("unknown kind {other:?} in expected.json"),
    }
}

#[test]
fn every_bad_request_is_refused_with_its_path_named() {
    let manifest = manifest();
    assert!(
        manifest.len() >= 35,
        "the corpus has only {} files",
        manifest.len()
    );
    let mut failures = Vec::new();
    for (file, expected) in &manifest {
        assert!(
            rules::ALL.contains(&expected.rule.as_str()),
            "{file}: {} is not a rule id",
            expected.rule
        );
        let text = fs::read_to_string(corpus().join(file))
            .unwrap_or_else(|e| panic!("{file} listed in expected.json: {e}"));
        match parse(&expected.kind, &text) {
            Ok(()) => failures.push(format!("{file}: accepted")),
            Err(errors) => {
                if !errors.has(&expected.path, &expected.rule) {
                    failures.push(format!(
                        "{file}: expected {} at {}, got:\n{errors}",
                        expected.rule, expected.path
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_corpus_file_is_in_the_manifest() {
    let manifest = manifest();
    let mut unlisted = Vec::new();
    for entry in fs::read_dir(corpus()).expect("corpus directory") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".json") && name != "expected.json" && !manifest.contains_key(&name) {
            unlisted.push(name);
        }
    }
    assert!(
        unlisted.is_empty(),
        "files without an expected path: {unlisted:?}"
    );
}

#[test]
fn malformed_json_reports_line_and_column() {
    for (file, expected) in manifest() {
        if expected.rule != rules::JSON_SYNTAX {
            continue;
        }
        let text = fs::read_to_string(corpus().join(&file)).expect("readable");
        let errors = parse(&expected.kind, &text).expect_err("malformed");
        let issue = &errors.0[0];
        assert!(
            issue.line.is_some() && issue.column.is_some(),
            "{file}: {issue}"
        );
        assert!(issue.message.contains("line"), "{file}: {issue}");
    }
}

#[test]
fn the_examples_validate_cleanly() {
    let platform = fs::read_to_string(workspace().join("examples").join("platform.json"))
        .expect("examples/platform.json");
    parse_platform(&platform).unwrap_or_else(|e| panic!("examples/platform.json: {e}"));
    let tenant = fs::read_to_string(workspace().join("examples").join("tenant.json"))
        .expect("examples/tenant.json");
    parse_tenant(&tenant).unwrap_or_else(|e| panic!("examples/tenant.json: {e}"));
}
