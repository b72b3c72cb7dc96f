//! Nodes: private subnets, instance metadata, operating system, volumes, SSH.

use super::{judge, not_applicable, platform, Verdict};
use crate::compliance::live::{LaunchTemplate, Live, Nodegroup};
use serde_json::json;

/// One verdict per node group, or "not applicable" when the platform has none.
fn each_nodegroup(live: &Live, check: impl Fn(&Nodegroup) -> Verdict) -> Vec<Verdict> {
    if live.nodegroups.is_empty() {
        return vec![not_applicable(
            platform(live),
            "the platform has no node groups",
        )];
    }
    live.nodegroups.iter().map(check).collect()
}

/// One verdict per node group's launch template; a node group without one fails, since its
/// settings are then EKS's defaults, which Tenantry does not pin.
fn each_template(
    live: &Live,
    check: impl Fn(&Nodegroup, &LaunchTemplate) -> Verdict,
) -> Vec<Verdict> {
    each_nodegroup(live, |ng| match &ng.launch_template {
        Some(lt) => check(ng, lt),
        None => judge(
            &ng.arn,
            false,
            "",
            "the node group runs without a launch template",
            json!({"launchTemplate": null}),
        ),
    })
}

pub fn private_subnets(live: &Live) -> Vec<Verdict> {
    each_nodegroup(live, |ng| {
        let public: Vec<&str> = ng
            .subnets
            .iter()
            .filter(|id| {
                live.subnets
                    .get(*id)
                    .is_none_or(|s| s.map_public_ip || s.routes_to_internet_gateway)
            })
            .map(String::as_str)
            .collect();
        judge(
            &ng.arn,
            public.is_empty(),
            "every subnet of the node group is private",
            format!(
                "subnets that are public or not the platform's: {}",
                public.join(", ")
            ),
            json!({"subnets": ng.subnets, "notPrivate": public}),
        )
    })
}

pub fn imdsv2(live: &Live) -> Vec<Verdict> {
    each_template(live, |ng, lt| {
        judge(
            &ng.arn,
            lt.http_tokens.as_deref() == Some("required"),
            "IMDSv2 is required",
            format!(
                "HttpTokens is {}",
                lt.http_tokens.as_deref().unwrap_or("unset (optional)")
            ),
            json!({"launchTemplate": lt.id, "version": lt.version, "httpTokens": lt.http_tokens}),
        )
    })
}

pub fn hop_limit(live: &Live) -> Vec<Verdict> {
    each_template(live, |ng, lt| {
        judge(
            &ng.arn,
            lt.hop_limit == Some(1),
            "the hop limit is 1",
            format!(
                "the hop limit is {}",
                lt.hop_limit
                    .map_or("unset (EKS's default, 2)".to_owned(), |h| h.to_string())
            ),
            json!({"launchTemplate": lt.id, "version": lt.version, "httpPutResponseHopLimit": lt.hop_limit}),
        )
    })
}

pub fn bottlerocket(live: &Live) -> Vec<Verdict> {
    each_nodegroup(live, |ng| {
        judge(
            &ng.arn,
            ng.ami_type.starts_with("BOTTLEROCKET_"),
            format!("AMI type {}", ng.ami_type),
            format!("AMI type {} is not Bottlerocket", ng.ami_type),
            json!({"amiType": ng.ami_type}),
        )
    })
}

pub fn encrypted_volumes(live: &Live) -> Vec<Verdict> {
    each_template(live, |ng, lt| {
        let all = !lt.volumes_encrypted.is_empty() && lt.volumes_encrypted.iter().all(|e| *e);
        judge(
            &ng.arn,
            all,
            "every volume of the launch template is encrypted",
            if lt.volumes_encrypted.is_empty() {
                "the launch template maps no volume, so the AMI's unencrypted defaults apply"
                    .to_owned()
            } else {
                "a volume of the launch template is not encrypted".to_owned()
            },
            json!({"launchTemplate": lt.id, "version": lt.version, "encrypted": lt.volumes_encrypted}),
        )
    })
}

pub fn no_ssh_key(live: &Live) -> Vec<Verdict> {
    each_nodegroup(live, |ng| {
        let key = ng.remote_access_key.clone().or_else(|| {
            ng.launch_template
                .as_ref()
                .and_then(|lt| lt.key_name.clone())
        });
        judge(
            &ng.arn,
            key.is_none(),
            "no SSH key is set",
            format!("SSH key {} is set", key.as_deref().unwrap_or_default()),
            json!({"remoteAccessKey": ng.remote_access_key, "launchTemplateKey": ng.launch_template.as_ref().and_then(|lt| lt.key_name.clone())}),
        )
    })
}
