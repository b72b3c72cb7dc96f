//! AWS Security Hub: a sweep's results as ASFF findings of a custom integration
//! (`product/<account>/default`), imported with `BatchImportFindings` in batches of 100.
//!
//! - One finding per control and resource, with a deterministic `Id`, so a re-run updates it.
//! - `UpdatedAt` is the sweep's time, and always later than the previous sweep's (Security Hub
//!   ignores an update that is not newer). `CreatedAt` is when a sweep first saw the result.
//! - A result that passes again is re-imported as `PASSED`; a result of the previous sweep whose
//!   resource is gone is re-imported `ARCHIVED`. The previous sweep is this platform's own last
//!   report, so a sweep never touches another platform's findings.

use super::catalogue::{control, Control};
use super::report::{ComplianceReport, ControlResult, Severity, Status};
use aws_sdk_securityhub::types::{
    AwsSecurityFinding, Compliance, ComplianceStatus, Recommendation, RecordState, Remediation,
    Resource, Severity as HubSeverity, SeverityLabel,
};
use chrono::{DateTime, Duration, SecondsFormat, Utc};

/// The ASFF version Security Hub takes.
pub const SCHEMA_VERSION: &str = "2018-10-08";
/// Findings per `BatchImportFindings` call (Security Hub's limit).
pub const BATCH: usize = 100;
/// Longest `Description` Security Hub accepts.
const DESCRIPTION_MAX: usize = 1024;

/// The product ARN of a custom integration in the account.
pub fn product_arn(partition: &str, region: &str, account: &str) -> String {
    format!("arn:{partition}:securityhub:{region}:{account}:product/{account}/default")
}

/// The finding's id: the platform, the control and a hash of the resource (ARNs can be longer
/// than an id should be, and Kubernetes paths are not ARNs).
pub fn finding_id(platform: &str, result: &ControlResult) -> String {
    format!(
        "tenantry/{platform}/{}/{:016x}",
        result.control,
        crate::naming::fnv1a64(&result.resource)
    )
}

/// Security Hub's resource type for a resource of a result.
fn resource_type(resource: &str) -> &'static str {
    let service = resource.split(':').nth(2).unwrap_or_default();
    let rest = resource.split(':').nth(5).unwrap_or_default();
    match (service, rest.split('/').next().unwrap_or_default()) {
        ("eks", "cluster") => "AwsEksCluster",
        ("kms", "key") => "AwsKmsKey",
        ("iam", "role") => "AwsIamRole",
        ("s3", _) => "AwsS3Bucket",
        ("logs", _) => "AwsLogsLogGroup",
        _ if resource.starts_with("vpc-") => "AwsEc2Vpc",
        _ if resource.starts_with("subnet-") => "AwsEc2Subnet",
        _ if resource.starts_with("sg-") => "AwsEc2SecurityGroup",
        _ if resource.starts_with("vpce-") => "AwsEc2VpcEndpointService",
        _ => "Other",
    }
}

fn label(status: Status, severity: Severity) -> SeverityLabel {
    match (status, severity) {
        (Status::Fail, Severity::Critical) => SeverityLabel::Critical,
        (Status::Fail, Severity::High) => SeverityLabel::High,
        (Status::Fail, Severity::Medium) => SeverityLabel::Medium,
        (Status::Fail, Severity::Low) => SeverityLabel::Low,
        _ => SeverityLabel::Informational,
    }
}

fn compliance_status(status: Status) -> ComplianceStatus {
    match status {
        Status::Pass => ComplianceStatus::Passed,
        Status::Fail => ComplianceStatus::Failed,
        Status::NotApplicable => ComplianceStatus::NotAvailable,
    }
}

/// The requirements a finding relates to, as Security Hub lists them.
fn requirements(c: &Control) -> Vec<String> {
    c.mappings
        .pci
        .iter()
        .map(|r| format!("PCI DSS v4.0.1/{r}"))
        .chain(
            c.mappings
                .cis
                .iter()
                .map(|r| format!("CIS Amazon EKS Benchmark v1.8.0/{r}")),
        )
        .collect()
}

/// Where the findings go and when they are dated.
pub struct Target {
    pub account: String,
    pub region: String,
    pub partition: String,
    /// `UpdatedAt` of every finding of this sweep.
    pub updated_at: String,
}

