//! The platform's controllers that bootstrap installs beside cluster-autoscaler, each when its
//! service role is enabled: the AWS Load Balancer Controller ([`super::alb_controller`]),
//! external-dns ([`super::external_dns`]) and the External Secrets Operator
//! ([`super::external_secrets`]).
//!
//! Each runs under the IAM role the identity phase made for its service account: under IRSA
//! the ServiceAccount carries the role's ARN; under Pod Identity the addons phase associates
//! the same service account with the role (`enabled_service_accounts`), so the manifests carry
//! no annotation. Controllers with admission webhooks get their serving certificate from
//! Tenantry ([`super::webhook_tls`]).

use std::collections::BTreeMap;

use serde_json::Value;

use super::alb_controller::{self, ALB_WEBHOOK};
use super::external_secrets::{self, EXTERNAL_SECRETS_WEBHOOK};
use super::webhook_tls::{WebhookService, WebhookTls};
use crate::naming;
use crate::spec::PlatformSpec;

/// Whether any controller of this module is enabled.
pub fn has_controllers(spec: &PlatformSpec) -> bool {
    let roles = &spec.identity.service_roles;
    roles.alb_controller.enabled || roles.external_dns.enabled || roles.external_secrets.enabled
}

/// The webhooks of the enabled controllers, whose certificates bootstrap makes or reuses.
pub fn controller_webhooks(spec: &PlatformSpec) -> Vec<WebhookService> {
    let roles = &spec.identity.service_roles;
    let mut out = Vec::new();
    if roles.alb_controller.enabled {
        out.push(ALB_WEBHOOK);
    }
    if roles.external_secrets.enabled {
        out.push(EXTERNAL_SECRETS_WEBHOOK);
    }
    out
}

/// The installed controllers and their versions (for `tenantry status`), in install order.
pub fn controller_versions(spec: &PlatformSpec) -> Vec<(&'static str, String)> {
    let roles = &spec.identity.service_roles;
    let mut out = Vec::new();
    if roles.cluster_autoscaler.enabled {
        let image = super::autoscaler_image(spec);
        let version = image.rsplit_once(':').map_or("", |(_, v)| v);
        let version = version.split('@').next().unwrap_or_default().to_owned();
        out.push((naming::ROLE_CLUSTER_AUTOSCALER, version));
    }
    if roles.alb_controller.enabled {
        out.push((
            naming::ROLE_ALB_CONTROLLER,
            alb_controller::ALB_CONTROLLER_VERSION.to_owned(),
        ));
    }
    if roles.external_dns.enabled {
        out.push((
            naming::ROLE_EXTERNAL_DNS,
            super::external_dns::EXTERNAL_DNS_VERSION.to_owned(),
        ));
    }
    if roles.external_secrets.enabled {
        out.push((
            naming::ROLE_EXTERNAL_SECRETS,
            external_secrets::EXTERNAL_SECRETS_VERSION.to_owned(),
        ));
    }
    out
}

/// The enabled controllers' objects, in apply order.
///
/// `irsa_roles` maps a role purpose (`naming::ROLE_*`) to its ARN under IRSA (empty under Pod
/// Identity); `vpc_id` is the platform's VPC; `certs` maps a webhook's Secret name to its
/// certificate pair (a missing one renders the placeholder: plan and delete need names only).
pub fn controller_manifests(
    spec: &PlatformSpec,
    irsa_roles: &BTreeMap<String, String>,
    vpc_id: &str,
    certs: &BTreeMap<String, WebhookTls>,
) -> Vec<Value> {
    let roles = &spec.identity.service_roles;
    let tls = |w: &WebhookService| {
        certs
            .get(w.secret)
            .cloned()
            .unwrap_or_else(WebhookTls::placeholder)
    };
    let mut out = Vec::new();
    if roles.alb_controller.enabled {
        out.extend(alb_controller::alb_controller_manifests(
            spec,
            irsa_roles
                .get(naming::ROLE_ALB_CONTROLLER)
                .map(String::as_str),
            vpc_id,
            &tls(&ALB_WEBHOOK),
        ));
    }
    if roles.external_dns.enabled {
        out.extend(super::external_dns::external_dns_manifests(
            spec,
            irsa_roles
                .get(naming::ROLE_EXTERNAL_DNS)
                .map(String::as_str),
        ));
    }
    if roles.external_secrets.enabled {
        out.extend(external_secrets::external_secrets_manifests(
            spec,
            irsa_roles
                .get(naming::ROLE_EXTERNAL_SECRETS)
                .map(String::as_str),
            &tls(&EXTERNAL_SECRETS_WEBHOOK),
        ));
    }
    out
}
