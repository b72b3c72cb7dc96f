//! The one vocabulary of resource kinds: `<service>:<type>`, the same in the plan, the inventory,
//! `tenantry status`, the result events, the decommission census and drift reports.
//!
//! [`KINDS`] is the table every other part reads: adding a kind is one line of `catalogue!`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Declares [`Kind`] and [`KINDS`] from one table, so that a kind cannot exist without its row.
macro_rules! catalogue {
    ($($(#[$doc:meta])* $kind:ident => $id:literal, $k8s:expr, $description:literal;)*) => {
        /// A kind of resource Tenantry manages, in AWS or in a cluster.
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
            JsonSchema,
        )]
        pub enum Kind {
            $($(#[$doc])* #[serde(rename = $id)] $kind,)*
        }

        /// Every kind, in the order of the variants.
        pub const KINDS: &[KindInfo] = &[
            $(KindInfo { kind: Kind::$kind, id: $id, k8s_kind: $k8s, description: $description },)*
        ];

        impl Kind {
            /// `<service>:<type>`, e.g. `ec2:vpc`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Kind::$kind => $id,)*
                }
            }
        }
    };
}

/// What the catalogue says of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindInfo {
    pub kind: Kind,
    /// The id, `<service>:<type>`.
    pub id: &'static str,
    /// The `kind` of a Kubernetes object, for `k8s:` kinds.
    pub k8s_kind: Option<&'static str>,
    /// What it is, for `--help` and documentation.
    pub description: &'static str,
}

catalogue! {
    Vpc => "ec2:vpc", None, "the platform's VPC";
    VpcCidrBlock => "ec2:vpc-cidr-block-association", None, "the VPC's secondary CIDR block for pods";
    InternetGateway => "ec2:internet-gateway", None, "the VPC's internet gateway";
    Subnet => "ec2:subnet", None, "a public, private or pod subnet";
    ElasticIp => "ec2:eip", None, "the Elastic IP of a NAT gateway";
    NatGateway => "ec2:nat-gateway", None, "a NAT gateway";
    RouteTable => "ec2:route-table", None, "a route table, with its default route and subnet associations";
    SecurityGroup => "ec2:security-group", None, "a security group";
    VpcEndpoint => "ec2:vpc-endpoint", None, "a gateway or interface VPC endpoint";
    FlowLog => "ec2:flow-log", None, "the VPC flow log";
    LaunchTemplate => "ec2:launch-template", None, "a node group's launch template";
    LogGroup => "logs:log-group", None, "a KMS-encrypted CloudWatch Logs group";
    Alarm => "cloudwatch:alarm", None, "a CloudWatch alarm";
    Topic => "sns:topic", None, "the alarms' SNS topic";
    Secret => "secretsmanager:secret", None, "the platform configuration secret";
    Bucket => "s3:bucket", None, "the tenant-data bucket";
    Repository => "ecr:repository", None, "a container image repository of the platform or a tenant";
    KmsKey => "kms:key", None, "a KMS key";
    KmsAlias => "kms:alias", None, "a KMS alias";
    /// Bookkeeping, not a resource: written just before `CreateKey`, removed once the alias
    /// exists, so that a crash in between is found again (see `phases::encryption`).
    KmsKeyPending => "tenantry:kms-key-pending", None, "a key creation in progress (bookkeeping)";
    IamRole => "iam:role", None, "an IAM role with its policies";
    OidcProvider => "iam:oidc-provider", None, "the cluster's IAM OIDC provider (IRSA)";
    Cluster => "eks:cluster", None, "the EKS cluster";
    Nodegroup => "eks:nodegroup", None, "a managed node group";
    Addon => "eks:addon", None, "an EKS managed add-on";
    FargateProfile => "eks:fargate-profile", None, "a Fargate profile: pods it selects ctx on Fargate, in the private subnets";
    PodIdentityAssociation => "eks:pod-identity-association", None, "an EKS Pod Identity association";
    /// An administrator's entry: the entry and its cluster-wide admin policy association.
    AccessEntry => "eks:access-entry", None, "an EKS access entry, with its cluster-wide access policy";
    /// A tenant owner's access entry (one per principal, however many tenants it owns): its
    /// Kubernetes groups bind it to the owners' Role in each namespace it owns.
    TenantOwnerEntry => "eks:tenant-owner-entry", None, "a tenant owner's access entry (Kubernetes groups of its namespaces)";
    IdentityProviderConfig => "eks:identity-provider-config", None, "an OIDC identity provider of the cluster";
    Namespace => "k8s:namespace", Some("Namespace"), "a namespace";
    NetworkPolicy => "k8s:network-policy", Some("NetworkPolicy"), "a NetworkPolicy";
    ResourceQuota => "k8s:resource-quota", Some("ResourceQuota"), "a ResourceQuota";
    LimitRange => "k8s:limit-range", Some("LimitRange"), "a LimitRange";
    ServiceAccount => "k8s:service-account", Some("ServiceAccount"), "a ServiceAccount";
    ConfigMap => "k8s:config-map", Some("ConfigMap"), "a ConfigMap";
    Deployment => "k8s:deployment", Some("Deployment"), "a Deployment";
    PriorityClass => "k8s:priority-class", Some("PriorityClass"), "a PriorityClass";
    StorageClass => "k8s:storage-class", Some("StorageClass"), "a StorageClass";
    SecurityGroupPolicy => "k8s:security-group-policy", Some("SecurityGroupPolicy"), "a SecurityGroupPolicy: the pod security group of a Fargate tenant's pods";
    EniConfig => "k8s:eni-config", Some("ENIConfig"), "a VPC CNI ENIConfig: one AZ's pod subnet and security group (custom networking)";
    Role => "k8s:role", Some("Role"), "a namespaced RBAC Role";
    RoleBinding => "k8s:role-binding", Some("RoleBinding"), "a RoleBinding";
    ClusterRole => "k8s:cluster-role", Some("ClusterRole"), "a ClusterRole";
    ClusterRoleBinding => "k8s:cluster-role-binding", Some("ClusterRoleBinding"), "a ClusterRoleBinding";
    /// A CustomResourceDefinition Tenantry installs (Calico's, from its vendored manifests).
    CustomResourceDefinition => "k8s:custom-resource-definition", Some("CustomResourceDefinition"), "a CustomResourceDefinition (Calico's, the controllers')";
    /// The Tigera operator's `Installation` (`operator.tigera.io/v1`), with `cni: calico`.
    Installation => "k8s:installation", Some("Installation"), "the Tigera operator's Installation: Calico CNI and IPAM, its IP pool on the pod CIDR (cni calico)";
    /// A controller's Service (its admission webhook's, its metrics').
    Service => "k8s:service", Some("Service"), "a Service (a controller's webhook)";
    /// A Kubernetes Secret: a controller webhook's serving certificate, made by Tenantry.
    KubernetesSecret => "k8s:secret", Some("Secret"), "a Kubernetes Secret (a controller webhook's serving certificate and CA)";
    MutatingWebhookConfiguration => "k8s:mutating-webhook-configuration", Some("MutatingWebhookConfiguration"), "a controller's mutating admission webhooks";
    ValidatingWebhookConfiguration => "k8s:validating-webhook-configuration", Some("ValidatingWebhookConfiguration"), "a controller's validating admission webhooks";
    ValidatingAdmissionPolicy => "k8s:validating-admission-policy", Some("ValidatingAdmissionPolicy"), "an admission policy the API server evaluates (CEL): a LoadBalancer Service must carry the AWS Load Balancer Controller's class";
    ValidatingAdmissionPolicyBinding => "k8s:validating-admission-policy-binding", Some("ValidatingAdmissionPolicyBinding"), "the binding that puts an admission policy in force (deny, every namespace)";
    IngressClass => "k8s:ingress-class", Some("IngressClass"), "an IngressClass (the AWS Load Balancer Controller's alb)";
}

