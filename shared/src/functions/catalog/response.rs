//! The body CloudFormation reads from the ResponseURL: at most [`MAX_BODY_BYTES`], with the
//! fields its custom-resource protocol names (Status, Reason, PhysicalResourceId, StackId,
//! RequestId, LogicalResourceId, Data). Data values are strings; what does not fit is left out
//! and named under [`OMITTED_KEY`], and a Reason too long is cut.

use super::event::Event;
use aws_lambda_events::event::cloudformation::{
    CloudFormationCustomResourceResponse, CloudFormationCustomResourceResponseStatus,
};
use serde_json::Value;
use std::collections::BTreeMap;

/// The largest body CloudFormation accepts.
pub const MAX_BODY_BYTES: usize = 4096;
/// The largest PhysicalResourceId CloudFormation accepts.
pub const MAX_PHYSICAL_ID_BYTES: usize = 1024;
/// The Data key listing the outputs left out to fit the body.
pub const OMITTED_KEY: &str = "OmittedOutputs";
/// Room kept for [`OMITTED_KEY`] while Data is filled.
const OMITTED_ROOM: usize = 300;
/// Outputs placed first, so that they always fit (the product template's `!GetAtt`s read
/// them); the others follow in key order while they fit.
pub const FIRST_OUTPUTS: &[&str] = &[
    "PlatformId",
    "clusterName",
    "clusterArn",
    "clusterEndpoint",
    "clusterVersion",
    "clusterSecurityGroupId",
    "oidcIssuer",
    "oidcProviderArn",
    "vpcId",
    "privateSubnetIds",
    "secretsKeyArn",
    "alarmTopicArn",
];

/// What Tenantry answers, before it is fitted into a body.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    pub success: bool,
    pub reason: String,
    pub physical_resource_id: String,
    /// The platform's outputs (any JSON; made strings here).
    #[serde(default)]
    pub outputs: BTreeMap<String, Value>,
}

impl Answer {
    pub fn success(physical_resource_id: &str, reason: impl Into<String>) -> Answer {
        Answer {
            success: true,
            reason: reason.into(),
            physical_resource_id: physical_resource_id.to_owned(),
            outputs: BTreeMap::new(),
        }
    }

    pub fn failed(physical_resource_id: &str, reason: impl Into<String>) -> Answer {
        Answer {
            success: false,
            ..Answer::success(physical_resource_id, reason)
        }
    }

    pub fn status(&self) -> &'static str {
        if self.success {
            "SUCCESS"
        } else {
            "FAILED"
        }
    }
}

/// An output as a Data value: strings as they are, anything else as compact JSON.
pub fn data_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The response body of `answer` to `event`, at most [`MAX_BODY_BYTES`].
pub fn body(event: &Event, answer: &Answer) -> String {
    let mut response = CloudFormationCustomResourceResponse::default();
    response.status = match answer.success {
        true => CloudFormationCustomResourceResponseStatus::Success,
        false => CloudFormationCustomResourceResponseStatus::Failed,
    };
    response.physical_resource_id = cut(&answer.physical_resource_id, MAX_PHYSICAL_ID_BYTES);
    response.stack_id = event.stack_id.clone();
    response.request_id = event.request_id.clone();
    response.logical_resource_id = event.logical_resource_id.clone();
    response.reason = Some(String::new());
    let bare = serialise(&response).len();
    let reason_room = MAX_BODY_BYTES.saturating_sub(bare + OMITTED_ROOM + 64) / 2;
    response.reason = Some(cut(&answer.reason, reason_room.max(64)));
    let used = serialise(&response).len();
    let (data, omitted) = fit_data(&answer.outputs, MAX_BODY_BYTES.saturating_sub(used));
    response.data = data.into_iter().collect();
    if !omitted.is_empty() {
        let list = cut(&omitted.join(","), OMITTED_ROOM - 40);
        response.data.insert(OMITTED_KEY.to_owned(), list);
    }
    let text = serialise(&response);
    debug_assert!(text.len() <= MAX_BODY_BYTES, "{} bytes", text.len());
    text
}

/// Data entries, [`FIRST_OUTPUTS`] then the others in key order, while they fit in `room` bytes
/// (keeping [`OMITTED_ROOM`] for the list of those left out); returns the entries kept and the
/// keys left out.
fn fit_data(
    outputs: &BTreeMap<String, Value>,
    room: usize,
) -> (Vec<(String, String)>, Vec<String>) {
    let budget = room.saturating_sub(OMITTED_ROOM);
    let (mut kept, mut omitted, mut used) = (Vec::new(), Vec::new(), 0);
    let first = FIRST_OUTPUTS
        .iter()
        .filter_map(|k| outputs.get_key_value(*k));
    let rest = outputs
        .iter()
        .filter(|(k, _)| !FIRST_OUTPUTS.contains(&k.as_str()));
    for (key, value) in first.chain(rest) {
        let value = data_value(value);
        // "key":"value", with JSON escapes counted.
        let size = Value::from(key.as_str()).to_string().len()
            + Value::from(value.as_str()).to_string().len()
            + 2;
        if used + size <= budget {
            used += size;
            kept.push((key.clone(), value));
        } else {
            omitted.push(key.clone());
        }
    }
    (kept, omitted)
}

