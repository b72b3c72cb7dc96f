//! Phase handlers: one async fn per Lambda function, taking typed input and [`Deps`].
//!
//! The binaries under `functions/` run them through lambda_runtime ([`lambda::run`]); the local
//! stack's gateway runs the very same handlers when Step Functions calls the Lambda Invoke API
//! ([`invoke`]). Either way errors leave as a stable [`ErrorType`](crate::error::ErrorType).

pub mod catalog;
pub mod compliance;
pub mod drift;
pub mod finalize;
pub mod intake;
pub mod lambda;
pub mod selftest;
pub mod sweep;

use crate::deps::Deps;
use crate::error::{ErrorType, FunctionError};
use crate::phases::{Action, PhaseInput, PhaseOutput};
use crate::plan::Phase;
use crate::store::{PhaseState, PhaseStatus, Store};
use serde::de::DeserializeOwned;
use serde_json::Value;

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
    drift::NAME,
    compliance::NAME,
    selftest::NAME,
    catalog::NAME,
];

pub const INTAKE: &str = "intake";
pub const FINALIZE: &str = "finalize";

/// Runs the named handler on a JSON payload: the local stack's gateway serves the Lambda Invoke
/// API with it. Deployed binaries do not come through here: each names its own handler
/// ([`lambda::run`], [`lambda::run_phase`]).
pub async fn invoke(name: &str, payload: Value, deps: &Deps) -> Result<Value, FunctionError> {
    match name {
        INTAKE => respond(intake::handle(parse(payload)?, deps).await),
        FINALIZE => respond(finalize::handle(parse(payload)?, deps).await),
        drift::NAME => respond(drift::handle(parse(payload)?, deps).await),
        compliance::NAME => respond(compliance::handle(parse(payload)?, deps).await),
        catalog::NAME => respond(catalog::handle(payload, deps).await),
        "network" => {
            let handler = crate::phases::network::handle;
            run_phase(Phase::Network, handler, payload, deps).await
        }
        "encryption" => {
            let handler = crate::phases::encryption::handle;
            run_phase(Phase::Encryption, handler, payload, deps).await
        }
        "identity" => {
            let handler = crate::phases::identity::handle;
            run_phase(Phase::Identity, handler, payload, deps).await
        }
        "cluster" => {
            let handler = crate::phases::cluster::handle;
            run_phase(Phase::Cluster, handler, payload, deps).await
        }
        "nodegroups" => {
            let handler = crate::phases::nodegroups::handle;
            run_phase(Phase::Nodegroups, handler, payload, deps).await
        }
        "addons" => {
            let handler = crate::phases::addons::handle;
            run_phase(Phase::Addons, handler, payload, deps).await
        }
        "bootstrap" => {
            let handler = crate::phases::bootstrap::handle;
            run_phase(Phase::Bootstrap, handler, payload, deps).await
        }
        "access" => {
            let handler = crate::phases::access::handle;
            run_phase(Phase::Access, handler, payload, deps).await
        }
        "observability" => {
            let handler = crate::phases::observability::handle;
            run_phase(Phase::Observability, handler, payload, deps).await
        }
        "tenant" => {
            let handler = crate::phases::tenant::handle;
            run_phase(Phase::Tenants, handler, payload, deps).await
        }
        selftest::NAME => respond(selftest::handle(parse(payload)?, deps).await),
        other => Err(FunctionError::new(
            ErrorType::Terminal,
            format!("no Tenantry function named {other:?}; known: {FUNCTION_NAMES:?}"),
        )),
    }
}

/// Runs a phase handler on a JSON payload. A failure is recorded on the phase in the platform's
/// status record (so that finalize and `tenantry status` can name the phase) and its message
/// names the phase.
pub async fn run_phase(
    phase: Phase,
    handler: impl AsyncFn(PhaseInput, &Deps) -> Result<PhaseOutput, FunctionError>,
    payload: Value,
    deps: &Deps,
) -> Result<Value, FunctionError> {
    let input: PhaseInput = parse(payload)?;
    // A drift check of other components: nothing to observe here, and nothing read.
    let in_scope = input.scope.as_ref().is_none_or(|s| s.contains(&phase));
    if input.action == Action::Observe && !in_scope {
        return respond(Ok(PhaseOutput {
            phase,
            action: Action::Observe,
            ready: true,
            changes: 0,
            item: input.item,
            outputs: Default::default(),
            drift: Vec::new(),
        }));
    }
    let platform_id = input.platform_id.clone();
    let key = match &input.item {
        Some(item) => format!("{phase}/{item}"),
        None => phase.as_str().to_owned(),
    };
    match handler(input, deps).await {
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
        let aws = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
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
