//! Envelope parsing: what `intake` is invoked with, and one EventBridge envelope turned into a
//! [`Request`], a [`Rejection`] or one of Tenantry's own events to ignore. Never touches AWS.

use super::detail;
use crate::error::ErrorType;
use crate::events::{self, EventError, RequestKind, ResultEvent, ResultStatus, TenantRequest};
use crate::spec::PlatformSpec;
use crate::store::RequestOrigin;
use crate::validate::Issue;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// What `intake` is invoked with.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum IntakeInput {
    /// From an SQS event source mapping: each body is an EventBridge envelope.
    Sqs(SqsEvent),
    /// A bare EventBridge envelope (parsed by the handler, so a malformed one is answered).
    Event(Value),
}

impl<'de> Deserialize<'de> for IntakeInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        if value.get("Records").is_some() {
            serde_json::from_value(value)
                .map(IntakeInput::Sqs)
                .map_err(serde::de::Error::custom)
        } else {
            Ok(IntakeInput::Event(value))
        }
    }
}

/// A request that parsed and validated.
#[derive(Debug, Clone)]
pub(super) struct Request {
    pub kind: RequestKind,
    pub request_id: String,
    pub platform_id: String,
    pub body: Body,
    pub payload_hash: String,
    /// Who sent it, as far as the envelope says.
    pub origin: RequestOrigin,
}

/// What a request carries besides its ids.
#[derive(Debug, Clone)]
pub(super) enum Body {
    /// Provision, update (with the validated spec), decommission.
    Platform { spec: Option<Box<PlatformSpec>> },
    /// Tenant onboarding (with the validated tenant) or offboarding.
    Tenant(Box<TenantRequest>),
    /// A drift check, with the modes it asks for.
    Drift {
        remediate: Option<crate::drift::RemediateRequest>,
        /// The components to check; all when `None`.
        components: Option<Vec<crate::plan::Phase>>,
    },
    /// A compliance sweep: the platform is all it names. Read-only, it takes no lease.
    Compliance,
    /// A drift check or compliance sweep of every active platform (`platformId` "*"): intake
    /// starts the fleet sweep, which sends one request per platform (each taking its own lease
    /// and admission). It takes no lease itself.
    Fleet {
        kind: crate::functions::sweep::SweepKind,
        remediate: Option<crate::drift::RemediateRequest>,
    },
}

impl Request {
    pub fn operation(&self) -> &'static str {
        self.kind.operation()
    }

    pub fn spec(&self) -> Option<&PlatformSpec> {
        match &self.body {
            Body::Platform { spec } => spec.as_deref(),
            Body::Tenant(_) | Body::Drift { .. } | Body::Compliance | Body::Fleet { .. } => None,
        }
    }

    pub fn tenant_name(&self) -> Option<&str> {
        match &self.body {
            Body::Tenant(detail) => detail.name(),
            Body::Platform { .. } | Body::Drift { .. } | Body::Compliance | Body::Fleet { .. } => {
                None
            }
        }
    }

    /// The result event of this request, with `status`.
    pub fn result(&self, status: ResultStatus) -> ResultEvent {
        let mut result =
            ResultEvent::new(&self.request_id, &self.platform_id, Some(self.kind), status);
        result.tenant = self.tenant_name().map(str::to_owned);
        result
    }
}

/// A request refused before anything was recorded.
#[derive(Debug, Clone)]
pub(super) struct Rejection {
    pub kind: Option<RequestKind>,
    pub request_id: String,
    pub platform_id: String,
    /// The tenant a tenant request names (`tenantName`, or the name of `tenant`).
    pub tenant: Option<String>,
    pub error: EventError,
    pub issues: Vec<Issue>,
}

