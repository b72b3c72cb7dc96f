//! Versioned records: the platform's spec and status, and its tenants; the platform listing.

use super::error::{Result, StoreError};
use super::item::{self, n, s, Item, Reader};
use super::keys;
use super::types::{PhaseStatus, PlatformStatus, PlatformSummary, TenantEntry, Versioned};
use super::{condition_failed, Store};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use serde_json::Value;

pub(super) const VERSION: &str = "version";
pub(super) const UPDATED_AT: &str = "updatedAt";
pub(super) const PLATFORM_ID: &str = "platformId";
const SPEC_ATTR: &str = "spec";
const STATUS_ATTR: &str = "status";
const STATE_ATTR: &str = "lifecycleState";
pub(super) const TENANT_ATTR: &str = "tenant";
pub(super) const TENANT_NAME: &str = "tenantName";

impl Store {
    /// Writes a versioned item: `attrs` plus the keys, `version` and `updatedAt`.
    /// `expected = None` requires that the item does not exist (the new version is 1);
    /// `Some(v)` requires that it is at version `v` (the new version is `v + 1`).
    pub(super) async fn put_versioned(
        &self,
        pk: &str,
        sk: &str,
        mut attrs: Item,
        expected: Option<u64>,
    ) -> Result<u64> {
        let next = expected.map_or(1, |v| v + 1);
        attrs.insert(keys::PK.to_owned(), s(pk));
        attrs.insert(keys::SK.to_owned(), s(sk));
        attrs.insert(VERSION.to_owned(), n(next));
        attrs.insert(UPDATED_AT.to_owned(), s(keys::timestamp(self.now())));
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attrs))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        request = match expected {
            None => request
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", keys::PK),
            Some(v) => request
                .condition_expression("#version = :expected")
                .expression_attribute_names("#version", VERSION)
                .expression_attribute_values(":expected", n(v)),
        };
        match request.send().await {
            Ok(_) => Ok(next),
            Err(err) => match condition_failed(&err) {
                Some(old) => {
                    let old = match old {
                        Some(old) => Some(old),
                        // Older emulators do not return the item: read it to name the version.
                        None => self.get_item(pk, sk).await?,
                    };
                    let actual = old
                        .as_ref()
                        .map(|item| Reader::new(item).u64(VERSION))
                        .transpose()?;
                    Err(StoreError::VersionConflict {
                        key: keys::display(pk, sk),
                        expected,
                        actual,
                    })
                }
                None => Err(StoreError::aws("PutItem", err)),
            },
        }
    }

    async fn get_versioned(
        &self,
        pk: &str,
        sk: &str,
        attr: &str,
    ) -> Result<Option<Versioned<Value>>> {
        self.get_item(pk, sk)
            .await?
            .map(|item| read_versioned(&item, attr))
            .transpose()
    }

    /// Stores the platform's desired spec. `expected_version`: `None` when creating the platform
    /// (fails if it exists), otherwise the version the caller read. Returns the new version.
    pub async fn put_spec(
        &self,
        platform_id: &str,
        spec: &Value,
        expected_version: Option<u64>,
    ) -> Result<u64> {
        let pk = keys::platform_pk(platform_id)?;
        let attrs: Item = [
            (SPEC_ATTR.to_owned(), item::to_attr(spec)),
            (PLATFORM_ID.to_owned(), s(platform_id)),
            (keys::GSI1PK.to_owned(), s(keys::PLATFORMS_PARTITION)),
            (keys::GSI1SK.to_owned(), s(platform_id)),
        ]
        .into();
        self.put_versioned(&pk, keys::SPEC, attrs, expected_version)
            .await
    }

    pub async fn get_spec(&self, platform_id: &str) -> Result<Option<Versioned<Value>>> {
        self.get_versioned(&keys::platform_pk(platform_id)?, keys::SPEC, SPEC_ATTR)
            .await
    }

    /// Replaces the platform's status record, versioned like [`Store::put_spec`].
    pub async fn update_status(
        &self,
        platform_id: &str,
        status: &PlatformStatus,
        expected_version: Option<u64>,
    ) -> Result<u64> {
        let pk = keys::platform_pk(platform_id)?;
        let state = item::encode("platform status", &status.state)?;
        let attrs: Item = [
            (
                STATUS_ATTR.to_owned(),
                item::encode("platform status", status)?,
            ),
            (STATE_ATTR.to_owned(), state),
            (PLATFORM_ID.to_owned(), s(platform_id)),
        ]
        .into();
        self.put_versioned(&pk, keys::STATUS, attrs, expected_version)
            .await
    }

    pub async fn get_status(&self, platform_id: &str) -> Result<Option<Versioned<PlatformStatus>>> {
        let Some(record) = self
            .get_versioned(&keys::platform_pk(platform_id)?, keys::STATUS, STATUS_ATTR)
            .await?
        else {
            return Ok(None);
        };
        let value = serde_json::from_value(record.value).map_err(|e| StoreError::Corrupt {
            key: keys::display(&format!("PLATFORM#{platform_id}"), keys::STATUS),
            reason: format!("status: {e}"),
        })?;
        Ok(Some(Versioned {
            value,
            version: record.version,
            updated_at: record.updated_at,
        }))
    }

    /// Sets one phase's status in place (an atomic update of that map entry, bumping the version),
    /// so that parallel branches can report their phases without conflicting. The status record
    /// must exist. Returns the new version.
    pub async fn set_phase(
        &self,
        platform_id: &str,
        phase: &str,
        status: &PhaseStatus,
    ) -> Result<u64> {
        self.record_phase(
            platform_id,
            phase,
            status,
            &std::collections::BTreeMap::new(),
        )
        .await
    }

    /// [`Store::set_phase`] plus the phase's outputs, each set in place in the status record's
    /// `outputs` map (other phases' outputs are untouched), all in one atomic update.
    pub async fn record_phase(
        &self,
        platform_id: &str,
        phase: &str,
        status: &PhaseStatus,
        outputs: &std::collections::BTreeMap<String, serde_json::Value>,
    ) -> Result<u64> {
        let pk = keys::platform_pk(platform_id)?;
        let mut expression = String::from(
            "SET #status.#phases.#phase = :phase, #version = #version + :one, #updatedAt = :now",
        );
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&pk, keys::STATUS)));
        for (i, (key, value)) in outputs.iter().enumerate() {
            expression.push_str(&format!(", #status.#outputs.#o{i} = :o{i}"));
            update = update
                .expression_attribute_names(format!("#o{i}"), key)
                .expression_attribute_values(format!(":o{i}"), item::to_attr(value));
        }
        if !outputs.is_empty() {
            update = update.expression_attribute_names("#outputs", "outputs");
        }
        let result = update
            .update_expression(expression)
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#status", STATUS_ATTR)
            .expression_attribute_names("#phases", "phases")
            .expression_attribute_names("#phase", phase)
            .expression_attribute_names("#version", VERSION)
            .expression_attribute_names("#updatedAt", UPDATED_AT)
            .expression_attribute_values(":phase", item::encode("phase status", status)?)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", s(keys::timestamp(self.now())))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(out) => {
                let attrs = out.attributes.unwrap_or_default();
                match attrs.get(VERSION) {
                    Some(AttributeValue::N(v)) => v.parse().map_err(|_| StoreError::Corrupt {
                        key: keys::display(&pk, keys::STATUS),
                        reason: format!("version is not an integer: {v:?}"),
                    }),
                    _ => Err(StoreError::Corrupt {
                        key: keys::display(&pk, keys::STATUS),
                        reason: "update returned no version".to_owned(),
                    }),
                }
            }
            Err(err) if condition_failed(&err).is_some() => Err(StoreError::NotFound {
                key: keys::display(&pk, keys::STATUS),
            }),
            Err(err) => Err(StoreError::aws("UpdateItem", err)),
        }
    }

    /// Stores a tenant's spec, versioned like [`Store::put_spec`].
    pub async fn put_tenant(
        &self,
        platform_id: &str,
        name: &str,
        tenant: &Value,
        expected_version: Option<u64>,
    ) -> Result<u64> {
        let pk = keys::platform_pk(platform_id)?;
        let sk = keys::tenant_sk(name)?;
        let attrs: Item = [
            (TENANT_ATTR.to_owned(), item::to_attr(tenant)),
            (TENANT_NAME.to_owned(), s(name)),
            (PLATFORM_ID.to_owned(), s(platform_id)),
        ]
        .into();
        self.put_versioned(&pk, &sk, attrs, expected_version).await
    }

    pub async fn get_tenant(
        &self,
        platform_id: &str,
        name: &str,
    ) -> Result<Option<Versioned<Value>>> {
        self.get_versioned(
            &keys::platform_pk(platform_id)?,
            &keys::tenant_sk(name)?,
            TENANT_ATTR,
        )
        .await
    }

    /// Every tenant of the platform, by name.
    pub async fn list_tenants(&self, platform_id: &str) -> Result<Vec<TenantEntry>> {
        let items = self
            .query_prefix(
                &keys::platform_pk(platform_id)?,
                keys::TENANT_PREFIX,
                false,
                None,
            )
            .await?;
        items
            .iter()
            .map(|item| {
                Ok(TenantEntry {
                    name: Reader::new(item).s(TENANT_NAME)?.to_owned(),
                    record: read_versioned(item, TENANT_ATTR)?,
                })
            })
            .collect()
    }

    /// Deletes a tenant record (after offboarding). Unconditional unless `expected_version` is
    /// given; deleting a missing record succeeds. Returns whether a record was deleted.
    pub async fn delete_tenant(
        &self,
        platform_id: &str,
        name: &str,
        expected_version: Option<u64>,
    ) -> Result<bool> {
        let pk = keys::platform_pk(platform_id)?;
        let sk = keys::tenant_sk(name)?;
        let mut request = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&pk, &sk)))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(v) = expected_version {
            request = request
                .condition_expression("#version = :expected")
                .expression_attribute_names("#version", VERSION)
                .expression_attribute_values(":expected", n(v));
        }
        match request.send().await {
            Ok(out) => Ok(out.attributes.is_some_and(|a| !a.is_empty())),
            Err(err) => match condition_failed(&err) {
                Some(old) => {
                    let old = match old {
                        Some(old) => Some(old),
                        None => self.get_item(&pk, &sk).await?,
                    };
                    let actual = old
                        .as_ref()
                        .map(|item| Reader::new(item).u64(VERSION))
                        .transpose()?;
                    Err(StoreError::VersionConflict {
                        key: keys::display(&pk, &sk),
                        expected: expected_version,
                        actual,
                    })
                }
                None => Err(StoreError::aws("DeleteItem", err)),
            },
        }
    }

    /// Every platform (every platform with a spec), through the `GSI1` index, following pagination.
    /// The index is eventually consistent: a platform created a moment ago may be missing.
    pub async fn list_platforms(&self) -> Result<Vec<PlatformSummary>> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("#gpk = :platforms")
            .expression_attribute_names("#gpk", keys::GSI1PK)
            .expression_attribute_values(":platforms", s(keys::PLATFORMS_PARTITION))
            .into_paginator()
            .items()
            .send();
        let mut platforms = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| StoreError::aws("Query", e))?;
            let r = Reader::new(&item);
            platforms.push(PlatformSummary {
                platform_id: r.s(PLATFORM_ID)?.to_owned(),
                spec_version: r.u64(VERSION)?,
                updated_at: r.time(UPDATED_AT)?,
            });
        }
        Ok(platforms)
    }
}

