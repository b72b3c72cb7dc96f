//! `tenantry validate FILE`

use super::read_input;
use std::path::Path;
use std::process::ExitCode;

pub fn run(file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let text = read_input(file)?;
    let result = tenantry::validate::parse_platform(&text);
    if json {
        let out = match &result {
            Ok(_) => serde_json::json!({ "valid": true, "issues": [] }),
            Err(errors) => serde_json::json!({ "valid": false, "issues": errors.0 }),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        match &result {
            Ok(spec) => println!(
                "{}: valid platform request for {:?} ({} node groups, {} tenants)",
                file.display(),
                spec.id,
                spec.effective_node_groups().len(),
                spec.tenants.len()
            ),
            Err(errors) => {
                eprintln!("{}: {} problem(s)", file.display(), errors.0.len());
                for issue in &errors.0 {
                    eprintln!("  {}  [{}]  {}", issue.path, issue.rule, issue.message);
                }
            }
        }
    }
    Ok(if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
