//! The `network` phase: the platform's VPC and everything in it.
//!
//! What it builds (the planner's `network` phase, plus the VPC flow log):
//! - the VPC (DNS support and DNS hostnames on) and, with a `podCidr`, that CIDR as a secondary
//!   block with one pod subnet per AZ;
//! - per AZ a public subnet (`kubernetes.io/role/elb`) and a private subnet
//!   (`kubernetes.io/role/internal-elb`), both with `kubernetes.io/cluster/<cluster>=shared`;
//!   the AZs are the first `azCount` available zones of the region, sorted by name;
//! - an internet gateway, NAT gateways per `natMode` (each with its own Elastic IP), one public
//!   route table (default route to the internet gateway) and one private route table per AZ
//!   (default route to that AZ's NAT, the single NAT, or none), which also serves the AZ's pod
//!   subnet;
//! - VPC endpoints: S3 as a gateway endpoint on the private route tables, the others as interface
//!   endpoints in the private subnets with private DNS, behind one security group that admits
//!   HTTPS from the VPC CIDR and the pod CIDR;
//! - the flow log of the VPC to the log group `Names::flow_log_group()`, with the spec's
//!   retention, encrypted with the platform's logs key.
//!
//! Everything is found by its `tenantry:platform` and `Name` tags (set by `TagSpecifications` on
//! the create call), the log group by its name, attachments and associations by reading the
//! state they change; so a crash between any two calls converges on re-run, and a re-run on an
//! unchanged network makes no mutating call.
//!
//! # Inputs from other phases
//! The flow log needs two outputs of the phases the provision workflow runs before this one (its
//! `Foundations` branch): `logsKeyArn` (encryption: the KMS key of the log group) and
//! `flowLogsRoleArn` (identity: the role `Names::role(ROLE_FLOW_LOGS)` that
//! `vpc-flow-logs.amazonaws.com` assumes to write to the group). `ensure` builds everything else
//! first; if either output is still missing it records the outputs it has (phase state
//! `running`) and fails with `Tenantry.NotReady` naming them. The workflow does not retry that
//! error (by then encryption and identity have finished, so a missing output will not appear):
//! the run fails and says which output is missing. With flow logs disabled neither output is
//! read.
//!
//! # Readiness
//! NAT gateways take a minute or two to become `available`: `ensure` reports
//! `ready: false` while any is `pending`, and a later `ensure` (no writes) says when they are. `delete` reports `ready: false` while NAT gateways or
//! endpoints are still being deleted, or while EC2 refuses a deletion with `DependencyViolation`
//! (network interfaces of deleted endpoints linger for a while).

#[cfg(test)]
use super::common::is_gone_code;
pub use super::common::{ec2_tags, error_code, removal, tag_spec, Removal};

mod converge;
mod delete;
pub mod lookup;

use std::collections::{BTreeMap, BTreeSet};

use ipnet::Ipv4Net;
use serde_json::Value;

use crate::deps::Deps;
use crate::error::{ErrorType, FunctionError};
use crate::phases::outputs::{self, OutputMap};
use crate::phases::{Action, PhaseContext, PhaseInput, PhaseOutput};
use crate::plan::Phase;
use crate::spec::{NatMode, PlatformSpec, SubnetLayout, VpcEndpointService};

/// Function name.
pub const NAME: &str = "network";
/// `tenantry:component` of everything this phase creates.
pub const COMPONENT: &str = "network";

/// Runs one action of the network phase.
pub async fn handle(input: PhaseInput, deps: &Deps) -> Result<PhaseOutput, FunctionError> {
    run(PhaseContext::load(Phase::Network, input, deps).await?).await
}

/// Runs the phase's action in a loaded context.
pub async fn run(mut ctx: PhaseContext<'_>) -> Result<PhaseOutput, FunctionError> {
    let clients = ctx.clients.clone();
    let desired = Desired::new(&ctx.spec)?.with_account(ctx.target.account_id().await?);
    match ctx.input.action {
        Action::Ensure | Action::Observe => converge::converge(&mut ctx, &clients, &desired).await,
        Action::Delete => delete::delete(&mut ctx, &clients).await,
    }
}

