//! Every IAM document Tenantry renders for `examples/platform.json` passes `parliament` with no
//! finding, and the documents say exactly what they should (and nothing a request value could
//! widen).
//!
//! What parliament audits (see `tenantry::policies` module docs): inline permission policies
//! (tenant roles' included) and the tenant-data bucket policy as rendered, and key policies
//! (tenant keys' included) with `"*"` read as "this key and its alias" (what it means in a key
//! policy). Trust policies are resource policies without `Resource`, which parliament reports as
//! malformed; their exact shape is asserted below instead.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use tenantry::policies::{self, Target};
use tenantry::spec::PlatformSpec;

const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-east-1";
const ISSUER: &str = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";
const HOST: &str = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";

fn example() -> PlatformSpec {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/platform.json");
    let text = std::fs::read_to_string(&path).expect("examples/platform.json is readable");
    tenantry::validate::parse_platform(&text).expect("the example spec is valid")
}

/// `.venv/bin/parliament` in the nearest ancestor of this crate (`make test` installs it).
fn parliament() -> PathBuf {
    let start = Path::new(env!("CARGO_MANIFEST_DIR"));
    start
        .ancestors()
        .map(|dir| dir.join(".venv/bin/parliament"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "parliament not found in .venv/bin of {} or any parent: run `make setup` \
                 (make test installs it from requirements-dev.txt); this check is never skipped",
                start.display()
            )
        })
}

fn rendered() -> Vec<(String, Value)> {
    policies::all_rendered(&example(), ACCOUNT, REGION, ISSUER)
}

fn doc<'a>(all: &'a [(String, Value)], file: &str) -> &'a Value {
    &all.iter()
        .find(|(name, _)| name == file)
        .unwrap_or_else(|| panic!("{file} is not rendered"))
        .1
}

