//! Admission of platform requests: a provision or update records its spec (an update needs a
//! platform that exists and was not decommissioned), a decommission needs a platform to remove;
//! then the platform's lifecycle state becomes `Provisioning`, `Updating` or `Decommissioning`.

use super::{invalid, refused, Refusal};
use crate::error::{ErrorType, FunctionError};
use crate::events::RequestKind;
use crate::functions::intake::envelope::Request;
use crate::functions::intake::Intake;
use crate::spec::PlatformSpec;
use crate::store::{LastError, LifecycleState, PlatformStatus, StoreError};
use crate::validate::Issue;

/// Why a request cannot change a field a platform keeps for life, if it asks to (`stored`: the
/// recorded spec):
/// - the CNI: the cluster is created with or without EKS's own VPC CNI
///   (`bootstrapSelfManagedAddons`, fixed at creation), pods hold addresses of the old network,
///   and with the VPC CNI the pod CIDR is the VPC's, with Calico it is not;
/// - the region and the target account (`targetRoleArn`): every resource lives there, and a
///   change would build a second platform beside the first and leave the first unmanaged.
fn fixed_field_change(stored: &serde_json::Value, spec: &PlatformSpec) -> Option<String> {
    let before: PlatformSpec = serde_json::from_value(stored.clone()).ok()?;
    let show = |v: serde_json::Value| match v {
        serde_json::Value::Null => "none".to_owned(),
        v => v.to_string(),
    };
    let fields: [(&str, serde_json::Value, serde_json::Value, &str); 3] = [
        (
            "$.cni",
            json(&before.cni),
            json(&spec.cni),
            "the cluster and its pods' network are built for it",
        ),
        (
            "$.region",
            json(&before.region),
            json(&spec.region),
            "every resource of the platform lives there",
        ),
        (
            "$.targetRoleArn",
            json(&before.target_role_arn),
            json(&spec.target_role_arn),
            "every resource of the platform lives in that role's account",
        ),
    ];
    fields
        .into_iter()
        .find(|(_, b, a, _)| b != a)
        .map(|(path, b, _, why)| {
            format!(
            "{path}: the platform has {} and it cannot change ({why}): keep {}, or decommission \
             the platform and provision it again",
            show(b.clone()),
            show(b)
        )
        })
}

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

