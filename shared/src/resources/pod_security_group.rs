//! A Fargate tenant's pod security group (`ec2:security-group`, `<stem>-t-<tenant>-pods`): what
//! isolates a tenant's Fargate pods, which NetworkPolicies do not reach (the VPC CNI enforces
//! them on EC2 nodes only). The tenant's `SecurityGroupPolicy` gives every pod of its namespace
//! this group, and this group alone: AWS suggests adding the cluster security group for the
//! control plane, but every node and node pod and every Fargate pod without a policy carries
//! that group, which lets all of them in, so Tenantry writes the control plane's rules instead.
//!
//! The rules mirror the tenant's NetworkPolicies ([`pod_rules`]):
//! - in and out from the group itself (the namespace's own pods, `allow-same-namespace`);
//! - in from the cluster security group on TCP 10250 (the control plane reaching the kubelet of
//!   a Fargate pod: logs, exec);
//! - out on TCP 443 anywhere (AWS APIs, the cluster endpoint, image pulls; Fargate has no
//!   instance metadata service to keep away from);
//! - out on UDP and TCP 53 to the cluster security group (CoreDNS, on nodes or on Fargate);
//! - each `allowFrom` rule: in from the peer's pods on its ports, and for a rule of another
//!   tenant naming this one, out to that tenant's pods. A peer on Fargate is its own group; a
//!   peer on nodes is the cluster security group (node pods carry their node's group), where
//!   the node tenants' NetworkPolicies (egress denied by default) keep the other node pods out.
//!
//! The cluster security group allows in only what comes from itself, so the Fargate tenant gets
//! rules there too ([`cluster_rules`], described `tenantry:<tenant>:...` so that each tenant's
//! are told apart): HTTPS to the private cluster endpoint, DNS to CoreDNS, and its traffic to
//! node tenants that allow it in.
//!
//! A tenant is on Fargate whole or not at all (validation refuses label selectors on a tenant's
//! profile): a tenant's node pods and Fargate pods could only reach each other through the
//! cluster security group, which would let every node pod in.

use std::collections::BTreeMap;

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, ResourceType, SecurityGroup, UserIdGroupPair,
};

use crate::error::FunctionError;
use crate::phases::aws_error;
use crate::phases::common::{error_code, removal, tag_spec, Removal};
use crate::spec::TenantSpec;

/// The purpose part of the group's name (`naming::Names::security_group`).
pub fn purpose(tenant: &str) -> String {
    format!("t-{tenant}-pods")
}

/// The name of the `SecurityGroupPolicy` in the tenant's namespace.
pub const POLICY_NAME: &str = "tenantry-pods";

/// Rules whose description starts so are the AWS Load Balancer Controller's (the group carries
/// the cluster tag, so the controller opens it to its load balancers): never revoked.
const LOAD_BALANCER_RULES: &str = "elbv2.k8s.aws/";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    Ingress,
    Egress,
}

/// The other side of a rule: a security group or an IPv4 range.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Peer {
    Group(String),
    Cidr(String),
}

/// One security group rule. Two rules are the same when all but the description match.
#[derive(Debug, Clone)]
pub struct Rule {
    pub direction: Direction,
    /// `tcp`, `udp` or `-1` (all).
    pub protocol: String,
    pub from: i32,
    pub to: i32,
    pub peer: Peer,
    pub description: String,
}

type RuleKey = (Direction, String, i32, i32, Peer);

impl Rule {
    fn key(&self) -> RuleKey {
        (
            self.direction,
            self.protocol.clone(),
            self.from,
            self.to,
            self.peer.clone(),
        )
    }

    fn port(direction: Direction, protocol: &str, port: i32, peer: &Peer, why: String) -> Rule {
        Rule {
            direction,
            protocol: protocol.to_owned(),
            from: port,
            to: port,
            peer: peer.clone(),
            description: why,
        }
    }

