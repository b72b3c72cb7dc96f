//! The resource catalogue: every kind of resource Tenantry manages, described once.
//!
//! [`Kind`] is the one vocabulary (`ec2:vpc`, `eks:addon`, `k8s:network-policy`...) that the
//! plan, the inventory, `tenantry status`, the result events and the decommission census share.

pub mod fargate_profile;
mod kind;
pub mod log_group;
pub mod repository;

pub use kind::{Kind, KindInfo, KINDS};

use serde_json::Value;

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

impl Difference {
    pub fn new(field: &'static str, desired: Value, actual: Value) -> Difference {
        Difference {
            field,
            desired,
            actual,
        }
    }
}
