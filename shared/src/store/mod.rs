//! The state store: one DynamoDB table holding every platform's desired spec, status, tenants,
//! resource inventory, run history and lease, plus request idempotency records.
//!
//! # Table design
//!
//! | PK                    | SK                          | what                                          |
//! |-----------------------|-----------------------------|-----------------------------------------------|
//! | `PLATFORM#<id>`       | `SPEC`                      | desired spec (`spec`, map), `version`; carries `GSI1PK`/`GSI1SK` |
//! | `PLATFORM#<id>`       | `STATUS`                    | [`PlatformStatus`] (`status`, map), `version` |
//! | `PLATFORM#<id>`       | `TENANT#<name>`             | [`TenantRecord`]: spec (`tenant`, map), `tenantState`, `version` |
//! | `PLATFORM#<id>`       | `RESOURCE#<type>#<id>`      | [`ResourceRecord`] (inventory)                |
//! | `PLATFORM#<id>`       | `RUN#<rfc3339 ms>#<kind>[#<requestId>]` | [`RunRecord`], TTL `expiresAt`    |
//! | `PLATFORM#<id>`       | `DRIFT#<requestId>`         | [`DriftReport`](crate::drift::DriftReport) (`report`, map), TTL `expiresAt` |
//! | `PLATFORM#<id>`       | `LEASE`                     | [`Lease`]: holder, operation, `leaseExpiresAtMs`, `fence`; shared holders `readers` + `reader:<holder>` |
//! | `SWEEP#<sweepId>`     | `SWEEP`                     | a fleet drift sweep's report (`report`, map), TTL `expiresAt` |
//! | `REQUEST#<requestId>` | `REQUEST`                   | [`RequestInfo`] (idempotency), TTL `expiresAt`|
//! | `CONTROL`             | `REMEDIATION_PAUSE`         | [`RemediationPause`] (`pause`, map): every drift check runs report-only while it exists |
//!
//! * Keys are strings named `PK` and `SK`; billing is on demand.
//! * `GSI1` (`GSI1PK` hash, `GSI1SK` range, projecting `platformId`, `version`, `updatedAt`) is a
//!   sparse index: only `SPEC` items carry `GSI1PK = "PLATFORMS"`, `GSI1SK = <platform id>`, so one
//!   paginated query lists every platform for the scheduled sweeps ([`Store::list_platforms`]).
//!   One partition is fine at Tenantry's scale (EKS allows 100 clusters per region); shard the
//!   partition key (`PLATFORMS#<n>`) if that ever changes.
//! * TTL is enabled on `expiresAt` (epoch seconds). Run history and idempotency records carry it
//!   (365 days by default, PCI DSS 10.5.1's year of audit history; `TENANTRY_RUN_RETENTION_DAYS`
//!   sets it, from the template's `RunHistoryRetentionDays`). Nothing whose
//!   correctness depends on timely deletion uses it: the lease's expiry lives in its own attribute
//!   and is checked by the write condition, since TTL deletion can lag by days.
//! * Idempotency records live in their own partition `REQUEST#<requestId>`, not under the platform:
//!   a request id is unique on its own, and the duplicate check must work before the request's
//!   platform id has been validated (or when a redelivery carries a different platform id).
//!
//! # Concurrency
//!
//! Every write that depends on what is stored is a single conditional write; there is no
//! read-modify-write. Spec, status and tenant records carry a `version` that starts at 1: a write
//! states the version it expects (`None`: must not exist) and stores that version + 1, and a loser
//! gets [`StoreError::VersionConflict`] naming the version it found. The lease is taken by one
//! conditional `UpdateItem` that succeeds when nobody holds it, it expired, or the caller already
//! holds it (re-entrant, so a retried step of the same execution gets it back). A release keeps the
//! item (without holder) so that the lease's fencing token keeps increasing.
//!
//! The lease is a reader/writer lease: platform operations take it exclusively
//! ([`Store::acquire_lease`]), tenant operations take shares of it
//! ([`Store::acquire_shared_lease`]) that any number of them hold at once, and neither kind is
//! granted while the other is live; every share expires on its own, so a crashed tenant operation
//! cannot block its platform for longer than its lease (see the `lease` module).
//!
//! Tenant records ([`TenantRecord`]) are the single source of truth of a tenant's lifecycle
//! ([`TenantState`]); state changes are single conditional updates
//! ([`Store::set_tenant_state`], [`Store::transition_tenant`]). Run history entries of a request
//! carry its id in the sort key, so runs of concurrent requests started in the same millisecond
//! (tenant onboardings) do not overwrite each other.

