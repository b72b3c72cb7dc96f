//! Platforms in other accounts. A platform whose spec names `targetRoleArn` is built, observed
//! and deleted in that role's account: each invocation working on it assumes the role once
//! ([`crate::deps::Deps::for_platform`]), presenting Tenantry's external id, and uses the
//! session for every AWS call but the state store's. `infra/target-account-role.yaml` is the
//! role a target account deploys.

use std::time::SystemTime;

use aws_credential_types::Credentials;

use crate::deps::{Deps, EXTERNAL_ID_ENV};
use crate::error::{ErrorType, FunctionError};

/// The session's lifetime. Assuming a role from a Lambda function's own role session is role
/// chaining, which AWS caps at one hour; one invocation lasts at most 15 minutes.
const SESSION_SECONDS: i32 = 3600;

/// A session in a target account.
pub struct Session {
    pub account: String,
    pub credentials: Credentials,
}

/// Assumes `role` for work on `platform` (`purpose`: the phase), with the external id of
/// `deps`. A failure names the role and what to check; it is terminal, as retrying changes
/// nothing until the target account's trust policy does.
pub async fn assume(
    deps: &Deps,
    role: &str,
    platform: &str,
    purpose: &str,
) -> Result<Session, FunctionError> {
    let terminal = |m: String| FunctionError::new(ErrorType::Terminal, m);
    let account = account_of(role)
        .ok_or_else(|| terminal(format!("targetRoleArn {role:?} names no account")))?;
    let external_id = deps.external_id.as_deref().ok_or_else(|| {
        terminal(format!(
            "platform {platform:?} names targetRoleArn {role}, and this Tenantry has no external \
             id to assume it with (${EXTERNAL_ID_ENV}, the template's TargetExternalId)"
        ))
    })?;
    let out = deps
        .clients
        .sts
        .assume_role()
        .role_arn(role)
        .role_session_name(session_name(platform, purpose))
        .external_id(external_id)
        .duration_seconds(SESSION_SECONDS)
        .send()
        .await
        .map_err(|e| {
            let e = crate::phases::aws_error("sts:AssumeRole", e);
            match e.error_type {
                ErrorType::Retryable => e,
                _ => terminal(format!(
                    "could not assume targetRoleArn {role} for platform {platform:?}: {}. The \
                     role must exist (infra/target-account-role.yaml), trust this function's \
                     role and require this Tenantry's external id",
                    e.error_message
                )),
            }
        })?;
    let c = out
        .credentials()
        .ok_or_else(|| terminal(format!("sts:AssumeRole of {role} returned no credentials")))?;
    Ok(Session {
        account: account.to_owned(),
        credentials: Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            SystemTime::try_from(*c.expiration()).ok(),
            "tenantry-target-role",
        ),
    })
}

/// The account of an IAM ARN (`arn:P:iam::ACCOUNT:...`).
pub fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// `arn` with its account replaced: Tenantry's role boundary, as the target account has it
/// (same path and name, deployed by `infra/target-account-role.yaml`).
pub fn in_account(arn: &str, account: &str) -> String {
    let mut parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() == 6 {
        parts[4] = account;
    }
    parts.join(":")
}

/// `tenantry-<purpose>-<platform>`, cut to STS's 64 characters. Platform ids and phase names
/// only hold characters STS allows (`[\w+=,.@-]`).
fn session_name(platform: &str, purpose: &str) -> String {
    let mut name = format!("tenantry-{purpose}-{platform}");
    name.truncate(64);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boundary_moves_to_the_target_account() {
        assert_eq!(
            in_account(
                "arn:aws:iam::123456789012:policy/tenantry/tenantry-role-boundary",
                "210987654321"
            ),
            "arn:aws:iam::210987654321:policy/tenantry/tenantry-role-boundary"
        );
        assert_eq!(
            account_of("arn:aws:iam::210987654321:role/tenantry/target"),
            Some("210987654321")
        );
        assert_eq!(account_of("arn:aws:iam:::role/x"), None);
    }

    #[tokio::test]
    async fn a_target_role_without_an_external_id_is_refused_before_any_call() {
        let aws = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        let deps = Deps::new(aws, "tenantry");
        let role = "arn:aws:iam::210987654321:role/tenantry/tenantry-target";
        let Err(e) = assume(&deps, role, "payments", "network").await else {
            panic!("assumed without an external id");
        };
        assert_eq!(e.error_type, ErrorType::Terminal);
        assert!(
            e.error_message.contains("no external id") && e.error_message.contains(EXTERNAL_ID_ENV),
            "{}",
            e.error_message
        );
    }

    #[test]
    fn session_names_fit_sts() {
        let name = session_name(&"p".repeat(80), "nodegroups");
        assert_eq!(name.len(), 64);
        assert!(name.starts_with("tenantry-nodegroups-ppp"));
    }
}
