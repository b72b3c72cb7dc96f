//! EC2 launch templates: versions of launch template data, as `CreateLaunchTemplate` and
//! `CreateLaunchTemplateVersion` leave them; the network limits of the example's instance types;
//! and the network side of EC2 ([`Network`]: VPCs and what lives in them). EC2's errors are
//! unmodeled: they carry only a code.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_ec2::operation::delete_launch_template::DeleteLaunchTemplateError;
use aws_sdk_ec2::operation::describe_launch_template_versions::DescribeLaunchTemplateVersionsError;
use aws_sdk_ec2::types::{
    InstanceType, InstanceTypeInfo, LaunchTemplate, LaunchTemplateBlockDeviceMapping,
    LaunchTemplateEbsBlockDevice, LaunchTemplateInstanceMetadataOptions, LaunchTemplateVersion,
    NetworkInfo, RequestLaunchTemplateData, ResponseLaunchTemplateData,
};
use aws_sdk_ec2::Client;
use aws_smithy_mocks::{MockResponse as R, Rule};
use aws_smithy_types::error::ErrorMetadata;

use super::{answer, Calls};

const NOT_FOUND: &str = "InvalidLaunchTemplateName.NotFoundException";

/// Network interfaces and IPv4 addresses per interface of the example's instance types, as
/// `DescribeInstanceTypes` reports them.
const INSTANCE_NETWORK: &[(&str, i32, i32)] = &[
    ("m5.large", 3, 10),
    ("t3.medium", 3, 6),
    ("t3a.medium", 3, 6),
    ("c5.large", 3, 10),
    ("c5a.large", 3, 10),
];

/// One launch template: its id and every version's data (version n at index n-1).
#[derive(Clone, Debug, Default)]
pub struct Template {
    pub id: String,
    pub versions: Vec<ResponseLaunchTemplateData>,
}

/// The launch templates of one account and region, by name.
#[derive(Clone, Default)]
pub struct Ec2Double {
    templates: Arc<Mutex<BTreeMap<String, Template>>>,
    net: Arc<Mutex<Network>>,
    calls: Calls,
}

fn not_found() -> ErrorMetadata {
    ErrorMetadata::builder()
        .code(NOT_FOUND)
        .message("no such launch template")
        .build()
}

/// The data EC2 reports for the data a request gave.
fn response(data: &RequestLaunchTemplateData) -> ResponseLaunchTemplateData {
    let metadata = data.metadata_options().map(|m| {
        LaunchTemplateInstanceMetadataOptions::builder()
            .set_http_tokens(m.http_tokens().cloned())
            .set_http_put_response_hop_limit(m.http_put_response_hop_limit())
            .set_http_endpoint(m.http_endpoint().cloned())
            .build()
    });
    let devices = data
        .block_device_mappings()
        .iter()
        .map(|d| {
            let ebs = d.ebs().map(|e| {
                LaunchTemplateEbsBlockDevice::builder()
                    .set_encrypted(e.encrypted())
                    .set_kms_key_id(e.kms_key_id().map(str::to_owned))
                    .set_volume_size(e.volume_size())
                    .set_volume_type(e.volume_type().cloned())
                    .set_delete_on_termination(e.delete_on_termination())
                    .build()
            });
            LaunchTemplateBlockDeviceMapping::builder()
                .set_device_name(d.device_name().map(str::to_owned))
                .set_ebs(ebs)
                .build()
        })
        .collect();
    ResponseLaunchTemplateData::builder()
        .set_metadata_options(metadata)
        .set_block_device_mappings(Some(devices))
        .set_user_data(data.user_data().map(str::to_owned))
        .set_key_name(data.key_name().map(str::to_owned))
        .build()
}

impl Ec2Double {
    pub fn new(calls: &Calls) -> Self {
        Ec2Double {
            calls: calls.clone(),
            ..Default::default()
        }
    }

    pub fn templates(&self) -> BTreeMap<String, Template> {
        self.templates.lock().expect("ec2").clone()
    }

    /// Adds a version out of band, as someone editing the template in the console would.
    pub fn add_version(&self, name: &str, change: impl FnOnce(&mut ResponseLaunchTemplateData)) {
        let mut templates = self.templates.lock().expect("ec2");
        let template = templates.get_mut(name).expect("template");
        let mut data = template.versions.last().cloned().expect("a version");
        change(&mut data);
        template.versions.push(data);
    }

    /// Every rule: launch templates, instance types and the network.
    pub fn rules(&self) -> Vec<Rule> {
        let mut rules = self.template_rules();
        rules.extend(self.network_rules());
        rules
    }

