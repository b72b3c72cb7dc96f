//! Key construction for the single table (see the module documentation for the layout).

use super::error::{Result, StoreError};
use chrono::{DateTime, SecondsFormat, Utc};

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1: &str = "GSI1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";
/// The table's TTL attribute (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expiresAt";
/// The GSI partition that lists every platform.
pub const PLATFORMS_PARTITION: &str = "PLATFORMS";

pub const SPEC: &str = "SPEC";
pub const STATUS: &str = "STATUS";
pub const LEASE: &str = "LEASE";
pub const REQUEST: &str = "REQUEST";
pub const TENANT_PREFIX: &str = "TENANT#";
pub const RESOURCE_PREFIX: &str = "RESOURCE#";
pub const RUN_PREFIX: &str = "RUN#";
pub const DRIFT_PREFIX: &str = "DRIFT#";
pub const SWEEP: &str = "SWEEP";
/// The latest compliance report of a platform (each sweep's own is `COMPLIANCE#<requestId>`).
pub const COMPLIANCE: &str = "COMPLIANCE";
pub const COMPLIANCE_PREFIX: &str = "COMPLIANCE#";
/// The partition of fleet-wide switches an operator sets.
pub const CONTROL_PARTITION: &str = "CONTROL";
/// The remediation pause (in [`CONTROL_PARTITION`]).
pub const REMEDIATION_PAUSE: &str = "REMEDIATION_PAUSE";

fn component<'a>(what: &str, value: &'a str, allow_hash: bool) -> Result<&'a str> {
    if value.is_empty() {
        return Err(StoreError::InvalidKey {
            reason: format!("{what} is empty"),
        });
    }
    if !allow_hash && value.contains('#') {
        return Err(StoreError::InvalidKey {
            reason: format!("{what} {value:?} contains '#'"),
        });
    }
    Ok(value)
}

/// `PLATFORM#<id>`.
pub fn platform_pk(platform_id: &str) -> Result<String> {
    Ok(format!(
        "PLATFORM#{}",
        component("platform id", platform_id, false)?
    ))
}

/// `DRIFT#<requestId>`.
pub fn drift_sk(request_id: &str) -> Result<String> {
    Ok(format!(
        "{DRIFT_PREFIX}{}",
        component("request id", request_id, false)?
    ))
}

/// `COMPLIANCE#<requestId>`.
pub fn compliance_sk(request_id: &str) -> Result<String> {
    Ok(format!(
        "{COMPLIANCE_PREFIX}{}",
        component("request id", request_id, false)?
    ))
}

/// `SWEEP#<sweepId>`: a fleet sweep's own partition (it is about every platform).
pub fn sweep_pk(sweep_id: &str) -> Result<String> {
    Ok(format!("SWEEP#{}", component("sweep id", sweep_id, false)?))
}

/// `TENANT#<name>`.
pub fn tenant_sk(name: &str) -> Result<String> {
    Ok(format!(
        "{TENANT_PREFIX}{}",
        component("tenant name", name, false)?
    ))
}

/// `RESOURCE#<type>#<id>`; the id may contain `#` (it is the last component).
pub fn resource_sk(resource_type: &str, id: &str) -> Result<String> {
    Ok(format!(
        "{RESOURCE_PREFIX}{}#{}",
        component("resource type", resource_type, false)?,
        component("resource id", id, true)?
    ))
}

/// `RESOURCE#<type>#`: the prefix of every resource of one type.
pub fn resource_type_prefix(resource_type: &str) -> Result<String> {
    Ok(format!(
        "{RESOURCE_PREFIX}{}#",
        component("resource type", resource_type, false)?
    ))
}

/// `RUN#<timestamp>#<kind>`; the timestamp is RFC 3339 UTC with milliseconds and a `Z`, so that
/// the sort key orders runs chronologically.
pub fn run_sk(started_at: DateTime<Utc>, kind: &str) -> Result<String> {
    Ok(format!(
        "{RUN_PREFIX}{}#{}",
        timestamp(started_at),
        component("run kind", kind, true)?
    ))
}

/// `REQUEST#<requestId>`.
pub fn request_pk(request_id: &str) -> Result<String> {
    Ok(format!(
        "REQUEST#{}",
        component("request id", request_id, true)?
    ))
}

/// A fixed-width, lexicographically sortable RFC 3339 timestamp.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `PK/SK` as one string for error messages.
pub fn display(pk: &str, sk: &str) -> String {
    format!("{pk}/{sk}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn keys_follow_the_table_design() {
        assert_eq!(
            platform_pk("payments-prod").unwrap(),
            "PLATFORM#payments-prod"
        );
        assert_eq!(tenant_sk("team-a").unwrap(), "TENANT#team-a");
        assert_eq!(
            resource_sk("eks-cluster", "arn:aws:eks:us-east-1:1:cluster/x").unwrap(),
            "RESOURCE#eks-cluster#arn:aws:eks:us-east-1:1:cluster/x"
        );
        assert_eq!(resource_type_prefix("vpc").unwrap(), "RESOURCE#vpc#");
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(
            run_sk(t, "provision").unwrap(),
            "RUN#2026-01-02T03:04:05.000Z#provision"
        );
        assert_eq!(request_pk("req-1").unwrap(), "REQUEST#req-1");
    }

    #[test]
    fn run_keys_sort_chronologically() {
        let a = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let b = a + chrono::Duration::milliseconds(1);
        let c = Utc.with_ymd_and_hms(2026, 10, 2, 3, 4, 5).unwrap();
        let (ka, kb, kc) = (
            run_sk(a, "z").unwrap(),
            run_sk(b, "a").unwrap(),
            run_sk(c, "a").unwrap(),
        );
        assert!(ka < kb && kb < kc);
    }

    #[test]
    fn separators_and_empty_components_are_refused() {
        assert!(matches!(
            platform_pk(""),
            Err(StoreError::InvalidKey { .. })
        ));
        assert!(matches!(
            platform_pk("a#b"),
            Err(StoreError::InvalidKey { .. })
        ));
        assert!(matches!(
            tenant_sk("a#b"),
            Err(StoreError::InvalidKey { .. })
        ));
        assert!(matches!(
            resource_sk("a#b", "x"),
            Err(StoreError::InvalidKey { .. })
        ));
        assert_eq!(resource_sk("sg", "a#b").unwrap(), "RESOURCE#sg#a#b");
    }
}
