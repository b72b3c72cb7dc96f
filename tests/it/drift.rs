//! Drift checks end to end: `DriftCheckRequested` on the bus → intake → the `drift-check`
//! workflow (every phase's `observe`, the `drift` function, repairs, observe again) → a report in
//! the state store and the platform's state. Every change is made out of band (the AWS SDK
//! against moto and the gateway, or the cluster's Kubernetes double), one or more per phase.

use aws_sdk_eks::types::{LogSetup, LogType, Logging, NodegroupScalingConfig, VpcConfigRequest};
use aws_sdk_sfn::types::ExecutionStatus;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use tenantry::drift::{DriftAction, DriftClass, DriftReport, DriftResult, RemediateRequest};
use tenantry::events::RequestKind;
use tenantry::spec::DriftRemediation;
use tenantry::store::{LifecycleState, RequestState};
use tenantry_gateway::inspect::tag_filter;

use crate::platform::{env, mutating, platform_calls, Env};

use crate::observe::{ADMIN, AUTOSCALER_ROLE, CLUSTER, ELB_TAG, GENERAL_GROUP, TENANT};

const ADMIN_POLICY: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy";
/// A principal the platform spec does not name.
const INTRUDER: &str = "arn:aws:iam::123456789012:role/intruder";
/// The example tenant's owner.
const OWNER: &str = "arn:aws:iam::111122223333:role/team-checkout";

/// What one out-of-band change must show up as: the resource (exactly, or its end for the
/// Kubernetes ids), the field, and the class.
pub(crate) struct Expected {
    resource: String,
    field: String,
    class: DriftClass,
}

fn expect(resource: impl Into<String>, field: impl Into<String>, class: DriftClass) -> Expected {
    Expected {
        resource: resource.into(),
        field: field.into(),
        class,
    }
}

/// The value of tag `key`.
fn tag<'a>(tags: &'a [aws_sdk_ec2::types::Tag], key: &str) -> &'a str {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
        .unwrap_or_else(|| panic!("no tag {key}: {tags:?}"))
}

/// Runs a check to its end (it must succeed) and returns its report.
pub(crate) async fn check(env: &Env, request_id: &str, mode: DriftRemediation) -> DriftReport {
    let run = env
        .check_drift(request_id, Some(RemediateRequest::All(mode)))
        .await;
    assert_eq!(
        run.status,
        ExecutionStatus::Succeeded,
        "{request_id}: {:?} {:?}",
        run.cause,
        run.failures()
    );
    env.store
        .get_drift_report(&env.platform_id(), request_id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{request_id}: no report"))
}

/// The entry of `report` for `e`, checked for its class.
fn found<'a>(report: &'a DriftReport, e: &Expected) -> &'a tenantry::drift::Difference {
    let d = report
        .differences
        .iter()
        .find(|d| {
            d.field == e.field && (d.resource == e.resource || d.resource.ends_with(&e.resource))
        })
        .unwrap_or_else(|| {
            let listed: Vec<_> = report
                .differences
                .iter()
                .map(|d| (&d.resource, &d.field))
                .collect();
            panic!(
                "no drift on {} field {}; reported: {listed:#?}",
                e.resource, e.field
            )
        });
    assert_eq!(d.class, e.class, "{}: {d:?}", e.resource);
    d
}

async fn state(env: &Env) -> (LifecycleState, Option<tenantry::drift::DriftSummary>) {
    let status = env
        .store
        .get_status(&env.platform_id())
        .await
        .unwrap()
        .expect("status")
        .value;
    (status.state, status.last_drift)
}

