//! Reads one platform's live state into a [`Live`] snapshot: the only part of a sweep that calls
//! AWS and Kubernetes. Every client is read-only (`Clients::scoped(.., true)` and
//! `kubernetes::connect_read_only`), so a sweep cannot change what it judges.
//!
//! Which resources are the platform's comes from its inventory (kind and id, as the phases
//! recorded them) and its deterministic names; what they are like comes from the services.

use super::live::*;
use crate::aws::Clients;
use crate::deps::Deps;
use crate::error::{ErrorType, FunctionError};
use crate::naming::Names;
use crate::phases::aws_error;
use crate::phases::common::{error_code, is_gone_code};
use crate::policies::parse_returned;
use crate::resources::Kind;
use crate::spec::PlatformSpec;
use crate::store::{ResourceRecord, Store, TenantState};
use aws_sdk_ec2::types::Filter;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde_json::Value;
use std::collections::BTreeMap;

/// What a sweep needs besides the services: the stored spec, outputs and inventory.
pub struct Stored {
    pub spec: PlatformSpec,
    pub outputs: BTreeMap<String, Value>,
    pub inventory: Vec<ResourceRecord>,
    /// The Active tenants' names.
    pub tenants: Vec<String>,
}

impl Stored {
    /// Loads them; a platform that was never provisioned is an invalid request.
    pub async fn load(store: &Store, platform_id: &str) -> Result<Stored, FunctionError> {
        let missing = || {
            FunctionError::new(
                ErrorType::InvalidRequest,
                format!("platform {platform_id:?} has no stored spec or status: nothing to sweep"),
            )
        };
        let spec = store.get_spec(platform_id).await?.ok_or_else(missing)?;
        let spec: PlatformSpec = serde_json::from_value(spec.value).map_err(|e| {
            FunctionError::new(
                ErrorType::Terminal,
                format!("the stored spec of platform {platform_id:?} does not parse: {e}"),
            )
        })?;
        let status = store.get_status(platform_id).await?.ok_or_else(missing)?;
        let tenants = store
            .list_tenant_records(platform_id)
            .await?
            .into_iter()
            .filter(|t| t.value.state == TenantState::Active)
            .map(|t| t.value.name)
            .collect();
        Ok(Stored {
            spec,
            outputs: status.value.outputs,
            inventory: store.list_resources(platform_id).await?,
            tenants,
        })
    }

    fn ids(&self, kind: Kind) -> impl Iterator<Item = &ResourceRecord> {
        self.inventory
            .iter()
            .filter(move |r| r.resource_type == kind.as_str())
    }
}

/// `Ok(None)` when the service says the thing is not there.
fn optional<T, E, R>(
    operation: &str,
    result: Result<T, SdkError<E, R>>,
) -> Result<Option<T>, FunctionError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) => match error_code(&e) {
            Some(code)
                if is_gone_code(code) || code == "NoSuchEntity" || code.starts_with("NoSuch") =>
            {
                Ok(None)
            }
            Some(code) if code.ends_with("NotFoundError") || code == "NotFoundException" => {
                Ok(None)
            }
            _ => Err(aws_error(operation, e)),
        },
    }
}