    /// How the rule reads in a drift report.
    pub fn show(&self) -> String {
        let dir = match self.direction {
            Direction::Ingress => "in",
            Direction::Egress => "out",
        };
        let peer = match &self.peer {
            Peer::Group(g) => g.clone(),
            Peer::Cidr(c) => c.clone(),
        };
        let ports = match (self.protocol.as_str(), self.from == self.to) {
            ("-1", _) => "all".to_owned(),
            (p, true) => format!("{p}/{}", self.from),
            (p, false) => format!("{p}/{}-{}", self.from, self.to),
        };
        format!("{dir} {ports} {peer}")
    }
}

/// What the rules of the platform's Fargate tenants depend on.
pub struct Links<'a> {
    /// The tenants whose rules are in force (`tenant::peers::present`), the one at hand among
    /// them.
    pub tenants: &'a BTreeMap<String, TenantSpec>,
    /// Each Fargate tenant's pod group id, for the groups that exist.
    pub groups: &'a BTreeMap<String, String>,
    /// The cluster security group (nodes, node pods, CoreDNS, the control plane's interfaces).
    pub cluster_group: &'a str,
}

impl Links<'_> {
    /// Where the pods of `tenant` are, as a rule's peer: its own group on Fargate, the cluster
    /// group on nodes; `None` for a Fargate tenant whose group does not exist yet (its
    /// onboarding converges the rules that name it once it does).
    fn pods_of(&self, tenant: &str) -> Option<Peer> {
        match self.tenants.get(tenant) {
            Some(t) if t.fargate.is_some() => self.groups.get(tenant).cloned().map(Peer::Group),
            Some(_) => Some(Peer::Group(self.cluster_group.to_owned())),
            None => None,
        }
    }

    /// The rules of other tenants that name `tenant` (`(owner, rule)`): traffic from `tenant`.
    fn naming<'t>(
        &'t self,
        tenant: &'t str,
    ) -> impl Iterator<Item = (&'t TenantSpec, &'t crate::spec::AllowFrom)> + 't {
        self.tenants
            .values()
            .filter(move |o| o.name != tenant)
            .flat_map(move |o| {
                o.allow_from
                    .iter()
                    .filter(move |r| r.tenant == tenant)
                    .map(move |r| (o, r))
            })
    }

    /// Whether the groups of `a` and `b` name each other's pods (one's rule names the other).
    pub fn linked(&self, a: &TenantSpec, b: &str) -> bool {
        a.name == b
            || a.allow_from.iter().any(|r| r.tenant == b)
            || self
                .tenants
                .get(b)
                .is_some_and(|t| t.allow_from.iter().any(|r| r.tenant == a.name))
    }
}

fn protocol(p: crate::spec::Protocol) -> &'static str {
    match p {
        crate::spec::Protocol::Tcp => "tcp",
        crate::spec::Protocol::Udp => "udp",
    }
}

/// One rule per port of an `allowFrom` rule, in `direction`, with `peer`.
fn allowed<'a>(
    direction: Direction,
    rule: &'a crate::spec::AllowFrom,
    peer: &'a Peer,
    why: &'a str,
) -> impl Iterator<Item = Rule> + 'a {
    rule.ports.iter().map(move |port| {
        Rule::port(
            direction,
            protocol(rule.protocol),
            i32::from(*port),
            peer,
            why.to_owned(),
        )
    })
}

/// The rules of `tenant`'s own pod group (`own`: its id).
pub fn pod_rules(tenant: &TenantSpec, own: &str, links: &Links<'_>) -> Vec<Rule> {
    let me = Peer::Group(own.to_owned());
    let cluster = Peer::Group(links.cluster_group.to_owned());
    let name = &tenant.name;
    let mut out = Vec::new();
    for direction in [Direction::Ingress, Direction::Egress] {
        out.push(Rule {
            direction,
            protocol: "-1".to_owned(),
            from: -1,
            to: -1,
            peer: me.clone(),
            description: format!("tenantry:{name}:same-namespace"),
        });
    }
    out.push(Rule::port(
        Direction::Ingress,
        "tcp",
        10250,
        &cluster,
        format!("tenantry:{name}:kubelet"),
    ));
    out.push(Rule::port(
        Direction::Egress,
        "tcp",
        443,
        &Peer::Cidr("0.0.0.0/0".to_owned()),
        format!("tenantry:{name}:https"),
    ));
    for p in ["udp", "tcp"] {
        out.push(Rule::port(
            Direction::Egress,
            p,
            53,
            &cluster,
            format!("tenantry:{name}:dns"),
        ));
    }
    for rule in &tenant.allow_from {
        let Some(peer) = links.pods_of(&rule.tenant) else {
            continue;
        };
        let why = format!("tenantry:{name}:from-{}", rule.tenant);
        out.extend(allowed(Direction::Ingress, rule, &peer, &why));
    }
    for (owner, rule) in links.naming(name) {
        let Some(peer) = links.pods_of(&owner.name) else {
            continue;
        };
        let why = format!("tenantry:{name}:to-{}", owner.name);
        out.extend(allowed(Direction::Egress, rule, &peer, &why));
    }
    out
}