/// The AWS clients of the phase, in the platform's region.
pub use crate::aws::Clients;

/// The three subnet tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    Public,
    Private,
    Pods,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Public, Tier::Private, Tier::Pods];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Public => "public",
            Tier::Private => "private",
            Tier::Pods => "pods",
        }
    }
}

/// One subnet to have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetWant {
    pub tier: Tier,
    /// AZ index.
    pub index: usize,
    pub cidr: Ipv4Net,
    /// `Name` tag.
    pub name: String,
    /// Tags beyond the common ones (EKS discovery tags).
    pub extra_tags: BTreeMap<String, String>,
}

/// The desired network, derived from the spec alone (no AWS call).
#[derive(Debug, Clone)]
pub struct Desired {
    pub platform_id: String,
    pub layout: SubnetLayout,
    pub az_count: usize,
    pub nat_mode: NatMode,
    /// Endpoints without duplicates, in the spec's order.
    pub endpoints: Vec<VpcEndpointService>,
    pub region: String,
    /// `kubernetes.io/cluster/<cluster>`.
    pub cluster_tag: String,
    pub flow_logs: Option<FlowLogWant>,
    pub names: crate::naming::Names,
    /// The account the platform is in (the endpoint policies name it); empty until
    /// [`Desired::with_account`].
    pub account: String,
}

/// The flow log to have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowLogWant {
    pub log_group: String,
    pub retention_days: i32,
    /// `ALL`, `ACCEPT` or `REJECT`.
    pub traffic_type: String,
}

impl Desired {
    pub fn new(spec: &PlatformSpec) -> Result<Desired, FunctionError> {
        let n = spec.vpc_network();
        let layout = n.layout().map_err(|e| {
            FunctionError::new(ErrorType::InvalidRequest, format!("network layout: {e}"))
        })?;
        let names = crate::naming::Names::new(spec);
        let mut seen = BTreeSet::new();
        let endpoints = n
            .endpoints
            .iter()
            .copied()
            .filter(|e| seen.insert(*e))
            .collect();
        let flow_logs = n.flow_logs.enabled.then(|| FlowLogWant {
            log_group: names.flow_log_group(),
            retention_days: i32::try_from(n.flow_logs.retention_days).unwrap_or(i32::MAX),
            traffic_type: serde_json::to_value(n.flow_logs.traffic_type)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "ALL".to_owned()),
        });
        Ok(Desired {
            platform_id: spec.id.clone(),
            az_count: usize::from(n.az_count),
            nat_mode: n.nat_mode,
            endpoints,
            region: spec.region.clone(),
            cluster_tag: format!("kubernetes.io/cluster/{}", names.cluster()),
            flow_logs,
            layout,
            names,
            account: String::new(),
        })
    }

    /// With the platform's account (the endpoint policies name it).
    pub fn with_account(mut self, account: String) -> Self {
        self.account = account;
        self
    }

    /// The policy of one of the VPC endpoints.
    pub fn endpoint_policy(&self, service: VpcEndpointService) -> Value {
        crate::policies::vpc_endpoint_policy(
            crate::spec::partition_of(&self.region),
            &self.account,
            &self.region,
            service,
        )
    }

    /// Number of NAT gateways.
    pub fn nat_count(&self) -> usize {
        self.nat_mode.nat_count(self.az_count)
    }

    /// Which NAT gateway (by index) the private route table of AZ `az` sends to.
    pub fn nat_for_az(&self, az: usize) -> Option<usize> {
        self.nat_mode.nat_for_az(az)
    }

    /// Every subnet, public then private then pods, each by AZ index.
    pub fn subnets(&self) -> Vec<SubnetWant> {
        let mut out = Vec::new();
        for tier in Tier::ALL {
            let cidrs = match tier {
                Tier::Public => &self.layout.public,
                Tier::Private => &self.layout.private,
                Tier::Pods => &self.layout.pods,
            };
            for (index, cidr) in cidrs.iter().enumerate().take(self.az_count) {
                out.push(SubnetWant {
                    tier,
                    index,
                    cidr: *cidr,
                    name: self.names.name_tag(&format!("{}-{index}", tier.as_str())),
                    extra_tags: self.subnet_tags(tier),
                });
            }
        }
        out
    }

    fn subnet_tags(&self, tier: Tier) -> BTreeMap<String, String> {
        let role = match tier {
            Tier::Public => "kubernetes.io/role/elb",
            Tier::Private => "kubernetes.io/role/internal-elb",
            Tier::Pods => return BTreeMap::new(),
        };
        BTreeMap::from([
            (role.to_owned(), "1".to_owned()),
            (self.cluster_tag.clone(), "shared".to_owned()),
        ])
    }

    /// `com.amazonaws.<region>.<service>`.
    pub fn service_name(&self, endpoint: VpcEndpointService) -> String {
        format!(
            "com.amazonaws.{}.{}",
            self.region,
            endpoint.service_suffix()
        )
    }

    /// CIDRs the endpoint security group admits on 443: the VPC and the pod CIDR.
    pub fn endpoint_ingress(&self) -> Vec<String> {
        let mut out = vec![self.layout.vpc.to_string()];
        out.extend(self.layout.pod_cidr.iter().map(|c| c.to_string()));
        out
    }

    /// The `Name` tag of a resource.
    pub fn name(&self, suffix: &str) -> String {
        self.names.name_tag(suffix)
    }

    /// Whether the spec asks for any interface endpoint (and so for the security group).
    pub fn wants_endpoint_group(&self) -> bool {
        self.endpoints.iter().any(|e| !e.is_gateway())
    }
}

