//! The request detail: deserialized strictly, its own fields checked (paths `detail.<field>`),
//! the platform spec or tenant it carries validated. Every problem is reported at once.

use super::envelope::{Body, Rejection, Request};
use crate::events::{self, PlatformRequest, RequestKind, TenantRequest};
use crate::functions::sweep::{SweepKind, ALL_PLATFORMS};
use crate::spec::PlatformSpec;
use crate::store::{payload_hash, RequestOrigin};
use crate::validate::{self, rules, Issue};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// The detail of a `kind` request, validated; a rejection listing every problem otherwise.
pub(super) fn parse_detail(
    kind: RequestKind,
    detail_type: &str,
    raw: &Value,
) -> Result<Request, Box<Rejection>> {
    let (request_id, platform_id, body, issues) = if kind.is_tenant() {
        let (detail, issues) = tenant_detail(kind, raw)?;
        let ids = (detail.request_id.clone(), detail.platform_id.clone());
        (ids.0, ids.1, Body::Tenant(Box::new(detail)), issues)
    } else {
        let (detail, spec, issues) = platform_detail(kind, detail_type, raw)?;
        let fleet = detail.platform_id == ALL_PLATFORMS;
        let body = match kind {
            RequestKind::DriftCheck if fleet => Body::Fleet {
                kind: SweepKind::Drift,
                remediate: detail.remediate.clone(),
            },
            RequestKind::ComplianceSweep if fleet => Body::Fleet {
                kind: SweepKind::Compliance,
                remediate: None,
            },
            RequestKind::DriftCheck => Body::Drift {
                remediate: detail.remediate.clone(),
                components: detail.components.clone(),
            },
            RequestKind::ComplianceSweep => Body::Compliance,
            _ => Body::Platform {
                spec: spec.map(Box::new),
            },
        };
        (detail.request_id, detail.platform_id, body, issues)
    };
    if !issues.is_empty() {
        let mut r = Rejection::new(Some(raw), Some(kind), summary(&issues));
        r.issues = issues;
        return Err(r);
    }
    let payload_hash = payload_hash(&json!({ "detailType": detail_type, "detail": raw }));
    Ok(Request {
        kind,
        request_id,
        platform_id,
        body,
        payload_hash,
        origin: RequestOrigin::default(),
    })
}

/// The message of a refusal listing `issues`: how many, and the first (its field and rule).
pub(super) fn summary(issues: &[Issue]) -> String {
    let count = issues.len();
    let first = issues.first().map(ToString::to_string).unwrap_or_default();
    format!(
        "request refused: {count} problem{}, first: {first}",
        if count == 1 { "" } else { "s" }
    )
}

/// Deserializes a detail strictly; the first type-level problem rejects it.
fn deserialize_detail<T: DeserializeOwned>(
    kind: RequestKind,
    raw: &Value,
) -> Result<T, Box<Rejection>> {
    serde_path_to_error::deserialize(raw.clone()).map_err(|e| {
        let path = format!("detail.{}", e.path()).replace("detail..", "detail");
        let message = e.inner().to_string();
        let mut r = Rejection::new(
            Some(raw),
            Some(kind),
            format!("invalid request detail: {message}"),
        );
        r.issues
            .push(Issue::new(path, serde_rule(&message), message));
        r
    })
}

/// A provision, update, decommission, drift check or compliance sweep: the detail, the validated
/// spec and the problems found (a field the kind does not take is refused, naming it).
fn platform_detail(
    kind: RequestKind,
    detail_type: &str,
    raw: &Value,
) -> Result<(PlatformRequest, Option<PlatformSpec>, Vec<Issue>), Box<Rejection>> {
    let detail: PlatformRequest = deserialize_detail(kind, raw)?;
    if !kind.is_supported() {
        let message = format!(
            "{detail_type} is not yet supported by this version of Tenantry (it handles \
             platform provision, update and decommission and tenant onboarding and \
             offboarding requests)"
        );
        return Err(Rejection::new(Some(raw), Some(kind), message));
    }
    let fleet = detail.platform_id == ALL_PLATFORMS
        && matches!(kind, RequestKind::DriftCheck | RequestKind::ComplianceSweep);
    // "*" is no platform id: a sweep of every platform checks only the other two fields.
    let platform_id = if fleet { "fleet" } else { &detail.platform_id };
    let mut issues = detail_issues(&detail.schema_version, &detail.request_id, platform_id);
    if fleet && detail.components.is_some() {
        issues.push(Issue::new(
            "detail.components",
            rules::INVALID_VALUE,
            "a drift check of every platform (platformId \"*\") checks every component: leave \
             `components` out, or name one platform",
        ));
    }
    let spec = spec_issues(kind, &detail, &mut issues);
    if detail.remediate.is_some() && kind != RequestKind::DriftCheck {
        let message = format!(
            "a {} request takes no `remediate` (only DriftCheckRequested does)",
            kind.operation()
        );
        issues.push(Issue::new(
            "detail.remediate",
            rules::UNKNOWN_FIELD,
            message,
        ));
    }
    match (&detail.components, kind) {
        (Some(_), k) if k != RequestKind::DriftCheck => issues.push(Issue::new(
            "detail.components",
            rules::UNKNOWN_FIELD,
            format!(
                "a {} request takes no `components` (only DriftCheckRequested does)",
                kind.operation()
            ),
        )),
        (Some(c), _) if c.is_empty() => issues.push(Issue::new(
            "detail.components",
            rules::INVALID_VALUE,
            "`components` names at least one component (leave it out to check every one)",
        )),
        _ => {}
    }
    Ok((detail, spec, issues))
}

