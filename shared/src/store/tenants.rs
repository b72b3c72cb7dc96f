//! Tenant records: the single source of truth of a tenant's spec and lifecycle state.
//!
//! A tenant record lives at `PLATFORM#<id>` / `TENANT#<name>`, next to the platform's spec and
//! status, and is versioned like them. Its spec is the `tenant` attribute that
//! [`Store::put_tenant`] and [`Store::get_tenant`] read and write, so those keep working on
//! records written here; the lifecycle lives in attributes of its own (`tenantState`, `failure`,
//! `retainData`, `scheduleKeyDeletion`, `requestId`). A record without `tenantState` (written by
//! [`Store::put_tenant`], which knows no lifecycle) reads as `Active`.
//!
//! State changes: product code (intake, finalize, the tenants phase) changes a tenant record only
//! through the named transitions at the end of this module, which check the table of
//! [`TenantTransition`] and write with the condition its row names. The storage primitives
//! ([`Store::put_tenant_record`], [`Store::transition_tenant`], [`Store::set_tenant_state`]) stay
//! public for the local-stack tests of those conditions.

use super::error::{Result, StoreError};
use super::item::{self, n, s, Item, Reader};
use super::keys;
use super::types::{
    OffboardOptions, TenantFailure, TenantRecord, TenantState, TenantTransition, TenantWrite,
    Versioned,
};
use super::versioned::{PLATFORM_ID, TENANT_ATTR, TENANT_NAME, UPDATED_AT, VERSION};
use super::{condition_failed, Store};
use crate::spec::TenantSpec;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

const STATE: &str = "tenantState";
const FAILURE: &str = "failure";
const RETAIN_DATA: &str = "retainData";
const SCHEDULE_KEY_DELETION: &str = "scheduleKeyDeletion";
const REQUEST_ID: &str = "requestId";

impl Store {
    /// Stores a tenant record, versioned like [`Store::put_spec`]: `expected_version` is `None`
    /// when creating it (fails with [`StoreError::VersionConflict`] if a record of that name
    /// exists, whatever its state) and otherwise the version the caller read. The record's
    /// `updated_at` is set by the store. Returns the new version.
    pub async fn put_tenant_record(
        &self,
        platform_id: &str,
        record: &TenantRecord,
        expected_version: Option<u64>,
    ) -> Result<u64> {
        if record.name != record.spec.name {
            return Err(StoreError::Encode {
                what: "tenant record".to_owned(),
                reason: format!(
                    "record name {:?} is not its spec's name {:?}",
                    record.name, record.spec.name
                ),
            });
        }
        let pk = keys::platform_pk(platform_id)?;
        let sk = keys::tenant_sk(&record.name)?;
        let mut attrs: Item = [
            (
                TENANT_ATTR.to_owned(),
                item::encode("tenant spec", &record.spec)?,
            ),
            (TENANT_NAME.to_owned(), s(&record.name)),
            (PLATFORM_ID.to_owned(), s(platform_id)),
            (STATE.to_owned(), s(record.state.as_str())),
            (
                RETAIN_DATA.to_owned(),
                AttributeValue::Bool(record.retain_data),
            ),
            (
                SCHEDULE_KEY_DELETION.to_owned(),
                AttributeValue::Bool(record.schedule_key_deletion),
            ),
            (REQUEST_ID.to_owned(), s(&record.request_id)),
        ]
        .into();
        if let Some(failure) = &record.failure {
            attrs.insert(FAILURE.to_owned(), item::encode("tenant failure", failure)?);
        }
        self.put_versioned(&pk, &sk, attrs, expected_version).await
    }

    /// The tenant record, with the version to pass back to update it.
    pub async fn get_tenant_record(
        &self,
        platform_id: &str,
        name: &str,
    ) -> Result<Option<Versioned<TenantRecord>>> {
        let pk = keys::platform_pk(platform_id)?;
        let sk = keys::tenant_sk(name)?;
        self.get_item(&pk, &sk)
            .await?
            .map(|item| read_tenant_record(&item))
            .transpose()
    }

    /// Every tenant record of the platform (offboarded ones included), by name.
    pub async fn list_tenant_records(
        &self,
        platform_id: &str,
    ) -> Result<Vec<Versioned<TenantRecord>>> {
        let items = self
            .query_prefix(
                &keys::platform_pk(platform_id)?,
                keys::TENANT_PREFIX,
                false,
                None,
            )
            .await?;
        items.iter().map(read_tenant_record).collect()
    }

