//! The bootstrap phase: what Tenantry puts inside the cluster, server-side applied to the
//! Kubernetes API double (`tenantry-kube-double`, served in process), with the example's custom
//! networking, so the `ENIConfig`s are among the objects.

use std::sync::Arc;

use aws_sdk_eks::types::ClusterStatus;
use serde_json::{json, Value};
use tenantry_kube_double::KubeDoubles;

use super::eks::EksDouble;
use super::{drift_fields, Calls, Rules, Stage};
use crate::kubernetes;
use crate::kubernetes::webhook_tls::WebhookTls;
use crate::naming::Names;
use crate::phases::objects::{object_id, object_kind};
use crate::phases::outputs;
use crate::phases::Action;
use crate::plan::Phase;

const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
const POD_SUBNETS: [&str; 3] = ["subnet-pods-a", "subnet-pods-b", "subnet-pods-c"];
const CLUSTER_GROUP: &str = "sg-cluster";
const DATA_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/data";
const AUTOSCALER_ROLE: &str = "arn:aws:iam::123456789012:role/autoscaler";
const ALB_ROLE: &str = "arn:aws:iam::123456789012:role/alb";
const VPC: &str = "vpc-0123";

struct World {
    s: Stage,
    eks: EksDouble,
    kube: Arc<KubeDoubles>,
    /// A client of the cluster's double, through the same HTTP front the phase uses.
    client: kube::Client,
    _server: tokio::task::JoinHandle<()>,
}

impl World {
    /// The bootstrap phase of the example, its cluster ACTIVE and its double empty.
    async fn new() -> World {
        let calls = Calls::default();
        let eks = EksDouble::new(&calls);
        let (endpoint, kube, server) = super::active_cluster(&eks, &super::example_spec()).await;
        let outputs = [
            ("clusterEndpoint", json!(endpoint)),
            (outputs::DATA_KEY_ARN.key, json!(DATA_KEY)),
            (
                outputs::SERVICE_ROLE_ARNS.key,
                json!({ "cluster-autoscaler": AUTOSCALER_ROLE, "alb-controller": ALB_ROLE }),
            ),
            (outputs::VPC_ID.key, json!(VPC)),
            (outputs::AVAILABILITY_ZONES.key, json!(ZONES)),
            (outputs::POD_SUBNET_IDS.key, json!(POD_SUBNETS)),
            (outputs::CLUSTER_SECURITY_GROUP_ID.key, json!(CLUSTER_GROUP)),
        ];
        let rules = Rules {
            eks: eks.rules(),
            ..Rules::default()
        };
        let client = kube::Client::try_from(kube::Config::new(endpoint.parse().expect("url")))
            .expect("client");
        World {
            s: Stage::new(Phase::Bootstrap, &calls, rules, &outputs),
            eks,
            kube,
            client,
            _server: server,
        }
    }

    /// Runs an action; the Kubernetes requests it made are counted from a clean log.
    async fn run(&self, action: Action) -> crate::phases::PhaseOutput {
        self.kube.clear_requests();
        self.s.run(action).await
    }

    /// The live object a manifest names, if any.
    async fn live(&self, manifest: &Value) -> Option<Value> {
        kubernetes::get(&self.client, manifest).await.expect("get")
    }

    fn eni_config(&self, zone: &str) -> Value {
        json!({ "apiVersion": "crd.k8s.amazonaws.com/v1alpha1", "kind": "ENIConfig",
                "metadata": { "name": zone } })
    }

    /// Every object the example's bootstrap renders, as the phase renders them.
    fn desired(&self) -> Vec<Value> {
        let spec = &self.s.spec;
        let role =
            (spec.identity.trust() == crate::spec::TrustMechanism::Irsa).then_some(AUTOSCALER_ROLE);
        let mut all = kubernetes::bootstrap_manifests(spec, role);
        all.extend(kubernetes::storage_manifests(spec, DATA_KEY));
        // The controllers (certificates are placeholders here: names and counts only).
        let irsa = spec.identity.trust() == crate::spec::TrustMechanism::Irsa;
        let roles = std::collections::BTreeMap::from([(
            crate::naming::ROLE_ALB_CONTROLLER.to_owned(),
            ALB_ROLE.to_owned(),
        )]);
        all.extend(kubernetes::controller_manifests(
            spec,
            &if irsa { roles } else { Default::default() },
            VPC,
            &Default::default(),
        ));
        let subnets: Vec<kubernetes::PodSubnet> = ZONES
            .iter()
            .zip(POD_SUBNETS)
            .map(|(z, s)| kubernetes::PodSubnet {
                zone: (*z).to_owned(),
                subnet_id: s.to_owned(),
            })
            .collect();
        all.extend(kubernetes::eni_config_manifests(
            spec,
            &subnets,
            CLUSTER_GROUP,
        ));
        all
    }
}

