//! ARN and AWS identifier rules.

use std::sync::LazyLock;

use regex::Regex;

use super::{rules, Issues};
use crate::spec::partition_of;

/// The kinds of ARN a request may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArnKind {
    /// `arn:<p>:iam::<account>:role/[path/]name`
    IamRole,
    /// An IAM role or user ARN.
    IamPrincipal,
    /// `arn:<p>:kms:<region>:<account>:key/<uuid | mrk-...>`
    KmsKey,
    /// `arn:<p>:sns:<region>:<account>:<topic>`
    SnsTopic,
    /// `arn:<p>:route53:::hostedzone/<id>`
    HostedZone,
}

const PARTITION: &str = "(aws|aws-cn|aws-us-gov)";
const IAM_NAME: &str = r"(/[A-Za-z0-9+=,.@_-]+)*/[A-Za-z0-9+=,.@_-]{1,64}";

static ROLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"^arn:{PARTITION}:iam::[0-9]{{12}}:role{IAM_NAME}$"
    ))
    .expect("regex")
});
static PRINCIPAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"^arn:{PARTITION}:iam::[0-9]{{12}}:(role|user){IAM_NAME}$"
    ))
    .expect("regex")
});
static KMS_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"^arn:{PARTITION}:kms:([a-z0-9-]+):[0-9]{{12}}:key/([0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}|mrk-[0-9a-f]{{32}})$"
    ))
    .expect("regex")
});
static SNS_TOPIC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"^arn:{PARTITION}:sns:([a-z0-9-]+):[0-9]{{12}}:[A-Za-z0-9_-]{{1,256}}$"
    ))
    .expect("regex")
});
static HOSTED_ZONE_ARN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"^arn:{PARTITION}:route53:::hostedzone/Z[A-Z0-9]{{1,31}}$"
    ))
    .expect("regex")
});
static HOSTED_ZONE_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^Z[A-Z0-9]{1,31}$").expect("regex"));
static REGION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(us|eu|ap|sa|ca|me|af|il|mx|cn|us-gov)-(north|south|east|west|central|northeast|southeast|northwest|southwest)-[1-9][0-9]?$")
        .expect("regex")
});

impl ArnKind {
    fn regex(self) -> &'static Regex {
        match self {
            ArnKind::IamRole => &ROLE,
            ArnKind::IamPrincipal => &PRINCIPAL,
            ArnKind::KmsKey => &KMS_KEY,
            ArnKind::SnsTopic => &SNS_TOPIC,
            ArnKind::HostedZone => &HOSTED_ZONE_ARN,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ArnKind::IamRole => "an IAM role ARN (arn:aws:iam::123456789012:role/name)",
            ArnKind::IamPrincipal => {
                "an IAM role or user ARN (arn:aws:iam::123456789012:role/name)"
            }
            ArnKind::KmsKey => "a KMS key ARN (arn:aws:kms:<region>:123456789012:key/<key-id>)",
            ArnKind::SnsTopic => "an SNS topic ARN (arn:aws:sns:<region>:123456789012:name)",
            ArnKind::HostedZone => "a Route 53 hosted zone ARN (arn:aws:route53:::hostedzone/Z...)",
        }
    }

    fn regional(self) -> bool {
        matches!(self, ArnKind::KmsKey | ArnKind::SnsTopic)
    }
}

/// Checks an ARN of `kind`, in the platform's partition (and region, for regional resources).
pub(crate) fn check_arn(issues: &mut Issues, path: &str, value: &str, kind: ArnKind, region: &str) {
    if !kind.regex().is_match(value) {
        issues.push(
            path,
            rules::ARN,
            format!("{value:?} is not {}", kind.describe()),
        );
        return;
    }
    let mut parts = value.split(':');
    let partition = parts.nth(1).unwrap_or_default();
    let arn_region = parts.nth(1).unwrap_or_default();
    if is_region(region) {
        let expected = partition_of(region);
        if partition != expected {
            issues.push(
                path,
                rules::ARN_PARTITION,
                format!("{value:?} is in partition `{partition}`, but region {region} is in `{expected}`"),
            );
        }
        if kind.regional() && arn_region != region {
            issues.push(
                path,
                rules::ARN_REGION,
                format!("{value:?} is in region {arn_region:?}; it must be in the platform's region {region}"),
            );
        }
    }
}

