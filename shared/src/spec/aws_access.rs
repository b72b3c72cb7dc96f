//! Tenant access to the tenant's own AWS resources (`awsAccess`): the services, the actions a
//! platform may approve for each, and the resources a tenant's grant reaches.
//!
//! A grant reaches only resources named under the tenant's own name prefix
//! ([`resource_prefix`]), or, for S3, objects under its own prefix of the platform bucket. The
//! actions a platform may approve are a fixed catalogue per service ([`AwsService::actions`]):
//! each acts on the named resource type, so a grant never needs `"Resource": "*"`. Listing or
//! creating actions (`ListQueues`, `CreateTable`) and actions that send data out of the account
//! (`sns:Subscribe`) are not in it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A service a tenant may be granted actions on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum AwsService {
    /// DynamoDB tables `<prefix>*` and their indexes.
    Dynamodb,
    /// SQS queues `<prefix>*`.
    Sqs,
    /// SNS topics `<prefix>*`.
    Sns,
    /// S3 objects under the tenant's prefix of the platform bucket.
    S3,
    /// Athena workgroups `<prefix>*`.
    Athena,
}

impl AwsService {
    pub const ALL: [AwsService; 5] = [
        AwsService::Dynamodb,
        AwsService::Sqs,
        AwsService::Sns,
        AwsService::S3,
        AwsService::Athena,
    ];

    /// The IAM service prefix (`dynamodb` in `dynamodb:GetItem`).
    pub fn prefix(self) -> &'static str {
        match self {
            AwsService::Dynamodb => "dynamodb",
            AwsService::Sqs => "sqs",
            AwsService::Sns => "sns",
            AwsService::S3 => "s3",
            AwsService::Athena => "athena",
        }
    }

    /// The actions a platform may approve: each takes the service's resource type that a
    /// tenant's grant names (table, queue, topic, object, workgroup).
    pub fn actions(self) -> &'static [&'static str] {
        match self {
            AwsService::Dynamodb => &[
                "dynamodb:BatchGetItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:ConditionCheckItem",
                "dynamodb:DeleteItem",
                "dynamodb:DescribeTable",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:Query",
                "dynamodb:Scan",
                "dynamodb:UpdateItem",
            ],
            AwsService::Sqs => &[
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
                "sqs:ReceiveMessage",
                "sqs:SendMessage",
            ],
            AwsService::Sns => &["sns:GetTopicAttributes", "sns:Publish"],
            AwsService::S3 => &[
                "s3:AbortMultipartUpload",
                "s3:DeleteObjectVersion",
                "s3:GetObjectTagging",
                "s3:GetObjectVersion",
                "s3:ListMultipartUploadParts",
                "s3:PutObjectTagging",
            ],
            AwsService::Athena => &[
                "athena:GetQueryExecution",
                "athena:GetQueryResults",
                "athena:GetWorkGroup",
                "athena:StartQueryExecution",
                "athena:StopQueryExecution",
            ],
        }
    }
}

/// The name prefix of a tenant's own resources: `<id>-<environment>_<tenant>_`. Tenant names
/// hold no `_`, so one tenant's prefix never starts another's (`a_` is not a start of `a-b_`),
/// and every service here allows `_` in names.
pub fn resource_prefix(stem: &str, tenant: &str) -> String {
    format!("{stem}_{tenant}_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_belongs_to_its_service() {
        for service in AwsService::ALL {
            for action in service.actions() {
                let (prefix, name) = action.split_once(':').expect("service:Action");
                assert_eq!(prefix, service.prefix(), "{action}");
                assert!(name.chars().all(|c| c.is_ascii_alphabetic()), "{action}");
            }
        }
    }

    /// A tenant role carries the roles' permissions boundary: an action the boundary does not
    /// allow would be granted in the role's policy and refused by AWS.
    #[test]
    fn the_permissions_boundary_allows_every_action_of_the_catalogue() {
        let template = include_str!("../../../infra/template.yaml");
        let start = template
            .find("- Sid: TenantOwnResources")
            .expect("the boundary's TenantOwnResources statement");
        let end = template[start + 1..]
            .find("- Sid:")
            .map_or(template.len(), |i| start + 1 + i);
        let statement = &template[start..end];
        for service in AwsService::ALL {
            for action in service.actions() {
                let allowed = statement.contains(&format!("- {action}\n"))
                    || template[..start].contains(&format!("- {action}\n"))
                        && service == AwsService::S3;
                assert!(allowed, "{action} is not in the boundary");
            }
        }
    }

    #[test]
    fn no_tenant_prefix_starts_another() {
        let a = resource_prefix("payments-prod", "alpha");
        let b = resource_prefix("payments-prod", "alpha-two");
        assert!(!b.starts_with(&a) && !a.starts_with(&b));
    }
}
