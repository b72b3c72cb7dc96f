//! Deterministic names and tags of everything Tenantry creates.
//!
//! Every name is derived from the platform's *stem* `<id>-<environment>` (which is also the EKS
//! cluster name), so a crashed `ensure` finds what it created by name alone. The length limits
//! of the request's names are computed here from the AWS limits of the names they end up in, and
//! checked at compile time: an id, environment, node group or tenant name that passes validation
//! always yields names AWS accepts.
//!
//! | what                  | name                                         | AWS limit |
//! |-----------------------|----------------------------------------------|-----------|
//! | EKS cluster           | `<stem>`                                     | 100       |
//! | IAM role (platform)   | `tenantry-<stem>-<purpose>`                  | 64        |
//! | IAM role (tenant)     | `tenantry-<stem>-t-<tenant>`                 | 64        |
//! | EKS node group        | `<stem>-<group>`                             | 63        |
//! | launch template       | `tenantry-<stem>-<group>`                    | 128       |
//! | KMS alias             | `alias/tenantry/<stem>/<purpose>`            | 256       |
//! | KMS alias (tenant)    | `alias/tenantry/<stem>/tenant/<tenant>`      | 256       |
//! | S3 bucket             | `tenantry-<stem>-<hash8>`                    | 63        |
//! | S3 access-log bucket  | `tenantry-<stem>-<hash8>-logs`               | 63        |
//! | cluster log group     | `/aws/eks/<stem>/cluster`                    | 512       |
//! | flow log group        | `/tenantry/<stem>/vpc-flow-logs`             | 512       |
//! | SNS topic             | `tenantry-<stem>-alarms`                     | 256       |
//! | alarm                 | `tenantry-<stem>-<alarm>`                    | 255       |
//! | secret                | `tenantry/<stem>/platform-config`            | 512       |
//! | security group        | `tenantry-<stem>-<purpose>`                  | 255       |
//!
//! The bucket hash is FNV-1a of `<stem>|<region>|<targetRoleArn>`: stable across runs, Rust
//! versions and machines, and free of the account id (unknown before the first AWS call).

use std::collections::BTreeMap;

use crate::spec::{PlatformSpec, TenantSpec};

/// Prefix of every IAM role, launch template, bucket, topic and alarm name.
pub const PREFIX: &str = "tenantry-";
/// Longest environment suffix.
pub const MAX_ENVIRONMENT_LEN: usize = 8;
/// Longest platform id.
pub const MAX_PLATFORM_ID_LEN: usize = 20;
/// Longest stem `<id>-<environment>`.
pub const MAX_STEM_LEN: usize = MAX_PLATFORM_ID_LEN + 1 + MAX_ENVIRONMENT_LEN;

/// AWS limit: IAM role name.
pub const IAM_ROLE_NAME_LIMIT: usize = 64;
/// AWS limit: EKS cluster name.
pub const EKS_CLUSTER_NAME_LIMIT: usize = 100;
/// AWS limit: EKS node group name.
pub const EKS_NODEGROUP_NAME_LIMIT: usize = 63;
/// AWS limit: launch template name.
pub const LAUNCH_TEMPLATE_NAME_LIMIT: usize = 128;
/// AWS limit: S3 bucket name.
pub const S3_BUCKET_NAME_LIMIT: usize = 63;
/// AWS limit: KMS alias name.
pub const KMS_ALIAS_LIMIT: usize = 256;
/// AWS limit: CloudWatch Logs log group name.
pub const LOG_GROUP_NAME_LIMIT: usize = 512;
/// AWS limit: SNS topic name.
pub const SNS_TOPIC_NAME_LIMIT: usize = 256;
/// Kubernetes limit: namespace (DNS-1123 label).
pub const K8S_NAMESPACE_LIMIT: usize = 63;

