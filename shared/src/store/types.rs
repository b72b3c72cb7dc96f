//! The records the store keeps.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A record together with the version it was read at (pass that version back to update it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
    #[serde(with = "rfc3339")]
    pub updated_at: DateTime<Utc>,
}

/// Where a platform is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub enum LifecycleState {
    Requested,
    Provisioning,
    Active,
    /// Active, and the last drift check found differences it did not (or could not) repair.
    /// Requests are served as for `Active`; a check that finds nothing left makes it `Active`.
    Drifted,
    Updating,
    Failed,
    Decommissioning,
    Decommissioned,
}

impl LifecycleState {
    /// Whether the platform is built and serves tenant requests and drift checks.
    pub fn is_active(self) -> bool {
        matches!(self, LifecycleState::Active | LifecycleState::Drifted)
    }
}

/// Where one provisioning phase (network, cluster, nodegroups, ...) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub enum PhaseState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Skipped,
}

/// A failure as recorded and reported: the phase, the AWS (or Tenantry) error code and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    pub retryable: bool,
}

/// An error as results report it, recorded (the reverse of `EventError::from(&LastError)`).
impl From<&crate::events::EventError> for LastError {
    fn from(e: &crate::events::EventError) -> Self {
        LastError {
            code: e.code.clone(),
            message: e.message.clone(),
            phase: e.phase.clone(),
            retryable: e.retryable,
        }
    }
}

/// The status of one phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseStatus {
    pub state: PhaseState,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_rfc3339")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_rfc3339")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default)]
    pub attempts: u32,
}

impl PhaseStatus {
    pub fn new(state: PhaseState) -> Self {
        PhaseStatus {
            state,
            started_at: None,
            finished_at: None,
            message: None,
            attempts: 0,
        }
    }
}

/// The `STATUS` record of a platform: lifecycle state, per-phase status, the outputs the phases
/// produced (VPC id, subnet ids, cluster ARN, OIDC provider ARN, ...) and the last failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformStatus {
    pub state: LifecycleState,
    #[serde(default)]
    pub phases: BTreeMap<String, PhaseStatus>,
    #[serde(default)]
    pub outputs: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    /// The counts of the last drift check (its report: `Store::get_drift_report`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_drift: Option<crate::drift::DriftSummary>,
    /// The components with an open drift difference, over the last full check and the
    /// component checks since (the platform is `Drifted` while any is).
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub drifted: std::collections::BTreeSet<crate::plan::Phase>,
}

impl PlatformStatus {
    pub fn new(state: LifecycleState) -> Self {
        PlatformStatus {
            state,
            phases: BTreeMap::new(),
            outputs: BTreeMap::new(),
            last_error: None,
            last_drift: None,
            drifted: Default::default(),
        }
    }
}

/// The platform's lease: one mutating operation at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    pub platform_id: String,
    pub holder: String,
    pub operation: String,
    #[serde(with = "rfc3339")]
    pub acquired_at: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    pub expires_at: DateTime<Utc>,
    /// Increases with every acquisition (renewals keep it): a fencing token for writers that
    /// want to reject work from a holder whose lease has since been taken over.
    pub fence: u64,
}

/// Everything the platform's `LEASE` item says: the exclusive holder, the shared holders, and
/// the fencing token (as stored, expired holders included).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseHolders {
    pub exclusive: Option<Lease>,
    pub shares: Vec<Lease>,
    pub fence: u64,
}

impl LeaseHolders {
    /// The exclusive holder or share held by `holder`, if the item names it.
    pub fn find(&self, holder: &str) -> Option<&Lease> {
        self.exclusive
            .iter()
            .chain(&self.shares)
            .find(|l| l.holder == holder)
    }

    /// Every holder the item names: the exclusive one first, then the shares.
    pub fn all(&self) -> impl Iterator<Item = &Lease> {
        self.exclusive.iter().chain(&self.shares)
    }
}

impl Lease {
    /// Whether the lease still excludes other holders at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }
}

impl RequestOutcome {
    pub fn new(state: RequestState) -> Self {
        RequestOutcome {
            state,
            execution_arn: None,
            error: None,
        }
    }
}

/// Where an idempotent request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub enum RequestState {
    Accepted,
    Started,
    Succeeded,
    Failed,
    Rejected,
}