#[tokio::test]
async fn a_drift_check_reports_then_repairs_out_of_band_changes_in_every_phase() {
    let env = env().await;
    let run = env.run(RequestKind::PlatformProvision, "drift-p-1").await;
    assert_eq!(
        run.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        run.failures()
    );
    let platform = env.platform_id();

    // A clean platform: nothing to report, and the check writes nothing to the platform.
    env.stack.reset_calls();
    let clean = check(&env, "drift-clean", DriftRemediation::Auto).await;
    let calls = platform_calls(&env.stack.calls());
    assert!(clean.differences.is_empty(), "{:#?}", clean.differences);
    assert_eq!(mutating(&calls), 0, "a clean check wrote: {calls:?}");
    assert_eq!(state(&env).await.0, LifecycleState::Active);

    let expected = break_platform(&env).await;

    // Report only: every change named with its class, nothing repaired, the platform Drifted.
    env.stack.reset_calls();
    let reported = check(&env, "drift-report", DriftRemediation::ReportOnly).await;
    let calls = platform_calls(&env.stack.calls());
    assert_eq!(mutating(&calls), 0, "a report-only check wrote: {calls:?}");
    for e in &expected {
        let d = found(&reported, e);
        assert_eq!(
            (d.action, d.result),
            (DriftAction::Reported, DriftResult::Open)
        );
    }
    assert!(
        !reported
            .differences
            .iter()
            .any(|d| d.resource.contains(GENERAL_GROUP) && d.field.contains("desired")),
        "desiredSize belongs to the autoscaler"
    );
    let (lifecycle, summary) = state(&env).await;
    assert_eq!(lifecycle, LifecycleState::Drifted);
    let summary = summary.expect("last drift");
    assert_eq!(summary.request_id, "drift-report");
    assert_eq!(summary.open, reported.differences.len());
    eprintln!(
        "drift: {} changes made, {} differences reported: {:#?}",
        expected.len(),
        reported.differences.len(),
        reported
            .differences
            .iter()
            .map(|d| format!("{} {} {:?}", d.resource, d.field, d.class))
            .collect::<Vec<_>>()
    );

    // Auto: every difference repaired and confirmed; the platform Active again.
    let repaired = check(&env, "drift-repair", DriftRemediation::Auto).await;
    for e in &expected {
        let d = found(&repaired, e);
        assert_eq!(
            (d.action, d.result),
            (DriftAction::Remediate, DriftResult::Repaired),
            "{d:?}"
        );
    }
    assert!(
        repaired.new_differences.is_empty(),
        "{:#?}",
        repaired.new_differences
    );
    let (lifecycle, summary) = state(&env).await;
    assert_eq!(lifecycle, LifecycleState::Active);
    assert_eq!(summary.expect("last drift").open, 0);

    // After the repair: nothing left, and the autoscaler's desiredSize was left alone.
    env.stack.reset_calls();
    let after = check(&env, "drift-after", DriftRemediation::Auto).await;
    assert!(after.differences.is_empty(), "{:#?}", after.differences);
    assert_eq!(mutating(&platform_calls(&env.stack.calls())), 0);
    let scaling = aws_sdk_eks::Client::new(&env.aws)
        .describe_nodegroup()
        .cluster_name(CLUSTER)
        .nodegroup_name(GENERAL_GROUP)
        .send()
        .await
        .unwrap()
        .nodegroup
        .and_then(|n| n.scaling_config)
        .expect("scaling");
    assert_eq!(
        (scaling.min_size, scaling.desired_size, scaling.max_size),
        (Some(1), Some(5), Some(6)),
        "maxSize repaired, desiredSize kept"
    );
    // The stray security group is gone.
    let strays = aws_sdk_ec2::Client::new(&env.aws)
        .describe_security_groups()
        .filters(tag_filter(&platform))
        .send()
        .await
        .unwrap();
    assert!(
        !strays
            .security_groups()
            .iter()
            .any(|g| g.group_name() == Some("someones-debug-group")),
        "{strays:?}"
    );
    // The intruder's entry is still there, without any access policy.
    let left = aws_sdk_eks::Client::new(&env.aws)
        .list_associated_access_policies()
        .cluster_name(CLUSTER)
        .principal_arn(INTRUDER)
        .send()
        .await
        .unwrap();
    assert!(left.associated_access_policies().is_empty(), "{left:?}");
    let runs = env.store.list_runs(&platform, 10).await.unwrap();
    assert!(
        runs.iter().any(|r| r.kind == "drift"
            && r.request_id.as_deref() == Some("drift-repair")
            && r.detail.as_ref().is_some_and(|d| {
                d["drift"]["repaired"].as_u64() >= Some(expected.len() as u64)
            })),
        "the run records the check: {runs:#?}"
    );
}

/// Adds SSH from 0.0.0.0/0 to the platform's VPC-endpoint security group; returns its id.
async fn open_ssh_on_the_endpoint_group(env: &Env) -> String {
    let ec2 = aws_sdk_ec2::Client::new(&env.aws);
    let groups = ec2
        .describe_security_groups()
        .filters(tag_filter(&env.platform_id()))
        .send()
        .await
        .unwrap();
    let group_id = groups
        .security_groups()
        .iter()
        .find(|g| g.group_name().is_some_and(|n| n.ends_with("endpoints")))
        .and_then(|g| g.group_id())
        .expect("endpoint security group")
        .to_owned();
    ec2.authorize_security_group_ingress()
        .group_id(&group_id)
        .ip_protocol("tcp")
        .from_port(22)
        .to_port(22)
        .cidr_ip("0.0.0.0/0")
        .send()
        .await
        .unwrap();
    group_id
}

