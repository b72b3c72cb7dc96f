//! `tenantry validate FILE` (and, through [`report`], `tenantry tenant validate FILE`)

use super::read_input;
use std::path::Path;
use std::process::ExitCode;
use tenantry::validate::{Issue, ValidationErrors};

pub fn run(file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let text = read_input(file)?;
    report(
        file,
        json,
        &tenantry::validate::parse_platform(&text),
        |spec| {
            format!(
                "valid platform request for {:?} ({} node groups, {} tenants)",
                spec.id,
                spec.effective_node_groups().len(),
                spec.tenants.len()
            )
        },
    )
}

/// Prints the outcome of validating `file`: `{"valid": bool, "issues": [...]}` with `--json`,
/// otherwise `describe`'s summary of a valid request or every issue on standard error. Exit 1
/// when the request is invalid.
pub fn report<T>(
    file: &Path,
    json: bool,
    result: &Result<T, ValidationErrors>,
    describe: impl FnOnce(&T) -> String,
) -> anyhow::Result<ExitCode> {
    if json {
        let out = match result {
            Ok(_) => serde_json::json!({ "valid": true, "issues": [] }),
            Err(errors) => serde_json::json!({ "valid": false, "issues": errors.0 }),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        match result {
            Ok(spec) => println!("{}: {}", file.display(), describe(spec)),
            Err(errors) => print_issues(&format!("{}", file.display()), &errors.0, ""),
        }
    }
    Ok(if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `SUBJECT: N problem(s)NOTE` then one `  path  [rule]  message` line per issue, on standard
/// error.
pub fn print_issues(subject: &str, issues: &[Issue], note: &str) {
    eprintln!("{subject}: {} problem(s){note}", issues.len());
    for issue in issues {
        eprintln!("  {}  [{}]  {}", issue.path, issue.rule, issue.message);
    }
}
