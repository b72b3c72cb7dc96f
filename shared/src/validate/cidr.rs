//! CIDR rules: syntax, VPC size and range, subnets that fit, pod CIDR, overlaps, public access.

use std::net::Ipv4Addr;

use ipnet::{Ipv4Net, Ipv6Net};

use super::{field, index, rules, Issues};
use crate::spec::{
    ComplianceProfile, EndpointAccess, NatMode, NetworkSpec, VpcEndpointService,
    LOG_RETENTION_DAYS, POD_CIDR_RANGE,
};

const fn net(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    match Ipv4Net::new(Ipv4Addr::new(a, b, c, d), len) {
        Ok(n) => n,
        Err(_) => panic!("valid network"),
    }
}

/// RFC 1918 ranges plus RFC 6598 shared space: the ranges a VPC may use.
const PRIVATE_RANGES: [Ipv4Net; 4] = [
    net(10, 0, 0, 0, 8),
    net(172, 16, 0, 0, 12),
    net(192, 168, 0, 0, 16),
    net(100, 64, 0, 0, 10),
];

/// Ranges that are never public internet addresses.
const NON_PUBLIC_RANGES: [Ipv4Net; 7] = [
    net(10, 0, 0, 0, 8),
    net(172, 16, 0, 0, 12),
    net(192, 168, 0, 0, 16),
    net(100, 64, 0, 0, 10),
    net(127, 0, 0, 0, 8),
    net(169, 254, 0, 0, 16),
    net(224, 0, 0, 0, 4),
];

/// Most public access CIDRs EKS accepts.
pub(crate) const MAX_PUBLIC_ACCESS_CIDRS: usize = 40;

/// Parses an IPv4 CIDR whose host bits are zero, or reports `cidr-syntax`.
pub(crate) fn parse_cidr(issues: &mut Issues, path: &str, text: &str) -> Option<Ipv4Net> {
    match text.parse::<Ipv4Net>() {
        Ok(n) if n.addr() == n.network() => Some(n),
        Ok(n) => {
            issues.push(
                path,
                rules::CIDR_SYNTAX,
                format!(
                    "{text:?} has host bits set; did you mean {}/{}?",
                    n.network(),
                    n.prefix_len()
                ),
            );
            None
        }
        Err(_) if text.parse::<Ipv6Net>().is_ok() => {
            issues.push(
                path,
                rules::CIDR_SYNTAX,
                format!("{text:?} is IPv6; only IPv4 CIDRs are supported"),
            );
            None
        }
        Err(_) => {
            issues.push(
                path,
                rules::CIDR_SYNTAX,
                format!("{text:?} is not an IPv4 CIDR like 10.0.0.0/16"),
            );
            None
        }
    }
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(b) || b.contains(a)
}

/// Checks a retention against the values CloudWatch Logs accepts.
pub(crate) fn check_retention(issues: &mut Issues, path: &str, days: u32) {
    if !LOG_RETENTION_DAYS.contains(&days) {
        issues.push(
            path,
            rules::RETENTION_DAYS,
            format!("CloudWatch Logs does not accept a retention of {days} days; use one of {LOG_RETENTION_DAYS:?}"),
        );
    }
}

/// Every network rule. `base` is the path of the network object.
pub(crate) fn check_network(issues: &mut Issues, base: &str, n: &NetworkSpec) {
    if !(2..=6).contains(&n.az_count) {
        issues.push(
            field(base, "azCount"),
            rules::AZ_COUNT,
            format!("azCount is {}; it must be between 2 and 6", n.az_count),
        );
    }
    let vpc = check_vpc(issues, base, n);
    let mut subnets = carved_subnets(issues, base, n, vpc);
    subnets.extend(explicit_subnets(issues, base, n, vpc));
    check_overlaps(issues, &subnets);
    if let Some(text) = &n.pod_cidr {
        check_pod_cidr(issues, &field(base, "podCidr"), text, vpc);
    }
    check_endpoints(issues, base, n);
    check_retention(
        issues,
        &field(&field(base, "flowLogs"), "retentionDays"),
        n.flow_logs.retention_days,
    );
}

