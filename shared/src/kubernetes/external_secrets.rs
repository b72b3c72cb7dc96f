//! External Secrets Operator (`identity.serviceRoles.externalSecrets`, opt-in), at
//! [`EXTERNAL_SECRETS_VERSION`].
//!
//! Built after upstream's Helm chart (`external-secrets/external-secrets`, tag `helm-chart-2.9.0`,
//! `deploy/charts/external-secrets/templates/`; the image and CRDs of tag `v2.9.0`), vendored and
//! recorded in `shared/manifests/external-secrets/<tag>/SOURCE.md`. In apply order:
//! 1. the CRDs the controller watches with Tenantry's arguments: `SecretStore`,
//!    `ClusterSecretStore`, `ExternalSecret`, `ClusterExternalSecret` and `GeneratorState` (its
//!    GeneratorState controller always runs), verbatim from upstream;
//! 2. the namespace `external-secrets` (Pod Security `restricted`), the ServiceAccount
//!    `external-secrets` its IAM role trusts ([`crate::policies::SERVICE_ACCOUNTS`]; the IRSA
//!    annotation under IRSA, none under Pod Identity, where the addons phase associates it), and
//!    the webhook's own ServiceAccount (no role, no RBAC: the chart grants it none);
//! 3. RBAC after the chart's `rbac.yaml`: the ClusterRole `external-secrets-controller` and the
//!    leader election Role, each with its binding;
//! 4. the webhook Service, the webhook's TLS Secret (made by Tenantry: [`super::webhook_tls`]),
//!    the controller Deployment and the webhook Deployment, both hardened and on the critical
//!    node group;
//! 5. last, the chart's two ValidatingWebhookConfigurations (`secretstore-validate`,
//!    `externalsecret-validate`), with Tenantry's CA as `caBundle`: they fail closed, so they
//!    go after the Deployment that answers them.
//!
//! The chart's values Tenantry renders (defaults otherwise):
//! - `certController.create: false`: the chart's cert-controller (a Deployment that writes the
//!   webhook Secret and patches the CA into the webhook configurations and CRDs) is not
//!   installed; Tenantry makes the certificate and injects the CA itself, as for the ALB
//!   controller. The chart passes no argument for this value: the webhook (`webhook
//!   --dns-name=<service>.<namespace>.svc --cert-dir=... --check-interval=5m`) only waits for a
//!   valid `ca.crt`/`tls.crt`/`tls.key` in its mounted Secret and checks it every five minutes,
//!   which Tenantry's pair satisfies (it names that DNS name, and is renewed 30 days before it
//!   expires); the CRDs carry no conversion webhook (`crds.conversion.enabled: false`), so there
//!   is nothing else to inject.
//! - `processPushSecret: false`, `processClusterPushSecret: false`
//!   (`--enable-push-secret-reconciler=false`, `--enable-cluster-push-secret-reconciler=false`):
//!   the role only reads secrets, so PushSecret (writing to the provider) is off, with its CRDs
//!   and RBAC; `processClusterGenerator: false` and no generator CRDs (none is watched at start).
//! - `leaderElect: true`, so that a rolling update never runs two reconcilers at once;
//!   `openshiftFinalizers: false` (EKS is not OpenShift); `rbac.servicebindings.create: false`
//!   and no aggregated `-view`/`-edit` ClusterRoles (they grant users, not the controller, and
//!   Tenantry's tenants have their own Role).

use std::sync::LazyLock;

use serde_json::{json, Value};

use super::alb_controller::{hardened_container_security, hardened_pod};
use super::manifests::common_labels;
use super::webhook_tls::{WebhookService, WebhookTls};
use crate::spec::PlatformSpec;

