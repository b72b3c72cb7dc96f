//! Every IAM document the `encryption` and `identity` phases write, rendered as JSON values by
//! pure functions (no AWS call, no clock), so each one is unit-tested and checked by `parliament`
//! (`shared/tests/policies.rs`).
//!
//! Request values (hosted zones, secret prefixes, names) only ever enter a document as JSON
//! strings through `serde_json`, so no value can add a statement or a condition.
//!
//! Kinds of documents, told apart by the file-name prefix [`all_rendered`] gives them:
//! - `key.<purpose>.json`: KMS key policies. In a key policy `Resource: "*"` means "this key";
//!   [`for_parliament`] substitutes the key's (placeholder) ARN and its alias ARN, which is what
//!   `*` denotes there, since parliament reads every document as an identity policy.
//! - `policy.<role>.<name>.json`: inline permission policies of Tenantry's roles.
//! - `trust.<role>.json`: role trust policies. They are resource policies without `Resource`,
//!   which parliament reports as malformed; their shape is pinned by unit tests instead.
//! - Tenants (`policies/tenant.rs`): `key.tenant.<tenant>.json` (its key, whose alias
//!   [`for_parliament`] substitutes too), `trust.tenant.<tenant>.json`,
//!   `policy.tenant.<tenant>.<policy>.json`, and `bucket.tenant-data.json`, the platform
//!   bucket's policy: Deny statements with `Principal: "*"`, which parliament reads as they are.
//! - `repository.<repository name, `/` as `+`>.json`: ECR repository policies (`policies/registry.rs`), shown
//!   to parliament with the repository's ARN as each statement's `Resource`.

use serde_json::{json, Value};

use crate::naming::{self, Names};
use crate::spec::{partition_of, PlatformSpec};

pub mod registry;
mod tenant;
pub use tenant::{
    iam_literal, iam_matches, tenant_bucket_policy, tenant_key_policy, tenant_role_policy,
    tenant_service_account, tenant_trust, TENANT_KEY_ACTIONS, TENANT_POLICY_NAME,
    TENANT_SERVICE_ACCOUNT,
};

/// Key purpose: Kubernetes secrets envelope encryption (alias `.../cluster`).
pub const KEY_SECRETS: &str = "cluster";
/// Key purpose: CloudWatch Logs (cluster, flow logs, Container Insights).
pub const KEY_LOGS: &str = "logs";
/// Key purpose: tenant bucket and platform secrets.
pub const KEY_DATA: &str = "data";
/// Every key purpose, in creation order.
pub const KEY_PURPOSES: &[&str] = &[KEY_SECRETS, KEY_LOGS, KEY_DATA];

/// Audience of IRSA web identity tokens.
pub const IRSA_AUDIENCE: &str = "sts.amazonaws.com";
/// Inline policy name of every service role's permissions.
pub const SERVICE_POLICY_NAME: &str = "permissions";
/// Inline policy of the cluster role on the secrets key.
pub const CLUSTER_SECRETS_POLICY_NAME: &str = "secrets-encryption";
/// Inline policy of the flow logs role.
pub const FLOW_LOGS_POLICY_NAME: &str = "flow-logs-delivery";
/// Inline policy of the Fargate pod execution role: Fluent Bit's delivery to the Fargate log
/// group (with `fargate.logging`).
pub const FARGATE_LOGS_POLICY_NAME: &str = "fargate-logs-delivery";

const VERSION: &str = "2012-10-17";

/// A workload role: its purpose (role name suffix) and the one service account it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceAccount {
    pub purpose: &'static str,
    pub namespace: &'static str,
    pub name: &'static str,
}

/// Every workload role Tenantry knows, with its service account (same table as the planner).
pub const SERVICE_ACCOUNTS: &[ServiceAccount] = &[
    ServiceAccount {
        purpose: naming::ROLE_EBS_CSI,
        namespace: "kube-system",
        name: "ebs-csi-controller-sa",
    },
    ServiceAccount {
        purpose: naming::ROLE_CLUSTER_AUTOSCALER,
        namespace: "kube-system",
        name: "cluster-autoscaler",
    },
    ServiceAccount {
        purpose: naming::ROLE_ALB_CONTROLLER,
        namespace: "kube-system",
        name: "aws-load-balancer-controller",
    },
    ServiceAccount {
        purpose: naming::ROLE_EXTERNAL_DNS,
        namespace: "external-dns",
        name: "external-dns",
    },
    ServiceAccount {
        purpose: naming::ROLE_EXTERNAL_SECRETS,
        namespace: "external-secrets",
        name: "external-secrets",
    },
];

/// The workload roles a spec asks for (EBS CSI when its add-on is installed).
pub fn enabled_service_accounts(spec: &PlatformSpec) -> Vec<ServiceAccount> {
    let roles = &spec.identity.service_roles;
    let ebs = spec
        .effective_addons()
        .iter()
        .any(|a| a.name == "aws-ebs-csi-driver");
    SERVICE_ACCOUNTS
        .iter()
        .copied()
        .filter(|sa| match sa.purpose {
            naming::ROLE_EBS_CSI => ebs,
            naming::ROLE_CLUSTER_AUTOSCALER => roles.cluster_autoscaler.enabled,
            naming::ROLE_ALB_CONTROLLER => roles.alb_controller.enabled,
            naming::ROLE_EXTERNAL_DNS => roles.external_dns.enabled,
            naming::ROLE_EXTERNAL_SECRETS => roles.external_secrets.enabled,
            _ => false,
        })
        .collect()
}

