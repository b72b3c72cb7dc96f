//! The resource catalogue's promises, on the local stack: `tenantry plan` lists exactly what the
//! phases build (kind by kind, count by count, phase by phase, as the inventory records it), and
//! `observe` on a freshly provisioned platform reports nothing and writes nothing.

use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use tenantry::events::RequestKind;
use tenantry::resources::Kind;
use tenantry_gateway::inspect::tagged_resources;

use crate::platform::{env, mutating, platform_calls, Env};

/// Counts per (phase, kind): the plan's, then the recorded inventory's.
async fn plan_and_inventory(
    env: &Env,
) -> (
    BTreeMap<(String, Kind), usize>,
    BTreeMap<(String, Kind), usize>,
) {
    let spec = tenantry::validate::parse_platform(&env.spec.to_string()).expect("valid spec");
    let plan = tenantry::plan::plan(&spec);
    let mut planned = BTreeMap::new();
    for phase in &plan.phases {
        for r in &phase.resources {
            *planned
                .entry((phase.phase.as_str().to_owned(), r.kind))
                .or_default() += 1;
        }
    }
    let mut recorded = BTreeMap::new();
    for r in env.store.list_resources(&spec.id).await.expect("inventory") {
        let kind: Kind = r
            .resource_type
            .parse()
            .unwrap_or_else(|e| panic!("inventory record {} {}: {e}", r.resource_type, r.id));
        if kind.is_resource() {
            *recorded.entry((r.phase, kind)).or_default() += 1;
        }
    }
    (planned, recorded)
}

/// Every role Tenantry made for the platform lives under `/tenantry/` (where no function role
/// lives, so the template's function policies can reach them and not themselves) and carries the
/// permissions boundary; their number is the plan's.
pub(crate) async fn assert_roles_are_bounded(env: &Env) {
    let iam = aws_sdk_iam::Client::new(&env.aws);
    let spec = tenantry::validate::parse_platform(&env.spec.to_string()).expect("valid spec");
    let planned = tenantry::plan::plan(&spec).count_kind(Kind::IamRole);
    let listed = iam
        .list_roles()
        .path_prefix(tenantry::policies::ROLE_PATH)
        .send()
        .await
        .expect("list roles");
    let stem = tenantry::naming::stem(&spec.id, &spec.environment);
    let ours: Vec<_> = listed
        .roles()
        .iter()
        .filter(|r| r.role_name().contains(&stem))
        .collect();
    assert_eq!(ours.len(), planned, "roles under /tenantry/: {ours:?}");
    for role in ours {
        let got = iam
            .get_role()
            .role_name(role.role_name())
            .send()
            .await
            .expect("get role");
        let role = got.role().expect("role");
        assert!(role.arn().contains(":role/tenantry/"), "{}", role.arn());
        assert_eq!(
            role.permissions_boundary()
                .and_then(|b| b.permissions_boundary_arn()),
            Some(tenantry::aws::LOCAL_ROLE_BOUNDARY_ARN),
            "{} has no boundary",
            role.role_name()
        );
    }
}

/// The plan and the inventory list the same resources, and the live census agrees with the
/// plan for every AWS kind it counts.
pub(crate) async fn assert_plan_matches_inventory(env: &Env) {
    let (planned, recorded) = plan_and_inventory(env).await;
    assert_eq!(
        planned,
        recorded,
        "plan (left) and inventory (right) of {}",
        env.platform_id()
    );
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for ((_, kind), n) in &planned {
        *by_kind.entry(kind.as_str()).or_default() += n;
    }
    let live = tagged_resources(&env.aws, &env.platform_id())
        .await
        .expect("census");
    for (kind, n) in &live {
        // EBS CSI's pod identity association is made by its add-on, not planned on its own.
        let expected = by_kind.get(kind).copied().unwrap_or(0)
            + usize::from(*kind == Kind::PodIdentityAssociation.as_str() && pod_identity(env));
        assert_eq!(*n, expected, "{kind}: live {n}, planned {expected}");
    }
}

