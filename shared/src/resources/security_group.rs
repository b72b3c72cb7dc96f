//! `ec2:security-group` in the network: the interface endpoints' group (`<stem>-endpoints`,
//! HTTPS from the VPC and pod CIDRs) and the strays around it. A Fargate tenant's pod group is
//! described in [`super::pod_security_group`].
//!
//! - **Found by** the `tenantry:platform` tag ([`find_all`]), the endpoints' group by its name
//!   in the VPC.
//! - **Desired**: HTTPS from each CIDR ([`https_from`]), and no other rule: the group is
//!   Tenantry's alone, so a rule someone adds (SSH from anywhere) is a difference.
//! - **Owned fields**: `ingress`, compared as the set of rules [`ingress_rules`] lists, one per
//!   source. A group tagged as the platform's that the network does not want is a stray
//!   ([`strays`]: never the VPC's `default` group or a group another controller manages) and
//!   should not exist.
//! - **Create, update, delete** ([`create`]; [`authorize_https`], [`revoke`];
//!   [`remove`], `Blocked` while a network interface still uses the group).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{IpPermission, IpRange, ResourceType, SecurityGroup};

use crate::error::{ErrorType, FunctionError};
use crate::phases::aws_error;
use crate::phases::common::{error_code, platform_filter, platforms, removal, tag_spec, Removal};

/// The platform's security groups.
pub async fn find_all(
    ec2: &aws_sdk_ec2::Client,
    platform_id: &str,
) -> Result<Vec<SecurityGroup>, FunctionError> {
    let out = ec2
        .describe_security_groups()
        .filters(platform_filter(platform_id))
        .send()
        .await
        .map_err(|e| aws_error("DescribeSecurityGroups", e))?;
    Ok(platforms(out.security_groups(), |g| g.tags(), platform_id))
}

/// Security groups tagged as the platform's that it does not want (`wanted`: the names it
/// does): made by someone else, or left behind. Never strays: the VPC's `default` group, and
/// groups another controller manages, which it marks with its own tags (EKS's cluster
/// security group: `aws:eks:cluster-name`; the load balancer controller's and the cloud
/// provider's: `elbv2.k8s.aws/cluster`, `kubernetes.io/cluster/<name>`).
pub fn strays<'g>(groups: &'g [SecurityGroup], wanted: &[String]) -> Vec<&'g SecurityGroup> {
    let managed = |g: &SecurityGroup| {
        g.tags().iter().filter_map(|t| t.key()).any(|k| {
            k.starts_with("aws:")
                || k.starts_with("elbv2.k8s.aws/")
                || k.starts_with("kubernetes.io/cluster/")
        })
    };
    groups
        .iter()
        .filter(|g| {
            let name = g.group_name().unwrap_or_default();
            name != "default" && !wanted.iter().any(|w| w == name) && !managed(g)
        })
        .collect()
}

/// Every ingress rule of `group`, one per source, as `proto/from-to from SOURCE` (the key drift
/// compares), with the single-source permission that revokes it.
pub fn ingress_rules(group: &SecurityGroup) -> BTreeMap<String, IpPermission> {
    let mut out = BTreeMap::new();
    for p in group.ip_permissions() {
        let base = || {
            IpPermission::builder()
                .set_ip_protocol(p.ip_protocol().map(str::to_owned))
                .set_from_port(p.from_port())
                .set_to_port(p.to_port())
        };
        let key = |source: &str| {
            format!(
                "{}/{}-{} from {source}",
                p.ip_protocol().unwrap_or("-1"),
                p.from_port().unwrap_or(-1),
                p.to_port().unwrap_or(-1)
            )
        };
        for r in p.ip_ranges() {
            let cidr = r.cidr_ip().unwrap_or_default();
            let only = IpRange::builder().cidr_ip(cidr).build();
            out.insert(key(cidr), base().ip_ranges(only).build());
        }
        for r in p.ipv6_ranges() {
            let cidr = r.cidr_ipv6().unwrap_or_default();
            let only = aws_sdk_ec2::types::Ipv6Range::builder()
                .cidr_ipv6(cidr)
                .build();
            out.insert(key(cidr), base().ipv6_ranges(only).build());
        }
        for g in p.user_id_group_pairs() {
            let id = g.group_id().unwrap_or_default();
            let only = aws_sdk_ec2::types::UserIdGroupPair::builder()
                .group_id(id)
                .build();
            out.insert(key(id), base().user_id_group_pairs(only).build());
        }
        for l in p.prefix_list_ids() {
            let id = l.prefix_list_id().unwrap_or_default();
            let only = aws_sdk_ec2::types::PrefixListId::builder()
                .prefix_list_id(id)
                .build();
            out.insert(key(id), base().prefix_list_ids(only).build());
        }
    }
    out
}

/// The rule of HTTPS from `cidr`, as [`ingress_rules`] names it.
pub fn https_rule(cidr: &str) -> String {
    format!("tcp/443-443 from {cidr}")
}