/// One or more changes per phase, behind Tenantry's back; returns what each must show up as.
pub(crate) async fn break_platform(env: &Env) -> Vec<Expected> {
    let platform = env.platform_id();
    let outputs: BTreeMap<String, Value> = env
        .store
        .get_status(&platform)
        .await
        .unwrap()
        .expect("status")
        .value
        .outputs;
    let mut expected = Vec::new();

    // encryption: rotation of the secrets key turned off.
    let kms = aws_sdk_kms::Client::new(&env.aws);
    let key_arn = outputs["secretsKeyArn"].as_str().expect("secrets key");
    let key_id = kms
        .describe_key()
        .key_id(key_arn)
        .send()
        .await
        .unwrap()
        .key_metadata
        .expect("key")
        .key_id;
    kms.disable_key_rotation()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    expected.push(expect(
        format!("kms:key/{key_id}"),
        "keyRotationEnabled",
        DriftClass::Changed,
    ));

    // identity: an IRSA / Pod Identity role's trust widened to the whole account.
    let iam = aws_sdk_iam::Client::new(&env.aws);
    let wide = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "AWS": "arn:aws:iam::123456789012:root" },
            "Action": "sts:AssumeRole"
        }]
    });
    iam.update_assume_role_policy()
        .role_name(AUTOSCALER_ROLE)
        .policy_document(wide.to_string())
        .send()
        .await
        .unwrap();
    expected.push(expect(
        format!("iam:role/{AUTOSCALER_ROLE}"),
        "assumeRolePolicy",
        DriftClass::Changed,
    ));

    // identity: AdministratorAccess attached to the same role (unexpected: nothing desires it).
    let admin_access = "arn:aws:iam::aws:policy/AdministratorAccess";
    iam.attach_role_policy()
        .role_name(AUTOSCALER_ROLE)
        .policy_arn(admin_access)
        .send()
        .await
        .unwrap();
    expected.push(expect(
        format!("iam:role/{AUTOSCALER_ROLE}"),
        "managedPolicies",
        DriftClass::Unexpected,
    ));

    // network: the ELB discovery tag removed from a public subnet.
    let ec2 = aws_sdk_ec2::Client::new(&env.aws);
    let tag_key = aws_sdk_ec2::types::Filter::builder()
        .name("tag-key")
        .values(ELB_TAG)
        .build();
    let subnets = ec2
        .describe_subnets()
        .filters(tag_filter(&platform))
        .filters(tag_key)
        .send()
        .await
        .unwrap();
    let subnet = subnets.subnets()[0].subnet_id().unwrap().to_owned();
    ec2.delete_tags()
        .resources(&subnet)
        .tags(aws_sdk_ec2::types::Tag::builder().key(ELB_TAG).build())
        .send()
        .await
        .unwrap();
    expected.push(expect(
        format!("ec2:subnet/{subnet}"),
        format!("tags.{ELB_TAG}"),
        DriftClass::Changed,
    ));

    // network: the endpoints' security group opened to SSH from anywhere.
    let group_id = open_ssh_on_the_endpoint_group(env).await;
    expected.push(expect(
        format!("ec2:security-group/{group_id}"),
        "ingress",
        DriftClass::Changed,
    ));

    // network: a security group someone made in the VPC, tagged as the platform's (unexpected).
    let vpc_id = outputs["vpcId"].as_str().expect("vpc id");
    let stray = aws_sdk_ec2::Client::new(&env.aws)
        .create_security_group()
        .group_name("someones-debug-group")
        .description("made by hand")
        .vpc_id(vpc_id)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::SecurityGroup)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("tenantry:platform")
                        .value(&platform)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap()
        .group_id
        .expect("group id");
    expected.push(expect(
        format!("ec2:security-group/{stray}"),
        "exists",
        DriftClass::Unexpected,
    ));

    // network: the STS interface endpoint deleted, the flow log deleted, a private route table's
    // default route (to its NAT gateway) removed.
    let endpoints = ec2
        .describe_vpc_endpoints()
        .filters(tag_filter(&platform))
        .send()
        .await
        .unwrap();
    let sts = endpoints
        .vpc_endpoints()
        .iter()
        .find(|e| e.service_name().is_some_and(|s| s.ends_with(".sts")))
        .expect("sts endpoint");
    ec2.delete_vpc_endpoints()
        .vpc_endpoint_ids(sts.vpc_endpoint_id().unwrap())
        .send()
        .await
        .unwrap();
    expected.push(expect(
        format!("ec2:vpc-endpoint/{}", tag(sts.tags(), "Name")),
        "exists",
        DriftClass::Missing,
    ));
    let flow_logs = ec2
        .describe_flow_logs()
        .filter(tag_filter(&platform))
        .send()
        .await
        .unwrap();
    let flow_log = flow_logs.flow_logs().first().expect("flow log");
    ec2.delete_flow_logs()
        .flow_log_ids(flow_log.flow_log_id().unwrap())
        .send()
        .await
        .unwrap();
    expected.push(expect(
        format!("ec2:flow-log/{}", tag(flow_log.tags(), "Name")),
        "exists",
        DriftClass::Missing,
    ));
    let tables = ec2
        .describe_route_tables()
        .filters(tag_filter(&platform))
        .send()
        .await
        .unwrap();
    let private = tables
        .route_tables()
        .iter()
        .find(|t| {
            t.routes().iter().any(|r| {
                r.destination_cidr_block() == Some("0.0.0.0/0") && r.nat_gateway_id().is_some()
            })
        })
        .expect("a private route table");
    let table_id = private.route_table_id().unwrap().to_owned();
    ec2.delete_route()
        .route_table_id(&table_id)
        .destination_cidr_block("0.0.0.0/0")
        .send()
        .await
        .unwrap();
    expected.push(expect(
        format!("ec2:route-table/{table_id}"),
        "routes.0.0.0.0/0",
        DriftClass::Changed,
    ));

    // cluster: the audit log turned off.
    let eks = aws_sdk_eks::Client::new(&env.aws);
    let setup = |enabled: bool, types: &[LogType]| {
        LogSetup::builder()
            .set_types(Some(types.to_vec()))
            .enabled(enabled)
            .build()
    };
    let others = [
        LogType::Api,
        LogType::Authenticator,
        LogType::ControllerManager,
        LogType::Scheduler,
    ];
    eks.update_cluster_config()
        .name(CLUSTER)
        .logging(
            Logging::builder()
                .cluster_logging(setup(true, &others))
                .cluster_logging(setup(false, &[LogType::Audit]))
                .build(),
        )
        .send()
        .await
        .unwrap();
    expected.push(expect(
        format!("eks:cluster/{CLUSTER}"),
        "logTypes",
        DriftClass::Changed,
    ));

    // cluster: the public endpoint opened to the whole internet.
    eks.update_cluster_config()
        .name(CLUSTER)
        .resources_vpc_config(
            VpcConfigRequest::builder()
                .endpoint_public_access(true)
                .public_access_cidrs("0.0.0.0/0")
                .build(),
        )
        .send()
        .await
        .unwrap();
    expected.push(expect(
        format!("eks:cluster/{CLUSTER}"),
        "endpointAccess",
        DriftClass::Changed,
    ));

    // cluster: the control-plane log group's retention cut to a week.
    let log_group = format!("/aws/eks/{CLUSTER}/cluster");
    aws_sdk_cloudwatchlogs::Client::new(&env.aws)
        .put_retention_policy()
        .log_group_name(&log_group)
        .retention_in_days(7)
        .send()
        .await
        .unwrap();
    expected.push(expect(
        format!("logs:log-group/{log_group}"),
        "retentionInDays",
        DriftClass::Changed,
    ));

    // nodegroups: the autoscaler moves desiredSize (not drift); someone raises maxSize (drift).
    for config in [
        NodegroupScalingConfig::builder().desired_size(5).build(),
        NodegroupScalingConfig::builder().max_size(10).build(),
    ] {
        eks.update_nodegroup_config()
            .cluster_name(CLUSTER)
            .nodegroup_name(GENERAL_GROUP)
            .scaling_config(config)
            .send()
            .await
            .unwrap();
    }
    expected.push(expect(
        format!("eks:nodegroup/{GENERAL_GROUP}"),
        "scalingConfig",
        DriftClass::Changed,
    ));

    // nodegroups: a new launch template version that lets instances use IMDSv1.
    let template = eks
        .describe_nodegroup()
        .cluster_name(CLUSTER)
        .nodegroup_name(GENERAL_GROUP)
        .send()
        .await
        .unwrap()
        .nodegroup
        .and_then(|n| n.launch_template)
        .expect("the node group's launch template");
    let template_name = template.name().expect("template name").to_owned();
    ec2.create_launch_template_version()
        .launch_template_id(template.id().expect("template id"))
        .source_version("$Latest")
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .metadata_options(
                    aws_sdk_ec2::types::LaunchTemplateInstanceMetadataOptionsRequest::builder()
                        .http_tokens(aws_sdk_ec2::types::LaunchTemplateHttpTokensState::Optional)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    expected.push(expect(
        format!("ec2:launch-template/{template_name}"),
        "launchTemplateData",
        DriftClass::Changed,
    ));

    // addons: CoreDNS scaled down through its configuration values.
    let coredns = eks
        .describe_addon()
        .cluster_name(CLUSTER)
        .addon_name("coredns")
        .send()
        .await
        .unwrap()
        .addon
        .expect("coredns");
    let mut values: Value = serde_json::from_str(coredns.configuration_values().unwrap()).unwrap();
    values["replicaCount"] = json!(1);
    eks.update_addon()
        .cluster_name(CLUSTER)
        .addon_name("coredns")
        .configuration_values(values.to_string())
        .send()
        .await
        .unwrap();
    expected.push(expect(
        "eks:addon/coredns",
        "configurationValues",
        DriftClass::Changed,
    ));

    // addons: the CloudWatch observability add-on deleted.
    eks.delete_addon()
        .cluster_name(CLUSTER)
        .addon_name("amazon-cloudwatch-observability")
        .send()
        .await
        .unwrap();
    expected.push(expect(
        "eks:addon/amazon-cloudwatch-observability",
        "exists",
        DriftClass::Missing,
    ));

    // access: the admin principal's cluster-admin policy disassociated.
    eks.disassociate_access_policy()
        .cluster_name(CLUSTER)
        .principal_arn(ADMIN)
        .policy_arn(ADMIN_POLICY)
        .send()
        .await
        .unwrap();
    expected.push(expect(
        format!("eks:access-entry/{ADMIN}"),
        "accessPolicies",
        DriftClass::Changed,
    ));

    // access: a principal the spec does not name made cluster admin (its entry stays; the
    // policy is taken away).
    eks.create_access_entry()
        .cluster_name(CLUSTER)
        .principal_arn(INTRUDER)
        .send()
        .await
        .unwrap();
    eks.associate_access_policy()
        .cluster_name(CLUSTER)
        .principal_arn(INTRUDER)
        .policy_arn(ADMIN_POLICY)
        .access_scope(
            aws_sdk_eks::types::AccessScope::builder()
                .r#type(aws_sdk_eks::types::AccessScopeType::Cluster)
                .build(),
        )
        .send()
        .await
        .unwrap();
    expected.push(expect(
        format!("eks:access-entry/{INTRUDER}"),
        "accessPolicies",
        DriftClass::Unexpected,
    ));

    // bootstrap: the cluster-autoscaler scaled to zero in the cluster.
    let kube = env.stack.kube_client_for(CLUSTER).expect("kube client");
    let patch = |v: Value| Patch::Merge(v);
    Api::<Deployment>::namespaced(kube.clone(), "kube-system")
        .patch(
            "cluster-autoscaler",
            &PatchParams::default(),
            &patch(json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    expected.push(expect(
        "k8s:apps/v1/Deployment/kube-system/cluster-autoscaler",
        "spec",
        DriftClass::Changed,
    ));

    // bootstrap: an ENIConfig pointed at a node subnet, so that zone's pods would take the
    // node subnet's addresses.
    let configs = Api::<tenantry::kubernetes::EniConfig>::all(kube.clone());
    let zone = outputs["availabilityZones"][0].as_str().expect("zone");
    let node_subnet = outputs["privateSubnetIds"][0].as_str().expect("subnet");
    configs
        .patch(
            zone,
            &PatchParams::default(),
            &patch(json!({"spec": {"subnet": node_subnet}})),
        )
        .await
        .unwrap();
    expected.push(expect(
        format!("k8s:crd.k8s.amazonaws.com/v1alpha1/ENIConfig//{zone}"),
        "spec",
        DriftClass::Changed,
    ));

    // tenants: the tenant owner's access entry given the cluster admin policy.
    eks.associate_access_policy()
        .cluster_name(CLUSTER)
        .principal_arn(OWNER)
        .policy_arn(ADMIN_POLICY)
        .access_scope(
            aws_sdk_eks::types::AccessScope::builder()
                .r#type(aws_sdk_eks::types::AccessScopeType::Cluster)
                .build(),
        )
        .send()
        .await
        .unwrap();
    expected.push(expect(
        format!("eks:tenant-owner-entry/{OWNER}"),
        "accessPolicies",
        DriftClass::Changed,
    ));

    // tenants: default-deny deleted, the quota raised, the namespace's Pod Security relaxed.
    Api::<NetworkPolicy>::namespaced(kube.clone(), TENANT)
        .delete("default-deny", &DeleteParams::default())
        .await
        .unwrap();
    expected.push(expect(
        format!("NetworkPolicy/{TENANT}/default-deny"),
        "exists",
        DriftClass::Missing,
    ));
    Api::<ResourceQuota>::namespaced(kube.clone(), TENANT)
        .patch(
            "quota",
            &PatchParams::default(),
            &patch(json!({"spec": {"hard": {"pods": "10000"}}})),
        )
        .await
        .unwrap();
    expected.push(expect(
        format!("ResourceQuota/{TENANT}/quota"),
        "spec",
        DriftClass::Changed,
    ));
    let enforce = "pod-security.kubernetes.io/enforce";
    Api::<Namespace>::all(kube)
        .patch(
            TENANT,
            &PatchParams::default(),
            &patch(json!({"metadata": {"labels": {enforce: "privileged"}}})),
        )
        .await
        .unwrap();
    expected.push(expect(
        format!("Namespace//{TENANT}"),
        "spec",
        DriftClass::Changed,
    ));

    // tenants: the tenant role's policy widened to every S3 action on every resource.
    let role = format!("tenantry-payments-prod-t-{TENANT}");
    let names = iam
        .list_role_policies()
        .role_name(&role)
        .send()
        .await
        .unwrap();
    let policy = names
        .policy_names()
        .first()
        .expect("tenant role policy")
        .clone();
    let wide = json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Action": "s3:*", "Resource": "*" }]
    });
    iam.put_role_policy()
        .role_name(&role)
        .policy_name(&policy)
        .policy_document(wide.to_string())
        .send()
        .await
        .unwrap();
    expected.push(expect(
        format!("iam:role/{role}"),
        format!("inlinePolicy/{policy}"),
        DriftClass::Changed,
    ));

    // registry: the platform's repository made mutable and its lifecycle policy deleted.
    let ecr = aws_sdk_ecr::Client::new(&env.aws);
    let repository = "tenantry/payments-prod/base-images";
    ecr.put_image_tag_mutability()
        .repository_name(repository)
        .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::Mutable)
        .send()
        .await
        .unwrap();
    ecr.delete_lifecycle_policy()
        .repository_name(repository)
        .send()
        .await
        .unwrap();
    for field in ["imageTagMutability", "lifecyclePolicy"] {
        expected.push(expect(
            format!("ecr:repository/{repository}"),
            field,
            DriftClass::Changed,
        ));
    }

    // tenant data: the bucket's public access block removed.
    let bucket = outputs["tenantBucket"]
        .as_str()
        .expect("tenant bucket")
        .to_owned();
    aws_sdk_s3::Client::new(&env.aws)
        .delete_public_access_block()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    expected.push(expect(
        format!("s3:bucket/{bucket}"),
        "publicAccessBlock",
        DriftClass::Changed,
    ));
    expected
}

