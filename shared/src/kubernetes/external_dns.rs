//! external-dns (`identity.serviceRoles.externalDns`, opt-in), at [`EXTERNAL_DNS_VERSION`].
//!
//! Built after upstream's Helm chart (`kubernetes-sigs/external-dns`, tag `v0.22.0`, commit
//! `994f908d4abdfe5fbf38f2f61613ed570432e43a`, `charts/external-dns/templates/`) with the chart's
//! default sources (`service`, `ingress`) and provider `aws`: its namespace `external-dns`
//! (Pod Security `restricted`), the ServiceAccount its role trusts, the chart's read-only
//! ClusterRole for those sources, and the Deployment. No CRD, no webhook.
//!
//! Tenantry's settings: `--policy=upsert-only` (it never deletes a record it did not make),
//! the `txt` registry owned by the cluster's name (two clusters never fight over a record),
//! and one `--zone-id-filter` per hosted zone of the request, the zones its role may change.

use serde_json::{json, Value};

use super::alb_controller::{hardened_container_security, hardened_pod};
use super::manifests::common_labels;
use crate::naming::Names;
use crate::spec::PlatformSpec;

/// The pinned release.
pub const EXTERNAL_DNS_VERSION: &str = "v0.22.0";
/// Namespace, ServiceAccount and Deployment name (its role trusts `external-dns/external-dns`).
pub const EXTERNAL_DNS_NAMESPACE: &str = "external-dns";
pub const EXTERNAL_DNS_NAME: &str = "external-dns";
const IMAGE: &str = "registry.k8s.io/external-dns/external-dns";
const NAME_LABEL: &str = "app.kubernetes.io/name";

/// The image, by tag, and by digest too when the request names one.
pub fn external_dns_image(spec: &PlatformSpec) -> String {
    let image = format!("{IMAGE}:{EXTERNAL_DNS_VERSION}");
    super::manifests::pinned_image(
        &image,
        spec.identity
            .service_roles
            .external_dns
            .image_digest
            .as_ref(),
    )
}

/// A hosted zone's id, from an id or a hosted zone ARN.
fn zone_id(zone: &str) -> &str {
    zone.rsplit_once("hostedzone/").map_or(zone, |(_, id)| id)
}

/// The arguments: sources, provider, policy, registry and the zones.
pub fn external_dns_args(spec: &PlatformSpec) -> Vec<String> {
    let mut args = vec![
        "--source=service".to_owned(),
        "--source=ingress".to_owned(),
        "--provider=aws".to_owned(),
        "--policy=upsert-only".to_owned(),
        "--registry=txt".to_owned(),
        format!("--txt-owner-id={}", Names::new(spec).cluster()),
    ];
    for zone in &spec.identity.service_roles.external_dns.hosted_zones {
        args.push(format!("--zone-id-filter={}", zone_id(zone)));
    }
    args
}

fn metadata(spec: &PlatformSpec, name: &str, namespaced: bool) -> Value {
    let mut labels = common_labels(spec);
    labels.insert(NAME_LABEL.to_owned(), EXTERNAL_DNS_NAME.to_owned());
    let mut m = json!({ "name": name, "labels": labels });
    if namespaced {
        m["namespace"] = json!(EXTERNAL_DNS_NAMESPACE);
    }
    m
}

