//! Fleet-wide switches an operator sets: the remediation pause (`CONTROL` / `REMEDIATION_PAUSE`).
//!
//! While it is set, every drift check runs report-only, whatever it asked for: intake admits it
//! without the platform's lease, and the check's `assess` step, which reads the switch again,
//! lists no repair (so a check admitted just before the pause repairs nothing either).
//! `docs/runbooks/drift-storm.md` says when to use it.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::error::{Result, StoreError};
use super::item::{self, s, Item, Reader};
use super::{condition_failed, keys, Store};

const PAUSE: &str = "pause";

/// Who paused remediation, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemediationPause {
    /// Why (a ticket, what is going on), as the operator gave it.
    pub reason: String,
    /// The IAM principal that paused it.
    pub paused_by: String,
    /// When (RFC 3339).
    #[schemars(with = "String")]
    pub paused_at: DateTime<Utc>,
}

/// What [`Store::pause_remediation`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Paused {
    /// Remediation is now paused.
    Now(RemediationPause),
    /// It was paused already (kept as it was: the first reason stands).
    Already(RemediationPause),
}

impl Store {
    /// The pause, when remediation is paused.
    pub async fn get_remediation_pause(&self) -> Result<Option<RemediationPause>> {
        let Some(found) = self
            .get_item(keys::CONTROL_PARTITION, keys::REMEDIATION_PAUSE)
            .await?
        else {
            return Ok(None);
        };
        decode(&found).map(Some)
    }

    /// Pauses remediation fleet-wide, unless it is paused already (one conditional write).
    pub async fn pause_remediation(&self, pause: &RemediationPause) -> Result<Paused> {
        let record: Item = [
            (keys::PK.to_owned(), s(keys::CONTROL_PARTITION)),
            (keys::SK.to_owned(), s(keys::REMEDIATION_PAUSE)),
            (PAUSE.to_owned(), item::encode("remediation pause", pause)?),
        ]
        .into();
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record))
            .condition_expression("attribute_not_exists(PK)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match put {
            Ok(_) => Ok(Paused::Now(pause.clone())),
            Err(e) => match condition_failed(&e) {
                Some(Some(old)) => decode(&old).map(Paused::Already),
                // Paused, but DynamoDB did not say by whom: read it.
                Some(None) => match self.get_remediation_pause().await? {
                    Some(old) => Ok(Paused::Already(old)),
                    None => Err(StoreError::aws("PutItem", e)),
                },
                None => Err(StoreError::aws("PutItem", e)),
            },
        }
    }

    /// Resumes remediation; returns the pause it lifted (`None`: it was not paused).
    pub async fn resume_remediation(&self) -> Result<Option<RemediationPause>> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(
                keys::PK,
                AttributeValue::S(keys::CONTROL_PARTITION.to_owned()),
            )
            .key(
                keys::SK,
                AttributeValue::S(keys::REMEDIATION_PAUSE.to_owned()),
            )
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| StoreError::aws("DeleteItem", e))?;
        out.attributes
            .filter(|old| !old.is_empty())
            .map(|old| decode(&old))
            .transpose()
    }
}

fn decode(found: &Item) -> Result<RemediationPause> {
    let reader = Reader::new(found);
    reader
        .opt_decode(PAUSE)?
        .ok_or_else(|| reader.corrupt("remediation pause without `pause`"))
}
