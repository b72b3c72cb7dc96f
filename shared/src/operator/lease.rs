//! A platform's lease as an operator sees it (`tenantry lease show`), and the release of a
//! holder whose execution ended without `finalize` (`tenantry lease release`), the stuck-lease
//! runbook's option A (`docs/runbooks/stuck-lease.md`).
//!
//! A release runs `finalize` for that holder with outcome `failed` and the operator's reason, so
//! that everything the workflow's last state would have done happens: the platform's status (or
//! the tenant's record), the run, the request, the lease (or the share) and the result event. It
//! is refused, before anything is written, when the lease does not name the holder or when the
//! holder's execution is still `RUNNING`.

use crate::deps::Deps;
use crate::error::{ErrorType, FunctionError};
use crate::events::ResultEvent;
use crate::functions::finalize::{self, FinalizeInput, Operation, Outcome, StatesError};
use crate::functions::intake;
use crate::store::{Lease, LeaseHolders, RequestInfo, RequestState, Store, StoreError};
use aws_sdk_sfn::error::ProvideErrorMetadata;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Whether a holder holds the lease exclusively or a share of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Exclusive,
    Share,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Exclusive => "exclusive",
            Role::Share => "share",
        }
    }
}

/// Where a holder's execution is, as Step Functions says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum Execution {
    /// `DescribeExecution` answered: `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`, ...
    Found {
        arn: String,
        status: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        stopped_at: Option<DateTime<Utc>>,
    },
    /// No such execution (intake took the lease and died before starting it).
    DoesNotExist { arn: String },
    /// The status could not be read (the reason); a release is refused then.
    Unknown { reason: String },
}

impl Execution {
    pub fn is_running(&self) -> bool {
        matches!(self, Execution::Found { status, .. } if status == "RUNNING")
    }

    /// The status for a table: `RUNNING`, `ABORTED`, `does not exist`, `unknown`.
    pub fn label(&self) -> String {
        match self {
            Execution::Found { status, .. } => status.clone(),
            Execution::DoesNotExist { .. } => "does not exist".to_owned(),
            Execution::Unknown { .. } => "unknown".to_owned(),
        }
    }
}

/// One holder of the lease with its request and its execution.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Holder {
    pub role: Role,
    #[serde(flatten)]
    pub lease: Lease,
    /// Whether its expiry has passed (it then blocks nobody).
    pub expired: bool,
    /// The request record's state (`None`: no record of that request).
    pub request_state: Option<RequestState>,
    pub execution: Execution,
}

/// The lease of a platform as `tenantry lease show` prints it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseReport {
    pub platform_id: String,
    pub fence: u64,
    pub checked_at: DateTime<Utc>,
    /// The exclusive holder first, then the shares.
    pub holders: Vec<Holder>,
}

impl LeaseReport {
    /// Whether any holder still blocks other requests.
    pub fn is_free(&self) -> bool {
        self.holders.iter().all(|h| h.expired)
    }
}

/// Why a release was refused (nothing was changed) or could not be done.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "the lease of platform {platform:?} does not name {holder:?} (it names {}); nothing changed: \
         check the holder with `tenantry lease show {platform}`",
        names(.holders)
    )]
    NotAHolder {
        platform: String,
        holder: String,
        holders: Vec<String>,
    },
    #[error(
        "holder {holder:?} of platform {platform:?} is still running (execution {arn} is RUNNING); \
         nothing changed: a running execution is not stuck. Stopping it is a deliberate, separate \
         act (`aws stepfunctions stop-execution --execution-arn {arn}`, write down why); release \
         the lease once it has stopped"
    )]
    Running {
        platform: String,
        holder: String,
        arn: String,
    },
    #[error(
        "the status of execution of holder {holder:?} cannot be read ({reason}); nothing changed: \
         a release needs to know that it is not RUNNING"
    )]
    StatusUnknown { holder: String, reason: String },
    #[error("--reason must say why the lease is released (e.g. a ticket); it is empty")]
    NoReason,
    #[error(
        "holder {holder:?} runs operation {operation:?}, which finalize does not know; nothing \
         changed"
    )]
    UnknownOperation { holder: String, operation: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("finalize for {holder:?} failed: {source}")]
    Finalize {
        holder: String,
        #[source]
        source: FunctionError,
    },
}

fn names(holders: &[String]) -> String {
    if holders.is_empty() {
        "no holder: it is free".to_owned()
    } else {
        holders.join(", ")
    }
}