fn pod_identity(env: &Env) -> bool {
    env.spec["identity"]["podIdentity"] != json!(false)
        && env.spec["addons"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["name"] == "aws-ebs-csi-driver"))
}

/// Every phase's `observe` on a platform just provisioned: no difference, no mutating call.
pub(crate) async fn assert_observe_is_silent(env: &Env) {
    let spec = tenantry::validate::parse_platform(&env.spec.to_string()).expect("valid spec");
    let mut invocations: Vec<(&str, Option<String>)> = [
        "encryption",
        "identity",
        "network",
        "cluster",
        "nodegroups",
        "addons",
        "bootstrap",
        "access",
        "observability",
        "tenant",
    ]
    .into_iter()
    .map(|f| (f, None))
    .collect();
    for t in &spec.tenants {
        invocations.push(("tenant", Some(t.name.clone())));
    }
    env.stack.reset_calls();
    for (function, item) in invocations {
        let payload = json!({
            "platformId": spec.id,
            "requestId": "observe-1",
            "action": "observe",
            "item": item,
        });
        let out = tenantry_integration::invoke(&env.stack, function, &payload)
            .await
            .unwrap_or_else(|e| panic!("observe {function} {item:?}: {e:?}"));
        let drift = out["drift"].as_array().cloned().unwrap_or_default();
        assert!(
            drift.is_empty(),
            "{function} {item:?} reports drift on a fresh platform: {drift:#?}"
        );
        assert_eq!(out["changes"], json!(0), "{function} {item:?}: {out}");
    }
    let calls = platform_calls(&env.stack.calls());
    assert_eq!(
        mutating(&calls),
        0,
        "observe made mutating calls: {:?}",
        env.stack
            .calls()
            .calls
            .iter()
            .filter(|c| c.mutating)
            .map(|c| format!("{} {}", c.service, c.operation))
            .collect::<Vec<_>>()
    );
    assert!(
        calls.values().map(|(_, read)| read).sum::<usize>() > 0,
        "observe read nothing: {calls:?}"
    );
}

/// Provisions a variant of the example, checks the catalogue's promises, decommissions it.
async fn provision_variant(name: &str, patch: impl FnOnce(&mut Value)) {
    let (env, _) = provision_checked(name, patch).await;
    decommission_leaves_nothing(&env, name).await;
}

/// Provisions a variant of the example and checks the catalogue's promises; the env and the
/// provision's execution.
async fn provision_checked(
    name: &str,
    patch: impl FnOnce(&mut Value),
) -> (Env, tenantry_integration::Execution) {
    let mut env = env().await;
    patch(&mut env.spec);
    let run = env
        .run(RequestKind::PlatformProvision, &format!("{name}-1"))
        .await;
    assert_eq!(
        run.status,
        ExecutionStatus::Succeeded,
        "{name}: {:?} {:?}",
        run.cause,
        run.failures()
    );
    assert_plan_matches_inventory(&env).await;
    assert_roles_are_bounded(&env).await;
    assert_observe_is_silent(&env).await;
    (env, run)
}

/// Decommissions the platform and checks that nothing tagged as it is left.
pub(crate) async fn decommission_leaves_nothing(env: &Env, name: &str) {
    let gone = env
        .run(RequestKind::PlatformDecommission, &format!("{name}-gone"))
        .await;
    assert_eq!(gone.status, ExecutionStatus::Succeeded, "{name}");
    let left = tagged_resources(&env.aws, &env.platform_id())
        .await
        .unwrap();
    assert!(left.values().all(|n| *n == 0), "{name} left: {left:?}");
}

#[tokio::test]
async fn plan_matches_inventory_with_other_node_groups_and_no_tenants() {
    provision_variant("groups", |spec| {
        spec["tenants"] = json!([]);
        spec["nodeGroups"] = json!([
            { "name": "system", "role": "critical", "instanceTypes": ["m5.large"],
              "minSize": 2, "desiredSize": 2, "maxSize": 4 },
            { "name": "burst", "role": "batch", "instanceTypes": ["c5.large", "c5a.large"],
              "capacityType": "SPOT", "minSize": 0, "desiredSize": 0, "maxSize": 10 }
        ]);
    })
    .await;
}

