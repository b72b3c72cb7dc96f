//! `ecr:repository`: a container image repository, of the platform or of one tenant.
//!
//! - **Found by** its name (`Names::repository`, `Names::tenant_repository`). It is this
//!   platform's when tagged `tenantry:platform=<id>`: the tags go on with `CreateRepository`
//!   itself, so a repository of the name without them is someone else's and is never adopted,
//!   changed or deleted.
//! - **Desired** ([`Desired`]): from the request's `RepositorySpec`, the key that encrypts it and
//!   the roles its policy names.
//! - **Owned fields** ([`Desired::differences`]): tag mutability, scan on push, the KMS key, the
//!   lifecycle policy, the repository policy, and Tenantry's tags. Left to others: the images,
//!   other tags, and registry-level (enhanced) scanning, an account-wide setting.
//! - **Create, update, delete** ([`converge`], [`remove`]). The key is fixed at creation: a
//!   different key is reported, and not repaired (that would mean a new repository, without
//!   the images).

use std::collections::BTreeMap;

use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability,
    Repository, Tag,
};
use serde_json::{json, Value};

use super::{Difference, Differences, Kind};
use crate::error::{ErrorType, FunctionError};
use crate::naming::TAG_PLATFORM;
use crate::phases::{aws_error, PhaseContext};
use crate::policies::{parse_returned, same_policy};
use crate::spec::RepositorySpec;
use crate::store::ResourceRecord;

/// What a repository should be.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub name: String,
    pub kms_key_arn: String,
    pub mutable_tags: bool,
    pub keep_images: u16,
    /// The repository policy ([`crate::policies::registry::repository_policy`]).
    pub policy: Value,
    pub tags: BTreeMap<String, String>,
}

/// What Tenantry owns of a live repository, and its address.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    pub arn: String,
    pub uri: String,
    /// As ECR reports it. Only `MUTABLE` and `IMMUTABLE` are ever desired: the
    /// `*_WITH_EXCLUSION` variants (tags exempt from the rule) differ from both.
    pub tag_mutability: ImageTagMutability,
    pub scan_on_push: bool,
    pub kms_key: Option<String>,
    pub lifecycle: Option<Value>,
    pub policy: Option<Value>,
    pub tags: BTreeMap<String, String>,
}

impl Desired {
    pub fn new(
        name: String,
        spec: &RepositorySpec,
        kms_key_arn: String,
        policy: Value,
        tags: BTreeMap<String, String>,
    ) -> Desired {
        Desired {
            name,
            kms_key_arn,
            mutable_tags: spec.mutable_tags,
            keep_images: spec.keep_images,
            policy,
            tags,
        }
    }

    /// Keeps the newest `keep_images` images, tagged or not; ECR expires the rest.
    pub fn lifecycle(&self) -> Value {
        json!({ "rules": [{
            "rulePriority": 1,
            "description": format!("keep the newest {} images", self.keep_images),
            "selection": {
                "tagStatus": "any",
                "countType": "imageCountMoreThan",
                "countNumber": self.keep_images,
            },
            "action": { "type": "expire" },
        }] })
    }

    /// The owned fields of `live` that differ from this.
    pub fn differences(&self, live: &Live) -> Vec<Difference> {
        let mut out = Differences::default();
        out.check(
            "imageTagMutability",
            json!(mutability(self.mutable_tags).as_str()),
            json!(live.tag_mutability.as_str()),
            live.tag_mutability == mutability(self.mutable_tags),
        );
        out.check(
            "scanOnPush",
            json!(true),
            json!(live.scan_on_push),
            live.scan_on_push,
        );
        out.check(
            "kmsKey",
            json!(self.kms_key_arn),
            json!(live.kms_key),
            live.kms_key.as_deref() == Some(self.kms_key_arn.as_str()),
        );
        let lifecycle = self.lifecycle();
        let same = live.lifecycle.as_ref() == Some(&lifecycle);
        let actual = live.lifecycle.clone().unwrap_or(Value::Null);
        out.check("lifecyclePolicy", lifecycle, actual, same);
        let same = live
            .policy
            .as_ref()
            .is_some_and(|p| same_policy(p, &self.policy));
        let actual = live.policy.clone().unwrap_or(Value::Null);
        out.check("repositoryPolicy", self.policy.clone(), actual, same);
        out.tags(&self.tags, &live.tags);
        out.0
    }
}

