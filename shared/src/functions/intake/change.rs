//! Checks started by change: an "AWS API Call via CloudTrail" event (EC2, EKS, IAM, KMS, Logs,
//! S3; the template's rule on the default bus routes the mutating ones here) that touches a
//! resource in a platform's inventory becomes a `DriftCheckRequested` for that platform, with the
//! platform's own `driftRemediation`. Calls Tenantry itself made (its functions' sessions are
//! named after the functions, `tenantry-*`) never start one, or every repair would start another.
//!
//! Debounced per platform: the request id is the platform and the five-minute window of the
//! call, so every change of one window makes one check (intake's idempotency drops the others).
//! A change the check of its window already saw, or one refused because the platform is busy, is
//! caught by the next change or by the nightly sweep.

use super::envelope::{Body, Request};
use super::Intake;
use crate::error::FunctionError;
use crate::events::{RequestKind, SCHEMA_VERSION};
use crate::plan::Phase;
use crate::store::{payload_hash, RequestOrigin};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Timelike, Utc};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// The detail-type of CloudTrail management events on EventBridge.
pub const CLOUDTRAIL_DETAIL_TYPE: &str = "AWS API Call via CloudTrail";
/// Length of a debounce window, in minutes.
const WINDOW_MINUTES: u32 = 5;
/// At most this many strings of a call's parameters are matched against the inventories.
const MAX_CANDIDATES: usize = 64;

/// A mutating AWS call someone made, as CloudTrail recorded it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Change {
    pub event_name: String,
    pub time: DateTime<Utc>,
    /// Every string of the call's parameters and resources: ids, names, ARNs.
    pub candidates: Vec<String>,
    pub by_tenantry: bool,
    pub origin: RequestOrigin,
}

/// The change an event records; `None` for events that are not CloudTrail calls from AWS (only
/// AWS may use `aws.*` sources on EventBridge).
pub(super) fn parse(event: &EventBridgeEvent<Value>) -> Option<Change> {
    if event.detail_type != CLOUDTRAIL_DETAIL_TYPE || !event.source.starts_with("aws.") {
        return None;
    }
    let detail = &event.detail;
    let mut candidates = Vec::new();
    collect_strings(&detail["requestParameters"], &mut candidates);
    for r in detail["resources"].as_array().into_iter().flatten() {
        collect_strings(&r["ARN"], &mut candidates);
    }
    candidates.truncate(MAX_CANDIDATES);
    let session = detail["userIdentity"]["arn"].as_str().unwrap_or_default();
    let by_tenantry = session.contains(":assumed-role/")
        && session
            .rsplit('/')
            .next()
            .is_some_and(|s| s.starts_with(crate::workflows::NAME_PREFIX));
    Some(Change {
        event_name: detail["eventName"].as_str().unwrap_or_default().to_owned(),
        time: event.time.unwrap_or_else(Utc::now),
        candidates,
        by_tenantry,
        origin: RequestOrigin {
            channel: "cloudtrail".to_owned(),
            event_id: event.id.clone(),
            account: event.account.clone(),
            source: event.source.clone(),
            region: event.region.clone(),
            time: event.time.map(|t| t.to_rfc3339()),
        },
    })
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) if !s.is_empty() => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

/// Whether `candidate` names the inventory record `id` / `arn` (a key id inside a key ARN, a
/// role name inside a role ARN).
fn names(candidate: &str, id: &str, arn: Option<&str>) -> bool {
    candidate == id
        || arn == Some(candidate)
        || candidate.ends_with(&format!("/{id}"))
        || arn.is_some_and(|a| a.ends_with(&format!("/{candidate}")))
}

/// The request id of the check of `platform` for a change at `time`.
fn debounced_request_id(platform: &str, time: DateTime<Utc>) -> String {
    let minute = time.minute() - time.minute() % WINDOW_MINUTES;
    format!("change-{platform}-{}{minute:02}", time.format("%Y%m%d%H"))
}