    /// Sets the tenant's state and failure (removed when `None`) in one conditional update that
    /// bumps the version; the record must exist ([`StoreError::NotFound`] otherwise). Returns the
    /// record as stored.
    pub async fn set_tenant_state(
        &self,
        platform_id: &str,
        name: &str,
        state: TenantState,
        failure: Option<&TenantFailure>,
    ) -> Result<Versioned<TenantRecord>> {
        let pk = keys::platform_pk(platform_id)?;
        let sk = keys::tenant_sk(name)?;
        match self
            .update_tenant_state(&pk, &sk, state, failure, None)
            .await?
        {
            Some(record) => Ok(record),
            None => Err(StoreError::NotFound {
                key: keys::display(&pk, &sk),
            }),
        }
    }

    /// Moves the tenant to `to` (with `failure`, removed when `None`) only if the record was
    /// last changed by `request_id` and is in one of the states `from` (any state when `from`
    /// is empty): one conditional update, so a late or repeated step of a request never
    /// overwrites what a newer request did. `None` when the condition does not hold (or the record
    /// does not exist).
    pub async fn transition_tenant(
        &self,
        platform_id: &str,
        name: &str,
        request_id: &str,
        from: &[TenantState],
        to: TenantState,
        failure: Option<&TenantFailure>,
    ) -> Result<Option<Versioned<TenantRecord>>> {
        let pk = keys::platform_pk(platform_id)?;
        let sk = keys::tenant_sk(name)?;
        self.update_tenant_state(&pk, &sk, to, failure, Some((request_id, from)))
            .await
    }

    async fn update_tenant_state(
        &self,
        pk: &str,
        sk: &str,
        state: TenantState,
        failure: Option<&TenantFailure>,
        guard: Option<(&str, &[TenantState])>,
    ) -> Result<Option<Versioned<TenantRecord>>> {
        let mut condition = String::from("attribute_exists(#pk)");
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#state", STATE)
            .expression_attribute_names("#failure", FAILURE)
            .expression_attribute_names("#version", VERSION)
            .expression_attribute_names("#updatedAt", UPDATED_AT)
            .expression_attribute_values(":state", s(state.as_str()))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", s(keys::timestamp(self.now())))
            .return_values(ReturnValue::AllNew);
        let expression = match failure {
            Some(failure) => {
                request = request.expression_attribute_values(
                    ":failure",
                    item::encode("tenant failure", failure)?,
                );
                "SET #state = :state, #failure = :failure, #version = #version + :one, \
                 #updatedAt = :now"
            }
            None => {
                "SET #state = :state, #version = #version + :one, #updatedAt = :now \
                     REMOVE #failure"
            }
        };
        if let Some((request_id, from)) = guard {
            request = with_guard(request, &mut condition, request_id, from);
        }
        let result = request
            .update_expression(expression)
            .condition_expression(condition)
            .send()
            .await;
        match result {
            Ok(out) => read_tenant_record(&out.attributes.unwrap_or_default()).map(Some),
            Err(err) if condition_failed(&err).is_some() => Ok(None),
            Err(err) => Err(StoreError::aws("UpdateItem", err)),
        }
    }
}

/// The named transitions (see [`TenantTransition`] for the table).
impl Store {
    /// [`TenantTransition::Request`]: records `tenant` as `Requested` for `request_id`, creating
    /// the record or replacing `replacing` (an offboarded record of that name, at the version
    /// read). Returns the new version.
    pub async fn request_tenant(
        &self,
        platform_id: &str,
        tenant: &TenantSpec,
        request_id: &str,
        replacing: Option<&Versioned<TenantRecord>>,
    ) -> Result<u64> {
        let transition = TenantTransition::Request;
        self.put_fresh(transition, platform_id, tenant, request_id, replacing)
            .await
    }

    /// [`TenantTransition::Withdraw`]: takes back the `Requested` record a request wrote (still at
    /// `version`): restores the record it replaced, or deletes it.
    pub async fn withdraw_tenant(
        &self,
        platform_id: &str,
        name: &str,
        version: u64,
        replaced: Option<&Versioned<TenantRecord>>,
    ) -> Result<()> {
        match replaced {
            Some(previous) => {
                self.put_tenant_record(platform_id, &previous.value, Some(version))
                    .await?;
            }
            None => {
                self.delete_tenant(platform_id, name, Some(version)).await?;
            }
        }
        Ok(())
    }