impl RequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Accepted => "Accepted",
            RequestState::Started => "Started",
            RequestState::Succeeded => "Succeeded",
            RequestState::Failed => "Failed",
            RequestState::Rejected => "Rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            RequestState::Accepted,
            RequestState::Started,
            RequestState::Succeeded,
            RequestState::Failed,
            RequestState::Rejected,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// The idempotency record of one request id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestInfo {
    pub request_id: String,
    pub platform_id: String,
    pub kind: String,
    pub payload_hash: String,
    pub state: RequestState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<LastError>,
    #[serde(with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    pub updated_at: DateTime<Utc>,
    /// When DynamoDB may delete the record (epoch seconds).
    pub expires_at: i64,
    /// Where the request came from, as AWS delivered it (None for records written before
    /// Tenantry kept it, and for requests recorded without an envelope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<RequestOrigin>,
}

/// What AWS says about who sent a request. For `PutEvents` EventBridge names the sending account
/// (and the bus policy admits only the principals the template names); the principal itself is
/// in CloudTrail's record of the `PutEvents` call, found by the event id and time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestOrigin {
    /// How it arrived: `eventbridge` (an EventBridge event, through the queue or invoked with it).
    pub channel: String,
    /// The EventBridge event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The account that put the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The event's `source`.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// When EventBridge received the event (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// What [`Store::record_request`](super::Store::record_request) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestRecord {
    /// First time this request id was seen; the record now exists.
    New(RequestInfo),
    /// The id was seen before. `same_payload` is false when the earlier request carried a
    /// different payload: a client bug (request ids must not be reused), not a redelivery.
    Duplicate {
        existing: RequestInfo,
        same_payload: bool,
    },
}

/// How a request ended (or that it started).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOutcome {
    pub state: RequestState,
    pub execution_arn: Option<String>,
    pub error: Option<LastError>,
}

/// How a run (a Step Functions execution, drift check or compliance sweep) is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "Running",
            RunStatus::Succeeded => "Succeeded",
            RunStatus::Failed => "Failed",
            RunStatus::TimedOut => "TimedOut",
            RunStatus::Aborted => "Aborted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            RunStatus::Running,
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::TimedOut,
            RunStatus::Aborted,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// One entry of a platform's run history. `(started_at, kind, request_id)` identifies it:
/// recording the same run again (e.g. when it finishes) overwrites it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// `provision`, `update`, `decommission`, `onboard`, `offboard`, `drift`, `compliance`, ...
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(with = "rfc3339")]
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_rfc3339")]
    pub finished_at: Option<DateTime<Utc>>,
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<LastError>,
    /// Kind-specific detail: a drift report, compliance findings summary, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
    /// Epoch seconds after which DynamoDB deletes the entry; set by the store when recording.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl RunRecord {
    pub fn new(kind: impl Into<String>, started_at: DateTime<Utc>, status: RunStatus) -> Self {
        RunRecord {
            kind: kind.into(),
            execution_arn: None,
            request_id: None,
            started_at,
            finished_at: None,
            status,
            error: None,
            detail: None,
            expires_at: None,
        }
    }
}

/// One AWS (or Kubernetes) resource Tenantry created for a platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRecord {
    /// e.g. `vpc`, `subnet`, `kms-key`, `eks-cluster`, `iam-role`, `nodegroup`.
    pub resource_type: String,
    /// The resource's id (VPC id, key id, cluster name, role name, ...).
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// The phase that owns (creates and deletes) the resource.
    pub phase: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Value>,
    /// Set by the store: first recorded.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_rfc3339")]
    pub created_at: Option<DateTime<Utc>>,
    /// Set by the store: last recorded.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_rfc3339")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl ResourceRecord {
    pub fn new(
        resource_type: impl Into<String>,
        id: impl Into<String>,
        phase: impl Into<String>,
    ) -> Self {
        ResourceRecord {
            resource_type: resource_type.into(),
            id: id.into(),
            arn: None,
            phase: phase.into(),
            tenant: None,
            tags: BTreeMap::new(),
            attributes: None,
            created_at: None,
            updated_at: None,
        }
    }
}

/// A platform as listed by the `GSI1` index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformSummary {
    pub platform_id: String,
    pub spec_version: u64,
    #[serde(with = "rfc3339")]
    pub updated_at: DateTime<Utc>,
}

