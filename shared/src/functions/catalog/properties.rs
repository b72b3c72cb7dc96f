//! The custom resource's properties (the product's parameters) → a platform spec, validated by
//! the same rules as any request. A problem names the property, not the spec's JSON path.
//!
//! CloudFormation hands every property over as a string (a number parameter is `"3"`, a
//! `CommaDelimitedList` an array of strings), so each property says what it becomes.

use crate::spec::PlatformSpec;
use crate::validate::{self, Issue};
use serde_json::{json, Map, Value};

/// How a property's value becomes JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Text,
    WholeNumber,
    /// A list of strings: an array, or one comma-separated string.
    List,
}

/// One property of `Custom::TenantryPlatform`.
#[derive(Debug, Clone, Copy)]
struct Property {
    name: &'static str,
    /// Where it lands in the spec (a JSON pointer, without the leading `/`).
    pointer: &'static str,
    shape: Shape,
}

const fn property(name: &'static str, pointer: &'static str, shape: Shape) -> Property {
    Property {
        name,
        pointer,
        shape,
    }
}

/// The name of the one node group a catalog platform has.
pub const NODE_GROUP: &str = "general";

/// Every property the product offers.
const PROPERTIES: &[Property] = &[
    property("PlatformId", "id", Shape::Text),
    property("Environment", "environment", Shape::Text),
    property("Region", "region", Shape::Text),
    property("KubernetesVersion", "kubernetesVersion", Shape::Text),
    property("VpcCidr", "network/vpcCidr", Shape::Text),
    property("AzCount", "network/azCount", Shape::WholeNumber),
    property("NatMode", "network/natMode", Shape::Text),
    property(
        "PublicAccessCidrs",
        "endpointAccess/publicAccessCidrs",
        Shape::List,
    ),
    property(
        "NodeInstanceType",
        "nodeGroups/0/instanceTypes/0",
        Shape::Text,
    ),
    property("NodeMinSize", "nodeGroups/0/minSize", Shape::WholeNumber),
    property(
        "NodeDesiredSize",
        "nodeGroups/0/desiredSize",
        Shape::WholeNumber,
    ),
    property("NodeMaxSize", "nodeGroups/0/maxSize", Shape::WholeNumber),
    property("AdminPrincipals", "access/adminPrincipals", Shape::List),
    property("ComplianceProfile", "complianceProfile", Shape::Text),
    property("DriftRemediation", "driftRemediation", Shape::Text),
    property("CostCenter", "tags/cost-center", Shape::Text),
    property("TargetRoleArn", "targetRoleArn", Shape::Text),
];

/// Properties CloudFormation itself reads, not the platform.
const CLOUDFORMATION_PROPERTIES: &[&str] = &["ServiceToken", "ServiceTimeout"];

/// Properties without which there is no platform.
const REQUIRED: &[&str] = &["PlatformId", "Environment"];

/// A problem with one property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyIssue {
    /// The property (or, for a rule about several, the spec path).
    pub property: String,
    pub rule: String,
    pub message: String,
}

impl std::fmt::Display for PropertyIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "property {}: {} [{}]",
            self.property, self.message, self.rule
        )
    }
}