impl Rejection {
    /// A rejection with `message`, naming the ids (and tenant) the raw detail carries, if any.
    pub fn new(
        raw_detail: Option<&Value>,
        kind: Option<RequestKind>,
        message: String,
    ) -> Box<Self> {
        let field = |name: &str| {
            raw_detail
                .and_then(|d| d.get(name))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let tenant = raw_detail
            .and_then(|d| d.get("tenantName").or_else(|| d.get("tenant")?.get("name")))
            .and_then(Value::as_str)
            .filter(|_| kind.is_some_and(RequestKind::is_tenant))
            .map(str::to_owned);
        Box::new(Rejection {
            kind,
            request_id: field("requestId"),
            platform_id: field("platformId"),
            tenant,
            error: EventError::new(ErrorType::InvalidRequest, message),
            issues: Vec::new(),
        })
    }
}

/// What parsing an envelope gave.
pub(super) enum Parsed {
    Request(Box<Request>),
    Rejected(Box<Rejection>),
    /// One of Tenantry's own events.
    Ignored {
        detail_type: String,
    },
    /// A call CloudTrail recorded: a drift check if it touched a platform's resource.
    Change(super::change::Change),
}

/// Parses and validates one envelope.
pub(super) fn parse(envelope: Value) -> Parsed {
    let event: EventBridgeEvent<Value> = match serde_json::from_value(envelope.clone()) {
        Ok(e) => e,
        Err(e) => {
            let detail = envelope.get("detail");
            let message = format!("not an EventBridge event: {e}");
            return Parsed::Rejected(Rejection::new(detail, None, message));
        }
    };
    if events::is_own_event(&event.source, &event.detail_type) {
        return Parsed::Ignored {
            detail_type: event.detail_type,
        };
    }
    if let Some(change) = super::change::parse(&event) {
        return Parsed::Change(change);
    }
    let Some(kind) = RequestKind::from_detail_type(&event.detail_type) else {
        let known: Vec<String> = RequestKind::ALL.iter().map(|k| k.detail_type()).collect();
        let message = format!(
            "unknown detail-type {:?}; Tenantry takes {}",
            event.detail_type,
            known.join(", ")
        );
        return Parsed::Rejected(Rejection::new(Some(&event.detail), None, message));
    };
    match detail::parse_detail(kind, &event.detail_type, &event.detail) {
        Ok(mut request) => {
            request.origin = origin(&event);
            Parsed::Request(Box::new(request))
        }
        Err(rejection) => Parsed::Rejected(rejection),
    }
}

/// Who sent the request, as far as the envelope says.
fn origin(event: &EventBridgeEvent<Value>) -> RequestOrigin {
    RequestOrigin {
        channel: "eventbridge".to_owned(),
        event_id: event.id.clone(),
        account: event.account.clone(),
        source: event.source.clone(),
        region: event.region.clone(),
        time: event.time.map(|t| t.to_rfc3339()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Phase;
    use crate::validate::rules;
    use serde_json::json;

    fn envelope(detail_type: &str, detail: Value) -> Value {
        json!({
            "version": "0", "id": "e-1", "detail-type": detail_type, "source": "acme.platforms",
            "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
            "resources": [], "detail": detail
        })
    }

    fn example_spec() -> Value {
        let text = include_str!("../../../../examples/platform.json");
        serde_json::from_str(text).unwrap()
    }

    fn rejected(p: Parsed) -> Rejection {
        match p {
            Parsed::Rejected(r) => *r,
            Parsed::Request(r) => panic!("accepted: {r:?}"),
            Parsed::Ignored { detail_type } => panic!("ignored {detail_type}"),
            Parsed::Change(c) => panic!("a change: {c:?}"),
        }
    }

    #[test]
    fn a_valid_provision_parses() {
        let spec = example_spec();
        let id = spec["id"].as_str().unwrap().to_owned();
        let p = parse(envelope(
            "PlatformProvisionRequested",
            json!({"schemaVersion": "1", "requestId": "req-1", "platformId": id, "spec": spec}),
        ));
        let Parsed::Request(r) = p else {
            panic!("not parsed")
        };
        assert_eq!(r.kind, RequestKind::PlatformProvision);
        assert!(r.spec().is_some());
        assert!(r.payload_hash.starts_with("fnv1a64:"));
    }

    #[test]
    fn every_detail_problem_is_reported() {
        let mut spec = example_spec();
        spec["network"]["azCount"] = json!(7);
        let r = rejected(parse(envelope(
            "PlatformProvisionRequested",
            json!({"schemaVersion": "2", "requestId": "bad id!", "platformId": "Acme", "spec": spec}),
        )));
        let paths: Vec<&str> = r.issues.iter().map(|i| i.path.as_str()).collect();
        assert!(paths.contains(&"detail.schemaVersion"), "{paths:?}");
        assert!(paths.contains(&"detail.requestId"), "{paths:?}");
        assert!(paths.contains(&"detail.platformId"), "{paths:?}");
        assert!(
            paths.iter().any(|p| p.starts_with("$.network")),
            "{paths:?}"
        );
        assert_eq!(r.error.code, "Tenantry.InvalidRequest");
        assert_eq!(r.request_id, "bad id!");
    }

    #[test]
    fn unknown_fields_and_kinds_are_rejected() {
        let r = rejected(parse(envelope(
            "PlatformDecommissionRequested",
            json!({"schemaVersion": "1", "requestId": "r", "platformId": "acme", "force": true}),
        )));
        assert_eq!(r.issues[0].rule, rules::UNKNOWN_FIELD);
        let r = rejected(parse(envelope("Nonsense", json!({"requestId": "r"}))));
        assert_eq!(r.kind, None);
        assert_eq!(r.request_id, "r");
        let r = rejected(parse(json!({"detail": {"requestId": "x"}})));
        assert!(r.error.message.contains("not an EventBridge event"));
    }

    #[test]
    fn spec_id_must_match_and_decommission_takes_no_spec() {
        let spec = example_spec();
        let r = rejected(parse(envelope(
            "PlatformUpdateRequested",
            json!({"schemaVersion": "1", "requestId": "r", "platformId": "other", "spec": spec}),
        )));
        assert!(r.issues.iter().any(|i| i.path == "$.id"), "{:?}", r.issues);
        let r = rejected(parse(envelope(
            "PlatformDecommissionRequested",
            json!({"schemaVersion": "1", "requestId": "r", "platformId": "acme", "spec": {}}),
        )));
        assert_eq!(r.issues[0].path, "detail.spec");
    }

    #[test]
    fn drift_checks_take_remediate_and_no_spec() {
        let p = parse(envelope(
            "DriftCheckRequested",
            json!({"schemaVersion": "1", "requestId": "d", "platformId": "acme",
                   "remediate": {"network": "auto"}}),
        ));
        assert!(matches!(p, Parsed::Request(_)));
        let r = rejected(parse(envelope(
            "DriftCheckRequested",
            json!({"schemaVersion": "1", "requestId": "d", "platformId": "acme",
                   "remediate": "sometimes"}),
        )));
        assert_eq!(r.issues[0].path, "detail.remediate", "{:?}", r.issues);
        let r = rejected(parse(envelope(
            "DriftCheckRequested",
            json!({"schemaVersion": "1", "requestId": "d", "platformId": "acme", "spec": {}}),
        )));
        assert_eq!(r.issues[0].path, "detail.spec");
        let r = rejected(parse(envelope(
            "PlatformDecommissionRequested",
            json!({"schemaVersion": "1", "requestId": "d", "platformId": "acme",
                   "remediate": "auto"}),
        )));
        assert_eq!(r.issues[0].path, "detail.remediate");
    }

    #[test]
    fn drift_checks_may_name_the_components_to_check() {
        let detail = |components: Value| {
            json!({"schemaVersion": "1", "requestId": "d", "platformId": "acme",
                   "components": components})
        };
        match parse(envelope(
            "DriftCheckRequested",
            detail(json!(["network", "tenants"])),
        )) {
            Parsed::Request(r) => assert!(matches!(
                r.body,
                Body::Drift { components: Some(ref c), .. }
                    if c == &[Phase::Network, Phase::Tenants]
            )),
            _ => panic!("a check of two components is a request"),
        }
        for bad in [json!([]), json!(["netwerk"]), json!("network")] {
            let r = rejected(parse(envelope("DriftCheckRequested", detail(bad.clone()))));
            let path = &r.issues[0].path;
            assert!(
                path.starts_with("detail.components"),
                "{bad}: {:?}",
                r.issues
            );
        }
        let r = rejected(parse(envelope(
            "PlatformDecommissionRequested",
            detail(json!(["network"])),
        )));
        assert_eq!(r.issues[0].path, "detail.components");
    }

    #[test]
    fn compliance_sweeps_name_only_the_platform() {
        let p = parse(envelope(
            "ComplianceSweepRequested",
            json!({"schemaVersion": "1", "requestId": "c-1", "platformId": "acme"}),
        ));
        let Parsed::Request(r) = p else {
            panic!("a compliance sweep is a request")
        };
        assert_eq!(r.kind, RequestKind::ComplianceSweep);
        assert_eq!(r.operation(), "compliance");
        assert!(matches!(r.body, Body::Compliance));
        assert!(r.spec().is_none() && r.tenant_name().is_none());
        // What other kinds take is refused, naming the field.
        for (field, value) in [
            ("spec", example_spec()),
            ("remediate", json!("auto")),
            ("components", json!(["network"])),
        ] {
            let mut detail =
                json!({"schemaVersion": "1", "requestId": "c-1", "platformId": "acme"});
            detail[field] = value;
            let r = rejected(parse(envelope("ComplianceSweepRequested", detail)));
            assert_eq!(r.kind, Some(RequestKind::ComplianceSweep));
            assert_eq!(r.issues.len(), 1, "{field}: {:?}", r.issues);
            let issue = &r.issues[0];
            assert_eq!(issue.path, format!("detail.{field}"));
            assert_eq!(issue.rule, rules::UNKNOWN_FIELD);
            assert!(
                issue.message.contains(&format!("`{field}`")),
                "{}",
                issue.message
            );
            assert!(r.error.message.contains(&format!("detail.{field}")));
        }
        // A field no kind takes is refused by name too.
        let r = rejected(parse(envelope(
            "ComplianceSweepRequested",
            json!({"schemaVersion": "1", "requestId": "c-1", "platformId": "acme", "controls": ["x"]}),
        )));
        assert_eq!(r.issues[0].rule, rules::UNKNOWN_FIELD);
        assert!(r.issues[0].message.contains("controls"), "{:?}", r.issues);
        assert_eq!(r.request_id, "c-1");
    }

    #[test]
    fn every_platform_is_asked_for_with_a_star_by_sweeps_only() {
        use crate::functions::sweep::SweepKind;
        let detail = |extra: Value| {
            let mut d = json!({"schemaVersion": "1", "requestId": "f-1", "platformId": "*"});
            d.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            d
        };
        let Parsed::Request(r) = parse(envelope("ComplianceSweepRequested", detail(json!({}))))
        else {
            panic!("a compliance sweep of every platform is a request")
        };
        assert!(matches!(
            r.body,
            Body::Fleet {
                kind: SweepKind::Compliance,
                remediate: None
            }
        ));
        let Parsed::Request(r) = parse(envelope(
            "DriftCheckRequested",
            detail(json!({"remediate": "report-only"})),
        )) else {
            panic!("a drift check of every platform is a request")
        };
        assert!(matches!(
            r.body,
            Body::Fleet {
                kind: SweepKind::Drift,
                remediate: Some(_)
            }
        ));
        // A fleet check covers every component.
        let r = rejected(parse(envelope(
            "DriftCheckRequested",
            detail(json!({"components": ["network"]})),
        )));
        assert_eq!(r.issues.len(), 1, "{:?}", r.issues);
        assert_eq!(r.issues[0].path, "detail.components");
        // No other kind takes "*": it is not a platform id.
        let r = rejected(parse(envelope(
            "PlatformDecommissionRequested",
            detail(json!({})),
        )));
        assert_eq!(r.issues[0].path, "detail.platformId");
        assert!(r.issues[0].message.contains("\"*\""), "{:?}", r.issues);
    }

    fn tenant_envelope(detail_type: &str, detail: Value) -> Value {
        envelope(detail_type, detail)
    }

    fn onboard(tenant: Value) -> Value {
        tenant_envelope(
            "TenantOnboardingRequested",
            json!({"schemaVersion": "1", "requestId": "req-t", "platformId": "acme", "tenant": tenant}),
        )
    }

    fn offboard(name: &str, extra: Value) -> Value {
        let mut detail = json!({"schemaVersion": "1", "requestId": "req-o", "platformId": "acme", "tenantName": name});
        if let (Some(d), Some(e)) = (detail.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        tenant_envelope("TenantOffboardingRequested", detail)
    }

    #[test]
    fn tenant_requests_parse() {
        let Parsed::Request(r) = parse(onboard(json!({"name": "team-a", "costCentre": "cc-1"})))
        else {
            panic!("not parsed")
        };
        assert_eq!(r.kind, RequestKind::TenantOnboarding);
        assert_eq!(r.tenant_name(), Some("team-a"));
        assert_eq!(r.operation(), "onboard");
        assert!(r.spec().is_none());
        let result = r.result(ResultStatus::Accepted);
        assert_eq!(result.tenant.as_deref(), Some("team-a"));
        let Parsed::Request(r) = parse(offboard("team-a", json!({"retainData": true}))) else {
            panic!("not parsed")
        };
        assert_eq!(r.kind, RequestKind::TenantOffboarding);
        let Body::Tenant(detail) = &r.body else {
            panic!("not a tenant body")
        };
        assert!(detail.retain_data() && !detail.schedule_key_deletion());
    }

    #[test]
    fn hostile_tenant_names_are_refused_naming_field_and_rule() {
        for name in [
            "../x",
            "a*",
            "kube-system",
            "default",
            &"a".repeat(64),
            "Team-A",
            "team a",
            "tëam",
            "team\"a",
            "team'a",
        ] {
            let r = rejected(parse(onboard(json!({"name": name, "costCentre": "cc-1"}))));
            assert!(
                r.issues.iter().any(|i| i.path == "$.name"),
                "{name:?}: {:?}",
                r.issues
            );
            assert!(r.error.message.contains("$.name"), "{}", r.error.message);
            assert_eq!(r.tenant.as_deref(), Some(name));
            let r = rejected(parse(offboard(name, json!({}))));
            assert!(
                r.issues.iter().any(|i| i.path == "detail.tenantName"),
                "{name:?}: {:?}",
                r.issues
            );
        }
    }

    #[test]
    fn tenant_fields_are_checked_per_kind() {
        let mut e = onboard(json!({"name": "team-a", "costCentre": "cc-1"}));
        e["detail"]["retainData"] = json!(false);
        let r = rejected(parse(e));
        assert_eq!(r.issues.len(), 1, "{:?}", r.issues);
        assert_eq!(
            (r.issues[0].path.as_str(), r.issues[0].rule.as_str()),
            ("detail.retainData", rules::UNKNOWN_FIELD)
        );
        let r = rejected(parse(tenant_envelope(
            "TenantOffboardingRequested",
            json!({"schemaVersion": "1", "requestId": "r", "platformId": "acme"}),
        )));
        assert_eq!(r.issues[0].path, "detail.tenantName");
        assert_eq!(r.issues[0].rule, rules::MISSING_FIELD);
        let r = rejected(parse(offboard("team-a", json!({"force": true}))));
        assert_eq!(r.issues[0].rule, rules::UNKNOWN_FIELD);
        // Every problem of the tenant at once, and no "missing tenant" on top of them.
        let r = rejected(parse(onboard(
            json!({"name": "Bad Name", "costCentre": "cc-1", "s3Prefix": "../up/"}),
        )));
        let paths: Vec<&str> = r.issues.iter().map(|i| i.path.as_str()).collect();
        assert!(
            paths.contains(&"$.name") && paths.contains(&"$.s3Prefix"),
            "{paths:?}"
        );
        assert!(!paths.contains(&"detail.tenant"), "{paths:?}");
    }

    #[test]
    fn own_events_are_ignored() {
        let mut e = envelope("PlatformProvisionAccepted", json!({}));
        e["source"] = json!("tenantry");
        assert!(matches!(parse(e), Parsed::Ignored { .. }));
    }

    #[test]
    fn input_shapes_are_told_apart() {
        let sqs: IntakeInput =
            serde_json::from_value(json!({"Records": [{"messageId": "m", "body": "{}"}]})).unwrap();
        assert!(matches!(sqs, IntakeInput::Sqs(e) if e.records.len() == 1));
        let bare: IntakeInput = serde_json::from_value(envelope("X", json!({}))).unwrap();
        assert!(matches!(bare, IntakeInput::Event(_)));
    }
}
