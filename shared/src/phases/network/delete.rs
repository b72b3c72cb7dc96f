//! `delete`: everything the phase created, found by tags, in reverse dependency order.
//!
//! Steps that depend on an earlier step wait for it (NAT gateways must be gone before their
//! Elastic IPs are released and the internet gateway detached, endpoints before their security
//! group and subnets); independent steps proceed in the same invocation. `ready` is false until
//! every step is done; each call makes progress and never sleeps.

use crate::resources::{
    flow_log, internet_gateway, log_group, nat_gateway, route_table, security_group, subnet, vpc,
    vpc_endpoint, Kind,
};
use std::collections::BTreeMap;

use aws_sdk_ec2::types::NatGatewayState;

use super::{removal, Clients, Produced, Removal};
use crate::error::FunctionError;
use crate::phases::{PhaseContext, PhaseOutput};

pub async fn delete(ctx: &mut PhaseContext<'_>, c: &Clients) -> Result<PhaseOutput, FunctionError> {
    let platform_id = ctx.platform_id().to_owned();
    let ready = Delete {
        ctx,
        c,
        platform_id,
    }
    .run()
    .await?;
    let mut cleared = BTreeMap::new();
    if ready {
        ctx.forget_all().await?;
        cleared = Produced::cleared();
    }
    ctx.finish(ready, cleared).await
}

struct Delete<'r, 'a> {
    ctx: &'r mut PhaseContext<'a>,
    c: &'r Clients,
    platform_id: String,
}

impl Delete<'_, '_> {
    async fn run(&mut self) -> Result<bool, FunctionError> {
        self.flow_logs().await?;
        self.log_group().await?;
        let endpoints_gone = self.endpoints().await?;
        let group_gone = endpoints_gone && self.security_groups().await?;
        let nats_gone = self.nat_gateways().await?;
        let addresses_gone = nats_gone && self.addresses().await?;
        let tables_gone = endpoints_gone && self.route_tables().await?;
        let igw_gone = addresses_gone && self.internet_gateways().await?;
        let subnets_gone = nats_gone && endpoints_gone && self.subnets().await?;
        let ready = group_gone && tables_gone && igw_gone && subnets_gone && self.vpcs().await?;
        Ok(ready)
    }

    /// Counts a deletion and forgets the resource unless EC2 refused it; returns whether it is gone.
    async fn settle(
        &mut self,
        outcome: Removal,
        kind: Kind,
        id: &str,
    ) -> Result<bool, FunctionError> {
        match outcome {
            Removal::Blocked => Ok(false),
            Removal::Done | Removal::Gone => {
                self.ctx.forget(kind, id).await?;
                Ok(true)
            }
        }
    }

    async fn flow_logs(&mut self) -> Result<(), FunctionError> {
        let ids: Vec<String> = flow_log::find_platforms(self.c.ec2(), &self.platform_id)
            .await?
            .iter()
            .filter_map(|f| f.flow_log_id().map(str::to_owned))
            .collect();
        flow_log::remove(self.c.ec2(), &ids).await?;
        for id in ids {
            self.ctx.forget(Kind::FlowLog, &id).await?;
        }
        Ok(())
    }

    async fn log_group(&mut self) -> Result<(), FunctionError> {
        let name = self.ctx.names.flow_log_group();
        if log_group::find(self.c.logs(), &name).await?.is_none() {
            return self.ctx.forget(Kind::LogGroup, &name).await;
        }
        let result = self
            .c
            .logs()
            .delete_log_group()
            .log_group_name(&name)
            .send()
            .await;
        let outcome = removal("DeleteLogGroup", result)?;
        self.settle(outcome, Kind::LogGroup, &name).await?;
        Ok(())
    }

    /// Deletes live endpoints; true once none is left (deleting ones included).
    async fn endpoints(&mut self) -> Result<bool, FunctionError> {
        let before = vpc_endpoint::find_all(self.c.ec2(), &self.platform_id).await?;
        let live: Vec<String> = before
            .iter()
            .filter(|e| !vpc_endpoint::gone(e))
            .filter_map(|e| e.vpc_endpoint_id().map(str::to_owned))
            .collect();
        if before.is_empty() {
            return Ok(true);
        }
        vpc_endpoint::remove(self.c.ec2(), &live).await?;
        // Interface endpoints stay `deleting` while their network interfaces go away.
        let after = vpc_endpoint::find_all(self.c.ec2(), &self.platform_id).await?;
        for e in &before {
            let id = e.vpc_endpoint_id().unwrap_or_default();
            if !after.iter().any(|a| a.vpc_endpoint_id() == Some(id)) {
                self.ctx.forget(Kind::VpcEndpoint, id).await?;
            }
        }
        Ok(after.is_empty())
    }

