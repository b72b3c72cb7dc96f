//! The AWS Load Balancer Controller (`identity.serviceRoles.albController`, on by default).
//!
//! Installed at [`ALB_CONTROLLER_VERSION`], the release whose upstream IAM policy its role
//! carries (`shared/data/alb-controller/`), so the controller never calls an API its role lacks.
//! EKS has no add-on for it, so Tenantry applies what upstream's Helm chart (same tag) installs
//! with its defaults and cert-manager off, in this order:
//! 1. the chart's CRDs (`TargetGroupBinding`, `IngressClassParams`, `ALBTargetControlConfig`,
//!    `GlobalAccelerator`), vendored in `shared/manifests/alb-controller/<tag>/` with their source;
//! 2. the ServiceAccount its IAM role trusts ([`crate::policies::SERVICE_ACCOUNTS`]), with the
//!    IRSA annotation under IRSA (under Pod Identity the addons phase associates it instead);
//! 3. RBAC: the ClusterRole with upstream's generated rules (`config/rbac/role.yaml`, vendored:
//!    no access to Secrets, as the chart's `allowAllSecrets: false`), the leader election Role;
//! 4. the webhook Service, the webhook's TLS Secret (made by Tenantry: [`super::webhook_tls`]),
//!    the Deployment (two replicas with leader election, hardened, on the critical node group;
//!    `--aws-region` and `--aws-vpc-id` are passed since nodes let pods no IMDS hop), the
//!    IngressClass `alb`;
//! 5. the mutating and validating webhook configurations, with the CA as `caBundle`.
//!    The service mutator fails closed (upstream's default): Services of type LoadBalancer are
//!    created only while the controller answers, so it goes after the Deployment;
//! 6. last, not from the chart: the admission policy that refuses a LoadBalancer Service without
//!    the controller's class ([`super::load_balancer_class`]), which the mutator, acting on
//!    creates only, cannot ensure.
//!
//! Not installed: the chart's `IngressClassParams` `alb` (optional upstream; the IngressClass
//! works without parameters), the Gateway API CRDs (feature-gated off), cert-manager objects.

use std::sync::LazyLock;

use serde_json::{json, Value};

use super::manifests::common_labels;
use super::webhook_tls::{WebhookService, WebhookTls};
use crate::naming::Names;
use crate::spec::{NodeRole, PlatformSpec};

pub use crate::policies::ALB_CONTROLLER_VERSION;

/// Namespace of the controller (its role trusts this namespace's service account).
pub const ALB_NAMESPACE: &str = "kube-system";
/// The ServiceAccount, Deployment and `app.kubernetes.io/name` of the controller.
pub const ALB_NAME: &str = "aws-load-balancer-controller";
/// The controller's image repository (upstream's chart default).
pub const ALB_IMAGE: &str = "public.ecr.aws/eks/aws-load-balancer-controller";
/// Where its webhook is served, and the Secret with its certificate (the chart's names).
pub const ALB_WEBHOOK: WebhookService = WebhookService {
    namespace: ALB_NAMESPACE,
    service: "aws-load-balancer-webhook-service",
    secret: "aws-load-balancer-tls",
};
/// Name of both webhook configurations (the chart's `<prefix>-webhook`).
pub const ALB_WEBHOOK_CONFIGURATION: &str = "aws-load-balancer-webhook";
/// The IngressClass the controller serves.
pub const ALB_INGRESS_CLASS: &str = "alb";

const NAME_LABEL: &str = "app.kubernetes.io/name";
const WEBHOOK_PORT: i32 = 9443;
const METRICS_PORT: i32 = 8080;
const HEALTH_PORT: i32 = 61779;

/// The vendored CRDs and the ClusterRole of upstream's RBAC, parsed once.
static VENDORED: LazyLock<Vec<Value>> = LazyLock::new(|| {
    serde_json::from_str(include_str!(
        "../../manifests/alb-controller/v3.5.0/objects.json"
    ))
    // Checked in, and parsed by a unit test: a failure here is a broken build.
    .unwrap_or_default()
});

