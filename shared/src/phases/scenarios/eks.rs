//! EKS clusters as the cluster phase uses them. Long operations are started by a call and end
//! when the scenario says time has passed ([`EksDouble::settle`]), as a poll would find them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_eks::operation::describe_cluster::DescribeClusterError;
use aws_sdk_eks::types::error::ResourceNotFoundException;
use aws_sdk_eks::types::{
    AccessConfigResponse, Certificate, Cluster, ClusterStatus, Identity, Oidc, VpcConfigResponse,
};
use aws_sdk_eks::Client;
use aws_smithy_mocks::{MockResponse as R, Rule};

use super::{answer, Calls, ACCOUNT};

pub const ENDPOINT: &str = "https://EXAMPLE.gr7.us-east-1.eks.amazonaws.com";
pub const ISSUER: &str = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE";

/// The clusters of one account and region.
#[derive(Clone, Default)]
pub struct EksDouble {
    clusters: Arc<Mutex<BTreeMap<String, Cluster>>>,
    calls: Calls,
}

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
    }

    /// Starts an update of the cluster: `change` now, UPDATING until [`EksDouble::settle`].
    fn update(&self, name: Option<&str>, change: impl FnOnce(&mut Cluster)) {
        self.edit(name.unwrap_or_default(), |c| {
            change(c);
            c.status = Some(ClusterStatus::Updating);
        });
    }

    pub fn rules(&self) -> Vec<Rule> {
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
}
