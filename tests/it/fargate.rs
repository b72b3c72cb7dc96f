//! `examples/payments-fargate.json` on the local stack: seed 004's payment platform with Fargate
//! profiles (a platform profile, CoreDNS's, and one per tenant: payment, fraud-detection,
//! reporting), ECR repositories per service and Fargate logging. It provisions as planned
//! (plan == inventory == census, observe silent), its profiles are in the private subnets with
//! the pod execution role and select what the request says, CoreDNS is configured for Fargate;
//! offboarding a tenant leaves nothing of it; decommissioning leaves nothing at all. A hostile
//! request is refused naming the field and the rule, and creates nothing.

use std::collections::BTreeSet;

use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::{json, Value};
use tenantry::events::RequestKind;
use tenantry::resources::Kind;
use tenantry::spec::DriftRemediation;
use tenantry_gateway::inspect::tagged_resources;

use crate::catalogue::{
    assert_observe_is_silent, assert_plan_matches_inventory, assert_roles_are_bounded,
    decommission_leaves_nothing,
};
use crate::platform::{env, Env};

fn example() -> Value {
    serde_json::from_str(include_str!("../../examples/payments-fargate.json")).unwrap()
}

async fn fargate_env() -> Env {
    let mut env = env().await;
    env.spec = example();
    env
}

/// The platform's pod security groups by tenant (`tenantry-paycore-prod-t-<tenant>-pods`).
async fn pod_groups(
    env: &Env,
) -> std::collections::BTreeMap<String, aws_sdk_ec2::types::SecurityGroup> {
    let ec2 = aws_sdk_ec2::Client::new(&env.aws);
    let out = ec2.describe_security_groups().send().await.expect("groups");
    out.security_groups()
        .iter()
        .filter_map(|g| {
            let name = g.group_name()?;
            let tenant = name
                .strip_prefix("tenantry-paycore-prod-t-")?
                .strip_suffix("-pods")?;
            Some((tenant.to_owned(), g.clone()))
        })
        .collect()
}

