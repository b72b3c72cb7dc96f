//! EC2 launch templates: versions of launch template data, as `CreateLaunchTemplate` and
//! `CreateLaunchTemplateVersion` leave them; and the network limits of the example's instance
//! types. EC2's errors are unmodeled: they carry only a code.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_ec2::operation::delete_launch_template::DeleteLaunchTemplateError;
use aws_sdk_ec2::operation::describe_launch_template_versions::DescribeLaunchTemplateVersionsError;
use aws_sdk_ec2::types::{
    InstanceType, InstanceTypeInfo, LaunchTemplate, LaunchTemplateBlockDeviceMapping,
    LaunchTemplateEbsBlockDevice, LaunchTemplateInstanceMetadataOptions, LaunchTemplateVersion,
    NetworkInfo, RequestLaunchTemplateData, ResponseLaunchTemplateData,
};
use aws_sdk_ec2::Client;
use aws_smithy_mocks::{MockResponse as R, Rule};
use aws_smithy_types::error::ErrorMetadata;

use super::{answer, Calls};

const NOT_FOUND: &str = "InvalidLaunchTemplateName.NotFoundException";

/// Network interfaces and IPv4 addresses per interface of the example's instance types, as
/// `DescribeInstanceTypes` reports them.
const INSTANCE_NETWORK: &[(&str, i32, i32)] = &[
    ("m5.large", 3, 10),
    ("t3.medium", 3, 6),
    ("t3a.medium", 3, 6),
    ("c5.large", 3, 10),
    ("c5a.large", 3, 10),
];

/// One launch template: its id and every version's data (version n at index n-1).
#[derive(Clone, Debug, Default)]
pub struct Template {
    pub id: String,
    pub versions: Vec<ResponseLaunchTemplateData>,
}

/// The launch templates of one account and region, by name.
#[derive(Clone, Default)]
pub struct Ec2Double {
    templates: Arc<Mutex<BTreeMap<String, Template>>>,
    calls: Calls,
}

fn not_found() -> ErrorMetadata {
    ErrorMetadata::builder()
        .code(NOT_FOUND)
        .message("no such launch template")
        .build()
}

/// The data EC2 reports for the data a request gave.
fn response(data: &RequestLaunchTemplateData) -> ResponseLaunchTemplateData {
    let metadata = data.metadata_options().map(|m| {
        LaunchTemplateInstanceMetadataOptions::builder()
            .set_http_tokens(m.http_tokens().cloned())
            .set_http_put_response_hop_limit(m.http_put_response_hop_limit())
            .set_http_endpoint(m.http_endpoint().cloned())
            .build()
    });
    let devices = data
        .block_device_mappings()
        .iter()
        .map(|d| {
            let ebs = d.ebs().map(|e| {
                LaunchTemplateEbsBlockDevice::builder()
                    .set_encrypted(e.encrypted())
                    .set_kms_key_id(e.kms_key_id().map(str::to_owned))
                    .set_volume_size(e.volume_size())
                    .set_volume_type(e.volume_type().cloned())
                    .set_delete_on_termination(e.delete_on_termination())
                    .build()
            });
            LaunchTemplateBlockDeviceMapping::builder()
                .set_device_name(d.device_name().map(str::to_owned))
                .set_ebs(ebs)
                .build()
        })
        .collect();
    ResponseLaunchTemplateData::builder()
        .set_metadata_options(metadata)
        .set_block_device_mappings(Some(devices))
        .set_user_data(data.user_data().map(str::to_owned))
        .set_key_name(data.key_name().map(str::to_owned))
        .build()
}

impl Ec2Double {
    pub fn new(calls: &Calls) -> Self {
        Ec2Double {
            calls: calls.clone(),
            ..Default::default()
        }
    }

    pub fn templates(&self) -> BTreeMap<String, Template> {
        self.templates.lock().expect("ec2").clone()
    }

    /// Adds a version out of band, as someone editing the template in the console would.
    pub fn add_version(&self, name: &str, change: impl FnOnce(&mut ResponseLaunchTemplateData)) {
        let mut templates = self.templates.lock().expect("ec2");
        let template = templates.get_mut(name).expect("template");
        let mut data = template.versions.last().cloned().expect("a version");
        change(&mut data);
        template.versions.push(data);
    }

