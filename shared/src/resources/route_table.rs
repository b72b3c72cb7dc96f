//! `ec2:route-table`: a route table of the platform's VPC: the public one (default route to the
//! internet gateway, the public subnets) and one private table per AZ (default route to its NAT
//! gateway when the NAT mode gives it one; the AZ's private and pod subnets). Its routes and
//! subnet associations are properties of the table, not kinds of their own.
//!
//! - **Found by** the `tenantry:platform` tag and its `Name` among the VPC's tables
//!   ([`find_in_vpc`]: every table of the VPC, since an association is found on whichever table
//!   holds it; [`find_platforms`] for decommission).
//! - **Desired**: the default route's [`Target`], and the subnets associated with it.
//! - **Owned fields**: `routes.0.0.0.0/0` (the default route only: routes others add, such as a
//!   peering or a transit gateway, are left alone) and `associations[<subnet>]` (one per
//!   subnet: the table it should be on). The walk compares them ([`default_route`],
//!   [`association_of`]).
//! - **Create, update, delete** ([`create`]; [`set_default_route`] creates, replaces or
//!   deletes the route; [`associate`] associates a subnet or moves it from another table;
//!   [`remove`] disassociates every subnet, then deletes the table).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{ResourceType, Route, RouteTable, RouteTableAssociation};

use crate::error::{ErrorType, FunctionError};
use crate::phases::aws_error;
use crate::phases::common::{platform_filter, platforms, removal, tag_spec, Removal};

/// The destination of the one route Tenantry owns in a table.
pub const DEFAULT_ROUTE: &str = "0.0.0.0/0";

/// Where a default route points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'t> {
    Gateway(&'t str),
    Nat(&'t str),
}

impl Target<'_> {
    /// Whether `route` points here.
    pub fn matches(self, route: &Route) -> bool {
        match self {
            Target::Gateway(id) => route.gateway_id() == Some(id),
            Target::Nat(id) => route.nat_gateway_id() == Some(id),
        }
    }

    /// The gateway's id, as drift reports it.
    pub fn id(self) -> String {
        match self {
            Target::Gateway(id) | Target::Nat(id) => id.to_owned(),
        }
    }
}

/// The table's default route, if it has one.
pub fn default_route(table: &RouteTable) -> Option<&Route> {
    table
        .routes()
        .iter()
        .find(|r| r.destination_cidr_block() == Some(DEFAULT_ROUTE))
}

/// Where a route points, as drift reports it.
pub fn route_target(route: &Route) -> Option<&str> {
    route.nat_gateway_id().or(route.gateway_id())
}

/// Whether an association still holds (not being or already removed, not failed).
pub fn association_live(a: &RouteTableAssociation) -> bool {
    use aws_sdk_ec2::types::RouteTableAssociationStateCode as S;
    !matches!(
        a.association_state().and_then(|s| s.state()),
        Some(S::Disassociated | S::Disassociating | S::Failed)
    )
}

/// Which of `tables` `subnet` is associated with: (table id, association id).
pub fn association_of<'t>(
    tables: &'t [RouteTable],
    subnet: &str,
) -> Option<(Option<&'t str>, Option<&'t str>)> {
    tables.iter().find_map(|t| {
        t.associations()
            .iter()
            .find(|a| a.subnet_id() == Some(subnet) && association_live(a))
            .map(|a| (t.route_table_id(), a.route_table_association_id()))
    })
}

/// Every route table of `vpc_id`, whoever made it.
pub async fn find_in_vpc(
    ec2: &aws_sdk_ec2::Client,
    vpc_id: &str,
) -> Result<Vec<RouteTable>, FunctionError> {
    let vpc = aws_sdk_ec2::types::Filter::builder()
        .name("vpc-id")
        .values(vpc_id)
        .build();
    let out = ec2
        .describe_route_tables()
        .filters(vpc)
        .send()
        .await
        .map_err(|e| aws_error("DescribeRouteTables", e))?;
    Ok(out.route_tables().to_vec())
}

/// The platform's route tables, in any VPC.
pub async fn find_platforms(
    ec2: &aws_sdk_ec2::Client,
    platform_id: &str,
) -> Result<Vec<RouteTable>, FunctionError> {
    let out = ec2
        .describe_route_tables()
        .filters(platform_filter(platform_id))
        .send()
        .await
        .map_err(|e| aws_error("DescribeRouteTables", e))?;
    Ok(platforms(out.route_tables(), |r| r.tags(), platform_id))
}

/// Creates a table in `vpc_id` with `tags` (`Name` included).
pub async fn create(
    ec2: &aws_sdk_ec2::Client,
    vpc_id: &str,
    tags: &BTreeMap<String, String>,
) -> Result<RouteTable, FunctionError> {
    let out = ec2
        .create_route_table()
        .vpc_id(vpc_id)
        .tag_specifications(tag_spec(ResourceType::RouteTable, tags))
        .send()
        .await
        .map_err(|e| aws_error("CreateRouteTable", e))?;
    out.route_table().cloned().ok_or_else(|| {
        FunctionError::new(
            ErrorType::Terminal,
            "CreateRouteTable returned no route table",
        )
    })
}

