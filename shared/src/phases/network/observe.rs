//! `observe`: the network in AWS compared with the spec, field by field, read-only.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{RouteTable, VpcAttributeName};
use serde_json::{json, Value};

use super::ensure::{
    association_live, ingress_rules, vpc_attribute, wanted_ingress, DEFAULT_ROUTE,
};
use super::lookup::{self, named};
use super::{outputs, Clients, Desired, Produced, Tier};
use crate::error::FunctionError;
use crate::phases::{Drift, PhaseContext, PhaseOutput};
use crate::resources::{log_group, Kind};

/// Compares the network in AWS with the spec, field by field; no writes anywhere.
pub async fn observe(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    d: &Desired,
) -> Result<PhaseOutput, FunctionError> {
    let mut o = Observer {
        ctx,
        c,
        d,
        drift: Vec::new(),
        found: Produced::default(),
        subnet_ids: BTreeMap::new(),
        igw_id: None,
    };
    o.run().await?;
    Ok(ctx.observed(o.found.to_outputs(), o.drift))
}

struct Observer<'r, 'a> {
    ctx: &'r PhaseContext<'a>,
    c: &'r Clients,
    d: &'r Desired,
    drift: Vec<Drift>,
    found: Produced,
    /// Subnet ids by (tier, AZ index), as found.
    subnet_ids: BTreeMap<(Tier, usize), String>,
    /// The internet gateway's id, as found.
    igw_id: Option<String>,
}

impl Observer<'_, '_> {
    fn differ(&mut self, resource: impl Into<String>, field: &str, desired: Value, actual: Value) {
        if desired != actual {
            self.drift
                .push(Drift::new(resource, field, desired, actual));
        }
    }

    fn missing(&mut self, resource: impl Into<String>) {
        self.differ(resource, "exists", json!(true), json!(false));
    }

    async fn run(&mut self) -> Result<(), FunctionError> {
        let platform_id = self.ctx.platform_id().to_owned();
        let vpcs = lookup::vpcs(self.c, &platform_id).await?;
        let name = self.d.name("vpc");
        let Some(vpc) = named(&vpcs, &name, |v| v.tags(), |v| v.vpc_id()).cloned() else {
            self.missing(format!("ec2:vpc/{name}"));
            return Ok(());
        };
        let vpc_id = vpc.vpc_id().unwrap_or_default().to_owned();
        let resource = format!("ec2:vpc/{vpc_id}");
        self.found.vpc_id = Some(vpc_id.clone());
        for (field, attribute) in [
            ("enableDnsSupport", VpcAttributeName::EnableDnsSupport),
            ("enableDnsHostnames", VpcAttributeName::EnableDnsHostnames),
        ] {
            let actual = vpc_attribute(self.c, &vpc_id, attribute).await?;
            self.differ(&resource, field, json!(true), json!(actual));
        }
        if let Some(pod) = self.d.layout.pod_cidr {
            let pod = pod.to_string();
            let associated = vpc
                .cidr_block_association_set()
                .iter()
                .any(|a| a.cidr_block() == Some(pod.as_str()));
            self.differ(
                &resource,
                &format!("secondaryCidr[{pod}]"),
                json!(true),
                json!(associated),
            );
        }
        self.subnets(&platform_id).await?;
        self.gateways(&platform_id, &vpc_id).await?;
        self.route_tables(&platform_id, &vpc_id).await?;
        self.endpoints(&platform_id, &vpc_id).await?;
        self.flow_log(&platform_id, &vpc_id).await
    }

    /// Existence, CIDR and tags of every subnet (EKS discovery tags included).
    async fn subnets(&mut self, platform_id: &str) -> Result<(), FunctionError> {
        let subnets = lookup::subnets(self.c, platform_id).await?;
        for want in self.d.subnets() {
            let Some(s) = named(&subnets, &want.name, |s| s.tags(), |s| s.subnet_id()) else {
                self.missing(format!("ec2:subnet/{}", want.name));
                continue;
            };
            let id = s.subnet_id().unwrap_or_default().to_owned();
            let resource = format!("ec2:subnet/{id}");
            self.differ(
                &resource,
                "cidr",
                json!(want.cidr.to_string()),
                json!(s.cidr_block()),
            );
            let mut tags = self.ctx.tags(super::COMPONENT);
            tags.extend(want.extra_tags.clone());
            for (key, value) in tags {
                let actual = lookup::tag(s.tags(), &key);
                self.differ(
                    &resource,
                    &format!("tags.{key}"),
                    json!(value),
                    json!(actual),
                );
            }
            let az = s.availability_zone().unwrap_or_default().to_owned();
            self.subnet_ids.insert((want.tier, want.index), id.clone());
            match want.tier {
                Tier::Public => {
                    self.found.availability_zones.push(az);
                    self.found.public_subnet_ids.push(id);
                }
                Tier::Private => self.found.private_subnet_ids.push(id),
                Tier::Pods => self.found.pod_subnet_ids.push(id),
            }
        }
        Ok(())
    }

