//! The planner: a platform spec becomes the list of resources to create, with their
//! dependencies, grouped by phase in provisioning order.
//!
//! Resource ids are stable paths (`network/subnet/private/0`, `tenants/checkout/role`) that the
//! phase functions and the inventory use; names come from [`crate::naming`]; every resource
//! carries the tags of [`crate::naming::tags`]. AZs are referred to by index (0..azCount): the
//! network phase resolves them to the first `azCount` available zones of the region at run time.
//!
//! A dependency always points to a resource in the same or an earlier phase, and the graph has no
//! cycle (both checked by [`Plan::check_graph`]). Plan a *validated* spec: for an invalid one
//! (say, a malformed CIDR) the plan still lists the resources but may omit their CIDRs.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::naming::{self, Names};
use crate::resources::Kind;
use crate::spec::{Cni, NetworkSpec, PlatformSpec, TenantSpec, TrustMechanism};

/// Provisioning phases, in order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// KMS keys and aliases.
    Encryption,
    /// IAM roles that do not need the cluster (cluster, node, flow logs, Pod Identity service
    /// roles); after the cluster, the OIDC provider and the IRSA service roles.
    Identity,
    /// VPC, subnets, gateways, route tables, VPC endpoints, flow logs.
    Network,
    /// Cluster log group, EKS cluster, IAM OIDC provider (and IRSA-only service roles).
    Cluster,
    /// Launch templates and managed node groups.
    Nodegroups,
    /// EKS managed add-ons and Pod Identity associations of the service roles.
    Addons,
    /// In-cluster components: Pod Security labels of the system namespaces, PriorityClasses,
    /// the cluster-autoscaler.
    Bootstrap,
    /// Access entries, OIDC identity provider, group bindings.
    Access,
    /// SNS topic, alarms, Container Insights log groups, the platform configuration secret.
    Observability,
    /// Tenant bucket and each tenant's namespace, policies, quota, role, key, access.
    Tenants,
}

impl Phase {
    /// All phases in order.
    pub const ALL: [Phase; 10] = [
        Phase::Encryption,
        Phase::Identity,
        Phase::Network,
        Phase::Cluster,
        Phase::Nodegroups,
        Phase::Addons,
        Phase::Bootstrap,
        Phase::Access,
        Phase::Observability,
        Phase::Tenants,
    ];

    /// The serialized name (`network`, `nodegroups`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Network => "network",
            Phase::Encryption => "encryption",
            Phase::Identity => "identity",
            Phase::Cluster => "cluster",
            Phase::Nodegroups => "nodegroups",
            Phase::Addons => "addons",
            Phase::Bootstrap => "bootstrap",
            Phase::Access => "access",
            Phase::Observability => "observability",
            Phase::Tenants => "tenants",
        }
    }
}

impl std::str::FromStr for Phase {
    type Err = String;

    fn from_str(s: &str) -> Result<Phase, String> {
        Phase::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown phase {s:?}"))
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One resource to create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedResource {
    /// Stable id, e.g. `network/vpc`.
    pub id: String,
    /// Kind, from the resource catalogue: the same id the inventory records.
    pub kind: Kind,
    /// Deterministic name (AWS name, `Name` tag, or Kubernetes `namespace/name`).
    pub name: String,
    /// Ids of the resources that must exist first.
    pub depends_on: Vec<String>,
    /// Tags (AWS) or labels (Kubernetes) the resource carries.
    pub tags: BTreeMap<String, String>,
    /// Kind-specific settings (CIDR, AZ index, instance types...). Empty when none.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub properties: Value,
}

/// The resources of one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhasePlan {
    /// The phase.
    pub phase: Phase,
    /// Its resources, in creation order.
    pub resources: Vec<PlannedResource>,
}

/// Everything a platform needs, by phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Platform id.
    pub platform_id: String,
    /// EKS cluster name.
    pub cluster_name: String,
    /// Region.
    pub region: String,
    /// Phases in order (every phase is present, possibly empty).
    pub phases: Vec<PhasePlan>,
}

impl Plan {
    /// Number of resources per phase, in phase order.
    pub fn counts_by_phase(&self) -> Vec<(Phase, usize)> {
        self.phases
            .iter()
            .map(|p| (p.phase, p.resources.len()))
            .collect()
    }

    /// Number of resources.
    pub fn total(&self) -> usize {
        self.phases.iter().map(|p| p.resources.len()).sum()
    }

    /// All resources in order.
    pub fn resources(&self) -> impl Iterator<Item = &PlannedResource> {
        self.phases.iter().flat_map(|p| p.resources.iter())
    }

    /// The resources of one phase.
    pub fn phase(&self, phase: Phase) -> &[PlannedResource] {
        self.phases
            .iter()
            .find(|p| p.phase == phase)
            .map(|p| p.resources.as_slice())
            .unwrap_or(&[])
    }

    /// A resource by id.
    pub fn resource(&self, id: &str) -> Option<&PlannedResource> {
        self.resources().find(|r| r.id == id)
    }

    /// Number of resources of each kind.
    pub fn counts_by_kind(&self) -> BTreeMap<Kind, usize> {
        let mut out = BTreeMap::new();
        for r in self.resources() {
            *out.entry(r.kind).or_default() += 1;
        }
        out
    }

    /// Number of resources of a kind.
    pub fn count_kind(&self, kind: Kind) -> usize {
        self.resources().filter(|r| r.kind == kind).count()
    }

    /// Checks the dependency graph: unique ids, every dependency resolves to a planned resource,
    /// and there is no cycle. Resources are grouped by the phase that owns them, and that phase
    /// may run more than once (identity: before and after the cluster), so the listing is not
    /// itself a creation order: [`Plan::creation_order`] is.
    pub fn check_graph(&self) -> Result<(), String> {
        let mut ids: BTreeSet<&str> = BTreeSet::new();
        for r in self.resources() {
            if !ids.insert(r.id.as_str()) {
                return Err(format!("{} is planned twice", r.id));
            }
        }
        for r in self.resources() {
            if let Some(dep) = r.depends_on.iter().find(|d| !ids.contains(d.as_str())) {
                return Err(format!("{} depends on {dep}, which is not planned", r.id));
            }
        }
        let order = self.creation_order();
        if order.len() < ids.len() {
            let stuck = self
                .resources()
                .find(|r| !order.contains(&r.id.as_str()))
                .map(|r| r.id.as_str())
                .unwrap_or_default();
            return Err(format!("{stuck} is on a dependency cycle"));
        }
        Ok(())
    }

    /// Ids in an order that creates every dependency first (Kahn's algorithm, stable: among the
    /// resources that are ready, listing order wins). Resources on a cycle are left out.
    pub fn creation_order(&self) -> Vec<&str> {
        let all: Vec<&PlannedResource> = self.resources().collect();
        let mut done: BTreeSet<&str> = BTreeSet::new();
        let mut order = Vec::new();
        loop {
            let ready: Vec<&str> = all
                .iter()
                .filter(|r| !done.contains(r.id.as_str()))
                .filter(|r| r.depends_on.iter().all(|d| done.contains(d.as_str())))
                .map(|r| r.id.as_str())
                .collect();
            if ready.is_empty() {
                return order;
            }
            for id in ready {
                done.insert(id);
                order.push(id);
            }
        }
    }
}

/// A readable listing: each phase with its count, then `id  kind  name  <- dependencies`.
impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "platform {} (cluster {}, {}): {} resources",
            self.platform_id,
            self.cluster_name,
            self.region,
            self.total()
        )?;
        for p in &self.phases {
            writeln!(f, "\n{} ({})", p.phase, p.resources.len())?;
            for r in &p.resources {
                write!(f, "  {:<58} {:<32} {}", r.id, r.kind.as_str(), r.name)?;
                if !r.depends_on.is_empty() {
                    write!(f, "  <- {}", r.depends_on.join(", "))?;
                }
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

struct Builder<'a> {
    spec: &'a PlatformSpec,
    names: Names,
    phases: Vec<PhasePlan>,
    current: Phase,
}

impl Builder<'_> {
    fn phase(&mut self, phase: Phase) {
        self.current = phase;
        self.phases.push(PhasePlan {
            phase,
            resources: Vec::new(),
        });
    }

    fn add(
        &mut self,
        id: impl Into<String>,
        kind: Kind,
        name: impl Into<String>,
        depends_on: Vec<String>,
        properties: Value,
    ) -> String {
        self.add_for(None, id, kind, name, depends_on, properties)
    }

    fn add_for(
        &mut self,
        tenant: Option<&TenantSpec>,
        id: impl Into<String>,
        kind: Kind,
        name: impl Into<String>,
        depends_on: Vec<String>,
        properties: Value,
    ) -> String {
        let id = id.into();
        let tags = naming::tags(self.spec, tenant, self.current.as_str());
        let resource = PlannedResource {
            id: id.clone(),
            kind,
            name: name.into(),
            depends_on,
            tags,
            properties,
        };
        let current = self.current;
        if let Some(plan) = self.phases.iter_mut().find(|p| p.phase == current) {
            plan.resources.push(resource);
        }
        id
    }

    /// Adds to an earlier phase: a function that runs twice in the workflow (identity, before
    /// and after the cluster) owns resources that depend on later phases.
    fn in_phase<T>(&mut self, phase: Phase, add: impl FnOnce(&mut Self) -> T) -> T {
        let current = std::mem::replace(&mut self.current, phase);
        let out = add(self);
        self.current = current;
        out
    }
}

