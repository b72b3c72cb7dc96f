//! The control catalogue: every control once, with what it checks, why, how to repair it, and
//! where it sits in PCI DSS v4.0.1, the CIS Amazon EKS Benchmark v1.8.0, AWS Security Hub and
//! Prowler. The checks themselves live in [`super::checks`], one module per area.

use super::checks::{self, Verdict};
use super::live::Live;
use super::report::Severity;

/// Where a control sits in the catalogues auditors and scanners use.
#[derive(Debug, Clone, Copy)]
pub struct Mappings {
    /// PCI DSS v4.0.1 requirement ids.
    pub pci: &'static [&'static str],
    /// CIS Amazon EKS Benchmark v1.8.0 recommendation ids.
    pub cis: &'static [&'static str],
    /// AWS Security Hub control ids.
    pub security_hub: &'static [&'static str],
    /// The equivalent Prowler check, if there is one.
    pub prowler: Option<&'static str>,
}

/// One control.
#[derive(Debug, Clone, Copy)]
pub struct Control {
    /// `TNY-<AREA>-<n>`: stable, never reused.
    pub id: &'static str,
    pub area: &'static str,
    pub title: &'static str,
    pub severity: Severity,
    pub rationale: &'static str,
    pub remediation: &'static str,
    pub mappings: Mappings,
    /// Judges the live state: one verdict per resource it looks at.
    pub check: fn(&Live) -> Vec<Verdict>,
}

/// Declares [`CONTROLS`]: one block per control, in report order.
macro_rules! controls {
    ($($id:literal $area:literal $sev:ident $check:path {
        title: $title:literal,
        rationale: $why:literal,
        remediation: $fix:literal,
        pci: [$($pci:literal),*], cis: [$($cis:literal),*], hub: [$($hub:literal),*],
        prowler: $prowler:expr $(,)?
    })*) => {
        /// Every control, in report order.
        pub const CONTROLS: &[Control] = &[$(Control {
            id: $id,
            area: $area,
            title: $title,
            severity: Severity::$sev,
            rationale: $why,
            remediation: $fix,
            mappings: Mappings {
                pci: &[$($pci),*],
                cis: &[$($cis),*],
                security_hub: &[$($hub),*],
                prowler: $prowler,
            },
            check: $check,
        },)*];
    };
}

