//! EKS clusters as the cluster phase uses them. Long operations are started by a call and end
//! when the scenario says time has passed ([`EksDouble::settle`]), as a poll would find them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_eks::operation::describe_addon::DescribeAddonError;
use aws_sdk_eks::operation::describe_cluster::DescribeClusterError;
use aws_sdk_eks::operation::describe_nodegroup::DescribeNodegroupError;
use aws_sdk_eks::types::error::ResourceNotFoundException;
use aws_sdk_eks::types::{
    AccessConfigResponse, Addon, AddonInfo, AddonStatus, AddonVersionInfo, Certificate, Cluster,
    ClusterStatus, Compatibility, FargateProfile, FargateProfileStatus, Identity, Nodegroup,
    NodegroupStatus, Oidc, PodIdentityAssociation, PodIdentityAssociationSummary,
    VpcConfigResponse,
};
use aws_sdk_eks::Client;
use aws_smithy_mocks::{MockResponse as R, Rule};

use super::{answer, Calls, ACCOUNT};

pub const ENDPOINT: &str = "https://EXAMPLE.gr7.us-east-1.eks.amazonaws.com";
pub const ISSUER: &str = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE";

/// The clusters of one account and region, with their add-ons (by name) and pod identity
/// associations (by id).
#[derive(Clone, Default)]
pub struct EksDouble {
    clusters: Arc<Mutex<BTreeMap<String, Cluster>>>,
    addons: Arc<Mutex<BTreeMap<String, Addon>>>,
    nodegroups: Arc<Mutex<BTreeMap<String, Nodegroup>>>,
    fargate_profiles: Arc<Mutex<BTreeMap<String, FargateProfile>>>,
    associations: Arc<Mutex<BTreeMap<String, PodIdentityAssociation>>>,
    calls: Calls,
}

/// The versions every add-on offers, all compatible with [`KUBERNETES`].
pub const ADDON_VERSIONS: [&str; 2] = ["v1.1.0-eksbuild.1", "v1.2.0-eksbuild.3"];
/// The cluster version the add-on versions are compatible with.
pub const KUBERNETES: &str = "1.35";

fn not_found(what: &str) -> ResourceNotFoundException {
    ResourceNotFoundException::builder()
        .message(format!("No cluster found for name: {what}."))
        .build()
}

impl EksDouble {
    pub fn new(calls: &Calls) -> Self {
        EksDouble {
            calls: calls.clone(),
            ..Default::default()
        }
    }

    /// Puts a cluster in place, as an earlier phase left it.
    pub fn add_cluster(&self, cluster: Cluster) {
        let name = cluster.name().expect("a named cluster").to_owned();
        self.clusters.lock().expect("eks").insert(name, cluster);
    }

    pub fn cluster(&self, name: &str) -> Option<Cluster> {
        self.clusters.lock().expect("eks").get(name).cloned()
    }

    /// Changes a cluster out of band (the SDK type's fields are public).
    pub fn edit(&self, name: &str, change: impl FnOnce(&mut Cluster)) {
        change(
            self.clusters
                .lock()
                .expect("eks")
                .get_mut(name)
                .expect("cluster"),
        );
    }

    /// Time passes: operations in progress finish.
    pub fn settle(&self) {
        let mut clusters = self.clusters.lock().expect("eks");
        clusters.retain(|_, c| c.status() != Some(&ClusterStatus::Deleting));
        for cluster in clusters.values_mut() {
            cluster.status = Some(ClusterStatus::Active);
        }
        let mut addons = self.addons.lock().expect("eks");
        let deleted: Vec<String> = addons
            .values()
            .filter(|a| a.status() == Some(&AddonStatus::Deleting))
            .filter_map(|a| a.addon_arn().map(str::to_owned))
            .collect();
        addons.retain(|_, a| a.status() != Some(&AddonStatus::Deleting));
        for addon in addons.values_mut() {
            addon.status = Some(AddonStatus::Active);
        }
        let mut groups = self.nodegroups.lock().expect("eks");
        groups.retain(|_, g| g.status() != Some(&NodegroupStatus::Deleting));
        for group in groups.values_mut() {
            group.status = Some(NodegroupStatus::Active);
        }
        let mut profiles = self.fargate_profiles.lock().expect("eks");
        profiles.retain(|_, p| p.status() != Some(&FargateProfileStatus::Deleting));
        for profile in profiles.values_mut() {
            profile.status = Some(FargateProfileStatus::Active);
        }
        // An add-on's own associations go with it.
        self.associations.lock().expect("eks").retain(|_, p| {
            p.owner_arn()
                .is_none_or(|o| !deleted.iter().any(|d| d == o))
        });
    }

