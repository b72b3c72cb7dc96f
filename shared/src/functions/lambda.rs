//! The Lambda side of a function binary: tracing, dependencies once per cold start, and the
//! mapping of [`FunctionError`] to the `errorType` Lambda reports.
//!
//! Each binary names its own handler ([`run`], [`run_phase`]), so it links that handler and
//! what it calls, not every function's code.

use crate::deps::Deps;
use crate::error::FunctionError;
use crate::phases::{PhaseInput, PhaseOutput};
use crate::plan::Phase;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

impl From<FunctionError> for Diagnostic {
    fn from(e: FunctionError) -> Self {
        Diagnostic {
            error_type: e.error_type.as_str().to_owned(),
            error_message: e.error_message,
        }
    }
}

/// Runs a handler under the Lambda runtime: the whole `main` of intake, finalize and selftest.
pub async fn run<I, O>(
    handler: impl AsyncFn(I, &Deps) -> Result<O, FunctionError>,
) -> Result<(), lambda_runtime::Error>
where
    I: DeserializeOwned,
    O: Serialize,
{
    lambda_runtime::tracing::init_default_subscriber();
    let deps = Deps::from_env().await;
    let (deps, handler) = (&deps, &handler);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // Boxed: intake's future is too deep to lay out inline in the runtime's.
        let output = Box::pin(handler(super::parse(event.payload)?, deps)).await;
        super::respond(output).map_err(Diagnostic::from)
    }))
    .await
}

/// Runs a phase handler under the Lambda runtime: the whole `main` of a phase binary. Failures
/// are recorded on the phase, as [`super::run_phase`] does for every caller.
pub async fn run_phase(
    phase: Phase,
    handler: impl AsyncFn(PhaseInput, &Deps) -> Result<PhaseOutput, FunctionError>,
) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deps = Deps::from_env().await;
    let (deps, handler) = (&deps, &handler);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        Box::pin(super::run_phase(phase, handler, event.payload, deps))
            .await
            .map_err(Diagnostic::from)
    }))
    .await
}
