//! Every Kubernetes manifest Tenantry renders passes `kubernetes-validate --strict` against the
//! OpenAPI schemas of the platform's Kubernetes version: the check that keeps the manifests (and
//! the local stack's API double, which accepts whatever it is given) honest.
//!
//! Rendered for `examples/platform.json` (vpc-cni, IRSA and Pod Identity, OIDC group mappings;
//! rendered with an IRSA role ARN so the annotation is checked too) and for a variant
//! with Pod Identity only and no identity provider, at every Kubernetes version EKS supports.
//! Both also render the tenant of `examples/tenant.json` (the example with its tenant role ARN
//! as the IRSA annotation, the Pod Identity variant without); the tenant objects are also rendered for
//! an IRSA-only variant of the example (with the role ARN, for the example tenant and a tenant
//! with every default) at every supported version. Calico's objects (the vendored operator and
//! CRDs, and the `Installation`, against its CRD) are checked at every supported version too.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use tenantry::kubernetes::{
    access_manifests, bootstrap_manifests, eni_config_manifests, tenant_manifests, PodSubnet,
};
use tenantry::spec::{PlatformSpec, TenantSpec, SUPPORTED_KUBERNETES_VERSIONS};

const AUTOSCALER_ROLE: &str =
    "arn:aws:iam::111122223333:role/tenantry/tenantry-payments-prod-cluster-autoscaler";
const TENANT_ROLE: &str =
    "arn:aws:iam::111122223333:role/tenantry/tenantry-payments-prod-t-fraud-scoring";

fn example_json() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/platform.json");
    let text = std::fs::read_to_string(&path).expect("examples/platform.json is readable");
    serde_json::from_str(&text).expect("examples/platform.json is JSON")
}

fn example_tenant() -> TenantSpec {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/tenant.json");
    let text = std::fs::read_to_string(&path).expect("examples/tenant.json is readable");
    tenantry::validate::parse_tenant(&text).unwrap_or_else(|e| panic!("tenant is invalid: {e}"))
}

fn parse(value: &Value) -> PlatformSpec {
    tenantry::validate::parse_platform(&value.to_string())
        .unwrap_or_else(|e| panic!("spec is invalid: {e}"))
}

/// The example with Pod Identity only and no OIDC identity provider.
fn pod_identity_only(version: &str) -> PlatformSpec {
    let mut v = example_json();
    v["kubernetesVersion"] = json!(version);
    v["identity"]["irsa"] = json!(false);
    v["identity"]["podIdentity"] = json!(true);
    if let Some(access) = v["access"].as_object_mut() {
        access.remove("oidcIdentityProvider");
    }
    let spec = parse(&v);
    assert!(spec.access.oidc_identity_provider.is_none());
    spec
}

/// `.venv/bin/kubernetes-validate` in the nearest ancestor of this crate (`make setup`).
fn kubernetes_validate() -> PathBuf {
    let start = Path::new(env!("CARGO_MANIFEST_DIR"));
    start
        .ancestors()
        .map(|dir| dir.join(".venv/bin/kubernetes-validate"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "kubernetes-validate not found in .venv/bin of {} or any parent: run `make setup` \
                 (it installs requirements-dev.txt); this check is never skipped",
                start.display()
            )
        })
}

fn file_name(index: usize, manifest: &Value) -> String {
    let part = |v: &Value| {
        v.as_str()
            .unwrap_or("none")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect::<String>()
    };
    format!(
        "{index:02}-{}-{}-{}.json",
        part(&manifest["kind"]),
        part(&manifest["metadata"]["namespace"]),
        part(&manifest["metadata"]["name"])
    )
}

