//! `intake`: turns request events into Step Functions executions.
//!
//! Per request: parse the envelope and detail, validate the spec (a bad request is answered with a
//! `<Kind>Rejected` event carrying every issue, and nothing else changes), record the request id
//! (a duplicate whose intake finished changes nothing), take the platform's lease (held by another
//! request: rejected, naming it), record the spec and the platform's new lifecycle state, start the
//! execution named after the request id, publish `<Kind>Accepted` and mark the request started.
//!
//! Every step is idempotent, so a crash at any point followed by a redelivery converges: the
//! idempotency record stays `Accepted` until the end, the lease is re-entrant for the same request,
//! the spec and status are only written when they differ, and a second `StartExecution` of the same
//! name finds the first execution. The `Accepted` event is published *before* the request is marked
//! started, so a crash in between re-publishes it (at least once) rather than losing it.
//!
//! Tenant onboarding and offboarding requests take a *share* of the platform's lease (tenants of
//! one platform run side by side; no platform operation runs meanwhile, see
//! [`Store::acquire_shared_lease`]), check the platform (it must exist and be Active) and the
//! tenant (onboarding: [`validate::validate_new_tenant`] against the platform's spec and its tenant
//! records that are not `Offboarded`; offboarding: the tenant is `Active` or `Failed`), write the
//! tenant record (`Requested` → `Onboarding`, or `Offboarding` with `retainData` and
//! `scheduleKeyDeletion`) and start `onboard-tenant` / `offboard-tenant` with input
//! `{platformId, requestId, operation, pollSeconds, tenant}`. A new tenant is recorded first and
//! checked again against the records of concurrent onboardings (write, then read: of two requests
//! that conflict, at least the later one sees the other), and withdrawn if it now conflicts. A
//! rejected tenant request leaves no tenant record and no share behind.
//!
//! Input: an SQS event whose bodies are EventBridge envelopes (the production shape: rule → queue
//! → event source mapping; answered with `batchItemFailures` for the messages to redeliver), or a
//! bare EventBridge event (rule → Lambda).

use super::Deps;
use crate::error::{ErrorType, FunctionError};
use crate::events::{
    self, EventError, PlatformRequest, RequestKind, ResultEvent, ResultStatus, TenantRequest,
};
use crate::spec::{PlatformSpec, TenantSpec};
use crate::store::{
    payload_hash, LastError, LifecycleState, PlatformStatus, RequestInfo, RequestOrigin,
    RequestOutcome, RequestRecord, RequestState, Store, StoreError, TenantFailure, TenantRecord,
    TenantState, Versioned,
};
use crate::validate::{self, rules, Issue};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

pub const NAME: &str = "intake";

/// How long a request holds its platform's lease (released by `finalize`; an execution that
/// dies without finalizing frees the platform after this).
pub const LEASE_TTL: Duration = Duration::from_secs(2 * 3600);
/// Environment variable: seconds the state machines wait between polls.
pub const POLL_SECONDS_ENV: &str = "TENANTRY_POLL_SECONDS";
/// Poll interval when [`POLL_SECONDS_ENV`] is not set.
pub const DEFAULT_POLL_SECONDS: u32 = 30;
/// Workflow (state machine) serving provisions and updates.
pub const PROVISION_WORKFLOW: &str = "provision-platform";
/// Workflow (state machine) serving decommissions.
pub const DECOMMISSION_WORKFLOW: &str = "decommission-platform";
/// Workflow (state machine) serving tenant onboardings.
pub const ONBOARD_WORKFLOW: &str = crate::workflows::ONBOARD_TENANT.name;
/// Workflow (state machine) serving tenant offboardings.
pub const OFFBOARD_WORKFLOW: &str = crate::workflows::OFFBOARD_TENANT.name;
/// How long a tenant request holds its share of the platform's lease (released by `finalize`; a
/// tenant execution that dies without finalizing stops blocking platform operations after this).
pub const TENANT_LEASE_TTL: Duration = Duration::from_secs(3600);
/// The phase named in the failure of a request that could not be started.
const INTAKE_PHASE: &str = NAME;

/// What `intake` is invoked with.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum IntakeInput {
    /// From an SQS event source mapping: each body is an EventBridge envelope.
    Sqs(SqsEvent),
    /// A bare EventBridge envelope (parsed by the handler, so a malformed one is answered).
    Event(Value),
}

impl<'de> Deserialize<'de> for IntakeInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        if value.get("Records").is_some() {
            serde_json::from_value(value)
                .map(IntakeInput::Sqs)
                .map_err(serde::de::Error::custom)
        } else {
            Ok(IntakeInput::Event(value))
        }
    }
}

/// What `intake` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntakeOutput {
    /// To SQS: the messages to deliver again (retryable failures).
    Batch(SqsBatchResponse),
    /// To a direct invocation: what became of the request.
    Outcome(IntakeOutcome),
}

/// What became of one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntakeOutcome {
    pub request_id: String,
    pub platform_id: String,
    pub disposition: Disposition,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    /// Why, for rejections and failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Disposition {
    /// An execution runs (started now, or by an earlier delivery that crashed).
    Accepted,
    /// Refused; a `<Kind>Rejected` event says why.
    Rejected,
    /// Could not be started after it was accepted for processing (deployment problem); a
    /// `<Kind>Failed` event says why.
    Failed,
    /// A redelivery of a request whose intake already finished: nothing done.
    Duplicate,
    /// An event Tenantry published itself: nothing done.
    Ignored,
}

pub async fn handle(input: IntakeInput, deps: &Deps) -> Result<IntakeOutput, FunctionError> {
    let intake = Intake::new(deps);
    match input {
        IntakeInput::Event(envelope) => intake.process(envelope).await.map(IntakeOutput::Outcome),
        IntakeInput::Sqs(event) => Ok(IntakeOutput::Batch(intake.process_batch(event).await)),
    }
}

/// The state machine ARN of a workflow (`provision-platform`, ...):
/// `arn:<partition>:states:<region>:<account>:stateMachine:tenantry-<workflow>`.
pub async fn state_machine_arn(deps: &Deps, workflow: &str) -> Result<String, FunctionError> {
    let region = region(deps);
    let account = deps.account_id().await?;
    Ok(format!(
        "arn:{}:states:{region}:{account}:stateMachine:{}{workflow}",
        crate::spec::partition_of(&region),
        crate::workflows::NAME_PREFIX,
    ))
}

/// The execution ARN of execution `name` of a state machine.
pub fn execution_arn(state_machine_arn: &str, name: &str) -> String {
    format!(
        "{}:{name}",
        state_machine_arn.replacen(":stateMachine:", ":execution:", 1)
    )
}

fn region(deps: &Deps) -> String {
    deps.aws
        .region()
        .map(|r| r.as_ref().to_owned())
        .unwrap_or_else(|| crate::aws::DEFAULT_REGION.to_owned())
}

fn poll_seconds() -> u32 {
    std::env::var(POLL_SECONDS_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_POLL_SECONDS)
}

/// A request that parsed and validated.
#[derive(Debug, Clone)]
struct Request {
    kind: RequestKind,
    request_id: String,
    platform_id: String,
    body: Body,
    payload_hash: String,
    /// Who sent it, as far as the envelope says.
    origin: RequestOrigin,
}