/// The rules of HTTPS from each of `cidrs`.
pub fn https_from(cidrs: &[String]) -> BTreeSet<String> {
    cidrs.iter().map(|c| https_rule(c)).collect()
}

/// Creates a group named `name` in `vpc_id`; its id.
pub async fn create(
    ec2: &aws_sdk_ec2::Client,
    vpc_id: &str,
    name: &str,
    description: &str,
    tags: &BTreeMap<String, String>,
) -> Result<String, FunctionError> {
    let out = ec2
        .create_security_group()
        .group_name(name)
        .description(description)
        .vpc_id(vpc_id)
        .tag_specifications(tag_spec(ResourceType::SecurityGroup, tags))
        .send()
        .await
        .map_err(|e| aws_error("CreateSecurityGroup", e))?;
    out.group_id().map(str::to_owned).ok_or_else(|| {
        FunctionError::new(ErrorType::Terminal, "CreateSecurityGroup returned no id")
    })
}

/// Admits HTTPS from each of `cidrs` (none when empty), in one call, each rule described
/// `description`; a rule that exists already is not an error.
pub async fn authorize_https(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    cidrs: &[String],
    description: &str,
) -> Result<(), FunctionError> {
    if cidrs.is_empty() {
        return Ok(());
    }
    let ranges = cidrs
        .iter()
        .map(|c| {
            IpRange::builder()
                .cidr_ip(c)
                .description(description)
                .build()
        })
        .collect();
    let permission = IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(443)
        .to_port(443)
        .set_ip_ranges(Some(ranges))
        .build();
    let call = ec2.authorize_security_group_ingress().group_id(id);
    match call.ip_permissions(permission).send().await {
        Ok(_) => Ok(()),
        Err(e) if error_code(&e) == Some("InvalidPermission.Duplicate") => Ok(()),
        Err(e) => Err(aws_error("AuthorizeSecurityGroupIngress", e)),
    }
}

/// Revokes one ingress rule (a permission of [`ingress_rules`]); already gone is not an error.
pub async fn revoke(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    permission: &IpPermission,
) -> Result<(), FunctionError> {
    let call = ec2.revoke_security_group_ingress().group_id(id);
    match call.ip_permissions(permission.clone()).send().await {
        Ok(_) => Ok(()),
        Err(e) if error_code(&e) == Some("InvalidPermission.NotFound") => Ok(()),
        Err(e) => Err(aws_error("RevokeSecurityGroupIngress", e)),
    }
}

/// Deletes the group; `Blocked` while a network interface still uses it.
pub async fn remove(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<Removal, FunctionError> {
    let result = ec2.delete_security_group().group_id(id).send().await;
    removal("DeleteSecurityGroup", result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::Tag;

    fn group(name: &str, tags: &[(&str, &str)]) -> SecurityGroup {
        SecurityGroup::builder()
            .group_name(name)
            .group_id(format!("sg-{name}"))
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                    .collect(),
            ))
            .build()
    }

    #[test]
    fn strays_are_the_platforms_groups_nobody_else_manages() {
        let platform = [("tenantry:platform", "payments")];
        let groups = [
            group("tenantry-payments-prod-endpoints", &platform),
            group("default", &platform),
            group("someones-debug-group", &platform),
            group(
                "eks-cluster-sg-payments-prod",
                &[platform[0], ("aws:eks:cluster-name", "payments-prod")],
            ),
            group(
                "k8s-alb-shared",
                &[platform[0], ("elbv2.k8s.aws/cluster", "payments-prod")],
            ),
            group(
                "k8s-elb-a1b2",
                &[
                    platform[0],
                    ("kubernetes.io/cluster/payments-prod", "owned"),
                ],
            ),
        ];
        let wanted = ["tenantry-payments-prod-endpoints".to_owned()];
        let found: Vec<_> = strays(&groups, &wanted)
            .iter()
            .map(|g| g.group_name().unwrap_or_default())
            .collect();
        assert_eq!(found, ["someones-debug-group"]);
        let without_endpoints: Vec<_> = strays(&groups, &[])
            .iter()
            .map(|g| g.group_name().unwrap_or_default())
            .collect();
        assert_eq!(
            without_endpoints,
            ["tenantry-payments-prod-endpoints", "someones-debug-group"]
        );
    }

    #[test]
    fn every_source_of_a_permission_is_a_rule_of_its_own() {
        let permission = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(443)
            .to_port(443)
            .ip_ranges(IpRange::builder().cidr_ip("10.0.0.0/16").build())
            .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
            .build();
        let group = SecurityGroup::builder().ip_permissions(permission).build();
        let rules = ingress_rules(&group);
        let names: BTreeSet<String> = rules.keys().cloned().collect();
        let want = https_from(&["10.0.0.0/16".to_owned(), "0.0.0.0/0".to_owned()]);
        assert_eq!(names, want);
        let open = &rules["tcp/443-443 from 0.0.0.0/0"];
        assert_eq!(
            open.ip_ranges().len(),
            1,
            "revoking it revokes that source only"
        );
    }
}
