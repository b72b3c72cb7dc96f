//! `ec2:vpc-endpoint`: a VPC endpoint of the platform's network. S3 is a gateway endpoint on the
//! private route tables; the other services are interface endpoints in the private subnets, with
//! private DNS, behind the endpoints' security group. Each carries a policy that confines it to
//! the platform's account.
//!
//! - **Found by** the `tenantry:platform` tag and its `Name` (`<stem>-<service>`), in the VPC,
//!   not deleted or being deleted ([`find_all`], [`gone`]).
//! - **Desired** ([`Desired`]): gateway or interface, its route tables or subnets, its security
//!   group, private DNS (interface only) and its policy.
//! - **Owned fields** ([`Desired::differences`]): `subnetIds`, `routeTableIds`,
//!   `securityGroupIds` (compared as sets), `privateDnsEnabled` and `policyDocument` (compared
//!   as a policy, not as text). Left to others: tags beyond Tenantry's, DNS options, the IP
//!   address type.
//! - **Create, update, delete** ([`create`]; [`update`], one `ModifyVpcEndpoint` for the
//!   fields given; [`remove`], one `DeleteVpcEndpoints` for several, already gone counting as
//!   removed). An endpoint is ready when [`available`].

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{ResourceType, VpcEndpoint, VpcEndpointType};
use serde_json::{json, Value};

use super::{Difference, Differences};
use crate::error::{ErrorType, FunctionError};
use crate::phases::aws_error;
use crate::phases::common::{is_platforms, platform_filter, removal, tag_spec};

/// What one endpoint should be.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// `com.amazonaws.<region>.<service>`.
    pub service_name: String,
    pub gateway: bool,
    /// Interface endpoints: one network interface in each.
    pub subnets: Vec<String>,
    /// Gateway endpoints: a route in each.
    pub tables: Vec<String>,
    /// Interface endpoints: the security group in front of them.
    pub group: Option<String>,
    pub policy: Value,
    /// Tenantry's tags, `Name` included, set when it is created.
    pub tags: BTreeMap<String, String>,
}

impl Desired {
    /// The owned fields of `live` that differ from this.
    pub fn differences(&self, live: &VpcEndpoint) -> Vec<Difference> {
        let groups = group_ids(live);
        let want_groups: Vec<String> = self.group.iter().cloned().collect();
        let mut d = Differences::default();
        for (field, have, want) in [
            ("subnetIds", live.subnet_ids(), &self.subnets),
            ("routeTableIds", live.route_table_ids(), &self.tables),
            ("securityGroupIds", &groups, &want_groups),
        ] {
            let (add, remove) = changes(have, want);
            d.check(
                field,
                json!(want),
                json!(have),
                add.is_empty() && remove.is_empty(),
            );
        }
        if !self.gateway {
            let dns = live.private_dns_enabled();
            d.check(
                "privateDnsEnabled",
                json!(true),
                json!(dns),
                dns == Some(true),
            );
        }
        let policy = live
            .policy_document()
            .and_then(crate::policies::parse_returned);
        let same = policy
            .as_ref()
            .is_some_and(|p| crate::policies::same_policy(p, &self.policy));
        d.check("policyDocument", self.policy.clone(), json!(policy), same);
        d.0
    }
}

/// The endpoint's state, lower case (EC2 and moto differ in case).
fn state(e: &VpcEndpoint) -> Option<String> {
    e.state().map(|s| s.as_str().to_ascii_lowercase())
}

/// Whether an endpoint is available (or reports no state).
pub fn available(e: &VpcEndpoint) -> bool {
    state(e).is_none_or(|s| s == "available")
}

/// Whether an endpoint is gone or going (it no longer counts as existing).
pub fn gone(e: &VpcEndpoint) -> bool {
    matches!(
        state(e).as_deref(),
        Some("deleted" | "deleting" | "failed" | "rejected" | "expired")
    )
}

/// The platform's endpoints in any state but deleted (callers filter with [`gone`]).
pub async fn find_all(
    ec2: &aws_sdk_ec2::Client,
    platform_id: &str,
) -> Result<Vec<VpcEndpoint>, FunctionError> {
    let out = ec2
        .describe_vpc_endpoints()
        .filters(platform_filter(platform_id))
        .send()
        .await
        .map_err(|e| aws_error("DescribeVpcEndpoints", e))?;
    Ok(out
        .vpc_endpoints()
        .iter()
        .filter(|e| is_platforms(e.tags(), platform_id))
        .filter(|e| state(e).as_deref() != Some("deleted"))
        .cloned()
        .collect())
}

/// Creates the endpoint in `vpc_id`; its id, and whether it is available already.
pub async fn create(
    ec2: &aws_sdk_ec2::Client,
    vpc_id: &str,
    desired: &Desired,
) -> Result<(String, bool), FunctionError> {
    let call = ec2
        .create_vpc_endpoint()
        .vpc_id(vpc_id)
        .service_name(&desired.service_name)
        .policy_document(desired.policy.to_string())
        .tag_specifications(tag_spec(ResourceType::VpcEndpoint, &desired.tags));
    let call = if desired.gateway {
        call.vpc_endpoint_type(VpcEndpointType::Gateway)
            .set_route_table_ids(Some(desired.tables.clone()))
    } else {
        call.vpc_endpoint_type(VpcEndpointType::Interface)
            .set_subnet_ids(Some(desired.subnets.clone()))
            .set_security_group_ids(desired.group.clone().map(|g| vec![g]))
            .private_dns_enabled(true)
    };
    let out = call
        .send()
        .await
        .map_err(|e| aws_error("CreateVpcEndpoint", e))?;
    let endpoint = out.vpc_endpoint().ok_or_else(|| {
        FunctionError::new(
            ErrorType::Terminal,
            "CreateVpcEndpoint returned no endpoint",
        )
    })?;
    Ok((
        endpoint.vpc_endpoint_id().unwrap_or_default().to_owned(),
        available(endpoint),
    ))
}

