//! One walk for `ensure` and `observe`: find each resource, in dependency order, and compare it
//! with the spec. Every difference goes through [`PhaseContext::differs`]: under `ensure` it is
//! repaired (created, corrected or deleted) on the spot; under `observe` it is noted, nothing is
//! written, and a resource that does not exist leaves out what depends on it (a route to a NAT
//! gateway that is not there is compared with the gateway's name, which no route can match).

use crate::resources::route_table::{self, Target};
use crate::resources::{
    flow_log, internet_gateway, log_group, nat_gateway, security_group, subnet, vpc, vpc_endpoint,
    Kind,
};
use crate::spec::VpcEndpointService;
use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{
    Address, AvailabilityZoneState, NatGateway, NatGatewayState, RouteTable, SecurityGroup, Vpc,
    VpcEndpoint,
};
use serde_json::{json, Value};

use super::lookup::{self, named};
use super::{outputs, resource_tags, Clients, Desired, Produced, Removal, Tier};
use crate::error::{ErrorType, FunctionError};
use crate::phases::{aws_error, PhaseContext, PhaseOutput};

/// Converges the network (`ensure`) or reports how it differs (`observe`).
pub async fn converge(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    d: &Desired,
) -> Result<PhaseOutput, FunctionError> {
    Walk {
        ctx,
        c,
        d,
        out: Produced::default(),
        nats: Vec::new(),
        pending_nats: BTreeSet::new(),
    }
    .run()
    .await
}

struct Walk<'r, 'a> {
    ctx: &'r mut PhaseContext<'a>,
    c: &'r Clients,
    d: &'r Desired,
    out: Produced,
    /// The NAT gateways' ids by number (`nat-<i>`); None for one `observe` did not find.
    nats: Vec<Option<String>>,
    /// NAT gateways not `available` yet: no route points at one until it is (a route to a
    /// NAT gateway created a moment ago can fail with `InvalidNatGatewayID.NotFound`).
    pending_nats: BTreeSet<String>,
}

/// Subnet ids by tier and AZ index.
type SubnetIds = BTreeMap<(Tier, usize), String>;

/// A resource as drift names it: `ec2:vpc/vpc-0abc`, or by its `Name` when it does not exist.
fn resource(kind: Kind, id: &str) -> String {
    format!("{kind}/{id}")
}

fn conflict(message: impl Into<String>) -> FunctionError {
    FunctionError::new(ErrorType::Conflict, message)
}

impl Walk<'_, '_> {
    async fn run(mut self) -> Result<PhaseOutput, FunctionError> {
        let azs = self.availability_zones().await?;
        let Some(vpc) = self.vpc().await? else {
            // `observe` only: without the VPC there is nothing else to find.
            return self.ctx.finish(false, self.out.to_outputs()).await;
        };
        let vpc_id = vpc.vpc_id().unwrap_or_default().to_owned();
        self.dns(&vpc_id).await?;
        self.pod_cidr(&vpc).await?;
        let igw = self.internet_gateway(&vpc_id).await?;
        let subnets = self.subnets(&vpc_id, &azs).await?;
        // Read once: what a step creates is wanted, never surplus.
        let nats = nat_gateway::find_live(self.c.ec2(), &self.platform_id()).await?;
        let nats_ready = self.nat_gateways(&nats, &subnets).await?;
        self.out.nat_gateway_ids = self.nats.iter().flatten().cloned().collect();
        let private_tables = self.route_tables(&vpc_id, igw.as_deref(), &subnets).await?;
        // Only once no route points at them.
        let surplus_gone = self.surplus_nat_gateways(&nats).await?;
        let groups = security_group::find_all(self.c.ec2(), &self.platform_id()).await?;
        let group = self.endpoint_group(&groups, &vpc_id).await?;
        let endpoints_ready = self
            .endpoints(&vpc_id, &subnets, &private_tables, group.as_deref())
            .await?;
        // Only once the endpoints that used them are deleted.
        let strays_gone = self.stray_groups(&groups).await?;
        self.out.vpc_id = Some(vpc_id.clone());
        self.out.availability_zones = azs;
        self.out.endpoint_security_group_id = group;
        for ((tier, _), id) in &subnets {
            match tier {
                Tier::Public => self.out.public_subnet_ids.push(id.clone()),
                Tier::Private => self.out.private_subnet_ids.push(id.clone()),
                Tier::Pods => self.out.pod_subnet_ids.push(id.clone()),
            }
        }
        let missing = self.flow_log(&vpc_id).await?;
        let ready =
            nats_ready && surplus_gone && endpoints_ready && strays_gone && missing.is_empty();
        let output = self.ctx.finish(ready, self.out.to_outputs()).await?;
        if !missing.is_empty() {
            return Err(FunctionError::new(
                ErrorType::NotReady,
                format!(
                    "network is in place but its flow log waits for output(s) {missing:?} of the encryption and identity phases"
                ),
            ));
        }
        Ok(output)
    }