fn read_versioned(item: &Item, attr: &str) -> Result<Versioned<Value>> {
    let r = Reader::new(item);
    Ok(Versioned {
        value: r.json(attr)?,
        version: r.u64(VERSION)?,
        updated_at: r.time(UPDATED_AT)?,
    })
}

/// The attributes `GSI1` projects besides the keys.
pub(super) const GSI1_PROJECTED: [&str; 3] = [PLATFORM_ID, VERSION, UPDATED_AT];

#[cfg(test)]
mod tests {
    use super::super::test_support;
    use super::*;
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
    use aws_sdk_dynamodb::Client;
    use aws_smithy_mocks::mock;
    use serde_json::json;

    fn spec_item(version: u64) -> Item {
        [
            ("PK".to_owned(), s("PLATFORM#p1")),
            ("SK".to_owned(), s("SPEC")),
            ("spec".to_owned(), item::to_attr(&json!({"name": "p1"}))),
            ("version".to_owned(), n(version)),
            ("updatedAt".to_owned(), s("2026-01-02T03:04:05.000Z")),
        ]
        .into()
    }

    #[tokio::test]
    async fn put_spec_writes_version_one_only_if_absent() {
        let put = mock!(Client::put_item)
            .match_requests(|req| {
                let item = req.item().unwrap();
                req.condition_expression() == Some("attribute_not_exists(#pk)")
                    && item.get("version") == Some(&n(1))
                    && item.get("PK") == Some(&s("PLATFORM#p1"))
                    && item.get("SK") == Some(&s("SPEC"))
                    && item.get("GSI1PK") == Some(&s("PLATFORMS"))
                    && item.get("GSI1SK") == Some(&s("p1"))
                    && req.table_name() == Some("tenantry-test")
            })
            .then_output(|| PutItemOutput::builder().build());
        let store = test_support::store(&[&put]);
        assert_eq!(
            store
                .put_spec("p1", &json!({"name": "p1"}), None)
                .await
                .unwrap(),
            1
        );
        assert_eq!(put.num_calls(), 1);
    }