mod clock;
mod compliance;
mod control;
mod drift;
mod error;
mod inventory;
mod item;
pub mod keys;
mod lease;
mod requests;
mod runs;
mod table;
mod tenants;
mod types;
mod versioned;

pub use clock::{Clock, ManualClock, SystemClock};
pub use control::{Paused, RemediationPause};
pub use error::{Result, StoreError};
pub use item::{from_attr, to_attr};
pub use types::*;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::client::result::SdkError;
use chrono::{DateTime, Utc};
use item::Item;
use std::sync::Arc;
use std::time::Duration;

/// How long run history is kept by default: a year (PCI DSS 10.5.1 keeps audit history at least
/// twelve months).
pub const DEFAULT_RUN_TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// How long idempotency records (each request and its outcome) are kept by default: as long as
/// the runs, since they are the record of what was asked.
pub const DEFAULT_REQUEST_TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// Environment variable overriding the run retention, in days (at least 1).
pub const RUN_RETENTION_ENV: &str = "TENANTRY_RUN_RETENTION_DAYS";

/// The DynamoDB state store. Cheap to clone (the client is reference counted).
#[derive(Clone, Debug)]
pub struct Store {
    client: aws_sdk_dynamodb::Client,
    table: String,
    clock: Arc<dyn Clock>,
    run_ttl: Duration,
    request_ttl: Duration,
}

impl Store {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Store {
            client,
            table: table.into(),
            clock: Arc::new(SystemClock),
            run_ttl: DEFAULT_RUN_TTL,
            request_ttl: DEFAULT_REQUEST_TTL,
        }
    }

    pub fn from_config(config: &SdkConfig, table: impl Into<String>) -> Self {
        Store::new(aws_sdk_dynamodb::Client::new(config), table)
    }

    /// The store of a handler's [`Deps`](crate::deps::Deps).
    pub fn from_deps(deps: &crate::deps::Deps) -> Self {
        let store = Store::new(deps.clients.dynamodb().clone(), deps.table_name.clone());
        match std::env::var(RUN_RETENTION_ENV)
            .ok()
            .and_then(|d| d.parse::<u64>().ok())
        {
            Some(days) if days >= 1 => store.with_run_ttl(Duration::from_secs(days * 24 * 3600)),
            _ => store,
        }
    }

    /// The same store on a client that refuses every write before it is sent, as an `observe`
    /// uses it (see [`crate::aws::read_only`]).
    pub fn read_only(mut self) -> Self {
        let config = self.client.config();
        let guarded = crate::aws::read_only::guard(config.http_client());
        let config = config.to_builder().http_client(guarded).build();
        self.client = aws_sdk_dynamodb::Client::from_conf(config);
        self
    }

    /// Uses `clock` for every time the store writes or compares (lease expiry, timestamps, TTLs).
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How long run history entries are kept (DynamoDB TTL).
    pub fn with_run_ttl(mut self, ttl: Duration) -> Self {
        self.run_ttl = ttl;
        self
    }

    /// How long idempotency records are kept (DynamoDB TTL).
    pub fn with_request_ttl(mut self, ttl: Duration) -> Self {
        self.request_ttl = ttl;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    /// The store's idea of the current time, truncated to milliseconds (the stored resolution).
    pub fn now(&self) -> DateTime<Utc> {
        let now = self.clock.now();
        DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
    }

    fn key(pk: &str, sk: &str) -> Item {
        [
            (keys::PK.to_owned(), AttributeValue::S(pk.to_owned())),
            (keys::SK.to_owned(), AttributeValue::S(sk.to_owned())),
        ]
        .into()
    }

    /// A strongly consistent read of one item.
    async fn get_item(&self, pk: &str, sk: &str) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::aws("GetItem", e))?;
        Ok(out.item)
    }

    /// Every item of partition `pk` whose sort key starts with `prefix`, following pagination,
    /// at most `limit` of them.
    async fn query_prefix(
        &self,
        pk: &str,
        prefix: &str,
        newest_first: bool,
        limit: Option<usize>,
    ) -> Result<Vec<Item>> {
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#sk", keys::SK)
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
            .consistent_read(true)
            .scan_index_forward(!newest_first);
        if let Some(limit) = limit {
            request = request.limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000));
        }
        let mut pages = request.into_paginator().items().send();
        let mut items = Vec::new();
        while limit.is_none_or(|limit| items.len() < limit) {
            match pages.next().await {
                Some(item) => items.push(item.map_err(|e| StoreError::aws("Query", e))?),
                None => break,
            }
        }
        Ok(items)
    }
}

