//! `secretsmanager:secret`: the platform configuration secret `tenantry/<stem>/platform-config`.
//!
//! It holds what a tenant pipeline or an operator needs to reach the platform and nothing that
//! grants access: cluster name, endpoint and CA certificate, OIDC issuer, VPC and subnets, region
//! ([`document`]). It lives in Secrets Manager (encrypted with the platform's data key) so that
//! external-secrets and IAM policies scoped to `tenantry/<stem>/*` can hand it out. Its value is
//! never logged: a difference in it names the differing keys only.
//!
//! - **Found by** its name ([`find`]: `DescribeSecret`, which also answers for a secret pending
//!   deletion). Ownership is by the tags it reads; the phase refuses a secret of the name that is
//!   not the platform's.
//! - **Desired** ([`Desired`]): the data key, the value, Tenantry's tags.
//! - **Owned fields** ([`Desired::differences`]): the tags Tenantry sets, `kmsKeyId`, and
//!   `value` (compared once [`read_value`] has read it). Left to others: other tags, rotation,
//!   resource policies, replicas.
//! - **Create, update, delete** ([`create`]: key, value and tags in one call; [`repair`];
//!   [`restore`]; [`remove`]).
//!
//! Deletion uses a recovery window of [`RECOVERY_WINDOW_DAYS`] (the minimum) rather than
//! `ForceDeleteWithoutRecovery`: the value holds no credential, so keeping it recoverable for a
//! week after a mistaken decommission costs nothing, and it matches how the platform's KMS keys
//! are retired (scheduled, not destroyed). Until the window ends the secret still exists, tagged,
//! with a `DeletedDate` (`ListSecrets` shows it with `IncludePlannedDeletion` only), and
//! `CreateSecret` of the same name fails; so the walk looks the secret up with `DescribeSecret`
//! first and restores one pending deletion ([`restore`]) before converging it, which makes a
//! re-provision of the platform within the window work.

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::types::Tag;
use serde_json::{json, Map, Value};

use super::{missing_tags, same_key, Difference, Differences};
use crate::error::{ErrorType, FunctionError};
use crate::naming::Names;
use crate::phases::aws_error;
use crate::phases::outputs::{self, Output, OutputMap};
use crate::spec::PlatformSpec;

/// Days a deleted platform secret stays recoverable (Secrets Manager allows 7-30).
pub const RECOVERY_WINDOW_DAYS: i64 = 7;
/// Version of the secret's JSON shape.
pub const SECRET_SCHEMA_VERSION: u32 = 1;

/// The secret's value: the platform's connection facts from the spec and the outputs of the
/// network and cluster phases. `Err` names the outputs that are missing.
pub fn document(spec: &PlatformSpec, names: &Names, recorded: &OutputMap) -> Result<Value, String> {
    // A value of the wrong shape counts as missing: the document is only written when complete.
    let text = |output: Output<String>| {
        output
            .get(recorded)
            .ok()
            .flatten()
            .filter(|v| !v.is_empty())
    };
    let list =
        |output: Output<Vec<String>>| output.get(recorded).ok().flatten().unwrap_or_default();
    let endpoint = text(outputs::CLUSTER_ENDPOINT);
    let ca = text(outputs::CERTIFICATE_AUTHORITY);
    let vpc = text(outputs::VPC_ID);
    let private = list(outputs::PRIVATE_SUBNET_IDS);
    let missing: Vec<&str> = [
        (outputs::CLUSTER_ENDPOINT.key, endpoint.is_none()),
        (outputs::CERTIFICATE_AUTHORITY.key, ca.is_none()),
        (outputs::VPC_ID.key, vpc.is_none()),
        (outputs::PRIVATE_SUBNET_IDS.key, private.is_empty()),
    ]
    .into_iter()
    .filter(|(_, absent)| *absent)
    .map(|(key, _)| key)
    .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the platform secret needs the outputs {missing:?} of the network and cluster phases"
        ));
    }
    let mut doc = Map::new();
    doc.insert("schemaVersion".into(), json!(SECRET_SCHEMA_VERSION));
    doc.insert("platformId".into(), json!(spec.id));
    doc.insert("environment".into(), json!(spec.environment));
    doc.insert("region".into(), json!(spec.region));
    doc.insert("clusterName".into(), json!(names.cluster()));
    doc.insert("clusterEndpoint".into(), json!(endpoint));
    doc.insert("certificateAuthority".into(), json!(ca));
    if let Some(issuer) = text(outputs::OIDC_ISSUER) {
        doc.insert("oidcIssuer".into(), json!(issuer));
    }
    doc.insert("vpcId".into(), json!(vpc));
    doc.insert("privateSubnetIds".into(), json!(private));
    doc.insert(
        "publicSubnetIds".into(),
        json!(list(outputs::PUBLIC_SUBNET_IDS)),
    );
    doc.insert("podSubnetIds".into(), json!(list(outputs::POD_SUBNET_IDS)));
    doc.insert("bucket".into(), json!(names.bucket()));
    Ok(Value::Object(doc))
}

