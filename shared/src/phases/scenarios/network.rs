//! The network phase: the platform's VPC (DNS on, the pod CIDR associated), a public, a private
//! and a pod subnet per AZ, the internet gateway, a NAT gateway per AZ with its Elastic IP, the
//! route tables, the VPC endpoints behind their security group, and the flow log to its
//! encrypted log group. EC2 is the model of [`super::ec2::Network`], CloudWatch Logs the log
//! groups of [`super::logs`].

use std::cell::Cell;
use std::collections::BTreeMap;

use aws_sdk_ec2::operation::{
    authorize_security_group_ingress::AuthorizeSecurityGroupIngressInput,
    delete_nat_gateway::DeleteNatGatewayInput, delete_route::DeleteRouteInput,
    modify_vpc_attribute::ModifyVpcAttributeInput, modify_vpc_endpoint::ModifyVpcEndpointInput,
    replace_route_table_association::ReplaceRouteTableAssociationInput,
};
use aws_sdk_ec2::types::{
    AttributeBooleanValue, IpPermission, IpRange, NatGatewayState, Route, Subnet, Tag,
};
use aws_smithy_mocks::Rule;
use serde_json::{json, Value};

use super::ec2::{network::fail, Ec2Double, Network};
use super::logs::LogsDouble;
use super::{context, drift_fields, Calls, Rules, Stage};
use crate::deps::Deps;
use crate::error::{ErrorType, FunctionError};
use crate::naming::{self, Names};
use crate::phases::network::lookup::{name, ours, tag};
use crate::phases::{network, Action, PhaseOutput};
use crate::plan::Phase;
use crate::resources::Kind;
use crate::spec::{NatMode, VpcEndpointService};

const LOGS_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/logs";
const FLOW_LOGS_ROLE: &str = "arn:aws:iam::123456789012:role/tenantry-payments-prod-flow-logs";
const PLATFORM: &str = "payments";
const DEFAULT_ROUTE: &str = "0.0.0.0/0";

/// The example's subnets as `(Name, CIDR, AZ)`: /20s of the VPC for the public and private
/// tiers, /18s of the pod CIDR for the pods.
const SUBNETS: [(&str, &str, &str); 9] = [
    ("payments-prod-pods-0", "100.64.0.0/18", "us-east-1a"),
    ("payments-prod-pods-1", "100.64.64.0/18", "us-east-1b"),
    ("payments-prod-pods-2", "100.64.128.0/18", "us-east-1c"),
    ("payments-prod-private-0", "10.0.128.0/20", "us-east-1a"),
    ("payments-prod-private-1", "10.0.144.0/20", "us-east-1b"),
    ("payments-prod-private-2", "10.0.160.0/20", "us-east-1c"),
    ("payments-prod-public-0", "10.0.0.0/20", "us-east-1a"),
    ("payments-prod-public-1", "10.0.16.0/20", "us-east-1b"),
    ("payments-prod-public-2", "10.0.32.0/20", "us-east-1c"),
];

/// The network phase of the example platform among the EC2 and CloudWatch Logs doubles.
struct World {
    s: Stage,
    ec2: Ec2Double,
    logs: LogsDouble,
    /// Whether encryption and identity have recorded the flow log's key and role.
    inputs: Cell<bool>,
}

impl World {
    fn new() -> World {
        let calls = Calls::default();
        let ec2 = Ec2Double::new(&calls);
        let logs = LogsDouble::new(&calls);
        let rules = Rules {
            ec2: ec2.rules(),
            logs: logs.rules(),
            ..Rules::default()
        };
        World {
            s: Stage::new(Phase::Network, &calls, rules, &[]),
            ec2,
            logs,
            inputs: Cell::new(true),
        }
    }

    /// A world whose network is in place and available.
    async fn converged() -> World {
        let w = World::new();
        w.converge().await;
        w
    }

    /// Dependencies whose EC2 answers from `first` before the model (a crash at that call).
    fn crashing_at(&self, first: Rule) -> Deps {
        let mut ec2 = vec![first];
        ec2.extend(self.ec2.rules());
        let rules = Rules {
            ec2,
            logs: self.logs.rules(),
            dynamodb: self.s.store.rules(),
            ..Rules::default()
        };
        rules.deps()
    }

    /// One action on `deps`, with the outputs of encryption and identity recorded when
    /// `inputs` says so; the call log is cleared first.
    async fn try_run_on(&self, deps: &Deps, action: Action) -> Result<PhaseOutput, FunctionError> {
        self.s.calls.clear();
        let mut ctx = context(deps, Phase::Network, action, &self.s.spec).await?;
        if self.inputs.get() {
            let inputs = [
                ("logsKeyArn", LOGS_KEY),
                ("flowLogsRoleArn", FLOW_LOGS_ROLE),
            ];
            ctx.status
                .outputs
                .extend(inputs.map(|(k, v)| (k.to_owned(), json!(v))));
        }
        network::run(ctx).await
    }

    async fn run(&self, action: Action) -> PhaseOutput {
        self.try_run_on(&self.s.deps, action)
            .await
            .unwrap_or_else(|e| panic!("network {action:?}: {e}"))
    }

    async fn run_err(&self, action: Action) -> FunctionError {
        self.try_run_on(&self.s.deps, action)
            .await
            .expect_err("the action fails")
    }

    /// `action` until ready, time passing between rounds; the AWS writes of every round.
    async fn until_ready(&self, action: Action) -> Vec<Vec<String>> {
        let mut rounds = Vec::new();
        for _ in 0..5 {
            let out = self.run(action).await;
            rounds.push(self.s.calls.mutating_aws());
            if out.ready {
                return rounds;
            }
            self.ec2.settle();
        }
        panic!("network {action:?} not ready after 5 rounds: {rounds:?}");
    }