impl Kind {
    /// The catalogue's row for this kind.
    pub fn info(self) -> &'static KindInfo {
        // KINDS lists the variants in order.
        &KINDS[self as usize]
    }

    /// The kind of an id, e.g. `ec2:vpc`.
    pub fn parse(id: &str) -> Option<Kind> {
        KINDS.iter().find(|i| i.id == id).map(|i| i.kind)
    }

    /// The kind of a Kubernetes object, from its `kind` (`NetworkPolicy`...).
    pub fn of_k8s(k8s_kind: &str) -> Option<Kind> {
        KINDS
            .iter()
            .find(|i| i.k8s_kind == Some(k8s_kind))
            .map(|i| i.kind)
    }

    /// Whether records of this kind are real resources (the plan lists them, the census counts
    /// them) rather than bookkeeping.
    pub fn is_resource(self) -> bool {
        self != Kind::KmsKeyPending
    }
}

impl From<Kind> for String {
    fn from(kind: Kind) -> String {
        kind.as_str().to_owned()
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Kind, String> {
        Kind::parse(s).ok_or_else(|| format!("unknown resource kind {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_row_and_its_serde_name_is_its_id() {
        for (i, info) in KINDS.iter().enumerate() {
            assert_eq!(
                serde_json::to_value(info.kind).unwrap(),
                serde_json::json!(info.id),
                "{info:?}"
            );
            assert_eq!(Kind::parse(info.id), Some(info.kind));
            assert_eq!(info.kind as usize, i, "KINDS is in variant order");
            assert_eq!(info.kind.info().id, info.id);
            assert!(
                KINDS[..i]
                    .iter()
                    .all(|o| o.kind != info.kind && o.id != info.id),
                "{} is listed twice",
                info.id
            );
            let (service, rest) = info.id.split_once(':').expect("service:type");
            assert!(!service.is_empty() && !rest.is_empty() && !rest.contains(':'));
            assert_eq!(info.k8s_kind.is_some(), service == "k8s", "{}", info.id);
        }
    }

    #[test]
    fn kubernetes_kinds_map_both_ways() {
        assert_eq!(Kind::of_k8s("NetworkPolicy"), Some(Kind::NetworkPolicy));
        assert_eq!(
            Kind::of_k8s("ClusterRoleBinding"),
            Some(Kind::ClusterRoleBinding)
        );
        assert_eq!(Kind::of_k8s("Pod"), None);
        assert_eq!("k8s:deployment".parse::<Kind>(), Ok(Kind::Deployment));
        assert!("vpc".parse::<Kind>().is_err());
    }
}
