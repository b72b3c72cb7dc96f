//! Reads one platform's live state into a [`Live`] snapshot: the only part of a sweep that calls
//! AWS and Kubernetes. Every client is read-only (`Clients::scoped(.., true)` and
//! `kubernetes::connect_read_only`), so a sweep cannot change what it judges.
//!
//! Which resources are the platform's comes from its inventory (kind and id, as the phases
//! recorded them) and its deterministic names; what they are like comes from the services.

mod kubernetes;
mod network;

use self::kubernetes::{calico_cni, kubernetes};
use self::network::network;
use super::live::*;
use crate::aws::Clients;
use crate::deps::Deps;
use crate::error::{ErrorType, FunctionError};
use crate::naming::Names;
use crate::phases::aws_error;
use crate::phases::common::{error_code, is_gone_code};
use crate::policies::parse_returned;
use crate::resources::{access_entry, Kind};
use crate::spec::PlatformSpec;
use crate::store::{ResourceRecord, Store, TenantState};
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

/// Reads the live state of `stored`'s platform, with `deps` in the platform's account
/// ([`Deps::for_platform`]).
pub async fn gather(deps: &Deps, stored: &Stored) -> Result<Live, FunctionError> {
    let spec = &stored.spec;
    let clients = deps.clients.scoped(&spec.region, true);
    let mut live = Live {
        platform_id: spec.id.clone(),
        account: deps.account_id().await?,
        region: spec.region.clone(),
        asked: asked(deps, stored),
        vpc_id: stored.ids(Kind::Vpc).next().map(|r| r.id.clone()),
        ..Live::default()
    };
    let cluster = eks(&clients, &Names::new(spec).cluster(), &mut live).await?;
    if let Some(vpc) = live.vpc_id.clone() {
        network(&clients, &vpc, &mut live).await?;
    }
    recorded(&clients, stored, &mut live).await?;
    if let Some(cluster) = &cluster {
        live.kubernetes = cluster_side(deps, spec, cluster).await?;
    }
    Ok(live)
}

/// The cluster and, when it exists, its versions, access entries, add-ons and node groups.
async fn eks(
    clients: &Clients,
    cluster_name: &str,
    live: &mut Live,
) -> Result<Option<aws_sdk_eks::types::Cluster>, FunctionError> {
    let described = optional(
        "DescribeCluster",
        clients
            .eks()
            .describe_cluster()
            .name(cluster_name)
            .send()
            .await,
    )?
    .and_then(|out| out.cluster);
    let Some(c) = &described else {
        return Ok(None);
    };
    live.cluster = Some(cluster(c));
    live.oidc_issuer = c
        .identity()
        .and_then(|i| i.oidc())
        .and_then(|o| o.issuer())
        .map(|i| i.trim_start_matches("https://").to_owned());
    live.versions = versions(clients).await?;
    live.access_entries = access_entries(clients, cluster_name).await?;
    live.addons = addons(clients, cluster_name).await?;
    live.nodegroups = nodegroups(clients, cluster_name).await?;
    Ok(described)
}