    /// Internet gateway attachment and NAT gateway count.
    async fn gateways(&mut self, platform_id: &str, vpc_id: &str) -> Result<(), FunctionError> {
        let igws = lookup::internet_gateways(self.c, platform_id).await?;
        let name = self.d.name("igw");
        match named(&igws, &name, |g| g.tags(), |g| g.internet_gateway_id()) {
            None => self.missing(format!("ec2:internet-gateway/{name}")),
            Some(g) => {
                self.igw_id = g.internet_gateway_id().map(str::to_owned);
                let attached = g.attachments().iter().any(|a| a.vpc_id() == Some(vpc_id));
                let resource = format!(
                    "ec2:internet-gateway/{}",
                    g.internet_gateway_id().unwrap_or_default()
                );
                self.differ(
                    resource,
                    "attachedTo",
                    json!(vpc_id),
                    json!(attached.then_some(vpc_id)),
                );
            }
        }
        let nats = lookup::live_nat_gateways(self.c, platform_id).await?;
        self.found.nat_gateway_ids = nats
            .iter()
            .filter_map(|n| n.nat_gateway_id().map(str::to_owned))
            .collect();
        self.differ(
            format!("ec2:vpc/{vpc_id}"),
            "natGatewayCount",
            json!(self.d.nat_count()),
            json!(nats.len()),
        );
        Ok(())
    }

    /// The public route table (default route to the internet gateway, the public subnets) and
    /// one private table per AZ (default route to its NAT gateway when the NAT mode gives it one,
    /// none otherwise; the AZ's private and pod subnets).
    async fn route_tables(&mut self, platform_id: &str, vpc_id: &str) -> Result<(), FunctionError> {
        let all: Vec<_> = lookup::route_tables(self.c, vpc_id)
            .await?
            .into_iter()
            .filter(|t| lookup::ours(t.tags(), platform_id))
            .collect();
        let nats = self.found.nat_gateway_ids.clone();
        let mut tables = vec![("public".to_owned(), vec![Tier::Public], None)];
        for i in 0..self.d.az_count {
            tables.push((
                format!("private-{i}"),
                vec![Tier::Private, Tier::Pods],
                Some(i),
            ));
        }
        for (suffix, tiers, az) in tables {
            let name = self.d.name(&suffix);
            let Some(table) = named(&all, &name, |t| t.tags(), |t| t.route_table_id()) else {
                self.missing(format!("ec2:route-table/{name}"));
                continue;
            };
            let resource = format!(
                "ec2:route-table/{}",
                table.route_table_id().unwrap_or_default()
            );
            let (desired, actual) = self.default_route(table, az, &nats);
            self.differ(&resource, "routes.0.0.0.0/0", desired, actual);
            let associated: BTreeSet<&str> = table
                .associations()
                .iter()
                .filter(|a| association_live(a))
                .filter_map(|a| a.subnet_id())
                .collect();
            let wanted = self.associations_wanted(&tiers, az);
            self.differ(
                resource,
                "associations",
                json!(wanted),
                json!(associated.intersection(&wanted).collect::<Vec<_>>()),
            );
        }
        Ok(())
    }

    /// (desired, actual) of a table's default route: the internet gateway for the public table,
    /// a NAT gateway of the platform for AZ `az`'s private one (when the NAT mode gives it one).
    fn default_route(
        &self,
        table: &RouteTable,
        az: Option<usize>,
        nats: &[String],
    ) -> (Value, Value) {
        let route = table
            .routes()
            .iter()
            .find(|r| r.destination_cidr_block() == Some(DEFAULT_ROUTE));
        let Some(i) = az else {
            return (
                json!(self.igw_id),
                json!(route.and_then(|r| r.gateway_id())),
            );
        };
        let actual = route.and_then(|r| r.nat_gateway_id());
        // NAT ids are matched as a set: which NAT serves which AZ is ensure's.
        let wanted = self.d.nat_for_az(i).map(|_| match actual {
            Some(id) if nats.iter().any(|n| n == id) => id.to_owned(),
            _ => "a NAT gateway of the platform".to_owned(),
        });
        (json!(wanted), json!(actual))
    }

