//! A report as people read it: Markdown (failures first, then a summary by PCI DSS requirement).
//! The CLI's table and JSON come from the same rows ([`rows`]).

use super::catalogue::{control, Control, CONTROLS};
use super::report::{ComplianceReport, ControlResult, Status};
use std::collections::BTreeMap;

/// One result with its control, in report order: failures first (most severe first), then
/// passes, then what does not apply; each group in catalogue order.
pub fn rows(report: &ComplianceReport) -> Vec<(&'static Control, &ControlResult)> {
    let position = |id: &str| {
        CONTROLS
            .iter()
            .position(|c| c.id == id)
            .unwrap_or(usize::MAX)
    };
    let mut out: Vec<_> = report
        .results
        .iter()
        .filter_map(|r| control(&r.control).map(|c| (c, r)))
        .collect();
    out.sort_by_key(|(c, r)| {
        let severity = if r.status == Status::Fail {
            c.severity
        } else {
            super::Severity::Low
        };
        (r.status, severity, position(c.id))
    });
    out
}

/// The headline: `compliance sweep S of P (profile): N controls, F failed results (...)`.
pub fn headline(report: &ComplianceReport) -> String {
    let s = report.summary();
    let by_severity: Vec<String> = s
        .failed_by_severity
        .iter()
        .map(|(sev, n)| format!("{n} {}", sev.as_str().to_lowercase()))
        .collect();
    format!(
        "compliance sweep {} of {} (profile {}, {}): {} controls, {} results: {} passed, {} failed{}, {} not applicable",
        report.request_id,
        report.platform_id,
        report.profile,
        report.evaluated_at,
        s.controls,
        s.results,
        s.passed,
        s.failed,
        if by_severity.is_empty() { String::new() } else { format!(" ({})", by_severity.join(", ")) },
        s.not_applicable,
    )
}

/// Per PCI DSS requirement: the controls mapped to it and how their results went.
pub fn by_requirement(
    report: &ComplianceReport,
) -> BTreeMap<&'static str, (Vec<&'static str>, u32, u32)> {
    let mut out: BTreeMap<&'static str, (Vec<&'static str>, u32, u32)> = BTreeMap::new();
    for (c, r) in rows(report) {
        for req in c.mappings.pci {
            let entry = out.entry(req).or_default();
            if !entry.0.contains(&c.id) {
                entry.0.push(c.id);
            }
            match r.status {
                Status::Pass => entry.1 += 1,
                Status::Fail => entry.2 += 1,
                Status::NotApplicable => {}
            }
        }
    }
    out
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The report in Markdown.
pub fn markdown(report: &ComplianceReport) -> String {
    let mut out = format!("**{}**\n\n", headline(report));
    out.push_str("| status | control | severity | resource | reason |\n|---|---|---|---|---|\n");
    for (c, r) in rows(report) {
        out.push_str(&format!(
            "| {} | {} {} | {} | {} | {} |\n",
            r.status.as_str(),
            c.id,
            cell(c.title),
            c.severity.as_str().to_lowercase(),
            cell(&r.resource),
            cell(&r.reason),
        ));
    }
    out.push_str("\n**By PCI DSS v4.0.1 requirement**\n\n| requirement | controls | passed | failed |\n|---|---|---|---|\n");
    for (req, (controls, passed, failed)) in by_requirement(report) {
        out.push_str(&format!(
            "| {req} | {} | {passed} | {failed} |\n",
            controls.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::report::ControlResult;

    fn report() -> ComplianceReport {
        let result = |control: &str, status| ControlResult {
            control: control.into(),
            resource: format!("res-{control}"),
            status,
            reason: "because | of this".into(),
            evidence: serde_json::json!({}),
            first_seen: None,
        };
        ComplianceReport {
            platform_id: "payments".into(),
            request_id: "sweep-1".into(),
            evaluated_at: "2026-12-03T00:00:00Z".into(),
            profile: "pci-dss-v4".into(),
            results: vec![
                result("TNY-KMS-1", Status::Pass),
                result("TNY-LOG-2", Status::NotApplicable),
                result("TNY-NET-5", Status::Fail),
                result("TNY-S3-2", Status::Fail),
            ],
        }
    }

    #[test]
    fn failures_come_first_most_severe_first() {
        let r = report();
        let order: Vec<&str> = rows(&r).iter().map(|(c, _)| c.id).collect();
        assert_eq!(order, ["TNY-S3-2", "TNY-NET-5", "TNY-KMS-1", "TNY-LOG-2"]);
    }

    #[test]
    fn markdown_has_the_headline_escaped_cells_and_the_requirements() {
        let md = markdown(&report());
        assert!(
            md.starts_with("**compliance sweep sweep-1 of payments (profile pci-dss-v4"),
            "{md}"
        );
        assert!(md.contains("2 failed (1 critical, 1 high)"), "{md}");
        assert!(md.contains("| fail | TNY-S3-2 The tenant-data bucket blocks all public access | critical | res-TNY-S3-2 | because \\| of this |"), "{md}");
        // 3.7.4 maps only to the key rotation control, which passed.
        assert!(md.contains("| 3.7.4 | TNY-KMS-1 | 1 | 0 |"), "{md}");
        assert!(md.contains("| 1.3.1 | TNY-NET-5 | 0 | 1 |"), "{md}");
    }
}