/// Records a platform whose stored spec no longer parses: a check of it is refused at intake.
async fn record_broken_platform(env: &Env, id: &str) {
    let active = tenantry::store::PlatformStatus::new(LifecycleState::Active);
    env.store
        .put_spec(id, &json!({ "id": id }), None)
        .await
        .unwrap();
    env.store.update_status(id, &active, None).await.unwrap();
}

/// Runs the fleet sweep named `name` with `input`, as a schedule starts it, to its end.
async fn run_sweep(env: &Env, name: &str, input: Value) -> tenantry_integration::Execution {
    let sfn = aws_sdk_sfn::Client::new(&env.aws);
    let machines = sfn.list_state_machines().send().await.unwrap();
    let machine = machines
        .state_machines()
        .iter()
        .find(|m| m.name() == "tenantry-fleet-sweep")
        .expect("fleet-sweep state machine")
        .state_machine_arn()
        .to_owned();
    let started = sfn
        .start_execution()
        .state_machine_arn(&machine)
        .name(name)
        .input(input.to_string())
        .send()
        .await
        .unwrap();
    tenantry_integration::wait_execution(
        &sfn,
        started.execution_arn(),
        std::time::Duration::from_secs(900),
    )
    .await
}

/// Runs the drift sweep (report-only) as the schedule starts it; returns its report.
async fn sweep(env: &Env, name: &str) -> Value {
    let input = json!({"kind": "drift", "remediate": "report-only"});
    let done = run_sweep(env, name, input).await;
    assert_eq!(
        done.status,
        ExecutionStatus::Succeeded,
        "{:?} {:?}",
        done.cause,
        done.failures()
    );
    env.store
        .get_sweep_report(name)
        .await
        .unwrap()
        .expect("sweep report")
}

