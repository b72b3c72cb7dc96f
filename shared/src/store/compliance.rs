//! Compliance reports: one item per sweep (`COMPLIANCE#<requestId>`) and the platform's latest
//! (`COMPLIANCE`), both kept as long as the run history.

use super::error::Result;
use super::item::{self, Reader};
use super::{keys, Store};
use crate::compliance::ComplianceReport;
use chrono::{DateTime, Utc};

const REPORT: &str = "report";

impl Store {
    /// Records a sweep's report, as its own and as the platform's latest.
    pub async fn put_compliance_report(
        &self,
        report: &ComplianceReport,
        evaluated_at: DateTime<Utc>,
    ) -> Result<()> {
        let pk = keys::platform_pk(&report.platform_id)?;
        let value = item::encode("compliance report", report)?;
        let own = keys::compliance_sk(&report.request_id)?;
        self.put_report(pk.clone(), own, value.clone(), evaluated_at)
            .await?;
        self.put_report(pk, keys::COMPLIANCE.to_owned(), value, evaluated_at)
            .await
    }

    /// The report of sweep `request_id`, or the latest when `None`.
    pub async fn get_compliance_report(
        &self,
        platform_id: &str,
        request_id: Option<&str>,
    ) -> Result<Option<ComplianceReport>> {
        let pk = keys::platform_pk(platform_id)?;
        let sk = match request_id {
            Some(id) => keys::compliance_sk(id)?,
            None => keys::COMPLIANCE.to_owned(),
        };
        let Some(found) = self.get_item(&pk, &sk).await? else {
            return Ok(None);
        };
        Reader::new(&found)
            .opt_decode(REPORT)?
            .ok_or_else(|| Reader::new(&found).corrupt("compliance report without `report`"))
            .map(Some)
    }
}