    async fn converge(&self) -> Vec<Vec<String>> {
        self.until_ready(Action::Ensure).await
    }

    fn name(&self, suffix: &str) -> String {
        Names::new(&self.s.spec).name_tag(suffix)
    }

    fn net(&self) -> Network {
        self.ec2.network()
    }

    /// Whether the inventory records `id` (of any kind).
    fn recorded(&self, id: &str) -> bool {
        self.s.store.inventory().iter().any(|(_, i)| i == id)
    }

    /// Forgets every inventory record, as if the runs that made them had not recorded them.
    fn forget_inventory(&self) {
        for (kind, id) in self.s.store.inventory() {
            let kind = Kind::parse(&kind).expect("kind");
            self.s.store.forget(PLATFORM, kind, &id);
        }
    }
}

/// Tags of another platform's resource, named as ours would be.
fn foreign_tags(name: &str) -> Vec<Tag> {
    let tags = BTreeMap::from([
        (naming::TAG_PLATFORM.to_owned(), "ledger".to_owned()),
        ("Name".to_owned(), name.to_owned()),
    ]);
    network::ec2_tags(&tags)
}

/// Ids of the platform's items in `items`.
fn our_ids<T>(items: &BTreeMap<String, T>, tags: impl Fn(&T) -> &[Tag]) -> Vec<String> {
    items
        .iter()
        .filter(|(_, item)| ours(tags(item), PLATFORM))
        .map(|(id, _)| id.clone())
        .collect()
}

/// The id of the platform's item named `wanted`.
fn named_id<T>(items: &BTreeMap<String, T>, wanted: &str, tags: impl Fn(&T) -> &[Tag]) -> String {
    let found = items
        .iter()
        .find(|(_, i)| ours(tags(i), PLATFORM) && name(tags(i)) == Some(wanted));
    found
        .unwrap_or_else(|| panic!("{wanted} not found"))
        .0
        .clone()
}

/// How many calls of each operation.
fn counts(calls: &[String]) -> BTreeMap<&str, usize> {
    let mut out = BTreeMap::new();
    for call in calls {
        *out.entry(call.as_str()).or_default() += 1;
    }
    out
}

fn default_route(n: &Network, table: &str) -> Option<Route> {
    n.tables[table]
        .routes()
        .iter()
        .find(|r| r.destination_cidr_block() == Some(DEFAULT_ROUTE))
        .cloned()
}

/// The `Name`s of the subnets associated with `table`, sorted.
fn associated_names(n: &Network, table: &str) -> Vec<String> {
    let mut names: Vec<String> = n.tables[table]
        .associations()
        .iter()
        .filter_map(|a| n.subnets.get(a.subnet_id()?))
        .filter_map(|s: &Subnet| name(s.tags()).map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// The mutating calls of a fresh ensure: everything created, DNS hostnames turned on (DNS
/// support is on by default), the log group's retention set after its creation; of the default
/// routes only the public table's: the private tables' wait for their NAT gateways, `pending`.
fn fresh_calls() -> BTreeMap<&'static str, usize> {
    BTreeMap::from([
        ("ec2:AllocateAddress", 3),
        ("ec2:AssociateRouteTable", 9),
        ("ec2:AssociateVpcCidrBlock", 1),
        ("ec2:AttachInternetGateway", 1),
        ("ec2:AuthorizeSecurityGroupIngress", 1),
        ("ec2:CreateFlowLogs", 1),
        ("ec2:CreateInternetGateway", 1),
        ("ec2:CreateNatGateway", 3),
        ("ec2:CreateRoute", 1),
        ("ec2:CreateRouteTable", 4),
        ("ec2:CreateSecurityGroup", 1),
        ("ec2:CreateSubnet", 9),
        ("ec2:CreateVpc", 1),
        ("ec2:CreateVpcEndpoint", 6),
        ("ec2:ModifyVpcAttribute", 1),
        ("logs:CreateLogGroup", 1),
        ("logs:PutRetentionPolicy", 1),
    ])
}

#[tokio::test]
async fn fresh_platform_gets_its_vpc_subnets_gateways_routes_endpoints_and_flow_log() {
    let w = World::new();
    let first = w.run(Action::Ensure).await;
    assert!(
        !first.ready,
        "NAT gateways and interface endpoints are pending"
    );
    assert_eq!(counts(&w.s.calls.mutating_aws()), fresh_calls());
    assert_eq!(first.changes as usize, w.s.calls.mutating_aws().len());
    assert!(!w.run(Action::Ensure).await.ready, "still pending");
    assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new());

    w.ec2.settle();
    assert!(w.run(Action::Ensure).await.ready);
    assert_eq!(
        counts(&w.s.calls.mutating_aws()),
        BTreeMap::from([("ec2:CreateRoute", 3)]),
        "the private tables' routes, once their NAT gateways are available"
    );
    let out = w.run(Action::Ensure).await;
    assert!(out.ready);
    assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new());

    let n = w.net();
    let vpc = assert_vpc(&w, &n);
    assert_subnets(&n, &vpc);
    assert_gateways_and_routes(&w, &n, &vpc);
    assert_endpoints(&w, &n);
    assert_flow_log(&w, &n, &vpc);
    assert_outputs(&n, &out, &vpc);
    for (kind, id) in [
        (Kind::Vpc, &vpc),
        (Kind::LogGroup, &Names::new(&w.s.spec).flow_log_group()),
    ] {
        assert!(w.s.recorded(kind, id), "{id} recorded");
    }
    for id in n
        .nats
        .keys()
        .chain(n.subnets.keys())
        .chain(n.addresses.keys())
    {
        assert!(w.recorded(id), "{id} recorded");
    }
}