/// `(protocol, port, peer group)` of a group's rules in one direction.
fn group_rules(perms: &[aws_sdk_ec2::types::IpPermission]) -> BTreeSet<(String, i32, String)> {
    perms
        .iter()
        .flat_map(|p| {
            let proto = p.ip_protocol().unwrap_or_default().to_owned();
            let port = p.from_port().unwrap_or(-1);
            let groups = p
                .user_id_group_pairs()
                .iter()
                .map(|g| g.group_id().unwrap_or_default().to_owned());
            let ranges = p
                .ip_ranges()
                .iter()
                .map(|r| r.cidr_ip().unwrap_or_default().to_owned());
            groups
                .chain(ranges)
                .map(move |peer| (proto.clone(), port, peer))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Each Fargate tenant has its own pod security group, which every pod of its namespace gets
/// (its SecurityGroupPolicy, read from the cluster) and which lets in only the tenant itself,
/// the control plane's kubelet calls and its `allowFrom` peers: fraud-detection reaches payment
/// on TCP 8080, reporting reaches neither, and no group keeps the allow-all egress EC2 gives a
/// new group. The cluster security group lets each tenant reach the endpoint and CoreDNS.
async fn assert_pod_groups_isolate_the_tenants(env: &Env) {
    let groups = pod_groups(env).await;
    let names: BTreeSet<&str> = groups.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from(["fraud-detection", "payment", "reporting"])
    );
    let id = |t: &str| groups[t].group_id().unwrap_or_default().to_owned();
    let status = env
        .store
        .get_status("paycore")
        .await
        .unwrap()
        .unwrap()
        .value;
    let cluster_group = status.outputs["clusterSecurityGroupId"]
        .as_str()
        .expect("cluster group")
        .to_owned();
    let all = "-1".to_owned();
    let tcp = |port: i32, peer: String| ("tcp".to_owned(), port, peer);
    let payment_in = group_rules(groups["payment"].ip_permissions());
    assert_eq!(
        payment_in,
        BTreeSet::from([
            (all.clone(), -1, id("payment")),
            tcp(10250, cluster_group.clone()),
            tcp(8080, id("fraud-detection")),
        ]),
    );
    let fraud_out = group_rules(groups["fraud-detection"].ip_permissions_egress());
    assert_eq!(
        fraud_out,
        BTreeSet::from([
            (all.clone(), -1, id("fraud-detection")),
            tcp(443, "0.0.0.0/0".to_owned()),
            tcp(53, cluster_group.clone()),
            ("udp".to_owned(), 53, cluster_group.clone()),
            tcp(8080, id("payment")),
        ]),
    );
    let reporting: Vec<String> = group_rules(groups["reporting"].ip_permissions())
        .into_iter()
        .chain(group_rules(groups["reporting"].ip_permissions_egress()))
        .map(|r| r.2)
        .filter(|peer| *peer == id("payment") || *peer == id("fraud-detection"))
        .collect();
    assert!(
        reporting.is_empty(),
        "reporting reaches another tenant: {reporting:?}"
    );
    let ec2 = aws_sdk_ec2::Client::new(&env.aws);
    let cluster = ec2
        .describe_security_groups()
        .group_ids(&cluster_group)
        .send()
        .await
        .expect("cluster group");
    let cluster_in = group_rules(cluster.security_groups()[0].ip_permissions());
    for t in ["payment", "fraud-detection", "reporting"] {
        assert!(cluster_in.contains(&tcp(443, id(t))), "{t}: endpoint");
        assert!(
            cluster_in.contains(&("udp".to_owned(), 53, id(t))),
            "{t}: DNS"
        );
    }
    let spec: tenantry::spec::PlatformSpec = serde_json::from_value(example()).expect("spec");
    let kube = env
        .stack
        .kube_client_for("paycore-prod")
        .expect("kube client");
    for tenant in &spec.tenants {
        let policy = tenantry::kubernetes::security_group_policy(&spec, tenant, "");
        let live = tenantry::kubernetes::get(&kube, &policy)
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("{}: no SecurityGroupPolicy", tenant.name));
        assert_eq!(live["spec"]["podSelector"], json!({}), "{}", tenant.name);
        assert_eq!(
            live["spec"]["securityGroups"]["groupIds"],
            json!([id(&tenant.name)]),
            "{}",
            tenant.name
        );
    }
}

/// Every resource of the platform carries its environment: the EC2 resources, the cluster, its
/// node groups, add-ons and Fargate profiles, and the roles tagged with the platform (as
/// `tenantry:environment`), and the Kubernetes objects Tenantry applied (as the label
/// `tenantry.io/environment`: the tenants' namespaces and their SecurityGroupPolicies).
async fn assert_environment_everywhere(env: &Env, cluster: &str) {
    let want = Some("prod");
    let ec2 = aws_sdk_ec2::Client::new(&env.aws);
    let filter = aws_sdk_ec2::types::Filter::builder()
        .name("tag:tenantry:platform")
        .values("paycore")
        .build();
    let env_of = |tags: &[aws_sdk_ec2::types::Tag]| {
        tags.iter()
            .find(|t| t.key() == Some("tenantry:environment"))
            .and_then(|t| t.value().map(str::to_owned))
    };
    let mut seen = 0;
    let groups = ec2
        .describe_security_groups()
        .filters(filter.clone())
        .send()
        .await
        .unwrap();
    for g in groups.security_groups() {
        assert_eq!(env_of(g.tags()).as_deref(), want, "{:?}", g.group_name());
        seen += 1;
    }
    let subnets = ec2
        .describe_subnets()
        .filters(filter.clone())
        .send()
        .await
        .unwrap();
    for n in subnets.subnets() {
        assert_eq!(env_of(n.tags()).as_deref(), want, "{:?}", n.subnet_id());
        seen += 1;
    }
    let vpcs = ec2.describe_vpcs().filters(filter).send().await.unwrap();
    for v in vpcs.vpcs() {
        assert_eq!(env_of(v.tags()).as_deref(), want, "{:?}", v.vpc_id());
        seen += 1;
    }
    let eks = aws_sdk_eks::Client::new(&env.aws);
    let c = eks.describe_cluster().name(cluster).send().await.unwrap();
    let tag = |tags: Option<&std::collections::HashMap<String, String>>| {
        tags.and_then(|t| t.get("tenantry:environment")).cloned()
    };
    assert_eq!(
        tag(c.cluster().and_then(|c| c.tags())).as_deref(),
        want,
        "cluster"
    );
    for ng in eks
        .list_nodegroups()
        .cluster_name(cluster)
        .send()
        .await
        .unwrap()
        .nodegroups()
    {
        let d = eks
            .describe_nodegroup()
            .cluster_name(cluster)
            .nodegroup_name(ng)
            .send()
            .await
            .unwrap();
        assert_eq!(
            tag(d.nodegroup().and_then(|n| n.tags())).as_deref(),
            want,
            "{ng}"
        );
        seen += 1;
    }
    for a in eks
        .list_addons()
        .cluster_name(cluster)
        .send()
        .await
        .unwrap()
        .addons()
    {
        let d = eks
            .describe_addon()
            .cluster_name(cluster)
            .addon_name(a)
            .send()
            .await
            .unwrap();
        assert_eq!(
            tag(d.addon().and_then(|x| x.tags())).as_deref(),
            want,
            "{a}"
        );
        seen += 1;
    }
    for name in profiles(&eks, cluster).await {
        let d = eks
            .describe_fargate_profile()
            .cluster_name(cluster)
            .fargate_profile_name(&name)
            .send()
            .await
            .unwrap();
        assert_eq!(
            tag(d.fargate_profile().and_then(|p| p.tags())).as_deref(),
            want,
            "{name}"
        );
        seen += 1;
    }
    let iam = aws_sdk_iam::Client::new(&env.aws);
    let roles = iam
        .list_roles()
        .path_prefix("/tenantry/")
        .send()
        .await
        .unwrap();
    for r in roles.roles() {
        let tags = iam
            .list_role_tags()
            .role_name(r.role_name())
            .send()
            .await
            .unwrap();
        let of = |k: &str| {
            tags.tags()
                .iter()
                .find(|t| t.key() == k)
                .map(|t| t.value().to_owned())
        };
        if of("tenantry:platform").as_deref() == Some("paycore") {
            assert_eq!(
                of("tenantry:environment").as_deref(),
                want,
                "{}",
                r.role_name()
            );
            seen += 1;
        }
    }
    let spec: tenantry::spec::PlatformSpec = serde_json::from_value(example()).expect("spec");
    let kube = env.stack.kube_client_for(cluster).expect("kube client");
    for tenant in &spec.tenants {
        for m in [
            tenantry::kubernetes::tenant_manifests(&spec, tenant, None).remove(0),
            tenantry::kubernetes::security_group_policy(&spec, tenant, ""),
        ] {
            let live = tenantry::kubernetes::get(&kube, &m)
                .await
                .unwrap()
                .expect("applied");
            assert_eq!(
                live["metadata"]["labels"]["tenantry.io/environment"],
                json!("prod"),
                "{} {}",
                m["kind"],
                tenant.name
            );
            seen += 1;
        }
    }
    assert!(seen > 30, "only {seen} resources looked at");
}

/// Puts a tenant request (`TenantOffboardingRequested`...) on the bus.
async fn put_tenant_request(env: &Env, kind: RequestKind, detail: Value) {
    let out = aws_sdk_eventbridge::Client::new(&env.aws)
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .event_bus_name(tenantry::events::event_bus())
                .source("tests")
                .detail_type(kind.detail_type())
                .detail(detail.to_string())
                .build(),
        )
        .send()
        .await
        .expect("put events");
    assert_eq!(out.failed_entry_count(), 0);
}

