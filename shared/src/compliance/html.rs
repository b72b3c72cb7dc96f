//! A report as an auditor reads, prints and files it: one self-contained HTML5 page (inline CSS,
//! nothing fetched, no script). The headline and counts, a summary by PCI DSS v4.0.1 requirement,
//! then every result in [`rows`] order (failures first, most severe first) with its control's
//! rationale, remediation, mappings and evidence.
//!
//! Every value read from the report goes through [`escape`]: resources, reasons and evidence can
//! carry tenant-chosen names, and must show as text.

use super::catalogue::Control;
use super::render::{by_requirement, headline, rows};
use super::report::{ComplianceReport, ControlResult, Severity, Status};
use std::fmt::Write;

/// `text` as HTML text, safe in element content and in quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page's style: readable on screen, and on paper (`@media print`) with its colours kept.
const STYLE: &str = r#"
:root { color-scheme: light; --fail: #b3261e; --pass: #1e6b34; --na: #5f6368; --line: #d0d7de; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0 auto; max-width: 1200px; padding: 24px 32px 48px; color: #111; background: #fff;
  font: 16px/1.45 "DejaVu Sans", "Liberation Sans", Arial, Helvetica, sans-serif; }
code, pre, .id { font-family: "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace; }
h1 { font-size: 34px; margin: 0 0 8px; }
h2 { font-size: 26px; margin: 36px 0 12px; padding-bottom: 4px; border-bottom: 2px solid #111; }
.headline { font-size: 24px; font-weight: bold; line-height: 1.35; margin: 0 0 20px; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid var(--line); padding: 6px 10px; text-align: left; vertical-align: top; }
thead th { background: #f2f4f7; }
tbody th { white-space: nowrap; }
a { color: #0b57d0; }
td.n { text-align: right; font-variant-numeric: tabular-nums; width: 7em; }
.meta th { width: 14em; background: #f2f4f7; }
.counts { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0 0; padding: 0; list-style: none; }
.counts li { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 9em; }
.counts b { display: block; font-size: 26px; }
.counts .fail { border-color: var(--fail); color: var(--fail); }
.counts .pass { border-color: var(--pass); color: var(--pass); }
tr.failing { background: #fdecea; }
tr.failing th, tr.failing td.failed { color: var(--fail); font-weight: bold; }
.mark { display: inline-block; margin-left: 8px; padding: 0 6px; border-radius: 4px;
  background: var(--fail); color: #fff; font-size: 13px; font-weight: bold; }
.result { margin: 0 0 20px; padding: 12px 18px 14px; border: 1px solid var(--line);
  border-left: 10px solid var(--na); border-radius: 4px; }
.result.fail { border-left-color: var(--fail); }
.result.pass { border-left-color: var(--pass); }
.result h3 { font-size: 24px; margin: 0 0 10px; }
.result h3 .id { font-size: 28px; margin-right: 6px; }
.result h4 { font-size: 16px; margin: 14px 0 4px; }
.result p { margin: 0; }
.status { display: inline-block; min-width: 4.5em; margin-right: 10px; padding: 2px 8px;
  border-radius: 4px; color: #fff; font-size: 18px; text-align: center; vertical-align: middle; }
.status.fail { background: var(--fail); }
.status.pass { background: var(--pass); }
.status.na { background: var(--na); }
dl.facts { display: grid; grid-template-columns: 10em 1fr; gap: 4px 12px; margin: 0; }
dl.facts dt { font-weight: bold; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
pre { margin: 4px 0 0; padding: 10px 12px; background: #f6f8fa; border: 1px solid var(--line);
  font-size: 13px; white-space: pre-wrap; overflow-wrap: anywhere; }
footer { margin-top: 32px; color: #444; font-size: 13px; }
@page { margin: 14mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  h1 { font-size: 18pt; }
  h2 { font-size: 14pt; break-after: avoid; }
  .headline { font-size: 12pt; }
  .result { break-inside: avoid; }
  .result h3 { font-size: 13pt; }
  .result h3 .id { font-size: 14pt; }
  .counts b { font-size: 14pt; }
  thead { display: table-header-group; }
  a { color: inherit; text-decoration: none; }
  tr { break-inside: avoid; }
  pre { font-size: 8pt; }
}
"#;

/// `Fail`/`Pass`/`Not applicable` as text and as a CSS class.
fn status(s: Status) -> (&'static str, &'static str) {
    match s {
        Status::Fail => ("FAIL", "fail"),
        Status::Pass => ("PASS", "pass"),
        Status::NotApplicable => ("NOT APPLICABLE", "na"),
    }
}

/// Where a control is linked from the requirement summary.
fn anchor(control_id: &str) -> String {
    format!("control-{}", escape(control_id))
}

/// A requirement id's numbers (`10.2.1` → `[10, 2, 1]`), to sort ids as the standard does.
fn numbers(req: &str) -> Vec<u32> {
    req.split('.')
        .map(|n| n.parse().unwrap_or(u32::MAX))
        .collect()
}

/// `a, b, c` escaped, or `none`.
fn list(items: &[&str]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        escape(&items.join(", "))
    }
}

/// The report as one self-contained HTML page.
pub fn html(report: &ComplianceReport) -> String {
    let mut out = String::with_capacity(16 * 1024 + report.results.len() * 2048);
    header(&mut out, report);
    requirements(&mut out, report);
    results(&mut out, report);
    out
}

/// The page's head, the headline, what was judged and when, and the counts.
fn header(out: &mut String, report: &ComplianceReport) {
    let s = report.summary();
    let platform = escape(&report.platform_id);
    let sweep = escape(&report.request_id);
    // `write!` into a String cannot fail.
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Compliance report: platform {platform}, sweep {sweep}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<header>\n\
         <h1>Compliance report: {platform}</h1>\n<p class=\"headline\">{}</p>\n",
        escape(&headline(report)),
    );

    // What was judged, when, and the counts.
    let _ = write!(
        out,
        "<table class=\"meta\">\n<tr><th scope=\"row\">Platform</th><td><code>{platform}</code></td></tr>\n\
         <tr><th scope=\"row\">Compliance profile</th><td>{}</td></tr>\n\
         <tr><th scope=\"row\">Sweep</th><td><code>{sweep}</code></td></tr>\n\
         <tr><th scope=\"row\">Evaluated at</th><td>{}</td></tr>\n</table>\n",
        escape(&report.profile),
        escape(&report.evaluated_at),
    );
    let severities = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ]
    .iter()
    .map(|sev| {
        format!(
            "{} {}",
            s.failed_by_severity.get(sev).copied().unwrap_or(0),
            sev.as_str().to_lowercase()
        )
    })
    .collect::<Vec<_>>()
    .join(", ");
    let _ = write!(
        out,
        "<ul class=\"counts\">\n<li><b>{}</b>controls</li>\n<li><b>{}</b>results</li>\n\
         <li class=\"pass\"><b>{}</b>passed</li>\n<li class=\"fail\"><b>{}</b>failed</li>\n\
         <li><b>{}</b>not applicable</li>\n</ul>\n\
         <p><strong>Failed by severity:</strong> {severities}</p>\n</header>\n",
        s.controls, s.results, s.passed, s.failed, s.not_applicable,
    );
}

/// The summary by PCI DSS requirement, each control linked to its first result.
fn requirements(out: &mut String, report: &ComplianceReport) {
    out.push_str(
        "<section id=\"requirements\">\n<h2>By PCI DSS v4.0.1 requirement</h2>\n<table>\n\
         <thead><tr><th scope=\"col\">requirement</th><th scope=\"col\">controls</th>\
         <th scope=\"col\">passed</th><th scope=\"col\">failed</th></tr></thead>\n<tbody>\n",
    );
    let mut requirements: Vec<_> = by_requirement(report).into_iter().collect();
    // In the standard's order: 1.3.1, 2.2.1, ..., 10.2.1 (not as strings).
    requirements.sort_by_cached_key(|(req, _)| (numbers(req), *req));
    for (req, (controls, passed, failed)) in requirements {
        let links = controls
            .iter()
            .map(|id| format!("<a href=\"#{}\">{}</a>", anchor(id), escape(id)))
            .collect::<Vec<_>>()
            .join(", ");
        if failed > 0 {
            let _ = writeln!(
                out,
                "<tr class=\"failing\"><th scope=\"row\">{} <span class=\"mark\">FAILING</span></th>\
                 <td>{links}</td><td class=\"n\">{passed}</td><td class=\"n failed\">{failed}</td></tr>",
                escape(req),
            );
        } else {
            let _ = writeln!(
                out,
                "<tr><th scope=\"row\">{}</th><td>{links}</td><td class=\"n\">{passed}</td>\
                 <td class=\"n\">{failed}</td></tr>",
                escape(req),
            );
        }
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

/// Every result, failures first, and the footer.
fn results(out: &mut String, report: &ComplianceReport) {
    let platform = escape(&report.platform_id);
    let sweep = escape(&report.request_id);
    out.push_str("<section id=\"results\">\n<h2>Results, failures first</h2>\n");
    let mut anchored: Vec<&str> = Vec::new();
    for (c, r) in rows(report) {
        let id = if anchored.contains(&c.id) {
            String::new()
        } else {
            anchored.push(c.id);
            format!(" id=\"{}\"", anchor(c.id))
        };
        result(out, &id, c, r);
    }
    let _ = write!(
        out,
        "</section>\n<footer>Tenantry compliance report of platform {platform}, sweep {sweep}: \
         every result is the verdict of one control on one resource, read from the platform's \
         live AWS and Kubernetes state at {}.</footer>\n</body>\n</html>\n",
        escape(&report.evaluated_at),
    );
}

/// One result: its verdict, the control's why and how, its mappings and the evidence.
fn result(out: &mut String, id: &str, c: &Control, r: &ControlResult) {
    let (label, class) = status(r.status);
    let _ = write!(
        out,
        "<article class=\"result {class}\"{id}>\n<h3><span class=\"status {class}\">{label}</span>\
         <span class=\"id\">{}</span> {}</h3>\n<dl class=\"facts\">\n\
         <dt>Status</dt><dd>{}</dd>\n<dt>Severity</dt><dd>{}</dd>\n<dt>Area</dt><dd>{}</dd>\n\
         <dt>Resource</dt><dd><code>{}</code></dd>\n<dt>Reason</dt><dd>{}</dd>\n",
        escape(c.id),
        escape(c.title),
        escape(r.status.as_str()),
        escape(&c.severity.as_str().to_lowercase()),
        escape(c.area),
        escape(&r.resource),
        escape(&r.reason),
    );
    if let Some(first) = &r.first_seen {
        let _ = writeln!(out, "<dt>First seen</dt><dd>{}</dd>", escape(first));
    }
    let m = &c.mappings;
    let evidence =
        serde_json::to_string_pretty(&r.evidence).unwrap_or_else(|_| r.evidence.to_string());
    let _ = write!(
        out,
        "</dl>\n<h4>Rationale</h4>\n<p>{}</p>\n<h4>Remediation</h4>\n<p>{}</p>\n\
         <h4>Mappings</h4>\n<dl class=\"facts\">\n\
         <dt>PCI DSS v4.0.1</dt><dd>{}</dd>\n<dt>CIS EKS v1.8.0</dt><dd>{}</dd>\n\
         <dt>Security Hub</dt><dd>{}</dd>\n<dt>Prowler</dt><dd>{}</dd>\n</dl>\n\
         <h4>Evidence</h4>\n<pre>{}</pre>\n</article>\n",
        escape(c.rationale),
        escape(c.remediation),
        list(m.pci),
        list(m.cis),
        list(m.security_hub),
        m.prowler.map_or_else(|| "none".to_owned(), escape),
        escape(&evidence),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(control: &str, status: Status) -> ControlResult {
        ControlResult {
            control: control.into(),
            resource: format!("res-{control}"),
            status,
            reason: format!("reason of {control}"),
            evidence: serde_json::json!({"control": control, "values": [1, 2]}),
            first_seen: None,
        }
    }

    fn report() -> ComplianceReport {
        ComplianceReport {
            platform_id: "payments".into(),
            request_id: "sweep-1".into(),
            evaluated_at: "2026-12-03T00:00:00Z".into(),
            profile: "pci-dss-v4".into(),
            results: vec![
                result("TNY-KMS-1", Status::Pass),
                result("TNY-LOG-2", Status::NotApplicable),
                result("TNY-NET-5", Status::Fail),
                ControlResult {
                    first_seen: Some("2026-11-01T00:00:00Z".into()),
                    ..result("TNY-S3-2", Status::Fail)
                },
            ],
        }
    }

    /// Where `control`'s result heading is in the page.
    fn heading(page: &str, control: &str) -> usize {
        page.find(&format!("<span class=\"id\">{control}</span>"))
            .unwrap_or_else(|| panic!("no result of {control} in {page}"))
    }

    #[test]
    fn a_page_with_the_headline_counts_and_metadata() {
        let page = html(&report());
        assert!(
            page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"),
            "{page}"
        );
        assert!(page.contains("<meta charset=\"utf-8\">"), "{page}");
        assert!(
            page.contains("<title>Compliance report: platform payments, sweep sweep-1</title>"),
            "{page}"
        );
        assert!(page.contains("@media print"), "{page}");
        assert!(page.contains(
            "<p class=\"headline\">compliance sweep sweep-1 of payments (profile pci-dss-v4, \
             2026-12-03T00:00:00Z): 4 controls, 4 results: 1 passed, 2 failed (1 critical, 1 high), \
             1 not applicable</p>"
        ), "{page}");
        assert!(
            page.contains("<li class=\"fail\"><b>2</b>failed</li>"),
            "{page}"
        );
        assert!(
            page.contains("Failed by severity:</strong> 1 critical, 1 high, 0 medium, 0 low"),
            "{page}"
        );
        assert!(page.ends_with("</html>\n"), "{page}");
    }

    #[test]
    fn failures_come_first_most_severe_first() {
        let page = html(&report());
        let at: Vec<usize> = ["TNY-S3-2", "TNY-NET-5", "TNY-KMS-1", "TNY-LOG-2"]
            .iter()
            .map(|c| heading(&page, c))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{at:?}");
        // The results come after the summary by requirement.
        assert!(page.find("id=\"requirements\"").unwrap() < at[0]);
        assert!(page.contains(
            "<article class=\"result fail\" id=\"control-TNY-S3-2\">\n<h3><span class=\"status fail\">FAIL</span>"
        ), "{page}");
        assert!(
            page.contains("<span class=\"status na\">NOT APPLICABLE</span>"),
            "{page}"
        );
    }

    #[test]
    fn each_result_has_its_control_mappings_first_seen_and_evidence() {
        let page = html(&report());
        let s3 = &page[heading(&page, "TNY-S3-2")..heading(&page, "TNY-NET-5")];
        assert!(s3.contains("<dt>Severity</dt><dd>critical</dd>"), "{s3}");
        assert!(s3.contains("<dt>Area</dt><dd>storage</dd>"), "{s3}");
        assert!(
            s3.contains("<dt>Resource</dt><dd><code>res-TNY-S3-2</code></dd>"),
            "{s3}"
        );
        assert!(
            s3.contains("<dt>Reason</dt><dd>reason of TNY-S3-2</dd>"),
            "{s3}"
        );
        assert!(
            s3.contains("<dt>First seen</dt><dd>2026-11-01T00:00:00Z</dd>"),
            "{s3}"
        );
        let control = super::super::catalogue::control("TNY-S3-2").unwrap();
        assert!(s3.contains(&escape(control.rationale)), "{s3}");
        assert!(s3.contains(&escape(control.remediation)), "{s3}");
        assert!(
            s3.contains(&format!(
                "<dt>PCI DSS v4.0.1</dt><dd>{}</dd>",
                control.mappings.pci.join(", ")
            )),
            "{s3}"
        );
        assert!(s3.contains("<dt>Prowler</dt><dd>"), "{s3}");
        assert!(
            s3.contains("<pre>{\n  &quot;control&quot;: &quot;TNY-S3-2&quot;,\n  &quot;values&quot;: [\n    1,\n    2\n  ]\n}</pre>"),
            "{s3}"
        );
        // Only a result that has it says when it was first seen.
        let net = &page[heading(&page, "TNY-NET-5")..heading(&page, "TNY-KMS-1")];
        assert!(!net.contains("First seen"), "{net}");
    }

    #[test]
    fn the_summary_by_requirement_marks_failing_requirements() {
        let page = html(&report());
        assert!(
            page.contains("<h2>By PCI DSS v4.0.1 requirement</h2>"),
            "{page}"
        );
        // 1.3.1 maps only to TNY-NET-5, which failed; 3.7.4 only to TNY-KMS-1, which passed.
        assert!(page.contains(
            "<tr class=\"failing\"><th scope=\"row\">1.3.1 <span class=\"mark\">FAILING</span></th>\
             <td><a href=\"#control-TNY-NET-5\">TNY-NET-5</a></td><td class=\"n\">0</td>\
             <td class=\"n failed\">1</td></tr>"
        ), "{page}");
        assert!(page.contains(
            "<tr><th scope=\"row\">3.7.4</th><td><a href=\"#control-TNY-KMS-1\">TNY-KMS-1</a></td>\
             <td class=\"n\">1</td><td class=\"n\">0</td></tr>"
        ), "{page}");
    }

    #[test]
    fn requirements_are_in_the_standards_order() {
        let page = html(&report());
        let row = |req: &str| {
            page.find(&format!("<th scope=\"row\">{req}"))
                .unwrap_or_else(|| panic!("no row of {req} in {page}"))
        };
        // TNY-NET-5 maps to 1.3.1, TNY-KMS-1 to 3.7.4, TNY-LOG-2 to 10.5.1.
        assert!(
            row("1.3.1") < row("3.7.4") && row("3.7.4") < row("10.5.1"),
            "{page}"
        );
        assert_eq!(numbers("10.2.1"), [10, 2, 1]);
    }

    #[test]
    fn every_value_from_the_report_is_escaped() {
        let mut r = report();
        r.platform_id = "pay<ments>".into();
        r.request_id = "sweep\"1'".into();
        r.profile = "<i>pci</i>".into();
        r.evaluated_at = "<u>now</u>".into();
        r.results[2].resource = "<script>alert(1)</script>".into();
        r.results[2].reason = "\"quoted\" & 'single' <u>bold</u>".into();
        r.results[2].evidence = serde_json::json!({"name": "</pre><script>alert(2)</script>"});
        r.results[3].first_seen = Some("<img src=x onerror=alert(3)>".into());
        let page = html(&r);
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("<u>") && !page.contains("<i>"), "{page}");
        assert!(
            page.contains("<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>"),
            "{page}"
        );
        assert!(
            page.contains("&quot;quoted&quot; &amp; &#39;single&#39; &lt;u&gt;bold&lt;/u&gt;"),
            "{page}"
        );
        assert!(
            page.contains("&lt;/pre&gt;&lt;script&gt;alert(2)&lt;/script&gt;"),
            "{page}"
        );
        assert!(page.contains(
            "<title>Compliance report: platform pay&lt;ments&gt;, sweep sweep&quot;1&#39;</title>"
        ), "{page}");
        // Exactly one <pre> per result: the evidence did not close its own.
        assert_eq!(page.matches("<pre>").count(), 4);
        assert_eq!(page.matches("</pre>").count(), 4);
    }

    #[test]
    fn the_page_fetches_nothing() {
        let page = html(&report());
        let lower = page.to_lowercase();
        for needle in [
            "src=",
            "href=\"http",
            "href='http",
            "href=\"//",
            "@import",
            "url(",
            "<script",
            "<link",
            "<img",
            "<iframe",
            "<object",
            "http://",
            "https://",
        ] {
            assert!(!lower.contains(needle), "{needle} in {page}");
        }
        // The only links are to the page's own results.
        assert_eq!(
            lower.matches("href=").count(),
            lower.matches("href=\"#control-").count()
        );
    }

    #[test]
    fn escape_replaces_the_five_characters() {
        assert_eq!(escape("a<b>&\"c'd"), "a&lt;b&gt;&amp;&quot;c&#39;d");
        assert_eq!(escape("plain ünïcode"), "plain ünïcode");
    }
}