/// One VPC with the spec's CIDR, DNS support and hostnames on, and the pod CIDR associated.
fn assert_vpc(w: &World, n: &Network) -> String {
    let vpcs = our_ids(&n.vpcs, |v| v.tags());
    assert_eq!(vpcs.len(), 1, "{vpcs:?}");
    let vpc = &n.vpcs[&vpcs[0]];
    assert_eq!(name(vpc.tags()), Some(w.name("vpc").as_str()));
    assert_eq!(vpc.cidr_block(), Some("10.0.0.0/16"));
    let cidrs: Vec<_> = vpc
        .cidr_block_association_set()
        .iter()
        .filter_map(|a| a.cidr_block())
        .collect();
    assert_eq!(cidrs, ["10.0.0.0/16", "100.64.0.0/16"]);
    let dns = n.dns[&vpcs[0]];
    assert!(dns.support && dns.hostnames, "{dns:?}");
    vpcs[0].clone()
}

/// Nine subnets in the VPC, three per tier in the first three AZs, with the EKS discovery tags.
fn assert_subnets(n: &Network, vpc: &str) {
    let mut subnets: Vec<(&str, &str, &str)> = n
        .subnets
        .values()
        .filter(|s| s.vpc_id() == Some(vpc))
        .map(|s| {
            let name = name(s.tags()).unwrap_or_default();
            (
                name,
                s.cidr_block().unwrap_or_default(),
                s.availability_zone().unwrap_or_default(),
            )
        })
        .collect();
    subnets.sort();
    assert_eq!(subnets, SUBNETS);
    for s in n.subnets.values() {
        let name = name(s.tags()).unwrap_or_default();
        let elb = tag(s.tags(), "kubernetes.io/role/elb");
        let internal = tag(s.tags(), "kubernetes.io/role/internal-elb");
        let cluster = tag(s.tags(), "kubernetes.io/cluster/payments-prod");
        let expected = match name.split('-').nth(2) {
            Some("public") => (Some("1"), None, Some("shared")),
            Some("private") => (None, Some("1"), Some("shared")),
            _ => (None, None, None),
        };
        assert_eq!((elb, internal, cluster), expected, "{name}");
        assert_eq!(
            tag(s.tags(), naming::TAG_PLATFORM),
            Some(PLATFORM),
            "{name}"
        );
    }
}

/// The internet gateway attached; a NAT gateway with its own Elastic IP in each public subnet;
/// the public table routing to the gateway, each private table to its AZ's NAT.
fn assert_gateways_and_routes(w: &World, n: &Network, vpc: &str) {
    let igws = our_ids(&n.igws, |g| g.tags());
    assert_eq!(igws.len(), 1);
    let attached: Vec<_> = n.igws[&igws[0]]
        .attachments()
        .iter()
        .map(|a| a.vpc_id())
        .collect();
    assert_eq!(attached, [Some(vpc)]);
    assert_eq!(n.nats.len(), 3);
    assert_eq!(our_ids(&n.addresses, |a| a.tags()).len(), 3);
    let public = named_id(&n.tables, &w.name("public"), |t| t.tags());
    assert_eq!(
        default_route(n, &public).and_then(|r| r.gateway_id),
        Some(igws[0].clone())
    );
    assert_eq!(
        associated_names(n, &public),
        SUBNETS[6..].iter().map(|s| s.0).collect::<Vec<_>>()
    );
    for az in 0..3 {
        let nat = named_id(&n.nats, &w.name(&format!("nat-{az}")), |g| g.tags());
        let subnet = named_id(&n.subnets, &w.name(&format!("public-{az}")), |s| s.tags());
        assert_eq!(n.nats[&nat].subnet_id(), Some(subnet.as_str()));
        let eip = n.nats[&nat].nat_gateway_addresses()[0]
            .allocation_id()
            .unwrap_or_default();
        assert!(
            n.addresses[eip].association_id().is_some(),
            "{eip} holds {nat}"
        );
        let table = named_id(&n.tables, &w.name(&format!("private-{az}")), |t| t.tags());
        assert_eq!(
            default_route(n, &table).and_then(|r| r.nat_gateway_id),
            Some(nat)
        );
        let wanted = [
            format!("payments-prod-pods-{az}"),
            format!("payments-prod-private-{az}"),
        ];
        assert_eq!(associated_names(n, &table), wanted);
    }
}

/// S3 as a gateway endpoint on the private tables; the others interface endpoints in the
/// private subnets, with private DNS, behind the group admitting HTTPS from the VPC and pods.
fn assert_endpoints(w: &World, n: &Network) {
    let group = named_id(&n.groups, "tenantry-payments-prod-endpoints", |g| g.tags());
    let sources: Vec<_> = n.groups[&group]
        .ip_permissions()
        .iter()
        .flat_map(|p| {
            p.ip_ranges()
                .iter()
                .map(move |r| (p.from_port(), r.cidr_ip()))
        })
        .collect();
    assert_eq!(
        sources,
        [
            (Some(443), Some("10.0.0.0/16")),
            (Some(443), Some("100.64.0.0/16"))
        ]
    );
    let private_tables: Vec<String> = (0..3)
        .map(|az| named_id(&n.tables, &w.name(&format!("private-{az}")), |t| t.tags()))
        .collect();
    let private_subnets: Vec<String> = (0..3)
        .map(|az| named_id(&n.subnets, &w.name(&format!("private-{az}")), |s| s.tags()))
        .collect();
    let mut services = Vec::new();
    for e in n.endpoints.values() {
        let service = e.service_name().unwrap_or_default();
        services.push(service.trim_start_matches("com.amazonaws.us-east-1."));
        let policy: Value =
            serde_json::from_str(e.policy_document().unwrap_or_default()).expect("policy");
        assert!(
            policy.to_string().contains("123456789012"),
            "{service}: {policy}"
        );
        if service.ends_with(".s3") {
            assert_eq!(e.route_table_ids(), private_tables);
            assert!(e.subnet_ids().is_empty());
            continue;
        }
        assert_eq!(e.subnet_ids(), private_subnets, "{service}");
        assert_eq!(e.groups()[0].group_id(), Some(group.as_str()), "{service}");
        assert_eq!(e.private_dns_enabled(), Some(true), "{service}");
    }
    assert_eq!(services, ["s3", "ecr.api", "ecr.dkr", "ec2", "sts", "logs"]);
    for table in &private_tables {
        let s3 = n.tables[table]
            .routes()
            .iter()
            .any(|r| r.destination_prefix_list_id().is_some());
        assert!(s3, "{table} routes S3 through the gateway endpoint");
    }
}