/// The platform id the properties ask for, if they name one (unvalidated).
pub fn platform_id(properties: &Map<String, Value>) -> Option<String> {
    properties
        .get("PlatformId")
        .and_then(Value::as_str)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The platform spec of `properties`, in `default_region` unless they name a Region; every
/// problem otherwise, each naming its property.
pub fn spec(
    properties: &Map<String, Value>,
    default_region: &str,
) -> Result<PlatformSpec, Vec<PropertyIssue>> {
    let mut issues = Vec::new();
    let mut spec = json!({
        "region": default_region,
        "nodeGroups": [{"name": NODE_GROUP, "role": "general"}],
    });
    for (name, value) in properties {
        // An empty parameter means "not set": the spec's default applies.
        if CLOUDFORMATION_PROPERTIES.contains(&name.as_str()) || is_empty(value) {
            continue;
        }
        let Some(p) = PROPERTIES.iter().find(|p| p.name == name) else {
            issues.push(unknown(name));
            continue;
        };
        match converted(p, value) {
            Ok(v) => set(&mut spec, p.pointer, v),
            Err(issue) => issues.push(issue),
        }
    }
    for name in REQUIRED {
        if properties.get(*name).is_none_or(is_empty) {
            issues.push(issue(name, validate::rules::MISSING_FIELD, "is required"));
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    validate::parse_platform(&spec.to_string())
        .map_err(|errors| errors.issues().iter().map(named).collect())
}

/// An empty string, or a list of empty strings (a `CommaDelimitedList` parameter left empty).
fn is_empty(value: &Value) -> bool {
    match value {
        Value::String(s) => s.trim().is_empty(),
        Value::Array(items) => items.iter().all(is_empty),
        _ => false,
    }
}

/// The JSON of one property's value.
fn converted(p: &Property, value: &Value) -> Result<Value, PropertyIssue> {
    let text = match value {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match (p.shape, value, text) {
        (Shape::Text, _, Some(t)) => Ok(Value::String(t)),
        (Shape::WholeNumber, _, Some(t)) => t.parse::<u64>().map(Value::from).map_err(|_| {
            issue(
                p.name,
                validate::rules::INVALID_TYPE,
                format!("{t:?} is not a whole number"),
            )
        }),
        (Shape::List, Value::Array(items), _) => items
            .iter()
            .map(|i| i.as_str().map(|s| Value::String(s.trim().to_owned())))
            .collect::<Option<Vec<_>>>()
            .map(Value::Array)
            .ok_or_else(|| {
                issue(
                    p.name,
                    validate::rules::INVALID_TYPE,
                    "must be a list of strings",
                )
            }),
        (Shape::List, _, Some(t)) => Ok(Value::Array(
            t.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        )),
        _ => Err(issue(
            p.name,
            validate::rules::INVALID_TYPE,
            "must be a string",
        )),
    }
}

/// Puts `value` at `pointer` (`network/vpcCidr`), making the objects and arrays on the way.
fn set(spec: &mut Value, pointer: &str, value: Value) {
    let mut at = spec;
    for part in pointer.split('/') {
        at = match part.parse::<usize>() {
            Ok(i) => {
                if !at.is_array() {
                    *at = Value::Array(Vec::new());
                }
                let items = at.as_array_mut().expect("made an array above");
                while items.len() <= i {
                    items.push(Value::Object(Map::new()));
                }
                &mut items[i]
            }
            Err(_) => {
                if !at.is_object() {
                    *at = Value::Object(Map::new());
                }
                let fields = at.as_object_mut().expect("made an object above");
                fields.entry(part).or_insert(Value::Null)
            }
        };
    }
    *at = value;
}

/// A validation issue, named by the property whose spec path it is about (the longest that
/// matches); an issue about no single property keeps its path.
fn named(issue: &Issue) -> PropertyIssue {
    let path = issue.path.trim_start_matches('$');
    let property = PROPERTIES
        .iter()
        .filter(|p| {
            let own = json_path(p.pointer);
            path == own
                || path.starts_with(&format!("{own}."))
                || path.starts_with(&format!("{own}["))
        })
        .max_by_key(|p| p.pointer.len())
        .map_or_else(|| issue.path.clone(), |p| p.name.to_owned());
    PropertyIssue {
        property,
        rule: issue.rule.clone(),
        message: issue.message.clone(),
    }
}

/// `nodeGroups/0/minSize` → `.nodeGroups[0].minSize`, `tags/cost-center` →
/// `.tags['cost-center']`: paths as validation writes them.
fn json_path(pointer: &str) -> String {
    pointer
        .split('/')
        .map(|part| {
            let plain = part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            match part.parse::<usize>() {
                Ok(i) => format!("[{i}]"),
                Err(_) if plain => format!(".{part}"),
                Err(_) => format!("['{part}']"),
            }
        })
        .collect()
}

fn unknown(name: &str) -> PropertyIssue {
    let known: Vec<&str> = PROPERTIES.iter().map(|p| p.name).collect();
    issue(
        name,
        validate::rules::UNKNOWN_FIELD,
        format!(
            "is not a property of Custom::TenantryPlatform (known: {})",
            known.join(", ")
        ),
    )
}

fn issue(property: &str, rule: &str, message: impl Into<String>) -> PropertyIssue {
    PropertyIssue {
        property: property.to_owned(),
        rule: rule.to_owned(),
        message: message.into(),
    }
}

/// The Reason of a refusal: how many problems, then each.
pub fn reason(issues: &[PropertyIssue]) -> String {
    let listed: Vec<String> = issues.iter().map(ToString::to_string).collect();
    format!(
        "{} invalid propert{}: {}",
        issues.len(),
        if issues.len() == 1 { "y" } else { "ies" },
        listed.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn properties(pairs: &[(&str, Value)]) -> Map<String, Value> {
        let mut map: Map<String, Value> = [
            (
                "ServiceToken",
                json!("arn:aws:lambda:eu-west-1:1:function:tenantry-catalog"),
            ),
            ("ServiceTimeout", json!("3000")),
            ("PlatformId", json!("shop")),
            ("Environment", json!("dev")),
            ("VpcCidr", json!("10.20.0.0/16")),
            ("AzCount", json!("2")),
            ("NodeInstanceType", json!("m5.large")),
            ("NodeMinSize", json!("1")),
            ("NodeDesiredSize", json!("2")),
            ("NodeMaxSize", json!("4")),
            ("PublicAccessCidrs", json!([""])),
            ("DriftRemediation", json!("")),
            (
                "AdminPrincipals",
                json!(["arn:aws:iam::111122223333:role/admin"]),
            ),
            ("CostCenter", json!("cc-42")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (k, v) in pairs {
            map.insert((*k).to_owned(), v.clone());
        }
        map
    }

    #[test]
    fn properties_as_cloudformation_sends_them_become_a_valid_spec() {
        let spec = spec(&properties(&[]), "eu-west-1").unwrap();
        assert_eq!(
            (spec.id.as_str(), spec.environment.as_str()),
            ("shop", "dev")
        );
        assert_eq!(spec.region, "eu-west-1");
        assert_eq!(spec.network.vpc_cidr, "10.20.0.0/16");
        assert_eq!(spec.network.az_count, 2);
        let groups = spec.effective_node_groups();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].name, NODE_GROUP);
        assert_eq!(groups[0].instance_types, ["m5.large"]);
        assert_eq!(
            (
                groups[0].min_size,
                groups[0].desired_size,
                groups[0].max_size
            ),
            (1, 2, 4)
        );
        assert!(
            !spec.endpoint_access.public(),
            "an empty list keeps it private"
        );
        assert_eq!(spec.access.admin_principals.len(), 1);
        assert_eq!(spec.tags["cost-center"], "cc-42");
    }

    #[test]
    fn a_bad_value_is_refused_naming_its_property_and_rule() {
        let err = spec(
            &properties(&[("VpcCidr", json!("8.8.0.0/16"))]),
            "eu-west-1",
        )
        .unwrap_err();
        assert!(err.iter().all(|i| i.property == "VpcCidr"), "{err:?}");
        let err = spec(&properties(&[("NodeMaxSize", json!("many"))]), "eu-west-1").unwrap_err();
        assert_eq!(err[0].property, "NodeMaxSize");
        assert_eq!(err[0].rule, validate::rules::INVALID_TYPE);
        let err = spec(&properties(&[("Environment", json!("Production!"))]), "r").unwrap_err();
        assert!(err.iter().any(|i| i.property == "Environment"), "{err:?}");
        assert!(
            reason(&err).contains("property Environment"),
            "{}",
            reason(&err)
        );
    }

    #[test]
    fn unknown_and_missing_properties_are_named() {
        let mut props = properties(&[("Colour", json!("blue"))]);
        props.remove("PlatformId");
        let err = spec(&props, "eu-west-1").unwrap_err();
        let named: Vec<&str> = err.iter().map(|i| i.property.as_str()).collect();
        assert_eq!(named, ["Colour", "PlatformId"], "{err:?}");
        assert_eq!(err[1].rule, validate::rules::MISSING_FIELD);
        assert_eq!(platform_id(&props), None);
    }

    #[test]
    fn a_node_group_rule_names_the_size_property() {
        let issue = Issue::new("$.nodeGroups[0].minSize", "size-order", "min > max");
        assert_eq!(named(&issue).property, "NodeMinSize");
        let issue = Issue::new("$.tags['cost-center']", "tag-value", "too long");
        assert_eq!(named(&issue).property, "CostCenter");
        let issue = Issue::new("$.nodeGroups[0]", "x", "y");
        assert_eq!(named(&issue).property, "$.nodeGroups[0]");
    }
}
