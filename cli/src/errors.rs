//! What a failed command says, and the exit code it ends with.
//!
//! Commands return `anyhow::Error`. [`explain`] looks through it for what went wrong, by type
//! where the error keeps one: the CLI's own [`Marked`] errors, the SDK's `CredentialsError`,
//! `ResolveEndpointError` and `ConnectorError` in the source chain, the error code and message
//! of an AWS answer (an [`AwsCall`] of the CLI's own, or a [`StoreError::Aws`] of the state
//! store). It then says what to do about it, with one exit code per class ([`Exit`]).
//!
//! The state store flattens an SDK failure that is not an AWS answer (no credentials, no region,
//! no connection) into the text of its source chain; only for those is the text read, and only
//! for the `Display` texts of the SDK's own error types.

use aws_credential_types::provider::error::CredentialsError;
use aws_smithy_runtime_api::client::endpoint::error::ResolveEndpointError;
use aws_smithy_runtime_api::client::result::{ConnectorError, SdkError};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::error::Error as StdError;
use std::fmt;
use std::process::ExitCode;
use tenantry::store::StoreError;

/// The exit code of each class of failure (listed by `tenantry --help`, from [`exit_codes_help`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The request is invalid (here, or as intake judged it), or anything not classed below.
    Failure = 1,
    /// The command line or the input file cannot be used (clap's usage errors exit 2 too).
    Usage = 2,
    /// Nothing to connect to: no local stack and no AWS credentials or region, credentials AWS
    /// refuses, or an endpoint that does not answer.
    CannotConnect = 3,
    /// AWS denied the call.
    AccessDenied = 4,
    /// What was asked for does not exist (platform, table, execution).
    NotFound = 5,
    /// AWS kept throttling the calls after the SDK's retries.
    Throttled = 6,
    /// Intake refused the request because another operation holds the platform (its lease), or
    /// another request took the same tenant.
    Conflict = 7,
    /// The run started and failed.
    FailedRun = 8,
    /// A compliance report has failed controls.
    ControlsFailed = 9,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

/// The exit codes, as `tenantry --help` lists them (a macro, for `concat!`).
macro_rules! exit_codes_help {
    () => {
        "Exit codes:
  0  success
  1  invalid request (here, or intake rejected it as invalid), or any other error
  2  invalid command line or unreadable input file
  3  cannot connect: no local stack and no AWS credentials or region, credentials refused,
     or the endpoint does not answer
  4  AWS denied access (the message names the action and the role)
  5  not found (platform, table, execution)
  6  throttled by AWS after the SDK's retries
  7  conflict: another operation holds the platform; send the request again (new request id)
     once it has finished. `tenantry lease release` refused: the lease does not name the
     holder, or its execution is running
  8  the run failed (the message names the phase, the error code and the `tenantry runs`
     command that shows the run)
  9  compliance: the report has at least one failed control"
    };
}
pub(crate) use exit_codes_help;

/// An error the CLI itself raises, already classed, e.g. a platform that is not recorded.
/// Usable as an error or as the context of one.
#[derive(Debug)]
pub struct Marked(pub Exit, pub String);

impl fmt::Display for Marked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.1)
    }
}

impl StdError for Marked {}

pub fn invalid_input(message: impl Into<String>) -> Marked {
    Marked(Exit::Usage, message.into())
}

pub fn not_found(message: impl Into<String>) -> Marked {
    Marked(Exit::NotFound, message.into())
}

pub fn cannot_connect(message: impl Into<String>) -> Marked {
    Marked(Exit::CannotConnect, message.into())
}

pub fn conflict(message: impl Into<String>) -> Marked {
    Marked(Exit::Conflict, message.into())
}

/// A run that failed: what ran, the phase, the error code and message (first line), and the
/// command that shows the run.
pub fn failed_run(
    what: &str,
    phase: Option<&str>,
    code: &str,
    message: &str,
    details: &str,
) -> Marked {
    let phase = phase.map(|p| format!(" in phase {p}")).unwrap_or_default();
    Marked(
        Exit::FailedRun,
        format!(
            "{what} failed{phase}: {code}: {}\n  details: {details}",
            first_line(message)
        ),
    )
}

/// A failed AWS call made by the CLI itself: the IAM action it attempted (`events:PutEvents`)
/// and what AWS answered, with the SDK error as its source.
#[derive(Debug)]
pub struct AwsCall {
    pub action: String,
    pub code: Option<String>,
    pub message: Option<String>,
    source: Box<dyn StdError + Send + Sync>,
}

