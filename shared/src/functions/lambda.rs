//! The Lambda side of a function binary: tracing, dependencies once per cold start, and the
//! mapping of [`FunctionError`] to the `errorType` Lambda reports.

use super::{invoke, Deps};
use crate::error::FunctionError;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

impl From<FunctionError> for Diagnostic {
    fn from(e: FunctionError) -> Self {
        Diagnostic {
            error_type: e.error_type.as_str().to_owned(),
            error_message: e.error_message,
        }
    }
}

/// Runs the named Tenantry function under the Lambda runtime. A binary's whole `main`.
pub async fn run(name: &'static str) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deps = Deps::from_env().await;
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // Boxed: the dispatch future over every handler is too deep to lay out inline.
        Box::pin(invoke(name, event.payload, deps))
            .await
            .map_err(Diagnostic::from)
    }))
    .await
}
