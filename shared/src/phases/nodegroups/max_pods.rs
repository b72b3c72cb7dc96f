//! Max pods under VPC CNI custom networking.
//!
//! Each pod takes an address of one of the node's network interfaces. Without custom networking
//! every interface holds pods, and Bottlerocket's own default (interfaces × (addresses − 1) + 2)
//! fits. With custom networking the primary interface stays in the node subnet and holds none,
//! so a node fits only `(interfaces − 1) × (addresses per interface − 1) + 2` pods (the 2 are
//! host-network pods: kube-proxy and the VPC CNI). Left at the default, the scheduler would place
//! pods for which no address exists, and they would hang in `ContainerCreating`.
//!
//! The limits come from `DescribeInstanceTypes`, so every instance type EC2 offers is covered
//! and nothing is copied into Tenantry; a group with several types gets the smallest value.

use aws_sdk_ec2::types::InstanceType;

use crate::error::{ErrorType, FunctionError};
use crate::phases::aws_error;

/// Max pods of one instance type under custom networking, or `None` when it has a single
/// network interface (no interface is left for pods).
pub fn custom_networking_max_pods(interfaces: i32, addresses_per_interface: i32) -> Option<u32> {
    let secondary = u32::try_from(interfaces).ok()?.checked_sub(1)?;
    let per = u32::try_from(addresses_per_interface)
        .ok()?
        .checked_sub(1)?;
    (secondary > 0 && per > 0).then(|| secondary * per + 2)
}

/// The max pods of a node group whose nodes may be any of `instance_types`: the smallest.
pub async fn for_instance_types(
    ec2: &aws_sdk_ec2::Client,
    group: &str,
    instance_types: &[String],
) -> Result<u32, FunctionError> {
    let out = ec2
        .describe_instance_types()
        .set_instance_types(Some(
            instance_types
                .iter()
                .map(|t| InstanceType::from(t.as_str()))
                .collect(),
        ))
        .send()
        .await
        .map_err(|e| aws_error("DescribeInstanceTypes", e))?;
    let mut smallest: Option<u32> = None;
    for wanted in instance_types {
        let info = out
            .instance_types()
            .iter()
            .find(|i| i.instance_type().map(InstanceType::as_str) == Some(wanted.as_str()))
            .and_then(|i| i.network_info());
        let pods = info.and_then(|n| {
            custom_networking_max_pods(
                n.maximum_network_interfaces()?,
                n.ipv4_addresses_per_interface()?,
            )
        });
        let Some(pods) = pods else {
            return Err(FunctionError::new(
                ErrorType::InvalidRequest,
                format!(
                    "node group {group:?}, instanceTypes: {wanted} has no network interface left for \
                     pods under custom networking (EC2 reports {:?} interfaces of {:?} addresses); \
                     choose an instance type with at least two",
                    info.and_then(|n| n.maximum_network_interfaces()),
                    info.and_then(|n| n.ipv4_addresses_per_interface()),
                ),
            ));
        };
        smallest = Some(smallest.map_or(pods, |s| s.min(pods)));
    }
    smallest.ok_or_else(|| {
        FunctionError::new(
            ErrorType::InvalidRequest,
            format!("node group {group:?}, instanceTypes: no instance type"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_primary_interface_holds_no_pods() {
        // m5.large: 3 interfaces of 10 addresses.
        assert_eq!(custom_networking_max_pods(3, 10), Some(20));
        // t3.medium: 3 of 6.
        assert_eq!(custom_networking_max_pods(3, 6), Some(12));
        assert_eq!(custom_networking_max_pods(1, 4), None);
        assert_eq!(custom_networking_max_pods(0, 4), None);
        assert_eq!(custom_networking_max_pods(2, 1), None);
    }
}