#[test]
fn parliament_finds_nothing_in_any_rendered_policy() {
    let spec = example();
    let target = Target::new(&spec, ACCOUNT, REGION);
    let dir = std::env::temp_dir().join(format!("tenantry-policies-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut audited = Vec::new();
    for (file, document) in rendered() {
        if let Some(view) = policies::for_parliament(&file, &document, &target) {
            let text = serde_json::to_string_pretty(&view).expect("serialisable");
            std::fs::write(dir.join(&file), text).expect("writing policy");
            audited.push(file);
        }
    }
    // 3 key policies, cluster + flow logs inline policies, 5 controller policies (EBS CSI's is
    // its use of the data key), then for each of the example's tenants its key policy and
    // role policy, the tenant-data bucket policy and its access-log bucket's policy.
    let tenants = spec.tenants.len();
    assert_eq!(tenants, 3, "the example has three tenants");
    // ... and one policy per repository, the platform's and each tenant's.
    let repositories = spec.repositories.len()
        + spec
            .tenants
            .iter()
            .map(|t| t.repositories.len())
            .sum::<usize>();
    assert_eq!(repositories, 2, "the example has two repositories");
    assert_eq!(
        audited.len(),
        10 + 2 * tenants + 2 + repositories,
        "audited: {audited:?}"
    );
    assert!(audited
        .contains(&"repository.tenantry+payments-prod+checkout+checkout-api.json".to_owned()));
    for tenant in &spec.tenants {
        for file in [
            format!("key.tenant.{}.json", tenant.name),
            format!(
                "policy.tenant.{}.{}.json",
                tenant.name,
                policies::TENANT_POLICY_NAME
            ),
        ] {
            assert!(audited.contains(&file), "{file} not audited: {audited:?}");
        }
    }
    assert!(audited.iter().any(|f| f == "bucket.tenant-data.json"));
    let out = Command::new(parliament())
        .arg("--directory")
        .arg(&dir)
        .arg("--include_policy_extension")
        .arg("json")
        .output()
        .expect("parliament runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (accepted, findings): (Vec<&str>, Vec<&str>) = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .partition(|l| accepted_upstream_finding(l));
    assert!(
        findings.is_empty() && stderr.trim().is_empty(),
        "parliament reported findings (exit {:?}) in {}:\n{}\n{stderr}",
        out.status.code(),
        dir.display(),
        findings.join("\n")
    );
    // The vendored upstream policy's known findings are there, and nothing else is accepted.
    assert!(
        !accepted.is_empty(),
        "the ALB controller policy was audited"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Findings parliament reports on the AWS Load Balancer Controller's upstream policy, which
/// Tenantry grants verbatim (`shared/data/alb-controller/`), and accepts:
/// - `Resource: "*"` where upstream scopes by tag conditions instead (the ARNs of what the
///   controller creates are not known in advance), LOW;
/// - an action and a condition key newer than parliament's database
///   (`elasticloadbalancing:ModifyIpPools`, `elasticloadbalancing:CreateAction` on `AddTags`).
fn accepted_upstream_finding(line: &str) -> bool {
    line.contains("policy.alb-controller.permissions.json")
        && (line.starts_with("LOW - Unnecessary use of Resource *")
            || line.contains("Unknown action elasticloadbalancing:ModifyIpPools")
            || line.contains(
                "Unknown condition elasticloadbalancing:CreateAction for action elasticloadbalancing:AddTags",
            ))
}

#[test]
fn parliament_is_not_vacuous() {
    // The same run flags a policy it should: Resource "*" on an action that supports resource
    // scoping (proves findings are reported and the exit code is checked).
    let dir = std::env::temp_dir().join(format!("tenantry-policies-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bad = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]});
    std::fs::write(dir.join("bad.json"), bad.to_string()).expect("write");
    let out = Command::new(parliament())
        .args(["--directory"])
        .arg(&dir)
        .args(["--include_policy_extension", "json"])
        .output()
        .expect("parliament runs");
    assert!(
        !out.status.success(),
        "parliament accepted Resource * on GetSecretValue"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn irsa_trust_names_exactly_one_service_account_and_audience() {
    let all = rendered();
    for (purpose, subject) in [
        (
            "cluster-autoscaler",
            "system:serviceaccount:kube-system:cluster-autoscaler",
        ),
        (
            "alb-controller",
            "system:serviceaccount:kube-system:aws-load-balancer-controller",
        ),
        (
            "external-dns",
            "system:serviceaccount:external-dns:external-dns",
        ),
        (
            "external-secrets",
            "system:serviceaccount:external-secrets:external-secrets",
        ),
        (
            "ebs-csi",
            "system:serviceaccount:kube-system:ebs-csi-controller-sa",
        ),
    ] {
        let trust = doc(&all, &format!("trust.{purpose}.json"));
        let irsa = trust["Statement"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["Sid"] == "Irsa"))
            .unwrap_or_else(|| panic!("{purpose}: no IRSA statement"));
        assert_eq!(
            irsa,
            &json!({
                "Sid": "Irsa",
                "Effect": "Allow",
                "Principal": { "Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{HOST}") },
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": { "StringEquals": {
                    format!("{HOST}:sub"): subject,
                    format!("{HOST}:aud"): "sts.amazonaws.com",
                } },
            }),
            "{purpose}"
        );
        // No wildcard operator anywhere in the trust (StringLike would widen the subject).
        let text = trust.to_string();
        assert!(
            !text.contains("Like") && !text.contains('*'),
            "{purpose}: {text}"
        );
        let pod = trust["Statement"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["Sid"] == "PodIdentity"))
            .unwrap_or_else(|| panic!("{purpose}: Pod Identity is on in the example"));
        let (ns, sa) = subject
            .trim_start_matches("system:serviceaccount:")
            .split_once(':')
            .unwrap_or_default();
        let cond = &pod["Condition"]["StringEquals"];
        assert_eq!(cond["aws:RequestTag/kubernetes-namespace"], ns);
        assert_eq!(cond["aws:RequestTag/kubernetes-service-account"], sa);
        assert_eq!(
            cond["aws:RequestTag/eks-cluster-arn"],
            format!("arn:aws:eks:{REGION}:{ACCOUNT}:cluster/payments-prod")
        );
    }
}

#[test]
fn irsa_only_trust_has_no_pod_identity_statement() {
    let mut spec = example();
    spec.identity.pod_identity = false;
    let all = policies::all_rendered(&spec, ACCOUNT, REGION, ISSUER);
    let trust = doc(&all, "trust.cluster-autoscaler.json");
    assert_eq!(trust["Statement"].as_array().map(Vec::len), Some(1));
    assert_eq!(trust["Statement"][0]["Sid"], "Irsa");
}

#[test]
fn service_trusts_carry_confused_deputy_conditions() {
    let all = rendered();
    let flow = doc(&all, "trust.flow-logs.json");
    assert_eq!(
        flow["Statement"][0]["Principal"]["Service"],
        "vpc-flow-logs.amazonaws.com"
    );
    assert_eq!(
        flow["Statement"][0]["Condition"]["StringEquals"]["aws:SourceAccount"],
        ACCOUNT
    );
    assert_eq!(
        doc(&all, "trust.node.json")["Statement"][0]["Principal"]["Service"],
        "ec2.amazonaws.com"
    );
    assert_eq!(
        doc(&all, "trust.cluster.json")["Statement"][0]["Principal"]["Service"],
        "eks.amazonaws.com"
    );
}

#[test]
fn external_dns_may_change_only_the_listed_zones() {
    let all = rendered();
    let policy = doc(&all, "policy.external-dns.permissions.json");
    let change = policy["Statement"]
        .as_array()
        .and_then(|s| {
            s.iter().find(|s| {
                s["Action"]
                    .as_array()
                    .is_some_and(|a| a.contains(&json!("route53:ChangeResourceRecordSets")))
            })
        })
        .expect("a statement allows ChangeResourceRecordSets");
    assert_eq!(
        change["Resource"],
        json!(["arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ"])
    );
    // The only Resource "*" statement lists zones, it does not change them.
    for s in policy["Statement"].as_array().into_iter().flatten() {
        if s["Resource"] == "*" {
            assert_eq!(
                s["Action"],
                json!(["route53:ListHostedZones", "route53:ListTagsForResources"])
            );
        }
    }
}

#[test]
fn external_secrets_reads_only_under_the_prefixes() {
    let all = rendered();
    let policy = doc(&all, "policy.external-secrets.permissions.json");
    assert_eq!(
        policy["Statement"][0]["Resource"],
        json!([format!(
            "arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:payments/prod/*"
        )])
    );
    assert_eq!(
        policy["Statement"][0]["Action"],
        json!([
            "secretsmanager:DescribeSecret",
            "secretsmanager:GetSecretValue"
        ])
    );
}

#[test]
fn cluster_autoscaler_scales_only_groups_owned_by_the_cluster() {
    let all = rendered();
    let policy = doc(&all, "policy.cluster-autoscaler.permissions.json");
    let scale = &policy["Statement"][2];
    assert_eq!(scale["Sid"], "ScaleOwnedGroups");
    assert_eq!(
        scale["Condition"]["StringEquals"]
            ["aws:ResourceTag/k8s.io/cluster-autoscaler/payments-prod"],
        "owned"
    );
}

/// Every string value anywhere in a document.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
        Value::Object(m) => m.iter().for_each(|(k, v)| {
            out.push(k.clone());
            strings(v, out)
        }),
        _ => {}
    }
}

#[test]
fn a_hostile_value_stays_one_json_string() {
    // Bypasses validation on purpose (validation refuses these values): even then, serde
    // encodes the value as a string and no statement, principal or condition can be added.
    let mut spec = example();
    let zone = r#"Z1"],"Effect":"Allow","Action":"*","Resource":"*"},{"Sid":"x"#;
    let prefix =
        "p/\"}]}\n{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}";
    spec.identity.service_roles.external_dns.hosted_zones = vec![zone.to_owned()];
    spec.identity.service_roles.external_secrets.secret_prefixes = vec![prefix.to_owned()];
    let all = policies::all_rendered(&spec, ACCOUNT, REGION, ISSUER);
    for (file, expected) in [
        (
            "policy.external-dns.permissions.json",
            format!("arn:aws:route53:::hostedzone/{zone}"),
        ),
        (
            "policy.external-secrets.permissions.json",
            format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{prefix}*"),
        ),
    ] {
        let policy = doc(&all, file);
        // Round trip through text, as it is sent to AWS.
        let reparsed: Value = serde_json::from_str(&policy.to_string()).expect("valid JSON");
        assert_eq!(&reparsed, policy);
        let mut values = Vec::new();
        strings(&reparsed, &mut values);
        assert!(values.contains(&expected), "{file}: {values:?}");
        assert!(
            !values.iter().any(|v| v == "*" && file.contains("secrets")),
            "{file}"
        );
        let statements = reparsed["Statement"].as_array().map(Vec::len);
        let clean = policies::all_rendered(&example(), ACCOUNT, REGION, ISSUER);
        assert_eq!(
            statements,
            doc(&clean, file)["Statement"].as_array().map(Vec::len),
            "{file}"
        );
        for s in reparsed["Statement"].as_array().into_iter().flatten() {
            assert_ne!(s["Action"], "*", "{file}");
        }
    }
}

fn payments_fargate() -> PlatformSpec {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/payments-fargate.json");
    let text = std::fs::read_to_string(&path).expect("examples/payments-fargate.json is readable");
    tenantry::validate::parse_platform(&text).expect("the Fargate example is valid")
}

/// The Fargate example's documents pass parliament too (its Fargate logs policy among them), and
/// the pod execution role trusts EKS Fargate for this cluster's profiles only.
#[test]
fn fargate_example_policies_pass_parliament_and_the_pod_role_trusts_its_profiles_only() {
    let spec = payments_fargate();
    let target = Target::new(&spec, ACCOUNT, REGION);
    let all = policies::all_rendered(&spec, ACCOUNT, REGION, ISSUER);
    let trust = doc(&all, "trust.fargate-pods.json");
    assert_eq!(
        trust["Statement"][0]["Principal"],
        json!({ "Service": "eks-fargate-pods.amazonaws.com" })
    );
    assert_eq!(
        trust["Statement"][0]["Condition"],
        json!({ "ArnLike": { "aws:SourceArn":
            format!("arn:aws:eks:{REGION}:{ACCOUNT}:fargateprofile/paycore-prod/*") } })
    );
    let logs = doc(&all, "policy.fargate-pods.fargate-logs-delivery.json");
    let group = format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/eks/paycore-prod/fargate");
    assert_eq!(
        logs["Statement"][0]["Resource"],
        json!([group, format!("{group}:log-stream:*")])
    );
    let dir = std::env::temp_dir().join(format!("tenantry-policies-fg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut audited = Vec::new();
    for (file, document) in &all {
        if let Some(view) = policies::for_parliament(file, document, &target) {
            let text = serde_json::to_string_pretty(&view).expect("serialisable");
            std::fs::write(dir.join(file), text).expect("writing policy");
            audited.push(file.clone());
        }
    }
    assert!(audited
        .iter()
        .any(|f| f.starts_with("policy.fargate-pods.")));
    let out = Command::new(parliament())
        .arg("--directory")
        .arg(&dir)
        .arg("--include_policy_extension")
        .arg("json")
        .output()
        .expect("parliament runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let findings: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.trim().is_empty() && !accepted_upstream_finding(l))
        .collect();
    assert!(
        findings.is_empty() && stderr.trim().is_empty(),
        "parliament reported findings in {}:\n{}\n{stderr}",
        dir.display(),
        findings.join("\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