/// The namespace and service account a service role serves (one table, in `policies`, for the
/// plan and the trust policies alike).
fn service_account(purpose: &str) -> (&str, &str) {
    crate::policies::SERVICE_ACCOUNTS
        .iter()
        .find(|sa| sa.purpose == purpose)
        .map(|sa| (sa.namespace, sa.name))
        .unwrap_or(("kube-system", purpose))
}

/// One CloudWatch alarm on a Container Insights metric of the cluster (namespace
/// [`ALARM_NAMESPACE`], dimension `ClusterName=<cluster>`): everything the `observability` phase
/// puts, so that the plan and the phase share one definition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlarmDefinition {
    /// Alarm name suffix: the alarm is `tenantry-<stem>-<name>`.
    pub name: &'static str,
    /// Container Insights metric.
    pub metric: &'static str,
    /// CloudWatch statistic (`Average`, `Maximum`, `Sum`).
    pub statistic: &'static str,
    /// CloudWatch comparison operator, e.g. `GreaterThanThreshold`.
    pub comparison: &'static str,
    pub threshold: f64,
    pub period_seconds: i32,
    /// Periods evaluated; the alarm fires when all of them breach (`DatapointsToAlarm` equal).
    pub evaluation_periods: i32,
    /// `TreatMissingData`: `missing`, `notBreaching`, `breaching` or `ignore`.
    pub treat_missing_data: &'static str,
    /// Alarm description.
    pub description: &'static str,
}

/// Namespace of the metrics the alarms watch (published by the CloudWatch observability add-on).
pub const ALARM_NAMESPACE: &str = "ContainerInsights";

/// Alarms created when `observability.alarms.enabled`.
pub const ALARMS: &[AlarmDefinition] = &[
    AlarmDefinition {
        name: "node-cpu-high",
        metric: "node_cpu_utilization",
        statistic: "Average",
        comparison: "GreaterThanThreshold",
        threshold: 80.0,
        period_seconds: 300,
        evaluation_periods: 3,
        treat_missing_data: "missing",
        description: "Average node CPU utilisation above 80 % for 15 minutes",
    },
    AlarmDefinition {
        name: "node-memory-high",
        metric: "node_memory_utilization",
        statistic: "Average",
        comparison: "GreaterThanThreshold",
        threshold: 80.0,
        period_seconds: 300,
        evaluation_periods: 3,
        treat_missing_data: "missing",
        description: "Average node memory utilisation above 80 % for 15 minutes",
    },
    AlarmDefinition {
        name: "failed-nodes",
        metric: "cluster_failed_node_count",
        statistic: "Maximum",
        comparison: "GreaterThanThreshold",
        threshold: 0.0,
        period_seconds: 300,
        evaluation_periods: 1,
        treat_missing_data: "notBreaching",
        description: "At least one worker node failed",
    },
    AlarmDefinition {
        name: "apiserver-errors",
        metric: "apiserver_request_total_5xx",
        statistic: "Sum",
        comparison: "GreaterThanThreshold",
        threshold: 0.0,
        period_seconds: 300,
        evaluation_periods: 1,
        treat_missing_data: "notBreaching",
        description: "The Kubernetes API server answered 5xx errors in the last 5 minutes \
                      (Container Insights enhanced observability)",
    },
];

/// Container Insights log groups pre-created with the platform's retention and logs key.
pub const CONTAINER_INSIGHTS_LOG_GROUPS: &[&str] =
    &["application", "dataplane", "host", "performance"];

/// Whether an add-on needs nodes to become healthy: add-ons that run Deployments (CoreDNS, the
/// EBS CSI controller, the CloudWatch agent...) do; vpc-cni, kube-proxy and the pod identity agent
/// are DaemonSets the nodes themselves need, so they only wait for the cluster.
pub fn addon_needs_nodes(name: &str) -> bool {
    !matches!(name, "vpc-cni" | "kube-proxy" | "eks-pod-identity-agent")
}

/// The node groups Map item that stands for the platform's Fargate profiles (`_` cannot start a
/// node group name, so it never meets one).
pub const FARGATE_ITEM: &str = "_fargate";

/// What the provision workflow's Map states iterate over, in the execution input. The critical
/// path is cluster → node groups → add-ons that need nodes; everything else runs beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkItems {
    /// Node group names (spec names, not EKS names), and `_fargate` for the platform's Fargate
    /// profiles.
    pub node_groups: Vec<String>,
    /// Add-ons installed as soon as the cluster is ACTIVE.
    pub addons_without_nodes: Vec<String>,
    /// Add-ons installed once the node groups are ACTIVE.
    pub addons_with_nodes: Vec<String>,
    /// Tenants of the spec, onboarded side by side once the cluster is ACTIVE.
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Whether Calico goes in (bootstrap's `calico` item) before the node groups: `cni: calico`.
    #[serde(default)]
    pub calico: bool,
}

/// The work items of a spec.
pub fn work_items(spec: &PlatformSpec) -> WorkItems {
    let mut seen = BTreeSet::new();
    let (with, without): (Vec<String>, Vec<String>) = spec
        .effective_addons()
        .into_iter()
        .map(|a| a.name)
        .filter(|name| seen.insert(name.clone()))
        .partition(|name| addon_needs_nodes(name));
    let mut node_groups: Vec<String> = spec
        .effective_node_groups()
        .into_iter()
        .map(|g| g.name)
        .collect();
    if !spec.fargate.is_empty() {
        // The platform's Fargate profiles, beside the node groups (see `nodegroups::fargate`).
        node_groups.push(FARGATE_ITEM.to_owned());
    }
    WorkItems {
        node_groups,
        addons_without_nodes: without,
        addons_with_nodes: with,
        tenants: spec.tenants.iter().map(|t| t.name.clone()).collect(),
        calico: spec.cni == Cni::Calico,
    }
}

/// Plans every resource of a platform.
pub fn plan(spec: &PlatformSpec) -> Plan {
    let names = Names::new(spec);
    let mut b = Builder {
        spec,
        names,
        phases: Vec::new(),
        current: Phase::Network,
    };
    let keys = encryption(&mut b);
    let mut roles = identity(&mut b);
    let net = network(&mut b, &keys, &roles);
    let cluster = cluster(&mut b, &net, &keys, &mut roles);
    let groups = nodegroups(&mut b, &net, &roles, &cluster);
    addons(&mut b, &roles, &cluster, &groups);
    bootstrap(&mut b, &roles, &keys, &cluster, &net);
    access(&mut b, &cluster);
    observability(&mut b, &keys, &cluster);
    tenants(&mut b, &keys, &cluster);
    Plan {
        platform_id: spec.id.clone(),
        cluster_name: b.names.cluster(),
        region: spec.region.clone(),
        phases: b.phases,
    }
}

struct NetworkIds {
    private_subnets: Vec<String>,
    /// One per AZ, with a pod CIDR.
    pod_subnets: Vec<String>,
    /// What nodes need for egress (NAT gateways, endpoints).
    egress: Vec<String>,
}

fn network(b: &mut Builder, keys: &KeyIds, roles: &RoleIds) -> NetworkIds {
    b.phase(Phase::Network);
    let n = b.spec.vpc_network();
    let n = n.as_ref();
    let vpc = b.add(
        "network/vpc",
        Kind::Vpc,
        b.names.name_tag("vpc"),
        vec![],
        json!({ "cidr": n.vpc_cidr, "enableDnsHostnames": true, "enableDnsSupport": true }),
    );
    let pod_block = n.pod_cidr.as_ref().map(|pod| {
        b.add(
            "network/vpc-cidr/pods",
            Kind::VpcCidrBlock,
            b.names.name_tag("pods"),
            vec![vpc.clone()],
            json!({ "cidr": pod }),
        )
    });
    let igw = b.add(
        "network/internet-gateway",
        Kind::InternetGateway,
        b.names.name_tag("igw"),
        vec![vpc.clone()],
        Value::Null,
    );
    let subnets = subnets(b, n, &vpc, pod_block.as_deref());
    let nats = nat_gateways(b, n, &subnets.public, &igw);
    let private_route_tables = route_tables(b, n, &vpc, &igw, &subnets, &nats);
    let mut egress = nats;
    egress.extend(endpoints(
        b,
        n,
        &vpc,
        &subnets.private,
        &private_route_tables,
    ));
    if let Some(role) = &roles.flow_logs {
        flow_logs(b, n, &vpc, &keys.logs, role);
    }
    NetworkIds {
        private_subnets: subnets.private,
        pod_subnets: subnets.pods,
        egress,
    }
}

/// The subnets of each AZ, by tier (`pods`: none without a pod CIDR block).
struct SubnetIds {
    public: Vec<String>,
    private: Vec<String>,
    pods: Vec<String>,
}