    /// [`TenantTransition::StartOffboarding`]: moves `current` (as read at `version`; `None` for
    /// a tenant of the platform's spec without a record, which counts as `Active`) to
    /// `Offboarding` for `request_id` with the request's data options. Returns the new version.
    pub async fn start_offboarding(
        &self,
        platform_id: &str,
        current: TenantRecord,
        version: Option<u64>,
        request_id: &str,
        options: OffboardOptions,
    ) -> Result<u64> {
        check(
            TenantTransition::StartOffboarding,
            &current.name,
            Some(current.state),
        )?;
        let mut record = current;
        record.state = TenantState::Offboarding;
        record.failure = None;
        record.retain_data = options.retain_data;
        record.schedule_key_deletion = options.schedule_key_deletion;
        record.request_id = request_id.to_owned();
        self.put_tenant_record(platform_id, &record, version).await
    }

    /// [`TenantTransition::ProvisionOnboarding`]: a tenant of the platform's spec is onboarded by
    /// the platform's request `request_id` (`current` as read, if any).
    pub async fn onboard_with_platform(
        &self,
        platform_id: &str,
        tenant: &TenantSpec,
        request_id: &str,
        current: Option<&Versioned<TenantRecord>>,
    ) -> Result<u64> {
        let transition = TenantTransition::ProvisionOnboarding;
        self.put_fresh(transition, platform_id, tenant, request_id, current)
            .await
    }

    /// [`TenantTransition::DecommissionOffboarding`]: a tenant the decommission removes is
    /// offboarded (its data not retained) by the platform's request `request_id`.
    pub async fn offboard_with_platform(
        &self,
        platform_id: &str,
        tenant: &TenantSpec,
        request_id: &str,
        current: Option<&Versioned<TenantRecord>>,
    ) -> Result<u64> {
        let transition = TenantTransition::DecommissionOffboarding;
        self.put_fresh(transition, platform_id, tenant, request_id, current)
            .await
    }

    /// A versioned put of a fresh record of `tenant` (no failure, no offboarding options) in the
    /// transition's target state for `request_id`, over `current` as read.
    async fn put_fresh(
        &self,
        transition: TenantTransition,
        platform_id: &str,
        tenant: &TenantSpec,
        request_id: &str,
        current: Option<&Versioned<TenantRecord>>,
    ) -> Result<u64> {
        check(transition, &tenant.name, current.map(|r| r.value.state))?;
        let Some(to) = transition.rule().to else {
            return Err(refused(transition, &tenant.name, "it has no target state"));
        };
        let record = TenantRecord::new(tenant.clone(), to, request_id);
        self.put_tenant_record(platform_id, &record, current.map(|r| r.version))
            .await
    }

    /// A guarded transition (`StartOnboarding`, `Onboarded`, `Offboarded`, `Fail`): moves the
    /// tenant only while its record is `request_id`'s and in a state the row allows, with
    /// `failure` (removed when `None`). `None` when the condition does not hold.
    pub async fn move_tenant(
        &self,
        platform_id: &str,
        name: &str,
        request_id: &str,
        transition: TenantTransition,
        failure: Option<&TenantFailure>,
    ) -> Result<Option<Versioned<TenantRecord>>> {
        let rule = transition.rule();
        let Some(to) = rule.to.filter(|_| rule.write == TenantWrite::Guarded) else {
            return Err(refused(transition, name, "it is not a guarded update"));
        };
        self.transition_tenant(platform_id, name, request_id, rule.from, to, failure)
            .await
    }
}

/// A transition the table does not allow from `state` is a caller's mistake: nothing is written.
fn check(transition: TenantTransition, name: &str, state: Option<TenantState>) -> Result<()> {
    if transition.allows(state) {
        return Ok(());
    }
    let from = state.map_or_else(|| "no record".to_owned(), |s| s.to_string());
    Err(refused(
        transition,
        name,
        &format!("not allowed from {from}"),
    ))
}

fn refused(transition: TenantTransition, name: &str, why: &str) -> StoreError {
    StoreError::Encode {
        what: format!("tenant {name:?}"),
        reason: format!("transition {transition:?}: {why}"),
    }
}

/// Adds to `condition` (and its values to `request`): the record was last changed by
/// `request_id` and is in one of the states `from` (any state when `from` is empty).
fn with_guard(
    mut request: UpdateItemFluentBuilder,
    condition: &mut String,
    request_id: &str,
    from: &[TenantState],
) -> UpdateItemFluentBuilder {
    condition.push_str(" AND #requestId = :requestId");
    request = request
        .expression_attribute_names("#requestId", REQUEST_ID)
        .expression_attribute_values(":requestId", s(request_id));
    if !from.is_empty() {
        let states: Vec<String> = (0..from.len())
            .map(|i| format!("#state = :from{i}"))
            .collect();
        condition.push_str(&format!(" AND ({})", states.join(" OR ")));
        for (i, state) in from.iter().enumerate() {
            request = request.expression_attribute_values(format!(":from{i}"), s(state.as_str()));
        }
    }
    request
}

