//! Compliance: a catalogue of controls evaluated from a platform's live state.
//!
//! A sweep reads the platform's AWS and Kubernetes state once ([`gather`], read-only clients),
//! evaluates every control of the [`catalogue`] against that snapshot (pure functions, unit-tested
//! without any service), and records the results with their evidence ([`report`]). Nothing is
//! judged from the request alone: the spec only says what the platform was asked to be (its
//! admins, its tenants, its compliance profile), the state says what it is.

pub mod catalogue;
pub mod checks;
pub mod findings;
pub mod gather;
pub mod html;
pub mod live;
pub mod render;
pub mod report;

pub use catalogue::{Control, Mappings, CONTROLS};
pub use live::Live;
pub use report::{ComplianceReport, ComplianceSummary, ControlResult, Severity, Status};

#[cfg(test)]
mod tests;