/// Reads the live state of `stored`'s platform.
pub async fn gather(deps: &Deps, stored: &Stored) -> Result<Live, FunctionError> {
    let spec = &stored.spec;
    let clients = deps.clients.scoped(&spec.region, true);
    let names = Names::new(spec);
    let mut live = Live {
        platform_id: spec.id.clone(),
        account: deps.account_id().await?,
        region: spec.region.clone(),
        asked: asked(deps, stored),
        vpc_id: stored.ids(Kind::Vpc).next().map(|r| r.id.clone()),
        ..Live::default()
    };
    let cluster_name = names.cluster();
    let described = optional(
        "DescribeCluster",
        clients
            .eks
            .describe_cluster()
            .name(&cluster_name)
            .send()
            .await,
    )?
    .and_then(|out| out.cluster);
    if let Some(c) = &described {
        live.cluster = Some(cluster(c));
        live.oidc_issuer = c
            .identity()
            .and_then(|i| i.oidc())
            .and_then(|o| o.issuer())
            .map(|i| i.trim_start_matches("https://").to_owned());
        live.versions = versions(&clients).await?;
        live.access_entries = access_entries(&clients, &cluster_name).await?;
        live.addons = addons(&clients, &cluster_name).await?;
        live.nodegroups = nodegroups(&clients, &cluster_name).await?;
    }
    if let Some(vpc) = live.vpc_id.clone() {
        network(&clients, &vpc, &mut live).await?;
    }
    for record in stored.ids(Kind::KmsKey) {
        if let Some(key) = key(&clients, &record.id).await? {
            live.keys.push(key);
        }
    }
    for record in stored.ids(Kind::LogGroup) {
        if let Some(group) = log_group(&clients, &record.id).await? {
            live.log_groups.push(group);
        }
    }
    for record in stored.ids(Kind::IamRole) {
        // The tenants phase tags its roles with their tenant.
        let tenant =
            (record.tenant.clone()).or_else(|| record.tags.get(crate::naming::TAG_TENANT).cloned());
        if let Some(role) = role(&clients, &record.id, tenant).await? {
            live.roles.push(role);
        }
    }
    if let Some(record) = stored.ids(Kind::Bucket).next() {
        live.bucket = bucket(&clients, &record.id).await?;
    }
    for record in stored.ids(Kind::Repository) {
        if let Some(repo) = crate::resources::repository::find(&clients.ecr, &record.id).await? {
            live.repositories.push(Repository {
                name: record.id.clone(),
                arn: repo.arn,
                scan_on_push: repo.scan_on_push,
                tag_mutability: repo.tag_mutability.as_str().to_owned(),
                lifecycle_policy: repo.lifecycle.is_some(),
                kms_key: repo.kms_key,
            });
        }
    }
    if let (Some(c), Some(endpoint)) = (&described, described.as_ref().and_then(|c| c.endpoint())) {
        let aws = crate::aws::read_only::read_only(
            &deps
                .aws
                .to_builder()
                .region(aws_config::Region::new(spec.region.clone()))
                .build(),
        );
        let ca = c.certificate_authority().and_then(|ca| ca.data());
        let client =
            crate::kubernetes::connect_read_only(&aws, &cluster_name, endpoint, ca).await?;
        let mut k = kubernetes(&client).await?;
        if spec.cni == crate::spec::Cni::Calico {
            k.calico_cni = calico_cni(&client, spec).await?;
        }
        live.kubernetes = Some(k);
    }
    Ok(live)
}

fn asked(deps: &Deps, stored: &Stored) -> Asked {
    let spec = &stored.spec;
    let mut admins = spec.access.admin_principals.clone();
    // The cluster's creator holds admin by EKS's design (bootstrapClusterCreatorAdminPermissions).
    if let Ok(Some(creator)) = crate::phases::outputs::CLUSTER_CREATOR.get(&stored.outputs) {
        admins.push(creator);
    }
    let admin_groups = spec
        .access
        .oidc_identity_provider
        .iter()
        .flat_map(|idp| {
            idp.group_mappings
                .iter()
                .filter(|m| m.cluster_role == "cluster-admin")
                .map(move |m| crate::kubernetes::oidc_group(idp, m))
        })
        .collect();
    Asked {
        profile: serde_json::to_value(spec.compliance_profile)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        admins,
        admin_groups,
        cni: serde_json::to_value(spec.cni)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        tenant_namespaces: stored.tenants.clone(),
        role_boundary: deps.role_boundary_arn.clone(),
        platform_roles: platform_roles(spec),
    }
}

/// The vendored ClusterRoles Tenantry applies for the platform (see `Asked::platform_roles`).
fn platform_roles(spec: &crate::spec::PlatformSpec) -> BTreeMap<String, Vec<RbacRule>> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect()
    };
    crate::kubernetes::calico_manifests(spec)
        .iter()
        .filter(|m| m["kind"] == "ClusterRole")
        .map(|m| {
            let rules = m["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| RbacRule {
                    api_groups: strings(&r["apiGroups"]),
                    resources: strings(&r["resources"]),
                    verbs: strings(&r["verbs"]),
                })
                .collect();
            (
                m["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                rules,
            )
        })
        .collect()
}

