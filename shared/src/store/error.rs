//! The state store's error enum and its mapping onto the state machines' error contract.

use crate::error::{classify_aws_code, classify_sdk_error, ErrorType, FunctionError};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};

/// Everything that can go wrong in the state store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A versioned write lost: the record is not at the version the writer read.
    /// `actual` is `None` when the record does not exist.
    #[error("version conflict on {key}: expected {}, found {}", show_version(*.expected), show_version(*.actual))]
    VersionConflict {
        key: String,
        expected: Option<u64>,
        actual: Option<u64>,
    },
    /// Another holder owns the platform's lease and it has not expired.
    #[error("platform {platform} is leased by {holder} for {operation} until {expires_at}")]
    LeaseHeld {
        platform: String,
        holder: String,
        operation: String,
        expires_at: DateTime<Utc>,
    },
    /// A renewal by a holder that no longer owns the lease (it expired and was taken, or was released).
    #[error("lease on platform {platform} is not held by {holder}")]
    LeaseNotHeld { platform: String, holder: String },
    /// An update of a record that must exist.
    #[error("{key} not found")]
    NotFound { key: String },
    /// A key component that cannot be encoded (empty, or contains the `#` separator where not allowed).
    #[error("invalid key: {reason}")]
    InvalidKey { reason: String },
    /// A value could not be turned into an item (e.g. a non-string map key).
    #[error("cannot encode {what}: {reason}")]
    Encode { what: String, reason: String },
    /// An item in the table does not have the shape this version of Tenantry writes.
    #[error("corrupt item {key}: {reason}")]
    Corrupt { key: String, reason: String },
    /// Any other DynamoDB failure.
    #[error("DynamoDB {operation} failed: {}: {message}", code.as_deref().unwrap_or("no error code"))]
    Aws {
        operation: &'static str,
        code: Option<String>,
        message: String,
        retryable: bool,
    },
}

fn show_version(v: Option<u64>) -> String {
    match v {
        Some(v) => format!("version {v}"),
        None => "no record".to_owned(),
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// Wraps an SDK error of `operation`, classified with [`classify_sdk_error`].
    pub fn aws<E, R>(operation: &'static str, err: SdkError<E, R>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let retryable = classify_sdk_error(&err) == ErrorType::Retryable;
        let (code, message) = match &err {
            SdkError::ServiceError(service) => (
                service.err().code().map(str::to_owned),
                service
                    .err()
                    .message()
                    .map(str::to_owned)
                    .unwrap_or_else(|| service.err().to_string()),
            ),
            other => (None, display_chain(other)),
        };
        StoreError::Aws {
            operation,
            code,
            message,
            retryable,
        }
    }

    /// The stable error type the state machines match on.
    pub fn error_type(&self) -> ErrorType {
        match self {
            StoreError::VersionConflict { .. }
            | StoreError::LeaseHeld { .. }
            | StoreError::LeaseNotHeld { .. } => ErrorType::Conflict,
            StoreError::InvalidKey { .. } | StoreError::Encode { .. } => ErrorType::InvalidRequest,
            StoreError::NotFound { .. } | StoreError::Corrupt { .. } => ErrorType::Terminal,
            StoreError::Aws {
                code,
                message,
                retryable,
                ..
            } => {
                if *retryable {
                    ErrorType::Retryable
                } else {
                    match classify_aws_code(code.as_deref(), Some(message)) {
                        ErrorType::Conflict => ErrorType::Conflict,
                        _ => ErrorType::Terminal,
                    }
                }
            }
        }
    }

    /// Whether the state machine should retry the step that failed with this error.
    pub fn is_retryable(&self) -> bool {
        self.error_type() == ErrorType::Retryable
    }
}

fn display_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl From<StoreError> for FunctionError {
    fn from(err: StoreError) -> Self {
        FunctionError::new(err.error_type(), err.to_string())
    }
}