    #[tokio::test]
    async fn failed_condition_becomes_a_version_conflict_naming_the_stored_version() {
        let put = mock!(Client::put_item)
            .match_requests(|req| {
                req.condition_expression() == Some("#version = :expected")
                    && req.expression_attribute_values().unwrap().get(":expected") == Some(&n(3))
                    && req.item().unwrap().get("version") == Some(&n(4))
            })
            .then_error(|| {
                PutItemError::ConditionalCheckFailedException(
                    ConditionalCheckFailedException::builder()
                        .message("The conditional request failed")
                        .set_item(Some(spec_item(5)))
                        .build(),
                )
            });
        let store = test_support::store(&[&put]);
        let err = store.put_spec("p1", &json!({}), Some(3)).await.unwrap_err();
        match &err {
            StoreError::VersionConflict {
                key,
                expected,
                actual,
            } => {
                assert_eq!(key, "PLATFORM#p1/SPEC");
                assert_eq!(*expected, Some(3));
                assert_eq!(*actual, Some(5));
            }
            other => panic!("unexpected {other:?}"),
        }
        let f: crate::error::FunctionError = err.into();
        assert_eq!(f.error_type, crate::error::ErrorType::Conflict);
    }

    #[tokio::test]
    async fn without_the_old_item_the_conflict_reads_the_version() {
        let put = mock!(Client::put_item).then_error(|| {
            PutItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder().build(),
            )
        });
        let get = mock!(Client::get_item)
            .match_requests(|req| req.consistent_read() == Some(true))
            .then_output(|| {
                GetItemOutput::builder()
                    .set_item(Some(spec_item(2)))
                    .build()
            });
        let store = test_support::store(&[&put, &get]);
        let err = store.put_spec("p1", &json!({}), None).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::VersionConflict {
                    expected: None,
                    actual: Some(2),
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(get.num_calls(), 1);
    }

