//! The committed JSON Schemas (`schemas/*.schema.json`) equal the ones generated from the Rust
//! types. Run with `UPDATE_SCHEMAS=1` to rewrite them after changing the request model.

use std::fs;
use std::path::PathBuf;

use serde_json::Value;

fn schemas_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("schemas")
}

fn check(file: &str, generated: &Value) {
    let path = schemas_dir().join(file);
    let text = serde_json::to_string_pretty(generated).expect("schema serializes") + "\n";
    if std::env::var("UPDATE_SCHEMAS").is_ok_and(|v| v == "1") {
        fs::create_dir_all(schemas_dir()).expect("schemas/ can be created");
        fs::write(&path, &text).expect("schema can be written");
        return;
    }
    let committed = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "schemas/{file} is not the schema generated from the Rust types; regenerate it with\n\
         UPDATE_SCHEMAS=1 cargo test -p tenantry --test schemas"
    );
}

#[test]
fn platform_schema_is_committed() {
    check(
        "platform-request.schema.json",
        &tenantry::spec::platform_schema(),
    );
}

#[test]
fn tenant_schema_is_committed() {
    check(
        "tenant-request.schema.json",
        &tenantry::spec::tenant_schema(),
    );
}

#[test]
fn schemas_describe_every_field_and_refuse_unknown_ones() {
    for schema in [
        tenantry::spec::platform_schema(),
        tenantry::spec::tenant_schema(),
    ] {
        let mut missing = Vec::new();
        walk(&schema, "#", &mut missing);
        assert!(
            missing.is_empty(),
            "fields without a description: {missing:?}"
        );
        assert_eq!(schema["additionalProperties"], Value::Bool(false));
    }
    let platform = tenantry::spec::platform_schema();
    // The schema's length limits are the ones naming.rs computes.
    use tenantry::naming::{
        MAX_ENVIRONMENT_LEN, MAX_NODEGROUP_NAME_LEN, MAX_PLATFORM_ID_LEN, MAX_TENANT_NAME_LEN,
    };
    assert_eq!(
        platform["properties"]["id"]["maxLength"],
        MAX_PLATFORM_ID_LEN
    );
    assert_eq!(
        platform["properties"]["environment"]["maxLength"],
        MAX_ENVIRONMENT_LEN
    );
    assert_eq!(
        platform["$defs"]["NodeGroupSpec"]["properties"]["name"]["maxLength"],
        MAX_NODEGROUP_NAME_LEN
    );
    let tenant = tenantry::spec::tenant_schema();
    assert_eq!(
        tenant["properties"]["name"]["maxLength"],
        MAX_TENANT_NAME_LEN
    );
    assert_eq!(
        platform["properties"]["kubernetesVersion"]["default"],
        "1.35"
    );
    assert_eq!(
        platform["$defs"]["LoggingSpec"]["properties"]["retentionDays"]["default"],
        90
    );
}

/// Every object property has a description; every object refuses unknown fields.
fn walk(node: &Value, at: &str, missing: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                if map.get("additionalProperties") != Some(&Value::Bool(false)) {
                    missing.push(format!("{at} allows unknown fields"));
                }
                for (name, prop) in props {
                    if prop.get("description").is_none() {
                        missing.push(format!("{at}.{name}"));
                    }
                }
            }
            for (k, v) in map {
                walk(v, &format!("{at}/{k}"), missing);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, &format!("{at}/{i}"), missing);
            }
        }
        _ => {}
    }
}