/// The tags of a resource named `name`: the platform's tags plus `Name` plus `extra`.
pub fn resource_tags(
    ctx: &PhaseContext<'_>,
    name: &str,
    extra: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut tags = ctx.tags(COMPONENT);
    tags.insert("Name".to_owned(), name.to_owned());
    tags.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    tags
}

/// What the phase produced, as recorded in the status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Produced {
    pub vpc_id: Option<String>,
    pub public_subnet_ids: Vec<String>,
    pub private_subnet_ids: Vec<String>,
    pub pod_subnet_ids: Vec<String>,
    pub availability_zones: Vec<String>,
    pub endpoint_security_group_id: Option<String>,
    pub nat_gateway_ids: Vec<String>,
    pub flow_log_id: Option<String>,
}

impl Produced {
    pub fn to_outputs(&self) -> OutputMap {
        let mut out = OutputMap::new();
        outputs::VPC_ID.insert(&mut out, self.vpc_id.clone().unwrap_or_default());
        outputs::PUBLIC_SUBNET_IDS.insert(&mut out, self.public_subnet_ids.clone());
        outputs::PRIVATE_SUBNET_IDS.insert(&mut out, self.private_subnet_ids.clone());
        outputs::POD_SUBNET_IDS.insert(&mut out, self.pod_subnet_ids.clone());
        outputs::AVAILABILITY_ZONES.insert(&mut out, self.availability_zones.clone());
        outputs::ENDPOINT_SECURITY_GROUP_ID
            .insert(&mut out, self.endpoint_security_group_id.clone());
        outputs::NAT_GATEWAY_IDS.insert(&mut out, self.nat_gateway_ids.clone());
        outputs::FLOW_LOG_ID.insert(&mut out, self.flow_log_id.clone());
        out
    }

