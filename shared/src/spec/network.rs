//! Network: VPC, subnets, NAT, VPC endpoints, flow logs.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::default_true;
use super::platform::default_retention;

/// The range pod CIDRs must come from (RFC 6598 shared address space), `100.64.0.0/10`.
pub const POD_CIDR_RANGE: Ipv4Net = match Ipv4Net::new(Ipv4Addr::new(100, 64, 0, 0), 10) {
    Ok(net) => net,
    Err(_) => panic!("100.64.0.0/10 is a valid network"),
};

/// Network settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkSpec {
    /// VPC IPv4 CIDR, prefix /16 to /24, in a private range (RFC 1918 or 100.64.0.0/10).
    /// Default: `10.0.0.0/16`.
    #[serde(default = "default_vpc_cidr")]
    pub vpc_cidr: String,
    /// Number of availability zones (2-6); one public and one private subnet per AZ.
    /// Default: 3.
    #[serde(default = "default_az_count")]
    #[schemars(range(min = 2, max = 6))]
    pub az_count: u8,
    /// Prefix length of the carved public and private subnets (at most /28). Public subnet `i`
    /// is block `i` of the VPC, private subnet `i` is block `i` of the VPC's upper half.
    /// Default: the VPC prefix + 4 (a /16 VPC gets /20 subnets). Ignored for a subnet list given
    /// explicitly in `publicSubnets` / `privateSubnets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_prefix_length: Option<u8>,
    /// Explicit public subnet CIDRs, one per AZ, inside the VPC. Default: carved (see
    /// `subnetPrefixLength`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_subnets: Option<Vec<String>>,
    /// Explicit private subnet CIDRs, one per AZ, inside the VPC. Default: carved (see
    /// `subnetPrefixLength`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_subnets: Option<Vec<String>>,
    /// The pods' CIDR, inside `100.64.0.0/10`, prefix /16 to /24. With the VPC CNI it is a
    /// secondary CIDR added to the VPC and split into one pod subnet per AZ, and it turns custom
    /// networking on: pods take their addresses from the pod subnets, through one ENIConfig per
    /// AZ, and node max pods is lowered to fit (Bottlerocket nodes only). With `cni: calico` it
    /// is required and is Calico's IP pool (VXLAN overlay), not added to the VPC. Default: none,
    /// pods take addresses from the private subnets (VPC CNI only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_cidr: Option<String>,
    /// NAT gateways. Default: `one-per-az`.
    #[serde(default)]
    pub nat_mode: NatMode,
    /// VPC endpoints (S3 is a gateway endpoint, the others interface endpoints behind one
    /// security group). Default: s3, ecr-api, ecr-dkr, ec2, sts, logs.
    #[serde(default = "default_endpoints")]
    pub endpoints: Vec<VpcEndpointService>,
    /// VPC flow logs to CloudWatch Logs. Default: on, all traffic, 90 days.
    #[serde(default)]
    pub flow_logs: FlowLogs,
}

fn default_vpc_cidr() -> String {
    "10.0.0.0/16".to_string()
}

fn default_az_count() -> u8 {
    3
}

fn default_endpoints() -> Vec<VpcEndpointService> {
    VpcEndpointService::DEFAULT.to_vec()
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec {
            vpc_cidr: default_vpc_cidr(),
            az_count: default_az_count(),
            subnet_prefix_length: None,
            public_subnets: None,
            private_subnets: None,
            pod_cidr: None,
            nat_mode: NatMode::default(),
            endpoints: default_endpoints(),
            flow_logs: FlowLogs::default(),
        }
    }
}

/// NAT gateway layout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NatMode {
    /// One NAT gateway (and Elastic IP) per AZ: no cross-AZ dependency.
    #[default]
    OnePerAz,
    /// A single NAT gateway in the first AZ, shared by all private subnets (cheaper, one AZ's fate).
    Single,
    /// No NAT gateway: nodes reach AWS only through VPC endpoints (s3, ecr-api, ecr-dkr, ec2,
    /// sts are then required).
    None,
}

