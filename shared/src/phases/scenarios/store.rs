//! The state table as the phases use it: the inventory (upsert, delete, query by prefix) and the
//! status record's phase entries. Items are stored as the real store writes them, so what a
//! scenario finds is read back by the store's own code.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use aws_smithy_mocks::{mock, Rule};

use crate::resources::Kind;
use crate::store::keys;

use super::Calls;

type Item = std::collections::HashMap<String, AttributeValue>;

/// The table's items by (PK, SK), and the phase entries recorded.
#[derive(Clone, Default)]
pub struct StoreDouble {
    items: Arc<Mutex<BTreeMap<(String, String), Item>>>,
    phases: Arc<Mutex<Vec<String>>>,
    calls: Calls,
}

fn s(v: &AttributeValue) -> String {
    v.as_s().cloned().unwrap_or_default()
}

fn key_of(key: Option<&Item>) -> (String, String) {
    let key = key.expect("key");
    (s(&key[keys::PK]), s(&key[keys::SK]))
}

/// The attribute names of a resource record, by the placeholder the store's upsert sets them
/// with (`Store::put_resource`).
const RESOURCE_FIELDS: &[(&str, &str)] = &[
    (":type", "resourceType"),
    (":id", "resourceId"),
    (":phase", "phase"),
    (":tags", "tags"),
    (":arn", "arn"),
    (":tenant", "tenant"),
    (":attributes", "attributes"),
];

impl StoreDouble {
    pub fn new(calls: &Calls) -> Self {
        StoreDouble {
            calls: calls.clone(),
            ..Default::default()
        }
    }

    /// Removes a record, as if the run that wrote it had not got that far.
    pub fn forget(&self, platform: &str, kind: Kind, id: &str) {
        let pk = keys::platform_pk(platform).expect("pk");
        let sk = keys::resource_sk(kind.as_str(), id).expect("sk");
        self.items.lock().expect("items").remove(&(pk, sk));
    }

    /// The inventory: (kind, id) of every resource record.
    pub fn inventory(&self) -> Vec<(String, String)> {
        self.items
            .lock()
            .expect("items")
            .values()
            .filter_map(|i| Some((s(i.get("resourceType")?), s(i.get("resourceId")?))))
            .collect()
    }

    /// Records a resource as an earlier run of `phase` would have.
    pub fn record(&self, platform: &str, phase: &str, kind: Kind, id: &str) {
        let pk = keys::platform_pk(platform).expect("pk");
        let sk = keys::resource_sk(kind.as_str(), id).expect("sk");
        let item: Item = [
            (keys::PK, pk.clone()),
            (keys::SK, sk.clone()),
            ("resourceType", kind.as_str().to_owned()),
            ("resourceId", id.to_owned()),
            ("phase", phase.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), AttributeValue::S(v)))
        .collect();
        self.items.lock().expect("items").insert((pk, sk), item);
    }

    /// The phase entries recorded in the status record (`record_phase`), in order.
    pub fn phases(&self) -> Vec<String> {
        self.phases.lock().expect("phases").clone()
    }

    pub fn rules(&self) -> Vec<Rule> {
        vec![self.update(), self.delete(), self.query()]
    }

    /// Rules for the versioned records (spec, status, tenant records): `GetItem`, and `PutItem`
    /// storing the item as written. The put's condition (the version the writer read) is not
    /// checked: a scenario has one writer at a time.
    pub fn record_rules(&self) -> Vec<Rule> {
        let (me, me2) = (self.clone(), self.clone());
        vec![
            mock!(Client::get_item).then_compute_output(move |req| {
                me.calls.push("dynamodb:GetItem");
                let item = me
                    .items
                    .lock()
                    .expect("items")
                    .get(&key_of(req.key()))
                    .cloned();
                GetItemOutput::builder().set_item(item).build()
            }),
            mock!(Client::put_item).then_compute_output(move |req| {
                me2.calls.push("dynamodb:PutItem");
                let item = req.item().cloned().unwrap_or_default();
                let key = key_of(Some(&item));
                me2.items.lock().expect("items").insert(key, item);
                PutItemOutput::builder().build()
            }),
        ]
    }

    fn update(&self) -> Rule {
        let me = self.clone();
        mock!(Client::update_item).then_compute_output(move |req| {
            let key = key_of(req.key());
            let values = req
                .expression_attribute_values()
                .cloned()
                .unwrap_or_default();
            if values.contains_key(":one") {
                me.calls.push("dynamodb:UpdateItem(phase)");
                let phase = req
                    .expression_attribute_names()
                    .and_then(|n| n.get("#phase"))
                    .cloned()
                    .unwrap_or_default();
                me.phases.lock().expect("phases").push(phase);
                return UpdateItemOutput::builder()
                    .attributes("version", AttributeValue::N("2".into()))
                    .build();
            }
            me.calls.push("dynamodb:UpdateItem(resource)");
            let mut item: Item = [
                (keys::PK.to_owned(), AttributeValue::S(key.0.clone())),
                (keys::SK.to_owned(), AttributeValue::S(key.1.clone())),
            ]
            .into();
            for (placeholder, name) in RESOURCE_FIELDS {
                if let Some(v) = values.get(*placeholder) {
                    item.insert((*name).to_owned(), v.clone());
                }
            }
            me.items.lock().expect("items").insert(key, item.clone());
            UpdateItemOutput::builder()
                .set_attributes(Some(item))
                .build()
        })
    }

    fn delete(&self) -> Rule {
        let me = self.clone();
        mock!(Client::delete_item).then_compute_output(move |req| {
            me.calls.push("dynamodb:DeleteItem");
            let old = me.items.lock().expect("items").remove(&key_of(req.key()));
            DeleteItemOutput::builder().set_attributes(old).build()
        })
    }

    fn query(&self) -> Rule {
        let me = self.clone();
        mock!(Client::query).then_compute_output(move |req| {
            me.calls.push("dynamodb:Query");
            let values = req
                .expression_attribute_values()
                .cloned()
                .unwrap_or_default();
            let pk = values.get(":pk").map(s).unwrap_or_default();
            let prefix = values.get(":prefix").map(s).unwrap_or_default();
            let items: Vec<Item> = me
                .items
                .lock()
                .expect("items")
                .iter()
                .filter(|((p, k), _)| *p == pk && k.starts_with(&prefix))
                .map(|(_, i)| i.clone())
                .collect();
            QueryOutput::builder()
                .count(items.len() as i32)
                .set_items(Some(items))
                .build()
        })
    }
}