/// The pinned release (the image tag; the chart's `appVersion`).
pub const EXTERNAL_SECRETS_VERSION: &str = "v2.9.0";
/// Namespace and ServiceAccount of the controller (its role trusts
/// `external-secrets/external-secrets`), and the `app.kubernetes.io/name` of its objects.
pub const EXTERNAL_SECRETS_NAMESPACE: &str = "external-secrets";
pub const EXTERNAL_SECRETS_NAME: &str = "external-secrets";
/// The webhook's Deployment, ServiceAccount, Service and Secret (the chart's names).
pub const EXTERNAL_SECRETS_WEBHOOK_NAME: &str = "external-secrets-webhook";
/// Where the webhook is served, and the Secret with its certificate.
pub const EXTERNAL_SECRETS_WEBHOOK: WebhookService = WebhookService {
    namespace: EXTERNAL_SECRETS_NAMESPACE,
    service: EXTERNAL_SECRETS_WEBHOOK_NAME,
    secret: EXTERNAL_SECRETS_WEBHOOK_NAME,
};
/// The chart's two ValidatingWebhookConfigurations.
pub const EXTERNAL_SECRETS_WEBHOOK_CONFIGURATIONS: [&str; 2] =
    ["secretstore-validate", "externalsecret-validate"];
/// The image repository (the chart's default; controller and webhook share it).
const IMAGE: &str = "ghcr.io/external-secrets/external-secrets";
const NAME_LABEL: &str = "app.kubernetes.io/name";
/// The chart's `webhook.certDir`, `webhook.port`, metrics and health ports.
const CERT_DIR: &str = "/tmp/certs";
const WEBHOOK_PORT: i32 = 10250;
const METRICS_PORT: i32 = 8080;
const WEBHOOK_READY_PORT: i32 = 8081;
const LIVE_PORT: i32 = 8082;
/// The chart's default `leaderElectionID`.
const LEADER_ELECTION_ID: &str = "external-secrets-controller";

/// The vendored CRDs, parsed once.
static VENDORED: LazyLock<Vec<Value>> = LazyLock::new(|| {
    serde_json::from_str(include_str!(
        "../../manifests/external-secrets/v2.9.0/objects.json"
    ))
    // Checked in, and parsed by a unit test: a failure here is a broken build.
    .unwrap_or_default()
});

/// The vendored upstream CRDs.
pub fn external_secrets_vendored_objects() -> &'static [Value] {
    &VENDORED
}

/// The image (controller and webhook), by tag, and by digest too when the request names one.
pub fn external_secrets_image(spec: &PlatformSpec) -> String {
    let image = format!("{IMAGE}:{EXTERNAL_SECRETS_VERSION}");
    super::manifests::pinned_image(
        &image,
        spec.identity
            .service_roles
            .external_secrets
            .image_digest
            .as_ref(),
    )
}

/// The controller's arguments: the chart's with the values of the module docs.
pub fn external_secrets_args() -> Vec<String> {
    [
        "--enable-leader-election=true",
        "--enable-cluster-push-secret-reconciler=false",
        "--enable-push-secret-reconciler=false",
        "--concurrent=1",
        "--metrics-addr=:8080",
        "--loglevel=info",
        "--zap-time-encoding=epoch",
        "--live-addr=:8082",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The webhook's arguments (the chart's): its serving certificate must name `--dns-name`.
pub fn external_secrets_webhook_args() -> Vec<String> {
    vec![
        "webhook".to_owned(),
        format!("--port={WEBHOOK_PORT}"),
        format!("--dns-name={}", EXTERNAL_SECRETS_WEBHOOK.dns_names()[0]),
        format!("--cert-dir={CERT_DIR}"),
        "--check-interval=5m".to_owned(),
        format!("--metrics-addr=:{METRICS_PORT}"),
        format!("--healthz-addr=:{WEBHOOK_READY_PORT}"),
        "--loglevel=info".to_owned(),
        "--zap-time-encoding=epoch".to_owned(),
    ]
}

fn labels(spec: &PlatformSpec, name: &str) -> Value {
    let mut labels = common_labels(spec);
    labels.insert(NAME_LABEL.to_owned(), name.to_owned());
    json!(labels)
}

fn metadata(spec: &PlatformSpec, name: &str, namespaced: bool) -> Value {
    metadata_of(spec, name, EXTERNAL_SECRETS_NAME, namespaced)
}

/// Metadata of `name`, labelled as part of `component` (the controller or the webhook).
fn metadata_of(spec: &PlatformSpec, name: &str, component: &str, namespaced: bool) -> Value {
    let mut m = json!({ "name": name, "labels": labels(spec, component) });
    if namespaced {
        m["namespace"] = json!(EXTERNAL_SECRETS_NAMESPACE);
    }
    m
}

/// A Deployment of `component` (its ServiceAccount has the same name) running `container`.
fn deployment(
    spec: &PlatformSpec,
    component: &str,
    replicas: i32,
    container: Value,
    volumes: Option<Value>,
) -> Value {
    let mut template_meta = metadata_of(spec, component, component, false);
    template_meta.as_object_mut().map(|m| m.remove("name"));
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata_of(spec, component, component, true),
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 3,
            "selector": { "matchLabels": { NAME_LABEL: component } },
            "template": {
                "metadata": template_meta,
                "spec": hardened_pod(spec, component, json!([container]), volumes),
            },
        },
    })
}

