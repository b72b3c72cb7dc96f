//! `ec2:subnet`: a public, private or pod subnet of the platform's VPC, one per tier and AZ
//! (`<stem>-<tier>-<i>`), with the EKS discovery tags (`kubernetes.io/role/elb` on public,
//! `kubernetes.io/role/internal-elb` on private, `kubernetes.io/cluster/<cluster>` on both).
//!
//! - **Found by** the `tenantry:platform` tag and its `Name` ([`find_all`]).
//! - **Desired**: its VPC, CIDR and zone, and Tenantry's tags.
//! - **Owned fields**: `vpcId`, `cidr`, `availabilityZone` ([`placement`]: none can change, so
//!   a subnet of the name elsewhere is a conflict, never replaced) and each tag Tenantry sets
//!   (`tags.<key>`: put back by [`tag`]; tags others add are left alone).
//! - **Create, delete** ([`create`], [`remove`], once the NAT gateways and endpoints in it are
//!   gone).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{ResourceType, Subnet};
use serde_json::json;

use super::{Difference, Differences};
use crate::error::{ErrorType, FunctionError};
use crate::phases::aws_error;
use crate::phases::common::{
    ec2_tags, error_code, platform_filter, platforms, removal, tag_spec, Removal,
};

/// Where a subnet is: its VPC, CIDR and zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement<'p> {
    pub vpc_id: &'p str,
    pub cidr: &'p str,
    pub az: &'p str,
}

/// How `live` is placed otherwise than `want` (`vpcId`, `cidr`, `availabilityZone`).
pub fn placement(want: Placement<'_>, live: &Subnet) -> Vec<Difference> {
    let mut d = Differences::default();
    for (field, want, have) in [
        ("vpcId", want.vpc_id, live.vpc_id()),
        ("cidr", want.cidr, live.cidr_block()),
        ("availabilityZone", want.az, live.availability_zone()),
    ] {
        d.check(field, json!(want), json!(have), have == Some(want));
    }
    d.0
}

/// The platform's subnets.
pub async fn find_all(
    ec2: &aws_sdk_ec2::Client,
    platform_id: &str,
) -> Result<Vec<Subnet>, FunctionError> {
    let out = ec2
        .describe_subnets()
        .filters(platform_filter(platform_id))
        .send()
        .await
        .map_err(|e| aws_error("DescribeSubnets", e))?;
    Ok(platforms(out.subnets(), |s| s.tags(), platform_id))
}

/// Creates the subnet; its id. `pod_cidr`: the subnet is in the VPC's secondary block, which
/// may still be `associating` a moment after it was associated (then a retryable error).
pub async fn create(
    ec2: &aws_sdk_ec2::Client,
    at: Placement<'_>,
    tags: &BTreeMap<String, String>,
    pod_cidr: bool,
) -> Result<String, FunctionError> {
    let result = ec2
        .create_subnet()
        .vpc_id(at.vpc_id)
        .cidr_block(at.cidr)
        .availability_zone(at.az)
        .tag_specifications(tag_spec(ResourceType::Subnet, tags))
        .send()
        .await;
    let out = match result {
        Ok(out) => out,
        Err(e) if pod_cidr && error_code(&e) == Some("InvalidSubnet.Range") => {
            return Err(FunctionError::new(
                ErrorType::Retryable,
                format!(
                    "CreateSubnet {}: the pod CIDR is not associated yet",
                    at.cidr
                ),
            ))
        }
        Err(e) => return Err(aws_error("CreateSubnet", e)),
    };
    out.subnet()
        .and_then(|s| s.subnet_id())
        .map(str::to_owned)
        .ok_or_else(|| FunctionError::new(ErrorType::Terminal, "CreateSubnet returned no id"))
}

/// Sets `tags` on the subnet (none when empty); other tags stay.
pub async fn tag(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), FunctionError> {
    if tags.is_empty() {
        return Ok(());
    }
    ec2.create_tags()
        .resources(id)
        .set_tags(Some(ec2_tags(tags)))
        .send()
        .await
        .map(drop)
        .map_err(|e| aws_error("CreateTags", e))
}

/// Deletes the subnet; `Blocked` while network interfaces remain in it.
pub async fn remove(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<Removal, FunctionError> {
    let result = ec2.delete_subnet().subnet_id(id).send().await;
    removal("DeleteSubnet", result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subnet_elsewhere_is_named_field_by_field() {
        let want = Placement {
            vpc_id: "vpc-1",
            cidr: "10.0.0.0/20",
            az: "us-east-1a",
        };
        let live = Subnet::builder()
            .vpc_id("vpc-1")
            .cidr_block("10.0.0.0/20")
            .availability_zone("us-east-1b")
            .build();
        let found = placement(want, &live);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].field, &found[0].desired, &found[0].actual),
            (
                "availabilityZone",
                &json!("us-east-1a"),
                &json!("us-east-1b")
            )
        );
        let here = live.clone();
        let same = Placement {
            az: "us-east-1b",
            ..want
        };
        assert!(placement(same, &here).is_empty());
    }
}