fn mutability(mutable: bool) -> ImageTagMutability {
    match mutable {
        true => ImageTagMutability::Mutable,
        false => ImageTagMutability::Immutable,
    }
}

/// The repository named `name`, if it exists, with its owned fields.
pub async fn find(ecr: &aws_sdk_ecr::Client, name: &str) -> Result<Option<Live>, FunctionError> {
    let found = ecr
        .describe_repositories()
        .repository_names(name)
        .send()
        .await;
    let repo = match found {
        Ok(out) => match out.repositories.unwrap_or_default().into_iter().next() {
            Some(repo) => repo,
            None => return Ok(None),
        },
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_repository_not_found_exception()) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(aws_error("ecr:DescribeRepositories", e)),
    };
    let mut live = from_repository(&repo);
    read_attached(ecr, name, &mut live).await?;
    Ok(Some(live))
}

/// Reads what `DescribeRepositories` leaves out into `live`: its tags, lifecycle policy and
/// repository policy (none when it has none).
async fn read_attached(
    ecr: &aws_sdk_ecr::Client,
    name: &str,
    live: &mut Live,
) -> Result<(), FunctionError> {
    let tags = ecr
        .list_tags_for_resource()
        .resource_arn(&live.arn)
        .send()
        .await
        .map_err(|e| aws_error("ecr:ListTagsForResource", e))?;
    live.tags = tags
        .tags
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.key, t.value))
        .collect();
    live.lifecycle = match ecr
        .get_lifecycle_policy()
        .repository_name(name)
        .send()
        .await
    {
        Ok(out) => out
            .lifecycle_policy_text
            .as_deref()
            .and_then(parse_returned),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_lifecycle_policy_not_found_exception()) =>
        {
            None
        }
        Err(e) => return Err(aws_error("ecr:GetLifecyclePolicy", e)),
    };
    live.policy = match ecr
        .get_repository_policy()
        .repository_name(name)
        .send()
        .await
    {
        Ok(out) => out.policy_text.as_deref().and_then(parse_returned),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_repository_policy_not_found_exception()) =>
        {
            None
        }
        Err(e) => return Err(aws_error("ecr:GetRepositoryPolicy", e)),
    };
    Ok(())
}

/// The fields `DescribeRepositories` and `CreateRepository` return (no tags or policies).
fn from_repository(repo: &Repository) -> Live {
    let encryption = repo.encryption_configuration();
    Live {
        arn: repo.repository_arn().unwrap_or_default().to_owned(),
        uri: repo.repository_uri().unwrap_or_default().to_owned(),
        tag_mutability: repo
            .image_tag_mutability()
            .cloned()
            .unwrap_or_else(|| ImageTagMutability::from("")),
        scan_on_push: repo
            .image_scanning_configuration()
            .is_some_and(|s| s.scan_on_push()),
        kms_key: encryption
            .filter(|e| e.encryption_type() == &EncryptionType::Kms)
            .and_then(|e| e.kms_key().map(str::to_owned)),
        lifecycle: None,
        policy: None,
        tags: BTreeMap::new(),
    }
}

/// Converges the repository (`tenant`'s, if given) to `desired` and records it; its URI, or
/// None in `observe` when it does not exist. A repository of the name that another platform or
/// nobody owns is refused.
pub(crate) async fn converge(
    ctx: &mut PhaseContext<'_>,
    ecr: &aws_sdk_ecr::Client,
    desired: &Desired,
    tenant: Option<&str>,
) -> Result<Option<String>, FunctionError> {
    let resource = format!("{}/{}", Kind::Repository, desired.name);
    let live = match find(ecr, &desired.name).await? {
        Some(live) => {
            refuse_foreign(ctx, &desired.name, &live)?;
            live
        }
        None => {
            if !ctx.differs(&resource, "exists", json!(true), json!(false)) {
                return Ok(None);
            }
            // `create` may find the name taken by a concurrent creator: that one's owner counts.
            let live = create(ecr, desired).await?;
            refuse_foreign(ctx, &desired.name, &live)?;
            live
        }
    };
    let mut record = ResourceRecord::new(Kind::Repository, &desired.name, ctx.phase.as_str());
    record.arn = Some(live.arn.clone());
    record.tenant = tenant.map(str::to_owned);
    record.tags = desired.tags.clone();
    ctx.record(record).await?;
    for field in ctx.repairs(&resource, desired.differences(&live)) {
        repair(ecr, desired, &live, field).await?;
    }
    Ok(Some(live.uri))
}