async fn profiles(eks: &aws_sdk_eks::Client, cluster: &str) -> BTreeSet<String> {
    eks.list_fargate_profiles()
        .cluster_name(cluster)
        .send()
        .await
        .expect("list profiles")
        .fargate_profile_names()
        .iter()
        .cloned()
        .collect()
}

#[tokio::test]
async fn payments_fargate_provisions_as_planned_offboards_a_tenant_and_leaves_nothing() {
    let env = fargate_env().await;
    let run = env.run(RequestKind::PlatformProvision, "fargate-1").await;
    assert_eq!(
        run.status,
        ExecutionStatus::Succeeded,
        "{:?} {:?}",
        run.cause,
        run.failures()
    );
    assert_plan_matches_inventory(&env).await;
    assert_roles_are_bounded(&env).await;
    assert_observe_is_silent(&env).await;

    let eks = aws_sdk_eks::Client::new(&env.aws);
    let cluster = "paycore-prod";
    let expected: BTreeSet<String> = [
        "paycore-prod-p-batch-jobs",
        "paycore-prod-coredns",
        "paycore-prod-t-payment",
        "paycore-prod-t-fraud-detection",
        "paycore-prod-t-reporting",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(profiles(&eks, cluster).await, expected);

    // Every profile: the private subnets, the pod execution role, the platform's tags, and the
    // selectors the request asked for (a tenant's: its own namespace only).
    let status = env
        .store
        .get_status("paycore")
        .await
        .unwrap()
        .unwrap()
        .value;
    let private: BTreeSet<String> =
        serde_json::from_value(status.outputs["privateSubnetIds"].clone()).expect("subnets");
    let role = status.outputs["fargatePodRoleArn"]
        .as_str()
        .expect("pod role output")
        .to_owned();
    assert!(
        role.ends_with(":role/tenantry/tenantry-paycore-prod-fargate-pods"),
        "{role}"
    );
    for name in &expected {
        let p = eks
            .describe_fargate_profile()
            .cluster_name(cluster)
            .fargate_profile_name(name)
            .send()
            .await
            .expect("describe profile");
        let p = p.fargate_profile().expect("profile");
        let subnets: BTreeSet<String> = p.subnets().iter().cloned().collect();
        assert_eq!(subnets, private, "{name}: private subnets only");
        assert_eq!(p.pod_execution_role_arn(), Some(role.as_str()), "{name}");
        assert_eq!(
            p.tags()
                .and_then(|t| t.get("tenantry:platform"))
                .map(String::as_str),
            Some("paycore"),
            "{name}"
        );
        let selectors: Vec<(String, Value)> = p
            .selectors()
            .iter()
            .map(|s| {
                (
                    s.namespace().unwrap_or_default().to_owned(),
                    json!(s.labels().cloned().unwrap_or_default()),
                )
            })
            .collect();
        let want = match name.as_str() {
            "paycore-prod-p-batch-jobs" => {
                vec![("settlement-jobs".into(), json!({"compute": "fargate"}))]
            }
            "paycore-prod-coredns" => vec![("kube-system".into(), json!({"k8s-app": "kube-dns"}))],
            other => vec![(
                other.trim_start_matches("paycore-prod-t-").to_owned(),
                json!({}),
            )],
        };
        assert_eq!(selectors, want, "{name}");
    }
    // CoreDNS runs on Fargate: its add-on is configured for it.
    let coredns = eks
        .describe_addon()
        .cluster_name(cluster)
        .addon_name("coredns")
        .send()
        .await
        .expect("coredns");
    let config: Value = serde_json::from_str(
        coredns
            .addon()
            .and_then(|a| a.configuration_values())
            .expect("coredns configuration"),
    )
    .expect("JSON");
    assert_eq!(config["computeType"], json!("Fargate"));
    assert_pod_groups_isolate_the_tenants(&env).await;
    assert_environment_everywhere(&env, cluster).await;

    // Drift: CoreDNS's profile and payment's deleted out of band are named, then made again.
    for name in ["paycore-prod-coredns", "paycore-prod-t-payment"] {
        eks.delete_fargate_profile()
            .cluster_name(cluster)
            .fargate_profile_name(name)
            .send()
            .await
            .expect("delete out of band");
    }
    let report = crate::drift::check(&env, "fargate-drift-1", DriftRemediation::Auto).await;
    for name in ["paycore-prod-coredns", "paycore-prod-t-payment"] {
        let resource = format!("eks:fargate-profile/{name}");
        assert!(
            report
                .differences
                .iter()
                .any(|d| d.resource == resource && d.field == "exists"),
            "{resource} not named: {:#?}",
            report.differences
        );
    }
    assert_eq!(profiles(&eks, cluster).await, expected, "repaired");

    // Offboarding reporting: its profile and its repository go, and nothing of it is recorded.
    put_tenant_request(
        &env,
        RequestKind::TenantOffboarding,
        json!({"schemaVersion": "1", "requestId": "fargate-offboard-reporting",
               "platformId": "paycore", "tenantName": "reporting"}),
    )
    .await;
    let gone = env.finish("fargate-offboard-reporting").await;
    assert_eq!(gone.status, ExecutionStatus::Succeeded, "{:?}", gone.cause);
    let mut left = expected.clone();
    left.remove("paycore-prod-t-reporting");
    assert_eq!(profiles(&eks, cluster).await, left);
    let ecr = aws_sdk_ecr::Client::new(&env.aws);
    let repos: Vec<String> = ecr
        .describe_repositories()
        .send()
        .await
        .expect("repositories")
        .repositories()
        .iter()
        .filter_map(|r| r.repository_name().map(str::to_owned))
        .collect();
    assert!(
        !repos.iter().any(|r| r.contains("/reporting/")),
        "reporting's repository is left: {repos:?}"
    );
    assert!(repos.contains(&"tenantry/paycore-prod/payment/payment-service".to_owned()));
    let records = env
        .store
        .list_resources("paycore")
        .await
        .expect("inventory");
    let of_reporting: Vec<_> = records
        .iter()
        .filter(|r| r.tenant.as_deref() == Some("reporting"))
        .map(|r| format!("{} {}", r.resource_type, r.id))
        .collect();
    assert!(of_reporting.is_empty(), "left recorded: {of_reporting:?}");
    let groups = pod_groups(&env).await;
    assert!(
        !groups.contains_key("reporting") && groups.contains_key("payment"),
        "reporting's pod group is left: {:?}",
        groups.keys()
    );

    // Offboarding fraud-detection, which payment's allowFrom names: its group goes, and so do
    // payment's rule naming it and payment's NetworkPolicy letting it in.
    let fraud_group = groups["fraud-detection"]
        .group_id()
        .unwrap_or_default()
        .to_owned();
    put_tenant_request(
        &env,
        RequestKind::TenantOffboarding,
        json!({"schemaVersion": "1", "requestId": "fargate-offboard-fraud",
               "platformId": "paycore", "tenantName": "fraud-detection"}),
    )
    .await;
    let gone = env.finish("fargate-offboard-fraud").await;
    assert_eq!(gone.status, ExecutionStatus::Succeeded, "{:?}", gone.cause);
    let groups = pod_groups(&env).await;
    assert_eq!(groups.keys().collect::<Vec<_>>(), ["payment"]);
    let payment = &groups["payment"];
    let peers: Vec<String> = group_rules(payment.ip_permissions())
        .into_iter()
        .chain(group_rules(payment.ip_permissions_egress()))
        .map(|r| r.2)
        .collect();
    assert!(
        !peers.contains(&fraud_group),
        "payment still names fraud-detection: {peers:?}"
    );
    let spec: tenantry::spec::PlatformSpec = serde_json::from_value(example()).expect("spec");
    let payment_spec = spec
        .tenants
        .iter()
        .find(|t| t.name == "payment")
        .expect("payment");
    let kube = env
        .stack
        .kube_client_for("paycore-prod")
        .expect("kube client");
    for m in tenantry::kubernetes::tenant_manifests(&spec, payment_spec, None) {
        if tenantry::kubernetes::peer_of(&m) == Some("fraud-detection") {
            let live = tenantry::kubernetes::get(&kube, &m).await.expect("get");
            assert!(live.is_none(), "{} is left", m["metadata"]["name"]);
        }
    }
    assert!(records
        .iter()
        .any(|r| r.resource_type == Kind::FargateProfile.as_str()
            && r.id == "paycore-prod-t-payment"));

    decommission_leaves_nothing(&env, "fargate").await;
}

#[tokio::test]
async fn a_hostile_fargate_request_is_refused_naming_field_and_rule_and_creates_nothing() {
    let env = fargate_env().await;
    let mut spec = example();
    // A tenant reaching into kube-system, and a platform profile over EKS's selector limit.
    spec["tenants"][0]["fargate"] =
        json!({"selectors": [{"namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}}]});
    spec["fargate"]["profiles"][0]["selectors"] = json!((0..6)
        .map(|i| json!({"namespace": format!("jobs-{i}")}))
        .collect::<Vec<_>>());
    // Tenantry's result events, read from a queue a rule fills (intake records no request it
    // refuses at validation).
    let sqs = aws_sdk_sqs::Client::new(&env.aws);
    let queue = tenantry_integration::results_queue(&env.aws, &sqs, "fargate-results").await;
    env.put_detail(
        RequestKind::PlatformProvision,
        "fargate-hostile",
        Some(spec),
        None,
    )
    .await;
    let detail = rejected(&sqs, &queue, "fargate-hostile").await;
    assert_eq!(detail["error"]["code"], "Tenantry.InvalidRequest");
    let issues: Vec<tenantry::validate::Issue> =
        serde_json::from_value(detail["issues"].clone()).expect("issues");
    for (path, rule) in [
        (
            "$.tenants[0].fargate.selectors[0].namespace",
            "fargate-namespace",
        ),
        ("$.fargate.profiles[0].selectors", "fargate-selector"),
    ] {
        assert!(
            issues.iter().any(|i| i.path == path && i.rule == rule),
            "{path} [{rule}] not named: {issues:?}"
        );
    }
    assert!(env
        .store
        .get_request("fargate-hostile")
        .await
        .unwrap()
        .is_none_or(|r| r.execution_arn.is_none()));
    let live = tagged_resources(&env.aws, "paycore").await.expect("census");
    assert!(live.values().all(|n| *n == 0), "created: {live:?}");
}

/// The `PlatformProvisionRejected` event of `request_id` (waiting up to a minute).
async fn rejected(sqs: &aws_sdk_sqs::Client, queue: &str, request_id: &str) -> Value {
    for _ in 0..30 {
        let out = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(2)
            .send()
            .await
            .expect("receive results");
        for m in out.messages() {
            let envelope: Value = serde_json::from_str(m.body().unwrap_or("{}")).expect("envelope");
            if envelope["detail-type"] == "PlatformProvisionRejected"
                && envelope["detail"]["requestId"] == request_id
            {
                return envelope["detail"].clone();
            }
        }
    }
    panic!("no PlatformProvisionRejected for {request_id}");
}

/// A tenant asking for Fargate on a platform whose request did not (the example): onboarding
/// makes the pod execution role and the tenant's profile, and decommissioning removes both.
#[tokio::test]
async fn a_fargate_tenant_onboarded_later_brings_the_pod_role_and_decommission_removes_both() {
    let mut env = env().await;
    // Fargate pods have no Pod Identity agent: the tenant roles trust IRSA.
    env.spec["identity"]["podIdentity"] = json!(false);
    env.spec["identity"]["irsa"] = json!(true);
    let run = env
        .run(RequestKind::PlatformProvision, "fargate-late-1")
        .await;
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.cause);
    put_tenant_request(
        &env,
        RequestKind::TenantOnboarding,
        json!({"schemaVersion": "1", "requestId": "fargate-late-onboard", "platformId": "payments",
               "tenant": {"name": "settlement", "costCentre": "cc-9",
                          "fargate": {}}}),
    )
    .await;
    let onboarded = env.finish("fargate-late-onboard").await;
    assert_eq!(
        onboarded.status,
        ExecutionStatus::Succeeded,
        "{:?} {:?}",
        onboarded.cause,
        onboarded.failures()
    );
    let eks = aws_sdk_eks::Client::new(&env.aws);
    let cluster = "payments-prod";
    assert_eq!(
        profiles(&eks, cluster).await,
        BTreeSet::from(["payments-prod-t-settlement".to_owned()])
    );
    let p = eks
        .describe_fargate_profile()
        .cluster_name(cluster)
        .fargate_profile_name("payments-prod-t-settlement")
        .send()
        .await
        .expect("profile");
    let p = p.fargate_profile().expect("profile");
    assert_eq!(p.selectors()[0].namespace(), Some("settlement"));
    let role = p.pod_execution_role_arn().expect("role").to_owned();
    assert!(
        role.ends_with(":role/tenantry/tenantry-payments-prod-fargate-pods"),
        "{role}"
    );
    let iam = aws_sdk_iam::Client::new(&env.aws);
    let attached = iam
        .list_attached_role_policies()
        .role_name("tenantry-payments-prod-fargate-pods")
        .send()
        .await
        .expect("attached policies");
    let arns: Vec<&str> = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
        .collect();
    assert_eq!(
        arns,
        ["arn:aws:iam::aws:policy/AmazonEKSFargatePodExecutionRolePolicy"]
    );
    decommission_leaves_nothing(&env, "fargate-late").await;
}
