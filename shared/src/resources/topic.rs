//! `sns:topic`: the platform's alarm topic `tenantry-<stem>-alarms`, which the observability
//! phase makes only when the request names no topic of its own.
//!
//! - **Found by** its ARN, derived from the account, region and name ([`arn`], [`find`]):
//!   `GetTopicAttributes` answers `NotFound` when it does not exist. Ownership is by the tags
//!   [`find`] reads; the phase refuses a topic of the name that is not the platform's.
//! - **Desired** ([`Desired`]): the data key, the access policy ([`policy`]) and Tenantry's tags.
//! - **Owned fields** ([`Desired::differences`]): `kmsMasterKeyId`, `policy`, and the tags
//!   Tenantry sets. Left to others: other tags, subscriptions, delivery policies.
//! - **Create, update, delete** ([`create`], [`repair`], [`remove`]). The topic is created with
//!   its key, policy and tags in one call, so a crash leaves either nothing or a complete topic;
//!   a topic already gone counts as removed.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_sns::types::Tag;
use serde_json::{json, Value};

use super::{missing_tags, same_key, Difference, Differences};
use crate::error::{ErrorType, FunctionError};
use crate::phases::aws_error;
use crate::policies;

const ATTR_KMS: &str = "KmsMasterKeyId";
const ATTR_POLICY: &str = "Policy";

/// `arn:<partition>:sns:<region>:<account>:<name>`.
pub fn arn(partition: &str, region: &str, account: &str, name: &str) -> String {
    format!("arn:{partition}:sns:{region}:{account}:{name}")
}

/// The topic's access policy: this account's alarms of this platform may publish (CloudWatch's
/// confused-deputy guard: source account and source alarm ARN). Principals of the account keep
/// the access their IAM policies give them; nobody else gets any.
pub fn policy(topic_arn: &str, account: &str, alarm_arn_pattern: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "CloudWatchAlarmsPublish",
            "Effect": "Allow",
            "Principal": { "Service": "cloudwatch.amazonaws.com" },
            "Action": "sns:Publish",
            "Resource": topic_arn,
            "Condition": {
                "StringEquals": { "aws:SourceAccount": account },
                "ArnLike": { "aws:SourceArn": alarm_arn_pattern },
            },
        }],
    })
}

/// The topic to have.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub name: String,
    /// Its derived ARN ([`arn`]).
    pub arn: String,
    /// The key its messages are encrypted with; `None` leaves the topic's key as it is.
    pub kms_key: Option<String>,
    pub policy: Value,
    pub tags: BTreeMap<String, String>,
}

/// What Tenantry owns of a live topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    pub kms_key: Option<String>,
    /// `Null` when it has none or it is not JSON.
    pub policy: Value,
    pub tags: BTreeMap<String, String>,
}

impl Desired {
    /// The owned fields of `live` that differ from this.
    pub fn differences(&self, live: &Live) -> Vec<Difference> {
        let mut d = Differences::default();
        if let Some(key) = &self.kms_key {
            let same = live.kms_key.as_deref().is_some_and(|k| same_key(key, k));
            d.check("kmsMasterKeyId", json!(key), json!(live.kms_key), same);
        }
        let same = policies::same_policy(&self.policy, &live.policy);
        d.check("policy", self.policy.clone(), live.policy.clone(), same);
        d.tags(&self.tags, &live.tags);
        d.0
    }
}

/// The topic at `arn` with its tags; `None` when it does not exist.
pub async fn find(sns: &aws_sdk_sns::Client, arn: &str) -> Result<Option<Live>, FunctionError> {
    let attributes = match sns.get_topic_attributes().topic_arn(arn).send().await {
        Ok(out) => out.attributes.unwrap_or_default(),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(aws_error("sns:GetTopicAttributes", e)),
    };
    let tags = sns
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|e| aws_error("sns:ListTagsForResource", e))?;
    Ok(Some(Live {
        kms_key: attributes.get(ATTR_KMS).filter(|k| !k.is_empty()).cloned(),
        policy: attributes
            .get(ATTR_POLICY)
            .and_then(|p| policies::parse_returned(p))
            .unwrap_or(Value::Null),
        tags: tags
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect(),
    }))
}

/// Creates the topic with its key, policy and tags; its ARN.
pub async fn create(sns: &aws_sdk_sns::Client, desired: &Desired) -> Result<String, FunctionError> {
    let mut attributes = HashMap::from([(ATTR_POLICY.to_owned(), desired.policy.to_string())]);
    if let Some(key) = &desired.kms_key {
        attributes.insert(ATTR_KMS.to_owned(), key.clone());
    }
    let out = sns
        .create_topic()
        .name(&desired.name)
        .set_attributes(Some(attributes))
        .set_tags(Some(sns_tags(&desired.tags)?))
        .send()
        .await
        .map_err(|e| aws_error("sns:CreateTopic", e))?;
    out.topic_arn.ok_or_else(|| {
        FunctionError::new(ErrorType::Retryable, "CreateTopic returned no topic ARN")
    })
}