fn refuse_foreign(ctx: &PhaseContext<'_>, name: &str, live: &Live) -> Result<(), FunctionError> {
    let owner = live.tags.get(TAG_PLATFORM).map(String::as_str);
    if owner == Some(ctx.platform_id()) {
        return Ok(());
    }
    Err(FunctionError::new(
        ErrorType::Terminal,
        format!(
            "ECR repository {name} exists but is not tagged {TAG_PLATFORM}={} (owner: {owner:?}); \
             refusing to adopt it",
            ctx.platform_id()
        ),
    ))
}

async fn create(ecr: &aws_sdk_ecr::Client, desired: &Desired) -> Result<Live, FunctionError> {
    let encryption = EncryptionConfiguration::builder()
        .encryption_type(EncryptionType::Kms)
        .kms_key(&desired.kms_key_arn)
        .build()
        .map_err(|e| built("encryption configuration", e))?;
    let out = ecr
        .create_repository()
        .repository_name(&desired.name)
        .image_tag_mutability(mutability(desired.mutable_tags))
        .image_scanning_configuration(
            ImageScanningConfiguration::builder()
                .scan_on_push(true)
                .build(),
        )
        .encryption_configuration(encryption)
        .set_tags(Some(ecr_tags(&desired.tags)?))
        .send()
        .await;
    let repo = match out {
        Ok(out) => out.repository.ok_or_else(|| {
            FunctionError::new(
                ErrorType::Retryable,
                format!(
                    "ECR created repository {} without describing it",
                    desired.name
                ),
            )
        })?,
        // Created by a concurrent run: read it back (it carries the tags it was created with).
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_repository_already_exists_exception()) =>
        {
            return find(ecr, &desired.name).await?.ok_or_else(|| {
                FunctionError::new(
                    ErrorType::Retryable,
                    format!("ECR repository {} exists and cannot be read", desired.name),
                )
            })
        }
        Err(e) => return Err(aws_error("ecr:CreateRepository", e)),
    };
    let mut live = from_repository(&repo);
    live.tags = desired.tags.clone();
    Ok(live)
}

async fn repair(
    ecr: &aws_sdk_ecr::Client,
    desired: &Desired,
    live: &Live,
    field: &str,
) -> Result<(), FunctionError> {
    let name = &desired.name;
    match field {
        "imageTagMutability" => ecr
            .put_image_tag_mutability()
            .repository_name(name)
            .image_tag_mutability(mutability(desired.mutable_tags))
            .send()
            .await
            .map(drop)
            .map_err(|e| aws_error("ecr:PutImageTagMutability", e)),
        "scanOnPush" => ecr
            .put_image_scanning_configuration()
            .repository_name(name)
            .image_scanning_configuration(
                ImageScanningConfiguration::builder()
                    .scan_on_push(true)
                    .build(),
            )
            .send()
            .await
            .map(drop)
            .map_err(|e| aws_error("ecr:PutImageScanningConfiguration", e)),
        "lifecyclePolicy" => ecr
            .put_lifecycle_policy()
            .repository_name(name)
            .lifecycle_policy_text(desired.lifecycle().to_string())
            .send()
            .await
            .map(drop)
            .map_err(|e| aws_error("ecr:PutLifecyclePolicy", e)),
        "repositoryPolicy" => ecr
            .set_repository_policy()
            .repository_name(name)
            .policy_text(desired.policy.to_string())
            .send()
            .await
            .map(drop)
            .map_err(|e| aws_error("ecr:SetRepositoryPolicy", e)),
        "tags" => ecr
            .tag_resource()
            .resource_arn(&live.arn)
            .set_tags(Some(ecr_tags(&desired.tags)?))
            .send()
            .await
            .map(drop)
            .map_err(|e| aws_error("ecr:TagResource", e)),
        _ => {
            // The key: see the module docs.
            tracing::warn!(repository = %name, field, "not repairable in place; left as it is");
            Ok(())
        }
    }
}

