//! The catalogue on hand-built state: a compliant platform passes every control, and each
//! violation fails exactly the controls it should.

use super::live::*;
use super::{ComplianceReport, Status};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const ACCOUNT: &str = "111122223333";
const KEY: &str = "arn:aws:kms:eu-west-1:111122223333:key/k1";

fn labels(enforce: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(
        "pod-security.kubernetes.io/enforce".to_owned(),
        enforce.to_owned(),
    )])
}

fn deny_all(ns: &str) -> NetworkPolicy {
    NetworkPolicy {
        namespace: ns.into(),
        name: "default-deny".into(),
        selects_all: true,
        policy_types: vec!["Ingress".into(), "Egress".into()],
        has_ingress_rules: false,
        has_egress_rules: false,
    }
}

fn role(name: &str, trust: Value, tenant: Option<&str>, inline: Value) -> Role {
    Role {
        name: name.into(),
        arn: format!("arn:aws:iam::{ACCOUNT}:role/tenantry/{name}"),
        tenant: tenant.map(str::to_owned),
        trust,
        managed_policies: vec!["arn:aws:iam::aws:policy/AmazonEKSClusterPolicy".into()],
        inline_policies: BTreeMap::from([("p".to_owned(), inline)]),
        boundary: None,
    }
}

/// A platform as Tenantry builds it, with one tenant.
fn compliant() -> Live {
    let cluster_arn = format!("arn:aws:eks:eu-west-1:{ACCOUNT}:cluster/payments");
    let service_trust = json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"},
        "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]});
    let irsa_trust = json!({"Statement": [{"Effect": "Allow",
        "Principal": {"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/X")},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {
            "oidc.eks.eu-west-1.amazonaws.com/id/X:sub": "system:serviceaccount:ledger:workload",
            "oidc.eks.eu-west-1.amazonaws.com/id/X:aud": "sts.amazonaws.com"}}}]});
    let tenant_policy = json!({"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"],
        "Resource": "arn:aws:s3:::bucket/ledger/*"}]});
    Live {
        platform_id: "payments".into(),
        account: ACCOUNT.into(),
        region: "eu-west-1".into(),
        asked: Asked {
            profile: "pci-dss-v4".into(),
            admins: vec![format!("arn:aws:iam::{ACCOUNT}:role/admin")],
            admin_groups: vec!["oidc:platform".into()],
            cni: "vpc-cni".into(),
            tenant_namespaces: vec!["ledger".into()],
            role_boundary: None,
            platform_roles: BTreeMap::new(),
        },
        cluster: Some(Cluster {
            name: "payments".into(),
            arn: cluster_arn,
            version: "1.33".into(),
            endpoint_public: false,
            endpoint_private: true,
            public_access_cidrs: vec![],
            encryption_key: Some(KEY.into()),
            log_types: super::checks::cluster::LOG_TYPES
                .iter()
                .map(|t| t.to_string())
                .collect(),
            deletion_protection: true,
            authentication_mode: "API".into(),
            tags: BTreeMap::from([("tenantry:platform".to_owned(), "payments".to_owned())]),
        }),
        versions: vec![
            ClusterVersion {
                version: "1.33".into(),
                status: "STANDARD_SUPPORT".into(),
            },
            ClusterVersion {
                version: "1.29".into(),
                status: "EXTENDED_SUPPORT".into(),
            },
        ],
        vpc_id: Some("vpc-1".into()),
        access_entries: vec![AccessEntry {
            principal: format!("arn:aws:iam::{ACCOUNT}:role/admin"),
            kind: "STANDARD".into(),
            groups: vec![],
            cluster_policies: vec![
                "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy".into(),
            ],
        }],
        addons: vec![Addon {
            name: "vpc-cni".into(),
            status: "ACTIVE".into(),
            configuration: json!({"enableNetworkPolicy": "true"}),
        }],
        nodegroups: vec![Nodegroup {
            name: "system".into(),
            arn: "arn:ng/system".into(),
            ami_type: "BOTTLEROCKET_x86_64".into(),
            subnets: vec!["subnet-private".into()],
            remote_access_key: None,
            launch_template: Some(LaunchTemplate {
                id: "lt-1".into(),
                version: "1".into(),
                http_tokens: Some("required".into()),
                hop_limit: Some(1),
                key_name: None,
                volumes_encrypted: vec![true, true],
            }),
        }],
        subnets: BTreeMap::from([
            (
                "subnet-private".to_owned(),
                Subnet {
                    id: "subnet-private".into(),
                    map_public_ip: false,
                    routes_to_internet_gateway: false,
                },
            ),
            (
                "subnet-public".to_owned(),
                Subnet {
                    id: "subnet-public".into(),
                    map_public_ip: true,
                    routes_to_internet_gateway: true,
                },
            ),
        ]),
        flow_logs: vec![FlowLog {
            id: "fl-1".into(),
            resource: "vpc-1".into(),
            status: "ACTIVE".into(),
            traffic_type: "ALL".into(),
        }],
        vpc_endpoints: vec![VpcEndpoint {
            id: "vpce-1".into(),
            service: "com.amazonaws.eu-west-1.s3".into(),
            policy: json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalAccount": ACCOUNT}}}]}),
        }],
        security_groups: vec![SecurityGroup {
            id: "sg-1".into(),
            name: "endpoints".into(),
            open_ingress: vec![],
        }],
        keys: vec![Key {
            id: "k1".into(),
            arn: KEY.into(),
            state: "Enabled".into(),
            rotation: true,
            policy: json!({"Statement": [
                {"Sid": "AccountAdministration", "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")}, "Action": "kms:*", "Resource": "*"},
                {"Sid": "Eks", "Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"}, "Action": "kms:Decrypt", "Resource": "*",
                 "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]}),
        }],
        log_groups: vec![LogGroup {
            name: "/aws/eks/payments/cluster".into(),
            arn: "arn:lg".into(),
            kms_key: Some(KEY.into()),
            retention_days: Some(400),
        }],
        roles: vec![
            role("cluster", service_trust, None, json!({"Statement": []})),
            role("t-ledger", irsa_trust, Some("ledger"), tenant_policy),
        ],
        oidc_issuer: Some("oidc.eks.eu-west-1.amazonaws.com/id/X".into()),
        bucket: Some(Bucket {
            name: "bucket".into(),
            encryption: Some("aws:kms".into()),
            public_access_block: Some([true; 4]),
            policy: json!({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}),
        }),
        repositories: vec![Repository {
            name: "tenantry/payments-prod/base-images".into(),
            arn: format!(
                "arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/tenantry/payments-prod/base-images"
            ),
            scan_on_push: true,
            tag_mutability: "IMMUTABLE".into(),
            lifecycle_policy: true,
            kms_key: Some(KEY.into()),
        }],
        kubernetes: Some(Kubernetes {
            namespaces: ["default", "kube-system"]
                .iter()
                .map(|n| (n.to_string(), labels("baseline")))
                .chain([("ledger".to_owned(), labels("restricted"))])
                .collect(),
            cluster_role_bindings: vec![Binding {
                name: "tenantry:platform-admins".into(),
                role: "ClusterRole/cluster-admin".into(),
                subjects: vec!["Group/oidc:platform".into()],
            }],
            role_bindings: vec![],
            cluster_roles: vec![RbacRole {
                name: "cluster-autoscaler".into(),
                rules: vec![RbacRule {
                    api_groups: vec!["".into()],
                    resources: vec!["nodes".into()],
                    verbs: vec!["get".into(), "list".into()],
                }],
            }],
            roles: vec![],
            default_service_accounts: BTreeMap::from([
                ("default".to_owned(), Some(false)),
                ("ledger".to_owned(), Some(false)),
            ]),
            default_namespace_pods: vec![],
            network_policies: vec![deny_all("ledger")],
            quota_namespaces: vec!["ledger".into()],
            calico_cni: None,
        }),
    }
}