/// Where documents are rendered for: the account and region ARNs point into.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub spec: &'a PlatformSpec,
    pub account: &'a str,
    pub region: &'a str,
    pub names: Names,
}

impl<'a> Target<'a> {
    pub fn new(spec: &'a PlatformSpec, account: &'a str, region: &'a str) -> Self {
        Target {
            spec,
            account,
            region,
            names: Names::new(spec),
        }
    }

    pub fn partition(&self) -> &'static str {
        partition_of(self.region)
    }

    fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:{}:{service}:{}:{}:{resource}",
            self.partition(),
            self.region,
            self.account
        )
    }

    /// `arn:<p>:iam::<account>:root`.
    pub fn account_root(&self) -> String {
        format!("arn:{}:iam::{}:root", self.partition(), self.account)
    }

    /// The platform's EKS cluster ARN.
    pub fn cluster_arn(&self) -> String {
        self.arn("eks", &format!("cluster/{}", self.names.cluster()))
    }

    /// The ARN pattern of the cluster's Fargate profiles:
    /// `arn:<p>:eks:<region>:<account>:fargateprofile/<cluster>/*`.
    pub fn fargate_profiles_arn(&self) -> String {
        self.arn("eks", &format!("fargateprofile/{}/*", self.names.cluster()))
    }

    /// A log group's ARN (without the `:*` suffix), as KMS encryption contexts carry it.
    pub fn log_group_arn(&self, name: &str) -> String {
        self.arn("logs", &format!("log-group:{name}"))
    }

    /// An AWS managed policy ARN, e.g. `AmazonEKSClusterPolicy` or
    /// `service-role/AmazonEBSCSIDriverPolicy`.
    pub fn managed_policy(&self, name: &str) -> String {
        format!("arn:{}:iam::aws:policy/{name}", self.partition())
    }

    /// `arn:<p>:iam::<account>:role/tenantry/<name>`: every role Tenantry creates lives under
    /// [`ROLE_PATH`].
    pub fn role_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:iam::{}:role{ROLE_PATH}{name}",
            self.partition(),
            self.account
        )
    }

    /// The IAM OIDC provider ARN of an issuer URL.
    pub fn oidc_provider_arn(&self, issuer: &str) -> String {
        format!(
            "arn:{}:iam::{}:oidc-provider/{}",
            self.partition(),
            self.account,
            issuer_host(issuer)
        )
    }
}

/// The issuer without its scheme (`oidc.eks.<region>.amazonaws.com/id/<ID>`): the prefix of
/// IRSA condition keys and the tail of the provider ARN.
pub fn issuer_host(issuer: &str) -> &str {
    let host = issuer.strip_prefix("https://").unwrap_or(issuer);
    host.trim_end_matches('/')
}

fn document(statements: Vec<Value>) -> Value {
    json!({ "Version": VERSION, "Statement": statements })
}

// --- KMS key policies --------------------------------------------------------------------------

/// What the account root may do on a symmetric key: every key-scoped operation Tenantry or an
/// operator needs (administration, use, grants, aliases), delegated to IAM policies. Listed
/// rather than `kms:*`, so the key policy itself never allows key material import, replication
/// or asymmetric operations.
const ROOT_KEY_ACTIONS: &[&str] = &[
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
];

/// The first statement of every key policy Tenantry writes: the account root may do
/// [`ROOT_KEY_ACTIONS`] (delegated to IAM policies).
fn account_administration(t: &Target) -> Value {
    json!({
        "Sid": "AccountAdministration",
        "Effect": "Allow",
        "Principal": { "AWS": t.account_root() },
        "Action": ROOT_KEY_ACTIONS,
        "Resource": "*",
    })
}

/// The policy of one of the platform's keys.
pub fn key_policy(t: &Target, purpose: &str) -> Value {
    let mut statements = vec![account_administration(t)];
    match purpose {
        KEY_SECRETS => statements.push(json!({
            "Sid": "EksSecretsEncryption",
            "Effect": "Allow",
            "Principal": { "Service": "eks.amazonaws.com" },
            "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"],
            "Resource": "*",
            "Condition": {
                "StringEquals": { "aws:SourceAccount": t.account },
                "ArnLike": { "aws:SourceArn": t.cluster_arn() },
            },
        })),
        KEY_LOGS => statements.push(json!({
            "Sid": "CloudWatchLogsEncryption",
            "Effect": "Allow",
            "Principal": { "Service": format!("logs.{}.amazonaws.com", t.region) },
            "Action": [
                "kms:Decrypt",
                "kms:Encrypt",
                "kms:GenerateDataKey",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
            ],
            "Resource": "*",
            // The confused-deputy guard CloudWatch Logs documents: the encryption context names
            // the log group (account included). Only this platform's groups qualify. The context
            // key is a String key, so StringLike (parliament flags ArnLike as a type mismatch).
            "Condition": {
                "StringLike": { "kms:EncryptionContext:aws:logs:arn": platform_log_group_patterns(t) },
            },
        })),
        KEY_DATA => {}
        _ => {}
    }
    if purpose == KEY_DATA {
        // Node volumes are encrypted with the data key; EC2 Auto Scaling launches them (managed
        // node groups) through its service-linked role. The statement of the AWS managed
        // `aws/ebs` key: any principal of this account, only through EC2 in this region. It
        // names no role, so it does not depend on the service-linked role existing yet.
        statements.push(json!({
            "Sid": "EncryptedVolumesThroughEc2",
            "Effect": "Allow",
            "Principal": { "AWS": "*" },
            "Action": [
                "kms:CreateGrant",
                "kms:Decrypt",
                "kms:DescribeKey",
                "kms:Encrypt",
                "kms:GenerateDataKey*",
                "kms:ReEncrypt*",
            ],
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "kms:CallerAccount": t.account,
                    "kms:ViaService": format!("ec2.{}.amazonaws.com", t.region),
                },
            },
        }));
    }
    match purpose {
        // The alarm topic Tenantry creates is encrypted with the data key: CloudWatch publishes
        // to it only if it may use the key (an AWS managed key would not allow it). Limited to
        // this account's alarms of this platform (confused-deputy guard), and only present when
        // the platform's own topic is used.
        KEY_DATA if alarm_topic_is_own(t.spec) => statements.push(json!({
            "Sid": "CloudWatchAlarmsToEncryptedTopic",
            "Effect": "Allow",
            "Principal": { "Service": "cloudwatch.amazonaws.com" },
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "*",
            "Condition": {
                "StringEquals": { "aws:SourceAccount": t.account },
                "ArnLike": { "aws:SourceArn": t.arn("cloudwatch", &format!("alarm:{}*", t.names.alarm(""))) },
            },
        })),
        _ => {}
    }
    document(statements)
}

