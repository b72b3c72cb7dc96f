//! Admission of tenant requests: the platform must exist and be Active; the tenant record is
//! written through the store's tenant transitions (see `TenantTransition` in `store/types.rs`).
//! Onboarding records the tenant (`Request`), checks it again against concurrent onboardings
//! (write, then read) and moves it on (`StartOnboarding`), or withdraws it (`Withdraw`);
//! offboarding moves an Active or Failed tenant to `Offboarding` (`StartOffboarding`).

use super::conflicts::onboarding_issues;
use super::{conflict, invalid, refused, Refusal};
use crate::error::{ErrorType, FunctionError};
use crate::events::TenantRequest;
use crate::functions::intake::envelope::Request;
use crate::functions::intake::Intake;
use crate::spec::{PlatformSpec, TenantSpec};
use crate::store::{
    LifecycleState, OffboardOptions, StoreError, TenantRecord, TenantState, TenantTransition,
    Versioned,
};

impl Intake<'_> {
    /// Records a tenant to onboard (`Requested`), checks it again against concurrent
    /// onboardings, and moves it to `Onboarding`. A redelivery finds its own record and carries
    /// on.
    pub(super) async fn admit_onboarding(
        &self,
        request: &Request,
        detail: &TenantRequest,
    ) -> Result<(), Refusal> {
        let platform = self.active_platform(request).await?;
        let Some(tenant) = &detail.tenant else {
            return Err(invalid("an onboard request needs `tenant`".to_owned()));
        };
        let (platform_id, id, name) = (&request.platform_id, &request.request_id, &tenant.name);
        let records = self.tenant_records(platform_id).await?;
        let existing = records.iter().find(|r| &r.value.name == name);
        let mine = existing.filter(|r| &r.value.request_id == id);
        if let Some(mine) = mine.filter(|r| r.value.state != TenantState::Requested) {
            tracing::info!(tenant = %name, state = %mine.value.state, "tenant recorded by an earlier delivery");
            return Ok(());
        }
        check(&platform, &records, tenant, id, ErrorType::InvalidRequest)?;
        let (version, replaced) = match mine {
            Some(mine) => (mine.version, None),
            None => (self.request(request, tenant, existing).await?, existing),
        };
        // Recorded: check again against every tenant recorded meanwhile.
        let records = self.tenant_records(platform_id).await?;
        if let Err(refusal) = check(&platform, &records, tenant, id, ErrorType::Conflict) {
            self.store
                .withdraw_tenant(platform_id, name, version, replaced)
                .await
                .map_err(FunctionError::from)?;
            return Err(refusal);
        }
        let start = TenantTransition::StartOnboarding;
        self.store
            .move_tenant(platform_id, name, id, start, None)
            .await
            .map_err(FunctionError::from)?;
        Ok(())
    }

    /// Moves an Active or Failed tenant to `Offboarding` with the request's options. A tenant of
    /// the platform's spec without a record (onboarded by the provision workflow) counts as
    /// Active.
    pub(super) async fn admit_offboarding(
        &self,
        request: &Request,
        detail: &TenantRequest,
    ) -> Result<(), Refusal> {
        let platform = self.active_platform(request).await?;
        let Some(name) = detail.tenant_name.as_deref() else {
            return Err(invalid("an offboard request needs `tenantName`".to_owned()));
        };
        let platform_id = &request.platform_id;
        let current = self
            .store
            .get_tenant_record(platform_id, name)
            .await
            .map_err(FunctionError::from)?;
        let Some((record, version)) = offboardable(&platform, request, name, current)? else {
            return Ok(());
        };
        let options = OffboardOptions {
            retain_data: detail.retain_data(),
            schedule_key_deletion: detail.schedule_key_deletion(),
        };
        let id = &request.request_id;
        match self
            .store
            .start_offboarding(platform_id, record, version, id, options)
            .await
        {
            Ok(_) => Ok(()),
            Err(StoreError::VersionConflict { .. }) => Err(conflict(format!(
                "tenant {name:?} of platform {platform_id:?} was changed by another request at \
                 the same time; send this request again (with a new request id) once that one \
                 has finished"
            ))),
            Err(e) => Err(FunctionError::from(e).into()),
        }
    }

    /// The platform of a tenant request: it must exist and be Active.
    async fn active_platform(&self, request: &Request) -> Result<PlatformSpec, Refusal> {
        let platform = &request.platform_id;
        let Some(spec) = self
            .store
            .get_spec(platform)
            .await
            .map_err(FunctionError::from)?
        else {
            return Err(invalid(format!(
                "platform {platform:?} does not exist: provision it before onboarding or \
                 offboarding tenants"
            )));
        };
        let state = self.lifecycle(platform).await?;
        if !state.is_some_and(LifecycleState::is_active) {
            let state = state.map_or_else(|| "not provisioned".to_owned(), |s| format!("{s:?}"));
            return Err(invalid(format!(
                "platform {platform:?} is {state}, not Active: tenants are onboarded and \
                 offboarded only on an Active platform"
            )));
        }
        serde_json::from_value(spec.value).map_err(|e| {
            Refusal::Error(FunctionError::new(
                ErrorType::Terminal,
                format!("the stored spec of platform {platform:?} cannot be read: {e}"),
            ))
        })
    }

    async fn tenant_records(
        &self,
        platform_id: &str,
    ) -> Result<Vec<Versioned<TenantRecord>>, FunctionError> {
        Ok(self.store.list_tenant_records(platform_id).await?)
    }

    /// Records the tenant as `Requested` for the request (replacing `existing`, an offboarded
    /// record of that name); returns the record's version.
    async fn request(
        &self,
        request: &Request,
        tenant: &TenantSpec,
        existing: Option<&Versioned<TenantRecord>>,
    ) -> Result<u64, Refusal> {
        let (platform_id, id, name) = (&request.platform_id, &request.request_id, &tenant.name);
        match self
            .store
            .request_tenant(platform_id, tenant, id, existing)
            .await
        {
            Ok(version) => Ok(version),
            Err(StoreError::VersionConflict { .. }) => Err(conflict(format!(
                "tenant {name:?} of platform {platform_id:?} was recorded by another request at \
                 the same time; send this request again (with a new request id) if the tenant is \
                 still wanted"
            ))),
            Err(e) => Err(FunctionError::from(e).into()),
        }
    }
}