fn report(live: &Live) -> ComplianceReport {
    ComplianceReport::evaluate(live, "sweep-1", "2026-12-03T00:00:00Z")
}

/// The controls with a failed result.
fn failed(live: &Live) -> BTreeSet<String> {
    report(live)
        .results
        .into_iter()
        .filter(|r| r.status == Status::Fail)
        .map(|r| r.control)
        .collect()
}

#[test]
fn a_compliant_platform_passes_every_control() {
    let r = report(&compliant());
    let failures: Vec<_> = r
        .results
        .iter()
        .filter(|r| r.status == Status::Fail)
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    // Every control answered; those that do not apply say why.
    let answered: BTreeSet<_> = r.results.iter().map(|r| r.control.as_str()).collect();
    assert_eq!(answered.len(), super::CONTROLS.len());
    for na in r
        .results
        .iter()
        .filter(|r| r.status == Status::NotApplicable)
    {
        assert!(na.reason.len() > 10, "{na:?}");
    }
    assert_eq!(r.summary().failed, 0);
}

/// Each violation, applied alone, fails exactly these controls.
#[test]
fn each_violation_fails_exactly_its_controls() {
    type Change = fn(&mut Live);
    let cases: Vec<(&str, Change, &[&str])> = vec![
        (
            "public endpoint open to all",
            |l| {
                let c = l.cluster.as_mut().unwrap();
                c.endpoint_public = true;
                c.public_access_cidrs = vec!["0.0.0.0/0".into()];
            },
            &["TNY-EKS-1"],
        ),
        (
            "private endpoint off",
            |l| l.cluster.as_mut().unwrap().endpoint_private = false,
            &["TNY-EKS-2"],
        ),
        (
            "extended-support version",
            |l| l.cluster.as_mut().unwrap().version = "1.29".into(),
            &["TNY-EKS-3"],
        ),
        (
            "no secrets encryption",
            |l| l.cluster.as_mut().unwrap().encryption_key = None,
            &["TNY-EKS-4"],
        ),
        (
            "scheduler log off",
            |l| {
                l.cluster
                    .as_mut()
                    .unwrap()
                    .log_types
                    .retain(|t| t != "scheduler")
            },
            &["TNY-EKS-5"],
        ),
        (
            "deletion protection off",
            |l| l.cluster.as_mut().unwrap().deletion_protection = false,
            &["TNY-EKS-6"],
        ),
        (
            "config map auth",
            |l| l.cluster.as_mut().unwrap().authentication_mode = "API_AND_CONFIG_MAP".into(),
            &["TNY-EKS-7"],
        ),
        (
            "stranger admin",
            |l| {
                let mut e = l.access_entries[0].clone();
                e.principal = "arn:aws:iam::999:role/x".into();
                l.access_entries.push(e);
            },
            &["TNY-EKS-8"],
        ),
        (
            "untagged cluster",
            |l| l.cluster.as_mut().unwrap().tags.clear(),
            &["TNY-EKS-9"],
        ),
        (
            "node in public subnet",
            |l| l.nodegroups[0].subnets.push("subnet-public".into()),
            &["TNY-NODE-1"],
        ),
        (
            "IMDSv1",
            |l| {
                l.nodegroups[0]
                    .launch_template
                    .as_mut()
                    .unwrap()
                    .http_tokens = Some("optional".into())
            },
            &["TNY-NODE-2"],
        ),
        (
            "hop limit 2",
            |l| l.nodegroups[0].launch_template.as_mut().unwrap().hop_limit = Some(2),
            &["TNY-NODE-3"],
        ),
        (
            "AL2023 nodes",
            |l| l.nodegroups[0].ami_type = "AL2023_x86_64_STANDARD".into(),
            &["TNY-NODE-4"],
        ),
        (
            "unencrypted volume",
            |l| {
                l.nodegroups[0]
                    .launch_template
                    .as_mut()
                    .unwrap()
                    .volumes_encrypted[1] = false
            },
            &["TNY-NODE-5"],
        ),
        (
            "SSH key",
            |l| l.nodegroups[0].remote_access_key = Some("ops".into()),
            &["TNY-NODE-6"],
        ),
        (
            "flow log stopped",
            |l| l.flow_logs[0].status = "FAILED".into(),
            &["TNY-NET-1"],
        ),
        (
            "default endpoint policy",
            |l| l.vpc_endpoints[0].policy = json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}),
            &["TNY-NET-2"],
        ),
        (
            "ssh open to the world",
            |l| {
                l.security_groups[0]
                    .open_ingress
                    .push("tcp 22-22 0.0.0.0/0".into())
            },
            &["TNY-NET-3"],
        ),
        (
            "network policy off",
            |l| l.addons[0].configuration = json!({}),
            &["TNY-NET-4"],
        ),
        (
            "default deny deleted",
            |l| l.kubernetes.as_mut().unwrap().network_policies.clear(),
            &["TNY-NET-5"],
        ),
        (
            "private subnet maps public IPs",
            |l| l.subnets.get_mut("subnet-private").unwrap().map_public_ip = true,
            &["TNY-NET-6", "TNY-NODE-1"],
        ),
        (
            "rotation off",
            |l| l.keys[0].rotation = false,
            &["TNY-KMS-1"],
        ),
        (
            "unguarded service grant",
            |l| {
                l.keys[0].policy["Statement"][1]["Condition"] = Value::Null;
            },
            &["TNY-KMS-2"],
        ),
        (
            "public key",
            |l| {
                let s = json!({"Sid": "Open", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"});
                l.keys[0].policy["Statement"]
                    .as_array_mut()
                    .unwrap()
                    .push(s);
            },
            &["TNY-KMS-3"],
        ),
        (
            "key pending deletion",
            |l| l.keys[0].state = "PendingDeletion".into(),
            &["TNY-KMS-4"],
        ),
        (
            "log group unencrypted",
            |l| l.log_groups[0].kms_key = None,
            &["TNY-LOG-1"],
        ),
        (
            "log retention 90 days",
            |l| l.log_groups[0].retention_days = Some(90),
            &["TNY-LOG-2"],
        ),
        (
            "admin policy attached",
            |l| {
                l.roles[0]
                    .managed_policies
                    .push("arn:aws:iam::aws:policy/AdministratorAccess".into())
            },
            &["TNY-IAM-1"],
        ),
        (
            "IRSA sub wildcard",
            |l| {
                l.roles[1].trust["Statement"][0]["Condition"]["StringEquals"] =
                    json!({"oidc.eks.eu-west-1.amazonaws.com/id/X:aud": "sts.amazonaws.com"});
            },
            &["TNY-IAM-2"],
        ),
        (
            "service trust unguarded",
            |l| {
                l.roles[0].trust["Statement"][0]["Condition"] = Value::Null;
            },
            &["TNY-IAM-3"],
        ),
        (
            "tenant reads every bucket",
            |l| {
                l.roles[1].inline_policies.insert("wide".into(), json!({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}));
            },
            &["TNY-IAM-4"],
        ),
        (
            "role trusted by another account",
            |l| {
                l.roles[0].trust["Statement"][0]["Principal"] =
                    json!({"AWS": "arn:aws:iam::999:root"});
            },
            &["TNY-IAM-6"],
        ),
        (
            "cluster-admin to a stranger",
            |l| {
                l.kubernetes.as_mut().unwrap().cluster_role_bindings[0]
                    .subjects
                    .push("User/mallory".into())
            },
            &["TNY-K8S-1"],
        ),
        (
            "wildcard role",
            |l| l.kubernetes.as_mut().unwrap().cluster_roles[0].rules[0].verbs = vec!["*".into()],
            &["TNY-K8S-2"],
        ),
        (
            "default SA mounts",
            |l| {
                l.kubernetes
                    .as_mut()
                    .unwrap()
                    .default_service_accounts
                    .insert("ledger".into(), None);
            },
            &["TNY-K8S-3"],
        ),
        (
            "namespace without label",
            |l| {
                l.kubernetes
                    .as_mut()
                    .unwrap()
                    .namespaces
                    .insert("scratch".into(), BTreeMap::new());
            },
            &["TNY-K8S-4"],
        ),
        (
            "tenant at baseline",
            |l| {
                l.kubernetes
                    .as_mut()
                    .unwrap()
                    .namespaces
                    .insert("ledger".into(), labels("baseline"));
            },
            &["TNY-K8S-5"],
        ),
        (
            "pod in default",
            |l| {
                l.kubernetes
                    .as_mut()
                    .unwrap()
                    .default_namespace_pods
                    .push("debug".into())
            },
            &["TNY-K8S-6"],
        ),
        (
            "quota deleted",
            |l| l.kubernetes.as_mut().unwrap().quota_namespaces.clear(),
            &["TNY-K8S-7"],
        ),
        (
            "impersonation",
            |l| {
                l.kubernetes.as_mut().unwrap().cluster_roles[0].rules[0]
                    .verbs
                    .push("impersonate".into())
            },
            &["TNY-K8S-8"],
        ),
        (
            "bucket SSE-S3",
            |l| l.bucket.as_mut().unwrap().encryption = Some("AES256".into()),
            &["TNY-S3-1"],
        ),
        (
            "public access block off",
            |l| l.bucket.as_mut().unwrap().public_access_block = Some([true, false, true, true]),
            &["TNY-S3-2"],
        ),
        (
            "TLS statement removed",
            |l| l.bucket.as_mut().unwrap().policy = json!({"Statement": []}),
            &["TNY-S3-3"],
        ),
        (
            "scan on push off",
            |l| l.repositories[0].scan_on_push = false,
            &["TNY-ECR-1"],
        ),
        (
            "mutable tags",
            |l| l.repositories[0].tag_mutability = "MUTABLE".into(),
            &["TNY-ECR-2"],
        ),
        (
            "some tags exempt from immutability",
            |l| l.repositories[0].tag_mutability = "IMMUTABLE_WITH_EXCLUSION".into(),
            &["TNY-ECR-2"],
        ),
        (
            "lifecycle policy deleted",
            |l| l.repositories[0].lifecycle_policy = false,
            &["TNY-ECR-3"],
        ),
        (
            "AWS-owned encryption",
            |l| l.repositories[0].kms_key = None,
            &["TNY-ECR-4"],
        ),
    ];
    let mut covered = BTreeSet::new();
    for (name, change, expected) in cases {
        let mut live = compliant();
        change(&mut live);
        let want: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(failed(&live), want, "{name}");
        covered.extend(want);
    }
    // Every control but the boundary (not applicable without one) has a violation above.
    let uncovered: Vec<_> = super::CONTROLS
        .iter()
        .map(|c| c.id)
        .filter(|id| !covered.contains(*id) && *id != "TNY-IAM-5")
        .collect();
    assert!(uncovered.is_empty(), "{uncovered:?}");
}

