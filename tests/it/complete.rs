//! What a complete platform contains (issue 4), checked setting by setting in moto, the gateway
//! and the cluster's Kubernetes double after `examples/platform.json` was provisioned: node groups
//! with their launch templates, the six add-ons, access entries, the identity provider and its
//! group bindings, the in-cluster bootstrap, alarms, topic and secret.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use tenantry::store::PlatformStatus;
use tenantry_gateway::LocalStack;

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// Checks everything the platform phases after the cluster produced.
pub async fn assert_complete_platform(
    stack: &LocalStack,
    aws: &aws_config::SdkConfig,
    spec: &Value,
    status: &PlatformStatus,
) {
    let cluster = status.outputs["clusterName"].as_str().unwrap().to_owned();
    let data_key = status.outputs["dataKeyArn"].as_str().unwrap().to_owned();
    let eks = aws_sdk_eks::Client::new(aws);
    let ec2 = aws_sdk_ec2::Client::new(aws);

    // Node groups and launch templates.
    let groups = spec["nodeGroups"].as_array().unwrap();
    assert_eq!(groups.len(), 4, "critical, general, general-spot, batch");
    let private: BTreeSet<String> = status.outputs["privateSubnetIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| s(v).to_owned())
        .collect();
    for g in groups {
        let name = format!("{cluster}-{}", s(&g["name"]));
        let ng = eks
            .describe_nodegroup()
            .cluster_name(&cluster)
            .nodegroup_name(&name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("node group {name}: {e:?}"));
        let ng = ng.nodegroup().unwrap();
        assert_eq!(ng.status().map(|s| s.as_str()), Some("ACTIVE"), "{name}");
        assert_eq!(
            ng.capacity_type().map(|c| c.as_str()),
            Some(s(&g["capacityType"])),
            "{name}"
        );
        assert_eq!(
            ng.ami_type().map(|a| a.as_str()),
            Some("BOTTLEROCKET_x86_64")
        );
        let types: Vec<&str> = g["instanceTypes"]
            .as_array()
            .unwrap()
            .iter()
            .map(s)
            .collect();
        assert_eq!(ng.instance_types(), types.as_slice(), "{name}");
        let scaling = ng.scaling_config().unwrap();
        assert_eq!(
            (
                scaling.min_size(),
                scaling.desired_size(),
                scaling.max_size()
            ),
            (
                g["minSize"].as_i64().map(|v| v as i32),
                g["desiredSize"].as_i64().map(|v| v as i32),
                g["maxSize"].as_i64().map(|v| v as i32)
            ),
            "{name}"
        );
        let labels: BTreeMap<String, String> = ng
            .labels()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let want: BTreeMap<String, String> = serde_json::from_value(g["labels"].clone()).unwrap();
        assert_eq!(labels, want, "{name} labels");
        let taints: Vec<(String, String, String)> = ng
            .taints()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap().to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                    t.effect().unwrap().as_str().to_owned(),
                )
            })
            .collect();
        let want_taints: Vec<(String, String, String)> = g["taints"]
            .as_array()
            .map(|ts| {
                ts.iter()
                    .map(|t| {
                        (
                            s(&t["key"]).to_owned(),
                            s(&t["value"]).to_owned(),
                            "NO_SCHEDULE".to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(taints, want_taints, "{name} taints");
        let tags = ng.tags().unwrap();
        assert_eq!(tags["k8s.io/cluster-autoscaler/enabled"], "true");
        assert_eq!(
            tags[&format!("k8s.io/cluster-autoscaler/{cluster}")],
            "owned"
        );
        assert_eq!(tags["tenantry:platform"], s(&spec["id"]));
        let subnets: BTreeSet<String> = ng.subnets().iter().cloned().collect();
        assert_eq!(subnets, private, "{name} on the private subnets");
        assert_eq!(ng.node_role(), status.outputs["nodeRoleArn"].as_str());
        let lt = ng.launch_template().expect("launch template");
        let versions = ec2
            .describe_launch_template_versions()
            .launch_template_id(lt.id().unwrap())
            .versions("$Latest")
            .send()
            .await
            .unwrap();
        let data = versions.launch_template_versions()[0]
            .launch_template_data()
            .unwrap();
        let metadata = data.metadata_options().unwrap();
        assert_eq!(metadata.http_tokens().map(|t| t.as_str()), Some("required"));
        assert_eq!(metadata.http_put_response_hop_limit(), Some(1));
        assert_eq!(data.key_name(), None, "no SSH key");
        // Custom networking: max pods is what the secondary interfaces of the group's smallest
        // instance type hold, by EC2's own limits (the primary interface holds no pod).
        use base64::Engine;
        let settings = base64::engine::general_purpose::STANDARD
            .decode(data.user_data().expect("Bottlerocket settings"))
            .unwrap();
        let settings = String::from_utf8(settings).unwrap();
        let fits = custom_networking_max_pods(&ec2, &types).await;
        assert!(
            settings.contains(&format!("[settings.kubernetes]\nmax-pods = {fits}\n")),
            "{name}: {settings}"
        );
        let volumes = data.block_device_mappings();
        assert_eq!(volumes.len(), 2, "Bottlerocket OS and data volumes");
        for v in volumes {
            let ebs = v.ebs().unwrap();
            assert_eq!(ebs.encrypted(), Some(true));
            assert_eq!(ebs.volume_type().map(|t| t.as_str()), Some("gp3"));
            assert_eq!(ebs.kms_key_id(), Some(data_key.as_str()));
        }
        let data_volume = volumes
            .iter()
            .find(|v| v.device_name() == Some("/dev/xvdb"))
            .unwrap();
        assert_eq!(
            data_volume.ebs().unwrap().volume_size().map(i64::from),
            Some(g["diskSizeGib"].as_i64().unwrap_or(50))
        );
    }

    // Add-ons: the six, each at the newest version compatible with the cluster.
    let version = s(&spec["kubernetesVersion"]);
    let addons = spec["addons"].as_array().unwrap();
    assert_eq!(addons.len(), 6);
    for a in addons {
        let name = s(&a["name"]);
        let addon = eks
            .describe_addon()
            .cluster_name(&cluster)
            .addon_name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("add-on {name}: {e:?}"));
        let addon = addon.addon().unwrap();
        assert_eq!(addon.status().map(|s| s.as_str()), Some("ACTIVE"), "{name}");
        let versions = eks
            .describe_addon_versions()
            .addon_name(name)
            .kubernetes_version(version)
            .send()
            .await
            .unwrap();
        let newest = versions.addons()[0]
            .addon_versions()
            .iter()
            .filter_map(|v| v.addon_version())
            .max_by_key(|v| tenantry::phases::addons::version_key(v))
            .unwrap();
        assert_eq!(addon.addon_version(), Some(newest), "{name} at latest");
        let config: Value = addon
            .configuration_values()
            .map(|c| serde_json::from_str(c).unwrap())
            .unwrap_or(Value::Null);
        if let Some(want) = a.get("configurationValues") {
            for (k, v) in want.as_object().unwrap() {
                assert_eq!(&config[k], v, "{name} configuration {k}");
            }
        }
        assert_eq!(addon.tags().unwrap()["tenantry:platform"], s(&spec["id"]));
    }
    let cni = eks
        .describe_addon()
        .cluster_name(&cluster)
        .addon_name("vpc-cni")
        .send()
        .await
        .unwrap();
    let cni: Value =
        serde_json::from_str(cni.addon().unwrap().configuration_values().unwrap()).unwrap();
    assert_eq!(
        cni["enableNetworkPolicy"], "true",
        "VPC CNI network policy on"
    );
    assert_eq!(cni["env"]["AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG"], "true");
    assert_eq!(
        cni["env"]["ENI_CONFIG_LABEL_DEF"],
        "topology.kubernetes.io/zone"
    );
    // Pod Identity platform: EBS CSI's association comes with the add-on, the other workload
    // roles get their own.
    let associations = eks
        .list_pod_identity_associations()
        .cluster_name(&cluster)
        .send()
        .await
        .unwrap();
    let accounts: BTreeSet<String> = associations
        .associations()
        .iter()
        .map(|a| {
            format!(
                "{}/{}",
                a.namespace().unwrap(),
                a.service_account().unwrap()
            )
        })
        .collect();
    assert!(
        accounts.contains("kube-system/ebs-csi-controller-sa"),
        "{accounts:?}"
    );
    assert!(
        accounts.contains("kube-system/cluster-autoscaler"),
        "{accounts:?}"
    );
    let tenants = spec["tenants"].as_array().unwrap().len();
    assert_eq!(
        accounts.len(),
        5 + tenants,
        "EBS CSI + 4 workload roles + one `workload` per tenant: {accounts:?}"
    );
    for tenant in spec["tenants"].as_array().unwrap() {
        let account = format!("{}/workload", tenant["name"].as_str().unwrap());
        assert!(accounts.contains(&account), "{account}: {accounts:?}");
    }

    // Access: admin entries with the cluster admin policy; the identity provider.
    for principal in spec["access"]["adminPrincipals"].as_array().unwrap() {
        let policies = eks
            .list_associated_access_policies()
            .cluster_name(&cluster)
            .principal_arn(s(principal))
            .send()
            .await
            .unwrap();
        let p = &policies.associated_access_policies()[0];
        assert!(p
            .policy_arn()
            .unwrap()
            .ends_with("/AmazonEKSClusterAdminPolicy"));
        assert_eq!(
            p.access_scope()
                .and_then(|s| s.r#type())
                .map(|t| t.as_str()),
            Some("cluster")
        );
    }
    let idp = &spec["access"]["oidcIdentityProvider"];
    let config = eks
        .describe_identity_provider_config()
        .cluster_name(&cluster)
        .identity_provider_config(
            aws_sdk_eks::types::IdentityProviderConfig::builder()
                .r#type("oidc")
                .name(s(&idp["name"]))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let oidc = config.identity_provider_config().unwrap().oidc().unwrap();
    assert_eq!(oidc.issuer_url(), idp["issuerUrl"].as_str());
    assert_eq!(oidc.client_id(), idp["clientId"].as_str());
    assert_eq!(oidc.groups_claim(), idp["groupsClaim"].as_str());
    assert_eq!(oidc.groups_prefix(), idp["groupsPrefix"].as_str());
    assert_eq!(oidc.username_claim(), idp["usernameClaim"].as_str());

    // Inside the cluster.
    let kube = stack.kube_client_for(&cluster).expect("kube client");
    assert_pods_get_addresses(&kube, &eks, &ec2, spec, status).await;
    let bindings: kube::Api<ClusterRoleBinding> = kube::Api::all(kube.clone());
    for m in idp["groupMappings"].as_array().unwrap() {
        let b = bindings
            .get(&format!("tenantry:{}", s(&m["kubernetesGroup"])))
            .await
            .unwrap();
        assert_eq!(b.role_ref.name, s(&m["clusterRole"]));
        let subject = &b.subjects.unwrap()[0];
        assert_eq!(subject.kind, "Group");
        assert_eq!(
            subject.name,
            format!("{}{}", s(&idp["groupsPrefix"]), s(&m["idpGroup"]))
        );
    }
    let namespaces: kube::Api<Namespace> = kube::Api::all(kube.clone());
    let system = namespaces.get("kube-system").await.unwrap();
    let labels = system.metadata.labels.unwrap();
    assert!(labels.contains_key("pod-security.kubernetes.io/enforce"));
    assert_eq!(labels["pod-security.kubernetes.io/warn"], "baseline");
    let default = namespaces
        .get("default")
        .await
        .unwrap()
        .metadata
        .labels
        .unwrap();
    assert_eq!(default["pod-security.kubernetes.io/enforce"], "baseline");
    let classes: kube::Api<PriorityClass> = kube::Api::all(kube.clone());
    assert_eq!(
        classes
            .get("tenantry-platform-critical")
            .await
            .unwrap()
            .value,
        1_000_000
    );
    // The default StorageClass: gp3 encrypted with the platform data key, the only default.
    let storage: kube::Api<k8s_openapi::api::storage::v1::StorageClass> =
        kube::Api::all(kube.clone());
    let all_classes = storage.list(&Default::default()).await.unwrap().items;
    let defaults: Vec<_> = all_classes
        .iter()
        .filter(|c| {
            c.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("storageclass.kubernetes.io/is-default-class"))
                .is_some_and(|v| v == "true")
        })
        .collect();
    assert_eq!(defaults.len(), 1, "{all_classes:?}");
    let params = defaults[0].parameters.clone().unwrap_or_default();
    assert_eq!(defaults[0].provisioner, "ebs.csi.aws.com");
    assert_eq!(params.get("type").map(String::as_str), Some("gp3"));
    assert_eq!(params.get("encrypted").map(String::as_str), Some("true"));
    assert_eq!(params.get("kmsKeyId"), Some(&data_key));
    let deployments: kube::Api<Deployment> = kube::Api::namespaced(kube.clone(), "kube-system");
    let autoscaler = deployments.get("cluster-autoscaler").await.unwrap();
    let fields = autoscaler
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|f| f.manager)
        .collect::<Vec<_>>();
    assert!(
        fields.iter().any(|m| m == "tenantry"),
        "field manager: {fields:?}"
    );
    let pod = autoscaler.spec.unwrap().template.spec.unwrap();
    let container = &pod.containers[0];
    let args = container.args.clone().unwrap();
    assert!(args.contains(&"--expander=priority".to_owned()), "{args:?}");
    assert!(
        args.iter()
            .any(|a| a.contains(&format!("k8s.io/cluster-autoscaler/{cluster}"))),
        "{args:?}"
    );
    let security = container.security_context.clone().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.run_as_non_root, Some(true));
    assert!(container.resources.as_ref().unwrap().limits.is_some());
    let config_maps: kube::Api<ConfigMap> = kube::Api::namespaced(kube.clone(), "kube-system");
    let priorities = config_maps
        .get("cluster-autoscaler-priority-expander")
        .await
        .unwrap();
    let text = &priorities.data.unwrap()["priorities"];
    assert!(text.contains(&format!("{cluster}-general-spot")), "{text}");
    let accounts: kube::Api<ServiceAccount> = kube::Api::namespaced(kube, "kube-system");
    let sa = accounts.get("cluster-autoscaler").await.unwrap();
    // Pod Identity platform: no IRSA annotation, the association links the role.
    assert!(!sa
        .metadata
        .annotations
        .unwrap_or_default()
        .contains_key("eks.amazonaws.com/role-arn"));

    // Observability: alarms to the platform's topic, the configuration secret.
    let cloudwatch = aws_sdk_cloudwatch::Client::new(aws);
    let alarms = cloudwatch
        .describe_alarms()
        .alarm_name_prefix(format!("tenantry-{cluster}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        alarms.metric_alarms().len(),
        4,
        "failed nodes, CPU, memory, API server errors"
    );
    let topic = status.outputs["alarmTopicArn"].as_str().unwrap();
    for alarm in alarms.metric_alarms() {
        assert_eq!(
            alarm.alarm_actions(),
            [topic.to_owned()],
            "{:?}",
            alarm.alarm_name()
        );
        assert_eq!(alarm.namespace(), Some("ContainerInsights"));
    }
    let sns = aws_sdk_sns::Client::new(aws);
    let attributes = sns
        .get_topic_attributes()
        .topic_arn(topic)
        .send()
        .await
        .unwrap();
    assert!(attributes
        .attributes()
        .unwrap()
        .contains_key("KmsMasterKeyId"));
    let secret = aws_sdk_secretsmanager::Client::new(aws)
        .describe_secret()
        .secret_id(status.outputs["platformSecretArn"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(secret.kms_key_id(), Some(data_key.as_str()));
}

/// VPC CNI custom networking, checked for what AWS will do with it: every zone a node can run
/// in has an `ENIConfig` of that name (the VPC CNI reads the one named by the node's zone label,
/// and a node without one gives its pods no address), naming a pod subnet of that zone, carved
/// from the pod CIDR, in the cluster's VPC, with the cluster's security group. (The add-on's
/// settings and the node groups' max pods are checked with the add-ons and the node groups.)
async fn assert_pods_get_addresses(
    kube: &kube::Client,
    eks: &aws_sdk_eks::Client,
    ec2: &aws_sdk_ec2::Client,
    spec: &Value,
    status: &PlatformStatus,
) {
    let cluster_name = s(&status.outputs["clusterName"]);
    let cluster = eks
        .describe_cluster()
        .name(cluster_name)
        .send()
        .await
        .unwrap();
    let vpc_config = cluster.cluster().unwrap().resources_vpc_config().unwrap();
    let cluster_group = vpc_config
        .cluster_security_group_id()
        .expect("EKS reports the cluster security group")
        .to_owned();
    let node_subnets = ec2
        .describe_subnets()
        .set_subnet_ids(Some(
            status.outputs["privateSubnetIds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| s(v).to_owned())
                .collect(),
        ))
        .send()
        .await
        .unwrap();
    let vpc = node_subnets.subnets()[0].vpc_id().unwrap().to_owned();
    let node_zones: BTreeSet<String> = node_subnets
        .subnets()
        .iter()
        .map(|s| s.availability_zone().unwrap().to_owned())
        .collect();
    let groups = ec2
        .describe_security_groups()
        .group_ids(&cluster_group)
        .send()
        .await
        .unwrap();
    assert_eq!(groups.security_groups()[0].vpc_id(), Some(vpc.as_str()));

    let configs: kube::Api<tenantry::kubernetes::EniConfig> = kube::Api::all(kube.clone());
    let configs = configs.list(&Default::default()).await.unwrap().items;
    let by_zone: BTreeMap<String, _> = configs
        .iter()
        .map(|c| (c.metadata.name.clone().unwrap(), &c.spec))
        .collect();
    assert_eq!(
        by_zone.keys().cloned().collect::<BTreeSet<_>>(),
        node_zones,
        "one ENIConfig per zone nodes run in, named for it"
    );
    let pod_cidr: ipnet::Ipv4Net = s(&spec["network"]["podCidr"]).parse().unwrap();
    for (zone, config) in &by_zone {
        let subnet = ec2
            .describe_subnets()
            .subnet_ids(&config.subnet)
            .send()
            .await
            .unwrap();
        let subnet = &subnet.subnets()[0];
        assert_eq!(subnet.availability_zone(), Some(zone.as_str()), "{zone}");
        assert_eq!(subnet.vpc_id(), Some(vpc.as_str()), "{zone}");
        let cidr: ipnet::Ipv4Net = subnet.cidr_block().unwrap().parse().unwrap();
        assert!(
            pod_cidr.contains(&cidr),
            "{zone}: {cidr} outside {pod_cidr}"
        );
        assert_eq!(
            config.security_groups,
            std::slice::from_ref(&cluster_group),
            "{zone}"
        );
    }
}

/// `(interfaces - 1) x (addresses per interface - 1) + 2` of the smallest of `types`, from EC2.
async fn custom_networking_max_pods(ec2: &aws_sdk_ec2::Client, types: &[&str]) -> i32 {
    let limits = ec2
        .describe_instance_types()
        .set_instance_types(Some(types.iter().map(|t| (*t).into()).collect()))
        .send()
        .await
        .unwrap();
    limits
        .instance_types()
        .iter()
        .map(|t| {
            let n = t.network_info().unwrap();
            (n.maximum_network_interfaces().unwrap() - 1)
                * (n.ipv4_addresses_per_interface().unwrap() - 1)
                + 2
        })
        .min()
        .unwrap()
}
