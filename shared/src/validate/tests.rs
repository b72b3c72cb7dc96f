//! One test per validation rule (each breaks the example platform in one place and expects the
//! rule at the path), plus the hostile tenant names and the parse-level rules.

use serde_json::{json, Value};

use super::*;

const PLATFORM: &str = include_str!("../../../examples/platform.json");
const TENANT: &str = include_str!("../../../examples/tenant.json");

fn example() -> Value {
    serde_json::from_str(PLATFORM).expect("example platform is JSON")
}

fn refuse(v: &Value) -> ValidationErrors {
    match parse_platform(&v.to_string()) {
        Ok(_) => panic!("request was accepted: {v:#}"),
        Err(e) => e,
    }
}

#[track_caller]
fn expect(v: &Value, path: &str, rule: &str) {
    let errors = refuse(v);
    assert!(
        errors.has(path, rule),
        "expected {rule} at {path}, got:\n{errors}"
    );
}

#[test]
fn examples_are_valid() {
    let spec = parse_platform(PLATFORM).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.id, "payments");
    parse_tenant(TENANT).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn minimal_request_takes_every_default() {
    let spec = parse_platform(r#"{"id":"shop","environment":"dev","region":"eu-west-1"}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        spec.kubernetes_version,
        crate::spec::DEFAULT_KUBERNETES_VERSION
    );
    assert_eq!(spec.network.az_count, 3);
    assert_eq!(spec.logging.retention_days, 90);
    assert_eq!(spec.logging.types.len(), 5);
    assert_eq!(spec.effective_node_groups().len(), 4);
    assert_eq!(spec.effective_addons().len(), 6);
}

#[test]
fn all_issues_are_reported_at_once() {
    let mut v = example();
    v["network"]["vpcCidr"] = json!("10.0.0.0/33");
    v["logging"]["retentionDays"] = json!(100);
    v["kubernetesVersion"] = json!("1.29");
    v["nodeGroups"][0]["minSize"] = json!(9);
    v["tenants"][1]["name"] = json!("kube-system");
    let errors = refuse(&v);
    for (path, rule) in [
        ("$.network.vpcCidr", rules::CIDR_SYNTAX),
        ("$.logging.retentionDays", rules::RETENTION_DAYS),
        ("$.kubernetesVersion", rules::KUBERNETES_VERSION),
        ("$.nodeGroups[0].minSize", rules::SCALING_BOUNDS),
        ("$.tenants[1].name", rules::RESERVED_NAME),
    ] {
        assert!(
            errors.has(path, rule),
            "{rule} at {path} missing:\n{errors}"
        );
    }
    let text = errors.to_string();
    assert!(text.lines().count() > 5, "{text}");
    let json = serde_json::to_value(&errors).expect("serializes");
    assert!(json.as_array().is_some_and(|a| a.len() >= 5));
}

#[test]
fn retired_version_message() {
    let mut v = example();
    v["kubernetesVersion"] = json!("1.31");
    let errors = refuse(&v);
    assert!(
        errors.0[0]
            .message
            .contains("no longer supported by Amazon EKS"),
        "{errors}"
    );
    v["kubernetesVersion"] = json!("1.37");
    let errors = refuse(&v);
    assert!(
        !errors.0[0].message.contains("no longer supported"),
        "{errors}"
    );
}

#[test]
fn rule_table_covers_every_rule() {
    let mut missing: Vec<&str> = rules::ALL
        .iter()
        .copied()
        .filter(|r| {
            !COVERED.contains(r) && !PARSE_RULES.contains(r) && !ADMISSION_RULES.contains(r)
        })
        .collect();
    missing.sort();
    assert!(missing.is_empty(), "rules without a test: {missing:?}");
}

/// Rules only admission applies, against the platform's tenant records or the deployment's
/// settings (tested in `functions::intake` and `tests/it/cross_account.rs`).
const ADMISSION_RULES: &[&str] = &[rules::RETAINED_DATA, rules::TARGET_ACCOUNT];

// ---- parse-level rules ----

const PARSE_RULES: &[&str] = &[
    rules::JSON_SYNTAX,
    rules::UNKNOWN_FIELD,
    rules::MISSING_FIELD,
    rules::DUPLICATE_FIELD,
    rules::INVALID_TYPE,
    rules::INVALID_VALUE,
];

