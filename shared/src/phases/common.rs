//! Helpers every phase shares: EC2 tagging, "already gone is success" deletes, EKS health.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::FunctionError;
use crate::phases::aws_error;

/// EC2 tags from a map.
pub fn ec2_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// `TagSpecifications` entry tagging a resource of `kind` at creation.
/// The EC2 filter on the `tenantry:platform` tag of `platform_id`.
pub fn platform_filter(platform_id: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(format!("tag:{}", crate::naming::TAG_PLATFORM))
        .values(platform_id)
        .build()
}

/// Whether EC2 `tags` carry the `tenantry:platform` tag of `platform_id`: describe calls filter
/// on it, and their results are checked again with this (not every emulator filters by tag).
pub fn is_platforms(tags: &[Tag], platform_id: &str) -> bool {
    tags.iter()
        .any(|t| t.key() == Some(crate::naming::TAG_PLATFORM) && t.value() == Some(platform_id))
}

/// The items of a describe call that carry the platform's tag: the call filters on it
/// ([`platform_filter`]), and this checks again, since not every emulator filters by tag.
pub fn platforms<T: Clone>(items: &[T], tags: impl Fn(&T) -> &[Tag], platform_id: &str) -> Vec<T> {
    let ours = |item: &&T| is_platforms(tags(item), platform_id);
    items.iter().filter(ours).cloned().collect()
}

pub fn tag_spec(kind: ResourceType, tags: &BTreeMap<String, String>) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(ec2_tags(tags)))
        .build()
}

/// The service error code of an SDK error.
pub fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    err.as_service_error().and_then(|e| e.code())
}

/// "Already gone" codes: `*.NotFound`, `ResourceNotFoundException`, and the attachment ones.
pub fn is_gone_code(code: &str) -> bool {
    code.ends_with(".NotFound")
        || code.ends_with(".NotFoundException")
        || code == "ResourceNotFoundException"
        || code == "Gateway.NotAttached"
        || code == "InvalidAddress.NotFound"
}

/// Outcome of a delete call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Deleted now.
    Done,
    /// It was already gone.
    Gone,
    /// EC2 refused with `DependencyViolation` (something that uses it is still going away).
    Blocked,
}

/// Maps the result of a delete call: "already gone" is success, `DependencyViolation` means
/// "not yet", anything else fails.
pub fn removal<T, E, R>(
    operation: &str,
    result: Result<T, SdkError<E, R>>,
) -> Result<Removal, FunctionError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(Removal::Done),
        Err(e) => match error_code(&e) {
            Some(code) if is_gone_code(code) => Ok(Removal::Gone),
            Some("DependencyViolation") => Ok(Removal::Blocked),
            _ => Err(aws_error(operation, e)),
        },
    }
}

/// Whether the EKS cluster exists and its API can be reached (ACTIVE or UPDATING): deleting what
/// lives inside a cluster is pointless once the cluster itself is going away.
pub async fn cluster_reachable(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
) -> Result<bool, FunctionError> {
    use aws_sdk_eks::types::ClusterStatus;
    match eks.describe_cluster().name(cluster).send().await {
        Ok(out) => Ok(out
            .cluster()
            .and_then(|c| c.status())
            .is_some_and(|s| matches!(s, ClusterStatus::Active | ClusterStatus::Updating))),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(aws_error("DescribeCluster", e)),
    }
}

/// EKS health issues (of a node group or an add-on) as one line: `code: message; ...`.
pub(crate) fn health_issues<'a>(
    issues: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> String {
    let issues: Vec<String> = issues
        .map(|(code, message)| format!("{}: {}", code.unwrap_or("?"), message.unwrap_or_default()))
        .collect();
    if issues.is_empty() {
        "no health issue reported".to_owned()
    } else {
        issues.join("; ")
    }
}