/// Puts one owned field back (a field of [`Desired::differences`]); tags are only added.
pub async fn repair(
    sns: &aws_sdk_sns::Client,
    desired: &Desired,
    live: &Live,
    field: &str,
) -> Result<(), FunctionError> {
    let set = |name: &str, value: String| {
        sns.set_topic_attributes()
            .topic_arn(&desired.arn)
            .attribute_name(name)
            .attribute_value(value)
            .send()
    };
    match field {
        "kmsMasterKeyId" => match &desired.kms_key {
            Some(key) => set(ATTR_KMS, key.clone()).await.map(drop),
            None => return Ok(()),
        },
        "policy" => set(ATTR_POLICY, desired.policy.to_string()).await.map(drop),
        _ => {
            let missing = missing_tags(&desired.tags, &live.tags);
            return sns
                .tag_resource()
                .resource_arn(&desired.arn)
                .set_tags(Some(sns_tags(&missing)?))
                .send()
                .await
                .map(drop)
                .map_err(|e| aws_error("sns:TagResource", e));
        }
    }
    .map_err(|e| aws_error("sns:SetTopicAttributes", e))
}

/// Deletes the topic at `arn`; one already gone counts as deleted.
pub async fn remove(sns: &aws_sdk_sns::Client, arn: &str) -> Result<(), FunctionError> {
    match sns.delete_topic().topic_arn(arn).send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(aws_error("sns:DeleteTopic", e)),
    }
}

fn sns_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, FunctionError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder().key(k).value(v).build().map_err(|e| {
                FunctionError::new(ErrorType::Terminal, format!("building SNS tag {k}: {e}"))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "111122223333";
    const PATTERN: &str =
        "arn:aws:cloudwatch:us-east-1:111122223333:alarm:tenantry-payments-prod-*";

    fn desired() -> Desired {
        let name = "tenantry-payments-prod-alarms".to_owned();
        let arn = arn("aws", "us-east-1", ACCOUNT, &name);
        Desired {
            policy: policy(&arn, ACCOUNT, PATTERN),
            name,
            arn,
            kms_key: Some("arn:aws:kms:us-east-1:111122223333:key/k-1".to_owned()),
            tags: BTreeMap::from([("tenantry:platform".to_owned(), "payments".to_owned())]),
        }
    }

    #[test]
    fn cloudwatch_may_publish_for_this_accounts_platform_alarms_only() {
        let d = desired();
        assert_eq!(
            d.arn,
            "arn:aws:sns:us-east-1:111122223333:tenantry-payments-prod-alarms"
        );
        let statements = d.policy["Statement"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(statements.len(), 1);
        let s = &statements[0];
        assert_eq!(s["Effect"], "Allow");
        assert_eq!(s["Principal"]["Service"], "cloudwatch.amazonaws.com");
        assert_eq!(s["Action"], "sns:Publish");
        assert_eq!(s["Resource"], d.arn.as_str());
        assert_eq!(s["Condition"]["StringEquals"]["aws:SourceAccount"], ACCOUNT);
        assert_eq!(s["Condition"]["ArnLike"]["aws:SourceArn"], PATTERN);
        // As SNS returns it (a JSON string), it compares equal.
        let returned = policies::parse_returned(&d.policy.to_string()).unwrap_or_default();
        assert!(policies::same_policy(&d.policy, &returned));
    }

    #[test]
    fn a_key_by_id_and_foreign_tags_are_not_differences() {
        let d = desired();
        let mut tags = d.tags.clone();
        tags.insert("team".to_owned(), "payments-sre".to_owned());
        let mut live = Live {
            kms_key: Some("k-1".to_owned()),
            policy: d.policy.clone(),
            tags,
        };
        assert_eq!(d.differences(&live), []);

        live.kms_key = None;
        live.policy = Value::Null;
        live.tags.clear();
        let fields: Vec<&str> = d.differences(&live).iter().map(|x| x.field).collect();
        assert_eq!(fields, ["kmsMasterKeyId", "policy", "tags"]);
        // A topic asked to keep its key as it is has no key difference.
        let keyless = Desired { kms_key: None, ..d };
        assert!(keyless
            .differences(&live)
            .iter()
            .all(|x| x.field != "kmsMasterKeyId"));
    }
}