    #[tokio::test]
    async fn throttling_is_retryable_and_other_errors_terminal() {
        let put = mock!(Client::put_item)
            .sequence()
            .http_status(
                400,
                Some(r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"slow down"}"#.to_owned()),
            )
            .http_status(
                400,
                Some(r#"{"__type":"com.amazon.coral.validate#ValidationException","message":"bad"}"#.to_owned()),
            )
            .build();
        let store = test_support::store(&[&put]);
        let err = store.put_spec("p1", &json!({}), None).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Aws { operation: "PutItem", code: Some(c), retryable: true, .. } if c == "ThrottlingException"),
            "{err:?}"
        );
        assert_eq!(
            crate::error::FunctionError::from(err).error_type,
            crate::error::ErrorType::Retryable
        );
        let err = store.put_spec("p1", &json!({}), None).await.unwrap_err();
        assert!(
            matches!(
                &err,
                StoreError::Aws {
                    retryable: false,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.error_type(), crate::error::ErrorType::Terminal);
    }

    #[tokio::test]
    async fn get_spec_decodes_the_document() {
        let get = mock!(Client::get_item).then_output(|| {
            GetItemOutput::builder()
                .set_item(Some(spec_item(7)))
                .build()
        });
        let store = test_support::store(&[&get]);
        let spec = store.get_spec("p1").await.unwrap().unwrap();
        assert_eq!(spec.version, 7);
        assert_eq!(spec.value, json!({"name": "p1"}));
        assert!(matches!(
            store.get_spec("a#b").await,
            Err(StoreError::InvalidKey { .. })
        ));
    }
}
