//! The Kubernetes side of a platform on the local stack's API double (kube-fake-client behind
//! the gateway, over HTTP, as handlers reach it through DescribeCluster's endpoint): every
//! bootstrap and access manifest of `examples/platform.json` is applied with server-side apply
//! and read back, a second apply writes nothing, drift is repaired, and deletes are idempotent.

use serde_json::{json, Value};
use tenantry::error::ErrorType;
use tenantry::kubernetes::{
    access_manifests, apply, apply_all, bootstrap_manifests, connect, deletable, delete, get,
    Client, DIGEST_ANNOTATION,
};

const AUTOSCALER_ROLE: &str =
    "arn:aws:iam::111122223333:role/tenantry-payments-prod-cluster-autoscaler";

fn find<'a>(all: &'a [Value], kind: &str) -> &'a Value {
    all.iter()
        .find(|m| m["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} rendered"))
}

fn id(m: &Value) -> String {
    format!(
        "{} {}/{}",
        m["kind"].as_str().unwrap_or("?"),
        m["metadata"]["namespace"].as_str().unwrap_or(""),
        m["metadata"]["name"].as_str().unwrap_or("?")
    )
}

async fn live(client: &Client, m: &Value) -> Value {
    match get(client, m).await {
        Ok(Some(v)) => v,
        Ok(None) => panic!("{} does not exist", id(m)),
        Err(e) => panic!("reading {}: {e}", id(m)),
    }
}

#[tokio::test]
async fn bootstrap_manifests_apply_idempotently_to_the_cluster_double() {
    let stack = tenantry_integration::stack().await;
    let aws = stack.sdk_config().await;
    let spec = tenantry_integration::example_spec();
    let endpoint = stack.kube_endpoint_for("demo");
    assert!(endpoint.starts_with("http://"), "{endpoint}");
    let client = connect(&aws, "demo", &endpoint, None)
        .await
        .expect("client on the double");

    let mut all = bootstrap_manifests(&spec, Some(AUTOSCALER_ROLE));
    all.extend(access_manifests(&spec));
    assert_eq!(all.len(), 18);

    // First apply on an empty double: everything is written.
    for m in &all {
        assert!(get(&client, m).await.expect("get").is_none(), "{}", id(m));
        let changed = apply(&client, m)
            .await
            .unwrap_or_else(|e| panic!("applying {}: {e}", id(m)));
        assert!(changed, "first apply of {} must write", id(m));
    }

    // Each object exists with the rendered fields.
    for m in &all {
        let l = live(&client, m).await;
        for (k, v) in m["metadata"]["labels"].as_object().expect("labels") {
            assert_eq!(&l["metadata"]["labels"][k], v, "{} label {k}", id(m));
        }
        assert!(
            l["metadata"]["annotations"][DIGEST_ANNOTATION].is_string(),
            "{}: {l}",
            id(m)
        );
    }
    let kube_system = live(&client, &all[0]).await;
    assert_eq!(kube_system["metadata"]["name"], "kube-system");
    assert_eq!(
        kube_system["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "privileged"
    );
    assert_eq!(
        kube_system["metadata"]["labels"]["pod-security.kubernetes.io/warn-version"],
        "v1.35"
    );
    let default_ns = live(&client, &all[3]).await;
    assert_eq!(
        default_ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "baseline"
    );
    let autoscaler = all
        .iter()
        .find(|m| m["kind"] == "ServiceAccount" && m["metadata"]["namespace"] == "kube-system")
        .expect("the autoscaler's service account");
    let sa = live(&client, autoscaler).await;
    assert_eq!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        AUTOSCALER_ROLE
    );
    // `default`'s service account mounts no token (CIS EKS 4.1.5).
    let default_sa = all
        .iter()
        .find(|m| m["kind"] == "ServiceAccount" && m["metadata"]["namespace"] == "default")
        .expect("default's service account");
    assert_eq!(
        live(&client, default_sa).await["automountServiceAccountToken"],
        false
    );
    let deployment = live(&client, find(&all, "Deployment")).await;
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["args"],
        json!([
            "--cloud-provider=aws",
            "--expander=priority",
            "--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/payments-prod",
            "--balance-similar-node-groups",
            "--skip-nodes-with-system-pods=false"
        ])
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["priorityClassName"],
        "tenantry-platform-critical"
    );
    let cm = live(&client, find(&all, "ConfigMap")).await;
    assert!(
        cm["data"]["priorities"]
            .as_str()
            .is_some_and(|p| p.starts_with("50:\n  - '^eks-payments-prod-general-spot-")),
        "{cm}"
    );
    let binding = all
        .iter()
        .find(|m| m["metadata"]["name"] == "tenantry:platform-admins")
        .expect("group binding");
    let binding = live(&client, binding).await;
    assert_eq!(binding["roleRef"]["name"], "cluster-admin");
    assert_eq!(
        binding["subjects"][0]["name"],
        "aad:3f2a1b0c-9d8e-7f6a-5b4c-3d2e1f0a9b8c"
    );

    // Second apply: nothing changes, nothing is written.
    assert_eq!(apply_all(&client, &all).await.expect("re-apply"), 0);

    // Drift (someone edits the Deployment's args with Tenantry's manager) is repaired, once.
    let rendered = find(&all, "Deployment").clone();
    let mut drifted = rendered.clone();
    drifted["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["--cloud-provider=aws"]);
    assert!(apply(&client, &drifted).await.expect("drift"));
    assert!(apply(&client, &rendered).await.expect("repair"));
    assert!(!apply(&client, &rendered).await.expect("settled"));
    let repaired = live(&client, &rendered).await;
    assert_eq!(
        repaired["spec"]["template"]["spec"]["containers"][0]["args"],
        rendered["spec"]["template"]["spec"]["containers"][0]["args"]
    );

    // A field no longer rendered (the IRSA annotation after a switch to Pod Identity) changes
    // the digest, so the manifest is applied again (server-side apply then drops the field).
    let without_role = bootstrap_manifests(&spec, None);
    let sa_now = without_role
        .iter()
        .find(|m| m["kind"] == "ServiceAccount" && m["metadata"]["namespace"] == "kube-system")
        .expect("the autoscaler's service account");
    assert!(apply(&client, sa_now).await.expect("sa without role"));
    assert!(!apply(&client, sa_now).await.expect("sa settled"));

    // Delete in reverse order: gone, and deleting again is Ok(false). The cluster's own
    // namespaces are refused.
    for m in all.iter().rev() {
        if !deletable(m) {
            let e = delete(&client, m).await.expect_err("system namespace");
            assert_eq!(e.error_type, ErrorType::InvalidRequest, "{e}");
            assert!(get(&client, m).await.expect("get").is_some());
            continue;
        }
        assert!(
            delete(&client, m)
                .await
                .unwrap_or_else(|e| panic!("deleting {}: {e}", id(m))),
            "{} existed",
            id(m)
        );
        assert!(
            get(&client, m).await.expect("get").is_none(),
            "{} is gone",
            id(m)
        );
        assert!(
            !delete(&client, m).await.expect("second delete"),
            "{} was already gone",
            id(m)
        );
    }
}