    async fn security_groups(&mut self) -> Result<bool, FunctionError> {
        let groups = security_group::find_all(self.c.ec2(), &self.platform_id).await?;
        let mut gone = true;
        for g in groups.iter().filter(|g| g.group_name() != Some("default")) {
            let id = g.group_id().unwrap_or_default();
            let outcome = security_group::remove(self.c.ec2(), id).await?;
            gone &= self.settle(outcome, Kind::SecurityGroup, id).await?;
        }
        Ok(gone)
    }

    /// Deletes live NAT gateways; true once none is pending, available or deleting.
    async fn nat_gateways(&mut self) -> Result<bool, FunctionError> {
        let ec2 = &self.c.ec2();
        let live = nat_gateway::find_live(ec2, &self.platform_id).await?;
        for n in &live {
            nat_gateway::remove(ec2, n.nat_gateway_id().unwrap_or_default()).await?;
        }
        let states = [
            NatGatewayState::Pending,
            NatGatewayState::Available,
            NatGatewayState::Deleting,
        ];
        // Nothing was live: only `deleting` ones can remain.
        let states = if live.is_empty() {
            &states[2..]
        } else {
            &states[..]
        };
        let remaining = nat_gateway::find_in(ec2, &self.platform_id, states).await?;
        for n in &live {
            let id = n.nat_gateway_id().unwrap_or_default();
            if !remaining.iter().any(|r| r.nat_gateway_id() == Some(id)) {
                self.ctx.forget(Kind::NatGateway, id).await?;
            }
        }
        Ok(remaining.is_empty())
    }

    /// Releases the Elastic IPs; one still in use (its NAT gateway not quite gone) waits.
    async fn addresses(&mut self) -> Result<bool, FunctionError> {
        let addresses = nat_gateway::find_addresses(self.c.ec2(), &self.platform_id).await?;
        let mut gone = true;
        for a in &addresses {
            let id = a.allocation_id().unwrap_or_default();
            let outcome = nat_gateway::release(self.c.ec2(), id).await?;
            gone &= self.settle(outcome, Kind::ElasticIp, id).await?;
        }
        Ok(gone)
    }

    /// Disassociates subnets from the platform's route tables, then deletes the tables.
    async fn route_tables(&mut self) -> Result<bool, FunctionError> {
        let tables = route_table::find_platforms(self.c.ec2(), &self.platform_id).await?;
        let mut gone = true;
        for t in &tables {
            let outcome = route_table::remove(self.c.ec2(), t).await?;
            let id = t.route_table_id().unwrap_or_default();
            gone &= self.settle(outcome, Kind::RouteTable, id).await?;
        }
        Ok(gone)
    }

    /// Detaches the internet gateways, then deletes them.
    async fn internet_gateways(&mut self) -> Result<bool, FunctionError> {
        let igws = internet_gateway::find_all(self.c.ec2(), &self.platform_id).await?;
        let mut gone = true;
        for g in &igws {
            let outcome = internet_gateway::remove(self.c.ec2(), g).await?;
            let id = g.internet_gateway_id().unwrap_or_default();
            gone &= self.settle(outcome, Kind::InternetGateway, id).await?;
        }
        Ok(gone)
    }

    async fn subnets(&mut self) -> Result<bool, FunctionError> {
        let subnets = subnet::find_all(self.c.ec2(), &self.platform_id).await?;
        let mut gone = true;
        for s in &subnets {
            let id = s.subnet_id().unwrap_or_default();
            let outcome = subnet::remove(self.c.ec2(), id).await?;
            gone &= self.settle(outcome, Kind::Subnet, id).await?;
        }
        Ok(gone)
    }

    /// Disassociates secondary CIDRs, then deletes the VPCs.
    async fn vpcs(&mut self) -> Result<bool, FunctionError> {
        let vpcs = vpc::find_all(self.c.ec2(), &self.platform_id).await?;
        let mut gone = true;
        for v in &vpcs {
            let (blocks, outcome) = vpc::remove(self.c.ec2(), v).await?;
            for (association, block) in blocks {
                self.settle(block, Kind::VpcCidrBlock, &association).await?;
            }
            let id = v.vpc_id().unwrap_or_default();
            gone &= self.settle(outcome, Kind::Vpc, id).await?;
        }
        Ok(gone)
    }
}