/// external-dns's objects, in apply order: Namespace, ServiceAccount (IRSA-annotated when
/// `role_arn` is given), ClusterRole, ClusterRoleBinding, Deployment.
pub fn external_dns_manifests(spec: &PlatformSpec, role_arn: Option<&str>) -> Vec<Value> {
    let mut namespace = metadata(spec, EXTERNAL_DNS_NAMESPACE, false);
    if let Some(labels) = namespace["labels"].as_object_mut() {
        for (k, v) in super::tenant::restricted_pod_security_labels(spec) {
            labels.insert(k, json!(v));
        }
    }
    let mut sa = metadata(spec, EXTERNAL_DNS_NAME, true);
    if let Some(arn) = role_arn {
        sa["annotations"] = json!({ super::IRSA_ANNOTATION: arn });
    }
    let read = json!(["get", "watch", "list"]);
    let container = json!({
        "name": EXTERNAL_DNS_NAME,
        "image": external_dns_image(spec),
        "imagePullPolicy": "IfNotPresent",
        "args": external_dns_args(spec),
        // Nodes allow one IMDS hop only: the region of its STS calls comes from here.
        "env": [{ "name": "AWS_DEFAULT_REGION", "value": spec.region }],
        "ports": [{ "name": "http", "containerPort": 7979, "protocol": "TCP" }],
        "livenessProbe": { "httpGet": { "path": "/healthz", "port": "http" },
                           "initialDelaySeconds": 10, "periodSeconds": 10, "failureThreshold": 2 },
        "readinessProbe": { "httpGet": { "path": "/healthz", "port": "http" },
                            "initialDelaySeconds": 5, "periodSeconds": 10 },
        "resources": {
            "requests": { "cpu": "50m", "memory": "64Mi" },
            "limits": { "cpu": "200m", "memory": "256Mi" },
        },
        "securityContext": hardened_container_security(),
    });
    let mut template_meta = metadata(spec, EXTERNAL_DNS_NAME, false);
    template_meta.as_object_mut().map(|m| m.remove("name"));
    vec![
        json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": namespace }),
        json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": sa }),
        json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": metadata(spec, EXTERNAL_DNS_NAME, false),
                "rules": [
                    { "apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"] },
                    { "apiGroups": [""], "resources": ["pods"], "verbs": read },
                    { "apiGroups": [""], "resources": ["services"], "verbs": read },
                    { "apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                      "verbs": read },
                    { "apiGroups": ["extensions", "networking.k8s.io"],
                      "resources": ["ingresses"], "verbs": read },
                ] }),
        json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": metadata(spec, &format!("{EXTERNAL_DNS_NAME}-viewer"), false),
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                             "name": EXTERNAL_DNS_NAME },
                "subjects": [{ "kind": "ServiceAccount", "name": EXTERNAL_DNS_NAME,
                               "namespace": EXTERNAL_DNS_NAMESPACE }] }),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata(spec, EXTERNAL_DNS_NAME, true),
            "spec": {
                "replicas": 1,
                "revisionHistoryLimit": 3,
                // One writer at a time: no leader election upstream.
                "strategy": { "type": "Recreate" },
                "selector": { "matchLabels": { NAME_LABEL: EXTERNAL_DNS_NAME } },
                "template": {
                    "metadata": template_meta,
                    "spec": hardened_pod(spec, EXTERNAL_DNS_NAME, json!([container]), None),
                },
            },
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::manifests::tests::{assert_common_labels, example};

    #[test]
    fn service_account_is_the_one_its_role_trusts_and_args_name_the_zones() {
        let sa = crate::policies::SERVICE_ACCOUNTS
            .iter()
            .find(|sa| sa.purpose == crate::naming::ROLE_EXTERNAL_DNS)
            .expect("external-dns service account");
        let spec = example();
        let all = external_dns_manifests(&spec, Some("arn:aws:iam::1:role/dns"));
        assert_eq!(all[1]["metadata"]["namespace"], sa.namespace);
        assert_eq!(all[1]["metadata"]["name"], sa.name);
        assert_eq!(
            all[1]["metadata"]["annotations"][super::super::IRSA_ANNOTATION],
            "arn:aws:iam::1:role/dns"
        );
        assert_eq!(
            all[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "restricted"
        );
        let c = &all[4]["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            c["image"],
            "registry.k8s.io/external-dns/external-dns:v0.22.0"
        );
        assert_eq!(
            c["args"],
            json!([
                "--source=service",
                "--source=ingress",
                "--provider=aws",
                "--policy=upsert-only",
                "--registry=txt",
                "--txt-owner-id=payments-prod",
                "--zone-id-filter=Z0123456789ABCDEFGHIJ"
            ])
        );
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(
            all[4]["spec"]["template"]["spec"]["nodeSelector"]["tenantry.io/role"],
            "critical"
        );
        assert_eq!(zone_id("arn:aws:route53:::hostedzone/Z1"), "Z1");
        for m in &all {
            assert_common_labels(m, "payments");
        }
        let rules = serde_json::to_string(&all[2]["rules"]).unwrap();
        assert!(!rules.contains('*') && !rules.contains("secrets"));
    }
}