#[tokio::test]
async fn fresh_cluster_gets_every_object_recorded_including_an_eni_config_per_zone() {
    let w = World::new().await;
    let out = w.run(Action::Ensure).await;
    assert!(out.ready);
    let desired = w.desired();
    assert_eq!(out.outputs["bootstrapObjects"], json!(desired.len()));
    // One server-side apply per object, nothing else written.
    let writes = w.kube.writes();
    assert_eq!(writes.len(), desired.len(), "{writes:#?}");
    assert!(
        writes.iter().all(|r| r.starts_with("PATCH ")),
        "{writes:#?}"
    );
    assert_eq!(out.changes as usize, desired.len());
    for m in &desired {
        assert!(w.live(m).await.is_some(), "{}", object_id(m));
        assert!(
            w.s.recorded(object_kind(m).unwrap(), &object_id(m)),
            "{} recorded",
            object_id(m)
        );
    }
    for (zone, subnet) in ZONES.iter().zip(POD_SUBNETS) {
        let live = w.live(&w.eni_config(zone)).await.expect("ENIConfig");
        assert_eq!(live["spec"]["subnet"], subnet);
        assert_eq!(live["spec"]["securityGroups"], json!([CLUSTER_GROUP]));
        assert!(
            live["metadata"].get("namespace").is_none(),
            "cluster-scoped"
        );
    }
}

/// The world with `cni: calico` (the example's vpc-cni add-on left out).
async fn calico_world() -> World {
    let mut w = World::new().await;
    w.s.spec.cni = crate::spec::Cni::Calico;
    if let Some(addons) = &mut w.s.spec.addons {
        addons.retain(|a| a.name != "vpc-cni");
    }
    w
}

#[tokio::test]
async fn calico_item_applies_calico_alone_then_the_full_run_finds_it_applied() {
    let mut w = calico_world().await;
    let calico = kubernetes::calico_manifests(&w.s.spec);
    assert_eq!(calico.len(), 40);
    w.s.item = Some(crate::phases::bootstrap::CALICO_ITEM.to_owned());
    let out = w.run(Action::Ensure).await;
    assert!(out.ready);
    assert_eq!(out.changes as usize, calico.len());
    let writes = w.kube.writes();
    assert_eq!(writes.len(), calico.len(), "Calico only: {writes:#?}");
    // CRDs before the Installation, which the double refuses without its CRD.
    assert!(writes[writes.len() - 1].ends_with("/apis/operator.tigera.io/v1/installations/default"));
    for m in &calico {
        assert!(w.live(m).await.is_some(), "{}", object_id(m));
        assert!(w.s.recorded(object_kind(m).unwrap(), &object_id(m)));
    }
    // No ENIConfig: the pod CIDR is Calico's pool.
    assert!(w.live(&w.eni_config(ZONES[0])).await.is_none());
    // Converged: a re-run writes nothing.
    assert_eq!(w.run(Action::Ensure).await.changes, 0);
    assert_eq!(w.kube.writes(), Vec::<String>::new());
    // The full run applies the rest and keeps Calico (nothing pruned, nothing re-applied).
    w.s.item = None;
    let out = w.run(Action::Ensure).await;
    let desired = w.desired();
    assert_eq!(out.changes as usize, desired.len());
    assert_eq!(w.kube.writes().len(), desired.len());
    assert_eq!(
        out.outputs["bootstrapObjects"],
        json!(desired.len() + calico.len())
    );
    assert!(w.run(Action::Observe).await.drift.is_empty());
    // Delete removes Calico too, the Installation first.
    w.run(Action::Delete).await;
    for m in &calico {
        assert!(w.live(m).await.is_none(), "{} deleted", object_id(m));
    }
    assert!(w.s.store.inventory().is_empty());
}

