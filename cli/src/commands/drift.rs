//! `tenantry drift PLATFORM`: puts a `DriftCheckRequested` event on the bus and, with `--wait`,
//! follows the check and prints its report (table, JSON or Markdown).

use super::requests::{new_request_id, send, Outgoing};
use super::status::{state_name, table};
use crate::connect::Connection;
use crate::progress::Output;
use anyhow::Context;
use clap::ValueEnum;
use std::process::ExitCode;
use tenantry::drift::{DriftReport, RemediateRequest};
use tenantry::events::{PlatformRequest, RequestKind, SCHEMA_VERSION};
use tenantry::functions::sweep::SweepKind;
use tenantry::plan::Phase;
use tenantry::spec::DriftRemediation;

/// What the check may repair (default: the platform's `driftRemediation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Remediate {
    /// Repair every difference, then observe again to confirm.
    Auto,
    /// Report differences only; takes no lease and blocks no other request.
    ReportOnly,
}

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Markdown,
}

/// What one check asks for.
pub struct Check {
    pub remediate: Option<Remediate>,
    /// Empty: every component.
    pub components: Vec<Phase>,
    pub request_id: Option<String>,
}

/// Parses a `--component` value (a phase name), naming the valid ones when it is not one.
pub fn component(value: &str) -> Result<Phase, String> {
    serde_json::from_value(serde_json::json!(value)).map_err(|_| {
        let names: Vec<&str> = Phase::ALL.iter().map(|p| p.as_str()).collect();
        format!("unknown component {value:?}; one of: {}", names.join(", "))
    })
}

pub async fn run(
    conn: &Connection,
    platform: &str,
    check: Check,
    wait: bool,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let request = PlatformRequest {
        schema_version: SCHEMA_VERSION.to_owned(),
        request_id: check.request_id.unwrap_or_else(|| new_request_id("drift")),
        platform_id: platform.to_owned(),
        spec: None,
        remediate: check.remediate.map(|r| RemediateRequest::All(mode(r))),
        components: (!check.components.is_empty()).then_some(check.components),
    };
    let output = match format {
        Format::Json => Output::Json,
        Format::Table | Format::Markdown => Output::Text,
    };
    let outgoing = Outgoing::platform(RequestKind::DriftCheck, &request)?;
    let code = send(conn, &outgoing, wait, output).await?;
    if !wait || code != ExitCode::SUCCESS {
        return Ok(code);
    }
    let connected = conn.connect().await?;
    let report = connected
        .store()
        .get_drift_report(platform, &request.request_id)
        .await?
        .with_context(|| format!("the check {} recorded no report", request.request_id))?;
    print!("{}", render(&report, format)?);
    Ok(ExitCode::SUCCESS)
}

/// `tenantry drift --all`: the fleet sweep of drift checks (what the nightly schedule starts).
pub async fn sweep(
    conn: &Connection,
    remediate: Option<Remediate>,
    wait: bool,
    format: Format,
    sweep_id: Option<String>,
) -> anyhow::Result<ExitCode> {
    let remediate = remediate.map(|r| serde_json::json!(mode(r)));
    let json = format == Format::Json;
    super::sweep::run(conn, SweepKind::Drift, remediate, wait, json, sweep_id).await
}

fn mode(r: Remediate) -> DriftRemediation {
    match r {
        Remediate::Auto => DriftRemediation::Auto,
        Remediate::ReportOnly => DriftRemediation::ReportOnly,
    }
}

