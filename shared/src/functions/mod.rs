//! Phase handlers: one async fn per Lambda function, taking typed input and [`Deps`].
//!
//! The binaries under `functions/` run them through lambda_runtime ([`lambda::run`]); the local
//! stack's gateway runs the very same handlers when Step Functions calls the Lambda Invoke API
//! ([`invoke`]). Either way errors leave as a stable [`ErrorType`](crate::error::ErrorType).

pub mod finalize;
pub mod intake;
pub mod lambda;
pub mod selftest;

use crate::error::{ErrorType, FunctionError};
use crate::phases::PhaseInput;
use crate::plan::Phase;
use crate::store::{PhaseState, PhaseStatus, Store};
use aws_config::SdkConfig;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Environment variable naming the DynamoDB state table.
pub const TABLE_ENV: &str = "TENANTRY_TABLE";
/// Table name used when [`TABLE_ENV`] is not set.
pub const DEFAULT_TABLE: &str = "tenantry";

/// What every handler may use: the AWS configuration (clients are built from it) and settings.
#[derive(Clone, Debug)]
pub struct Deps {
    pub aws: SdkConfig,
    pub table_name: String,
}

impl Deps {
    pub fn new(aws: SdkConfig, table_name: impl Into<String>) -> Self {
        Deps {
            aws,
            table_name: table_name.into(),
        }
    }

    /// Built once per cold start from the environment.
    pub async fn from_env() -> Self {
        let table = std::env::var(TABLE_ENV).unwrap_or_else(|_| DEFAULT_TABLE.to_owned());
        Deps::new(crate::aws::load_from_env().await, table)
    }
}

/// Names of every function Tenantry deploys (the Lambda function names, without any prefix).
pub const FUNCTION_NAMES: &[&str] = &[
    INTAKE,
    "network",
    "encryption",
    "identity",
    "cluster",
    "nodegroups",
    "addons",
    "bootstrap",
    "access",
    "observability",
    "tenant",
    FINALIZE,
    selftest::NAME,
];

pub const INTAKE: &str = "intake";
pub const FINALIZE: &str = "finalize";

/// Runs the named handler on a JSON payload.
pub async fn invoke(name: &str, payload: Value, deps: &Deps) -> Result<Value, FunctionError> {
    match name {
        INTAKE => respond(intake::handle(parse(payload)?, deps).await),
        FINALIZE => respond(finalize::handle(parse(payload)?, deps).await),
        "network" => phase(Phase::Network, payload, deps).await,
        "encryption" => phase(Phase::Encryption, payload, deps).await,
        "identity" => phase(Phase::Identity, payload, deps).await,
        "cluster" => phase(Phase::Cluster, payload, deps).await,
        "nodegroups" => phase(Phase::Nodegroups, payload, deps).await,
        "addons" => phase(Phase::Addons, payload, deps).await,
        "bootstrap" => phase(Phase::Bootstrap, payload, deps).await,
        "access" => phase(Phase::Access, payload, deps).await,
        "observability" => phase(Phase::Observability, payload, deps).await,
        "tenant" => phase(Phase::Tenants, payload, deps).await,
        selftest::NAME => respond(selftest::handle(parse(payload)?, deps).await),
        other => Err(FunctionError::new(
            ErrorType::Terminal,
            format!("no Tenantry function named {other:?}; known: {FUNCTION_NAMES:?}"),
        )),
    }
}

/// Runs a phase handler. A failure is recorded on the phase in the platform's status record (so
/// that finalize and `tenantry status` can name the phase) and its message names the phase.
async fn phase(phase: Phase, payload: Value, deps: &Deps) -> Result<Value, FunctionError> {
    let input: PhaseInput = parse(payload)?;
    let platform_id = input.platform_id.clone();
    let key = match &input.item {
        Some(item) => format!("{phase}/{item}"),
        None => phase.as_str().to_owned(),
    };
    let result = match phase {
        Phase::Network => crate::phases::network::handle(input, deps).await,
        Phase::Encryption => crate::phases::encryption::handle(input, deps).await,
        Phase::Identity => crate::phases::identity::handle(input, deps).await,
        Phase::Cluster => crate::phases::cluster::handle(input, deps).await,
        Phase::Nodegroups => crate::phases::nodegroups::handle(input, deps).await,
        Phase::Addons => crate::phases::addons::handle(input, deps).await,
        Phase::Bootstrap => crate::phases::bootstrap::handle(input, deps).await,
        Phase::Access => crate::phases::access::handle(input, deps).await,
        Phase::Observability => crate::phases::observability::handle(input, deps).await,
        Phase::Tenants => crate::phases::tenant::handle(input, deps).await,
    };
    match result {
        Ok(output) => respond(Ok(output)),
        Err(mut e) => {
            e.error_message = format!("{key}: {}", e.error_message);
            if !e.error_type.is_retryable() {
                let mut status = PhaseStatus::new(PhaseState::Failed);
                status.message = Some(e.error_message.clone());
                // Best effort: the error itself is what the state machine acts on.
                if let Err(store_error) = Store::from_deps(deps)
                    .set_phase(&platform_id, &key, &status)
                    .await
                {
                    tracing::warn!("recording the failure of phase {phase}: {store_error}");
                }
            }
            Err(e)
        }
    }
}

/// Deserialises a handler's input, naming the JSON path of the first problem.
pub fn parse<T: DeserializeOwned>(payload: Value) -> Result<T, FunctionError> {
    serde_path_to_error::deserialize(payload).map_err(|e| {
        FunctionError::new(
            ErrorType::InvalidRequest,
            format!("invalid input at {}: {}", e.path(), e.inner()),
        )
    })
}

fn respond<T: serde::Serialize>(result: Result<T, FunctionError>) -> Result<Value, FunctionError> {
    let output = result?;
    serde_json::to_value(output).map_err(|e| {
        FunctionError::new(ErrorType::Terminal, format!("output not serialisable: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_has_a_lambda_binary_and_every_binary_a_function() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions");
        let mut binaries: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        binaries.sort();
        let mut names: Vec<String> = FUNCTION_NAMES.iter().map(|n| n.to_string()).collect();
        names.sort();
        assert_eq!(binaries, names);
    }

    #[tokio::test]
    async fn unknown_functions_are_refused_by_name() {
        let aws = aws_config::SdkConfig::builder().build();
        let err = invoke("nope", serde_json::json!({}), &Deps::new(aws, "t"))
            .await
            .unwrap_err();
        assert_eq!(err.error_type, ErrorType::Terminal);
        assert!(
            err.error_message.contains("\"nope\""),
            "{}",
            err.error_message
        );
    }
}