/// With IRSA: beyond the catalogue's promises, the AWS Load Balancer Controller and the External
/// Secrets Operator are in the cluster, their ServiceAccounts annotated with their roles, their
/// webhook configurations trusting the CA of the serving certificate in their Secrets; a re-run
/// of bootstrap writes nothing and keeps the pairs; bootstrap's delete removes the operator's
/// objects, and decommission leaves nothing.
#[tokio::test]
async fn plan_matches_inventory_with_irsa_instead_of_pod_identity() {
    let (env, _) = provision_checked("irsa", |spec| {
        spec["identity"]["podIdentity"] = json!(false);
        spec["identity"]["irsa"] = json!(true);
    })
    .await;
    let first = assert_alb_controller_installed(&env).await;
    let payload = json!({ "platformId": env.platform_id(), "requestId": "irsa-bootstrap-again",
                          "action": "ensure" });
    let out = tenantry_integration::invoke(&env.stack, "bootstrap", &payload)
        .await
        .unwrap_or_else(|e| panic!("bootstrap ensure: {e:?}"));
    assert_eq!(out["changes"], json!(0), "a re-run writes nothing: {out}");
    assert_eq!(
        assert_alb_controller_installed(&env).await,
        first,
        "the webhook certificate is kept"
    );
    // The re-run above wrote nothing: external-secrets' webhook pair is kept too.
    assert_external_secrets_installed(&env).await;
    // Bootstrap's delete (decommission's first Kubernetes step, before the cluster and its
    // objects go) removes every object of the operator, CRDs and webhooks included.
    let spec = tenantry::validate::parse_platform(&env.spec.to_string()).expect("valid spec");
    let cluster = tenantry::naming::Names::new(&spec).cluster();
    let kube = env.stack.kube_client_for(&cluster).expect("kube client");
    let objects = external_secrets_objects(&spec);
    let payload = json!({ "platformId": env.platform_id(), "requestId": "irsa-bootstrap-delete",
                          "action": "delete" });
    tenantry_integration::invoke(&env.stack, "bootstrap", &payload)
        .await
        .unwrap_or_else(|e| panic!("bootstrap delete: {e:?}"));
    for m in &objects {
        let live = tenantry::kubernetes::get(&kube, m).await.expect("get");
        assert!(
            live.is_none(),
            "{} {} left",
            m["kind"],
            m["metadata"]["name"]
        );
    }
    decommission_leaves_nothing(&env, "irsa").await;
}

/// The External Secrets Operator's objects as bootstrap renders them for `spec` (names only).
fn external_secrets_objects(spec: &tenantry::spec::PlatformSpec) -> Vec<Value> {
    tenantry::kubernetes::external_secrets_manifests(
        spec,
        None,
        &tenantry::kubernetes::webhook_tls::WebhookTls::placeholder(),
    )
}