/// The ingress rules `tenant`'s pods need in the cluster security group (`own`: its pod
/// group): the cluster endpoint, CoreDNS, and the node tenants whose `allowFrom` names it.
pub fn cluster_rules(tenant: &TenantSpec, own: &str, links: &Links<'_>) -> Vec<Rule> {
    let me = Peer::Group(own.to_owned());
    let name = &tenant.name;
    let mut out = vec![Rule::port(
        Direction::Ingress,
        "tcp",
        443,
        &me,
        format!("tenantry:{name}:endpoint"),
    )];
    for p in ["udp", "tcp"] {
        out.push(Rule::port(
            Direction::Ingress,
            p,
            53,
            &me,
            format!("tenantry:{name}:dns"),
        ));
    }
    for (owner, rule) in links.naming(name) {
        if owner.fargate.is_some() {
            continue;
        }
        let why = format!("tenantry:{name}:to-{}", owner.name);
        out.extend(allowed(Direction::Ingress, rule, &me, &why));
    }
    out
}

/// The rules of the cluster group that belong to `tenant` (by their description).
pub fn owned_by<'r>(rules: &'r [Rule], tenant: &str) -> Vec<&'r Rule> {
    let prefix = format!("tenantry:{tenant}:");
    rules
        .iter()
        .filter(|r| r.description.starts_with(&prefix))
        .collect()
}

/// What to add and what to take away so that `live` (the rules under Tenantry's care) holds
/// `desired`.
pub fn changes<'a>(desired: &'a [Rule], live: &[&'a Rule]) -> (Vec<&'a Rule>, Vec<&'a Rule>) {
    let have: Vec<RuleKey> = live.iter().map(|r| r.key()).collect();
    let want: Vec<RuleKey> = desired.iter().map(Rule::key).collect();
    let add = desired
        .iter()
        .filter(|r| !have.contains(&r.key()))
        .collect();
    let remove = live
        .iter()
        .copied()
        .filter(|r| !want.contains(&r.key()))
        .collect();
    (add, remove)
}

/// The rules of a live group, one per peer; the load balancer controller's are left out (they
/// are not Tenantry's to keep or take away).
pub fn live_rules(group: &SecurityGroup) -> Vec<Rule> {
    let mut out = Vec::new();
    let sides = [
        (Direction::Ingress, group.ip_permissions()),
        (Direction::Egress, group.ip_permissions_egress()),
    ];
    for (direction, permissions) in sides {
        for p in permissions {
            let protocol = p.ip_protocol().unwrap_or("-1").to_owned();
            let (from, to) = match protocol.as_str() {
                "-1" => (-1, -1),
                _ => (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1)),
            };
            let mut push = |peer: Peer, description: Option<&str>| {
                let description = description.unwrap_or_default().to_owned();
                if !description.starts_with(LOAD_BALANCER_RULES) {
                    out.push(Rule {
                        direction,
                        protocol: protocol.clone(),
                        from,
                        to,
                        peer,
                        description,
                    });
                }
            };
            for pair in p.user_id_group_pairs() {
                let id = pair.group_id().unwrap_or_default().to_owned();
                push(Peer::Group(id), pair.description());
            }
            for range in p.ip_ranges() {
                let cidr = range.cidr_ip().unwrap_or_default().to_owned();
                push(Peer::Cidr(cidr), range.description());
            }
        }
    }
    out
}