/// A public and a private subnet per AZ, tagged for the load balancers that use them, and a
/// pod subnet per AZ in the pod CIDR block when there is one.
fn subnets(b: &mut Builder, n: &NetworkSpec, vpc: &str, pod_block: Option<&str>) -> SubnetIds {
    let layout = n.layout().ok();
    let azs = n.az_count as usize;
    let cidr = |list: Option<&Vec<ipnet::Ipv4Net>>, i: usize| -> Value {
        list.and_then(|l| l.get(i))
            .map(|c| Value::String(c.to_string()))
            .unwrap_or(Value::Null)
    };
    let cluster_tag = format!("kubernetes.io/cluster/{}", b.names.cluster());
    let mut ids = SubnetIds {
        public: Vec::new(),
        private: Vec::new(),
        pods: Vec::new(),
    };
    for i in 0..azs {
        ids.public.push(b.add(
            format!("network/subnet/public/{i}"),
            Kind::Subnet,
            b.names.name_tag(&format!("public-{i}")),
            vec![vpc.to_owned()],
            json!({ "azIndex": i, "cidr": cidr(layout.as_ref().map(|l| &l.public), i),
                    "mapPublicIpOnLaunch": false,
                    "kubernetesTags": { "kubernetes.io/role/elb": "1", cluster_tag.as_str(): "shared" } }),
        ));
    }
    for i in 0..azs {
        ids.private.push(b.add(
            format!("network/subnet/private/{i}"),
            Kind::Subnet,
            b.names.name_tag(&format!("private-{i}")),
            vec![vpc.to_owned()],
            json!({ "azIndex": i, "cidr": cidr(layout.as_ref().map(|l| &l.private), i),
                    "kubernetesTags": { "kubernetes.io/role/internal-elb": "1", cluster_tag.as_str(): "shared" } }),
        ));
    }
    if let Some(block) = pod_block {
        for i in 0..azs {
            ids.pods.push(b.add(
                format!("network/subnet/pods/{i}"),
                Kind::Subnet,
                b.names.name_tag(&format!("pods-{i}")),
                vec![block.to_owned()],
                json!({ "azIndex": i, "cidr": cidr(layout.as_ref().map(|l| &l.pods), i) }),
            ));
        }
    }
    ids
}

/// The NAT gateways the NAT mode asks for, each in a public subnet with its Elastic IP.
fn nat_gateways(b: &mut Builder, n: &NetworkSpec, public: &[String], igw: &str) -> Vec<String> {
    let nat_count = n.nat_mode.nat_count(n.az_count as usize);
    let mut nats = Vec::new();
    for (i, subnet) in public.iter().enumerate().take(nat_count) {
        let eip = b.add(
            format!("network/eip/nat/{i}"),
            Kind::ElasticIp,
            b.names.name_tag(&format!("nat-{i}")),
            vec![igw.to_owned()],
            json!({ "azIndex": i }),
        );
        nats.push(b.add(
            format!("network/nat-gateway/{i}"),
            Kind::NatGateway,
            b.names.name_tag(&format!("nat-{i}")),
            vec![subnet.clone(), eip],
            json!({ "azIndex": i }),
        ));
    }
    nats
}

/// The public route table (to the internet gateway) and one private route table per AZ (to
/// that AZ's NAT gateway, if any); returns the private ones.
fn route_tables(
    b: &mut Builder,
    n: &NetworkSpec,
    vpc: &str,
    igw: &str,
    subnets: &SubnetIds,
    nats: &[String],
) -> Vec<String> {
    // Routes and subnet associations are part of their route table (created, compared and
    // deleted with it), so they are its properties rather than resources of their own.
    let mut public_deps = vec![vpc.to_owned(), igw.to_owned()];
    public_deps.extend(subnets.public.iter().cloned());
    b.add(
        "network/route-table/public",
        Kind::RouteTable,
        b.names.name_tag("public"),
        public_deps,
        json!({ "routes": [{ "destination": "0.0.0.0/0", "target": igw }],
                "subnets": subnets.public }),
    );
    let mut private_rts = Vec::new();
    for (i, subnet) in subnets.private.iter().enumerate() {
        let nat = n.nat_mode.nat_for_az(i).and_then(|k| nats.get(k));
        let mut deps = vec![vpc.to_owned(), subnet.clone()];
        deps.extend(nat.cloned());
        deps.extend(subnets.pods.get(i).cloned());
        let routes: Vec<Value> = nat
            .map(|nat| json!({ "destination": "0.0.0.0/0", "target": nat }))
            .into_iter()
            .collect();
        let mut associated = vec![subnet.clone()];
        associated.extend(subnets.pods.get(i).cloned());
        private_rts.push(b.add(
            format!("network/route-table/private/{i}"),
            Kind::RouteTable,
            b.names.name_tag(&format!("private-{i}")),
            deps,
            json!({ "azIndex": i, "routes": routes, "subnets": associated }),
        ));
    }
    private_rts
}

/// The VPC endpoints the spec lists, once each: gateway endpoints on the private route tables,
/// interface endpoints in the private subnets behind one security group open to the VPC on 443.
fn endpoints(
    b: &mut Builder,
    n: &NetworkSpec,
    vpc: &str,
    private: &[String],
    private_rts: &[String],
) -> Vec<String> {
    let interface: Vec<_> = n.endpoints.iter().filter(|e| !e.is_gateway()).collect();
    let endpoint_sg = if interface.is_empty() {
        None
    } else {
        Some(b.add(
            "network/security-group/endpoints",
            Kind::SecurityGroup,
            b.names.security_group("endpoints"),
            vec![vpc.to_owned()],
            json!({ "ingress": [{ "port": 443, "cidr": n.vpc_cidr }] }),
        ))
    };
    let mut done = BTreeSet::new();
    let mut ids = Vec::new();
    for endpoint in &n.endpoints {
        if !done.insert(*endpoint) {
            continue;
        }
        let service = format!(
            "com.amazonaws.{}.{}",
            b.spec.region,
            endpoint.service_suffix()
        );
        let id = if endpoint.is_gateway() {
            let mut deps = vec![vpc.to_owned()];
            deps.extend(private_rts.iter().cloned());
            b.add(
                format!("network/endpoint/{}", endpoint.as_str()),
                Kind::VpcEndpoint,
                b.names.name_tag(endpoint.as_str()),
                deps,
                json!({ "service": service, "type": "Gateway" }),
            )
        } else {
            let mut deps = vec![vpc.to_owned()];
            deps.extend(private.iter().cloned());
            deps.extend(endpoint_sg.iter().cloned());
            b.add(
                format!("network/endpoint/{}", endpoint.as_str()),
                Kind::VpcEndpoint,
                b.names.name_tag(endpoint.as_str()),
                deps,
                json!({ "service": service, "type": "Interface", "privateDns": true }),
            )
        };
        ids.push(id);
    }
    ids
}

/// The VPC's flow logs and the log group they go to, encrypted with the logs key.
fn flow_logs(b: &mut Builder, n: &NetworkSpec, vpc: &str, logs_key: &str, role: &str) {
    let group = b.add(
        "network/flow-logs/log-group",
        Kind::LogGroup,
        b.names.flow_log_group(),
        vec![logs_key.to_owned()],
        json!({ "retentionDays": n.flow_logs.retention_days }),
    );
    b.add(
        "network/flow-logs",
        Kind::FlowLog,
        b.names.name_tag("flow-logs"),
        vec![vpc.to_owned(), group, role.to_owned()],
        json!({ "trafficType": n.flow_logs.traffic_type }),
    );
}

struct KeyIds {
    /// The cluster (secrets) key, unless the request brings its own.
    cluster: Option<String>,
    logs: String,
    data: String,
}

fn encryption(b: &mut Builder) -> KeyIds {
    b.phase(Phase::Encryption);
    let key = |b: &mut Builder, purpose: &str, description: &str| -> String {
        let key = b.add(
            format!("encryption/kms-key/{purpose}"),
            Kind::KmsKey,
            b.names.kms_alias(purpose),
            vec![],
            json!({ "description": description, "enableKeyRotation": true, "deletionWindowDays": 30 }),
        );
        b.add(
            format!("encryption/kms-alias/{purpose}"),
            Kind::KmsAlias,
            b.names.kms_alias(purpose),
            vec![key.clone()],
            Value::Null,
        );
        key
    };
    let cluster = match &b.spec.encryption.kms_key_arn {
        Some(_) => None,
        None => Some(key(b, "cluster", "EKS secrets envelope encryption")),
    };
    let logs = key(
        b,
        "logs",
        "CloudWatch Logs encryption (cluster, flow logs, Container Insights)",
    );
    let data = key(b, "data", "Tenant bucket and platform secrets");
    KeyIds {
        cluster,
        logs,
        data,
    }
}

