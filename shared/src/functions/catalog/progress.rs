//! `await`: where the platform request is. Done once intake refused it or its execution ended,
//! or when another poll would come too close to the custom resource's deadline (`answerBy`,
//! set when the catalog execution started): CloudFormation must hear before its
//! `ServiceTimeout` runs out.

use crate::deps::Deps;
use crate::error::FunctionError;
use crate::store::{RequestState, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `await`'s input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwaitInput {
    pub request_id: String,
    /// Epoch seconds by which the answer must be sent.
    pub answer_by: i64,
    pub poll_seconds: i64,
    /// What intake answered when the request was handed over.
    #[serde(default)]
    pub intake: Value,
}

/// Where the request is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub done: bool,
    /// The request's state (`Requested` before intake recorded it), or `TimedOut`.
    pub state: String,
}

/// The state of a request still running when the deadline came.
pub const TIMED_OUT: &str = "TimedOut";

pub async fn await_request(input: AwaitInput, deps: &Deps) -> Result<Progress, FunctionError> {
    let store = Store::from_deps(deps);
    let state = store.get_request(&input.request_id).await?.map(|r| r.state);
    let now = store.now().timestamp();
    Ok(progress(state, &input, now))
}

/// The decision, from the request's state, intake's answer and the time.
fn progress(state: Option<RequestState>, input: &AwaitInput, now: i64) -> Progress {
    let finished = matches!(
        state,
        Some(RequestState::Succeeded | RequestState::Failed | RequestState::Rejected)
    );
    // Intake answers without a record only when it could not read the request at all.
    let unrecorded = state.is_none() && refused_by_intake(&input.intake);
    let state_name = state.map_or("Requested", |s| s.as_str()).to_owned();
    if finished || unrecorded {
        return Progress {
            done: true,
            state: state_name,
        };
    }
    let late = now + input.poll_seconds.max(1) >= input.answer_by;
    Progress {
        done: late,
        state: if late {
            TIMED_OUT.to_owned()
        } else {
            state_name
        },
    }
}

/// Whether intake's answer says it did not take the request.
pub fn refused_by_intake(intake: &Value) -> bool {
    matches!(
        intake.get("disposition").and_then(Value::as_str),
        Some("Rejected" | "Failed" | "Ignored")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(answer_by: i64) -> AwaitInput {
        AwaitInput {
            request_id: "r".into(),
            answer_by,
            poll_seconds: 30,
            intake: json!({"disposition": "Accepted"}),
        }
    }

    #[test]
    fn a_running_request_is_awaited_until_the_next_poll_would_be_late() {
        let running = Some(RequestState::Started);
        assert!(!progress(running, &input(1000), 900).done);
        let late = progress(running, &input(1000), 970);
        assert_eq!((late.done, late.state.as_str()), (true, TIMED_OUT));
        let ended = progress(Some(RequestState::Failed), &input(1000), 0);
        assert_eq!((ended.done, ended.state.as_str()), (true, "Failed"));
    }

    #[test]
    fn a_request_intake_did_not_record_is_done_only_when_intake_refused_it() {
        assert!(!progress(None, &input(1000), 0).done, "not recorded yet");
        let mut refused = input(1000);
        refused.intake = json!({"disposition": "Rejected", "reason": "bad"});
        let p = progress(None, &refused, 0);
        assert_eq!((p.done, p.state.as_str()), (true, "Requested"));
    }
}
