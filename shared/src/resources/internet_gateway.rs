//! `ec2:internet-gateway`: the VPC's internet gateway (`<stem>-igw`), the public route table's
//! default route.
//!
//! - **Found by** the `tenantry:platform` tag and its `Name` ([`find_all`]).
//! - **Owned fields**: `attachedTo` (the platform's VPC; an attachment detaching or detached
//!   does not count: [`attached_to`]).
//! - **Create, update, delete** ([`create`], [`attach`]; [`remove`] detaches it from every VPC,
//!   then deletes it, once the NAT gateways' Elastic IPs are released).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{AttachmentStatus, InternetGateway, ResourceType};

use crate::error::{ErrorType, FunctionError};
use crate::phases::aws_error;
use crate::phases::common::{platform_filter, platforms, removal, tag_spec, Removal};

/// The platform's internet gateways.
pub async fn find_all(
    ec2: &aws_sdk_ec2::Client,
    platform_id: &str,
) -> Result<Vec<InternetGateway>, FunctionError> {
    let out = ec2
        .describe_internet_gateways()
        .filters(platform_filter(platform_id))
        .send()
        .await
        .map_err(|e| aws_error("DescribeInternetGateways", e))?;
    Ok(platforms(
        out.internet_gateways(),
        |g| g.tags(),
        platform_id,
    ))
}

/// Whether the gateway is attached to `vpc_id` (and not detaching).
pub fn attached_to(gateway: &InternetGateway, vpc_id: &str) -> bool {
    gateway.attachments().iter().any(|a| {
        a.vpc_id() == Some(vpc_id)
            && !matches!(
                a.state(),
                Some(AttachmentStatus::Detaching | AttachmentStatus::Detached)
            )
    })
}

/// Creates a gateway with `tags` (`Name` included); its id.
pub async fn create(
    ec2: &aws_sdk_ec2::Client,
    tags: &BTreeMap<String, String>,
) -> Result<String, FunctionError> {
    let out = ec2
        .create_internet_gateway()
        .tag_specifications(tag_spec(ResourceType::InternetGateway, tags))
        .send()
        .await
        .map_err(|e| aws_error("CreateInternetGateway", e))?;
    out.internet_gateway()
        .and_then(|g| g.internet_gateway_id())
        .map(str::to_owned)
        .ok_or_else(|| {
            FunctionError::new(ErrorType::Terminal, "CreateInternetGateway returned no id")
        })
}

pub async fn attach(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    vpc_id: &str,
) -> Result<(), FunctionError> {
    ec2.attach_internet_gateway()
        .internet_gateway_id(id)
        .vpc_id(vpc_id)
        .send()
        .await
        .map(drop)
        .map_err(|e| aws_error("AttachInternetGateway", e))
}

/// Detaches the gateway from every VPC, then deletes it; `Blocked` while a detachment is
/// refused (an address in the VPC is still mapped) or the deletion is.
pub async fn remove(
    ec2: &aws_sdk_ec2::Client,
    gateway: &InternetGateway,
) -> Result<Removal, FunctionError> {
    let id = gateway.internet_gateway_id().unwrap_or_default();
    for vpc in gateway.attachments().iter().filter_map(|a| a.vpc_id()) {
        let call = ec2.detach_internet_gateway().internet_gateway_id(id);
        let result = call.vpc_id(vpc).send().await;
        if removal("DetachInternetGateway", result)? == Removal::Blocked {
            return Ok(Removal::Blocked);
        }
    }
    let result = ec2
        .delete_internet_gateway()
        .internet_gateway_id(id)
        .send()
        .await;
    removal("DeleteInternetGateway", result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::InternetGatewayAttachment;

    #[test]
    fn a_detaching_gateway_is_not_attached() {
        let gateway = |state| {
            let attachment = InternetGatewayAttachment::builder()
                .vpc_id("vpc-1")
                .state(state);
            InternetGateway::builder()
                .attachments(attachment.build())
                .build()
        };
        assert!(attached_to(&gateway(AttachmentStatus::Attached), "vpc-1"));
        assert!(!attached_to(&gateway(AttachmentStatus::Attached), "vpc-2"));
        assert!(!attached_to(&gateway(AttachmentStatus::Detaching), "vpc-1"));
    }
}