fn cluster(c: &aws_sdk_eks::types::Cluster) -> Cluster {
    let vpc = c.resources_vpc_config();
    let log_types = c
        .logging()
        .map(|l| l.cluster_logging())
        .unwrap_or_default()
        .iter()
        .filter(|setup| setup.enabled() == Some(true))
        .flat_map(|setup| setup.types().iter().map(|t| t.as_str().to_owned()))
        .collect();
    Cluster {
        name: c.name().unwrap_or_default().to_owned(),
        arn: c.arn().unwrap_or_default().to_owned(),
        version: c.version().unwrap_or_default().to_owned(),
        endpoint_public: vpc.is_some_and(|v| v.endpoint_public_access()),
        endpoint_private: vpc.is_some_and(|v| v.endpoint_private_access()),
        public_access_cidrs: vpc
            .map(|v| v.public_access_cidrs().to_vec())
            .unwrap_or_default(),
        encryption_key: c
            .encryption_config()
            .iter()
            .find_map(|e| e.provider().and_then(|p| p.key_arn()))
            .map(str::to_owned),
        log_types,
        deletion_protection: c.deletion_protection() == Some(true),
        authentication_mode: c
            .access_config()
            .and_then(|a| a.authentication_mode())
            .map_or("CONFIG_MAP", |m| m.as_str())
            .to_owned(),
        tags: c
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    }
}