    /// Notes that the resource named `name` does not exist; true when it is to be created now.
    fn missing(&mut self, kind: Kind, name: &str) -> bool {
        self.ctx
            .differs(&resource(kind, name), "exists", json!(true), json!(false))
    }

    /// Notes that `id` should not exist; true when it is to be deleted now.
    fn surplus(&mut self, kind: Kind, id: &str) -> bool {
        self.ctx
            .differs(&resource(kind, id), "exists", json!(false), json!(true))
    }

    fn platform_id(&self) -> String {
        self.d.platform_id.clone()
    }

    fn tags(&self, name: &str, extra: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        resource_tags(self.ctx, name, extra)
    }

    async fn record(
        &mut self,
        kind: Kind,
        id: &str,
        name: &str,
        attributes: Value,
    ) -> Result<(), FunctionError> {
        let tags = self.tags(name, &BTreeMap::new());
        let mut attributes = attributes;
        if let Value::Object(map) = &mut attributes {
            map.insert("name".to_owned(), json!(name));
        }
        self.ctx.record_new(kind, id, tags, attributes).await
    }

    /// The first `azCount` available zones of the region, sorted by name.
    async fn availability_zones(&self) -> Result<Vec<String>, FunctionError> {
        let out = self
            .c
            .ec2()
            .describe_availability_zones()
            .send()
            .await
            .map_err(|e| aws_error("DescribeAvailabilityZones", e))?;
        let mut zones: Vec<String> = out
            .availability_zones()
            .iter()
            .filter(|z| z.state() == Some(&AvailabilityZoneState::Available))
            .filter(|z| z.zone_type().is_none_or(|t| t == "availability-zone"))
            .filter_map(|z| z.zone_name().map(str::to_owned))
            .collect();
        zones.sort();
        if zones.len() < self.d.az_count {
            return Err(FunctionError::new(
                ErrorType::InvalidRequest,
                format!(
                    "region {} has {} available zones, the network asks for {}",
                    self.d.region,
                    zones.len(),
                    self.d.az_count
                ),
            ));
        }
        zones.truncate(self.d.az_count);
        Ok(zones)
    }

    /// The VPC; None when `observe` finds none.
    async fn vpc(&mut self) -> Result<Option<Vpc>, FunctionError> {
        let name = self.d.name("vpc");
        let cidr = self.d.layout.vpc.to_string();
        let vpcs = vpc::find_all(self.c.ec2(), &self.platform_id()).await?;
        let live = match named(&vpcs, &name, |v| v.tags(), |v| v.vpc_id()) {
            Some(v) => v.clone(),
            None if !self.missing(Kind::Vpc, &name) => return Ok(None),
            None => {
                let tags = self.tags(&name, &BTreeMap::new());
                vpc::create(self.c.ec2(), &cidr, &tags).await?
            }
        };
        let id = live.vpc_id().unwrap_or_default().to_owned();
        if live.cidr_block() != Some(cidr.as_str())
            && self.ctx.differs(
                &resource(Kind::Vpc, &id),
                "cidr",
                json!(cidr),
                json!(live.cidr_block()),
            )
        {
            return Err(conflict(format!(
                "VPC {id} has CIDR {:?}, the spec asks for {cidr}: a VPC's primary CIDR cannot change",
                live.cidr_block()
            )));
        }
        self.record(Kind::Vpc, &id, &name, json!({ "cidr": cidr }))
            .await?;
        Ok(Some(live))
    }

    /// DNS support, then DNS hostnames (which needs support).
    async fn dns(&mut self, vpc_id: &str) -> Result<(), FunctionError> {
        for (field, attribute) in &vpc::DNS_ATTRIBUTES {
            let on = vpc::dns(self.c.ec2(), vpc_id, attribute).await?;
            let live = resource(Kind::Vpc, vpc_id);
            if !on && self.ctx.differs(&live, field, json!(true), json!(false)) {
                vpc::enable_dns(self.c.ec2(), vpc_id, attribute).await?;
            }
        }
        Ok(())
    }