#[tokio::test]
async fn an_installation_whose_pool_was_changed_is_named_then_put_back() {
    let w = calico_world().await;
    w.run(Action::Ensure).await;
    let installation = kubernetes::installation(&w.s.spec, "100.64.0.0/16");
    let resource = kubernetes::resource_of("operator.tigera.io/v1", "Installation")
        .expect("known kind")
        .resource;
    let api: kube::Api<kube::api::DynamicObject> = kube::Api::all_with(w.client.clone(), &resource);
    let mut pool = installation["spec"]["calicoNetwork"]["ipPools"][0].clone();
    pool["cidr"] = json!("192.168.0.0/16");
    api.patch(
        "default",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({ "spec": { "calicoNetwork": { "ipPools": [pool] } } })),
    )
    .await
    .expect("out-of-band change");

    let observed = w.run(Action::Observe).await;
    assert_eq!(
        drift_fields(&observed),
        [(
            "k8s:operator.tigera.io/v1/Installation//default".to_owned(),
            "spec".to_owned()
        )]
    );
    assert_eq!(w.kube.writes(), Vec::<String>::new(), "observe wrote");
    let repaired = w.run(Action::Ensure).await;
    assert_eq!(repaired.changes, 1);
    let live = w.live(&installation).await.expect("installation");
    assert_eq!(
        live["spec"]["calicoNetwork"]["ipPools"][0]["cidr"],
        "100.64.0.0/16"
    );
    assert!(w.run(Action::Observe).await.drift.is_empty());
}

#[tokio::test]
async fn calico_half_applied_before_a_crash_applies_only_the_rest() {
    let mut w = calico_world().await;
    let calico = kubernetes::calico_manifests(&w.s.spec);
    for m in &calico[..25] {
        kubernetes::apply(&w.client, m).await.expect("apply");
    }
    w.s.item = Some(crate::phases::bootstrap::CALICO_ITEM.to_owned());
    let out = w.run(Action::Ensure).await;
    assert_eq!(out.changes as usize, calico.len() - 25);
    assert_eq!(w.kube.writes().len(), calico.len() - 25);
    for m in &calico {
        assert!(w.s.recorded(object_kind(m).unwrap(), &object_id(m)));
    }
}

#[tokio::test]
async fn converged_cluster_costs_no_write_and_observe_is_silent() {
    let w = World::new().await;
    w.run(Action::Ensure).await;
    let again = w.run(Action::Ensure).await;
    assert_eq!((again.ready, again.changes), (true, 0));
    assert_eq!(w.kube.writes(), Vec::<String>::new());
    let observed = w.run(Action::Observe).await;
    assert!(observed.drift.is_empty(), "{:?}", drift_fields(&observed));
    assert_eq!(w.kube.writes(), Vec::<String>::new());
    assert!(w.s.calls.mutating_aws().is_empty());
}

#[tokio::test]
async fn an_eni_config_pointed_at_a_node_subnet_is_named_then_put_back() {
    let w = World::new().await;
    w.run(Action::Ensure).await;
    let api: kube::Api<kubernetes::EniConfig> = kube::Api::all(w.client.clone());
    api.patch(
        ZONES[1],
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({ "spec": { "subnet": "subnet-node-b" } })),
    )
    .await
    .expect("out-of-band change");

    let observed = w.run(Action::Observe).await;
    assert_eq!(
        drift_fields(&observed),
        [(
            format!("k8s:crd.k8s.amazonaws.com/v1alpha1/ENIConfig//{}", ZONES[1]),
            "spec".to_owned()
        )]
    );
    assert_eq!(w.kube.writes(), Vec::<String>::new(), "observe wrote");

    let repaired = w.run(Action::Ensure).await;
    assert_eq!(repaired.changes, 1);
    assert_eq!(
        w.kube.writes(),
        [format!(
            "PATCH /clusters/{}/apis/crd.k8s.amazonaws.com/v1alpha1/eniconfigs/{}",
            Names::new(&w.s.spec).cluster(),
            ZONES[1]
        )]
    );
    let live = w.live(&w.eni_config(ZONES[1])).await.unwrap();
    assert_eq!(live["spec"]["subnet"], POD_SUBNETS[1]);
    assert!(w.run(Action::Observe).await.drift.is_empty());
}

#[tokio::test]
async fn half_applied_before_a_crash_applies_only_the_rest_and_records_all() {
    let w = World::new().await;
    let desired = w.desired();
    let (done, rest) = desired.split_at(desired.len() / 2);
    // A run that crashed after applying `done`, before recording anything. (A webhook's TLS
    // Secret is rendered here with placeholders, which the run would replace: the crashed run
    // had applied a real pair, so such a Secret counts as not yet applied.)
    let (done, unapplied): (Vec<&Value>, Vec<&Value>) =
        done.iter().partition(|m| m["kind"] != "Secret");
    for m in done {
        kubernetes::apply(&w.client, m).await.expect("apply");
    }
    let out = w.run(Action::Ensure).await;
    assert!(out.ready);
    assert_eq!(out.changes as usize, rest.len() + unapplied.len());
    assert_eq!(w.kube.writes().len(), rest.len() + unapplied.len());
    for m in &desired {
        assert!(w.s.recorded(object_kind(m).unwrap(), &object_id(m)));
    }
}