fn bool_attr(r: &Reader<'_>, item: &Item, name: &str) -> Result<bool> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(false),
        Some(AttributeValue::Bool(b)) => Ok(*b),
        Some(other) => Err(r.corrupt(format!("{name} is not a boolean: {other:?}"))),
    }
}

/// Decodes a tenant item (see the module documentation for records without lifecycle).
pub(super) fn read_tenant_record(item: &Item) -> Result<Versioned<TenantRecord>> {
    let r = Reader::new(item);
    let spec = serde_json::from_value(r.json(TENANT_ATTR)?)
        .map_err(|e| r.corrupt(format!("{TENANT_ATTR}: {e}")))?;
    let state = match r.opt_s(STATE)? {
        None => TenantState::Active,
        Some(v) => {
            TenantState::parse(v).ok_or_else(|| r.corrupt(format!("unknown tenant state {v:?}")))?
        }
    };
    let updated_at = r.time(UPDATED_AT)?;
    Ok(Versioned {
        value: TenantRecord {
            name: r.s(TENANT_NAME)?.to_owned(),
            spec,
            state,
            failure: r.opt_decode(FAILURE)?,
            retain_data: bool_attr(&r, item, RETAIN_DATA)?,
            schedule_key_deletion: bool_attr(&r, item, SCHEDULE_KEY_DELETION)?,
            request_id: r.opt_s(REQUEST_ID)?.unwrap_or_default().to_owned(),
            updated_at,
        },
        version: r.u64(VERSION)?,
        updated_at,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support;
    use super::*;
    use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
    use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
    use aws_sdk_dynamodb::Client;
    use aws_smithy_mocks::mock;
    use serde_json::json;

    fn spec(name: &str) -> crate::spec::TenantSpec {
        serde_json::from_value(json!({"name": name, "costCentre": "cc-1"})).unwrap()
    }

    fn stored(state: Option<&str>) -> Item {
        let mut item: Item = [
            ("PK".to_owned(), s("PLATFORM#p1")),
            ("SK".to_owned(), s("TENANT#team-a")),
            (
                TENANT_ATTR.to_owned(),
                item::to_attr(&serde_json::to_value(spec("team-a")).unwrap()),
            ),
            (TENANT_NAME.to_owned(), s("team-a")),
            (VERSION.to_owned(), n(3)),
            (UPDATED_AT.to_owned(), s("2026-01-02T03:04:05.000Z")),
        ]
        .into();
        if let Some(state) = state {
            item.insert(STATE.to_owned(), s(state));
            item.insert(RETAIN_DATA.to_owned(), AttributeValue::Bool(true));
            item.insert(REQUEST_ID.to_owned(), s("req-1"));
            item.insert(
                FAILURE.to_owned(),
                item::to_attr(&json!({"phase": "tenant", "reason": "boom"})),
            );
        }
        item
    }

    #[test]
    fn records_decode_with_and_without_lifecycle() {
        let full = read_tenant_record(&stored(Some("Failed"))).unwrap();
        assert_eq!(full.version, 3);
        assert_eq!(full.value.state, TenantState::Failed);
        assert!(full.value.retain_data);
        assert!(!full.value.schedule_key_deletion);
        assert_eq!(full.value.request_id, "req-1");
        assert_eq!(
            full.value.failure,
            Some(TenantFailure {
                phase: "tenant".into(),
                reason: "boom".into(),
                code: None
            })
        );
        let legacy = read_tenant_record(&stored(None)).unwrap();
        assert_eq!(legacy.value.state, TenantState::Active);
        assert_eq!(legacy.value.request_id, "");
        assert!(matches!(
            read_tenant_record(&stored(Some("Sleeping"))),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn states_round_trip() {
        for state in TenantState::ALL {
            assert_eq!(TenantState::parse(state.as_str()), Some(state));
            assert_eq!(serde_json::to_value(state).unwrap(), json!(state.as_str()));
        }
        assert!(TenantState::Onboarding.in_progress());
        assert!(!TenantState::Offboarded.in_progress());
    }

    #[tokio::test]
    async fn put_writes_the_lifecycle_next_to_the_spec() {
        let put = mock!(Client::put_item)
            .match_requests(|req| {
                let item = req.item().unwrap();
                req.condition_expression() == Some("attribute_not_exists(#pk)")
                    && item.get("SK") == Some(&s("TENANT#team-a"))
                    && item.get(STATE) == Some(&s("Requested"))
                    && item.get(REQUEST_ID) == Some(&s("req-1"))
                    && item.get(RETAIN_DATA) == Some(&AttributeValue::Bool(false))
                    && matches!(item.get(TENANT_ATTR), Some(AttributeValue::M(m)) if m.contains_key("costCentre"))
                    && !item.contains_key(FAILURE)
            })
            .then_output(|| PutItemOutput::builder().build());
        let store = test_support::store(&[&put]);
        let record = TenantRecord::new(spec("team-a"), TenantState::Requested, "req-1");
        assert_eq!(
            store.put_tenant_record("p1", &record, None).await.unwrap(),
            1
        );
        let mut renamed = record.clone();
        renamed.name = "team-b".into();
        assert!(matches!(
            store.put_tenant_record("p1", &renamed, None).await,
            Err(StoreError::Encode { .. })
        ));
        assert_eq!(put.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_guarded_transition_names_request_and_states() {
        let update = mock!(Client::update_item)
            .match_requests(|req| {
                let values = req.expression_attribute_values().unwrap();
                req.condition_expression()
                    == Some(
                        "attribute_exists(#pk) AND #requestId = :requestId AND \
                         (#state = :from0 OR #state = :from1)",
                    )
                    && values.get(":from1") == Some(&s("Onboarding"))
                    && values.get(":state") == Some(&s("Active"))
                    && req
                        .update_expression()
                        .is_some_and(|e| e.contains("REMOVE #failure"))
            })
            .then_output(|| {
                UpdateItemOutput::builder()
                    .set_attributes(Some(stored(Some("Active"))))
                    .build()
            });
        let refused = mock!(Client::update_item).then_error(|| {
            UpdateItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder().build(),
            )
        });
        let store = test_support::store(&[&update]);
        let moved = store
            .transition_tenant(
                "p1",
                "team-a",
                "req-1",
                &[TenantState::Requested, TenantState::Onboarding],
                TenantState::Active,
                None,
            )
            .await
            .unwrap()
            .expect("moved");
        assert_eq!(moved.value.state, TenantState::Active);
        let store = test_support::store(&[&refused]);
        assert_eq!(
            store
                .transition_tenant("p1", "team-a", "req-2", &[], TenantState::Active, None)
                .await
                .unwrap(),
            None
        );
        assert!(matches!(
            store
                .set_tenant_state("p1", "team-a", TenantState::Active, None)
                .await,
            Err(StoreError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn named_transitions_write_the_row_of_the_table_and_nothing_it_refuses() {
        let update = mock!(Client::update_item)
            .match_requests(|req| {
                let values = req.expression_attribute_values().unwrap();
                req.condition_expression()
                    == Some(
                        "attribute_exists(#pk) AND #requestId = :requestId AND \
                         (#state = :from0 OR #state = :from1 OR #state = :from2)",
                    )
                    && values.get(":state") == Some(&s("Failed"))
                    && values.get(":from2") == Some(&s("Offboarding"))
                    && values.contains_key(":failure")
            })
            .then_output(|| {
                UpdateItemOutput::builder()
                    .set_attributes(Some(stored(Some("Failed"))))
                    .build()
            });
        let store = test_support::store(&[&update]);
        let failure = TenantFailure {
            phase: "intake".into(),
            reason: "no state machine".into(),
            code: None,
        };
        let failed = store
            .move_tenant(
                "p1",
                "team-a",
                "req-1",
                TenantTransition::Fail,
                Some(&failure),
            )
            .await
            .unwrap()
            .expect("moved");
        assert_eq!(failed.value.state, TenantState::Failed);
        // Refused by the table: nothing is written.
        let active = read_tenant_record(&stored(Some("Active"))).unwrap();
        let refused = store
            .request_tenant("p1", &spec("team-a"), "req-2", Some(&active))
            .await;
        assert!(
            matches!(refused, Err(StoreError::Encode { .. })),
            "{refused:?}"
        );
        let mut offboarded = active.value.clone();
        offboarded.state = TenantState::Offboarded;
        let options = OffboardOptions::default();
        let refused = store
            .start_offboarding("p1", offboarded, Some(3), "req-3", options)
            .await;
        assert!(
            matches!(refused, Err(StoreError::Encode { .. })),
            "{refused:?}"
        );
        let not_guarded = store
            .move_tenant("p1", "team-a", "req-1", TenantTransition::Request, None)
            .await;
        assert!(matches!(not_guarded, Err(StoreError::Encode { .. })));
        assert_eq!(update.num_calls(), 1);
    }
}
