//! The resource catalogue: every kind of resource Tenantry manages, described once.
//!
//! [`Kind`] is the one vocabulary (`ec2:vpc`, `eks:addon`, `k8s:network-policy`...) that the
//! plan, the inventory, `tenantry status`, the result events and the decommission census share.

pub mod fargate_profile;
mod kind;
pub mod repository;

pub use kind::{Kind, KindInfo, KINDS};
