//! Explicit mapping between JSON values / typed records and DynamoDB attribute values.
//!
//! JSON objects become maps (`M`), arrays lists (`L`), numbers `N`, strings `S`, booleans `BOOL`
//! and null `NULL`, so stored documents stay readable and queryable in the console.

use super::error::{Result, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Number, Value};
use std::collections::HashMap;

pub type Item = HashMap<String, AttributeValue>;

/// JSON value to attribute value.
pub fn to_attr(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(to_attr).collect()),
        Value::Object(map) => {
            AttributeValue::M(map.iter().map(|(k, v)| (k.clone(), to_attr(v))).collect())
        }
    }
}

/// Attribute value to JSON value. Sets become arrays; binary values are refused.
pub fn from_attr(value: &AttributeValue) -> std::result::Result<Value, String> {
    Ok(match value {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::N(n) => Value::Number(parse_number(n)?),
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::L(items) => Value::Array(
            items
                .iter()
                .map(from_attr)
                .collect::<std::result::Result<_, _>>()?,
        ),
        AttributeValue::M(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), from_attr(v)?)))
                .collect::<std::result::Result<Map<_, _>, String>>()?,
        ),
        AttributeValue::Ss(items) => {
            Value::Array(items.iter().cloned().map(Value::String).collect())
        }
        AttributeValue::Ns(items) => Value::Array(
            items
                .iter()
                .map(|n| parse_number(n).map(Value::Number))
                .collect::<std::result::Result<_, _>>()?,
        ),
        other => return Err(format!("unsupported attribute type {other:?}")),
    })
}

fn parse_number(n: &str) -> std::result::Result<Number, String> {
    if let Ok(i) = n.parse::<i64>() {
        return Ok(i.into());
    }
    if let Ok(u) = n.parse::<u64>() {
        return Ok(u.into());
    }
    n.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .ok_or_else(|| format!("not a number: {n:?}"))
}

/// A typed record to an attribute value (through its JSON form).
pub fn encode<T: Serialize>(what: &str, value: &T) -> Result<AttributeValue> {
    serde_json::to_value(value)
        .map(|v| to_attr(&v))
        .map_err(|e| StoreError::Encode {
            what: what.to_owned(),
            reason: e.to_string(),
        })
}

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Reads the attributes of one item, naming the item in every error.
pub struct Reader<'a> {
    key: String,
    item: &'a Item,
}

impl<'a> Reader<'a> {
    pub fn new(item: &'a Item) -> Self {
        let key = match (item.get(super::keys::PK), item.get(super::keys::SK)) {
            (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => {
                super::keys::display(pk, sk)
            }
            _ => "<item without keys>".to_owned(),
        };
        Reader { key, item }
    }

    pub fn corrupt(&self, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            key: self.key.clone(),
            reason: reason.into(),
        }
    }

    pub fn has(&self, name: &str) -> bool {
        !matches!(self.item.get(name), None | Some(AttributeValue::Null(_)))
    }

    pub fn opt_s(&self, name: &str) -> Result<Option<&'a str>> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v.as_str())),
            Some(other) => Err(self.corrupt(format!("{name} is not a string: {other:?}"))),
        }
    }

    pub fn s(&self, name: &str) -> Result<&'a str> {
        self.opt_s(name)?
            .ok_or_else(|| self.corrupt(format!("{name} is missing")))
    }

    pub fn opt_i64(&self, name: &str) -> Result<Option<i64>> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(v)) => v
                .parse()
                .map(Some)
                .map_err(|_| self.corrupt(format!("{name} is not an integer: {v:?}"))),
            Some(other) => Err(self.corrupt(format!("{name} is not a number: {other:?}"))),
        }
    }

    pub fn i64(&self, name: &str) -> Result<i64> {
        self.opt_i64(name)?
            .ok_or_else(|| self.corrupt(format!("{name} is missing")))
    }

    pub fn u64(&self, name: &str) -> Result<u64> {
        let v = self.i64(name)?;
        u64::try_from(v).map_err(|_| self.corrupt(format!("{name} is negative: {v}")))
    }

    pub fn opt_time(&self, name: &str) -> Result<Option<DateTime<Utc>>> {
        self.opt_s(name)?
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| {
                        self.corrupt(format!("{name} is not an RFC 3339 time ({v:?}): {e}"))
                    })
            })
            .transpose()
    }

    pub fn time(&self, name: &str) -> Result<DateTime<Utc>> {
        self.opt_time(name)?
            .ok_or_else(|| self.corrupt(format!("{name} is missing")))
    }

    /// Epoch milliseconds to a time.
    pub fn opt_time_ms(&self, name: &str) -> Result<Option<DateTime<Utc>>> {
        self.opt_i64(name)?
            .map(|ms| {
                DateTime::from_timestamp_millis(ms)
                    .ok_or_else(|| self.corrupt(format!("{name} is out of range: {ms}")))
            })
            .transpose()
    }

    pub fn json(&self, name: &str) -> Result<Value> {
        match self.item.get(name) {
            None => Err(self.corrupt(format!("{name} is missing"))),
            Some(v) => from_attr(v).map_err(|e| self.corrupt(format!("{name}: {e}"))),
        }
    }

    pub fn opt_json(&self, name: &str) -> Result<Option<Value>> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(v) => from_attr(v)
                .map(Some)
                .map_err(|e| self.corrupt(format!("{name}: {e}"))),
        }
    }

    pub fn opt_decode<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        self.opt_json(name)?
            .map(|value| {
                serde_json::from_value(value).map_err(|e| self.corrupt(format!("{name}: {e}")))
            })
            .transpose()
    }

    pub fn string_map(&self, name: &str) -> Result<std::collections::BTreeMap<String, String>> {
        Ok(self.opt_decode(name)?.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips_through_attribute_values() {
        let doc = json!({
            "name": "payments",
            "count": 3,
            "negative": -7,
            "big": u64::MAX,
            "ratio": 0.25,
            "enabled": true,
            "nothing": null,
            "empty": "",
            "list": [1, "two", {"three": [3]}],
            "nested": {"a": {"b": {}}}
        });
        let attr = to_attr(&doc);
        assert!(
            matches!(&attr, AttributeValue::M(m) if matches!(m.get("count"), Some(AttributeValue::N(n)) if n == "3"))
        );
        assert_eq!(from_attr(&attr).unwrap(), doc);
    }

    #[test]
    fn sets_become_arrays_and_binary_is_refused() {
        let ss = AttributeValue::Ss(vec!["a".into(), "b".into()]);
        assert_eq!(from_attr(&ss).unwrap(), json!(["a", "b"]));
        let b = AttributeValue::B(aws_smithy_types::Blob::new(vec![1]));
        assert!(from_attr(&b).is_err());
    }

    #[test]
    fn reader_names_the_item_in_errors() {
        let item: Item = [
            ("PK".to_owned(), s("PLATFORM#p")),
            ("SK".to_owned(), s("SPEC")),
            ("version".to_owned(), s("one")),
        ]
        .into();
        let r = Reader::new(&item);
        let err = r.u64("version").unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { key, .. } if key == "PLATFORM#p/SPEC"),
            "{err}"
        );
        assert!(matches!(r.s("missing"), Err(StoreError::Corrupt { .. })));
        assert_eq!(r.opt_s("missing").unwrap(), None);
    }
}