    pub fn fargate_profiles(&self) -> BTreeMap<String, FargateProfile> {
        self.fargate_profiles.lock().expect("eks").clone()
    }

    /// Puts a Fargate profile in place (another phase's, say, still CREATING).
    pub fn add_fargate_profile(&self, profile: FargateProfile) {
        let name = profile
            .fargate_profile_name()
            .unwrap_or_default()
            .to_owned();
        self.fargate_profiles
            .lock()
            .expect("eks")
            .insert(name, profile);
    }

    /// Changes a Fargate profile out of band.
    pub fn edit_fargate_profile(&self, name: &str, change: impl FnOnce(&mut FargateProfile)) {
        change(
            self.fargate_profiles
                .lock()
                .expect("eks")
                .get_mut(name)
                .expect("profile"),
        );
    }

    pub fn nodegroups(&self) -> BTreeMap<String, Nodegroup> {
        self.nodegroups.lock().expect("eks").clone()
    }

    /// Changes a node group out of band (the autoscaler, or a person).
    pub fn edit_nodegroup(&self, name: &str, change: impl FnOnce(&mut Nodegroup)) {
        change(
            self.nodegroups
                .lock()
                .expect("eks")
                .get_mut(name)
                .expect("node group"),
        );
    }

    pub fn addons(&self) -> BTreeMap<String, Addon> {
        self.addons.lock().expect("eks").clone()
    }

    /// Changes an add-on out of band.
    pub fn edit_addon(&self, name: &str, change: impl FnOnce(&mut Addon)) {
        change(
            self.addons
                .lock()
                .expect("eks")
                .get_mut(name)
                .expect("add-on"),
        );
    }

    /// Deletes an add-on out of band, at once.
    pub fn remove_addon(&self, name: &str) {
        self.addons.lock().expect("eks").remove(name);
    }

    pub fn associations(&self) -> BTreeMap<String, PodIdentityAssociation> {
        self.associations.lock().expect("eks").clone()
    }

    /// Changes an association out of band.
    pub fn edit_association(&self, id: &str, change: impl FnOnce(&mut PodIdentityAssociation)) {
        change(
            self.associations
                .lock()
                .expect("eks")
                .get_mut(id)
                .expect("association"),
        );
    }

    fn associate(
        &self,
        namespace: &str,
        account: &str,
        role: &str,
        owner: Option<String>,
        tags: Option<std::collections::HashMap<String, String>>,
    ) -> PodIdentityAssociation {
        let mut all = self.associations.lock().expect("eks");
        let id = format!("a-{}", all.len() + 1);
        let association = PodIdentityAssociation::builder()
            .association_id(&id)
            .association_arn(format!(
                "arn:aws:eks:us-east-1:{ACCOUNT}:podidentityassociation/{id}"
            ))
            .cluster_name("cluster")
            .namespace(namespace)
            .service_account(account)
            .role_arn(role)
            .set_owner_arn(owner)
            .set_tags(tags)
            .build();
        all.insert(id, association.clone());
        association
    }

    /// Starts an update of the cluster: `change` now, UPDATING until [`EksDouble::settle`].
    fn update(&self, name: Option<&str>, change: impl FnOnce(&mut Cluster)) {
        self.edit(name.unwrap_or_default(), |c| {
            change(c);
            c.status = Some(ClusterStatus::Updating);
        });
    }

