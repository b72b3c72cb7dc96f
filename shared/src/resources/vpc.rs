//! `ec2:vpc` and its `ec2:vpc-cidr-block-association`: the platform's VPC, named `<stem>-vpc`,
//! with DNS support and DNS hostnames on (the private cluster endpoint and the interface
//! endpoints' private DNS need both), and, with a `podCidr`, that CIDR as a secondary block for
//! the pod subnets (`<stem>-pods`).
//!
//! - **Found by** the `tenantry:platform` tag and its `Name` ([`find_all`]).
//! - **Desired**: the spec's CIDR, both DNS attributes on ([`DNS_ATTRIBUTES`]), the pod CIDR
//!   associated.
//! - **Owned fields**: `cidr` (a VPC's primary CIDR cannot change: a VPC of the name with
//!   another CIDR is a conflict, never replaced), `enableDnsSupport`, `enableDnsHostnames`,
//!   `secondaryCidr[<pod CIDR>]`. Other secondary blocks are left alone.
//! - **Create, update, delete** ([`create`]; [`dns`] reads an attribute, [`enable_dns`] turns
//!   it on; [`associate_cidr`]; [`remove`] disassociates the secondary blocks, then deletes the
//!   VPC, once everything in it is gone).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    AttributeBooleanValue, ResourceType, Vpc, VpcAttributeName, VpcCidrBlockAssociation,
    VpcCidrBlockStateCode,
};

use crate::error::{ErrorType, FunctionError};
use crate::phases::aws_error;
use crate::phases::common::{platform_filter, platforms, removal, tag_spec, Removal};

/// The two DNS attributes, by the field name drift gives them, in the order they are turned on
/// (hostnames need support).
pub const DNS_ATTRIBUTES: [(&str, VpcAttributeName); 2] = [
    ("enableDnsSupport", VpcAttributeName::EnableDnsSupport),
    ("enableDnsHostnames", VpcAttributeName::EnableDnsHostnames),
];

/// The platform's VPCs.
pub async fn find_all(
    ec2: &aws_sdk_ec2::Client,
    platform_id: &str,
) -> Result<Vec<Vpc>, FunctionError> {
    let out = ec2
        .describe_vpcs()
        .filters(platform_filter(platform_id))
        .send()
        .await
        .map_err(|e| aws_error("DescribeVpcs", e))?;
    Ok(platforms(out.vpcs(), |v| v.tags(), platform_id))
}

/// Creates the VPC with `cidr` and `tags` (`Name` included).
pub async fn create(
    ec2: &aws_sdk_ec2::Client,
    cidr: &str,
    tags: &BTreeMap<String, String>,
) -> Result<Vpc, FunctionError> {
    let out = ec2
        .create_vpc()
        .cidr_block(cidr)
        .tag_specifications(tag_spec(ResourceType::Vpc, tags))
        .send()
        .await
        .map_err(|e| aws_error("CreateVpc", e))?;
    out.vpc()
        .cloned()
        .ok_or_else(|| FunctionError::new(ErrorType::Terminal, "CreateVpc returned no VPC"))
}

/// One DNS attribute of the VPC (EC2 answers one attribute per call).
pub async fn dns(
    ec2: &aws_sdk_ec2::Client,
    vpc_id: &str,
    attribute: &VpcAttributeName,
) -> Result<bool, FunctionError> {
    let out = ec2
        .describe_vpc_attribute()
        .vpc_id(vpc_id)
        .attribute(attribute.clone())
        .send()
        .await
        .map_err(|e| aws_error("DescribeVpcAttribute", e))?;
    let value = match attribute {
        VpcAttributeName::EnableDnsSupport => out.enable_dns_support(),
        _ => out.enable_dns_hostnames(),
    };
    Ok(value.and_then(|v| v.value()).unwrap_or(false))
}

/// Turns one DNS attribute on.
pub async fn enable_dns(
    ec2: &aws_sdk_ec2::Client,
    vpc_id: &str,
    attribute: &VpcAttributeName,
) -> Result<(), FunctionError> {
    let on = AttributeBooleanValue::builder().value(true).build();
    let call = ec2.modify_vpc_attribute().vpc_id(vpc_id);
    let call = match attribute {
        VpcAttributeName::EnableDnsSupport => call.enable_dns_support(on),
        _ => call.enable_dns_hostnames(on),
    };
    call.send()
        .await
        .map(drop)
        .map_err(|e| aws_error("ModifyVpcAttribute", e))
}

/// The association of `cidr` with the VPC, when it holds or is coming.
pub fn cidr_association<'v>(vpc: &'v Vpc, cidr: &str) -> Option<&'v VpcCidrBlockAssociation> {
    vpc.cidr_block_association_set().iter().find(|a| {
        a.cidr_block() == Some(cidr)
            && matches!(
                a.cidr_block_state().and_then(|s| s.state()),
                Some(VpcCidrBlockStateCode::Associated | VpcCidrBlockStateCode::Associating)
            )
    })
}

/// Associates `cidr` with the VPC as a secondary block; the association's id.
pub async fn associate_cidr(
    ec2: &aws_sdk_ec2::Client,
    vpc_id: &str,
    cidr: &str,
) -> Result<String, FunctionError> {
    let out = ec2
        .associate_vpc_cidr_block()
        .vpc_id(vpc_id)
        .cidr_block(cidr)
        .send()
        .await
        .map_err(|e| aws_error("AssociateVpcCidrBlock", e))?;
    Ok(out
        .cidr_block_association()
        .and_then(|a| a.association_id())
        .unwrap_or_default()
        .to_owned())
}

/// Disassociates the VPC's associated secondary blocks (each with the outcome, by association
/// id), then deletes it; `Blocked` while something in it remains.
pub async fn remove(
    ec2: &aws_sdk_ec2::Client,
    vpc: &Vpc,
) -> Result<(Vec<(String, Removal)>, Removal), FunctionError> {
    let secondary = vpc.cidr_block_association_set().iter().filter(|a| {
        a.cidr_block() != vpc.cidr_block()
            && a.cidr_block_state().and_then(|s| s.state())
                == Some(&VpcCidrBlockStateCode::Associated)
    });
    let mut blocks = Vec::new();
    for a in secondary {
        let association = a.association_id().unwrap_or_default();
        let call = ec2
            .disassociate_vpc_cidr_block()
            .association_id(association);
        let outcome = removal("DisassociateVpcCidrBlock", call.send().await)?;
        blocks.push((association.to_owned(), outcome));
    }
    let id = vpc.vpc_id().unwrap_or_default();
    let result = ec2.delete_vpc().vpc_id(id).send().await;
    Ok((blocks, removal("DeleteVpc", result)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::VpcCidrBlockState;

    #[test]
    fn a_pod_cidr_counts_as_associated_while_it_is_associating_not_once_it_is_going() {
        let association = |state| {
            VpcCidrBlockAssociation::builder()
                .association_id("vpc-cidr-assoc-1")
                .cidr_block("100.64.0.0/16")
                .cidr_block_state(VpcCidrBlockState::builder().state(state).build())
                .build()
        };
        let vpc = |state| {
            Vpc::builder()
                .cidr_block_association_set(association(state))
                .build()
        };
        let found = |state| cidr_association(&vpc(state), "100.64.0.0/16").is_some();
        assert!(found(VpcCidrBlockStateCode::Associated));
        assert!(found(VpcCidrBlockStateCode::Associating));
        assert!(!found(VpcCidrBlockStateCode::Disassociating));
        assert!(!found(VpcCidrBlockStateCode::Disassociated));
    }
}