/// Parses a tenant request: the tenant of an onboarding is checked like a tenant file (every
/// problem, paths relative to the tenant, `$`), the detail's own fields per kind (paths
/// `detail.<field>`), the name of the tenant to offboard by the tenant name rules.
fn tenant_detail(
    kind: RequestKind,
    raw: &Value,
) -> Result<(TenantRequest, Vec<Issue>), Box<Rejection>> {
    let mut issues = Vec::new();
    let mut raw_detail = raw.clone();
    let mut tenant_refused = false;
    if kind == RequestKind::TenantOnboarding {
        let tenant = raw.get("tenant").filter(|t| !t.is_null());
        if let Some(Err(errors)) = tenant.map(|t| validate::parse_tenant(&t.to_string())) {
            issues.extend(errors.0);
            tenant_refused = true;
            if let Some(map) = raw_detail.as_object_mut() {
                map.remove("tenant");
            }
        }
    }
    let detail: TenantRequest = deserialize_detail(kind, &raw_detail)?;
    let mut all = detail_issues(
        &detail.schema_version,
        &detail.request_id,
        &detail.platform_id,
    );
    all.append(&mut issues);
    all.extend(
        detail
            .field_issues(kind)
            .into_iter()
            .filter(|i| !(tenant_refused && i.path == "detail.tenant")),
    );
    if let (RequestKind::TenantOffboarding, Some(name)) = (kind, &detail.tenant_name) {
        all.extend(validate::tenant_name_issues(name, "detail.tenantName"));
    }
    Ok((detail, all))
}

fn serde_rule(message: &str) -> &'static str {
    if message.starts_with("unknown field") {
        rules::UNKNOWN_FIELD
    } else if message.starts_with("missing field") {
        rules::MISSING_FIELD
    } else {
        rules::INVALID_TYPE
    }
}

/// Problems with the detail's own fields (paths `detail.<field>`).
fn detail_issues(schema_version: &str, request_id: &str, platform_id: &str) -> Vec<Issue> {
    [
        schema_version_issue(schema_version),
        request_id_issue(request_id),
        platform_id_issue(platform_id),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn schema_version_issue(schema_version: &str) -> Option<Issue> {
    (schema_version != events::SCHEMA_VERSION).then(|| {
        Issue::new(
            "detail.schemaVersion",
            rules::INVALID_VALUE,
            format!(
                "schemaVersion {:?} is not supported; this version of Tenantry reads {:?}",
                schema_version,
                events::SCHEMA_VERSION
            ),
        )
    })
}

fn request_id_issue(id: &str) -> Option<Issue> {
    let id_ok = !id.is_empty()
        && id.len() <= events::MAX_REQUEST_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    (!id_ok).then(|| {
        Issue::new(
            "detail.requestId",
            rules::INVALID_VALUE,
            format!(
                "requestId must be 1 to {} characters among letters, digits, '-' and '_' \
                 (it names the Step Functions execution); got {id:?}",
                events::MAX_REQUEST_ID_LEN
            ),
        )
    })
}

fn platform_id_issue(platform: &str) -> Option<Issue> {
    let platform_ok = !platform.is_empty()
        && platform.len() <= crate::naming::MAX_PLATFORM_ID_LEN
        && platform.starts_with(|c: char| c.is_ascii_lowercase())
        && !platform.ends_with('-')
        && platform
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    (!platform_ok).then(|| {
        Issue::new(
            "detail.platformId",
            rules::NAME_SYNTAX,
            format!(
                "platformId must be a DNS-1123 label starting with a letter, at most {} \
                 characters (or \"*\", every active platform, for a drift check or a \
                 compliance sweep); got {platform:?}",
                crate::naming::MAX_PLATFORM_ID_LEN
            ),
        )
    })
}

/// Validates the spec a provision or update carries (issue paths are relative to the spec, as
/// when validating the request file); a decommission takes none.
fn spec_issues(
    kind: RequestKind,
    detail: &PlatformRequest,
    issues: &mut Vec<Issue>,
) -> Option<PlatformSpec> {
    let operation = kind.operation();
    match (&detail.spec, kind.needs_spec()) {
        (None, true) => {
            let message = format!("a {operation} request needs the platform request in `spec`");
            issues.push(Issue::new("detail.spec", rules::MISSING_FIELD, message));
            None
        }
        (Some(_), false) => {
            let message = format!("a {operation} request takes no `spec`");
            issues.push(Issue::new("detail.spec", rules::UNKNOWN_FIELD, message));
            None
        }
        (None, false) => None,
        (Some(raw), true) => match validate::parse_platform(&raw.to_string()) {
            Ok(spec) => {
                issues.extend(spec_id_issue(&spec, &detail.platform_id));
                Some(spec)
            }
            Err(errors) => {
                issues.extend(errors.0);
                None
            }
        },
    }
}

fn spec_id_issue(spec: &PlatformSpec, platform_id: &str) -> Option<Issue> {
    (spec.id != platform_id).then(|| {
        Issue::new(
            "$.id",
            rules::INVALID_VALUE,
            format!(
                "the spec's id {:?} is not the request's platformId {:?}",
                spec.id, platform_id
            ),
        )
    })
}