impl AwsCall {
    pub fn new<E, R>(action: impl Into<String>, err: SdkError<E, R>) -> AwsCall
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        // An AWS answer has a message; a failure on the way (no credentials, no region, no
        // connection) has the text of its source chain.
        let message = match err.message() {
            Some(m) => m.to_owned(),
            None => display_chain(&err),
        };
        AwsCall {
            action: action.into(),
            code: err.code().map(str::to_owned),
            message: Some(message),
            source: Box::new(err),
        }
    }
}

impl fmt::Display for AwsCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed", self.action)
    }
}

impl StdError for AwsCall {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

fn display_chain(err: &dyn StdError) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// `.action("events:PutEvents")` on the result of an SDK call: an [`AwsCall`] on failure.
pub trait ActionExt<T> {
    fn action(self, action: &str) -> Result<T, AwsCall>;
}

impl<T, E, R> ActionExt<T> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    fn action(self, action: &str) -> Result<T, AwsCall> {
        self.map_err(|e| AwsCall::new(action, e))
    }
}

/// What to print and how to exit.
#[derive(Debug)]
pub struct Explained {
    pub exit: Exit,
    pub message: String,
}

/// The `Display` texts of the SDK's `CredentialsError` variants (without their sources), for
/// errors the state store has flattened to text.
const CREDENTIALS_TEXTS: &[&str] = &[
    "the credential provider was not enabled",
    "an error occurred while loading credentials",
    "credentials provider timed out",
    "the credentials provider was not properly configured",
    "unexpected credentials error",
];
/// What the endpoint rules of every AWS service answer when no region is configured.
const MISSING_REGION: &str = "Missing Region";
/// What SigV4 signing answers when no region is configured but the endpoint is (its error type
/// is private to aws-runtime).
const MISSING_SIGNING_REGION: &str = "missing signing region";

/// Error codes of credentials AWS does not accept (unknown, expired, badly signed).
const CREDENTIALS_REFUSED: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "MissingAuthenticationToken",
];
const ACCESS_DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "UnauthorizedException",
];
const NOT_FOUND: &[&str] = &[
    "ResourceNotFoundException",
    "ResourceNotFound",
    "ExecutionDoesNotExist",
    "StateMachineDoesNotExist",
    "NotFoundException",
];

/// What AWS (or the SDK on its way to AWS) answered a call.
struct Answer {
    action: String,
    code: Option<String>,
    message: String,
}

fn answer(err: &anyhow::Error) -> Option<Answer> {
    for cause in err.chain() {
        if let Some(call) = cause.downcast_ref::<AwsCall>() {
            return Some(Answer {
                action: call.action.clone(),
                code: call.code.clone(),
                message: call.message.clone().unwrap_or_default(),
            });
        }
        if let Some(StoreError::Aws {
            operation,
            code,
            message,
            ..
        }) = cause.downcast_ref::<StoreError>()
        {
            return Some(Answer {
                action: format!("dynamodb:{operation}"),
                code: code.clone(),
                message: message.clone(),
            });
        }
    }
    None
}

fn find<T: StdError + 'static>(err: &anyhow::Error) -> Option<&T> {
    err.chain().find_map(|cause| cause.downcast_ref::<T>())
}

/// The first line of `text`, at most 300 characters.
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_owned(),
    }
}

/// The word after `marker` in `text` (`User: ARN is not authorized…` → the ARN).
fn word_after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let word = rest
        .split_whitespace()
        .next()?
        .trim_end_matches([',', '.', ';']);
    (!word.is_empty()).then_some(word)
}

/// The principal an access-denied message names: `User: arn:…`, or the first IAM/STS ARN.
fn principal(message: &str) -> Option<&str> {
    word_after(message, "User: ").or_else(|| {
        message
            .split_whitespace()
            .map(|w| w.trim_end_matches([',', '.', ';']))
            .find(|w| {
                w.starts_with("arn:")
                    && [":assumed-role/", ":user/", ":role/", ":root"]
                        .iter()
                        .any(|kind| w.contains(kind))
            })
    })
}