fn permission(rule: &Rule) -> IpPermission {
    let mut p = IpPermission::builder().ip_protocol(&rule.protocol);
    if rule.protocol != "-1" {
        p = p.from_port(rule.from).to_port(rule.to);
    }
    match &rule.peer {
        Peer::Group(id) => p.user_id_group_pairs(
            UserIdGroupPair::builder()
                .group_id(id)
                .description(&rule.description)
                .build(),
        ),
        Peer::Cidr(cidr) => p.ip_ranges(
            IpRange::builder()
                .cidr_ip(cidr)
                .description(&rule.description)
                .build(),
        ),
    }
    .build()
}

/// Adding rules to a group, or taking them away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Authorize,
    Revoke,
}

/// A failed rule call: its service error code, and the error to return.
type RuleError = (Option<String>, FunctionError);

fn rule_error<E, R>(operation: &str, e: SdkError<E, R>) -> RuleError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    (error_code(&e).map(str::to_owned), aws_error(operation, e))
}

/// One rule added to or taken from group `id` (the EC2 call of its change and direction).
async fn send(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    r: &Rule,
    change: Change,
) -> Result<(), RuleError> {
    let p = permission(r);
    match (change, r.direction) {
        (Change::Authorize, Direction::Ingress) => {
            let call = ec2.authorize_security_group_ingress().group_id(id);
            let sent = call.ip_permissions(p).send().await;
            sent.map(|_| ())
                .map_err(|e| rule_error("AuthorizeSecurityGroupIngress", e))
        }
        (Change::Authorize, Direction::Egress) => {
            let call = ec2.authorize_security_group_egress().group_id(id);
            let sent = call.ip_permissions(p).send().await;
            sent.map(|_| ())
                .map_err(|e| rule_error("AuthorizeSecurityGroupEgress", e))
        }
        (Change::Revoke, Direction::Ingress) => {
            let call = ec2.revoke_security_group_ingress().group_id(id);
            let sent = call.ip_permissions(p).send().await;
            sent.map(|_| ())
                .map_err(|e| rule_error("RevokeSecurityGroupIngress", e))
        }
        (Change::Revoke, Direction::Egress) => {
            let call = ec2.revoke_security_group_egress().group_id(id);
            let sent = call.ip_permissions(p).send().await;
            sent.map(|_| ())
                .map_err(|e| rule_error("RevokeSecurityGroupEgress", e))
        }
    }
}

/// Applies `change` to each of `rules` in group `id`, one call per rule; a rule already there
/// (authorize) or already gone (revoke) is fine, so a retry after a crash goes through.
async fn apply(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    rules: &[&Rule],
    change: Change,
) -> Result<(), FunctionError> {
    let settled = match change {
        Change::Authorize => "InvalidPermission.Duplicate",
        Change::Revoke => "InvalidPermission.NotFound",
    };
    for r in rules {
        match send(ec2, id, r, change).await {
            Ok(()) => {}
            Err((Some(code), _)) if code == settled => {}
            Err((_, e)) => return Err(e),
        }
    }
    Ok(())
}

/// Adds `rules` to group `id`.
pub async fn authorize(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    rules: &[&Rule],
) -> Result<(), FunctionError> {
    apply(ec2, id, rules, Change::Authorize).await
}

/// Takes `rules` away from group `id`.
pub async fn revoke(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    rules: &[&Rule],
) -> Result<(), FunctionError> {
    apply(ec2, id, rules, Change::Revoke).await
}

