//! Creating (and, for tests, deleting) the table.

use super::error::{Result, StoreError};
use super::keys;
use super::Store;
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::operation::delete_table::DeleteTableError;
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
    TimeToLiveStatus,
};
use std::time::Duration;

/// How long `create_table_if_missing` waits for the table (and its index) to become ACTIVE.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(250);

fn build_error(e: aws_smithy_types::error::operation::BuildError) -> StoreError {
    StoreError::Encode {
        what: "table definition".to_owned(),
        reason: e.to_string(),
    }
}

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(build_error)
}

fn string_attribute(name: &str) -> Result<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(build_error)
}

impl Store {
    /// Creates the table with the layout of the module documentation if it does not exist:
    /// on-demand billing, `GSI1`, TTL on `expiresAt`. Waits until the table and its index are
    /// ACTIVE. Idempotent; a table created concurrently by someone else counts as success.
    pub async fn create_table_if_missing(&self) -> Result<()> {
        if self.describe_table_status().await?.is_none() {
            let gsi = GlobalSecondaryIndex::builder()
                .index_name(keys::GSI1)
                .key_schema(key(keys::GSI1PK, KeyType::Hash)?)
                .key_schema(key(keys::GSI1SK, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::Include)
                        .set_non_key_attributes(Some(
                            super::versioned::GSI1_PROJECTED
                                .iter()
                                .map(|a| (*a).to_owned())
                                .collect(),
                        ))
                        .build(),
                )
                .build()
                .map_err(build_error)?;
            let result = self
                .client
                .create_table()
                .table_name(&self.table)
                .billing_mode(BillingMode::PayPerRequest)
                .key_schema(key(keys::PK, KeyType::Hash)?)
                .key_schema(key(keys::SK, KeyType::Range)?)
                .attribute_definitions(string_attribute(keys::PK)?)
                .attribute_definitions(string_attribute(keys::SK)?)
                .attribute_definitions(string_attribute(keys::GSI1PK)?)
                .attribute_definitions(string_attribute(keys::GSI1SK)?)
                .global_secondary_indexes(gsi)
                .send()
                .await;
            match result {
                Ok(_) => tracing::info!(table = %self.table, "created state table"),
                Err(err)
                    if matches!(
                        err.as_service_error(),
                        Some(CreateTableError::ResourceInUseException(_))
                    ) => {}
                Err(err) => return Err(StoreError::aws("CreateTable", err)),
            }
        }
        self.wait_until_active().await?;
        self.enable_ttl().await
    }