/// Writes `manifests` to a fresh directory and runs kubernetes-validate --strict on them for
/// the spec's version; fails with the tool's output unless it exits 0 having passed them all.
fn validate(label: &str, spec: &PlatformSpec, manifests: &[Value]) {
    assert!(!manifests.is_empty(), "{label}: nothing rendered");
    let dir =
        std::env::temp_dir().join(format!("tenantry-manifests-{}-{label}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut files = Vec::new();
    for (i, manifest) in manifests.iter().enumerate() {
        let path = dir.join(file_name(i, manifest));
        let text = serde_json::to_string_pretty(manifest).expect("serialisable");
        std::fs::write(&path, text).expect("writing manifest");
        files.push(path);
    }
    let version = format!("{}.0", spec.kubernetes_version);
    let out = Command::new(kubernetes_validate())
        .arg("--strict")
        .arg("--kubernetes-version")
        .arg(&version)
        .args(&files)
        .output()
        .expect("kubernetes-validate runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{label}: kubernetes-validate --strict -k {version} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let passed = stdout.lines().filter(|l| l.contains(" passed ")).count();
    assert_eq!(
        passed,
        files.len(),
        "{label}: every manifest must pass:\n{stdout}\n{stderr}"
    );
    assert!(
        !stdout.contains("WARN") && !stderr.contains("WARN"),
        "{label}: warnings:\n{stdout}\n{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `ENIConfig`s of custom networking pass the vendored CRD's schema, strictly
/// (`scripts/validate_crd.py`; kubernetes-validate knows only built-in kinds), and a wrong one
/// fails it.
#[test]
fn eni_configs_pass_the_vpc_cnis_crd_schema() {
    let spec = parse(&example_json());
    let subnets: Vec<PodSubnet> = ["a", "b", "c"]
        .iter()
        .map(|z| PodSubnet {
            zone: format!("us-east-1{z}"),
            subnet_id: format!("subnet-0{z}"),
        })
        .collect();
    let good = eni_config_manifests(&spec, &subnets, "sg-0123");
    assert_eq!(good.len(), 3);
    let mut bad = good[0].clone();
    bad["spec"]["securityGroup"] = serde_json::json!("sg-0123");
    let root = kubernetes_validate()
        .ancestors()
        .nth(3)
        .expect("the repository root")
        .to_owned();
    let run = |label: &str, manifests: &[Value]| {
        let dir = std::env::temp_dir().join(format!("tenantry-crd-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let files: Vec<_> = manifests
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let path = dir.join(file_name(i, m));
                std::fs::write(&path, m.to_string()).expect("writing manifest");
                path
            })
            .collect();
        let out = Command::new(root.join(".venv/bin/python"))
            .arg(root.join("scripts/validate_crd.py"))
            .arg(root.join("shared/data/vpc-cni/eniconfig-crd.yaml"))
            .args(&files)
            .output()
            .expect("validate_crd.py runs");
        let _ = std::fs::remove_dir_all(&dir);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, out) = run("good", &good);
    assert!(ok, "{out}");
    assert_eq!(out.matches(": valid").count(), 3, "{out}");
    let (ok, out) = run("bad", &[bad]);
    assert!(!ok && out.contains("securityGroup"), "{out}");
}

/// The example with Calico in place of the VPC CNI (as `tests/it` derives it).
fn calico(version: &str) -> PlatformSpec {
    let mut v = example_json();
    v["kubernetesVersion"] = json!(version);
    let mut spec = parse(&v);
    spec.cni = tenantry::spec::Cni::Calico;
    if let Some(addons) = &mut spec.addons {
        addons.retain(|a| a.name != "vpc-cni");
    }
    spec
}

/// Runs `scripts/<script>` with the venv's python in the repository root; (success, stdout and
/// stderr).
fn python_script(script: &str, args: &[&std::ffi::OsStr]) -> (bool, String) {
    let root = kubernetes_validate()
        .ancestors()
        .nth(3)
        .expect("the repository root")
        .to_owned();
    let out = Command::new(root.join(".venv/bin/python"))
        .arg(root.join("scripts").join(script))
        .args(args)
        .current_dir(&root)
        .output()
        .expect("the script runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Calico's objects: the vendored operator and CRDs pass kubernetes-validate --strict at every
/// supported version, the `Installation` passes the vendored Installation CRD's schema strictly
/// (and a misspelt field fails it), and `objects.json` is what the vendored YAML derives.
#[test]
fn calico_manifests_pass_kubernetes_validate_and_the_installation_crd() {
    let (ok, out) = python_script(
        "vendor_calico.py",
        &[
            "--check".as_ref(),
            "shared/manifests/calico/v3.31.7".as_ref(),
        ],
    );
    assert!(ok, "{out}");
    for version in SUPPORTED_KUBERNETES_VERSIONS {
        let spec = calico(version);
        let all = tenantry::kubernetes::calico_manifests(&spec);
        let (builtin, custom): (Vec<Value>, Vec<Value>) =
            all.into_iter().partition(|m| m["kind"] != "Installation");
        assert_eq!(builtin.len(), 39, "{version}");
        assert_eq!(custom.len(), 1, "{version}");
        validate(&format!("calico-{version}"), &spec, &builtin);
    }
    let spec = calico("1.35");
    let installation = tenantry::kubernetes::installation(&spec, "100.64.0.0/16");
    let crd = tenantry::kubernetes::vendored_objects()
        .iter()
        .find(|o| o["metadata"]["name"] == "installations.operator.tigera.io")
        .expect("the Installation CRD is vendored");
    let dir = std::env::temp_dir().join(format!("tenantry-calico-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let crd_path = dir.join("crd.json");
    std::fs::write(&crd_path, crd.to_string()).expect("crd");
    let good = dir.join("installation.json");
    std::fs::write(&good, installation.to_string()).expect("installation");
    let mut wrong = installation.clone();
    wrong["spec"]["calicoNetwork"]["ipPools"][0]["encapsulaton"] = json!("VXLAN");
    let bad = dir.join("bad.json");
    std::fs::write(&bad, wrong.to_string()).expect("bad");
    let (ok, out) = python_script("validate_crd.py", &[crd_path.as_ref(), good.as_ref()]);
    assert!(ok && out.contains(": valid"), "{out}");
    let (ok, out) = python_script("validate_crd.py", &[crd_path.as_ref(), bad.as_ref()]);
    assert!(!ok && out.contains("encapsulaton"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn example_manifests_pass_kubernetes_validate_strict() {
    let spec = parse(&example_json());
    let mut all = bootstrap_manifests(&spec, Some(AUTOSCALER_ROLE));
    all.extend(access_manifests(&spec));
    all.extend(tenant_manifests(
        &spec,
        &example_tenant(),
        Some(TENANT_ROLE),
    ));
    all.extend(tenantry::kubernetes::storage_manifests(
        &spec,
        "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    ));
    // The platform's own tenants too: ledger's `allowFrom` adds two NetworkPolicies, one of them
    // in checkout's namespace.
    for tenant in &spec.tenants {
        all.extend(tenant_manifests(&spec, tenant, None));
    }
    // 4 namespaces, default's service account, 4 priority classes, 7 autoscaler objects, 2 group
    // bindings, 11 objects of the example tenant, the default StorageClass; then 3 × 11 + 2.
    assert_eq!(all.len(), 65);
    validate("example", &spec, &all);
}

#[test]
fn pod_identity_only_manifests_pass_at_every_supported_version() {
    for version in SUPPORTED_KUBERNETES_VERSIONS {
        let spec = pod_identity_only(version);
        let mut all = bootstrap_manifests(&spec, None);
        all.extend(access_manifests(&spec));
        all.extend(tenant_manifests(&spec, &example_tenant(), None));
        assert_eq!(all.len(), 27, "{version}");
        let accounts: Vec<&Value> = all
            .iter()
            .filter(|m| m["kind"] == "ServiceAccount")
            .collect();
        assert_eq!(
            accounts.len(),
            4,
            "autoscaler and tenant service accounts, and the default accounts of default and the tenant"
        );
        for sa in accounts {
            assert!(sa["metadata"].get("annotations").is_none(), "{sa}");
        }
        validate(&format!("pod-identity-{version}"), &spec, &all);
    }
}

/// The example with IRSA as the only trust mechanism (tenant egress without the Pod Identity
/// agent rule).
fn irsa_only(version: &str) -> PlatformSpec {
    let mut v = example_json();
    v["kubernetesVersion"] = json!(version);
    v["identity"]["irsa"] = json!(true);
    v["identity"]["podIdentity"] = json!(false);
    parse(&v)
}

#[test]
fn tenant_manifests_pass_at_every_supported_version() {
    let defaults =
        tenantry::validate::parse_tenant(r#"{"name":"checkout","costCentre":"cc-1000"}"#)
            .unwrap_or_else(|e| panic!("tenant is invalid: {e}"));
    for version in SUPPORTED_KUBERNETES_VERSIONS {
        let spec = irsa_only(version);
        let mut all = tenant_manifests(&spec, &example_tenant(), Some(TENANT_ROLE));
        all.extend(tenant_manifests(&spec, &defaults, Some(TENANT_ROLE)));
        assert_eq!(all.len(), 22, "{version}");
        validate(&format!("tenant-irsa-{version}"), &spec, &all);
    }
}

/// The Fargate example (`examples/payments-fargate.json`): its bootstrap objects with Fargate
/// logging's `aws-observability` namespace and `aws-logging` ConfigMap, and its tenants' objects,
/// at every supported version.
#[test]
fn fargate_example_manifests_pass_at_every_supported_version() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/payments-fargate.json");
    let text = std::fs::read_to_string(&path).expect("examples/payments-fargate.json is readable");
    let mut v: Value = serde_json::from_str(&text).expect("JSON");
    for version in SUPPORTED_KUBERNETES_VERSIONS {
        v["kubernetesVersion"] = json!(version);
        let spec = parse(&v);
        let mut all = bootstrap_manifests(&spec, Some(AUTOSCALER_ROLE));
        let logging: Vec<&Value> = all
            .iter()
            .filter(|m| {
                m["metadata"]["name"] == "aws-logging"
                    || m["metadata"]["name"] == "aws-observability"
            })
            .collect();
        assert_eq!(logging.len(), 2, "{version}");
        for tenant in &spec.tenants {
            all.extend(tenant_manifests(&spec, tenant, Some(TENANT_ROLE)));
        }
        validate(&format!("fargate-{version}"), &spec, &all);
    }
}

/// A Fargate tenant's `SecurityGroupPolicy` passes the VPC resource controller's vendored CRD
/// schema strictly, and a misspelt field fails it.
#[test]
fn security_group_policies_pass_the_vpc_resource_controllers_crd_schema() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/payments-fargate.json");
    let text = std::fs::read_to_string(&path).expect("examples/payments-fargate.json is readable");
    let spec = parse(&serde_json::from_str(&text).expect("JSON"));
    let tenant = spec
        .tenants
        .iter()
        .find(|t| t.fargate.is_some())
        .expect("a Fargate tenant");
    let policy = tenantry::kubernetes::security_group_policy(&spec, tenant, "sg-0123");
    let dir = std::env::temp_dir().join(format!("tenantry-sgp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let crd = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/vpc-resource-controller/securitygrouppolicy-crd.yaml");
    let good = dir.join("policy.json");
    std::fs::write(&good, policy.to_string()).expect("policy");
    let mut wrong = policy.clone();
    wrong["spec"]["securityGroups"]["groupId"] = json!(["sg-0123"]);
    let bad = dir.join("bad.json");
    std::fs::write(&bad, wrong.to_string()).expect("bad");
    let (ok, out) = python_script("validate_crd.py", &[crd.as_ref(), good.as_ref()]);
    assert!(ok && out.contains(": valid"), "{out}");
    let (ok, out) = python_script("validate_crd.py", &[crd.as_ref(), bad.as_ref()]);
    assert!(!ok && out.contains("groupId"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_invalid_manifest_fails_the_check() {
    // The check itself can fail: a field the schema does not know is refused under --strict.
    let spec = parse(&example_json());
    let mut bad = bootstrap_manifests(&spec, None);
    bad.truncate(1);
    bad[0]["metadata"]["labelz"] = json!({"x": "y"});
    let dir = std::env::temp_dir().join(format!("tenantry-manifests-{}-bad", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("bad.json");
    std::fs::write(&path, bad[0].to_string()).expect("write");
    let out = Command::new(kubernetes_validate())
        .args(["--strict", "--kubernetes-version", "1.35.0"])
        .arg(&path)
        .output()
        .expect("kubernetes-validate runs");
    assert!(!out.status.success(), "labelz must be refused");
    let _ = std::fs::remove_dir_all(&dir);
}

const ALB_ROLE: &str =
    "arn:aws:iam::111122223333:role/tenantry/tenantry-payments-prod-alb-controller";
const DNS_ROLE: &str =
    "arn:aws:iam::111122223333:role/tenantry/tenantry-payments-prod-external-dns";
const ESO_ROLE: &str =
    "arn:aws:iam::111122223333:role/tenantry/tenantry-payments-prod-external-secrets";

/// The controllers' objects (external-dns; the AWS Load Balancer Controller and the External
/// Secrets Operator: vendored CRDs, RBAC, webhook Service, TLS Secret with a real generated
/// pair, Deployments, IngressClass, webhook configurations, the load-balancer-class admission
/// policy and its binding) pass kubernetes-validate --strict at every supported version, under
/// IRSA (annotated ServiceAccounts) and Pod Identity; each vendored `objects.json` is what its
/// YAML derives.
#[test]
fn controller_manifests_pass_at_every_supported_version() {
    use std::collections::BTreeMap;
    use tenantry::kubernetes::webhook_tls::WebhookTls;
    for vendored in [
        "shared/manifests/alb-controller/v3.5.0",
        "shared/manifests/external-secrets/v2.9.0",
    ] {
        let (ok, out) = python_script("vendor_crds.py", &["--check".as_ref(), vendored.as_ref()]);
        assert!(ok, "{out}");
    }
    let certs: BTreeMap<String, WebhookTls> = [
        tenantry::kubernetes::ALB_WEBHOOK,
        tenantry::kubernetes::EXTERNAL_SECRETS_WEBHOOK,
    ]
    .iter()
    .map(|w| {
        let tls = WebhookTls::generate(w).expect("a webhook certificate");
        (w.secret.to_owned(), tls)
    })
    .collect();
    for version in SUPPORTED_KUBERNETES_VERSIONS {
        for (label, spec, roles) in [
            (
                "irsa",
                irsa_only(version),
                BTreeMap::from([
                    ("alb-controller".to_owned(), ALB_ROLE.to_owned()),
                    ("external-dns".to_owned(), DNS_ROLE.to_owned()),
                    ("external-secrets".to_owned(), ESO_ROLE.to_owned()),
                ]),
            ),
            ("pod-identity", pod_identity_only(version), BTreeMap::new()),
        ] {
            let all = tenantry::kubernetes::controller_manifests(&spec, &roles, "vpc-0123", &certs);
            assert_eq!(all.len(), 40, "{label} {version}");
            for (namespace, name, role) in [
                ("kube-system", "aws-load-balancer-controller", ALB_ROLE),
                ("external-dns", "external-dns", DNS_ROLE),
                ("external-secrets", "external-secrets", ESO_ROLE),
            ] {
                let sa = all
                    .iter()
                    .find(|m| {
                        m["kind"] == "ServiceAccount"
                            && m["metadata"]["namespace"] == namespace
                            && m["metadata"]["name"] == name
                    })
                    .expect("sa");
                assert_eq!(
                    sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].as_str(),
                    (label == "irsa").then_some(role),
                    "{label} {name}"
                );
            }
            validate(&format!("controllers-{label}-{version}"), &spec, &all);
        }
    }
}
