//! Run history: executions, drift checks and compliance sweeps of a platform, kept with a TTL.

use super::error::{Result, StoreError};
use super::item::{self, n, s, Item, Reader};
use super::keys;
use super::types::{RunRecord, RunStatus};
use super::{expiry_epoch, Store};

const KIND: &str = "kind";
const EXECUTION_ARN: &str = "executionArn";
const REQUEST_ID: &str = "requestId";
const STARTED_AT: &str = "startedAt";
const FINISHED_AT: &str = "finishedAt";
const RUN_STATUS: &str = "runStatus";
const ERROR: &str = "error";
const DETAIL: &str = "detail";

impl Store {
    /// Records (or re-records, e.g. when it finishes) one run. The entry expires after the store's
    /// run TTL counted from the run's start (default 365 days). Returns the record as stored.
    pub async fn record_run(&self, platform_id: &str, run: &RunRecord) -> Result<RunRecord> {
        let pk = keys::platform_pk(platform_id)?;
        let mut sk = keys::run_sk(run.started_at, &run.kind)?;
        // Concurrent requests of one kind may start in the same millisecond (tenant onboardings).
        if let Some(id) = &run.request_id {
            sk = format!("{sk}#{id}");
        }
        let started_at = keys::timestamp(run.started_at);
        let expires_at = expiry_epoch(run.started_at, self.run_ttl);
        let mut record: Item = [
            (keys::PK.to_owned(), s(pk)),
            (keys::SK.to_owned(), s(sk)),
            (KIND.to_owned(), s(&run.kind)),
            (STARTED_AT.to_owned(), s(started_at)),
            (RUN_STATUS.to_owned(), s(run.status.as_str())),
            (keys::TTL_ATTRIBUTE.to_owned(), n(expires_at)),
        ]
        .into();
        if let Some(arn) = &run.execution_arn {
            record.insert(EXECUTION_ARN.to_owned(), s(arn));
        }
        if let Some(id) = &run.request_id {
            record.insert(REQUEST_ID.to_owned(), s(id));
        }
        if let Some(t) = run.finished_at {
            record.insert(FINISHED_AT.to_owned(), s(keys::timestamp(t)));
        }
        if let Some(error) = &run.error {
            record.insert(ERROR.to_owned(), item::encode("run error", error)?);
        }
        if let Some(detail) = &run.detail {
            record.insert(DETAIL.to_owned(), item::to_attr(detail));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record.clone()))
            .send()
            .await
            .map_err(|e| StoreError::aws("PutItem", e))?;
        read_run(&record)
    }

    /// The platform's most recent runs, newest first, at most `limit`.
    pub async fn list_runs(&self, platform_id: &str, limit: usize) -> Result<Vec<RunRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let pk = keys::platform_pk(platform_id)?;
        self.query_prefix(&pk, keys::RUN_PREFIX, true, Some(limit))
            .await?
            .iter()
            .map(read_run)
            .collect()
    }
}

fn read_run(item: &Item) -> Result<RunRecord> {
    let r = Reader::new(item);
    let status = r.s(RUN_STATUS)?;
    Ok(RunRecord {
        kind: r.s(KIND)?.to_owned(),
        execution_arn: r.opt_s(EXECUTION_ARN)?.map(str::to_owned),
        request_id: r.opt_s(REQUEST_ID)?.map(str::to_owned),
        started_at: r.time(STARTED_AT)?,
        finished_at: r.opt_time(FINISHED_AT)?,
        status: RunStatus::parse(status)
            .ok_or_else(|| r.corrupt(format!("unknown run status {status:?}")))?,
        error: r.opt_decode(ERROR)?,
        detail: r.opt_json(DETAIL)?,
        expires_at: r.opt_i64(keys::TTL_ATTRIBUTE)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support;
    use super::super::LastError;
    use super::*;
    use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
    use aws_sdk_dynamodb::Client;
    use aws_smithy_mocks::mock;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    #[tokio::test]
    async fn a_run_is_keyed_by_start_and_kind_and_expires() {
        let started = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let put = mock!(Client::put_item)
            .match_requests(|req| {
                let item = req.item().unwrap();
                item.get("SK") == Some(&s("RUN#2026-01-02T03:04:05.000Z#drift"))
                    && req.condition_expression().is_none()
            })
            .then_output(|| PutItemOutput::builder().build());
        let store = test_support::store(&[&put]).with_run_ttl(std::time::Duration::from_secs(3600));
        let mut run = RunRecord::new("drift", started, RunStatus::Failed);
        run.error = Some(LastError {
            code: "AccessDenied".into(),
            message: "no".into(),
            phase: Some("drift".into()),
            retryable: false,
        });
        run.detail = Some(json!({"differences": [{"field": "endpointPublicAccess"}]}));
        let stored = store.record_run("p1", &run).await.unwrap();
        assert_eq!(put.num_calls(), 1);
        assert_eq!(stored.expires_at, Some(started.timestamp() + 3600));
        assert_eq!(
            RunRecord {
                expires_at: None,
                ..stored
            },
            run
        );
    }
}