/// A Route 53 hosted zone, as an id (`Z...`) or an ARN.
pub(crate) fn check_hosted_zone(issues: &mut Issues, path: &str, value: &str, region: &str) {
    if value.starts_with("arn:") {
        if HOSTED_ZONE_ARN.is_match(value) {
            check_arn(issues, path, value, ArnKind::HostedZone, region);
            return;
        }
    } else if HOSTED_ZONE_ID.is_match(value) {
        return;
    }
    issues.push(
        path,
        rules::HOSTED_ZONE,
        format!("{value:?} is not a Route 53 hosted zone id (Z followed by uppercase letters and digits) or hosted zone ARN"),
    );
}

/// Whether `region` looks like an AWS region name.
pub(crate) fn is_region(region: &str) -> bool {
    REGION.is_match(region)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(value: &str, kind: ArnKind) -> bool {
        let mut issues = Issues::default();
        check_arn(&mut issues, "$", value, kind, "us-east-1");
        issues.0.is_empty()
    }

    #[test]
    fn arns_by_kind() {
        assert!(ok(
            "arn:aws:iam::123456789012:role/platform-admin",
            ArnKind::IamRole
        ));
        assert!(ok(
            "arn:aws:iam::123456789012:role/teams/payments/admin",
            ArnKind::IamRole
        ));
        assert!(ok(
            "arn:aws:iam::123456789012:user/alice",
            ArnKind::IamPrincipal
        ));
        assert!(!ok(
            "arn:aws:iam::123456789012:user/alice",
            ArnKind::IamRole
        ));
        assert!(!ok("arn:aws:iam::12345:role/x", ArnKind::IamRole));
        assert!(!ok("arn:aws:iam::123456789012:role/a*", ArnKind::IamRole));
        assert!(!ok("arn:aws:iam::123456789012:role/a\"b", ArnKind::IamRole));
        assert!(!ok("arn:azure:iam::123456789012:role/x", ArnKind::IamRole));
        assert!(ok(
            "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            ArnKind::KmsKey
        ));
        assert!(ok(
            "arn:aws:kms:us-east-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab",
            ArnKind::KmsKey
        ));
        assert!(!ok(
            "arn:aws:kms:us-east-1:123456789012:alias/x",
            ArnKind::KmsKey
        ));
        assert!(ok(
            "arn:aws:sns:us-east-1:123456789012:alarms",
            ArnKind::SnsTopic
        ));
        assert!(ok(
            "arn:aws:route53:::hostedzone/Z0123456789ABC",
            ArnKind::HostedZone
        ));
    }

    #[test]
    fn partition_and_region_must_match() {
        let mut issues = Issues::default();
        check_arn(
            &mut issues,
            "$",
            "arn:aws-cn:iam::123456789012:role/x",
            ArnKind::IamRole,
            "us-east-1",
        );
        assert_eq!(issues.0[0].rule, rules::ARN_PARTITION);
        let mut issues = Issues::default();
        check_arn(
            &mut issues,
            "$",
            "arn:aws:sns:eu-west-1:123456789012:t",
            ArnKind::SnsTopic,
            "us-east-1",
        );
        assert_eq!(issues.0[0].rule, rules::ARN_REGION);
    }

    #[test]
    fn regions() {
        for good in [
            "us-east-1",
            "eu-central-2",
            "ap-southeast-5",
            "us-gov-west-1",
            "cn-north-1",
            "il-central-1",
        ] {
            assert!(is_region(good), "{good}");
        }
        for bad in ["us-east", "US-EAST-1", "mars-north-1", "us-east-1a", ""] {
            assert!(!is_region(bad), "{bad}");
        }
    }
}
