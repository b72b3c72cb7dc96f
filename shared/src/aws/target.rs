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
        .sts()
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
    use aws_credential_types::Credentials;

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

    /// Deps whose STS answers AssumeRole with a session of `role` (and records what was asked),
    /// presenting external id `tenantry-local`.
    fn deps_assuming(asked: std::sync::Arc<std::sync::Mutex<Vec<String>>>) -> Deps {
        use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor};
        let rule = mock!(aws_sdk_sts::Client::assume_role).then_output(move || {
            aws_sdk_sts::operation::assume_role::AssumeRoleOutput::builder()
                .credentials(
                    aws_sdk_sts::types::Credentials::builder()
                        .access_key_id("ASIATARGET")
                        .secret_access_key("secret")
                        .session_token("token")
                        .expiration(aws_smithy_types::DateTime::from_secs(4_000_000_000))
                        .build()
                        .expect("credentials"),
                )
                .build()
        });
        let recorded = asked.clone();
        let record = mock!(aws_sdk_sts::Client::assume_role)
            .match_requests(move |r| {
                recorded.lock().unwrap().push(format!(
                    "{} {} {} {:?}",
                    r.role_arn().unwrap_or_default(),
                    r.role_session_name().unwrap_or_default(),
                    r.external_id().unwrap_or_default(),
                    r.duration_seconds()
                ));
                false
            })
            .then_output(|| unreachable!());
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::Config::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(Credentials::new("home", "home", None, None, "test"))
                .http_client(create_mock_http_client())
                .interceptor(
                    MockResponseInterceptor::new()
                        .rule_mode(aws_smithy_mocks::RuleMode::MatchAny)
                        .with_rule(&record)
                        .with_rule(&rule),
                )
                .build(),
        );
        let aws = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        let home = Deps::new(aws, "tenantry");
        let clients = home.clients.clone().with_client(sts);
        home.with_clients(clients)
            .with_account_id("123456789012")
            .with_role_boundary(crate::aws::LOCAL_ROLE_BOUNDARY_ARN)
            .with_external_id("tenantry-local")
    }

    #[tokio::test]
    async fn a_platform_with_a_target_role_gets_a_session_in_its_account() {
        let asked = std::sync::Arc::default();
        let home = deps_assuming(std::sync::Arc::clone(&asked));
        let mut spec: crate::spec::PlatformSpec =
            serde_json::from_str(include_str!("../../../examples/platform.json")).expect("example");
        let role = "arn:aws:iam::210987654321:role/tenantry/tenantry-target";
        spec.target_role_arn = Some(role.to_owned());

        let target = home.for_platform(&spec, "network").await.expect("assumed");
        assert_eq!(
            *asked.lock().unwrap(),
            vec![format!(
                "{role} tenantry-network-{} tenantry-local Some(3600)",
                spec.id
            )]
        );
        assert_eq!(target.account_id().await.unwrap(), "210987654321");
        assert_eq!(
            target.role_boundary_arn.as_deref(),
            Some("arn:aws:iam::210987654321:policy/tenantry/tenantry-role-boundary")
        );
        assert_eq!(target.table_name, "tenantry");
        let creds = target
            .aws
            .credentials_provider()
            .expect("the session's credentials");
        use aws_credential_types::provider::ProvideCredentials;
        let creds = creds.provide_credentials().await.unwrap();
        assert_eq!(creds.access_key_id(), "ASIATARGET");
        // That the store's client keeps Tenantry's own credentials shows on the local stack
        // (tests/it/cross_account.rs): the platform is found in the target account, its records
        // in Tenantry's table.

        // Without a target role, the same dependencies and no call.
        spec.target_role_arn = None;
        let same = home.for_platform(&spec, "network").await.unwrap();
        assert_eq!(same.account_id().await.unwrap(), "123456789012");
        assert_eq!(asked.lock().unwrap().len(), 1);
    }

    #[test]
    fn session_names_fit_sts() {
        let name = session_name(&"p".repeat(80), "nodegroups");
        assert_eq!(name.len(), 64);
        assert!(name.starts_with("tenantry-nodegroups-ppp"));
    }
}