/// What a release did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum Released {
    /// `finalize` ran for the holder: the result it published.
    Finalized {
        holder: Box<Holder>,
        result: Box<ResultEvent>,
    },
    /// The lease no longer names the holder and its request is finished: nothing to do.
    AlreadyFree {
        holder: String,
        request_state: RequestState,
    },
}

/// The lease of `platform`, each holder with its request's state and its execution's status.
pub async fn show(deps: &Deps, platform: &str) -> Result<LeaseReport, LeaseError> {
    let store = Store::from_deps(deps);
    let now = store.now();
    let lease = store.get_lease_holders(platform).await?;
    let sfn = aws_sdk_sfn::Client::new(&deps.aws);
    let mut holders = Vec::new();
    for (role, l) in roles(&lease) {
        holders.push(holder(deps, &store, &sfn, role, l.clone(), now).await?);
    }
    Ok(LeaseReport {
        platform_id: platform.to_owned(),
        fence: lease.fence,
        checked_at: now,
        holders,
    })
}

fn roles(lease: &LeaseHolders) -> impl Iterator<Item = (Role, &Lease)> {
    lease
        .exclusive
        .iter()
        .map(|l| (Role::Exclusive, l))
        .chain(lease.shares.iter().map(|l| (Role::Share, l)))
}

async fn holder(
    deps: &Deps,
    store: &Store,
    sfn: &aws_sdk_sfn::Client,
    role: Role,
    lease: Lease,
    now: DateTime<Utc>,
) -> Result<Holder, LeaseError> {
    let request = store.get_request(&lease.holder).await?;
    let execution = execution(deps, sfn, &lease, request.as_ref()).await;
    Ok(Holder {
        role,
        expired: !lease.is_live(now),
        request_state: request.map(|r| r.state),
        lease,
        execution,
    })
}

/// The workflow serving a lease's operation (the request record names the execution exactly;
/// this is for a request intake never got to start).
pub fn workflow_of(operation: &str) -> Option<&'static str> {
    Some(match operation {
        "provision" | "update" => intake::PROVISION_WORKFLOW,
        "decommission" => intake::DECOMMISSION_WORKFLOW,
        "onboard" => intake::ONBOARD_WORKFLOW,
        "offboard" => intake::OFFBOARD_WORKFLOW,
        "drift" => intake::DRIFT_WORKFLOW,
        _ => return None,
    })
}

async fn execution(
    deps: &Deps,
    sfn: &aws_sdk_sfn::Client,
    lease: &Lease,
    request: Option<&RequestInfo>,
) -> Execution {
    let arn = match request.and_then(|r| r.execution_arn.clone()) {
        Some(arn) => arn,
        None => {
            let Some(workflow) = workflow_of(&lease.operation) else {
                return Execution::Unknown {
                    reason: format!("no workflow runs operation {:?}", lease.operation),
                };
            };
            match intake::state_machine_arn(deps, workflow).await {
                Ok(machine) => intake::execution_arn(&machine, &lease.holder),
                Err(e) => {
                    return Execution::Unknown {
                        reason: e.to_string(),
                    }
                }
            }
        }
    };
    match sfn.describe_execution().execution_arn(&arn).send().await {
        Ok(d) => Execution::Found {
            status: d.status().as_str().to_owned(),
            stopped_at: d
                .stop_date()
                .and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())),
            arn,
        },
        Err(e) if e.code() == Some("ExecutionDoesNotExist") => Execution::DoesNotExist { arn },
        Err(e) => Execution::Unknown {
            reason: format!(
                "DescribeExecution {arn}: {}",
                e.message()
                    .map(str::to_owned)
                    .unwrap_or_else(|| aws_sdk_sfn::error::DisplayErrorContext(&e).to_string())
            ),
        },
    }
}

/// Releases the lease (or the share) `holder` holds on `platform` by running `finalize` for it
/// with outcome `failed` and `reason`. Refused, with nothing changed, when the lease does not
/// name `holder` or its execution is `RUNNING` (or its status cannot be read). Idempotent: when
/// the lease no longer names `holder` and its request is finished, it answers
/// [`Released::AlreadyFree`].
pub async fn release(
    deps: &Deps,
    platform: &str,
    holder: &str,
    reason: &str,
) -> Result<Released, LeaseError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(LeaseError::NoReason);
    }
    let report = show(deps, platform).await?;
    let Some(found) = report
        .holders
        .iter()
        .find(|h| h.lease.holder == holder)
        .cloned()
    else {
        return not_a_holder(deps, platform, holder, &report).await;
    };
    check_ended(&found, platform, holder)?;
    let operation: Operation = serde_json::from_value(serde_json::json!(found.lease.operation))
        .map_err(|_| LeaseError::UnknownOperation {
            holder: holder.to_owned(),
            operation: found.lease.operation.clone(),
        })?;
    let input = FinalizeInput {
        platform_id: platform.to_owned(),
        request_id: holder.to_owned(),
        operation,
        outcome: Outcome::Failed,
        error: Some(released_error(&found.execution, reason)),
        phase: None,
        summary: None,
    };
    let result = finalize::handle(input, deps)
        .await
        .map_err(|source| LeaseError::Finalize {
            holder: holder.to_owned(),
            source,
        })?;
    Ok(Released::Finalized {
        holder: Box::new(found),
        result: Box::new(result),
    })
}

