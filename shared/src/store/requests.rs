//! Request idempotency: a duplicate delivery of a request id must not start a second run.

use super::error::{Result, StoreError};
use super::item::{self, n, s, Item, Reader};
use super::keys;
use super::types::{RequestInfo, RequestOrigin, RequestOutcome, RequestRecord, RequestState};
use super::{condition_failed, expiry_epoch, Store};
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

const REQUEST_ID: &str = "requestId";
const PLATFORM_ID: &str = "platformId";
const KIND: &str = "kind";
const PAYLOAD_HASH: &str = "payloadHash";
const STATE: &str = "requestState";
const EXECUTION_ARN: &str = "executionArn";
const ERROR: &str = "error";
const CREATED_AT: &str = "createdAt";
const UPDATED_AT: &str = "updatedAt";
const ORIGIN: &str = "origin";

impl Store {
    /// Records that request `request_id` arrived, unless it already has: exactly one caller per
    /// request id gets [`RequestRecord::New`]; every other gets [`RequestRecord::Duplicate`] with
    /// the earlier record and whether its payload hash matches (see
    /// [`payload_hash`](super::payload_hash)).
    pub async fn record_request(
        &self,
        request_id: &str,
        platform_id: &str,
        kind: &str,
        payload_hash: &str,
    ) -> Result<RequestRecord> {
        self.record_request_from(request_id, platform_id, kind, payload_hash, None)
            .await
    }

    /// [`Store::record_request`], keeping where the request came from.
    pub async fn record_request_from(
        &self,
        request_id: &str,
        platform_id: &str,
        kind: &str,
        payload_hash: &str,
        origin: Option<&RequestOrigin>,
    ) -> Result<RequestRecord> {
        let pk = keys::request_pk(request_id)?;
        let now = self.now();
        let info = RequestInfo {
            request_id: request_id.to_owned(),
            platform_id: platform_id.to_owned(),
            kind: kind.to_owned(),
            payload_hash: payload_hash.to_owned(),
            state: RequestState::Accepted,
            execution_arn: None,
            error: None,
            created_at: now,
            updated_at: now,
            expires_at: expiry_epoch(now, self.request_ttl),
            origin: origin.cloned(),
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(request_item(&pk, &info)?))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", keys::PK)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(RequestRecord::New(info)),
            Err(err) => {
                let Some(old) = condition_failed(&err) else {
                    return Err(StoreError::aws("PutItem", err));
                };
                let existing =
                    match old {
                        Some(item) => read_request(&item)?,
                        None => self.get_request(request_id).await?.ok_or_else(|| {
                            StoreError::Corrupt {
                                key: keys::display(&pk, keys::REQUEST),
                                reason: "condition failed but the record cannot be read".to_owned(),
                            }
                        })?,
                    };
                let same_payload = existing.payload_hash == payload_hash;
                Ok(RequestRecord::Duplicate {
                    existing,
                    same_payload,
                })
            }
        }
    }

    /// Records how the request went on (started with an execution ARN, succeeded, failed).
    /// The request must have been recorded. Returns the updated record.
    pub async fn complete_request(
        &self,
        request_id: &str,
        outcome: &RequestOutcome,
    ) -> Result<RequestInfo> {
        let pk = keys::request_pk(request_id)?;
        let mut set = vec!["#state = :state", "#updatedAt = :now"];
        let mut remove = Vec::new();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&pk, keys::REQUEST)))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#state", STATE)
            .expression_attribute_names("#updatedAt", UPDATED_AT)
            .expression_attribute_values(":state", s(outcome.state.as_str()))
            .expression_attribute_values(":now", s(keys::timestamp(self.now())))
            .return_values(ReturnValue::AllNew);
        if let Some(arn) = &outcome.execution_arn {
            set.push("#arn = :arn");
            request = request
                .expression_attribute_names("#arn", EXECUTION_ARN)
                .expression_attribute_values(":arn", s(arn));
        }
        request = request.expression_attribute_names("#error", ERROR);
        match &outcome.error {
            Some(error) => {
                set.push("#error = :error");
                request = request
                    .expression_attribute_values(":error", item::encode("request error", error)?);
            }
            None => remove.push("#error"),
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        match request.update_expression(expression).send().await {
            Ok(out) => read_request(&out.attributes.unwrap_or_default()),
            Err(err) if condition_failed(&err).is_some() => Err(StoreError::NotFound {
                key: keys::display(&pk, keys::REQUEST),
            }),
            Err(err) => Err(StoreError::aws("UpdateItem", err)),
        }
    }

    pub async fn get_request(&self, request_id: &str) -> Result<Option<RequestInfo>> {
        let pk = keys::request_pk(request_id)?;
        self.get_item(&pk, keys::REQUEST)
            .await?
            .map(|item| read_request(&item))
            .transpose()
    }
}