    /// The pod CIDR, associated with the VPC as a secondary block.
    async fn pod_cidr(&mut self, live: &Vpc) -> Result<(), FunctionError> {
        let Some(pod) = self.d.layout.pod_cidr else {
            return Ok(());
        };
        let pod = pod.to_string();
        let vpc_id = live.vpc_id().unwrap_or_default();
        let field = format!("secondaryCidr[{pod}]");
        let id = match vpc::cidr_association(live, &pod) {
            Some(a) => a.association_id().unwrap_or_default().to_owned(),
            None if !self.ctx.differs(
                &resource(Kind::Vpc, vpc_id),
                &field,
                json!(true),
                json!(false),
            ) =>
            {
                return Ok(())
            }
            None => vpc::associate_cidr(self.c.ec2(), vpc_id, &pod).await?,
        };
        let name = self.d.name("pods");
        let attributes = json!({ "cidr": pod, "vpcId": vpc_id });
        self.record(Kind::VpcCidrBlock, &id, &name, attributes)
            .await
    }

    /// The internet gateway, attached to the VPC; None when `observe` finds none.
    async fn internet_gateway(&mut self, vpc_id: &str) -> Result<Option<String>, FunctionError> {
        let name = self.d.name("igw");
        let igws = internet_gateway::find_all(self.c.ec2(), &self.platform_id()).await?;
        let (id, attached) = match named(&igws, &name, |g| g.tags(), |g| g.internet_gateway_id()) {
            Some(g) => (
                g.internet_gateway_id().unwrap_or_default().to_owned(),
                internet_gateway::attached_to(g, vpc_id),
            ),
            None if !self.missing(Kind::InternetGateway, &name) => return Ok(None),
            None => {
                let tags = self.tags(&name, &BTreeMap::new());
                (internet_gateway::create(self.c.ec2(), &tags).await?, false)
            }
        };
        let attributes = json!({ "vpcId": vpc_id });
        self.record(Kind::InternetGateway, &id, &name, attributes)
            .await?;
        let gateway = resource(Kind::InternetGateway, &id);
        if !attached
            && self
                .ctx
                .differs(&gateway, "attachedTo", json!(vpc_id), Value::Null)
        {
            internet_gateway::attach(self.c.ec2(), &id, vpc_id).await?;
        }
        Ok(Some(id))
    }

    async fn subnets(&mut self, vpc_id: &str, azs: &[String]) -> Result<SubnetIds, FunctionError> {
        let existing = subnet::find_all(self.c.ec2(), &self.platform_id()).await?;
        let mut ids = SubnetIds::new();
        for want in self.d.subnets() {
            let az = azs.get(want.index).cloned().unwrap_or_default();
            let cidr = want.cidr.to_string();
            let at = subnet::Placement {
                vpc_id,
                cidr: &cidr,
                az: &az,
            };
            let tags = self.tags(&want.name, &want.extra_tags);
            let id = match named(&existing, &want.name, |s| s.tags(), |s| s.subnet_id()) {
                Some(s) => {
                    let id = s.subnet_id().unwrap_or_default().to_owned();
                    self.placement(s, &want.name, at)?;
                    self.repair_tags(&id, s.tags(), &tags).await?;
                    id
                }
                None if !self.missing(Kind::Subnet, &want.name) => continue,
                None => {
                    let pods = want.tier == Tier::Pods;
                    subnet::create(self.c.ec2(), at, &tags, pods).await?
                }
            };
            let attributes =
                json!({ "name": want.name, "tier": want.tier.as_str(), "az": az, "cidr": cidr });
            self.ctx
                .record_new(Kind::Subnet, &id, tags, attributes)
                .await?;
            ids.insert((want.tier, want.index), id);
        }
        Ok(ids)
    }

    /// A subnet's VPC, CIDR and zone cannot change: one that differs is a conflict under
    /// `ensure`, and noted field by field under `observe`.
    fn placement(
        &mut self,
        s: &aws_sdk_ec2::types::Subnet,
        name: &str,
        at: subnet::Placement<'_>,
    ) -> Result<(), FunctionError> {
        let id = s.subnet_id().unwrap_or_default();
        let differences = subnet::placement(at, s);
        if self
            .ctx
            .repairs(&resource(Kind::Subnet, id), differences)
            .is_empty()
        {
            return Ok(());
        }
        let subnet::Placement { vpc_id, cidr, az } = at;
        Err(conflict(format!(
            "subnet {id} ({name}) is {:?} in {:?} of {:?}; the spec asks for {cidr} in {az} of {vpc_id}",
            s.cidr_block(),
            s.availability_zone(),
            s.vpc_id()
        )))
    }