struct RoleIds {
    cluster: String,
    node: String,
    /// The role VPC flow logs deliver with, when flow logs are on.
    flow_logs: Option<String>,
    /// Service roles by purpose (planned in identity or, for IRSA only, in cluster).
    service: Vec<(&'static str, String)>,
    /// The Fargate pod execution role, when anything runs on Fargate.
    fargate: Option<String>,
}

impl RoleIds {
    /// The plan id of the service role for `purpose`, when it is planned.
    fn service_role(&self, purpose: &str) -> Option<String> {
        self.service
            .iter()
            .find(|(p, _)| *p == purpose)
            .map(|(_, id)| id.clone())
    }
}

fn enabled_service_roles(spec: &PlatformSpec) -> Vec<&'static str> {
    let r = &spec.identity.service_roles;
    let addons = spec.effective_addons();
    let mut out = Vec::new();
    if addons.iter().any(|a| a.name == "aws-ebs-csi-driver") {
        out.push(naming::ROLE_EBS_CSI);
    }
    if r.cluster_autoscaler.enabled {
        out.push(naming::ROLE_CLUSTER_AUTOSCALER);
    }
    if r.alb_controller.enabled {
        out.push(naming::ROLE_ALB_CONTROLLER);
    }
    if r.external_dns.enabled {
        out.push(naming::ROLE_EXTERNAL_DNS);
    }
    if r.external_secrets.enabled {
        out.push(naming::ROLE_EXTERNAL_SECRETS);
    }
    out
}

fn service_role(b: &mut Builder, purpose: &'static str, deps: Vec<String>) -> String {
    let trust = b.spec.identity.trust();
    let (namespace, account) = service_account(purpose);
    b.add(
        format!("identity/role/{purpose}"),
        Kind::IamRole,
        b.names.role(purpose),
        deps,
        json!({ "trust": trust, "namespace": namespace, "serviceAccount": account }),
    )
}

/// The nodes' role: the worker, registry and SSM policies, the CNI's when the VPC CNI runs and
/// the CloudWatch agent's for Container Insights.
fn node_role(b: &mut Builder) -> String {
    let mut node_policies = vec![
        "AmazonEKSWorkerNodePolicy",
        "AmazonEC2ContainerRegistryReadOnly",
        "AmazonSSMManagedInstanceCore",
    ];
    if b.spec.cni == Cni::VpcCni {
        node_policies.push("AmazonEKS_CNI_Policy");
    }
    if b.spec.observability.container_insights {
        node_policies.push("CloudWatchAgentServerPolicy");
    }
    b.add(
        "identity/role/node",
        Kind::IamRole,
        b.names.role(naming::ROLE_NODE),
        vec![],
        json!({ "trust": "ec2.amazonaws.com", "managedPolicies": node_policies }),
    )
}

fn identity(b: &mut Builder) -> RoleIds {
    b.phase(Phase::Identity);
    let cluster = b.add(
        "identity/role/cluster",
        Kind::IamRole,
        b.names.role(naming::ROLE_CLUSTER),
        vec![],
        json!({ "trust": "eks.amazonaws.com",
                "managedPolicies": ["AmazonEKSClusterPolicy", "AmazonEKSVPCResourceController"] }),
    );
    let node = node_role(b);
    let flow_logs = b.spec.network.flow_logs.enabled.then(|| {
        b.add(
            "identity/role/flow-logs",
            Kind::IamRole,
            b.names.role(naming::ROLE_FLOW_LOGS),
            vec![],
            json!({ "trust": "vpc-flow-logs.amazonaws.com" }),
        )
    });
    let mut service = Vec::new();
    if b.spec.identity.trust() == TrustMechanism::PodIdentity {
        for purpose in enabled_service_roles(b.spec) {
            let id = service_role(b, purpose, vec![]);
            service.push((purpose, id));
        }
    }
    let fargate = b.spec.uses_fargate().then(|| {
        let mut inline = Vec::new();
        if b.spec.fargate.logging {
            inline.push(crate::policies::FARGATE_LOGS_POLICY_NAME);
        }
        b.add(
            "identity/role/fargate-pods",
            Kind::IamRole,
            b.names.role(naming::ROLE_FARGATE_PODS),
            vec![],
            json!({ "trust": "eks-fargate-pods.amazonaws.com",
                    "managedPolicies": ["AmazonEKSFargatePodExecutionRolePolicy"],
                    "inlinePolicies": inline }),
        )
    });
    RoleIds {
        cluster,
        node,
        flow_logs,
        service,
        fargate,
    }
}

struct ClusterIds {
    cluster: String,
    oidc: Option<String>,
}

fn cluster(b: &mut Builder, net: &NetworkIds, keys: &KeyIds, roles: &mut RoleIds) -> ClusterIds {
    b.phase(Phase::Cluster);
    let spec = b.spec;
    let log_group = b.add(
        "cluster/log-group",
        Kind::LogGroup,
        b.names.cluster_log_group(),
        vec![keys.logs.clone()],
        json!({ "retentionDays": spec.logging.retention_days }),
    );
    let mut deps = vec![roles.cluster.clone(), log_group];
    deps.extend(net.private_subnets.iter().cloned());
    deps.extend(keys.cluster.iter().cloned());
    let types: Vec<&str> = spec.logging.types.iter().map(|t| t.as_str()).collect();
    let cluster = b.add(
        "cluster/cluster",
        Kind::Cluster,
        b.names.cluster(),
        deps,
        json!({
            "version": spec.kubernetes_version,
            "endpointPrivateAccess": spec.endpoint_access.private,
            "endpointPublicAccess": spec.endpoint_access.public(),
            "publicAccessCidrs": spec.endpoint_access.public_access_cidrs,
            "encryptionKey": spec.encryption.kms_key_arn.clone().map(Value::String)
                .unwrap_or_else(|| json!({ "planned": "encryption/kms-key/cluster" })),
            "logTypes": types,
            "authenticationMode": "API",
            "bootstrapSelfManagedAddons": spec.cni == Cni::VpcCni,
            "deletionProtection": true,
        }),
    );
    // The identity function's second run, once the cluster has an issuer.
    let oidc = b.in_phase(Phase::Identity, |b| {
        let oidc = spec.identity.irsa.then(|| {
            b.add(
                "identity/oidc-provider",
                Kind::OidcProvider,
                format!("oidc.eks.{}.amazonaws.com", spec.region),
                vec![cluster.clone()],
                json!({ "clientIds": ["sts.amazonaws.com"] }),
            )
        });
        if let (TrustMechanism::Irsa, Some(oidc)) = (spec.identity.trust(), &oidc) {
            for purpose in enabled_service_roles(spec) {
                let id = service_role(b, purpose, vec![oidc.clone()]);
                roles.service.push((purpose, id));
            }
        }
        oidc
    });
    ClusterIds { cluster, oidc }
}

fn nodegroups(b: &mut Builder, net: &NetworkIds, roles: &RoleIds, c: &ClusterIds) -> Vec<String> {
    b.phase(Phase::Nodegroups);
    let cluster_name = b.names.cluster();
    let mut out = Vec::new();
    for g in b.spec.effective_node_groups() {
        let lt = b.add(
            format!("nodegroups/launch-template/{}", g.name),
            Kind::LaunchTemplate,
            b.names.launch_template(&g.name),
            vec![c.cluster.clone()],
            json!({ "imdsv2": "required", "httpPutResponseHopLimit": crate::phases::nodegroups::IMDS_HOP_LIMIT,
                    "diskSizeGib": g.disk_size_gib, "encrypted": true }),
        );
        let mut deps = vec![lt, roles.node.clone(), c.cluster.clone()];
        deps.extend(net.private_subnets.iter().cloned());
        deps.extend(net.egress.iter().cloned());
        if b.spec.cni == Cni::Calico {
            // Nodes become Ready only once Calico is there (bootstrap's first step).
            deps.push(CALICO_INSTALLATION_ID.to_owned());
        }
        let taints: Vec<Value> = g
            .taints
            .iter()
            .map(|t| json!({ "key": t.key, "value": t.value, "effect": t.effect.eks_name() }))
            .collect();
        out.push(b.add(
            format!("nodegroups/nodegroup/{}", g.name),
            Kind::Nodegroup,
            b.names.nodegroup(&g.name),
            deps,
            json!({
                "role": g.role.as_str(),
                "instanceTypes": g.instance_types,
                "capacityType": g.capacity_type,
                "amiType": g.ami_type.as_str(),
                "scaling": { "min": g.min_size, "desired": g.desired_size, "max": g.max_size },
                "labels": g.labels,
                "taints": taints,
                "autoscalerTags": {
                    "k8s.io/cluster-autoscaler/enabled": "true",
                    format!("k8s.io/cluster-autoscaler/{cluster_name}"): "owned",
                },
            }),
        ));
    }
    // Fargate profiles: the add-ons that need nodes (CoreDNS) come after them too.
    out.extend(fargate_profiles(b, net, roles, c));
    out
}

fn fargate_attributes(selectors: &[crate::resources::fargate_profile::Selector]) -> Value {
    let selectors: Vec<Value> = selectors
        .iter()
        .map(|(ns, labels)| json!({ "namespace": ns, "labels": labels }))
        .collect();
    json!({ "selectors": selectors, "subnets": "private", "podExecutionRole": naming::ROLE_FARGATE_PODS })
}