#[test]
fn json_syntax_has_line_and_column() {
    let errors =
        parse_platform("{\n  \"id\": \"payments\",\n  \"region\": \n}").expect_err("malformed");
    let issue = &errors.0[0];
    assert_eq!(issue.rule, rules::JSON_SYNTAX);
    assert_eq!(issue.path, "$");
    assert_eq!(issue.line, Some(4));
    assert!(issue.message.contains("line 4"), "{}", issue.message);
    let errors = parse_platform(r#"{"id":"shop","environment":"dev","region":"eu-west-1"} x"#)
        .expect_err("trailing");
    assert_eq!(errors.0[0].rule, rules::JSON_SYNTAX);
    let errors = parse_platform("").expect_err("empty");
    assert_eq!(errors.0[0].rule, rules::JSON_SYNTAX);
}

#[test]
fn unknown_field_names_the_field() {
    let mut v = example();
    v["network"]["vpcCdir"] = json!("10.0.0.0/16");
    expect(&v, "$.network.vpcCdir", rules::UNKNOWN_FIELD);
    let mut v = example();
    v["nodeGroups"][2]["spot"] = json!(true);
    expect(&v, "$.nodeGroups[2].spot", rules::UNKNOWN_FIELD);
}

#[test]
fn missing_field_names_the_field() {
    let mut v = example();
    v["tenants"][1]
        .as_object_mut()
        .map(|o| o.remove("costCentre"));
    expect(&v, "$.tenants[1].costCentre", rules::MISSING_FIELD);
}

#[test]
fn duplicate_field_is_refused() {
    let errors = parse_tenant(r#"{"name":"checkout","costCentre":"a","name":"kube-system"}"#)
        .expect_err("duplicate field");
    assert!(errors.has("$.name", rules::DUPLICATE_FIELD), "{errors}");
}

#[test]
fn invalid_type_has_path() {
    let mut v = example();
    v["network"]["azCount"] = json!("three");
    expect(&v, "$.network.azCount", rules::INVALID_TYPE);
    let errors = parse_platform("[]").expect_err("not an object");
    assert!(errors.has("$", rules::INVALID_TYPE), "{errors}");
    let mut v = example();
    v["network"]["azCount"] = json!(300);
    expect(&v, "$.network.azCount", rules::INVALID_VALUE);
}

#[test]
fn taint_effect_is_checked() {
    let mut v = example();
    v["nodeGroups"][3]["taints"][0]["effect"] = json!("NoScheduleEver");
    expect(&v, "$.nodeGroups[3].taints[0].effect", rules::INVALID_VALUE);
    v["nodeGroups"][3]["taints"][0]["effect"] = json!("NO_SCHEDULE");
    expect(&v, "$.nodeGroups[3].taints[0].effect", rules::INVALID_VALUE);
}

#[test]
fn odd_map_keys_are_quoted_in_paths() {
    let mut v = example();
    v["tags"]["cost center*"] = json!("x");
    expect(&v, "$.tags['cost center*']", rules::UNSAFE_CHARACTERS);
}

// ---- hostile tenant names ----

#[test]
fn hostile_tenant_names() {
    let long = "a".repeat(64);
    let cases: &[(&str, &str)] = &[
        ("../x", rules::UNSAFE_CHARACTERS),
        ("a*", rules::UNSAFE_CHARACTERS),
        ("kube-system", rules::RESERVED_NAME),
        ("default", rules::RESERVED_NAME),
        (long.as_str(), rules::NAME_TOO_LONG),
        ("Checkout", rules::NAME_SYNTAX),
        ("check out", rules::NAME_SYNTAX),
        ("chéckout", rules::UNSAFE_CHARACTERS),
        ("team\"a", rules::UNSAFE_CHARACTERS),
        ("team'a", rules::UNSAFE_CHARACTERS),
        ("team\\a", rules::UNSAFE_CHARACTERS),
        ("${aws:username}", rules::UNSAFE_CHARACTERS),
        ("team_a", rules::NAME_SYNTAX),
        ("1team", rules::NAME_SYNTAX),
        ("team-", rules::NAME_SYNTAX),
        ("", rules::NAME_SYNTAX),
        ("amazon-cloudwatch", rules::RESERVED_NAME),
        ("tenantry-admin", rules::RESERVED_NAME),
        ("a-twenty-four-char-name1", rules::NAME_TOO_LONG),
    ];
    for (name, rule) in cases {
        let tenant = json!({ "name": name, "costCentre": "cc-1" });
        let errors = parse_tenant(&tenant.to_string()).expect_err(name);
        assert!(
            errors.has("$.name", rule),
            "{name:?}: expected {rule}, got:\n{errors}"
        );
        let mut v = example();
        v["tenants"][0]["name"] = json!(name);
        expect(&v, "$.tenants[0].name", rule);
    }
    // 23 characters fit exactly.
    let tenant = json!({ "name": "a-twenty-three-chars-ok", "costCentre": "cc-1" });
    parse_tenant(&tenant.to_string()).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn names_colliding_after_normalisation() {
    assert_eq!(normalise_name("Team_A"), "team-a");
    assert_eq!(normalise_name(" team--a "), "team-a");
    let mut v = example();
    v["tenants"][1]["name"] = json!("Checkout");
    let errors = refuse(&v);
    assert!(
        errors.has("$.tenants[1].name", rules::NAME_COLLISION),
        "{errors}"
    );
    assert!(
        errors.has("$.tenants[1].name", rules::NAME_SYNTAX),
        "{errors}"
    );
}

#[test]
fn payments_fargate_example_is_valid() {
    let spec = parse_platform(include_str!("../../../examples/payments-fargate.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(spec.fargate.core_dns && spec.uses_fargate());
    assert_eq!(
        spec.tenants.iter().filter(|t| t.fargate.is_some()).count(),
        3
    );
}

/// A tenant onboarded later may not take a namespace a platform profile selects, nor select
/// another namespace than its own; on a Calico platform it may not ask for Fargate at all.
#[test]
fn new_fargate_tenant_against_platform() {
    let mut platform = parse_platform(PLATFORM).unwrap_or_else(|e| panic!("{e}"));
    platform.fargate.profiles = vec![crate::spec::FargateProfileSpec {
        name: "jobs".into(),
        selectors: vec![crate::spec::FargateSelector {
            namespace: "etl".into(),
            labels: Default::default(),
        }],
    }];
    let t: TenantSpec = serde_json::from_value(json!({"name": "etl", "costCentre": "x"})).unwrap();
    let errors = validate_new_tenant(&platform, &t).expect_err("namespace taken");
    assert!(errors.has("$.name", rules::FARGATE_NAMESPACE), "{errors}");
    let t: TenantSpec = serde_json::from_value(json!({"name": "fx", "costCentre": "x",
        "fargate": {"selectors": [{"namespace": "checkout"}]}}))
    .unwrap();
    let errors = validate_new_tenant(&platform, &t).expect_err("another namespace");
    assert!(
        errors.has("$.fargate.selectors[0].namespace", rules::FARGATE_NAMESPACE),
        "{errors}"
    );
    let t: TenantSpec =
        serde_json::from_value(json!({"name": "fx", "costCentre": "x", "fargate": {}})).unwrap();
    let pod_identity = platform.clone();
    assert!(
        pod_identity.identity.pod_identity,
        "the example trusts Pod Identity"
    );
    platform.identity.pod_identity = false;
    platform.identity.irsa = true;
    validate_new_tenant(&platform, &t).unwrap_or_else(|e| panic!("{e}"));
    let errors = validate_new_tenant(&pod_identity, &t).expect_err("pod identity");
    assert!(
        errors.has("$.fargate", rules::FARGATE_POD_IDENTITY),
        "{errors}"
    );
    let part: TenantSpec = serde_json::from_value(json!({"name": "fx", "costCentre": "x",
        "fargate": {"selectors": [{"labels": {"compute": "fargate"}}]}}))
    .unwrap();
    let errors = validate_new_tenant(&platform, &part).expect_err("some pods on nodes");
    assert!(
        errors.has("$.fargate.selectors", rules::FARGATE_WHOLE_NAMESPACE),
        "{errors}"
    );
    let mixed: TenantSpec = serde_json::from_value(json!({"name": "fx", "costCentre": "x",
        "fargate": {"selectors": [{"labels": {"compute": "fargate"}}, {}]}}))
    .unwrap();
    validate_new_tenant(&platform, &mixed)
        .unwrap_or_else(|e| panic!("one selector takes all: {e}"));
    platform.cni = crate::spec::Cni::Calico;
    let errors = validate_new_tenant(&platform, &t).expect_err("calico");
    assert!(
        errors.has("$.fargate", rules::FARGATE_NETWORK_POLICY),
        "{errors}"
    );
}

#[test]
fn new_tenant_against_platform() {
    let platform = parse_platform(PLATFORM).unwrap_or_else(|e| panic!("{e}"));
    let t: TenantSpec =
        serde_json::from_str(r#"{"name":"ledger","costCentre":"x"}"#).expect("tenant");
    let errors = validate_new_tenant(&platform, &t).expect_err("duplicate");
    assert!(errors.has("$.name", rules::DUPLICATE_NAME), "{errors}");
    let t: TenantSpec = serde_json::from_str(TENANT).expect("tenant");
    validate_new_tenant(&platform, &t).unwrap_or_else(|e| panic!("{e}"));
}

// ---- one test per semantic rule ----

macro_rules! rule_tests {
    ($( $name:ident: $rule:expr, $path:expr, $v:ident => $body:block )*) => {
        $(
            #[test]
            fn $name() {
                #[allow(unused_mut)]
                let mut $v = example();
                $body
                expect(&$v, $path, $rule);
            }
        )*
        const COVERED: &[&str] = &[$($rule),*];
    };
}

rule_tests! {
    name_syntax: rules::NAME_SYNTAX, "$.id", v => { v["id"] = json!("Payments"); }
    aws_access_outside_the_catalogue: rules::AWS_ACCESS, "$.tenantAwsAccess.dynamodb[0]", v => { v["tenantAwsAccess"]["dynamodb"] = json!(["dynamodb:CreateTable"]); }
    aws_access_wildcard: rules::AWS_ACCESS, "$.tenantAwsAccess.sqs[0]", v => { v["tenantAwsAccess"]["sqs"] = json!(["sqs:*"]); }
    aws_access_not_approved: rules::AWS_ACCESS, "$.tenants[1].awsAccess.dynamodb[0]", v => { v["tenants"][1]["awsAccess"] = json!({ "dynamodb": ["dynamodb:Scan"] }); }
    aws_access_service_not_approved: rules::AWS_ACCESS, "$.tenants[1].awsAccess.sns[0]", v => { v["tenants"][1]["awsAccess"] = json!({ "sns": ["sns:Publish"] }); }
    aws_access_twice: rules::AWS_ACCESS, "$.tenants[1].awsAccess.dynamodb[1]", v => { v["tenants"][1]["awsAccess"] = json!({ "dynamodb": ["dynamodb:GetItem", "dynamodb:GetItem"] }); }
    allow_from_unknown_tenant: rules::ALLOW_FROM, "$.tenants[1].allowFrom[0].tenant", v => { v["tenants"][1]["allowFrom"] = json!([{ "tenant": "payroll", "ports": [8080] }]); }
    allow_from_system_namespace: rules::RESERVED_NAME, "$.tenants[1].allowFrom[0].tenant", v => { v["tenants"][1]["allowFrom"] = json!([{ "tenant": "kube-system", "ports": [53] }]); }
    allow_from_itself: rules::ALLOW_FROM, "$.tenants[1].allowFrom[0].tenant", v => { v["tenants"][1]["allowFrom"] = json!([{ "tenant": "ledger", "ports": [8080] }]); }
    allow_from_twice: rules::ALLOW_FROM, "$.tenants[1].allowFrom[1].tenant", v => { v["tenants"][1]["allowFrom"] = json!([{ "tenant": "checkout", "ports": [8080] }, { "tenant": "checkout", "ports": [9090] }]); }
    ports_zero: rules::PORTS, "$.tenants[1].allowFrom[0].ports", v => { v["tenants"][1]["allowFrom"] = json!([{ "tenant": "checkout", "ports": [0] }]); }
    ports_none: rules::PORTS, "$.tenants[1].allowFrom[0].ports", v => { v["tenants"][1]["allowFrom"] = json!([{ "tenant": "checkout", "ports": [] }]); }
    ports_repeated: rules::PORTS, "$.tenants[1].allowFrom[0].ports", v => { v["tenants"][1]["allowFrom"] = json!([{ "tenant": "checkout", "ports": [8080, 8080] }]); }
    unsafe_characters: rules::UNSAFE_CHARACTERS, "$.environment", v => { v["environment"] = json!("pr\"od"); }
    reserved_name: rules::RESERVED_NAME, "$.nodeGroups[1].name", v => { v["nodeGroups"][1]["name"] = json!("kube-nodes"); }
    name_too_long: rules::NAME_TOO_LONG, "$.id", v => { v["id"] = json!("payments-and-settlements"); }
    name_too_long_nodegroup: rules::NAME_TOO_LONG, "$.nodeGroups[0].name", v => { v["nodeGroups"][0]["name"] = json!("critical-workloads-on-demand-pool-x"); }
    duplicate_name: rules::DUPLICATE_NAME, "$.nodeGroups[2].name", v => { v["nodeGroups"][2]["name"] = json!("general"); }
    name_collision: rules::NAME_COLLISION, "$.tenants[2].name", v => { v["tenants"][2]["name"] = json!("LEDGER"); }
    region: rules::REGION, "$.region", v => { v["region"] = json!("us-east"); }
    arn: rules::ARN, "$.access.adminPrincipals[0]", v => { v["access"]["adminPrincipals"][0] = json!("arn:aws:iam::1234:role/admin"); }
    arn_partition: rules::ARN_PARTITION, "$.targetRoleArn", v => { v["targetRoleArn"] = json!("arn:aws-cn:iam::111122223333:role/tenantry"); }
    arn_region: rules::ARN_REGION, "$.encryption.kmsKeyArn", v => { v["encryption"]["kmsKeyArn"] = json!("arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"); }
    kubernetes_version: rules::KUBERNETES_VERSION, "$.kubernetesVersion", v => { v["kubernetesVersion"] = json!("1.28"); }
    retention_days: rules::RETENTION_DAYS, "$.network.flowLogs.retentionDays", v => { v["network"]["flowLogs"]["retentionDays"] = json!(100); }
    duplicate_log_type: rules::DUPLICATE_LOG_TYPE, "$.logging.types[5]", v => { v["logging"]["types"] = json!(["api", "audit", "authenticator", "controllerManager", "scheduler", "audit"]); }
    cidr_syntax: rules::CIDR_SYNTAX, "$.network.vpcCidr", v => { v["network"]["vpcCidr"] = json!("10.0.0.1/16"); }
    vpc_cidr_size: rules::VPC_CIDR_SIZE, "$.network.vpcCidr", v => { v["network"]["vpcCidr"] = json!("10.0.0.0/8"); }
    vpc_cidr_range: rules::VPC_CIDR_RANGE, "$.network.vpcCidr", v => { v["network"]["vpcCidr"] = json!("8.8.0.0/16"); }
    cidr_overlap: rules::CIDR_OVERLAP, "$.network.privateSubnets[0]", v => {
        v["network"]["publicSubnets"] = json!(["10.0.0.0/20", "10.0.16.0/20", "10.0.32.0/20"]);
        v["network"]["privateSubnets"] = json!(["10.0.8.0/21", "10.0.144.0/20", "10.0.160.0/20"]);
    }
    cidr_overlap_pods: rules::CIDR_OVERLAP, "$.network.podCidr", v => {
        v["network"]["vpcCidr"] = json!("100.64.0.0/16");
        v["network"]["podCidr"] = json!("100.64.0.0/17");
    }
    subnet_outside_vpc: rules::SUBNET_OUTSIDE_VPC, "$.network.publicSubnets[2]", v => {
        v["network"]["publicSubnets"] = json!(["10.0.0.0/20", "10.0.16.0/20", "10.1.32.0/20"]);
    }
    subnet_count: rules::SUBNET_COUNT, "$.network.privateSubnets", v => {
        v["network"]["privateSubnets"] = json!(["10.0.128.0/20", "10.0.144.0/20"]);
    }
    subnet_fit: rules::SUBNET_FIT, "$.network.subnetPrefixLength", v => {
        v["network"]["vpcCidr"] = json!("10.0.0.0/24");
        v["network"]["subnetPrefixLength"] = json!(26);
    }
    pod_cidr_range: rules::POD_CIDR_RANGE, "$.network.podCidr", v => { v["network"]["podCidr"] = json!("172.16.0.0/16"); }
    pod_cidr_size: rules::POD_CIDR_SIZE, "$.network.podCidr", v => { v["network"]["podCidr"] = json!("100.64.0.0/26"); }
    az_count: rules::AZ_COUNT, "$.network.azCount", v => { v["network"]["azCount"] = json!(7); }
    duplicate_endpoint: rules::DUPLICATE_ENDPOINT, "$.network.endpoints[2]", v => { v["network"]["endpoints"] = json!(["s3", "sts", "s3"]); }
    nat_endpoints: rules::NAT_ENDPOINTS, "$.network.endpoints", v => {
        v["network"]["natMode"] = json!("none");
        v["network"]["endpoints"] = json!(["s3", "logs"]);
    }
    public_access_private_range: rules::PUBLIC_ACCESS_PRIVATE_RANGE, "$.endpointAccess.publicAccessCidrs[1]", v => {
        v["endpointAccess"]["publicAccessCidrs"] = json!(["203.0.113.0/24", "192.168.1.0/24"]);
    }
    public_access_open: rules::PUBLIC_ACCESS_OPEN, "$.endpointAccess.publicAccessCidrs[0]", v => {
        v["endpointAccess"]["publicAccessCidrs"] = json!(["0.0.0.0/0"]);
    }
    public_access_cidr_count: rules::PUBLIC_ACCESS_CIDR_COUNT, "$.endpointAccess.publicAccessCidrs", v => {
        let cidrs: Vec<String> = (0..41).map(|i| format!("203.0.{i}.0/24")).collect();
        v["endpointAccess"]["publicAccessCidrs"] = json!(cidrs);
    }
    endpoint_access_none: rules::ENDPOINT_ACCESS_NONE, "$.endpointAccess", v => {
        v["complianceProfile"] = json!("none");
        v["endpointAccess"]["private"] = json!(false);
    }
    compliance_retention: rules::COMPLIANCE_RETENTION, "$.logging.retentionDays", v => { v["logging"]["retentionDays"] = json!(90); }
    compliance_log_types: rules::COMPLIANCE_LOG_TYPES, "$.logging.types", v => { v["logging"]["types"] = json!(["audit", "authenticator", "scheduler"]); }
    compliance_flow_logs: rules::COMPLIANCE_FLOW_LOGS, "$.network.flowLogs.enabled", v => { v["network"]["flowLogs"]["enabled"] = json!(false); }
    compliance_private_endpoint: rules::COMPLIANCE_PRIVATE_ENDPOINT, "$.endpointAccess.private", v => {
        v["endpointAccess"] = json!({ "private": false, "publicAccessCidrs": ["203.0.113.0/24"] });
    }
    nodegroups_empty: rules::NODEGROUPS_EMPTY, "$.nodeGroups", v => { v["nodeGroups"] = json!([]); }
    nodegroups_count: rules::NODEGROUPS_COUNT, "$.nodeGroups", v => {
        let groups: Vec<Value> = (0..31).map(|i| json!({ "name": format!("g{i}"), "role": "general" })).collect();
        v["nodeGroups"] = json!(groups);
    }
    scaling_bounds: rules::SCALING_BOUNDS, "$.nodeGroups[1].desiredSize", v => { v["nodeGroups"][1]["desiredSize"] = json!(7); }
    scaling_bounds_max: rules::SCALING_BOUNDS, "$.nodeGroups[1].maxSize", v => {
        v["nodeGroups"][1]["minSize"] = json!(0);
        v["nodeGroups"][1]["desiredSize"] = json!(0);
        v["nodeGroups"][1]["maxSize"] = json!(0);
    }
    instance_type: rules::INSTANCE_TYPE, "$.nodeGroups[2].instanceTypes[1]", v => { v["nodeGroups"][2]["instanceTypes"][1] = json!("t3-medium"); }
    instance_types_empty: rules::INSTANCE_TYPES_EMPTY, "$.nodeGroups[0].instanceTypes", v => { v["nodeGroups"][0]["instanceTypes"] = json!([]); }
    instance_architecture: rules::INSTANCE_ARCHITECTURE, "$.nodeGroups[0].instanceTypes[0]", v => { v["nodeGroups"][0]["amiType"] = json!("BOTTLEROCKET_ARM_64"); }
    disk_size: rules::DISK_SIZE, "$.nodeGroups[0].diskSizeGib", v => { v["nodeGroups"][0]["diskSizeGib"] = json!(10); }
    label_syntax: rules::LABEL_SYNTAX, "$.nodeGroups[1].labels.team", v => { v["nodeGroups"][1]["labels"]["team"] = json!("a b"); }
    reserved_label: rules::RESERVED_LABEL, "$.nodeGroups[1].labels['node-role.kubernetes.io/general']", v => {
        v["nodeGroups"][1]["labels"]["node-role.kubernetes.io/general"] = json!("");
    }
    taint_syntax: rules::TAINT_SYNTAX, "$.nodeGroups[0].taints[0].key", v => { v["nodeGroups"][0]["taints"][0]["key"] = json!("-workload"); }
    duplicate_taint: rules::DUPLICATE_TAINT, "$.nodeGroups[0].taints[1]", v => {
        v["nodeGroups"][0]["taints"] = json!([
            { "key": "workload", "value": "critical", "effect": "NoSchedule" },
            { "key": "workload", "value": "other", "effect": "NoSchedule" }
        ]);
    }
    addon_unknown: rules::ADDON_UNKNOWN, "$.addons[1].name", v => { v["addons"][1]["name"] = json!("kube-proxyy"); }
    addon_version: rules::ADDON_VERSION, "$.addons[0].version", v => { v["addons"][0]["version"] = json!("1.11"); }
    addon_required: rules::ADDON_REQUIRED, "$.addons", v => {
        let kept: Vec<Value> = v["addons"].as_array().into_iter().flatten()
            .filter(|a| a["name"] != "eks-pod-identity-agent").cloned().collect();
        v["addons"] = json!(kept);
    }
    repository_name: rules::REPOSITORY, "$.repositories[0].name", v => {
        v["repositories"] = json!([{ "name": "Base/Images" }]);
    }
    repository_twice: rules::REPOSITORY, "$.tenants[0].repositories[1].name", v => {
        v["tenants"][0]["repositories"] = json!([{ "name": "api" }, { "name": "api" }]);
    }
    repository_keep_images: rules::REPOSITORY, "$.repositories[0].keepImages", v => {
        v["repositories"] = json!([{ "name": "base", "keepImages": 0 }]);
    }
    repository_path_of_the_platform: rules::REPOSITORY, "$.repositories", v => { v["id"] = json!("pay--ments"); }
    repository_path_of_a_tenant: rules::REPOSITORY, "$.tenants[0].repositories", v => {
        v["tenants"][0]["name"] = json!("team--a");
        v["tenants"][0]["repositories"] = json!([{ "name": "api" }]);
    }
    target_role_not_a_role: rules::ARN, "$.targetRoleArn", v => {
        v["targetRoleArn"] = json!("arn:aws:iam::111122223333:user/tenantry");
    }
    cni_conflict: rules::CNI_CONFLICT, "$.addons[2]", v => { v["cni"] = json!("calico"); }
    calico_without_pod_cidr: rules::CALICO_POD_CIDR, "$.network.podCidr", v => {
        v["cni"] = json!("calico");
        let kept: Vec<Value> = v["addons"].as_array().into_iter().flatten()
            .filter(|a| a["name"] != "vpc-cni").cloned().collect();
        v["addons"] = json!(kept);
        v["network"].as_object_mut().unwrap().remove("podCidr");
    }
    calico_on_amazon_linux: rules::NOT_BUILDABLE, "$.nodeGroups[1].amiType", v => {
        v["cni"] = json!("calico");
        let kept: Vec<Value> = v["addons"].as_array().into_iter().flatten()
            .filter(|a| a["name"] != "vpc-cni").cloned().collect();
        v["addons"] = json!(kept);
        v["nodeGroups"][1]["amiType"] = json!("AL2023_x86_64_STANDARD");
    }
    pod_subnets_missing: rules::POD_SUBNETS_MISSING,
        "$.addons[2].configurationValues.env.AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", v => {
        v["network"].as_object_mut().unwrap().remove("podCidr");
        v["addons"][2]["configurationValues"]["env"] =
            json!({ "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG": "true" });
    }
    pod_subnets_unused: rules::POD_SUBNETS_UNUSED, "$.network.podCidr", v => {
        v["addons"][2]["configurationValues"]["env"] =
            json!({ "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG": "false" });
    }
    cni_managed_setting: rules::CNI_MANAGED_SETTING,
        "$.addons[2].configurationValues.env.ENI_CONFIG_LABEL_DEF", v => {
        v["addons"][2]["configurationValues"]["env"] =
            json!({ "ENI_CONFIG_LABEL_DEF": "k8s.amazonaws.com/eniConfig" });
    }
    custom_networking_on_amazon_linux_not_buildable: rules::NOT_BUILDABLE,
        "$.nodeGroups[1].amiType", v => {
        v["nodeGroups"][1]["amiType"] = json!("AL2023_x86_64_STANDARD");
    }
    network_policy_disabled: rules::NETWORK_POLICY_DISABLED, "$.addons[2].configurationValues.enableNetworkPolicy", v => {
        v["addons"][2]["configurationValues"]["enableNetworkPolicy"] = json!("false");
    }
    identity_mechanism: rules::IDENTITY_MECHANISM, "$.identity", v => {
        v["identity"]["irsa"] = json!(false);
        v["identity"]["podIdentity"] = json!(false);
    }
    service_role_config: rules::SERVICE_ROLE_CONFIG, "$.identity.serviceRoles.externalDns.hostedZones", v => {
        v["identity"]["serviceRoles"]["externalDns"]["hostedZones"] = json!([]);
    }
    image_digest: rules::SERVICE_ROLE_CONFIG, "$.identity.serviceRoles.albController.imageDigest", v => {
        v["identity"]["serviceRoles"]["albController"]["imageDigest"] = json!("sha256:ABC");
    }
    hosted_zone: rules::HOSTED_ZONE, "$.identity.serviceRoles.externalDns.hostedZones[0]", v => {
        v["identity"]["serviceRoles"]["externalDns"]["hostedZones"][0] = json!("example.com");
    }
    secret_prefix: rules::SECRET_PREFIX, "$.identity.serviceRoles.externalSecrets.secretPrefixes[0]", v => {
        v["identity"]["serviceRoles"]["externalSecrets"]["secretPrefixes"][0] = json!("payments/prod/#");
    }
    secret_prefix_scope: rules::SECRET_PREFIX_SCOPE, "$.tenants[0].secretsPrefix", v => { v["tenants"][0]["secretsPrefix"] = json!("rds/"); }
    s3_prefix: rules::S3_PREFIX, "$.tenants[0].s3Prefix", v => { v["tenants"][0]["s3Prefix"] = json!("/tenants/checkout"); }
    prefix_overlap: rules::PREFIX_OVERLAP, "$.tenants[1].s3Prefix", v => { v["tenants"][1]["s3Prefix"] = json!("tenants/checkout/ledger/"); }
    oidc_issuer: rules::OIDC_ISSUER, "$.access.oidcIdentityProvider.issuerUrl", v => {
        v["access"]["oidcIdentityProvider"]["issuerUrl"] = json!("http://login.microsoftonline.com/x/v2.0");
    }
    oidc_client_id: rules::OIDC_CLIENT_ID, "$.access.oidcIdentityProvider.clientId", v => {
        v["access"]["oidcIdentityProvider"]["clientId"] = json!("");
    }
    oidc_claim: rules::OIDC_CLAIM, "$.access.oidcIdentityProvider.groupsClaim", v => {
        v["access"]["oidcIdentityProvider"]["groupsClaim"] = json!("group claims");
    }
    cluster_role: rules::CLUSTER_ROLE, "$.access.oidcIdentityProvider.groupMappings[1].clusterRole", v => {
        v["access"]["oidcIdentityProvider"]["groupMappings"][1]["clusterRole"] = json!("god-mode");
    }
    tag_key: rules::TAG_KEY, "$.tags['team#1']", v => { v["tags"]["team#1"] = json!("x"); }
    tag_value: rules::TAG_VALUE, "$.tenants[0].costCentre", v => { v["tenants"][0]["costCentre"] = json!("cc#1001"); }
    tag_reserved: rules::TAG_RESERVED, "$.tags['tenantry:platform']", v => { v["tags"]["tenantry:platform"] = json!("other"); }
    tag_reserved_aws: rules::TAG_RESERVED, "$.tags['aws:cloudformation:stack-name']", v => { v["tags"]["aws:cloudformation:stack-name"] = json!("x"); }
    tag_count: rules::TAG_COUNT, "$.tags", v => {
        for i in 0..41 { v["tags"][format!("k{i}")] = json!("v"); }
    }
    quantity: rules::QUANTITY, "$.tenants[1].quotas.requestsMemory", v => { v["tenants"][1]["quotas"]["requestsMemory"] = json!("8 GB"); }
    quantity_order: rules::QUANTITY_ORDER, "$.tenants[0].limits.defaultRequestCpu", v => { v["tenants"][0]["limits"]["defaultRequestCpu"] = json!("2"); }
    fargate_profile_name: rules::FARGATE_PROFILE, "$.fargate.profiles[0].name", v => { v["fargate"] = json!({ "profiles": [{ "name": "-jobs", "selectors": [{ "namespace": "jobs" }] }] }); }
    fargate_profile_twice: rules::FARGATE_PROFILE, "$.fargate.profiles[1].name", v => { v["fargate"] = json!({ "profiles": [{ "name": "jobs", "selectors": [{ "namespace": "jobs" }] }, { "name": "jobs", "selectors": [{ "namespace": "etl" }] }] }); }
    fargate_selectors_too_many: rules::FARGATE_SELECTOR, "$.fargate.profiles[0].selectors", v => { v["fargate"] = json!({ "profiles": [{ "name": "jobs", "selectors": [{ "namespace": "a" }, { "namespace": "b" }, { "namespace": "c" }, { "namespace": "d" }, { "namespace": "e" }, { "namespace": "f" }] }] }); }
    fargate_labels_too_many: rules::FARGATE_SELECTOR, "$.tenants[0].fargate.selectors[0].labels", v => { v["tenants"][0]["fargate"] = json!({ "selectors": [{ "labels": { "a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6" } }] }); }
    fargate_platform_kube_system: rules::FARGATE_NAMESPACE, "$.fargate.profiles[0].selectors[0].namespace", v => { v["fargate"] = json!({ "profiles": [{ "name": "dns", "selectors": [{ "namespace": "kube-system" }] }] }); }
    fargate_platform_takes_a_tenant: rules::FARGATE_NAMESPACE, "$.fargate.profiles[0].selectors[0].namespace", v => { v["fargate"] = json!({ "profiles": [{ "name": "x", "selectors": [{ "namespace": "ledger" }] }] }); }
    fargate_tenant_selects_a_peer: rules::FARGATE_NAMESPACE, "$.tenants[0].fargate.selectors[0].namespace", v => { v["tenants"][0]["fargate"] = json!({ "selectors": [{ "namespace": "ledger" }] }); }
    fargate_tenant_wildcard: rules::FARGATE_NAMESPACE, "$.tenants[0].fargate.selectors[0].namespace", v => { v["tenants"][0]["fargate"] = json!({ "selectors": [{ "namespace": "*" }] }); }
    fargate_profiles_over_the_cluster_quota: rules::FARGATE_PROFILE, "$.fargate", v => {
        v["fargate"] = json!({ "coreDns": true, "profiles": (0..5).map(|i| json!({ "name": format!("p{i}"), "selectors": [{ "namespace": format!("ns{i}") }] })).collect::<Vec<_>>() });
        for i in 0..3 { v["tenants"][i]["fargate"] = json!({}); }
        for name in ["extra", "extra-two"] {
            v["tenants"].as_array_mut().unwrap().push(json!({ "name": name, "costCentre": "cc-9", "fargate": {} }));
        }
    }
    coredns_on_fargate_pinned_to_nodes: rules::FARGATE_PROFILE, "$.addons[0].configurationValues.nodeSelector", v => { v["fargate"] = json!({"coreDns": true}); }
    fargate_tenant_with_pod_identity: rules::FARGATE_POD_IDENTITY, "$.tenants[0].fargate", v => { v["tenants"][0]["fargate"] = json!({}); }
    fargate_tenant_partly_on_nodes: rules::FARGATE_WHOLE_NAMESPACE, "$.tenants[0].fargate.selectors", v => { v["tenants"][0]["fargate"] = json!({"selectors": [{"labels": {"compute": "fargate"}}]}); }
    fargate_tenant_with_calico: rules::FARGATE_NETWORK_POLICY, "$.tenants[0].fargate", v => { v["cni"] = json!("calico"); v["addons"] = json!([{ "name": "coredns" }]); v["tenants"][0]["fargate"] = json!({}); }
}

/// A tenant's secrets prefix stays in its own space, or under a prefix the platform approves;
/// `rds` (every RDS-managed master secret) and the controllers' prefixes are refused.
#[test]
fn tenant_secret_prefixes_stay_in_the_tenants_space() {
    let platform = |extra: Value| -> PlatformSpec {
        let mut v = example();
        v["tenants"] = json!([]);
        v["identity"]["serviceRoles"]["externalSecrets"] =
            json!({ "enabled": true, "secretPrefixes": ["payments/prod/"] });
        if let Value::Object(extra) = extra {
            for (k, x) in extra {
                v[k] = x;
            }
        }
        serde_json::from_value(v).expect("platform")
    };
    let tenant = |prefix: &str| -> TenantSpec {
        serde_json::from_value(
            json!({"name": "ledger", "costCentre": "cc", "secretsPrefix": prefix}),
        )
        .expect("tenant")
    };
    let rules_of = |p: &PlatformSpec, prefix: &str| -> Vec<(String, String)> {
        match validate_new_tenant(p, &tenant(prefix)) {
            Ok(()) => Vec::new(),
            Err(e) => {
                e.0.into_iter()
                    .map(|i| (i.path, i.rule.to_string()))
                    .collect()
            }
        }
    };
    let plain = platform(json!({}));
    let stem = crate::naming::stem(&plain.id, &plain.environment);
    let scope = (
        "$.secretsPrefix".to_string(),
        rules::SECRET_PREFIX_SCOPE.to_string(),
    );
    assert_eq!(rules_of(&plain, "rds"), vec![scope.clone()]);
    assert_eq!(rules_of(&plain, "rds/"), vec![scope.clone()]);
    assert_eq!(
        rules_of(&plain, "payments/prod/ledger/"),
        vec![scope.clone(), scope.clone()]
    );
    // Another tenant's or platform's space.
    assert_eq!(
        rules_of(&plain, &format!("tenantry/{stem}/checkout/")),
        vec![scope.clone()]
    );
    assert_eq!(
        rules_of(&plain, "tenantry/other-prod/ledger/"),
        vec![scope.clone()]
    );
    // Without the trailing `/`, `ledger` would also match `ledger-admin/`.
    assert_eq!(
        rules_of(&plain, &format!("tenantry/{stem}/ledger")),
        vec![scope.clone()]
    );
    // Its own space, deeper or not.
    assert_eq!(
        rules_of(&plain, &format!("tenantry/{stem}/ledger/")),
        vec![]
    );
    assert_eq!(
        rules_of(&plain, &format!("tenantry/{stem}/ledger/app/")),
        vec![]
    );
    // An approved prefix, but never one nesting with the controllers' secrets.
    let approved = platform(json!({ "tenantSecretsPrefixes": ["teams/", "payments/"] }));
    assert_eq!(rules_of(&approved, "teams/ledger/"), vec![]);
    let errors = validate_platform(&approved);
    let found: Vec<_> = errors
        .err()
        .map(|e| {
            e.0.into_iter()
                .map(|i| (i.path, i.rule.to_string()))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        found,
        vec![(
            "$.tenantSecretsPrefixes[1]".to_string(),
            rules::SECRET_PREFIX_SCOPE.to_string()
        )]
    );
    for wide in ["tenantry/", "tenantry/x/", "t"] {
        let bad = platform(json!({ "tenantSecretsPrefixes": [wide] }));
        let e = validate_platform(&bad).expect_err(wide);
        assert!(
            e.0.iter().any(|i| i.path == "$.tenantSecretsPrefixes[0]"),
            "{wide}: {e}"
        );
    }
}

#[test]
fn common_platform_namespaces_are_reserved_for_tenants() {
    for name in [
        "monitoring",
        "argocd",
        "flux-system",
        "istio-system",
        "karpenter",
        "gatekeeper-system",
        "velero",
        "vault",
        "ingress-nginx",
    ] {
        let t: TenantSpec =
            serde_json::from_value(json!({"name": name, "costCentre": "cc"})).unwrap();
        let e = validate_tenant(&t).expect_err(name);
        assert!(
            e.0.iter()
                .any(|i| i.path == "$.name" && i.rule == rules::RESERVED_NAME),
            "{name}: {e}"
        );
    }
}

#[test]
fn the_calico_variant_of_the_example_is_accepted() {
    let mut v = example();
    v["cni"] = json!("calico");
    let kept: Vec<Value> = v["addons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["name"] != "vpc-cni")
        .cloned()
        .collect();
    v["addons"] = json!(kept);
    let spec = parse_platform(&v.to_string()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.cni, crate::spec::Cni::Calico);
    assert!(!spec.custom_networking(), "the pod CIDR is Calico's pool");
    assert!(spec.vpc_network().pod_cidr.is_none(), "and not the VPC's");
    // The default add-ons without a list: no vpc-cni.
    v.as_object_mut().unwrap().remove("addons");
    let spec = parse_platform(&v.to_string()).unwrap_or_else(|e| panic!("{e}"));
    assert!(spec.effective_addons().iter().all(|a| a.name != "vpc-cni"));
}
