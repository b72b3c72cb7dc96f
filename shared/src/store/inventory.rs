//! The inventory of resources Tenantry created for a platform.

use super::error::{Result, StoreError};
use super::item::{self, s, Item, Reader};
use super::keys;
use super::types::ResourceRecord;
use super::Store;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

const RESOURCE_TYPE: &str = "resourceType";
const RESOURCE_ID: &str = "resourceId";
const ARN: &str = "arn";
const PHASE: &str = "phase";
const TENANT: &str = "tenant";
const TAGS: &str = "tags";
const ATTRIBUTES: &str = "attributes";
const CREATED_AT: &str = "createdAt";
const UPDATED_AT: &str = "updatedAt";

impl Store {
    /// Records a resource (idempotent upsert: the record becomes `resource`; `createdAt` keeps the
    /// time it was first recorded). Returns the record as stored.
    pub async fn put_resource(
        &self,
        platform_id: &str,
        resource: &ResourceRecord,
    ) -> Result<ResourceRecord> {
        let pk = keys::platform_pk(platform_id)?;
        let sk = keys::resource_sk(&resource.resource_type, &resource.id)?;
        let now = s(keys::timestamp(self.now()));
        let (expression, optional) = upsert_expression(resource);
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&pk, &sk)))
            .update_expression(expression)
            .expression_attribute_names("#type", RESOURCE_TYPE)
            .expression_attribute_names("#id", RESOURCE_ID)
            .expression_attribute_names("#phase", PHASE)
            .expression_attribute_names("#tags", TAGS)
            .expression_attribute_names("#updatedAt", UPDATED_AT)
            .expression_attribute_names("#createdAt", CREATED_AT)
            .expression_attribute_names("#arn", ARN)
            .expression_attribute_names("#tenant", TENANT)
            .expression_attribute_names("#attributes", ATTRIBUTES)
            .expression_attribute_values(":type", s(&resource.resource_type))
            .expression_attribute_values(":id", s(&resource.id))
            .expression_attribute_values(":phase", s(&resource.phase))
            .expression_attribute_values(":tags", item::encode("resource tags", &resource.tags)?)
            .expression_attribute_values(":now", now)
            .return_values(ReturnValue::AllNew);
        for (key, value) in optional {
            request = request.expression_attribute_values(key, value);
        }
        let out = request
            .send()
            .await
            .map_err(|e| StoreError::aws("UpdateItem", e))?;
        read_resource(&out.attributes.unwrap_or_default())
    }

    /// Removes a resource from the inventory; removing one that is not there succeeds.
    /// Returns whether a record was removed.
    pub async fn delete_resource(
        &self,
        platform_id: &str,
        resource_type: &str,
        id: &str,
    ) -> Result<bool> {
        let pk = keys::platform_pk(platform_id)?;
        let sk = keys::resource_sk(resource_type, id)?;
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&pk, &sk)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| StoreError::aws("DeleteItem", e))?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    /// Every resource recorded for the platform, ordered by type and id.
    pub async fn list_resources(&self, platform_id: &str) -> Result<Vec<ResourceRecord>> {
        let pk = keys::platform_pk(platform_id)?;
        self.query_prefix(&pk, keys::RESOURCE_PREFIX, false, None)
            .await?
            .iter()
            .map(read_resource)
            .collect()
    }

    /// The platform's resources of one type.
    pub async fn list_resources_of_type(
        &self,
        platform_id: &str,
        resource_type: &str,
    ) -> Result<Vec<ResourceRecord>> {
        let pk = keys::platform_pk(platform_id)?;
        let prefix = keys::resource_type_prefix(resource_type)?;
        self.query_prefix(&pk, &prefix, false, None)
            .await?
            .iter()
            .map(read_resource)
            .collect()
    }
}

/// The update expression of an upsert of `resource`, and the values it names beyond the
/// required ones: each optional attribute present is set, each absent one removed.
fn upsert_expression(resource: &ResourceRecord) -> (String, Vec<(&'static str, AttributeValue)>) {
    let optional = [
        ("#arn", ":arn", resource.arn.as_deref().map(s)),
        ("#tenant", ":tenant", resource.tenant.as_deref().map(s)),
        (
            "#attributes",
            ":attributes",
            resource.attributes.as_ref().map(item::to_attr),
        ),
    ];
    let mut set = vec![
        "#type = :type".to_owned(),
        "#id = :id".to_owned(),
        "#phase = :phase".to_owned(),
        "#tags = :tags".to_owned(),
        "#updatedAt = :now".to_owned(),
        "#createdAt = if_not_exists(#createdAt, :now)".to_owned(),
    ];
    let (mut remove, mut values) = (Vec::new(), Vec::new());
    for (name, key, value) in optional {
        match value {
            Some(value) => {
                set.push(format!("{name} = {key}"));
                values.push((key, value));
            }
            None => remove.push(name),
        }
    }
    let mut expression = format!("SET {}", set.join(", "));
    if !remove.is_empty() {
        expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
    }
    (expression, values)
}

fn read_resource(item: &Item) -> Result<ResourceRecord> {
    let r = Reader::new(item);
    Ok(ResourceRecord {
        resource_type: r.s(RESOURCE_TYPE)?.to_owned(),
        id: r.s(RESOURCE_ID)?.to_owned(),
        arn: r.opt_s(ARN)?.map(str::to_owned),
        phase: r.s(PHASE)?.to_owned(),
        tenant: r.opt_s(TENANT)?.map(str::to_owned),
        tags: r.string_map(TAGS)?,
        attributes: r.opt_json(ATTRIBUTES)?,
        created_at: r.opt_time(CREATED_AT)?,
        updated_at: r.opt_time(UPDATED_AT)?,
    })
}