#[test]
fn the_boundary_is_checked_when_the_deployment_sets_one() {
    let mut live = compliant();
    live.asked.role_boundary = Some("arn:aws:iam::111122223333:policy/boundary".into());
    assert_eq!(failed(&live), BTreeSet::from(["TNY-IAM-5".to_owned()]));
    for r in &mut live.roles {
        r.boundary = live.asked.role_boundary.clone();
    }
    assert!(failed(&live).is_empty());
}

#[test]
fn without_a_cluster_the_cluster_controls_fail_and_kubernetes_ones_do_not_apply() {
    let mut live = compliant();
    live.cluster = None;
    live.kubernetes = None;
    let r = report(&live);
    let eks1 = r.results.iter().find(|r| r.control == "TNY-EKS-1").unwrap();
    assert_eq!(eks1.status, Status::Fail);
    assert!(eks1.reason.contains("does not exist"));
    let k8s = r.results.iter().find(|r| r.control == "TNY-K8S-1").unwrap();
    assert_eq!(k8s.status, Status::NotApplicable);
}

#[test]
fn the_summary_counts_failures_by_severity_and_compaction_keeps_failures() {
    let mut live = compliant();
    live.keys[0].rotation = false; // medium
    live.bucket.as_mut().unwrap().public_access_block = None; // critical
    let r = report(&live);
    let s = r.summary();
    assert_eq!(s.failed, 2);
    assert_eq!(
        s.failed_by_severity.get(&super::Severity::Critical),
        Some(&1)
    );
    assert_eq!(s.failed_by_severity.get(&super::Severity::Medium), Some(&1));
    assert_eq!(s.passed + s.failed + s.not_applicable, s.results);
    assert_eq!(r.failed_controls(), ["TNY-KMS-1", "TNY-S3-2"]);
    let full = serde_json::to_vec(&r).unwrap().len();
    // Just over the limit: passing results lose their evidence, failures keep theirs.
    let small = r.compacted(full - 1);
    assert!(serde_json::to_vec(&small).unwrap().len() < full);
    for result in small.results.iter().filter(|r| r.status == Status::Fail) {
        assert_ne!(
            result.evidence,
            json!({"omitted": "report size limit"}),
            "{result:?}"
        );
    }
}