/// A tenant record of a platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantEntry {
    pub name: String,
    pub record: Versioned<Value>,
}

/// Where a tenant is in its life. The tenant record is the single source of truth for it.
///
/// `Requested` (recorded by intake, being checked against concurrent requests) → `Onboarding`
/// (the onboarding execution runs) → `Active`; `Active` or `Failed` → `Offboarding` → `Offboarded`
/// (the record stays, for history; the name may be onboarded again). A failed onboarding or
/// offboarding leaves `Failed` with the phase and the reason. Every allowed change is a row of
/// [`TenantTransition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub enum TenantState {
    Requested,
    Onboarding,
    Active,
    Offboarding,
    Offboarded,
    Failed,
}

impl TenantState {
    pub const ALL: [TenantState; 6] = [
        TenantState::Requested,
        TenantState::Onboarding,
        TenantState::Active,
        TenantState::Offboarding,
        TenantState::Offboarded,
        TenantState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TenantState::Requested => "Requested",
            TenantState::Onboarding => "Onboarding",
            TenantState::Active => "Active",
            TenantState::Offboarding => "Offboarding",
            TenantState::Offboarded => "Offboarded",
            TenantState::Failed => "Failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Whether a request is working on the tenant (`Requested`, `Onboarding`, `Offboarding`).
    pub fn in_progress(self) -> bool {
        matches!(
            self,
            TenantState::Requested | TenantState::Onboarding | TenantState::Offboarding
        )
    }
}

impl std::fmt::Display for TenantState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change of a tenant record, named for why it happens. [`TenantTransition::rule`] states once
/// which states each one leaves and where it goes; the store's tenant transitions
/// (`store/tenants.rs`) check it and are the only writers of tenant records in product code.
///
/// | transition | from | to | by | written as |
/// |---|---|---|---|---|
/// | `Request` | none, `Offboarded` | `Requested` | intake (onboard) | versioned put |
/// | `Withdraw` | `Requested` | the record it replaced, or none | intake (onboard refused late) | versioned put/delete |
/// | `StartOnboarding` | `Requested` | `Onboarding` | intake (onboard) | guarded update |
/// | `StartOffboarding` | `Active`, `Failed` | `Offboarding` | intake (offboard) | versioned put |
/// | `ProvisionOnboarding` | any, none | `Onboarding` | tenants phase (provision, update) | versioned put |
/// | `DecommissionOffboarding` | any, none | `Offboarding` | tenants phase (decommission) | versioned put |
/// | `Onboarded` | `Requested`, `Onboarding` | `Active` | finalize | guarded update |
/// | `Offboarded` | `Offboarding` | `Offboarded` | finalize | guarded update |
/// | `Fail` | `Requested`, `Onboarding`, `Offboarding` | `Failed` | intake, finalize | guarded update |
///
/// A versioned put states the version its writer read (none: the record must not exist); a
/// guarded update holds only while the record is still the request's (`requestId`) and in a
/// `from` state, so a late or repeated step never overwrites a newer request's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TenantTransition {
    Request,
    Withdraw,
    StartOnboarding,
    StartOffboarding,
    ProvisionOnboarding,
    DecommissionOffboarding,
    Onboarded,
    Offboarded,
    Fail,
}

/// How a transition is written (see [`TenantTransition`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantWrite {
    /// A put (or delete) conditional on the version the writer read.
    Versioned,
    /// One update conditional on the record's request and state.
    Guarded,
}

/// One row of the transition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantRule {
    /// The states the record may be in.
    pub from: &'static [TenantState],
    /// Whether the transition may also start from no record.
    pub from_none: bool,
    /// Where the record goes (`None` for `Withdraw`: the record it replaced, or none).
    pub to: Option<TenantState>,
    pub write: TenantWrite,
}

impl TenantTransition {
    pub const ALL: [TenantTransition; 9] = [
        TenantTransition::Request,
        TenantTransition::Withdraw,
        TenantTransition::StartOnboarding,
        TenantTransition::StartOffboarding,
        TenantTransition::ProvisionOnboarding,
        TenantTransition::DecommissionOffboarding,
        TenantTransition::Onboarded,
        TenantTransition::Offboarded,
        TenantTransition::Fail,
    ];

