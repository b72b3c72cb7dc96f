//! The platform's alarm topic `tenantry-<stem>-alarms` (only when the request names no topic).
//!
//! Found by its ARN, which is derived (account, region, name): `GetTopicAttributes` answers
//! `NotFound` when it does not exist. Created with its key, policy and tags in one call, so a
//! crash leaves either nothing or a complete topic.

use crate::resources::Kind;
use std::collections::{BTreeMap, HashMap};

use aws_sdk_sns::types::Tag;
use serde_json::{json, Value};

use super::{foreign, missing_tags, owned, same_key, Clients, Desired};
use crate::error::{ErrorType, FunctionError};
use crate::phases::aws_error;
use crate::phases::PhaseContext;
use crate::plan::Phase;
use crate::policies;
use crate::store::ResourceRecord;

const ATTR_KMS: &str = "KmsMasterKeyId";
const ATTR_POLICY: &str = "Policy";

/// `arn:<partition>:sns:<region>:<account>:<name>`.
pub fn topic_arn(partition: &str, region: &str, account: &str, name: &str) -> String {
    format!("arn:{partition}:sns:{region}:{account}:{name}")
}

/// The topic's access policy: this account's alarms of this platform may publish (CloudWatch's
/// confused-deputy guard: source account and source alarm ARN). Principals of the account keep
/// the access their IAM policies give them; nobody else gets any.
pub fn topic_policy(topic_arn: &str, account: &str, alarm_arn_pattern: &str) -> Value {
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

fn desired_policy(d: &Desired, arn: &str) -> Value {
    let alarms = d.arn("cloudwatch", &format!("alarm:{}*", d.names.alarm("")));
    topic_policy(arn, &d.account, &alarms)
}

/// Ensures the platform's topic; returns its ARN (the derived one in `observe` when missing).
pub(super) async fn ensure(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    d: &Desired,
) -> Result<Option<String>, FunctionError> {
    let name = d.names.sns_topic();
    let derived = topic_arn(d.partition, &d.region, &d.account, &name);
    let resource = format!("sns:topic/{name}");
    let policy = desired_policy(d, &derived);
    let Some(attributes) = attributes(c, &derived).await? else {
        if !ctx.differs(&resource, "exists", json!(true), json!(false)) {
            return Ok(Some(derived));
        }
        let arn = create(c, d, &name, &policy).await?;
        record(ctx, d, &name, &arn).await?;
        return Ok(Some(arn));
    };
    let tags = list_tags(c, &derived).await?;
    if !owned(&tags, &d.platform_id) {
        return Err(foreign("SNS topic", &derived, &d.platform_id));
    }
    record(ctx, d, &name, &derived).await?;
    if let Some(key) = &d.data_key {
        let actual = attributes.get(ATTR_KMS).filter(|k| !k.is_empty());
        let same = actual.is_some_and(|k| same_key(key, k));
        if !same && ctx.differs(&resource, "kmsMasterKeyId", json!(key), json!(actual)) {
            set_attribute(c, &derived, ATTR_KMS, key).await?;
        }
    }
    let actual = attributes
        .get(ATTR_POLICY)
        .and_then(|p| policies::parse_returned(p))
        .unwrap_or(Value::Null);
    if !policies::same_policy(&policy, &actual)
        && ctx.differs(&resource, "policy", policy.clone(), actual)
    {
        set_attribute(c, &derived, ATTR_POLICY, &policy.to_string()).await?;
    }
    let missing = missing_tags(&d.tags, &tags);
    if !missing.is_empty() && ctx.differs(&resource, "tags", json!(missing), json!(tags)) {
        c.sns
            .tag_resource()
            .resource_arn(&derived)
            .set_tags(Some(sns_tags(&missing)?))
            .send()
            .await
            .map_err(|e| aws_error("sns:TagResource", e))?;
    }
    Ok(Some(derived))
}

async fn record(
    ctx: &mut PhaseContext<'_>,
    d: &Desired,
    name: &str,
    arn: &str,
) -> Result<(), FunctionError> {
    let mut record = ResourceRecord::new(Kind::Topic, name, Phase::Observability.as_str());
    record.arn = Some(arn.to_owned());
    record.tags = d.tags.clone();
    ctx.record(record).await
}

async fn create(
    c: &Clients,
    d: &Desired,
    name: &str,
    policy: &Value,
) -> Result<String, FunctionError> {
    let mut attributes = HashMap::from([(ATTR_POLICY.to_owned(), policy.to_string())]);
    if let Some(key) = &d.data_key {
        attributes.insert(ATTR_KMS.to_owned(), key.clone());
    }
    let out = c
        .sns
        .create_topic()
        .name(name)
        .set_attributes(Some(attributes))
        .set_tags(Some(sns_tags(&d.tags)?))
        .send()
        .await
        .map_err(|e| aws_error("sns:CreateTopic", e))?;
    out.topic_arn.ok_or_else(|| {
        FunctionError::new(ErrorType::Retryable, "CreateTopic returned no topic ARN")
    })
}

async fn set_attribute(
    c: &Clients,
    arn: &str,
    name: &str,
    value: &str,
) -> Result<(), FunctionError> {
    c.sns
        .set_topic_attributes()
        .topic_arn(arn)
        .attribute_name(name)
        .attribute_value(value)
        .send()
        .await
        .map_err(|e| aws_error("sns:SetTopicAttributes", e))?;
    Ok(())
}

/// Deletes the platform's own topic if it exists and is tagged as the platform's (whatever the
/// spec says now: a request that switched to its own topic leaves ours behind until then).
pub(super) async fn delete(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    d: &Desired,
) -> Result<(), FunctionError> {
    let name = d.names.sns_topic();
    let arn = topic_arn(d.partition, &d.region, &d.account, &name);
    if attributes(c, &arn).await?.is_some() {
        let tags = list_tags(c, &arn).await?;
        if !owned(&tags, &d.platform_id) {
            return Err(foreign("SNS topic", &arn, &d.platform_id));
        }
        match c.sns.delete_topic().topic_arn(&arn).send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_not_found_exception()) => {}
            Err(e) => return Err(aws_error("sns:DeleteTopic", e)),
        }
    }
    ctx.forget(Kind::Topic, &name).await
}