impl NatMode {
    /// Number of NAT gateways (and Elastic IPs) over `az_count` AZs.
    pub fn nat_count(self, az_count: usize) -> usize {
        match self {
            NatMode::OnePerAz => az_count,
            NatMode::Single => az_count.min(1),
            NatMode::None => 0,
        }
    }

    /// Which NAT gateway (by index) the private route table of AZ `az` sends to.
    pub fn nat_for_az(self, az: usize) -> Option<usize> {
        match self {
            NatMode::OnePerAz => Some(az),
            NatMode::Single => Some(0),
            NatMode::None => None,
        }
    }
}

/// A VPC endpoint service.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum VpcEndpointService {
    /// Amazon S3 (gateway endpoint).
    #[serde(rename = "s3")]
    S3,
    /// ECR API.
    #[serde(rename = "ecr-api")]
    EcrApi,
    /// ECR Docker registry.
    #[serde(rename = "ecr-dkr")]
    EcrDkr,
    /// EC2 API.
    #[serde(rename = "ec2")]
    Ec2,
    /// STS (IRSA token exchange).
    #[serde(rename = "sts")]
    Sts,
    /// CloudWatch Logs.
    #[serde(rename = "logs")]
    Logs,
    /// CloudWatch metrics.
    #[serde(rename = "monitoring")]
    Monitoring,
    /// Systems Manager.
    #[serde(rename = "ssm")]
    Ssm,
    /// Systems Manager session channel.
    #[serde(rename = "ssmmessages")]
    SsmMessages,
    /// Systems Manager agent messages.
    #[serde(rename = "ec2messages")]
    Ec2Messages,
    /// Secrets Manager.
    #[serde(rename = "secretsmanager")]
    SecretsManager,
    /// KMS.
    #[serde(rename = "kms")]
    Kms,
    /// Elastic Load Balancing.
    #[serde(rename = "elasticloadbalancing")]
    ElasticLoadBalancing,
    /// EC2 Auto Scaling.
    #[serde(rename = "autoscaling")]
    Autoscaling,
    /// EKS API.
    #[serde(rename = "eks")]
    Eks,
    /// EKS Auth (Pod Identity credentials).
    #[serde(rename = "eks-auth")]
    EksAuth,
}

impl VpcEndpointService {
    /// The default endpoint list.
    pub const DEFAULT: [VpcEndpointService; 6] = [
        VpcEndpointService::S3,
        VpcEndpointService::EcrApi,
        VpcEndpointService::EcrDkr,
        VpcEndpointService::Ec2,
        VpcEndpointService::Sts,
        VpcEndpointService::Logs,
    ];

    /// Endpoints nodes need when there is no NAT gateway.
    pub const REQUIRED_WITHOUT_NAT: [VpcEndpointService; 5] = [
        VpcEndpointService::S3,
        VpcEndpointService::EcrApi,
        VpcEndpointService::EcrDkr,
        VpcEndpointService::Ec2,
        VpcEndpointService::Sts,
    ];

    /// The request's name for the service (also the last part of planned resource ids).
    pub fn as_str(self) -> &'static str {
        match self {
            VpcEndpointService::S3 => "s3",
            VpcEndpointService::EcrApi => "ecr-api",
            VpcEndpointService::EcrDkr => "ecr-dkr",
            VpcEndpointService::Ec2 => "ec2",
            VpcEndpointService::Sts => "sts",
            VpcEndpointService::Logs => "logs",
            VpcEndpointService::Monitoring => "monitoring",
            VpcEndpointService::Ssm => "ssm",
            VpcEndpointService::SsmMessages => "ssmmessages",
            VpcEndpointService::Ec2Messages => "ec2messages",
            VpcEndpointService::SecretsManager => "secretsmanager",
            VpcEndpointService::Kms => "kms",
            VpcEndpointService::ElasticLoadBalancing => "elasticloadbalancing",
            VpcEndpointService::Autoscaling => "autoscaling",
            VpcEndpointService::Eks => "eks",
            VpcEndpointService::EksAuth => "eks-auth",
        }
    }

    /// AWS service name suffix (`com.amazonaws.<region>.<suffix>`).
    pub fn service_suffix(self) -> &'static str {
        match self {
            VpcEndpointService::EcrApi => "ecr.api",
            VpcEndpointService::EcrDkr => "ecr.dkr",
            other => other.as_str(),
        }
    }

    /// Whether this is a gateway endpoint (route-table based) rather than an interface endpoint.
    pub fn is_gateway(self) -> bool {
        matches!(self, VpcEndpointService::S3)
    }
}

