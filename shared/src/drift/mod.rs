//! Drift: what changed on a platform behind Tenantry's back, and what a check did about it.
//!
//! A check (workflow `drift-check`, see `statemachine/drift-check.asl.json`) runs every phase's
//! `observe` (read-only, enforced by the clients), hands the observations to the `drift`
//! function ([`crate::functions::drift`]), which classifies and records them ([`report`]) and
//! names the phase invocations that repair what the [`policy`] allows; the workflow runs those
//! phases' `ensure`, observes again, and the `drift` function confirms each repair.

pub mod policy;
pub mod report;

pub use policy::{Policy, RemediateRequest};
pub use report::{
    classify, differences, remediations, Difference, DriftAction, DriftClass, DriftReport,
    DriftResult, DriftSummary, Remediation,
};
