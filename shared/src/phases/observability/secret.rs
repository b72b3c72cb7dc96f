//! The platform configuration secret `tenantry/<stem>/platform-config`.
//!
//! It holds what a tenant pipeline or an operator needs to reach the platform and nothing that
//! grants access: cluster name, endpoint and CA certificate, OIDC issuer, VPC and subnets, region
//! ([`document`]). It lives in Secrets Manager (encrypted with the platform's data key) so that
//! external-secrets and IAM policies scoped to `tenantry/<stem>/*` can hand it out. Its value is
//! never logged: drift on it names the differing keys only.
//!
//! Deletion uses a recovery window of [`RECOVERY_WINDOW_DAYS`] (the minimum) rather than
//! `ForceDeleteWithoutRecovery`: the value holds no credential, so keeping it recoverable for a
//! week after a mistaken decommission costs nothing, and it matches how the platform's KMS keys
//! are retired (scheduled, not destroyed). Until the window ends the secret still exists, tagged,
//! with a `DeletedDate` (`ListSecrets` shows it with `IncludePlannedDeletion` only), and
//! `CreateSecret` of the same name fails; so `ensure` looks the secret up with `DescribeSecret`
//! first and restores one pending deletion (`RestoreSecret`) before converging it, which makes a
//! re-provision of the platform within the window work.

use crate::resources::Kind;
use std::collections::BTreeMap;

use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
use aws_sdk_secretsmanager::types::Tag;
use serde_json::{json, Map, Value};

use super::{foreign, missing_tags, owned, same_key, Clients, Desired};
use crate::error::{ErrorType, FunctionError};
use crate::naming::Names;
use crate::phases::aws_error;
use crate::phases::outputs::{self, Output, OutputMap};
use crate::phases::PhaseContext;
use crate::plan::Phase;
use crate::spec::PlatformSpec;
use crate::store::ResourceRecord;

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

fn description(names: &Names) -> String {
    format!(
        "Tenantry {}: connection facts of the platform (cluster endpoint and CA, OIDC issuer, \
         VPC, subnets); holds no credential",
        names.stem()
    )
}