/// What a request carries besides its ids.
#[derive(Debug, Clone)]
enum Body {
    /// Provision, update (with the validated spec), decommission.
    Platform { spec: Option<Box<PlatformSpec>> },
    /// Tenant onboarding (with the validated tenant) or offboarding.
    Tenant(Box<TenantRequest>),
}

impl Request {
    fn operation(&self) -> &'static str {
        self.kind.operation()
    }

    fn spec(&self) -> Option<&PlatformSpec> {
        match &self.body {
            Body::Platform { spec } => spec.as_deref(),
            Body::Tenant(_) => None,
        }
    }

    fn tenant_name(&self) -> Option<&str> {
        match &self.body {
            Body::Tenant(detail) => detail.name(),
            Body::Platform { .. } => None,
        }
    }

    fn result(&self, status: ResultStatus) -> ResultEvent {
        let mut result =
            ResultEvent::new(&self.request_id, &self.platform_id, Some(self.kind), status);
        result.tenant = self.tenant_name().map(str::to_owned);
        result
    }
}

/// A request refused before anything was recorded.
#[derive(Debug, Clone)]
struct Rejection {
    kind: Option<RequestKind>,
    request_id: String,
    platform_id: String,
    /// The tenant a tenant request names (`tenantName`, or the name of `tenant`).
    tenant: Option<String>,
    error: EventError,
    issues: Vec<Issue>,
}

impl Rejection {
    fn new(raw_detail: Option<&Value>, kind: Option<RequestKind>, message: String) -> Box<Self> {
        let field = |name: &str| {
            raw_detail
                .and_then(|d| d.get(name))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let tenant = raw_detail
            .and_then(|d| d.get("tenantName").or_else(|| d.get("tenant")?.get("name")))
            .and_then(Value::as_str)
            .filter(|_| kind.is_some_and(RequestKind::is_tenant))
            .map(str::to_owned);
        Box::new(Rejection {
            kind,
            request_id: field("requestId"),
            platform_id: field("platformId"),
            tenant,
            error: EventError::new(ErrorType::InvalidRequest, message),
            issues: Vec::new(),
        })
    }
}

/// What parsing an envelope gave.
enum Parsed {
    Request(Box<Request>),
    Rejected(Box<Rejection>),
    /// One of Tenantry's own events.
    Ignored {
        detail_type: String,
    },
}

/// Parses and validates one envelope; never touches AWS.
fn parse(envelope: Value) -> Parsed {
    let event: EventBridgeEvent<Value> = match serde_json::from_value(envelope.clone()) {
        Ok(e) => e,
        Err(e) => {
            let detail = envelope.get("detail");
            let message = format!("not an EventBridge event: {e}");
            return Parsed::Rejected(Rejection::new(detail, None, message));
        }
    };
    if events::is_own_event(&event.source, &event.detail_type) {
        return Parsed::Ignored {
            detail_type: event.detail_type,
        };
    }
    let Some(kind) = RequestKind::from_detail_type(&event.detail_type) else {
        let known: Vec<String> = RequestKind::ALL.iter().map(|k| k.detail_type()).collect();
        let message = format!(
            "unknown detail-type {:?}; Tenantry takes {}",
            event.detail_type,
            known.join(", ")
        );
        return Parsed::Rejected(Rejection::new(Some(&event.detail), None, message));
    };
    match parse_detail(kind, &event.detail_type, &event.detail) {
        Ok(mut request) => {
            request.origin = RequestOrigin {
                channel: "eventbridge".to_owned(),
                event_id: event.id.clone(),
                account: event.account.clone(),
                source: event.source.clone(),
                region: event.region.clone(),
                time: event.time.map(|t| t.to_rfc3339()),
            };
            Parsed::Request(Box::new(request))
        }
        Err(rejection) => Parsed::Rejected(rejection),
    }
}

/// Deserializes a detail strictly; the first type-level problem rejects it.
fn deserialize_detail<T: DeserializeOwned>(
    kind: RequestKind,
    raw: &Value,
) -> Result<T, Box<Rejection>> {
    serde_path_to_error::deserialize(raw.clone()).map_err(|e| {
        let path = format!("detail.{}", e.path()).replace("detail..", "detail");
        let message = e.inner().to_string();
        let mut r = Rejection::new(
            Some(raw),
            Some(kind),
            format!("invalid request detail: {message}"),
        );
        r.issues
            .push(Issue::new(path, serde_rule(&message), message));
        r
    })
}

fn parse_detail(
    kind: RequestKind,
    detail_type: &str,
    raw: &Value,
) -> Result<Request, Box<Rejection>> {
    let (request_id, platform_id, body, issues) = if kind.is_tenant() {
        let (detail, issues) = tenant_detail(kind, raw)?;
        let ids = (detail.request_id.clone(), detail.platform_id.clone());
        (ids.0, ids.1, Body::Tenant(Box::new(detail)), issues)
    } else {
        let detail: PlatformRequest = deserialize_detail(kind, raw)?;
        if !kind.is_supported() {
            let message = format!(
                "{detail_type} is not yet supported by this version of Tenantry (it handles \
                 platform provision, update and decommission and tenant onboarding and \
                 offboarding requests)"
            );
            return Err(Rejection::new(Some(raw), Some(kind), message));
        }
        let mut issues = detail_issues(
            &detail.schema_version,
            &detail.request_id,
            &detail.platform_id,
        );
        let spec = spec_issues(kind, &detail, &mut issues);
        (
            detail.request_id,
            detail.platform_id,
            Body::Platform {
                spec: spec.map(Box::new),
            },
            issues,
        )
    };
    if !issues.is_empty() {
        let count = issues.len();
        let first = issues.first().map(ToString::to_string).unwrap_or_default();
        let message = format!(
            "request refused: {count} problem{}, first: {first}",
            if count == 1 { "" } else { "s" }
        );
        let mut r = Rejection::new(Some(raw), Some(kind), message);
        r.issues = issues;
        return Err(r);
    }
    let payload_hash = payload_hash(&json!({ "detailType": detail_type, "detail": raw }));
    Ok(Request {
        kind,
        request_id,
        platform_id,
        body,
        payload_hash,
        origin: RequestOrigin::default(),
    })
}

/// Parses a tenant request: the tenant of an onboarding is checked like a tenant file (every
/// problem, paths relative to the tenant, `$`), the detail's own fields per kind (paths
/// `detail.<field>`), the name of the tenant to offboard by the tenant name rules.
fn tenant_detail(
    kind: RequestKind,
    raw: &Value,
) -> Result<(TenantRequest, Vec<Issue>), Box<Rejection>> {
    let mut issues = Vec::new();
    let mut raw_detail = raw.clone();
    let mut tenant_refused = false;
    if kind == RequestKind::TenantOnboarding {
        let tenant = raw.get("tenant").filter(|t| !t.is_null());
        if let Some(Err(errors)) = tenant.map(|t| validate::parse_tenant(&t.to_string())) {
            issues.extend(errors.0);
            tenant_refused = true;
            if let Some(map) = raw_detail.as_object_mut() {
                map.remove("tenant");
            }
        }
    }
    let detail: TenantRequest = deserialize_detail(kind, &raw_detail)?;
    let mut all = detail_issues(
        &detail.schema_version,
        &detail.request_id,
        &detail.platform_id,
    );
    all.append(&mut issues);
    all.extend(
        detail
            .field_issues(kind)
            .into_iter()
            .filter(|i| !(tenant_refused && i.path == "detail.tenant")),
    );
    if let (RequestKind::TenantOffboarding, Some(name)) = (kind, &detail.tenant_name) {
        all.extend(validate::tenant_name_issues(name, "detail.tenantName"));
    }
    Ok((detail, all))
}

/// Onboarding a tenant onto `platform` next to its tenant `records`: the tenant's own rules (with
/// the platform's region) plus name collisions and prefix overlaps with every tenant that is not
/// offboarded: those of the platform's spec and those of the records. A tenant offboarded with
/// `retainData` still counts, since its data is still there: its prefixes stay taken, and its
/// name may come back only as the same tenant (the same owners), which reclaims the data.
/// Records of `request_id` itself (an earlier delivery of the same request) do not count.
fn onboarding_issues(
    platform: &PlatformSpec,
    records: &[Versioned<TenantRecord>],
    tenant: &TenantSpec,
    request_id: &str,
) -> Vec<Issue> {
    let mut issues = Vec::new();
    let offboarded = |r: &TenantRecord| r.state == TenantState::Offboarded;
    let holds_data = |r: &TenantRecord| offboarded(r) && r.retain_data;
    // Released names: offboarded without data, or this tenant reclaiming its own kept data.
    let released: Vec<&str> = records
        .iter()
        .map(|r| &r.value)
        .filter(|r| offboarded(r) && (!r.retain_data || r.name == tenant.name))
        .map(|r| r.name.as_str())
        .collect();
    if let Some(kept) = records
        .iter()
        .map(|r| &r.value)
        .find(|r| holds_data(r) && r.name == tenant.name)
    {
        let owners = |t: &TenantSpec| t.owners.iter().cloned().collect::<BTreeSet<_>>();
        if owners(&kept.spec) != owners(tenant) {
            issues.push(Issue::new(
                "$.name",
                rules::RETAINED_DATA,
                format!(
                    "tenant {:?} was offboarded with retainData and its data (S3 prefix {:?}, \
                     its KMS key) is still kept: only the same tenant (the same owners) may take \
                     the name back, which hands it that data; to free the name, onboard it with \
                     its former owners and offboard it without retainData",
                    tenant.name,
                    kept.spec.effective_s3_prefix()
                ),
            ));
        }
    }
    let mut effective = platform.clone();
    effective
        .tenants
        .retain(|t| !released.contains(&t.name.as_str()));
    for record in records {
        let r = &record.value;
        if (!offboarded(r) || holds_data(r))
            && !released.contains(&r.name.as_str())
            && r.request_id != request_id
            && !effective.tenants.iter().any(|t| t.name == r.name)
        {
            effective.tenants.push(r.spec.clone());
        }
    }
    if let Err(errors) = validate::validate_new_tenant(&effective, tenant) {
        issues.extend(errors.0);
    }
    issues
}

fn serde_rule(message: &str) -> &'static str {
    if message.starts_with("unknown field") {
        rules::UNKNOWN_FIELD
    } else if message.starts_with("missing field") {
        rules::MISSING_FIELD
    } else {
        rules::INVALID_TYPE
    }
}

