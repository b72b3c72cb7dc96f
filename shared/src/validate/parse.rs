//! Strict JSON parsing with the path of the first type-level error.

use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

use super::{key, rules, Issue, ValidationErrors};

/// Deserializes `json` strictly; on failure one issue with the JSON path, rule and, for syntax
/// errors, line and column.
pub(crate) fn from_json<T: DeserializeOwned>(json: &str) -> Result<T, ValidationErrors> {
    let mut de = serde_json::Deserializer::from_str(json);
    let value: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    let value = match value {
        Ok(value) => value,
        Err(err) => return Err(ValidationErrors(vec![to_issue(err)])),
    };
    // Trailing characters after the document.
    if let Err(err) = de.end() {
        return Err(ValidationErrors(vec![syntax_issue(&err)]));
    }
    Ok(value)
}

fn syntax_issue(err: &serde_json::Error) -> Issue {
    Issue {
        path: "$".to_string(),
        rule: rules::JSON_SYNTAX.to_string(),
        message: format!(
            "malformed JSON at line {}, column {}: {}",
            err.line(),
            err.column(),
            strip_position(&err.to_string())
        ),
        line: Some(err.line()),
        column: Some(err.column()),
    }
}

fn to_issue(err: serde_path_to_error::Error<serde_json::Error>) -> Issue {
    let path = render_path(err.path());
    let inner = err.into_inner();
    if matches!(
        inner.classify(),
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof
    ) {
        return syntax_issue(&inner);
    }
    let text = strip_position(&inner.to_string());
    let (rule, path, message) = if let Some(name) = between(&text, "unknown field `", "`") {
        // Name the field itself (serde_path_to_error usually includes it already).
        let own = key("", name);
        let path = if path.ends_with(&own) {
            path
        } else {
            key(&path, name)
        };
        (rules::UNKNOWN_FIELD, path, text.clone())
    } else if let Some(name) = between(&text, "missing field `", "`") {
        let own = key("", name);
        let path = if path.ends_with(&own) {
            path
        } else {
            key(&path, name)
        };
        (rules::MISSING_FIELD, path, text.clone())
    } else if let Some(name) = between(&text, "duplicate field `", "`") {
        let own = key("", name);
        let path = if path.ends_with(&own) {
            path
        } else {
            key(&path, name)
        };
        (rules::DUPLICATE_FIELD, path, text.clone())
    } else if text.starts_with("unknown variant") || text.starts_with("invalid value") {
        (rules::INVALID_VALUE, path, text.clone())
    } else {
        (rules::INVALID_TYPE, path, text.clone())
    };
    Issue {
        path,
        rule: rule.to_string(),
        message,
        line: Some(inner.line()),
        column: Some(inner.column()),
    }
}

/// `$.a.b[1]['odd key']` from serde_path_to_error's segments.
fn render_path(path: &serde_path_to_error::Path) -> String {
    let mut out = "$".to_string();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out = super::index(&out, *index),
            Segment::Map { key: k } => out = key(&out, k),
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    out
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = &text[text.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

/// serde_json appends " at line L column C"; the issue carries those separately.
fn strip_position(text: &str) -> String {
    match text.rfind(" at line ") {
        Some(pos) => text[..pos].to_string(),
        None => text.to_string(),
    }
}