/// The record of a newly accepted request `info` under `pk`.
fn request_item(pk: &str, info: &RequestInfo) -> Result<Item> {
    let mut record: Item = [
        (keys::PK.to_owned(), s(pk)),
        (keys::SK.to_owned(), s(keys::REQUEST)),
        (REQUEST_ID.to_owned(), s(&info.request_id)),
        (PLATFORM_ID.to_owned(), s(&info.platform_id)),
        (KIND.to_owned(), s(&info.kind)),
        (PAYLOAD_HASH.to_owned(), s(&info.payload_hash)),
        (STATE.to_owned(), s(info.state.as_str())),
        (CREATED_AT.to_owned(), s(keys::timestamp(info.created_at))),
        (UPDATED_AT.to_owned(), s(keys::timestamp(info.updated_at))),
        (keys::TTL_ATTRIBUTE.to_owned(), n(info.expires_at)),
    ]
    .into();
    if let Some(origin) = &info.origin {
        record.insert(ORIGIN.to_owned(), item::encode("request origin", origin)?);
    }
    Ok(record)
}

fn read_request(item: &Item) -> Result<RequestInfo> {
    let r = Reader::new(item);
    let state = r.s(STATE)?;
    Ok(RequestInfo {
        request_id: r.s(REQUEST_ID)?.to_owned(),
        platform_id: r.s(PLATFORM_ID)?.to_owned(),
        kind: r.s(KIND)?.to_owned(),
        payload_hash: r.s(PAYLOAD_HASH)?.to_owned(),
        state: RequestState::parse(state)
            .ok_or_else(|| r.corrupt(format!("unknown request state {state:?}")))?,
        execution_arn: r.opt_s(EXECUTION_ARN)?.map(str::to_owned),
        error: r.opt_decode(ERROR)?,
        created_at: r.time(CREATED_AT)?,
        updated_at: r.time(UPDATED_AT)?,
        expires_at: r.i64(keys::TTL_ATTRIBUTE)?,
        origin: r.opt_decode(ORIGIN)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support;
    use super::*;
    use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
    use aws_sdk_dynamodb::Client;
    use aws_smithy_mocks::mock;

    fn existing(hash: &str) -> Item {
        [
            ("PK".to_owned(), s("REQUEST#r1")),
            ("SK".to_owned(), s("REQUEST")),
            (REQUEST_ID.to_owned(), s("r1")),
            (PLATFORM_ID.to_owned(), s("p1")),
            (KIND.to_owned(), s("provision")),
            (PAYLOAD_HASH.to_owned(), s(hash)),
            (STATE.to_owned(), s("Started")),
            (
                EXECUTION_ARN.to_owned(),
                s("arn:aws:states:us-east-1:1:execution:sm:r1"),
            ),
            (CREATED_AT.to_owned(), s("2026-01-02T03:04:05.000Z")),
            (UPDATED_AT.to_owned(), s("2026-01-02T03:04:06.000Z")),
            ("expiresAt".to_owned(), n(1_800_000_000)),
        ]
        .into()
    }

    #[tokio::test]
    async fn first_delivery_is_new_and_carries_a_ttl() {
        let put = mock!(Client::put_item)
            .match_requests(|req| {
                let item = req.item().unwrap();
                req.condition_expression() == Some("attribute_not_exists(#pk)")
                    && item.get("PK") == Some(&s("REQUEST#r1"))
                    && matches!(
                        item.get("expiresAt"),
                        Some(aws_sdk_dynamodb::types::AttributeValue::N(_))
                    )
            })
            .then_output(|| PutItemOutput::builder().build());
        let store = test_support::store(&[&put]);
        let record = store
            .record_request("r1", "p1", "provision", "h1")
            .await
            .unwrap();
        let RequestRecord::New(info) = record else {
            panic!("expected New, got {record:?}")
        };
        assert_eq!(info.state, RequestState::Accepted);
        assert_eq!(
            info.expires_at,
            info.created_at.timestamp() + 365 * 24 * 3600
        );
    }

    #[tokio::test]
    async fn redelivery_is_a_duplicate_and_a_reused_id_is_told_apart() {
        let put = mock!(Client::put_item)
            .sequence()
            .error(|| {
                PutItemError::ConditionalCheckFailedException(
                    ConditionalCheckFailedException::builder()
                        .set_item(Some(existing("h1")))
                        .build(),
                )
            })
            .times(2)
            .build();
        let store = test_support::store(&[&put]);
        match store
            .record_request("r1", "p1", "provision", "h1")
            .await
            .unwrap()
        {
            RequestRecord::Duplicate {
                existing,
                same_payload,
            } => {
                assert!(same_payload);
                assert_eq!(existing.state, RequestState::Started);
                assert_eq!(
                    existing.execution_arn.as_deref(),
                    Some("arn:aws:states:us-east-1:1:execution:sm:r1")
                );
            }
            other => panic!("expected Duplicate, got {other:?}"),
        }
        match store
            .record_request("r1", "p1", "provision", "h2")
            .await
            .unwrap()
        {
            RequestRecord::Duplicate { same_payload, .. } => assert!(!same_payload),
            other => panic!("expected Duplicate, got {other:?}"),
        }
    }
}