fn controller_deployment(spec: &PlatformSpec) -> Value {
    let container = json!({
        "name": EXTERNAL_SECRETS_NAME,
        "image": external_secrets_image(spec),
        "imagePullPolicy": "IfNotPresent",
        "args": external_secrets_args(),
        // Nodes allow pods no IMDS hop: the region of its STS calls comes from here (each
        // SecretStore names the region of its secrets).
        "env": [{ "name": "AWS_REGION", "value": spec.region }],
        "ports": [
            { "name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP" },
            { "name": "live", "containerPort": LIVE_PORT, "protocol": "TCP" },
        ],
        // The chart's livenessProbe spec.
        "livenessProbe": { "httpGet": { "path": "/healthz", "port": "live" },
                           "initialDelaySeconds": 10, "periodSeconds": 10, "timeoutSeconds": 5,
                           "failureThreshold": 5, "successThreshold": 1 },
        "resources": {
            "requests": { "cpu": "50m", "memory": "128Mi" },
            "limits": { "cpu": "500m", "memory": "512Mi" },
        },
        "securityContext": hardened_container_security(),
    });
    // One replica (the chart's), leader-elected so that a rolling update hands over cleanly.
    deployment(spec, EXTERNAL_SECRETS_NAME, 1, container, None)
}

fn webhook_deployment(spec: &PlatformSpec) -> Value {
    let container = json!({
        "name": "webhook",
        "image": external_secrets_image(spec),
        "imagePullPolicy": "IfNotPresent",
        "args": external_secrets_webhook_args(),
        "ports": [
            { "name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP" },
            { "name": "webhook", "containerPort": WEBHOOK_PORT, "protocol": "TCP" },
            { "name": "ready", "containerPort": WEBHOOK_READY_PORT, "protocol": "TCP" },
        ],
        // The chart's readinessProbe: ready only while the certificate is valid for an hour.
        "readinessProbe": { "httpGet": { "path": "/readyz", "port": "ready" },
                            "initialDelaySeconds": 20, "periodSeconds": 5, "timeoutSeconds": 5,
                            "failureThreshold": 3, "successThreshold": 1 },
        "volumeMounts": [{ "name": "certs", "mountPath": CERT_DIR, "readOnly": true }],
        "resources": {
            "requests": { "cpu": "20m", "memory": "64Mi" },
            "limits": { "cpu": "200m", "memory": "256Mi" },
        },
        "securityContext": hardened_container_security(),
    });
    let volumes = json!([{ "name": "certs",
                           "secret": { "secretName": EXTERNAL_SECRETS_WEBHOOK.secret,
                                       "defaultMode": 420 } }]);
    // Two replicas: its webhooks fail closed, so one must answer during a rollout.
    deployment(
        spec,
        EXTERNAL_SECRETS_WEBHOOK_NAME,
        2,
        container,
        Some(volumes),
    )
}

