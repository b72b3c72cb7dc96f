//! The CloudFormation custom-resource event (`aws_lambda_events::cloudformation`), read into
//! what the catalog needs: which request, where to answer, and the properties.

use crate::error::{ErrorType, FunctionError};
use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Default `ServiceTimeout` of a custom resource (one hour), in seconds.
pub const DEFAULT_SERVICE_TIMEOUT_SECS: i64 = 3600;

/// What CloudFormation asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestType {
    Create,
    Update,
    Delete,
}

/// One custom-resource event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub request_type: RequestType,
    pub request_id: String,
    /// The pre-signed URL to PUT the answer to: a secret, never logged whole ([`url_host`]).
    pub response_url: String,
    pub stack_id: String,
    pub logical_resource_id: String,
    /// Update and Delete: the id Tenantry answered before (the platform id, or a placeholder
    /// for a Create that built nothing).
    pub physical_resource_id: Option<String>,
    pub properties: Map<String, Value>,
    /// Update: the properties before.
    pub old_properties: Map<String, Value>,
}

impl Event {
    /// Reads an event as CloudFormation sends it.
    pub fn parse(raw: Value) -> Result<Event, FunctionError> {
        let request: CloudFormationCustomResourceRequest = serde_path_to_error::deserialize(raw)
            .map_err(|e| {
                FunctionError::new(
                    ErrorType::InvalidRequest,
                    format!(
                        "not a CloudFormation custom-resource event: at {}: {}",
                        e.path(),
                        e.inner()
                    ),
                )
            })?;
        Ok(match request {
            CloudFormationCustomResourceRequest::Create(r) => Event {
                request_type: RequestType::Create,
                request_id: r.request_id,
                response_url: r.response_url,
                stack_id: r.stack_id,
                logical_resource_id: r.logical_resource_id,
                physical_resource_id: None,
                properties: object(r.resource_properties),
                old_properties: Map::new(),
            },
            CloudFormationCustomResourceRequest::Update(r) => Event {
                request_type: RequestType::Update,
                request_id: r.request_id,
                response_url: r.response_url,
                stack_id: r.stack_id,
                logical_resource_id: r.logical_resource_id,
                physical_resource_id: Some(r.physical_resource_id),
                properties: object(r.resource_properties),
                old_properties: object(r.old_resource_properties),
            },
            CloudFormationCustomResourceRequest::Delete(r) => Event {
                request_type: RequestType::Delete,
                request_id: r.request_id,
                response_url: r.response_url,
                stack_id: r.stack_id,
                logical_resource_id: r.logical_resource_id,
                physical_resource_id: Some(r.physical_resource_id),
                properties: object(r.resource_properties),
                old_properties: Map::new(),
            },
            other => {
                return Err(FunctionError::new(
                    ErrorType::InvalidRequest,
                    format!("RequestType of {other:?}: expected Create, Update or Delete"),
                ))
            }
        })
    }

    /// The resource's `ServiceTimeout` in seconds (CloudFormation passes properties as strings);
    /// the default hour when absent or unreadable.
    pub fn service_timeout_secs(&self) -> i64 {
        self.properties
            .get("ServiceTimeout")
            .and_then(|v| match v {
                Value::String(s) => s.trim().parse().ok(),
                other => other.as_i64(),
            })
            .filter(|s| (1..=DEFAULT_SERVICE_TIMEOUT_SECS).contains(s))
            .unwrap_or(DEFAULT_SERVICE_TIMEOUT_SECS)
    }

    /// The Tenantry request id of this event: CloudFormation's RequestId when it is a valid
    /// request id (a UUID is), else a digest of it. It names the catalog execution and the
    /// platform request, so a replayed event finds both.
    pub fn tenantry_request_id(&self) -> String {
        let id = &self.request_id;
        let valid = !id.is_empty()
            && id.len() <= crate::events::MAX_REQUEST_ID_LEN
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        match valid {
            true => id.clone(),
            false => format!("cfn-{:016x}", crate::naming::fnv1a64(id)),
        }
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The host of a URL, for logs: the path and query of a pre-signed URL are its secret.
pub fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?', '#']).next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(request_type: &str) -> Value {
        json!({
            "RequestType": request_type,
            "ServiceToken": "arn:aws:lambda:eu-west-1:111122223333:function:tenantry-catalog",
            "ResponseURL": "https://bucket.s3.amazonaws.com/key?X-Amz-Signature=secret",
            "StackId": "arn:aws:cloudformation:eu-west-1:111122223333:stack/s/guid",
            "RequestId": "5a1c1d62-4f0e-4b7b-9d42-3f9a0d9b9a11",
            "ResourceType": "Custom::TenantryPlatform",
            "LogicalResourceId": "Platform",
            "PhysicalResourceId": "shop",
            "ResourceProperties": {"PlatformId": "shop", "ServiceTimeout": "3000"},
            "OldResourceProperties": {"PlatformId": "old"}
        })
    }

    #[test]
    fn the_three_request_types_are_read_with_their_ids() {
        let create = Event::parse(raw("Create")).unwrap();
        assert_eq!(create.request_type, RequestType::Create);
        assert_eq!(create.physical_resource_id, None);
        assert_eq!(create.service_timeout_secs(), 3000);
        let update = Event::parse(raw("Update")).unwrap();
        assert_eq!(update.physical_resource_id.as_deref(), Some("shop"));
        assert_eq!(update.old_properties["PlatformId"], "old");
        let delete = Event::parse(raw("Delete")).unwrap();
        assert_eq!(delete.request_type, RequestType::Delete);
        assert_eq!(delete.tenantry_request_id(), delete.request_id);
    }

    #[test]
    fn a_malformed_event_is_refused_naming_the_field() {
        let mut event = raw("Create");
        event.as_object_mut().unwrap().remove("ResponseURL");
        let err = Event::parse(event).unwrap_err();
        assert_eq!(err.error_type, ErrorType::InvalidRequest);
        assert!(err.error_message.contains("ResponseURL"), "{err:?}");
        let err = Event::parse(raw("Replace")).unwrap_err();
        assert!(err.error_message.contains("Replace"), "{err:?}");
    }

    #[test]
    fn timeouts_out_of_range_fall_back_and_odd_request_ids_are_digested() {
        let mut event = Event::parse(raw("Create")).unwrap();
        event
            .properties
            .insert("ServiceTimeout".into(), json!("7200"));
        assert_eq!(event.service_timeout_secs(), DEFAULT_SERVICE_TIMEOUT_SECS);
        event.properties.insert("ServiceTimeout".into(), json!(90));
        assert_eq!(event.service_timeout_secs(), 90);
        event.request_id = "a:b/c".into();
        let id = event.tenantry_request_id();
        assert!(id.starts_with("cfn-") && id.len() == 20, "{id}");
        assert_eq!(id, event.tenantry_request_id(), "stable");
    }

    #[test]
    fn only_the_host_of_a_presigned_url_is_shown() {
        let url = "https://bucket.s3.amazonaws.com/key?X-Amz-Signature=secret";
        assert_eq!(url_host(url), "bucket.s3.amazonaws.com");
        assert_eq!(url_host("http://127.0.0.1:9/r?sig=1"), "127.0.0.1:9");
    }
}
