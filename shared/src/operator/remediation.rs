//! The fleet-wide remediation pause (`tenantry remediation pause | resume | show`), the first
//! step of the drift-storm runbook (`docs/runbooks/drift-storm.md`).
//!
//! While paused, every drift check runs report-only: intake admits it without the platform's
//! lease and its `assess` step lists no repair (see `store::control`). Checks still run and
//! report; platform and tenant requests are not affected.

use crate::deps::Deps;
use crate::error::FunctionError;
use crate::store::{Paused, RemediationPause, Store, StoreError};

/// Why an operator's pause was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum PauseError {
    #[error("--reason must say why remediation is paused (e.g. a ticket); it is empty")]
    NoReason,
    #[error("who is pausing cannot be told (STS GetCallerIdentity): {0}")]
    Principal(FunctionError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Pauses remediation fleet-wide with `reason`, recorded with the caller's principal. Pausing
/// when already paused keeps the first pause and says so.
pub async fn pause(deps: &Deps, reason: &str) -> Result<Paused, PauseError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(PauseError::NoReason);
    }
    let store = Store::from_deps(deps);
    let pause = RemediationPause {
        reason: reason.to_owned(),
        paused_by: deps.principal_arn().await.map_err(PauseError::Principal)?,
        paused_at: store.now(),
    };
    Ok(store.pause_remediation(&pause).await?)
}

/// Lifts the pause; returns the one lifted (`None`: remediation was not paused).
pub async fn resume(deps: &Deps) -> Result<Option<RemediationPause>, StoreError> {
    Store::from_deps(deps).resume_remediation().await
}

/// The pause, if remediation is paused.
pub async fn show(deps: &Deps) -> Result<Option<RemediationPause>, StoreError> {
    Store::from_deps(deps).get_remediation_pause().await
}
