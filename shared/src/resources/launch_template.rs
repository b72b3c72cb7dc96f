//! `ec2:launch-template`: a node group's launch template (`<stem>-<group>-lt`): IMDSv2 with a
//! hop limit of 1, encrypted gp3 volumes under the platform's data key, Bottlerocket's settings.
//! What a group needs is the node groups phase's (`nodegroups::desired_template`); this module
//! holds how a template is found, compared, created and moved forward.
//!
//! - **Found by** its name: its latest version ([`find_latest`]).
//! - **Desired** ([`TemplateShape`]): the settings Tenantry sets, normalised.
//! - **Owned fields**: `launchTemplateData`, the [`TemplateShape`] of the latest version
//!   ([`TemplateShape::of`]); a key pair or any other setting is not Tenantry's and not
//!   compared, except `key_name`, which a template Tenantry made never has.
//! - **Create, update, delete** ([`create`]; [`create_version`]: a template's versions cannot
//!   change, so a difference is a new version, which the node group then follows; [`remove`]).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest,
    LaunchTemplateHttpTokensState, LaunchTemplateInstanceMetadataEndpointState,
    LaunchTemplateInstanceMetadataOptionsRequest, LaunchTemplateTagSpecificationRequest,
    RequestLaunchTemplateData, ResourceType, ResponseLaunchTemplateData, VolumeType,
};

use crate::error::{ErrorType, FunctionError};
use crate::phases::aws_error;
use crate::phases::common::{error_code, removal, tag_spec};

/// The launch template settings Tenantry compares (what it sets, normalised).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateShape {
    pub http_tokens: String,
    pub hop_limit: i32,
    pub volumes: Vec<Volume>,
    pub user_data: Option<String>,
    pub key_name: Option<String>,
}

/// One block device of a launch template.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Volume {
    pub device: String,
    pub size_gib: i32,
    pub volume_type: String,
    pub encrypted: bool,
    pub kms_key: Option<String>,
}

pub fn request_data(
    shape: &TemplateShape,
    tags: &BTreeMap<String, String>,
) -> RequestLaunchTemplateData {
    let devices = shape
        .volumes
        .iter()
        .map(|v| {
            LaunchTemplateBlockDeviceMappingRequest::builder()
                .device_name(&v.device)
                .ebs(
                    LaunchTemplateEbsBlockDeviceRequest::builder()
                        .volume_size(v.size_gib)
                        .volume_type(VolumeType::from(v.volume_type.as_str()))
                        .encrypted(v.encrypted)
                        .set_kms_key_id(v.kms_key.clone())
                        .delete_on_termination(true)
                        .build(),
                )
                .build()
        })
        .collect();
    let tag_specs = [ResourceType::Instance, ResourceType::Volume]
        .into_iter()
        .map(|kind| {
            let spec = tag_spec(kind, tags);
            LaunchTemplateTagSpecificationRequest::builder()
                .set_resource_type(spec.resource_type().cloned())
                .set_tags(Some(spec.tags().to_vec()))
                .build()
        })
        .collect();
    RequestLaunchTemplateData::builder()
        .metadata_options(
            LaunchTemplateInstanceMetadataOptionsRequest::builder()
                .http_tokens(LaunchTemplateHttpTokensState::from(
                    shape.http_tokens.as_str(),
                ))
                .http_put_response_hop_limit(shape.hop_limit)
                .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
                .build(),
        )
        .set_block_device_mappings(Some(devices))
        .set_user_data(shape.user_data.clone())
        .set_tag_specifications(Some(tag_specs))
        .build()
}

impl TemplateShape {
    /// The comparable shape of a launch template version as EC2 describes it.
    pub fn of(data: &ResponseLaunchTemplateData) -> TemplateShape {
        let metadata = data.metadata_options();
        let mut volumes: Vec<Volume> = data
            .block_device_mappings()
            .iter()
            .map(|m| {
                let ebs = m.ebs();
                Volume {
                    device: m.device_name().unwrap_or_default().to_owned(),
                    size_gib: ebs.and_then(|e| e.volume_size()).unwrap_or_default(),
                    volume_type: ebs
                        .and_then(|e| e.volume_type())
                        .map(|t| t.as_str().to_owned())
                        .unwrap_or_default(),
                    encrypted: ebs.and_then(|e| e.encrypted()).unwrap_or(false),
                    kms_key: ebs.and_then(|e| e.kms_key_id()).map(str::to_owned),
                }
            })
            .collect();
        volumes.sort();
        TemplateShape {
            http_tokens: metadata
                .and_then(|m| m.http_tokens())
                .map(|t| t.as_str().to_owned())
                .unwrap_or_else(|| "optional".to_owned()),
            hop_limit: metadata
                .and_then(|m| m.http_put_response_hop_limit())
                .unwrap_or(1),
            volumes,
            user_data: data.user_data().map(str::to_owned),
            key_name: data.key_name().map(str::to_owned),
        }
    }
}

/// A launch template version number as node groups name it (`1` when EC2 reported none: a new
/// template's first version).
pub fn version_of(number: Option<i64>) -> String {
    number.unwrap_or(1).to_string()
}

/// The latest version of a launch template.
pub struct Latest {
    pub id: String,
    pub number: Option<i64>,
    pub data: Option<ResponseLaunchTemplateData>,
}