#[tokio::test]
async fn eni_configs_no_longer_wanted_are_deleted_and_forgotten() {
    let mut w = World::new().await;
    w.run(Action::Ensure).await;
    // The platform turns custom networking off (no pod CIDR).
    w.s.spec.network.pod_cidr = None;
    let out = w.run(Action::Ensure).await;
    assert_eq!(out.changes, 3, "the three ENIConfigs deleted");
    let writes = w.kube.writes();
    assert_eq!(writes.len(), 3, "{writes:#?}");
    assert!(writes.iter().all(|r| r.starts_with("DELETE ")));
    for zone in ZONES {
        assert!(w.live(&w.eni_config(zone)).await.is_none());
        assert!(!w.s.recorded(
            crate::resources::Kind::EniConfig,
            &object_id(&w.eni_config(zone))
        ));
    }
}

#[tokio::test]
async fn delete_removes_the_objects_but_never_a_system_namespace() {
    let w = World::new().await;
    w.run(Action::Ensure).await;
    let out = w.run(Action::Delete).await;
    assert!(out.ready);
    for m in w.desired() {
        let live = w.live(&m).await;
        if kubernetes::deletable(&m) {
            assert!(live.is_none(), "{} deleted", object_id(&m));
        } else {
            assert!(live.is_some(), "{} kept", object_id(&m));
        }
    }
    assert!(w.s.store.inventory().is_empty(), "inventory forgotten");
}

#[tokio::test]
async fn gone_cluster_deletes_without_a_kubernetes_call() {
    let w = World::new().await;
    w.run(Action::Ensure).await;
    w.eks.edit(&Names::new(&w.s.spec).cluster(), |c| {
        c.status = Some(ClusterStatus::Deleting)
    });
    w.eks.settle();
    let out = w.run(Action::Delete).await;
    assert!(out.ready);
    assert_eq!(w.kube.requests(), Vec::<String>::new());
    assert!(w.s.store.inventory().is_empty());
    // Deleting again converges.
    assert!(w.run(Action::Delete).await.ready);
}

/// The ALB controller's webhook Secret, named.
fn alb_secret() -> Value {
    let w = kubernetes::ALB_WEBHOOK;
    json!({ "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": w.secret, "namespace": w.namespace } })
}

fn webhook_configuration(kind: &str) -> Value {
    json!({ "apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
            "metadata": { "name": kubernetes::ALB_WEBHOOK_CONFIGURATION } })
}

/// The live webhook pair, checked: valid for the service, and every webhook of both
/// configurations trusts its CA.
async fn live_webhook_tls(w: &World) -> WebhookTls {
    let secret = w.live(&alb_secret()).await.expect("the webhook Secret");
    assert_eq!(secret["type"], "kubernetes.io/tls");
    let tls = WebhookTls::from_secret(&secret).expect("ca.crt, tls.crt, tls.key");
    assert!(tls.is_valid_for(&kubernetes::ALB_WEBHOOK, std::time::SystemTime::now()));
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        let live = w.live(&webhook_configuration(kind)).await.expect(kind);
        let hooks = live["webhooks"].as_array().expect("webhooks");
        assert!(!hooks.is_empty());
        for hook in hooks {
            assert_eq!(hook["clientConfig"]["caBundle"], tls.ca_bundle(), "{kind}");
        }
    }
    tls
}

#[tokio::test]
async fn the_alb_controller_gets_a_webhook_certificate_once_and_keeps_it() {
    let w = World::new().await;
    w.run(Action::Ensure).await;
    let first = live_webhook_tls(&w).await;
    let account = w
        .live(&json!({ "apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": { "name": "aws-load-balancer-controller",
                                     "namespace": "kube-system" } }))
        .await
        .expect("service account");
    // The example trusts Pod Identity: no IRSA annotation (the addons phase associates it).
    assert!(account["metadata"]["annotations"]
        .get(kubernetes::IRSA_ANNOTATION)
        .is_none());
    let again = w.run(Action::Ensure).await;
    assert_eq!(again.changes, 0);
    assert_eq!(w.kube.writes(), Vec::<String>::new());
    assert_eq!(live_webhook_tls(&w).await, first, "not rotated by a re-run");
}

