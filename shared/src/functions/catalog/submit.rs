//! `submit`: what a custom-resource event asks of Tenantry. Create provisions, Update updates
//! (or, when the platform id changes, provisions the replacement), Delete decommissions. A bad
//! property, a platform id another stack already uses, or a Delete of something Tenantry does not
//! manage is answered at once and hands nothing over; otherwise the answer is an envelope the
//! workflow hands to intake, as the event bus would.

use super::event::{Event, RequestType};
use super::properties;
use super::response::Answer;
use crate::deps::Deps;
use crate::error::FunctionError;
use crate::events::{PlatformRequest, RequestKind, SCHEMA_VERSION};
use crate::store::{LifecycleState, Store};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// `source` of the requests the catalog hands to intake.
pub const CATALOG_SOURCE: &str = "tenantry.service-catalog";
/// The PhysicalResourceId of a Create that built nothing: never a platform id (those are at
/// most 20 characters), so the Delete CloudFormation sends when it rolls back finds nothing.
pub const NOT_CREATED_PREFIX: &str = "tenantry-not-created-";

/// `submit`'s input: the event as the catalog execution got it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitInput {
    pub event: Value,
}

/// What `submit` decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Submitted {
    /// True: the workflow hands `envelope` to intake and awaits request `request_id`.
    pub hand_off: bool,
    pub request_id: String,
    /// The platform the request is about (None when the properties name none).
    pub platform_id: Option<String>,
    /// `provision`, `update` or `decommission`.
    pub operation: Option<String>,
    /// The EventBridge envelope intake reads (hand-off only).
    pub envelope: Option<Value>,
    /// The answer, when it is decided without a request.
    pub answer: Option<Answer>,
}

/// What the event asks of which platform.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    kind: RequestKind,
    platform_id: String,
    spec: Option<crate::spec::PlatformSpec>,
}

pub async fn submit(input: SubmitInput, deps: &Deps) -> Result<Submitted, FunctionError> {
    let event = Event::parse(input.event)?;
    let request_id = event.tenantry_request_id();
    let store = Store::from_deps(deps);
    let target = match target(&event, &region(deps)) {
        Ok(target) => target,
        Err(answer) => return Ok(answered(&request_id, None, answer)),
    };
    let platform = target.platform_id.clone();
    // A retried step finds its own request: the checks below were passed before it.
    let handed = store.get_request(&request_id).await?.is_some();
    if !handed {
        if let Some(answer) = refusal(&store, &event, &target).await? {
            return Ok(answered(&request_id, Some(platform), answer));
        }
    }
    let envelope = envelope(&event, &request_id, &target, deps).await?;
    tracing::info!(request_id, platform, kind = ?target.kind, "handing the request to intake");
    Ok(Submitted {
        hand_off: true,
        request_id,
        platform_id: Some(platform),
        operation: Some(target.kind.operation().to_owned()),
        envelope: Some(envelope),
        answer: None,
    })
}

fn answered(request_id: &str, platform_id: Option<String>, answer: Answer) -> Submitted {
    tracing::info!(request_id, status = answer.status(), reason = %answer.reason, "answered at once");
    Submitted {
        hand_off: false,
        request_id: request_id.to_owned(),
        platform_id,
        operation: None,
        envelope: None,
        answer: Some(answer),
    }
}

/// The PhysicalResourceId to answer when nothing was handed over: the one CloudFormation
/// knows (Update, Delete), or a placeholder that names no platform (Create).
pub fn unchanged_physical_id(event: &Event) -> String {
    event
        .physical_resource_id
        .clone()
        .unwrap_or_else(|| format!("{NOT_CREATED_PREFIX}{}", event.tenantry_request_id()))
}

/// What the event asks for; a bad property is the answer instead.
fn target(event: &Event, region: &str) -> Result<Target, Answer> {
    if event.request_type == RequestType::Delete {
        let platform_id = event.physical_resource_id.clone().unwrap_or_default();
        return Ok(Target {
            kind: RequestKind::PlatformDecommission,
            platform_id,
            spec: None,
        });
    }
    let spec = properties::spec(&event.properties, region).map_err(|issues| {
        Answer::failed(&unchanged_physical_id(event), properties::reason(&issues))
    })?;
    let same = event.physical_resource_id.as_deref() == Some(spec.id.as_str());
    let kind = match (event.request_type, same) {
        (RequestType::Update, true) => RequestKind::PlatformUpdate,
        // Create, or an Update that replaces the platform with another id.
        _ => RequestKind::PlatformProvision,
    };
    Ok(Target {
        kind,
        platform_id: spec.id.clone(),
        spec: Some(spec),
    })
}