/// The vendored upstream objects (CRDs, then upstream's ClusterRole `controller-role`).
pub fn alb_vendored_objects() -> &'static [Value] {
    &VENDORED
}

/// The controller's image, by tag, or by digest too when the spec pins one.
pub fn alb_controller_image(spec: &PlatformSpec) -> String {
    let image = format!("{ALB_IMAGE}:{ALB_CONTROLLER_VERSION}");
    super::manifests::pinned_image(
        &image,
        spec.identity
            .service_roles
            .alb_controller
            .image_digest
            .as_ref(),
    )
}

fn labels(spec: &PlatformSpec) -> Value {
    let mut labels = common_labels(spec);
    labels.insert(NAME_LABEL.to_owned(), ALB_NAME.to_owned());
    json!(labels)
}

fn metadata(spec: &PlatformSpec, name: &str, namespaced: bool) -> Value {
    let mut m = json!({ "name": name, "labels": labels(spec) });
    if namespaced {
        m["namespace"] = json!(ALB_NAMESPACE);
    }
    m
}

/// The hardened pod of a platform controller: non-root (65534), read-only root filesystem, no
/// privilege escalation, all capabilities dropped, RuntimeDefault seccomp (Pod Security
/// `restricted`), at the platform-critical priority, on the critical node group when there is one.
pub(crate) fn hardened_pod(
    spec: &PlatformSpec,
    service_account: &str,
    containers: Value,
    volumes: Option<Value>,
) -> Value {
    let user = 65534;
    let mut pod = json!({
        "serviceAccountName": service_account,
        "priorityClassName": super::PRIORITY_PLATFORM_CRITICAL,
        "securityContext": {
            "runAsNonRoot": true, "runAsUser": user, "runAsGroup": user, "fsGroup": user,
            "seccompProfile": { "type": "RuntimeDefault" },
        },
        "tolerations": [{ "key": "workload", "operator": "Equal",
                          "value": NodeRole::Critical.as_str(), "effect": "NoSchedule" }],
        "containers": containers,
    });
    if spec
        .effective_node_groups()
        .iter()
        .any(|g| g.role == NodeRole::Critical)
    {
        pod["nodeSelector"] =
            json!({ super::autoscaler::NODE_ROLE_LABEL: NodeRole::Critical.as_str() });
    }
    if let Some(v) = volumes {
        pod["volumes"] = v;
    }
    pod
}

/// A container's `securityContext` under Pod Security `restricted`, read-only root.
pub(crate) fn hardened_container_security() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "runAsNonRoot": true,
        "runAsUser": 65534,
        "runAsGroup": 65534,
        "capabilities": { "drop": ["ALL"] },
        "seccompProfile": { "type": "RuntimeDefault" },
    })
}

/// The controller's arguments: the cluster, region and VPC (no IMDS for pods), its IngressClass.
pub fn alb_controller_args(spec: &PlatformSpec, vpc_id: &str) -> Vec<String> {
    vec![
        format!("--cluster-name={}", Names::new(spec).cluster()),
        format!("--ingress-class={ALB_INGRESS_CLASS}"),
        format!("--aws-region={}", spec.region),
        format!("--aws-vpc-id={vpc_id}"),
    ]
}