/// The VPC's flow log (all traffic, the identity phase's role) to the group encrypted with the
/// logs key and kept for the spec's 365 days.
fn assert_flow_log(w: &World, n: &Network, vpc: &str) {
    let group = Names::new(&w.s.spec).flow_log_group();
    let logs: Vec<_> = n.flow_logs.values().collect();
    assert_eq!(logs.len(), 1);
    let log = logs[0];
    assert_eq!(log.resource_id(), Some(vpc));
    assert_eq!(log.log_group_name(), Some(group.as_str()));
    assert_eq!(log.traffic_type().map(|t| t.as_str()), Some("ALL"));
    assert_eq!(log.deliver_logs_permission_arn(), Some(FLOW_LOGS_ROLE));
    let g = &w.logs.groups()[&group];
    assert_eq!(
        (g.retention, g.kms_key.as_deref()),
        (Some(365), Some(LOGS_KEY))
    );
    assert_eq!(
        g.tags.get(naming::TAG_PLATFORM).map(String::as_str),
        Some(PLATFORM)
    );
}

fn assert_outputs(n: &Network, out: &PhaseOutput, vpc: &str) {
    let o = &out.outputs;
    assert_eq!(o["vpcId"], json!(vpc));
    assert_eq!(
        o["availabilityZones"],
        json!(["us-east-1a", "us-east-1b", "us-east-1c"])
    );
    for (key, tier) in [
        ("publicSubnetIds", "public"),
        ("privateSubnetIds", "private"),
        ("podSubnetIds", "pods"),
    ] {
        let names: Vec<&str> = o[key]
            .as_array()
            .expect(key)
            .iter()
            .map(|id| name(n.subnets[id.as_str().unwrap_or_default()].tags()).unwrap_or_default())
            .collect();
        let wanted: Vec<String> = (0..3)
            .map(|az| format!("payments-prod-{tier}-{az}"))
            .collect();
        assert_eq!(names, wanted, "{key}");
    }
    let nats: Vec<&String> = n.nats.keys().collect();
    assert_eq!(o["natGatewayIds"], json!(nats));
    let group = n
        .groups
        .values()
        .find(|g| g.group_name() == Some("tenantry-payments-prod-endpoints"));
    assert_eq!(
        o["endpointSecurityGroupId"],
        json!(group.and_then(|g| g.group_id()))
    );
    assert_eq!(o["flowLogId"], json!(n.flow_logs.keys().next()));
}

#[tokio::test]
async fn converged_network_costs_no_mutating_call_and_observe_finds_no_drift() {
    let w = World::converged().await;
    let out = w.run(Action::Ensure).await;
    assert!(out.ready);
    assert_eq!(out.changes, 0);
    assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new());

    let observed = w.run(Action::Observe).await;
    assert!(observed.drift.is_empty(), "{:?}", observed.drift);
    assert_eq!(w.s.calls.mutating(), Vec::<String>::new(), "observe wrote");
    assert_eq!(
        observed.outputs, out.outputs,
        "observe finds what ensure produced"
    );
}

/// Someone deletes the default route of AZ 1's private table, opens the endpoint group to the
/// internet and turns DNS hostnames off, all through the EC2 API.
fn drift(w: &World) -> (String, String, String) {
    let n = w.net();
    let vpc = our_ids(&n.vpcs, |v| v.tags())[0].clone();
    let table = named_id(&n.tables, &w.name("private-1"), |t| t.tags());
    let group = named_id(&n.groups, "tenantry-payments-prod-endpoints", |g| g.tags());
    let open = IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(443)
        .to_port(443)
        .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
        .build();
    w.ec2.with_network(|n| {
        let route = DeleteRouteInput::builder()
            .route_table_id(&table)
            .destination_cidr_block(DEFAULT_ROUTE);
        n.delete_route(&route.build().expect("input"))
            .expect("route deleted");
        let rule = AuthorizeSecurityGroupIngressInput::builder()
            .group_id(&group)
            .ip_permissions(open);
        n.authorize_security_group_ingress(&rule.build().expect("input"))
            .expect("rule added");
        let off = AttributeBooleanValue::builder().value(false).build();
        let dns = ModifyVpcAttributeInput::builder()
            .vpc_id(&vpc)
            .enable_dns_hostnames(off);
        n.modify_vpc_attribute(&dns.build().expect("input"))
            .expect("hostnames off");
    });
    (vpc, table, group)
}