async fn versions(clients: &Clients) -> Result<Vec<ClusterVersion>, FunctionError> {
    let mut out = Vec::new();
    let mut pages = clients
        .eks
        .describe_cluster_versions()
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error("DescribeClusterVersions", e))?;
        for v in page.cluster_versions() {
            out.push(ClusterVersion {
                version: v.cluster_version().unwrap_or_default().to_owned(),
                status: v
                    .version_status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

async fn access_entries(
    clients: &Clients,
    cluster: &str,
) -> Result<Vec<AccessEntry>, FunctionError> {
    let mut principals = Vec::new();
    let mut pages = clients
        .eks
        .list_access_entries()
        .cluster_name(cluster)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        principals.extend(
            page.map_err(|e| aws_error("ListAccessEntries", e))?
                .access_entries()
                .to_vec(),
        );
    }
    let mut out = Vec::new();
    for principal in principals {
        let described = optional(
            "DescribeAccessEntry",
            clients
                .eks
                .describe_access_entry()
                .cluster_name(cluster)
                .principal_arn(&principal)
                .send()
                .await,
        )?;
        let Some(entry) = described.and_then(|d| d.access_entry) else {
            continue;
        };
        let policies = clients
            .eks
            .list_associated_access_policies()
            .cluster_name(cluster)
            .principal_arn(&principal)
            .send()
            .await
            .map_err(|e| aws_error("ListAssociatedAccessPolicies", e))?;
        out.push(AccessEntry {
            principal,
            kind: entry.r#type().unwrap_or_default().to_owned(),
            groups: entry.kubernetes_groups().to_vec(),
            cluster_policies: policies
                .associated_access_policies()
                .iter()
                .filter(|p| {
                    p.access_scope()
                        .and_then(|s| s.r#type())
                        .is_some_and(|t| t.as_str() == "cluster")
                })
                .filter_map(|p| p.policy_arn().map(str::to_owned))
                .collect(),
        });
    }
    // Keep the admin policies in a fixed order so evidence compares across sweeps.
    for e in &mut out {
        e.cluster_policies.sort();
    }
    Ok(out)
}

async fn addons(clients: &Clients, cluster: &str) -> Result<Vec<Addon>, FunctionError> {
    let listed = clients
        .eks
        .list_addons()
        .cluster_name(cluster)
        .send()
        .await
        .map_err(|e| aws_error("ListAddons", e))?;
    let mut out = Vec::new();
    for name in listed.addons() {
        let described = optional(
            "DescribeAddon",
            clients
                .eks
                .describe_addon()
                .cluster_name(cluster)
                .addon_name(name)
                .send()
                .await,
        )?;
        if let Some(addon) = described.and_then(|d| d.addon) {
            let configuration = addon
                .configuration_values()
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or(Value::Null);
            out.push(Addon {
                name: name.clone(),
                status: addon
                    .status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                configuration,
            });
        }
    }
    Ok(out)
}

async fn nodegroups(clients: &Clients, cluster: &str) -> Result<Vec<Nodegroup>, FunctionError> {
    let listed = clients
        .eks
        .list_nodegroups()
        .cluster_name(cluster)
        .send()
        .await
        .map_err(|e| aws_error("ListNodegroups", e))?;
    let mut out = Vec::new();
    for name in listed.nodegroups() {
        let described = optional(
            "DescribeNodegroup",
            clients
                .eks
                .describe_nodegroup()
                .cluster_name(cluster)
                .nodegroup_name(name)
                .send()
                .await,
        )?;
        let Some(ng) = described.and_then(|d| d.nodegroup) else {
            continue;
        };
        let launch_template = match ng.launch_template() {
            Some(spec) => {
                launch_template(
                    clients,
                    spec.id().unwrap_or_default(),
                    spec.version().unwrap_or("$Default"),
                )
                .await?
            }
            None => None,
        };
        out.push(Nodegroup {
            name: name.clone(),
            arn: ng.nodegroup_arn().unwrap_or_default().to_owned(),
            ami_type: ng
                .ami_type()
                .map(|a| a.as_str().to_owned())
                .unwrap_or_default(),
            subnets: ng.subnets().to_vec(),
            remote_access_key: ng
                .remote_access()
                .and_then(|r| r.ec2_ssh_key())
                .map(str::to_owned),
            launch_template,
        });
    }
    Ok(out)
}

async fn launch_template(
    clients: &Clients,
    id: &str,
    version: &str,
) -> Result<Option<LaunchTemplate>, FunctionError> {
    let described = optional(
        "DescribeLaunchTemplateVersions",
        clients
            .ec2
            .describe_launch_template_versions()
            .launch_template_id(id)
            .versions(version)
            .send()
            .await,
    )?;
    let Some(v) = described.and_then(|d| {
        d.launch_template_versions
            .and_then(|v| v.into_iter().next())
    }) else {
        return Ok(None);
    };
    let data = v.launch_template_data();
    let metadata = data.and_then(|d| d.metadata_options());
    Ok(Some(LaunchTemplate {
        id: id.to_owned(),
        version: v
            .version_number()
            .map_or_else(|| version.to_owned(), |n| n.to_string()),
        http_tokens: metadata
            .and_then(|m| m.http_tokens())
            .map(|t| t.as_str().to_owned()),
        hop_limit: metadata.and_then(|m| m.http_put_response_hop_limit()),
        key_name: data.and_then(|d| d.key_name()).map(str::to_owned),
        volumes_encrypted: data
            .map(|d| d.block_device_mappings())
            .unwrap_or_default()
            .iter()
            .filter_map(|b| b.ebs())
            .map(|ebs| ebs.encrypted() == Some(true))
            .collect(),
    }))
}

fn vpc_filter(vpc: &str) -> Filter {
    Filter::builder().name("vpc-id").values(vpc).build()
}

/// Subnets (with whether their route table reaches an internet gateway), flow logs, endpoints
/// and security groups of the VPC.
async fn network(clients: &Clients, vpc: &str, live: &mut Live) -> Result<(), FunctionError> {
    let subnets = clients
        .ec2
        .describe_subnets()
        .filters(vpc_filter(vpc))
        .send()
        .await
        .map_err(|e| aws_error("DescribeSubnets", e))?;
    let tables = clients
        .ec2
        .describe_route_tables()
        .filters(vpc_filter(vpc))
        .send()
        .await
        .map_err(|e| aws_error("DescribeRouteTables", e))?;
    let to_igw = |t: &aws_sdk_ec2::types::RouteTable| {
        t.routes()
            .iter()
            .any(|r| r.gateway_id().is_some_and(|g| g.starts_with("igw-")))
    };
    let main_to_igw = tables
        .route_tables()
        .iter()
        .find(|t| t.associations().iter().any(|a| a.main() == Some(true)))
        .is_some_and(to_igw);
    for s in subnets.subnets() {
        let id = s.subnet_id().unwrap_or_default();
        let table = tables
            .route_tables()
            .iter()
            .find(|t| t.associations().iter().any(|a| a.subnet_id() == Some(id)));
        live.subnets.insert(
            id.to_owned(),
            Subnet {
                id: id.to_owned(),
                map_public_ip: s.map_public_ip_on_launch() == Some(true),
                routes_to_internet_gateway: table.map_or(main_to_igw, to_igw),
            },
        );
    }
    let flow_logs = clients
        .ec2
        .describe_flow_logs()
        .filter(Filter::builder().name("resource-id").values(vpc).build())
        .send()
        .await
        .map_err(|e| aws_error("DescribeFlowLogs", e))?;
    live.flow_logs = flow_logs
        .flow_logs()
        .iter()
        .map(|f| FlowLog {
            id: f.flow_log_id().unwrap_or_default().to_owned(),
            resource: f.resource_id().unwrap_or_default().to_owned(),
            status: f.flow_log_status().unwrap_or_default().to_owned(),
            traffic_type: f
                .traffic_type()
                .map(|t| t.as_str().to_owned())
                .unwrap_or_default(),
        })
        .collect();
    let endpoints = clients
        .ec2
        .describe_vpc_endpoints()
        .filters(vpc_filter(vpc))
        .send()
        .await
        .map_err(|e| aws_error("DescribeVpcEndpoints", e))?;
    live.vpc_endpoints = endpoints
        .vpc_endpoints()
        .iter()
        .map(|e| VpcEndpoint {
            id: e.vpc_endpoint_id().unwrap_or_default().to_owned(),
            service: e.service_name().unwrap_or_default().to_owned(),
            policy: e
                .policy_document()
                .and_then(parse_returned)
                .unwrap_or(Value::Null),
        })
        .collect();
    let groups = clients
        .ec2
        .describe_security_groups()
        .filters(vpc_filter(vpc))
        .send()
        .await
        .map_err(|e| aws_error("DescribeSecurityGroups", e))?;
    live.security_groups = groups
        .security_groups()
        .iter()
        .map(|g| SecurityGroup {
            id: g.group_id().unwrap_or_default().to_owned(),
            name: g.group_name().unwrap_or_default().to_owned(),
            open_ingress: g
                .ip_permissions()
                .iter()
                .flat_map(|p| {
                    let cidrs = p
                        .ip_ranges()
                        .iter()
                        .filter_map(|r| r.cidr_ip())
                        .chain(p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6()))
                        .filter(|c| *c == "0.0.0.0/0" || *c == "::/0")
                        .map(str::to_owned)
                        .collect::<Vec<_>>();
                    cidrs.into_iter().map(move |c| {
                        format!(
                            "{} {}-{} {c}",
                            p.ip_protocol().unwrap_or("-1"),
                            p.from_port().unwrap_or(0),
                            p.to_port().unwrap_or(65535)
                        )
                    })
                })
                .collect(),
        })
        .collect();
    Ok(())
}

async fn key(clients: &Clients, id: &str) -> Result<Option<Key>, FunctionError> {
    let Some(described) = optional(
        "DescribeKey",
        clients.kms.describe_key().key_id(id).send().await,
    )?
    else {
        return Ok(None);
    };
    let Some(meta) = described.key_metadata() else {
        return Ok(None);
    };
    let rotation = clients
        .kms
        .get_key_rotation_status()
        .key_id(id)
        .send()
        .await
        .map_err(|e| aws_error("GetKeyRotationStatus", e))?;
    let policy = clients
        .kms
        .get_key_policy()
        .key_id(id)
        .policy_name("default")
        .send()
        .await
        .map_err(|e| aws_error("GetKeyPolicy", e))?;
    Ok(Some(Key {
        id: id.to_owned(),
        arn: meta.arn().unwrap_or_default().to_owned(),
        state: meta
            .key_state()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        rotation: rotation.key_rotation_enabled(),
        policy: policy
            .policy()
            .and_then(parse_returned)
            .unwrap_or(Value::Null),
    }))
}

async fn log_group(clients: &Clients, name: &str) -> Result<Option<LogGroup>, FunctionError> {
    let found = crate::resources::log_group::find(&clients.logs, name).await?;
    Ok(found.map(|g| LogGroup {
        name: name.to_owned(),
        arn: g.arn.unwrap_or_default(),
        kms_key: g.kms_key,
        retention_days: g.retention_days,
    }))
}

async fn role(
    clients: &Clients,
    name: &str,
    tenant: Option<String>,
) -> Result<Option<Role>, FunctionError> {
    let Some(got) = optional(
        "GetRole",
        clients.iam.get_role().role_name(name).send().await,
    )?
    else {
        return Ok(None);
    };
    let Some(r) = got.role() else {
        return Ok(None);
    };
    let attached = clients
        .iam
        .list_attached_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(|e| aws_error("ListAttachedRolePolicies", e))?;
    let inline_names = clients
        .iam
        .list_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(|e| aws_error("ListRolePolicies", e))?;
    let mut inline_policies = BTreeMap::new();
    for policy in inline_names.policy_names() {
        let got = clients
            .iam
            .get_role_policy()
            .role_name(name)
            .policy_name(policy)
            .send()
            .await
            .map_err(|e| aws_error("GetRolePolicy", e))?;
        inline_policies.insert(
            policy.clone(),
            parse_returned(got.policy_document()).unwrap_or(Value::Null),
        );
    }
    Ok(Some(Role {
        name: name.to_owned(),
        arn: r.arn().to_owned(),
        tenant,
        trust: r
            .assume_role_policy_document()
            .and_then(parse_returned)
            .unwrap_or(Value::Null),
        managed_policies: attached
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_owned))
            .collect(),
        inline_policies,
        boundary: r
            .permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn())
            .map(str::to_owned),
    }))
}