    /// The transition table (the same as in the type's documentation).
    pub fn rule(self) -> TenantRule {
        use TenantState::*;
        use TenantTransition as T;
        use TenantWrite::{Guarded, Versioned};
        const ANY: &[TenantState] = &TenantState::ALL;
        let (from, from_none, to, write): (&'static [TenantState], bool, _, _) = match self {
            T::Request => (&[Offboarded], true, Some(Requested), Versioned),
            T::Withdraw => (&[Requested], false, None, Versioned),
            T::StartOnboarding => (&[Requested], false, Some(Onboarding), Guarded),
            T::StartOffboarding => (&[Active, Failed], false, Some(Offboarding), Versioned),
            T::ProvisionOnboarding => (ANY, true, Some(Onboarding), Versioned),
            T::DecommissionOffboarding => (ANY, true, Some(Offboarding), Versioned),
            T::Onboarded => (&[Requested, Onboarding], false, Some(Active), Guarded),
            T::Offboarded => (&[Offboarding], false, Some(Offboarded), Guarded),
            T::Fail => (
                &[Requested, Onboarding, Offboarding],
                false,
                Some(Failed),
                Guarded,
            ),
        };
        TenantRule {
            from,
            from_none,
            to,
            write,
        }
    }

    /// Whether the transition may start from `state` (`None`: no record).
    pub fn allows(self, state: Option<TenantState>) -> bool {
        let rule = self.rule();
        state.map_or(rule.from_none, |s| rule.from.contains(&s))
    }
}

/// What an offboarding does with the tenant's data (see [`TenantRecord`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OffboardOptions {
    pub retain_data: bool,
    pub schedule_key_deletion: bool,
}

/// Why a tenant operation failed: the phase and the reason (and the error code, when known).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantFailure {
    pub phase: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// The tenant record (`PLATFORM#<id>` / `TENANT#<name>`): the tenant's spec and where it is.
/// Stored versioned like the platform's spec and status (see [`Store::put_tenant_record`]).
///
/// [`Store::put_tenant_record`]: super::Store::put_tenant_record
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantRecord {
    pub name: String,
    pub spec: crate::spec::TenantSpec,
    pub state: TenantState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<TenantFailure>,
    /// Offboarding: keep the tenant's S3 prefix and KMS key.
    #[serde(default)]
    pub retain_data: bool,
    /// Offboarding with `retain_data`: schedule the kept key for deletion (maximum window).
    #[serde(default)]
    pub schedule_key_deletion: bool,
    /// The request that last changed the record (empty for records that predate the lifecycle).
    #[serde(default)]
    pub request_id: String,
    /// Set by the store on every write.
    #[serde(with = "rfc3339")]
    pub updated_at: DateTime<Utc>,
}

