//! Secrets Manager secrets: value, KMS key, tags, scheduled deletion.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretError;
use aws_sdk_secretsmanager::types::error::ResourceNotFoundException;
use aws_sdk_secretsmanager::types::Tag;
use aws_sdk_secretsmanager::Client;
use aws_smithy_mocks::{MockResponse as R, Rule};

use super::{answer, Calls, ACCOUNT};

/// One secret.
#[derive(Clone, Debug, Default)]
pub struct Secret {
    pub arn: String,
    pub value: String,
    pub kms_key: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub deleted: bool,
}

/// The secrets of one account and region, by name.
#[derive(Clone, Default)]
pub struct SecretsDouble {
    secrets: Arc<Mutex<BTreeMap<String, Secret>>>,
    calls: Calls,
}

fn tags(tags: &[Tag]) -> impl Iterator<Item = (String, String)> + '_ {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
}

impl SecretsDouble {
    pub fn new(calls: &Calls) -> Self {
        SecretsDouble {
            calls: calls.clone(),
            ..Default::default()
        }
    }

    pub fn secrets(&self) -> BTreeMap<String, Secret> {
        self.secrets.lock().expect("secrets").clone()
    }

    /// Changes a secret out of band.
    pub fn edit(&self, name: &str, change: impl FnOnce(&mut Secret)) {
        change(
            self.secrets
                .lock()
                .expect("secrets")
                .get_mut(name)
                .expect("secret"),
        );
    }

    /// The secret an id (name or ARN) names.
    fn with<T>(&self, id: Option<&str>, f: impl FnOnce(&mut Secret) -> T) -> Option<T> {
        let id = id.unwrap_or_default();
        let mut secrets = self.secrets.lock().expect("secrets");
        secrets
            .iter_mut()
            .find(|(name, s)| name.as_str() == id || s.arn == id)
            .map(|(_, s)| f(s))
    }

    pub fn rules(&self) -> Vec<Rule> {
        use aws_sdk_secretsmanager::operation::*;
        vec![
            answer!(
                self,
                Client::describe_secret,
                "secretsmanager:DescribeSecret",
                |me, req| {
                    let found = me.with(req.secret_id(), |s| s.clone());
                    match found {
                        Some(s) => {
                            R::Output(
                                describe_secret::DescribeSecretOutput::builder()
                                    .arn(&s.arn)
                                    .set_kms_key_id(s.kms_key.clone())
                                    .set_deleted_date(s.deleted.then(|| {
                                        aws_smithy_types::DateTime::from_secs(1_700_000_000)
                                    }))
                                    .set_tags(Some(
                                        s.tags
                                            .iter()
                                            .map(|(k, v)| Tag::builder().key(k).value(v).build())
                                            .collect(),
                                    ))
                                    .build(),
                            )
                        }
                        None => R::Error(DescribeSecretError::ResourceNotFoundException(
                            ResourceNotFoundException::builder()
                                .message("no secret")
                                .build(),
                        )),
                    }
                }
            ),
            answer!(
                self,
                Client::create_secret,
                "secretsmanager:CreateSecret",
                |me, req| {
                    let name = req.name().unwrap_or_default().to_owned();
                    let arn =
                        format!("arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{name}-AbCdEf");
                    let secret = Secret {
                        arn: arn.clone(),
                        value: req.secret_string().unwrap_or_default().to_owned(),
                        kms_key: req.kms_key_id().map(str::to_owned),
                        tags: tags(req.tags()).collect(),
                        deleted: false,
                    };
                    me.secrets.lock().expect("secrets").insert(name, secret);
                    R::Output(
                        create_secret::CreateSecretOutput::builder()
                            .arn(arn)
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::get_secret_value,
                "secretsmanager:GetSecretValue",
                |me, req| {
                    let value = me
                        .with(req.secret_id(), |s| s.value.clone())
                        .expect("secret");
                    R::Output(
                        get_secret_value::GetSecretValueOutput::builder()
                            .secret_string(value)
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::put_secret_value,
                "secretsmanager:PutSecretValue",
                |me, req| {
                    let value = req.secret_string().unwrap_or_default().to_owned();
                    me.with(req.secret_id(), |s| s.value = value);
                    R::Output(put_secret_value::PutSecretValueOutput::builder().build())
                }
            ),
            answer!(
                self,
                Client::update_secret,
                "secretsmanager:UpdateSecret",
                |me, req| {
                    let value = req.secret_string().map(str::to_owned);
                    let key = req.kms_key_id().map(str::to_owned);
                    me.with(req.secret_id(), |s| {
                        if let Some(v) = value {
                            s.value = v;
                        }
                        if key.is_some() {
                            s.kms_key = key;
                        }
                    });
                    R::Output(update_secret::UpdateSecretOutput::builder().build())
                }
            ),
            answer!(
                self,
                Client::tag_resource,
                "secretsmanager:TagResource",
                |me, req| {
                    let new: Vec<_> = tags(req.tags()).collect();
                    me.with(req.secret_id(), |s| s.tags.extend(new));
                    R::Output(tag_resource::TagResourceOutput::builder().build())
                }
            ),
            answer!(
                self,
                Client::restore_secret,
                "secretsmanager:RestoreSecret",
                |me, req| {
                    me.with(req.secret_id(), |s| s.deleted = false);
                    R::Output(restore_secret::RestoreSecretOutput::builder().build())
                }
            ),
            answer!(
                self,
                Client::delete_secret,
                "secretsmanager:DeleteSecret",
                |me, req| {
                    me.with(req.secret_id(), |s| s.deleted = true);
                    R::Output(delete_secret::DeleteSecretOutput::builder().build())
                }
            ),
        ]
    }
}