/// Why the request must not be handed over, as the answer: a Delete of a platform Tenantry does
/// not manage succeeds at once; a provision of a platform id in use fails.
async fn refusal(
    store: &Store,
    event: &Event,
    target: &Target,
) -> Result<Option<Answer>, FunctionError> {
    let known = is_known(store, &target.platform_id).await?;
    let physical = unchanged_physical_id(event);
    Ok(match target.kind {
        RequestKind::PlatformDecommission if !known => Some(Answer::success(
            &physical,
            format!(
                "nothing to delete: {physical:?} is not a platform Tenantry manages (its Create \
                 built nothing, or it is already decommissioned)"
            ),
        )),
        RequestKind::PlatformProvision if known => Some(Answer::failed(
            &physical,
            format!(
                "property PlatformId: platform {:?} already exists (another stack or request \
                 manages it); choose another PlatformId [platform-exists]",
                target.platform_id
            ),
        )),
        _ => None,
    })
}

/// Whether `platform_id` is a platform Tenantry manages: it has a spec and is not decommissioned.
async fn is_known(store: &Store, platform_id: &str) -> Result<bool, FunctionError> {
    if !is_platform_id(platform_id) || store.get_spec(platform_id).await?.is_none() {
        return Ok(false);
    }
    let state = store.get_status(platform_id).await?.map(|s| s.value.state);
    Ok(state != Some(LifecycleState::Decommissioned))
}

/// A platform id's syntax (a DNS-1123 label of at most 20 characters, starting with a letter).
pub fn is_platform_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    (1..=20).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes[bytes.len() - 1] != b'-'
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// The request as the event bus would deliver it to intake.
async fn envelope(
    event: &Event,
    request_id: &str,
    target: &Target,
    deps: &Deps,
) -> Result<Value, FunctionError> {
    let spec = match &target.spec {
        Some(spec) => Some(serde_json::to_value(spec).map_err(|e| {
            FunctionError::new(crate::error::ErrorType::Terminal, format!("spec: {e}"))
        })?),
        None => None,
    };
    let detail = PlatformRequest {
        schema_version: SCHEMA_VERSION.to_owned(),
        request_id: request_id.to_owned(),
        platform_id: target.platform_id.clone(),
        spec,
        remediate: None,
        components: None,
    };
    Ok(json!({
        "version": "0",
        "id": format!("cfn-{request_id}"),
        "detail-type": target.kind.detail_type(),
        "source": CATALOG_SOURCE,
        "account": deps.account_id().await?,
        "region": region(deps),
        "resources": [event.stack_id],
        "detail": detail,
    }))
}

fn region(deps: &Deps) -> String {
    deps.aws
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| crate::aws::DEFAULT_REGION.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(request_type: &str, physical: Option<&str>, platform: &str) -> Event {
        let mut raw = json!({
            "RequestType": request_type,
            "ResponseURL": "https://example.com/r?sig=1",
            "StackId": "arn:aws:cloudformation:eu-west-1:1:stack/s/guid",
            "RequestId": "11111111-2222-3333-4444-555555555555",
            "ResourceType": "Custom::TenantryPlatform",
            "LogicalResourceId": "Platform",
            "ResourceProperties": {"PlatformId": platform, "Environment": "dev"},
            "OldResourceProperties": {"PlatformId": physical.unwrap_or_default(), "Environment": "dev"}
        });
        if let Some(p) = physical {
            raw["PhysicalResourceId"] = json!(p);
        }
        Event::parse(raw).unwrap()
    }

    #[test]
    fn each_request_type_becomes_its_request() {
        let create = target(&event("Create", None, "shop"), "eu-west-1").unwrap();
        assert_eq!(
            (create.kind, create.platform_id.as_str()),
            (RequestKind::PlatformProvision, "shop")
        );
        let update = target(&event("Update", Some("shop"), "shop"), "eu-west-1").unwrap();
        assert_eq!(update.kind, RequestKind::PlatformUpdate);
        let replace = target(&event("Update", Some("shop"), "shop2"), "eu-west-1").unwrap();
        assert_eq!(
            (replace.kind, replace.platform_id.as_str()),
            (RequestKind::PlatformProvision, "shop2")
        );
        let delete = target(&event("Delete", Some("shop"), "ignored!"), "eu-west-1").unwrap();
        assert_eq!(
            (delete.kind, delete.spec),
            (RequestKind::PlatformDecommission, None)
        );
    }

    #[test]
    fn a_bad_property_answers_failed_keeping_the_physical_id_cloudformation_knows() {
        let answer = target(&event("Create", None, "Shop!"), "eu-west-1").unwrap_err();
        assert!(!answer.success);
        assert!(
            answer.reason.contains("property PlatformId"),
            "{}",
            answer.reason
        );
        assert!(answer.physical_resource_id.starts_with(NOT_CREATED_PREFIX));
        assert!(!is_platform_id(&answer.physical_resource_id));
        let answer = target(&event("Update", Some("shop"), "Shop!"), "eu-west-1").unwrap_err();
        assert_eq!(answer.physical_resource_id, "shop");
    }

    #[test]
    fn platform_ids_are_told_from_placeholders() {
        assert!(is_platform_id("shop-2"));
        for bad in [
            "",
            "2shop",
            "shop-",
            "Shop",
            "a".repeat(21).as_str(),
            "tenantry-not-created-1",
        ] {
            assert!(!is_platform_id(bad), "{bad}");
        }
    }
}