/// Problems with the detail's own fields (paths `detail.<field>`).
fn detail_issues(schema_version: &str, request_id: &str, platform_id: &str) -> Vec<Issue> {
    let mut issues = Vec::new();
    if schema_version != events::SCHEMA_VERSION {
        issues.push(Issue::new(
            "detail.schemaVersion",
            rules::INVALID_VALUE,
            format!(
                "schemaVersion {:?} is not supported; this version of Tenantry reads {:?}",
                schema_version,
                events::SCHEMA_VERSION
            ),
        ));
    }
    let id = request_id;
    let id_ok = !id.is_empty()
        && id.len() <= events::MAX_REQUEST_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !id_ok {
        issues.push(Issue::new(
            "detail.requestId",
            rules::INVALID_VALUE,
            format!(
                "requestId must be 1 to {} characters among letters, digits, '-' and '_' \
                 (it names the Step Functions execution); got {id:?}",
                events::MAX_REQUEST_ID_LEN
            ),
        ));
    }
    let platform = platform_id;
    let platform_ok = !platform.is_empty()
        && platform.len() <= crate::naming::MAX_PLATFORM_ID_LEN
        && platform.starts_with(|c: char| c.is_ascii_lowercase())
        && !platform.ends_with('-')
        && platform
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !platform_ok {
        issues.push(Issue::new(
            "detail.platformId",
            rules::NAME_SYNTAX,
            format!(
                "platformId must be a DNS-1123 label starting with a letter, at most {} \
                 characters; got {platform:?}",
                crate::naming::MAX_PLATFORM_ID_LEN
            ),
        ));
    }
    issues
}

/// Validates the spec a provision or update carries (issue paths are relative to the spec, as
/// when validating the request file); a decommission takes none.
fn spec_issues(
    kind: RequestKind,
    detail: &PlatformRequest,
    issues: &mut Vec<Issue>,
) -> Option<PlatformSpec> {
    match (&detail.spec, kind.needs_spec()) {
        (None, true) => {
            issues.push(Issue::new(
                "detail.spec",
                rules::MISSING_FIELD,
                format!(
                    "a {} request needs the platform request in `spec`",
                    kind.operation()
                ),
            ));
            None
        }
        (Some(_), false) => {
            issues.push(Issue::new(
                "detail.spec",
                rules::UNKNOWN_FIELD,
                format!("a {} request takes no `spec`", kind.operation()),
            ));
            None
        }
        (None, false) => None,
        (Some(raw), true) => match validate::parse_platform(&raw.to_string()) {
            Ok(spec) => {
                if spec.id != detail.platform_id {
                    issues.push(Issue::new(
                        "$.id",
                        rules::INVALID_VALUE,
                        format!(
                            "the spec's id {:?} is not the request's platformId {:?}",
                            spec.id, detail.platform_id
                        ),
                    ));
                }
                Some(spec)
            }
            Err(errors) => {
                issues.extend(errors.0);
                None
            }
        },
    }
}

/// Whether intake of a recorded request finished (anything but the initial `Accepted`).
fn intake_finished(info: &RequestInfo) -> bool {
    info.state != RequestState::Accepted
}

/// The handler's clients, built once per invocation.
struct Intake<'a> {
    deps: &'a Deps,
    store: Store,
    events: aws_sdk_eventbridge::Client,
}

impl<'a> Intake<'a> {
    fn new(deps: &'a Deps) -> Self {
        Intake {
            deps,
            store: Store::from_deps(deps),
            events: aws_sdk_eventbridge::Client::new(&deps.aws),
        }
    }

