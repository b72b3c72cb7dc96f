//! AWS client configuration, loaded once per cold start.
//!
//! In AWS the standard provider chain applies. For the local stack the endpoint comes from
//! `TENANTRY_AWS_ENDPOINT` (or the SDK's own `AWS_ENDPOINT_URL`) and, when no credentials are
//! set, fixed test credentials are used: moto accepts any.

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use std::time::Duration;

/// Environment variable naming the local stack's endpoint (e.g. `http://127.0.0.1:4566`).
pub const ENDPOINT_ENV: &str = "TENANTRY_AWS_ENDPOINT";
/// Region used when none is configured.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Retry attempts (first call included) for throttling and transient errors, with exponential
/// backoff and jitter from the SDK's standard retry strategy.
pub const MAX_ATTEMPTS: u32 = 6;

fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(10))
}

/// Loads the configuration from the environment (provider chain), honouring [`ENDPOINT_ENV`].
pub async fn load_from_env() -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(retry_config());
    if let Ok(endpoint) = std::env::var(ENDPOINT_ENV) {
        loader = loader.endpoint_url(endpoint);
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            loader = loader.credentials_provider(test_credentials("testing"));
        }
        if std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        {
            loader = loader.region(Region::new(DEFAULT_REGION));
        }
    }
    loader.load().await
}

/// A configuration for a local endpoint with static test credentials. `access_key_id` lets the
/// local gateway attribute each call to the function invocation that made it.
pub async fn local(endpoint: &str, region: &str, access_key_id: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region.to_owned()))
        .credentials_provider(test_credentials(access_key_id))
        .retry_config(retry_config())
        .load()
        .await
}

fn test_credentials(access_key_id: &str) -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new(access_key_id, "testing", None, None, "tenantry-local")
}

/// The account id moto reports for any credentials (its default account).
pub const LOCAL_ACCOUNT_ID: &str = "123456789012";
/// The role Step Functions runs as on the local stack (moto does not check it).
pub const LOCAL_STATES_ROLE_ARN: &str = "arn:aws:iam::123456789012:role/tenantry-states";
/// The external id the local stack's functions present to target-account roles (the template's
/// `TargetExternalId`).
pub const LOCAL_EXTERNAL_ID: &str = "tenantry-local";
/// A second account of the local stack, for platforms built in a target account (moto keeps
/// state per account; the gateway routes a target role's sessions to it).
pub const LOCAL_TARGET_ACCOUNT_ID: &str = "210987654321";
/// The local stack's stand-in for the template's `TenantryRoleBoundary` (moto records a role's
/// boundary but does not evaluate it).
pub const LOCAL_ROLE_BOUNDARY_ARN: &str =
    "arn:aws:iam::123456789012:policy/tenantry/tenantry-role-boundary";

pub mod changes;
pub mod clients;
pub mod read_only;
pub mod target;

pub use clients::Clients;