/// The platform's security groups in its VPC with a `tenantry:tenant` tag and a pod group's
/// name, by tenant (one call).
pub async fn find_tenant_groups(
    ec2: &aws_sdk_ec2::Client,
    platform: &str,
    vpc: &str,
    name_of: impl Fn(&str) -> String,
) -> Result<BTreeMap<String, SecurityGroup>, FunctionError> {
    let out = ec2
        .describe_security_groups()
        .filters(
            Filter::builder()
                .name(format!("tag:{}", crate::naming::TAG_PLATFORM))
                .values(platform)
                .build(),
        )
        .filters(Filter::builder().name("vpc-id").values(vpc).build())
        .send()
        .await
        .map_err(|e| aws_error("DescribeSecurityGroups", e))?;
    let mut groups = BTreeMap::new();
    for g in out.security_groups() {
        let tenant = g
            .tags()
            .iter()
            .find(|t| t.key() == Some(crate::naming::TAG_TENANT))
            .and_then(|t| t.value());
        if let Some(tenant) = tenant {
            if g.group_name() == Some(name_of(tenant).as_str()) {
                groups.insert(tenant.to_owned(), g.clone());
            }
        }
    }
    Ok(groups)
}

/// One group by id (the cluster security group).
pub async fn describe(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
) -> Result<Option<SecurityGroup>, FunctionError> {
    match ec2.describe_security_groups().group_ids(id).send().await {
        Ok(out) => Ok(out.security_groups().first().cloned()),
        Err(e) if error_code(&e) == Some("InvalidGroup.NotFound") => Ok(None),
        Err(e) => Err(aws_error("DescribeSecurityGroups", e)),
    }
}

/// Creates the group (its default allow-all egress is taken away by the first convergence,
/// which keeps only [`pod_rules`]); its id.
pub async fn create(
    ec2: &aws_sdk_ec2::Client,
    name: &str,
    tenant: &str,
    vpc: &str,
    tags: &BTreeMap<String, String>,
) -> Result<String, FunctionError> {
    let out = ec2
        .create_security_group()
        .group_name(name)
        .description(format!("Tenantry: the Fargate pods of tenant {tenant}"))
        .vpc_id(vpc)
        .tag_specifications(tag_spec(ResourceType::SecurityGroup, tags))
        .send()
        .await
        .map_err(|e| aws_error("CreateSecurityGroup", e))?;
    Ok(out.group_id().unwrap_or_default().to_owned())
}