fn addons(b: &mut Builder, roles: &RoleIds, c: &ClusterIds, groups: &[String]) {
    b.phase(Phase::Addons);
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for a in b.spec.effective_addons() {
        if !seen.insert(a.name.clone()) {
            continue;
        }
        let mut deps = vec![c.cluster.clone()];
        if addon_needs_nodes(&a.name) {
            deps.extend(groups.iter().cloned());
        }
        if a.name == "aws-ebs-csi-driver" {
            deps.extend(roles.service_role(naming::ROLE_EBS_CSI));
        }
        let mut config = a.configuration_values.clone().unwrap_or_default();
        if a.name == "vpc-cni" {
            config.insert("enableNetworkPolicy".into(), Value::String("true".into()));
        }
        let id = b.add(
            format!("addons/{}", a.name),
            Kind::Addon,
            a.name.clone(),
            deps,
            json!({ "version": a.version, "configurationValues": config, "resolveConflicts": "OVERWRITE" }),
        );
        out.push((a.name.clone(), id));
    }
    if b.spec.identity.trust() == TrustMechanism::PodIdentity {
        let agent = out
            .iter()
            .find(|(name, _)| name == "eks-pod-identity-agent")
            .map(|(_, id)| id.clone());
        // EBS CSI's association is made by the add-on itself (`podIdentityAssociations`).
        for (purpose, role) in roles
            .service
            .iter()
            .filter(|(p, _)| *p != naming::ROLE_EBS_CSI)
        {
            let (namespace, account) = service_account(purpose);
            let mut deps = vec![c.cluster.clone(), role.clone()];
            deps.extend(agent.iter().cloned());
            b.add(
                format!("addons/pod-identity/{purpose}"),
                Kind::PodIdentityAssociation,
                format!("{namespace}/{account}"),
                deps,
                json!({ "namespace": namespace, "serviceAccount": account }),
            );
        }
    }
}

/// Plans Kubernetes objects from the very manifests the phase applies: `<prefix>/<kind>/<name>`
/// (namespaced: `<prefix>/<kind>/<namespace>/<name>`), named `namespace/name`.
fn add_manifests(
    b: &mut Builder,
    tenant: Option<&TenantSpec>,
    prefix: &str,
    manifests: &[Value],
    depends_on: impl Fn(&Value) -> Vec<String>,
) {
    for m in manifests {
        let Some(kind) = m["kind"].as_str().and_then(Kind::of_k8s) else {
            // Every manifest kind is in the catalogue (tested); a miss would be a bug, and the
            // phase refuses it at run time.
            continue;
        };
        let name = m["metadata"]["name"].as_str().unwrap_or_default();
        let qualified = qualified_name(m);
        // A tenant's prefix already names its namespace.
        let path = if tenant.is_some() { name } else { &qualified };
        let id = format!("{prefix}/{}/{path}", &kind.as_str()["k8s:".len()..]);
        let deps = depends_on(m);
        b.add_for(tenant, id, kind, qualified, deps, manifest_properties(m));
    }
}

/// `namespace/name`, or `name` for a cluster-scoped object.
fn qualified_name(m: &Value) -> String {
    let name = m["metadata"]["name"].as_str().unwrap_or_default();
    match m["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_owned(),
    }
}

/// The plan id [`add_manifests`] gives a platform-level manifest under `bootstrap`.
fn manifest_plan_id(m: &Value) -> String {
    let kind = m["kind"].as_str().and_then(Kind::of_k8s);
    let kind = kind.map_or("", |k| &k.as_str()["k8s:".len()..]);
    format!("bootstrap/{kind}/{}", qualified_name(m))
}

/// What a manifest sets beyond its identity: its body (`spec`, `rules`, `data`...), or a
/// namespace's labels; for a CustomResourceDefinition only what it defines (its schemas are
/// upstream's, hundreds of kilobytes).
fn manifest_properties(m: &Value) -> Value {
    if m["kind"] == "CustomResourceDefinition" {
        let versions: Vec<&Value> = m["spec"]["versions"]
            .as_array()
            .map(|v| v.iter().map(|v| &v["name"]).collect())
            .unwrap_or_default();
        return json!({ "group": m["spec"]["group"], "kind": m["spec"]["names"]["kind"],
                       "scope": m["spec"]["scope"], "versions": versions });
    }
    let mut body = m.as_object().cloned().unwrap_or_default();
    for field in ["apiVersion", "kind", "metadata"] {
        body.remove(field);
    }
    if body.is_empty() {
        return m["metadata"].get("labels").cloned().unwrap_or(Value::Null);
    }
    Value::Object(body)
}

/// The plan id of Calico's `Installation` (node groups depend on it).
const CALICO_INSTALLATION_ID: &str = "bootstrap/installation/default";

fn bootstrap(b: &mut Builder, roles: &RoleIds, keys: &KeyIds, c: &ClusterIds, n: &NetworkIds) {
    b.phase(Phase::Bootstrap);
    calico(b, c);
    let autoscaler_role = roles.service_role(naming::ROLE_CLUSTER_AUTOSCALER);
    let mut manifests = crate::kubernetes::bootstrap_manifests(b.spec, None);
    // The data key's ARN is known once the encryption phase has run.
    manifests.extend(crate::kubernetes::storage_manifests(
        b.spec,
        "(the platform data key)",
    ));
    add_manifests(b, None, "bootstrap", &manifests, |m| {
        let mut deps = vec![c.cluster.clone()];
        if m["kind"] == "Deployment" {
            deps.extend(autoscaler_role.iter().cloned());
        }
        if m["kind"] == "StorageClass" {
            deps.push(keys.data.clone());
            deps.push("addons/aws-ebs-csi-driver".to_owned());
        }
        deps
    });
    controllers(b, roles, c);
    if b.spec.custom_networking() {
        eni_configs(b, c, n);
    }
}

/// Calico (cni calico): CRDs, the operator, then the Installation, which needs them all.
fn calico(b: &mut Builder, c: &ClusterIds) {
    let calico = crate::kubernetes::calico_manifests(b.spec);
    let operator: Vec<String> = calico
        .iter()
        .filter(|m| m["kind"] != "Installation")
        .map(manifest_plan_id)
        .collect();
    add_manifests(b, None, "bootstrap", &calico, |m| {
        let mut deps = vec![c.cluster.clone()];
        if m["kind"] == "Installation" {
            deps.extend(operator.iter().cloned());
        }
        deps
    });
}

/// The controllers (ALB controller...): their webhook certificates are made at run time (the
/// plan shows no key material), their ServiceAccounts' roles by the identity phase.
fn controllers(b: &mut Builder, roles: &RoleIds, c: &ClusterIds) {
    let controllers: Vec<Value> = crate::kubernetes::controller_manifests(
        b.spec,
        &BTreeMap::new(),
        "(the platform VPC)",
        &BTreeMap::new(),
    )
    .iter()
    .map(crate::kubernetes::webhook_tls::redact)
    .collect();
    let (alb_role, dns_role, secrets_role) = (
        roles.service_role(naming::ROLE_ALB_CONTROLLER),
        roles.service_role(naming::ROLE_EXTERNAL_DNS),
        roles.service_role(naming::ROLE_EXTERNAL_SECRETS),
    );
    add_manifests(b, None, "bootstrap", &controllers, |m| {
        let mut deps = vec![c.cluster.clone()];
        if m["kind"] == "Deployment" {
            let namespace = &m["metadata"]["namespace"];
            // The role of the pod's service account (external-secrets' webhook has none).
            let role = if namespace == crate::kubernetes::EXTERNAL_DNS_NAMESPACE {
                &dns_role
            } else if namespace == crate::kubernetes::EXTERNAL_SECRETS_NAMESPACE {
                if m["metadata"]["name"] == crate::kubernetes::EXTERNAL_SECRETS_NAME {
                    &secrets_role
                } else {
                    &None
                }
            } else {
                &alb_role
            };
            deps.extend(role.iter().cloned());
        }
        deps
    });
}

/// Custom networking: one ENIConfig per pod subnet, named for its zone, which the network
/// phase picks at run time.
fn eni_configs(b: &mut Builder, c: &ClusterIds, n: &NetworkIds) {
    for (i, subnet) in n.pod_subnets.iter().enumerate() {
        b.add(
            format!("bootstrap/eni-config/{i}"),
            Kind::EniConfig,
            format!("(availability zone {i})"),
            vec![c.cluster.clone(), subnet.clone()],
            json!({ "spec": { "subnet": format!("(pod subnet {i})"),
                              "securityGroups": ["(the cluster security group)"] } }),
        );
    }
}

fn access(b: &mut Builder, c: &ClusterIds) {
    b.phase(Phase::Access);
    let spec = b.spec;
    for (i, principal) in spec.access.admin_principals.iter().enumerate() {
        b.add(
            format!("access/entry/admin/{i}"),
            Kind::AccessEntry,
            principal.clone(),
            vec![c.cluster.clone()],
            json!({ "policy": "AmazonEKSClusterAdminPolicy", "scope": "cluster" }),
        );
    }
    if let Some(idp) = &spec.access.oidc_identity_provider {
        let config = b.add(
            format!("access/identity-provider/{}", idp.name),
            Kind::IdentityProviderConfig,
            idp.name.clone(),
            vec![c.cluster.clone()],
            json!({ "issuerUrl": idp.issuer_url, "clientId": idp.client_id,
                    "usernameClaim": idp.username_claim, "groupsClaim": idp.groups_claim,
                    "groupsPrefix": idp.groups_prefix }),
        );
        let bindings = crate::kubernetes::access_manifests(spec);
        add_manifests(b, None, "access", &bindings, |_| vec![config.clone()]);
    }
}