fn deployment(spec: &PlatformSpec, vpc_id: &str) -> Value {
    let selector = json!({ NAME_LABEL: ALB_NAME });
    let probe = |path: &str, delay: i32| {
        json!({ "httpGet": { "path": path, "port": HEALTH_PORT, "scheme": "HTTP" },
                "initialDelaySeconds": delay, "timeoutSeconds": 10, "failureThreshold": 2 })
    };
    let container = json!({
        "name": ALB_NAME,
        "image": alb_controller_image(spec),
        "imagePullPolicy": "IfNotPresent",
        "args": alb_controller_args(spec, vpc_id),
        "ports": [
            { "name": "webhook-server", "containerPort": WEBHOOK_PORT, "protocol": "TCP" },
            { "name": "metrics-server", "containerPort": METRICS_PORT, "protocol": "TCP" },
        ],
        "volumeMounts": [{ "name": "cert", "mountPath": "/tmp/k8s-webhook-server/serving-certs",
                           "readOnly": true }],
        "livenessProbe": probe("/healthz", 30),
        "readinessProbe": probe("/readyz", 10),
        "resources": {
            "requests": { "cpu": "100m", "memory": "200Mi" },
            "limits": { "cpu": "1", "memory": "500Mi" },
        },
        "securityContext": hardened_container_security(),
    });
    let volumes = json!([{ "name": "cert",
                           "secret": { "secretName": ALB_WEBHOOK.secret, "defaultMode": 420 } }]);
    let mut template_meta = metadata(spec, ALB_NAME, false);
    template_meta.as_object_mut().map(|m| m.remove("name"));
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(spec, ALB_NAME, true),
        "spec": {
            "replicas": 2,
            "revisionHistoryLimit": 3,
            "selector": { "matchLabels": selector },
            "template": {
                "metadata": template_meta,
                "spec": hardened_pod(spec, ALB_NAME, json!([container]), Some(volumes)),
            },
        },
    })
}

fn webhook(name: &str, path: &str, ca_bundle: &str, failure: &str, rules: Value) -> Value {
    json!({
        "name": name,
        "admissionReviewVersions": ["v1"],
        "clientConfig": {
            "caBundle": ca_bundle,
            "service": { "name": ALB_WEBHOOK.service, "namespace": ALB_NAMESPACE, "path": path },
        },
        "failurePolicy": failure,
        "sideEffects": "None",
        "rules": rules,
    })
}

fn not_the_controller() -> Value {
    json!({ "key": NAME_LABEL, "operator": "NotIn", "values": [ALB_NAME] })
}

fn pods_create() -> Value {
    json!([{ "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
             "resources": ["pods"] }])
}

fn on(group: &str, version: &str, resource: &str) -> Value {
    json!([{ "apiGroups": [group], "apiVersions": [version], "operations": ["CREATE", "UPDATE"],
             "resources": [resource] }])
}