#[tokio::test]
async fn a_lost_webhook_secret_is_named_without_its_key_then_remade_with_a_matching_ca_bundle() {
    let w = World::new().await;
    w.run(Action::Ensure).await;
    let first = live_webhook_tls(&w).await;
    assert!(kubernetes::delete(&w.client, &alb_secret())
        .await
        .expect("delete"));
    let observed = w.run(Action::Observe).await;
    assert_eq!(
        w.kube.writes(),
        Vec::<String>::new(),
        "observe writes nothing"
    );
    let fields = drift_fields(&observed);
    assert!(
        fields
            .iter()
            .any(|(r, _)| r.contains("Secret/kube-system/aws-load-balancer-tls")),
        "{fields:?}"
    );
    let report = serde_json::to_string(&observed.drift).expect("json");
    assert!(!report.contains("PRIVATE KEY") && !report.contains("LS0tLS1CRUdJTiBQUklWQVRF"));
    let out = w.run(Action::Ensure).await;
    assert!(
        out.changes >= 3,
        "the Secret and both webhook configurations"
    );
    let second = live_webhook_tls(&w).await;
    assert_ne!(second.ca_pem, first.ca_pem, "a new pair");
}

#[tokio::test]
async fn a_disabled_controller_is_removed_and_forgotten() {
    let mut w = World::new().await;
    w.run(Action::Ensure).await;
    let alb: Vec<Value> = w
        .desired()
        .into_iter()
        .filter(|m| {
            m["metadata"]["labels"]["app.kubernetes.io/name"] == "aws-load-balancer-controller"
                || (m["kind"] == "CustomResourceDefinition"
                    && m["spec"]["group"]
                        .as_str()
                        .is_some_and(|g| g.ends_with(".k8s.aws")))
        })
        .collect();
    // 13 objects and 4 CRDs, the load-balancer-class admission policy and binding among them.
    assert_eq!(alb.len(), 17);
    w.s.spec.identity.service_roles.alb_controller.enabled = false;
    let out = w.run(Action::Ensure).await;
    assert_eq!(out.changes as usize, alb.len());
    for m in &alb {
        assert!(w.live(m).await.is_none(), "{} removed", object_id(m));
        assert!(!w.s.recorded(object_kind(m).unwrap(), &object_id(m)));
    }
}

/// external-secrets (the example enables it): its webhook serves a pair Tenantry made, both
/// webhook configurations trust its CA, a re-run keeps it; switched off, its 18 objects (CRDs,
/// namespace, RBAC, Deployments, webhooks) are removed and forgotten.
#[tokio::test]
async fn external_secrets_gets_its_webhook_certificate_and_is_removed_when_disabled() {
    let mut w = World::new().await;
    w.run(Action::Ensure).await;
    let service = kubernetes::EXTERNAL_SECRETS_WEBHOOK;
    let secret = json!({ "apiVersion": "v1", "kind": "Secret",
                         "metadata": { "name": service.secret, "namespace": service.namespace } });
    let live = w.live(&secret).await.expect("the webhook Secret");
    let tls = WebhookTls::from_secret(&live).expect("ca.crt, tls.crt, tls.key");
    assert!(tls.is_valid_for(&service, std::time::SystemTime::now()));
    for name in kubernetes::EXTERNAL_SECRETS_WEBHOOK_CONFIGURATIONS {
        let config = w
            .live(&json!({ "apiVersion": "admissionregistration.k8s.io/v1",
                           "kind": "ValidatingWebhookConfiguration",
                           "metadata": { "name": name } }))
            .await
            .expect(name);
        for hook in config["webhooks"].as_array().expect("webhooks") {
            assert_eq!(hook["clientConfig"]["caBundle"], tls.ca_bundle(), "{name}");
        }
    }
    assert_eq!(w.run(Action::Ensure).await.changes, 0);
    let again = w.live(&secret).await.expect("the webhook Secret");
    assert_eq!(
        WebhookTls::from_secret(&again),
        Some(tls),
        "not rotated by a re-run"
    );
    let eso: Vec<Value> = w
        .desired()
        .into_iter()
        .filter(|m| {
            m["metadata"]["namespace"] == kubernetes::EXTERNAL_SECRETS_NAMESPACE
                || m["metadata"]["labels"]["app.kubernetes.io/name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("external-secrets"))
                || m["spec"]["group"]
                    .as_str()
                    .is_some_and(|g| g.ends_with("external-secrets.io"))
        })
        .collect();
    assert_eq!(eso.len(), 18);
    w.s.spec.identity.service_roles.external_secrets.enabled = false;
    let out = w.run(Action::Ensure).await;
    assert_eq!(out.changes as usize, eso.len());
    for m in &eso {
        assert!(w.live(m).await.is_none(), "{} removed", object_id(m));
        assert!(!w.s.recorded(object_kind(m).unwrap(), &object_id(m)));
    }
}