/// The platform's Fargate profiles (`resources::fargate_profile::platform_profiles`).
fn fargate_profiles(
    b: &mut Builder,
    net: &NetworkIds,
    roles: &RoleIds,
    c: &ClusterIds,
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, selectors) in crate::resources::fargate_profile::platform_profiles(b.spec, &b.names)
    {
        let mut deps = vec![c.cluster.clone()];
        deps.extend(roles.fargate.iter().cloned());
        deps.extend(net.private_subnets.iter().cloned());
        let short = name
            .strip_prefix(&format!("{}-", b.names.stem()))
            .unwrap_or(&name)
            .to_owned();
        out.push(b.add(
            format!("nodegroups/fargate-profile/{short}"),
            Kind::FargateProfile,
            name,
            deps,
            fargate_attributes(&selectors),
        ));
    }
    out
}

fn observability(b: &mut Builder, keys: &KeyIds, c: &ClusterIds) {
    b.phase(Phase::Observability);
    let spec = b.spec;
    let mut deps = vec![c.cluster.clone(), keys.data.clone()];
    deps.extend(c.oidc.iter().cloned());
    b.add(
        "observability/secret/platform-config",
        Kind::Secret,
        b.names.platform_secret(),
        deps,
        json!({ "contents": ["clusterName", "clusterEndpoint", "certificateAuthority", "oidcIssuer", "vpcId", "subnetIds", "bucket"] }),
    );
    if spec.observability.container_insights {
        for kind in CONTAINER_INSIGHTS_LOG_GROUPS {
            b.add(
                format!("observability/container-insights/{kind}"),
                Kind::LogGroup,
                b.names.container_insights_log_group(kind),
                vec![keys.logs.clone(), c.cluster.clone()],
                json!({ "retentionDays": spec.logging.retention_days }),
            );
        }
    }
    if spec.fargate.logging {
        b.add(
            "observability/fargate-logs",
            Kind::LogGroup,
            b.names.fargate_log_group(),
            vec![keys.logs.clone(), c.cluster.clone()],
            json!({ "retentionDays": spec.logging.retention_days, "writer": "Fluent Bit on Fargate" }),
        );
    }
    if spec.observability.alarms.enabled {
        alarms(b, keys, c);
    }
}

/// The platform's alarms, notifying its own topic unless the spec names one.
fn alarms(b: &mut Builder, keys: &KeyIds, c: &ClusterIds) {
    let spec = b.spec;
    let topic = match &spec.observability.alarms.sns_topic_arn {
        Some(_) => None,
        None => Some(b.add(
            "observability/sns-topic",
            Kind::Topic,
            b.names.sns_topic(),
            vec![keys.data.clone()],
            Value::Null,
        )),
    };
    for alarm in ALARMS {
        let mut deps = vec![c.cluster.clone()];
        deps.extend(topic.iter().cloned());
        b.add(
            format!("observability/alarm/{}", alarm.name),
            Kind::Alarm,
            b.names.alarm(alarm.name),
            deps,
            json!({
                "namespace": ALARM_NAMESPACE,
                "metric": alarm.metric,
                "statistic": alarm.statistic,
                "comparison": alarm.comparison,
                "threshold": alarm.threshold,
                "periodSeconds": alarm.period_seconds,
                "evaluationPeriods": alarm.evaluation_periods,
                "treatMissingData": alarm.treat_missing_data,
            }),
        );
    }
}

/// What the plan shows of a repository (`resources::repository` builds it).
fn repository_attributes(r: &crate::spec::RepositorySpec, access: &str) -> Value {
    json!({ "encryption": "KMS", "scanOnPush": true,
            "imageTagMutability": if r.mutable_tags { "MUTABLE" } else { "IMMUTABLE" },
            "keepImages": r.keep_images, "access": access })
}

fn tenants(b: &mut Builder, keys: &KeyIds, c: &ClusterIds) {
    b.phase(Phase::Tenants);
    let spec = b.spec;
    let bucket = platform_storage(b, keys);
    for t in &spec.tenants {
        tenant(b, keys, c, t, &bucket);
    }
    owner_entries(b, c);
}

/// What the tenants share: the data bucket (each tenant gets a prefix), its access-log bucket,
/// and the platform's repositories; returns the data bucket.
fn platform_storage(b: &mut Builder, keys: &KeyIds) -> String {
    let bucket = b.add(
        "tenants/bucket",
        Kind::Bucket,
        b.names.bucket(),
        vec![keys.data.clone()],
        json!({ "versioning": true, "blockPublicAccess": true, "encryption": "aws:kms", "enforceTls": true,
                "accessLogging": { "targetBucket": b.names.access_log_bucket(), "targetPrefix": crate::policies::ACCESS_LOG_PREFIX } }),
    );
    b.add(
        "tenants/access-log-bucket",
        Kind::Bucket,
        b.names.access_log_bucket(),
        vec![bucket.clone()],
        json!({ "blockPublicAccess": true, "encryption": "AES256", "enforceTls": true,
                "logDelivery": "logging.s3.amazonaws.com, for the tenant-data bucket only" }),
    );
    let spec = b.spec;
    for r in &spec.repositories {
        b.add(
            format!("tenants/_repository/{}", r.name),
            Kind::Repository,
            b.names.repository(&r.name),
            vec![keys.data.clone(), "identity/role/node".to_owned()],
            repository_attributes(r, "the nodes pull"),
        );
    }
    bucket
}

/// One tenant: its own key if it asks for one, its role, its repositories, its Fargate pods'
/// security group and profile, its Pod Identity association and its Kubernetes objects.
fn tenant(b: &mut Builder, keys: &KeyIds, c: &ClusterIds, t: &TenantSpec, bucket: &str) {
    let base = format!("tenants/{}", t.name);
    let key = t.own_kms_key.then(|| tenant_key(b, t, &base));
    let role = tenant_role(b, c, t, &base, bucket, key.as_deref());
    for r in &t.repositories {
        b.add_for(
            Some(t),
            format!("{base}/repository/{}", r.name),
            Kind::Repository,
            b.names.tenant_repository(&t.name, &r.name),
            vec![
                role.clone(),
                key.clone().unwrap_or_else(|| keys.data.clone()),
                "identity/role/node".to_owned(),
            ],
            repository_attributes(r, "the nodes pull; the tenant's role pushes and pulls"),
        );
    }
    let pod_group = t
        .fargate
        .as_ref()
        .map(|f| tenant_fargate(b, c, t, &base, f));
    let pod_identity = (b.spec.identity.trust() == TrustMechanism::PodIdentity).then(|| {
        b.add_for(
            Some(t),
            format!("{base}/pod-identity"),
            Kind::PodIdentityAssociation,
            format!("{}/workload", t.name),
            vec![c.cluster.clone(), role.clone()],
            Value::Null,
        )
    });
    tenant_objects(b, c, t, &base, &role, pod_group, pod_identity);
}

/// The tenant's own KMS key and its alias; returns the key.
fn tenant_key(b: &mut Builder, t: &TenantSpec, base: &str) -> String {
    let key = b.add_for(
        Some(t),
        format!("{base}/kms-key"),
        Kind::KmsKey,
        b.names.tenant_kms_alias(&t.name),
        vec![],
        json!({ "enableKeyRotation": true }),
    );
    b.add_for(
        Some(t),
        format!("{base}/kms-alias"),
        Kind::KmsAlias,
        b.names.tenant_kms_alias(&t.name),
        vec![key.clone()],
        Value::Null,
    );
    key
}

/// The tenant's role, scoped to its prefix of the data bucket, its key and its secrets.
fn tenant_role(
    b: &mut Builder,
    c: &ClusterIds,
    t: &TenantSpec,
    base: &str,
    bucket: &str,
    key: Option<&str>,
) -> String {
    let spec = b.spec;
    let stem = b.names.stem().to_string();
    let mut role_deps = vec![bucket.to_owned()];
    role_deps.extend(key.map(str::to_owned));
    if spec.identity.trust() == TrustMechanism::Irsa {
        role_deps.extend(c.oidc.iter().cloned());
    }
    b.add_for(
        Some(t),
        format!("{base}/role"),
        Kind::IamRole,
        b.names.tenant_role(&t.name),
        role_deps,
        json!({ "trust": spec.identity.trust(), "s3Prefix": t.effective_s3_prefix(),
                "secretsPrefix": t.effective_secrets_prefix(&stem),
                "namespace": t.name, "serviceAccount": "workload" }),
    )
}

/// A Fargate tenant's pods' security group and its Fargate profile; returns the group.
fn tenant_fargate(
    b: &mut Builder,
    c: &ClusterIds,
    t: &TenantSpec,
    base: &str,
    fargate: &crate::spec::TenantFargateSpec,
) -> String {
    // Its pods' only security group (resources::pod_security_group), with rules in the cluster
    // security group too.
    let purpose = crate::resources::pod_security_group::purpose(&t.name);
    let pod_group = b.add_for(
        Some(t),
        format!("{base}/security-group/pods"),
        Kind::SecurityGroup,
        b.names.security_group(&purpose),
        vec![c.cluster.clone()],
        json!({ "policy": "same namespace, kubelet, DNS, HTTPS out, allowFrom peers" }),
    );
    let mut deps = vec![c.cluster.clone(), pod_group.clone()];
    if b.spec.uses_fargate() {
        deps.push("identity/role/fargate-pods".to_owned());
    }
    b.add_for(
        Some(t),
        format!("{base}/fargate-profile"),
        Kind::FargateProfile,
        b.names.tenant_fargate_profile(&t.name),
        deps,
        fargate_attributes(&crate::resources::fargate_profile::tenant_selectors(
            t, fargate,
        )),
    );
    pod_group
}