/// `holder` holds no part of the lease: already free when it is a request of `platform` that
/// finished, otherwise an error naming the holders there are.
async fn not_a_holder(
    deps: &Deps,
    platform: &str,
    holder: &str,
    report: &LeaseReport,
) -> Result<Released, LeaseError> {
    let request = Store::from_deps(deps).get_request(holder).await?;
    if let Some(r) = request.filter(|r| r.platform_id == platform && is_finished(r.state)) {
        return Ok(Released::AlreadyFree {
            holder: holder.to_owned(),
            request_state: r.state,
        });
    }
    Err(LeaseError::NotAHolder {
        platform: platform.to_owned(),
        holder: holder.to_owned(),
        holders: report
            .holders
            .iter()
            .map(|h| format!("{} ({})", h.lease.holder, h.role.as_str()))
            .collect(),
    })
}

/// Refuses to release a lease whose execution still runs, or whose status is unknown.
fn check_ended(found: &Holder, platform: &str, holder: &str) -> Result<(), LeaseError> {
    match &found.execution {
        Execution::Found { arn, .. } if found.execution.is_running() => Err(LeaseError::Running {
            platform: platform.to_owned(),
            holder: holder.to_owned(),
            arn: arn.clone(),
        }),
        Execution::Unknown { reason } => Err(LeaseError::StatusUnknown {
            holder: holder.to_owned(),
            reason: reason.clone(),
        }),
        _ => Ok(()),
    }
}

fn is_finished(state: RequestState) -> bool {
    matches!(
        state,
        RequestState::Succeeded | RequestState::Failed | RequestState::Rejected
    )
}

/// The error finalize records: `Tenantry.Terminal`, saying that the execution ended without
/// finalize and that an operator released it, and why.
pub fn released_error(execution: &Execution, reason: &str) -> StatesError {
    let code = ErrorType::Terminal.as_str();
    let how = match execution {
        Execution::Found { status, .. } => format!("execution ended {status} without finalize"),
        Execution::DoesNotExist { .. } => "execution never started".to_owned(),
        Execution::Unknown { .. } => "execution status unknown".to_owned(),
    };
    let message = format!("{how}; lease released by hand (tenantry lease release): {reason}");
    StatesError {
        error: code.to_owned(),
        cause: Some(serde_json::json!({"errorType": code, "errorMessage": message}).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leased_operation_maps_to_its_workflow() {
        assert_eq!(workflow_of("update"), Some("provision-platform"));
        assert_eq!(workflow_of("offboard"), Some("offboard-tenant"));
        assert_eq!(workflow_of("compliance"), None);
    }

    #[test]
    fn the_recorded_error_names_the_status_and_the_reason() {
        let e = released_error(
            &Execution::Found {
                arn: "arn:x".into(),
                status: "ABORTED".into(),
                stopped_at: None,
            },
            "INC-42 stopped by hand",
        );
        assert_eq!(e.error, "Tenantry.Terminal");
        let cause: serde_json::Value = serde_json::from_str(e.cause.as_deref().unwrap()).unwrap();
        let message = cause["errorMessage"].as_str().unwrap();
        assert!(
            message.contains("ABORTED") && message.contains("INC-42 stopped by hand"),
            "{message}"
        );
    }

    #[test]
    fn a_refusal_names_the_holders_and_says_nothing_changed() {
        let e = LeaseError::NotAHolder {
            platform: "payments".into(),
            holder: "req-2".into(),
            holders: vec!["req-1 (exclusive)".into()],
        };
        let text = e.to_string();
        assert!(
            text.contains("\"req-2\"") && text.contains("req-1 (exclusive)"),
            "{text}"
        );
        assert!(text.contains("nothing changed"), "{text}");
        let running = Execution::Found {
            arn: "a".into(),
            status: "RUNNING".into(),
            stopped_at: None,
        };
        assert!(running.is_running());
        assert!(!Execution::DoesNotExist { arn: "a".into() }.is_running());
    }
}