impl Target {
    /// The sweep's time, moved just past the previous sweep's when the clock did not move on.
    pub fn dated(
        account: &str,
        region: &str,
        evaluated_at: DateTime<Utc>,
        previous: Option<&ComplianceReport>,
    ) -> Target {
        let floor = previous
            .and_then(|p| DateTime::parse_from_rfc3339(&p.evaluated_at).ok())
            .map(|t| t.with_timezone(&Utc) + Duration::milliseconds(1));
        let at = floor.map_or(evaluated_at, |f| f.max(evaluated_at));
        Target {
            account: account.to_owned(),
            region: region.to_owned(),
            partition: crate::spec::partition_of(region).to_owned(),
            updated_at: at.to_rfc3339_opts(SecondsFormat::Millis, true),
        }
    }
}

/// One finding.
fn finding(
    t: &Target,
    platform: &str,
    request_id: &str,
    result: &ControlResult,
    state: RecordState,
) -> Option<AwsSecurityFinding> {
    let c = control(&result.control)?;
    let mut description = format!("{} {}", result.reason, c.rationale);
    if description.len() > DESCRIPTION_MAX {
        let mut end = DESCRIPTION_MAX;
        while !description.is_char_boundary(end) {
            end -= 1;
        }
        description.truncate(end);
    }
    let resource = Resource::builder()
        .r#type(resource_type(&result.resource))
        .id(&result.resource)
        .region(&t.region)
        .build();
    Some(
        AwsSecurityFinding::builder()
            .schema_version(SCHEMA_VERSION)
            .id(finding_id(platform, result))
            .product_arn(product_arn(&t.partition, &t.region, &t.account))
            .generator_id(format!("tenantry/{}", c.id))
            .aws_account_id(&t.account)
            .types("Software and Configuration Checks/Industry and Regulatory Standards/PCI-DSS")
            .created_at(result.first_seen.as_deref().unwrap_or(&t.updated_at))
            .updated_at(&t.updated_at)
            .severity(
                HubSeverity::builder()
                    .label(label(result.status, c.severity))
                    .build(),
            )
            .title(format!("{} {}", c.id, c.title))
            .description(description)
            .remediation(
                Remediation::builder()
                    .recommendation(Recommendation::builder().text(c.remediation).build())
                    .build(),
            )
            .resources(resource)
            .compliance(
                Compliance::builder()
                    .status(compliance_status(result.status))
                    .set_related_requirements(Some(requirements(c)))
                    .build(),
            )
            .record_state(state)
            .product_fields("tenantry/platform", platform)
            .product_fields("tenantry/control", c.id)
            .product_fields("tenantry/sweep", request_id)
            .build(),
    )
}

/// The findings of `report`: one per result, `ACTIVE`, and one `ARCHIVED` per result of
/// `previous` whose resource this sweep no longer judges.
pub fn findings(
    t: &Target,
    report: &ComplianceReport,
    previous: Option<&ComplianceReport>,
) -> Vec<AwsSecurityFinding> {
    let platform = &report.platform_id;
    let gone = previous.map(|p| report.gone_since(p)).unwrap_or_default();
    report
        .results
        .iter()
        .map(|r| (r, RecordState::Active))
        .chain(gone.into_iter().map(|r| (r, RecordState::Archived)))
        .filter_map(|(r, state)| finding(t, platform, &report.request_id, r, state))
        .collect()
}