/// The topic's attributes; `None` when it does not exist.
async fn attributes(
    c: &Clients,
    arn: &str,
) -> Result<Option<HashMap<String, String>>, FunctionError> {
    match c.sns.get_topic_attributes().topic_arn(arn).send().await {
        Ok(out) => Ok(Some(out.attributes.unwrap_or_default())),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error("sns:GetTopicAttributes", e)),
    }
}

async fn list_tags(c: &Clients, arn: &str) -> Result<BTreeMap<String, String>, FunctionError> {
    let out = c
        .sns
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|e| aws_error("sns:ListTagsForResource", e))?;
    Ok(out
        .tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect())
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

    #[test]
    fn cloudwatch_may_publish_for_this_accounts_platform_alarms_only() {
        let arn = topic_arn(
            "aws",
            "us-east-1",
            "111122223333",
            "tenantry-payments-prod-alarms",
        );
        assert_eq!(
            arn,
            "arn:aws:sns:us-east-1:111122223333:tenantry-payments-prod-alarms"
        );
        let pattern = "arn:aws:cloudwatch:us-east-1:111122223333:alarm:tenantry-payments-prod-*";
        let policy = topic_policy(&arn, "111122223333", pattern);
        let statements = policy["Statement"].as_array().cloned().unwrap_or_default();
        assert_eq!(statements.len(), 1);
        let s = &statements[0];
        assert_eq!(s["Effect"], "Allow");
        assert_eq!(s["Principal"]["Service"], "cloudwatch.amazonaws.com");
        assert_eq!(s["Action"], "sns:Publish");
        assert_eq!(s["Resource"], arn.as_str());
        assert_eq!(
            s["Condition"]["StringEquals"]["aws:SourceAccount"],
            "111122223333"
        );
        assert_eq!(s["Condition"]["ArnLike"]["aws:SourceArn"], pattern);
        // As SNS returns it (a JSON string), it compares equal.
        let returned = policies::parse_returned(&policy.to_string()).unwrap_or_default();
        assert!(policies::same_policy(&policy, &returned));
    }
}