impl TenantRecord {
    /// A record in `state` for `request_id`, without failure or offboarding options.
    pub fn new(
        spec: crate::spec::TenantSpec,
        state: TenantState,
        request_id: impl Into<String>,
    ) -> Self {
        TenantRecord {
            name: spec.name.clone(),
            spec,
            state,
            failure: None,
            retain_data: false,
            schedule_key_deletion: false,
            request_id: request_id.into(),
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }
}

/// RFC 3339 (de)serialisation for `DateTime<Utc>` (chrono's `serde` feature is not enabled).
pub mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::super::keys::timestamp(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// [`rfc3339`] for optional times.
pub mod opt_rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| {
                DateTime::parse_from_rfc3339(&s)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
    }
}

/// The canonical serialisation of a JSON value: object keys sorted, no white space. Two values
/// that differ only in key order serialise alike (request payload hashes, manifest digests).
pub fn canonical_json(value: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(&map[k], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut text = String::new();
    write(value, &mut text);
    text
}

/// A stable hash of a JSON payload (FNV-1a 64 over its [`canonical_json`]), for
/// [`Store::record_request`](super::Store::record_request).
pub fn payload_hash(payload: &Value) -> String {
    let hash = crate::naming::fnv1a64(&canonical_json(payload));
    format!("fnv1a64:{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn status_serialises_in_camel_case_and_round_trips() {
        let mut status = PlatformStatus::new(LifecycleState::Provisioning);
        let mut phase = PhaseStatus::new(PhaseState::Failed);
        phase.started_at = Some(Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap());
        phase.attempts = 2;
        status.phases.insert("network".into(), phase);
        status.outputs.insert("vpcId".into(), json!("vpc-123"));
        status.last_error = Some(LastError {
            code: "ThrottlingException".into(),
            message: "Rate exceeded".into(),
            phase: Some("network".into()),
            retryable: true,
        });
        let v = serde_json::to_value(&status).unwrap();
        assert_eq!(
            v,
            json!({
                "state": "Provisioning",
                "phases": {"network": {"state": "Failed", "startedAt": "2026-01-02T03:04:05.000Z", "attempts": 2}},
                "outputs": {"vpcId": "vpc-123"},
                "lastError": {"code": "ThrottlingException", "message": "Rate exceeded", "phase": "network", "retryable": true}
            })
        );
        let back: PlatformStatus = serde_json::from_value(v).unwrap();
        assert_eq!(back, status);
    }

    /// Follows `path` from no record; panics at the first step the table refuses.
    fn walk(path: &[TenantTransition]) -> Option<TenantState> {
        path.iter().fold(None, |state, t| {
            assert!(t.allows(state), "{t:?} from {state:?}");
            t.rule().to
        })
    }

    #[test]
    fn tenant_lifecycles_follow_the_table() {
        use TenantTransition::*;
        let onboarded = [Request, StartOnboarding, Onboarded];
        assert_eq!(walk(&onboarded), Some(TenantState::Active));
        let life = [&onboarded[..], &[StartOffboarding, Offboarded, Request]].concat();
        assert_eq!(walk(&life), Some(TenantState::Requested));
        assert_eq!(
            walk(&[Request, StartOnboarding, Fail, StartOffboarding, Fail]),
            Some(TenantState::Failed)
        );
        assert_eq!(
            walk(&[
                ProvisionOnboarding,
                Onboarded,
                DecommissionOffboarding,
                Offboarded
            ]),
            Some(TenantState::Offboarded)
        );
        assert_eq!(walk(&[Request, Withdraw]), None);
    }

    #[test]
    fn tenant_transitions_refuse_what_the_table_does_not_list() {
        use TenantState::*;
        use TenantTransition as T;
        for state in [Requested, Onboarding, Active, Offboarding, Failed] {
            assert!(!T::Request.allows(Some(state)), "{state}");
        }
        for state in [
            None,
            Some(Requested),
            Some(Onboarding),
            Some(Offboarding),
            Some(Offboarded),
        ] {
            assert!(!T::StartOffboarding.allows(state), "{state:?}");
        }
        assert!(!T::Onboarded.allows(Some(Offboarding)));
        assert!(!T::Offboarded.allows(Some(Onboarding)));
        assert!(!T::Fail.allows(Some(Active)) && !T::Fail.allows(Some(Offboarded)));
        for t in TenantTransition::ALL {
            let rule = t.rule();
            assert!(!rule.from.is_empty(), "{t:?}");
            if rule.write == TenantWrite::Guarded {
                // A guarded update moves only a record a request is working on.
                assert!(!rule.from_none, "{t:?}");
                assert!(rule.from.iter().all(|s| s.in_progress()), "{t:?}");
            }
        }
        assert!(T::ProvisionOnboarding.allows(None));
        assert!(TenantState::ALL
            .iter()
            .all(|s| T::DecommissionOffboarding.allows(Some(*s))));
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let a = json!({"b": 1, "a": [1, {"y": "2", "x": null}]});
        let b: Value =
            serde_json::from_str(r#"{"a": [1, {"x": null, "y": "2"}], "b": 1}"#).unwrap();
        assert_eq!(canonical_json(&a), r#"{"a":[1,{"x":null,"y":"2"}],"b":1}"#);
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(canonical_json(&json!({"k\"": "v"})), r#"{"k\"":"v"}"#);
    }

    #[test]
    fn payload_hash_ignores_key_order_but_not_content() {
        let a = json!({"b": 1, "a": [1, {"y": 2, "x": 1}]});
        let b: Value = serde_json::from_str(r#"{"a":[1,{"x":1,"y":2}],"b":1}"#).unwrap();
        assert_eq!(payload_hash(&a), payload_hash(&b));
        assert_ne!(
            payload_hash(&a),
            payload_hash(&json!({"b": 2, "a": [1, {"y": 2, "x": 1}]}))
        );
        assert!(payload_hash(&a).starts_with("fnv1a64:"));
        assert_eq!(payload_hash(&a).len(), "fnv1a64:".len() + 16);
    }
}
