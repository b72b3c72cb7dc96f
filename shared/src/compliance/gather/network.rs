//! The VPC's side of a sweep: subnets (and whether their route table reaches an internet
//! gateway), flow logs, endpoints and security groups.

use super::super::live::*;
use crate::aws::Clients;
use crate::error::FunctionError;
use crate::phases::aws_error;
use crate::policies::parse_returned;
use aws_sdk_ec2::types::{Filter, RouteTable};
use serde_json::Value;

fn vpc_filter(vpc: &str) -> Filter {
    Filter::builder().name("vpc-id").values(vpc).build()
}

/// Reads the VPC's network into `live`.
pub(super) async fn network(
    clients: &Clients,
    vpc: &str,
    live: &mut Live,
) -> Result<(), FunctionError> {
    let subnets = subnets(clients, vpc).await?;
    live.subnets
        .extend(subnets.into_iter().map(|s| (s.id.clone(), s)));
    live.flow_logs = flow_logs(clients, vpc).await?;
    live.vpc_endpoints = endpoints(clients, vpc).await?;
    live.security_groups = security_groups(clients, vpc).await?;
    Ok(())
}

/// Each subnet, with whether its route table (or the main one) routes to an internet gateway.
async fn subnets(clients: &Clients, vpc: &str) -> Result<Vec<Subnet>, FunctionError> {
    let subnets = clients
        .ec2()
        .describe_subnets()
        .filters(vpc_filter(vpc))
        .send()
        .await
        .map_err(|e| aws_error("DescribeSubnets", e))?;
    let tables = clients
        .ec2()
        .describe_route_tables()
        .filters(vpc_filter(vpc))
        .send()
        .await
        .map_err(|e| aws_error("DescribeRouteTables", e))?;
    let to_igw = |t: &RouteTable| {
        t.routes()
            .iter()
            .any(|r| r.gateway_id().is_some_and(|g| g.starts_with("igw-")))
    };
    let tables = tables.route_tables();
    let main_to_igw = tables
        .iter()
        .find(|t| t.associations().iter().any(|a| a.main() == Some(true)))
        .is_some_and(to_igw);
    Ok(subnets
        .subnets()
        .iter()
        .map(|s| {
            let id = s.subnet_id().unwrap_or_default();
            let table = tables
                .iter()
                .find(|t| t.associations().iter().any(|a| a.subnet_id() == Some(id)));
            Subnet {
                id: id.to_owned(),
                map_public_ip: s.map_public_ip_on_launch() == Some(true),
                routes_to_internet_gateway: table.map_or(main_to_igw, to_igw),
            }
        })
        .collect())
}

async fn flow_logs(clients: &Clients, vpc: &str) -> Result<Vec<FlowLog>, FunctionError> {
    let flow_logs = clients
        .ec2()
        .describe_flow_logs()
        .filter(Filter::builder().name("resource-id").values(vpc).build())
        .send()
        .await
        .map_err(|e| aws_error("DescribeFlowLogs", e))?;
    Ok(flow_logs
        .flow_logs()
        .iter()
        .map(|f| FlowLog {
            id: f.flow_log_id().unwrap_or_default().to_owned(),
            resource: f.resource_id().unwrap_or_default().to_owned(),
            status: f.flow_log_status().unwrap_or_default().to_owned(),
            traffic_type: f
                .traffic_type()
                .map(|t| t.as_str().to_owned())
                .unwrap_or_default(),
        })
        .collect())
}

async fn endpoints(clients: &Clients, vpc: &str) -> Result<Vec<VpcEndpoint>, FunctionError> {
    let endpoints = clients
        .ec2()
        .describe_vpc_endpoints()
        .filters(vpc_filter(vpc))
        .send()
        .await
        .map_err(|e| aws_error("DescribeVpcEndpoints", e))?;
    Ok(endpoints
        .vpc_endpoints()
        .iter()
        .map(|e| VpcEndpoint {
            id: e.vpc_endpoint_id().unwrap_or_default().to_owned(),
            service: e.service_name().unwrap_or_default().to_owned(),
            policy: e
                .policy_document()
                .and_then(parse_returned)
                .unwrap_or(Value::Null),
        })
        .collect())
}

/// Each group with its ingress rules open to the world (`0.0.0.0/0`, `::/0`), as
/// `<protocol> <from>-<to> <cidr>`.
async fn security_groups(
    clients: &Clients,
    vpc: &str,
) -> Result<Vec<SecurityGroup>, FunctionError> {
    let groups = clients
        .ec2()
        .describe_security_groups()
        .filters(vpc_filter(vpc))
        .send()
        .await
        .map_err(|e| aws_error("DescribeSecurityGroups", e))?;
    Ok(groups
        .security_groups()
        .iter()
        .map(|g| SecurityGroup {
            id: g.group_id().unwrap_or_default().to_owned(),
            name: g.group_name().unwrap_or_default().to_owned(),
            open_ingress: g
                .ip_permissions()
                .iter()
                .flat_map(open_to_the_world)
                .collect(),
        })
        .collect())
}

fn open_to_the_world(p: &aws_sdk_ec2::types::IpPermission) -> Vec<String> {
    p.ip_ranges()
        .iter()
        .filter_map(|r| r.cidr_ip())
        .chain(p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6()))
        .filter(|c| *c == "0.0.0.0/0" || *c == "::/0")
        .map(|c| {
            format!(
                "{} {}-{} {c}",
                p.ip_protocol().unwrap_or("-1"),
                p.from_port().unwrap_or(0),
                p.to_port().unwrap_or(65535)
            )
        })
        .collect()
}