/// VPC flow logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlowLogs {
    /// Enable flow logs. Default: `true` (required under `pci-dss-v4`).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Traffic to record. Default: `ALL`.
    #[serde(default)]
    pub traffic_type: FlowLogTraffic,
    /// Retention of the flow log group in days (a value CloudWatch Logs accepts). Default: 90.
    #[serde(default = "default_retention")]
    pub retention_days: u32,
}

impl Default for FlowLogs {
    fn default() -> Self {
        FlowLogs {
            enabled: true,
            traffic_type: FlowLogTraffic::default(),
            retention_days: default_retention(),
        }
    }
}

/// Traffic recorded by flow logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum FlowLogTraffic {
    /// Accepted and rejected traffic.
    #[default]
    All,
    /// Accepted traffic only.
    Accept,
    /// Rejected traffic only.
    Reject,
}

/// The concrete subnets of a network, by AZ index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetLayout {
    /// The VPC CIDR.
    pub vpc: Ipv4Net,
    /// Public subnets, one per AZ.
    pub public: Vec<Ipv4Net>,
    /// Private (node) subnets, one per AZ.
    pub private: Vec<Ipv4Net>,
    /// The pod CIDR (secondary VPC CIDR), if any.
    pub pod_cidr: Option<Ipv4Net>,
    /// Pod subnets, one per AZ (empty without a pod CIDR).
    pub pods: Vec<Ipv4Net>,
}

impl NetworkSpec {
    /// Default subnet prefix length for a VPC prefix: four more bits (/16 -> /20).
    pub fn effective_subnet_prefix(&self, vpc: Ipv4Net) -> u8 {
        self.subnet_prefix_length
            .unwrap_or_else(|| vpc.prefix_len().saturating_add(4).min(28))
    }

    /// Prefix length of each pod subnet: enough bits for one subnet per AZ.
    pub fn pod_subnet_prefix(&self, pod: Ipv4Net) -> u8 {
        pod.prefix_len() + bits_for(self.az_count as u32)
    }

    /// Derives the subnets deterministically (or takes the explicit lists). Errors name the
    /// first problem; [`crate::validate`] reports all of them with their paths.
    pub fn layout(&self) -> Result<SubnetLayout, String> {
        let vpc: Ipv4Net = self
            .vpc_cidr
            .parse()
            .map_err(|_| format!("`{}` is not an IPv4 CIDR", self.vpc_cidr))?;
        let azs = self.az_count as usize;
        let prefix = self.effective_subnet_prefix(vpc);
        let carved = if self.public_subnets.is_none() || self.private_subnets.is_none() {
            Some(carve_public_private(vpc, prefix, azs)?)
        } else {
            None
        };
        let public = match (&self.public_subnets, &carved) {
            (Some(list), _) => parse_list(list)?,
            (None, Some((public, _))) => public.clone(),
            (None, None) => Vec::new(),
        };
        let private = match (&self.private_subnets, &carved) {
            (Some(list), _) => parse_list(list)?,
            (None, Some((_, private))) => private.clone(),
            (None, None) => Vec::new(),
        };
        let (pod_cidr, pods) = match &self.pod_cidr {
            None => (None, Vec::new()),
            Some(text) => {
                let pod: Ipv4Net = text
                    .parse()
                    .map_err(|_| format!("`{text}` is not an IPv4 CIDR"))?;
                let pods = carve(pod, self.pod_subnet_prefix(pod), 0, azs)?;
                (Some(pod), pods)
            }
        };
        Ok(SubnetLayout {
            vpc,
            public,
            private,
            pod_cidr,
            pods,
        })
    }
}