async fn bucket(clients: &Clients, name: &str) -> Result<Option<Bucket>, FunctionError> {
    let encryption = optional(
        "GetBucketEncryption",
        clients.s3.get_bucket_encryption().bucket(name).send().await,
    )?;
    let block = optional(
        "GetPublicAccessBlock",
        clients
            .s3
            .get_public_access_block()
            .bucket(name)
            .send()
            .await,
    )?;
    let policy = optional(
        "GetBucketPolicy",
        clients.s3.get_bucket_policy().bucket(name).send().await,
    )?;
    Ok(Some(Bucket {
        name: name.to_owned(),
        encryption: encryption
            .as_ref()
            .and_then(|e| e.server_side_encryption_configuration())
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default())
            .map(|d| d.sse_algorithm().as_str().to_owned()),
        public_access_block: block
            .as_ref()
            .and_then(|b| b.public_access_block_configuration())
            .map(|c| {
                [
                    c.block_public_acls() == Some(true),
                    c.block_public_policy() == Some(true),
                    c.ignore_public_acls() == Some(true),
                    c.restrict_public_buckets() == Some(true),
                ]
            }),
        policy: policy
            .as_ref()
            .and_then(|p| p.policy())
            .and_then(parse_returned)
            .unwrap_or(Value::Null),
    }))
}