/// The top-level keys whose values differ between two documents (a non-object counts as all).
fn differing_keys(desired: &Value, actual: &Value) -> Vec<String> {
    let empty = Map::new();
    let a = desired.as_object().unwrap_or(&empty);
    let b = actual.as_object().unwrap_or(&empty);
    let mut keys: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    if keys.is_empty() && desired != actual {
        keys.push("*".to_owned());
    }
    keys
}

/// The secret's description.
pub fn description(names: &Names) -> String {
    format!(
        "Tenantry {}: connection facts of the platform (cluster endpoint and CA, OIDC issuer, \
         VPC, subnets); holds no credential",
        names.stem()
    )
}

/// The secret to have.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub name: String,
    pub description: String,
    /// The key its versions are encrypted with; `None` leaves the secret's key as it is.
    pub kms_key: Option<String>,
    /// Its value; `None`: not compared (`observe` before the outputs it is made of exist).
    pub value: Option<Value>,
    pub tags: BTreeMap<String, String>,
}

/// What Tenantry owns of a live secret, and its address.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    pub arn: String,
    pub kms_key: Option<String>,
    /// When its deletion was scheduled; `None` unless it is pending deletion.
    pub deleted: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// `None`: not read ([`read_value`]); `Null` when it is not JSON.
    pub value: Option<Value>,
}

impl Desired {
    /// The owned fields of `live` that differ from this, in the order [`repair`] takes them.
    pub fn differences(&self, live: &Live) -> Vec<Difference> {
        let mut d = Differences::default();
        d.tags(&self.tags, &live.tags);
        if let Some(key) = &self.kms_key {
            let same = live.kms_key.as_deref().is_some_and(|k| same_key(key, k));
            d.check("kmsKeyId", json!(key), json!(live.kms_key), same);
        }
        if let (Some(want), Some(have)) = (&self.value, &live.value) {
            let keys = differing_keys(want, have);
            d.check(
                "value",
                json!({ "keys": keys }),
                Value::Null,
                keys.is_empty(),
            );
        }
        d.0
    }

    fn value(&self) -> Result<String, FunctionError> {
        self.value.as_ref().map(Value::to_string).ok_or_else(|| {
            FunctionError::new(
                ErrorType::Terminal,
                format!("the value of secret {:?} is not known yet", self.name),
            )
        })
    }
}

/// The secret named `name`, pending deletion or not (value not read); `None` when it does not
/// exist.
pub async fn find(
    sm: &aws_sdk_secretsmanager::Client,
    name: &str,
) -> Result<Option<Live>, FunctionError> {
    let found = match sm.describe_secret().secret_id(name).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(aws_error("secretsmanager:DescribeSecret", e)),
    };
    Ok(Some(Live {
        arn: found.arn().unwrap_or_default().to_owned(),
        kms_key: found.kms_key_id().map(str::to_owned),
        deleted: found.deleted_date().map(ToString::to_string),
        tags: found
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        value: None,
    }))
}

/// Reads the current value into `live` (`Null` when it is not JSON, which then differs).
pub async fn read_value(
    sm: &aws_sdk_secretsmanager::Client,
    live: &mut Live,
) -> Result<(), FunctionError> {
    let out = sm
        .get_secret_value()
        .secret_id(&live.arn)
        .send()
        .await
        .map_err(|e| aws_error("secretsmanager:GetSecretValue", e))?;
    live.value = Some(
        out.secret_string()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or(Value::Null),
    );
    Ok(())
}

/// Creates the secret with its key, value and tags in one call; its ARN.
pub async fn create(
    sm: &aws_sdk_secretsmanager::Client,
    desired: &Desired,
) -> Result<String, FunctionError> {
    let out = sm
        .create_secret()
        .name(&desired.name)
        .description(&desired.description)
        .set_kms_key_id(desired.kms_key.clone())
        .secret_string(desired.value()?)
        .set_tags(Some(secret_tags(&desired.tags)))
        .send()
        .await
        .map_err(|e| aws_error("secretsmanager:CreateSecret", e))?;
    out.arn.ok_or_else(|| {
        FunctionError::new(ErrorType::Retryable, "CreateSecret returned no secret ARN")
    })
}

/// Cancels the scheduled deletion of a secret pending deletion.
pub async fn restore(
    sm: &aws_sdk_secretsmanager::Client,
    live: &Live,
) -> Result<(), FunctionError> {
    sm.restore_secret()
        .secret_id(&live.arn)
        .send()
        .await
        .map_err(|e| aws_error("secretsmanager:RestoreSecret", e))?;
    Ok(())
}

