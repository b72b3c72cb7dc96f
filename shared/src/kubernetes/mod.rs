//! The Kubernetes side of a platform: connecting to its cluster, and what Tenantry puts in it.
//!
//! - [`connect`] builds a `kube::Client` for a cluster endpoint: for Amazon EKS (`https`) it
//!   trusts exactly the cluster's CA and authenticates with an EKS bearer token
//!   ([`eks_token`], a presigned STS `GetCallerIdentity` URL); for the local stack's API double
//!   (`http`) it uses plain HTTP and no token. [`connect_read_only`] is the same client with a
//!   layer that refuses every request but `GET`/`HEAD` before it is sent ([`WriteRefused`],
//!   a terminal error): `observe`'s.
//! - [`bootstrap_manifests`] and [`access_manifests`] render the objects (pure functions of the
//!   spec, typed with k8s-openapi, returned as JSON with `apiVersion`/`kind`): Pod Security
//!   labels on the system namespaces, PriorityClasses, cluster-autoscaler, OIDC group bindings.
//!   [`eni_config_manifests`] renders VPC CNI custom networking's `ENIConfig`s (one per AZ);
//!   [`calico_manifests`] Calico's operator (vendored upstream manifests) and `Installation`.
//!   Every rendered manifest is checked against the Kubernetes OpenAPI schemas of the spec's
//!   version by `kubernetes-validate --strict` (`shared/tests/manifests.rs`).
//! - [`controller_manifests`] renders the platform's controllers beside the autoscaler (the AWS
//!   Load Balancer Controller, external-dns, the External Secrets Operator), whose webhooks get
//!   serving certificates from [`webhook_tls`].
//! - [`apply`] server-side applies a manifest (field manager `tenantry`, forced) and reports
//!   whether it wrote anything (an unchanged object costs a read, no write); [`get`] and
//!   [`delete`] read and remove the object a manifest names. Kubernetes API errors map to the
//!   error contract: 409 Conflict, 429/5xx/connection Retryable, other 4xx Terminal.

mod access;
mod alb_controller;
mod apply;
mod autoscaler;
mod calico;
mod client;
mod controllers;
mod eni_config;
mod external_dns;
mod external_secrets;
mod fargate_logging;
mod load_balancer_class;
mod manifests;
pub mod reach;
mod tenant;
mod token;
pub mod webhook_tls;

pub use access::{access_manifests, group_binding_name, oidc_group, GROUP_BINDING_PREFIX};
pub use alb_controller::{
    alb_controller_args, alb_controller_image, alb_controller_manifests, alb_vendored_objects,
    ALB_CONTROLLER_VERSION, ALB_NAME, ALB_NAMESPACE, ALB_WEBHOOK, ALB_WEBHOOK_CONFIGURATION,
};
pub use apply::{
    apply, apply_all, apply_unread, contains, deletable, delete, delete_all, digest, get,
    is_applied, resource_of, KindInfo, DIGEST_ANNOTATION, FIELD_MANAGER,
};
pub use autoscaler::{
    asg_regex, autoscaler_args, autoscaler_image, autoscaler_manifests, priorities_yaml,
    AUTOSCALER_NAME, AUTOSCALER_NAMESPACE, IRSA_ANNOTATION, PRIORITY_EXPANDER_CONFIGMAP,
};
pub use calico::{
    calico_manifests, installation, is_calico_object, vendored_objects, Installation,
    CALICO_MAX_PODS, CALICO_VERSION, INSTALLATION_NAME, IP_POOL_NAME, OPERATOR_NAMESPACE,
    OPERATOR_VERSION,
};
pub use client::{ca_certificates, connect, connect_read_only, WriteRefused};
pub use controllers::{
    controller_manifests, controller_versions, controller_webhooks, has_controllers,
};
pub use eni_config::{
    custom_networking_env, eni_config_manifests, EniConfig, EniConfigSpec, PodSubnet,
    CUSTOM_NETWORK_ENV, ENI_CONFIG_LABEL, LABEL_DEF_ENV,
};
pub use external_dns::{
    external_dns_args, external_dns_image, external_dns_manifests, EXTERNAL_DNS_NAMESPACE,
    EXTERNAL_DNS_VERSION,
};
pub use external_secrets::{
    external_secrets_args, external_secrets_cluster_role_rules, external_secrets_image,
    external_secrets_manifests, external_secrets_vendored_objects, external_secrets_webhook_args,
    EXTERNAL_SECRETS_NAME, EXTERNAL_SECRETS_NAMESPACE, EXTERNAL_SECRETS_VERSION,
    EXTERNAL_SECRETS_WEBHOOK, EXTERNAL_SECRETS_WEBHOOK_CONFIGURATIONS,
    EXTERNAL_SECRETS_WEBHOOK_NAME,
};
pub use fargate_logging::{
    fargate_logging_manifests, FARGATE_LOGGING_CONFIG_MAP, FARGATE_LOGGING_NAMESPACE,
};
/// The client type [`connect`] returns (re-exported so callers need no `kube` dependency).
pub use kube::Client;
pub use load_balancer_class::{
    load_balancer_class_manifests, LOAD_BALANCER_CLASS, LOAD_BALANCER_CLASS_POLICY,
};
pub use manifests::{
    bootstrap_manifests, common_labels, has_ebs_csi, namespace_manifests, pod_security_labels,
    priority_class_manifests, storage_manifests, DEFAULT_STORAGE_CLASS, LABEL_MANAGED_BY,
    LABEL_PLATFORM, MANAGED_BY, PRIORITY_BATCH, PRIORITY_PLATFORM_CRITICAL,
    PRIORITY_TENANT_DEFAULT, PRIORITY_TENANT_HIGH, SYSTEM_NAMESPACES,
};
pub use tenant::{
    foreign_namespace, owner_group, peer_of, security_group_policy, tenant_manifests, OWNER_ROLE,
    PEER_LABEL, TENANT_LABEL, TENANT_NETWORK_POLICIES,
};
pub use token::{eks_token, sts_endpoint, TOKEN_PREFIX};
