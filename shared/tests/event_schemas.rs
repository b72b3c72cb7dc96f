//! The committed event schemas (`schemas/events/*.schema.json`) equal the ones generated from the
//! Rust types. Run with `UPDATE_SCHEMAS=1` to rewrite them after changing the event types.

use std::fs;
use std::path::PathBuf;

use serde_json::Value;

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("schemas")
        .join("events")
}

#[test]
fn event_schemas_are_committed() {
    let update = std::env::var("UPDATE_SCHEMAS").is_ok_and(|v| v == "1");
    for (file, generated) in tenantry::events::schemas() {
        let path = events_dir().join(file);
        let text = serde_json::to_string_pretty(&generated).expect("schema serializes") + "\n";
        if update {
            fs::create_dir_all(events_dir()).expect("schemas/events/ can be created");
            fs::write(&path, &text).expect("schema can be written");
            continue;
        }
        let committed = fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "schemas/events/{file} is not the schema generated from the Rust types; regenerate it \
             with\nUPDATE_SCHEMAS=1 cargo test -p tenantry --test event_schemas"
        );
    }
}

#[test]
fn no_stale_event_schema_is_committed() {
    let generated: Vec<&str> = tenantry::events::schemas()
        .iter()
        .map(|(f, _)| *f)
        .collect();
    for entry in fs::read_dir(events_dir()).expect("schemas/events/ exists") {
        let name = entry.expect("readable entry").file_name();
        let name = name.to_string_lossy();
        assert!(
            generated.contains(&name.as_ref()),
            "schemas/events/{name} is no longer generated; delete it"
        );
    }
}

#[test]
fn event_schemas_describe_every_field_and_refuse_unknown_ones() {
    for (file, schema) in tenantry::events::schemas() {
        let mut problems = Vec::new();
        walk(&schema, "#", &mut problems);
        assert!(problems.is_empty(), "{file}: {problems:?}");
        assert_eq!(schema["additionalProperties"], Value::Bool(false), "{file}");
        let types = schema["x-detail-types"].as_array().expect("x-detail-types");
        assert!(!types.is_empty(), "{file}");
        for required in ["schemaVersion", "requestId", "platformId"] {
            assert!(
                schema["required"]
                    .as_array()
                    .is_some_and(|r| r.contains(&Value::from(required))),
                "{file}: {required} is not required"
            );
        }
    }
    let (_, request) = &tenantry::events::schemas()[0];
    assert_eq!(request["properties"]["requestId"]["maxLength"], 80);
}

/// Definitions shared with the request validator, which do not refuse unknown fields (a reader of
/// a result event should not fail on a field a newer Tenantry adds to a validation issue).
const LENIENT: &[&str] = &["#/$defs/Issue"];

/// Every object property has a description; every object refuses unknown fields.
fn walk(node: &Value, at: &str, problems: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                if map.get("additionalProperties") != Some(&Value::Bool(false))
                    && !LENIENT.contains(&at)
                {
                    problems.push(format!("{at} allows unknown fields"));
                }
                for (name, prop) in props {
                    if prop.get("description").is_none() {
                        problems.push(format!("{at}.{name} has no description"));
                    }
                }
            }
            for (k, v) in map {
                walk(v, &format!("{at}/{k}"), problems);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, &format!("{at}/{i}"), problems);
            }
        }
        _ => {}
    }
}
