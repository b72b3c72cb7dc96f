//! Character-level rules shared by names, prefixes and tags.

use super::{rules, Issues};

/// Characters never allowed in anything that ends up in an IAM policy document, an ARN or a tag:
/// they could close a JSON string, escape, act as IAM wildcards or policy variables, or walk paths.
pub(crate) const INJECTION_CHARS: &[char] = &['"', '\'', '`', '\\', '*', '?', '$', '{', '}'];

/// Describes the first unsafe character of `value`, if any. `slash_ok` allows `/`.
pub(crate) fn unsafe_char(value: &str, slash_ok: bool) -> Option<String> {
    for c in value.chars() {
        if c.is_control() {
            return Some(format!("control character {:?}", c));
        }
        if !c.is_ascii() {
            return Some(format!("non-ASCII character {:?}", c));
        }
        if INJECTION_CHARS.contains(&c) || (!slash_ok && c == '/') {
            return Some(format!("character {:?}", c));
        }
    }
    if !slash_ok && value.contains("..") {
        return Some("`..`".to_string());
    }
    None
}

/// Pushes an `unsafe-characters` issue when `value` contains one; returns whether it did.
pub(crate) fn check_unsafe(
    issues: &mut Issues,
    path: &str,
    what: &str,
    value: &str,
    slash_ok: bool,
) -> bool {
    match unsafe_char(value, slash_ok) {
        Some(found) => {
            issues.push(
                path,
                rules::UNSAFE_CHARACTERS,
                format!(
                    "{what} {value:?} contains {found}, which could inject into IAM policy documents, ARNs or tags"
                ),
            );
            true
        }
        None => false,
    }
}

/// AWS tag character set, restricted to ASCII: letters, digits, space and `_ . : / = + - @`.
fn tag_chars_ok(value: &str) -> bool {
    value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " _.:/=+-@".contains(c))
}

/// Tag key rules: safe characters, AWS charset, 1-128 characters, no `aws:` / `tenantry:`.
pub(crate) fn check_tag_key(issues: &mut Issues, path: &str, k: &str) {
    if check_unsafe(issues, path, "tag key", k, true) {
        return;
    }
    if k.is_empty() || k.len() > 128 || !tag_chars_ok(k) {
        issues.push(
            path,
            rules::TAG_KEY,
            format!("tag key {k:?} must be 1-128 characters of letters, digits, spaces and _ . : / = + - @"),
        );
    }
    let lower = k.to_ascii_lowercase();
    if lower.starts_with("aws:") || lower.starts_with(crate::naming::RESERVED_TAG_PREFIX) {
        issues.push(
            path,
            rules::TAG_RESERVED,
            format!("tag key {k:?} uses a reserved prefix (`aws:` belongs to AWS, `tenantry:` to Tenantry)"),
        );
    }
}

/// Tag value rules: safe characters, AWS charset, at most 256 characters.
pub(crate) fn check_tag_value(issues: &mut Issues, path: &str, v: &str, required: bool) {
    if check_unsafe(issues, path, "tag value", v, true) {
        return;
    }
    if v.len() > 256 || !tag_chars_ok(v) || (required && v.trim().is_empty()) {
        issues.push(
            path,
            rules::TAG_VALUE,
            format!(
                "tag value {v:?} must be {}at most 256 characters of letters, digits, spaces and _ . : / = + - @",
                if required { "1 to " } else { "" }
            ),
        );
    }
}

/// Parses a Kubernetes quantity (`4`, `500m`, `1.5`, `8Gi`, `1e3` is not accepted) to a number.
pub(crate) fn quantity(text: &str) -> Option<f64> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    if number.is_empty()
        || number.starts_with('.')
        || number.ends_with('.')
        || number.matches('.').count() > 1
    {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    };
    Some(value * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(quantity("4"), Some(4.0));
        assert_eq!(quantity("500m"), Some(0.5));
        assert_eq!(quantity("8Gi"), Some(8.0 * 1024f64.powi(3)));
        assert_eq!(quantity("1.5"), Some(1.5));
        for bad in ["", "Gi", "1.", ".5", "1..2", "4 Gi", "-1", "1e3", "8gi"] {
            assert_eq!(quantity(bad), None, "{bad}");
        }
    }

    #[test]
    fn unsafe_characters() {
        assert!(unsafe_char("team-a", false).is_none());
        assert!(unsafe_char("tenants/a/", true).is_none());
        for bad in [
            "../x",
            "a*",
            "a\"b",
            "é",
            "a\nb",
            "${aws:username}",
            "a'b",
            "a\\b",
        ] {
            assert!(unsafe_char(bad, false).is_some(), "{bad}");
        }
    }
}
