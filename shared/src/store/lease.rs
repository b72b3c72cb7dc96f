//! The per-platform lease, a reader/writer lease: platform operations (provision, update,
//! decommission, ...) take it exclusively; tenant operations take a share of it, so that tenants
//! of one platform are onboarded and offboarded side by side but never while a platform
//! operation runs, and a platform operation never starts while a tenant operation runs.
//!
//! Both live on the one `LEASE` item, so every acquisition is a single conditional write:
//!
//! * the exclusive holder: `holder`, `operation`, `acquiredAt`, `leaseExpiresAtMs`, `fence`;
//! * the shared holders: the string set `readers` (their holder ids) and, per holder, a map
//!   attribute `reader:<holder>` = `{operation, acquiredAt, leaseExpiresAtMs}`.
//!
//! An exclusive acquisition requires `attribute_not_exists(readers)` (DynamoDB removes a set
//! whose last element is deleted); a shared one requires that no exclusive holder is live (and
//! removes an expired one, so that its renewal fails). A shared holder that crashed stops blocking
//! when its own expiry passes: the next exclusive acquisition finds only expired readers, removes
//! each with a write conditioned on the expiry it read (a reader that renewed in between stays),
//! and tries again.

use super::error::{Result, StoreError};
use super::item::{n, s, Item, Reader};
use super::keys;
use super::types::{Lease, LeaseHolders};
use super::{condition_failed, Store};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use chrono::{DateTime, Utc};
use std::time::Duration;

const HOLDER: &str = "holder";
const OPERATION: &str = "operation";
const ACQUIRED_AT: &str = "acquiredAt";
const EXPIRES_AT_MS: &str = "leaseExpiresAtMs";
const RELEASED_AT: &str = "releasedAt";
const FENCE: &str = "fence";
const READERS: &str = "readers";
const READER_PREFIX: &str = "reader:";

/// How often an acquisition re-tries when its condition failed but the lease it then read was
/// free (released or expired in between, or only expired readers that it removed).
const ACQUIRE_ATTEMPTS: usize = 4;

/// What one conditional write to the lease item did.
enum LeaseWrite {
    /// The write happened: the item after it.
    Written(Item),
    /// Its condition failed: the item that failed it.
    Refused(Item),
}

/// The attribute holding one shared holder's entry.
fn reader_attr(holder: &str) -> String {
    format!("{READER_PREFIX}{holder}")
}

impl Store {
    /// Takes the platform's lease exclusively for `holder` (e.g. the request id of a platform
    /// operation) to run `operation`, for `ttl`. Succeeds when nobody holds it (exclusively or
    /// shared), when it expired, or when `holder` already holds it (re-entrant: a retried step of
    /// the same execution gets it back, with a new expiry). Otherwise fails with
    /// [`StoreError::LeaseHeld`] naming the exclusive holder or a live shared holder (the one
    /// whose share runs longest).
    pub async fn acquire_lease(
        &self,
        platform_id: &str,
        holder: &str,
        operation: &str,
        ttl: Duration,
    ) -> Result<Lease> {
        let pk = keys::platform_pk(platform_id)?;
        for _ in 0..ACQUIRE_ATTEMPTS {
            let now = self.now();
            match self
                .write_exclusive(&pk, holder, operation, now, ttl)
                .await?
            {
                LeaseWrite::Written(item) => return read_lease(platform_id, &item),
                LeaseWrite::Refused(item) => {
                    let view = LeaseView::read(platform_id, &item)?;
                    if let Some(blocker) = view.blocker(holder, now) {
                        return Err(held(blocker));
                    }
                    // Only expired shared holders (or freed in between): clear them, try again.
                    self.prune_readers(&pk, &view, now).await?;
                }
            }
        }
        Err(self.still_held(platform_id, &pk, holder).await?)
    }