    pub fn rules(&self) -> Vec<Rule> {
        use aws_sdk_ec2::operation::*;
        vec![
            answer!(
                self,
                Client::describe_instance_types,
                "ec2:DescribeInstanceTypes",
                |_me, req| {
                    let infos = INSTANCE_NETWORK
                        .iter()
                        .filter(|(t, _, _)| req.instance_types().contains(&InstanceType::from(*t)))
                        .map(|&(t, interfaces, addresses)| {
                            InstanceTypeInfo::builder()
                                .instance_type(InstanceType::from(t))
                                .network_info(
                                    NetworkInfo::builder()
                                        .maximum_network_interfaces(interfaces)
                                        .ipv4_addresses_per_interface(addresses)
                                        .build(),
                                )
                                .build()
                        })
                        .collect();
                    R::Output(
                        describe_instance_types::DescribeInstanceTypesOutput::builder()
                            .set_instance_types(Some(infos))
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::describe_launch_template_versions,
                "ec2:DescribeLaunchTemplateVersions",
                |me, req| {
                    let name = req.launch_template_name().unwrap_or_default();
                    let Some(t) = me.templates().get(name).cloned() else {
                        return R::Error(DescribeLaunchTemplateVersionsError::generic(not_found()));
                    };
                    assert_eq!(
                        req.versions(),
                        ["$Latest"],
                        "the phases read the latest version"
                    );
                    let latest = t.versions.len();
                    R::Output(
                    describe_launch_template_versions::DescribeLaunchTemplateVersionsOutput::builder()
                        .launch_template_versions(
                            LaunchTemplateVersion::builder()
                                .launch_template_id(&t.id)
                                .launch_template_name(name)
                                .version_number(latest as i64)
                                .set_launch_template_data(t.versions.last().cloned())
                                .build(),
                        )
                        .build(),
                )
                }
            ),
            answer!(
                self,
                Client::create_launch_template,
                "ec2:CreateLaunchTemplate",
                |me, req| {
                    let name = req.launch_template_name().unwrap_or_default().to_owned();
                    let mut templates = me.templates.lock().expect("ec2");
                    let id = format!("lt-{:04}", templates.len() + 1);
                    let data = response(req.launch_template_data().expect("data"));
                    templates.insert(
                        name.clone(),
                        Template {
                            id: id.clone(),
                            versions: vec![data],
                        },
                    );
                    R::Output(
                        create_launch_template::CreateLaunchTemplateOutput::builder()
                            .launch_template(
                                LaunchTemplate::builder()
                                    .launch_template_id(id)
                                    .launch_template_name(name)
                                    .latest_version_number(1)
                                    .build(),
                            )
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::create_launch_template_version,
                "ec2:CreateLaunchTemplateVersion",
                |me, req| {
                    let mut templates = me.templates.lock().expect("ec2");
                    let template = templates
                        .values_mut()
                        .find(|t| Some(t.id.as_str()) == req.launch_template_id())
                        .expect("a template the scenario knows");
                    template
                        .versions
                        .push(response(req.launch_template_data().expect("data")));
                    let number = template.versions.len() as i64;
                    R::Output(
                        create_launch_template_version::CreateLaunchTemplateVersionOutput::builder(
                        )
                        .launch_template_version(
                            LaunchTemplateVersion::builder()
                                .launch_template_id(&template.id)
                                .version_number(number)
                                .build(),
                        )
                        .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::delete_launch_template,
                "ec2:DeleteLaunchTemplate",
                |me, req| {
                    let name = req.launch_template_name().unwrap_or_default();
                    match me.templates.lock().expect("ec2").remove(name) {
                        Some(_) => R::Output(
                            delete_launch_template::DeleteLaunchTemplateOutput::builder().build(),
                        ),
                        None => R::Error(DeleteLaunchTemplateError::generic(not_found())),
                    }
                }
            ),
        ]
    }
}