/// The tenant's Kubernetes objects, each after what it needs: the namespace after the
/// cluster, the rest after the namespace (and the service account after the role).
fn tenant_objects(
    b: &mut Builder,
    c: &ClusterIds,
    t: &TenantSpec,
    base: &str,
    role: &str,
    pod_group: Option<String>,
    pod_identity: Option<String>,
) {
    let ns = &t.name;
    let namespace = format!("{base}/namespace/{ns}");
    let mut manifests = crate::kubernetes::tenant_manifests(b.spec, t, None);
    if pod_group.is_some() {
        let group = "<pod security group>";
        manifests.insert(
            1,
            crate::kubernetes::security_group_policy(b.spec, t, group),
        );
    }
    add_manifests(b, Some(t), base, &manifests, |m| {
        match m["kind"].as_str() {
            Some("Namespace") => vec![c.cluster.clone()],
            Some("SecurityGroupPolicy") => vec![namespace.clone()]
                .into_iter()
                .chain(pod_group.clone())
                .collect(),
            Some("ServiceAccount") => {
                let mut deps = vec![namespace.clone(), role.to_owned()];
                deps.extend(pod_identity.iter().cloned());
                deps
            }
            // An `allowFrom` policy in the other tenant's namespace needs that one too.
            _ => match m["metadata"]["namespace"]
                .as_str()
                .filter(|other| *other != t.name)
            {
                Some(other) => vec![
                    namespace.clone(),
                    format!("tenants/{other}/namespace/{other}"),
                ],
                None => vec![namespace.clone()],
            },
        }
    });
}