/// Deletes the repository with its images and forgets it. Already gone is success; a
/// repository of the name that is not this platform's is left alone (and forgotten).
pub(crate) async fn remove(
    ctx: &mut PhaseContext<'_>,
    ecr: &aws_sdk_ecr::Client,
    name: &str,
) -> Result<(), FunctionError> {
    if let Some(live) = find(ecr, name).await? {
        match refuse_foreign(ctx, name, &live) {
            Err(e) => tracing::warn!(repository = %name, "not deleted: {e}"),
            Ok(()) => {
                let deleted = ecr
                    .delete_repository()
                    .repository_name(name)
                    .force(true)
                    .send()
                    .await;
                match deleted {
                    Ok(_) => {}
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|e| e.is_repository_not_found_exception()) => {}
                    Err(e) => return Err(aws_error("ecr:DeleteRepository", e)),
                }
            }
        }
    }
    ctx.forget(Kind::Repository, name).await
}

fn ecr_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, FunctionError> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| built("tags", e))
}

fn built(what: &str, e: aws_smithy_types::error::operation::BuildError) -> FunctionError {
    FunctionError::new(ErrorType::Terminal, format!("building the ECR {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired() -> Desired {
        let spec = RepositorySpec {
            name: "api".into(),
            mutable_tags: false,
            keep_images: 30,
        };
        Desired::new(
            "tenantry/payments-prod/api".into(),
            &spec,
            "arn:aws:kms:eu-west-1:123456789012:key/k".into(),
            json!({"Version": "2012-10-17", "Statement": [{"Sid": "NodesPull", "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:role/n"},
                "Action": ["ecr:BatchGetImage"]}]}),
            BTreeMap::from([("tenantry:platform".to_owned(), "payments".to_owned())]),
        )
    }

    fn converged(d: &Desired) -> Live {
        Live {
            arn: "arn".into(),
            uri: "uri".into(),
            tag_mutability: mutability(d.mutable_tags),
            scan_on_push: true,
            kms_key: Some(d.kms_key_arn.clone()),
            lifecycle: Some(d.lifecycle()),
            // As ECR may return it: a one-element list as its element.
            policy: Some(
                json!({"Version": "2012-10-17", "Statement": {"Sid": "NodesPull",
                "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/n"},
                "Action": "ecr:BatchGetImage"}}),
            ),
            tags: BTreeMap::from([
                ("tenantry:platform".to_owned(), "payments".to_owned()),
                ("added-by-someone".to_owned(), "x".to_owned()),
            ]),
        }
    }

    #[test]
    fn a_converged_repository_has_no_difference_and_foreign_tags_are_not_drift() {
        let d = desired();
        assert_eq!(d.differences(&converged(&d)), vec![]);
    }

    #[test]
    fn each_owned_field_is_named_when_it_differs() {
        let d = desired();
        let mut live = converged(&d);
        live.tag_mutability = ImageTagMutability::ImmutableWithExclusion;
        live.scan_on_push = false;
        live.kms_key = None;
        live.lifecycle = None;
        live.policy = Some(json!({"Statement": []}));
        live.tags.clear();
        let fields: Vec<&str> = d.differences(&live).iter().map(|x| x.field).collect();
        assert_eq!(
            fields,
            [
                "imageTagMutability",
                "scanOnPush",
                "kmsKey",
                "lifecyclePolicy",
                "repositoryPolicy",
                "tags"
            ]
        );
    }

    #[test]
    fn the_lifecycle_policy_expires_all_but_the_newest_images() {
        let rule = &desired().lifecycle()["rules"][0];
        assert_eq!(rule["selection"]["countType"], "imageCountMoreThan");
        assert_eq!(rule["selection"]["countNumber"], 30);
        assert_eq!(rule["selection"]["tagStatus"], "any");
        assert_eq!(rule["action"]["type"], "expire");
    }
}