/// The cluster-side state the CIS section 4 controls judge.
/// The `spec.cni` of Calico's `Installation` (`None` when there is none).
async fn calico_cni(
    client: &kube::Client,
    spec: &crate::spec::PlatformSpec,
) -> Result<Option<Value>, FunctionError> {
    let wanted = crate::kubernetes::installation(spec, "");
    Ok(crate::kubernetes::get(client, &wanted)
        .await?
        .map(|live| live["spec"]["cni"].clone()))
}

async fn kubernetes(client: &kube::Client) -> Result<Kubernetes, FunctionError> {
    use k8s_openapi::api::core::v1::{Namespace, Pod, ResourceQuota, ServiceAccount};
    use k8s_openapi::api::networking::v1::NetworkPolicy as K8sNetworkPolicy;
    use k8s_openapi::api::rbac::v1::{
        ClusterRole, ClusterRoleBinding, PolicyRule, Role as K8sRole, RoleBinding, RoleRef, Subject,
    };
    use kube::api::{Api, ListParams};
    use kube::ResourceExt;

    async fn list<K>(api: Api<K>, what: &str) -> Result<Vec<K>, FunctionError>
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        api.list(&ListParams::default())
            .await
            .map(|l| l.items)
            .map_err(|e| FunctionError::new(ErrorType::Retryable, format!("listing {what}: {e}")))
    }
    fn rules(rules: Option<&Vec<PolicyRule>>) -> Vec<RbacRule> {
        rules
            .into_iter()
            .flatten()
            .map(|r| RbacRule {
                api_groups: r.api_groups.clone().unwrap_or_default(),
                resources: r.resources.clone().unwrap_or_default(),
                verbs: r.verbs.clone(),
            })
            .collect()
    }
    fn binding(name: String, role: &RoleRef, subjects: Option<&Vec<Subject>>) -> Binding {
        Binding {
            name,
            role: format!("{}/{}", role.kind, role.name),
            subjects: subjects
                .into_iter()
                .flatten()
                .map(|s| match &s.namespace {
                    Some(ns) if s.kind == "ServiceAccount" => {
                        format!("ServiceAccount/{ns}/{}", s.name)
                    }
                    _ => format!("{}/{}", s.kind, s.name),
                })
                .collect(),
        }
    }
    let c = client.clone();
    let namespaces = list(Api::<Namespace>::all(c.clone()), "namespaces").await?;
    let cluster_role_bindings = list(
        Api::<ClusterRoleBinding>::all(c.clone()),
        "clusterrolebindings",
    )
    .await?;
    let role_bindings = list(Api::<RoleBinding>::all(c.clone()), "rolebindings").await?;
    let cluster_roles = list(Api::<ClusterRole>::all(c.clone()), "clusterroles").await?;
    let roles = list(Api::<K8sRole>::all(c.clone()), "roles").await?;
    let service_accounts = list(Api::<ServiceAccount>::all(c.clone()), "serviceaccounts").await?;
    let pods = list(
        Api::<Pod>::namespaced(c.clone(), "default"),
        "pods in default",
    )
    .await?;
    let policies = list(Api::<K8sNetworkPolicy>::all(c.clone()), "networkpolicies").await?;
    let quotas = list(Api::<ResourceQuota>::all(c), "resourcequotas").await?;
    Ok(Kubernetes {
        namespaces: namespaces
            .iter()
            .map(|n| (n.name_any(), n.labels().clone()))
            .collect(),
        cluster_role_bindings: cluster_role_bindings
            .iter()
            .map(|b| binding(b.name_any(), &b.role_ref, b.subjects.as_ref()))
            .collect(),
        role_bindings: role_bindings
            .iter()
            .map(|b| {
                let name = format!("{}/{}", b.namespace().unwrap_or_default(), b.name_any());
                binding(name, &b.role_ref, b.subjects.as_ref())
            })
            .collect(),
        cluster_roles: cluster_roles
            .iter()
            .map(|r| RbacRole {
                name: r.name_any(),
                rules: rules(r.rules.as_ref()),
            })
            .collect(),
        roles: roles
            .iter()
            .map(|r| RbacRole {
                name: format!("{}/{}", r.namespace().unwrap_or_default(), r.name_any()),
                rules: rules(r.rules.as_ref()),
            })
            .collect(),
        default_service_accounts: service_accounts
            .iter()
            .filter(|sa| sa.name_any() == "default")
            .map(|sa| {
                (
                    sa.namespace().unwrap_or_default(),
                    sa.automount_service_account_token,
                )
            })
            .collect(),
        default_namespace_pods: pods.iter().map(|p| p.name_any()).collect(),
        network_policies: policies
            .iter()
            .map(|p| {
                let spec = p.spec.clone().unwrap_or_default();
                NetworkPolicy {
                    namespace: p.namespace().unwrap_or_default(),
                    name: p.name_any(),
                    selects_all: spec.pod_selector.as_ref().is_none_or(|s| {
                        s.match_labels.as_ref().is_none_or(|m| m.is_empty())
                            && s.match_expressions.as_ref().is_none_or(|m| m.is_empty())
                    }),
                    policy_types: spec.policy_types.clone().unwrap_or_default(),
                    has_ingress_rules: spec.ingress.as_ref().is_some_and(|r| !r.is_empty()),
                    has_egress_rules: spec.egress.as_ref().is_some_and(|r| !r.is_empty()),
                }
            })
            .collect(),
        quota_namespaces: quotas.iter().filter_map(|q| q.namespace()).collect(),
        calico_cni: None,
    })
}