/// The ClusterRole's rules: the chart's `rbac.yaml` with the values of the module docs.
pub fn external_secrets_cluster_role_rules() -> Value {
    let es = "external-secrets.io";
    let read = json!(["get", "list", "watch"]);
    json!([
        { "apiGroups": [es],
          "resources": ["secretstores", "clustersecretstores", "externalsecrets",
                        "clusterexternalsecrets"],
          "verbs": read },
        { "apiGroups": [es],
          "resources": ["externalsecrets", "externalsecrets/status", "secretstores",
                        "secretstores/status", "clustersecretstores",
                        "clustersecretstores/status", "clusterexternalsecrets",
                        "clusterexternalsecrets/status"],
          "verbs": ["get", "update", "patch"] },
        { "apiGroups": ["generators.external-secrets.io"], "resources": ["generatorstates"],
          "verbs": ["get", "list", "watch", "create", "update", "patch", "delete",
                    "deletecollection"] },
        { "apiGroups": [""], "resources": ["serviceaccounts", "namespaces"], "verbs": read },
        { "apiGroups": [""], "resources": ["namespaces"], "verbs": ["update", "patch"] },
        { "apiGroups": [""], "resources": ["configmaps"], "verbs": read },
        { "apiGroups": [""], "resources": ["secrets"],
          "verbs": ["get", "list", "watch", "create", "update", "delete", "patch"] },
        { "apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"] },
        { "apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"] },
        { "apiGroups": [es], "resources": ["externalsecrets"],
          "verbs": ["create", "update", "delete"] },
    ])
}

fn webhook(name: &str, resource: &str, scope: &str, ca_bundle: &str) -> Value {
    let kind = resource.trim_end_matches('s');
    json!({
        "name": format!("validate.{kind}.external-secrets.io"),
        "rules": [{ "apiGroups": ["external-secrets.io"], "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE", "DELETE"], "resources": [resource],
                    "scope": scope }],
        "clientConfig": {
            "caBundle": ca_bundle,
            "service": { "namespace": EXTERNAL_SECRETS_NAMESPACE,
                         "name": EXTERNAL_SECRETS_WEBHOOK.service,
                         "path": format!("/validate-external-secrets-io-v1-{name}") },
        },
        "admissionReviewVersions": ["v1", "v1beta1"],
        "sideEffects": "None",
        "timeoutSeconds": 5,
        "failurePolicy": "Fail",
    })
}

/// The chart's ValidatingWebhookConfigurations, each webhook trusting `ca_bundle`.
fn webhook_configurations(spec: &PlatformSpec, ca_bundle: &str) -> [Value; 2] {
    let config = |name: &str, webhooks: Value| {
        let mut meta = metadata_of(spec, name, EXTERNAL_SECRETS_WEBHOOK_NAME, false);
        meta["labels"]["external-secrets.io/component"] = json!("webhook");
        json!({ "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingWebhookConfiguration",
                "metadata": meta, "webhooks": webhooks })
    };
    let [stores, externals] = EXTERNAL_SECRETS_WEBHOOK_CONFIGURATIONS;
    [
        config(
            stores,
            json!([
                webhook("secretstore", "secretstores", "Namespaced", ca_bundle),
                webhook(
                    "clustersecretstore",
                    "clustersecretstores",
                    "Cluster",
                    ca_bundle
                ),
            ]),
        ),
        config(
            externals,
            json!([webhook(
                "externalsecret",
                "externalsecrets",
                "Namespaced",
                ca_bundle
            )]),
        ),
    ]
}

fn subjects() -> Value {
    json!([{ "kind": "ServiceAccount", "name": EXTERNAL_SECRETS_NAME,
             "namespace": EXTERNAL_SECRETS_NAMESPACE }])
}

