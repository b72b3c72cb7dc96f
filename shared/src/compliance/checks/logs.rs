//! Log groups: encryption and retention.

use super::{judge, not_applicable, platform, Verdict};
use crate::compliance::live::Live;
use serde_json::json;

/// Days PCI DSS 10.5.1 asks logs to be kept.
pub const PCI_RETENTION_DAYS: i32 = 365;

pub fn encrypted(live: &Live) -> Vec<Verdict> {
    if live.log_groups.is_empty() {
        return vec![not_applicable(
            platform(live),
            "the platform has no log groups",
        )];
    }
    live.log_groups
        .iter()
        .map(|g| {
            let own = g
                .kms_key
                .as_ref()
                .is_some_and(|k| live.keys.iter().any(|key| &key.arn == k));
            judge(
                &g.arn,
                own,
                "encrypted with the platform's KMS key",
                match &g.kms_key {
                    None => "not encrypted with a KMS key".to_owned(),
                    Some(k) => format!("encrypted with {k}, not one of the platform's keys"),
                },
                json!({"kmsKeyId": g.kms_key}),
            )
        })
        .collect()
}

pub fn retention(live: &Live) -> Vec<Verdict> {
    if live.asked.profile != "pci-dss-v4" {
        return vec![not_applicable(
            platform(live),
            format!(
                "compliance profile {:?}: retention is the platform's choice",
                live.asked.profile
            ),
        )];
    }
    if live.log_groups.is_empty() {
        return vec![not_applicable(
            platform(live),
            "the platform has no log groups",
        )];
    }
    live.log_groups
        .iter()
        .map(|g| {
            // No retention set means kept forever.
            let ok = g.retention_days.is_none_or(|d| d >= PCI_RETENTION_DAYS);
            judge(
                &g.arn,
                ok,
                match g.retention_days {
                    None => "kept forever".to_owned(),
                    Some(d) => format!("kept {d} days"),
                },
                format!(
                    "kept {} days, less than {PCI_RETENTION_DAYS}",
                    g.retention_days.unwrap_or_default()
                ),
                json!({"retentionInDays": g.retention_days}),
            )
        })
        .collect()
}
