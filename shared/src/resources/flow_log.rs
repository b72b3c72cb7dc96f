//! `ec2:flow-log`: the VPC's flow log, delivered to the platform's encrypted log group
//! (`logs:log-group`, converged before it) by the role `vpc-flow-logs.amazonaws.com` assumes.
//!
//! - **Found by** the `tenantry:platform` tag, on the platform's VPC ([`find_all`]); the one to
//!   keep is the first that is exactly as desired.
//! - **Desired** ([`Desired`]): its `Name`, log group, traffic type and delivery role.
//! - **Owned fields** ([`Desired::differences`]): `tags.Name`, `logGroupName`, `trafficType`,
//!   `deliverLogsPermissionArn`. EC2 cannot modify any of them: a flow log that differs is
//!   replaced (deleted, then created), and a second one as desired is deleted.
//! - **Create, delete** ([`create`]; [`remove`], one `DeleteFlowLogs` for several, already
//!   gone counting as removed).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    FlowLog, FlowLogsResourceType, LogDestinationType, ResourceType, TrafficType,
};
use serde_json::json;

use super::{Difference, Differences};
use crate::error::{ErrorType, FunctionError};
use crate::phases::aws_error;
use crate::phases::common::{platform_filter, platforms, removal, tag_spec};

/// The flow log to have.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// Its `Name` tag.
    pub name: String,
    pub log_group: String,
    /// `ALL`, `ACCEPT` or `REJECT`.
    pub traffic_type: String,
    /// The role the service assumes to write to the group.
    pub role: String,
    /// Tenantry's tags, `Name` included, set when it is created.
    pub tags: BTreeMap<String, String>,
}

impl Desired {
    /// The owned fields of `live` that differ from this (none: it is the one to keep).
    pub fn differences(&self, live: &FlowLog) -> Vec<Difference> {
        let name = crate::phases::network::lookup::name(live.tags());
        let traffic = live.traffic_type().map(|t| t.as_str());
        let role = live.deliver_logs_permission_arn();
        let mut d = Differences::default();
        for (field, want, have) in [
            ("tags.Name", &self.name, name),
            ("logGroupName", &self.log_group, live.log_group_name()),
            ("trafficType", &self.traffic_type, traffic),
            ("deliverLogsPermissionArn", &self.role, role),
        ] {
            d.check(field, json!(want), json!(have), have == Some(want.as_str()));
        }
        d.0
    }
}

/// The platform's flow logs on `vpc_id`.
pub async fn find_all(
    ec2: &aws_sdk_ec2::Client,
    platform_id: &str,
    vpc_id: &str,
) -> Result<Vec<FlowLog>, FunctionError> {
    Ok(find_platforms(ec2, platform_id)
        .await?
        .into_iter()
        .filter(|l| l.resource_id() == Some(vpc_id))
        .collect())
}

/// The platform's flow logs, on any resource (what decommission deletes).
pub async fn find_platforms(
    ec2: &aws_sdk_ec2::Client,
    platform_id: &str,
) -> Result<Vec<FlowLog>, FunctionError> {
    let out = ec2
        .describe_flow_logs()
        .filter(platform_filter(platform_id))
        .send()
        .await
        .map_err(|e| aws_error("DescribeFlowLogs", e))?;
    Ok(platforms(out.flow_logs(), |f| f.tags(), platform_id))
}

/// Creates the flow log of `vpc_id`; its id.
pub async fn create(
    ec2: &aws_sdk_ec2::Client,
    vpc_id: &str,
    desired: &Desired,
) -> Result<String, FunctionError> {
    let terminal = |message: String| FunctionError::new(ErrorType::Terminal, message);
    let out = ec2
        .create_flow_logs()
        .resource_type(FlowLogsResourceType::Vpc)
        .resource_ids(vpc_id)
        .traffic_type(TrafficType::from(desired.traffic_type.as_str()))
        .log_destination_type(LogDestinationType::CloudWatchLogs)
        .log_group_name(&desired.log_group)
        .deliver_logs_permission_arn(&desired.role)
        .tag_specifications(tag_spec(ResourceType::VpcFlowLog, &desired.tags))
        .send()
        .await
        .map_err(|e| aws_error("CreateFlowLogs", e))?;
    if let Some(failed) = out.unsuccessful().first() {
        let error = failed.error();
        return Err(terminal(format!(
            "CreateFlowLogs failed for {vpc_id}: {}: {}",
            error.and_then(|e| e.code()).unwrap_or("Unknown"),
            error.and_then(|e| e.message()).unwrap_or_default()
        )));
    }
    out.flow_log_ids()
        .first()
        .cloned()
        .ok_or_else(|| terminal("CreateFlowLogs returned no id".to_owned()))
}

/// Deletes the flow logs `ids` (none when empty); already gone counts as deleted.
pub async fn remove(ec2: &aws_sdk_ec2::Client, ids: &[String]) -> Result<(), FunctionError> {
    if ids.is_empty() {
        return Ok(());
    }
    let result = ec2
        .delete_flow_logs()
        .set_flow_log_ids(Some(ids.to_vec()))
        .send()
        .await;
    removal("DeleteFlowLogs", result).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::Tag;

    fn desired() -> Desired {
        Desired {
            name: "payments-prod-flow-logs".to_owned(),
            log_group: "/tenantry/payments-prod/vpc-flow-logs".to_owned(),
            traffic_type: "ALL".to_owned(),
            role: "arn:aws:iam::123456789012:role/flow-logs".to_owned(),
            tags: BTreeMap::new(),
        }
    }

    fn live(d: &Desired, traffic: &str, role: &str) -> FlowLog {
        FlowLog::builder()
            .flow_log_id("fl-1")
            .tags(Tag::builder().key("Name").value(&d.name).build())
            .log_group_name(&d.log_group)
            .traffic_type(TrafficType::from(traffic))
            .deliver_logs_permission_arn(role)
            .build()
    }

    #[test]
    fn the_log_as_desired_has_no_difference() {
        let d = desired();
        assert_eq!(d.differences(&live(&d, "ALL", &d.role)), vec![]);
    }

    #[test]
    fn another_traffic_type_or_role_is_named_with_both_values() {
        let d = desired();
        let other = live(&d, "REJECT", "arn:aws:iam::123456789012:role/other");
        let found = d.differences(&other);
        let fields: Vec<_> = found.iter().map(|x| x.field).collect();
        assert_eq!(fields, ["trafficType", "deliverLogsPermissionArn"]);
        assert_eq!(
            (&found[0].desired, &found[0].actual),
            (&json!("ALL"), &json!("REJECT"))
        );
    }
}