/// The VPC CIDR's rules; the CIDR when it parses.
fn check_vpc(issues: &mut Issues, base: &str, n: &NetworkSpec) -> Option<Ipv4Net> {
    let vpc_path = field(base, "vpcCidr");
    let vpc = parse_cidr(issues, &vpc_path, &n.vpc_cidr);
    if let Some(vpc) = vpc {
        if !(16..=24).contains(&vpc.prefix_len()) {
            issues.push(
                vpc_path.as_str(),
                rules::VPC_CIDR_SIZE,
                format!("VPC CIDR {vpc} must have a prefix between /16 and /24"),
            );
        }
        if !PRIVATE_RANGES.iter().any(|r| r.contains(&vpc)) {
            issues.push(
                vpc_path.as_str(),
                rules::VPC_CIDR_RANGE,
                format!("VPC CIDR {vpc} is not inside a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10)"),
            );
        }
    }
    vpc
}

/// The subnets carved from the VPC for the lists the request leaves out, each with a name for
/// overlap messages (none when the VPC cannot hold them, which is reported).
fn carved_subnets(
    issues: &mut Issues,
    base: &str,
    n: &NetworkSpec,
    vpc: Option<Ipv4Net>,
) -> Vec<(String, Ipv4Net)> {
    let azs = n.az_count as usize;
    let mut subnets: Vec<(String, Ipv4Net)> = Vec::new();
    let carving_needed = n.public_subnets.is_none() || n.private_subnets.is_none();
    if let (Some(vpc), true) = (vpc, carving_needed) {
        let prefix_path = match n.subnet_prefix_length {
            Some(_) => field(base, "subnetPrefixLength"),
            None => field(base, "vpcCidr"),
        };
        let prefix = n.effective_subnet_prefix(vpc);
        if prefix <= vpc.prefix_len() || prefix > 28 {
            issues.push(
                prefix_path,
                rules::SUBNET_FIT,
                format!("subnets of /{prefix} cannot be carved from VPC {vpc}: the prefix must be longer than /{} and at most /28", vpc.prefix_len()),
            );
        } else if azs * 2 > (1usize << (prefix - vpc.prefix_len()).min(20)) {
            issues.push(
                prefix_path,
                rules::SUBNET_FIT,
                format!("VPC {vpc} holds {} /{prefix} subnets: not enough for {azs} public and {azs} private subnets", 1usize << (prefix - vpc.prefix_len())),
            );
        } else if (2..=6).contains(&n.az_count) {
            if let Ok(layout) = n.layout() {
                for (i, s) in layout.public.iter().enumerate() {
                    if n.public_subnets.is_none() {
                        subnets.push((format!("carved public subnet {i}"), *s));
                    }
                }
                for (i, s) in layout.private.iter().enumerate() {
                    if n.private_subnets.is_none() {
                        subnets.push((format!("carved private subnet {i}"), *s));
                    }
                }
            }
        }
    }
    subnets
}

/// The subnets the request lists, each with its path.
fn explicit_subnets(
    issues: &mut Issues,
    base: &str,
    n: &NetworkSpec,
    vpc: Option<Ipv4Net>,
) -> Vec<(String, Ipv4Net)> {
    let azs = n.az_count as usize;
    let mut subnets = Vec::new();
    let explicit = [
        ("publicSubnets", &n.public_subnets),
        ("privateSubnets", &n.private_subnets),
    ];
    for (name, list) in explicit {
        let Some(list) = list else { continue };
        let list_path = field(base, name);
        if list.len() != azs {
            issues.push(
                list_path.as_str(),
                rules::SUBNET_COUNT,
                format!(
                    "{name} lists {} subnets; azCount is {azs}, one per AZ",
                    list.len()
                ),
            );
        }
        for (i, text) in list.iter().enumerate() {
            let path = index(&list_path, i);
            let Some(subnet) = parse_cidr(issues, &path, text) else {
                continue;
            };
            if let Some(vpc) = vpc {
                if !vpc.contains(&subnet) {
                    issues.push(
                        path.as_str(),
                        rules::SUBNET_OUTSIDE_VPC,
                        format!("subnet {subnet} does not fit in VPC {vpc}"),
                    );
                    continue;
                }
            }
            if subnet.prefix_len() > 28 {
                issues.push(
                    path.as_str(),
                    rules::SUBNET_FIT,
                    format!("subnet {subnet} is smaller than /28, the smallest subnet AWS allows"),
                );
            }
            subnets.push((path, subnet));
        }
    }
    subnets
}

/// Pairwise overlaps, reported on the later subnet.
fn check_overlaps(issues: &mut Issues, subnets: &[(String, Ipv4Net)]) {
    for (j, (path, subnet)) in subnets.iter().enumerate() {
        if let Some((first, other)) = subnets[..j].iter().find(|(_, o)| overlaps(o, subnet)) {
            issues.push(
                path.as_str(),
                rules::CIDR_OVERLAP,
                format!("subnet {subnet} overlaps {other} ({first})"),
            );
        }
    }
}