/// The webhook configurations of the chart (defaults: service mutator on, ingress validation
/// on, no Global Accelerator), each webhook trusting `ca_bundle`.
fn webhook_configurations(spec: &PlatformSpec, ca_bundle: &str) -> [Value; 2] {
    let mut mpod = webhook(
        "mpod.elbv2.k8s.aws",
        "/mutate-v1-pod",
        ca_bundle,
        "Ignore",
        pods_create(),
    );
    mpod["namespaceSelector"] = json!({ "matchExpressions": [{
        "key": "elbv2.k8s.aws/pod-readiness-gate-inject", "operator": "In", "values": ["enabled"] }] });
    mpod["objectSelector"] = json!({ "matchExpressions": [not_the_controller()] });
    let mut quic = webhook(
        "quicid.elbv2.k8s.aws",
        "/mutate-v1-pod-server-id",
        ca_bundle,
        "Fail",
        pods_create(),
    );
    quic["namespaceSelector"] = json!({ "matchExpressions": [{
        "key": "elbv2.k8s.aws/quic-server-id-inject", "operator": "In", "values": ["enabled"] }] });
    quic["objectSelector"] = json!({ "matchExpressions": [not_the_controller()] });
    let mut service = webhook(
        "mservice.elbv2.k8s.aws",
        "/mutate-v1-service",
        ca_bundle,
        "Fail",
        json!([{ "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                 "resources": ["services"] }]),
    );
    service["objectSelector"] = json!({ "matchExpressions": [not_the_controller()] });
    // Only `type: LoadBalancer` reaches the controller (the only Services it mutates): with the
    // chart's rule alone every Service create goes to it, so while the controller is down no
    // Service of any type, in any namespace, could be made. Those that do reach it still fail
    // closed: one made without the controller would go to the legacy cloud provider (a Classic
    // Load Balancer) instead. The condition is upstream's proposal (kubernetes-sigs/
    // aws-load-balancer-controller issue 4811, PR 4828); matchConditions are GA since 1.28.
    service["matchConditions"] = json!([{
        "name": "load-balancer-services-only",
        "expression": "object.spec.type == 'LoadBalancer'",
    }]);
    let agent = "elbv2.k8s.aws/alb-target-control-agent-inject";
    let mut control_ns = webhook(
        "alb-target-control.namespace.elbv2.k8s.aws",
        "/mutate-alb-target-control-namespace-v1-pod",
        ca_bundle,
        "Fail",
        pods_create(),
    );
    control_ns["namespaceSelector"] = json!({ "matchExpressions": [{
        "key": "elbv2.k8s.aws/alb-target-control-agent-injection", "operator": "In",
        "values": ["enabled"] }] });
    control_ns["objectSelector"] = json!({ "matchExpressions": [not_the_controller(),
        { "key": agent, "operator": "NotIn", "values": ["false"] }] });
    let mut control_object = webhook(
        "alb-target-control.object.elbv2.k8s.aws",
        "/mutate-alb-target-control-object-v1-pod",
        ca_bundle,
        "Fail",
        pods_create(),
    );
    control_object["namespaceSelector"] = json!({ "matchExpressions": [{
        "key": "elbv2.k8s.aws/alb-target-control-agent-injection", "operator": "DoesNotExist" }] });
    control_object["objectSelector"] = json!({ "matchExpressions": [not_the_controller(),
        { "key": agent, "operator": "In", "values": ["true"] }] });
    let tgb = webhook(
        "mtargetgroupbinding.elbv2.k8s.aws",
        "/mutate-elbv2-k8s-aws-v1beta1-targetgroupbinding",
        ca_bundle,
        "Fail",
        on("elbv2.k8s.aws", "v1beta1", "targetgroupbindings"),
    );
    let mut vparams = webhook(
        "vingressclassparams.elbv2.k8s.aws",
        "/validate-elbv2-k8s-aws-v1beta1-ingressclassparams",
        ca_bundle,
        "Fail",
        on("elbv2.k8s.aws", "v1beta1", "ingressclassparams"),
    );
    vparams["objectSelector"] = json!({ "matchExpressions": [not_the_controller()] });
    let vtgb = webhook(
        "vtargetgroupbinding.elbv2.k8s.aws",
        "/validate-elbv2-k8s-aws-v1beta1-targetgroupbinding",
        ca_bundle,
        "Fail",
        on("elbv2.k8s.aws", "v1beta1", "targetgroupbindings"),
    );
    let mut vingress = webhook(
        "vingress.elbv2.k8s.aws",
        "/validate-networking-v1-ingress",
        ca_bundle,
        "Fail",
        on("networking.k8s.io", "v1", "ingresses"),
    );
    vingress["matchPolicy"] = json!("Equivalent");
    [
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": metadata(spec, ALB_WEBHOOK_CONFIGURATION, false),
            "webhooks": [mpod, quic, service, control_ns, control_object, tgb],
        }),
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": metadata(spec, ALB_WEBHOOK_CONFIGURATION, false),
            "webhooks": [vparams, vtgb, vingress],
        }),
    ]
}

fn subjects() -> Value {
    json!([{ "kind": "ServiceAccount", "name": ALB_NAME, "namespace": ALB_NAMESPACE }])
}