#[tokio::test]
async fn drifted_route_rule_and_dns_are_named_by_observe_and_repaired_by_ensure() {
    let w = World::converged().await;
    let (vpc, table, group) = drift(&w);

    let observed = w.run(Action::Observe).await;
    let expected = [
        (
            format!("ec2:route-table/{table}"),
            "routes.0.0.0.0/0".to_owned(),
        ),
        (format!("ec2:security-group/{group}"), "ingress".to_owned()),
        (format!("ec2:vpc/{vpc}"), "enableDnsHostnames".to_owned()),
    ];
    assert_eq!(drift_fields(&observed), expected);
    assert_eq!(w.s.calls.mutating(), Vec::<String>::new(), "observe wrote");

    let repaired = w.run(Action::Ensure).await;
    assert_eq!(
        w.s.calls.mutating_aws(),
        [
            "ec2:ModifyVpcAttribute",
            "ec2:CreateRoute",
            "ec2:RevokeSecurityGroupIngress"
        ]
    );
    assert!(repaired.ready);
    let n = w.net();
    assert!(n.dns[&vpc].hostnames);
    let nat = named_id(&n.nats, &w.name("nat-1"), |g| g.tags());
    assert_eq!(
        default_route(&n, &table).and_then(|r| r.nat_gateway_id),
        Some(nat)
    );
    let open = n.groups[&group]
        .ip_permissions()
        .iter()
        .flat_map(|p| p.ip_ranges())
        .any(|r| r.cidr_ip() == Some("0.0.0.0/0"));
    assert!(!open, "the endpoint group is closed again");
    assert!(w.run(Action::Observe).await.drift.is_empty());
}

/// A rule failing `$op` (the Lambda dies there) for requests matching `$when`.
macro_rules! crash {
    ($op:ident, |$req:ident| $when:expr) => {
        aws_smithy_mocks::mock!(aws_sdk_ec2::Client::$op)
            .match_requests(|$req| $when)
            .then_compute_response(|_| fail("InternalError"))
    };
}

/// Two crashed runs that recorded nothing: the first died creating AZ 1's private subnet (the
/// VPC, the gateway and four subnets exist), the second creating the first NAT gateway (its
/// Elastic IP was allocated). The third run adopts all of it by tags.
#[tokio::test]
async fn half_created_network_after_crashes_converges_without_duplicates() {
    let w = World::new();
    let subnet = w.crashing_at(crash!(create_subnet, |req| req.cidr_block()
        == Some("10.0.144.0/20")));
    let err = w
        .try_run_on(&subnet, Action::Ensure)
        .await
        .expect_err("crashed");
    assert!(err.error_message.contains("CreateSubnet"), "{err:?}");
    assert_eq!(w.net().subnets.len(), 4);
    let nat = w.crashing_at(crash!(create_nat_gateway, |_req| true));
    w.try_run_on(&nat, Action::Ensure)
        .await
        .expect_err("crashed");
    assert_eq!(
        w.s.calls
            .mutating_aws()
            .iter()
            .filter(|c| *c == "ec2:CreateSubnet")
            .count(),
        5
    );
    assert_eq!((w.net().addresses.len(), w.net().nats.len()), (1, 0));
    w.forget_inventory();

    let rounds = w.converge().await;
    let calls = counts(&rounds[0]);
    for done in [
        "ec2:CreateVpc",
        "ec2:CreateSubnet",
        "ec2:CreateInternetGateway",
        "ec2:AttachInternetGateway",
    ] {
        assert!(!calls.contains_key(done), "{done} again: {calls:?}");
    }
    assert_eq!(
        (calls["ec2:AllocateAddress"], calls["ec2:CreateNatGateway"]),
        (2, 3)
    );
    let n = w.net();
    let sizes = [
        n.vpcs.len(),
        n.subnets.len(),
        n.igws.len(),
        n.addresses.len(),
        n.nats.len(),
    ];
    assert_eq!(
        sizes,
        [1, 9, 1, 3, 3],
        "VPCs, subnets, gateways, EIPs, NATs"
    );
    for id in n
        .vpcs
        .keys()
        .chain(n.subnets.keys())
        .chain(n.addresses.keys())
    {
        assert!(w.recorded(id), "{id} recorded again");
    }
    assert!(w.run(Action::Observe).await.drift.is_empty());
}

/// Another platform's VPC and subnet bearing our names, and a hand-made VPC bearing our VPC's
/// name without the platform tag.
fn plant_foreigners(w: &World) -> (String, String, String) {
    w.ec2.with_network(|n| {
        let vpc = n.add_vpc("10.0.0.0/16", foreign_tags("payments-prod-vpc"));
        let subnet = n.add_subnet(
            &vpc,
            "10.0.0.0/20",
            "us-east-1a",
            foreign_tags("payments-prod-public-0"),
        );
        let by_hand = BTreeMap::from([("Name".to_owned(), "payments-prod-vpc".to_owned())]);
        let hand = n.add_vpc("10.0.0.0/16", network::ec2_tags(&by_hand));
        (vpc, subnet, hand)
    })
}

#[tokio::test]
async fn foreign_vpc_and_subnet_are_neither_adopted_nor_deleted() {
    let w = World::new();
    let (vpc, subnet, hand) = plant_foreigners(&w);
    let before = w.net();
    let rounds = w.converge().await;
    assert_eq!(counts(&rounds[0])["ec2:CreateVpc"], 1, "a VPC of its own");
    assert_eq!(counts(&rounds[0])["ec2:CreateSubnet"], 9);
    let n = w.net();
    assert_eq!(n.vpcs.len(), 3);
    for id in [&vpc, &hand] {
        assert_eq!(n.vpcs[id], before.vpcs[id], "{id} untouched");
        assert_eq!(n.dns[id], before.dns[id], "{id} DNS untouched");
    }
    assert_eq!(n.subnets[&subnet], before.subnets[&subnet]);
    assert!(!w.s.recorded(Kind::Vpc, &vpc) && !w.s.recorded(Kind::Subnet, &subnet));

    w.until_ready(Action::Delete).await;
    let n = w.net();
    assert_eq!(n.vpcs.keys().collect::<Vec<_>>(), [&vpc, &hand]);
    assert_eq!(n.subnets.keys().collect::<Vec<_>>(), [&subnet]);
}