/// Makes the default route of `table_id` point at `target`, or deletes it (None). `has_route`:
/// whether the table has one now (replaced rather than created).
pub async fn set_default_route(
    ec2: &aws_sdk_ec2::Client,
    table_id: &str,
    has_route: bool,
    target: Option<Target<'_>>,
) -> Result<(), FunctionError> {
    let Some(target) = target else {
        if !has_route {
            return Ok(());
        }
        let call = ec2.delete_route().route_table_id(table_id);
        let result = call.destination_cidr_block(DEFAULT_ROUTE).send().await;
        return result.map(drop).map_err(|e| aws_error("DeleteRoute", e));
    };
    let (gateway, nat) = match target {
        Target::Gateway(id) => (Some(id.to_owned()), None),
        Target::Nat(id) => (None, Some(id.to_owned())),
    };
    if has_route {
        let call = ec2.replace_route().route_table_id(table_id);
        let call = call.destination_cidr_block(DEFAULT_ROUTE);
        let result = call.set_gateway_id(gateway).set_nat_gateway_id(nat).send();
        return result
            .await
            .map(drop)
            .map_err(|e| aws_error("ReplaceRoute", e));
    }
    let call = ec2.create_route().route_table_id(table_id);
    let call = call.destination_cidr_block(DEFAULT_ROUTE);
    let result = call.set_gateway_id(gateway).set_nat_gateway_id(nat).send();
    result
        .await
        .map(drop)
        .map_err(|e| aws_error("CreateRoute", e))
}

/// Associates `subnet` with `table_id`: moves its association (`current`, on another table)
/// when it has one.
pub async fn associate(
    ec2: &aws_sdk_ec2::Client,
    table_id: &str,
    subnet: &str,
    current: Option<&str>,
) -> Result<(), FunctionError> {
    match current {
        Some(association) => ec2
            .replace_route_table_association()
            .association_id(association)
            .route_table_id(table_id)
            .send()
            .await
            .map(drop)
            .map_err(|e| aws_error("ReplaceRouteTableAssociation", e)),
        None => ec2
            .associate_route_table()
            .route_table_id(table_id)
            .subnet_id(subnet)
            .send()
            .await
            .map(drop)
            .map_err(|e| aws_error("AssociateRouteTable", e)),
    }
}

/// Disassociates every subnet from `table` (the main association stays with its VPC), then
/// deletes it. Already gone is removed; `Blocked` while EC2 refuses (`DependencyViolation`).
pub async fn remove(
    ec2: &aws_sdk_ec2::Client,
    table: &RouteTable,
) -> Result<Removal, FunctionError> {
    for a in table
        .associations()
        .iter()
        .filter(|a| a.main() != Some(true))
    {
        let association = a.route_table_association_id().unwrap_or_default();
        let call = ec2.disassociate_route_table().association_id(association);
        removal("DisassociateRouteTable", call.send().await)?;
    }
    let id = table.route_table_id().unwrap_or_default();
    let result = ec2.delete_route_table().route_table_id(id).send().await;
    removal("DeleteRouteTable", result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{RouteTableAssociationState, RouteTableAssociationStateCode};

    #[test]
    fn default_route_targets() {
        let route = Route::builder()
            .destination_cidr_block(DEFAULT_ROUTE)
            .nat_gateway_id("nat-1")
            .build();
        assert!(Target::Nat("nat-1").matches(&route));
        assert!(!Target::Nat("nat-2").matches(&route));
        assert!(!Target::Gateway("igw-1").matches(&route));
        assert_eq!(route_target(&route), Some("nat-1"));
    }

    #[test]
    fn a_subnet_is_found_on_the_table_whose_association_holds() {
        let association = |subnet: &str, state| {
            RouteTableAssociation::builder()
                .subnet_id(subnet)
                .route_table_association_id(format!("rtbassoc-{subnet}"))
                .association_state(RouteTableAssociationState::builder().state(state).build())
                .build()
        };
        let tables = [
            RouteTable::builder()
                .route_table_id("rtb-old")
                .associations(association(
                    "a",
                    RouteTableAssociationStateCode::Disassociated,
                ))
                .build(),
            RouteTable::builder()
                .route_table_id("rtb-new")
                .associations(association("a", RouteTableAssociationStateCode::Associated))
                .build(),
        ];
        assert_eq!(
            association_of(&tables, "a"),
            Some((Some("rtb-new"), Some("rtbassoc-a")))
        );
        assert_eq!(association_of(&tables, "b"), None);
    }
}