    fn template_rules(&self) -> Vec<Rule> {
        use aws_sdk_ec2::operation::*;
        vec![
            answer!(
                self,
                Client::describe_instance_types,
                "ec2:DescribeInstanceTypes",
                |_me, req| {
                    let infos = INSTANCE_NETWORK
                        .iter()
                        .filter(|(t, _, _)| req.instance_types().contains(&InstanceType::from(*t)))
                        .map(|&(t, interfaces, addresses)| {
                            InstanceTypeInfo::builder()
                                .instance_type(InstanceType::from(t))
                                .network_info(
                                    NetworkInfo::builder()
                                        .maximum_network_interfaces(interfaces)
                                        .ipv4_addresses_per_interface(addresses)
                                        .build(),
                                )
                                .build()
                        })
                        .collect();
                    R::Output(
                        describe_instance_types::DescribeInstanceTypesOutput::builder()
                            .set_instance_types(Some(infos))
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::describe_launch_template_versions,
                "ec2:DescribeLaunchTemplateVersions",
                |me, req| {
                    let name = req.launch_template_name().unwrap_or_default();
                    let Some(t) = me.templates().get(name).cloned() else {
                        return R::Error(DescribeLaunchTemplateVersionsError::generic(not_found()));
                    };
                    assert_eq!(
                        req.versions(),
                        ["$Latest"],
                        "the phases read the latest version"
                    );
                    let latest = t.versions.len();
                    R::Output(
                    describe_launch_template_versions::DescribeLaunchTemplateVersionsOutput::builder()
                        .launch_template_versions(
                            LaunchTemplateVersion::builder()
                                .launch_template_id(&t.id)
                                .launch_template_name(name)
                                .version_number(latest as i64)
                                .set_launch_template_data(t.versions.last().cloned())
                                .build(),
                        )
                        .build(),
                )
                }
            ),
            answer!(
                self,
                Client::create_launch_template,
                "ec2:CreateLaunchTemplate",
                |me, req| {
                    let name = req.launch_template_name().unwrap_or_default().to_owned();
                    let mut templates = me.templates.lock().expect("ec2");
                    let id = format!("lt-{:04}", templates.len() + 1);
                    let data = response(req.launch_template_data().expect("data"));
                    templates.insert(
                        name.clone(),
                        Template {
                            id: id.clone(),
                            versions: vec![data],
                        },
                    );
                    R::Output(
                        create_launch_template::CreateLaunchTemplateOutput::builder()
                            .launch_template(
                                LaunchTemplate::builder()
                                    .launch_template_id(id)
                                    .launch_template_name(name)
                                    .latest_version_number(1)
                                    .build(),
                            )
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::create_launch_template_version,
                "ec2:CreateLaunchTemplateVersion",
                |me, req| {
                    let mut templates = me.templates.lock().expect("ec2");
                    let template = templates
                        .values_mut()
                        .find(|t| Some(t.id.as_str()) == req.launch_template_id())
                        .expect("a template the scenario knows");
                    template
                        .versions
                        .push(response(req.launch_template_data().expect("data")));
                    let number = template.versions.len() as i64;
                    R::Output(
                        create_launch_template_version::CreateLaunchTemplateVersionOutput::builder(
                        )
                        .launch_template_version(
                            LaunchTemplateVersion::builder()
                                .launch_template_id(&template.id)
                                .version_number(number)
                                .build(),
                        )
                        .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::delete_launch_template,
                "ec2:DeleteLaunchTemplate",
                |me, req| {
                    let name = req.launch_template_name().unwrap_or_default();
                    match me.templates.lock().expect("ec2").remove(name) {
                        Some(_) => R::Output(
                            delete_launch_template::DeleteLaunchTemplateOutput::builder().build(),
                        ),
                        None => R::Error(DeleteLaunchTemplateError::generic(not_found())),
                    }
                }
            ),
        ]
    }
}

/// A rule answering `Client::$op` from the network model's method of the same name, which
/// returns the output or an error code.
macro_rules! net {
    ($double:expr, $op:ident, $name:literal) => {
        answer!($double, Client::$op, $name, |me, req| {
            match me.with_network(|n| n.$op(req)) {
                Ok(out) => R::Output(out),
                Err(code) => network::fail(code),
            }
        })
    };
}

impl Ec2Double {
    /// A copy of the network as it stands.
    pub fn network(&self) -> Network {
        self.net.lock().expect("ec2").clone()
    }

    /// Reads or changes the network (out of band, or as a call does).
    pub fn with_network<T>(&self, f: impl FnOnce(&mut Network) -> T) -> T {
        f(&mut self.net.lock().expect("ec2"))
    }

    /// Time passes: what was pending or deleting is done.
    pub fn settle(&self) {
        self.with_network(Network::settle);
    }

    fn network_rules(&self) -> Vec<Rule> {
        let mut rules = self.vpc_rules();
        rules.extend(self.gateway_rules());
        rules.extend(self.route_rules());
        rules.extend(self.endpoint_rules());
        rules
    }

    fn vpc_rules(&self) -> Vec<Rule> {
        vec![
            net!(
                self,
                describe_availability_zones,
                "ec2:DescribeAvailabilityZones"
            ),
            net!(self, create_vpc, "ec2:CreateVpc"),
            net!(self, describe_vpcs, "ec2:DescribeVpcs"),
            net!(self, describe_vpc_attribute, "ec2:DescribeVpcAttribute"),
            net!(self, modify_vpc_attribute, "ec2:ModifyVpcAttribute"),
            net!(self, associate_vpc_cidr_block, "ec2:AssociateVpcCidrBlock"),
            net!(
                self,
                disassociate_vpc_cidr_block,
                "ec2:DisassociateVpcCidrBlock"
            ),
            net!(self, delete_vpc, "ec2:DeleteVpc"),
            net!(self, create_subnet, "ec2:CreateSubnet"),
            net!(self, describe_subnets, "ec2:DescribeSubnets"),
            net!(self, delete_subnet, "ec2:DeleteSubnet"),
            net!(self, create_tags, "ec2:CreateTags"),
        ]
    }

    fn gateway_rules(&self) -> Vec<Rule> {
        vec![
            net!(self, create_internet_gateway, "ec2:CreateInternetGateway"),
            net!(
                self,
                describe_internet_gateways,
                "ec2:DescribeInternetGateways"
            ),
            net!(self, attach_internet_gateway, "ec2:AttachInternetGateway"),
            net!(self, detach_internet_gateway, "ec2:DetachInternetGateway"),
            net!(self, delete_internet_gateway, "ec2:DeleteInternetGateway"),
            net!(self, allocate_address, "ec2:AllocateAddress"),
            net!(self, describe_addresses, "ec2:DescribeAddresses"),
            net!(self, release_address, "ec2:ReleaseAddress"),
            net!(self, create_nat_gateway, "ec2:CreateNatGateway"),
            net!(self, describe_nat_gateways, "ec2:DescribeNatGateways"),
            net!(self, delete_nat_gateway, "ec2:DeleteNatGateway"),
        ]
    }

    fn route_rules(&self) -> Vec<Rule> {
        vec![
            net!(self, create_route_table, "ec2:CreateRouteTable"),
            net!(self, describe_route_tables, "ec2:DescribeRouteTables"),
            net!(self, delete_route_table, "ec2:DeleteRouteTable"),
            net!(self, create_route, "ec2:CreateRoute"),
            net!(self, replace_route, "ec2:ReplaceRoute"),
            net!(self, delete_route, "ec2:DeleteRoute"),
            net!(self, associate_route_table, "ec2:AssociateRouteTable"),
            net!(
                self,
                replace_route_table_association,
                "ec2:ReplaceRouteTableAssociation"
            ),
            net!(self, disassociate_route_table, "ec2:DisassociateRouteTable"),
        ]
    }

    fn endpoint_rules(&self) -> Vec<Rule> {
        vec![
            net!(self, create_security_group, "ec2:CreateSecurityGroup"),
            net!(self, describe_security_groups, "ec2:DescribeSecurityGroups"),
            net!(
                self,
                authorize_security_group_ingress,
                "ec2:AuthorizeSecurityGroupIngress"
            ),
            net!(
                self,
                revoke_security_group_ingress,
                "ec2:RevokeSecurityGroupIngress"
            ),
            net!(
                self,
                authorize_security_group_egress,
                "ec2:AuthorizeSecurityGroupEgress"
            ),
            net!(
                self,
                revoke_security_group_egress,
                "ec2:RevokeSecurityGroupEgress"
            ),
            net!(self, delete_security_group, "ec2:DeleteSecurityGroup"),
            net!(self, create_vpc_endpoint, "ec2:CreateVpcEndpoint"),
            net!(self, describe_vpc_endpoints, "ec2:DescribeVpcEndpoints"),
            net!(self, modify_vpc_endpoint, "ec2:ModifyVpcEndpoint"),
            net!(self, delete_vpc_endpoints, "ec2:DeleteVpcEndpoints"),
            net!(self, create_flow_logs, "ec2:CreateFlowLogs"),
            net!(self, describe_flow_logs, "ec2:DescribeFlowLogs"),
            net!(self, delete_flow_logs, "ec2:DeleteFlowLogs"),
        ]
    }
}

pub use network::Network;

/// The network side of EC2 in one account and region: VPCs (with their secondary CIDRs and DNS
/// attributes), subnets, internet gateways, Elastic IPs, NAT gateways, route tables, security
/// groups, VPC endpoints and flow logs, as the SDK types EC2 describes them with. Ids are
/// generated in creation order; describe calls honour their filters (`tag:<key>`, `tag-key` and
/// the per-resource ones the phase uses; any other filter fails the scenario); NAT gateways are
/// `pending` and interface endpoints `pending` until [`Network::settle`], deletions of either
/// take a settle too, and deleted ones stay visible as `deleted`. Deletions refused by AWS while
/// something still depends on the resource fail with `DependencyViolation`.
pub mod network {
    use std::collections::BTreeMap;

    use aws_sdk_ec2::operation::*;
    use aws_sdk_ec2::types::{
        Address, AttachmentStatus, AttributeBooleanValue, AvailabilityZone, AvailabilityZoneState,
        ConnectivityType, DomainType, Filter, FlowLog, FlowLogsResourceType, InternetGateway,
        InternetGatewayAttachment, IpPermission, IpRange, LogDestinationType, NatGateway,
        NatGatewayAddress, NatGatewayAddressStatus, NatGatewayState, ResourceType, Route,
        RouteOrigin, RouteState, RouteTable, RouteTableAssociation, RouteTableAssociationState,
        RouteTableAssociationStateCode, SecurityGroup, SecurityGroupIdentifier, State, Subnet,
        SubnetState, Tag, TagSpecification, Tenancy, UnsuccessfulItem, UnsuccessfulItemError,
        UserIdGroupPair, Vpc, VpcAttributeName, VpcCidrBlockAssociation, VpcCidrBlockState,
        VpcCidrBlockStateCode, VpcEndpoint, VpcEndpointType, VpcState,
    };
    use aws_smithy_mocks::MockResponse as R;
    use aws_smithy_runtime_api::client::result::CreateUnhandledError;
    use aws_smithy_types::error::ErrorMetadata;
    use ipnet::Ipv4Net;

    use super::super::ACCOUNT;

    /// An EC2 error code.
    pub type Code = &'static str;
    type Answer<T> = Result<T, Code>;

    /// The zones of the region: six availability zones and a Local Zone (which sorts first).
    pub const ZONES: &[(&str, &str)] = &[
        ("us-east-1-bos-1a", "local-zone"),
        ("us-east-1a", "availability-zone"),
        ("us-east-1b", "availability-zone"),
        ("us-east-1c", "availability-zone"),
        ("us-east-1d", "availability-zone"),
        ("us-east-1e", "availability-zone"),
        ("us-east-1f", "availability-zone"),
    ];

    /// The prefix lists of the gateway endpoints' services in us-east-1.
    const PREFIX_LISTS: &[(&str, &str)] = &[
        ("com.amazonaws.us-east-1.s3", "pl-63a5400a"),
        ("com.amazonaws.us-east-1.dynamodb", "pl-02cd2c6b"),
    ];

    const DEFAULT_POLICY: &str = r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#;

    /// The error response carrying `code`.
    pub fn fail<O, E: CreateUnhandledError>(code: &str) -> R<O, E> {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message(format!("{code} (scenario EC2 model)"))
            .build();
        R::Error(E::create_unhandled_error(
            Box::new(meta.clone()),
            Some(meta),
        ))
    }

    /// A VPC's DNS attributes (`enableDnsSupport`, `enableDnsHostnames`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Dns {
        pub support: bool,
        pub hostnames: bool,
    }

    /// Every resource, by id.
    #[derive(Clone, Debug, Default)]
    pub struct Network {
        pub vpcs: BTreeMap<String, Vpc>,
        pub dns: BTreeMap<String, Dns>,
        pub subnets: BTreeMap<String, Subnet>,
        pub igws: BTreeMap<String, InternetGateway>,
        pub addresses: BTreeMap<String, Address>,
        pub nats: BTreeMap<String, NatGateway>,
        pub tables: BTreeMap<String, RouteTable>,
        pub groups: BTreeMap<String, SecurityGroup>,
        pub endpoints: BTreeMap<String, VpcEndpoint>,
        pub flow_logs: BTreeMap<String, FlowLog>,
        /// NAT gateways that fail at the next settle, with the failure code.
        failing: BTreeMap<String, Code>,
        next: u32,
    }

    fn unmodeled(operation: &str, filter: &str) -> Vec<String> {
        panic!("{operation}: the filter {filter:?} is not modeled")
    }

    fn one(value: Option<&str>) -> Vec<String> {
        value.map(str::to_owned).into_iter().collect()
    }

    /// What a describe call can filter on.
    trait Item: Clone {
        fn tag_list(&self) -> &[Tag];
        /// The values of the filter `name` (other than the tag filters).
        fn field(&self, name: &str) -> Vec<String>;
    }

    /// The items matching every filter (one of its values).
    fn select<T: Item>(items: &BTreeMap<String, T>, filters: &[Filter]) -> Vec<T> {
        items
            .values()
            .filter(|item| filters.iter().all(|f| passes(*item, f)))
            .cloned()
            .collect()
    }

    fn passes<T: Item>(item: &T, filter: &Filter) -> bool {
        let name = filter.name().unwrap_or_default();
        let tags = item.tag_list();
        let have: Vec<String> = match name.strip_prefix("tag:") {
            Some(key) => tags
                .iter()
                .filter(|t| t.key() == Some(key))
                .filter_map(|t| t.value().map(str::to_owned))
                .collect(),
            None if name == "tag-key" => tags
                .iter()
                .filter_map(|t| t.key().map(str::to_owned))
                .collect(),
            None => item.field(name),
        };
        filter.values().iter().any(|v| have.contains(v))
    }

    impl Item for Vpc {
        fn tag_list(&self) -> &[Tag] {
            self.tags()
        }
        fn field(&self, name: &str) -> Vec<String> {
            match name {
                "vpc-id" => one(self.vpc_id()),
                "cidr" => one(self.cidr_block()),
                "state" => one(self.state().map(|s| s.as_str())),
                "cidr-block-association.cidr-block" => self
                    .cidr_block_association_set()
                    .iter()
                    .filter_map(|a| a.cidr_block().map(str::to_owned))
                    .collect(),
                other => unmodeled("DescribeVpcs", other),
            }
        }
    }

    impl Item for Subnet {
        fn tag_list(&self) -> &[Tag] {
            self.tags()
        }
        fn field(&self, name: &str) -> Vec<String> {
            match name {
                "subnet-id" => one(self.subnet_id()),
                "vpc-id" => one(self.vpc_id()),
                "cidr-block" => one(self.cidr_block()),
                "availability-zone" => one(self.availability_zone()),
                other => unmodeled("DescribeSubnets", other),
            }
        }
    }

    impl Item for InternetGateway {
        fn tag_list(&self) -> &[Tag] {
            self.tags()
        }
        fn field(&self, name: &str) -> Vec<String> {
            match name {
                "internet-gateway-id" => one(self.internet_gateway_id()),
                "attachment.vpc-id" => self
                    .attachments()
                    .iter()
                    .filter_map(|a| a.vpc_id().map(str::to_owned))
                    .collect(),
                other => unmodeled("DescribeInternetGateways", other),
            }
        }
    }

    impl Item for Address {
        fn tag_list(&self) -> &[Tag] {
            self.tags()
        }
        fn field(&self, name: &str) -> Vec<String> {
            match name {
                "allocation-id" => one(self.allocation_id()),
                "association-id" => one(self.association_id()),
                "public-ip" => one(self.public_ip()),
                "domain" => one(self.domain().map(|d| d.as_str())),
                other => unmodeled("DescribeAddresses", other),
            }
        }
    }

    impl Item for NatGateway {
        fn tag_list(&self) -> &[Tag] {
            self.tags()
        }
        fn field(&self, name: &str) -> Vec<String> {
            match name {
                "nat-gateway-id" => one(self.nat_gateway_id()),
                "state" => one(self.state().map(|s| s.as_str())),
                "subnet-id" => one(self.subnet_id()),
                "vpc-id" => one(self.vpc_id()),
                other => unmodeled("DescribeNatGateways", other),
            }
        }
    }

    impl Item for RouteTable {
        fn tag_list(&self) -> &[Tag] {
            self.tags()
        }
        fn field(&self, name: &str) -> Vec<String> {
            let associations = self.associations().iter();
            match name {
                "route-table-id" => one(self.route_table_id()),
                "vpc-id" => one(self.vpc_id()),
                "association.main" => associations
                    .map(|a| a.main().unwrap_or(false).to_string())
                    .collect(),
                "association.subnet-id" => associations
                    .filter_map(|a| a.subnet_id().map(str::to_owned))
                    .collect(),
                "association.route-table-association-id" => associations
                    .filter_map(|a| a.route_table_association_id().map(str::to_owned))
                    .collect(),
                other => unmodeled("DescribeRouteTables", other),
            }
        }
    }

    impl Item for SecurityGroup {
        fn tag_list(&self) -> &[Tag] {
            self.tags()
        }
        fn field(&self, name: &str) -> Vec<String> {
            match name {
                "group-id" => one(self.group_id()),
                "group-name" => one(self.group_name()),
                "vpc-id" => one(self.vpc_id()),
                other => unmodeled("DescribeSecurityGroups", other),
            }
        }
    }

    impl Item for VpcEndpoint {
        fn tag_list(&self) -> &[Tag] {
            self.tags()
        }
        fn field(&self, name: &str) -> Vec<String> {
            match name {
                "vpc-endpoint-id" => one(self.vpc_endpoint_id()),
                "vpc-id" => one(self.vpc_id()),
                "service-name" => one(self.service_name()),
                "vpc-endpoint-state" => one(self.state().map(|s| s.as_str())),
                "vpc-endpoint-type" => one(self.vpc_endpoint_type().map(|t| t.as_str())),
                other => unmodeled("DescribeVpcEndpoints", other),
            }
        }
    }

    impl Item for FlowLog {
        fn tag_list(&self) -> &[Tag] {
            self.tags()
        }
        fn field(&self, name: &str) -> Vec<String> {
            match name {
                "flow-log-id" => one(self.flow_log_id()),
                "resource-id" => one(self.resource_id()),
                "log-group-name" => one(self.log_group_name()),
                "traffic-type" => one(self.traffic_type().map(|t| t.as_str())),
                other => unmodeled("DescribeFlowLogs", other),
            }
        }
    }

    /// The tags of `specs`, all of which must be for `kind`.
    fn tags_for(specs: &[TagSpecification], kind: ResourceType) -> Answer<Option<Vec<Tag>>> {
        let mut tags = Vec::new();
        for spec in specs {
            if spec.resource_type() != Some(&kind) {
                return Err("InvalidParameterValue");
            }
            tags.extend(spec.tags().iter().cloned());
        }
        Ok(Some(tags))
    }

    fn cidr(value: Option<&str>) -> Answer<Ipv4Net> {
        value
            .and_then(|c| c.parse().ok())
            .ok_or("InvalidParameterValue")
    }

    fn overlap(a: &Ipv4Net, b: &Ipv4Net) -> bool {
        a.contains(&b.network()) || b.contains(&a.network())
    }

    fn cidr_state(code: VpcCidrBlockStateCode) -> VpcCidrBlockState {
        VpcCidrBlockState::builder().state(code).build()
    }

    fn association_state(code: RouteTableAssociationStateCode) -> RouteTableAssociationState {
        RouteTableAssociationState::builder().state(code).build()
    }

    fn unsuccessful(id: &str, code: &str) -> UnsuccessfulItem {
        UnsuccessfulItem::builder()
            .resource_id(id)
            .error(
                UnsuccessfulItemError::builder()
                    .code(code)
                    .message(code)
                    .build(),
            )
            .build()
    }

    fn local_route(cidr: &str) -> Route {
        Route::builder()
            .destination_cidr_block(cidr)
            .gateway_id("local")
            .state(RouteState::Active)
            .origin(RouteOrigin::CreateRouteTable)
            .build()
    }

    /// An endpoint's state as EC2 answers it (lower case, unlike the SDK's enum).
    fn endpoint_state(state: &str) -> State {
        State::from(state)
    }

    fn endpoint_in(e: &VpcEndpoint, states: &[&str]) -> bool {
        e.state().is_some_and(|s| states.contains(&s.as_str()))
    }

    fn nat_live(n: &NatGateway) -> bool {
        n.state() != Some(&NatGatewayState::Deleted) && n.state() != Some(&NatGatewayState::Failed)
    }

    /// The policy document as EC2 answers it: the same JSON, laid out its own way.
    fn returned_policy(document: Option<&str>) -> String {
        let document = document.unwrap_or(DEFAULT_POLICY);
        serde_json::from_str::<serde_json::Value>(document)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| document.to_owned())
    }

    impl Network {
        fn id(&mut self, prefix: &str) -> String {
            self.next += 1;
            format!("{prefix}-{:017x}", self.next)
        }

        /// Time passes: pending NAT gateways and interface endpoints become available (or
        /// failed), deleting ones deleted (a deleted NAT gateway's Elastic IP is free again).
        pub fn settle(&mut self) {
            let mut freed = Vec::new();
            for (id, nat) in self.nats.iter_mut() {
                nat.state = match nat.state.take() {
                    Some(NatGatewayState::Pending) => match self.failing.remove(id) {
                        Some(code) => {
                            nat.failure_code = Some(code.to_owned());
                            Some(NatGatewayState::Failed)
                        }
                        None => Some(NatGatewayState::Available),
                    },
                    Some(NatGatewayState::Deleting) => {
                        freed.extend(nat.nat_gateway_addresses().iter().cloned());
                        Some(NatGatewayState::Deleted)
                    }
                    other => other,
                };
            }
            for a in freed.iter().filter_map(|a| a.allocation_id()) {
                if let Some(address) = self.addresses.get_mut(a) {
                    address.association_id = None;
                    address.network_interface_id = None;
                    address.private_ip_address = None;
                }
            }
            for e in self.endpoints.values_mut() {
                let next = match e.state().map(|s| s.as_str()) {
                    Some("pending") => "available",
                    Some("deleting") => "deleted",
                    _ => continue,
                };
                e.state = Some(endpoint_state(next));
            }
        }

        /// The live resources in `vpc` (no deleted NAT gateway or endpoint).
        pub fn in_vpc(&self, vpc: &str) -> Vec<String> {
            let mut ids = Vec::new();
            let vpc = Some(vpc);
            let mut add = |id: Option<&str>| ids.extend(one(id));
            self.subnets
                .values()
                .filter(|s| s.vpc_id() == vpc)
                .for_each(|s| add(s.subnet_id()));
            self.nats
                .values()
                .filter(|n| n.vpc_id() == vpc && nat_live(n))
                .for_each(|n| add(n.nat_gateway_id()));
            self.igws
                .values()
                .filter(|g| g.attachments().iter().any(|a| a.vpc_id() == vpc))
                .for_each(|g| add(g.internet_gateway_id()));
            self.tables
                .values()
                .filter(|t| {
                    t.vpc_id() == vpc && !t.associations().iter().any(|a| a.main() == Some(true))
                })
                .for_each(|t| add(t.route_table_id()));
            self.groups
                .values()
                .filter(|g| g.vpc_id() == vpc && g.group_name() != Some("default"))
                .for_each(|g| add(g.group_id()));
            self.endpoints
                .values()
                .filter(|e| e.vpc_id() == vpc && !endpoint_in(e, &["deleted"]))
                .for_each(|e| add(e.vpc_endpoint_id()));
            ids
        }

        /// The tags of the resource `id`, whatever its kind.
        fn tags_mut(&mut self, id: &str) -> Option<&mut Option<Vec<Tag>>> {
            let tags = match id.split_once('-')?.0 {
                "vpc" => &mut self.vpcs.get_mut(id)?.tags,
                "subnet" => &mut self.subnets.get_mut(id)?.tags,
                "igw" => &mut self.igws.get_mut(id)?.tags,
                "eipalloc" => &mut self.addresses.get_mut(id)?.tags,
                "nat" => &mut self.nats.get_mut(id)?.tags,
                "rtb" => &mut self.tables.get_mut(id)?.tags,
                "sg" => &mut self.groups.get_mut(id)?.tags,
                "vpce" => &mut self.endpoints.get_mut(id)?.tags,
                "fl" => &mut self.flow_logs.get_mut(id)?.tags,
                _ => return None,
            };
            Some(tags)
        }

        pub fn describe_availability_zones(
            &mut self,
            _: &describe_availability_zones::DescribeAvailabilityZonesInput,
        ) -> Answer<describe_availability_zones::DescribeAvailabilityZonesOutput> {
            let zones = ZONES.iter().map(|(name, kind)| {
                AvailabilityZone::builder()
                    .zone_name(*name)
                    .zone_type(*kind)
                    .region_name("us-east-1")
                    .state(AvailabilityZoneState::Available)
                    .build()
            });
            Ok(
                describe_availability_zones::DescribeAvailabilityZonesOutput::builder()
                    .set_availability_zones(Some(zones.collect()))
                    .build(),
            )
        }
    }

    /// VPCs and subnets.
    impl Network {
        /// A VPC as `CreateVpc` leaves it: DNS support on, hostnames off, with its main route
        /// table and default security group.
        pub fn add_vpc(&mut self, cidr: &str, tags: Vec<Tag>) -> String {
            let id = self.id("vpc");
            let association = VpcCidrBlockAssociation::builder()
                .association_id(self.id("vpc-cidr-assoc"))
                .cidr_block(cidr)
                .cidr_block_state(cidr_state(VpcCidrBlockStateCode::Associated))
                .build();
            let vpc = Vpc::builder()
                .vpc_id(&id)
                .cidr_block(cidr)
                .state(VpcState::Available)
                .owner_id(ACCOUNT)
                .is_default(false)
                .instance_tenancy(Tenancy::Default)
                .cidr_block_association_set(association)
                .set_tags(Some(tags))
                .build();
            self.vpcs.insert(id.clone(), vpc);
            let dns = Dns {
                support: true,
                hostnames: false,
            };
            self.dns.insert(id.clone(), dns);
            let main = self.add_table(&id, Vec::new());
            self.associate(&main, None);
            self.add_default_group(&id);
            id
        }

        fn add_default_group(&mut self, vpc: &str) {
            let id = self.id("sg");
            let itself = UserIdGroupPair::builder()
                .group_id(&id)
                .user_id(ACCOUNT)
                .build();
            let group = SecurityGroup::builder()
                .group_id(&id)
                .group_name("default")
                .description("default VPC security group")
                .vpc_id(vpc)
                .owner_id(ACCOUNT)
                .ip_permissions(
                    IpPermission::builder()
                        .ip_protocol("-1")
                        .user_id_group_pairs(itself)
                        .build(),
                )
                .ip_permissions_egress(everywhere())
                .build();
            self.groups.insert(id, group);
        }

        /// A subnet as `CreateSubnet` leaves it (no check).
        pub fn add_subnet(&mut self, vpc: &str, cidr: &str, az: &str, tags: Vec<Tag>) -> String {
            let id = self.id("subnet");
            let subnet = Subnet::builder()
                .subnet_id(&id)
                .vpc_id(vpc)
                .cidr_block(cidr)
                .availability_zone(az)
                .state(SubnetState::Available)
                .owner_id(ACCOUNT)
                .map_public_ip_on_launch(false)
                .default_for_az(false)
                .set_tags(Some(tags))
                .build();
            self.subnets.insert(id.clone(), subnet);
            id
        }

        /// The VPC's CIDR blocks in state `associated`.
        fn vpc_cidrs(&self, vpc: &str) -> Vec<Ipv4Net> {
            self.vpcs[vpc]
                .cidr_block_association_set()
                .iter()
                .filter(|a| {
                    a.cidr_block_state().and_then(|s| s.state())
                        == Some(&VpcCidrBlockStateCode::Associated)
                })
                .filter_map(|a| a.cidr_block()?.parse().ok())
                .collect()
        }

        fn known_vpc(&self, vpc: Option<&str>) -> Answer<String> {
            vpc.filter(|v| self.vpcs.contains_key(*v))
                .map(str::to_owned)
                .ok_or("InvalidVpcID.NotFound")
        }

        pub fn create_vpc(
            &mut self,
            req: &create_vpc::CreateVpcInput,
        ) -> Answer<create_vpc::CreateVpcOutput> {
            let block = cidr(req.cidr_block())?;
            if !(16..=28).contains(&block.prefix_len()) {
                return Err("InvalidVpc.Range");
            }
            let tags = tags_for(req.tag_specifications(), ResourceType::Vpc)?;
            let id = self.add_vpc(&block.to_string(), tags.unwrap_or_default());
            let mut vpc = self.vpcs[&id].clone();
            vpc.state = Some(VpcState::Pending);
            Ok(create_vpc::CreateVpcOutput::builder().vpc(vpc).build())
        }

        pub fn describe_vpcs(
            &mut self,
            req: &describe_vpcs::DescribeVpcsInput,
        ) -> Answer<describe_vpcs::DescribeVpcsOutput> {
            let vpcs = select(&self.vpcs, req.filters());
            Ok(describe_vpcs::DescribeVpcsOutput::builder()
                .set_vpcs(Some(vpcs))
                .build())
        }

        pub fn describe_vpc_attribute(
            &mut self,
            req: &describe_vpc_attribute::DescribeVpcAttributeInput,
        ) -> Answer<describe_vpc_attribute::DescribeVpcAttributeOutput> {
            let id = self.known_vpc(req.vpc_id())?;
            let dns = self.dns[&id];
            let value = |on: bool| AttributeBooleanValue::builder().value(on).build();
            let out = describe_vpc_attribute::DescribeVpcAttributeOutput::builder().vpc_id(id);
            let out = match req.attribute() {
                Some(VpcAttributeName::EnableDnsSupport) => {
                    out.enable_dns_support(value(dns.support))
                }
                Some(VpcAttributeName::EnableDnsHostnames) => {
                    out.enable_dns_hostnames(value(dns.hostnames))
                }
                other => panic!("DescribeVpcAttribute: {other:?} is not modeled"),
            };
            Ok(out.build())
        }

        /// One attribute per call, as EC2 requires.
        pub fn modify_vpc_attribute(
            &mut self,
            req: &modify_vpc_attribute::ModifyVpcAttributeInput,
        ) -> Answer<modify_vpc_attribute::ModifyVpcAttributeOutput> {
            let id = self.known_vpc(req.vpc_id())?;
            let dns = self.dns.get_mut(&id).expect("dns");
            let on = |v: &AttributeBooleanValue| v.value().unwrap_or(false);
            match (req.enable_dns_support(), req.enable_dns_hostnames()) {
                (Some(v), None) => dns.support = on(v),
                (None, Some(v)) => dns.hostnames = on(v),
                _ => return Err("InvalidParameterCombination"),
            }
            Ok(modify_vpc_attribute::ModifyVpcAttributeOutput::builder().build())
        }

        /// A secondary CIDR, associated at once; every route table of the VPC gets its local
        /// route.
        pub fn associate_vpc_cidr_block(
            &mut self,
            req: &associate_vpc_cidr_block::AssociateVpcCidrBlockInput,
        ) -> Answer<associate_vpc_cidr_block::AssociateVpcCidrBlockOutput> {
            let id = self.known_vpc(req.vpc_id())?;
            let block = cidr(req.cidr_block())?;
            if self.vpc_cidrs(&id).iter().any(|c| overlap(c, &block)) {
                return Err("InvalidVpc.Range");
            }
            let association = VpcCidrBlockAssociation::builder()
                .association_id(self.id("vpc-cidr-assoc"))
                .cidr_block(block.to_string());
            let stored = association
                .clone()
                .cidr_block_state(cidr_state(VpcCidrBlockStateCode::Associated))
                .build();
            let vpc = self.vpcs.get_mut(&id).expect("vpc");
            vpc.cidr_block_association_set
                .get_or_insert_with(Vec::new)
                .push(stored);
            for t in self
                .tables
                .values_mut()
                .filter(|t| t.vpc_id() == Some(id.as_str()))
            {
                t.routes
                    .get_or_insert_with(Vec::new)
                    .push(local_route(&block.to_string()));
            }
            let answered = association
                .cidr_block_state(cidr_state(VpcCidrBlockStateCode::Associating))
                .build();
            Ok(
                associate_vpc_cidr_block::AssociateVpcCidrBlockOutput::builder()
                    .vpc_id(id)
                    .cidr_block_association(answered)
                    .build(),
            )
        }

        /// A secondary CIDR goes (it stays listed as `disassociated`), with its local routes.
        pub fn disassociate_vpc_cidr_block(
            &mut self,
            req: &disassociate_vpc_cidr_block::DisassociateVpcCidrBlockInput,
        ) -> Answer<disassociate_vpc_cidr_block::DisassociateVpcCidrBlockOutput> {
            let wanted = req.association_id();
            let (vpc, block) = self
                .vpcs
                .values_mut()
                .find_map(|v| {
                    let primary = v.cidr_block.clone();
                    let a = v
                        .cidr_block_association_set
                        .iter_mut()
                        .flatten()
                        .find(|a| a.association_id() == wanted)?;
                    Some((v.vpc_id.clone()?, a, primary))
                })
                .map(|(vpc, a, primary)| {
                    if a.cidr_block == primary {
                        return Err("OperationNotPermitted");
                    }
                    a.cidr_block_state = Some(cidr_state(VpcCidrBlockStateCode::Disassociated));
                    Ok((vpc, a.cidr_block.clone()))
                })
                .ok_or("InvalidVpcCidrBlockAssociationID.NotFound")??;
            for t in self
                .tables
                .values_mut()
                .filter(|t| t.vpc_id() == Some(vpc.as_str()))
            {
                let routes = t.routes.get_or_insert_with(Vec::new);
                routes.retain(|r| {
                    r.gateway_id() != Some("local")
                        || r.destination_cidr_block.as_ref() != block.as_ref()
                });
            }
            Ok(
                disassociate_vpc_cidr_block::DisassociateVpcCidrBlockOutput::builder()
                    .vpc_id(vpc)
                    .build(),
            )
        }

        /// Refused while anything but the main route table and the default group is left.
        pub fn delete_vpc(
            &mut self,
            req: &delete_vpc::DeleteVpcInput,
        ) -> Answer<delete_vpc::DeleteVpcOutput> {
            let id = self.known_vpc(req.vpc_id())?;
            if !self.in_vpc(&id).is_empty() {
                return Err("DependencyViolation");
            }
            let here = Some(id.as_str());
            self.vpcs.remove(&id);
            self.dns.remove(&id);
            self.tables.retain(|_, t| t.vpc_id() != here);
            self.groups.retain(|_, g| g.vpc_id() != here);
            self.endpoints.retain(|_, e| e.vpc_id() != here);
            self.flow_logs.retain(|_, f| f.resource_id() != here);
            Ok(delete_vpc::DeleteVpcOutput::builder().build())
        }

        pub fn create_subnet(
            &mut self,
            req: &create_subnet::CreateSubnetInput,
        ) -> Answer<create_subnet::CreateSubnetOutput> {
            let vpc = self.known_vpc(req.vpc_id())?;
            let block = cidr(req.cidr_block())?;
            let az = req.availability_zone().unwrap_or("us-east-1a");
            if !ZONES.iter().any(|(z, _)| *z == az) {
                return Err("InvalidParameterValue");
            }
            if !self.vpc_cidrs(&vpc).iter().any(|c| c.contains(&block)) {
                return Err("InvalidSubnet.Range");
            }
            let taken = self
                .subnets
                .values()
                .filter(|s| s.vpc_id() == Some(vpc.as_str()))
                .filter_map(|s| s.cidr_block()?.parse::<Ipv4Net>().ok());
            if taken.into_iter().any(|c| overlap(&c, &block)) {
                return Err("InvalidSubnet.Conflict");
            }
            let tags = tags_for(req.tag_specifications(), ResourceType::Subnet)?;
            let id = self.add_subnet(&vpc, &block.to_string(), az, tags.unwrap_or_default());
            let subnet = self.subnets[&id].clone();
            Ok(create_subnet::CreateSubnetOutput::builder()
                .subnet(subnet)
                .build())
        }

        pub fn describe_subnets(
            &mut self,
            req: &describe_subnets::DescribeSubnetsInput,
        ) -> Answer<describe_subnets::DescribeSubnetsOutput> {
            let subnets = select(&self.subnets, req.filters());
            Ok(describe_subnets::DescribeSubnetsOutput::builder()
                .set_subnets(Some(subnets))
                .build())
        }

        /// Refused while a NAT gateway or an endpoint's interface is in the subnet; its route
        /// table association goes with it.
        pub fn delete_subnet(
            &mut self,
            req: &delete_subnet::DeleteSubnetInput,
        ) -> Answer<delete_subnet::DeleteSubnetOutput> {
            let id = req.subnet_id().filter(|s| self.subnets.contains_key(*s));
            let id = id.ok_or("InvalidSubnetID.NotFound")?.to_owned();
            let here = Some(id.as_str());
            let nat = self
                .nats
                .values()
                .any(|n| n.subnet_id() == here && nat_live(n));
            let interface = self
                .endpoints
                .values()
                .any(|e| e.subnet_ids().contains(&id) && !endpoint_in(e, &["deleted"]));
            if nat || interface {
                return Err("DependencyViolation");
            }
            self.subnets.remove(&id);
            for t in self.tables.values_mut() {
                t.associations
                    .get_or_insert_with(Vec::new)
                    .retain(|a| a.subnet_id() != here);
            }
            Ok(delete_subnet::DeleteSubnetOutput::builder().build())
        }

        /// Adds tags, replacing the values of keys already there.
        pub fn create_tags(
            &mut self,
            req: &create_tags::CreateTagsInput,
        ) -> Answer<create_tags::CreateTagsOutput> {
            for id in req.resources() {
                let tags = self.tags_mut(id).ok_or("InvalidID")?;
                let tags = tags.get_or_insert_with(Vec::new);
                for t in req.tags() {
                    tags.retain(|have| have.key() != t.key());
                    tags.push(t.clone());
                }
            }
            Ok(create_tags::CreateTagsOutput::builder().build())
        }
    }

    /// Internet gateways, Elastic IPs and NAT gateways.
    impl Network {
        pub fn create_internet_gateway(
            &mut self,
            req: &create_internet_gateway::CreateInternetGatewayInput,
        ) -> Answer<create_internet_gateway::CreateInternetGatewayOutput> {
            let tags = tags_for(req.tag_specifications(), ResourceType::InternetGateway)?;
            let id = self.id("igw");
            let igw = InternetGateway::builder()
                .internet_gateway_id(&id)
                .owner_id(ACCOUNT)
                .set_attachments(Some(Vec::new()))
                .set_tags(tags)
                .build();
            self.igws.insert(id, igw.clone());
            Ok(
                create_internet_gateway::CreateInternetGatewayOutput::builder()
                    .internet_gateway(igw)
                    .build(),
            )
        }

        pub fn describe_internet_gateways(
            &mut self,
            req: &describe_internet_gateways::DescribeInternetGatewaysInput,
        ) -> Answer<describe_internet_gateways::DescribeInternetGatewaysOutput> {
            let igws = select(&self.igws, req.filters());
            Ok(
                describe_internet_gateways::DescribeInternetGatewaysOutput::builder()
                    .set_internet_gateways(Some(igws))
                    .build(),
            )
        }

        fn igw_mut(&mut self, id: Option<&str>) -> Answer<&mut InternetGateway> {
            self.igws
                .get_mut(id.unwrap_or_default())
                .ok_or("InvalidInternetGatewayID.NotFound")
        }

        /// One gateway per VPC, one VPC per gateway.
        pub fn attach_internet_gateway(
            &mut self,
            req: &attach_internet_gateway::AttachInternetGatewayInput,
        ) -> Answer<attach_internet_gateway::AttachInternetGatewayOutput> {
            let vpc = self.known_vpc(req.vpc_id())?;
            let vpc_has_one = self.igws.values().any(|g| {
                g.attachments()
                    .iter()
                    .any(|a| a.vpc_id() == Some(vpc.as_str()))
            });
            let igw = self.igw_mut(req.internet_gateway_id())?;
            if vpc_has_one || !igw.attachments().is_empty() {
                return Err("Resource.AlreadyAssociated");
            }
            let attachment = InternetGatewayAttachment::builder()
                .vpc_id(vpc)
                .state(AttachmentStatus::from("available"))
                .build();
            igw.attachments = Some(vec![attachment]);
            Ok(attach_internet_gateway::AttachInternetGatewayOutput::builder().build())
        }

        /// Refused while the VPC has public addresses mapped (its NAT gateways' Elastic IPs).
        pub fn detach_internet_gateway(
            &mut self,
            req: &detach_internet_gateway::DetachInternetGatewayInput,
        ) -> Answer<detach_internet_gateway::DetachInternetGatewayOutput> {
            let vpc = req.vpc_id();
            let mapped = self.nats.values().any(|n| n.vpc_id() == vpc && nat_live(n));
            let igw = self.igw_mut(req.internet_gateway_id())?;
            if !igw.attachments().iter().any(|a| a.vpc_id() == vpc) {
                return Err("Gateway.NotAttached");
            }
            if mapped {
                return Err("DependencyViolation");
            }
            igw.attachments = Some(Vec::new());
            Ok(detach_internet_gateway::DetachInternetGatewayOutput::builder().build())
        }

        pub fn delete_internet_gateway(
            &mut self,
            req: &delete_internet_gateway::DeleteInternetGatewayInput,
        ) -> Answer<delete_internet_gateway::DeleteInternetGatewayOutput> {
            let igw = self.igw_mut(req.internet_gateway_id())?;
            if !igw.attachments().is_empty() {
                return Err("DependencyViolation");
            }
            let id = igw.internet_gateway_id.clone().unwrap_or_default();
            self.igws.remove(&id);
            Ok(delete_internet_gateway::DeleteInternetGatewayOutput::builder().build())
        }

        pub fn allocate_address(
            &mut self,
            req: &allocate_address::AllocateAddressInput,
        ) -> Answer<allocate_address::AllocateAddressOutput> {
            let tags = tags_for(req.tag_specifications(), ResourceType::ElasticIp)?;
            let id = self.id("eipalloc");
            let ip = format!("203.0.113.{}", self.next);
            let address = Address::builder()
                .allocation_id(&id)
                .public_ip(&ip)
                .domain(DomainType::Vpc)
                .network_border_group("us-east-1")
                .set_tags(tags)
                .build();
            self.addresses.insert(id.clone(), address);
            Ok(allocate_address::AllocateAddressOutput::builder()
                .allocation_id(id)
                .public_ip(ip)
                .domain(DomainType::Vpc)
                .build())
        }

        pub fn describe_addresses(
            &mut self,
            req: &describe_addresses::DescribeAddressesInput,
        ) -> Answer<describe_addresses::DescribeAddressesOutput> {
            let addresses = select(&self.addresses, req.filters());
            Ok(describe_addresses::DescribeAddressesOutput::builder()
                .set_addresses(Some(addresses))
                .build())
        }

        /// Refused while the address is associated (with a NAT gateway not yet deleted).
        pub fn release_address(
            &mut self,
            req: &release_address::ReleaseAddressInput,
        ) -> Answer<release_address::ReleaseAddressOutput> {
            let id = req.allocation_id().unwrap_or_default();
            let address = self
                .addresses
                .get(id)
                .ok_or("InvalidAllocationID.NotFound")?;
            if address.association_id().is_some() {
                return Err("InvalidIPAddress.InUse");
            }
            self.addresses.remove(id);
            Ok(release_address::ReleaseAddressOutput::builder().build())
        }

        /// A `pending` NAT gateway holding the Elastic IP. What EC2 checks later (the address
        /// free, the VPC's internet gateway attached) makes it fail at the next settle.
        pub fn create_nat_gateway(
            &mut self,
            req: &create_nat_gateway::CreateNatGatewayInput,
        ) -> Answer<create_nat_gateway::CreateNatGatewayOutput> {
            let subnet = self.subnets.get(req.subnet_id().unwrap_or_default());
            let subnet = subnet.ok_or("InvalidSubnetID.NotFound")?.clone();
            let allocation = req.allocation_id().unwrap_or_default();
            let address = self.addresses.get(allocation);
            let address = address.ok_or("InvalidAllocationID.NotFound")?.clone();
            let tags = tags_for(req.tag_specifications(), ResourceType::Natgateway)?;
            let id = self.id("nat");
            let attached = self.igws.values().flat_map(|g| g.attachments());
            let failure = if address.association_id().is_some() {
                Some("Resource.AlreadyAssociated")
            } else if !attached.into_iter().any(|a| a.vpc_id() == subnet.vpc_id()) {
                Some("Gateway.NotAttached")
            } else {
                None
            };
            let held = match failure {
                Some(code) => {
                    self.failing.insert(id.clone(), code);
                    NatGatewayAddress::builder()
                        .allocation_id(allocation)
                        .build()
                }
                None => self.hold(allocation),
            };
            let nat = NatGateway::builder()
                .nat_gateway_id(&id)
                .set_subnet_id(subnet.subnet_id.clone())
                .set_vpc_id(subnet.vpc_id.clone())
                .state(NatGatewayState::Pending)
                .connectivity_type(ConnectivityType::Public)
                .nat_gateway_addresses(held)
                .set_tags(tags)
                .build();
            self.nats.insert(id, nat.clone());
            Ok(create_nat_gateway::CreateNatGatewayOutput::builder()
                .nat_gateway(nat)
                .build())
        }

        /// Associates the Elastic IP with a new NAT gateway's interface.
        fn hold(&mut self, allocation: &str) -> NatGatewayAddress {
            let (eni, association) = (self.id("eni"), self.id("eipassoc"));
            let private_ip = format!("10.0.0.{}", self.next);
            let address = self.addresses.get_mut(allocation).expect("address");
            address.association_id = Some(association.clone());
            address.network_interface_id = Some(eni.clone());
            address.private_ip_address = Some(private_ip.clone());
            NatGatewayAddress::builder()
                .allocation_id(allocation)
                .association_id(association)
                .network_interface_id(eni)
                .private_ip(private_ip)
                .set_public_ip(address.public_ip.clone())
                .is_primary(true)
                .status(NatGatewayAddressStatus::Succeeded)
                .build()
        }

        pub fn describe_nat_gateways(
            &mut self,
            req: &describe_nat_gateways::DescribeNatGatewaysInput,
        ) -> Answer<describe_nat_gateways::DescribeNatGatewaysOutput> {
            let nats = select(&self.nats, req.filter());
            Ok(describe_nat_gateways::DescribeNatGatewaysOutput::builder()
                .set_nat_gateways(Some(nats))
                .build())
        }

        /// `deleting` until the next settle; a deleted one is not found.
        pub fn delete_nat_gateway(
            &mut self,
            req: &delete_nat_gateway::DeleteNatGatewayInput,
        ) -> Answer<delete_nat_gateway::DeleteNatGatewayOutput> {
            let id = req.nat_gateway_id().unwrap_or_default();
            let nat = self.nats.get_mut(id).filter(|n| nat_live(n));
            let nat = nat.ok_or("NatGatewayNotFound")?;
            nat.state = Some(NatGatewayState::Deleting);
            Ok(delete_nat_gateway::DeleteNatGatewayOutput::builder()
                .nat_gateway_id(id)
                .build())
        }
    }

    fn everywhere() -> IpPermission {
        IpPermission::builder()
            .ip_protocol("-1")
            .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
            .build()
    }

    /// Route tables, routes and associations.
    impl Network {
        /// A route table with the local routes of the VPC's CIDRs.
        fn add_table(&mut self, vpc: &str, tags: Vec<Tag>) -> String {
            let id = self.id("rtb");
            let routes: Vec<Route> = self
                .vpc_cidrs(vpc)
                .iter()
                .map(|c| local_route(&c.to_string()))
                .collect();
            let table = RouteTable::builder()
                .route_table_id(&id)
                .vpc_id(vpc)
                .owner_id(ACCOUNT)
                .set_routes(Some(routes))
                .set_associations(Some(Vec::new()))
                .set_tags(Some(tags))
                .build();
            self.tables.insert(id.clone(), table);
            id
        }

        /// Associates `subnet` (the main association for `None`) with `table`; the id.
        fn associate(&mut self, table: &str, subnet: Option<&str>) -> String {
            let id = self.id("rtbassoc");
            let association = RouteTableAssociation::builder()
                .route_table_association_id(&id)
                .route_table_id(table)
                .set_subnet_id(subnet.map(str::to_owned))
                .main(subnet.is_none())
                .association_state(association_state(
                    RouteTableAssociationStateCode::Associated,
                ))
                .build();
            let t = self.tables.get_mut(table).expect("table");
            t.associations
                .get_or_insert_with(Vec::new)
                .push(association);
            id
        }

        fn table_mut(&mut self, id: Option<&str>) -> Answer<&mut RouteTable> {
            self.tables
                .get_mut(id.unwrap_or_default())
                .ok_or("InvalidRouteTableID.NotFound")
        }

        /// The table and association of the association `id`.
        fn association_of(&self, id: Option<&str>) -> Answer<(String, RouteTableAssociation)> {
            self.tables
                .values()
                .flat_map(|t| t.associations())
                .find(|a| a.route_table_association_id() == id)
                .map(|a| (a.route_table_id().unwrap_or_default().to_owned(), a.clone()))
                .ok_or("InvalidAssociationID.NotFound")
        }

        fn drop_association(&mut self, table: &str, id: Option<&str>) {
            let t = self.tables.get_mut(table).expect("table");
            t.associations
                .get_or_insert_with(Vec::new)
                .retain(|a| a.route_table_association_id() != id);
        }

        /// A route to `gateway` (an internet gateway attached to the table's VPC) or `nat` (a
        /// NAT gateway not deleted).
        fn target(&self, table: &str, gateway: Option<&str>, nat: Option<&str>) -> Answer<Route> {
            let vpc = self.tables[table].vpc_id();
            let route = Route::builder()
                .state(RouteState::Active)
                .origin(RouteOrigin::CreateRoute);
            match (gateway, nat) {
                (Some(g), None) => {
                    let igw = self.igws.get(g).ok_or("InvalidGatewayID.NotFound")?;
                    if !igw.attachments().iter().any(|a| a.vpc_id() == vpc) {
                        return Err("InvalidParameterValue");
                    }
                    Ok(route.gateway_id(g).build())
                }
                (None, Some(n)) => {
                    self.nats
                        .get(n)
                        .filter(|n| nat_live(n))
                        .ok_or("InvalidNatGatewayID.NotFound")?;
                    Ok(route.nat_gateway_id(n).build())
                }
                _ => panic!(
                    "CreateRoute/ReplaceRoute: only one internet or NAT gateway target is modeled"
                ),
            }
        }

        pub fn create_route_table(
            &mut self,
            req: &create_route_table::CreateRouteTableInput,
        ) -> Answer<create_route_table::CreateRouteTableOutput> {
            let vpc = self.known_vpc(req.vpc_id())?;
            let tags = tags_for(req.tag_specifications(), ResourceType::RouteTable)?;
            let id = self.add_table(&vpc, tags.unwrap_or_default());
            let table = self.tables[&id].clone();
            Ok(create_route_table::CreateRouteTableOutput::builder()
                .route_table(table)
                .build())
        }

        pub fn describe_route_tables(
            &mut self,
            req: &describe_route_tables::DescribeRouteTablesInput,
        ) -> Answer<describe_route_tables::DescribeRouteTablesOutput> {
            let tables = select(&self.tables, req.filters());
            Ok(describe_route_tables::DescribeRouteTablesOutput::builder()
                .set_route_tables(Some(tables))
                .build())
        }

        /// Refused while a subnet is associated (or it is the main table).
        pub fn delete_route_table(
            &mut self,
            req: &delete_route_table::DeleteRouteTableInput,
        ) -> Answer<delete_route_table::DeleteRouteTableOutput> {
            let table = self.table_mut(req.route_table_id())?;
            if !table.associations().is_empty() {
                return Err("DependencyViolation");
            }
            let id = table.route_table_id.clone().unwrap_or_default();
            self.tables.remove(&id);
            Ok(delete_route_table::DeleteRouteTableOutput::builder().build())
        }

        /// The index of the route to `destination`.
        fn route_index(
            &mut self,
            table: Option<&str>,
            destination: Option<&str>,
        ) -> Answer<(String, usize)> {
            let t = self.table_mut(table)?;
            let i = t
                .routes()
                .iter()
                .position(|r| r.destination_cidr_block() == destination);
            let i = i.ok_or("InvalidRoute.NotFound")?;
            if t.routes()[i].gateway_id() == Some("local") {
                return Err("InvalidParameterValue");
            }
            Ok((t.route_table_id.clone().unwrap_or_default(), i))
        }

        pub fn create_route(
            &mut self,
            req: &create_route::CreateRouteInput,
        ) -> Answer<create_route::CreateRouteOutput> {
            let destination = req.destination_cidr_block();
            let table = self.table_mut(req.route_table_id())?;
            if table
                .routes()
                .iter()
                .any(|r| r.destination_cidr_block() == destination)
            {
                return Err("RouteAlreadyExists");
            }
            let id = table.route_table_id.clone().unwrap_or_default();
            let mut route = self.target(&id, req.gateway_id(), req.nat_gateway_id())?;
            route.destination_cidr_block = destination.map(str::to_owned);
            let table = self.tables.get_mut(&id).expect("table");
            table.routes.get_or_insert_with(Vec::new).push(route);
            Ok(create_route::CreateRouteOutput::builder()
                .r#return(true)
                .build())
        }

        pub fn replace_route(
            &mut self,
            req: &replace_route::ReplaceRouteInput,
        ) -> Answer<replace_route::ReplaceRouteOutput> {
            let destination = req.destination_cidr_block();
            let (id, i) = self.route_index(req.route_table_id(), destination)?;
            let mut route = self.target(&id, req.gateway_id(), req.nat_gateway_id())?;
            route.destination_cidr_block = destination.map(str::to_owned);
            self.tables
                .get_mut(&id)
                .expect("table")
                .routes
                .as_mut()
                .expect("routes")[i] = route;
            Ok(replace_route::ReplaceRouteOutput::builder().build())
        }

        pub fn delete_route(
            &mut self,
            req: &delete_route::DeleteRouteInput,
        ) -> Answer<delete_route::DeleteRouteOutput> {
            let (id, i) = self.route_index(req.route_table_id(), req.destination_cidr_block())?;
            self.tables
                .get_mut(&id)
                .expect("table")
                .routes
                .as_mut()
                .expect("routes")
                .remove(i);
            Ok(delete_route::DeleteRouteOutput::builder().build())
        }

        /// Refused for a subnet already associated with a table (ReplaceRouteTableAssociation
        /// moves it).
        pub fn associate_route_table(
            &mut self,
            req: &associate_route_table::AssociateRouteTableInput,
        ) -> Answer<associate_route_table::AssociateRouteTableOutput> {
            let table = self
                .table_mut(req.route_table_id())?
                .route_table_id
                .clone()
                .unwrap_or_default();
            let subnet = req.subnet_id().filter(|s| self.subnets.contains_key(*s));
            let subnet = subnet.ok_or("InvalidSubnetID.NotFound")?;
            if self
                .tables
                .values()
                .flat_map(|t| t.associations())
                .any(|a| a.subnet_id() == Some(subnet))
            {
                return Err("Resource.AlreadyAssociated");
            }
            let id = self.associate(&table, Some(subnet));
            Ok(associate_route_table::AssociateRouteTableOutput::builder()
                .association_id(id)
                .association_state(association_state(
                    RouteTableAssociationStateCode::Associated,
                ))
                .build())
        }

        /// Moves a subnet's association to another table, under a new association id.
        pub fn replace_route_table_association(
            &mut self,
            req: &replace_route_table_association::ReplaceRouteTableAssociationInput,
        ) -> Answer<replace_route_table_association::ReplaceRouteTableAssociationOutput> {
            let (old, association) = self.association_of(req.association_id())?;
            let table = self
                .table_mut(req.route_table_id())?
                .route_table_id
                .clone()
                .unwrap_or_default();
            self.drop_association(&old, req.association_id());
            let id = self.associate(&table, association.subnet_id());
            Ok(
                replace_route_table_association::ReplaceRouteTableAssociationOutput::builder()
                    .new_association_id(id)
                    .association_state(association_state(
                        RouteTableAssociationStateCode::Associated,
                    ))
                    .build(),
            )
        }

        pub fn disassociate_route_table(
            &mut self,
            req: &disassociate_route_table::DisassociateRouteTableInput,
        ) -> Answer<disassociate_route_table::DisassociateRouteTableOutput> {
            let (table, association) = self.association_of(req.association_id())?;
            if association.main() == Some(true) {
                return Err("InvalidParameterValue");
            }
            self.drop_association(&table, req.association_id());
            Ok(disassociate_route_table::DisassociateRouteTableOutput::builder().build())
        }
    }

    /// Whether `have` holds the rule of `p`'s protocol and ports from `cidr`.
    /// One source or destination of a rule: an IPv4 range or a security group.
    #[derive(Clone)]
    enum Peer {
        Range(IpRange),
        Group(UserIdGroupPair),
    }

    impl Peer {
        fn same(&self, other: &Peer) -> bool {
            match (self, other) {
                (Peer::Range(a), Peer::Range(b)) => a.cidr_ip() == b.cidr_ip(),
                (Peer::Group(a), Peer::Group(b)) => a.group_id() == b.group_id(),
                _ => false,
            }
        }
    }

    fn holds(have: &[IpPermission], p: &IpPermission, peer: &Peer) -> bool {
        have.iter().any(|h| {
            same_ports(h, p)
                && (h
                    .ip_ranges()
                    .iter()
                    .any(|r| peer.same(&Peer::Range(r.clone())))
                    || h.user_id_group_pairs()
                        .iter()
                        .any(|g| peer.same(&Peer::Group(g.clone()))))
        })
    }

    fn same_ports(a: &IpPermission, b: &IpPermission) -> bool {
        (a.ip_protocol(), a.from_port(), a.to_port())
            == (b.ip_protocol(), b.from_port(), b.to_port())
    }

    /// The (permission, peer) pairs of a request: IPv4 ranges and security groups.
    fn requested(permissions: &[IpPermission]) -> Vec<(&IpPermission, Peer)> {
        permissions
            .iter()
            .inspect(|p| {
                assert!(
                    p.prefix_list_ids().is_empty() && p.ipv6_ranges().is_empty(),
                    "only IPv4 ranges and security groups are modeled"
                )
            })
            .flat_map(|p| {
                let ranges = p
                    .ip_ranges()
                    .iter()
                    .map(move |r| (p, Peer::Range(r.clone())));
                let groups = p
                    .user_id_group_pairs()
                    .iter()
                    .map(move |g| (p, Peer::Group(g.clone())));
                ranges.chain(groups)
            })
            .collect()
    }

    /// All or nothing: one rule already there fails (`InvalidPermission.Duplicate`).
    fn authorize(have: &mut Vec<IpPermission>, permissions: &[IpPermission]) -> Answer<()> {
        let rules = requested(permissions);
        if rules.iter().any(|(p, r)| holds(have, p, r)) {
            return Err("InvalidPermission.Duplicate");
        }
        for (p, r) in rules {
            let entry = match have.iter_mut().position(|h| same_ports(h, p)) {
                Some(i) => &mut have[i],
                None => {
                    let mut new = p.clone();
                    new.ip_ranges = Some(Vec::new());
                    new.user_id_group_pairs = Some(Vec::new());
                    have.push(new);
                    have.last_mut().expect("pushed")
                }
            };
            match r {
                Peer::Range(r) => entry.ip_ranges.get_or_insert_with(Vec::new).push(r),
                Peer::Group(g) => entry
                    .user_id_group_pairs
                    .get_or_insert_with(Vec::new)
                    .push(g),
            }
        }
        Ok(())
    }

    /// All or nothing: one rule not there fails (`InvalidPermission.NotFound`).
    fn revoke(have: &mut Vec<IpPermission>, permissions: &[IpPermission]) -> Answer<()> {
        let rules = requested(permissions);
        if !rules.iter().all(|(p, r)| holds(have, p, r)) {
            return Err("InvalidPermission.NotFound");
        }
        for (p, r) in rules {
            for h in have.iter_mut().filter(|h| same_ports(h, p)) {
                h.ip_ranges
                    .get_or_insert_with(Vec::new)
                    .retain(|x| !r.same(&Peer::Range(x.clone())));
                h.user_id_group_pairs
                    .get_or_insert_with(Vec::new)
                    .retain(|x| !r.same(&Peer::Group(x.clone())));
            }
        }
        have.retain(|h| !h.ip_ranges().is_empty() || !h.user_id_group_pairs().is_empty());
        Ok(())
    }

    /// Security groups and their rules.
    impl Network {
        fn group_mut(&mut self, id: Option<&str>) -> Answer<&mut SecurityGroup> {
            self.groups
                .get_mut(id.unwrap_or_default())
                .ok_or("InvalidGroup.NotFound")
        }

        pub fn create_security_group(
            &mut self,
            req: &create_security_group::CreateSecurityGroupInput,
        ) -> Answer<create_security_group::CreateSecurityGroupOutput> {
            let vpc = self.known_vpc(req.vpc_id())?;
            let name = req.group_name().unwrap_or_default();
            let taken = self
                .groups
                .values()
                .any(|g| g.vpc_id() == Some(vpc.as_str()) && g.group_name() == Some(name));
            if taken {
                return Err("InvalidGroup.Duplicate");
            }
            let tags = tags_for(req.tag_specifications(), ResourceType::SecurityGroup)?;
            let id = self.id("sg");
            let group = SecurityGroup::builder()
                .group_id(&id)
                .group_name(name)
                .set_description(req.description().map(str::to_owned))
                .vpc_id(vpc)
                .owner_id(ACCOUNT)
                .set_ip_permissions(Some(Vec::new()))
                .ip_permissions_egress(everywhere())
                .set_tags(tags)
                .build();
            self.groups.insert(id.clone(), group);
            Ok(create_security_group::CreateSecurityGroupOutput::builder()
                .group_id(id)
                .build())
        }

        /// By filters (`tag:`, `vpc-id`...) and by ids (unknown id: `InvalidGroup.NotFound`).
        pub fn describe_security_groups(
            &mut self,
            req: &describe_security_groups::DescribeSecurityGroupsInput,
        ) -> Answer<describe_security_groups::DescribeSecurityGroupsOutput> {
            let mut groups = select(&self.groups, req.filters());
            if !req.group_ids().is_empty() {
                if req
                    .group_ids()
                    .iter()
                    .any(|id| !self.groups.contains_key(id))
                {
                    return Err("InvalidGroup.NotFound");
                }
                groups.retain(|g| req.group_ids().iter().any(|id| g.group_id() == Some(id)));
            }
            Ok(
                describe_security_groups::DescribeSecurityGroupsOutput::builder()
                    .set_security_groups(Some(groups))
                    .build(),
            )
        }

        pub fn authorize_security_group_ingress(
            &mut self,
            req: &authorize_security_group_ingress::AuthorizeSecurityGroupIngressInput,
        ) -> Answer<authorize_security_group_ingress::AuthorizeSecurityGroupIngressOutput> {
            let group = self.group_mut(req.group_id())?;
            authorize(
                group.ip_permissions.get_or_insert_with(Vec::new),
                req.ip_permissions(),
            )?;
            Ok(
                authorize_security_group_ingress::AuthorizeSecurityGroupIngressOutput::builder()
                    .r#return(true)
                    .build(),
            )
        }

        pub fn authorize_security_group_egress(
            &mut self,
            req: &authorize_security_group_egress::AuthorizeSecurityGroupEgressInput,
        ) -> Answer<authorize_security_group_egress::AuthorizeSecurityGroupEgressOutput> {
            let group = self.group_mut(req.group_id())?;
            let have = group.ip_permissions_egress.get_or_insert_with(Vec::new);
            authorize(have, req.ip_permissions())?;
            Ok(
                authorize_security_group_egress::AuthorizeSecurityGroupEgressOutput::builder()
                    .r#return(true)
                    .build(),
            )
        }

        pub fn revoke_security_group_ingress(
            &mut self,
            req: &revoke_security_group_ingress::RevokeSecurityGroupIngressInput,
        ) -> Answer<revoke_security_group_ingress::RevokeSecurityGroupIngressOutput> {
            let group = self.group_mut(req.group_id())?;
            revoke(
                group.ip_permissions.get_or_insert_with(Vec::new),
                req.ip_permissions(),
            )?;
            Ok(
                revoke_security_group_ingress::RevokeSecurityGroupIngressOutput::builder()
                    .r#return(true)
                    .build(),
            )
        }

        pub fn revoke_security_group_egress(
            &mut self,
            req: &revoke_security_group_egress::RevokeSecurityGroupEgressInput,
        ) -> Answer<revoke_security_group_egress::RevokeSecurityGroupEgressOutput> {
            let group = self.group_mut(req.group_id())?;
            let have = group.ip_permissions_egress.get_or_insert_with(Vec::new);
            revoke(have, req.ip_permissions())?;
            Ok(
                revoke_security_group_egress::RevokeSecurityGroupEgressOutput::builder()
                    .r#return(true)
                    .build(),
            )
        }

        /// Refused for the default group, and while an endpoint not deleted uses the group.
        pub fn delete_security_group(
            &mut self,
            req: &delete_security_group::DeleteSecurityGroupInput,
        ) -> Answer<delete_security_group::DeleteSecurityGroupOutput> {
            let group = self.group_mut(req.group_id())?;
            if group.group_name() == Some("default") {
                return Err("CannotDelete");
            }
            let id = group.group_id.clone().unwrap_or_default();
            let used = self.endpoints.values().any(|e| {
                !endpoint_in(e, &["deleted"])
                    && e.groups().iter().any(|g| g.group_id() == Some(id.as_str()))
            });
            if used {
                return Err("DependencyViolation");
            }
            self.groups.remove(&id);
            Ok(delete_security_group::DeleteSecurityGroupOutput::builder().build())
        }
    }

    /// `list` with `add` and without `remove`.
    fn edited(list: &[String], add: &[String], remove: &[String]) -> Vec<String> {
        let kept = list.iter().filter(|x| !remove.contains(x));
        let mut out: Vec<String> = kept.chain(add.iter()).cloned().collect();
        out.dedup();
        out
    }

    fn is_gateway(e: &VpcEndpoint) -> bool {
        e.vpc_endpoint_type() == Some(&VpcEndpointType::Gateway)
    }

    /// VPC endpoints (gateway endpoints add a prefix-list route to their route tables,
    /// interface endpoints put a network interface in each subnet) and flow logs.
    impl Network {
        /// What EC2 checks of an endpoint as created or modified.
        fn check_endpoint(&self, e: &VpcEndpoint) -> Answer<()> {
            if is_gateway(e) {
                return self.check_gateway_endpoint(e);
            }
            let vpc = e.vpc_id();
            let subnets: Vec<&Subnet> = e
                .subnet_ids()
                .iter()
                .filter_map(|s| self.subnets.get(s))
                .collect();
            if subnets.len() != e.subnet_ids().len() || subnets.iter().any(|s| s.vpc_id() != vpc) {
                return Err("InvalidSubnetId.NotFound");
            }
            let mut zones: Vec<_> = subnets.iter().map(|s| s.availability_zone()).collect();
            zones.sort();
            zones.dedup();
            if zones.len() != subnets.len() {
                return Err("DuplicateSubnetsInSameZone");
            }
            let known = |g: &SecurityGroupIdentifier| {
                self.groups.contains_key(g.group_id().unwrap_or_default())
            };
            if !e.groups().iter().all(known) {
                return Err("InvalidGroup.NotFound");
            }
            self.check_private_dns(e)
        }

        /// A gateway endpoint: a gateway service, route tables of its VPC.
        fn check_gateway_endpoint(&self, e: &VpcEndpoint) -> Answer<()> {
            PREFIX_LISTS
                .iter()
                .find(|(s, _)| Some(*s) == e.service_name())
                .ok_or("InvalidServiceName")?;
            let tables = e.route_table_ids().iter();
            let ours = |t: &String| self.tables.get(t).is_some_and(|t| t.vpc_id() == e.vpc_id());
            if tables.clone().all(ours) {
                Ok(())
            } else {
                Err("InvalidRouteTableId.NotFound")
            }
        }

        /// Private DNS names a service once per VPC: a second interface endpoint of the service
        /// with private DNS conflicts with the first (until it is deleting).
        fn check_private_dns(&self, e: &VpcEndpoint) -> Answer<()> {
            let conflict = self.endpoints.values().any(|o| {
                o.vpc_endpoint_id() != e.vpc_endpoint_id()
                    && o.vpc_id() == e.vpc_id()
                    && o.service_name() == e.service_name()
                    && o.private_dns_enabled() == Some(true)
                    && !endpoint_in(o, &["deleting", "deleted"])
            });
            if e.private_dns_enabled() == Some(true) && conflict {
                return Err("InvalidParameter");
            }
            Ok(())
        }

        fn group_ids(&self, ids: Vec<String>) -> Vec<SecurityGroupIdentifier> {
            ids.into_iter()
                .map(|id| {
                    let name = self.groups.get(&id).and_then(|g| g.group_name.clone());
                    SecurityGroupIdentifier::builder()
                        .group_id(id)
                        .set_group_name(name)
                        .build()
                })
                .collect()
        }

        /// Stores `e` and makes the gateway routes match it.
        fn put_endpoint(&mut self, e: VpcEndpoint) {
            let id = e.vpc_endpoint_id().unwrap_or_default().to_owned();
            for t in self.tables.values_mut() {
                t.routes
                    .get_or_insert_with(Vec::new)
                    .retain(|r| r.gateway_id() != Some(id.as_str()));
            }
            let list = PREFIX_LISTS
                .iter()
                .find(|(s, _)| Some(*s) == e.service_name());
            if let (Some((_, list)), false) = (list, endpoint_in(&e, &["deleting", "deleted"])) {
                for t in e.route_table_ids() {
                    let Some(t) = self.tables.get_mut(t) else {
                        continue;
                    };
                    let route = Route::builder()
                        .destination_prefix_list_id(*list)
                        .gateway_id(&id)
                        .state(RouteState::Active)
                        .origin(RouteOrigin::CreateRoute)
                        .build();
                    t.routes.get_or_insert_with(Vec::new).push(route);
                }
            }
            self.endpoints.insert(id, e);
        }

        /// A gateway endpoint is available at once, an interface endpoint pending (in the
        /// VPC's default group when given none).
        pub fn create_vpc_endpoint(
            &mut self,
            req: &create_vpc_endpoint::CreateVpcEndpointInput,
        ) -> Answer<create_vpc_endpoint::CreateVpcEndpointOutput> {
            let vpc = self.known_vpc(req.vpc_id())?;
            let kind = req
                .vpc_endpoint_type()
                .cloned()
                .unwrap_or(VpcEndpointType::Gateway);
            let gateway = kind == VpcEndpointType::Gateway;
            let tags = tags_for(req.tag_specifications(), ResourceType::VpcEndpoint)?;
            let mut groups = req.security_group_ids().to_vec();
            if groups.is_empty() && !gateway {
                let default = self.groups.values().find(|g| {
                    g.vpc_id() == Some(vpc.as_str()) && g.group_name() == Some("default")
                });
                groups.extend(default.and_then(|g| g.group_id.clone()));
            }
            let interfaces = req.subnet_ids().iter().map(|_| self.id("eni")).collect();
            let endpoint = VpcEndpoint::builder()
                .vpc_endpoint_id(self.id("vpce"))
                .vpc_endpoint_type(kind)
                .vpc_id(vpc)
                .set_service_name(req.service_name().map(str::to_owned))
                .state(endpoint_state(if gateway {
                    "available"
                } else {
                    "pending"
                }))
                .policy_document(returned_policy(req.policy_document()))
                .set_route_table_ids(Some(req.route_table_ids().to_vec()))
                .set_subnet_ids(Some(req.subnet_ids().to_vec()))
                .set_groups(Some(self.group_ids(groups)))
                .private_dns_enabled(!gateway && req.private_dns_enabled().unwrap_or(true))
                .set_network_interface_ids(Some(interfaces))
                .requester_managed(false)
                .owner_id(ACCOUNT)
                .set_tags(tags)
                .build();
            self.check_endpoint(&endpoint)?;
            self.put_endpoint(endpoint.clone());
            Ok(create_vpc_endpoint::CreateVpcEndpointOutput::builder()
                .vpc_endpoint(endpoint)
                .build())
        }

        pub fn describe_vpc_endpoints(
            &mut self,
            req: &describe_vpc_endpoints::DescribeVpcEndpointsInput,
        ) -> Answer<describe_vpc_endpoints::DescribeVpcEndpointsOutput> {
            let endpoints = select(&self.endpoints, req.filters());
            Ok(
                describe_vpc_endpoints::DescribeVpcEndpointsOutput::builder()
                    .set_vpc_endpoints(Some(endpoints))
                    .build(),
            )
        }

        pub fn modify_vpc_endpoint(
            &mut self,
            req: &modify_vpc_endpoint::ModifyVpcEndpointInput,
        ) -> Answer<modify_vpc_endpoint::ModifyVpcEndpointOutput> {
            let found = self
                .endpoints
                .get(req.vpc_endpoint_id().unwrap_or_default());
            let found = found.filter(|e| !endpoint_in(e, &["deleting", "deleted"]));
            let mut e = found.ok_or("InvalidVpcEndpointId.NotFound")?.clone();
            let subnets = edited(
                e.subnet_ids(),
                req.add_subnet_ids(),
                req.remove_subnet_ids(),
            );
            if subnets != e.subnet_ids() {
                e.network_interface_ids = Some(subnets.iter().map(|_| self.id("eni")).collect());
            }
            e.subnet_ids = Some(subnets);
            e.route_table_ids = Some(edited(
                e.route_table_ids(),
                req.add_route_table_ids(),
                req.remove_route_table_ids(),
            ));
            let have: Vec<String> = e
                .groups()
                .iter()
                .filter_map(|g| g.group_id.clone())
                .collect();
            let groups = edited(
                &have,
                req.add_security_group_ids(),
                req.remove_security_group_ids(),
            );
            e.groups = Some(self.group_ids(groups));
            if let Some(on) = req.private_dns_enabled() {
                e.private_dns_enabled = Some(on);
            }
            if req.reset_policy() == Some(true) {
                e.policy_document = Some(returned_policy(None));
            } else if let Some(policy) = req.policy_document() {
                e.policy_document = Some(returned_policy(Some(policy)));
            }
            self.check_endpoint(&e)?;
            self.put_endpoint(e);
            Ok(modify_vpc_endpoint::ModifyVpcEndpointOutput::builder()
                .r#return(true)
                .build())
        }

        /// A gateway endpoint is deleted at once, an interface endpoint `deleting` until the
        /// next settle; unknown ones are reported unsuccessful.
        pub fn delete_vpc_endpoints(
            &mut self,
            req: &delete_vpc_endpoints::DeleteVpcEndpointsInput,
        ) -> Answer<delete_vpc_endpoints::DeleteVpcEndpointsOutput> {
            let mut failed = Vec::new();
            for id in req.vpc_endpoint_ids() {
                let found = self
                    .endpoints
                    .get(id)
                    .filter(|e| !endpoint_in(e, &["deleted"]));
                let Some(mut e) = found.cloned() else {
                    failed.push(unsuccessful(id, "InvalidVpcEndpoint.NotFound"));
                    continue;
                };
                e.state = Some(endpoint_state(if is_gateway(&e) {
                    "deleted"
                } else {
                    "deleting"
                }));
                self.put_endpoint(e);
            }
            Ok(delete_vpc_endpoints::DeleteVpcEndpointsOutput::builder()
                .set_unsuccessful(Some(failed))
                .build())
        }

        /// VPC flow logs to CloudWatch Logs; a VPC unknown or already logging to the same
        /// group is reported unsuccessful.
        pub fn create_flow_logs(
            &mut self,
            req: &create_flow_logs::CreateFlowLogsInput,
        ) -> Answer<create_flow_logs::CreateFlowLogsOutput> {
            assert_eq!(
                req.resource_type(),
                Some(&FlowLogsResourceType::Vpc),
                "only VPC flow logs are modeled"
            );
            assert_eq!(
                req.log_destination_type(),
                Some(&LogDestinationType::CloudWatchLogs),
                "only CloudWatch Logs is modeled"
            );
            if req.deliver_logs_permission_arn().is_none() || req.log_group_name().is_none() {
                return Err("InvalidParameter");
            }
            let tags = tags_for(req.tag_specifications(), ResourceType::VpcFlowLog)?;
            let (mut ids, mut failed) = (Vec::new(), Vec::new());
            for vpc in req.resource_ids() {
                let duplicate = self.flow_logs.values().any(|f| {
                    f.resource_id() == Some(vpc.as_str())
                        && f.log_group_name() == req.log_group_name()
                        && f.traffic_type() == req.traffic_type()
                });
                let code = match (self.vpcs.contains_key(vpc), duplicate) {
                    (false, _) => "InvalidVpcID.NotFound",
                    (true, true) => "FlowLogAlreadyExists",
                    (true, false) => {
                        ids.push(self.add_flow_log(req, vpc, tags.clone()));
                        continue;
                    }
                };
                failed.push(unsuccessful(vpc, code));
            }
            Ok(create_flow_logs::CreateFlowLogsOutput::builder()
                .set_flow_log_ids(Some(ids))
                .set_unsuccessful(Some(failed))
                .build())
        }

        fn add_flow_log(
            &mut self,
            req: &create_flow_logs::CreateFlowLogsInput,
            vpc: &str,
            tags: Option<Vec<Tag>>,
        ) -> String {
            let id = self.id("fl");
            let log = FlowLog::builder()
                .flow_log_id(&id)
                .resource_id(vpc)
                .set_traffic_type(req.traffic_type().cloned())
                .log_destination_type(LogDestinationType::CloudWatchLogs)
                .set_log_group_name(req.log_group_name().map(str::to_owned))
                .set_deliver_logs_permission_arn(
                    req.deliver_logs_permission_arn().map(str::to_owned),
                )
                .flow_log_status("ACTIVE")
                .deliver_logs_status("SUCCESS")
                .set_tags(tags)
                .build();
            self.flow_logs.insert(id.clone(), log);
            id
        }

        pub fn describe_flow_logs(
            &mut self,
            req: &describe_flow_logs::DescribeFlowLogsInput,
        ) -> Answer<describe_flow_logs::DescribeFlowLogsOutput> {
            let logs = select(&self.flow_logs, req.filter());
            Ok(describe_flow_logs::DescribeFlowLogsOutput::builder()
                .set_flow_logs(Some(logs))
                .build())
        }

        pub fn delete_flow_logs(
            &mut self,
            req: &delete_flow_logs::DeleteFlowLogsInput,
        ) -> Answer<delete_flow_logs::DeleteFlowLogsOutput> {
            let failed = req
                .flow_log_ids()
                .iter()
                .filter(|id| self.flow_logs.remove(*id).is_none())
                .map(|id| unsuccessful(id, "InvalidFlowLogId.NotFound"))
                .collect();
            Ok(delete_flow_logs::DeleteFlowLogsOutput::builder()
                .set_unsuccessful(Some(failed))
                .build())
        }
    }
}