pub const NO_STACK_NO_CREDENTIALS: &str = "\
no local stack and no AWS credentials: there is nothing to connect to.
  To use the local stack (no AWS account needed): run `tenantry dev up` in the repository, then
    run tenantry from any directory inside it (or point --state-dir or TENANTRY_STATE_DIR at its
    .tenantry directory).
  To use AWS: set credentials, with AWS_PROFILE (a profile of ~/.aws/config) or
    AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and a region, with AWS_REGION or --region.";

pub const NO_REGION: &str = "\
no AWS region is set: pass --region REGION, or set AWS_REGION (or a `region` for the
  AWS_PROFILE profile in ~/.aws/config).
  Or use the local stack instead, which needs no AWS account: `tenantry dev up`.";

/// Whether the endpoint rules failed for want of a region. The generated clients' rules fail
/// with aws-smithy-http's type; the runtime's own is checked too.
pub fn missing_region(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        let endpoint_error = cause
            .downcast_ref::<ResolveEndpointError>()
            .map(|e| e.to_string());
        let rules_error = cause
            .downcast_ref::<aws_smithy_http::endpoint::ResolveEndpointError>()
            .map(|e| e.to_string());
        endpoint_error
            .or(rules_error)
            .is_some_and(|text| text.contains(MISSING_REGION))
    })
}

/// What to tell the user about `err`, and the exit code.
pub fn explain(err: &anyhow::Error) -> Explained {
    let raw = format!("{err:#}");
    if let Some(Marked(exit, _)) = err.downcast_ref::<Marked>() {
        return Explained {
            exit: *exit,
            message: raw,
        };
    }
    let answer = answer(err);
    if let Some(explained) = connection_problem(err, &answer, &raw) {
        return explained;
    }
    match answer {
        Some(a) => explain_answer(&a, raw),
        None => Explained {
            exit: Exit::Failure,
            message: raw,
        },
    }
}

/// No credentials, no region or no route to the endpoint: what to set or start.
fn connection_problem(
    err: &anyhow::Error,
    answer: &Option<Answer>,
    raw: &str,
) -> Option<Explained> {
    let details = |a: &Option<Answer>| match a {
        Some(a) => format!("\n  details: {}: {}", a.action, first_line(&a.message)),
        None => format!("\n  details: {}", first_line(raw)),
    };
    let flattened = answer
        .as_ref()
        .filter(|a| a.code.is_none())
        .map(|a| a.message.as_str())
        .unwrap_or_default();

    let no_credentials = find::<CredentialsError>(err).is_some()
        || CREDENTIALS_TEXTS.iter().any(|t| flattened.contains(t));
    if no_credentials {
        return Some(Explained {
            exit: Exit::CannotConnect,
            message: format!("{NO_STACK_NO_CREDENTIALS}{}", details(answer)),
        });
    }
    let no_region = missing_region(err)
        || flattened.contains(MISSING_REGION)
        || flattened.contains(MISSING_SIGNING_REGION);
    if no_region {
        return Some(Explained {
            exit: Exit::CannotConnect,
            message: format!("{NO_REGION}{}", details(answer)),
        });
    }
    let unreachable = find::<ConnectorError>(err).is_some_and(|c| c.is_io() || c.is_timeout())
        || flattened.contains("dispatch failure: io error")
        || flattened.contains("dispatch failure: timeout");
    if unreachable {
        return Some(Explained {
            exit: Exit::CannotConnect,
            message: format!(
                "cannot reach the AWS endpoint.\n  For the local stack: `tenantry dev status` \
                 tells whether it runs (start it with `tenantry dev up`).\n  For AWS: check the \
                 network and the region (AWS_REGION or --region).{}",
                details(answer)
            ),
        });
    }
    None
}

