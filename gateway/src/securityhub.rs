//! Security Hub's `BatchImportFindings` as AWS judges it, in front of moto (which stores any
//! finding and updates it whatever its `UpdatedAt`):
//! - at most 100 findings a call;
//! - a finding without one of ASFF's required fields, or of another account than the caller's
//!   (`AwsAccountId`), is refused (in `FailedFindings`);
//! - an update whose `UpdatedAt` is not later than the stored finding's is accepted and ignored,
//!   as Security Hub does, so a provider that does not move `UpdatedAt` on sees nothing change.
//!
//! Every other Security Hub call goes to moto as it is.

use crate::proxy::{forward, lock, AwsRequest, Gateway};
use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;

/// The fields ASFF requires of every imported finding.
pub const REQUIRED: [&str; 12] = [
    "AwsAccountId",
    "CreatedAt",
    "Description",
    "GeneratorId",
    "Id",
    "ProductArn",
    "Resources",
    "SchemaVersion",
    "Severity",
    "Title",
    "Types",
    "UpdatedAt",
];

/// `UpdatedAt` of every finding imported, by finding id.
#[derive(Default)]
pub struct SecurityHubState {
    updated_at: HashMap<String, chrono::DateTime<chrono::FixedOffset>>,
}

fn error(status: StatusCode, message: &str) -> Response<Bytes> {
    let body = json!({"Code": "InvalidInputException", "Message": message});
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-amzn-errortype", "InvalidInputException")
        .body(Bytes::from(body.to_string()))
        .expect("static response")
}

/// Why AWS would refuse `finding`, if it would.
fn refusal(finding: &Value) -> Option<String> {
    let missing: Vec<&str> = REQUIRED
        .into_iter()
        .filter(|f| finding.get(*f).is_none_or(Value::is_null))
        .collect();
    if !missing.is_empty() {
        return Some(format!("missing required field(s): {}", missing.join(", ")));
    }
    let updated = finding["UpdatedAt"].as_str().unwrap_or_default();
    if chrono::DateTime::parse_from_rfc3339(updated).is_err() {
        return Some(format!("UpdatedAt {updated:?} is not an ISO 8601 date"));
    }
    let description = finding["Description"].as_str().unwrap_or_default();
    (description.chars().count() > 1024).then(|| "Description is longer than 1024".to_owned())
}

pub async fn serve(gw: &Gateway, req: &AwsRequest) -> Response<Bytes> {
    if req.class.operation != "BatchImportFindings" {
        return forward(
            gw,
            &req.method,
            &req.path_and_query(),
            &crate::accounts::in_account(req.headers.clone(), &req.account(gw)),
            req.body.clone(),
        )
        .await;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return error(StatusCode::BAD_REQUEST, "the body is not JSON");
    };
    let findings = body["Findings"].as_array().cloned().unwrap_or_default();
    if findings.is_empty() || findings.len() > 100 {
        let message = format!(
            "Findings must hold 1 to 100 findings, not {}",
            findings.len()
        );
        return error(StatusCode::BAD_REQUEST, &message);
    }
    let mut failed = Vec::new();
    let mut fresh = Vec::new();
    let mut ignored = 0;
    {
        let mut state = lock(&gw.securityhub);
        for finding in findings {
            let id = finding["Id"].as_str().unwrap_or_default().to_owned();
            let account = req.account(gw);
            let foreign = (finding["AwsAccountId"] != account.as_str()).then(|| {
                format!(
                    "AwsAccountId {} is not the caller's account {account}",
                    finding["AwsAccountId"]
                )
            });
            if let Some(reason) = foreign.or_else(|| refusal(&finding)) {
                failed.push(json!({"Id": id, "ErrorCode": "InvalidInput", "ErrorMessage": reason}));
                continue;
            }
            let updated = chrono::DateTime::parse_from_rfc3339(
                finding["UpdatedAt"].as_str().unwrap_or_default(),
            )
            .expect("checked by refusal");
            if state
                .updated_at
                .get(&id)
                .is_some_and(|last| *last >= updated)
            {
                ignored += 1;
                continue;
            }
            state.updated_at.insert(id, updated);
            fresh.push(finding);
        }
    }
    let mut success = ignored;
    if !fresh.is_empty() {
        let forwarded = Bytes::from(json!({"Findings": fresh}).to_string());
        let resp = forward(
            gw,
            &req.method,
            &req.path_and_query(),
            &crate::accounts::in_account(req.headers.clone(), &req.account(gw)),
            forwarded,
        )
        .await;
        if resp.status() != StatusCode::OK {
            return resp;
        }
        let out: Value = serde_json::from_slice(resp.body()).unwrap_or_default();
        success += out["SuccessCount"].as_u64().unwrap_or_default() as usize;
        failed.extend(
            out["FailedFindings"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
    }
    let out = json!({
        "FailedCount": failed.len(),
        "SuccessCount": success,
        "FailedFindings": failed,
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Bytes::from(out.to_string()))
        .expect("static response")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding() -> Value {
        let mut f = json!({});
        for field in REQUIRED {
            f[field] = json!("x");
        }
        f["UpdatedAt"] = json!("2026-12-03T10:00:00.000Z");
        f
    }

    #[test]
    fn a_complete_finding_passes_and_each_missing_field_is_named() {
        assert_eq!(refusal(&finding()), None);
        for field in REQUIRED {
            let mut f = finding();
            f.as_object_mut().unwrap().remove(field);
            let reason = refusal(&f).unwrap();
            assert!(reason.contains(field), "{field}: {reason}");
        }
        let mut f = finding();
        f["UpdatedAt"] = json!("yesterday");
        assert!(refusal(&f).unwrap().contains("UpdatedAt"));
    }
}