/// The latest version of the launch template named `name`.
pub async fn find_latest(
    ec2: &aws_sdk_ec2::Client,
    name: &str,
) -> Result<Option<Latest>, FunctionError> {
    let found = ec2
        .describe_launch_template_versions()
        .launch_template_name(name)
        .versions("$Latest")
        .send()
        .await;
    match found {
        Ok(out) => Ok(out.launch_template_versions().first().and_then(|v| {
            Some(Latest {
                id: v.launch_template_id()?.to_owned(),
                number: v.version_number(),
                data: v.launch_template_data().cloned(),
            })
        })),
        Err(e)
            if matches!(
                error_code(&e),
                Some("InvalidLaunchTemplateName.NotFoundException")
                    | Some("InvalidLaunchTemplateId.NotFound")
                    | Some("InvalidLaunchTemplateName.MalformedException")
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error("DescribeLaunchTemplateVersions", e)),
    }
}

/// Creates the template `name` with `shape` and `tags`; its id and version. A template of the
/// name made since the read (a retried create whose first attempt went through) is taken.
pub async fn create(
    ec2: &aws_sdk_ec2::Client,
    name: &str,
    shape: &TemplateShape,
    tags: &BTreeMap<String, String>,
) -> Result<(String, String), FunctionError> {
    let created = ec2
        .create_launch_template()
        .launch_template_name(name)
        .version_description("tenantry")
        .launch_template_data(request_data(shape, tags))
        .tag_specifications(tag_spec(ResourceType::LaunchTemplate, tags))
        .send()
        .await;
    let found = match created {
        Ok(out) => out.launch_template().and_then(|t| {
            let id = t.launch_template_id()?.to_owned();
            Some((id, version_of(t.latest_version_number())))
        }),
        Err(e) if error_code(&e) == Some("InvalidLaunchTemplateName.AlreadyExistsException") => {
            find_latest(ec2, name)
                .await?
                .map(|t| (t.id, version_of(t.number)))
        }
        Err(e) => return Err(aws_error("CreateLaunchTemplate", e)),
    };
    found.ok_or_else(|| {
        FunctionError::new(
            ErrorType::Retryable,
            format!("launch template {name:?} has no id yet"),
        )
    })
}

/// Adds a version with `shape` to template `id`; its number, when EC2 reports one.
pub async fn create_version(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    shape: &TemplateShape,
    tags: &BTreeMap<String, String>,
) -> Result<Option<String>, FunctionError> {
    let created = ec2
        .create_launch_template_version()
        .launch_template_id(id)
        .version_description("tenantry")
        .launch_template_data(request_data(shape, tags))
        .send()
        .await
        .map_err(|e| aws_error("CreateLaunchTemplateVersion", e))?;
    let number = created
        .launch_template_version()
        .and_then(|v| v.version_number());
    Ok(number.map(|v| v.to_string()))
}

/// Deletes the template named `name` (every version); already gone is removed.
pub async fn remove(ec2: &aws_sdk_ec2::Client, name: &str) -> Result<(), FunctionError> {
    let result = ec2
        .delete_launch_template()
        .launch_template_name(name)
        .send()
        .await;
    removal("DeleteLaunchTemplate", result).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{
        LaunchTemplateBlockDeviceMapping, LaunchTemplateEbsBlockDevice,
        LaunchTemplateInstanceMetadataOptions,
    };

    fn volume(device: &str, size: i32) -> LaunchTemplateBlockDeviceMapping {
        let ebs = LaunchTemplateEbsBlockDevice::builder()
            .volume_size(size)
            .volume_type(VolumeType::Gp3)
            .encrypted(true)
            .kms_key_id("key");
        LaunchTemplateBlockDeviceMapping::builder()
            .device_name(device)
            .ebs(ebs.build())
            .build()
    }

    #[test]
    fn a_version_without_metadata_options_reads_as_imdsv1_with_one_hop() {
        // What EC2 defaults to, so that a template someone stripped is a difference.
        let data = ResponseLaunchTemplateData::builder()
            .block_device_mappings(volume("/dev/xvdb", 50))
            .block_device_mappings(volume("/dev/xvda", 4))
            .build();
        let shape = TemplateShape::of(&data);
        assert_eq!(
            (shape.http_tokens.as_str(), shape.hop_limit),
            ("optional", 1)
        );
        let devices: Vec<_> = shape.volumes.iter().map(|v| v.device.as_str()).collect();
        assert_eq!(
            devices,
            ["/dev/xvda", "/dev/xvdb"],
            "sorted, as desired volumes are"
        );
    }

    #[test]
    fn imdsv2_and_the_hop_limit_are_read_back() {
        let metadata = LaunchTemplateInstanceMetadataOptions::builder()
            .http_tokens(aws_sdk_ec2::types::LaunchTemplateHttpTokensState::Required)
            .http_put_response_hop_limit(1)
            .build();
        let data = ResponseLaunchTemplateData::builder()
            .metadata_options(metadata)
            .build();
        let shape = TemplateShape::of(&data);
        assert_eq!(
            (shape.http_tokens.as_str(), shape.hop_limit),
            ("required", 1)
        );
        assert_eq!(version_of(None), "1", "a new template's first version");
    }
}