controls! {
    "TNY-EKS-1" "cluster" High checks::cluster::endpoint_not_open {
        title: "The cluster endpoint is not open to the internet",
        rationale: "A public API endpoint reachable from any address exposes the control plane to credential stuffing and to every future API server vulnerability.",
        remediation: "Turn the public endpoint off, or list only the CIDRs that need it in endpointAccess.publicCidrs; then run an update.",
        pci: ["1.3.1", "1.4.1"], cis: ["5.4.1", "5.4.2"], hub: ["EKS.1"],
        prowler: Some("eks_cluster_not_publicly_accessible"),
    }
    "TNY-EKS-2" "cluster" Medium checks::cluster::private_endpoint {
        title: "The cluster's private endpoint is on",
        rationale: "With the private endpoint on, nodes and in-VPC tools reach the API server without leaving the VPC.",
        remediation: "Set endpointAccess.private to true and run an update.",
        pci: ["1.4.1"], cis: ["5.4.2"], hub: [],
        prowler: None,
    }
    "TNY-EKS-3" "cluster" High checks::cluster::supported_version {
        title: "The Kubernetes version is in standard support",
        rationale: "Versions out of standard support stop receiving patches at the normal cadence; PCI asks for known vulnerabilities to be patched.",
        remediation: "Upgrade kubernetesVersion to a version EKS lists in standard support (DescribeClusterVersions) and run an update.",
        pci: ["6.3.3"], cis: [], hub: ["EKS.2"],
        prowler: Some("eks_cluster_uses_a_supported_version"),
    }
    "TNY-EKS-4" "cluster" High checks::cluster::secrets_encrypted {
        title: "Kubernetes secrets are encrypted with a customer-managed KMS key",
        rationale: "Envelope encryption keeps secrets unreadable in etcd backups and lets the key's policy and logs govern every decryption.",
        remediation: "Re-provision the cluster with encryption of secrets under the platform's KMS key (EKS cannot remove it once set, only add it).",
        pci: ["3.5.1", "3.6.1"], cis: ["5.3.1"], hub: ["EKS.3"],
        prowler: Some("eks_cluster_kms_cmk_encryption_in_secrets_enabled"),
    }
    "TNY-EKS-5" "cluster" Medium checks::cluster::all_log_types {
        title: "Every control-plane log type is enabled",
        rationale: "The API, audit, authenticator, controller-manager and scheduler logs are the record of who did what to the cluster.",
        remediation: "List api, audit, authenticator, controllerManager and scheduler in logging.types and run an update.",
        pci: ["10.2.1", "10.2.2"], cis: ["2.1.1"], hub: ["EKS.8"],
        prowler: Some("eks_control_plane_logging_all_types_enabled"),
    }
    "TNY-EKS-6" "cluster" Medium checks::cluster::deletion_protection {
        title: "The cluster has deletion protection",
        rationale: "A cluster deleted by mistake or by a stolen credential takes every tenant's workloads with it.",
        remediation: "Run an update: Tenantry turns deletion protection on (decommission turns it off first).",
        pci: [], cis: [], hub: [],
        prowler: Some("eks_cluster_deletion_protection_enabled"),
    }
    "TNY-EKS-7" "cluster" Medium checks::cluster::api_authentication {
        title: "Cluster access is managed through the EKS access entry API only",
        rationale: "The aws-auth ConfigMap can be edited by anyone with write access to kube-system and leaves no IAM trail; access entries are IAM-governed and logged.",
        remediation: "Set the cluster's authentication mode to API (it cannot go back to CONFIG_MAP).",
        pci: ["7.2.1", "8.2.1"], cis: ["5.5.1"], hub: [],
        prowler: None,
    }
    "TNY-EKS-8" "cluster" Critical checks::cluster::no_unnamed_admins {
        title: "No principal the request does not name holds cluster admin",
        rationale: "An admin access entry nobody asked for is a standing backdoor into every tenant's namespace and secrets.",
        remediation: "Delete the access entry, or disassociate its admin policy; add the principal to access.adminPrincipals if it should be an admin.",
        pci: ["7.2.1", "7.2.2"], cis: ["4.1.1"], hub: [],
        prowler: None,
    }
    "TNY-EKS-9" "cluster" Low checks::cluster::tagged {
        title: "The cluster carries the platform's tags",
        rationale: "Tags tie the cluster to its platform and owner for inventory, cost and incident response.",
        remediation: "Run an update: Tenantry tags the cluster.",
        pci: ["12.5.1"], cis: [], hub: ["EKS.6"],
        prowler: None,
    }
    "TNY-NODE-1" "nodes" High checks::nodes::private_subnets {
        title: "Nodes run in private subnets only",
        rationale: "A node with a public address can be reached from the internet around every network control in front of the cluster.",
        remediation: "Place node groups in the platform's private subnets (Tenantry does; a node group moved out of band must be recreated).",
        pci: ["1.3.1", "1.4.4"], cis: ["5.4.3"], hub: [],
        prowler: Some("eks_cluster_private_nodes_enabled"),
    }
    "TNY-NODE-2" "nodes" High checks::nodes::imdsv2 {
        title: "Node launch templates require IMDSv2",
        rationale: "IMDSv1 answers plain GETs, so a server-side request forgery in any pod can read the node role's credentials.",
        remediation: "Run an update: Tenantry writes a new launch template version with HttpTokens required and rolls the nodes.",
        pci: ["2.2.6"], cis: [], hub: ["EC2.170"],
        prowler: Some("ec2_launch_template_imdsv2_required"),
    }
    "TNY-NODE-3" "nodes" High checks::nodes::hop_limit {
        title: "The metadata hop limit is 1",
        rationale: "With a hop limit above 1, containers can reach the instance metadata service and take the node role's credentials.",
        remediation: "Run an update: Tenantry sets the hop limit to 1 in a new launch template version.",
        pci: ["7.2.1", "2.2.6"], cis: [], hub: [],
        prowler: None,
    }
    "TNY-NODE-4" "nodes" Medium checks::nodes::bottlerocket {
        title: "Nodes run Bottlerocket",
        rationale: "Bottlerocket is a minimal, read-only, SELinux-enforcing OS built to run containers only.",
        remediation: "Set the node group's amiFamily to bottlerocket and run an update.",
        pci: ["2.2.1", "2.2.4"], cis: [], hub: [],
        prowler: None,
    }
    "TNY-NODE-5" "nodes" High checks::nodes::encrypted_volumes {
        title: "Node volumes are encrypted",
        rationale: "Node volumes hold container images, logs and emptyDir data that may carry cardholder data.",
        remediation: "Run an update: Tenantry writes launch templates with encrypted volumes.",
        pci: ["3.5.1"], cis: [], hub: ["EC2.3"],
        prowler: None,
    }
    "TNY-NODE-6" "nodes" High checks::nodes::no_ssh_key {
        title: "No SSH key is set on nodes",
        rationale: "An SSH key is a standing credential into every node, outside IAM and the cluster's audit log.",
        remediation: "Remove the key from the launch template (Tenantry never sets one) and the node group's remote access; recreate the node group if needed.",
        pci: ["2.2.6", "8.2.2"], cis: [], hub: [],
        prowler: None,
    }
    "TNY-NET-1" "network" Medium checks::network::flow_logs {
        title: "VPC flow logs capture all traffic",
        rationale: "Flow logs are the record of which addresses talked to the platform's network.",
        remediation: "Enable network.flowLogs and run an update.",
        pci: ["10.2.1"], cis: [], hub: ["EC2.6"],
        prowler: Some("vpc_flow_logs_enabled"),
    }
    "TNY-NET-2" "network" Medium checks::network::endpoint_policies {
        title: "VPC endpoint policies limit access to the account",
        rationale: "The default endpoint policy lets the VPC reach any account's resources through the endpoint, which opens a path for exfiltration.",
        remediation: "Run an update: Tenantry writes an endpoint policy limited to the platform's account.",
        pci: ["1.3.2"], cis: [], hub: [],
        prowler: Some("vpc_endpoint_connections_trust_boundaries"),
    }
    "TNY-NET-3" "network" High checks::network::no_open_ingress {
        title: "No security group allows ingress from the whole internet",
        rationale: "A rule from 0.0.0.0/0 or ::/0 bypasses the platform's network boundary.",
        remediation: "Remove the rule; allow only the CIDRs or security groups that need the port.",
        pci: ["1.3.1", "1.4.2"], cis: [], hub: ["EC2.18", "EC2.53"],
        prowler: Some("ec2_securitygroup_allow_ingress_from_internet_to_all_ports"),
    }
    "TNY-NET-4" "network" High checks::network::cni_enforces_policy {
        title: "The CNI enforces NetworkPolicies",
        rationale: "Without an enforcing CNI, NetworkPolicy objects are accepted and ignored: tenants share one flat network. Scanners that only look for a cluster security group miss this.",
        remediation: "Run an update: Tenantry sets enableNetworkPolicy on the VPC CNI add-on.",
        pci: ["1.3.1", "1.4.1"], cis: ["4.3.1", "5.4.4"], hub: [],
        prowler: Some("eks_cluster_network_policy_enabled"),
    }
    "TNY-NET-5" "network" High checks::network::tenant_default_deny {
        title: "Every tenant namespace has a default-deny NetworkPolicy",
        rationale: "Default deny makes every flow into or out of a tenant's pods an explicit, reviewable allowance.",
        remediation: "Run a drift check with remediation, or re-onboard the tenant: Tenantry applies default-deny first.",
        pci: ["1.3.1", "1.3.2"], cis: ["4.3.2"], hub: [],
        prowler: None,
    }
    "TNY-NET-6" "network" Medium checks::network::no_public_ip_on_private_subnets {
        title: "Private and pod subnets do not assign public addresses",
        rationale: "A subnet that maps public IPs turns every instance launched in it into an internet-facing host.",
        remediation: "Turn off MapPublicIpOnLaunch on the subnet (Tenantry creates private subnets without it).",
        pci: ["1.4.4"], cis: [], hub: ["EC2.15"],
        prowler: Some("vpc_subnet_no_public_ip_by_default"),
    }
    "TNY-KMS-1" "keys" Medium checks::keys::rotation {
        title: "Every KMS key rotates yearly",
        rationale: "Rotation limits how much data one key version protects and is PCI's cryptoperiod control.",
        remediation: "Enable automatic rotation on the key (Tenantry does at creation; a drift check with remediation restores it).",
        pci: ["3.6.1", "3.7.4"], cis: [], hub: ["KMS.4"],
        prowler: Some("kms_cmk_rotation_enabled"),
    }
    "TNY-KMS-2" "keys" High checks::keys::service_grants_are_guarded {
        title: "Key policy grants to AWS services carry confused-deputy conditions",
        rationale: "A grant to a service principal without aws:SourceAccount or aws:SourceArn lets another account's use of that service reach the key.",
        remediation: "Run an update: Tenantry writes key policies whose service statements name the account and source ARN.",
        pci: ["3.6.1", "7.2.1"], cis: [], hub: [],
        prowler: None,
    }
    "TNY-KMS-3" "keys" Critical checks::keys::not_public {
        title: "No key policy grants access to everyone",
        rationale: "A key policy statement for principal * without a limiting condition makes the key usable by any AWS account.",
        remediation: "Remove the statement; grant named principals only.",
        pci: ["3.6.1"], cis: [], hub: ["KMS.5"],
        prowler: Some("kms_key_not_publicly_accessible"),
    }
    "TNY-KMS-4" "keys" High checks::keys::enabled {
        title: "The platform's keys are enabled, not pending deletion",
        rationale: "A key pending deletion will make every secret, log and object it protects unreadable when the wait ends.",
        remediation: "Cancel the key deletion and enable the key.",
        pci: ["3.6.1"], cis: [], hub: ["KMS.3"],
        prowler: Some("kms_cmk_not_deleted_unintentionally"),
    }
    "TNY-LOG-1" "logs" Medium checks::logs::encrypted {
        title: "Every log group is encrypted with the platform's KMS key",
        rationale: "Logs can carry request data; a customer-managed key puts their reading under the key's policy.",
        remediation: "Run an update: Tenantry associates the platform's log key with each log group.",
        pci: ["3.5.1", "10.3.2"], cis: [], hub: [],
        prowler: Some("cloudwatch_log_group_kms_encryption_enabled"),
    }
    "TNY-LOG-2" "logs" Medium checks::logs::retention {
        title: "Logs are kept at least 365 days under PCI",
        rationale: "PCI DSS 10.5.1 asks for twelve months of audit log history.",
        remediation: "Set logging.retentionDays to 365 or more and run an update.",
        pci: ["10.5.1"], cis: [], hub: ["CloudWatch.16"],
        prowler: Some("cloudwatch_log_group_retention_policy_specific_days_enabled"),
    }
    "TNY-IAM-1" "iam" Critical checks::iam::no_admin_policies {
        title: "No platform role has administrator permissions",
        rationale: "A role with AdministratorAccess or an Allow of * on * turns any workload that reaches it into an account takeover.",
        remediation: "Detach the policy or remove the statement; Tenantry's roles carry only their rendered least-privilege policies.",
        pci: ["7.2.1", "7.2.2"], cis: ["5.2.1"], hub: ["IAM.1"],
        prowler: Some("iam_inline_policy_no_administrative_privileges"),
    }
    "TNY-IAM-2" "iam" High checks::iam::irsa_trust_is_exact {
        title: "IRSA roles trust exactly one service account",
        rationale: "A trust on the OIDC provider without an exact sub and aud lets any pod in the cluster assume the role.",
        remediation: "Run an update: Tenantry writes trust policies with StringEquals on sub and aud.",
        pci: ["7.2.2"], cis: ["5.2.1"], hub: [],
        prowler: None,
    }
    "TNY-IAM-3" "iam" High checks::iam::service_trust_is_guarded {
        title: "Service trusts carry aws:SourceAccount",
        rationale: "Without aws:SourceAccount, the service may be made to assume the role on behalf of another account (confused deputy).",
        remediation: "Run an update: Tenantry writes service trusts with aws:SourceAccount.",
        pci: ["7.2.2"], cis: [], hub: [],
        prowler: None,
    }
    "TNY-IAM-4" "iam" High checks::iam::tenant_actions_scoped {
        title: "Tenant roles grant data actions on named resources only",
        rationale: "A tenant role whose data actions allow Resource * can read every other tenant's objects, keys and secrets.",
        remediation: "Run an update or a drift check with remediation: Tenantry renders the tenant policy on the tenant's prefix, key and secrets.",
        pci: ["7.2.1", "7.2.2"], cis: [], hub: [],
        prowler: None,
    }
    "TNY-IAM-5" "iam" Medium checks::iam::boundary {
        title: "Roles carry the deployment's permissions boundary",
        rationale: "The boundary caps what any role Tenantry creates can ever be granted, whatever its policies say.",
        remediation: "Run an update: Tenantry puts the boundary on every role it owns.",
        pci: ["7.2.1"], cis: [], hub: [],
        prowler: None,
    }
    "TNY-IAM-6" "iam" Critical checks::iam::no_principal_trust {
        title: "No platform role trusts an AWS account or principal",
        rationale: "Platform and tenant roles are assumed by AWS services, nodes and pods only; a trust in an AWS account or principal lets someone outside the platform take the role's permissions.",
        remediation: "Run an update or a drift check with remediation: Tenantry rewrites the trust policy.",
        pci: ["7.2.1", "7.2.2", "8.2.2"], cis: ["5.2.1"], hub: [],
        prowler: Some("iam_role_cross_account_readonlyaccess_policy"),
    }
    "TNY-K8S-1" "kubernetes" Critical checks::kubernetes::cluster_admin_bindings {
        title: "cluster-admin is bound only to the groups the request names",
        rationale: "cluster-admin reads every secret and changes every tenant's objects.",
        remediation: "Delete the ClusterRoleBinding, or name the group in access.adminGroups.",
        pci: ["7.2.1", "7.2.2"], cis: ["4.1.1", "4.1.7"], hub: [],
        prowler: None,
    }
    "TNY-K8S-2" "kubernetes" High checks::kubernetes::no_wildcard_rbac {
        title: "No Role or ClusterRole uses wildcards",
        rationale: "A * in verbs, resources or apiGroups grants everything added to the API later too.",
        remediation: "List the verbs, resources and groups the role needs.",
        pci: ["7.2.2"], cis: ["4.1.3"], hub: [],
        prowler: None,
    }
    "TNY-K8S-3" "kubernetes" Medium checks::kubernetes::default_service_accounts {
        title: "Default service accounts do not mount tokens",
        rationale: "Pods that name no service account run as default; a mounted token gives them API access nobody granted on purpose.",
        remediation: "Set automountServiceAccountToken: false on the namespace's default service account (Tenantry does for tenant namespaces and default).",
        pci: ["7.2.5"], cis: ["4.1.5", "4.1.6"], hub: [],
        prowler: None,
    }
    "TNY-K8S-4" "kubernetes" High checks::kubernetes::pod_security_labels {
        title: "Every namespace has a Pod Security enforce label",
        rationale: "Without the label, Pod Security admission enforces nothing in the namespace.",
        remediation: "Run a drift check with remediation: Tenantry labels system and tenant namespaces.",
        pci: ["2.2.1"], cis: ["4.2.1", "4.2.2", "4.2.3", "4.2.4", "4.2.5"], hub: [],
        prowler: None,
    }
    "TNY-K8S-5" "kubernetes" High checks::kubernetes::tenants_restricted {
        title: "Tenant namespaces enforce the restricted Pod Security Standard",
        rationale: "restricted forbids privileged pods, host namespaces, root and privilege escalation: a tenant cannot break out to the node.",
        remediation: "Run a drift check with remediation: Tenantry sets pod-security.kubernetes.io/enforce=restricted on tenant namespaces.",
        pci: ["2.2.1", "7.2.1"], cis: ["4.2.1", "4.2.5", "4.2.6"], hub: [],
        prowler: None,
    }
    "TNY-K8S-6" "kubernetes" Medium checks::kubernetes::default_namespace_unused {
        title: "No workloads run in the default namespace",
        rationale: "default has no tenant boundary: workloads there escape the quotas, policies and owners of a tenant namespace.",
        remediation: "Move the workloads to a tenant namespace.",
        pci: ["2.2.1"], cis: ["4.5.2"], hub: [],
        prowler: None,
    }
    "TNY-K8S-7" "kubernetes" Medium checks::kubernetes::tenant_quotas {
        title: "Every tenant namespace has a ResourceQuota",
        rationale: "Without a quota, one tenant can starve the others of CPU, memory and pods.",
        remediation: "Run a drift check with remediation: Tenantry applies each tenant's quota.",
        pci: ["2.2.1"], cis: ["4.5.1"], hub: [],
        prowler: None,
    }
    "TNY-K8S-8" "kubernetes" High checks::kubernetes::no_escalation_verbs {
        title: "No non-system role grants bind, escalate or impersonate",
        rationale: "These verbs let a subject grant itself or act as any other subject, including cluster-admin.",
        remediation: "Remove the verbs from the role.",
        pci: ["7.2.2"], cis: ["4.1.8"], hub: [],
        prowler: None,
    }
    "TNY-S3-1" "storage" High checks::storage::kms_encryption {
        title: "The tenant-data bucket encrypts with KMS by default",
        rationale: "SSE-KMS puts every object's decryption under the key's policy and CloudTrail.",
        remediation: "Set the bucket's default encryption to aws:kms with the platform's data key.",
        pci: ["3.5.1"], cis: [], hub: ["S3.17"],
        prowler: Some("s3_bucket_kms_encryption"),
    }
    "TNY-S3-2" "storage" Critical checks::storage::public_access_blocked {
        title: "The tenant-data bucket blocks all public access",
        rationale: "All four public access block settings stop a policy or ACL from ever making tenant data public.",
        remediation: "Turn on all four settings of the bucket's public access block.",
        pci: ["1.4.4"], cis: [], hub: ["S3.8"],
        prowler: Some("s3_bucket_level_public_access_block"),
    }
    "TNY-S3-3" "storage" High checks::storage::tls_only {
        title: "The tenant-data bucket refuses requests without TLS",
        rationale: "A Deny on aws:SecureTransport false keeps tenant data off plain HTTP.",
        remediation: "Run an update: Tenantry writes the bucket policy with the TLS-only statement.",
        pci: ["4.2.1"], cis: [], hub: ["S3.5"],
        prowler: Some("s3_bucket_secure_transport_policy"),
    }
    "TNY-ECR-1" "registry" High checks::registry::scan_on_push {
        title: "Container images are scanned for vulnerabilities on push",
        rationale: "An image with a known vulnerability is found when it is pushed, before a node pulls it.",
        remediation: "Run a drift check with remediation: Tenantry turns scan on push back on.",
        pci: ["6.3.1", "11.3.1"], cis: ["5.1.1"], hub: ["ECR.1"],
        prowler: Some("ecr_repositories_scan_images_on_push_enabled"),
    }
    "TNY-ECR-2" "registry" Medium checks::registry::immutable_tags {
        title: "Image tags are immutable",
        rationale: "A mutable tag can be moved to another image after it was scanned and approved; an immutable one always names the same image.",
        remediation: "Leave `mutableTags` unset in the request and run an update (or a drift check with remediation).",
        pci: ["6.5.1"], cis: [], hub: ["ECR.2"],
        prowler: Some("ecr_repositories_tag_immutability"),
    }
    "TNY-ECR-3" "registry" Low checks::registry::lifecycle_policy {
        title: "A lifecycle policy expires old images",
        rationale: "Old images stop receiving fixes; expiring them keeps unpatched software from being deployed again.",
        remediation: "Run a drift check with remediation: Tenantry puts the lifecycle policy back.",
        pci: ["6.3.3"], cis: [], hub: ["ECR.3"],
        prowler: Some("ecr_repositories_lifecycle_policy_enabled"),
    }
    "TNY-ECR-4" "registry" High checks::registry::kms_key {
        title: "Images are encrypted with a key of the platform or its tenant",
        rationale: "A customer-managed key puts every image pull under the key's policy and CloudTrail, and lets the platform revoke access to its images.",
        remediation: "ECR fixes the key at creation: delete the repository (with its images) and run an update, which creates it with the key.",
        pci: ["3.5.1"], cis: [], hub: ["ECR.5"],
        prowler: None,
    }
}

/// The control with `id`.
pub fn control(id: &str) -> Option<&'static Control> {
    CONTROLS.iter().find(|c| c.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn ids_are_unique_and_the_catalogue_is_large_enough() {
        let ids: BTreeSet<_> = CONTROLS.iter().map(|c| c.id).collect();
        assert_eq!(ids.len(), CONTROLS.len(), "duplicate control id");
        assert!(CONTROLS.len() >= 40, "{} controls", CONTROLS.len());
    }

    #[test]
    fn every_control_is_documented_and_mapped() {
        for c in CONTROLS {
            assert!(c.id.starts_with("TNY-"), "{}", c.id);
            for (what, text) in [
                ("title", c.title),
                ("rationale", c.rationale),
                ("remediation", c.remediation),
            ] {
                assert!(text.len() > 20, "{}: {what} too short", c.id);
            }
            let m = c.mappings;
            assert!(
                !(m.pci.is_empty()
                    && m.cis.is_empty()
                    && m.security_hub.is_empty()
                    && m.prowler.is_none()),
                "{}: maps to nothing",
                c.id
            );
        }
    }
}