#[tokio::test]
async fn gone_network_is_deleted_over_several_invocations_and_delete_converges() {
    let w = World::new();
    assert!(w.run(Action::Delete).await.ready, "nothing to delete");
    assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new());
    let (vpc, subnet, _) = plant_foreigners(&w);
    w.converge().await;

    let rounds = w.until_ready(Action::Delete).await;
    assert_eq!(rounds.len(), 2, "{rounds:?}");
    assert_eq!(
        counts(&rounds[0]),
        BTreeMap::from([
            ("ec2:DeleteFlowLogs", 1),
            ("ec2:DeleteNatGateway", 3),
            ("ec2:DeleteVpcEndpoints", 1),
            ("logs:DeleteLogGroup", 1),
        ]),
        "then NAT gateways and interface endpoints are deleting"
    );
    assert_gone(&w, &vpc, &subnet);

    let again = w.run(Action::Delete).await;
    assert!(again.ready);
    assert_eq!(
        w.s.calls.mutating_aws(),
        Vec::<String>::new(),
        "already gone"
    );
}

/// Nothing of the platform is left but history (deleted NAT gateways and endpoints); the
/// foreign VPC and subnet stay.
fn assert_gone(w: &World, vpc: &str, subnet: &str) {
    let n = w.net();
    assert_eq!(n.vpcs.len(), 2, "the foreign and the hand-made VPC");
    assert!(n.vpcs.contains_key(vpc));
    assert_eq!(n.subnets.keys().collect::<Vec<_>>(), [subnet]);
    assert!(n
        .nats
        .values()
        .all(|g| g.state() == Some(&NatGatewayState::Deleted)));
    assert!(n
        .endpoints
        .values()
        .all(|e| e.state().map(|s| s.as_str()) == Some("deleted")));
    let left = [
        our_ids(&n.addresses, |a| a.tags()).len(),
        n.igws.len(),
        our_ids(&n.tables, |t| t.tags()).len(),
        our_ids(&n.groups, |g| g.tags()).len(),
        n.flow_logs.len(),
        w.logs.groups().len(),
    ];
    assert_eq!(
        left, [0; 6],
        "EIPs, IGWs, route tables, groups, flow logs, log groups"
    );
    assert!(n.tables.values().all(
        |t| t.vpc_id() != Some(vpc) || t.associations().iter().all(|a| a.main() == Some(true))
    ));
    assert!(
        w.s.store.inventory().is_empty(),
        "{:?}",
        w.s.store.inventory()
    );
}

/// Encryption and identity run beside the network: until they have recorded the logs key and
/// the flow logs role, ensure builds the rest and says it is not ready.
#[tokio::test]
async fn flow_log_waits_for_the_encryption_and_identity_outputs() {
    let w = World::new();
    w.inputs.set(false);
    let err = w.run_err(Action::Ensure).await;
    assert_eq!(err.error_type, ErrorType::NotReady, "{err:?}");
    assert!(
        err.error_message.contains("logsKeyArn") && err.error_message.contains("flowLogsRoleArn")
    );
    let mut expected = fresh_calls();
    for later in [
        "ec2:CreateFlowLogs",
        "logs:CreateLogGroup",
        "logs:PutRetentionPolicy",
    ] {
        expected.remove(later);
    }
    assert_eq!(counts(&w.s.calls.mutating_aws()), expected);
    assert!(w.logs.groups().is_empty() && w.net().flow_logs.is_empty());

    w.ec2.settle();
    w.inputs.set(true);
    let rounds = w.converge().await;
    assert_eq!(
        rounds,
        [vec![
            "ec2:CreateRoute",
            "ec2:CreateRoute",
            "ec2:CreateRoute",
            "logs:CreateLogGroup",
            "logs:PutRetentionPolicy",
            "ec2:CreateFlowLogs"
        ]]
    );
}

/// Someone drops a public subnet's load-balancer discovery tag, resets the S3 endpoint's policy
/// to full access, moves AZ 2's private subnet to the public route table and keeps the flow
/// logs for 30 days only. Returns the public subnet, the S3 endpoint, AZ 2's private table, the
/// moved subnet and the public table.
fn drift_more(w: &World) -> (String, String, String, String, String) {
    let n = w.net();
    let subnet = named_id(&n.subnets, &w.name("public-0"), |s| s.tags());
    let s3 = named_id(&n.endpoints, &w.name("s3"), |e| e.tags());
    let private = named_id(&n.subnets, &w.name("private-2"), |s| s.tags());
    let public = named_id(&n.tables, &w.name("public"), |t| t.tags());
    let table = named_id(&n.tables, &w.name("private-2"), |t| t.tags());
    let association = n.tables[&table]
        .associations()
        .iter()
        .find(|a| a.subnet_id() == Some(private.as_str()))
        .and_then(|a| a.route_table_association_id.clone());
    let group = Names::new(&w.s.spec).flow_log_group();
    w.logs.edit(&group, |g| g.retention = Some(30));
    w.ec2.with_network(|n| {
        let tags = n.subnets.get_mut(&subnet).and_then(|s| s.tags.as_mut());
        tags.expect("tags")
            .retain(|t| t.key() != Some("kubernetes.io/role/elb"));
        let reset = ModifyVpcEndpointInput::builder()
            .vpc_endpoint_id(&s3)
            .reset_policy(true);
        n.modify_vpc_endpoint(&reset.build().expect("input"))
            .expect("policy reset");
        let moved = ReplaceRouteTableAssociationInput::builder()
            .set_association_id(association)
            .route_table_id(&public);
        n.replace_route_table_association(&moved.build().expect("input"))
            .expect("moved");
    });
    (subnet, s3, table, private, public)
}