fn serialise(response: &CloudFormationCustomResourceResponse) -> String {
    serde_json::to_string(response).unwrap_or_default()
}

/// `text` cut to at most `max` bytes (on a character boundary, marked with `…` when cut).
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Event {
        Event::parse(json!({
            "RequestType": "Create",
            "ServiceToken": "arn:aws:lambda:eu-west-1:111122223333:function:tenantry-catalog",
            "ResponseURL": "https://cloudformation-custom-resource-response-euwest1.s3.amazonaws.com/x?X-Amz-Signature=secret",
            "StackId": "arn:aws:cloudformation:eu-west-1:111122223333:stack/sc-1/guid",
            "RequestId": "5a1c1d62-4f0e-4b7b-9d42-3f9a0d9b9a11",
            "ResourceType": "Custom::TenantryPlatform",
            "LogicalResourceId": "Platform",
            "ResourceProperties": {"PlatformId": "shop"}
        }))
        .unwrap()
    }

    #[test]
    fn every_field_cloudformation_reads_is_there_and_data_are_strings() {
        let mut answer = Answer::success("shop", "provisioned");
        answer
            .outputs
            .insert("clusterName".into(), json!("shop-dev"));
        answer.outputs.insert("azCount".into(), json!(3));
        answer.outputs.insert("roles".into(), json!({"a": "arn:1"}));
        let body: Value = serde_json::from_str(&body(&event(), &answer)).unwrap();
        assert_eq!(body["Status"], "SUCCESS");
        assert_eq!(body["Reason"], "provisioned");
        assert_eq!(body["PhysicalResourceId"], "shop");
        assert_eq!(body["StackId"], event().stack_id.as_str());
        assert_eq!(body["RequestId"], "5a1c1d62-4f0e-4b7b-9d42-3f9a0d9b9a11");
        assert_eq!(body["LogicalResourceId"], "Platform");
        assert_eq!(body["Data"]["clusterName"], "shop-dev");
        assert_eq!(body["Data"]["azCount"], "3");
        assert_eq!(body["Data"]["roles"], r#"{"a":"arn:1"}"#);
        assert!(body["Data"].get(OMITTED_KEY).is_none());
    }

    #[test]
    fn a_large_answer_is_trimmed_to_4096_bytes_naming_what_was_left_out() {
        let mut answer = Answer::failed("shop", "x".repeat(10_000));
        for i in 0..20 {
            answer
                .outputs
                .insert(format!("output{i:02}"), json!("é".repeat(150)));
        }
        let text = body(&event(), &answer);
        assert!(text.len() <= MAX_BODY_BYTES, "{} bytes", text.len());
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["Status"], "FAILED");
        assert!(body["Reason"].as_str().unwrap().ends_with('…'));
        let data = body["Data"].as_object().unwrap();
        assert!(data.contains_key("output00"), "the first outputs stay");
        let omitted = data[OMITTED_KEY].as_str().unwrap();
        assert!(omitted.ends_with("output19"), "{omitted}");
        assert!(!omitted.contains("output00"), "{omitted}");
    }

    #[test]
    fn the_outputs_templates_read_come_first_whatever_else_is_large() {
        let mut answer = Answer::success("shop", "ok");
        answer
            .outputs
            .insert("certificateAuthority".into(), json!("c".repeat(3520)));
        answer
            .outputs
            .insert("clusterName".into(), json!("shop-dev"));
        answer.outputs.insert("vpcId".into(), json!("vpc-1"));
        let body: Value = serde_json::from_str(&body(&event(), &answer)).unwrap();
        assert_eq!(body["Data"]["clusterName"], "shop-dev");
        assert_eq!(body["Data"]["vpcId"], "vpc-1");
        assert_eq!(body["Data"][OMITTED_KEY], "certificateAuthority");
        // Alone, it would have fitted: the order decided.
        answer.outputs.retain(|k, _| k == "certificateAuthority");
        let alone: Value = serde_json::from_str(&super::body(&event(), &answer)).unwrap();
        assert!(alone["Data"].get(OMITTED_KEY).is_none(), "{alone}");
    }

    #[test]
    fn a_physical_id_is_cut_to_1_kb_and_text_on_a_character_boundary() {
        let answer = Answer::failed(&"p".repeat(2000), "no");
        let body: Value = serde_json::from_str(&body(&event(), &answer)).unwrap();
        let id = body["PhysicalResourceId"].as_str().unwrap();
        assert!(id.len() <= MAX_PHYSICAL_ID_BYTES, "{}", id.len());
        assert_eq!(cut("ééé", 4), "…");
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("abcdef", 5), "ab…");
    }
}