/// The nightly sweep, started as the schedule starts it: every active platform is checked through
/// intake and reported; a platform whose check cannot even start does not stop the others.
#[tokio::test]
async fn a_fleet_sweep_checks_every_active_platform_and_reports_each() {
    let env = env().await;
    let run = env.run(RequestKind::PlatformProvision, "sweep-p-1").await;
    assert_eq!(
        run.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        run.failures()
    );
    // Two more platforms, recorded only: one whose stored spec no longer parses (its check is
    // refused), one decommissioned (not swept).
    record_broken_platform(&env, "broken").await;
    let gone = tenantry::store::PlatformStatus::new(LifecycleState::Decommissioned);
    env.store
        .put_spec("gone", &json!({"id": "gone"}), None)
        .await
        .unwrap();
    env.store.update_status("gone", &gone, None).await.unwrap();

    let report = sweep(&env, "nightly-1").await;
    let results = report["results"].as_array().expect("results");
    let by_platform: BTreeMap<&str, &Value> = results
        .iter()
        .map(|r| (r["platformId"].as_str().unwrap(), r))
        .collect();
    assert_eq!(
        by_platform.keys().copied().collect::<Vec<_>>(),
        ["broken", env.platform_id().as_str()],
        "every active platform, and only those: {report:#}"
    );
    let payments = by_platform[env.platform_id().as_str()];
    assert_eq!(payments["state"], "Succeeded", "{payments:#}");
    assert_eq!(payments["summary"]["open"], 0, "{payments:#}");
    assert_eq!(
        payments["requestId"],
        format!("nightly-1-{}", env.platform_id())
    );
    let broken = by_platform["broken"];
    assert_eq!(
        broken["state"], "Rejected",
        "answered, not retried: {broken:#}"
    );
    assert!(
        broken["error"].is_object(),
        "the refusal is named: {broken:#}"
    );
    assert_eq!(
        (&report["platforms"], &report["clean"], &report["failed"]),
        (&json!(2), &json!(1), &json!(1)),
        "{report:#}"
    );

    // The same fleet swept for compliance by a request: `ComplianceSweepRequested` for
    // platform "*" starts the sweep (named after the request), which sweeps each platform
    // through intake, records the report and ends the request.
    let put = |detail: Value| {
        let events = aws_sdk_eventbridge::Client::new(&env.aws);
        async move {
            let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .event_bus_name(tenantry::events::event_bus())
                .source("tests")
                .detail_type(RequestKind::ComplianceSweep.detail_type())
                .detail(detail.to_string())
                .build();
            let out = events.put_events().entries(entry).send().await.unwrap();
            assert_eq!(out.failed_entry_count(), 0);
        }
    };
    let request = |id: &str| json!({"schemaVersion": "1", "requestId": id, "platformId": "*"});
    put(request("weekly-1")).await;
    let run = env.finish("weekly-1").await;
    assert_eq!(
        run.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        run.failures()
    );
    let report = env
        .store
        .get_sweep_report("weekly-1")
        .await
        .unwrap()
        .expect("report");
    assert_eq!(report["kind"], "compliance", "{report:#}");
    let results = report["results"].as_array().expect("results");
    let payments = results
        .iter()
        .find(|r| r["platformId"] == env.platform_id().as_str())
        .expect("the provisioned platform");
    assert_eq!(payments["state"], "Succeeded", "{payments:#}");
    let swept = &payments["compliance"];
    assert!(
        swept["passed"].as_u64() > Some(40) && swept["failed"] == 0,
        "a fresh platform passes every control: {payments:#}"
    );
    // Its own report is in the store, as a sweep of it alone would leave it.
    let own = env
        .store
        .get_compliance_report(&env.platform_id(), payments["requestId"].as_str())
        .await
        .unwrap()
        .expect("the platform's report");
    assert_eq!(own.summary().failed, 0);
    let broken = results
        .iter()
        .find(|r| r["platformId"] == "broken")
        .unwrap();
    // Admission only checks that it is active; the sweep itself fails on its spec, and says so.
    assert_eq!(broken["state"], "Failed", "{broken:#}");
    assert!(
        broken["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("does not parse")),
        "{broken:#}"
    );
    assert_eq!(
        (
            &report["platforms"],
            &report["clean"],
            &report["flagged"],
            &report["failed"]
        ),
        (&json!(2), &json!(1), &json!(0), &json!(1)),
        "{report:#}"
    );
    let done = env.store.get_request("weekly-1").await.unwrap().unwrap();
    assert_eq!(
        done.state,
        RequestState::Succeeded,
        "the report ends the request"
    );
    let execution = done.execution_arn.expect("the sweep's execution");
    assert!(
        execution.ends_with(":tenantry-fleet-sweep:weekly-1"),
        "{execution}"
    );
    // Sent again, it changes nothing: intake answers the duplicate, no second sweep starts.
    put(request("weekly-1")).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let sfn = aws_sdk_sfn::Client::new(&env.aws);
    let sweeps = sfn
        .list_executions()
        .state_machine_arn(
            execution
                .rsplit_once(':')
                .unwrap()
                .0
                .replace(":execution:", ":stateMachine:"),
        )
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = sweeps.executions().iter().map(|e| e.name()).collect();
    assert_eq!(
        names.iter().filter(|n| n.starts_with("weekly-1")).count(),
        1,
        "{names:?}"
    );

    // A sweep that cannot run ends the request that started it `Failed`, naming why, rather
    // than leaving it `Started` (here its input names no kind of sweep).
    let started = tenantry::store::RequestOutcome::new(RequestState::Started);
    env.store
        .record_request("weekly-bad", "*", "compliance", "hash")
        .await
        .unwrap();
    env.store
        .complete_request("weekly-bad", &started)
        .await
        .unwrap();
    let run = run_sweep(&env, "weekly-bad", json!({"kind": "weekly"})).await;
    assert_eq!(run.status, ExecutionStatus::Failed);
    assert_eq!(run.error.as_deref(), Some("Tenantry.SweepFailed"));
    let ended = env.store.get_request("weekly-bad").await.unwrap().unwrap();
    assert_eq!(ended.state, RequestState::Failed);
    let error = ended.error.expect("the reason");
    assert!(error.message.contains("`kind`"), "{error:?}");
}

/// A CloudTrail-shaped event recording a security group rule someone added to a platform's group
/// starts a check of that platform, which takes the rule away again (the example's
/// `driftRemediation` is `auto`); the same call made by one of Tenantry's functions starts nothing.
#[tokio::test]
async fn a_change_recorded_by_cloudtrail_starts_a_check_that_repairs_it() {
    let env = env().await;
    let run = env.run(RequestKind::PlatformProvision, "change-p-1").await;
    assert_eq!(
        run.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        run.failures()
    );
    let platform = env.platform_id();
    let ec2 = aws_sdk_ec2::Client::new(&env.aws);
    let group_id = open_ssh_on_the_endpoint_group(&env).await;
    let ssh_open = |g: &aws_sdk_ec2::types::SecurityGroup| {
        g.ip_permissions().iter().any(|p| p.from_port() == Some(22))
    };
    let now = chrono::Utc::now();
    let call = |session: &str| {
        json!({
            "eventName": "AuthorizeSecurityGroupIngress",
            "eventSource": "ec2.amazonaws.com",
            "readOnly": false,
            "userIdentity": { "type": "AssumedRole", "arn": session },
            "requestParameters": {
                "groupId": group_id,
                "ipPermissions": { "items": [{ "ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
                    "ipRanges": { "items": [{ "cidrIp": "0.0.0.0/0" }] } }] }
            }
        })
    };
    let put = |detail: Value| {
        let events = aws_sdk_eventbridge::Client::new(&env.aws);
        async move {
            let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .event_bus_name(tenantry::events::event_bus())
                .source("aws.ec2")
                .detail_type("AWS API Call via CloudTrail")
                .detail(detail.to_string())
                .build();
            let out = events.put_events().entries(entry).send().await.unwrap();
            assert_eq!(out.failed_entry_count(), 0);
        }
    };
    // Tenantry's own call (its function's session): ignored.
    put(call(
        "arn:aws:sts::123456789012:assumed-role/tenantry-NetworkFunctionRole-A1/tenantry-network",
    ))
    .await;
    // Someone else's: a check of the platform, debounced to the five-minute window.
    env.stack.reset_calls();
    put(call("arn:aws:sts::123456789012:assumed-role/ops/alice")).await;

    let window = |t: chrono::DateTime<chrono::Utc>| {
        use chrono::Timelike;
        // The components the changed resources belong to end the id: the security group is
        // the network phase's.
        format!(
            "change-{platform}-{}{:02}-network",
            t.format("%Y%m%d%H"),
            t.minute() - t.minute() % 5
        )
    };
    let mut request = None;
    for _ in 0..200 {
        for id in [window(now), window(chrono::Utc::now())] {
            if let Some(info) = env.store.get_request(&id).await.unwrap() {
                if info.execution_arn.is_some() {
                    request = Some(info);
                }
            }
        }
        if request.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
    let request = request.expect("the change started a drift check");
    assert_eq!(request.kind, "drift");
    let sfn = aws_sdk_sfn::Client::new(&env.aws);
    let done = tenantry_integration::wait_execution(
        &sfn,
        request.execution_arn.as_deref().unwrap(),
        std::time::Duration::from_secs(300),
    )
    .await;
    assert_eq!(
        done.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        done.failures()
    );
    let report = env
        .store
        .get_drift_report(&platform, &request.request_id)
        .await
        .unwrap()
        .expect("report");
    // A check of the network only: no other component was read.
    assert_eq!(report.scope, Some(vec![tenantry::plan::Phase::Network]));
    let services: Vec<String> = platform_calls(&env.stack.calls()).into_keys().collect();
    assert!(
        services.iter().all(|s| s == "ec2" || s == "logs"),
        "a network check reads EC2 and Logs only: {services:?}"
    );
    let d = report
        .differences
        .iter()
        .find(|d| d.resource == format!("ec2:security-group/{group_id}"))
        .unwrap_or_else(|| panic!("{:#?}", report.differences));
    assert_eq!(
        (d.field.as_str(), d.result),
        ("ingress", DriftResult::Repaired)
    );
    let after = ec2
        .describe_security_groups()
        .group_ids(&group_id)
        .send()
        .await
        .unwrap();
    assert!(
        !ssh_open(&after.security_groups()[0]),
        "the rule was revoked"
    );
    // Only the one check: Tenantry's own call started none, and its repair started none either.
    let checks = env.store.list_runs(&platform, 20).await.unwrap();
    assert_eq!(
        checks.iter().filter(|r| r.kind == "drift").count(),
        1,
        "{checks:#?}"
    );
}

/// The drift-storm runbook's first step: with remediation paused fleet-wide, a check that asks
/// to repair only reports (no write, its report names the pause); resumed, the next one repairs.
#[tokio::test]
async fn a_remediation_pause_makes_every_check_report_only_until_resumed() {
    use tenantry::operator::remediation;
    use tenantry::store::Paused;
    let env = env().await;
    let run = env.run(RequestKind::PlatformProvision, "pause-p-1").await;
    assert_eq!(
        run.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        run.failures()
    );
    let deps = tenantry::deps::Deps::new(env.aws.clone(), env.stack.table_name());
    // An empty reason is refused, and pauses nothing.
    assert!(matches!(
        remediation::pause(&deps, "  ").await,
        Err(remediation::PauseError::NoReason)
    ));
    assert_eq!(remediation::show(&deps).await.unwrap(), None);
    let Paused::Now(pause) = remediation::pause(&deps, "INC-1: storm").await.unwrap() else {
        panic!("was not paused before");
    };
    assert!(pause.paused_by.starts_with("arn:aws:"), "{pause:?}");
    // A second pause keeps the first one's reason.
    assert_eq!(
        remediation::pause(&deps, "INC-2").await.unwrap(),
        Paused::Already(pause.clone())
    );

    let group_id = open_ssh_on_the_endpoint_group(&env).await;
    let resource = format!("ec2:security-group/{group_id}");
    let fence = |env: &Env| {
        let platform = env.platform_id();
        let store = env.store.clone();
        async move { store.get_lease_holders(&platform).await.unwrap().fence }
    };
    let fence_before = fence(&env).await;
    env.stack.reset_calls();
    let paused = check(&env, "pause-check", DriftRemediation::Auto).await;
    let calls = platform_calls(&env.stack.calls());
    assert_eq!(mutating(&calls), 0, "a paused check wrote: {calls:?}");
    assert_eq!(paused.remediation_paused.as_ref(), Some(&pause));
    assert!(!paused.policy.repairs_anything());
    let d = paused
        .differences
        .iter()
        .find(|d| d.resource == resource && d.field == "ingress")
        .unwrap_or_else(|| panic!("{:#?}", paused.differences));
    assert_eq!(
        (d.action, d.result),
        (DriftAction::Reported, DriftResult::Open)
    );
    // It took no lease (each acquisition raises the fence).
    assert_eq!(fence(&env).await, fence_before);
    assert_eq!(state(&env).await.0, LifecycleState::Drifted);

    assert_eq!(remediation::resume(&deps).await.unwrap(), Some(pause));
    assert_eq!(remediation::resume(&deps).await.unwrap(), None);
    let repaired = check(&env, "pause-resumed", DriftRemediation::Auto).await;
    assert_eq!(repaired.remediation_paused, None);
    assert!(
        fence(&env).await > fence_before,
        "a repairing check takes the lease"
    );
    let d = repaired
        .differences
        .iter()
        .find(|d| d.resource == resource && d.field == "ingress")
        .unwrap_or_else(|| panic!("{:#?}", repaired.differences));
    assert_eq!(
        (d.action, d.result),
        (DriftAction::Remediate, DriftResult::Repaired)
    );
    assert_eq!(state(&env).await.0, LifecycleState::Active);
}

/// Soak (`make soak`): the nightly sweep over a fleet of 20 platforms, 19 provisioned on the local
/// stack (at once, one tenant each) and one whose check is refused, completes and reports each.
#[tokio::test]
#[ignore = "soak: provisions 19 platforms; run by `make soak`"]
async fn soak_a_fleet_sweep_over_twenty_platforms_reports_each() {
    let env = env().await;
    let fleet: Vec<String> = (1..=19).map(|i| format!("fleet-{i:02}")).collect();
    for id in &fleet {
        let mut spec = env.spec.clone();
        spec["id"] = json!(id);
        spec["tenants"] = json!([env.spec["tenants"][0].clone()]);
        env.provision(spec, &format!("{id}-provision")).await;
    }
    for id in &fleet {
        let run = env.finish(&format!("{id}-provision")).await;
        assert_eq!(
            run.status,
            ExecutionStatus::Succeeded,
            "{id}: {:?}",
            run.failures()
        );
    }
    record_broken_platform(&env, "fleet-broken").await;

    env.stack.reset_calls();
    let started = std::time::Instant::now();
    let report = sweep(&env, "nightly-fleet").await;
    let seconds = started.elapsed().as_secs_f64();
    let results = report["results"].as_array().expect("results");
    let states: BTreeMap<&str, &str> = results
        .iter()
        .map(|r| {
            (
                r["platformId"].as_str().unwrap(),
                r["state"].as_str().unwrap(),
            )
        })
        .collect();
    let mut want: BTreeMap<&str, &str> =
        fleet.iter().map(|id| (id.as_str(), "Succeeded")).collect();
    want.insert("fleet-broken", "Rejected");
    assert_eq!(states, want, "{report:#}");
    for r in results.iter().filter(|r| r["state"] == "Succeeded") {
        assert_eq!(r["summary"]["open"], 0, "{r:#}");
    }
    assert_eq!(
        (&report["platforms"], &report["clean"], &report["failed"]),
        (&json!(20), &json!(19), &json!(1)),
        "{report:#}"
    );
    let calls = platform_calls(&env.stack.calls());
    let total: usize = calls.values().map(|(m, r)| m + r).sum();
    assert_eq!(mutating(&calls), 0, "a report-only sweep changes nothing");
    eprintln!(
        "fleet sweep: 20 platforms in {seconds:.1} s, {total} platform calls ({:.1} per provisioned platform)",
        total as f64 / 19.0
    );
}