    /// Adds or corrects tags that are missing or differ (e.g. EKS discovery tags removed by
    /// hand). Unknown extra tags are left alone.
    async fn repair_tags(
        &mut self,
        id: &str,
        have: &[aws_sdk_ec2::types::Tag],
        want: &BTreeMap<String, String>,
    ) -> Result<(), FunctionError> {
        let live = resource(Kind::Subnet, id);
        let mut wrong = BTreeMap::new();
        for (key, value) in want {
            let actual = lookup::tag(have, key);
            let field = format!("tags.{key}");
            if actual != Some(value.as_str())
                && self.ctx.differs(&live, &field, json!(value), json!(actual))
            {
                wrong.insert(key.clone(), value.clone());
            }
        }
        subnet::tag(self.c.ec2(), id, &wrong).await
    }

    /// NAT gateways (with their Elastic IPs) in the first public subnets, into `self.nats`.
    /// Returns whether all are available.
    async fn nat_gateways(
        &mut self,
        nats: &[NatGateway],
        subnets: &SubnetIds,
    ) -> Result<bool, FunctionError> {
        let count = self.d.nat_count();
        if count == 0 {
            return Ok(true);
        }
        let mut addresses: Option<Vec<Address>> = None;
        let mut ready = true;
        for i in 0..count {
            let name = self.d.name(&format!("nat-{i}"));
            let subnet = subnets.get(&(Tier::Public, i)).cloned().unwrap_or_default();
            let (id, allocation, state) =
                match named(nats, &name, |n| n.tags(), |n| n.nat_gateway_id()) {
                    Some(n) => (
                        n.nat_gateway_id().unwrap_or_default().to_owned(),
                        nat_gateway::allocation_of(n).map(str::to_owned),
                        n.state().cloned(),
                    ),
                    None if !self.missing(Kind::NatGateway, &name) => {
                        self.nats.push(None);
                        continue;
                    }
                    None => {
                        let allocation = self.elastic_ip(&name, &mut addresses).await?;
                        let tags = self.tags(&name, &BTreeMap::new());
                        let ec2 = &self.c.ec2();
                        let (id, state) =
                            nat_gateway::create(ec2, &subnet, &allocation, &tags).await?;
                        (id, Some(allocation), state)
                    }
                };
            if let Some(allocation) = allocation {
                self.record(
                    Kind::ElasticIp,
                    &allocation,
                    &name,
                    json!({ "natGateway": i }),
                )
                .await?;
            }
            self.record(Kind::NatGateway, &id, &name, json!({ "subnetId": subnet }))
                .await?;
            if state != Some(NatGatewayState::Available) {
                ready = false;
                self.pending_nats.insert(id.clone());
            }
            self.nats.push(Some(id));
        }
        Ok(ready)
    }

    /// The Elastic IP named `name` (allocated now if missing); `cache` holds the platform's
    /// addresses, read on first need.
    async fn elastic_ip(
        &mut self,
        name: &str,
        cache: &mut Option<Vec<Address>>,
    ) -> Result<String, FunctionError> {
        if cache.is_none() {
            *cache = Some(nat_gateway::find_addresses(self.c.ec2(), &self.platform_id()).await?);
        }
        let found = cache.as_deref().and_then(|list| {
            named(list, name, |a| a.tags(), |a| a.allocation_id())
                .and_then(|a| a.allocation_id())
                .map(str::to_owned)
        });
        if let Some(id) = found {
            return Ok(id);
        }
        let tags = self.tags(name, &BTreeMap::new());
        let id = nat_gateway::allocate(self.c.ec2(), &tags).await?;
        // Record before the NAT gateway exists, so a crash in between leaves it inventoried.
        self.record(Kind::ElasticIp, &id, name, json!({})).await?;
        Ok(id)
    }