    async fn process_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for message in event.records {
            let id = message.message_id.clone().unwrap_or_default();
            let result = match message.body.as_deref().map(serde_json::from_str::<Value>) {
                Some(Ok(envelope)) => self.process(envelope).await,
                Some(Err(e)) => {
                    self.process(json!({ "unparseable-body": e.to_string() }))
                        .await
                }
                None => self.process(Value::Null).await,
            };
            match result {
                Ok(outcome) => tracing::info!(message_id = %id, ?outcome, "intake done"),
                Err(error) => {
                    // Unhandled errors go back to the queue (and to its DLQ after maxReceiveCount).
                    tracing::warn!(message_id = %id, %error, "intake failed; message will be redelivered");
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = id;
                    response.batch_item_failures.push(failure);
                }
            }
        }
        response
    }

    /// One envelope, start to finish.
    async fn process(&self, envelope: Value) -> Result<IntakeOutcome, FunctionError> {
        let request = match parse(envelope) {
            Parsed::Request(request) => request,
            Parsed::Rejected(rejection) => return self.reject_unrecorded(*rejection).await,
            Parsed::Ignored { detail_type } => {
                tracing::info!(detail_type, "ignoring Tenantry's own event");
                return Ok(IntakeOutcome {
                    request_id: String::new(),
                    platform_id: String::new(),
                    disposition: Disposition::Ignored,
                    execution_arn: None,
                    reason: Some(format!("{detail_type} is a Tenantry result event")),
                });
            }
        };
        if let Some(outcome) = self.check_duplicate(&request).await? {
            return Ok(outcome);
        }
        if let Err(held) = self.lease(&request).await? {
            return self.reject(&request, held, Vec::new()).await;
        }
        match self.accept(&request).await {
            Ok(outcome) => Ok(outcome),
            Err(Refusal::Rejected(error, issues)) => self.reject(&request, error, issues).await,
            Err(Refusal::Error(e))
                if matches!(
                    e.error_type,
                    ErrorType::Terminal | ErrorType::InvalidRequest
                ) =>
            {
                self.fail(&request, e).await
            }
            Err(Refusal::Error(e)) => Err(e),
        }
    }

    /// A bad request: answered, nothing recorded.
    async fn reject_unrecorded(&self, r: Rejection) -> Result<IntakeOutcome, FunctionError> {
        let mut result = ResultEvent::new(
            &r.request_id,
            &r.platform_id,
            r.kind,
            ResultStatus::Rejected,
        );
        result.error = Some(r.error.clone());
        result.issues = r.issues;
        result.tenant = r.tenant;
        events::publish_result(&self.events, r.kind, &result).await?;
        Ok(IntakeOutcome {
            request_id: r.request_id,
            platform_id: r.platform_id,
            disposition: Disposition::Rejected,
            execution_arn: None,
            reason: Some(r.error.message),
        })
    }

    /// `Some` when the request must not be processed (again): a redelivery of a request whose
    /// intake finished, or a request id reused for another request. A read first, so a duplicate
    /// costs no write.
    async fn check_duplicate(
        &self,
        request: &Request,
    ) -> Result<Option<IntakeOutcome>, FunctionError> {
        let id = &request.request_id;
        let existing = match self.store.get_request(id).await? {
            Some(existing) => existing,
            None => {
                let recorded = self
                    .store
                    .record_request_from(
                        id,
                        &request.platform_id,
                        request.operation(),
                        &request.payload_hash,
                        Some(&request.origin),
                    )
                    .await?;
                match recorded {
                    RequestRecord::New(_) => return Ok(None),
                    RequestRecord::Duplicate { existing, .. } => existing,
                }
            }
        };
        if existing.payload_hash != request.payload_hash {
            // A client reused a request id: answer it, but touch nothing of the first request.
            let error = EventError::new(
                ErrorType::Conflict,
                format!(
                    "request id {id:?} was already used for another request ({} of platform {:?}); \
                     use a new request id",
                    existing.kind, existing.platform_id
                ),
            );
            let mut result = request.result(ResultStatus::Rejected);
            result.error = Some(error.clone());
            events::publish_result(&self.events, Some(request.kind), &result).await?;
            return Ok(Some(self.outcome(
                request,
                Disposition::Rejected,
                None,
                Some(error.message),
            )));
        }
        if intake_finished(&existing) {
            tracing::info!(request_id = %id, state = ?existing.state, "duplicate delivery: nothing to do");
            return Ok(Some(self.outcome(
                request,
                Disposition::Duplicate,
                existing.execution_arn,
                None,
            )));
        }
        // Recorded but unfinished: an earlier delivery crashed mid-way; carry on from the start.
        Ok(None)
    }

    /// `Ok(Err(reason))` when another request holds the platform.
    /// Platform requests take the platform's lease, tenant requests a share of it.
    async fn lease(&self, request: &Request) -> Result<Result<(), EventError>, FunctionError> {
        let (platform, id, operation) = (
            &request.platform_id,
            &request.request_id,
            request.operation(),
        );
        let acquired = if request.kind.is_tenant() {
            self.store
                .acquire_shared_lease(platform, id, operation, TENANT_LEASE_TTL)
                .await
        } else {
            self.store
                .acquire_lease(platform, id, operation, LEASE_TTL)
                .await
        };
        let rule = if request.kind.is_tenant() {
            "tenant operations never run while a platform operation runs"
        } else {
            "operations on a platform never run concurrently (nor while tenants are being \
             onboarded or offboarded)"
        };
        match acquired {
            Ok(_) => Ok(Ok(())),
            Err(StoreError::LeaseHeld {
                holder,
                operation,
                expires_at,
                ..
            }) => Ok(Err(EventError::new(
                ErrorType::Conflict,
                format!(
                    "platform {:?} is busy: request {holder:?} is running its {operation} \
                     (lease until {}); {rule}, send this request again (with a new request id) \
                     once that one has finished",
                    request.platform_id,
                    crate::store::keys::timestamp(expires_at),
                ),
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives up what [`Intake::lease`] took (a no-op when it holds nothing).
    async fn release(&self, request: &Request) -> Result<bool, StoreError> {
        if request.kind.is_tenant() {
            self.store
                .release_shared_lease(&request.platform_id, &request.request_id)
                .await
        } else {
            self.store
                .release_lease(&request.platform_id, &request.request_id)
                .await
        }
    }

    /// Under the lease: records the spec and lifecycle state (or the tenant record), starts the
    /// execution, publishes `Accepted`, marks the request started.
    async fn accept(&self, request: &Request) -> Result<IntakeOutcome, Refusal> {
        match (&request.body, request.kind) {
            (Body::Tenant(detail), RequestKind::TenantOnboarding) => {
                let platform = self.active_platform(request).await?;
                self.record_onboarding(request, &platform, detail).await?;
                return self.started(request).await;
            }
            (Body::Tenant(detail), _) => {
                let platform = self.active_platform(request).await?;
                self.record_offboarding(request, &platform, detail).await?;
                return self.started(request).await;
            }
            (Body::Platform { spec: Some(spec) }, _) => self.record_spec(request, spec).await?,
            (Body::Platform { spec: None }, _) => self.check_decommissionable(request).await?,
        }
        let target = match request.kind {
            RequestKind::PlatformUpdate => LifecycleState::Updating,
            RequestKind::PlatformDecommission => LifecycleState::Decommissioning,
            _ => LifecycleState::Provisioning,
        };
        self.set_state(&request.platform_id, target, None).await?;
        self.started(request).await
    }

    /// Starts the execution, publishes `Accepted`, marks the request started.
    async fn started(&self, request: &Request) -> Result<IntakeOutcome, Refusal> {
        let execution_arn = self.start_execution(request).await?;
        let mut result = request.result(ResultStatus::Accepted);
        result.execution_arn = Some(execution_arn.clone());
        events::publish_result(&self.events, Some(request.kind), &result).await?;
        let mut outcome = RequestOutcome::new(RequestState::Started);
        outcome.execution_arn = Some(execution_arn.clone());
        self.store
            .complete_request(&request.request_id, &outcome)
            .await
            .map_err(FunctionError::from)?;
        Ok(self.outcome(request, Disposition::Accepted, Some(execution_arn), None))
    }

    /// Stores the desired spec unless it is already the stored one; an update needs a platform
    /// that exists and was not decommissioned.
    async fn record_spec(&self, request: &Request, spec: &PlatformSpec) -> Result<(), Refusal> {
        let platform = &request.platform_id;
        let value = serde_json::to_value(spec).map_err(|e| {
            FunctionError::new(ErrorType::Terminal, format!("spec not serialisable: {e}"))
        })?;
        for attempt in 0..2 {
            let current = self
                .store
                .get_spec(platform)
                .await
                .map_err(FunctionError::from)?;
            if request.kind == RequestKind::PlatformUpdate {
                self.check_updatable(platform, current.is_some()).await?;
            }
            if current.as_ref().is_some_and(|c| c.value == value) {
                return Ok(());
            }
            match self
                .store
                .put_spec(platform, &value, current.map(|c| c.version))
                .await
            {
                Ok(_) => return Ok(()),
                Err(StoreError::VersionConflict { .. }) if attempt == 0 => continue,
                Err(e) => return Err(FunctionError::from(e).into()),
            }
        }
        Ok(())
    }

    /// The platform of a tenant request: it must exist and be Active.
    async fn active_platform(&self, request: &Request) -> Result<PlatformSpec, Refusal> {
        let platform = &request.platform_id;
        let Some(spec) = self
            .store
            .get_spec(platform)
            .await
            .map_err(FunctionError::from)?
        else {
            return Err(invalid(format!(
                "platform {platform:?} does not exist: provision it before onboarding or \
                 offboarding tenants"
            )));
        };
        let state = self.lifecycle(platform).await?;
        if state != Some(LifecycleState::Active) {
            let state = state.map_or_else(|| "not provisioned".to_owned(), |s| format!("{s:?}"));
            return Err(invalid(format!(
                "platform {platform:?} is {state}, not Active: tenants are onboarded and \
                 offboarded only on an Active platform"
            )));
        }
        serde_json::from_value(spec.value).map_err(|e| {
            Refusal::Error(FunctionError::new(
                ErrorType::Terminal,
                format!("the stored spec of platform {platform:?} cannot be read: {e}"),
            ))
        })
    }

    /// Records a tenant to onboard (`Requested`), checks it again against concurrent
    /// onboardings, and moves it to `Onboarding`. A redelivery finds its own record and carries on.
    async fn record_onboarding(
        &self,
        request: &Request,
        platform: &PlatformSpec,
        detail: &TenantRequest,
    ) -> Result<(), Refusal> {
        let (platform_id, id) = (&request.platform_id, &request.request_id);
        let Some(tenant) = &detail.tenant else {
            return Err(invalid("an onboard request needs `tenant`".to_owned()));
        };
        let name = &tenant.name;
        let records = self
            .store
            .list_tenant_records(platform_id)
            .await
            .map_err(FunctionError::from)?;
        let existing = records.iter().find(|r| &r.value.name == name);
        let mine = existing.filter(|r| &r.value.request_id == id);
        if let Some(mine) = mine.filter(|r| r.value.state != TenantState::Requested) {
            tracing::info!(tenant = %name, state = %mine.value.state, "tenant recorded by an earlier delivery");
            return Ok(());
        }
        let issues = onboarding_issues(platform, &records, tenant, id);
        if !issues.is_empty() {
            return Err(refused(ErrorType::InvalidRequest, issues));
        }
        let (version, previous) = match mine {
            Some(mine) => (mine.version, None),
            None => {
                let record = TenantRecord::new(tenant.clone(), TenantState::Requested, id.clone());
                let expected = existing.map(|r| r.version);
                match self
                    .store
                    .put_tenant_record(platform_id, &record, expected)
                    .await
                {
                    Ok(version) => (version, existing.cloned()),
                    Err(StoreError::VersionConflict { .. }) => {
                        return Err(Refusal::Rejected(
                            EventError::new(
                                ErrorType::Conflict,
                                format!(
                                    "tenant {name:?} of platform {platform_id:?} was recorded by \
                                     another request at the same time; send this request again \
                                     (with a new request id) if the tenant is still wanted"
                                ),
                            ),
                            Vec::new(),
                        ))
                    }
                    Err(e) => return Err(FunctionError::from(e).into()),
                }
            }
        };
        // Recorded: check again against every tenant recorded meanwhile.
        let records = self
            .store
            .list_tenant_records(platform_id)
            .await
            .map_err(FunctionError::from)?;
        let issues = onboarding_issues(platform, &records, tenant, id);
        if !issues.is_empty() {
            self.withdraw(platform_id, name, version, previous).await?;
            return Err(refused(ErrorType::Conflict, issues));
        }
        self.store
            .transition_tenant(
                platform_id,
                name,
                id,
                &[TenantState::Requested],
                TenantState::Onboarding,
                None,
            )
            .await
            .map_err(FunctionError::from)?;
        Ok(())
    }

    /// Takes back a tenant record this request wrote: restores the record it replaced (an
    /// offboarded tenant of the same name) or deletes it.
    async fn withdraw(
        &self,
        platform_id: &str,
        name: &str,
        version: u64,
        previous: Option<Versioned<TenantRecord>>,
    ) -> Result<(), FunctionError> {
        match previous {
            Some(previous) => {
                self.store
                    .put_tenant_record(platform_id, &previous.value, Some(version))
                    .await?;
            }
            None => {
                self.store
                    .delete_tenant(platform_id, name, Some(version))
                    .await?;
            }
        }
        Ok(())
    }

    /// Moves an Active or Failed tenant to `Offboarding` with the request's options. A tenant of
    /// the platform's spec without a record (onboarded by the provision workflow) counts as
    /// Active.
    async fn record_offboarding(
        &self,
        request: &Request,
        platform: &PlatformSpec,
        detail: &TenantRequest,
    ) -> Result<(), Refusal> {
        let (platform_id, id) = (&request.platform_id, &request.request_id);
        let Some(name) = detail.tenant_name.as_deref() else {
            return Err(invalid("an offboard request needs `tenantName`".to_owned()));
        };
        let current = self
            .store
            .get_tenant_record(platform_id, name)
            .await
            .map_err(FunctionError::from)?;
        let (mut record, expected) = match current {
            Some(current) if &current.value.request_id == id => {
                // An earlier delivery of this request recorded it.
                tracing::info!(tenant = %name, state = %current.value.state, "tenant recorded by an earlier delivery");
                return Ok(());
            }
            Some(current)
                if matches!(
                    current.value.state,
                    TenantState::Active | TenantState::Failed
                ) =>
            {
                (current.value, Some(current.version))
            }
            Some(current) if current.value.state.in_progress() => {
                return Err(Refusal::Rejected(
                    EventError::new(
                        ErrorType::Conflict,
                        format!(
                            "tenant {name:?} of platform {platform_id:?} is {} (request {:?}): \
                             send this request again (with a new request id) once that one has \
                             finished",
                            current.value.state, current.value.request_id
                        ),
                    ),
                    Vec::new(),
                ))
            }
            Some(_) => {
                return Err(invalid(format!(
                    "tenant {name:?} of platform {platform_id:?} is already offboarded"
                )))
            }
            None => match platform.tenants.iter().find(|t| t.name == name) {
                Some(spec) => (
                    TenantRecord::new(spec.clone(), TenantState::Active, String::new()),
                    None,
                ),
                None => {
                    return Err(invalid(format!(
                        "tenant {name:?} does not exist on platform {platform_id:?}: nothing to \
                         offboard"
                    )))
                }
            },
        };
        record.state = TenantState::Offboarding;
        record.failure = None;
        record.retain_data = detail.retain_data();
        record.schedule_key_deletion = detail.schedule_key_deletion();
        record.request_id = id.clone();
        match self
            .store
            .put_tenant_record(platform_id, &record, expected)
            .await
        {
            Ok(_) => Ok(()),
            Err(StoreError::VersionConflict { .. }) => Err(Refusal::Rejected(
                EventError::new(
                    ErrorType::Conflict,
                    format!(
                        "tenant {name:?} of platform {platform_id:?} was changed by another \
                         request at the same time; send this request again (with a new request \
                         id) once that one has finished"
                    ),
                ),
                Vec::new(),
            )),
            Err(e) => Err(FunctionError::from(e).into()),
        }
    }

    async fn check_updatable(&self, platform: &str, has_spec: bool) -> Result<(), Refusal> {
        let state = self.lifecycle(platform).await?;
        if !has_spec || state == Some(LifecycleState::Decommissioned) {
            return Err(invalid(format!("platform {platform:?} does not exist (or was decommissioned): provision it instead of updating it")));
        }
        Ok(())
    }

    async fn check_decommissionable(&self, request: &Request) -> Result<(), Refusal> {
        let platform = &request.platform_id;
        let has_spec = self
            .store
            .get_spec(platform)
            .await
            .map_err(FunctionError::from)?
            .is_some();
        let state = self.lifecycle(platform).await?;
        if !has_spec || state == Some(LifecycleState::Decommissioned) {
            return Err(invalid(format!("platform {platform:?} does not exist or is already decommissioned: nothing to decommission")));
        }
        Ok(())
    }

    async fn lifecycle(&self, platform: &str) -> Result<Option<LifecycleState>, FunctionError> {
        Ok(self
            .store
            .get_status(platform)
            .await?
            .map(|s| s.value.state))
    }

    /// Sets the platform's lifecycle state (and last error) unless already so; retries once on a
    /// version conflict (a phase may be recording its status at the same time).
    async fn set_state(
        &self,
        platform: &str,
        state: LifecycleState,
        last_error: Option<LastError>,
    ) -> Result<(), FunctionError> {
        for attempt in 0..2 {
            let current = self.store.get_status(platform).await?;
            let mut status = current
                .as_ref()
                .map(|c| c.value.clone())
                .unwrap_or_else(|| PlatformStatus::new(state));
            if current.is_some() && status.state == state && status.last_error == last_error {
                return Ok(());
            }
            status.state = state;
            status.last_error = last_error.clone();
            match self
                .store
                .update_status(platform, &status, current.map(|c| c.version))
                .await
            {
                Ok(_) => return Ok(()),
                Err(StoreError::VersionConflict { .. }) if attempt == 0 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn start_execution(&self, request: &Request) -> Result<String, FunctionError> {
        let workflow = match request.kind {
            RequestKind::PlatformDecommission => DECOMMISSION_WORKFLOW,
            RequestKind::TenantOnboarding => ONBOARD_WORKFLOW,
            RequestKind::TenantOffboarding => OFFBOARD_WORKFLOW,
            _ => PROVISION_WORKFLOW,
        };
        let arn = state_machine_arn(self.deps, workflow).await?;
        let mut input = json!({
            "platformId": request.platform_id,
            "requestId": request.request_id,
            "operation": request.operation(),
            "pollSeconds": poll_seconds(),
        });
        // What the provision workflow's Map states fan out over.
        if let Some(spec) = request.spec() {
            input["items"] = json!(crate::plan::work_items(spec));
        }
        if let Some(tenant) = request.tenant_name() {
            input["tenant"] = json!(tenant);
        }
        let started = aws_sdk_sfn::Client::new(&self.deps.aws)
            .start_execution()
            .state_machine_arn(&arn)
            .name(&request.request_id)
            .input(input.to_string())
            .send()
            .await;
        match started {
            Ok(out) => Ok(out.execution_arn().to_owned()),
            // An earlier delivery started it (names are unique per state machine for 90 days).
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_execution_already_exists()) =>
            {
                Ok(execution_arn(&arn, &request.request_id))
            }
            Err(e) => Err(crate::phases::aws_error("StartExecution", e)),
        }
    }

    /// Refuses a recorded request: releases the lease if it holds it, publishes `Rejected`,
    /// records the outcome.
    async fn reject(
        &self,
        request: &Request,
        error: EventError,
        issues: Vec<Issue>,
    ) -> Result<IntakeOutcome, FunctionError> {
        self.release(request).await?;
        let mut result = request.result(ResultStatus::Rejected);
        result.error = Some(error.clone());
        result.issues = issues;
        events::publish_result(&self.events, Some(request.kind), &result).await?;
        let mut outcome = RequestOutcome::new(RequestState::Rejected);
        outcome.error = Some(LastError::from(&error));
        self.store
            .complete_request(&request.request_id, &outcome)
            .await?;
        Ok(self.outcome(request, Disposition::Rejected, None, Some(error.message)))
    }

    /// A request that could not be started for a reason retrying will not fix (e.g. the state
    /// machine does not exist): the platform is marked failed, the lease released, `Failed`
    /// published.
    async fn fail(
        &self,
        request: &Request,
        e: FunctionError,
    ) -> Result<IntakeOutcome, FunctionError> {
        tracing::error!(request_id = %request.request_id, error = %e, "intake failed");
        let mut error = EventError::from(&e);
        error.phase = Some(INTAKE_PHASE.to_owned());
        let last = LastError::from(&error);
        let platform = &request.platform_id;
        if let Some(tenant) = request.tenant_name() {
            // The tenant fails, not the platform; only a record this request owns changes.
            let failure = TenantFailure {
                phase: INTAKE_PHASE.to_owned(),
                reason: error.message.clone(),
                code: Some(error.code.clone()),
            };
            self.store
                .transition_tenant(
                    platform,
                    tenant,
                    &request.request_id,
                    &[
                        TenantState::Requested,
                        TenantState::Onboarding,
                        TenantState::Offboarding,
                    ],
                    TenantState::Failed,
                    Some(&failure),
                )
                .await?;
        } else if self.store.get_status(platform).await?.is_some() {
            self.set_state(platform, LifecycleState::Failed, Some(last.clone()))
                .await?;
        }
        self.release(request).await?;
        let mut result = request.result(ResultStatus::Failed);
        result.error = Some(error.clone());
        events::publish_result(&self.events, Some(request.kind), &result).await?;
        let mut outcome = RequestOutcome::new(RequestState::Failed);
        outcome.error = Some(last);
        self.store
            .complete_request(&request.request_id, &outcome)
            .await?;
        Ok(self.outcome(request, Disposition::Failed, None, Some(error.message)))
    }

    fn outcome(
        &self,
        request: &Request,
        disposition: Disposition,
        execution_arn: Option<String>,
        reason: Option<String>,
    ) -> IntakeOutcome {
        IntakeOutcome {
            request_id: request.request_id.clone(),
            platform_id: request.platform_id.clone(),
            disposition,
            execution_arn,
            reason,
        }
    }
}

/// Why `accept` stopped: a refusal to answer (with the validation issues, if any), or an error.
enum Refusal {
    Rejected(EventError, Vec<Issue>),
    Error(FunctionError),
}

/// A refusal of an invalid request.
fn invalid(message: String) -> Refusal {
    Refusal::Rejected(
        EventError::new(ErrorType::InvalidRequest, message),
        Vec::new(),
    )
}

/// A refusal listing `issues` (the message names the first, its field and rule).
fn refused(error_type: ErrorType, issues: Vec<Issue>) -> Refusal {
    let count = issues.len();
    let first = issues.first().map(ToString::to_string).unwrap_or_default();
    let message = format!(
        "request refused: {count} problem{}, first: {first}",
        if count == 1 { "" } else { "s" }
    );
    Refusal::Rejected(EventError::new(error_type, message), issues)
}

impl From<FunctionError> for Refusal {
    fn from(e: FunctionError) -> Self {
        Refusal::Error(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(detail_type: &str, detail: Value) -> Value {
        json!({
            "version": "0", "id": "e-1", "detail-type": detail_type, "source": "acme.platforms",
            "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
            "resources": [], "detail": detail
        })
    }

    fn example_spec() -> Value {
        let text = include_str!("../../../examples/platform.json");
        serde_json::from_str(text).unwrap()
    }

    fn rejected(p: Parsed) -> Rejection {
        match p {
            Parsed::Rejected(r) => *r,
            Parsed::Request(r) => panic!("accepted: {r:?}"),
            Parsed::Ignored { detail_type } => panic!("ignored {detail_type}"),
        }
    }

    #[test]
    fn a_valid_provision_parses() {
        let spec = example_spec();
        let id = spec["id"].as_str().unwrap().to_owned();
        let p = parse(envelope(
            "PlatformProvisionRequested",
            json!({"schemaVersion": "1", "requestId": "req-1", "platformId": id, "spec": spec}),
        ));
        let Parsed::Request(r) = p else {
            panic!("not parsed")
        };
        assert_eq!(r.kind, RequestKind::PlatformProvision);
        assert!(r.spec().is_some());
        assert!(r.payload_hash.starts_with("fnv1a64:"));
    }

    #[test]
    fn every_detail_problem_is_reported() {
        let mut spec = example_spec();
        spec["network"]["azCount"] = json!(7);
        let r = rejected(parse(envelope(
            "PlatformProvisionRequested",
            json!({"schemaVersion": "2", "requestId": "bad id!", "platformId": "Acme", "spec": spec}),
        )));
        let paths: Vec<&str> = r.issues.iter().map(|i| i.path.as_str()).collect();
        assert!(paths.contains(&"detail.schemaVersion"), "{paths:?}");
        assert!(paths.contains(&"detail.requestId"), "{paths:?}");
        assert!(paths.contains(&"detail.platformId"), "{paths:?}");
        assert!(
            paths.iter().any(|p| p.starts_with("$.network")),
            "{paths:?}"
        );
        assert_eq!(r.error.code, "Tenantry.InvalidRequest");
        assert_eq!(r.request_id, "bad id!");
    }

    #[test]
    fn unknown_fields_and_kinds_are_rejected() {
        let r = rejected(parse(envelope(
            "PlatformDecommissionRequested",
            json!({"schemaVersion": "1", "requestId": "r", "platformId": "acme", "force": true}),
        )));
        assert_eq!(r.issues[0].rule, rules::UNKNOWN_FIELD);
        let r = rejected(parse(envelope("Nonsense", json!({"requestId": "r"}))));
        assert_eq!(r.kind, None);
        assert_eq!(r.request_id, "r");
        let r = rejected(parse(envelope(
            "DriftCheckRequested",
            json!({"schemaVersion": "1", "requestId": "r", "platformId": "acme"}),
        )));
        assert!(
            r.error.message.contains("not yet supported"),
            "{}",
            r.error.message
        );
        let r = rejected(parse(json!({"detail": {"requestId": "x"}})));
        assert!(r.error.message.contains("not an EventBridge event"));
    }

    #[test]
    fn spec_id_must_match_and_decommission_takes_no_spec() {
        let spec = example_spec();
        let r = rejected(parse(envelope(
            "PlatformUpdateRequested",
            json!({"schemaVersion": "1", "requestId": "r", "platformId": "other", "spec": spec}),
        )));
        assert!(r.issues.iter().any(|i| i.path == "$.id"), "{:?}", r.issues);
        let r = rejected(parse(envelope(
            "PlatformDecommissionRequested",
            json!({"schemaVersion": "1", "requestId": "r", "platformId": "acme", "spec": {}}),
        )));
        assert_eq!(r.issues[0].path, "detail.spec");
    }

    fn tenant_envelope(detail_type: &str, detail: Value) -> Value {
        envelope(detail_type, detail)
    }

    fn onboard(tenant: Value) -> Value {
        tenant_envelope(
            "TenantOnboardingRequested",
            json!({"schemaVersion": "1", "requestId": "req-t", "platformId": "acme", "tenant": tenant}),
        )
    }

    fn offboard(name: &str, extra: Value) -> Value {
        let mut detail = json!({"schemaVersion": "1", "requestId": "req-o", "platformId": "acme", "tenantName": name});
        if let (Some(d), Some(e)) = (detail.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        tenant_envelope("TenantOffboardingRequested", detail)
    }

    #[test]
    fn tenant_requests_parse() {
        let Parsed::Request(r) = parse(onboard(json!({"name": "team-a", "costCentre": "cc-1"})))
        else {
            panic!("not parsed")
        };
        assert_eq!(r.kind, RequestKind::TenantOnboarding);
        assert_eq!(r.tenant_name(), Some("team-a"));
        assert_eq!(r.operation(), "onboard");
        assert!(r.spec().is_none());
        let result = r.result(ResultStatus::Accepted);
        assert_eq!(result.tenant.as_deref(), Some("team-a"));
        let Parsed::Request(r) = parse(offboard("team-a", json!({"retainData": true}))) else {
            panic!("not parsed")
        };
        assert_eq!(r.kind, RequestKind::TenantOffboarding);
        let Body::Tenant(detail) = &r.body else {
            panic!("not a tenant body")
        };
        assert!(detail.retain_data() && !detail.schedule_key_deletion());
    }

    #[test]
    fn hostile_tenant_names_are_refused_naming_field_and_rule() {
        for name in [
            "../x",
            "a*",
            "kube-system",
            "default",
            &"a".repeat(64),
            "Team-A",
            "team a",
            "tëam",
            "team\"a",
            "team'a",
        ] {
            let r = rejected(parse(onboard(json!({"name": name, "costCentre": "cc-1"}))));
            assert!(
                r.issues.iter().any(|i| i.path == "$.name"),
                "{name:?}: {:?}",
                r.issues
            );
            assert!(r.error.message.contains("$.name"), "{}", r.error.message);
            assert_eq!(r.tenant.as_deref(), Some(name));
            let r = rejected(parse(offboard(name, json!({}))));
            assert!(
                r.issues.iter().any(|i| i.path == "detail.tenantName"),
                "{name:?}: {:?}",
                r.issues
            );
        }
    }

    #[test]
    fn tenant_fields_are_checked_per_kind() {
        let mut e = onboard(json!({"name": "team-a", "costCentre": "cc-1"}));
        e["detail"]["retainData"] = json!(false);
        let r = rejected(parse(e));
        assert_eq!(r.issues.len(), 1, "{:?}", r.issues);
        assert_eq!(
            (r.issues[0].path.as_str(), r.issues[0].rule.as_str()),
            ("detail.retainData", rules::UNKNOWN_FIELD)
        );
        let r = rejected(parse(tenant_envelope(
            "TenantOffboardingRequested",
            json!({"schemaVersion": "1", "requestId": "r", "platformId": "acme"}),
        )));
        assert_eq!(r.issues[0].path, "detail.tenantName");
        assert_eq!(r.issues[0].rule, rules::MISSING_FIELD);
        let r = rejected(parse(offboard("team-a", json!({"force": true}))));
        assert_eq!(r.issues[0].rule, rules::UNKNOWN_FIELD);
        // Every problem of the tenant at once, and no "missing tenant" on top of them.
        let r = rejected(parse(onboard(
            json!({"name": "Bad Name", "costCentre": "cc-1", "s3Prefix": "../up/"}),
        )));
        let paths: Vec<&str> = r.issues.iter().map(|i| i.path.as_str()).collect();
        assert!(
            paths.contains(&"$.name") && paths.contains(&"$.s3Prefix"),
            "{paths:?}"
        );
        assert!(!paths.contains(&"detail.tenant"), "{paths:?}");
    }

    fn record(name: &str, state: TenantState, request: &str) -> Versioned<TenantRecord> {
        let spec: TenantSpec =
            serde_json::from_value(json!({"name": name, "costCentre": "cc"})).unwrap();
        Versioned {
            value: TenantRecord::new(spec, state, request),
            version: 1,
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn onboarding_is_checked_against_live_tenants_only() {
        let mut platform: PlatformSpec = serde_json::from_value(example_spec()).unwrap();
        let listed: TenantSpec =
            serde_json::from_value(json!({"name": "listed", "costCentre": "cc"})).unwrap();
        platform.tenants = vec![listed];
        let new = |name: &str| -> TenantSpec {
            serde_json::from_value(json!({"name": name, "costCentre": "cc"})).unwrap()
        };
        let records = vec![
            record("active", TenantState::Active, "r-1"),
            record("gone", TenantState::Offboarded, "r-2"),
            record("mine", TenantState::Requested, "req-me"),
        ];
        let dup = onboarding_issues(&platform, &records, &new("active"), "req-me");
        assert!(
            dup.iter()
                .any(|i| i.path == "$.name" && i.rule == rules::DUPLICATE_NAME),
            "{dup:?}"
        );
        assert!(!onboarding_issues(&platform, &records, &new("listed"), "req-me").is_empty());
        assert!(onboarding_issues(&platform, &records, &new("gone"), "req-me").is_empty());
        assert!(onboarding_issues(&platform, &records, &new("mine"), "req-me").is_empty());
        assert!(!onboarding_issues(&platform, &records, &new("mine"), "req-other").is_empty());
        // An offboarded tenant of the platform's spec may be onboarded again.
        let records = vec![record("listed", TenantState::Offboarded, "r-3")];
        assert!(onboarding_issues(&platform, &records, &new("listed"), "req-me").is_empty());
        // Prefixes that nest with a live tenant's are refused.
        let mut nested = new("other");
        nested.s3_prefix = Some("tenants/active/x/".into());
        let records = vec![record("active", TenantState::Active, "r-1")];
        let issues = onboarding_issues(&platform, &records, &nested, "req-me");
        assert!(issues.iter().any(|i| i.path == "$.s3Prefix"), "{issues:?}");
    }

    #[test]
    fn retained_data_keeps_its_name_and_prefixes_until_released() {
        let platform: PlatformSpec = serde_json::from_value(example_spec()).unwrap();
        let tenant = |name: &str, owner: &str| -> TenantSpec {
            serde_json::from_value(json!({
                "name": name, "costCentre": "cc",
                "owners": [format!("arn:aws:iam::111122223333:role/{owner}")],
            }))
            .unwrap()
        };
        let mut kept = record("ledger", TenantState::Offboarded, "r-1");
        kept.value.spec = tenant("ledger", "ledger-team");
        kept.value.retain_data = true;
        let records = vec![kept];
        // Another team taking the name would get the kept prefix and key.
        let taken = onboarding_issues(&platform, &records, &tenant("ledger", "intruder"), "r-2");
        assert!(
            taken
                .iter()
                .any(|i| i.path == "$.name" && i.rule == rules::RETAINED_DATA),
            "{taken:?}"
        );
        // The same tenant reclaims its data.
        let back = onboarding_issues(&platform, &records, &tenant("ledger", "ledger-team"), "r-2");
        assert!(back.is_empty(), "{back:?}");
        // The kept prefix stays taken for every other name.
        let mut nested = tenant("other", "intruder");
        nested.s3_prefix = Some("tenants/ledger/".into());
        let issues = onboarding_issues(&platform, &records, &nested, "r-2");
        assert!(
            issues
                .iter()
                .any(|i| i.path == "$.s3Prefix" && i.rule == rules::PREFIX_OVERLAP),
            "{issues:?}"
        );
        // Released data frees the name.
        let mut released = records[0].clone();
        released.value.retain_data = false;
        let free = onboarding_issues(&platform, &[released], &tenant("ledger", "intruder"), "r-2");
        assert!(free.is_empty(), "{free:?}");
    }

    #[test]
    fn own_events_are_ignored() {
        let mut e = envelope("PlatformProvisionAccepted", json!({}));
        e["source"] = json!("tenantry");
        assert!(matches!(parse(e), Parsed::Ignored { .. }));
    }

    #[test]
    fn input_shapes_are_told_apart() {
        let sqs: IntakeInput =
            serde_json::from_value(json!({"Records": [{"messageId": "m", "body": "{}"}]})).unwrap();
        assert!(matches!(sqs, IntakeInput::Sqs(e) if e.records.len() == 1));
        let bare: IntakeInput = serde_json::from_value(envelope("X", json!({}))).unwrap();
        assert!(matches!(bare, IntakeInput::Event(_)));
    }

    #[test]
    fn execution_arns_derive_from_the_state_machine() {
        assert_eq!(
            execution_arn(
                "arn:aws:states:us-east-1:1:stateMachine:tenantry-provision-platform",
                "r-1"
            ),
            "arn:aws:states:us-east-1:1:execution:tenantry-provision-platform:r-1"
        );
    }
}