/// Purposes of the platform's IAM roles (`tenantry-<stem>-<purpose>`).
pub const ROLE_PURPOSES: &[&str] = &[
    ROLE_CLUSTER,
    ROLE_NODE,
    ROLE_FLOW_LOGS,
    ROLE_EBS_CSI,
    ROLE_CLUSTER_AUTOSCALER,
    ROLE_ALB_CONTROLLER,
    ROLE_EXTERNAL_DNS,
    ROLE_EXTERNAL_SECRETS,
    ROLE_FARGATE_PODS,
];
/// EKS cluster role.
pub const ROLE_CLUSTER: &str = "cluster";
/// Node instance role.
pub const ROLE_NODE: &str = "node";
/// VPC flow logs delivery role.
pub const ROLE_FLOW_LOGS: &str = "flow-logs";
/// EBS CSI driver role.
pub const ROLE_EBS_CSI: &str = "ebs-csi";
/// cluster-autoscaler role.
pub const ROLE_CLUSTER_AUTOSCALER: &str = "cluster-autoscaler";
/// AWS Load Balancer Controller role.
pub const ROLE_ALB_CONTROLLER: &str = "alb-controller";
/// external-dns role.
pub const ROLE_EXTERNAL_DNS: &str = "external-dns";
/// external-secrets role.
pub const ROLE_EXTERNAL_SECRETS: &str = "external-secrets";

/// Fargate pod execution role (one per platform, for every profile).
pub const ROLE_FARGATE_PODS: &str = "fargate-pods";

/// Infix of tenant role names: `tenantry-<stem>-t-<tenant>`.
pub const TENANT_ROLE_INFIX: &str = "-t-";

const fn longest(names: &[&str]) -> usize {
    let mut i = 0;
    let mut max = 0;
    while i < names.len() {
        if names[i].len() > max {
            max = names[i].len();
        }
        i += 1;
    }
    max
}

/// Longest role purpose.
pub const LONGEST_ROLE_PURPOSE: usize = longest(ROLE_PURPOSES);

/// Longest tenant name: the tenant role `tenantry-<stem>-t-<tenant>` must fit in 64 characters
/// with the longest stem.
pub const MAX_TENANT_NAME_LEN: usize =
    IAM_ROLE_NAME_LIMIT - PREFIX.len() - MAX_STEM_LEN - TENANT_ROLE_INFIX.len();

/// Longest node group name: the EKS node group `<stem>-<group>` must fit in 63 characters.
pub const MAX_NODEGROUP_NAME_LEN: usize = EKS_NODEGROUP_NAME_LIMIT - MAX_STEM_LEN - 1;

/// Length of the bucket name's hash.
pub const BUCKET_HASH_LEN: usize = 8;

// The limits above are consistent: the longest inputs yield names AWS accepts.
const _: () =
    assert!(PREFIX.len() + MAX_STEM_LEN + 1 + LONGEST_ROLE_PURPOSE <= IAM_ROLE_NAME_LIMIT);
const _: () = assert!(MAX_STEM_LEN <= EKS_CLUSTER_NAME_LIMIT);
const _: () = assert!(
    PREFIX.len() + MAX_STEM_LEN + 1 + BUCKET_HASH_LEN + ACCESS_LOG_SUFFIX.len()
        <= S3_BUCKET_NAME_LIMIT
);

/// Suffix of the tenant-data bucket's access-log bucket.
const ACCESS_LOG_SUFFIX: &str = "-logs";
const _: () = assert!(MAX_TENANT_NAME_LEN >= 16 && MAX_TENANT_NAME_LEN <= K8S_NAMESPACE_LIMIT);
const _: () = assert!(MAX_NODEGROUP_NAME_LEN >= 16);
const _: () =
    assert!(PREFIX.len() + MAX_STEM_LEN + 1 + MAX_NODEGROUP_NAME_LEN <= LAUNCH_TEMPLATE_NAME_LIMIT);