/// The pod CIDR at `path`: inside the range for pods, one subnet per AZ, apart from the VPC.
fn check_pod_cidr(issues: &mut Issues, path: &str, text: &str, vpc: Option<Ipv4Net>) {
    if let Some(pod) = parse_cidr(issues, path, text) {
        if !POD_CIDR_RANGE.contains(&pod) {
            issues.push(
                path,
                rules::POD_CIDR_RANGE,
                format!("pod CIDR {pod} must be inside {POD_CIDR_RANGE}"),
            );
        }
        if !(16..=24).contains(&pod.prefix_len()) {
            issues.push(
                path,
                rules::POD_CIDR_SIZE,
                format!(
                    "pod CIDR {pod} must have a prefix between /16 and /24 (one pod subnet per AZ)"
                ),
            );
        }
        if let Some(vpc) = vpc {
            if overlaps(&vpc, &pod) {
                issues.push(
                    path,
                    rules::CIDR_OVERLAP,
                    format!("pod CIDR {pod} overlaps the VPC CIDR {vpc}"),
                );
            }
        }
    }
}

/// Each endpoint once, and without NAT the ones nodes cannot do without.
fn check_endpoints(issues: &mut Issues, base: &str, n: &NetworkSpec) {
    let endpoints_path = field(base, "endpoints");
    for (i, endpoint) in n.endpoints.iter().enumerate() {
        if n.endpoints[..i].contains(endpoint) {
            issues.push(
                index(&endpoints_path, i),
                rules::DUPLICATE_ENDPOINT,
                format!("endpoint `{}` is listed twice", endpoint.as_str()),
            );
        }
    }
    if n.nat_mode == NatMode::None {
        let missing: Vec<&str> = VpcEndpointService::REQUIRED_WITHOUT_NAT
            .iter()
            .filter(|e| !n.endpoints.contains(e))
            .map(|e| e.as_str())
            .collect();
        if !missing.is_empty() {
            issues.push(
                endpoints_path,
                rules::NAT_ENDPOINTS,
                format!(
                    "natMode is `none`, so nodes reach AWS only through VPC endpoints; add {}",
                    missing.join(", ")
                ),
            );
        }
    }
}

/// Endpoint access rules. `base` is the path of the endpointAccess object.
pub(crate) fn check_endpoint_access(
    issues: &mut Issues,
    base: &str,
    access: &EndpointAccess,
    profile: ComplianceProfile,
) {
    if !access.private && access.public_access_cidrs.is_empty() {
        issues.push(
            base,
            rules::ENDPOINT_ACCESS_NONE,
            "the private endpoint is off and no public access CIDR is given: nothing could reach the cluster API",
        );
    }
    let list_path = field(base, "publicAccessCidrs");
    if access.public_access_cidrs.len() > MAX_PUBLIC_ACCESS_CIDRS {
        issues.push(
            list_path.as_str(),
            rules::PUBLIC_ACCESS_CIDR_COUNT,
            format!(
                "{} public access CIDRs; EKS accepts at most {MAX_PUBLIC_ACCESS_CIDRS}",
                access.public_access_cidrs.len()
            ),
        );
    }
    let mut seen: Vec<Ipv4Net> = Vec::new();
    for (i, text) in access.public_access_cidrs.iter().enumerate() {
        let path = index(&list_path, i);
        let Some(cidr) = parse_cidr(issues, &path, text) else {
            continue;
        };
        if cidr.prefix_len() == 0 {
            if profile != ComplianceProfile::None {
                issues.push(
                    path.as_str(),
                    rules::PUBLIC_ACCESS_OPEN,
                    "0.0.0.0/0 opens the public endpoint to the whole internet, which the compliance profile forbids; list the CIDRs that need access",
                );
            }
        } else if NON_PUBLIC_RANGES.iter().any(|r| overlaps(r, &cidr)) {
            issues.push(
                path.as_str(),
                rules::PUBLIC_ACCESS_PRIVATE_RANGE,
                format!("{cidr} is not a public range; the private endpoint already serves private addresses"),
            );
        }
        if let Some(other) = seen.iter().find(|o| overlaps(o, &cidr)) {
            issues.push(
                path.as_str(),
                rules::CIDR_OVERLAP,
                format!("{cidr} overlaps {other}, listed earlier"),
            );
        }
        seen.push(cidr);
    }
}
