//! KMS keys: rotation, state, and what their policies let others do.

use super::{condition_has, judge, not_applicable, platform, statements, strings, Verdict};
use crate::compliance::live::{Key, Live};
use serde_json::{json, Value};

fn each_key(live: &Live, check: impl Fn(&Key) -> Verdict) -> Vec<Verdict> {
    if live.keys.is_empty() {
        return vec![not_applicable(
            platform(live),
            "the platform has no KMS keys",
        )];
    }
    live.keys.iter().map(check).collect()
}

pub fn rotation(live: &Live) -> Vec<Verdict> {
    each_key(live, |k| {
        judge(
            &k.arn,
            k.rotation,
            "automatic rotation is on",
            "automatic rotation is off",
            json!({"keyRotationEnabled": k.rotation}),
        )
    })
}

pub fn enabled(live: &Live) -> Vec<Verdict> {
    each_key(live, |k| {
        judge(
            &k.arn,
            k.state == "Enabled",
            "the key is enabled",
            format!("the key is {}", k.state),
            json!({"keyState": k.state}),
        )
    })
}

/// Condition keys that tie a service's use of a key to this account or resource.
const DEPUTY_GUARDS: [&str; 4] = [
    "aws:SourceAccount",
    "aws:SourceArn",
    "kms:ViaService",
    "kms:CallerAccount",
];

fn guarded(statement: &Value) -> bool {
    DEPUTY_GUARDS.iter().any(|k| condition_has(statement, k))
        || statement["Condition"]
            .as_object()
            .into_iter()
            .flat_map(|ops| ops.values())
            .filter_map(Value::as_object)
            .any(|keys| keys.keys().any(|k| k.starts_with("kms:EncryptionContext:")))
}

pub fn service_grants_are_guarded(live: &Live) -> Vec<Verdict> {
    each_key(live, |k| {
        let unguarded: Vec<String> = statements(&k.policy)
            .into_iter()
            .filter(|s| {
                s["Effect"] == "Allow" && !s["Principal"]["Service"].is_null() && !guarded(s)
            })
            .map(|s| {
                let sid = s["Sid"].as_str().unwrap_or("(no Sid)");
                format!("{sid} ({})", strings(&s["Principal"]["Service"]).join(", "))
            })
            .collect();
        judge(
            &k.arn,
            unguarded.is_empty(),
            "every grant to an AWS service names the account or the source",
            format!(
                "service grants without a confused-deputy condition: {}",
                unguarded.join("; ")
            ),
            json!({"unguarded": unguarded}),
        )
    })
}

pub fn not_public(live: &Live) -> Vec<Verdict> {
    each_key(live, |k| {
        let public: Vec<&str> = statements(&k.policy)
            .into_iter()
            .filter(|s| {
                let p = &s["Principal"];
                s["Effect"] == "Allow"
                    && (p == "*" || strings(&p["AWS"]).contains(&"*"))
                    && s["Condition"].is_null()
            })
            .map(|s| s["Sid"].as_str().unwrap_or("(no Sid)"))
            .collect();
        judge(
            &k.arn,
            public.is_empty(),
            "no statement allows every principal",
            format!("statements allowing every principal: {}", public.join(", ")),
            json!({"public": public}),
        )
    })
}