/// The External Secrets Operator (the example enables it) as a provisioned IRSA platform has
/// it: its five CRDs, its namespace (Pod Security restricted), its ServiceAccount annotated with
/// its role, both Deployments hardened, the webhook's Secret holding a pair valid for its
/// Service, and both webhook configurations trusting that pair's CA; returns the pair.
async fn assert_external_secrets_installed(
    env: &Env,
) -> tenantry::kubernetes::webhook_tls::WebhookTls {
    use tenantry::kubernetes::{get, webhook_tls::WebhookTls, EXTERNAL_SECRETS_WEBHOOK};
    let spec = tenantry::validate::parse_platform(&env.spec.to_string()).expect("valid spec");
    let cluster = tenantry::naming::Names::new(&spec).cluster();
    let kube = env.stack.kube_client_for(&cluster).expect("kube client");
    let mut live = BTreeMap::new();
    for m in external_secrets_objects(&spec) {
        let got = get(&kube, &m)
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("{} {} is missing", m["kind"], m["metadata"]["name"]));
        let key = format!(
            "{}/{}",
            m["kind"].as_str().unwrap(),
            m["metadata"]["name"].as_str().unwrap()
        );
        live.insert(key, got);
    }
    assert_eq!(live.len(), 18);
    let crds = live
        .keys()
        .filter(|k| k.starts_with("CustomResourceDefinition/"))
        .count();
    assert_eq!(crds, 5);
    assert_eq!(
        live["Namespace/external-secrets"]["metadata"]["labels"]
            ["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    let status = env
        .store
        .get_status(&spec.id)
        .await
        .expect("status")
        .expect("recorded")
        .value;
    let role = status.outputs["serviceRoleArns"]["external-secrets"].clone();
    assert!(role.is_string(), "{:?}", status.outputs);
    assert_eq!(
        live["ServiceAccount/external-secrets"]["metadata"]["annotations"]
            ["eks.amazonaws.com/role-arn"],
        role
    );
    for name in ["external-secrets", "external-secrets-webhook"] {
        let pod = &live[&format!("Deployment/{name}")]["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        assert_eq!(
            c["image"],
            "ghcr.io/external-secrets/external-secrets:v2.9.0"
        );
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
    }
    let tls = WebhookTls::from_secret(&live["Secret/external-secrets-webhook"])
        .expect("a complete TLS Secret");
    assert!(tls.is_valid_for(&EXTERNAL_SECRETS_WEBHOOK, std::time::SystemTime::now()));
    for name in ["secretstore-validate", "externalsecret-validate"] {
        let config = &live[&format!("ValidatingWebhookConfiguration/{name}")];
        let hooks = config["webhooks"].as_array().expect("webhooks");
        assert!(!hooks.is_empty());
        for hook in hooks {
            assert_eq!(hook["clientConfig"]["caBundle"], tls.ca_bundle(), "{name}");
        }
    }
    // No cert-controller: Tenantry makes the certificate.
    let cert_controller = json!({ "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "external-secrets-cert-controller",
                      "namespace": "external-secrets" } });
    assert!(get(&kube, &cert_controller).await.expect("get").is_none());
    tls
}

/// The ALB controller's objects as a provisioned platform has them; returns the webhook pair.
async fn assert_alb_controller_installed(
    env: &Env,
) -> tenantry::kubernetes::webhook_tls::WebhookTls {
    use tenantry::kubernetes::{get, webhook_tls::WebhookTls, ALB_WEBHOOK};
    let spec = tenantry::validate::parse_platform(&env.spec.to_string()).expect("valid spec");
    let cluster = tenantry::naming::Names::new(&spec).cluster();
    let kube = env.stack.kube_client_for(&cluster).expect("kube client");
    let object = |api: &str, kind: &str, ns: Option<&str>, name: &str| {
        let mut m = json!({ "apiVersion": api, "kind": kind, "metadata": { "name": name } });
        if let Some(ns) = ns {
            m["metadata"]["namespace"] = json!(ns);
        }
        m
    };
    let live = |m: Value| {
        let kube = kube.clone();
        async move {
            get(&kube, &m)
                .await
                .expect("get")
                .unwrap_or_else(|| panic!("{m} is missing"))
        }
    };
    let status = env
        .store
        .get_status(&spec.id)
        .await
        .expect("status")
        .expect("recorded")
        .value;
    let role = status.outputs["serviceRoleArns"]["alb-controller"].clone();
    assert!(role.is_string(), "{:?}", status.outputs);
    let sa = live(object(
        "v1",
        "ServiceAccount",
        Some("kube-system"),
        "aws-load-balancer-controller",
    ))
    .await;
    assert_eq!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        role
    );
    let deployment = live(object(
        "apps/v1",
        "Deployment",
        Some("kube-system"),
        "aws-load-balancer-controller",
    ))
    .await;
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"],
        "public.ecr.aws/eks/aws-load-balancer-controller:v3.5.0"
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    let vpc = status.outputs["vpcId"].as_str().expect("vpc id");
    assert!(container["args"]
        .as_array()
        .expect("args")
        .contains(&json!(format!("--aws-vpc-id={vpc}"))));
    let secret = live(object(
        "v1",
        "Secret",
        Some("kube-system"),
        ALB_WEBHOOK.secret,
    ))
    .await;
    let tls = WebhookTls::from_secret(&secret).expect("a complete TLS Secret");
    assert!(tls.is_valid_for(&ALB_WEBHOOK, std::time::SystemTime::now()));
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        let config = live(object(
            "admissionregistration.k8s.io/v1",
            kind,
            None,
            "aws-load-balancer-webhook",
        ))
        .await;
        for hook in config["webhooks"].as_array().expect("webhooks") {
            // The caBundle is the CA the serving certificate chains to (checked above).
            assert_eq!(hook["clientConfig"]["caBundle"], tls.ca_bundle(), "{kind}");
        }
    }
    live(object(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
        "targetgroupbindings.elbv2.k8s.aws",
    ))
    .await;
    // The admission policy that keeps LoadBalancer Services with the controller, in force.
    let policy = live(object(
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicy",
        None,
        "tenantry-load-balancer-class",
    ))
    .await;
    assert_eq!(
        policy["spec"]["matchConditions"][0]["expression"],
        "object.spec.type == 'LoadBalancer'"
    );
    let binding = live(object(
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicyBinding",
        None,
        "tenantry-load-balancer-class",
    ))
    .await;
    assert_eq!(binding["spec"]["validationActions"], json!(["Deny"]));
    // external-dns (the example enables it): its namespace, its annotated account, its pod.
    let dns_role = status.outputs["serviceRoleArns"]["external-dns"].clone();
    assert!(dns_role.is_string());
    let dns_sa = live(object(
        "v1",
        "ServiceAccount",
        Some("external-dns"),
        "external-dns",
    ))
    .await;
    assert_eq!(
        dns_sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        dns_role
    );
    let dns = live(object(
        "apps/v1",
        "Deployment",
        Some("external-dns"),
        "external-dns",
    ))
    .await;
    assert_eq!(
        dns["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.k8s.io/external-dns/external-dns:v0.22.0"
    );
    tls
}

