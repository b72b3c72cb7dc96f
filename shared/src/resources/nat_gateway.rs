//! `ec2:nat-gateway` and its `ec2:eip`: a NAT gateway in a public subnet of the platform's VPC,
//! with an Elastic IP of its own, both named `<stem>-nat-<i>`. How many there are, and which AZ
//! routes through which, is the NAT mode's (`network::Desired::nat_count`, `nat_for_az`).
//!
//! - **Found by** the `tenantry:platform` tag and their `Name`: NAT gateways `pending` or
//!   `available` ([`find_live`]; `deleted` and `failed` ones are history, `deleting` ones are
//!   reported by [`find_in`]), Elastic IPs ([`find_addresses`]).
//! - **Desired**: one per number the NAT mode asks for, in the public subnet of its AZ.
//! - **Owned fields**: existence only. A NAT gateway cannot be modified: one deleted by hand is
//!   created again with its Elastic IP (kept), one the spec no longer asks for is deleted and
//!   its address released.
//! - **Create, delete** ([`allocate`] then [`create`]; [`remove`], then [`release`] once the
//!   gateway no longer holds the address). A new gateway is `pending` for a minute or two: no
//!   route may point at it until it is `available`.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Address, DomainType, Filter, NatGateway, NatGatewayState, ResourceType};

use crate::error::{ErrorType, FunctionError};
use crate::phases::aws_error;
use crate::phases::common::{
    error_code, is_platforms, platform_filter, platforms, removal, tag_spec, Removal,
};

/// The platform's NAT gateways that exist or are coming (`pending`, `available`).
pub async fn find_live(
    ec2: &aws_sdk_ec2::Client,
    platform_id: &str,
) -> Result<Vec<NatGateway>, FunctionError> {
    let live = [NatGatewayState::Pending, NatGatewayState::Available];
    find_in(ec2, platform_id, &live).await
}

/// The platform's NAT gateways in one of `states`.
pub async fn find_in(
    ec2: &aws_sdk_ec2::Client,
    platform_id: &str,
    states: &[NatGatewayState],
) -> Result<Vec<NatGateway>, FunctionError> {
    let mut state_filter = Filter::builder().name("state");
    for s in states {
        state_filter = state_filter.values(s.as_str());
    }
    let out = ec2
        .describe_nat_gateways()
        .filter(platform_filter(platform_id))
        .filter(state_filter.build())
        .send()
        .await
        .map_err(|e| aws_error("DescribeNatGateways", e))?;
    // Both checked again: moto ignores the tag filter of DescribeNatGateways.
    Ok(out
        .nat_gateways()
        .iter()
        .filter(|n| is_platforms(n.tags(), platform_id))
        .filter(|n| n.state().is_some_and(|s| states.contains(s)))
        .cloned()
        .collect())
}

/// The platform's Elastic IPs.
pub async fn find_addresses(
    ec2: &aws_sdk_ec2::Client,
    platform_id: &str,
) -> Result<Vec<Address>, FunctionError> {
    let out = ec2
        .describe_addresses()
        .filters(platform_filter(platform_id))
        .send()
        .await
        .map_err(|e| aws_error("DescribeAddresses", e))?;
    Ok(platforms(out.addresses(), |a| a.tags(), platform_id))
}

/// The allocation id of the gateway's Elastic IP.
pub fn allocation_of(nat: &NatGateway) -> Option<&str> {
    nat.nat_gateway_addresses()
        .first()
        .and_then(|a| a.allocation_id())
}

fn terminal(message: &str) -> FunctionError {
    FunctionError::new(ErrorType::Terminal, message)
}

/// Allocates an Elastic IP in the VPC domain with `tags` (`Name` included); its allocation id.
pub async fn allocate(
    ec2: &aws_sdk_ec2::Client,
    tags: &BTreeMap<String, String>,
) -> Result<String, FunctionError> {
    let out = ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .tag_specifications(tag_spec(ResourceType::ElasticIp, tags))
        .send()
        .await
        .map_err(|e| aws_error("AllocateAddress", e))?;
    out.allocation_id()
        .map(str::to_owned)
        .ok_or_else(|| terminal("AllocateAddress returned no allocation id"))
}

/// Creates a NAT gateway in `subnet` with the Elastic IP `allocation`; its id and state.
pub async fn create(
    ec2: &aws_sdk_ec2::Client,
    subnet: &str,
    allocation: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(String, Option<NatGatewayState>), FunctionError> {
    let out = ec2
        .create_nat_gateway()
        .subnet_id(subnet)
        .allocation_id(allocation)
        .tag_specifications(tag_spec(ResourceType::Natgateway, tags))
        .send()
        .await
        .map_err(|e| aws_error("CreateNatGateway", e))?;
    let nat = out
        .nat_gateway()
        .ok_or_else(|| terminal("CreateNatGateway returned no NAT gateway"))?;
    Ok((
        nat.nat_gateway_id().unwrap_or_default().to_owned(),
        nat.state().cloned(),
    ))
}

/// Starts deleting a NAT gateway (it stays `deleting` for a while); already gone is removed.
pub async fn remove(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<Removal, FunctionError> {
    let result = ec2.delete_nat_gateway().nat_gateway_id(id).send().await;
    removal("DeleteNatGateway", result)
}

/// Releases an Elastic IP. `Blocked` while a NAT gateway being deleted still holds it (EC2
/// answers `InvalidIPAddress.InUse`, or `AuthFailure` for an address still associated).
pub async fn release(
    ec2: &aws_sdk_ec2::Client,
    allocation: &str,
) -> Result<Removal, FunctionError> {
    let result = ec2.release_address().allocation_id(allocation).send().await;
    match result {
        Err(e)
            if matches!(
                error_code(&e),
                Some("InvalidIPAddress.InUse" | "AuthFailure")
            ) =>
        {
            Ok(Removal::Blocked)
        }
        other => removal("ReleaseAddress", other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::NatGatewayAddress;

    #[test]
    fn the_allocation_is_the_first_address_of_the_gateway() {
        let nat = NatGateway::builder()
            .nat_gateway_addresses(
                NatGatewayAddress::builder()
                    .allocation_id("eipalloc-1")
                    .build(),
            )
            .build();
        assert_eq!(allocation_of(&nat), Some("eipalloc-1"));
        assert_eq!(allocation_of(&NatGateway::builder().build()), None);
    }
}