impl Intake<'_> {
    pub(super) async fn admit_platform(
        &self,
        request: &Request,
        spec: Option<&PlatformSpec>,
    ) -> Result<(), Refusal> {
        match spec {
            Some(spec) => {
                self.check_target_account(spec)?;
                self.record_spec(request, spec).await?
            }
            None => self.check_decommissionable(request).await?,
        }
        let target = match request.kind {
            RequestKind::PlatformUpdate => LifecycleState::Updating,
            RequestKind::PlatformDecommission => LifecycleState::Decommissioning,
            _ => LifecycleState::Provisioning,
        };
        self.set_state(&request.platform_id, target, None).await?;
        Ok(())
    }

    /// Stores the desired spec unless it is already the stored one; an update needs a platform
    /// that exists and was not decommissioned.
    async fn record_spec(&self, request: &Request, spec: &PlatformSpec) -> Result<(), Refusal> {
        let platform = &request.platform_id;
        let value = serde_json::to_value(spec).map_err(|e| {
            FunctionError::new(ErrorType::Terminal, format!("spec not serialisable: {e}"))
        })?;
        for attempt in 0..2 {
            let current = self
                .store
                .get_spec(platform)
                .await
                .map_err(FunctionError::from)?;
            if request.kind == RequestKind::PlatformUpdate {
                self.check_updatable(platform, current.is_some()).await?;
            }
            if let Some(message) = current
                .as_ref()
                .and_then(|c| fixed_field_change(&c.value, spec))
            {
                if self.lifecycle(platform).await? != Some(LifecycleState::Decommissioned) {
                    return Err(invalid(message));
                }
            }
            if current.as_ref().is_some_and(|c| c.value == value) {
                return Ok(());
            }
            match self
                .store
                .put_spec(platform, &value, current.map(|c| c.version))
                .await
            {
                Ok(_) => return Ok(()),
                Err(StoreError::VersionConflict { .. }) if attempt == 0 => continue,
                Err(e) => return Err(FunctionError::from(e).into()),
            }
        }
        Ok(())
    }

    /// A `targetRoleArn` must name an account this Tenantry may build in: any account whose role
    /// trusts Tenantry would otherwise be open to every platform requester.
    fn check_target_account(&self, spec: &PlatformSpec) -> Result<(), Refusal> {
        let Some(role) = &spec.target_role_arn else {
            return Ok(());
        };
        let account = crate::aws::target::account_of(role).unwrap_or_default();
        if self.deps.target_accounts.iter().any(|a| a == account) {
            return Ok(());
        }
        let allowed = match self.deps.target_accounts.as_slice() {
            [] => "none (only Tenantry's own account)".to_owned(),
            some => some.join(", "),
        };
        Err(refused(
            ErrorType::InvalidRequest,
            vec![Issue::new(
                "$.targetRoleArn",
                crate::validate::rules::TARGET_ACCOUNT,
                format!(
                    "account {account} is not one this Tenantry may build platforms in (its \
                     TargetAccountIds: {allowed}): ask its operators to add it, or leave \
                     targetRoleArn out"
                ),
            )],
        ))
    }

    async fn check_updatable(&self, platform: &str, has_spec: bool) -> Result<(), Refusal> {
        let state = self.lifecycle(platform).await?;
        if !has_spec || state == Some(LifecycleState::Decommissioned) {
            return Err(invalid(format!("platform {platform:?} does not exist (or was decommissioned): provision it instead of updating it")));
        }
        Ok(())
    }

    async fn check_decommissionable(&self, request: &Request) -> Result<(), Refusal> {
        let platform = &request.platform_id;
        let has_spec = self
            .store
            .get_spec(platform)
            .await
            .map_err(FunctionError::from)?
            .is_some();
        let state = self.lifecycle(platform).await?;
        if !has_spec || state == Some(LifecycleState::Decommissioned) {
            return Err(invalid(format!("platform {platform:?} does not exist or is already decommissioned: nothing to decommission")));
        }
        Ok(())
    }

    /// Sets the platform's lifecycle state (and last error) unless already so; retries once on a
    /// version conflict (a phase may be recording its status at the same time).
    pub(in crate::functions::intake) async fn set_state(
        &self,
        platform: &str,
        state: LifecycleState,
        last_error: Option<LastError>,
    ) -> Result<(), FunctionError> {
        for attempt in 0..2 {
            let current = self.store.get_status(platform).await?;
            let mut status = current
                .as_ref()
                .map(|c| c.value.clone())
                .unwrap_or_else(|| PlatformStatus::new(state));
            if current.is_some() && status.state == state && status.last_error == last_error {
                return Ok(());
            }
            status.state = state;
            status.last_error = last_error.clone();
            match self
                .store
                .update_status(platform, &status, current.map(|c| c.version))
                .await
            {
                Ok(_) => return Ok(()),
                Err(StoreError::VersionConflict { .. }) if attempt == 0 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_platform_keeps_its_cni_region_and_account() {
        let text = include_str!("../../../../../examples/platform.json");
        let vpc_cni = crate::validate::parse_platform(text).expect("example");
        let stored = serde_json::to_value(&vpc_cni).expect("json");
        assert_eq!(fixed_field_change(&stored, &vpc_cni), None);
        let mut calico = vpc_cni.clone();
        calico.cni = crate::spec::Cni::Calico;
        let message = fixed_field_change(&stored, &calico).expect("refused");
        assert!(
            message.starts_with("$.cni: the platform has \"vpc-cni\" and it cannot change"),
            "{message}"
        );
        let stored_calico = serde_json::to_value(&calico).expect("json");
        assert!(fixed_field_change(&stored_calico, &vpc_cni).is_some());

        let mut moved = vpc_cni.clone();
        moved.region = "eu-west-1".to_owned();
        let message = fixed_field_change(&stored, &moved).expect("refused");
        assert!(message.starts_with("$.region: "), "{message}");
        let mut elsewhere = vpc_cni.clone();
        elsewhere.target_role_arn = Some("arn:aws:iam::210987654321:role/tenantry".to_owned());
        let message = fixed_field_change(&stored, &elsewhere).expect("refused");
        assert!(
            message.starts_with("$.targetRoleArn: the platform has none and it cannot change"),
            "{message}"
        );
    }
}
