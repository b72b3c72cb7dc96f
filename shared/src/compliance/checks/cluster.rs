//! The cluster: endpoint, version, secrets encryption, logs, deletion protection, access.

use super::{judge, no_cluster, on_cluster, Verdict};
use crate::compliance::live::Live;
use serde_json::json;

/// Every control-plane log type EKS offers.
pub const LOG_TYPES: [&str; 5] = [
    "api",
    "audit",
    "authenticator",
    "controllerManager",
    "scheduler",
];

/// Access policies that make a principal a cluster admin.
pub const ADMIN_POLICIES: [&str; 2] = ["AmazonEKSClusterAdminPolicy", "AmazonEKSAdminPolicy"];

pub fn endpoint_not_open(live: &Live) -> Vec<Verdict> {
    on_cluster(live, |c| {
        let open = c.endpoint_public
            && (c.public_access_cidrs.is_empty()
                || c.public_access_cidrs
                    .iter()
                    .any(|r| r == "0.0.0.0/0" || r == "::/0"));
        let passed = if c.endpoint_public {
            format!(
                "the public endpoint admits only {}",
                c.public_access_cidrs.join(", ")
            )
        } else {
            "the public endpoint is off".to_owned()
        };
        judge(
            &c.arn,
            !open,
            passed,
            "the public endpoint admits any address",
            json!({"endpointPublicAccess": c.endpoint_public, "publicAccessCidrs": c.public_access_cidrs}),
        )
    })
}

pub fn private_endpoint(live: &Live) -> Vec<Verdict> {
    on_cluster(live, |c| {
        judge(
            &c.arn,
            c.endpoint_private,
            "the private endpoint is on",
            "the private endpoint is off: nodes reach the API server through the internet",
            json!({"endpointPrivateAccess": c.endpoint_private}),
        )
    })
}

pub fn supported_version(live: &Live) -> Vec<Verdict> {
    on_cluster(live, |c| {
        let status = live
            .versions
            .iter()
            .find(|v| v.version == c.version)
            .map(|v| v.status.as_str());
        let standard: Vec<&str> = live
            .versions
            .iter()
            .filter(|v| v.status == "STANDARD_SUPPORT")
            .map(|v| v.version.as_str())
            .collect();
        judge(
            &c.arn,
            status == Some("STANDARD_SUPPORT"),
            format!("Kubernetes {} is in standard support", c.version),
            format!(
                "Kubernetes {} is {}; versions in standard support: {}",
                c.version,
                status.map_or("not offered by EKS".to_owned(), |s| s.to_lowercase()),
                standard.join(", ")
            ),
            json!({"version": c.version, "supportStatus": status, "standardSupport": standard}),
        )
    })
}

pub fn secrets_encrypted(live: &Live) -> Vec<Verdict> {
    on_cluster(live, |c| {
        let key = c.encryption_key.as_ref();
        let owned = key.is_some_and(|k| live.keys.iter().any(|own| &own.arn == k));
        let failed = match key {
            None => "secrets are not envelope-encrypted".to_owned(),
            Some(k) => {
                format!("secrets are encrypted with {k}, which is not one of the platform's keys")
            }
        };
        judge(
            &c.arn,
            owned,
            "secrets are encrypted with the platform's KMS key",
            failed,
            json!({"encryptionKey": c.encryption_key}),
        )
    })
}

pub fn all_log_types(live: &Live) -> Vec<Verdict> {
    on_cluster(live, |c| {
        let missing: Vec<&str> = LOG_TYPES
            .into_iter()
            .filter(|t| !c.log_types.iter().any(|on| on == t))
            .collect();
        judge(
            &c.arn,
            missing.is_empty(),
            "every control-plane log type is enabled",
            format!("log types not enabled: {}", missing.join(", ")),
            json!({"enabled": c.log_types}),
        )
    })
}

pub fn deletion_protection(live: &Live) -> Vec<Verdict> {
    on_cluster(live, |c| {
        judge(
            &c.arn,
            c.deletion_protection,
            "deletion protection is on",
            "deletion protection is off",
            json!({"deletionProtection": c.deletion_protection}),
        )
    })
}

pub fn api_authentication(live: &Live) -> Vec<Verdict> {
    on_cluster(live, |c| {
        judge(
            &c.arn,
            c.authentication_mode == "API",
            "access is managed through access entries only (authentication mode API)",
            format!(
                "authentication mode {} also honours the aws-auth ConfigMap",
                c.authentication_mode
            ),
            json!({"authenticationMode": c.authentication_mode}),
        )
    })
}

pub fn no_unnamed_admins(live: &Live) -> Vec<Verdict> {
    let Some(cluster) = &live.cluster else {
        return no_cluster(live);
    };
    let admins: Vec<_> = live
        .access_entries
        .iter()
        .filter(|e| {
            e.cluster_policies
                .iter()
                .any(|p| ADMIN_POLICIES.iter().any(|a| p.ends_with(&format!("/{a}"))))
        })
        .collect();
    if admins.is_empty() {
        return vec![judge(
            &cluster.arn,
            true,
            "no access entry holds a cluster admin policy",
            "",
            json!({"adminEntries": []}),
        )];
    }
    admins
        .into_iter()
        .map(|e| {
            let named = live.asked.admins.iter().any(|a| a == &e.principal);
            judge(
                format!("{}/access-entry/{}", cluster.arn, e.principal),
                named,
                "an admin the request names",
                format!("{} holds cluster admin and the request does not name it", e.principal),
                json!({"principal": e.principal, "policies": e.cluster_policies, "named": live.asked.admins}),
            )
        })
        .collect()
}

pub fn tagged(live: &Live) -> Vec<Verdict> {
    on_cluster(live, |c| {
        let tag = c.tags.get(crate::naming::TAG_PLATFORM);
        judge(
            &c.arn,
            tag == Some(&live.platform_id),
            "tagged with its platform",
            format!("tag {} is {tag:?}", crate::naming::TAG_PLATFORM),
            json!({"tags": c.tags}),
        )
    })
}
