//! `tenantry plan FILE`

use super::read_input;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use std::path::Path;
use std::process::ExitCode;
use tenantry::plan::PhasePlan;

pub fn run(file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let text = read_input(file)?;
    let spec = match tenantry::validate::parse_platform(&text) {
        Ok(spec) => spec,
        Err(errors) => {
            eprintln!(
                "{}: {} problem(s); nothing planned",
                file.display(),
                errors.0.len()
            );
            for issue in &errors.0 {
                eprintln!("  {}  [{}]  {}", issue.path, issue.rule, issue.message);
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let plan = tenantry::plan::plan(&spec);
    if json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "platform {} (cluster {}, region {})\n",
        plan.platform_id, plan.cluster_name, plan.region
    );
    for PhasePlan { phase, resources } in &plan.phases {
        let mut table = Table::new();
        table.load_style(UTF8_BORDERS_ONLY);
        table.set_header(vec!["kind", "name", "depends on"]);
        for r in resources {
            table.add_row(vec![
                r.kind.to_string(),
                r.name.clone(),
                r.depends_on.join(", "),
            ]);
        }
        println!("{phase} ({} resources)\n{table}\n", resources.len());
    }
    let counts: Vec<String> = plan
        .counts_by_phase()
        .iter()
        .map(|(phase, n)| format!("{phase} {n}"))
        .collect();
    println!(
        "{} resources in {} phases: {}",
        plan.total(),
        plan.phases.len(),
        counts.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
