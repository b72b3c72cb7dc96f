//! `tenantry compliance PLATFORM`: prints a platform's compliance report (the latest, or one
//! sweep's) and, with `--sweep`, first runs a sweep (a `ComplianceSweepRequested` event) and
//! follows it. Exits 9 when any control failed, so a pipeline can gate on it.

use super::requests::{new_request_id, send, Outgoing};
use super::status::table;
use crate::connect::Connection;
use crate::errors::{not_found, Exit};
use crate::progress::Output;
use anyhow::Context;
use clap::ValueEnum;
use std::path::PathBuf;
use std::process::ExitCode;
use tenantry::compliance::{html, render, ComplianceReport};
use tenantry::events::{PlatformRequest, RequestKind, SCHEMA_VERSION};

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A headline and one row per result, failures first.
    Table,
    /// The stored report: every result with its evidence.
    Json,
    /// The table and a summary by PCI DSS requirement, for a ticket or a wiki page.
    Markdown,
    /// One self-contained page for an auditor: summary by requirement, every control with its
    /// evidence, failures first.
    Html,
}

/// What the command was asked for.
pub struct Ask {
    pub sweep: bool,
    pub request_id: Option<String>,
    pub format: Format,
    pub output: Option<PathBuf>,
}

pub async fn run(conn: &Connection, platform: &str, ask: Ask) -> anyhow::Result<ExitCode> {
    let mut request_id = ask.request_id.clone();
    if ask.sweep {
        let request = PlatformRequest {
            schema_version: SCHEMA_VERSION.to_owned(),
            request_id: request_id
                .take()
                .unwrap_or_else(|| new_request_id("compliance")),
            platform_id: platform.to_owned(),
            spec: None,
            remediate: None,
            components: None,
        };
        let outgoing = Outgoing::platform(RequestKind::ComplianceSweep, &request)?;
        let output = match ask.format {
            Format::Json => Output::Json,
            _ => Output::Text,
        };
        // Progress goes to stderr when the report goes to stdout as JSON.
        let code = send(conn, &outgoing, true, output).await?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
        request_id = Some(request.request_id);
    }
    let connected = conn.connect().await?;
    let report = connected
        .store()
        .get_compliance_report(platform, request_id.as_deref())
        .await?
        .with_context(|| {
            not_found(match &request_id {
                Some(id) => format!("platform {platform:?} has no compliance report {id:?}"),
                None => format!(
                    "platform {platform:?} has no compliance report yet: run `tenantry compliance \
                     {platform} --sweep`"
                ),
            })
        })?;
    let text = render_as(&report, ask.format)?;
    match &ask.output {
        Some(path) => {
            std::fs::write(path, &text)
                .with_context(|| format!("writing the report to {}", path.display()))?;
            eprintln!(
                "{}\nreport written to {}",
                render::headline(&report),
                path.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(if report.summary().failed > 0 {
        Exit::ControlsFailed.into()
    } else {
        ExitCode::SUCCESS
    })
}

/// `tenantry compliance --all`: the fleet sweep of compliance (what the weekly schedule
/// starts), followed to its end; exit 9 when any platform has a failed control.
pub async fn sweep_all(
    conn: &Connection,
    format: Format,
    sweep_id: Option<String>,
) -> anyhow::Result<ExitCode> {
    use tenantry::functions::sweep::SweepKind;
    if matches!(format, Format::Markdown | Format::Html) {
        return Err(crate::errors::invalid_input(
            "--all prints a table or JSON (--format table|json): each platform's report, in any \
             format, is then shown by `tenantry compliance PLATFORM`",
        )
        .into());
    }
    let json = format == Format::Json;
    let report =
        super::sweep::run_and_wait(conn, SweepKind::Compliance, None, json, sweep_id).await?;
    Ok(match report {
        Err(code) => code,
        Ok(r) if r["flagged"].as_u64().unwrap_or(0) > 0 => Exit::ControlsFailed.into(),
        Ok(_) => ExitCode::SUCCESS,
    })
}

/// The report in `format`.
pub fn render_as(report: &ComplianceReport, format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Json => serde_json::to_string_pretty(report)? + "\n",
        Format::Markdown => render::markdown(report),
        Format::Html => html::html(report),
        Format::Table => {
            let mut t = table(vec!["status", "control", "severity", "resource", "reason"]);
            for (c, r) in render::rows(report) {
                t.add_row(vec![
                    r.status.as_str().to_owned(),
                    format!("{} {}", c.id, c.title),
                    c.severity.as_str().to_lowercase(),
                    r.resource.clone(),
                    r.reason.clone(),
                ]);
            }
            format!("{}\n{t}\n", render::headline(report))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantry::compliance::{ControlResult, Status};

    fn report() -> ComplianceReport {
        ComplianceReport {
            platform_id: "payments".into(),
            request_id: "compliance-1".into(),
            evaluated_at: "2026-12-03T00:00:00Z".into(),
            profile: "pci-dss-v4".into(),
            results: vec![ControlResult {
                control: "TNY-EKS-6".into(),
                resource: "arn:aws:eks:eu-west-1:111122223333:cluster/payments-prod".into(),
                status: Status::Fail,
                reason: "deletion protection is off".into(),
                evidence: serde_json::json!({"deletionProtection": false}),
                first_seen: None,
            }],
        }
    }

    #[test]
    fn every_format_names_the_control_resource_and_reason() {
        let r = report();
        let t = render_as(&r, Format::Table).unwrap();
        assert!(
            t.starts_with("compliance sweep compliance-1 of payments"),
            "{t}"
        );
        assert!(
            t.contains("TNY-EKS-6") && t.contains("deletion protection is off"),
            "{t}"
        );
        let md = render_as(&r, Format::Markdown).unwrap();
        assert!(
            md.contains("| fail | TNY-EKS-6 The cluster has deletion protection | medium |"),
            "{md}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&render_as(&r, Format::Json).unwrap()).unwrap();
        assert_eq!(json["results"][0]["evidence"]["deletionProtection"], false);
        let page = render_as(&r, Format::Html).unwrap();
        assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
        assert!(
            page.contains(
                "<span class=\"status fail\">FAIL</span><span class=\"id\">TNY-EKS-6</span>"
            ),
            "{page}"
        );
        assert!(
            page.contains("<code>arn:aws:eks:eu-west-1:111122223333:cluster/payments-prod</code>")
                && page.contains("deletion protection is off")
                && page.contains("&quot;deletionProtection&quot;: false"),
            "{page}"
        );
    }

    #[test]
    fn html_is_a_format_of_the_command() {
        assert_eq!(Format::from_str("html", false), Ok(Format::Html));
    }
}
