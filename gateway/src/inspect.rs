//! What exists in the local stack for a platform: every resource tagged with it, by kind.
//! `tenantry dev resources PLATFORM` and the integration tests use it to show that a
//! decommission leaves nothing behind.

use aws_sdk_ec2::types::Filter;
use std::collections::BTreeMap;
use tenantry::resources::Kind;

/// EC2 filter on the `tenantry:platform` tag.
pub fn tag_filter(platform: &str) -> Filter {
    Filter::builder()
        .name("tag:tenantry:platform")
        .values(platform)
        .build()
}

/// Everything in AWS tagged with the platform (or, for log groups, named for it), counted by
/// catalogue kind (`ec2:vpc`, `eks:addon`...: the plan's and the inventory's vocabulary).
/// KMS keys pending deletion and NAT gateways deleting or deleted count as gone. EC2 lists are
/// filtered server-side by tag; IAM, KMS, EKS and Logs are read through every page.
pub async fn tagged_resources(
    aws: &aws_config::SdkConfig,
    platform: &str,
) -> anyhow::Result<BTreeMap<&'static str, usize>> {
    let ec2 = aws_sdk_ec2::Client::new(aws);
    let mut out = BTreeMap::new();
    let f = || tag_filter(platform);
    out.insert(
        Kind::Vpc.as_str(),
        ec2.describe_vpcs().filters(f()).send().await?.vpcs().len(),
    );
    out.insert(
        Kind::Subnet.as_str(),
        ec2.describe_subnets()
            .filters(f())
            .send()
            .await?
            .subnets()
            .len(),
    );
    out.insert(
        Kind::InternetGateway.as_str(),
        ec2.describe_internet_gateways()
            .filters(f())
            .send()
            .await?
            .internet_gateways()
            .len(),
    );
    out.insert(
        Kind::NatGateway.as_str(),
        ec2.describe_nat_gateways()
            .filter(f())
            .send()
            .await?
            .nat_gateways()
            .iter()
            .filter(|n| {
                !matches!(
                    n.state().map(|s| s.as_str()),
                    Some("deleted") | Some("deleting")
                )
            })
            .count(),
    );
    out.insert(
        Kind::ElasticIp.as_str(),
        ec2.describe_addresses()
            .filters(f())
            .send()
            .await?
            .addresses()
            .len(),
    );
    out.insert(
        Kind::RouteTable.as_str(),
        ec2.describe_route_tables()
            .filters(f())
            .send()
            .await?
            .route_tables()
            .len(),
    );
    out.insert(
        Kind::VpcEndpoint.as_str(),
        ec2.describe_vpc_endpoints()
            .filters(f())
            .send()
            .await?
            .vpc_endpoints()
            .iter()
            .filter(|e| e.state().map(|s| s.as_str().to_lowercase()) != Some("deleted".into()))
            .count(),
    );
    out.insert(
        Kind::SecurityGroup.as_str(),
        ec2.describe_security_groups()
            .filters(f())
            .send()
            .await?
            .security_groups()
            .len(),
    );
    out.insert(
        Kind::FlowLog.as_str(),
        ec2.describe_flow_logs()
            .filter(f())
            .send()
            .await?
            .flow_logs()
            .len(),
    );

    let iam = aws_sdk_iam::Client::new(aws);
    let roles: Vec<_> = iam
        .list_roles()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await?;
    let mut tagged_roles = 0;
    for role in &roles {
        let tags = iam
            .list_role_tags()
            .role_name(role.role_name())
            .send()
            .await?;
        if tags
            .tags()
            .iter()
            .any(|t| t.key() == "tenantry:platform" && t.value() == platform)
        {
            tagged_roles += 1;
        }
    }
    out.insert(Kind::IamRole.as_str(), tagged_roles);
    let mut tagged_providers = 0;
    for provider in iam
        .list_open_id_connect_providers()
        .send()
        .await?
        .open_id_connect_provider_list()
    {
        let Some(arn) = provider.arn() else { continue };
        let tags = iam
            .list_open_id_connect_provider_tags()
            .open_id_connect_provider_arn(arn)
            .send()
            .await?;
        if tags
            .tags()
            .iter()
            .any(|t| t.key() == "tenantry:platform" && t.value() == platform)
        {
            tagged_providers += 1;
        }
    }
    out.insert(Kind::OidcProvider.as_str(), tagged_providers);

    let kms = aws_sdk_kms::Client::new(aws);
    let mut live_keys = 0;
    let keys: Vec<_> = kms
        .list_keys()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await?;
    for key in &keys {
        let Some(id) = key.key_id() else { continue };
        let meta = kms.describe_key().key_id(id).send().await?;
        let state = meta
            .key_metadata()
            .and_then(|m| m.key_state())
            .map(|s| s.as_str().to_owned());
        let tags = kms.list_resource_tags().key_id(id).send().await?;
        let ours = tags
            .tags()
            .iter()
            .any(|t| t.tag_key() == "tenantry:platform" && t.tag_value() == platform);
        if ours && state.as_deref() != Some("PendingDeletion") {
            live_keys += 1;
        }
    }
    out.insert(Kind::KmsKey.as_str(), live_keys);
    let eks = aws_sdk_eks::Client::new(aws);
    let mut tagged_clusters = 0;
    let clusters: Vec<String> = eks
        .list_clusters()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await?;
    let mut inside = ClusterContents::default();
    for name in &clusters {
        let cluster = eks.describe_cluster().name(name).send().await?;
        let tags = cluster.cluster().and_then(|c| c.tags());
        if tags
            .and_then(|t| t.get("tenantry:platform"))
            .map(String::as_str)
            == Some(platform)
        {
            tagged_clusters += 1;
            inside.add(&eks, name).await?;
        }
    }
    out.insert(Kind::Cluster.as_str(), tagged_clusters);
    out.insert(Kind::Nodegroup.as_str(), inside.nodegroups);
    out.insert(Kind::FargateProfile.as_str(), inside.fargate_profiles);
    out.insert(Kind::Addon.as_str(), inside.addons);
    out.insert(Kind::AccessEntry.as_str(), inside.access_entries);
    out.insert(Kind::TenantOwnerEntry.as_str(), inside.owner_entries);
    out.insert(
        Kind::IdentityProviderConfig.as_str(),
        inside.identity_providers,
    );
    out.insert(Kind::PodIdentityAssociation.as_str(), inside.pod_identities);
    out.insert(
        Kind::LaunchTemplate.as_str(),
        ec2.describe_launch_templates()
            .filters(f())
            .send()
            .await?
            .launch_templates()
            .len(),
    );
    let logs = aws_sdk_cloudwatchlogs::Client::new(aws);
    let groups: Vec<_> = logs
        .describe_log_groups()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await?;
    out.insert(
        Kind::LogGroup.as_str(),
        groups
            .iter()
            .filter(|g| g.log_group_name().unwrap_or_default().contains(platform))
            .count(),
    );
    let sns = aws_sdk_sns::Client::new(aws);
    let topics: Vec<_> = sns
        .list_topics()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await?;
    let mut tagged_topics = 0;
    for topic in &topics {
        let Some(arn) = topic.topic_arn() else {
            continue;
        };
        let tags = sns
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await?;
        if tags
            .tags()
            .iter()
            .any(|t| t.key() == "tenantry:platform" && t.value() == platform)
        {
            tagged_topics += 1;
        }
    }
    out.insert(Kind::Topic.as_str(), tagged_topics);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(aws);
    let alarms: Vec<_> = cloudwatch
        .describe_alarms()
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await?;
    let mut tagged_alarms = 0;
    for alarm in alarms.iter().flat_map(|page| page.metric_alarms()) {
        let Some(arn) = alarm.alarm_arn() else {
            continue;
        };
        let tags = cloudwatch
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await?;
        if tags
            .tags()
            .iter()
            .any(|t| t.key() == Some("tenantry:platform") && t.value() == Some(platform))
        {
            tagged_alarms += 1;
        }
    }
    out.insert(Kind::Alarm.as_str(), tagged_alarms);
    // ListSecrets leaves out secrets scheduled for deletion (they count as gone, like keys).
    let pages: Vec<_> = aws_sdk_secretsmanager::Client::new(aws)
        .list_secrets()
        .filters(
            aws_sdk_secretsmanager::types::Filter::builder()
                .key(aws_sdk_secretsmanager::types::FilterNameStringType::TagKey)
                .values("tenantry:platform")
                .build(),
        )
        .into_paginator()
        .send()
        .collect::<Result<_, _>>()
        .await?;
    out.insert(
        Kind::Secret.as_str(),
        pages
            .iter()
            .flat_map(|page| page.secret_list())
            .filter(|s| {
                s.deleted_date().is_none()
                    && s.tags().iter().any(|t| {
                        t.key() == Some("tenantry:platform") && t.value() == Some(platform)
                    })
            })
            .count(),
    );
    out.insert(
        Kind::Repository.as_str(),
        tagged_repositories(aws, platform).await?,
    );
    Ok(out)
}