    /// The public route table and one private route table per AZ, their default routes and
    /// subnet associations. Returns the private route table ids by AZ.
    /// (`igw`: None when `observe` found no internet gateway.)
    async fn route_tables(
        &mut self,
        vpc_id: &str,
        igw: Option<&str>,
        subnets: &SubnetIds,
    ) -> Result<Vec<String>, FunctionError> {
        let all = route_table::find_in_vpc(self.c.ec2(), vpc_id).await?;
        // A gateway `observe` did not find is named by its `Name`, which no route can match.
        let igw_name = self.d.name("igw");
        if let Some(public) = self.route_table(&all, vpc_id, "public").await? {
            let igw = Target::Gateway(igw.unwrap_or(&igw_name));
            self.default_route(&public, Some(igw)).await?;
            for i in 0..self.d.az_count {
                if let Some(subnet) = subnets.get(&(Tier::Public, i)) {
                    self.association(&all, &public, subnet).await?;
                }
            }
        }
        let mut private = Vec::new();
        for i in 0..self.d.az_count {
            let suffix = format!("private-{i}");
            let Some(table) = self.route_table(&all, vpc_id, &suffix).await? else {
                continue;
            };
            let nat = self.d.nat_for_az(i).map(|n| {
                let id = self.nats.get(n).cloned().flatten();
                id.unwrap_or_else(|| self.d.name(&format!("nat-{n}")))
            });
            // A pending NAT gateway gets its routes from the `ensure` that finds it available
            // (the provision polls the network until it is ready, before any node starts).
            if !nat.as_ref().is_some_and(|n| self.pending_nats.contains(n)) {
                self.default_route(&table, nat.as_deref().map(Target::Nat))
                    .await?;
            }
            for tier in [Tier::Private, Tier::Pods] {
                if let Some(subnet) = subnets.get(&(tier, i)) {
                    self.association(&all, &table, subnet).await?;
                }
            }
            private.push(table.route_table_id().unwrap_or_default().to_owned());
        }
        Ok(private)
    }

    /// The route table named `suffix`; None when `observe` finds none.
    async fn route_table(
        &mut self,
        all: &[RouteTable],
        vpc_id: &str,
        suffix: &str,
    ) -> Result<Option<RouteTable>, FunctionError> {
        let name = self.d.name(suffix);
        let platform_id = self.platform_id();
        let ours: Vec<RouteTable> = all
            .iter()
            .filter(|t| lookup::ours(t.tags(), &platform_id))
            .cloned()
            .collect();
        let table = match named(&ours, &name, |t| t.tags(), |t| t.route_table_id()) {
            Some(t) => t.clone(),
            None if !self.missing(Kind::RouteTable, &name) => return Ok(None),
            None => {
                let tags = self.tags(&name, &BTreeMap::new());
                route_table::create(self.c.ec2(), vpc_id, &tags).await?
            }
        };
        let id = table.route_table_id().unwrap_or_default().to_owned();
        self.record(Kind::RouteTable, &id, &name, json!({ "vpcId": vpc_id }))
            .await?;
        Ok(Some(table))
    }

    /// Makes the table's `0.0.0.0/0` route point at `target` (or removes it for `None`).
    async fn default_route(
        &mut self,
        table: &RouteTable,
        target: Option<Target<'_>>,
    ) -> Result<(), FunctionError> {
        let table_id = table.route_table_id().unwrap_or_default();
        let current = route_table::default_route(table);
        let as_wanted = match (current, target) {
            (None, None) => true,
            (Some(r), Some(t)) => t.matches(r),
            _ => false,
        };
        let desired = target.map(Target::id);
        let actual = current.and_then(route_table::route_target);
        let field = format!("routes.{}", route_table::DEFAULT_ROUTE);
        let resource = resource(Kind::RouteTable, table_id);
        if as_wanted
            || !self
                .ctx
                .differs(&resource, &field, json!(desired), json!(actual))
        {
            return Ok(());
        }
        route_table::set_default_route(self.c.ec2(), table_id, current.is_some(), target).await
    }

    /// Associates `subnet` with `table`, moving it from another table if needed.
    async fn association(
        &mut self,
        all: &[RouteTable],
        table: &RouteTable,
        subnet: &str,
    ) -> Result<(), FunctionError> {
        let table_id = table.route_table_id().unwrap_or_default();
        let current = route_table::association_of(all, subnet);
        let actual = current.and_then(|(t, _)| t);
        if actual == Some(table_id) {
            return Ok(());
        }
        let field = format!("associations[{subnet}]");
        let resource = resource(Kind::RouteTable, table_id);
        if !self
            .ctx
            .differs(&resource, &field, json!(table_id), json!(actual))
        {
            return Ok(());
        }
        let association = current.and_then(|(_, a)| a);
        route_table::associate(self.c.ec2(), table_id, subnet, association).await
    }