    /// One conditional write taking the lease exclusively for `holder` at `now`: it is free,
    /// expired or `holder`'s already, and no shared holder is listed.
    async fn write_exclusive(
        &self,
        pk: &str,
        holder: &str,
        operation: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<LeaseWrite> {
        let expires = super::after(now, ttl);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, keys::LEASE)))
            .update_expression(
                "SET #holder = :holder, #operation = :operation, #acquiredAt = :now, \
                 #expires = :expires, #fence = if_not_exists(#fence, :zero) + :one \
                 REMOVE #releasedAt",
            )
            .condition_expression(
                "(attribute_not_exists(#holder) OR #expires <= :nowMs OR #holder = :holder) \
                 AND attribute_not_exists(#readers)",
            )
            .expression_attribute_names("#holder", HOLDER)
            .expression_attribute_names("#operation", OPERATION)
            .expression_attribute_names("#acquiredAt", ACQUIRED_AT)
            .expression_attribute_names("#expires", EXPIRES_AT_MS)
            .expression_attribute_names("#fence", FENCE)
            .expression_attribute_names("#releasedAt", RELEASED_AT)
            .expression_attribute_names("#readers", READERS)
            .expression_attribute_values(":holder", s(holder))
            .expression_attribute_values(":operation", s(operation))
            .expression_attribute_values(":now", s(keys::timestamp(now)))
            .expression_attribute_values(":nowMs", n(now.timestamp_millis()))
            .expression_attribute_values(":expires", n(expires.timestamp_millis()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        self.lease_write(pk, result).await
    }

    /// Takes a share of the platform's lease for `holder` (e.g. the request id of a tenant
    /// operation) to run `operation`, for `ttl`. Any number of holders share it; it is refused
    /// with [`StoreError::LeaseHeld`] (naming the holder) while an exclusive holder's lease is
    /// live. Re-entrant: the same holder taking it again gets a new expiry. An expired exclusive
    /// holder is removed (it can no longer renew).
    pub async fn acquire_shared_lease(
        &self,
        platform_id: &str,
        holder: &str,
        operation: &str,
        ttl: Duration,
    ) -> Result<Lease> {
        let pk = keys::platform_pk(platform_id)?;
        for _ in 0..ACQUIRE_ATTEMPTS {
            let now = self.now();
            match self.write_share(&pk, holder, operation, now, ttl).await? {
                LeaseWrite::Written(item) => {
                    return LeaseView::read(platform_id, &item)?
                        .readers
                        .into_iter()
                        .find(|r| r.holder == holder)
                        .ok_or_else(|| {
                            Reader::new(&item).corrupt(format!(
                                "shared holder {holder:?} missing after acquiring"
                            ))
                        });
                }
                LeaseWrite::Refused(item) => {
                    if let Some(exclusive) = LeaseView::read(platform_id, &item)?
                        .exclusive
                        .filter(|l| l.is_live(now))
                    {
                        return Err(held(exclusive));
                    }
                    // Freed between our write and our read: try again.
                }
            }
        }
        Err(self.still_held(platform_id, &pk, holder).await?)
    }

    /// One conditional write adding `holder` to the shared holders at `now` (its entry and its
    /// id in the set), removing an expired exclusive holder: no live exclusive holder is listed.
    async fn write_share(
        &self,
        pk: &str,
        holder: &str,
        operation: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<LeaseWrite> {
        let expires = super::after(now, ttl);
        let entry = AttributeValue::M(
            [
                (OPERATION.to_owned(), s(operation)),
                (ACQUIRED_AT.to_owned(), s(keys::timestamp(now))),
                (EXPIRES_AT_MS.to_owned(), n(expires.timestamp_millis())),
            ]
            .into(),
        );
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, keys::LEASE)))
            .update_expression(
                "SET #reader = :entry ADD #readers :holderSet REMOVE #holder, #operation",
            )
            .condition_expression("attribute_not_exists(#holder) OR #expires <= :nowMs")
            .expression_attribute_names("#reader", reader_attr(holder))
            .expression_attribute_names("#readers", READERS)
            .expression_attribute_names("#holder", HOLDER)
            .expression_attribute_names("#operation", OPERATION)
            .expression_attribute_names("#expires", EXPIRES_AT_MS)
            .expression_attribute_values(":entry", entry)
            .expression_attribute_values(":holderSet", AttributeValue::Ss(vec![holder.to_owned()]))
            .expression_attribute_values(":nowMs", n(now.timestamp_millis()))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        self.lease_write(pk, result).await
    }

    /// What a conditional write to the lease item did: the item it wrote, or the item that
    /// failed its condition (read again when DynamoDB did not return it).
    async fn lease_write(
        &self,
        pk: &str,
        result: std::result::Result<UpdateItemOutput, SdkError<UpdateItemError, HttpResponse>>,
    ) -> Result<LeaseWrite> {
        match result {
            Ok(out) => Ok(LeaseWrite::Written(out.attributes.unwrap_or_default())),
            Err(err) => match condition_failed(&err) {
                None => Err(StoreError::aws("UpdateItem", err)),
                Some(Some(old)) => Ok(LeaseWrite::Refused(old)),
                Some(None) => {
                    let item = self.get_item(pk, keys::LEASE).await?.unwrap_or_default();
                    Ok(LeaseWrite::Refused(item))
                }
            },
        }
    }

    /// Extends the lease of `holder` to `ttl` from now. Fails with [`StoreError::LeaseNotHeld`]
    /// when `holder` no longer holds it (released, or expired and taken by someone else).
    pub async fn renew_lease(
        &self,
        platform_id: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease> {
        let pk = keys::platform_pk(platform_id)?;
        let now = self.now();
        let expires = super::after(now, ttl);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&pk, keys::LEASE)))
            .update_expression("SET #expires = :expires")
            .condition_expression("#holder = :holder")
            .expression_attribute_names("#holder", HOLDER)
            .expression_attribute_names("#expires", EXPIRES_AT_MS)
            .expression_attribute_values(":holder", s(holder))
            .expression_attribute_values(":expires", n(expires.timestamp_millis()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => read_lease(platform_id, &out.attributes.unwrap_or_default()),
            Err(err) if condition_failed(&err).is_some() => Err(StoreError::LeaseNotHeld {
                platform: platform_id.to_owned(),
                holder: holder.to_owned(),
            }),
            Err(err) => Err(StoreError::aws("UpdateItem", err)),
        }
    }

    /// Extends the share of `holder` to `ttl` from now. Fails with [`StoreError::LeaseNotHeld`]
    /// when `holder` holds no share (released, or expired and cleared by a platform operation).
    pub async fn renew_shared_lease(
        &self,
        platform_id: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease> {
        let pk = keys::platform_pk(platform_id)?;
        let expires = super::after(self.now(), ttl);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&pk, keys::LEASE)))
            .update_expression("SET #reader.#expires = :expires")
            .condition_expression("attribute_exists(#reader)")
            .expression_attribute_names("#reader", reader_attr(holder))
            .expression_attribute_names("#expires", EXPIRES_AT_MS)
            .expression_attribute_values(":expires", n(expires.timestamp_millis()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                LeaseView::read(platform_id, &item)?
                    .readers
                    .into_iter()
                    .find(|r| r.holder == holder)
                    .ok_or_else(|| StoreError::LeaseNotHeld {
                        platform: platform_id.to_owned(),
                        holder: holder.to_owned(),
                    })
            }
            Err(err) if condition_failed(&err).is_some() => Err(StoreError::LeaseNotHeld {
                platform: platform_id.to_owned(),
                holder: holder.to_owned(),
            }),
            Err(err) => Err(StoreError::aws("UpdateItem", err)),
        }
    }

    /// Releases the lease if `holder` holds it; returns whether it did. Releasing a lease that is
    /// gone or held by someone else changes nothing and is not an error (cleanup paths call this
    /// after failures). The item stays, without holder, so that the fencing token keeps counting.
    pub async fn release_lease(&self, platform_id: &str, holder: &str) -> Result<bool> {
        let pk = keys::platform_pk(platform_id)?;
        let now = self.now();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&pk, keys::LEASE)))
            .update_expression(
                "SET #expires = :zero, #releasedAt = :now REMOVE #holder, #operation",
            )
            .condition_expression("#holder = :holder")
            .expression_attribute_names("#holder", HOLDER)
            .expression_attribute_names("#operation", OPERATION)
            .expression_attribute_names("#expires", EXPIRES_AT_MS)
            .expression_attribute_names("#releasedAt", RELEASED_AT)
            .expression_attribute_values(":holder", s(holder))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", s(keys::timestamp(now)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if condition_failed(&err).is_some() => Ok(false),
            Err(err) => Err(StoreError::aws("UpdateItem", err)),
        }
    }

    /// Gives up the share of `holder`; returns whether it held one. Like [`Store::release_lease`],
    /// releasing a share that is gone is a no-op, not an error.
    pub async fn release_shared_lease(&self, platform_id: &str, holder: &str) -> Result<bool> {
        let pk = keys::platform_pk(platform_id)?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&pk, keys::LEASE)))
            .update_expression("DELETE #readers :holderSet REMOVE #reader")
            .condition_expression("attribute_exists(#reader)")
            .expression_attribute_names("#readers", READERS)
            .expression_attribute_names("#reader", reader_attr(holder))
            .expression_attribute_values(":holderSet", AttributeValue::Ss(vec![holder.to_owned()]))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if condition_failed(&err).is_some() => Ok(false),
            Err(err) => Err(StoreError::aws("UpdateItem", err)),
        }
    }

    /// The platform's exclusive lease as stored (possibly expired: see [`Lease::is_live`]);
    /// `None` when nobody holds it exclusively.
    pub async fn get_lease(&self, platform_id: &str) -> Result<Option<Lease>> {
        let pk = keys::platform_pk(platform_id)?;
        match self.get_item(&pk, keys::LEASE).await? {
            Some(item) => Ok(LeaseView::read(platform_id, &item)?.exclusive),
            None => Ok(None),
        }
    }

    /// The whole lease as stored, read strongly consistently in one read: exclusive holder,
    /// shares (possibly expired) and fence. Empty when the platform never had a lease.
    pub async fn get_lease_holders(&self, platform_id: &str) -> Result<LeaseHolders> {
        let pk = keys::platform_pk(platform_id)?;
        let Some(item) = self.get_item(&pk, keys::LEASE).await? else {
            return Ok(LeaseHolders::default());
        };
        let fence = Reader::new(&item)
            .opt_i64(FENCE)?
            .and_then(|f| u64::try_from(f).ok())
            .unwrap_or(0);
        let view = LeaseView::read(platform_id, &item)?;
        Ok(LeaseHolders {
            exclusive: view.exclusive,
            shares: view.readers,
            fence,
        })
    }

    /// The platform's shared holders as stored (possibly expired), by holder.
    pub async fn list_shared_leases(&self, platform_id: &str) -> Result<Vec<Lease>> {
        let pk = keys::platform_pk(platform_id)?;
        match self.get_item(&pk, keys::LEASE).await? {
            Some(item) => Ok(LeaseView::read(platform_id, &item)?.readers),
            None => Ok(Vec::new()),
        }
    }

    /// Removes the shared holders of `view` whose share expired by `now` (and set entries
    /// without a share), each only if it is still as read.
    async fn prune_readers(&self, pk: &str, view: &LeaseView, now: DateTime<Utc>) -> Result<()> {
        let expired = view
            .readers
            .iter()
            .filter(|r| !r.is_live(now))
            .map(|r| (r.holder.as_str(), Some(r.expires_at.timestamp_millis())));
        let orphans = view
            .listed
            .iter()
            .filter(|h| !view.readers.iter().any(|r| &r.holder == *h))
            .map(|h| (h.as_str(), None));
        for (holder, seen) in expired.chain(orphans) {
            let mut request = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(pk, keys::LEASE)))
                .update_expression("DELETE #readers :holderSet REMOVE #reader")
                .expression_attribute_names("#readers", READERS)
                .expression_attribute_names("#reader", reader_attr(holder))
                .expression_attribute_values(
                    ":holderSet",
                    AttributeValue::Ss(vec![holder.to_owned()]),
                );
            request = match seen {
                Some(ms) => request
                    .condition_expression("#reader.#expires = :seen")
                    .expression_attribute_names("#expires", EXPIRES_AT_MS)
                    .expression_attribute_values(":seen", n(ms)),
                None => request.condition_expression("attribute_not_exists(#reader)"),
            };
            match request.send().await {
                Ok(_) => tracing::info!(%holder, "removed an expired shared lease holder"),
                // Renewed or released in between: leave it.
                Err(err) if condition_failed(&err).is_some() => {}
                Err(err) => return Err(StoreError::aws("UpdateItem", err)),
            }
        }
        Ok(())
    }

    /// The [`StoreError::LeaseHeld`] of an acquisition that kept losing races.
    async fn still_held(&self, platform_id: &str, pk: &str, holder: &str) -> Result<StoreError> {
        let item = self.get_item(pk, keys::LEASE).await?.unwrap_or_default();
        let now = self.now();
        let blocker = LeaseView::read(platform_id, &item)?.blocker(holder, now);
        Ok(match blocker {
            Some(lease) => held(lease),
            None => StoreError::LeaseHeld {
                platform: platform_id.to_owned(),
                holder: "unknown".to_owned(),
                operation: "unknown".to_owned(),
                expires_at: now,
            },
        })
    }
}