/// Tag: the platform id.
pub const TAG_PLATFORM: &str = "tenantry:platform";
/// Tag: the tenant name (tenant resources only).
pub const TAG_TENANT: &str = "tenantry:tenant";
/// Tag: the component (planner phase or finer).
pub const TAG_COMPONENT: &str = "tenantry:component";
/// Tag with the platform's environment (`prod`, `dev`...), on every resource.
pub const TAG_ENVIRONMENT: &str = "tenantry:environment";
/// Tag: the tenant's cost centre (tenant resources only).
pub const TAG_COST_CENTRE: &str = "tenantry:cost-centre";
/// Prefix reserved for Tenantry's tags; requests may not use it.
pub const RESERVED_TAG_PREFIX: &str = "tenantry:";

/// The stem `<id>-<environment>`.
pub fn stem(platform_id: &str, environment: &str) -> String {
    format!("{platform_id}-{environment}")
}

/// The derived names of one platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    stem: String,
    region: String,
    target_role_arn: String,
}

impl Names {
    /// Names of a platform.
    pub fn new(spec: &PlatformSpec) -> Names {
        Names {
            stem: stem(&spec.id, &spec.environment),
            region: spec.region.clone(),
            target_role_arn: spec.target_role_arn.clone().unwrap_or_default(),
        }
    }

    /// `<id>-<environment>`.
    pub fn stem(&self) -> &str {
        &self.stem
    }

    /// EKS cluster name: the stem.
    pub fn cluster(&self) -> String {
        self.stem.clone()
    }

    /// Platform IAM role: `tenantry-<stem>-<purpose>`.
    pub fn role(&self, purpose: &str) -> String {
        format!("{PREFIX}{}-{purpose}", self.stem)
    }

    /// Tenant IAM role: `tenantry-<stem>-t-<tenant>`.
    pub fn tenant_role(&self, tenant: &str) -> String {
        format!("{PREFIX}{}{TENANT_ROLE_INFIX}{tenant}", self.stem)
    }

    /// Platform KMS alias: `alias/tenantry/<stem>/<purpose>`.
    pub fn kms_alias(&self, purpose: &str) -> String {
        format!("alias/tenantry/{}/{purpose}", self.stem)
    }

    /// Tenant KMS alias: `alias/tenantry/<stem>/tenant/<tenant>`.
    pub fn tenant_kms_alias(&self, tenant: &str) -> String {
        format!("alias/tenantry/{}/tenant/{tenant}", self.stem)
    }

    /// EKS node group: `<stem>-<group>`.
    pub fn nodegroup(&self, group: &str) -> String {
        format!("{}-{group}", self.stem)
    }

    /// Launch template: `tenantry-<stem>-<group>`.
    pub fn launch_template(&self, group: &str) -> String {
        format!("{PREFIX}{}-{group}", self.stem)
    }

    /// Security group: `tenantry-<stem>-<purpose>`.
    pub fn security_group(&self, purpose: &str) -> String {
        format!("{PREFIX}{}-{purpose}", self.stem)
    }

    /// Platform-level Fargate profile: `<stem>-p-<name>` (request names have no other prefix,
    /// so they never meet a tenant's or CoreDNS's profile).
    pub fn fargate_profile(&self, name: &str) -> String {
        format!("{}-p-{name}", self.stem)
    }

    /// A tenant's Fargate profile: `<stem>-t-<tenant>`.
    pub fn tenant_fargate_profile(&self, tenant: &str) -> String {
        format!("{}-t-{tenant}", self.stem)
    }

    /// The CoreDNS Fargate profile: `<stem>-coredns`.
    pub fn coredns_fargate_profile(&self) -> String {
        format!("{}-coredns", self.stem)
    }

    /// Fargate pods' log group (Fluent Bit): `/aws/eks/<cluster>/fargate`.
    pub fn fargate_log_group(&self) -> String {
        format!("/aws/eks/{}/fargate", self.stem)
    }

    /// Platform ECR repository: `tenantry/<stem>/<name>`.
    pub fn repository(&self, name: &str) -> String {
        format!("{}{name}", self.repository_prefix())
    }

    /// The path of the platform's repositories: `tenantry/<stem>/`.
    pub fn repository_prefix(&self) -> String {
        format!("tenantry/{}/", self.stem)
    }