/// An error AWS answered: refused credentials, denied access, throttling or nothing found,
/// each with what to do; anything else as it was raised.
fn explain_answer(a: &Answer, raw: String) -> Explained {
    let code = a.code.as_deref().unwrap_or_default();
    let said = format!("\n  AWS said ({code}): {}", first_line(&a.message));
    if CREDENTIALS_REFUSED.contains(&code) {
        return Explained {
            exit: Exit::CannotConnect,
            message: format!(
                "AWS refused the credentials for {}: they are unknown, expired or malformed.\n  \
                 Refresh them (e.g. `aws sso login` for an SSO profile), or set valid ones with \
                 AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.\n  Or use the \
                 local stack instead: `tenantry dev up`.{said}",
                a.action
            ),
        };
    }
    if ACCESS_DENIED.contains(&code) || a.message.contains("not authorized to perform") {
        return access_denied(a, &said);
    }
    if aws_runtime::retries::classifiers::THROTTLING_ERRORS.contains(&code) {
        return Explained {
            exit: Exit::Throttled,
            message: format!(
                "AWS throttled {action} ({code}); the command retried with backoff ({attempts} \
                 attempts) and gave up.\n  Wait a minute and run it again. If it keeps \
                 happening, something else is calling the same API heavily, or the account's \
                 quota for it is too low.{said}",
                action = a.action,
                attempts = tenantry::aws::MAX_ATTEMPTS,
            ),
        };
    }
    if NOT_FOUND.contains(&code) {
        return Explained {
            exit: Exit::NotFound,
            message: format!(
                "{} found nothing: {}.\n  Check the region (AWS_REGION or --region) and, for the \
                 state table, --table or TENANTRY_TABLE: is Tenantry deployed there?{said}",
                a.action,
                a.message.trim_end_matches('.'),
            ),
        };
    }
    Explained {
        exit: Exit::Failure,
        message: raw,
    }
}

/// Access denied: the action, to whom and on what, and what to grant.
fn access_denied(a: &Answer, said: &str) -> Explained {
    let action = word_after(&a.message, "to perform: ").unwrap_or(&a.action);
    let who = principal(&a.message);
    let resource = word_after(&a.message, "on resource: ")
        .map(|r| format!(" on {r}"))
        .unwrap_or_default();
    let (to, fix) = match who {
        Some(p) => (
            format!(" to {p}"),
            format!("Grant {action} to that role (or user)"),
        ),
        None => (
            String::new(),
            format!(
                "Grant {action} to the role you run as (`aws sts get-caller-identity` names it)"
            ),
        ),
    };
    Explained {
        exit: Exit::AccessDenied,
        message: format!(
            "AWS denied {action}{to}{resource}.\n  {fix}, checking its permissions boundary \
             and any SCP too, or run with credentials (AWS_PROFILE) that have it.{said}"
        ),
    }
}