/// Whether the platform's alarms notify the SNS topic Tenantry creates (encrypted with the data
/// key) rather than a topic the request names.
pub fn alarm_topic_is_own(spec: &PlatformSpec) -> bool {
    spec.observability.alarms.enabled && spec.observability.alarms.sns_topic_arn.is_none()
}

/// The log groups the logs key may encrypt: the cluster's, the flow logs', Container Insights'.
pub fn platform_log_group_patterns(t: &Target) -> Vec<String> {
    let stem = t.names.stem();
    vec![
        t.log_group_arn(&format!("/aws/eks/{stem}/*")),
        t.log_group_arn(&format!("/tenantry/{stem}/*")),
        t.log_group_arn(&format!("/aws/containerinsights/{stem}/*")),
    ]
}

/// The IAM path of every role Tenantry creates: Tenantry's function roles may create and change
/// roles only under it, and none of them lives there, so no function can change its own role.
pub const ROLE_PATH: &str = "/tenantry/";

/// Placeholder key id used when a key policy is shown to parliament.
pub const PLACEHOLDER_KEY_ID: &str = "00000000-0000-0000-0000-000000000000";

// --- trust policies ----------------------------------------------------------------------------

fn service_trust(service: &str, actions: &[&str], condition: Option<Value>) -> Value {
    let mut statement = json!({
        "Effect": "Allow",
        "Principal": { "Service": service },
        "Action": actions,
    });
    if let Some(condition) = condition {
        statement["Condition"] = condition;
    }
    document(vec![statement])
}

/// The EKS cluster role trusts EKS, for this platform's cluster of this account only (the
/// confused-deputy guard EKS documents: it sets `aws:SourceAccount` and `aws:SourceArn`).
pub fn cluster_trust(t: &Target) -> Value {
    service_trust(
        "eks.amazonaws.com",
        &["sts:AssumeRole", "sts:TagSession"],
        Some(json!({
            "StringEquals": { "aws:SourceAccount": t.account },
            "ArnLike": { "aws:SourceArn": t.cluster_arn() },
        })),
    )
}

/// The node role trusts EC2 (managed node groups build the instance profile). EC2 sets no
/// `aws:SourceAccount` when an instance profile's role is assumed, so the trust carries none: a
/// condition on it would keep nodes from ever joining.
pub fn node_trust() -> Value {
    service_trust("ec2.amazonaws.com", &["sts:AssumeRole"], None)
}

/// The flow logs role trusts VPC Flow Logs of this account only.
pub fn flow_logs_trust(t: &Target) -> Value {
    service_trust(
        "vpc-flow-logs.amazonaws.com",
        &["sts:AssumeRole"],
        Some(json!({
            "StringEquals": { "aws:SourceAccount": t.account },
            "ArnLike": { "aws:SourceArn": t.arn("ec2", "vpc-flow-log/*") },
        })),
    )
}

/// IRSA: the cluster's OIDC provider may assume the role for exactly one service account.
pub fn irsa_statement(t: &Target, issuer: &str, sa: &ServiceAccount) -> Value {
    irsa_statement_for(t, issuer, sa.namespace, sa.name)
}

/// [`irsa_statement`] for a namespace and service account given as (already literal) strings.
fn irsa_statement_for(t: &Target, issuer: &str, namespace: &str, name: &str) -> Value {
    let host = issuer_host(issuer);
    let mut equals = serde_json::Map::new();
    equals.insert(
        format!("{host}:sub"),
        Value::String(format!("system:serviceaccount:{namespace}:{name}")),
    );
    equals.insert(
        format!("{host}:aud"),
        Value::String(IRSA_AUDIENCE.to_owned()),
    );
    json!({
        "Sid": "Irsa",
        "Effect": "Allow",
        "Principal": { "Federated": t.oidc_provider_arn(issuer) },
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": { "StringEquals": equals },
    })
}

/// EKS Pod Identity: `pods.eks.amazonaws.com` may assume the role for exactly one service
/// account of this cluster of this account (the session tags the agent sets, and the source
/// account EKS Pod Identity sets).
pub fn pod_identity_statement(t: &Target, sa: &ServiceAccount) -> Value {
    json!({
        "Sid": "PodIdentity",
        "Effect": "Allow",
        "Principal": { "Service": "pods.eks.amazonaws.com" },
        "Action": ["sts:AssumeRole", "sts:TagSession"],
        "Condition": { "StringEquals": {
            "aws:SourceAccount": t.account,
            "aws:RequestTag/eks-cluster-arn": t.cluster_arn(),
            "aws:RequestTag/kubernetes-namespace": sa.namespace,
            "aws:RequestTag/kubernetes-service-account": sa.name,
        } },
    })
}