    /// Deletes the security groups tagged as the platform's that it does not want
    /// ([`security_group::strays`]), after the endpoints that used them. One still in use
    /// (`DependencyViolation`) stays and holds readiness; a drift check reports it until it goes.
    async fn stray_groups(&mut self, groups: &[SecurityGroup]) -> Result<bool, FunctionError> {
        let wanted: Vec<String> = self
            .d
            .wants_endpoint_group()
            .then(|| self.d.names.security_group("endpoints"))
            .into_iter()
            .collect();
        let mut gone = true;
        for g in security_group::strays(groups, &wanted) {
            let id = g.group_id().unwrap_or_default();
            if !self.surplus(Kind::SecurityGroup, id) {
                continue;
            }
            if security_group::remove(self.c.ec2(), id).await? == Removal::Blocked {
                tracing::warn!(group = id, "a security group tagged as the platform's but not wanted is still in use; not ready until it goes");
                gone = false;
            }
        }
        Ok(gone)
    }

    /// NAT gateways beyond the spec's count (the NAT mode or the zones changed), then their
    /// Elastic IPs once the gateways no longer hold them. True when none is left.
    async fn surplus_nat_gateways(&mut self, nats: &[NatGateway]) -> Result<bool, FunctionError> {
        let wanted: BTreeSet<String> = (0..self.d.nat_count())
            .map(|i| self.d.name(&format!("nat-{i}")))
            .collect();
        let surplus = |tags: &[aws_sdk_ec2::types::Tag]| {
            lookup::name(tags).is_none_or(|name| !wanted.contains(name))
        };
        let platform = self.platform_id();
        let mut doomed = Vec::new();
        for n in nats.iter().filter(|n| surplus(n.tags())) {
            let id = n.nat_gateway_id().unwrap_or_default();
            if self.surplus(Kind::NatGateway, id) {
                doomed.push(id.to_owned());
            }
        }
        for id in &doomed {
            nat_gateway::remove(self.c.ec2(), id).await?;
            self.ctx.forget(Kind::NatGateway, id).await?;
        }
        let mut gone = doomed.is_empty();
        let addresses = nat_gateway::find_addresses(self.c.ec2(), &platform).await?;
        for a in addresses.iter().filter(|a| surplus(a.tags())) {
            let id = a.allocation_id().unwrap_or_default();
            if !self.surplus(Kind::ElasticIp, id) {
                continue;
            }
            match nat_gateway::release(self.c.ec2(), id).await? {
                // Its NAT gateway is still being deleted: released by a later ensure.
                Removal::Blocked => gone = false,
                Removal::Done | Removal::Gone => self.ctx.forget(Kind::ElasticIp, id).await?,
            }
        }
        Ok(gone)
    }

    /// The interface endpoints' security group: HTTPS from the VPC and pod CIDRs, and no other
    /// rule. None when it is not wanted, or when `observe` finds none.
    async fn endpoint_group(
        &mut self,
        groups: &[SecurityGroup],
        vpc_id: &str,
    ) -> Result<Option<String>, FunctionError> {
        if !self.d.wants_endpoint_group() {
            return Ok(None);
        }
        let name = self.d.names.security_group("endpoints");
        let found = groups
            .iter()
            .find(|g| g.group_name() == Some(name.as_str()) && g.vpc_id() == Some(vpc_id));
        let id = match found {
            Some(g) => g.group_id().unwrap_or_default().to_owned(),
            None if !self.missing(Kind::SecurityGroup, &name) => return Ok(None),
            None => {
                let stem = self.d.names.stem();
                let description = format!("Tenantry {stem}: HTTPS to the VPC interface endpoints");
                let tags = self.tags(&name, &BTreeMap::new());
                security_group::create(self.c.ec2(), vpc_id, &name, &description, &tags).await?
            }
        };
        let attributes = json!({ "vpcId": vpc_id });
        self.record(Kind::SecurityGroup, &id, &name, attributes)
            .await?;
        let have = found.map(security_group::ingress_rules).unwrap_or_default();
        let cidrs = self.d.endpoint_ingress();
        let want = security_group::https_from(&cidrs);
        let rules: BTreeSet<&String> = have.keys().collect();
        let group = resource(Kind::SecurityGroup, &id);
        if rules == want.iter().collect()
            || !self
                .ctx
                .differs(&group, "ingress", json!(want), json!(rules))
        {
            return Ok(Some(id));
        }
        let missing: Vec<String> = cidrs
            .into_iter()
            .filter(|c| !have.contains_key(&security_group::https_rule(c)))
            .collect();
        let ec2 = &self.c.ec2();
        security_group::authorize_https(ec2, &id, &missing, "HTTPS to VPC endpoints").await?;
        // The group is Tenantry's alone: any other rule (someone opening it to 0.0.0.0/0) goes.
        for (_, permission) in have.iter().filter(|(rule, _)| !want.contains(*rule)) {
            security_group::revoke(ec2, &id, permission).await?;
        }
        Ok(Some(id))
    }