/// ECR repositories tagged with the platform (ECR lists no tags: one read per repository).
async fn tagged_repositories(aws: &aws_config::SdkConfig, platform: &str) -> anyhow::Result<usize> {
    let ecr = aws_sdk_ecr::Client::new(aws);
    let pages: Vec<_> = ecr
        .describe_repositories()
        .into_paginator()
        .send()
        .collect::<Result<_, _>>()
        .await?;
    let mut count = 0;
    for repo in pages.iter().flat_map(|p| p.repositories()) {
        let tags = ecr
            .list_tags_for_resource()
            .resource_arn(repo.repository_arn().unwrap_or_default())
            .send()
            .await?;
        if tags
            .tags()
            .iter()
            .any(|t| t.key() == "tenantry:platform" && t.value() == platform)
        {
            count += 1;
        }
    }
    Ok(count)
}

/// Counts of what lives inside the platform's EKS clusters.
#[derive(Default)]
struct ClusterContents {
    nodegroups: usize,
    fargate_profiles: usize,
    addons: usize,
    access_entries: usize,
    /// Entries Tenantry made for tenant owners (`eks:tenant-owner-entry`).
    owner_entries: usize,
    identity_providers: usize,
    pod_identities: usize,
}

impl ClusterContents {
    async fn add(&mut self, eks: &aws_sdk_eks::Client, cluster: &str) -> anyhow::Result<()> {
        self.nodegroups += eks
            .list_nodegroups()
            .cluster_name(cluster)
            .send()
            .await?
            .nodegroups()
            .len();
        self.fargate_profiles += eks
            .list_fargate_profiles()
            .cluster_name(cluster)
            .send()
            .await?
            .fargate_profile_names()
            .len();
        self.addons += eks
            .list_addons()
            .cluster_name(cluster)
            .send()
            .await?
            .addons()
            .len();
        // Tenantry's own entries (the cluster creator's entry is EKS's).
        for principal in eks
            .list_access_entries()
            .cluster_name(cluster)
            .send()
            .await?
            .access_entries()
        {
            let entry = eks
                .describe_access_entry()
                .cluster_name(cluster)
                .principal_arn(principal)
                .send()
                .await?;
            let tags = entry.access_entry().and_then(|e| e.tags());
            if !tags.is_some_and(|t| t.contains_key("tenantry:platform")) {
                continue;
            }
            if tags
                .and_then(|t| t.get("tenantry:component"))
                .map(String::as_str)
                == Some(tenantry::phases::tenant::owners::COMPONENT)
            {
                self.owner_entries += 1;
            } else {
                self.access_entries += 1;
            }
        }
        self.identity_providers += eks
            .list_identity_provider_configs()
            .cluster_name(cluster)
            .send()
            .await?
            .identity_provider_configs()
            .len();
        self.pod_identities += eks
            .list_pod_identity_associations()
            .cluster_name(cluster)
            .send()
            .await?
            .associations()
            .len();
        Ok(())
    }
}
