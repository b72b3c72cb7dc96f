//! Admission of compliance sweeps: the platform must exist and be active (`Active` or
//! `Drifted`). Nothing is recorded and the execution's input carries nothing beyond the request's
//! own fields: the `compliance` function reads the spec and the live state itself.

use super::{invalid, Refusal};
use crate::error::FunctionError;
use crate::functions::intake::envelope::Request;
use crate::functions::intake::Intake;

impl Intake<'_> {
    /// Checks the platform: it exists and its provision or update has finished.
    pub(super) async fn admit_compliance(&self, request: &Request) -> Result<(), Refusal> {
        let platform = &request.platform_id;
        let exists = self
            .store
            .get_spec(platform)
            .await
            .map_err(FunctionError::from)?
            .is_some();
        if !exists {
            return Err(invalid(format!(
                "platform {platform:?} does not exist: there is nothing to sweep for compliance"
            )));
        }
        let state = self.lifecycle(platform).await?;
        if !state.is_some_and(|s| s.is_active()) {
            let state = state.map_or_else(|| "not provisioned".to_owned(), |s| format!("{s:?}"));
            return Err(invalid(format!(
                "platform {platform:?} is {state}: compliance is swept only on an Active (or \
                 Drifted) platform, once its provision or update has finished"
            )));
        }
        Ok(())
    }
}