#[tokio::test]
async fn drifted_tag_policy_association_and_retention_are_named_and_repaired() {
    let w = World::converged().await;
    let (subnet, s3, table, moved, public) = drift_more(&w);

    let observed = w.run(Action::Observe).await;
    let expected = [
        (
            format!("ec2:route-table/{table}"),
            format!("associations[{moved}]"),
        ),
        (
            format!("ec2:subnet/{subnet}"),
            "tags.kubernetes.io/role/elb".to_owned(),
        ),
        (
            format!("ec2:vpc-endpoint/{s3}"),
            "policyDocument".to_owned(),
        ),
        (
            "logs:log-group//tenantry/payments-prod/vpc-flow-logs".to_owned(),
            "retentionInDays".to_owned(),
        ),
    ];
    assert_eq!(drift_fields(&observed), expected);
    let association = observed
        .drift
        .iter()
        .find(|d| d.field.starts_with("associations"));
    let values = association.map(|d| (d.desired.clone(), d.actual.clone()));
    assert_eq!(
        values,
        Some((json!(table), json!(public))),
        "which table, and where it is"
    );
    assert_eq!(w.s.calls.mutating(), Vec::<String>::new(), "observe wrote");

    w.run(Action::Ensure).await;
    assert_eq!(
        w.s.calls.mutating_aws(),
        [
            "ec2:CreateTags",
            "ec2:ReplaceRouteTableAssociation",
            "ec2:ModifyVpcEndpoint",
            "logs:PutRetentionPolicy"
        ]
    );
    let n = w.net();
    assert_eq!(
        tag(n.subnets[&subnet].tags(), "kubernetes.io/role/elb"),
        Some("1")
    );
    assert_eq!(
        associated_names(&n, &table),
        ["payments-prod-pods-2", "payments-prod-private-2"]
    );
    assert!(w.run(Action::Observe).await.drift.is_empty());
}

/// A NAT gateway deleted by hand, repaired before it is quite gone: the replacement made with
/// the same Elastic IP (still held) fails, the next one succeeds; no address is leaked.
#[tokio::test]
async fn nat_gateway_deleted_by_hand_is_replaced_with_its_elastic_ip() {
    let w = World::converged().await;
    let n = w.net();
    let nat = named_id(&n.nats, &w.name("nat-1"), |g| g.tags());
    let table = named_id(&n.tables, &w.name("private-1"), |t| t.tags());
    w.ec2.with_network(|n| {
        let delete = DeleteNatGatewayInput::builder().nat_gateway_id(&nat);
        n.delete_nat_gateway(&delete.build().expect("input"))
            .expect("deleting");
    });

    let observed = w.run(Action::Observe).await;
    let expected = [
        (
            format!("ec2:nat-gateway/{}", w.name("nat-1")),
            "exists".to_owned(),
        ),
        (
            format!("ec2:route-table/{table}"),
            "routes.0.0.0.0/0".to_owned(),
        ),
    ];
    assert_eq!(drift_fields(&observed), expected);
    // The route still points at the deleted gateway; the one it should point at does not exist
    // yet, so it is named.
    let route = observed
        .drift
        .iter()
        .find(|d| d.field.starts_with("routes"));
    let values = route.map(|d| (d.desired.clone(), d.actual.clone()));
    assert_eq!(values, Some((json!(w.name("nat-1")), json!(nat))));
    assert_eq!(w.s.calls.mutating(), Vec::<String>::new(), "observe wrote");

    // The route moves only once a replacement is available: the first fails, the second
    // comes up.
    let rounds = w.converge().await;
    let create = vec!["ec2:CreateNatGateway"];
    assert_eq!(rounds, [create.clone(), create, vec!["ec2:ReplaceRoute"]]);
    let n = w.net();
    let states: Vec<_> = n.nats.values().filter_map(|g| g.state()).collect();
    use NatGatewayState::{Available, Deleted, Failed};
    assert_eq!(
        states,
        [&Available, &Deleted, &Available, &Failed, &Available]
    );
    assert_eq!(n.addresses.len(), 3, "the Elastic IP is reused");
    let replacement = n.nats.values().find(|g| {
        g.state() == Some(&Available) && name(g.tags()) == Some(w.name("nat-1").as_str())
    });
    assert_eq!(
        default_route(&n, &table).and_then(|r| r.nat_gateway_id),
        replacement.and_then(|g| g.nat_gateway_id.clone())
    );
    assert!(w.run(Action::Observe).await.drift.is_empty());
}