impl Intake<'_> {
    /// The drift check a change asks for, if it touched an active platform's resource.
    pub(super) async fn change_request(
        &self,
        change: &Change,
    ) -> Result<Option<Request>, FunctionError> {
        if change.by_tenantry || change.candidates.is_empty() {
            return Ok(None);
        }
        let Some((platform, components)) = self.owner(change).await? else {
            return Ok(None);
        };
        // Empty: every component.
        // Debounced per platform and component set: the changes of one window to the same
        // components share one check.
        let mut request_id = debounced_request_id(&platform, change.time);
        for c in &components {
            request_id.push('-');
            request_id.push_str(c.as_str());
        }
        request_id.truncate(80);
        tracing::info!(%platform, %request_id, event = %change.event_name, ?components, "change to a platform's resource: drift check of its components");
        let detail = json!({
            "schemaVersion": SCHEMA_VERSION,
            "requestId": request_id,
            "platformId": platform,
        });
        let mut detail = detail;
        if !components.is_empty() {
            detail["components"] = json!(components);
        }
        Ok(Some(Request {
            kind: RequestKind::DriftCheck,
            request_id,
            platform_id: platform,
            body: Body::Drift {
                remediate: None,
                components: (!components.is_empty()).then_some(components),
            },
            // The same for every change of the window, so that the others are duplicates.
            payload_hash: payload_hash(
                &json!({ "detailType": RequestKind::DriftCheck.detail_type(), "detail": detail }),
            ),
            origin: change.origin.clone(),
        }))
    }

    /// The active platform whose inventory holds a resource the change names, and the
    /// components (phases) that own the resources it names.
    async fn owner(&self, change: &Change) -> Result<Option<(String, Vec<Phase>)>, FunctionError> {
        for id in self.store.active_platforms().await? {
            let inventory = self.store.list_resources(&id).await?;
            let hits: Vec<Option<Phase>> = inventory
                .iter()
                .filter(|r| {
                    change
                        .candidates
                        .iter()
                        .any(|c| names(c, &r.id, r.arn.as_deref()))
                })
                .map(|r| serde_json::from_value(json!(r.phase)).ok())
                .collect();
            if hits.is_empty() {
                continue;
            }
            // A record of a phase this version does not know: check every component.
            let phases: Option<BTreeSet<Phase>> = hits.into_iter().collect();
            return Ok(Some((id, phases.into_iter().flatten().collect())));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn event(session: &str, source: &str) -> EventBridgeEvent<Value> {
        serde_json::from_value(json!({
            "version": "0", "id": "e-1", "detail-type": CLOUDTRAIL_DETAIL_TYPE, "source": source,
            "account": "111122223333", "time": "2026-12-03T10:47:12Z", "region": "eu-west-1",
            "resources": [],
            "detail": {
                "eventName": "AuthorizeSecurityGroupIngress",
                "userIdentity": { "arn": session },
                "requestParameters": { "groupId": "sg-123", "ipPermissions": { "items": [{ "ipProtocol": "tcp" }] } }
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_change_names_its_resources_and_who_made_it() {
        let someone = event(
            "arn:aws:sts::111122223333:assumed-role/ops/alice",
            "aws.ec2",
        );
        let change = parse(&someone).expect("a CloudTrail call");
        assert_eq!(change.candidates, ["sg-123", "tcp"]);
        assert!(!change.by_tenantry);
        let own = event(
            "arn:aws:sts::111122223333:assumed-role/tenantry-NetworkFunctionRole-X/tenantry-network",
            "aws.ec2",
        );
        assert!(
            parse(&own).unwrap().by_tenantry,
            "Tenantry's own repairs start nothing"
        );
        assert_eq!(
            parse(&event("x", "attacker.ec2")),
            None,
            "only AWS sends aws.* sources"
        );
    }

    #[test]
    fn changes_of_one_window_share_a_request_id() {
        let at = |m, s| Utc.with_ymd_and_hms(2026, 12, 3, 10, m, s).unwrap();
        assert_eq!(
            debounced_request_id("payments", at(47, 12)),
            "change-payments-2026120310".to_owned() + "45"
        );
        assert_eq!(
            debounced_request_id("payments", at(45, 0)),
            debounced_request_id("payments", at(49, 59))
        );
        assert_ne!(
            debounced_request_id("payments", at(44, 59)),
            debounced_request_id("payments", at(45, 0))
        );
    }

    #[test]
    fn candidates_match_ids_names_and_arns() {
        assert!(names("sg-1", "sg-1", None));
        assert!(names("arn:aws:kms:eu-west-1:1:key/abc", "abc", None));
        assert!(names(
            "tenantry-payments-node",
            "x",
            Some("arn:aws:iam::1:role/tenantry/tenantry-payments-node")
        ));
        assert!(!names("sg-12", "sg-1", None));
    }
}
