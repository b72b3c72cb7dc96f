//! `selftest`: a deployment smoke test. It proves the wiring a phase relies on (Step Functions can
//! invoke the function, the function reaches the state table) and exercises the state machine
//! contract: a poll loop driven by `ready`, and failures reported as a chosen stable errorType.

use super::Deps;
use crate::error::{ErrorType, FunctionError};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "selftest";

/// The first poll's input; each poll's output is the next poll's input, so the fields of
/// [`SelftestOutput`] are accepted too.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SelftestInput {
    /// Polls made so far (0 on the first call).
    #[serde(default)]
    pub attempt: u32,
    /// `ready` turns true on this attempt; drives the state machine's Wait/Choice loop.
    #[serde(default = "one")]
    pub ready_after: u32,
    /// Fail with this errorType instead of answering (to exercise `Catch`).
    #[serde(default)]
    pub fail_with: Option<ErrorType>,
    /// Seconds the state machine waits between polls (passed through for `SecondsPath`).
    #[serde(default = "one")]
    pub poll_seconds: u32,
    /// The previous poll's answer (ignored).
    #[serde(default)]
    pub ready: bool,
    /// The previous poll's table status (ignored).
    #[serde(default)]
    pub table_status: Option<String>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SelftestOutput {
    pub attempt: u32,
    pub ready_after: u32,
    pub ready: bool,
    pub poll_seconds: u32,
    /// Status of the state table as DynamoDB reports it (e.g. `ACTIVE`).
    pub table_status: String,
}

pub async fn handle(input: SelftestInput, deps: &Deps) -> Result<SelftestOutput, FunctionError> {
    if let Some(error_type) = input.fail_with {
        return Err(FunctionError::new(
            error_type,
            format!("selftest asked to fail with {error_type}"),
        ));
    }
    let dynamodb = aws_sdk_dynamodb::Client::new(&deps.aws);
    let table = dynamodb
        .describe_table()
        .table_name(&deps.table_name)
        .send()
        .await
        .map_err(|e| {
            let kind = crate::error::classify_sdk_error(&e);
            FunctionError::new(
                kind,
                format!(
                    "state table {:?} unreachable: {}",
                    deps.table_name,
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                ),
            )
        })?;
    let table_status = table
        .table()
        .and_then(|t| t.table_status())
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default();
    let attempt = input.attempt + 1;
    Ok(SelftestOutput {
        attempt,
        ready_after: input.ready_after,
        ready: attempt >= input.ready_after,
        poll_seconds: input.poll_seconds,
        table_status,
    })
}
