//! Drift reports: one item per check (`DRIFT#<requestId>`, kept as long as the run history), and
//! the check's counts and outcome on the platform's status.

use super::error::{Result, StoreError};
use super::item::{self, n, s, Item, Reader};
use super::types::LifecycleState;
use super::{expiry_epoch, keys, Store};
use crate::drift::DriftReport;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

const REPORT: &str = "report";
/// Attempts at the status write before giving up on version conflicts (phases of a concurrent
/// tenant request may write the status meanwhile).
const STATUS_ATTEMPTS: usize = 3;

impl Store {
    /// Records (or re-records) a check's report.
    pub async fn put_drift_report(&self, report: &DriftReport) -> Result<()> {
        let pk = keys::platform_pk(&report.platform_id)?;
        let sk = keys::drift_sk(&report.request_id)?;
        let value = item::encode("drift report", report)?;
        self.put_report(pk, sk, value, report.checked_at).await
    }

    /// One report item, kept as long as the run history counted from `since`.
    pub(super) async fn put_report(
        &self,
        pk: String,
        sk: String,
        report: AttributeValue,
        since: DateTime<Utc>,
    ) -> Result<()> {
        let record: Item = [
            (keys::PK.to_owned(), s(pk)),
            (keys::SK.to_owned(), s(sk)),
            (REPORT.to_owned(), report),
            (
                keys::TTL_ATTRIBUTE.to_owned(),
                n(expiry_epoch(since, self.run_ttl)),
            ),
        ]
        .into();
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record))
            .send()
            .await
            .map_err(|e| StoreError::aws("PutItem", e))?;
        Ok(())
    }

    /// The report of the check `request_id` of a platform.
    pub async fn get_drift_report(
        &self,
        platform_id: &str,
        request_id: &str,
    ) -> Result<Option<DriftReport>> {
        let pk = keys::platform_pk(platform_id)?;
        let Some(found) = self.get_item(&pk, &keys::drift_sk(request_id)?).await? else {
            return Ok(None);
        };
        Reader::new(&found)
            .opt_decode(REPORT)?
            .ok_or_else(|| Reader::new(&found).corrupt("drift report without `report`"))
            .map(Some)
    }

    /// Records a fleet sweep's report (`SWEEP#<id>`, kept as long as the run history).
    pub async fn put_sweep_report(&self, sweep_id: &str, report: &serde_json::Value) -> Result<()> {
        let pk = keys::sweep_pk(sweep_id)?;
        let value = item::to_attr(report);
        self.put_report(pk, keys::SWEEP.to_owned(), value, self.now())
            .await
    }

    /// The ids of the platforms that are built (`Active` or `Drifted`): what a sweep checks, and
    /// where a change to an AWS resource is looked for.
    pub async fn active_platforms(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for platform in self.list_platforms().await? {
            let status = self.get_status(&platform.platform_id).await?;
            if status.is_some_and(|s| s.value.state.is_active()) {
                out.push(platform.platform_id);
            }
        }
        Ok(out)
    }

    /// A fleet sweep's report.
    pub async fn get_sweep_report(&self, sweep_id: &str) -> Result<Option<serde_json::Value>> {
        let Some(found) = self
            .get_item(&keys::sweep_pk(sweep_id)?, keys::SWEEP)
            .await?
        else {
            return Ok(None);
        };
        Reader::new(&found).opt_json(REPORT)
    }

    /// Puts the report's counts on the platform's status, and its state: `Drifted` while a
    /// component has an open difference (a check of some components keeps what the last checks
    /// found in the others), `Active` when none has. Only an active platform moves (a check never
    /// overrides a provision, an update or a failure recorded meanwhile).
    pub async fn record_drift(&self, report: &DriftReport) -> Result<LifecycleState> {
        let summary = report.summary();
        let mut last = None;
        for _ in 0..STATUS_ATTEMPTS {
            let Some(current) = self.get_status(&report.platform_id).await? else {
                return Err(StoreError::Corrupt {
                    key: keys::display(&keys::platform_pk(&report.platform_id)?, keys::STATUS),
                    reason: "a drift check of a platform without status".into(),
                });
            };
            let mut status = current.value.clone();
            // A check of some components leaves the others as the last checks found them.
            status.drifted = report.drifted_after(&status.drifted);
            if status.state.is_active() {
                status.state = if status.drifted.is_empty() {
                    LifecycleState::Active
                } else {
                    LifecycleState::Drifted
                };
            }
            status.last_drift = Some(summary.clone());
            if status == current.value {
                return Ok(status.state);
            }
            match self
                .update_status(&report.platform_id, &status, Some(current.version))
                .await
            {
                Ok(_) => return Ok(status.state),
                Err(e @ StoreError::VersionConflict { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }
}