/// A workload role's trust: IRSA when on and the issuer is known, Pod Identity when on.
pub fn workload_trust(t: &Target, issuer: Option<&str>, sa: &ServiceAccount) -> Value {
    let identity = &t.spec.identity;
    let mut statements = Vec::new();
    if let (true, Some(issuer)) = (identity.irsa, issuer) {
        statements.push(irsa_statement(t, issuer, sa));
    }
    if identity.pod_identity {
        statements.push(pod_identity_statement(t, sa));
    }
    document(statements)
}

// --- S3 server access logs --------------------------------------------------------------------

/// Key prefix of the tenant-data bucket's access logs in the log bucket.
pub const ACCESS_LOG_PREFIX: &str = "tenant-data/";

/// The access-log bucket's policy: S3's log delivery may write under [`ACCESS_LOG_PREFIX`], for
/// the tenant-data bucket of this account only (confused-deputy guard); nothing over plain HTTP.
pub fn access_log_bucket_policy(t: &Target, log_bucket: &str, data_bucket: &str) -> Value {
    let p = t.partition();
    let bucket_arn = format!("arn:{p}:s3:::{log_bucket}");
    document(vec![
        json!({
            "Sid": "S3ServerAccessLogDelivery",
            "Effect": "Allow",
            "Principal": { "Service": "logging.s3.amazonaws.com" },
            "Action": "s3:PutObject",
            "Resource": format!("{bucket_arn}/{ACCESS_LOG_PREFIX}*"),
            "Condition": {
                "ArnLike": { "aws:SourceArn": format!("arn:{p}:s3:::{data_bucket}") },
                "StringEquals": { "aws:SourceAccount": t.account },
            },
        }),
        json!({
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn.clone(), format!("{bucket_arn}/*")],
            "Condition": { "Bool": { "aws:SecureTransport": "false" } },
        }),
    ])
}

// --- VPC endpoint policies ---------------------------------------------------------------------

/// ECR keeps image layers in an AWS-owned S3 bucket per region, which nodes read through the S3
/// gateway endpoint when they pull images.
pub fn ecr_layer_bucket(partition: &str, region: &str) -> String {
    format!("arn:{partition}:s3:::prod-{region}-starport-layer-bucket/*")
}

/// The policy of one of the platform's VPC endpoints: only principals of the platform's account
/// may use it (a stolen credential of another account cannot exfiltrate through it), and for S3
/// only on buckets of the account, plus the AWS-owned ECR layer bucket nodes pull from. STS
/// also admits the unauthenticated `AssumeRoleWithWebIdentity` of IRSA, for this account's
/// roles only (the call has no principal account to test).
pub fn vpc_endpoint_policy(
    partition: &str,
    account: &str,
    region: &str,
    service: crate::spec::VpcEndpointService,
) -> Value {
    use crate::spec::VpcEndpointService as S;
    let own = |sid: &str, condition: Value| {
        json!({
            "Sid": sid,
            "Effect": "Allow",
            "Principal": "*",
            "Action": "*",
            "Resource": "*",
            "Condition": condition,
        })
    };
    let mut statements = match service {
        S::S3 => vec![
            own(
                "OwnAccountBuckets",
                json!({ "StringEquals": {
                    "aws:PrincipalAccount": account,
                    "aws:ResourceAccount": account,
                } }),
            ),
            json!({
                "Sid": "EcrImageLayers",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": ecr_layer_bucket(partition, region),
                "Condition": { "StringEquals": { "aws:PrincipalAccount": account } },
            }),
        ],
        _ => vec![own(
            "OwnAccountPrincipals",
            json!({ "StringEquals": { "aws:PrincipalAccount": account } }),
        )],
    };
    if service == S::Sts {
        statements.push(json!({
            "Sid": "IrsaWebIdentityToOwnRoles",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Resource": "*",
            "Condition": { "StringEquals": { "aws:ResourceAccount": account } },
        }));
    }
    document(statements)
}

// --- permission policies -----------------------------------------------------------------------

/// Managed policies of the cluster role.
pub fn cluster_managed_policies(t: &Target) -> Vec<String> {
    ["AmazonEKSClusterPolicy", "AmazonEKSVPCResourceController"]
        .iter()
        .map(|p| t.managed_policy(p))
        .collect()
}

/// Managed policies of the node role (the CNI policy only with the VPC CNI, the CloudWatch agent
/// policy only with Container Insights).
pub fn node_managed_policies(t: &Target) -> Vec<String> {
    let mut names = vec![
        "AmazonEKSWorkerNodePolicy",
        "AmazonEC2ContainerRegistryReadOnly",
        "AmazonSSMManagedInstanceCore",
    ];
    if t.spec.cni == crate::spec::Cni::VpcCni {
        names.push("AmazonEKS_CNI_Policy");
    }
    if t.spec.observability.container_insights {
        names.push("CloudWatchAgentServerPolicy");
    }
    names.iter().map(|p| t.managed_policy(p)).collect()
}

/// The cluster role's use of the secrets key (EKS envelope encryption runs as the cluster role).
pub fn cluster_secrets_policy(key_arn: &str) -> Value {
    document(vec![json!({
        "Sid": "SecretsEnvelopeEncryption",
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:ListGrants"],
        "Resource": key_arn,
    })])
}

/// VPC Flow Logs delivery into the platform's flow log group only.
pub fn flow_logs_policy(t: &Target) -> Value {
    let group = t.log_group_arn(&t.names.flow_log_group());
    document(vec![json!({
        "Sid": "DeliverFlowLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
        "Resource": [group.clone(), format!("{group}:log-stream:*")],
    })])
}