    /// Tenant ECR repository: `tenantry/<stem>/<tenant>/<name>`. A platform repository's name
    /// has no `/`, so the tenant's path holds no repository but its own.
    pub fn tenant_repository(&self, tenant: &str, name: &str) -> String {
        format!("{}{name}", self.tenant_repository_prefix(tenant))
    }

    /// The path of a tenant's repositories: `tenantry/<stem>/<tenant>/`.
    pub fn tenant_repository_prefix(&self, tenant: &str) -> String {
        format!("tenantry/{}/{tenant}/", self.stem)
    }

    /// Tenant data bucket: `tenantry-<stem>-<hash8>`.
    /// The bucket the tenant-data bucket's S3 server access logs go to.
    pub fn access_log_bucket(&self) -> String {
        format!("{}{ACCESS_LOG_SUFFIX}", self.bucket())
    }

    pub fn bucket(&self) -> String {
        let hash = fnv1a64(&format!(
            "{}|{}|{}",
            self.stem, self.region, self.target_role_arn
        ));
        format!("{PREFIX}{}-{:08x}", self.stem, hash & 0xffff_ffff)
    }

    /// The log group EKS writes control-plane logs to: `/aws/eks/<cluster>/cluster`.
    pub fn cluster_log_group(&self) -> String {
        format!("/aws/eks/{}/cluster", self.stem)
    }

    /// VPC flow log group: `/tenantry/<stem>/vpc-flow-logs`.
    pub fn flow_log_group(&self) -> String {
        format!("/tenantry/{}/vpc-flow-logs", self.stem)
    }

    /// Container Insights log group: `/aws/containerinsights/<cluster>/<kind>`.
    pub fn container_insights_log_group(&self, kind: &str) -> String {
        format!("/aws/containerinsights/{}/{kind}", self.stem)
    }

    /// Alarm topic: `tenantry-<stem>-alarms`.
    pub fn sns_topic(&self) -> String {
        format!("{PREFIX}{}-alarms", self.stem)
    }

    /// Alarm: `tenantry-<stem>-<alarm>`.
    pub fn alarm(&self, alarm: &str) -> String {
        format!("{PREFIX}{}-{alarm}", self.stem)
    }

    /// Platform configuration secret: `tenantry/<stem>/platform-config`.
    pub fn platform_secret(&self) -> String {
        format!("tenantry/{}/platform-config", self.stem)
    }

    /// `Name` tag value of a resource: `<stem>-<suffix>`.
    pub fn name_tag(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.stem)
    }
}