/// The resources the inventory lists: keys, log groups, roles, the bucket, repositories.
async fn recorded(
    clients: &Clients,
    stored: &Stored,
    live: &mut Live,
) -> Result<(), FunctionError> {
    for record in stored.ids(Kind::KmsKey) {
        live.keys.extend(key(clients, &record.id).await?);
    }
    for record in stored.ids(Kind::LogGroup) {
        live.log_groups
            .extend(log_group(clients, &record.id).await?);
    }
    for record in stored.ids(Kind::IamRole) {
        // The tenants phase tags its roles with their tenant.
        let tenant =
            (record.tenant.clone()).or_else(|| record.tags.get(crate::naming::TAG_TENANT).cloned());
        live.roles.extend(role(clients, &record.id, tenant).await?);
    }
    if let Some(record) = stored.ids(Kind::Bucket).next() {
        live.bucket = bucket(clients, &record.id).await?;
    }
    for record in stored.ids(Kind::Repository) {
        if let Some(repo) = crate::resources::repository::find(clients.ecr(), &record.id).await? {
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
    Ok(())
}

/// The cluster's side, through a read-only client (`None` while the cluster has no endpoint).
async fn cluster_side(
    deps: &Deps,
    spec: &PlatformSpec,
    cluster: &aws_sdk_eks::types::Cluster,
) -> Result<Option<Kubernetes>, FunctionError> {
    let Some(endpoint) = cluster.endpoint() else {
        return Ok(None);
    };
    let region = aws_config::Region::new(spec.region.clone());
    let aws = crate::aws::read_only::read_only(&deps.aws.to_builder().region(region).build());
    let ca = cluster.certificate_authority().and_then(|ca| ca.data());
    let name = cluster.name().unwrap_or_default();
    let client = crate::kubernetes::connect_read_only(&aws, name, endpoint, ca).await?;
    let mut k = kubernetes(&client).await?;
    if spec.cni == crate::spec::Cni::Calico {
        k.calico_cni = calico_cni(&client, spec).await?;
    }
    Ok(Some(k))
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
        .eks()
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
    let eks = &clients.eks();
    let principals = access_entry::list(eks, cluster).await?.unwrap_or_default();
    let mut out = Vec::new();
    for principal in principals {
        let Some(entry) = access_entry::describe(eks, cluster, &principal).await? else {
            continue;
        };
        // Cluster-wide ones only, sorted so that evidence compares across sweeps.
        let mut cluster_policies: Vec<String> = access_entry::policies(eks, cluster, &principal)
            .await?
            .into_iter()
            .filter(|a| a.is_cluster_wide())
            .map(|a| a.policy_arn)
            .collect();
        cluster_policies.sort();
        out.push(AccessEntry {
            cluster_policies,
            principal,
            kind: entry.kind,
            groups: entry.groups.into_iter().collect(),
        });
    }
    Ok(out)
}

async fn addons(clients: &Clients, cluster: &str) -> Result<Vec<Addon>, FunctionError> {
    let listed = clients
        .eks()
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
                .eks()
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
        .eks()
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
                .eks()
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
            .ec2()
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

async fn key(clients: &Clients, id: &str) -> Result<Option<Key>, FunctionError> {
    let Some(described) = optional(
        "DescribeKey",
        clients.kms().describe_key().key_id(id).send().await,
    )?
    else {
        return Ok(None);
    };
    let Some(meta) = described.key_metadata() else {
        return Ok(None);
    };
    let rotation = clients
        .kms()
        .get_key_rotation_status()
        .key_id(id)
        .send()
        .await
        .map_err(|e| aws_error("GetKeyRotationStatus", e))?;
    let policy = clients
        .kms()
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
    let found = crate::resources::log_group::find(clients.logs(), name).await?;
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
        clients.iam().get_role().role_name(name).send().await,
    )?
    else {
        return Ok(None);
    };
    let Some(r) = got.role() else {
        return Ok(None);
    };
    let attached = clients
        .iam()
        .list_attached_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(|e| aws_error("ListAttachedRolePolicies", e))?;
    let inline_policies = inline_policies(clients, name).await?;
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

/// The role's inline policies, by name.
async fn inline_policies(
    clients: &Clients,
    name: &str,
) -> Result<BTreeMap<String, Value>, FunctionError> {
    let names = clients
        .iam()
        .list_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(|e| aws_error("ListRolePolicies", e))?;
    let mut out = BTreeMap::new();
    for policy in names.policy_names() {
        let got = clients
            .iam()
            .get_role_policy()
            .role_name(name)
            .policy_name(policy)
            .send()
            .await
            .map_err(|e| aws_error("GetRolePolicy", e))?;
        let document = parse_returned(got.policy_document()).unwrap_or(Value::Null);
        out.insert(policy.clone(), document);
    }
    Ok(out)
}

async fn bucket(clients: &Clients, name: &str) -> Result<Option<Bucket>, FunctionError> {
    let encryption = optional(
        "GetBucketEncryption",
        clients
            .s3()
            .get_bucket_encryption()
            .bucket(name)
            .send()
            .await,
    )?;
    let block = optional(
        "GetPublicAccessBlock",
        clients
            .s3()
            .get_public_access_block()
            .bucket(name)
            .send()
            .await,
    )?;
    let policy = optional(
        "GetBucketPolicy",
        clients.s3().get_bucket_policy().bucket(name).send().await,
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