/// The message printed while the SDK retries a throttled call.
pub fn retrying_notice(operation: &str, code: &str) -> String {
    format!("AWS is throttling {operation} ({code}); retrying with backoff…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;
    use aws_sdk_eventbridge::operation::put_events::PutEventsError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    type PutEventsSdkError = SdkError<PutEventsError, Response>;

    /// A service error as the SDK returns it for an AWS answer with `code` and `message`.
    fn service_error(code: &str, message: &str) -> PutEventsSdkError {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        SdkError::service_error(
            PutEventsError::generic(meta),
            Response::new(StatusCode::try_from(400).unwrap(), SdkBody::empty()),
        )
    }

    /// As the CLI's own calls report a failure: an [`AwsCall`] under a context.
    fn put_events_failure(err: PutEventsSdkError) -> anyhow::Error {
        Err::<(), _>(err)
            .action("events:PutEvents")
            .context("putting the event on AWS")
            .unwrap_err()
    }

    /// As the state store reports a failure (the SDK error flattened by `StoreError::aws`).
    fn store_failure(operation: &'static str, err: PutEventsSdkError) -> anyhow::Error {
        anyhow::Error::new(StoreError::aws(operation, err))
    }

    fn no_credentials() -> PutEventsSdkError {
        // What the default chain answers with no credentials anywhere (IMDS disabled).
        let chain = CredentialsError::not_loaded("no credentials found in chain");
        SdkError::dispatch_failure(ConnectorError::other(chain.into(), None))
    }

    #[test]
    fn the_credentials_texts_are_the_sdks() {
        use std::time::Duration;
        for err in [
            CredentialsError::not_loaded_no_source(),
            CredentialsError::provider_error("x"),
            CredentialsError::provider_timed_out(Duration::from_secs(5)),
            CredentialsError::invalid_configuration("x"),
            CredentialsError::unhandled("x"),
        ] {
            let text = err.to_string();
            assert!(
                CREDENTIALS_TEXTS.iter().any(|t| text.starts_with(t)),
                "{text:?} is not known"
            );
        }
    }

    #[test]
    fn no_stack_and_no_credentials_names_both_ways_out() {
        for err in [
            put_events_failure(no_credentials()),
            store_failure("Query", no_credentials()),
        ] {
            let e = explain(&err);
            assert_eq!(e.exit, Exit::CannotConnect);
            assert_eq!(e.exit.code(), 3);
            for needle in [
                "no local stack and no AWS credentials",
                "`tenantry dev up`",
                "AWS_PROFILE",
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                "AWS_REGION",
            ] {
                assert!(e.message.contains(needle), "{needle:?}:\n{}", e.message);
            }
            // The raw SDK text comes last, as details.
            assert!(
                e.message.starts_with(NO_STACK_NO_CREDENTIALS),
                "{}",
                e.message
            );
        }
        // The store's operation is named in the details.
        let e = explain(&store_failure("Query", no_credentials()));
        assert!(
            e.message.contains("details: dynamodb:Query"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_credentials_provider_that_fails_is_no_credentials_too() {
        let failed = CredentialsError::provider_error("failed to load IMDS session token");
        let err = SdkError::dispatch_failure(ConnectorError::other(failed.into(), None));
        let e = explain(&put_events_failure(err));
        assert_eq!(e.exit, Exit::CannotConnect);
        assert!(e.message.starts_with(NO_STACK_NO_CREDENTIALS));
    }

    #[test]
    fn a_missing_region_says_which_flag_or_variable_sets_it() {
        // The error the generated clients' endpoint rules return, as the orchestrator wraps it.
        let missing = || {
            let e = aws_smithy_http::endpoint::ResolveEndpointError::message(
                "Invalid Configuration: Missing Region",
            );
            SdkError::dispatch_failure(ConnectorError::other(e.into(), None))
        };
        let runtime_missing = {
            let e = ResolveEndpointError::message("Invalid Configuration: Missing Region");
            SdkError::construction_failure(e)
        };
        for err in [
            put_events_failure(missing()),
            put_events_failure(runtime_missing),
            store_failure("GetItem", missing()),
        ] {
            let e = explain(&err);
            assert_eq!(e.exit.code(), 3);
            assert!(e.message.starts_with(NO_REGION), "{}", e.message);
            for needle in ["--region REGION", "AWS_REGION", "`tenantry dev up`"] {
                assert!(e.message.contains(needle), "{needle:?}:\n{}", e.message);
            }
        }
        // Another endpoint failure is not a missing region.
        let other = ResolveEndpointError::message(
            "Invalid Configuration: FIPS and custom endpoint are not supported",
        );
        let err = SdkError::construction_failure(other);
        assert_eq!(explain(&put_events_failure(err)).exit, Exit::Failure);
    }

    #[test]
    fn access_denied_names_the_action_and_the_role() {
        let message = "User: arn:aws:sts::111122223333:assumed-role/platform-dev/alice is not \
                       authorized to perform: events:PutEvents on resource: \
                       arn:aws:events:eu-west-1:111122223333:event-bus/tenantry because no \
                       identity-based policy allows the events:PutEvents action";
        let e = explain(&put_events_failure(service_error(
            "AccessDeniedException",
            message,
        )));
        assert_eq!(e.exit, Exit::AccessDenied);
        assert_eq!(e.exit.code(), 4);
        assert!(
            e.message.starts_with(
                "AWS denied events:PutEvents to \
                 arn:aws:sts::111122223333:assumed-role/platform-dev/alice on \
                 arn:aws:events:eu-west-1:111122223333:event-bus/tenantry.\n  Grant \
                 events:PutEvents to that role (or user)"
            ),
            "{}",
            e.message
        );
        assert!(e
            .message
            .contains("AWS said (AccessDeniedException): User:"));

        // From the state store, with no principal in the message: the operation is the action.
        let e = explain(&store_failure(
            "Query",
            service_error("AccessDeniedException", "Access denied"),
        ));
        assert_eq!(e.exit.code(), 4);
        assert!(
            e.message.starts_with("AWS denied dynamodb:Query.\n  Grant dynamodb:Query to the role you run as (`aws sts get-caller-identity` names it)"),
            "{}",
            e.message
        );
    }

    #[test]
    fn throttling_says_it_retried_and_was_throttled() {
        let e = explain(&store_failure(
            "Query",
            service_error(
                "ThrottlingException",
                "Rate of requests exceeds the allowed throughput.",
            ),
        ));
        assert_eq!(e.exit, Exit::Throttled);
        assert_eq!(e.exit.code(), 6);
        assert!(
            e.message.starts_with(
                "AWS throttled dynamodb:Query (ThrottlingException); the command retried with \
                 backoff (6 attempts) and gave up."
            ),
            "{}",
            e.message
        );
        let e = explain(&put_events_failure(service_error(
            "ThrottlingException",
            "Rate exceeded",
        )));
        assert_eq!(e.exit, Exit::Throttled);
        assert!(e.message.contains("AWS throttled events:PutEvents"));
        assert_eq!(
            retrying_notice("PutEvents", "ThrottlingException"),
            "AWS is throttling PutEvents (ThrottlingException); retrying with backoff…"
        );
    }

    #[test]
    fn not_found_and_refused_credentials_and_unreachable() {
        let e = explain(&store_failure(
            "Query",
            service_error("ResourceNotFoundException", "Requested resource not found"),
        ));
        assert_eq!(e.exit.code(), 5);
        assert!(e.message.starts_with("dynamodb:Query found nothing: Requested resource not found.\n  Check the region (AWS_REGION or --region)"), "{}", e.message);

        let e = explain(&put_events_failure(service_error(
            "ExpiredTokenException",
            "The security token included in the request is expired",
        )));
        assert_eq!(e.exit.code(), 3);
        assert!(
            e.message
                .starts_with("AWS refused the credentials for events:PutEvents"),
            "{}",
            e.message
        );

        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = SdkError::dispatch_failure(ConnectorError::io(refused.into()));
        for err in [
            put_events_failure(err),
            store_failure(
                "Query",
                SdkError::dispatch_failure(ConnectorError::io(
                    std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused").into(),
                )),
            ),
        ] {
            let e = explain(&err);
            assert_eq!(e.exit.code(), 3);
            assert!(
                e.message.starts_with("cannot reach the AWS endpoint."),
                "{}",
                e.message
            );
            assert!(e.message.contains("`tenantry dev status`"));
        }
    }

    #[test]
    fn a_failed_run_names_phase_code_and_the_command_and_exits_8() {
        let err = anyhow::Error::new(failed_run(
            "provision of platform \"payments\"",
            Some("network"),
            "InvalidParameterException",
            "network: CreateVpc failed: InvalidParameterException: bad CIDR\nmore",
            "tenantry runs payments provision-1",
        ));
        let e = explain(&err);
        assert_eq!(e.exit, Exit::FailedRun);
        assert_eq!(e.exit.code(), 8);
        assert_eq!(
            e.message,
            "provision of platform \"payments\" failed in phase network: \
             InvalidParameterException: network: CreateVpc failed: InvalidParameterException: \
             bad CIDR\n  details: tenantry runs payments provision-1"
        );
    }

    #[test]
    fn a_conflict_exits_7_and_is_not_a_failed_run_nor_invalid_input() {
        let e = explain(&anyhow::Error::new(conflict("platform \"p\" is busy")));
        assert_eq!(
            (e.exit.code(), e.message.as_str()),
            (7, "platform \"p\" is busy")
        );
        let codes: std::collections::BTreeSet<u8> = [
            Exit::Failure,
            Exit::Usage,
            Exit::CannotConnect,
            Exit::AccessDenied,
            Exit::NotFound,
            Exit::Throttled,
            Exit::Conflict,
            Exit::FailedRun,
        ]
        .iter()
        .map(|e| e.code())
        .collect();
        assert_eq!(codes.len(), 8, "one code per class");
    }

    #[test]
    fn marked_errors_keep_their_class_and_others_exit_1() {
        let err = anyhow::Error::new(not_found("platform \"p\" is not recorded"));
        let e = explain(&err);
        assert_eq!(
            (e.exit.code(), e.message.as_str()),
            (5, "platform \"p\" is not recorded")
        );
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let err = anyhow::Error::new(io).context(invalid_input("reading x.json"));
        let e = explain(&err);
        assert_eq!(
            (e.exit.code(), e.message.as_str()),
            (2, "reading x.json: No such file")
        );
        let e = explain(&anyhow::anyhow!("intake did not answer"));
        assert_eq!(
            (e.exit.code(), e.message.as_str()),
            (1, "intake did not answer")
        );
        let e = explain(&put_events_failure(service_error(
            "ValidationException",
            "bad",
        )));
        assert_eq!(e.exit.code(), 1);
        assert!(e
            .message
            .starts_with("putting the event on AWS: events:PutEvents failed"));
    }
}