/// The report in `format`: a summary line and one row per difference.
pub fn render(report: &DriftReport, format: Format) -> anyhow::Result<String> {
    if format == Format::Json {
        return Ok(serde_json::to_string_pretty(report)? + "\n");
    }
    let s = report.summary();
    let mut headline = format!(
        "drift check {} of {}: {} difference{}, {} repaired, {} open",
        s.request_id,
        report.platform_id,
        s.differences,
        if s.differences == 1 { "" } else { "s" },
        s.repaired,
        s.open
    );
    if let Some(pause) = &report.remediation_paused {
        headline.push_str(&format!(
            " (report-only: remediation {})",
            super::remediation::describe(pause)
        ));
    }
    let rows: Vec<[String; 6]> = report
        .differences
        .iter()
        .chain(&report.new_differences)
        .map(|d| {
            [
                d.phase.as_str().to_owned(),
                d.resource.clone(),
                d.field.clone(),
                state_name(&d.class),
                state_name(&d.action),
                state_name(&d.result),
            ]
        })
        .collect();
    const HEADER: [&str; 6] = ["phase", "resource", "field", "class", "action", "result"];
    if rows.is_empty() {
        return Ok(format!("{headline}\n"));
    }
    Ok(match format {
        Format::Markdown => {
            let mut out = format!(
                "**{headline}**\n\n| {} |\n|{}\n",
                HEADER.join(" | "),
                "---|".repeat(6)
            );
            for row in rows {
                let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
                out.push_str(&format!("| {} |\n", cells.join(" | ")));
            }
            out
        }
        _ => {
            let mut t = table(HEADER.to_vec());
            for row in rows {
                t.add_row(row.to_vec());
            }
            format!("{headline}\n{t}\n")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantry::drift::{Difference, DriftAction, DriftClass, DriftResult, Policy};

    #[test]
    fn components_are_phase_names_and_a_typo_lists_them() {
        assert_eq!(component("network"), Ok(Phase::Network));
        assert_eq!(component("tenants"), Ok(Phase::Tenants));
        let e = component("netwerk").unwrap_err();
        assert!(e.contains("\"netwerk\"") && e.contains("nodegroups"), "{e}");
    }

    fn report() -> DriftReport {
        DriftReport {
            platform_id: "payments".into(),
            request_id: "drift-1".into(),
            checked_at: chrono::Utc::now(),
            confirmed_at: None,
            policy: Policy::resolve(None, DriftRemediation::ReportOnly),
            differences: vec![Difference {
                phase: Phase::Network,
                item: None,
                resource: "ec2:subnet/subnet-1".into(),
                field: "tags.kubernetes.io/role/elb".into(),
                class: DriftClass::Changed,
                desired: serde_json::json!("1"),
                actual: serde_json::Value::Null,
                action: DriftAction::Reported,
                result: DriftResult::Open,
            }],
            new_differences: Vec::new(),
            scope: None,
            remediation_paused: None,
        }
    }

    #[test]
    fn every_format_names_the_resource_field_and_result() {
        let r = report();
        let table = render(&r, Format::Table).unwrap();
        assert!(
            table.starts_with("drift check drift-1 of payments: 1 difference, 0 repaired, 1 open"),
            "{table}"
        );
        assert!(
            table.contains("ec2:subnet/subnet-1") && table.contains("report"),
            "{table}"
        );
        let md = render(&r, Format::Markdown).unwrap();
        assert!(md.contains("| network | ec2:subnet/subnet-1 | tags.kubernetes.io/role/elb | changed | reported | open |"), "{md}");
        let json: serde_json::Value =
            serde_json::from_str(&render(&r, Format::Json).unwrap()).unwrap();
        assert_eq!(json["differences"][0]["class"], "changed");
    }

    #[test]
    fn a_check_run_while_paused_says_so_in_its_headline() {
        let mut r = report();
        r.remediation_paused = Some(tenantry::store::RemediationPause {
            reason: "INC-1234".into(),
            paused_by: "arn:aws:iam::123456789012:role/ops".into(),
            paused_at: chrono::Utc::now(),
        });
        let table = render(&r, Format::Table).unwrap();
        let headline = table.lines().next().unwrap();
        assert!(
            headline
                .contains("report-only: remediation paused by arn:aws:iam::123456789012:role/ops")
                && headline.ends_with(": INC-1234)"),
            "{headline}"
        );
    }
}