fn parse_list(list: &[String]) -> Result<Vec<Ipv4Net>, String> {
    list.iter()
        .map(|s| s.parse().map_err(|_| format!("`{s}` is not an IPv4 CIDR")))
        .collect()
}

/// Number of bits needed to number `n` blocks.
fn bits_for(n: u32) -> u8 {
    let mut bits = 0u8;
    while (1u32 << bits) < n.max(1) {
        bits += 1;
    }
    bits
}

/// Public subnets are the first `azs` blocks of the VPC, private subnets the first `azs` blocks
/// of its upper half.
fn carve_public_private(
    vpc: Ipv4Net,
    prefix: u8,
    azs: usize,
) -> Result<(Vec<Ipv4Net>, Vec<Ipv4Net>), String> {
    if prefix <= vpc.prefix_len() || prefix > 28 {
        return Err(format!(
            "subnet prefix /{prefix} must be longer than the VPC's /{} and at most /28",
            vpc.prefix_len()
        ));
    }
    let blocks = 1usize << (prefix - vpc.prefix_len()).min(20);
    let half = blocks / 2;
    if azs > half {
        return Err(format!(
            "{vpc} holds {blocks} /{prefix} subnets: not enough for {azs} public and {azs} private subnets in separate halves"
        ));
    }
    let public = carve(vpc, prefix, 0, azs)?;
    let private = carve(vpc, prefix, half, azs)?;
    Ok((public, private))
}

/// Blocks `start..start+count` of `net` split into /`prefix` subnets.
fn carve(net: Ipv4Net, prefix: u8, start: usize, count: usize) -> Result<Vec<Ipv4Net>, String> {
    let subnets = net
        .subnets(prefix)
        .map_err(|_| format!("{net} cannot be split into /{prefix} subnets"))?;
    let out: Vec<Ipv4Net> = subnets.skip(start).take(count).collect();
    if out.len() < count {
        return Err(format!(
            "{net} holds fewer than {} /{prefix} subnets",
            start + count
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_layout_is_deterministic() {
        let layout = NetworkSpec::default().layout().expect("default layout");
        let show = |v: &[Ipv4Net]| v.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(
            show(&layout.public),
            ["10.0.0.0/20", "10.0.16.0/20", "10.0.32.0/20"]
        );
        assert_eq!(
            show(&layout.private),
            ["10.0.128.0/20", "10.0.144.0/20", "10.0.160.0/20"]
        );
        assert!(layout.pods.is_empty());
    }

    #[test]
    fn pod_subnets_split_the_pod_cidr() {
        let spec = NetworkSpec {
            pod_cidr: Some("100.64.0.0/16".into()),
            ..NetworkSpec::default()
        };
        let layout = spec.layout().expect("layout");
        let pods: Vec<String> = layout.pods.iter().map(|n| n.to_string()).collect();
        assert_eq!(pods, ["100.64.0.0/18", "100.64.64.0/18", "100.64.128.0/18"]);
    }

    #[test]
    fn small_vpc_cannot_hold_six_azs() {
        let spec = NetworkSpec {
            vpc_cidr: "10.0.0.0/24".into(),
            az_count: 6,
            subnet_prefix_length: Some(28),
            ..NetworkSpec::default()
        };
        assert!(spec.layout().is_ok());
        let spec = NetworkSpec {
            subnet_prefix_length: Some(27),
            ..spec
        };
        assert!(spec.layout().is_err());
    }
}
