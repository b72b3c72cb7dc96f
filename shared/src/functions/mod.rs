//! Phase handlers: one async fn per Lambda function, taking typed input and [`Deps`].
//!
//! The binaries under `functions/` run them through lambda_runtime ([`lambda::run`]); the local
//! stack's gateway runs the very same handlers when Step Functions calls the Lambda Invoke API
//! ([`invoke`]). Either way errors leave as a stable [`ErrorType`](crate::error::ErrorType).

pub mod lambda;
pub mod selftest;

use crate::error::{ErrorType, FunctionError};
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
pub const FUNCTION_NAMES: &[&str] = &[selftest::NAME];

/// Runs the named handler on a JSON payload.
pub async fn invoke(name: &str, payload: Value, deps: &Deps) -> Result<Value, FunctionError> {
    match name {
        selftest::NAME => respond(selftest::handle(parse(payload)?, deps).await),
        other => Err(FunctionError::new(
            ErrorType::Terminal,
            format!("no Tenantry function named {other:?}; known: {FUNCTION_NAMES:?}"),
        )),
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