/// The Fargate pod execution role trusts EKS Fargate, for this platform's cluster's profiles
/// in this account only (the confused-deputy guard the EKS user guide gives).
pub fn fargate_pods_trust(t: &Target) -> Value {
    service_trust(
        "eks-fargate-pods.amazonaws.com",
        &["sts:AssumeRole"],
        Some(json!({
            "ArnLike": { "aws:SourceArn": t.fargate_profiles_arn() },
        })),
    )
}

/// Managed policy of the Fargate pod execution role: image pulls from ECR.
pub fn fargate_pods_managed_policies(t: &Target) -> Vec<String> {
    vec![t.managed_policy("AmazonEKSFargatePodExecutionRolePolicy")]
}

/// Fluent Bit on Fargate delivers into the platform's Fargate log group only (the group is
/// Tenantry's, so no `logs:CreateLogGroup` and no retention rights).
pub fn fargate_logs_policy(t: &Target) -> Value {
    let group = t.log_group_arn(&t.names.fargate_log_group());
    document(vec![json!({
        "Sid": "DeliverFargateLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
        "Resource": [group.clone(), format!("{group}:log-stream:*")],
    })])
}

/// Managed policies of a workload role.
pub fn service_managed_policies(t: &Target, purpose: &str) -> Vec<String> {
    match purpose {
        naming::ROLE_EBS_CSI => vec![t.managed_policy("service-role/AmazonEBSCSIDriverPolicy")],
        _ => Vec::new(),
    }
}

/// The inline permission policy of a workload role (None when it only uses managed policies).
pub fn service_policy(t: &Target, purpose: &str) -> Option<Value> {
    match purpose {
        naming::ROLE_CLUSTER_AUTOSCALER => Some(cluster_autoscaler_policy(t)),
        naming::ROLE_ALB_CONTROLLER => Some(alb_controller_policy(t)),
        naming::ROLE_EXTERNAL_DNS => Some(external_dns_policy(t)),
        naming::ROLE_EXTERNAL_SECRETS => Some(external_secrets_policy(t)),
        naming::ROLE_EBS_CSI => Some(ebs_csi_key_policy(t)),
        _ => None,
    }
}

/// cluster-autoscaler: discovery everywhere, scaling only of this cluster's tagged groups.
pub fn cluster_autoscaler_policy(t: &Target) -> Value {
    let cluster = t.names.cluster();
    let mut owned = serde_json::Map::new();
    owned.insert(
        format!("aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster}"),
        Value::String("owned".to_owned()),
    );
    document(vec![
        json!({
            "Sid": "Discover",
            "Effect": "Allow",
            "Action": [
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLaunchConfigurations",
                "autoscaling:DescribeScalingActivities",
                "autoscaling:DescribeTags",
                "ec2:DescribeImages",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplateVersions",
                "ec2:GetInstanceTypesFromInstanceRequirements",
            ],
            "Resource": "*",
        }),
        json!({
            "Sid": "DescribeNodegroups",
            "Effect": "Allow",
            "Action": "eks:DescribeNodegroup",
            "Resource": t.arn("eks", &format!("nodegroup/{cluster}/*/*")),
        }),
        json!({
            "Sid": "ScaleOwnedGroups",
            "Effect": "Allow",
            "Action": [
                "autoscaling:SetDesiredCapacity",
                "autoscaling:TerminateInstanceInAutoScalingGroup",
            ],
            "Resource": t.arn("autoscaling", "autoScalingGroup:*:autoScalingGroupName/*"),
            "Condition": { "StringEquals": owned },
        }),
    ])
}

/// The AWS Load Balancer Controller release whose IAM policy Tenantry grants
/// (`shared/data/alb-controller/`, with its source).
pub const ALB_CONTROLLER_VERSION: &str = "v3.5.0";

/// The upstream policy file of [`ALB_CONTROLLER_VERSION`], verbatim.
const ALB_CONTROLLER_UPSTREAM_POLICY: &str = include_str!("../data/alb-controller/iam_policy.json");

/// AWS Load Balancer Controller: the upstream `docs/install/iam_policy.json` of the pinned
/// release, action for action (WAF, Shield, Cognito and `DescribeListenerAttributes` included: the
/// controller calls them), in the platform's partition. Upstream scopes its writes by the
/// `elbv2.k8s.aws/cluster` tag the controller sets on what it creates.
pub fn alb_controller_policy(t: &Target) -> Value {
    let text =
        ALB_CONTROLLER_UPSTREAM_POLICY.replace("arn:aws:", &format!("arn:{}:", t.partition()));
    serde_json::from_str(&text).expect("the vendored ALB controller policy is JSON")
}

/// A hosted zone id or ARN as a hosted zone ARN.
pub fn hosted_zone_arn(t: &Target, zone: &str) -> String {
    if zone.starts_with("arn:") {
        zone.to_owned()
    } else {
        let id = zone.strip_prefix("/hostedzone/").unwrap_or(zone);
        format!("arn:{}:route53:::hostedzone/{id}", t.partition())
    }
}

/// external-dns: record changes only in the spec's zones; zone listing everywhere.
pub fn external_dns_policy(t: &Target) -> Value {
    let zones: Vec<String> = t
        .spec
        .identity
        .service_roles
        .external_dns
        .hosted_zones
        .iter()
        .map(|z| hosted_zone_arn(t, z))
        .collect();
    document(vec![
        json!({
            "Sid": "ChangeRecordsInListedZones",
            "Effect": "Allow",
            "Action": [
                "route53:ChangeResourceRecordSets",
                "route53:ListResourceRecordSets",
                "route53:ListTagsForResource",
            ],
            "Resource": zones,
        }),
        json!({
            "Sid": "ListZones",
            "Effect": "Allow",
            "Action": ["route53:ListHostedZones", "route53:ListTagsForResources"],
            "Resource": "*",
        }),
    ])
}