/// Deletes the group; false while something still uses it or names it (`DependencyViolation`:
/// the pods' network interfaces are going away).
pub async fn delete(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<bool, FunctionError> {
    let result = ec2.delete_security_group().group_id(id).send().await;
    Ok(removal("DeleteSecurityGroup", result)? != Removal::Blocked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{AllowFrom, Protocol, TenantFargateSpec};

    fn tenant(name: &str, fargate: bool, allow: &[(&str, u16)]) -> TenantSpec {
        let mut t: TenantSpec = serde_json::from_value(serde_json::json!({
            "name": name, "owners": ["arn:aws:iam::111122223333:role/o"], "costCentre": "cc-1",
        }))
        .unwrap();
        t.fargate = fargate.then(TenantFargateSpec::default);
        t.allow_from = allow
            .iter()
            .map(|(peer, port)| AllowFrom {
                tenant: (*peer).to_owned(),
                ports: vec![*port],
                protocol: Protocol::Tcp,
            })
            .collect();
        t
    }

    fn shown(rules: &[Rule]) -> Vec<String> {
        let mut v: Vec<String> = rules.iter().map(Rule::show).collect();
        v.sort();
        v
    }

    #[test]
    fn a_fargate_tenant_alone_talks_to_itself_the_control_plane_dns_and_https() {
        let t = tenant("payment", true, &[]);
        let tenants = BTreeMap::from([(t.name.clone(), t.clone())]);
        let groups = BTreeMap::from([("payment".to_owned(), "sg-pay".to_owned())]);
        let links = Links {
            tenants: &tenants,
            groups: &groups,
            cluster_group: "sg-cluster",
        };
        assert_eq!(
            shown(&pod_rules(&t, "sg-pay", &links)),
            [
                "in all sg-pay",
                "in tcp/10250 sg-cluster",
                "out all sg-pay",
                "out tcp/443 0.0.0.0/0",
                "out tcp/53 sg-cluster",
                "out udp/53 sg-cluster",
            ]
        );
        assert_eq!(
            shown(&cluster_rules(&t, "sg-pay", &links)),
            ["in tcp/443 sg-pay", "in tcp/53 sg-pay", "in udp/53 sg-pay"]
        );
    }

    #[test]
    fn allow_from_opens_both_sides_between_the_right_groups() {
        // payment (Fargate) lets fraud (Fargate) and web (nodes) in on 8080; fraud lets
        // payment in on 9090.
        let payment = tenant("payment", true, &[("fraud", 8080), ("web", 8080)]);
        let fraud = tenant("fraud", true, &[("payment", 9090)]);
        let web = tenant("web", false, &[("payment", 7070)]);
        let tenants: BTreeMap<String, TenantSpec> = [&payment, &fraud, &web]
            .into_iter()
            .map(|t| (t.name.clone(), t.clone()))
            .collect();
        let groups = BTreeMap::from([
            ("payment".to_owned(), "sg-pay".to_owned()),
            ("fraud".to_owned(), "sg-fraud".to_owned()),
        ]);
        let links = Links {
            tenants: &tenants,
            groups: &groups,
            cluster_group: "sg-cluster",
        };
        let pay = shown(&pod_rules(&payment, "sg-pay", &links));
        for want in [
            "in tcp/8080 sg-fraud",
            "in tcp/8080 sg-cluster",
            "out tcp/9090 sg-fraud",
            "out tcp/7070 sg-cluster",
        ] {
            assert!(pay.contains(&want.to_owned()), "{want} in {pay:?}");
        }
        let fr = shown(&pod_rules(&fraud, "sg-fraud", &links));
        assert!(fr.contains(&"out tcp/8080 sg-pay".to_owned()), "{fr:?}");
        assert!(fr.contains(&"in tcp/9090 sg-pay".to_owned()), "{fr:?}");
        assert!(!fr.iter().any(|r| r.contains("7070")), "{fr:?}");
        // The node tenant web lets payment in: the cluster group admits payment's pods on
        // 7070, and nothing for fraud.
        let cl = shown(&cluster_rules(&payment, "sg-pay", &links));
        assert!(cl.contains(&"in tcp/7070 sg-pay".to_owned()), "{cl:?}");
        assert!(!shown(&cluster_rules(&fraud, "sg-fraud", &links))
            .iter()
            .any(|r| r.contains("7070")));
    }

    #[test]
    fn a_peer_whose_group_is_not_made_yet_is_left_out_until_it_is() {
        let payment = tenant("payment", true, &[("fraud", 8080)]);
        let fraud = tenant("fraud", true, &[]);
        let tenants: BTreeMap<String, TenantSpec> = [&payment, &fraud]
            .into_iter()
            .map(|t| (t.name.clone(), t.clone()))
            .collect();
        let groups = BTreeMap::from([("payment".to_owned(), "sg-pay".to_owned())]);
        let links = Links {
            tenants: &tenants,
            groups: &groups,
            cluster_group: "sg-cluster",
        };
        let rules = shown(&pod_rules(&payment, "sg-pay", &links));
        assert!(!rules.iter().any(|r| r.contains("8080")), "{rules:?}");
        assert!(links.linked(&payment, "fraud") && links.linked(&fraud, "payment"));
        assert!(!links.linked(&fraud, "web"));
    }

    #[test]
    fn changes_add_the_missing_and_take_away_the_rest() {
        let r = |port: i32, d: &str| {
            Rule::port(
                Direction::Ingress,
                "tcp",
                port,
                &Peer::Group("sg-a".into()),
                d.into(),
            )
        };
        let desired = [r(1, "tenantry:a:x"), r(2, "tenantry:a:y")];
        let live_rules = [r(2, "another description"), r(3, "tenantry:a:z")];
        let live: Vec<&Rule> = live_rules.iter().collect();
        let (add, remove) = changes(&desired, &live);
        assert_eq!(add.iter().map(|r| r.from).collect::<Vec<_>>(), [1]);
        assert_eq!(remove.iter().map(|r| r.from).collect::<Vec<_>>(), [3]);
        let cluster = [
            r(4, "tenantry:a:dns"),
            r(5, "tenantry:ab:dns"),
            r(6, "other"),
        ];
        assert_eq!(owned_by(&cluster, "a").len(), 1);
    }
}