/// Imports `findings` in batches of [`BATCH`]; a finding Security Hub refuses fails the sweep
/// (a retry imports the same findings again, which only updates them).
pub async fn import(
    client: &aws_sdk_securityhub::Client,
    findings: Vec<AwsSecurityFinding>,
) -> Result<usize, crate::error::FunctionError> {
    let mut imported = 0;
    for batch in findings.chunks(BATCH) {
        let out = client
            .batch_import_findings()
            .set_findings(Some(batch.to_vec()))
            .send()
            .await
            .map_err(|e| crate::phases::aws_error("securityhub:BatchImportFindings", e))?;
        if out.failed_count().unwrap_or_default() > 0 {
            let failed: Vec<String> = out
                .failed_findings()
                .iter()
                .map(|f| {
                    let (id, code) = (f.id().unwrap_or("?"), f.error_code().unwrap_or("?"));
                    format!("{id}: {code} {}", f.error_message().unwrap_or_default())
                })
                .collect();
            return Err(crate::error::FunctionError::new(
                crate::error::ErrorType::Terminal,
                format!(
                    "Security Hub refused {} finding(s): {}",
                    failed.len(),
                    failed.join("; ")
                ),
            ));
        }
        imported += batch.len();
    }
    Ok(imported)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(control: &str, resource: &str, status: Status) -> ControlResult {
        ControlResult {
            control: control.into(),
            resource: resource.into(),
            status,
            reason: "why".into(),
            evidence: json!({}),
            first_seen: Some("2026-12-01T00:00:00Z".into()),
        }
    }

    fn report(id: &str, at: &str, results: Vec<ControlResult>) -> ComplianceReport {
        ComplianceReport {
            platform_id: "payments".into(),
            request_id: id.into(),
            evaluated_at: at.into(),
            profile: "pci-dss-v4".into(),
            results,
        }
    }

    const CLUSTER: &str = "arn:aws:eks:eu-west-1:111122223333:cluster/payments-prod";
    const KEY: &str = "arn:aws:kms:eu-west-1:111122223333:key/k1";

    #[test]
    fn one_finding_per_result_with_a_stable_id_and_the_required_fields() {
        let now: DateTime<Utc> = "2026-12-03T10:00:00Z".parse().unwrap();
        let t = Target::dated("111122223333", "eu-west-1", now, None);
        let r = report(
            "s1",
            "2026-12-03T10:00:00Z",
            vec![
                result("TNY-EKS-1", CLUSTER, Status::Fail),
                result("TNY-KMS-1", KEY, Status::Pass),
            ],
        );
        let all = findings(&t, &r, None);
        assert_eq!(all.len(), 2);
        let eks = &all[0];
        assert_eq!(eks.schema_version(), Some(SCHEMA_VERSION));
        assert_eq!(
            eks.product_arn(),
            Some("arn:aws:securityhub:eu-west-1:111122223333:product/111122223333/default")
        );
        assert_eq!(
            eks.id(),
            Some(finding_id("payments", &r.results[0]).as_str())
        );
        assert_eq!(eks.generator_id(), Some("tenantry/TNY-EKS-1"));
        assert_eq!(eks.created_at(), Some("2026-12-01T00:00:00Z"));
        assert_eq!(eks.updated_at(), Some("2026-12-03T10:00:00.000Z"));
        assert_eq!(
            eks.severity().and_then(|s| s.label()),
            Some(&SeverityLabel::High)
        );
        assert_eq!(eks.resources()[0].r#type(), Some("AwsEksCluster"));
        let compliance = eks.compliance().unwrap();
        assert_eq!(compliance.status(), Some(&ComplianceStatus::Failed));
        assert!(compliance
            .related_requirements()
            .contains(&"PCI DSS v4.0.1/1.3.1".to_owned()));
        let kms = &all[1];
        assert_eq!(
            kms.compliance().unwrap().status(),
            Some(&ComplianceStatus::Passed)
        );
        assert_eq!(
            kms.severity().and_then(|s| s.label()),
            Some(&SeverityLabel::Informational)
        );
        // The same control and resource has the same id in every sweep, and other ids differ.
        let again = report("s2", "2026-12-04T10:00:00Z", r.results.clone());
        assert_eq!(finding_id("payments", &again.results[0]), eks.id().unwrap());
        assert_ne!(finding_id("ledger", &again.results[0]), eks.id().unwrap());
    }

    #[test]
    fn updated_at_always_moves_past_the_previous_sweep() {
        let previous = report("s1", "2026-12-03T10:00:00.500Z", vec![]);
        // The clock says the same instant (or earlier): the update is still newer.
        let now: DateTime<Utc> = "2026-12-03T10:00:00.500Z".parse().unwrap();
        let t = Target::dated("1", "us-east-1", now, Some(&previous));
        assert_eq!(t.updated_at, "2026-12-03T10:00:00.501Z");
        let later: DateTime<Utc> = "2026-12-04T00:00:00Z".parse().unwrap();
        let t = Target::dated("1", "us-east-1", later, Some(&previous));
        assert_eq!(t.updated_at, "2026-12-04T00:00:00.000Z");
    }

    #[test]
    fn results_whose_resource_is_gone_are_archived_and_only_those() {
        let previous = report(
            "s1",
            "2026-12-03T10:00:00Z",
            vec![
                result("TNY-KMS-1", KEY, Status::Fail),
                result("TNY-EKS-1", CLUSTER, Status::Fail),
            ],
        );
        let now = report(
            "s2",
            "2026-12-04T10:00:00Z",
            vec![result("TNY-EKS-1", CLUSTER, Status::Pass)],
        );
        let t = Target::dated(
            "1",
            "eu-west-1",
            "2026-12-04T10:00:00Z".parse().unwrap(),
            Some(&previous),
        );
        let all = findings(&t, &now, Some(&previous));
        let states: Vec<(&str, &RecordState)> = all
            .iter()
            .map(|f| (f.generator_id().unwrap(), f.record_state().unwrap()))
            .collect();
        assert_eq!(
            states,
            [
                ("tenantry/TNY-EKS-1", &RecordState::Active),
                ("tenantry/TNY-KMS-1", &RecordState::Archived)
            ]
        );
    }
}
