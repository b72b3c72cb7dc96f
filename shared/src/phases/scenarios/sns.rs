//! SNS topics: attributes (policy, KMS key) and tags.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_sns::operation::get_topic_attributes::GetTopicAttributesError;
use aws_sdk_sns::types::error::NotFoundException;
use aws_sdk_sns::types::Tag;
use aws_sdk_sns::Client;
use aws_smithy_mocks::{MockResponse as R, Rule};

use super::{answer, Calls, ACCOUNT};

/// One topic.
#[derive(Clone, Debug, Default)]
pub struct Topic {
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

/// The topics of one account and region, by ARN.
#[derive(Clone, Default)]
pub struct SnsDouble {
    topics: Arc<Mutex<BTreeMap<String, Topic>>>,
    calls: Calls,
}

fn tags(tags: &[Tag]) -> impl Iterator<Item = (String, String)> + '_ {
    tags.iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
}

impl SnsDouble {
    pub fn new(calls: &Calls) -> Self {
        SnsDouble {
            calls: calls.clone(),
            ..Default::default()
        }
    }

    pub fn topics(&self) -> BTreeMap<String, Topic> {
        self.topics.lock().expect("sns").clone()
    }

    /// Changes a topic out of band.
    pub fn edit(&self, arn: &str, change: impl FnOnce(&mut Topic)) {
        change(
            self.topics
                .lock()
                .expect("sns")
                .get_mut(arn)
                .expect("topic"),
        );
    }

    fn with<T>(&self, arn: Option<&str>, f: impl FnOnce(&mut Topic) -> T) -> T {
        let mut topics = self.topics.lock().expect("sns");
        f(topics
            .get_mut(arn.unwrap_or_default())
            .expect("a topic the scenario knows"))
    }

    pub fn rules(&self) -> Vec<Rule> {
        use aws_sdk_sns::operation::*;
        vec![
            answer!(
                self,
                Client::get_topic_attributes,
                "sns:GetTopicAttributes",
                |me, req| {
                    match me.topics().get(req.topic_arn().unwrap_or_default()) {
                        Some(t) => R::Output(
                            get_topic_attributes::GetTopicAttributesOutput::builder()
                                .set_attributes(Some(t.attributes.clone().into_iter().collect()))
                                .build(),
                        ),
                        None => R::Error(GetTopicAttributesError::NotFoundException(
                            NotFoundException::builder().message("no topic").build(),
                        )),
                    }
                }
            ),
            answer!(self, Client::create_topic, "sns:CreateTopic", |me, req| {
                let name = req.name().unwrap_or_default();
                let arn = format!("arn:aws:sns:us-east-1:{ACCOUNT}:{name}");
                let topic = Topic {
                    attributes: req
                        .attributes()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .collect(),
                    tags: tags(req.tags()).collect(),
                };
                me.topics.lock().expect("sns").insert(arn.clone(), topic);
                R::Output(
                    create_topic::CreateTopicOutput::builder()
                        .topic_arn(arn)
                        .build(),
                )
            }),
            answer!(
                self,
                Client::set_topic_attributes,
                "sns:SetTopicAttributes",
                |me, req| {
                    let (k, v) = (
                        req.attribute_name().unwrap_or_default(),
                        req.attribute_value(),
                    );
                    me.with(req.topic_arn(), |t| {
                        t.attributes
                            .insert(k.to_owned(), v.unwrap_or_default().to_owned())
                    });
                    R::Output(set_topic_attributes::SetTopicAttributesOutput::builder().build())
                }
            ),
            answer!(
                self,
                Client::list_tags_for_resource,
                "sns:ListTagsForResource",
                |me, req| {
                    let t = me.with(req.resource_arn(), |t| t.tags.clone());
                    R::Output(
                        list_tags_for_resource::ListTagsForResourceOutput::builder()
                            .set_tags(Some(
                                t.iter()
                                    .map(|(k, v)| {
                                        Tag::builder().key(k).value(v).build().expect("tag")
                                    })
                                    .collect(),
                            ))
                            .build(),
                    )
                }
            ),
            answer!(self, Client::tag_resource, "sns:TagResource", |me, req| {
                let new: Vec<_> = tags(req.tags()).collect();
                me.with(req.resource_arn(), |t| t.tags.extend(new));
                R::Output(tag_resource::TagResourceOutput::builder().build())
            }),
            answer!(self, Client::delete_topic, "sns:DeleteTopic", |me, req| {
                me.topics
                    .lock()
                    .expect("sns")
                    .remove(req.topic_arn().unwrap_or_default());
                R::Output(delete_topic::DeleteTopicOutput::builder().build())
            }),
        ]
    }
}