fn held(lease: Lease) -> StoreError {
    StoreError::LeaseHeld {
        platform: lease.platform_id,
        holder: lease.holder,
        operation: lease.operation,
        expires_at: lease.expires_at,
    }
}

/// The `LEASE` item decoded: exclusive holder, shared holders, and the holders the `readers` set
/// lists.
#[derive(Debug, Default)]
struct LeaseView {
    exclusive: Option<Lease>,
    readers: Vec<Lease>,
    listed: Vec<String>,
}

impl LeaseView {
    fn read(platform_id: &str, item: &Item) -> Result<LeaseView> {
        let r = Reader::new(item);
        let exclusive = if r.has(HOLDER) {
            Some(read_lease(platform_id, item)?)
        } else {
            None
        };
        let fence = r
            .opt_i64(FENCE)?
            .and_then(|f| u64::try_from(f).ok())
            .unwrap_or(0);
        let mut readers = Vec::new();
        for (name, value) in item {
            let Some(holder) = name.strip_prefix(READER_PREFIX) else {
                continue;
            };
            let AttributeValue::M(entry) = value else {
                return Err(r.corrupt(format!("{name} is not a map: {value:?}")));
            };
            let e = Reader::new(entry);
            let expires_at = e
                .opt_time_ms(EXPIRES_AT_MS)?
                .ok_or_else(|| r.corrupt(format!("{name}.{EXPIRES_AT_MS} is missing")))?;
            readers.push(Lease {
                platform_id: platform_id.to_owned(),
                holder: holder.to_owned(),
                operation: e.opt_s(OPERATION)?.unwrap_or_default().to_owned(),
                acquired_at: e
                    .opt_time(ACQUIRED_AT)?
                    .unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
                expires_at,
                fence,
            });
        }
        readers.sort_by(|a, b| a.holder.cmp(&b.holder));
        let listed = match item.get(READERS) {
            Some(AttributeValue::Ss(holders)) => holders.clone(),
            None | Some(AttributeValue::Null(_)) => Vec::new(),
            Some(other) => {
                return Err(r.corrupt(format!("{READERS} is not a string set: {other:?}")))
            }
        };
        Ok(LeaseView {
            exclusive,
            readers,
            listed,
        })
    }