    /// Every output of the phase, cleared (after a complete delete).
    pub fn cleared() -> OutputMap {
        Produced::default()
            .to_outputs()
            .into_keys()
            .map(|key| (key, Value::Null))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(network: Value) -> PlatformSpec {
        serde_json::from_value(json!({
            "id": "payments", "environment": "prod", "region": "eu-west-1", "network": network
        }))
        .expect("spec")
    }

    #[test]
    fn subnets_follow_the_layout_with_discovery_tags() {
        let d = Desired::new(&spec(json!({ "podCidr": "100.64.0.0/16" }))).expect("desired");
        let subnets = d.subnets();
        assert_eq!(subnets.len(), 9);
        let public = &subnets[0];
        assert_eq!((public.tier, public.index), (Tier::Public, 0));
        assert_eq!(public.cidr.to_string(), "10.0.0.0/20");
        assert_eq!(public.name, "payments-prod-public-0");
        assert_eq!(public.extra_tags["kubernetes.io/role/elb"], "1");
        assert_eq!(
            public.extra_tags["kubernetes.io/cluster/payments-prod"],
            "shared"
        );
        let private = &subnets[3];
        assert_eq!(private.cidr.to_string(), "10.0.128.0/20");
        assert_eq!(private.extra_tags["kubernetes.io/role/internal-elb"], "1");
        let pods = &subnets[8];
        assert_eq!((pods.tier, pods.index), (Tier::Pods, 2));
        assert_eq!(pods.cidr.to_string(), "100.64.128.0/18");
        assert!(pods.extra_tags.is_empty());
        assert_eq!(d.endpoint_ingress(), ["10.0.0.0/16", "100.64.0.0/16"]);
    }

    #[test]
    fn nat_mode_decides_count_and_routes() {
        let per_az = Desired::new(&spec(json!({}))).expect("desired");
        assert_eq!(per_az.nat_count(), 3);
        assert_eq!(per_az.nat_for_az(2), Some(2));
        let single = Desired::new(&spec(json!({ "natMode": "single" }))).expect("desired");
        assert_eq!(single.nat_count(), 1);
        assert_eq!(single.nat_for_az(2), Some(0));
        let none = Desired::new(&spec(json!({ "natMode": "none" }))).expect("desired");
        assert_eq!(none.nat_count(), 0);
        assert_eq!(none.nat_for_az(1), None);
    }

    #[test]
    fn endpoints_are_deduplicated_and_named_for_the_region() {
        let d =
            Desired::new(&spec(json!({ "endpoints": ["s3", "ecr-api", "s3"] }))).expect("desired");
        assert_eq!(
            d.endpoints,
            [VpcEndpointService::S3, VpcEndpointService::EcrApi]
        );
        assert_eq!(
            d.service_name(VpcEndpointService::EcrApi),
            "com.amazonaws.eu-west-1.ecr.api"
        );
        assert!(d.wants_endpoint_group());
        let gateway_only = Desired::new(&spec(json!({ "endpoints": ["s3"] }))).expect("desired");
        assert!(!gateway_only.wants_endpoint_group());
    }

    #[test]
    fn flow_log_settings_come_from_the_spec() {
        let d = Desired::new(&spec(
            json!({ "flowLogs": { "trafficType": "REJECT", "retentionDays": 365 } }),
        ))
        .expect("desired");
        let f = d.flow_logs.expect("flow logs on");
        assert_eq!(f.log_group, "/tenantry/payments-prod/vpc-flow-logs");
        assert_eq!(f.retention_days, 365);
        assert_eq!(f.traffic_type, "REJECT");
        let off =
            Desired::new(&spec(json!({ "flowLogs": { "enabled": false } }))).expect("desired");
        assert!(off.flow_logs.is_none());
    }

    #[test]
    fn gone_codes() {
        assert!(is_gone_code("InvalidVpcID.NotFound"));
        assert!(is_gone_code("InvalidAllocationID.NotFound"));
        assert!(is_gone_code("ResourceNotFoundException"));
        assert!(!is_gone_code("DependencyViolation"));
    }
}
