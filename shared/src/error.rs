//! The error contract between phase handlers and the state machines.
//!
//! Step Functions matches `Retry`/`Catch` on the `errorType` a Lambda returns. lambda_runtime's
//! default would be a Rust type name, which must never leak into that contract, so every handler
//! error is mapped to one of the stable [`ErrorType`] names below.

use serde::{Deserialize, Serialize};

/// Stable `errorType` names matched by the state machines (see `statemachine/*.asl.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub enum ErrorType {
    /// Transient: throttling, 5xx, IAM eventual consistency. The state machine retries with backoff.
    #[serde(rename = "Tenantry.Retryable")]
    Retryable,
    /// A long operation is still running; poll again after a Wait.
    #[serde(rename = "Tenantry.NotReady")]
    NotReady,
    /// The request is invalid; nothing was changed. Never retried.
    #[serde(rename = "Tenantry.InvalidRequest")]
    InvalidRequest,
    /// Another operation holds the platform's lease, or a conditional write lost a race.
    #[serde(rename = "Tenantry.Conflict")]
    Conflict,
    /// Anything else: recorded and reported, not retried.
    #[serde(rename = "Tenantry.Terminal")]
    Terminal,
}

impl ErrorType {
    pub const ALL: [ErrorType; 5] = [
        ErrorType::Retryable,
        ErrorType::NotReady,
        ErrorType::InvalidRequest,
        ErrorType::Conflict,
        ErrorType::Terminal,
    ];

    /// The exact string the state machines match on.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::Retryable => "Tenantry.Retryable",
            ErrorType::NotReady => "Tenantry.NotReady",
            ErrorType::InvalidRequest => "Tenantry.InvalidRequest",
            ErrorType::Conflict => "Tenantry.Conflict",
            ErrorType::Terminal => "Tenantry.Terminal",
        }
    }

    pub fn parse(s: &str) -> Option<ErrorType> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorType::Retryable | ErrorType::NotReady)
    }
}

impl std::fmt::Display for ErrorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a phase handler returns on failure: a stable type plus a human-readable message.
/// Serialised exactly as Lambda reports function errors (`errorType`, `errorMessage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("{error_type}: {error_message}")]
pub struct FunctionError {
    pub error_type: ErrorType,
    pub error_message: String,
}

impl FunctionError {
    pub fn new(error_type: ErrorType, message: impl Into<String>) -> Self {
        FunctionError {
            error_type,
            error_message: message.into(),
        }
    }
}

/// Classifies an AWS SDK error into an [`ErrorType`] from its service error code.
///
/// Throttling, 5xx, timeouts and IAM's eventual consistency are retryable; condition failures
/// are conflicts; everything else is terminal.
pub fn classify_aws_code(code: Option<&str>, message: Option<&str>) -> ErrorType {
    const RETRYABLE: &[&str] = &[
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
        "InternalError",
        "ServerException",
        "TransactionConflictException",
    ];
    const CONFLICT: &[&str] = &[
        "ConditionalCheckFailedException",
        "ResourceInUseException",
        "ExecutionAlreadyExists",
    ];
    let code = code.unwrap_or_default();
    if RETRYABLE.contains(&code) {
        return ErrorType::Retryable;
    }
    if CONFLICT.contains(&code) {
        return ErrorType::Conflict;
    }
    // IAM eventual consistency: a role created a moment ago is not yet assumable by EKS.
    let message = message.unwrap_or_default();
    if code == "InvalidParameterException"
        && (message.contains("could not be assumed") || message.contains("does not exist"))
    {
        return ErrorType::Retryable;
    }
    // IAM and KMS eventual consistency: a principal created a moment ago (a role, an OIDC
    // provider) is not yet known to the service validating a policy that names it. A principal
    // that stays invalid exhausts the state machine's retries and fails there.
    if matches!(
        code,
        "MalformedPolicyDocument" | "MalformedPolicyDocumentException"
    ) && message.to_ascii_lowercase().contains("invalid principal")
    {
        return ErrorType::Retryable;
    }
    // ECR's form of the same: SetRepositoryPolicy naming a role created a moment ago (the
    // tenant role) answers "Invalid parameter at 'PolicyText' ... Invalid repository policy
    // provided". Tenantry renders every repository policy itself, so the principal is the cause.
    if code == "InvalidParameterException" && message.contains("'PolicyText'") {
        return ErrorType::Retryable;
    }
    // IAM: another request is changing the same entity, or it is briefly locked.
    if matches!(
        code,
        "ConcurrentModification" | "EntityTemporarilyUnmodifiable"
    ) {
        return ErrorType::Retryable;
    }
    ErrorType::Terminal
}

/// Classifies any SDK error (`aws_sdk_*::error::SdkError`): dispatch, timeout and 5xx response
/// failures are retryable; service errors go through [`classify_aws_code`].
pub fn classify_sdk_error<E, R>(
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> ErrorType
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    match err {
        // A call the caller refused itself (the read-only guard of `observe`): a bug, never
        // worth a retry.
        SdkError::DispatchFailure(e) if e.as_connector_error().is_some_and(|c| c.is_user()) => {
            ErrorType::Terminal
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            ErrorType::Retryable
        }
        SdkError::ServiceError(service) => {
            let e = service.err();
            classify_aws_code(e.code(), e.message())
        }
        _ => ErrorType::Terminal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_round_trip_through_their_stable_names() {
        for t in ErrorType::ALL {
            assert_eq!(ErrorType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert_eq!(ErrorType::parse("tenantry::error::Whatever"), None);
    }

    #[test]
    fn aws_codes_are_classified() {
        assert_eq!(
            classify_aws_code(Some("ThrottlingException"), None),
            ErrorType::Retryable
        );
        assert_eq!(
            classify_aws_code(Some("ConditionalCheckFailedException"), None),
            ErrorType::Conflict
        );
        assert_eq!(
            classify_aws_code(
                Some("InvalidParameterException"),
                Some("Role with arn: x, could not be assumed")
            ),
            ErrorType::Retryable
        );
        assert_eq!(
            classify_aws_code(Some("InvalidParameterException"), Some("bad version")),
            ErrorType::Terminal
        );
        assert_eq!(classify_aws_code(None, None), ErrorType::Terminal);
        assert_eq!(
            classify_aws_code(
                Some("MalformedPolicyDocument"),
                Some("Invalid principal in policy: \"AWS\":\"arn:aws:iam::1:role/new\"")
            ),
            ErrorType::Retryable
        );
        assert_eq!(
            classify_aws_code(
                Some("MalformedPolicyDocument"),
                Some("Syntax errors in policy.")
            ),
            ErrorType::Terminal
        );
        assert_eq!(
            classify_aws_code(
                Some("InvalidParameterException"),
                Some("Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'")
            ),
            ErrorType::Retryable
        );
        assert_eq!(
            classify_aws_code(Some("ConcurrentModification"), None),
            ErrorType::Retryable
        );
    }

    #[test]
    fn function_error_serialises_like_a_lambda_error() {
        let e = FunctionError::new(ErrorType::Conflict, "lease held");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"errorType": "Tenantry.Conflict", "errorMessage": "lease held"})
        );
    }
}