/// Tags of a resource: the request's cost tags, then Tenantry's own (which win):
/// `tenantry:platform`, `tenantry:component`, and for tenant resources `tenantry:tenant` and
/// `tenantry:cost-centre`.
pub fn tags(
    spec: &PlatformSpec,
    tenant: Option<&TenantSpec>,
    component: &str,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = spec
        .tags
        .iter()
        .filter(|(k, _)| !k.starts_with(RESERVED_TAG_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.insert(TAG_PLATFORM.to_string(), spec.id.clone());
    out.insert(TAG_ENVIRONMENT.to_string(), spec.environment.clone());
    out.insert(TAG_COMPONENT.to_string(), component.to_string());
    if let Some(tenant) = tenant {
        out.insert(TAG_TENANT.to_string(), tenant.name.clone());
        out.insert(TAG_COST_CENTRE.to_string(), tenant.cost_centre.clone());
    }
    out
}

/// FNV-1a, 64 bits: a stable hash (std's `DefaultHasher` may change between Rust releases).
pub fn fnv1a64(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str, env: &str) -> PlatformSpec {
        let json = format!(r#"{{"id":"{id}","environment":"{env}","region":"ap-southeast-2"}}"#);
        serde_json::from_str(&json).expect("minimal spec")
    }

    #[test]
    fn names_are_deterministic() {
        let a = Names::new(&spec("payments", "prod"));
        let b = Names::new(&spec("payments", "prod"));
        assert_eq!(a, b);
        assert_eq!(a.bucket(), b.bucket());
        assert_eq!(a.cluster(), "payments-prod");
        assert_eq!(a.role(ROLE_CLUSTER), "tenantry-payments-prod-cluster");
        assert_eq!(
            a.tenant_role("checkout"),
            "tenantry-payments-prod-t-checkout"
        );
        assert_eq!(
            a.kms_alias("cluster"),
            "alias/tenantry/payments-prod/cluster"
        );
        assert_eq!(a.cluster_log_group(), "/aws/eks/payments-prod/cluster");
        assert_eq!(a.nodegroup("critical"), "payments-prod-critical");
        assert!(a.bucket().starts_with("tenantry-payments-prod-"));
        assert_eq!(a.bucket().len(), "tenantry-payments-prod-".len() + 8);
        // Known FNV-1a vector.
        assert_eq!(fnv1a64(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn bucket_differs_by_region_and_environment() {
        let a = Names::new(&spec("payments", "prod")).bucket();
        let b = Names::new(&spec("payments", "dev")).bucket();
        let mut other = spec("payments", "prod");
        other.region = "eu-west-1".into();
        let c = Names::new(&other).bucket();
        assert_ne!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn longest_inputs_fit_every_aws_limit() {
        let id = "p".repeat(MAX_PLATFORM_ID_LEN);
        let env = "e".repeat(MAX_ENVIRONMENT_LEN);
        let names = Names::new(&spec(&id, &env));
        let tenant = "t".repeat(MAX_TENANT_NAME_LEN);
        let group = "g".repeat(MAX_NODEGROUP_NAME_LEN);
        assert!(names.cluster().len() <= EKS_CLUSTER_NAME_LIMIT);
        for purpose in ROLE_PURPOSES {
            assert!(
                names.role(purpose).len() <= IAM_ROLE_NAME_LIMIT,
                "{purpose}"
            );
        }
        assert_eq!(names.tenant_role(&tenant).len(), IAM_ROLE_NAME_LIMIT);
        assert_eq!(names.nodegroup(&group).len(), EKS_NODEGROUP_NAME_LIMIT);
        assert!(names.launch_template(&group).len() <= LAUNCH_TEMPLATE_NAME_LIMIT);
        assert!(names.bucket().len() <= S3_BUCKET_NAME_LIMIT);
        assert!(names.tenant_kms_alias(&tenant).len() <= KMS_ALIAS_LIMIT);
        assert!(names.cluster_log_group().len() <= LOG_GROUP_NAME_LIMIT);
        assert!(names.sns_topic().len() <= SNS_TOPIC_NAME_LIMIT);
        assert!(tenant.len() <= K8S_NAMESPACE_LIMIT);
        assert_eq!(MAX_TENANT_NAME_LEN, 23);
        assert_eq!(MAX_NODEGROUP_NAME_LEN, 33);
    }

    #[test]
    fn tenantry_tags_win_over_cost_tags() {
        let mut s = spec("payments", "prod");
        s.tags.insert("cost-center".into(), "cc-1".into());
        s.tags.insert(TAG_PLATFORM.into(), "spoofed".into());
        let tenant: TenantSpec =
            serde_json::from_str(r#"{"name":"checkout","costCentre":"cc-42"}"#).expect("tenant");
        let tags = tags(&s, Some(&tenant), "tenants");
        assert_eq!(tags["cost-center"], "cc-1");
        assert_eq!(tags[TAG_PLATFORM], "payments");
        assert_eq!(tags[TAG_TENANT], "checkout");
        assert_eq!(tags[TAG_COMPONENT], "tenants");
        assert_eq!(tags[TAG_ENVIRONMENT], s.environment);
        assert_eq!(tags[TAG_COST_CENTRE], "cc-42");
        let platform_tags = super::tags(&s, None, "network");
        assert!(!platform_tags.contains_key(TAG_TENANT));
    }
}