/// Puts `fields` (of [`Desired::differences`]) of endpoint `live` back, in one
/// `ModifyVpcEndpoint` call; none when `fields` is empty.
pub async fn update(
    ec2: &aws_sdk_ec2::Client,
    live: &VpcEndpoint,
    desired: &Desired,
    fields: &[&str],
) -> Result<(), FunctionError> {
    if fields.is_empty() {
        return Ok(());
    }
    let some = |v: Vec<String>| (!v.is_empty()).then_some(v);
    let id = live.vpc_endpoint_id().unwrap_or_default();
    let mut call = ec2.modify_vpc_endpoint().vpc_endpoint_id(id);
    for field in fields {
        call = match *field {
            "subnetIds" => {
                let (add, remove) = changes(live.subnet_ids(), &desired.subnets);
                call.set_add_subnet_ids(some(add))
                    .set_remove_subnet_ids(some(remove))
            }
            "routeTableIds" => {
                let (add, remove) = changes(live.route_table_ids(), &desired.tables);
                call.set_add_route_table_ids(some(add))
                    .set_remove_route_table_ids(some(remove))
            }
            "securityGroupIds" => {
                let want: Vec<String> = desired.group.iter().cloned().collect();
                let (add, remove) = changes(&group_ids(live), &want);
                call.set_add_security_group_ids(some(add))
                    .set_remove_security_group_ids(some(remove))
            }
            "privateDnsEnabled" => call.private_dns_enabled(true),
            "policyDocument" => call.policy_document(desired.policy.to_string()),
            other => {
                tracing::warn!(
                    endpoint = id,
                    field = other,
                    "not a field of a VPC endpoint"
                );
                call
            }
        };
    }
    call.send()
        .await
        .map_err(|e| aws_error("ModifyVpcEndpoint", e))?;
    Ok(())
}

/// Deletes the endpoints `ids` (none when empty); already gone counts as deleted.
pub async fn remove(ec2: &aws_sdk_ec2::Client, ids: &[String]) -> Result<(), FunctionError> {
    if ids.is_empty() {
        return Ok(());
    }
    let result = ec2
        .delete_vpc_endpoints()
        .set_vpc_endpoint_ids(Some(ids.to_vec()))
        .send()
        .await;
    removal("DeleteVpcEndpoints", result).map(drop)
}

fn group_ids(live: &VpcEndpoint) -> Vec<String> {
    live.groups()
        .iter()
        .filter_map(|g| g.group_id().map(str::to_owned))
        .collect()
}

/// (to add, to remove) to turn `have` into `want`.
pub fn changes(have: &[String], want: &[String]) -> (Vec<String>, Vec<String>) {
    let add = want.iter().filter(|w| !have.contains(w)).cloned().collect();
    let remove = have.iter().filter(|h| !want.contains(h)).cloned().collect();
    (add, remove)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{SecurityGroupIdentifier, State};

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn interface() -> Desired {
        Desired {
            service_name: "com.amazonaws.us-east-1.sts".to_owned(),
            gateway: false,
            subnets: strings(&["subnet-a", "subnet-b"]),
            tables: vec![],
            group: Some("sg-1".to_owned()),
            policy: json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sts:*", "Resource": "*"}]}),
            tags: BTreeMap::new(),
        }
    }

    fn live(d: &Desired) -> VpcEndpoint {
        live_with(
            d.subnets.iter().rev().cloned().collect(),
            true,
            &d.policy.to_string(),
        )
    }

    fn live_with(subnets: Vec<String>, dns: bool, policy: &str) -> VpcEndpoint {
        VpcEndpoint::builder()
            .vpc_endpoint_id("vpce-1")
            .set_subnet_ids(Some(subnets))
            .groups(SecurityGroupIdentifier::builder().group_id("sg-1").build())
            .private_dns_enabled(dns)
            .policy_document(policy)
            .state(State::from("Available"))
            .build()
    }

    #[test]
    fn an_endpoint_as_desired_has_no_difference_whatever_the_order_of_its_subnets() {
        let d = interface();
        assert_eq!(d.differences(&live(&d)), vec![]);
        assert!(available(&live(&d)) && !gone(&live(&d)));
    }

    #[test]
    fn a_lost_subnet_private_dns_off_and_an_open_policy_are_named() {
        let d = interface();
        let open =
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#;
        let drifted = live_with(strings(&["subnet-a"]), false, open);
        let fields: Vec<_> = d.differences(&drifted).iter().map(|x| x.field).collect();
        assert_eq!(fields, ["subnetIds", "privateDnsEnabled", "policyDocument"]);
    }

    #[test]
    fn a_gateway_endpoint_does_not_compare_private_dns() {
        let mut d = interface();
        d.gateway = true;
        d.subnets.clear();
        d.group = None;
        d.tables = strings(&["rtb-1"]);
        let live = VpcEndpoint::builder()
            .route_table_ids("rtb-1")
            .policy_document(d.policy.to_string())
            .build();
        assert_eq!(d.differences(&live), vec![]);
    }

    #[test]
    fn changes_add_and_remove() {
        let (add, remove) = changes(&strings(&["a", "b"]), &strings(&["b", "c"]));
        assert_eq!((add, remove), (strings(&["c"]), strings(&["a"])));
        let (add, remove) = changes(&strings(&["a"]), &strings(&["a"]));
        assert!(add.is_empty() && remove.is_empty());
    }
}