    /// Who keeps `holder` from taking the lease exclusively at `now`: a live exclusive holder
    /// other than `holder`, else the live shared holder whose share runs longest.
    fn blocker(&self, holder: &str, now: DateTime<Utc>) -> Option<Lease> {
        if let Some(exclusive) = self
            .exclusive
            .as_ref()
            .filter(|l| l.is_live(now) && l.holder != holder)
        {
            return Some(exclusive.clone());
        }
        self.readers
            .iter()
            .filter(|r| r.is_live(now))
            .max_by_key(|r| r.expires_at)
            .cloned()
    }
}

fn read_lease(platform_id: &str, item: &Item) -> Result<Lease> {
    let r = Reader::new(item);
    let expires_at = r
        .opt_time_ms(EXPIRES_AT_MS)?
        .ok_or_else(|| r.corrupt(format!("{EXPIRES_AT_MS} is missing")))?;
    Ok(Lease {
        platform_id: platform_id.to_owned(),
        holder: r.opt_s(HOLDER)?.unwrap_or_default().to_owned(),
        operation: r.opt_s(OPERATION)?.unwrap_or_default().to_owned(),
        acquired_at: r
            .opt_time(ACQUIRED_AT)?
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
        expires_at,
        fence: r
            .opt_i64(FENCE)?
            .and_then(|f| u64::try_from(f).ok())
            .unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support;
    use super::super::ManualClock;
    use super::*;
    use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
    use aws_sdk_dynamodb::Client;
    use aws_smithy_mocks::mock;
    use chrono::TimeZone;

    fn lease_item(holder: &str, expires: DateTime<Utc>) -> Item {
        [
            ("PK".to_owned(), s("PLATFORM#p1")),
            ("SK".to_owned(), s("LEASE")),
            (HOLDER.to_owned(), s(holder)),
            (OPERATION.to_owned(), s("provision")),
            (ACQUIRED_AT.to_owned(), s("2026-01-02T03:00:00.000Z")),
            (EXPIRES_AT_MS.to_owned(), n(expires.timestamp_millis())),
            (FENCE.to_owned(), n(4)),
        ]
        .into()
    }

    #[tokio::test]
    async fn acquire_conditions_on_free_expired_or_own_lease() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let expires = t0 + chrono::Duration::seconds(60);
        let update = mock!(Client::update_item)
            .match_requests(move |req| {
                let values = req.expression_attribute_values().unwrap();
                req.condition_expression()
                    == Some(
                        "(attribute_not_exists(#holder) OR #expires <= :nowMs OR #holder = :holder) \
                         AND attribute_not_exists(#readers)",
                    )
                    && values.get(":nowMs") == Some(&n(t0.timestamp_millis()))
                    && values.get(":expires") == Some(&n(expires.timestamp_millis()))
                    && req.key().unwrap().get("SK") == Some(&s("LEASE"))
            })
            .then_output(move || {
                UpdateItemOutput::builder()
                    .set_attributes(Some(lease_item("exec-a", expires)))
                    .build()
            });
        let store = test_support::store(&[&update]).with_clock(ManualClock::new(t0));
        let lease = store
            .acquire_lease("p1", "exec-a", "provision", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(lease.holder, "exec-a");
        assert_eq!(lease.expires_at, expires);
        assert_eq!(lease.fence, 4);
    }

    #[tokio::test]
    async fn a_failed_condition_names_the_holder() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let held_until = t0 + chrono::Duration::seconds(30);
        let update = mock!(Client::update_item).then_error(move || {
            UpdateItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder()
                    .set_item(Some(lease_item("exec-a", held_until)))
                    .build(),
            )
        });
        let store = test_support::store(&[&update]).with_clock(ManualClock::new(t0));
        let err = store
            .acquire_lease("p1", "exec-b", "update", Duration::from_secs(60))
            .await
            .unwrap_err();
        match &err {
            StoreError::LeaseHeld {
                platform,
                holder,
                operation,
                expires_at,
            } => {
                assert_eq!(platform, "p1");
                assert_eq!(holder, "exec-a");
                assert_eq!(operation, "provision");
                assert_eq!(*expires_at, held_until);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(update.num_calls(), 1);
        let f = crate::error::FunctionError::from(err);
        assert_eq!(f.error_type, crate::error::ErrorType::Conflict);
        assert!(f.error_message.contains("exec-a"), "{}", f.error_message);
    }

    #[tokio::test]
    async fn release_by_someone_else_is_a_no_op() {
        let update = mock!(Client::update_item)
            .match_requests(|req| req.condition_expression() == Some("#holder = :holder"))
            .then_error(|| {
                UpdateItemError::ConditionalCheckFailedException(
                    ConditionalCheckFailedException::builder().build(),
                )
            });
        let store = test_support::store(&[&update]);
        assert!(!store.release_lease("p1", "exec-b").await.unwrap());
        let err = store
            .renew_lease("p1", "exec-b", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::LeaseNotHeld { .. }), "{err:?}");
    }

    fn reader_entry(operation: &str, expires: DateTime<Utc>) -> AttributeValue {
        AttributeValue::M(
            [
                (OPERATION.to_owned(), s(operation)),
                (ACQUIRED_AT.to_owned(), s("2026-01-02T03:00:00.000Z")),
                (EXPIRES_AT_MS.to_owned(), n(expires.timestamp_millis())),
            ]
            .into(),
        )
    }

    fn shared_item(readers: &[(&str, DateTime<Utc>)]) -> Item {
        let mut item: Item = [
            ("PK".to_owned(), s("PLATFORM#p1")),
            ("SK".to_owned(), s("LEASE")),
            (FENCE.to_owned(), n(2)),
            (
                READERS.to_owned(),
                AttributeValue::Ss(readers.iter().map(|(h, _)| (*h).to_owned()).collect()),
            ),
        ]
        .into();
        for (holder, expires) in readers {
            item.insert(reader_attr(holder), reader_entry("onboard", *expires));
        }
        item
    }

    fn condition_failed_with(item: Item) -> UpdateItemError {
        UpdateItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder()
                .set_item(Some(item))
                .build(),
        )
    }

    #[tokio::test]
    async fn a_live_share_keeps_the_exclusive_lease_and_is_named() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let soon = t0 + chrono::Duration::seconds(10);
        let later = t0 + chrono::Duration::seconds(50);
        let update = mock!(Client::update_item).then_error(move || {
            condition_failed_with(shared_item(&[("t-1", soon), ("t-2", later)]))
        });
        let store = test_support::store(&[&update]).with_clock(ManualClock::new(t0));
        let err = store
            .acquire_lease("p1", "exec-p", "decommission", Duration::from_secs(60))
            .await
            .unwrap_err();
        match err {
            StoreError::LeaseHeld {
                holder,
                operation,
                expires_at,
                ..
            } => {
                assert_eq!((holder.as_str(), operation.as_str()), ("t-2", "onboard"));
                assert_eq!(expires_at, later);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(update.num_calls(), 1, "no pruning of live shares");
    }

    #[tokio::test]
    async fn expired_shares_are_pruned_as_read_then_the_exclusive_lease_is_taken() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let gone = t0 - chrono::Duration::seconds(1);
        let expires = t0 + chrono::Duration::seconds(60);
        let acquire = mock!(Client::update_item)
            .match_requests(|req| {
                req.update_expression()
                    .is_some_and(|e| e.starts_with("SET #holder"))
            })
            .sequence()
            .error(move || condition_failed_with(shared_item(&[("t-1", gone)])))
            .output(move || {
                UpdateItemOutput::builder()
                    .set_attributes(Some(lease_item("exec-p", expires)))
                    .build()
            })
            .build();
        let prune = mock!(Client::update_item)
            .match_requests(move |req| {
                let values = req.expression_attribute_values().unwrap();
                req.update_expression() == Some("DELETE #readers :holderSet REMOVE #reader")
                    && req.condition_expression() == Some("#reader.#expires = :seen")
                    && values.get(":seen") == Some(&n(gone.timestamp_millis()))
                    && req.expression_attribute_names().unwrap().get("#reader")
                        == Some(&"reader:t-1".to_owned())
            })
            .then_output(|| UpdateItemOutput::builder().build());
        let store = test_support::store(&[&acquire, &prune]).with_clock(ManualClock::new(t0));
        let lease = store
            .acquire_lease("p1", "exec-p", "update", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(lease.holder, "exec-p");
        assert_eq!((acquire.num_calls(), prune.num_calls()), (2, 1));
    }

    #[tokio::test]
    async fn a_share_is_refused_while_the_exclusive_lease_is_live() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let until = t0 + chrono::Duration::seconds(30);
        let update = mock!(Client::update_item)
            .match_requests(|req| {
                req.condition_expression()
                    == Some("attribute_not_exists(#holder) OR #expires <= :nowMs")
                    && req.expression_attribute_names().unwrap().get("#reader")
                        == Some(&"reader:t-1".to_owned())
            })
            .then_error(move || condition_failed_with(lease_item("exec-p", until)));
        let store = test_support::store(&[&update]).with_clock(ManualClock::new(t0));
        let err = store
            .acquire_shared_lease("p1", "t-1", "onboard", Duration::from_secs(60))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::LeaseHeld { holder, operation, .. } if holder == "exec-p" && operation == "provision"),
            "{err:?}"
        );
    }

    #[test]
    fn the_view_reads_exclusive_and_shared_holders() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let mut item = shared_item(&[("t-1", t0), ("t-2", t0 + chrono::Duration::seconds(5))]);
        item.insert(
            READERS.to_owned(),
            AttributeValue::Ss(vec!["t-1".into(), "t-2".into(), "t-9".into()]),
        );
        let view = LeaseView::read("p1", &item).unwrap();
        assert!(view.exclusive.is_none());
        let holders: Vec<&str> = view.readers.iter().map(|r| r.holder.as_str()).collect();
        assert_eq!(holders, ["t-1", "t-2"]);
        assert_eq!(view.readers[0].fence, 2);
        assert_eq!(view.listed.len(), 3);
        // t-1 expired at t0; t-2 is live.
        assert_eq!(
            view.blocker("x", t0).map(|l| l.holder),
            Some("t-2".to_owned())
        );
        assert_eq!(view.blocker("x", t0 + chrono::Duration::seconds(5)), None);
    }
}
