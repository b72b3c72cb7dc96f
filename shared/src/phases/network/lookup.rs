//! Finding the network's resources by their `tenantry:*` and `Name` tags.
//!
//! Every describe call filters by the platform tag (and the VPC where the API has that filter),
//! and the result is checked again client-side: moto ignores tag filters on some operations
//! (DescribeNatGateways), and a second check costs nothing.

use aws_sdk_ec2::types::{Filter, SecurityGroup, Tag};

use super::Clients;
use crate::error::FunctionError;
use crate::phases::aws_error;
use crate::phases::common::platform_filter;

/// The value of tag `key`, if present.
pub fn tag<'t>(tags: &'t [Tag], key: &str) -> Option<&'t str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// Whether `tags` carry the platform tag of `platform_id`.
pub fn ours(tags: &[Tag], platform_id: &str) -> bool {
    crate::phases::common::is_platforms(tags, platform_id)
}

/// The `Name` tag.
pub fn name(tags: &[Tag]) -> Option<&str> {
    tag(tags, "Name")
}

pub fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// The first item (by id, so the choice is stable) whose `Name` tag is `wanted`.
pub fn named<'i, T>(
    items: &'i [T],
    wanted: &str,
    tags: impl Fn(&T) -> &[Tag],
    id: impl Fn(&T) -> Option<&str>,
) -> Option<&'i T> {
    items
        .iter()
        .filter(|i| name(tags(i)) == Some(wanted))
        .min_by(|a, b| id(a).cmp(&id(b)))
}

pub async fn security_groups(
    c: &Clients,
    platform_id: &str,
) -> Result<Vec<SecurityGroup>, FunctionError> {
    let out = c
        .ec2
        .describe_security_groups()
        .filters(platform_filter(platform_id))
        .send()
        .await
        .map_err(|e| aws_error("DescribeSecurityGroups", e))?;
    Ok(out
        .security_groups()
        .iter()
        .filter(|g| ours(g.tags(), platform_id))
        .cloned()
        .collect())
}

/// Security groups tagged as the platform's that it does not want (`wanted`: the names it
/// does): made by someone else, or left behind. Never strays: the VPC's `default` group, and
/// groups another controller manages, which it marks with its own tags (EKS's cluster
/// security group: `aws:eks:cluster-name`; the load balancer controller's and the cloud
/// provider's: `elbv2.k8s.aws/cluster`, `kubernetes.io/cluster/<name>`).
pub fn stray_groups<'g>(groups: &'g [SecurityGroup], wanted: &[String]) -> Vec<&'g SecurityGroup> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let strays: Vec<_> = stray_groups(&groups, &wanted)
            .iter()
            .map(|g| g.group_name().unwrap_or_default())
            .collect();
        assert_eq!(strays, ["someones-debug-group"]);
        let without_endpoints: Vec<_> = stray_groups(&groups, &[])
            .iter()
            .map(|g| g.group_name().unwrap_or_default())
            .collect();
        assert_eq!(
            without_endpoints,
            ["tenantry-payments-prod-endpoints", "someones-debug-group"]
        );
    }
}
