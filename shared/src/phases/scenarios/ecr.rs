//! ECR repositories: settings, lifecycle and repository policies, tags.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_ecr::operation::describe_repositories::DescribeRepositoriesError;
use aws_sdk_ecr::operation::get_lifecycle_policy::GetLifecyclePolicyError;
use aws_sdk_ecr::operation::get_repository_policy::GetRepositoryPolicyError;
use aws_sdk_ecr::types::error::{
    LifecyclePolicyNotFoundException, RepositoryNotFoundException,
    RepositoryPolicyNotFoundException,
};
use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability,
    Repository as SdkRepository, Tag,
};
use aws_sdk_ecr::Client;
use aws_smithy_mocks::{MockResponse as R, Rule};

use super::{answer, Calls, ACCOUNT};

/// One repository, as ECR keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct Repository {
    pub mutable_tags: bool,
    pub scan_on_push: bool,
    pub kms_key: Option<String>,
    pub lifecycle: Option<String>,
    pub policy: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// The repositories of one account and region, by name.
#[derive(Clone, Default)]
pub struct EcrDouble {
    repositories: Arc<Mutex<BTreeMap<String, Repository>>>,
    calls: Calls,
}

fn arn(name: &str) -> String {
    format!("arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{name}")
}

/// The repository URI of `name`.
pub fn uri(name: &str) -> String {
    format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{name}")
}

fn not_found() -> RepositoryNotFoundException {
    RepositoryNotFoundException::builder()
        .message("no such repository")
        .build()
}

impl EcrDouble {
    pub fn new(calls: &Calls) -> Self {
        EcrDouble {
            calls: calls.clone(),
            ..Default::default()
        }
    }

    pub fn repositories(&self) -> BTreeMap<String, Repository> {
        self.repositories.lock().expect("ecr").clone()
    }

    /// Creates or changes a repository out of band.
    pub fn put(&self, name: &str, repo: Repository) {
        self.repositories
            .lock()
            .expect("ecr")
            .insert(name.to_owned(), repo);
    }

    /// Changes a repository out of band.
    pub fn edit(&self, name: &str, change: impl FnOnce(&mut Repository)) {
        change(
            self.repositories
                .lock()
                .expect("ecr")
                .get_mut(name)
                .expect("repository"),
        );
    }

    /// Runs `f` on the repository `name` (from a name or an ARN); None when there is none.
    fn with<T>(&self, name: Option<&str>, f: impl FnOnce(&mut Repository) -> T) -> Option<T> {
        let name = name.unwrap_or_default();
        let name = name.rsplit_once(":repository/").map_or(name, |(_, n)| n);
        self.repositories.lock().expect("ecr").get_mut(name).map(f)
    }

    fn described(name: &str, r: &Repository) -> SdkRepository {
        let mutability = match r.mutable_tags {
            true => ImageTagMutability::Mutable,
            false => ImageTagMutability::Immutable,
        };
        let encryption = match &r.kms_key {
            Some(key) => EncryptionConfiguration::builder()
                .encryption_type(EncryptionType::Kms)
                .kms_key(key),
            None => EncryptionConfiguration::builder().encryption_type(EncryptionType::Aes256),
        };
        SdkRepository::builder()
            .repository_name(name)
            .repository_arn(arn(name))
            .repository_uri(uri(name))
            .image_tag_mutability(mutability)
            .image_scanning_configuration(
                ImageScanningConfiguration::builder()
                    .scan_on_push(r.scan_on_push)
                    .build(),
            )
            .encryption_configuration(encryption.build().expect("encryption"))
            .build()
    }