/// EBS CSI driver: use the platform data key for the volumes of the default StorageClass
/// (`AmazonEBSCSIDriverPolicy` covers AWS managed keys only). The key is named by the tags it
/// got at creation (this platform, purpose `data`), so the role needs no key ARN and reaches no
/// other key; grants only for AWS resources (EBS attaches the volume through one).
pub fn ebs_csi_key_policy(t: &Target) -> Value {
    let keys = t.arn("kms", "key/*");
    let data_key = json!({
        format!("aws:ResourceTag/{}", naming::TAG_PLATFORM): t.spec.id,
        format!("aws:ResourceTag/{}", crate::resources::kms_key::TAG_PURPOSE): KEY_DATA,
    });
    document(vec![
        json!({
            "Sid": "UseTheDataKeyForVolumes",
            "Effect": "Allow",
            "Action": [
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:DescribeKey",
            ],
            "Resource": keys,
            "Condition": { "StringEquals": data_key },
        }),
        json!({
            "Sid": "GrantsForEbsOnly",
            "Effect": "Allow",
            "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
            "Resource": keys,
            "Condition": {
                "StringEquals": data_key,
                "Bool": { "kms:GrantIsForAWSResource": "true" },
            },
        }),
    ])
}

/// external-secrets: read secrets under the spec's prefixes only.
pub fn external_secrets_policy(t: &Target) -> Value {
    let secrets: Vec<String> = t
        .spec
        .identity
        .service_roles
        .external_secrets
        .secret_prefixes
        .iter()
        .map(|p| t.arn("secretsmanager", &format!("secret:{p}*")))
        .collect();
    document(vec![json!({
        "Sid": "ReadSecretsUnderPrefixes",
        "Effect": "Allow",
        "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
        "Resource": secrets,
    })])
}

// --- everything, for the checks ----------------------------------------------------------------

/// Every document for a platform, named `key.<purpose>.json`, `trust.<role>.json` or
/// `policy.<role>.<policy>.json`, and for each tenant of the spec `key.tenant.<tenant>.json`,
/// `trust.tenant.<tenant>.json` and `policy.tenant.<tenant>.<policy>.json`, then
/// `bucket.tenant-data.json` (see the module docs). The cluster's secrets key is rendered even
/// when the spec brings its own key (its policy is then not written); tenant keys are the
/// placeholder key.
pub fn all_rendered(
    spec: &PlatformSpec,
    account: &str,
    region: &str,
    issuer: &str,
) -> Vec<(String, Value)> {
    let t = Target::new(spec, account, region);
    let mut out = Vec::new();
    for purpose in KEY_PURPOSES {
        out.push((format!("key.{purpose}.json"), key_policy(&t, purpose)));
    }
    let secrets_key = t.arn("kms", &format!("key/{PLACEHOLDER_KEY_ID}"));
    out.push(("trust.cluster.json".into(), cluster_trust(&t)));
    out.push((
        format!("policy.cluster.{CLUSTER_SECRETS_POLICY_NAME}.json"),
        cluster_secrets_policy(&secrets_key),
    ));
    out.push(("trust.node.json".into(), node_trust()));
    out.push(("trust.flow-logs.json".into(), flow_logs_trust(&t)));
    out.push((
        format!("policy.flow-logs.{FLOW_LOGS_POLICY_NAME}.json"),
        flow_logs_policy(&t),
    ));
    if spec.uses_fargate() {
        out.push(("trust.fargate-pods.json".into(), fargate_pods_trust(&t)));
        if spec.fargate.logging {
            out.push((
                format!("policy.fargate-pods.{FARGATE_LOGS_POLICY_NAME}.json"),
                fargate_logs_policy(&t),
            ));
        }
    }
    for sa in enabled_service_accounts(spec) {
        out.push((
            format!("trust.{}.json", sa.purpose),
            workload_trust(&t, Some(issuer), &sa),
        ));
        if let Some(policy) = service_policy(&t, sa.purpose) {
            out.push((
                format!("policy.{}.{SERVICE_POLICY_NAME}.json", sa.purpose),
                policy,
            ));
        }
    }
    let bucket = t.names.bucket();
    let tenant_key = t.arn("kms", &format!("key/{PLACEHOLDER_KEY_ID}"));
    for tenant in &spec.tenants {
        let role = t.role_arn(&t.names.tenant_role(&tenant.name));
        out.push((
            format!("key.tenant.{}.json", tenant.name),
            tenant_key_policy(&t, &role),
        ));
        out.push((
            format!("trust.tenant.{}.json", tenant.name),
            tenant_trust(&t, Some(issuer), tenant),
        ));
        out.push((
            format!("policy.tenant.{}.{TENANT_POLICY_NAME}.json", tenant.name),
            tenant_role_policy(&t, &bucket, tenant, &tenant_key),
        ));
    }
    out.push((
        "bucket.tenant-data.json".into(),
        tenant_bucket_policy(&t, &bucket),
    ));
    out.push((
        "bucket.access-logs.json".into(),
        access_log_bucket_policy(&t, &t.names.access_log_bucket(), &bucket),
    ));
    let node = t.role_arn(&t.names.role(naming::ROLE_NODE));
    for r in &spec.repositories {
        out.push((
            repository_file(&t.names.repository(&r.name)),
            registry::repository_policy(&node, None),
        ));
    }
    for tenant in &spec.tenants {
        let role = t.role_arn(&t.names.tenant_role(&tenant.name));
        for r in &tenant.repositories {
            out.push((
                repository_file(&t.names.tenant_repository(&tenant.name, &r.name)),
                registry::repository_policy(&node, Some(&role)),
            ));
        }
    }
    for service in &spec.network.endpoints {
        out.push((
            format!("endpoint.{}.json", service.as_str()),
            vpc_endpoint_policy(t.partition(), account, region, *service),
        ));
    }
    out
}