/// The example with Calico in place of the VPC CNI (`cni: calico`, no `vpc-cni` add-on; the pod
/// CIDR becomes Calico's pool). Beyond the catalogue's promises: Calico's operator, CRDs and
/// Installation (its IP pool on the pod CIDR, VXLAN) are in the cluster, applied before any node
/// group; no VPC CNI add-on exists and the pod CIDR is not the VPC's; CoreDNS is ready only with
/// Calico there; the tenants' NetworkPolicies are in place; decommissioning leaves nothing.
#[tokio::test]
async fn calico_variant_provisions_and_plan_matches_inventory() {
    let (env, run) = provision_checked("calico", |spec| {
        spec["cni"] = json!("calico");
        let kept: Vec<Value> = spec["addons"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["name"] != "vpc-cni")
            .cloned()
            .collect();
        spec["addons"] = json!(kept);
    })
    .await;
    let spec = tenantry::validate::parse_platform(&env.spec.to_string()).expect("valid spec");
    let cluster = tenantry::naming::Names::new(&spec).cluster();
    let kube = env.stack.kube_client_for(&cluster).expect("kube client");

    // Calico went in first: its step ended before the first node group was created.
    let position = |exited: bool, state: &str| {
        run.history.iter().position(|e| {
            let name = if exited {
                e.state_exited_event_details().map(|d| d.name())
            } else {
                e.state_entered_event_details().map(|d| d.name())
            };
            name == Some(state)
        })
    };
    let calico = position(true, "Calico").expect("the Calico step ran");
    let first_group = position(false, "NodeGroup").expect("node groups ran");
    assert!(
        calico < first_group,
        "Calico ({calico}) before nodes ({first_group})"
    );

    // The operator, its CRDs and the Installation with its pool on the pod CIDR.
    let all = tenantry::kubernetes::calico_manifests(&spec);
    for m in &all {
        assert!(
            tenantry::kubernetes::get(&kube, m)
                .await
                .expect("get")
                .is_some(),
            "{} {} is missing",
            m["kind"],
            m["metadata"]["name"]
        );
    }
    let installation = tenantry::kubernetes::get(&kube, all.last().expect("installation"))
        .await
        .expect("get")
        .expect("installation");
    let pool = &installation["spec"]["calicoNetwork"]["ipPools"][0];
    assert_eq!(pool["cidr"], "100.64.0.0/16");
    assert_eq!(pool["encapsulation"], "VXLAN");
    assert_eq!(installation["spec"]["cni"]["ipam"]["type"], "Calico");

    // No VPC CNI add-on, and the pod CIDR is not part of the VPC.
    let eks = aws_sdk_eks::Client::new(&env.aws);
    let addons = eks
        .list_addons()
        .cluster_name(&cluster)
        .send()
        .await
        .expect("list add-ons");
    assert!(
        !addons.addons().iter().any(|a| a == "vpc-cni"),
        "{addons:?}"
    );
    assert!(addons.addons().iter().any(|a| a == "coredns"), "{addons:?}");
    let vpcs = aws_sdk_ec2::Client::new(&env.aws)
        .describe_vpcs()
        .filters(tenantry_gateway::inspect::tag_filter(&spec.id))
        .send()
        .await
        .expect("vpcs");
    for vpc in vpcs.vpcs() {
        assert!(
            vpc.cidr_block_association_set()
                .iter()
                .all(|a| !a.cidr_block().unwrap_or_default().starts_with("100.64.")),
            "{vpc:?}"
        );
    }

    // Every tenant's NetworkPolicies are in place (Calico enforces them).
    for tenant in &spec.tenants {
        let policies: kube::Api<k8s_openapi::api::networking::v1::NetworkPolicy> =
            kube::Api::namespaced(kube.clone(), &tenant.name);
        let names: Vec<String> = policies
            .list(&Default::default())
            .await
            .expect("list policies")
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        for wanted in tenantry::kubernetes::TENANT_NETWORK_POLICIES {
            assert!(
                names.iter().any(|n| n == wanted),
                "{}: {names:?}",
                tenant.name
            );
        }
    }

    // A compliance sweep passes every control, network policy enforcement judged on Calico's
    // Installation.
    let report = crate::compliance::sweep(&env, "calico-compliance").await;
    crate::compliance::assert_all_pass(&report);
    let enforced = report
        .results
        .iter()
        .find(|r| r.control == "TNY-NET-4")
        .expect("TNY-NET-4 judged");
    assert_eq!(
        enforced.status,
        tenantry::compliance::Status::Pass,
        "{enforced:?}"
    );

    // CoreDNS is ready only with Calico: without the Installation it is DEGRADED and the
    // add-on's poll says not ready; with Calico back (bootstrap's `calico` item) it is ready.
    let installation_stub = all.last().expect("installation");
    assert!(tenantry::kubernetes::delete(&kube, installation_stub)
        .await
        .expect("delete installation"));
    let poll = |action: &'static str, item: &'static str, function: &'static str| {
        let payload = json!({"platformId": spec.id, "requestId": "calico-coredns",
                             "action": action, "item": item});
        let stack = &env.stack;
        async move {
            tenantry_integration::invoke(stack, function, &payload)
                .await
                .unwrap_or_else(|e| panic!("{function} {action} {item}: {e:?}"))
        }
    };
    let described = eks
        .describe_addon()
        .cluster_name(&cluster)
        .addon_name("coredns")
        .send()
        .await
        .expect("describe coredns");
    assert_eq!(
        described
            .addon()
            .and_then(|a| a.status())
            .map(|s| s.as_str()),
        Some("DEGRADED")
    );
    let out = poll("ensure", "coredns", "addons").await;
    assert_eq!(out["ready"], json!(false), "DEGRADED is not ready: {out}");
    let out = poll("ensure", "calico", "bootstrap").await;
    assert_eq!(out["changes"], json!(1), "the Installation again: {out}");
    let out = poll("ensure", "coredns", "addons").await;
    assert_eq!(out["ready"], json!(true), "ready with Calico: {out}");

    decommission_leaves_nothing(&env, "calico").await;
    assert!(
        tenantry::kubernetes::get(&kube, installation_stub)
            .await
            .expect("get")
            .is_none(),
        "the cluster's objects are gone with it"
    );
}
