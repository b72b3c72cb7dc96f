//! `answer`: what CloudFormation hears, PUT to the event's pre-signed ResponseURL. SUCCESS with
//! the platform's outputs when the request succeeded; FAILED with the phase and the reason when
//! it failed, was refused, was still running as the deadline neared, or when a step of the
//! catalog workflow itself failed (every step's `Catch` comes here).

use super::event::{url_host, Event, RequestType};
use super::progress::refused_by_intake;
use super::response::{self, Answer};
use super::submit::{unchanged_physical_id, Submitted};
use crate::deps::Deps;
use crate::error::{ErrorType, FunctionError};
use crate::functions::finalize::{caught_error, StatesError};
use crate::store::{RequestInfo, RequestState, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// How long the PUT may take.
const PUT_TIMEOUT: Duration = Duration::from_secs(30);

/// `answer`'s input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnswerInput {
    pub event: Value,
    /// What `submit` decided (`{}` when `submit` itself failed).
    #[serde(default, deserialize_with = "decided")]
    pub submitted: Option<Submitted>,
    /// What intake answered when the request was handed over.
    #[serde(default)]
    pub intake: Value,
    /// The error a `Catch` handed over.
    #[serde(default)]
    pub error: Option<StatesError>,
}

/// `submit`'s decision; `{}` (the execution's placeholder) or null when there is none.
fn decided<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Submitted>, D::Error> {
    let value = Value::deserialize(d)?;
    match value {
        Value::Null => Ok(None),
        Value::Object(ref fields) if fields.is_empty() => Ok(None),
        other => serde_json::from_value(other)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// What was sent (never the URL).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Answered {
    pub status: String,
    pub reason: String,
    pub physical_resource_id: String,
    pub bytes: usize,
}

pub async fn answer(input: AnswerInput, deps: &Deps) -> Result<Answered, FunctionError> {
    let event = Event::parse(input.event.clone())?;
    let answer = decide(&input, &event, deps).await?;
    let body = response::body(&event, &answer);
    put(&event.response_url, &body).await?;
    tracing::info!(
        request_id = %event.request_id,
        status = answer.status(),
        reason = %answer.reason,
        to = url_host(&event.response_url),
        "answered CloudFormation"
    );
    Ok(Answered {
        status: answer.status().to_owned(),
        reason: response::cut(&answer.reason, 500),
        physical_resource_id: answer.physical_resource_id,
        bytes: body.len(),
    })
}

/// The answer: the caught error's, `submit`'s, or the request's.
async fn decide(input: &AnswerInput, event: &Event, deps: &Deps) -> Result<Answer, FunctionError> {
    if let Some(error) = &input.error {
        return Ok(step_failed(event, input.submitted.as_ref(), error));
    }
    let Some(submitted) = &input.submitted else {
        return Ok(Answer::failed(
            &unchanged_physical_id(event),
            "the catalog workflow reached its answer without a decision (no `submitted`)",
        ));
    };
    if let Some(answer) = &submitted.answer {
        return Ok(answer.clone());
    }
    let store = Store::from_deps(deps);
    let request = store.get_request(&submitted.request_id).await?;
    let platform = submitted.platform_id.clone().unwrap_or_default();
    let mut answer = of_request(event, submitted, request.as_ref(), &input.intake);
    if answer.success && event.request_type != RequestType::Delete {
        let status = store.get_status(&platform).await?;
        answer.outputs = status.map(|s| s.value.outputs).unwrap_or_default();
        answer
            .outputs
            .insert("PlatformId".to_owned(), Value::String(platform));
    }
    Ok(answer)
}

/// The answer a request's record gives (outputs are added by the caller).
fn of_request(
    event: &Event,
    submitted: &Submitted,
    request: Option<&RequestInfo>,
    intake: &Value,
) -> Answer {
    let platform = submitted.platform_id.clone().unwrap_or_default();
    let reason = reason(submitted, request, intake);
    if request.map(|r| r.state) == Some(RequestState::Succeeded) {
        let physical = match event.request_type {
            RequestType::Delete => unchanged_physical_id(event),
            _ => platform,
        };
        return Answer::success(&physical, reason);
    }
    let accepted = request.is_some_and(|r| r.state != RequestState::Rejected);
    let physical = match (event.request_type, accepted) {
        // CloudFormation rolls a failed Create back with a Delete of this id: it must find what
        // the request built.
        (RequestType::Create, true) => platform,
        _ => unchanged_physical_id(event),
    };
    Answer::failed(&physical, reason)
}

/// What became of the request, for people: the phase and the reason of a failure.
fn reason(submitted: &Submitted, request: Option<&RequestInfo>, intake: &Value) -> String {
    let platform = submitted.platform_id.as_deref().unwrap_or_default();
    let operation = submitted.operation.as_deref().unwrap_or("request");
    let id = &submitted.request_id;
    let error = request.and_then(|r| r.error.as_ref());
    let (code, message) = error.map_or(("", ""), |e| (e.code.as_str(), e.message.as_str()));
    match request.map(|r| r.state) {
        Some(RequestState::Succeeded) => {
            format!("{operation} of platform {platform} succeeded (request {id})")
        }
        Some(RequestState::Failed) => {
            let phase = error.and_then(|e| e.phase.as_deref()).unwrap_or("unknown");
            format!(
                "{operation} of platform {platform} failed in phase {phase}: {code}: {message} \
                 (tenantry runs {platform} {id})"
            )
        }
        Some(RequestState::Rejected) => {
            format!("Tenantry refused the {operation} of {platform}: {code}: {message}")
        }
        None if refused_by_intake(intake) => {
            let why = intake.get("reason").and_then(Value::as_str);
            let why = why.unwrap_or("no reason given");
            format!("Tenantry refused the {operation} of {platform}: {why}")
        }
        state => format!(
            "the {operation} of platform {platform} was still {} as the custom resource's \
             ServiceTimeout neared; it goes on (tenantry runs {platform} {id})",
            state.map_or("not yet recorded", |s| s.as_str())
        ),
    }
}

/// A step of the catalog workflow failed: FAILED with the step's error. A Create that was handed
/// over may have built something, so its id is the platform's (the rollback's Delete removes it).
fn step_failed(event: &Event, submitted: Option<&Submitted>, error: &StatesError) -> Answer {
    let caught = caught_error(Some(error), None);
    let handed = submitted.filter(|s| s.hand_off);
    let physical = match (
        event.request_type,
        handed.and_then(|s| s.platform_id.clone()),
    ) {
        (RequestType::Create, Some(platform)) => platform,
        _ => unchanged_physical_id(event),
    };
    let phase = caught.phase.as_deref().unwrap_or("catalog");
    let reason = format!(
        "Tenantry's catalog workflow failed in phase {phase}: {}: {}",
        caught.code, caught.message
    );
    Answer::failed(&physical, reason)
}

/// The PUT CloudFormation waits for. A failure is retryable (the workflow retries the step).
pub(super) async fn put(url: &str, body: &str) -> Result<(), FunctionError> {
    let host = url_host(url);
    let failed = |what: String| FunctionError::new(ErrorType::Retryable, what);
    let client = reqwest::Client::builder()
        .timeout(PUT_TIMEOUT)
        .build()
        .map_err(|e| failed(format!("building the HTTP client: {e}")))?;
    let response = client
        .put(url)
        .body(body.to_owned())
        .send()
        .await
        // reqwest's error names the URL; only the host may be shown.
        .map_err(|e| failed(format!("PUT to {host} failed: {}", e.without_url())))?;
    let status = response.status();
    if !status.is_success() {
        return Err(failed(format!("PUT to {host} answered {status}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LastError;
    use serde_json::json;

    fn event(request_type: &str) -> Event {
        Event::parse(json!({
            "RequestType": request_type,
            "ResponseURL": "https://example.com/r?sig=1",
            "StackId": "arn:aws:cloudformation:eu-west-1:1:stack/s/guid",
            "RequestId": "11111111-2222-3333-4444-555555555555",
            "ResourceType": "Custom::TenantryPlatform",
            "LogicalResourceId": "Platform",
            "PhysicalResourceId": "old",
            "ResourceProperties": {},
            "OldResourceProperties": {}
        }))
        .unwrap()
    }

    fn submitted(operation: &str) -> Submitted {
        Submitted {
            hand_off: true,
            request_id: "11111111-2222-3333-4444-555555555555".into(),
            platform_id: Some("shop".into()),
            operation: Some(operation.into()),
            envelope: Some(json!({})),
            answer: None,
        }
    }

    fn record(state: RequestState, error: Option<LastError>) -> RequestInfo {
        let now = chrono::Utc::now();
        RequestInfo {
            request_id: "r".into(),
            platform_id: "shop".into(),
            kind: "provision".into(),
            payload_hash: "h".into(),
            state,
            execution_arn: None,
            error,
            created_at: now,
            updated_at: now,
            expires_at: 0,
            origin: None,
        }
    }

    #[test]
    fn a_failed_request_answers_failed_with_its_phase_and_reason() {
        let error = LastError {
            code: "Tenantry.Terminal".into(),
            message: "identity: IAM role exists".into(),
            phase: Some("identity".into()),
            retryable: false,
        };
        let failed = record(RequestState::Failed, Some(error));
        let a = of_request(
            &event("Create"),
            &submitted("provision"),
            Some(&failed),
            &json!({}),
        );
        assert!(!a.success);
        assert!(a.reason.contains("phase identity"), "{}", a.reason);
        assert!(a.reason.contains("IAM role exists"), "{}", a.reason);
        assert_eq!(
            a.physical_resource_id, "shop",
            "the rollback's Delete finds it"
        );
        let a = of_request(
            &event("Update"),
            &submitted("provision"),
            Some(&failed),
            &json!({}),
        );
        assert_eq!(
            a.physical_resource_id, "old",
            "a failed update keeps the old id"
        );
    }

    #[test]
    fn success_names_the_platform_and_a_refusal_keeps_the_old_id() {
        let done = record(RequestState::Succeeded, None);
        let a = of_request(
            &event("Update"),
            &submitted("provision"),
            Some(&done),
            &json!({}),
        );
        assert!(a.success);
        assert_eq!(
            a.physical_resource_id, "shop",
            "a replacement answers the new id"
        );
        let refused = json!({"disposition": "Rejected", "reason": "lease held"});
        let a = of_request(&event("Create"), &submitted("provision"), None, &refused);
        assert!(
            !a.success && a.reason.contains("lease held"),
            "{}",
            a.reason
        );
        assert!(a
            .physical_resource_id
            .starts_with(super::super::submit::NOT_CREATED_PREFIX));
    }

    #[test]
    fn a_request_still_running_at_the_deadline_answers_failed() {
        let running = record(RequestState::Started, None);
        let a = of_request(
            &event("Create"),
            &submitted("provision"),
            Some(&running),
            &json!({}),
        );
        assert!(!a.success);
        assert!(a.reason.contains("still Started"), "{}", a.reason);
    }

    #[test]
    fn an_empty_decision_reads_as_none() {
        let input: AnswerInput =
            serde_json::from_value(json!({"event": {}, "submitted": {}, "intake": {}})).unwrap();
        assert!(input.submitted.is_none());
        let input: AnswerInput = serde_json::from_value(
            json!({"event": {}, "submitted": serde_json::to_value(submitted("update")).unwrap()}),
        )
        .unwrap();
        assert_eq!(input.submitted, Some(submitted("update")));
    }

    #[test]
    fn a_failed_step_answers_failed_with_its_error() {
        let error = StatesError {
            error: "Tenantry.Terminal".into(),
            cause: Some(
                json!({"errorType": "Tenantry.Terminal", "errorMessage": "boom"}).to_string(),
            ),
        };
        let a = step_failed(&event("Create"), None, &error);
        assert!(!a.success);
        assert!(a.reason.contains("boom"), "{}", a.reason);
        assert!(a
            .physical_resource_id
            .starts_with(super::super::submit::NOT_CREATED_PREFIX));
        let a = step_failed(&event("Create"), Some(&submitted("provision")), &error);
        assert_eq!(a.physical_resource_id, "shop");
    }
}