/// `repository.<name>.json`, its `/` written as `+` (which no repository name holds) so the
/// name is one file name.
fn repository_file(name: &str) -> String {
    format!("repository.{}.json", name.replace('/', "+"))
}

/// The document parliament should audit for a file of [`all_rendered`]: permission and bucket
/// policies as they are; key policies with `"*"` replaced by what it denotes in a key policy (the
/// key, and for alias operations its alias: a tenant key's for `key.tenant.<tenant>.json`);
/// trust and endpoint policies not at all (None: both grant to a principal, and an endpoint
/// policy's `Action: "*"` within the account is a guardrail by design; unit tests pin their
/// shape).
pub fn for_parliament(file: &str, doc: &Value, t: &Target) -> Option<Value> {
    if file.starts_with("trust.") || file.starts_with("endpoint.") {
        return None;
    }
    // A repository policy names no Resource (it is the repository's): give each statement the
    // repository's ARN, as for a key policy's "*".
    if let Some(name) = file
        .strip_prefix("repository.")
        .and_then(|f| f.strip_suffix(".json"))
    {
        let mut view = doc.clone();
        let arn = t.arn("ecr", &format!("repository/{}", name.replace('+', "/")));
        for statement in view["Statement"].as_array_mut().into_iter().flatten() {
            statement["Resource"] = json!(arn);
        }
        return Some(view);
    }
    let Some(purpose) = file
        .strip_prefix("key.")
        .and_then(|f| f.strip_suffix(".json"))
    else {
        return Some(doc.clone());
    };
    let key = t.arn("kms", &format!("key/{PLACEHOLDER_KEY_ID}"));
    let alias = match purpose.strip_prefix("tenant.") {
        Some(tenant) => t.names.tenant_kms_alias(tenant),
        None => t.names.kms_alias(purpose),
    };
    let alias = t.arn("kms", &alias);
    let mut doc = doc.clone();
    if let Some(statements) = doc["Statement"].as_array_mut() {
        for s in statements {
            if s["Resource"] == "*" {
                s["Resource"] = json!([key, alias]);
            }
        }
    }
    Some(doc)
}

// --- comparing documents -----------------------------------------------------------------------

/// A policy document as AWS returns it (IAM URL-encodes documents; KMS does not) parsed to JSON.
pub fn parse_returned(document: &str) -> Option<Value> {
    serde_json::from_str(document)
        .ok()
        .or_else(|| serde_json::from_str(&percent_decode(document)).ok())
}

/// `%XX` decoding (IAM's document encoding); anything malformed is kept as is.
pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Whether two policy documents say the same thing, ignoring the representations AWS treats as
/// equal: a one-element list and its element, a lone statement object and a list of one.
pub fn same_policy(a: &Value, b: &Value) -> bool {
    normalize(a) == normalize(b)
}

