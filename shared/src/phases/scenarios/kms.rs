//! KMS as the phases use it: keys (state, policy, rotation, tags) and aliases. Every call is
//! logged in the scenario's [`Calls`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_kms::operation::cancel_key_deletion::CancelKeyDeletionOutput;
use aws_sdk_kms::operation::create_alias::CreateAliasOutput;
use aws_sdk_kms::operation::create_key::CreateKeyOutput;
use aws_sdk_kms::operation::delete_alias::DeleteAliasOutput;
use aws_sdk_kms::operation::describe_key::{DescribeKeyError, DescribeKeyOutput};
use aws_sdk_kms::operation::enable_key::EnableKeyOutput;
use aws_sdk_kms::operation::enable_key_rotation::EnableKeyRotationOutput;
use aws_sdk_kms::operation::get_key_policy::GetKeyPolicyOutput;
use aws_sdk_kms::operation::get_key_rotation_status::GetKeyRotationStatusOutput;
use aws_sdk_kms::operation::list_keys::ListKeysOutput;
use aws_sdk_kms::operation::list_resource_tags::ListResourceTagsOutput;
use aws_sdk_kms::operation::put_key_policy::PutKeyPolicyOutput;
use aws_sdk_kms::operation::schedule_key_deletion::ScheduleKeyDeletionOutput;
use aws_sdk_kms::operation::tag_resource::TagResourceOutput;
use aws_sdk_kms::types::error::NotFoundException;
use aws_sdk_kms::types::{KeyListEntry, KeyManagerType, KeyMetadata, KeyState, Tag};
use aws_sdk_kms::Client;
use aws_smithy_mocks::{mock, MockResponse, Rule};

use super::{Calls, ACCOUNT};

/// One key.
#[derive(Clone, Debug)]
pub struct Key {
    pub state: KeyState,
    pub policy: String,
    pub rotation: bool,
    pub tags: BTreeMap<String, String>,
    created: i64,
}

#[derive(Default)]
struct State {
    keys: BTreeMap<String, Key>,
    aliases: BTreeMap<String, String>,
    next: u32,
}

/// The keys and aliases of one account and region.
#[derive(Clone, Default)]
pub struct KmsDouble {
    state: Arc<Mutex<State>>,
    calls: Calls,
}

fn arn(key_id: &str) -> String {
    format!("arn:aws:kms:us-east-1:{ACCOUNT}:key/{key_id}")
}

impl KmsDouble {
    pub fn new(calls: &Calls) -> Self {
        KmsDouble {
            calls: calls.clone(),
            ..Default::default()
        }
    }

    /// The key an alias names.
    pub fn aliased(&self, alias: &str) -> Option<(String, Key)> {
        let state = self.state.lock().expect("kms");
        let id = state.aliases.get(alias)?;
        Some((id.clone(), state.keys.get(id)?.clone()))
    }

    /// Every key, by id.
    pub fn keys(&self) -> BTreeMap<String, Key> {
        self.state.lock().expect("kms").keys.clone()
    }

    pub fn aliases(&self) -> BTreeMap<String, String> {
        self.state.lock().expect("kms").aliases.clone()
    }

    /// Changes a key out of band.
    pub fn edit(&self, key_id: &str, change: impl FnOnce(&mut Key)) {
        change(
            self.state
                .lock()
                .expect("kms")
                .keys
                .get_mut(key_id)
                .expect("key"),
        );
    }

    pub fn delete_alias(&self, alias: &str) {
        self.state.lock().expect("kms").aliases.remove(alias);
    }

    /// The id of a key, from an id, an ARN or an alias name.
    fn resolve(&self, key: Option<&str>) -> Option<String> {
        let key = key?;
        let state = self.state.lock().expect("kms");
        let id = match key.strip_prefix("arn:aws:kms:") {
            Some(rest) => rest.rsplit('/').next()?.to_owned(),
            None if key.starts_with("alias/") => state.aliases.get(key)?.clone(),
            None => key.to_owned(),
        };
        state.keys.contains_key(&id).then_some(id)
    }

    fn with_key<T>(&self, key: Option<&str>, f: impl FnOnce(&str, &mut Key) -> T) -> T {
        let id = self.resolve(key).expect("a key the scenario knows");
        let mut state = self.state.lock().expect("kms");
        f(&id, state.keys.get_mut(&id).expect("key"))
    }

    fn metadata(id: &str, key: &Key) -> KeyMetadata {
        KeyMetadata::builder()
            .key_id(id)
            .arn(arn(id))
            .key_state(key.state.clone())
            .key_manager(KeyManagerType::Customer)
            .creation_date(aws_smithy_types::DateTime::from_secs(key.created))
            .build()
            .expect("metadata")
    }