fn tags_of(s: &DescribeSecretOutput) -> BTreeMap<String, String> {
    s.tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn secret_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The document `ensure` writes; a missing earlier output is terminal there.
fn wanted(d: &Desired) -> Result<&Value, FunctionError> {
    d.secret
        .as_ref()
        .map_err(|why| FunctionError::new(ErrorType::Terminal, why.clone()))
}

/// Ensures the secret; returns its ARN (`None` in `observe` when it does not exist).
pub(super) async fn ensure(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    d: &Desired,
) -> Result<Option<String>, FunctionError> {
    let name = d.names.platform_secret();
    let resource = format!("secretsmanager:secret/{name}");
    let Some(found) = describe(c, &name).await? else {
        if !ctx.differs(&resource, "exists", json!(true), json!(false)) {
            return Ok(None);
        }
        let arn = create(c, d, &name).await?;
        record(ctx, d, &name, &arn).await?;
        return Ok(Some(arn));
    };
    let tags = tags_of(&found);
    if !owned(&tags, &d.platform_id) {
        return Err(foreign("secret", &name, &d.platform_id));
    }
    let arn = found.arn().unwrap_or_default().to_owned();
    record(ctx, d, &name, &arn).await?;
    if !restore_if_deleted(ctx, c, &resource, &found).await? {
        // Pending deletion: its value cannot be read; restoring it is `ensure`'s job.
        return Ok(Some(arn));
    }
    let missing = missing_tags(&d.tags, &tags);
    if !missing.is_empty() && ctx.differs(&resource, "tags", json!(missing), json!(tags)) {
        c.secrets
            .tag_resource()
            .secret_id(&arn)
            .set_tags(Some(secret_tags(&missing)))
            .send()
            .await
            .map_err(|e| aws_error("secretsmanager:TagResource", e))?;
    }
    converge_value(ctx, c, d, &resource, &found).await?;
    Ok(Some(arn))
}

/// A secret pending deletion is restored (`ensure`) or reported (`observe`: then false, as its
/// value cannot be read).
async fn restore_if_deleted(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    resource: &str,
    found: &DescribeSecretOutput,
) -> Result<bool, FunctionError> {
    let Some(deleted) = found.deleted_date() else {
        return Ok(true);
    };
    if !ctx.differs(
        resource,
        "deletedDate",
        Value::Null,
        json!(deleted.to_string()),
    ) {
        return Ok(false);
    }
    c.secrets
        .restore_secret()
        .secret_id(found.arn().unwrap_or_default())
        .send()
        .await
        .map_err(|e| aws_error("secretsmanager:RestoreSecret", e))?;
    Ok(true)
}

/// Brings the key and the value to the desired ones: a differing key takes a new version under
/// the new key (with the desired value), else a differing value a new version.
async fn converge_value(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    d: &Desired,
    resource: &str,
    found: &DescribeSecretOutput,
) -> Result<(), FunctionError> {
    let arn = found.arn().unwrap_or_default();
    let key_differs = d.data_key.as_deref().is_some_and(|want| {
        !found
            .kms_key_id()
            .is_some_and(|actual| same_key(want, actual))
    });
    let value = match &d.secret {
        Ok(doc) => Some(doc),
        Err(_) if ctx.writes() => Some(wanted(d)?),
        // observe before the cluster exists: the value is not compared.
        Err(_) => None,
    };
    let keys = match value {
        Some(doc) => differing_keys(doc, &current_value(c, arn).await?),
        None => Vec::new(),
    };
    if key_differs
        && ctx.differs(
            resource,
            "kmsKeyId",
            json!(d.data_key),
            json!(found.kms_key_id()),
        )
    {
        c.secrets
            .update_secret()
            .secret_id(arn)
            .set_kms_key_id(d.data_key.clone())
            .secret_string(wanted(d)?.to_string())
            .send()
            .await
            .map_err(|e| aws_error("secretsmanager:UpdateSecret", e))?;
    } else if !keys.is_empty()
        && ctx.differs(resource, "value", json!({ "keys": keys }), Value::Null)
    {
        c.secrets
            .put_secret_value()
            .secret_id(arn)
            .secret_string(wanted(d)?.to_string())
            .send()
            .await
            .map_err(|e| aws_error("secretsmanager:PutSecretValue", e))?;
    }
    Ok(())
}

async fn record(
    ctx: &mut PhaseContext<'_>,
    d: &Desired,
    name: &str,
    arn: &str,
) -> Result<(), FunctionError> {
    let mut record = ResourceRecord::new(Kind::Secret, name, Phase::Observability.as_str());
    record.arn = Some(arn.to_owned()).filter(|a| !a.is_empty());
    record.tags = d.tags.clone();
    ctx.record(record).await
}

/// Creates the secret with its key, value and tags in one call.
async fn create(c: &Clients, d: &Desired, name: &str) -> Result<String, FunctionError> {
    let out = c
        .secrets
        .create_secret()
        .name(name)
        .description(description(&d.names))
        .set_kms_key_id(d.data_key.clone())
        .secret_string(wanted(d)?.to_string())
        .set_tags(Some(secret_tags(&d.tags)))
        .send()
        .await
        .map_err(|e| aws_error("secretsmanager:CreateSecret", e))?;
    out.arn.ok_or_else(|| {
        FunctionError::new(ErrorType::Retryable, "CreateSecret returned no secret ARN")
    })
}

/// The current value as JSON (`Null` when it is not JSON, which then differs).
async fn current_value(c: &Clients, arn: &str) -> Result<Value, FunctionError> {
    let out = c
        .secrets
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| aws_error("secretsmanager:GetSecretValue", e))?;
    Ok(out
        .secret_string()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null))
}

/// Schedules the secret's deletion ([`RECOVERY_WINDOW_DAYS`]); one already pending counts as
/// gone.
pub(super) async fn delete(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    d: &Desired,
) -> Result<(), FunctionError> {
    let name = d.names.platform_secret();
    if let Some(found) = describe(c, &name).await? {
        if !owned(&tags_of(&found), &d.platform_id) {
            return Err(foreign("secret", &name, &d.platform_id));
        }
        if found.deleted_date().is_none() {
            let result = c
                .secrets
                .delete_secret()
                .secret_id(found.arn().unwrap_or(&name))
                .recovery_window_in_days(RECOVERY_WINDOW_DAYS)
                .send()
                .await;
            match result {
                Ok(_) => {}
                // Gone, or already scheduled for deletion by a concurrent run.
                Err(e)
                    if e.as_service_error().is_some_and(|s| {
                        s.is_resource_not_found_exception() || s.is_invalid_request_exception()
                    }) => {}
                Err(e) => return Err(aws_error("secretsmanager:DeleteSecret", e)),
            }
        }
    }
    ctx.forget(Kind::Secret, &name).await
}

/// The secret (pending deletion or not); `None` when it does not exist.
async fn describe(c: &Clients, name: &str) -> Result<Option<DescribeSecretOutput>, FunctionError> {
    match c.secrets.describe_secret().secret_id(name).send().await {
        Ok(out) => Ok(Some(out)),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error("secretsmanager:DescribeSecret", e)),
    }
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