    /// VPC endpoints: created, corrected, or (when no longer asked for) deleted. Returns
    /// whether all are available.
    async fn endpoints(
        &mut self,
        vpc_id: &str,
        subnets: &SubnetIds,
        private_tables: &[String],
        group: Option<&str>,
    ) -> Result<bool, FunctionError> {
        let existing: Vec<_> = vpc_endpoint::find_all(self.c.ec2(), &self.platform_id())
            .await?
            .into_iter()
            .filter(|e| e.vpc_id() == Some(vpc_id) && !vpc_endpoint::gone(e))
            .collect();
        let private_subnets: Vec<String> = (0..self.d.az_count)
            .filter_map(|i| subnets.get(&(Tier::Private, i)).cloned())
            .collect();
        let mut ready = true;
        let mut wanted = BTreeSet::new();
        for service in self.d.endpoints.clone() {
            let name = self.d.name(service.as_str());
            wanted.insert(name.clone());
            let want = self.endpoint(service, &private_subnets, private_tables, group);
            let found = named(&existing, &name, |e| e.tags(), |e| e.vpc_endpoint_id());
            let (id, available) = match found {
                Some(e) => {
                    let id = e.vpc_endpoint_id().unwrap_or_default().to_owned();
                    let endpoint = resource(Kind::VpcEndpoint, &id);
                    let fields = self.ctx.repairs(&endpoint, want.differences(e));
                    vpc_endpoint::update(self.c.ec2(), e, &want, &fields).await?;
                    (id, vpc_endpoint::available(e))
                }
                None if !self.missing(Kind::VpcEndpoint, &name) => continue,
                None => vpc_endpoint::create(self.c.ec2(), vpc_id, &want).await?,
            };
            ready &= available;
            self.record(
                Kind::VpcEndpoint,
                &id,
                &name,
                json!({ "service": service.as_str(), "vpcId": vpc_id }),
            )
            .await?;
        }
        self.remove_surplus_endpoints(&existing, &wanted).await?;
        Ok(ready)
    }

    /// What the endpoint of `service` should be: a gateway endpoint in the private route tables
    /// (S3), or an interface endpoint in the private subnets behind the endpoints' group.
    fn endpoint(
        &self,
        service: VpcEndpointService,
        private_subnets: &[String],
        private_tables: &[String],
        group: Option<&str>,
    ) -> vpc_endpoint::Desired {
        let gateway = service.is_gateway();
        let pick = |list: &[String], wanted: bool| if wanted { list.to_vec() } else { vec![] };
        vpc_endpoint::Desired {
            service_name: self.d.service_name(service),
            gateway,
            subnets: pick(private_subnets, !gateway),
            tables: pick(private_tables, gateway),
            group: group.filter(|_| !gateway).map(str::to_owned),
            policy: self.d.endpoint_policy(service),
            tags: self.tags(&self.d.name(service.as_str()), &BTreeMap::new()),
        }
    }

    /// Deletes the platform's endpoints whose names the spec no longer lists.
    async fn remove_surplus_endpoints(
        &mut self,
        existing: &[VpcEndpoint],
        wanted: &BTreeSet<String>,
    ) -> Result<(), FunctionError> {
        let mut surplus = Vec::new();
        for e in existing {
            let id = e.vpc_endpoint_id().unwrap_or_default();
            if lookup::name(e.tags()).is_none_or(|n| !wanted.contains(n))
                && self.surplus(Kind::VpcEndpoint, id)
            {
                surplus.push(id.to_owned());
            }
        }
        vpc_endpoint::remove(self.c.ec2(), &surplus).await?;
        for id in surplus {
            self.ctx.forget(Kind::VpcEndpoint, &id).await?;
        }
        Ok(())
    }