    fn tags(tags: &[Tag]) -> impl Iterator<Item = (String, String)> + '_ {
        tags.iter()
            .map(|t| (t.tag_key().to_owned(), t.tag_value().to_owned()))
    }

    pub fn rules(&self) -> Vec<Rule> {
        let mut rules = self.reads();
        rules.extend(self.writes());
        rules
    }

    fn reads(&self) -> Vec<Rule> {
        let (me, me2, me3, me4, me5) = (
            self.clone(),
            self.clone(),
            self.clone(),
            self.clone(),
            self.clone(),
        );
        vec![
            mock!(Client::describe_key).then_compute_response(move |req| {
                me.calls.push("kms:DescribeKey");
                match me.resolve(req.key_id()) {
                    Some(id) => {
                        let key = me.state.lock().expect("kms").keys[&id].clone();
                        MockResponse::Output(
                            DescribeKeyOutput::builder()
                                .key_metadata(Self::metadata(&id, &key))
                                .build(),
                        )
                    }
                    None => MockResponse::Error(DescribeKeyError::NotFoundException(
                        NotFoundException::builder().message("no such key").build(),
                    )),
                }
            }),
            mock!(Client::list_keys).then_compute_output(move |_| {
                me2.calls.push("kms:ListKeys");
                let keys = me2.keys();
                ListKeysOutput::builder()
                    .set_keys(Some(
                        keys.keys()
                            .map(|id| KeyListEntry::builder().key_id(id).key_arn(arn(id)).build())
                            .collect(),
                    ))
                    .truncated(false)
                    .build()
            }),
            mock!(Client::list_resource_tags).then_compute_output(move |req| {
                me3.calls.push("kms:ListResourceTags");
                let tags = me3.with_key(req.key_id(), |_, k| k.tags.clone());
                ListResourceTagsOutput::builder()
                    .set_tags(Some(
                        tags.iter()
                            .map(|(k, v)| Tag::builder().tag_key(k).tag_value(v).build())
                            .collect::<Result<_, _>>()
                            .expect("tags"),
                    ))
                    .build()
            }),
            mock!(Client::get_key_policy).then_compute_output(move |req| {
                me4.calls.push("kms:GetKeyPolicy");
                let policy = me4.with_key(req.key_id(), |_, k| k.policy.clone());
                GetKeyPolicyOutput::builder().policy(policy).build()
            }),
            mock!(Client::get_key_rotation_status).then_compute_output(move |req| {
                me5.calls.push("kms:GetKeyRotationStatus");
                let on = me5.with_key(req.key_id(), |_, k| k.rotation);
                GetKeyRotationStatusOutput::builder()
                    .key_rotation_enabled(on)
                    .build()
            }),
        ]
    }

    fn writes(&self) -> Vec<Rule> {
        let me: Vec<KmsDouble> = (0..9).map(|_| self.clone()).collect();
        let [m0, m1, m2, m3, m4, m5, m6, m7, m8]: [KmsDouble; 9] =
            me.try_into().unwrap_or_else(|_| unreachable!());
        vec![
            mock!(Client::create_key).then_compute_output(move |req| {
                m0.calls.push("kms:CreateKey");
                let mut state = m0.state.lock().expect("kms");
                state.next += 1;
                let id = format!("key-{}", state.next);
                let key = Key {
                    state: KeyState::Enabled,
                    policy: req.policy().unwrap_or_default().to_owned(),
                    rotation: false,
                    tags: Self::tags(req.tags()).collect(),
                    created: 1_700_000_000 + i64::from(state.next),
                };
                let meta = Self::metadata(&id, &key);
                state.keys.insert(id, key);
                CreateKeyOutput::builder().key_metadata(meta).build()
            }),
            mock!(Client::create_alias).then_compute_output(move |req| {
                m1.calls.push("kms:CreateAlias");
                let id = m1.resolve(req.target_key_id()).expect("target key");
                let alias = req.alias_name().unwrap_or_default().to_owned();
                m1.state.lock().expect("kms").aliases.insert(alias, id);
                CreateAliasOutput::builder().build()
            }),
            mock!(Client::delete_alias).then_compute_output(move |req| {
                m2.calls.push("kms:DeleteAlias");
                m2.delete_alias(req.alias_name().unwrap_or_default());
                DeleteAliasOutput::builder().build()
            }),
            mock!(Client::put_key_policy).then_compute_output(move |req| {
                m3.calls.push("kms:PutKeyPolicy");
                let policy = req.policy().unwrap_or_default().to_owned();
                m3.with_key(req.key_id(), |_, k| k.policy = policy);
                PutKeyPolicyOutput::builder().build()
            }),
            mock!(Client::enable_key_rotation).then_compute_output(move |req| {
                m4.calls.push("kms:EnableKeyRotation");
                m4.with_key(req.key_id(), |_, k| k.rotation = true);
                EnableKeyRotationOutput::builder().build()
            }),
            mock!(Client::tag_resource).then_compute_output(move |req| {
                m5.calls.push("kms:TagResource");
                let tags: Vec<_> = Self::tags(req.tags()).collect();
                m5.with_key(req.key_id(), |_, k| k.tags.extend(tags));
                TagResourceOutput::builder().build()
            }),
            mock!(Client::cancel_key_deletion).then_compute_output(move |req| {
                m6.calls.push("kms:CancelKeyDeletion");
                let id = m6.with_key(req.key_id(), |id, k| {
                    k.state = KeyState::Disabled;
                    id.to_owned()
                });
                CancelKeyDeletionOutput::builder().key_id(id).build()
            }),
            mock!(Client::enable_key).then_compute_output(move |req| {
                m7.calls.push("kms:EnableKey");
                m7.with_key(req.key_id(), |_, k| k.state = KeyState::Enabled);
                EnableKeyOutput::builder().build()
            }),
            mock!(Client::schedule_key_deletion).then_compute_output(move |req| {
                m8.calls.push("kms:ScheduleKeyDeletion");
                m8.with_key(req.key_id(), |_, k| k.state = KeyState::PendingDeletion);
                ScheduleKeyDeletionOutput::builder().build()
            }),
        ]
    }
}