#[tokio::test]
async fn unknown_kinds_are_refused_before_any_call() {
    let stack = tenantry_integration::stack().await;
    let aws = stack.sdk_config().await;
    let client = connect(&aws, "other", &stack.kube_endpoint_for("other"), None)
        .await
        .expect("client");
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": "x", "namespace": "default"}});
    let e = apply(&client, &pod)
        .await
        .expect_err("pods are not rendered");
    assert_eq!(e.error_type, ErrorType::InvalidRequest);
}

/// Calico's objects (the vendored operator and CRDs, then the Installation) server-side apply in
/// order to the double, which refuses the Installation until its CRD is there, as an API server
/// would; a second apply writes nothing and the deletes leave nothing.
#[tokio::test]
async fn calico_manifests_apply_in_order_to_the_cluster_double() {
    let stack = tenantry_integration::stack().await;
    let aws = stack.sdk_config().await;
    let mut spec = tenantry_integration::example_spec();
    spec.cni = tenantry::spec::Cni::Calico;
    let client = connect(&aws, "calico", &stack.kube_endpoint_for("calico"), None)
        .await
        .expect("client on the double");
    let all = tenantry::kubernetes::calico_manifests(&spec);
    assert_eq!(
        all.len(),
        40,
        "32 CRDs, 7 operator objects, the Installation"
    );
    let installation = all.last().expect("installation");
    assert_eq!(installation["kind"], "Installation");

    // Before its CRD, the Installation's kind does not exist.
    let early = apply(&client, installation)
        .await
        .expect_err("no Installation before its CRD");
    assert_eq!(early.error_type, ErrorType::Terminal, "{early:?}");
    assert!(early.error_message.contains("404"), "{early:?}");

    assert_eq!(apply_all(&client, &all).await.expect("apply"), all.len());
    let live_installation = live(&client, installation).await;
    let pool = &live_installation["spec"]["calicoNetwork"]["ipPools"][0];
    assert_eq!(pool["cidr"], "100.64.0.0/16");
    assert_eq!(pool["encapsulation"], "VXLAN");
    assert_eq!(live_installation["spec"]["kubernetesProvider"], "EKS");
    let operator = find(&all, "Deployment");
    assert_eq!(
        live(&client, operator).await["spec"]["template"]["spec"]["containers"][0]["image"],
        format!(
            "quay.io/tigera/operator:{}",
            tenantry::kubernetes::OPERATOR_VERSION
        )
    );
    // Converged: nothing to write.
    assert_eq!(apply_all(&client, &all).await.expect("re-apply"), 0);

    let deleted = tenantry::kubernetes::delete_all(&client, &all)
        .await
        .expect("delete");
    assert_eq!(deleted, all.len());
    for m in &all {
        assert!(
            get(&client, m).await.unwrap_or(None).is_none(),
            "{} is left",
            id(m)
        );
    }
}