/// From one NAT gateway per AZ to a single one: the private tables of AZs 1 and 2 route to
/// NAT 0, and the two others (with their Elastic IPs) should go.
#[tokio::test]
async fn fewer_nat_gateways_in_the_spec_removes_the_surplus() {
    let mut w = World::converged().await;
    w.s.spec.network.nat_mode = NatMode::Single;
    let n = w.net();
    let observed = w.run(Action::Observe).await;
    let mut expected = Vec::new();
    for i in [1, 2] {
        let nat = named_id(&n.nats, &w.name(&format!("nat-{i}")), |g| g.tags());
        let eip = named_id(&n.addresses, &w.name(&format!("nat-{i}")), |a| a.tags());
        let table = named_id(&n.tables, &w.name(&format!("private-{i}")), |t| t.tags());
        expected.push((format!("ec2:eip/{eip}"), "exists".to_owned()));
        expected.push((format!("ec2:nat-gateway/{nat}"), "exists".to_owned()));
        expected.push((
            format!("ec2:route-table/{table}"),
            "routes.0.0.0.0/0".to_owned(),
        ));
    }
    expected.sort();
    assert_eq!(drift_fields(&observed), expected);
    let surplus = observed.drift.iter().filter(|d| d.field == "exists");
    assert!(surplus
        .clone()
        .all(|d| d.desired == json!(false) && d.actual == json!(true)));
    assert_eq!(
        surplus.count(),
        4,
        "two NAT gateways and their Elastic IPs should not exist"
    );
    assert_eq!(w.s.calls.mutating(), Vec::<String>::new(), "observe wrote");

    let rounds = w.converge().await;
    assert!(
        rounds[0].contains(&"ec2:DeleteNatGateway".to_owned()),
        "{rounds:?}"
    );
    let n = w.net();
    let nat = named_id(&n.nats, &w.name("nat-0"), |g| g.tags());
    for az in 0..3 {
        let table = named_id(&n.tables, &w.name(&format!("private-{az}")), |t| t.tags());
        let route = default_route(&n, &table).and_then(|r| r.nat_gateway_id);
        assert_eq!(route.as_ref(), Some(&nat), "private-{az}");
    }
    let live = n
        .nats
        .values()
        .filter(|g| g.state() == Some(&NatGatewayState::Available));
    assert_eq!(live.count(), 1);
    assert_eq!(n.addresses.len(), 1, "the surplus Elastic IPs are released");
    let observed = w.run(Action::Observe).await;
    assert!(observed.drift.is_empty(), "{:?}", drift_fields(&observed));
}

/// Nothing built yet: `observe` names the VPC, looks no further and writes nothing.
#[tokio::test]
async fn observe_without_a_vpc_names_it_and_writes_nothing() {
    let w = World::new();
    let observed = w.run(Action::Observe).await;
    let vpc = format!("ec2:vpc/{}", w.name("vpc"));
    assert_eq!(drift_fields(&observed), [(vpc, "exists".to_owned())]);
    assert!(!observed.ready);
    assert_eq!(w.s.calls.mutating(), Vec::<String>::new(), "observe wrote");
    assert!(w.net().vpcs.is_empty());
}

/// The spec now records rejected traffic only: `observe` names the flow log's traffic type (and
/// not a missing flow log besides); `ensure` replaces the log, which cannot be modified.
#[tokio::test]
async fn a_new_traffic_type_replaces_the_flow_log() {
    let mut w = World::converged().await;
    w.s.spec.network.flow_logs.traffic_type = crate::spec::FlowLogTraffic::Reject;
    let old = w
        .net()
        .flow_logs
        .keys()
        .next()
        .cloned()
        .expect("a flow log");
    let observed = w.run(Action::Observe).await;
    let field = (format!("ec2:flow-log/{old}"), "trafficType".to_owned());
    assert_eq!(drift_fields(&observed), [field]);
    assert_eq!(
        (&observed.drift[0].desired, &observed.drift[0].actual),
        (&json!("REJECT"), &json!("ALL"))
    );
    assert_eq!(w.s.calls.mutating(), Vec::<String>::new(), "observe wrote");

    w.run(Action::Ensure).await;
    assert_eq!(
        w.s.calls.mutating_aws(),
        ["ec2:DeleteFlowLogs", "ec2:CreateFlowLogs"]
    );
    let n = w.net();
    let live: Vec<_> = n.flow_logs.values().collect();
    assert_eq!(live.len(), 1, "the old log is gone");
    assert_eq!(live[0].traffic_type().map(|t| t.as_str()), Some("REJECT"));
    assert!(w.run(Action::Observe).await.drift.is_empty());
}

/// The spec drops every interface endpoint (S3 stays): their endpoints go, and with them the
/// security group that only they used.
#[tokio::test]
async fn dropped_interface_endpoints_take_their_security_group_with_them() {
    let mut w = World::converged().await;
    w.s.spec.network.endpoints = vec![VpcEndpointService::S3];
    let rounds = w.converge().await;
    let n = w.net();
    let gone = n
        .endpoints
        .values()
        .filter(|e| e.state().map(|s| s.as_str()) != Some("available"));
    assert_eq!(gone.count(), 5, "{rounds:?}");
    let group = n
        .groups
        .values()
        .find(|g| g.group_name() == Some("tenantry-payments-prod-endpoints"));
    assert!(group.is_none(), "{rounds:?}");
    let observed = w.run(Action::Observe).await;
    assert!(observed.drift.is_empty(), "{:?}", drift_fields(&observed));
}

/// A subnet someone added by hand to the platform's VPC: delete takes everything of the
/// platform, leaves that subnet alone, and stays not ready while EC2 refuses to delete the VPC.
#[tokio::test]
async fn a_hand_made_subnet_in_the_vpc_holds_its_deletion_but_is_not_deleted() {
    let w = World::converged().await;
    let vpc = our_ids(&w.net().vpcs, |v| v.tags())[0].clone();
    let hand = w
        .ec2
        .with_network(|n| n.add_subnet(&vpc, "10.0.240.0/24", "us-east-1a", Vec::new()));
    for _ in 0..3 {
        assert!(!w.run(Action::Delete).await.ready);
        w.ec2.settle();
    }
    assert_eq!(
        w.s.calls.mutating_aws(),
        ["ec2:DeleteVpc"],
        "refused, tried again"
    );
    let n = w.net();
    assert_eq!(n.subnets.keys().collect::<Vec<_>>(), [&hand]);
    assert_eq!(n.vpcs.keys().collect::<Vec<_>>(), [&vpc]);
    assert!(w.recorded(&vpc), "the VPC stays in the inventory");
    assert!(our_ids(&n.tables, |t| t.tags()).is_empty() && n.igws.is_empty());
}
