//! The resource catalogue: every kind of resource Tenantry manages, described once.
//!
//! [`Kind`] is the one vocabulary (`ec2:vpc`, `eks:addon`, `k8s:network-policy`...) that the
//! plan, the inventory, `tenantry status`, the result events and the decommission census share.

pub mod access_entry;
pub mod addon;
pub mod alarm;
pub mod bucket;
pub mod cluster;
pub mod fargate_profile;
pub mod flow_log;
pub mod identity_provider_config;
pub mod internet_gateway;
mod kind;
pub mod kms_key;
pub mod launch_template;
pub mod log_group;
pub mod nat_gateway;
pub mod nodegroup;
pub mod oidc_provider;
pub mod pod_identity_association;
pub mod pod_security_group;
pub mod repository;
pub mod role;
pub mod route_table;
pub mod secret;
pub mod security_group;
pub mod subnet;
pub mod topic;
pub mod vpc;
pub mod vpc_endpoint;

pub use kind::{Kind, KindInfo, KINDS};

use std::collections::BTreeMap;

use aws_smithy_async::future::pagination_stream::PaginationStream;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde_json::{json, Value};

use crate::error::FunctionError;

/// Every item of a listing of one EKS cluster's resources (`pages`: a paginator's items), or none
/// when the cluster does not exist (`cluster_gone`: the operation's "resource not found").
pub async fn cluster_listing<T, E, R>(
    mut pages: PaginationStream<Result<T, SdkError<E, R>>>,
    operation: &str,
    cluster_gone: impl Fn(&E) -> bool,
) -> Result<Vec<T>, FunctionError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let mut items = Vec::new();
    while let Some(item) = pages.next().await {
        match item {
            Ok(item) => items.push(item),
            Err(e) if e.as_service_error().is_some_and(&cluster_gone) => return Ok(Vec::new()),
            Err(e) => return Err(crate::phases::aws_error(operation, e)),
        }
    }
    Ok(items)
}

/// One owned field of a live resource that differs from what is desired.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    pub field: &'static str,
    pub desired: Value,
    pub actual: Value,
}

/// Whether a KMS key reference an API reports (`actual`: key id, key ARN, alias ARN) names the
/// key `desired` (a key ARN).
pub fn same_key(desired: &str, actual: &str) -> bool {
    desired == actual
        || desired
            .rsplit_once(":key/")
            .is_some_and(|(_, id)| id == actual || actual.ends_with(&format!(":key/{id}")))
}

/// The tags of `desired` that `actual` lacks or holds with another value (tags are only ever
/// added: foreign tags are left alone).
pub fn missing_tags(
    desired: &BTreeMap<String, String>,
    actual: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    desired
        .iter()
        .filter(|(k, v)| actual.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The differences of one resource, collected field by field.
#[derive(Debug, Default)]
pub struct Differences(pub Vec<Difference>);

impl Differences {
    /// Notes `field` unless it is the same.
    pub fn check(&mut self, field: &'static str, desired: Value, actual: Value, same: bool) {
        if !same {
            self.0.push(Difference::new(field, desired, actual));
        }
    }

    /// Notes `tags` when a tag Tenantry sets is missing or changed: desired the tags that differ,
    /// actual their live values. Tags others added are not a difference.
    pub fn tags(&mut self, desired: &BTreeMap<String, String>, actual: &BTreeMap<String, String>) {
        let missing = missing_tags(desired, actual);
        let live: BTreeMap<&String, Option<&String>> =
            missing.keys().map(|k| (k, actual.get(k))).collect();
        self.check("tags", json!(missing), json!(live), missing.is_empty());
    }
}

impl Difference {
    pub fn new(field: &'static str, desired: Value, actual: Value) -> Difference {
        Difference {
            field,
            desired,
            actual,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_eks::operation::list_nodegroups::{ListNodegroupsError, ListNodegroupsOutput};
    use aws_sdk_eks::types::error::{InvalidParameterException, ResourceNotFoundException};
    use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, RuleMode};

    /// An EKS client whose `ListNodegroups` answers from `rule`, without retries.
    fn eks_answering(rule: aws_smithy_mocks::Rule) -> aws_sdk_eks::Client {
        let config = aws_sdk_eks::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::for_tests())
            .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
            .http_client(create_mock_http_client())
            .interceptor(
                MockResponseInterceptor::new()
                    .rule_mode(RuleMode::MatchAny)
                    .with_rule(&rule),
            )
            .build();
        aws_sdk_eks::Client::from_conf(config)
    }

    #[tokio::test]
    async fn a_cluster_listing_reads_every_page_and_a_missing_cluster_lists_nothing() {
        let pages = mock!(aws_sdk_eks::Client::list_nodegroups)
            .sequence()
            .output(|| {
                ListNodegroupsOutput::builder()
                    .nodegroups("general")
                    .next_token("t")
                    .build()
            })
            .output(|| ListNodegroupsOutput::builder().nodegroups("spot").build())
            .build();
        let names = nodegroup::list(&eks_answering(pages), "c").await;
        assert_eq!(names.expect("listed"), ["general", "spot"]);

        let gone = mock!(aws_sdk_eks::Client::list_nodegroups).then_error(|| {
            ListNodegroupsError::ResourceNotFoundException(
                ResourceNotFoundException::builder().build(),
            )
        });
        let names = nodegroup::list(&eks_answering(gone), "c").await;
        assert_eq!(names.expect("none"), Vec::<String>::new());

        let refused = mock!(aws_sdk_eks::Client::list_nodegroups).then_error(|| {
            ListNodegroupsError::InvalidParameterException(
                InvalidParameterException::builder().message("bad").build(),
            )
        });
        let err = nodegroup::list(&eks_answering(refused), "c")
            .await
            .expect_err("any other error fails");
        assert!(err.to_string().contains("eks:ListNodegroups"), "{err}");
    }

    #[test]
    fn keys_compare_by_id_arn_or_both() {
        let arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab";
        assert!(same_key(arn, arn));
        assert!(same_key(arn, "1234abcd-12ab"));
        assert!(same_key(
            arn,
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab"
        ));
        assert!(!same_key(arn, "ffff"));
        assert!(!same_key(
            arn,
            "arn:aws:kms:us-east-1:111122223333:key/ffff"
        ));
        assert!(!same_key(arn, ""));
    }

    #[test]
    fn only_missing_or_changed_tags_are_added() {
        let desired: BTreeMap<String, String> = [("a", "1"), ("b", "2")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let actual: BTreeMap<String, String> = [("a", "1"), ("b", "9"), ("foreign", "x")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let missing = missing_tags(&desired, &actual);
        assert_eq!(missing.len(), 1);
        assert_eq!(missing["b"], "2");
        assert!(missing_tags(&desired, &desired).is_empty());
    }
}