    pub fn rules(&self) -> Vec<Rule> {
        let mut rules = self.cluster_rules();
        rules.extend(self.addon_rules());
        rules.extend(self.association_rules());
        rules.extend(self.nodegroup_rules());
        rules.extend(self.fargate_rules());
        rules
    }

    /// Fargate profiles as EKS keeps them: CREATING or DELETING until [`EksDouble::settle`],
    /// and, as EKS does, at most one of them in flight per cluster (another create or delete is
    /// refused with `ResourceInUseException`).
    fn fargate_rules(&self) -> Vec<Rule> {
        use aws_sdk_eks::operation::*;
        use aws_smithy_types::error::ErrorMetadata;
        let busy = |me: &EksDouble| {
            me.fargate_profiles().values().any(|p| {
                matches!(
                    p.status(),
                    Some(FargateProfileStatus::Creating) | Some(FargateProfileStatus::Deleting)
                )
            })
        };
        let in_use = || {
            ErrorMetadata::builder()
                .code("ResourceInUseException")
                .message("another Fargate profile is being created or deleted")
                .build()
        };
        vec![
            answer!(
                self,
                Client::describe_fargate_profile,
                "eks:DescribeFargateProfile",
                |me, req| {
                    match me
                        .fargate_profiles()
                        .get(req.fargate_profile_name().unwrap_or_default())
                    {
                        Some(p) => R::Output(
                            describe_fargate_profile::DescribeFargateProfileOutput::builder()
                                .fargate_profile(p.clone())
                                .build(),
                        ),
                        None => R::Error(
                            describe_fargate_profile::DescribeFargateProfileError::ResourceNotFoundException(
                                ResourceNotFoundException::builder()
                                    .message("no Fargate profile")
                                    .build(),
                            ),
                        ),
                    }
                }
            ),
            answer!(
                self,
                Client::list_fargate_profiles,
                "eks:ListFargateProfiles",
                |me, _req| {
                    R::Output(
                        list_fargate_profiles::ListFargateProfilesOutput::builder()
                            .set_fargate_profile_names(Some(
                                me.fargate_profiles().into_keys().collect(),
                            ))
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::create_fargate_profile,
                "eks:CreateFargateProfile",
                |me, req| {
                    let name = req.fargate_profile_name().unwrap_or_default().to_owned();
                    if busy(&me) || me.fargate_profiles().contains_key(&name) {
                        return R::Error(
                            create_fargate_profile::CreateFargateProfileError::generic(in_use()),
                        );
                    }
                    let profile = FargateProfile::builder()
                        .fargate_profile_name(&name)
                        .fargate_profile_arn(format!(
                            "arn:aws:eks:us-east-1:{ACCOUNT}:fargateprofile/c/{name}/1"
                        ))
                        .set_cluster_name(req.cluster_name().map(str::to_owned))
                        .set_pod_execution_role_arn(req.pod_execution_role_arn().map(str::to_owned))
                        .set_subnets(Some(req.subnets().to_vec()))
                        .set_selectors(Some(req.selectors().to_vec()))
                        .set_tags(req.tags().cloned())
                        .status(FargateProfileStatus::Creating)
                        .build();
                    me.fargate_profiles
                        .lock()
                        .expect("eks")
                        .insert(name, profile.clone());
                    R::Output(
                        create_fargate_profile::CreateFargateProfileOutput::builder()
                            .fargate_profile(profile)
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::delete_fargate_profile,
                "eks:DeleteFargateProfile",
                |me, req| {
                    let name = req.fargate_profile_name().unwrap_or_default();
                    if !me.fargate_profiles().contains_key(name) {
                        return R::Error(
                            delete_fargate_profile::DeleteFargateProfileError::ResourceNotFoundException(
                                ResourceNotFoundException::builder()
                                    .message("no Fargate profile")
                                    .build(),
                            ),
                        );
                    }
                    if busy(&me) {
                        return R::Error(
                            delete_fargate_profile::DeleteFargateProfileError::generic(in_use()),
                        );
                    }
                    me.edit_fargate_profile(name, |p| {
                        p.status = Some(FargateProfileStatus::Deleting)
                    });
                    R::Output(delete_fargate_profile::DeleteFargateProfileOutput::builder().build())
                }
            ),
        ]
    }

    fn cluster_rules(&self) -> Vec<Rule> {
        use aws_sdk_eks::operation::*;
        vec![
            answer!(
                self,
                Client::describe_cluster,
                "eks:DescribeCluster",
                |me, req| {
                    let name = req.name().unwrap_or_default();
                    match me.cluster(name) {
                        Some(c) => R::Output(
                            describe_cluster::DescribeClusterOutput::builder()
                                .cluster(c)
                                .build(),
                        ),
                        None => R::Error(DescribeClusterError::ResourceNotFoundException(
                            not_found(name),
                        )),
                    }
                }
            ),
            answer!(
                self,
                Client::create_cluster,
                "eks:CreateCluster",
                |me, req| {
                    let name = req.name().unwrap_or_default().to_owned();
                    let vpc = req.resources_vpc_config().expect("vpc config");
                    let cluster = Cluster::builder()
                        .name(&name)
                        .arn(format!("arn:aws:eks:us-east-1:{ACCOUNT}:cluster/{name}"))
                        .set_version(req.version().map(str::to_owned))
                        .set_role_arn(req.role_arn().map(str::to_owned))
                        .endpoint(ENDPOINT)
                        .certificate_authority(Certificate::builder().data("Q0E=").build())
                        .identity(
                            Identity::builder()
                                .oidc(Oidc::builder().issuer(ISSUER).build())
                                .build(),
                        )
                        .resources_vpc_config(
                            VpcConfigResponse::builder()
                                .set_subnet_ids(vpc.subnet_ids.clone())
                                .cluster_security_group_id("sg-cluster")
                                .endpoint_private_access(
                                    vpc.endpoint_private_access.unwrap_or(false),
                                )
                                .endpoint_public_access(vpc.endpoint_public_access.unwrap_or(true))
                                // EKS's default allow-list when none is given.
                                .set_public_access_cidrs(Some(
                                    vpc.public_access_cidrs
                                        .clone()
                                        .filter(|c| !c.is_empty())
                                        .unwrap_or_else(|| vec!["0.0.0.0/0".to_owned()]),
                                ))
                                .build(),
                        )
                        .set_logging(req.logging().cloned())
                        .set_encryption_config(Some(req.encryption_config().to_vec()))
                        .access_config(
                            AccessConfigResponse::builder()
                                .set_authentication_mode(
                                    req.access_config()
                                        .and_then(|a| a.authentication_mode().cloned()),
                                )
                                .build(),
                        )
                        .set_deletion_protection(req.deletion_protection())
                        .set_tags(req.tags().cloned())
                        .status(ClusterStatus::Creating)
                        .build();
                    me.clusters
                        .lock()
                        .expect("eks")
                        .insert(name, cluster.clone());
                    R::Output(
                        create_cluster::CreateClusterOutput::builder()
                            .cluster(cluster)
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::update_cluster_config,
                "eks:UpdateClusterConfig",
                |me, req| {
                    me.update(req.name(), |c| {
                        if let (Some(want), Some(vpc)) =
                            (req.resources_vpc_config(), c.resources_vpc_config.as_mut())
                        {
                            if let Some(private) = want.endpoint_private_access {
                                vpc.endpoint_private_access = private;
                            }
                            if let Some(public) = want.endpoint_public_access {
                                vpc.endpoint_public_access = public;
                            }
                            if let Some(cidrs) = &want.public_access_cidrs {
                                vpc.public_access_cidrs = Some(cidrs.clone());
                            }
                        }
                        if let Some(logging) = req.logging() {
                            c.logging = Some(logging.clone());
                        }
                        if let Some(access) = req.access_config() {
                            c.access_config = Some(
                                AccessConfigResponse::builder()
                                    .set_authentication_mode(access.authentication_mode().cloned())
                                    .build(),
                            );
                        }
                        if let Some(protection) = req.deletion_protection() {
                            c.deletion_protection = Some(protection);
                        }
                    });
                    R::Output(update_cluster_config::UpdateClusterConfigOutput::builder().build())
                }
            ),
            answer!(
                self,
                Client::update_cluster_version,
                "eks:UpdateClusterVersion",
                |me, req| {
                    let version = req.version().unwrap_or_default().to_owned();
                    me.update(req.name(), |c| c.version = Some(version));
                    R::Output(update_cluster_version::UpdateClusterVersionOutput::builder().build())
                }
            ),
            answer!(
                self,
                Client::delete_cluster,
                "eks:DeleteCluster",
                |me, req| {
                    let name = req.name().unwrap_or_default();
                    me.edit(name, |c| c.status = Some(ClusterStatus::Deleting));
                    R::Output(delete_cluster::DeleteClusterOutput::builder().build())
                }
            ),
        ]
    }

    fn addon_rules(&self) -> Vec<Rule> {
        use aws_sdk_eks::operation::*;
        vec![
            answer!(
                self,
                Client::describe_addon_versions,
                "eks:DescribeAddonVersions",
                |_me, req| {
                    let name = req.addon_name().unwrap_or_default();
                    let compatible = Compatibility::builder().cluster_version(KUBERNETES).build();
                    let versions = ADDON_VERSIONS
                        .iter()
                        .map(|v| {
                            AddonVersionInfo::builder()
                                .addon_version(*v)
                                .compatibilities(compatible.clone())
                                .build()
                        })
                        .collect();
                    R::Output(
                        describe_addon_versions::DescribeAddonVersionsOutput::builder()
                            .addons(
                                AddonInfo::builder()
                                    .addon_name(name)
                                    .set_addon_versions(Some(versions))
                                    .build(),
                            )
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::describe_addon,
                "eks:DescribeAddon",
                |me, req| {
                    let name = req.addon_name().unwrap_or_default();
                    match me.addons().get(name) {
                        Some(a) => R::Output(
                            describe_addon::DescribeAddonOutput::builder()
                                .addon(a.clone())
                                .build(),
                        ),
                        None => R::Error(DescribeAddonError::ResourceNotFoundException(
                            ResourceNotFoundException::builder()
                                .message("no add-on")
                                .build(),
                        )),
                    }
                }
            ),
            answer!(self, Client::list_addons, "eks:ListAddons", |me, _req| {
                R::Output(
                    list_addons::ListAddonsOutput::builder()
                        .set_addons(Some(me.addons().into_keys().collect()))
                        .build(),
                )
            }),
            answer!(self, Client::create_addon, "eks:CreateAddon", |me, req| {
                let name = req.addon_name().unwrap_or_default().to_owned();
                let arn = format!("arn:aws:eks:us-east-1:{ACCOUNT}:addon/cluster/{name}/1");
                // Associations the request brings are the add-on's own (EKS sets their owner).
                let owned: Vec<String> = req
                    .pod_identity_associations()
                    .iter()
                    .map(|p| {
                        let a = me.associate(
                            "kube-system",
                            p.service_account(),
                            p.role_arn(),
                            Some(arn.clone()),
                            None,
                        );
                        a.association_arn().unwrap_or_default().to_owned()
                    })
                    .collect();
                let addon = Addon::builder()
                    .addon_name(&name)
                    .cluster_name(req.cluster_name().unwrap_or_default())
                    .addon_arn(&arn)
                    .set_addon_version(req.addon_version().map(str::to_owned))
                    .set_configuration_values(req.configuration_values().map(str::to_owned))
                    .set_service_account_role_arn(req.service_account_role_arn().map(str::to_owned))
                    .set_pod_identity_associations(Some(owned))
                    .set_tags(req.tags().cloned())
                    .status(AddonStatus::Creating)
                    .build();
                me.addons.lock().expect("eks").insert(name, addon.clone());
                R::Output(
                    create_addon::CreateAddonOutput::builder()
                        .addon(addon)
                        .build(),
                )
            }),
            answer!(self, Client::update_addon, "eks:UpdateAddon", |me, req| {
                let (version, config, role) = (
                    req.addon_version().map(str::to_owned),
                    req.configuration_values().map(str::to_owned),
                    req.service_account_role_arn().map(str::to_owned),
                );
                me.edit_addon(req.addon_name().unwrap_or_default(), |a| {
                    if version.is_some() {
                        a.addon_version = version;
                    }
                    // An empty configuration clears it, as EKS does.
                    a.configuration_values = config.filter(|c| !c.is_empty());
                    if role.is_some() {
                        a.service_account_role_arn = role;
                    }
                    a.status = Some(AddonStatus::Updating);
                });
                R::Output(update_addon::UpdateAddonOutput::builder().build())
            }),
            answer!(self, Client::delete_addon, "eks:DeleteAddon", |me, req| {
                me.edit_addon(req.addon_name().unwrap_or_default(), |a| {
                    a.status = Some(AddonStatus::Deleting)
                });
                R::Output(delete_addon::DeleteAddonOutput::builder().build())
            }),
        ]
    }

    fn association_rules(&self) -> Vec<Rule> {
        use aws_sdk_eks::operation::*;
        vec![
            answer!(
                self,
                Client::list_pod_identity_associations,
                "eks:ListPodIdentityAssociations",
                |me, _req| {
                    let summaries = me
                        .associations()
                        .values()
                        .map(|a| {
                            PodIdentityAssociationSummary::builder()
                                .set_association_id(a.association_id().map(str::to_owned))
                                .set_namespace(a.namespace().map(str::to_owned))
                                .set_service_account(a.service_account().map(str::to_owned))
                                .set_owner_arn(a.owner_arn().map(str::to_owned))
                                .build()
                        })
                        .collect();
                    R::Output(
                        list_pod_identity_associations::ListPodIdentityAssociationsOutput::builder(
                        )
                        .set_associations(Some(summaries))
                        .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::describe_pod_identity_association,
                "eks:DescribePodIdentityAssociation",
                |me, req| {
                    let a = me.associations()[req.association_id().unwrap_or_default()].clone();
                    R::Output(
                    describe_pod_identity_association::DescribePodIdentityAssociationOutput::builder()
                        .association(a)
                        .build(),
                )
                }
            ),
            answer!(
                self,
                Client::create_pod_identity_association,
                "eks:CreatePodIdentityAssociation",
                |me, req| {
                    let a = me.associate(
                        req.namespace().unwrap_or_default(),
                        req.service_account().unwrap_or_default(),
                        req.role_arn().unwrap_or_default(),
                        None,
                        req.tags().cloned(),
                    );
                    R::Output(
                    create_pod_identity_association::CreatePodIdentityAssociationOutput::builder()
                        .association(a)
                        .build(),
                )
                }
            ),
            answer!(
                self,
                Client::update_pod_identity_association,
                "eks:UpdatePodIdentityAssociation",
                |me, req| {
                    let role = req.role_arn().map(str::to_owned);
                    me.edit_association(req.association_id().unwrap_or_default(), |a| {
                        a.role_arn = role
                    });
                    R::Output(
                    update_pod_identity_association::UpdatePodIdentityAssociationOutput::builder()
                        .build(),
                )
                }
            ),
            answer!(
                self,
                Client::delete_pod_identity_association,
                "eks:DeletePodIdentityAssociation",
                |me, req| {
                    me.associations
                        .lock()
                        .expect("eks")
                        .remove(req.association_id().unwrap_or_default());
                    R::Output(
                    delete_pod_identity_association::DeletePodIdentityAssociationOutput::builder()
                        .build(),
                )
                }
            ),
        ]
    }

    fn nodegroup_rules(&self) -> Vec<Rule> {
        use aws_sdk_eks::operation::*;
        vec![
            answer!(
                self,
                Client::describe_nodegroup,
                "eks:DescribeNodegroup",
                |me, req| {
                    match me
                        .nodegroups()
                        .get(req.nodegroup_name().unwrap_or_default())
                    {
                        Some(g) => R::Output(
                            describe_nodegroup::DescribeNodegroupOutput::builder()
                                .nodegroup(g.clone())
                                .build(),
                        ),
                        None => R::Error(DescribeNodegroupError::ResourceNotFoundException(
                            ResourceNotFoundException::builder()
                                .message("no node group")
                                .build(),
                        )),
                    }
                }
            ),
            answer!(
                self,
                Client::list_nodegroups,
                "eks:ListNodegroups",
                |me, _req| {
                    R::Output(
                        list_nodegroups::ListNodegroupsOutput::builder()
                            .set_nodegroups(Some(me.nodegroups().into_keys().collect()))
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::create_nodegroup,
                "eks:CreateNodegroup",
                |me, req| {
                    let name = req.nodegroup_name().unwrap_or_default().to_owned();
                    let group = Nodegroup::builder()
                        .nodegroup_name(&name)
                        .nodegroup_arn(format!(
                            "arn:aws:eks:us-east-1:{ACCOUNT}:nodegroup/c/{name}/1"
                        ))
                        .set_cluster_name(req.cluster_name().map(str::to_owned))
                        .set_node_role(req.node_role().map(str::to_owned))
                        .set_subnets(Some(req.subnets().to_vec()))
                        .set_scaling_config(req.scaling_config().cloned())
                        .set_instance_types(Some(req.instance_types().to_vec()))
                        .set_capacity_type(req.capacity_type().cloned())
                        .set_ami_type(req.ami_type().cloned())
                        .set_labels(req.labels().cloned())
                        .set_taints(Some(req.taints().to_vec()))
                        .set_launch_template(req.launch_template().cloned())
                        .set_tags(req.tags().cloned())
                        .status(NodegroupStatus::Creating)
                        .build();
                    me.nodegroups
                        .lock()
                        .expect("eks")
                        .insert(name, group.clone());
                    R::Output(
                        create_nodegroup::CreateNodegroupOutput::builder()
                            .nodegroup(group)
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::update_nodegroup_config,
                "eks:UpdateNodegroupConfig",
                |me, req| {
                    let req = req.clone();
                    me.edit_nodegroup(req.nodegroup_name().unwrap_or_default(), |g| {
                        if let Some(scaling) = req.scaling_config() {
                            g.scaling_config = Some(scaling.clone());
                        }
                        if let Some(labels) = req.labels() {
                            let all = g.labels.get_or_insert_with(Default::default);
                            for k in labels.remove_labels() {
                                all.remove(k);
                            }
                            all.extend(labels.add_or_update_labels().cloned().unwrap_or_default());
                        }
                        if let Some(taints) = req.taints() {
                            let all = g.taints.get_or_insert_with(Default::default);
                            all.retain(|t| {
                                !taints.remove_taints().iter().any(|r| r.key() == t.key())
                            });
                            for t in taints.add_or_update_taints() {
                                all.retain(|have| have.key() != t.key());
                                all.push(t.clone());
                            }
                        }
                        g.status = Some(NodegroupStatus::Updating);
                    });
                    R::Output(
                        update_nodegroup_config::UpdateNodegroupConfigOutput::builder().build(),
                    )
                }
            ),
            answer!(
                self,
                Client::update_nodegroup_version,
                "eks:UpdateNodegroupVersion",
                |me, req| {
                    let template = req.launch_template().cloned();
                    me.edit_nodegroup(req.nodegroup_name().unwrap_or_default(), |g| {
                        g.launch_template = template;
                        g.status = Some(NodegroupStatus::Updating);
                    });
                    R::Output(
                        update_nodegroup_version::UpdateNodegroupVersionOutput::builder().build(),
                    )
                }
            ),
            answer!(
                self,
                Client::delete_nodegroup,
                "eks:DeleteNodegroup",
                |me, req| {
                    me.edit_nodegroup(req.nodegroup_name().unwrap_or_default(), |g| {
                        g.status = Some(NodegroupStatus::Deleting)
                    });
                    R::Output(delete_nodegroup::DeleteNodegroupOutput::builder().build())
                }
            ),
        ]
    }
}