/// One access entry per owner principal, with the owner group of every tenant it owns (each
/// namespace's RoleBinding, planned with the tenant's objects, binds it).
fn owner_entries(b: &mut Builder, c: &ClusterIds) {
    let spec = b.spec;
    let mut owners: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for t in &spec.tenants {
        for owner in &t.owners {
            owners.entry(owner).or_default().push(&t.name);
        }
    }
    for (owner, namespaces) in owners {
        let mut deps = vec![c.cluster.clone()];
        deps.extend(
            namespaces
                .iter()
                .map(|ns| format!("tenants/{ns}/namespace/{ns}")),
        );
        b.add(
            format!("tenants/_owner/{owner}"),
            Kind::TenantOwnerEntry,
            owner,
            deps,
            json!({
                "kubernetesGroups": namespaces.iter().map(|ns| crate::kubernetes::owner_group(ns)).collect::<Vec<_>>(),
                "namespaces": namespaces,
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLATFORM: &str = include_str!("../../examples/platform.json");

    fn example() -> PlatformSpec {
        crate::validate::parse_platform(PLATFORM).unwrap_or_else(|e| panic!("{e}"))
    }

    fn variant(patch: impl FnOnce(&mut serde_json::Value)) -> PlatformSpec {
        let mut v: Value = serde_json::from_str(PLATFORM).expect("json");
        patch(&mut v);
        crate::validate::parse_platform(&v.to_string()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn example_counts_by_phase() {
        let plan = plan(&example());
        assert_eq!(
            plan.counts_by_phase(),
            vec![
                (Phase::Encryption, 6),
                (Phase::Identity, 9),
                (Phase::Network, 31),
                (Phase::Cluster, 2),
                (Phase::Nodegroups, 8),
                (Phase::Addons, 10),
                // 20, the ALB controller's 17, external-dns's 5 and external-secrets' 18.
                (Phase::Bootstrap, 60),
                (Phase::Access, 4),
                (Phase::Observability, 10),
                (Phase::Tenants, 54),
            ]
        );
        assert_eq!(plan.total(), 194);
        assert_eq!(plan.cluster_name, "payments-prod");
    }

    #[test]
    fn example_has_everything_the_seed_platform_needs() {
        let plan = plan(&example());
        let kinds = [
            ("ec2:vpc", 1),
            ("iam:role", 11),
            ("logs:log-group", 6),
            ("eks:pod-identity-association", 7),
            ("eks:access-entry", 1),
            ("eks:tenant-owner-entry", 3),
            // The tenants' three, the autoscaler's, the ALB controller's and external-secrets'
            // leader election.
            ("k8s:role", 6),
            ("k8s:role-binding", 6),
            // The autoscaler, the ALB controller, external-dns, external-secrets and its webhook.
            ("k8s:deployment", 5),
            // The ALB controller's 4 and external-secrets' 5.
            ("k8s:custom-resource-definition", 9),
            // The ALB controller's and external-secrets' webhooks: Service, TLS Secret.
            ("k8s:service", 2),
            ("k8s:secret", 2),
            ("k8s:mutating-webhook-configuration", 1),
            // The ALB controller's one, external-secrets' two.
            ("k8s:validating-webhook-configuration", 3),
            ("k8s:ingress-class", 1),
            // With the ALB controller: a LoadBalancer Service must carry its class.
            ("k8s:validating-admission-policy", 1),
            ("k8s:validating-admission-policy-binding", 1),
            ("k8s:priority-class", 4),
            ("ec2:vpc-cidr-block-association", 1),
            ("ec2:subnet", 9),
            ("ec2:internet-gateway", 1),
            ("ec2:eip", 3),
            ("ec2:nat-gateway", 3),
            ("ec2:route-table", 4),
            ("ec2:vpc-endpoint", 6),
            ("ec2:security-group", 1),
            ("ec2:flow-log", 1),
            ("kms:key", 6),
            ("kms:alias", 6),
            ("iam:oidc-provider", 1),
            ("eks:cluster", 1),
            ("ec2:launch-template", 4),
            ("eks:nodegroup", 4),
            ("eks:addon", 6),
            ("eks:identity-provider-config", 1),
            ("cloudwatch:alarm", 4),
            ("sns:topic", 1),
            ("secretsmanager:secret", 1),
            ("s3:bucket", 2),
            // The tenants' three, the Pod Security labels on four system namespaces,
            // external-dns's and external-secrets'.
            ("k8s:namespace", 9),
            // Four per tenant, and two for ledger's `allowFrom` checkout.
            ("k8s:network-policy", 14),
            ("k8s:resource-quota", 3),
            ("k8s:limit-range", 3),
        ];
        for (kind, count) in kinds {
            let kind: Kind = kind.parse().expect("a catalogue kind");
            assert_eq!(plan.count_kind(kind), count, "{kind}");
        }
        for id in [
            "identity/role/cluster",
            "identity/role/node",
            "identity/role/ebs-csi",
            "identity/role/cluster-autoscaler",
            "identity/role/alb-controller",
            "identity/role/external-dns",
            "identity/role/external-secrets",
            "cluster/log-group",
            "network/endpoint/ecr-api",
            "network/endpoint/ecr-dkr",
            "network/endpoint/logs",
            "access/entry/admin/0",
            "tenants/ledger/role",
            "tenants/ledger/kms-key",
            "tenants/ledger/namespace/ledger",
            "tenants/ledger/network-policy/default-deny",
            "tenants/ledger/service-account/workload",
            "tenants/_owner/arn:aws:iam::111122223333:role/team-ledger",
            "network/flow-logs/log-group",
            "network/route-table/private/0",
            "bootstrap/deployment/kube-system/cluster-autoscaler",
            "access/cluster-role-binding/tenantry:developers",
        ] {
            assert!(plan.resource(id).is_some(), "{id} missing");
        }
        let subnet = plan.resource("network/subnet/private/1").expect("subnet");
        assert_eq!(subnet.properties["cidr"], "10.0.144.0/20");
        let pods = plan.resource("network/subnet/pods/2").expect("pod subnet");
        assert_eq!(pods.properties["cidr"], "100.64.128.0/18");
        // Routes and associations are properties of their route table.
        let private = plan
            .resource("network/route-table/private/1")
            .expect("table");
        assert_eq!(
            private.properties["routes"],
            json!([{ "destination": "0.0.0.0/0", "target": "network/nat-gateway/1" }])
        );
        assert_eq!(
            private.properties["subnets"],
            json!(["network/subnet/private/1", "network/subnet/pods/1"])
        );
        // Objects are planned from the manifests the phases apply, with their bodies.
        let quota = plan
            .resource("tenants/checkout/resource-quota/quota")
            .expect("quota");
        assert_eq!(quota.properties["spec"]["hard"]["pods"], "100");
    }

    /// Platform-level items under `tenants/` start with `_`, which no tenant name can: a tenant
    /// named `repository` or `owner` never shares an id with the platform's repositories or
    /// the owners' entries.
    #[test]
    fn ids_are_unique_whatever_the_tenants_are_called() {
        let spec = variant(|v| {
            v["repositories"] = serde_json::json!([{ "name": "role" }]);
            let mut t = v["tenants"][0].clone();
            t["name"] = serde_json::json!("repository");
            let mut o = v["tenants"][0].clone();
            o["name"] = serde_json::json!("owner");
            v["tenants"].as_array_mut().unwrap().extend([t, o]);
        });
        let plan = plan(&spec);
        let mut seen = std::collections::BTreeSet::new();
        for p in &plan.phases {
            for r in &p.resources {
                assert!(seen.insert(r.id.clone()), "{} twice", r.id);
            }
        }
        assert!(plan.resource("tenants/_repository/role").is_some());
        assert!(plan.resource("tenants/repository/role").is_some());
    }

    #[test]
    fn nothing_unbuilt_is_planned() {
        let spec = example();
        let plan = plan(&spec);
        // Every planned Kubernetes object is one a phase applies (Calico, ENIConfigs, a gp3
        // StorageClass and Helm releases were once planned and never built).
        for r in plan.resources() {
            assert!(
                !r.id.contains("calico") && !r.id.contains("eniconfig") && !r.id.contains("helm"),
                "{}",
                r.id
            );
        }
        let owners = plan.count_kind(Kind::TenantOwnerEntry);
        let distinct: BTreeSet<&String> = spec.tenants.iter().flat_map(|t| &t.owners).collect();
        assert_eq!(owners, distinct.len(), "one entry per owner principal");
    }

    #[test]
    fn dependencies_resolve_and_have_no_cycle() {
        let variants = [
            example(),
            variant(|_| {}),
            variant(|v| {
                v["identity"]["podIdentity"] = json!(false);
                v["network"]["natMode"] = json!("single");
            }),
            variant(|v| {
                v["network"]["natMode"] = json!("none");
                v["network"]["endpoints"] = json!(["s3", "ecr-api", "ecr-dkr", "ec2", "sts"]);
                v["encryption"]["kmsKeyArn"] = json!(
                    "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                );
                v["observability"]["alarms"]["snsTopicArn"] =
                    json!("arn:aws:sns:us-east-1:111122223333:ops");
            }),
            crate::validate::parse_platform(
                r#"{"id":"shop","environment":"dev","region":"eu-west-1"}"#,
            )
            .unwrap_or_else(|e| panic!("{e}")),
        ];
        for spec in &variants {
            let plan = plan(spec);
            plan.check_graph()
                .unwrap_or_else(|e| panic!("{}: {e}", spec.id));
            // The creation order holds everything, each after what it depends on.
            let order = plan.creation_order();
            assert_eq!(order.len(), plan.total(), "{}", spec.id);
            let position: BTreeMap<&str, usize> =
                order.iter().enumerate().map(|(i, id)| (*id, i)).collect();
            for r in plan.resources() {
                for dep in &r.depends_on {
                    assert!(
                        position[dep.as_str()] < position[r.id.as_str()],
                        "{} -> {dep}",
                        r.id
                    );
                }
            }
        }
    }

    #[test]
    fn calico_plans_the_operator_and_installation_before_the_nodes_and_no_pod_subnets() {
        // The example with Calico (as `kubernetes` tests and `tests/it` derive it).
        let mut spec = example();
        spec.cni = Cni::Calico;
        if let Some(addons) = &mut spec.addons {
            addons.retain(|a| a.name != "vpc-cni");
        }
        let plan = plan(&spec);
        plan.check_graph().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.count_kind(Kind::Installation), 1);
        // Calico's 32, the ALB controller's 4 and external-secrets' 5.
        assert_eq!(plan.count_kind(Kind::CustomResourceDefinition), 41);
        assert_eq!(plan.count_kind(Kind::EniConfig), 0);
        // The pod CIDR is Calico's pool, not the VPC's.
        assert_eq!(plan.count_kind(Kind::VpcCidrBlock), 0);
        assert!(plan.resources().all(|r| !r.id.contains("subnet/pods")));
        assert!(plan.resource("addons/vpc-cni").is_none());
        let installation = plan.resource(CALICO_INSTALLATION_ID).expect("installation");
        assert_eq!(
            installation.properties["spec"]["calicoNetwork"]["ipPools"][0]["cidr"],
            "100.64.0.0/16"
        );
        let operator = "bootstrap/deployment/tigera-operator/tigera-operator";
        assert!(plan.resource(operator).is_some(), "{operator}");
        assert!(installation.depends_on.iter().any(|d| d == operator));
        for g in spec.effective_node_groups() {
            let group = plan
                .resource(&format!("nodegroups/nodegroup/{}", g.name))
                .expect("group");
            assert!(group.depends_on.iter().any(|d| d == CALICO_INSTALLATION_ID));
        }
        let crd = plan
            .resource("bootstrap/custom-resource-definition/installations.operator.tigera.io")
            .expect("crd");
        assert_eq!(
            crd.properties,
            json!({"group": "operator.tigera.io", "kind": "Installation", "scope": "Cluster",
                   "versions": ["v1"]})
        );
        // None of it with the VPC CNI.
        assert_eq!(super::plan(&example()).count_kind(Kind::Installation), 0);
    }

    #[test]
    fn check_graph_finds_cycles_and_dangling_ids() {
        let mut plan = plan(&example());
        // encryption/kms-key/cluster <- ... <- the cluster, which depends on that key.
        plan.phases[0].resources[0]
            .depends_on
            .push("cluster/cluster".into());
        assert!(plan.check_graph().is_err_and(|e| e.contains("cycle")));
        let mut plan2 = super::plan(&example());
        plan2.phases[9].resources[0]
            .depends_on
            .push("nowhere".into());
        assert!(plan2.check_graph().is_err());
    }

    #[test]
    fn variants_change_the_plan() {
        let single = plan(&variant(|v| v["network"]["natMode"] = json!("single")));
        assert_eq!(single.count_kind(Kind::NatGateway), 1);
        assert_eq!(single.count_kind(Kind::ElasticIp), 1);
        let to_first_nat = single
            .resources()
            .filter(|r| r.properties["routes"][0]["target"] == "network/nat-gateway/0")
            .count();
        assert_eq!(
            to_first_nat, 3,
            "every private table routes through the one NAT"
        );
        let irsa_only = plan(&variant(|v| v["identity"]["podIdentity"] = json!(false)));
        let role = irsa_only.resource("identity/role/alb-controller");
        assert!(role.is_some());
        // The identity function makes IRSA roles in its second run, after the cluster.
        assert!(irsa_only
            .phase(Phase::Identity)
            .iter()
            .any(|r| r.id == "identity/role/alb-controller"));
        assert!(role.is_some_and(|r| r.depends_on.contains(&"identity/oidc-provider".to_string())));
        assert_eq!(irsa_only.count_kind(Kind::PodIdentityAssociation), 0);
        let byo = plan(&variant(|v| {
            v["encryption"]["kmsKeyArn"] = json!(
                "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
            );
        }));
        assert!(byo.resource("encryption/kms-key/cluster").is_none());
        let no_tenants = plan(&variant(|v| v["tenants"] = json!([])));
        assert!(
            no_tenants.phase(Phase::Tenants).len() == 3,
            "the bucket, its access-log bucket and the platform's repository only"
        );
    }

    #[test]
    fn every_resource_is_tagged() {
        let plan = plan(&example());
        for p in &plan.phases {
            for r in &p.resources {
                assert_eq!(r.tags[naming::TAG_PLATFORM], "payments", "{}", r.id);
                assert_eq!(r.tags[naming::TAG_COMPONENT], p.phase.as_str(), "{}", r.id);
                assert_eq!(r.tags["cost-center"], "fin-platform-4410", "{}", r.id);
                let tenant_resource = r.id.starts_with("tenants/")
                    && r.id != "tenants/bucket"
                    && r.id != "tenants/access-log-bucket"
                    && !r.id.starts_with("tenants/_repository/")
                    && !r.id.starts_with("tenants/_owner/");
                assert_eq!(
                    r.tags.contains_key(naming::TAG_TENANT),
                    tenant_resource,
                    "{}",
                    r.id
                );
            }
        }
        assert_eq!(
            plan.resource("tenants/ledger/role")
                .map(|r| r.tags[naming::TAG_TENANT].as_str()),
            Some("ledger")
        );
    }

    #[test]
    fn plan_is_deterministic_and_serializes() {
        let a = plan(&example());
        let b = plan(&example());
        assert_eq!(a, b);
        let json = serde_json::to_value(&a).expect("serializes");
        assert_eq!(json["phases"][4]["phase"], "nodegroups");
        assert_eq!(json["phases"][2]["resources"][0]["kind"], "ec2:vpc");
        assert_eq!(
            serde_json::to_value(Phase::Observability).expect("phase"),
            "observability"
        );
        let names: Vec<&str> = Phase::ALL.iter().map(|p| p.as_str()).collect();
        for (phase, name) in Phase::ALL.iter().zip(names) {
            assert_eq!(serde_json::to_value(phase).expect("phase"), name);
            assert_eq!(name.parse::<Phase>(), Ok(*phase));
        }
        let text = a.to_string();
        assert!(text.contains("tenants (54)"), "{text}");
        assert!(text.contains("network/vpc"), "{text}");
    }
}