/// The controller's objects, in apply order (see the module docs). `role_arn` is its IAM role
/// under IRSA (the ServiceAccount's annotation), `None` under Pod Identity; `vpc_id` the
/// platform's VPC; `tls` the webhook's certificate pair.
pub fn alb_controller_manifests(
    spec: &PlatformSpec,
    role_arn: Option<&str>,
    vpc_id: &str,
    tls: &WebhookTls,
) -> Vec<Value> {
    let mut out: Vec<Value> = alb_vendored_objects()
        .iter()
        .filter(|o| o["kind"] == "CustomResourceDefinition")
        .map(|crd| {
            let mut crd = crd.clone();
            crd["metadata"]["labels"] = json!(common_labels(spec));
            crd
        })
        .collect();
    let rules = alb_vendored_objects()
        .iter()
        .find(|o| o["kind"] == "ClusterRole")
        .map(|o| o["rules"].clone())
        .unwrap_or(Value::Null);
    let mut sa_meta = metadata(spec, ALB_NAME, true);
    if let Some(arn) = role_arn {
        sa_meta["annotations"] = json!({ super::IRSA_ANNOTATION: arn });
    }
    let cluster_role = format!("{ALB_NAME}-role");
    let leader_role = format!("{ALB_NAME}-leader-election-role");
    let leader = format!("{ALB_NAME}-leader");
    let rbac = "rbac.authorization.k8s.io";
    out.extend([
        json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": sa_meta }),
        json!({ "apiVersion": format!("{rbac}/v1"), "kind": "ClusterRole",
                "metadata": metadata(spec, &cluster_role, false), "rules": rules }),
        json!({ "apiVersion": format!("{rbac}/v1"), "kind": "ClusterRoleBinding",
                "metadata": metadata(spec, &format!("{ALB_NAME}-rolebinding"), false),
                "roleRef": { "apiGroup": rbac, "kind": "ClusterRole", "name": cluster_role },
                "subjects": subjects() }),
        json!({ "apiVersion": format!("{rbac}/v1"), "kind": "Role",
                "metadata": metadata(spec, &leader_role, true),
                "rules": [
                    { "apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"] },
                    { "apiGroups": [""], "resources": ["configmaps"], "resourceNames": [leader],
                      "verbs": ["get", "patch", "update"] },
                    { "apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                      "verbs": ["create"] },
                    { "apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                      "resourceNames": [leader], "verbs": ["get", "update", "patch"] },
                ] }),
        json!({ "apiVersion": format!("{rbac}/v1"), "kind": "RoleBinding",
                "metadata": metadata(spec, &format!("{ALB_NAME}-leader-election-rolebinding"), true),
                "roleRef": { "apiGroup": rbac, "kind": "Role", "name": leader_role },
                "subjects": subjects() }),
        json!({ "apiVersion": "v1", "kind": "Service",
                "metadata": metadata(spec, ALB_WEBHOOK.service, true),
                "spec": {
                    "ports": [{ "name": "webhook-server", "port": 443,
                                "targetPort": "webhook-server" }],
                    "selector": { NAME_LABEL: ALB_NAME },
                } }),
        tls.secret_manifest(&ALB_WEBHOOK, labels(spec)),
        deployment(spec, vpc_id),
        json!({ "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                "metadata": metadata(spec, ALB_INGRESS_CLASS, false),
                "spec": { "controller": "ingress.k8s.aws/alb" } }),
    ]);
    out.extend(webhook_configurations(spec, &tls.ca_bundle()));
    out.extend(super::load_balancer_class::load_balancer_class_manifests(
        spec,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::manifests::tests::{assert_common_labels, example};

    fn find<'a>(all: &'a [Value], kind: &str) -> &'a Value {
        all.iter()
            .find(|m| m["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"))
    }

    #[test]
    fn service_account_is_the_one_its_role_trusts() {
        let sa = crate::policies::SERVICE_ACCOUNTS
            .iter()
            .find(|sa| sa.purpose == crate::naming::ROLE_ALB_CONTROLLER)
            .expect("ALB controller service account");
        let spec = example();
        let arn = "arn:aws:iam::111122223333:role/alb";
        let all = alb_controller_manifests(&spec, Some(arn), "vpc-1", &WebhookTls::placeholder());
        let account = find(&all, "ServiceAccount");
        assert_eq!(account["metadata"]["namespace"], sa.namespace);
        assert_eq!(account["metadata"]["name"], sa.name);
        assert_eq!(
            account["metadata"]["annotations"][super::super::IRSA_ANNOTATION],
            arn
        );
        let pod = &find(&all, "Deployment")["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], sa.name);
        let none = alb_controller_manifests(&spec, None, "vpc-1", &WebhookTls::placeholder());
        assert!(find(&none, "ServiceAccount")["metadata"]
            .get("annotations")
            .is_none());
        for m in &all {
            assert_common_labels(m, "payments");
        }
    }

    #[test]
    fn version_image_and_arguments_are_the_policys_release() {
        assert_eq!(ALB_CONTROLLER_VERSION, "v3.5.0");
        let mut spec = example();
        let all = alb_controller_manifests(&spec, None, "vpc-0abc", &WebhookTls::placeholder());
        let c = &find(&all, "Deployment")["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            c["image"],
            "public.ecr.aws/eks/aws-load-balancer-controller:v3.5.0"
        );
        assert_eq!(
            c["args"],
            json!([
                "--cluster-name=payments-prod",
                "--ingress-class=alb",
                "--aws-region=us-east-1",
                "--aws-vpc-id=vpc-0abc"
            ])
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        spec.identity.service_roles.alb_controller.image_digest = Some(digest.clone());
        assert_eq!(
            alb_controller_image(&spec),
            format!("public.ecr.aws/eks/aws-load-balancer-controller:v3.5.0@{digest}")
        );
        // The vendored CRDs are upstream's four.
        let crds: Vec<&str> = all
            .iter()
            .filter(|m| m["kind"] == "CustomResourceDefinition")
            .filter_map(|m| m["metadata"]["name"].as_str())
            .collect();
        assert_eq!(
            crds,
            [
                "albtargetcontrolconfigs.elbv2.k8s.aws",
                "globalaccelerators.aga.k8s.aws",
                "ingressclassparams.elbv2.k8s.aws",
                "targetgroupbindings.elbv2.k8s.aws"
            ]
        );
    }

    #[test]
    fn installed_release_is_the_vendored_policys() {
        // The role's policy (`shared/data/alb-controller/`, diffed action for action against
        // upstream by `policies::tests`) and the installed objects come from one commit.
        let policy = include_str!("../../data/alb-controller/SOURCE.md");
        let objects = include_str!("../../manifests/alb-controller/v3.5.0/SOURCE.md");
        for source in [policy, objects] {
            assert!(
                source.contains(&format!("`{ALB_CONTROLLER_VERSION}`")),
                "{source}"
            );
            assert!(source.contains("11eb202c97e4ae2ee45e0658c4cde9a4b59f33d4"));
        }
        assert!(alb_controller_image(&example()).ends_with(&format!(":{ALB_CONTROLLER_VERSION}")));
    }

    #[test]
    fn pod_is_hardened_and_runs_on_the_critical_group() {
        let all = alb_controller_manifests(&example(), None, "vpc-1", &WebhookTls::placeholder());
        let pod = &find(&all, "Deployment")["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        assert_eq!(pod["nodeSelector"]["tenantry.io/role"], "critical");
        assert_eq!(pod["priorityClassName"], "tenantry-platform-critical");
        let sc = &pod["containers"][0]["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
        assert!(pod["containers"][0]["resources"]["limits"]["memory"].is_string());
        assert_eq!(
            pod["volumes"][0]["secret"]["secretName"],
            ALB_WEBHOOK.secret
        );
    }

    #[test]
    fn every_webhook_trusts_the_ca_and_names_the_service() {
        let tls = WebhookTls::generate(&ALB_WEBHOOK).expect("tls");
        let all = alb_controller_manifests(&example(), None, "vpc-1", &tls);
        let secret = find(&all, "Secret");
        assert_eq!(secret["metadata"]["name"], "aws-load-balancer-tls");
        assert_eq!(WebhookTls::from_secret(secret), Some(tls.clone()));
        let service = find(&all, "Service");
        assert_eq!(service["metadata"]["name"], ALB_WEBHOOK.service);
        let mut count = 0;
        for kind in [
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
        ] {
            for w in find(&all, kind)["webhooks"].as_array().expect("webhooks") {
                assert_eq!(w["clientConfig"]["caBundle"], tls.ca_bundle());
                assert_eq!(w["clientConfig"]["service"]["name"], ALB_WEBHOOK.service);
                assert_eq!(w["clientConfig"]["service"]["namespace"], ALB_NAMESPACE);
                count += 1;
            }
        }
        assert_eq!(count, 9);
        // The webhooks go last: after the Deployment that answers them.
        let position = |kind: &str| all.iter().position(|m| m["kind"] == kind).unwrap();
        assert!(position("Deployment") < position("MutatingWebhookConfiguration"));
        assert!(position("Secret") < position("Deployment"));
    }

    /// Whether the API server would call `webhook` for `object` on CREATE: every match
    /// condition, evaluated by a CEL interpreter as the API server does, is true.
    fn called_for(webhook: &Value, object: Value) -> bool {
        let mut context = cel_interpreter::Context::default();
        context.add_variable("object", object).expect("object");
        webhook["matchConditions"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|condition| {
                let expression = condition["expression"].as_str().expect("expression");
                let program = cel_interpreter::Program::compile(expression).expect("valid CEL");
                program.execute(&context).expect("evaluates") == true.into()
            })
    }

    /// The Service mutator cannot block Services that are not load balancers: a controller
    /// outage leaves ClusterIP, NodePort and ExternalName Services free to be made, and a
    /// LoadBalancer Service still waits for the controller (fail closed).
    #[test]
    fn only_load_balancer_services_reach_the_service_mutator() {
        let all = alb_controller_manifests(&example(), None, "vpc-1", &WebhookTls::placeholder());
        let mutating = find(&all, "MutatingWebhookConfiguration");
        let service = mutating["webhooks"]
            .as_array()
            .expect("webhooks")
            .iter()
            .find(|w| w["name"] == "mservice.elbv2.k8s.aws")
            .expect("the service mutator");
        assert_eq!(service["failurePolicy"], "Fail");
        let of_type = |kind: &str| json!({ "kind": "Service", "spec": { "type": kind } });
        assert!(called_for(service, of_type("LoadBalancer")));
        for kind in ["ClusterIP", "NodePort", "ExternalName"] {
            assert!(!called_for(service, of_type(kind)), "{kind}");
        }
        // Every other webhook of the controller that fails closed is scoped to its own kinds or
        // opted into by a label, so no other one stands in front of every pod or Service.
        for w in mutating["webhooks"].as_array().expect("webhooks") {
            let resources = &w["rules"][0]["resources"][0];
            if w["failurePolicy"] == "Fail" && (resources == "pods" || resources == "services") {
                let opted_in = w["namespaceSelector"].is_object()
                    || w["objectSelector"]["matchExpressions"]
                        .as_array()
                        .is_some_and(|e| e.iter().any(|e| e["operator"] == "In"));
                assert!(opted_in || w["matchConditions"].is_array(), "{}", w["name"]);
            }
        }
    }

    #[test]
    fn rbac_is_upstreams_without_secrets_or_wildcards() {
        let all = alb_controller_manifests(&example(), None, "vpc-1", &WebhookTls::placeholder());
        let rules = find(&all, "ClusterRole")["rules"]
            .as_array()
            .expect("rules");
        assert!(rules.len() > 10);
        let text = serde_json::to_string(rules).unwrap();
        assert!(!text.contains('*'));
        assert!(!text.contains("\"secrets\""));
        assert_eq!(
            find(&all, "ClusterRoleBinding")["roleRef"]["name"],
            "aws-load-balancer-controller-role"
        );
    }
}