    pub fn rules(&self) -> Vec<Rule> {
        use aws_sdk_ecr::operation::*;
        vec![
            answer!(
                self,
                Client::describe_repositories,
                "ecr:DescribeRepositories",
                |me, req| {
                    let all = me.repositories();
                    let mut found = Vec::new();
                    for name in req.repository_names() {
                        match all.get(name) {
                            Some(r) => found.push(EcrDouble::described(name, r)),
                            None => {
                                return R::Error(
                                    DescribeRepositoriesError::RepositoryNotFoundException(
                                        not_found(),
                                    ),
                                )
                            }
                        }
                    }
                    R::Output(
                        describe_repositories::DescribeRepositoriesOutput::builder()
                            .set_repositories(Some(found))
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::create_repository,
                "ecr:CreateRepository",
                |me, req| {
                    let name = req.repository_name().unwrap_or_default().to_owned();
                    let repo = Repository {
                        mutable_tags: req.image_tag_mutability()
                            == Some(&ImageTagMutability::Mutable),
                        scan_on_push: req
                            .image_scanning_configuration()
                            .is_some_and(|s| s.scan_on_push()),
                        kms_key: req
                            .encryption_configuration()
                            .and_then(|e| e.kms_key().map(str::to_owned)),
                        lifecycle: None,
                        policy: None,
                        tags: req
                            .tags()
                            .iter()
                            .map(|t| (t.key().to_owned(), t.value().to_owned()))
                            .collect(),
                    };
                    let described = EcrDouble::described(&name, &repo);
                    me.put(&name, repo);
                    R::Output(
                        create_repository::CreateRepositoryOutput::builder()
                            .repository(described)
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::list_tags_for_resource,
                "ecr:ListTagsForResource",
                |me, req| {
                    let tags = me
                        .with(req.resource_arn(), |r| r.tags.clone())
                        .unwrap_or_default();
                    let tags = tags
                        .iter()
                        .map(|(k, v)| Tag::builder().key(k).value(v).build().expect("tag"))
                        .collect();
                    R::Output(
                        list_tags_for_resource::ListTagsForResourceOutput::builder()
                            .set_tags(Some(tags))
                            .build(),
                    )
                }
            ),
            answer!(self, Client::tag_resource, "ecr:TagResource", |me, req| {
                let new: Vec<(String, String)> = req
                    .tags()
                    .iter()
                    .map(|t| (t.key().to_owned(), t.value().to_owned()))
                    .collect();
                me.with(req.resource_arn(), |r| r.tags.extend(new));
                R::Output(tag_resource::TagResourceOutput::builder().build())
            }),
            answer!(
                self,
                Client::get_lifecycle_policy,
                "ecr:GetLifecyclePolicy",
                |me, req| {
                    match me.with(req.repository_name(), |r| r.lifecycle.clone()) {
                        Some(Some(text)) => R::Output(
                            get_lifecycle_policy::GetLifecyclePolicyOutput::builder()
                                .lifecycle_policy_text(text)
                                .build(),
                        ),
                        _ => R::Error(GetLifecyclePolicyError::LifecyclePolicyNotFoundException(
                            LifecyclePolicyNotFoundException::builder()
                                .message("none")
                                .build(),
                        )),
                    }
                }
            ),
            answer!(
                self,
                Client::put_lifecycle_policy,
                "ecr:PutLifecyclePolicy",
                |me, req| {
                    let text = req.lifecycle_policy_text().map(str::to_owned);
                    me.with(req.repository_name(), |r| r.lifecycle = text);
                    R::Output(put_lifecycle_policy::PutLifecyclePolicyOutput::builder().build())
                }
            ),
            answer!(
                self,
                Client::get_repository_policy,
                "ecr:GetRepositoryPolicy",
                |me, req| {
                    match me.with(req.repository_name(), |r| r.policy.clone()) {
                        Some(Some(text)) => R::Output(
                            get_repository_policy::GetRepositoryPolicyOutput::builder()
                                .policy_text(text)
                                .build(),
                        ),
                        _ => R::Error(GetRepositoryPolicyError::RepositoryPolicyNotFoundException(
                            RepositoryPolicyNotFoundException::builder()
                                .message("none")
                                .build(),
                        )),
                    }
                }
            ),
            answer!(
                self,
                Client::set_repository_policy,
                "ecr:SetRepositoryPolicy",
                |me, req| {
                    let text = req.policy_text().map(str::to_owned);
                    me.with(req.repository_name(), |r| r.policy = text);
                    R::Output(set_repository_policy::SetRepositoryPolicyOutput::builder().build())
                }
            ),
            answer!(
                self,
                Client::put_image_tag_mutability,
                "ecr:PutImageTagMutability",
                |me, req| {
                    let mutable = req.image_tag_mutability() == Some(&ImageTagMutability::Mutable);
                    me.with(req.repository_name(), |r| r.mutable_tags = mutable);
                    R::Output(
                        put_image_tag_mutability::PutImageTagMutabilityOutput::builder().build(),
                    )
                }
            ),
            answer!(
                self,
                Client::put_image_scanning_configuration,
                "ecr:PutImageScanningConfiguration",
                |me, req| {
                    let scan = req
                        .image_scanning_configuration()
                        .is_some_and(|s| s.scan_on_push());
                    me.with(req.repository_name(), |r| r.scan_on_push = scan);
                    R::Output(
                        put_image_scanning_configuration::PutImageScanningConfigurationOutput::builder()
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::delete_repository,
                "ecr:DeleteRepository",
                |me, req| {
                    let name = req.repository_name().unwrap_or_default();
                    match me.repositories.lock().expect("ecr").remove(name) {
                        Some(_) => {
                            R::Output(delete_repository::DeleteRepositoryOutput::builder().build())
                        }
                        None => R::Error(
                            delete_repository::DeleteRepositoryError::RepositoryNotFoundException(
                                not_found(),
                            ),
                        ),
                    }
                }
            ),
        ]
    }
}