/// The operator's objects, in apply order (see the module docs). `role_arn` is its IAM role
/// under IRSA (the ServiceAccount's annotation), `None` under Pod Identity; `tls` the webhook's
/// certificate pair.
pub fn external_secrets_manifests(
    spec: &PlatformSpec,
    role_arn: Option<&str>,
    tls: &WebhookTls,
) -> Vec<Value> {
    let mut out: Vec<Value> = external_secrets_vendored_objects()
        .iter()
        .filter(|o| o["kind"] == "CustomResourceDefinition")
        .map(|crd| {
            let mut crd = crd.clone();
            // Upstream's labels, and Tenantry's.
            if !crd["metadata"]["labels"].is_object() {
                crd["metadata"]["labels"] = json!({});
            }
            for (k, v) in common_labels(spec) {
                crd["metadata"]["labels"][k] = json!(v);
            }
            crd
        })
        .collect();
    let mut namespace = metadata(spec, EXTERNAL_SECRETS_NAMESPACE, false);
    for (k, v) in super::tenant::restricted_pod_security_labels(spec) {
        namespace["labels"][k] = json!(v);
    }
    let mut sa = metadata(spec, EXTERNAL_SECRETS_NAME, true);
    if let Some(arn) = role_arn {
        sa["annotations"] = json!({ super::IRSA_ANNOTATION: arn });
    }
    let rbac = "rbac.authorization.k8s.io";
    let cluster_role = format!("{EXTERNAL_SECRETS_NAME}-controller");
    let leader_role = format!("{EXTERNAL_SECRETS_NAME}-leaderelection");
    out.extend([
        json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": namespace }),
        json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": sa }),
        json!({ "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": metadata_of(spec, EXTERNAL_SECRETS_WEBHOOK_NAME,
                                        EXTERNAL_SECRETS_WEBHOOK_NAME, true) }),
        json!({ "apiVersion": format!("{rbac}/v1"), "kind": "ClusterRole",
                "metadata": metadata(spec, &cluster_role, false),
                "rules": external_secrets_cluster_role_rules() }),
        json!({ "apiVersion": format!("{rbac}/v1"), "kind": "ClusterRoleBinding",
                "metadata": metadata(spec, &cluster_role, false),
                "roleRef": { "apiGroup": rbac, "kind": "ClusterRole", "name": cluster_role },
                "subjects": subjects() }),
        json!({ "apiVersion": format!("{rbac}/v1"), "kind": "Role",
                "metadata": metadata(spec, &leader_role, true),
                "rules": [
                    { "apiGroups": [""], "resources": ["configmaps"],
                      "resourceNames": [LEADER_ELECTION_ID], "verbs": ["get", "update", "patch"] },
                    { "apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"] },
                    { "apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                      "verbs": ["get", "create", "update", "patch"] },
                ] }),
        json!({ "apiVersion": format!("{rbac}/v1"), "kind": "RoleBinding",
                "metadata": metadata(spec, &leader_role, true),
                "roleRef": { "apiGroup": rbac, "kind": "Role", "name": leader_role },
                "subjects": subjects() }),
        json!({ "apiVersion": "v1", "kind": "Service",
                "metadata": metadata_of(spec, EXTERNAL_SECRETS_WEBHOOK.service,
                                        EXTERNAL_SECRETS_WEBHOOK_NAME, true),
                "spec": {
                    "type": "ClusterIP",
                    "ports": [{ "name": "webhook", "port": 443, "targetPort": "webhook",
                                "protocol": "TCP" }],
                    "selector": { NAME_LABEL: EXTERNAL_SECRETS_WEBHOOK_NAME },
                } }),
        tls.secret_manifest(
            &EXTERNAL_SECRETS_WEBHOOK,
            labels(spec, EXTERNAL_SECRETS_WEBHOOK_NAME),
        ),
        controller_deployment(spec),
        webhook_deployment(spec),
    ]);
    out.extend(webhook_configurations(spec, &tls.ca_bundle()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::manifests::tests::{assert_common_labels, example};

    fn find<'a>(all: &'a [Value], kind: &str, name: &str) -> &'a Value {
        all.iter()
            .find(|m| m["kind"] == kind && m["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    }

    fn placeholder(role: Option<&str>) -> Vec<Value> {
        external_secrets_manifests(&example(), role, &WebhookTls::placeholder())
    }

    #[test]
    fn service_account_is_the_one_its_role_trusts_irsa_annotated_or_not() {
        let sa = crate::policies::SERVICE_ACCOUNTS
            .iter()
            .find(|sa| sa.purpose == crate::naming::ROLE_EXTERNAL_SECRETS)
            .expect("external-secrets service account");
        let arn = "arn:aws:iam::111122223333:role/eso";
        let all = placeholder(Some(arn));
        let account = find(&all, "ServiceAccount", sa.name);
        assert_eq!(account["metadata"]["namespace"], sa.namespace);
        assert_eq!(
            account["metadata"]["annotations"][super::super::IRSA_ANNOTATION],
            arn
        );
        let pod = &find(&all, "Deployment", EXTERNAL_SECRETS_NAME)["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], sa.name);
        // The webhook's account has no role, under IRSA or not.
        assert!(
            find(&all, "ServiceAccount", EXTERNAL_SECRETS_WEBHOOK_NAME)["metadata"]
                .get("annotations")
                .is_none()
        );
        // Pod Identity: no annotation (the addons phase associates the account).
        let none = placeholder(None);
        assert!(find(&none, "ServiceAccount", sa.name)["metadata"]
            .get("annotations")
            .is_none());
        let ns = find(&all, "Namespace", EXTERNAL_SECRETS_NAMESPACE);
        assert_eq!(
            ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "restricted"
        );
        for m in &all {
            assert_common_labels(m, "payments");
        }
    }

    #[test]
    fn both_pods_are_hardened_pinned_and_on_the_critical_group() {
        let mut spec = example();
        let all = external_secrets_manifests(&spec, None, &WebhookTls::placeholder());
        for name in [EXTERNAL_SECRETS_NAME, EXTERNAL_SECRETS_WEBHOOK_NAME] {
            let pod = &find(&all, "Deployment", name)["spec"]["template"]["spec"];
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}");
            assert_eq!(
                pod["securityContext"]["seccompProfile"]["type"],
                "RuntimeDefault"
            );
            assert_eq!(pod["nodeSelector"]["tenantry.io/role"], "critical");
            assert_eq!(pod["priorityClassName"], "tenantry-platform-critical");
            let c = &pod["containers"][0];
            assert_eq!(
                c["image"],
                "ghcr.io/external-secrets/external-secrets:v2.9.0"
            );
            let sc = &c["securityContext"];
            assert_eq!(sc["readOnlyRootFilesystem"], true);
            assert_eq!(sc["allowPrivilegeEscalation"], false);
            assert_eq!(sc["runAsNonRoot"], true);
            assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
            assert!(c["resources"]["requests"]["cpu"].is_string());
            assert!(c["resources"]["limits"]["memory"].is_string());
        }
        let digest = format!("sha256:{}", "b".repeat(64));
        spec.identity.service_roles.external_secrets.image_digest = Some(digest.clone());
        let pinned = external_secrets_manifests(&spec, None, &WebhookTls::placeholder());
        for name in [EXTERNAL_SECRETS_NAME, EXTERNAL_SECRETS_WEBHOOK_NAME] {
            assert_eq!(
                find(&pinned, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
                    ["image"],
                format!("ghcr.io/external-secrets/external-secrets:v2.9.0@{digest}")
            );
        }
        // PushSecret off (the role only reads); leader-elected.
        let args = external_secrets_args();
        assert!(args.contains(&"--enable-push-secret-reconciler=false".to_owned()));
        assert!(args.contains(&"--enable-cluster-push-secret-reconciler=false".to_owned()));
        assert!(args.contains(&"--enable-leader-election=true".to_owned()));
    }

    #[test]
    fn the_webhook_serves_tenantrys_certificate_and_every_webhook_trusts_its_ca() {
        let tls = WebhookTls::generate(&EXTERNAL_SECRETS_WEBHOOK).expect("tls");
        let all = external_secrets_manifests(&example(), None, &tls);
        let secret = find(&all, "Secret", "external-secrets-webhook");
        assert_eq!(secret["metadata"]["namespace"], EXTERNAL_SECRETS_NAMESPACE);
        assert_eq!(WebhookTls::from_secret(secret), Some(tls.clone()));
        // The webhook checks its certificate against --dns-name: the certificate names it.
        let args = external_secrets_webhook_args();
        assert!(args.contains(&"--dns-name=external-secrets-webhook.external-secrets.svc".into()));
        assert!(args.contains(&"--cert-dir=/tmp/certs".into()));
        let pod =
            &find(&all, "Deployment", EXTERNAL_SECRETS_WEBHOOK_NAME)["spec"]["template"]["spec"];
        assert_eq!(
            pod["volumes"][0]["secret"]["secretName"],
            secret["metadata"]["name"]
        );
        assert_eq!(
            pod["containers"][0]["volumeMounts"][0]["mountPath"],
            "/tmp/certs"
        );
        let service = find(&all, "Service", EXTERNAL_SECRETS_WEBHOOK.service);
        let webhook_pods = &find(&all, "Deployment", EXTERNAL_SECRETS_WEBHOOK_NAME)["spec"]
            ["template"]["metadata"]["labels"];
        assert_eq!(
            service["spec"]["selector"][NAME_LABEL],
            webhook_pods[NAME_LABEL]
        );
        let mut count = 0;
        for name in EXTERNAL_SECRETS_WEBHOOK_CONFIGURATIONS {
            let config = find(&all, "ValidatingWebhookConfiguration", name);
            for w in config["webhooks"].as_array().expect("webhooks") {
                assert_eq!(w["clientConfig"]["caBundle"], tls.ca_bundle());
                assert_eq!(
                    w["clientConfig"]["service"]["name"],
                    EXTERNAL_SECRETS_WEBHOOK.service
                );
                assert_eq!(w["failurePolicy"], "Fail");
                count += 1;
            }
        }
        assert_eq!(count, 3);
        // No cert-controller; the webhooks go last, after the Deployments that answer them.
        assert!(!all.iter().any(|m| m["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .contains("cert-controller")));
        let position = |kind: &str| all.iter().position(|m| m["kind"] == kind).unwrap();
        assert!(position("Secret") < position("Deployment"));
        assert!(all[..all.len() - 2]
            .iter()
            .all(|m| m["kind"] != "ValidatingWebhookConfiguration"));
    }

    #[test]
    fn crds_are_the_watched_five_and_rbac_is_the_charts_without_push_or_wildcards() {
        let all = placeholder(None);
        let crds: Vec<&str> = all
            .iter()
            .filter(|m| m["kind"] == "CustomResourceDefinition")
            .filter_map(|m| m["metadata"]["name"].as_str())
            .collect();
        assert_eq!(
            crds,
            [
                "secretstores.external-secrets.io",
                "clustersecretstores.external-secrets.io",
                "externalsecrets.external-secrets.io",
                "clusterexternalsecrets.external-secrets.io",
                "generatorstates.generators.external-secrets.io",
            ]
        );
        // Upstream's labels are kept beside Tenantry's.
        assert_eq!(
            all[0]["metadata"]["labels"]["external-secrets.io/component"],
            "controller"
        );
        let rules = &find(&all, "ClusterRole", "external-secrets-controller")["rules"];
        let text = rules.to_string();
        assert!(!text.contains('*') && !text.contains("push") && !text.contains("finalizers"));
        // Every grant is one the chart makes (its rbac.yaml at the default values, transcribed).
        let chart: &[(&str, &[&str], &[&str])] = &[
            (
                "external-secrets.io",
                &[
                    "secretstores",
                    "clustersecretstores",
                    "externalsecrets",
                    "clusterexternalsecrets",
                    "pushsecrets",
                    "clusterpushsecrets",
                ],
                &["get", "list", "watch"],
            ),
            (
                "external-secrets.io",
                &[
                    "externalsecrets",
                    "externalsecrets/status",
                    "externalsecrets/finalizers",
                    "secretstores",
                    "secretstores/status",
                    "secretstores/finalizers",
                    "clustersecretstores",
                    "clustersecretstores/status",
                    "clustersecretstores/finalizers",
                    "clusterexternalsecrets",
                    "clusterexternalsecrets/status",
                    "clusterexternalsecrets/finalizers",
                    "pushsecrets",
                    "pushsecrets/status",
                    "pushsecrets/finalizers",
                    "clusterpushsecrets",
                    "clusterpushsecrets/status",
                    "clusterpushsecrets/finalizers",
                ],
                &["get", "update", "patch"],
            ),
            (
                "generators.external-secrets.io",
                &["generatorstates"],
                &[
                    "get",
                    "list",
                    "watch",
                    "create",
                    "update",
                    "patch",
                    "delete",
                    "deletecollection",
                ],
            ),
            (
                "",
                &["serviceaccounts", "namespaces"],
                &["get", "list", "watch"],
            ),
            ("", &["namespaces"], &["update", "patch"]),
            ("", &["configmaps"], &["get", "list", "watch"]),
            (
                "",
                &["secrets"],
                &[
                    "get", "list", "watch", "create", "update", "delete", "patch",
                ],
            ),
            ("", &["serviceaccounts/token"], &["create"]),
            ("", &["events"], &["create", "patch"]),
            (
                "external-secrets.io",
                &["externalsecrets"],
                &["create", "update", "delete"],
            ),
            (
                "external-secrets.io",
                &["pushsecrets"],
                &["create", "update", "delete"],
            ),
        ];
        let granted_by_chart = |g: &str, r: &str, v: &str| {
            chart
                .iter()
                .any(|(cg, rs, vs)| *cg == g && rs.contains(&r) && vs.contains(&v))
        };
        let strs = |v: &Value| -> Vec<String> {
            v.as_array()
                .expect("list")
                .iter()
                .map(|s| s.as_str().expect("string").to_owned())
                .collect()
        };
        for rule in rules.as_array().expect("rules") {
            for g in strs(&rule["apiGroups"]) {
                for r in strs(&rule["resources"]) {
                    for v in strs(&rule["verbs"]) {
                        assert!(
                            granted_by_chart(&g, &r, &v),
                            "{g}/{r} {v} is not the chart's"
                        );
                    }
                }
            }
        }
        let binding = find(&all, "ClusterRoleBinding", "external-secrets-controller");
        assert_eq!(binding["roleRef"]["name"], "external-secrets-controller");
        assert_eq!(binding["subjects"][0]["name"], EXTERNAL_SECRETS_NAME);
        let leader = find(&all, "RoleBinding", "external-secrets-leaderelection");
        assert_eq!(leader["metadata"]["namespace"], EXTERNAL_SECRETS_NAMESPACE);
        assert_eq!(all.len(), 18);
    }

    #[test]
    fn installed_release_is_the_vendored_one() {
        let source = include_str!("../../manifests/external-secrets/v2.9.0/SOURCE.md");
        assert!(source.contains(&format!("`{EXTERNAL_SECRETS_VERSION}`")));
        assert!(source.contains("378bdb622ed9712ef4a58370f6a17af033b7d343"));
        assert!(source.contains("cc5bfbc2234ace9cb0caff4ea89c435cf517b27b"));
        assert_eq!(external_secrets_vendored_objects().len(), 5);
    }
}
