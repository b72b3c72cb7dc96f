//! Container image repositories (Amazon ECR) of a platform or of one tenant.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The most repositories a platform may have.
pub const MAX_PLATFORM_REPOSITORIES: usize = 20;
/// The most repositories a tenant may have.
pub const MAX_TENANT_REPOSITORIES: usize = 10;
/// Images a repository keeps when the request does not say.
pub const DEFAULT_KEEP_IMAGES: u16 = 30;
/// The most images a repository's lifecycle policy may keep.
pub const MAX_KEEP_IMAGES: u16 = 1000;

fn default_keep_images() -> u16 {
    DEFAULT_KEEP_IMAGES
}

/// An ECR repository: encrypted with the platform's (or the tenant's own) KMS key, scanned on
/// push, its tags immutable unless asked otherwise, its old images expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepositorySpec {
    /// The repository's name under the platform's path (`tenantry/<id>-<environment>/<name>`) or the
    /// tenant's (`tenantry/<id>-<environment>/<tenant>/<name>`): 2 to 64 lowercase letters and digits,
    /// in groups separated by a single `.`, `_` or `-`. Required.
    #[schemars(length(min = 2, max = 64), pattern(r"^[a-z0-9]+([._-][a-z0-9]+)*$"))]
    pub name: String,
    /// Let a tag be pushed again onto another image. Default: `false`: a tag, once pushed,
    /// always names the image that was scanned and deployed.
    #[serde(default)]
    pub mutable_tags: bool,
    /// How many images to keep: the lifecycle policy expires older ones. 1 to 1000. Default: 30.
    #[serde(default = "default_keep_images")]
    #[schemars(range(min = 1, max = 1000))]
    pub keep_images: u16,
}