/// The item a conditional write found instead of what its condition required (returned because
/// writes ask for `ReturnValuesOnConditionCheckFailure = ALL_OLD`).
trait ConditionFailure {
    /// `Some(old item, if DynamoDB returned it)` when the error is a failed condition.
    fn condition_failed(&self) -> Option<Option<Item>>;
}

impl ConditionFailure for PutItemError {
    fn condition_failed(&self) -> Option<Option<Item>> {
        match self {
            PutItemError::ConditionalCheckFailedException(e) => Some(e.item().cloned()),
            _ => None,
        }
    }
}

impl ConditionFailure for UpdateItemError {
    fn condition_failed(&self) -> Option<Option<Item>> {
        match self {
            UpdateItemError::ConditionalCheckFailedException(e) => Some(e.item().cloned()),
            _ => None,
        }
    }
}

impl ConditionFailure for DeleteItemError {
    fn condition_failed(&self) -> Option<Option<Item>> {
        match self {
            DeleteItemError::ConditionalCheckFailedException(e) => Some(e.item().cloned()),
            _ => None,
        }
    }
}

fn condition_failed<E: ConditionFailure, R>(err: &SdkError<E, R>) -> Option<Option<Item>> {
    err.as_service_error()
        .and_then(ConditionFailure::condition_failed)
}

/// `ttl` after `from`, saturating at the largest representable time.
fn after(from: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|d| from.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Epoch seconds `ttl` after `from`, for the `expiresAt` TTL attribute.
fn expiry_epoch(from: DateTime<Utc>, ttl: Duration) -> i64 {
    from.timestamp()
        .saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
pub(crate) mod test_support {
    //! A client whose responses come from `aws-smithy-mocks` rules.

    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_mocks::{create_mock_http_client, MockResponseInterceptor, Rule, RuleMode};

    pub fn client(rules: &[&Rule]) -> aws_sdk_dynamodb::Client {
        let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for rule in rules {
            interceptor = interceptor.with_rule(rule);
        }
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .http_client(create_mock_http_client())
            .interceptor(interceptor)
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    pub fn store(rules: &[&Rule]) -> super::Store {
        super::Store::new(client(rules), "tenantry-test")
    }
}

#[cfg(test)]
mod tests {
    use aws_config::{BehaviorVersion, Region};
    use aws_credential_types::Credentials;
    use aws_smithy_http_client::test_util::capture_request;

    use super::{ResourceRecord, Store};
    use crate::aws::read_only::REFUSED;
    use crate::resources::Kind;

    fn store_on(http: aws_smithy_http_client::test_util::CaptureRequestHandler) -> Store {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .http_client(http)
            .build();
        Store::new(aws_sdk_dynamodb::Client::from_conf(config), "tenantry")
    }

    #[tokio::test]
    async fn a_read_only_store_refuses_a_write_before_it_is_sent_and_lets_reads_through() {
        let record = ResourceRecord::new(Kind::KmsKey, "alias/k", "encryption");
        let (http, sent) = capture_request(None);
        let err = store_on(http)
            .read_only()
            .put_resource("payments", &record)
            .await
            .expect_err("refused");
        assert!(format!("{err:?}").contains(REFUSED), "{err:?}");
        sent.expect_no_request();

        let (http, sent) = capture_request(None);
        // The empty answer does not parse; what matters is that the query was sent.
        let _ = store_on(http).read_only().list_resources("payments").await;
        let query = sent.expect_request();
        let target = query.headers().get("x-amz-target").unwrap_or_default();
        assert_eq!(target, "DynamoDB_20120810.Query");
    }
}
