//! `tenantry status [PLATFORM]`: what exists, what is running and why something failed, as
//! recorded in the state table.

use crate::connect::{Connected, Connection};
use crate::errors::not_found;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use serde_json::json;
use std::process::ExitCode;
use tenantry::store::{PlatformStatus, ResourceRecord, RunRecord, Store, Versioned};

/// A table in the style of every `tenantry` listing.
pub fn table(header: Vec<&str>) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_BORDERS_ONLY);
    t.set_header(header);
    t
}

pub fn state_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".to_owned(),
    }
}

/// Long values (a certificate, a list of many ARNs) are cut; `--json` has them whole.
fn abbreviate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}… (see --json)")
}

pub async fn run(
    conn: &Connection,
    platform: Option<&str>,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let connected = conn.connect().await?;
    match platform {
        None => list(&connected, json_out).await?,
        Some(platform_id) => show(&connected, platform_id, json_out).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `tenantry status`: every recorded platform, its state and last error.
async fn list(connected: &Connected, json_out: bool) -> anyhow::Result<()> {
    let store = connected.store();
    let platforms = store.list_platforms().await?;
    let mut rows = Vec::new();
    for p in &platforms {
        let status = store.get_status(&p.platform_id).await?.map(|s| s.value);
        rows.push((p, status));
    }
    if json_out {
        let out: Vec<_> = rows
            .iter()
            .map(|(p, s)| json!({ "platformId": p.platform_id, "specVersion": p.spec_version, "updatedAt": p.updated_at, "status": s }))
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no platforms recorded ({})", connected.target);
        return Ok(());
    }
    let mut t = table(vec![
        "platform",
        "state",
        "spec version",
        "updated",
        "last error",
    ]);
    for (p, s) in &rows {
        t.add_row(vec![
            p.platform_id.clone(),
            s.as_ref().map(|s| state_name(&s.state)).unwrap_or_default(),
            p.spec_version.to_string(),
            p.updated_at.to_rfc3339(),
            s.as_ref()
                .and_then(|s| s.last_error.as_ref())
                .map(|e| format!("{}: {}", e.code, e.message))
                .unwrap_or_default(),
        ]);
    }
    println!("{t}");
    Ok(())
}

/// `tenantry status PLATFORM`: the platform's state, phases, outputs, inventory and last runs.
async fn show(connected: &Connected, platform_id: &str, json_out: bool) -> anyhow::Result<()> {
    let store = connected.store();
    let Some(status) = store.get_status(platform_id).await? else {
        return Err(not_found(format!(
            "platform {platform_id:?} is not recorded in table {} ({}); `tenantry status` lists \
             the platforms",
            connected.table, connected.target
        ))
        .into());
    };
    let inventory = store.list_resources(platform_id).await?;
    let runs = store.list_runs(platform_id, 5).await?;
    if json_out {
        let out = json!({
            "platformId": platform_id,
            "version": status.version,
            "updatedAt": status.updated_at,
            "status": status.value,
            "inventory": inventory,
            "runs": runs,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    print_summary(&store, platform_id, &status).await?;
    print_tables(&status.value, &inventory, &runs);
    Ok(())
}

/// The platform's state, last error, last drift check, kubectl access and controllers.
async fn print_summary(
    store: &Store,
    platform_id: &str,
    status: &Versioned<PlatformStatus>,
) -> anyhow::Result<()> {
    let s = &status.value;
    println!(
        "platform {platform_id}: {} (status version {}, updated {})",
        state_name(&s.state),
        status.version,
        status.updated_at.to_rfc3339()
    );
    if let Some(e) = &s.last_error {
        println!(
            "last error: phase {}: {}: {}",
            e.phase.as_deref().unwrap_or("?"),
            e.code,
            e.message
        );
    }
    if let Some(d) = &s.last_drift {
        println!(
            "last drift check: {} at {}: {} difference{}, {} repaired, {} open \
             (`tenantry drift {platform_id} --wait` checks again)",
            d.request_id,
            d.checked_at.to_rfc3339(),
            d.differences,
            if d.differences == 1 { "" } else { "s" },
            d.repaired,
            d.open
        );
    }
    if let Some(command) = kubeconfig_command(&s.outputs) {
        println!("kubectl access: {command}");
    }
    let spec = store
        .get_spec(platform_id)
        .await?
        .and_then(|v| tenantry::validate::parse_platform(&v.value.to_string()).ok());
    if let Some(line) = spec.as_ref().and_then(controllers_line) {
        println!("controllers: {line}");
    }
    Ok(())
}

/// The phases, outputs, inventory and recent runs, as tables.
fn print_tables(s: &PlatformStatus, inventory: &[ResourceRecord], runs: &[RunRecord]) {
    let mut phases = table(vec!["phase", "state", "finished", "message"]);
    for (name, p) in &s.phases {
        phases.add_row(vec![
            name.clone(),
            state_name(&p.state),
            p.finished_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            p.message.clone().unwrap_or_default(),
        ]);
    }
    println!("\nphases\n{phases}");
    let mut outputs = table(vec!["output", "value"]);
    for (k, v) in &s.outputs {
        outputs.add_row(vec![k.clone(), abbreviate(&v.to_string(), 120)]);
    }
    println!("\noutputs\n{outputs}");
    let mut inv = table(vec!["type", "id", "phase"]);
    for r in inventory {
        inv.add_row(vec![r.resource_type.clone(), r.id.clone(), r.phase.clone()]);
    }
    println!("\ninventory ({} resources)\n{inv}", inventory.len());
    let mut rt = table(vec!["run", "status", "started", "finished", "request"]);
    for r in runs {
        rt.add_row(vec![
            r.kind.clone(),
            state_name(&r.status),
            r.started_at.to_rfc3339(),
            r.finished_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            r.request_id.clone().unwrap_or_default(),
        ]);
    }
    println!("\nrecent runs\n{rt}");
}

/// The `aws eks update-kubeconfig` command for the platform's cluster, from the cluster phase's
/// `clusterArn` output (its region and name), once the cluster exists.
fn kubeconfig_command(recorded: &tenantry::phases::outputs::OutputMap) -> Option<String> {
    let arn = tenantry::phases::outputs::CLUSTER_ARN
        .get(recorded)
        .ok()??;
    // arn:<partition>:eks:<region>:<account>:cluster/<name>
    let mut parts = arn.splitn(6, ':');
    let region = parts.nth(3)?;
    let name = parts.nth(1)?.strip_prefix("cluster/")?;
    Some(format!(
        "aws eks update-kubeconfig --region {region} --name {name}"
    ))
}

/// The controllers bootstrap installs for `spec` and their pinned versions, e.g.
/// `cluster-autoscaler v1.35.0, alb-controller v3.5.0`.
fn controllers_line(spec: &tenantry::spec::PlatformSpec) -> Option<String> {
    let versions = tenantry::kubernetes::controller_versions(spec);
    (!versions.is_empty()).then(|| {
        versions
            .iter()
            .map(|(name, version)| format!("{name} {version}"))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

#[cfg(test)]
mod kubeconfig_tests {
    use super::*;

    #[test]
    fn the_kubeconfig_command_names_the_clusters_region_and_name() {
        let outputs = std::collections::BTreeMap::from([(
            "clusterArn".to_owned(),
            json!("arn:aws:eks:eu-west-1:111122223333:cluster/payments-prod"),
        )]);
        assert_eq!(
            kubeconfig_command(&outputs).as_deref(),
            Some("aws eks update-kubeconfig --region eu-west-1 --name payments-prod")
        );
        assert_eq!(kubeconfig_command(&Default::default()), None);
    }

    #[test]
    fn the_controllers_line_names_each_installed_controller_and_its_version() {
        let text = include_str!("../../../examples/platform.json");
        let spec = tenantry::validate::parse_platform(text).expect("example");
        assert_eq!(
            controllers_line(&spec).as_deref(),
            Some(
                "cluster-autoscaler v1.35.0, alb-controller v3.5.0, external-dns v0.22.0, \
                 external-secrets v2.9.0"
            )
        );
    }
}