/// A compliant platform on Calico: the VPC CNI add-on absent, the Installation there.
fn compliant_calico() -> Live {
    let mut live = compliant();
    live.asked.cni = "calico".into();
    live.addons.retain(|a| a.name != "vpc-cni");
    live.kubernetes.as_mut().unwrap().calico_cni =
        Some(json!({"type": "Calico", "ipam": {"type": "Calico"}}));
    live
}

#[test]
fn the_calico_operators_role_passes_as_vendored_and_fails_once_changed() {
    let operator = || RbacRole {
        name: "tigera-operator".into(),
        rules: vec![RbacRule {
            api_groups: vec!["rbac.authorization.k8s.io".into()],
            resources: vec!["clusterroles".into()],
            verbs: vec!["bind".into(), "escalate".into()],
        }],
    };
    let mut live = compliant_calico();
    live.kubernetes
        .as_mut()
        .unwrap()
        .cluster_roles
        .push(operator());
    assert_eq!(
        failed(&live),
        BTreeSet::from(["TNY-K8S-8".to_owned()]),
        "not vendored"
    );
    live.asked
        .platform_roles
        .insert("tigera-operator".into(), operator().rules);
    assert!(failed(&live).is_empty(), "{:?}", failed(&live));
    live.kubernetes
        .as_mut()
        .unwrap()
        .cluster_roles
        .last_mut()
        .unwrap()
        .rules[0]
        .verbs
        .push("impersonate".into());
    assert_eq!(
        failed(&live),
        BTreeSet::from(["TNY-K8S-8".to_owned()]),
        "changed"
    );
}

#[test]
fn on_calico_the_installation_is_what_enforces_network_policy() {
    assert!(
        failed(&compliant_calico()).is_empty(),
        "{:?}",
        failed(&compliant_calico())
    );
    let mut gone = compliant_calico();
    gone.kubernetes.as_mut().unwrap().calico_cni = None;
    assert_eq!(failed(&gone), BTreeSet::from(["TNY-NET-4".to_owned()]));
    let mut other = compliant_calico();
    other.kubernetes.as_mut().unwrap().calico_cni = Some(json!({"type": "AmazonVPC"}));
    assert_eq!(failed(&other), BTreeSet::from(["TNY-NET-4".to_owned()]));
}