/// Puts the owned `fields` back (fields of [`Desired::differences`]): missing tags are added; a
/// differing key takes a new version under the new key, with the desired value, which repairs
/// the value too; else a differing value takes a new version.
pub async fn repair(
    sm: &aws_sdk_secretsmanager::Client,
    desired: &Desired,
    live: &Live,
    fields: &[&str],
) -> Result<(), FunctionError> {
    if fields.contains(&"tags") {
        let missing = missing_tags(&desired.tags, &live.tags);
        sm.tag_resource()
            .secret_id(&live.arn)
            .set_tags(Some(secret_tags(&missing)))
            .send()
            .await
            .map_err(|e| aws_error("secretsmanager:TagResource", e))?;
    }
    if fields.contains(&"kmsKeyId") {
        sm.update_secret()
            .secret_id(&live.arn)
            .set_kms_key_id(desired.kms_key.clone())
            .secret_string(desired.value()?)
            .send()
            .await
            .map_err(|e| aws_error("secretsmanager:UpdateSecret", e))?;
    } else if fields.contains(&"value") {
        sm.put_secret_value()
            .secret_id(&live.arn)
            .secret_string(desired.value()?)
            .send()
            .await
            .map_err(|e| aws_error("secretsmanager:PutSecretValue", e))?;
    }
    Ok(())
}

/// Schedules the secret's deletion ([`RECOVERY_WINDOW_DAYS`]); one already pending, or gone,
/// counts as deleted.
pub async fn remove(sm: &aws_sdk_secretsmanager::Client, live: &Live) -> Result<(), FunctionError> {
    if live.deleted.is_some() {
        return Ok(());
    }
    let result = sm
        .delete_secret()
        .secret_id(&live.arn)
        .recovery_window_in_days(RECOVERY_WINDOW_DAYS)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        // Gone, or already scheduled for deletion by a concurrent run.
        Err(e)
            if e.as_service_error().is_some_and(|s| {
                s.is_resource_not_found_exception() || s.is_invalid_request_exception()
            }) =>
        {
            Ok(())
        }
        Err(e) => Err(aws_error("secretsmanager:DeleteSecret", e)),
    }
}

fn secret_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PlatformSpec {
        serde_json::from_value(json!({
            "id": "payments", "environment": "prod", "region": "us-east-1"
        }))
        .expect("spec")
    }

    fn outputs() -> BTreeMap<String, Value> {
        serde_json::from_value(json!({
            "clusterEndpoint": "https://ABC.gr7.us-east-1.eks.amazonaws.com",
            "certificateAuthority": "LS0tLS1CRUdJTi",
            "oidcIssuer": "https://oidc.eks.us-east-1.amazonaws.com/id/ABC",
            "clusterVersion": "1.35",
            "vpcId": "vpc-1",
            "privateSubnetIds": ["subnet-a", "subnet-b"],
            "publicSubnetIds": ["subnet-c"],
            "podSubnetIds": [],
            "secretsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/k",
        }))
        .expect("outputs")
    }

    #[test]
    fn the_document_holds_connection_facts_only() {
        let s = spec();
        let doc = document(&s, &Names::new(&s), &outputs()).expect("document");
        let mut keys: Vec<&str> = doc
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "bucket",
                "certificateAuthority",
                "clusterEndpoint",
                "clusterName",
                "environment",
                "oidcIssuer",
                "platformId",
                "podSubnetIds",
                "privateSubnetIds",
                "publicSubnetIds",
                "region",
                "schemaVersion",
                "vpcId",
            ]
        );
        assert_eq!(doc["clusterName"], "payments-prod");
        assert_eq!(doc["privateSubnetIds"], json!(["subnet-a", "subnet-b"]));
        // Nothing resembling a credential, and no key ARN (a key is not a connection fact).
        let text = doc.to_string().to_lowercase();
        for word in ["password", "token", "secretkey", "arn:aws:kms"] {
            assert!(!text.contains(word), "{word} in {text}");
        }
    }

    #[test]
    fn missing_outputs_are_named_and_the_issuer_is_optional() {
        let s = spec();
        let n = Names::new(&s);
        let mut o = outputs();
        o.remove("oidcIssuer");
        let doc = document(&s, &n, &o).expect("document without issuer");
        assert!(doc.get("oidcIssuer").is_none());
        o.remove("vpcId");
        o.insert("privateSubnetIds".into(), json!([]));
        let err = document(&s, &n, &o).unwrap_err();
        assert!(
            err.contains("vpcId") && err.contains("privateSubnetIds"),
            "{err}"
        );
        assert!(!err.contains("clusterEndpoint"), "{err}");
    }

    #[test]
    fn differences_name_keys_not_values() {
        let a = json!({ "vpcId": "vpc-1", "region": "us-east-1" });
        let b = json!({ "vpcId": "vpc-2", "region": "us-east-1", "extra": 1 });
        assert_eq!(differing_keys(&a, &b), ["extra", "vpcId"]);
        assert!(differing_keys(&a, &a).is_empty());
        assert_eq!(differing_keys(&a, &Value::Null), ["region", "vpcId"]);
        assert_eq!(differing_keys(&json!([1]), &json!([2])), ["*"]);
        assert!(description(&Names::new(&spec())).contains("holds no credential"));
    }
}
