//! The per-platform lease: at most one mutating operation per platform at a time.

use super::error::{Result, StoreError};
use super::item::{n, s, Item, Reader};
use super::keys;
use super::types::Lease;
use super::{condition_failed, Store};
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Utc};
use std::time::Duration;

const HOLDER: &str = "holder";
const OPERATION: &str = "operation";
const ACQUIRED_AT: &str = "acquiredAt";
const EXPIRES_AT_MS: &str = "leaseExpiresAtMs";
const RELEASED_AT: &str = "releasedAt";
const FENCE: &str = "fence";

/// How often `acquire_lease` re-tries when its condition failed but the lease it then read was
/// free (it was released or expired in between).
const ACQUIRE_ATTEMPTS: usize = 3;

impl Store {
    /// Takes the platform's lease for `holder` (e.g. the Step Functions execution ARN) to run
    /// `operation`, for `ttl`. Succeeds when nobody holds it, when it expired, or when `holder`
    /// already holds it (re-entrant: a retried step of the same execution gets it back, with a
    /// new expiry). Otherwise fails with [`StoreError::LeaseHeld`] naming the holder.
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
            let expires = super::after(now, ttl);
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(&pk, keys::LEASE)))
                .update_expression(
                    "SET #holder = :holder, #operation = :operation, #acquiredAt = :now, \
                     #expires = :expires, #fence = if_not_exists(#fence, :zero) + :one \
                     REMOVE #releasedAt",
                )
                .condition_expression(
                    "attribute_not_exists(#holder) OR #expires <= :nowMs OR #holder = :holder",
                )
                .expression_attribute_names("#holder", HOLDER)
                .expression_attribute_names("#operation", OPERATION)
                .expression_attribute_names("#acquiredAt", ACQUIRED_AT)
                .expression_attribute_names("#expires", EXPIRES_AT_MS)
                .expression_attribute_names("#fence", FENCE)
                .expression_attribute_names("#releasedAt", RELEASED_AT)
                .expression_attribute_values(":holder", s(holder))
                .expression_attribute_values(":operation", s(operation))
                .expression_attribute_values(":now", s(keys::timestamp(now)))
                .expression_attribute_values(":nowMs", n(now.timestamp_millis()))
                .expression_attribute_values(":expires", n(expires.timestamp_millis()))
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":one", n(1))
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            match result {
                Ok(out) => return read_lease(platform_id, &out.attributes.unwrap_or_default()),
                Err(err) => {
                    let Some(old) = condition_failed(&err) else {
                        return Err(StoreError::aws("UpdateItem", err));
                    };
                    let current = match old {
                        Some(item) => Some(read_lease(platform_id, &item)?),
                        None => self.get_lease(platform_id).await?,
                    };
                    if let Some(lease) = current.filter(|l| l.is_live(now) && l.holder != holder) {
                        return Err(StoreError::LeaseHeld {
                            platform: platform_id.to_owned(),
                            holder: lease.holder,
                            operation: lease.operation,
                            expires_at: lease.expires_at,
                        });
                    }
                    // Freed between our write and our read: try again.
                }
            }
        }
        let lease = self.get_lease(platform_id).await?;
        Err(StoreError::LeaseHeld {
            platform: platform_id.to_owned(),
            holder: lease
                .as_ref()
                .map_or_else(|| "unknown".to_owned(), |l| l.holder.clone()),
            operation: lease
                .as_ref()
                .map_or_else(|| "unknown".to_owned(), |l| l.operation.clone()),
            expires_at: lease.map_or_else(|| self.now(), |l| l.expires_at),
        })
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

    /// The platform's lease as stored (possibly expired: see [`Lease::is_live`]); `None` when
    /// nobody holds it.
    pub async fn get_lease(&self, platform_id: &str) -> Result<Option<Lease>> {
        let pk = keys::platform_pk(platform_id)?;
        match self.get_item(&pk, keys::LEASE).await? {
            Some(item) if Reader::new(&item).has(HOLDER) => {
                read_lease(platform_id, &item).map(Some)
            }
            _ => Ok(None),
        }
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
                        "attribute_not_exists(#holder) OR #expires <= :nowMs OR #holder = :holder",
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
}