    /// The subnets a table should be associated with: those of `tiers`, in AZ `az` only when
    /// given.
    fn associations_wanted(&self, tiers: &[Tier], az: Option<usize>) -> BTreeSet<&str> {
        let azs = (0..self.d.az_count).filter(|i| az.is_none_or(|a| a == *i));
        azs.flat_map(|i| tiers.iter().map(move |tier| (*tier, i)))
            .filter_map(|key| self.subnet_ids.get(&key).map(String::as_str))
            .collect()
    }

    /// Endpoints by name, private DNS, and the security group's HTTPS sources.
    async fn endpoints(&mut self, platform_id: &str, vpc_id: &str) -> Result<(), FunctionError> {
        let endpoints: Vec<_> = lookup::endpoints(self.c, platform_id)
            .await?
            .into_iter()
            .filter(|e| e.vpc_id() == Some(vpc_id) && !lookup::endpoint_gone(e))
            .collect();
        for service in self.d.endpoints.clone() {
            let name = self.d.name(service.as_str());
            let Some(e) = named(&endpoints, &name, |e| e.tags(), |e| e.vpc_endpoint_id()) else {
                self.missing(format!("ec2:vpc-endpoint/{name}"));
                continue;
            };
            let resource = format!(
                "ec2:vpc-endpoint/{}",
                e.vpc_endpoint_id().unwrap_or_default()
            );
            let policy = self.d.endpoint_policy(service);
            if !lookup::endpoint_policy_is(e, &policy) {
                let actual = e
                    .policy_document()
                    .and_then(crate::policies::parse_returned);
                self.differ(resource.clone(), "policyDocument", policy, json!(actual));
            }
            if !service.is_gateway() {
                self.differ(
                    resource,
                    "privateDnsEnabled",
                    json!(true),
                    json!(e.private_dns_enabled()),
                );
            }
        }
        self.endpoint_group(platform_id).await
    }

    /// The endpoints' security group, its HTTPS sources, and no other group of the platform.
    async fn endpoint_group(&mut self, platform_id: &str) -> Result<(), FunctionError> {
        let group_name = self.d.names.security_group("endpoints");
        let groups = lookup::security_groups(self.c, platform_id).await?;
        let wanted: Vec<String> = self
            .d
            .wants_endpoint_group()
            .then(|| group_name.clone())
            .into_iter()
            .collect();
        for g in lookup::stray_groups(&groups, &wanted) {
            let id = g.group_id().unwrap_or_default();
            self.differ(
                format!("ec2:security-group/{id}"),
                "exists",
                json!(false),
                json!(true),
            );
        }
        if !self.d.wants_endpoint_group() {
            return Ok(());
        }
        match groups
            .iter()
            .find(|g| g.group_name() == Some(group_name.as_str()))
        {
            None => self.missing(format!("ec2:security-group/{group_name}")),
            Some(g) => {
                let id = g.group_id().unwrap_or_default().to_owned();
                let have: BTreeSet<String> = ingress_rules(g).into_keys().collect();
                let want = wanted_ingress(&self.d.endpoint_ingress());
                self.differ(
                    format!("ec2:security-group/{id}"),
                    "ingress",
                    json!(want),
                    json!(have),
                );
                self.found.endpoint_security_group_id = Some(id);
            }
        }
        Ok(())
    }

    /// The flow log, and the log group's retention and key.
    async fn flow_log(&mut self, platform_id: &str, vpc_id: &str) -> Result<(), FunctionError> {
        let Some(want) = self.d.flow_logs.clone() else {
            return Ok(());
        };
        let logs = lookup::flow_logs(self.c, platform_id).await?;
        let log = logs.iter().find(|l| l.resource_id() == Some(vpc_id));
        match log {
            None => self.missing(format!("ec2:flow-log/{}", self.d.name("flow-logs"))),
            Some(l) => {
                let resource = format!("ec2:flow-log/{}", l.flow_log_id().unwrap_or_default());
                self.differ(
                    &resource,
                    "logGroupName",
                    json!(want.log_group),
                    json!(l.log_group_name()),
                );
                self.differ(
                    &resource,
                    "trafficType",
                    json!(want.traffic_type),
                    json!(l.traffic_type().map(|t| t.as_str())),
                );
                self.found.flow_log_id = l.flow_log_id().map(str::to_owned);
            }
        }
        let resource = format!("{}/{}", Kind::LogGroup, want.log_group);
        let group = log_group::Desired {
            name: want.log_group.clone(),
            retention_days: want.retention_days,
            kms_key: self.ctx.optional(outputs::LOGS_KEY_ARN)?,
            tags: BTreeMap::new(),
        };
        match log_group::find(&self.c.logs, &group.name).await? {
            None => self.missing(resource),
            Some(live) => {
                for d in group.differences(&live) {
                    self.differ(&resource, d.field, d.desired, d.actual);
                }
            }
        }
        Ok(())
    }
}