fn normalize(v: &Value) -> Value {
    match v {
        Value::Array(items) if items.len() == 1 => normalize(&items[0]),
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), normalize(v))).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PlatformSpec {
        let text = include_str!("../../examples/platform.json");
        crate::validate::parse_platform(text).expect("example spec is valid")
    }

    /// Every endpoint is limited to the account's principals; S3 to the account's buckets and the
    /// ECR layer bucket; STS also to web-identity calls for the account's roles.
    #[test]
    fn endpoint_policies_keep_the_endpoints_to_the_account() {
        use crate::spec::VpcEndpointService as S;
        let acct = "111122223333";
        for service in [S::S3, S::Sts, S::EcrApi, S::Logs] {
            let doc = vpc_endpoint_policy("aws", acct, "eu-west-1", service);
            for st in doc["Statement"].as_array().unwrap() {
                let cond = &st["Condition"]["StringEquals"];
                let scoped = cond["aws:PrincipalAccount"] == acct
                    || (st["Action"] == "sts:AssumeRoleWithWebIdentity"
                        && cond["aws:ResourceAccount"] == acct);
                assert!(scoped, "{service:?}: unscoped statement {st}");
                if st["Action"] == "*" && service == S::S3 {
                    assert_eq!(cond["aws:ResourceAccount"], acct, "{st}");
                }
            }
        }
        let s3 = vpc_endpoint_policy("aws", acct, "eu-west-1", S::S3);
        assert_eq!(
            s3["Statement"][1]["Resource"],
            "arn:aws:s3:::prod-eu-west-1-starport-layer-bucket/*"
        );
    }

    /// Every trust of a service principal carries `aws:SourceAccount` (confused-deputy guard),
    /// except EC2's node trust, for which EC2 sets no source.
    #[test]
    fn service_trusts_name_the_source_account() {
        let spec = spec();
        let account = "111122223333";
        let rendered = all_rendered(
            &spec,
            account,
            "us-east-1",
            "https://oidc.eks.us-east-1.amazonaws.com/id/X",
        );
        let mut checked = 0;
        for (file, doc) in rendered.iter().filter(|(f, _)| f.starts_with("trust.")) {
            for st in doc["Statement"].as_array().expect("statements") {
                let Some(service) = st["Principal"]["Service"].as_str() else {
                    continue;
                };
                if service == "ec2.amazonaws.com" {
                    continue;
                }
                checked += 1;
                assert_eq!(
                    st["Condition"]["StringEquals"]["aws:SourceAccount"], account,
                    "{file}: {service} without aws:SourceAccount: {st}"
                );
            }
        }
        assert!(
            checked >= 5,
            "cluster, flow logs and the Pod Identity roles: {checked}"
        );
    }

    /// The rendered ALB controller policy is upstream's, action for action, statement for
    /// statement; other partitions only change the ARNs.
    #[test]
    fn alb_controller_policy_is_upstreams_action_for_action() {
        let spec = spec();
        let t = Target::new(&spec, "111122223333", "us-east-1");
        let upstream: Value = serde_json::from_str(ALB_CONTROLLER_UPSTREAM_POLICY).unwrap();
        let rendered = alb_controller_policy(&t);
        assert_eq!(rendered, upstream);
        let actions = |doc: &Value| -> Vec<String> {
            let mut all: Vec<String> = doc["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|s| match &s["Action"] {
                    Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_owned()).collect(),
                    x => vec![x.as_str().unwrap().to_owned()],
                })
                .collect();
            all.sort();
            all
        };
        let all = actions(&rendered);
        for needed in [
            "elasticloadbalancing:DescribeListenerAttributes",
            "wafv2:AssociateWebACL",
            "shield:CreateProtection",
            "cognito-idp:DescribeUserPoolClient",
        ] {
            assert!(all.iter().any(|a| a == needed), "{needed} missing");
        }
        let gov_spec: PlatformSpec = {
            let mut v: Value =
                serde_json::from_str(include_str!("../../examples/platform.json")).unwrap();
            v["region"] = json!("us-gov-west-1");
            v["tenants"] = json!([]);
            // Not validated: only the partition matters here.
            serde_json::from_value(v).expect("spec")
        };
        let gov = alb_controller_policy(&Target::new(&gov_spec, "111122223333", "us-gov-west-1"));
        assert_eq!(actions(&gov), all);
        assert!(!gov.to_string().contains("arn:aws:"), "{gov}");
    }

    #[test]
    fn percent_decoding_round_trips_iam_documents() {
        let doc = r#"{"Version":"2012-10-17","Statement":[]}"#;
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(percent_decode(encoded), doc);
        assert_eq!(parse_returned(encoded), serde_json::from_str(doc).ok());
        assert_eq!(parse_returned(doc), serde_json::from_str(doc).ok());
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn policies_compare_modulo_single_element_lists() {
        let a = json!({"Statement": [{"Action": ["kms:Decrypt"], "Resource": "*"}]});
        let b = json!({"Statement": {"Action": "kms:Decrypt", "Resource": ["*"]}});
        assert!(same_policy(&a, &b));
        let c = json!({"Statement": {"Action": "kms:Encrypt", "Resource": ["*"]}});
        assert!(!same_policy(&a, &c));
    }

    #[test]
    fn key_policies_name_the_service_principals_with_confused_deputy_conditions() {
        let spec = spec();
        let t = Target::new(&spec, "111122223333", "us-east-1");
        let secrets = key_policy(&t, KEY_SECRETS);
        let eks = &secrets["Statement"][1];
        assert_eq!(eks["Principal"]["Service"], "eks.amazonaws.com");
        assert_eq!(
            eks["Condition"]["StringEquals"]["aws:SourceAccount"],
            "111122223333"
        );
        assert_eq!(
            eks["Condition"]["ArnLike"]["aws:SourceArn"],
            "arn:aws:eks:us-east-1:111122223333:cluster/payments-prod"
        );
        let logs = key_policy(&t, KEY_LOGS);
        let stmt = &logs["Statement"][1];
        assert_eq!(stmt["Principal"]["Service"], "logs.us-east-1.amazonaws.com");
        let contexts = &stmt["Condition"]["StringLike"]["kms:EncryptionContext:aws:logs:arn"];
        assert_eq!(
            contexts[0],
            "arn:aws:logs:us-east-1:111122223333:log-group:/aws/eks/payments-prod/*"
        );
        let data = key_policy(&t, KEY_DATA);
        assert_eq!(data["Statement"].as_array().map(Vec::len), Some(3));
        let volumes = &data["Statement"][1];
        assert_eq!(volumes["Principal"]["AWS"], "*");
        assert_eq!(
            volumes["Condition"]["StringEquals"],
            json!({ "kms:CallerAccount": "111122223333", "kms:ViaService": "ec2.us-east-1.amazonaws.com" })
        );
        let alarms = &data["Statement"][2];
        assert_eq!(alarms["Principal"]["Service"], "cloudwatch.amazonaws.com");
        assert_eq!(
            alarms["Condition"]["StringEquals"]["aws:SourceAccount"],
            "111122223333"
        );
        assert_eq!(
            alarms["Condition"]["ArnLike"]["aws:SourceArn"],
            "arn:aws:cloudwatch:us-east-1:111122223333:alarm:tenantry-payments-prod-*"
        );
        let mut external = spec.clone();
        external.observability.alarms.sns_topic_arn =
            Some("arn:aws:sns:us-east-1:111122223333:ops".into());
        let t = Target::new(&external, "111122223333", "us-east-1");
        let data = key_policy(&t, KEY_DATA);
        assert_eq!(data["Statement"].as_array().map(Vec::len), Some(2));
        assert!(!ROOT_KEY_ACTIONS.contains(&"kms:*"));
    }
}