/// The onboarding checks of `tenant` against `records`, refused as `error_type` if any fails.
fn check(
    platform: &PlatformSpec,
    records: &[Versioned<TenantRecord>],
    tenant: &TenantSpec,
    request_id: &str,
    error_type: ErrorType,
) -> Result<(), Refusal> {
    let issues = onboarding_issues(platform, records, tenant, request_id);
    if issues.is_empty() {
        Ok(())
    } else {
        Err(refused(error_type, issues))
    }
}

/// The record to move to `Offboarding` and the version it was read at; `None` when an earlier
/// delivery of this request already moved it.
fn offboardable(
    platform: &PlatformSpec,
    request: &Request,
    name: &str,
    current: Option<Versioned<TenantRecord>>,
) -> Result<Option<(TenantRecord, Option<u64>)>, Refusal> {
    let (platform_id, id) = (&request.platform_id, &request.request_id);
    let Some(current) = current else {
        return match platform.tenants.iter().find(|t| t.name == name) {
            Some(spec) => {
                let record = TenantRecord::new(spec.clone(), TenantState::Active, String::new());
                Ok(Some((record, None)))
            }
            None => Err(invalid(format!(
                "tenant {name:?} does not exist on platform {platform_id:?}: nothing to offboard"
            ))),
        };
    };
    let state = current.value.state;
    if &current.value.request_id == id {
        tracing::info!(tenant = %name, %state, "tenant recorded by an earlier delivery");
        Ok(None)
    } else if TenantTransition::StartOffboarding.allows(Some(state)) {
        Ok(Some((current.value, Some(current.version))))
    } else if state.in_progress() {
        Err(conflict(format!(
            "tenant {name:?} of platform {platform_id:?} is {state} (request {:?}): send this \
             request again (with a new request id) once that one has finished",
            current.value.request_id
        )))
    } else {
        Err(invalid(format!(
            "tenant {name:?} of platform {platform_id:?} is already offboarded"
        )))
    }
}