    /// The encrypted log group and the VPC's flow log. Returns the names of the outputs of other
    /// phases it still waits for (empty when done or when flow logs are off).
    async fn flow_log(&mut self, vpc_id: &str) -> Result<Vec<&'static str>, FunctionError> {
        let Some(want) = self.d.flow_logs.clone() else {
            self.remove_flow_logs(vpc_id, None).await?;
            return Ok(Vec::new());
        };
        let key = self.ctx.optional(outputs::LOGS_KEY_ARN)?;
        let role = self.ctx.optional(outputs::FLOW_LOGS_ROLE_ARN)?;
        let missing = [
            (outputs::LOGS_KEY_ARN.key, key.is_none()),
            (outputs::FLOW_LOGS_ROLE_ARN.key, role.is_none()),
        ];
        let (Some(key), Some(role)) = (key, role) else {
            return Ok(missing
                .into_iter()
                .filter(|(_, m)| *m)
                .map(|(k, _)| k)
                .collect());
        };
        self.log_group(&want.log_group, want.retention_days, &key)
            .await?;
        let name = self.d.name("flow-logs");
        let desired = flow_log::Desired {
            tags: self.tags(&name, &BTreeMap::new()),
            name: name.clone(),
            log_group: want.log_group.clone(),
            traffic_type: want.traffic_type.clone(),
            role,
        };
        let (current, replaced) = self.remove_flow_logs(vpc_id, Some(&desired)).await?;
        let id = match current {
            Some(id) => id,
            // `observe` noted how the log it found differs: its replacement goes without saying.
            None if replaced && !self.ctx.writes() => return Ok(Vec::new()),
            None if !self.missing(Kind::FlowLog, &name) => return Ok(Vec::new()),
            None => flow_log::create(self.c.ec2(), vpc_id, &desired).await?,
        };
        self.record(
            Kind::FlowLog,
            &id,
            &name,
            json!({ "vpcId": vpc_id, "logGroup": want.log_group }),
        )
        .await?;
        self.out.flow_log_id = Some(id);
        Ok(Vec::new())
    }

    /// Deletes the platform's flow logs of the VPC but the first one that is as `desired` (none
    /// with flow logs off). Returns the id of the one kept, and whether any other was found
    /// (deleted under `ensure`; under `observe` how it differs is noted: field by field, or as
    /// one that should not exist).
    async fn remove_flow_logs(
        &mut self,
        vpc_id: &str,
        desired: Option<&flow_log::Desired>,
    ) -> Result<(Option<String>, bool), FunctionError> {
        let logs = flow_log::find_all(self.c.ec2(), &self.platform_id(), vpc_id).await?;
        let mut kept = None;
        let mut found_other = false;
        let mut remove = Vec::new();
        for log in &logs {
            let id = log.flow_log_id().unwrap_or_default().to_owned();
            let differences = desired.map(|d| d.differences(log)).unwrap_or_default();
            if kept.is_none() && desired.is_some() && differences.is_empty() {
                kept = Some(id);
                continue;
            }
            found_other = true;
            let repair = match differences.is_empty() {
                // Flow logs off, or a second one as desired.
                true => self.surplus(Kind::FlowLog, &id),
                false => {
                    let fields = self.ctx.repairs(&resource(Kind::FlowLog, &id), differences);
                    !fields.is_empty()
                }
            };
            if repair {
                remove.push(id);
            }
        }
        flow_log::remove(self.c.ec2(), &remove).await?;
        for id in remove {
            self.ctx.forget(Kind::FlowLog, &id).await?;
        }
        Ok((kept, found_other))
    }

    /// The flow log group: KMS key and retention as specified.
    async fn log_group(
        &mut self,
        name: &str,
        retention: i32,
        key: &str,
    ) -> Result<(), FunctionError> {
        let want = log_group::Desired {
            name: name.to_owned(),
            retention_days: retention,
            kms_key: Some(key.to_owned()),
            tags: self.tags(name, &BTreeMap::new()),
        };
        let found = log_group::find(self.c.logs(), name).await?;
        let logs = &self.c.logs();
        let Some(live) = log_group::found_or_created(self.ctx, logs, &want, found).await? else {
            return Ok(());
        };
        self.record(Kind::LogGroup, name, name, json!({ "kmsKeyId": key }))
            .await?;
        log_group::repair_differences(self.ctx, logs, &want, &live).await
    }
}