    /// `Some(table is ACTIVE with every index ACTIVE)`, or `None` when the table does not exist.
    async fn describe_table_status(&self) -> Result<Option<bool>> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(out) => {
                let Some(table) = out.table else {
                    return Ok(Some(false));
                };
                let indexes_active = table
                    .global_secondary_indexes()
                    .iter()
                    .all(|i| i.index_status().is_none_or(|s| *s == IndexStatus::Active));
                Ok(Some(
                    table.table_status() == Some(&TableStatus::Active) && indexes_active,
                ))
            }
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(DescribeTableError::ResourceNotFoundException(_))
                ) =>
            {
                Ok(None)
            }
            Err(err) => Err(StoreError::aws("DescribeTable", err)),
        }
    }

    async fn wait_until_active(&self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + ACTIVE_TIMEOUT;
        loop {
            if self.describe_table_status().await? == Some(true) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::Aws {
                    operation: "DescribeTable",
                    code: None,
                    message: format!("table {} not ACTIVE after {ACTIVE_TIMEOUT:?}", self.table),
                    retryable: true,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn enable_ttl(&self) -> Result<()> {
        let current = self
            .client
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| StoreError::aws("DescribeTimeToLive", e))?;
        let enabled = current.time_to_live_description().is_some_and(|d| {
            d.attribute_name() == Some(keys::TTL_ATTRIBUTE)
                && matches!(
                    d.time_to_live_status(),
                    Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
                )
        });
        if enabled {
            return Ok(());
        }
        let spec = TimeToLiveSpecification::builder()
            .attribute_name(keys::TTL_ATTRIBUTE)
            .enabled(true)
            .build()
            .map_err(build_error)?;
        match self
            .client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(spec)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Enabled concurrently by another caller.
            Err(err)
                if aws_smithy_types::error::metadata::ProvideErrorMetadata::message(&err)
                    .is_some_and(|m| m.contains("already enabled")) =>
            {
                Ok(())
            }
            Err(err) => Err(StoreError::aws("UpdateTimeToLive", err)),
        }
    }

    /// Deletes the table (tests and local teardown). A missing table is success.
    pub async fn delete_table(&self) -> Result<()> {
        match self
            .client
            .delete_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(DeleteTableError::ResourceNotFoundException(_))
                ) =>
            {
                Ok(())
            }
            Err(err) => Err(StoreError::aws("DeleteTable", err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support;
    use super::*;
    use aws_sdk_dynamodb::operation::create_table::CreateTableOutput;
    use aws_sdk_dynamodb::operation::describe_table::DescribeTableOutput;
    use aws_sdk_dynamodb::operation::describe_time_to_live::DescribeTimeToLiveOutput;
    use aws_sdk_dynamodb::operation::update_time_to_live::UpdateTimeToLiveOutput;
    use aws_sdk_dynamodb::types::error::ResourceNotFoundException;
    use aws_sdk_dynamodb::types::{GlobalSecondaryIndexDescription, TableDescription};
    use aws_sdk_dynamodb::Client;
    use aws_smithy_mocks::mock;

    fn active() -> DescribeTableOutput {
        DescribeTableOutput::builder()
            .table(
                TableDescription::builder()
                    .table_status(TableStatus::Active)
                    .global_secondary_indexes(
                        GlobalSecondaryIndexDescription::builder()
                            .index_name("GSI1")
                            .index_status(IndexStatus::Active)
                            .build(),
                    )
                    .build(),
            )
            .build()
    }

    #[tokio::test]
    async fn creates_the_table_with_index_and_ttl() {
        let describe = mock!(Client::describe_table)
            .sequence()
            .error(|| {
                DescribeTableError::ResourceNotFoundException(
                    ResourceNotFoundException::builder().build(),
                )
            })
            .output(active)
            .build();
        let create = mock!(Client::create_table)
            .match_requests(|req| {
                let gsi = &req.global_secondary_indexes()[0];
                let projection = gsi.projection().unwrap();
                req.billing_mode() == Some(&BillingMode::PayPerRequest)
                    && req.key_schema().len() == 2
                    && req.key_schema()[0].attribute_name() == "PK"
                    && req.key_schema()[1].attribute_name() == "SK"
                    && gsi.index_name() == "GSI1"
                    && gsi.key_schema()[0].attribute_name() == "GSI1PK"
                    && projection.projection_type() == Some(&ProjectionType::Include)
                    && projection.non_key_attributes() == ["platformId", "version", "updatedAt"]
            })
            .then_output(|| CreateTableOutput::builder().build());
        let describe_ttl = mock!(Client::describe_time_to_live)
            .then_output(|| DescribeTimeToLiveOutput::builder().build());
        let update_ttl = mock!(Client::update_time_to_live)
            .match_requests(|req| {
                let spec = req.time_to_live_specification().unwrap();
                spec.attribute_name() == "expiresAt" && spec.enabled()
            })
            .then_output(|| UpdateTimeToLiveOutput::builder().build());
        let store = test_support::store(&[&describe, &create, &describe_ttl, &update_ttl]);
        store.create_table_if_missing().await.unwrap();
        assert_eq!(create.num_calls(), 1);
        assert_eq!(describe.num_calls(), 2);
        assert_eq!(update_ttl.num_calls(), 1);
    }
}
