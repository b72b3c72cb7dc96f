//! Tenant onboarding and offboarding end to end, the way users do it: a platform provisioned
//! through the bus with no tenants of its own, then `TenantOnboardingRequested` /
//! `TenantOffboardingRequested` events on the Tenantry bus → EventBridge rule → SQS → intake →
//! `onboard-tenant` / `offboard-tenant` (the real ASL on moto's interpreter) → the `tenant` phase
//! function → AWS (moto and the gateway's EKS extras) and the cluster's Kubernetes double.
//!
//! Every assertion reads what the services store (IAM, KMS, S3, EKS, the Kubernetes double, the
//! state table, Step Functions), and compares documents with the ones Tenantry renders
//! (`tenantry::policies::tenant_*`), so that a rendering that is right but never applied, or
//! applied to the wrong tenant, fails here.

use aws_sdk_sfn::types::ExecutionStatus;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tenantry::aws::Clients;
use tenantry::events::RequestKind;
use tenantry::policies::{self, Target};
use tenantry::spec::{PlatformSpec, TenantSpec};
use tenantry::store::{PlatformStatus, RequestState, Store, TenantState};
use tenantry::validate::rules;
use tenantry_gateway::control_plane::ControlPlane;
use tenantry_gateway::{CallLog, LocalStack};
use tenantry_integration::{iam_matches, scoped_values, Execution};

const PLATFORM: &str = "payments";
const ACCOUNT: &str = tenantry::aws::LOCAL_ACCOUNT_ID;
/// Services Tenantry uses for its own bookkeeping (state, workflows, events), not the platform.
const CONTROL_PLANE_SERVICES: &[&str] = &["dynamodb", "states", "events", "sqs", "sts"];
const DAY: f64 = 86_400.0;

fn owner(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

/// A pod identity association as described: (id, role ARN, disableSessionTags, tags).
type Association = (String, String, Option<bool>, BTreeMap<String, String>);

/// A tenant onboarding request's `tenant`.
fn tenant_json(name: &str, cost_centre: &str, owners: &[&str]) -> Value {
    json!({
        "name": name,
        "costCentre": cost_centre,
        "owners": owners.iter().map(|o| owner(o)).collect::<Vec<_>>(),
    })
}

fn onboarding(request_id: &str, tenant: &Value) -> (String, Value) {
    (
        RequestKind::TenantOnboarding.detail_type(),
        json!({"schemaVersion": "1", "requestId": request_id, "platformId": PLATFORM, "tenant": tenant}),
    )
}

fn offboarding(
    request_id: &str,
    name: &str,
    retain: Option<bool>,
    schedule: Option<bool>,
) -> (String, Value) {
    let mut detail = json!({"schemaVersion": "1", "requestId": request_id, "platformId": PLATFORM, "tenantName": name});
    if let Some(r) = retain {
        detail["retainData"] = json!(r);
    }
    if let Some(s) = schedule {
        detail["scheduleKeyDeletion"] = json!(s);
    }
    (RequestKind::TenantOffboarding.detail_type(), detail)
}

fn platform_request(kind: RequestKind, request_id: &str, spec: Option<&Value>) -> (String, Value) {
    let mut detail = json!({"schemaVersion": "1", "requestId": request_id, "platformId": PLATFORM});
    if let Some(spec) = spec {
        detail["spec"] = spec.clone();
    }
    (kind.detail_type(), detail)
}

/// Result events read from a queue an EventBridge rule fills with everything Tenantry publishes;
/// kept, so that waiting for one never loses the others.
struct Results {
    sqs: aws_sdk_sqs::Client,
    url: String,
    seen: Mutex<Vec<(String, Value)>>,
}

impl Results {
    async fn new(aws: &aws_config::SdkConfig) -> Results {
        let sqs = aws_sdk_sqs::Client::new(aws);
        let url = tenantry_integration::results_queue(aws, &sqs, "tenant-results").await;
        Results {
            sqs,
            url,
            seen: Mutex::new(Vec::new()),
        }
    }

    /// Reads what arrived (waiting up to `wait_secs` for the first message).
    async fn drain(&self, wait_secs: i32) -> usize {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_secs)
            .send()
            .await
            .expect("receive results");
        let messages = out.messages();
        for m in messages {
            let envelope: Value = serde_json::from_str(m.body().unwrap_or("{}")).expect("envelope");
            let detail_type = envelope["detail-type"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            self.seen
                .lock()
                .unwrap()
                .push((detail_type, envelope["detail"].clone()));
            if let Some(handle) = m.receipt_handle() {
                self.sqs
                    .delete_message()
                    .queue_url(&self.url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("delete result");
            }
        }
        messages.len()
    }

    /// The result `detail_type` about `request_id` (panics after 60 s).
    async fn wait(&self, request_id: &str, detail_type: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(found) = self.find(request_id, detail_type) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no {detail_type} for {request_id}; seen: {:?}",
                self.types_for(request_id)
            );
            self.drain(1).await;
        }
    }

    fn find(&self, request_id: &str, detail_type: &str) -> Option<Value> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .find(|(t, d)| t == detail_type && d["requestId"] == request_id)
            .map(|(_, d)| d.clone())
    }

    /// Detail-types received so far about `request_id`, in arrival order.
    fn types_for(&self, request_id: &str) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, d)| d["requestId"] == request_id)
            .map(|(t, _)| t.clone())
            .collect()
    }
}

struct Env {
    stack: LocalStack,
    control_plane: ControlPlane,
    aws: aws_config::SdkConfig,
    store: Store,
    /// `examples/platform.json` with `tenants: []`: the platform onboards none itself.
    spec_json: Value,
    results: Results,
    /// IAM, KMS, EKS and S3 clients (the test crate has no S3 SDK of its own: the product's
    /// client bundle carries one).
    c: Clients,
    sfn: aws_sdk_sfn::Client,
}

async fn env() -> Env {
    env_with(tenantry_gateway::control_plane::ESM_CONCURRENCY).await
}

/// An environment whose event source mapping works on `batches` batches at once (1: in the
/// queue's order).
async fn env_with(batches: usize) -> Env {
    std::env::set_var("TENANTRY_POLL_SECONDS", "1");
    let stack = tenantry_integration::stack().await;
    let control_plane = tenantry_gateway::control_plane::deploy_with(&stack, batches)
        .await
        .expect("control plane");
    let aws = stack.sdk_config().await;
    let store = Store::from_config(&aws, stack.table_name());
    let mut spec_json: Value =
        serde_json::from_str(include_str!("../../examples/platform.json")).expect("example");
    spec_json["tenants"] = json!([]);
    let results = Results::new(&aws).await;
    Env {
        c: Clients::new(&aws),
        sfn: aws_sdk_sfn::Client::new(&aws),
        stack,
        control_plane,
        aws,
        store,
        spec_json,
        results,
    }
}

/// The provisioned platform: its spec as stored, its status, and what follows from them.
struct Platform {
    spec: PlatformSpec,
    status: PlatformStatus,
    cluster: String,
    bucket: String,
    data_key: String,
    stem: String,
}

impl Platform {
    fn target(&self) -> Target<'_> {
        Target::new(&self.spec, ACCOUNT, &self.spec.region)
    }
}

impl Env {
    /// Puts request events on the Tenantry bus, ten per `PutEvents` call (the API's maximum).
    async fn put(&self, requests: &[(String, Value)]) {
        let events = aws_sdk_eventbridge::Client::new(&self.aws);
        for chunk in requests.chunks(10) {
            let entries = chunk
                .iter()
                .map(|(detail_type, detail)| {
                    aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                        .event_bus_name(tenantry::events::event_bus())
                        .source("tests")
                        .detail_type(detail_type)
                        .detail(detail.to_string())
                        .build()
                })
                .collect::<Vec<_>>();
            let out = events
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .expect("put events");
            assert_eq!(out.failed_entry_count(), 0);
        }
    }

    /// Waits for intake's verdict on a recorded request.
    async fn verdict(&self, request_id: &str) -> tenantry::store::RequestInfo {
        for _ in 0..400 {
            if let Some(info) = self.store.get_request(request_id).await.unwrap() {
                if info.state != RequestState::Accepted || info.execution_arn.is_some() {
                    return info;
                }
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        panic!("intake never answered request {request_id}");
    }

    /// Waits for a request to be started and its execution to end.
    async fn finish(&self, request_id: &str) -> Execution {
        let t0 = Instant::now();
        let info = self.verdict(request_id).await;
        // Started, or already finished by the time it is read.
        assert!(
            info.state != RequestState::Rejected && info.execution_arn.is_some(),
            "{request_id} not started: {:?} {:?}",
            info.state,
            info.error
        );
        let arn = info.execution_arn.expect("execution ARN");
        let mut run =
            tenantry_integration::wait_execution(&self.sfn, &arn, Duration::from_secs(180)).await;
        run.elapsed = t0.elapsed();
        run
    }

    /// Waits for a request to end SUCCEEDED; returns its execution.
    async fn succeeded(&self, request_id: &str) -> Execution {
        let run = self.finish(request_id).await;
        assert_eq!(
            run.status,
            ExecutionStatus::Succeeded,
            "{request_id}: {:?} {:?} {:?}",
            run.error,
            run.cause,
            run.failures()
        );
        run
    }

    /// Provisions the platform (no tenants) through the bus.
    async fn provision(&self) -> Platform {
        self.put(&[platform_request(
            RequestKind::PlatformProvision,
            "provision-1",
            Some(&self.spec_json),
        )])
        .await;
        let run = self.succeeded("provision-1").await;
        eprintln!(
            "provision (no tenants): {:.1}s, {} state transitions",
            run.elapsed.as_secs_f64(),
            run.transitions()
        );
        let stored = self.store.get_spec(PLATFORM).await.unwrap().expect("spec");
        let spec: PlatformSpec = serde_json::from_value(stored.value).expect("stored spec");
        assert!(
            spec.tenants.is_empty(),
            "the platform has no tenants of its own"
        );
        let expected =
            tenantry::validate::parse_platform(&self.spec_json.to_string()).expect("valid spec");
        assert_eq!(spec, expected, "the stored spec is the request's");
        let status = self
            .store
            .get_status(PLATFORM)
            .await
            .unwrap()
            .unwrap()
            .value;
        let names = tenantry::naming::Names::new(&spec);
        Platform {
            cluster: status.outputs["clusterName"].as_str().unwrap().to_owned(),
            data_key: status.outputs["dataKeyArn"].as_str().unwrap().to_owned(),
            bucket: names.bucket(),
            stem: names.stem().to_owned(),
            spec,
            status,
        }
    }

    async fn executions(&self, workflow: &str) -> Vec<(String, ExecutionStatus)> {
        let arn = &self.control_plane.state_machines[workflow];
        let mut out: Vec<(String, ExecutionStatus)> = self
            .sfn
            .list_executions()
            .state_machine_arn(arn)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .expect("list executions")
            .iter()
            .map(|e| (e.name().to_owned(), e.status().clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    async fn tenant_spec(&self, name: &str) -> TenantSpec {
        self.store
            .get_tenant_record(PLATFORM, name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no record of tenant {name}"))
            .value
            .spec
    }

    /// Roles named like tenant roles (`tenantry-<stem>-t-*`).
    async fn tenant_roles(&self, p: &Platform) -> BTreeSet<String> {
        let prefix = format!("tenantry-{}-t-", p.stem);
        self.c
            .iam()
            .list_roles()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .expect("list roles")
            .iter()
            .map(|r| r.role_name().to_owned())
            .filter(|n| n.starts_with(&prefix))
            .collect()
    }

    async fn role_tags(&self, role: &str) -> BTreeMap<String, String> {
        self.c
            .iam()
            .list_role_tags()
            .role_name(role)
            .send()
            .await
            .unwrap_or_else(|e| panic!("tags of {role}: {e:?}"))
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect()
    }

    /// Roles tagged `tenantry:tenant=<name>`.
    async fn roles_tagged_with_tenant(&self, name: &str) -> Vec<String> {
        let roles = self
            .c
            .iam()
            .list_roles()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .expect("list roles");
        let mut out = Vec::new();
        for r in &roles {
            let tags = self.role_tags(r.role_name()).await;
            if tags.get("tenantry:tenant").map(String::as_str) == Some(name) {
                out.push(r.role_name().to_owned());
            }
        }
        out
    }

    async fn role_exists(&self, role: &str) -> bool {
        match self.c.iam().get_role().role_name(role).send().await {
            Ok(_) => true,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_no_such_entity_exception()) =>
            {
                false
            }
            Err(e) => panic!("get role {role}: {e:?}"),
        }
    }

    async fn key(&self, key: &str) -> Option<aws_sdk_kms::types::KeyMetadata> {
        match self.c.kms().describe_key().key_id(key).send().await {
            Ok(out) => out.key_metadata().cloned(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_not_found_exception()) =>
            {
                None
            }
            Err(e) => panic!("describe key {key}: {e:?}"),
        }
    }

    async fn key_tags(&self, key_id: &str) -> BTreeMap<String, String> {
        self.c
            .kms()
            .list_resource_tags()
            .key_id(key_id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("tags of key {key_id}: {e:?}"))
            .tags()
            .iter()
            .map(|t| (t.tag_key().to_owned(), t.tag_value().to_owned()))
            .collect()
    }

    /// Every key tagged `tenantry:tenant=<name>`: (key id, state).
    async fn keys_tagged_with_tenant(&self, name: &str) -> Vec<(String, String)> {
        let keys = self
            .c
            .kms()
            .list_keys()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .expect("list keys");
        let mut out = Vec::new();
        for k in &keys {
            let Some(id) = k.key_id() else { continue };
            if self
                .key_tags(id)
                .await
                .get("tenantry:tenant")
                .map(String::as_str)
                == Some(name)
            {
                let meta = self.key(id).await.expect("listed key");
                let state = meta
                    .key_state()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default();
                out.push((id.to_owned(), state));
            }
        }
        out
    }

    /// Aliases under `alias/tenantry/<stem>/tenant/`: alias → target key id.
    async fn tenant_aliases(&self, p: &Platform) -> BTreeMap<String, String> {
        let prefix = format!("alias/tenantry/{}/tenant/", p.stem);
        self.c
            .kms()
            .list_aliases()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .expect("list aliases")
            .iter()
            .filter_map(|a| {
                let name = a.alias_name()?;
                name.starts_with(&prefix).then(|| {
                    (
                        name.to_owned(),
                        a.target_key_id().unwrap_or_default().to_owned(),
                    )
                })
            })
            .collect()
    }

    /// Every pod identity association of the cluster: `namespace/serviceAccount` → (id, role,
    /// disableSessionTags, tags).
    async fn associations(&self, cluster: &str) -> BTreeMap<String, Association> {
        let listed = self
            .c
            .eks()
            .list_pod_identity_associations()
            .cluster_name(cluster)
            .send()
            .await
            .expect("list associations");
        let mut out = BTreeMap::new();
        for a in listed.associations() {
            let id = a.association_id().unwrap_or_default().to_owned();
            let d = self
                .c
                .eks()
                .describe_pod_identity_association()
                .cluster_name(cluster)
                .association_id(&id)
                .send()
                .await
                .expect("describe association");
            let d = d.association().expect("association");
            let key = format!(
                "{}/{}",
                d.namespace().unwrap_or_default(),
                d.service_account().unwrap_or_default()
            );
            let tags = d
                .tags()
                .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            let previous = out.insert(
                key.clone(),
                (
                    id,
                    d.role_arn().unwrap_or_default().to_owned(),
                    d.disable_session_tags(),
                    tags,
                ),
            );
            assert!(previous.is_none(), "two associations for {key}");
        }
        out
    }

    /// Owner access entries: principal → the namespaces whose owner group its entry carries
    /// (every entry Tenantry tagged as the owners', checked to have no access policy).
    async fn owner_scopes(&self, cluster: &str) -> BTreeMap<String, BTreeSet<String>> {
        let entries = self
            .c
            .eks()
            .list_access_entries()
            .cluster_name(cluster)
            .send()
            .await
            .expect("list access entries");
        let mut out = BTreeMap::new();
        for principal in entries.access_entries() {
            let entry = self
                .c
                .eks()
                .describe_access_entry()
                .cluster_name(cluster)
                .principal_arn(principal)
                .send()
                .await
                .expect("describe access entry");
            let entry = entry.access_entry().expect("entry");
            let tags = entry.tags().cloned().unwrap_or_default();
            if tags.get("tenantry:component").map(String::as_str) != Some("tenant-owners") {
                continue;
            }
            assert_eq!(
                tags.get("tenantry:platform").map(String::as_str),
                Some(PLATFORM)
            );
            assert!(
                !tags.contains_key("tenantry:tenant"),
                "an owner entry belongs to no one tenant: {tags:?}"
            );
            assert_eq!(entry.r#type(), Some("STANDARD"), "{principal}");
            let policies = self
                .c
                .eks()
                .list_associated_access_policies()
                .cluster_name(cluster)
                .principal_arn(principal)
                .send()
                .await
                .expect("associated access policies");
            assert!(
                policies.associated_access_policies().is_empty(),
                "{principal}: owners get no EKS access policy (Edit would let them delete \
                 their NetworkPolicies): {policies:?}"
            );
            let groups = entry.kubernetes_groups();
            let namespaces: BTreeSet<String> = groups
                .iter()
                .map(|g| {
                    g.strip_prefix("tenantry:owners:")
                        .unwrap_or_else(|| panic!("{principal}: not an owner group: {g}"))
                        .to_owned()
                })
                .collect();
            assert_eq!(namespaces.len(), groups.len(), "{principal}: no duplicates");
            out.insert(principal.clone(), namespaces);
        }
        out
    }

    /// Every object version and delete marker under `prefix`: (key, version id, is marker).
    async fn versions(&self, p: &Platform, prefix: &str) -> BTreeSet<(String, String, bool)> {
        let out = self
            .c
            .s3()
            .list_object_versions()
            .bucket(&p.bucket)
            .prefix(prefix)
            .send()
            .await
            .expect("list object versions");
        let mut all = BTreeSet::new();
        for v in out.versions() {
            all.insert((
                v.key().unwrap_or_default().to_owned(),
                v.version_id().unwrap_or_default().to_owned(),
                false,
            ));
        }
        for m in out.delete_markers() {
            all.insert((
                m.key().unwrap_or_default().to_owned(),
                m.version_id().unwrap_or_default().to_owned(),
                true,
            ));
        }
        all
    }

    fn kube(&self, p: &Platform) -> kube::Client {
        self.stack.kube_client_for(&p.cluster).expect("kube client")
    }

    /// Puts an object with SSE-KMS under `kms_key` (as the bucket policy requires); its version.
    async fn put_object(&self, p: &Platform, key: &str, body: &str, kms_key: &str) -> String {
        let out = self
            .c
            .s3()
            .put_object()
            .bucket(&p.bucket)
            .key(key)
            .body(body.as_bytes().to_vec().into())
            .server_side_encryption("aws:kms".into())
            .ssekms_key_id(kms_key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
        out.version_id().expect("a versioned bucket").to_owned()
    }

    /// The key behind a tenant's alias: (id, state, days until deletion).
    async fn tenant_key(&self, p: &Platform, name: &str) -> (String, String, Option<f64>) {
        let alias = p.target().names.tenant_kms_alias(name);
        let meta = self.key(&alias).await.unwrap_or_else(|| panic!("{alias}"));
        (
            meta.key_id().to_owned(),
            meta.key_state()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            meta.deletion_date().map(|d| seconds_from_now(d) / DAY),
        )
    }

    /// Checks a tenant is gone from IAM, EKS and the cluster, and from the platform's outputs.
    async fn check_gone(&self, p: &Platform, name: &str) {
        let t = p.target();
        assert!(
            !self.role_exists(&t.names.tenant_role(name)).await,
            "{name}: role"
        );
        assert!(
            self.roles_tagged_with_tenant(name).await.is_empty(),
            "{name}: tagged roles"
        );
        let all = self.associations(&p.cluster).await;
        assert!(
            !all.contains_key(&format!("{name}/workload")),
            "{name}: association"
        );
        assert!(
            all.values().all(
                |(_, _, _, tags)| tags.get("tenantry:tenant").map(String::as_str) != Some(name)
            ),
            "{name}: tagged associations"
        );
        for principal in self
            .c
            .eks()
            .list_access_entries()
            .cluster_name(&p.cluster)
            .send()
            .await
            .expect("access entries")
            .access_entries()
        {
            let entry = self
                .c
                .eks()
                .describe_access_entry()
                .cluster_name(&p.cluster)
                .principal_arn(principal)
                .send()
                .await
                .expect("access entry");
            let tags = entry
                .access_entry()
                .and_then(|e| e.tags())
                .cloned()
                .unwrap_or_default();
            assert_ne!(
                tags.get("tenantry:tenant").map(String::as_str),
                Some(name),
                "{name}: access entry {principal}"
            );
        }
        let kube = self.kube(p);
        let ns = kube::Api::<Namespace>::all(kube.clone())
            .get_opt(name)
            .await
            .expect("namespace read");
        assert!(ns.is_none(), "{name}: namespace");
        let left = kube::Api::<NetworkPolicy>::namespaced(kube, name)
            .list(&Default::default())
            .await
            .map(|l| l.items.len())
            .unwrap_or_default();
        if left > 0 {
            eprintln!("note: the Kubernetes double kept {left} NetworkPolicies of deleted namespace {name} (no cascading deletion in the double)");
        }
        let status = self
            .store
            .get_status(PLATFORM)
            .await
            .unwrap()
            .unwrap()
            .value;
        assert!(
            status
                .outputs
                .get(&format!("tenant/{name}"))
                .is_none_or(Value::is_null),
            "{name}: output cleared: {:?}",
            status.outputs.get(&format!("tenant/{name}"))
        );
    }

    async fn check_record(
        &self,
        name: &str,
        request_id: &str,
        state: TenantState,
        retain: bool,
        schedule: bool,
    ) {
        let r = self
            .store
            .get_tenant_record(PLATFORM, name)
            .await
            .unwrap()
            .expect("record")
            .value;
        assert_eq!(
            (
                r.state,
                r.request_id.as_str(),
                r.retain_data,
                r.schedule_key_deletion
            ),
            (state, request_id, retain, schedule),
            "{name}"
        );
        assert_eq!(r.failure, None, "{name}");
    }
}

/// Seconds from an execution's first history event to its last.
fn duration(run: &Execution) -> f64 {
    let (first, last) = span(run);
    last - first
}

/// When (epoch seconds) an execution's first and last history events happened.
fn span(run: &Execution) -> (f64, f64) {
    let times = run.history.iter().map(|e| e.timestamp().as_secs_f64());
    times.fold((f64::MAX, f64::MIN), |(first, last), t| {
        (first.min(t), last.max(t))
    })
}

/// AWS calls of the `tenant` function's invocations per service: (mutating, read).
fn tenant_calls(log: &CallLog) -> BTreeMap<String, (usize, usize)> {
    let mut out: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for c in log.for_function("tenant") {
        let e = out.entry(c.service.clone()).or_default();
        if c.mutating {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    out
}

/// Mutating calls on the platform's services (not Tenantry's bookkeeping): `service Operation`.
fn platform_mutations(log: &CallLog) -> Vec<String> {
    log.calls
        .iter()
        .filter(|c| c.mutating && !CONTROL_PLANE_SERVICES.contains(&c.service.as_str()))
        .map(|c| format!("{} {}", c.service, c.operation))
        .collect()
}

fn seconds_from_now(t: &aws_sdk_kms::primitives::DateTime) -> f64 {
    t.as_secs_f64() - chrono::Utc::now().timestamp() as f64
}

/// What one onboarded tenant has in AWS, read back (and checked against the rendered documents).
struct Onboarded {
    spec: TenantSpec,
    role_arn: String,
    /// Its own key, or the platform data key.
    key_arn: String,
    own_key_id: Option<String>,
    /// The `tenant-access` policy as IAM stores it.
    role_policy: Value,
}

async fn check_onboarded(env: &Env, p: &Platform, tenant: &TenantSpec) -> Onboarded {
    let t = p.target();
    let name = &tenant.name;
    let role = t.names.tenant_role(name);
    assert_eq!(role, format!("tenantry-{}-t-{name}", p.stem));
    let role_arn = t.role_arn(&role);
    let tags = tenantry::naming::tags(&p.spec, Some(tenant), "tenant");
    assert_eq!(tags["tenantry:tenant"], *name);
    assert_eq!(tags["tenantry:cost-centre"], tenant.cost_centre);

    // The role: trusted by the tenant's service account only, one inline policy, its tags.
    let got = env.c.iam().get_role().role_name(&role).send().await;
    let got = got.unwrap_or_else(|e| panic!("role {role}: {e:?}"));
    let got = got.role().expect("role");
    assert_eq!(got.arn(), role_arn);
    let trust = policies::parse_returned(got.assume_role_policy_document().expect("trust"))
        .expect("trust JSON");
    let issuer = p
        .status
        .outputs
        .get(tenantry::phases::outputs::OIDC_ISSUER.key)
        .and_then(Value::as_str);
    assert_eq!(
        trust,
        policies::tenant_trust(&t, issuer, tenant),
        "{name}: trust"
    );
    let statements = trust["Statement"].as_array().expect("statements");
    assert_eq!(statements.len(), 1, "{name}: one way in");
    assert_eq!(
        statements[0]["Principal"],
        json!({"Service": "pods.eks.amazonaws.com"})
    );
    let condition = &statements[0]["Condition"]["StringEquals"];
    assert_eq!(condition["aws:RequestTag/kubernetes-namespace"], *name);
    assert_eq!(
        condition["aws:RequestTag/kubernetes-service-account"],
        "workload"
    );
    assert_eq!(condition["aws:RequestTag/eks-cluster-arn"], t.cluster_arn());
    let inline = env
        .c
        .iam()
        .list_role_policies()
        .role_name(&role)
        .send()
        .await
        .expect("role policies");
    assert_eq!(inline.policy_names(), ["tenant-access"], "{name}");
    let attached = env
        .c
        .iam()
        .list_attached_role_policies()
        .role_name(&role)
        .send()
        .await
        .expect("attached policies");
    assert!(
        attached.attached_policies().is_empty(),
        "{name}: no managed policy"
    );
    assert_eq!(env.role_tags(&role).await, tags, "{name}: role tags");

    // The key: its own (alias, policy naming the role, rotation, tags) or the platform's.
    let alias = t.names.tenant_kms_alias(name);
    assert_eq!(alias, format!("alias/tenantry/{}/tenant/{name}", p.stem));
    let (key_arn, own_key_id) = match tenant.own_kms_key {
        true => {
            let meta = env.key(&alias).await.unwrap_or_else(|| panic!("{alias}"));
            assert_eq!(
                meta.key_state().map(|s| s.as_str()),
                Some("Enabled"),
                "{name}"
            );
            assert_eq!(meta.key_manager().map(|m| m.as_str()), Some("CUSTOMER"));
            let id = meta.key_id().to_owned();
            let policy = env
                .c
                .kms()
                .get_key_policy()
                .key_id(&id)
                .policy_name("default")
                .send()
                .await
                .expect("key policy");
            let policy = policies::parse_returned(policy.policy().expect("policy")).expect("JSON");
            assert_eq!(
                policy,
                policies::tenant_key_policy(&t, &role_arn),
                "{name}: key policy"
            );
            assert_eq!(
                policy["Statement"][1]["Principal"]["AWS"],
                role_arn.as_str()
            );
            let rotation = env
                .c
                .kms()
                .get_key_rotation_status()
                .key_id(&id)
                .send()
                .await
                .expect("rotation");
            assert!(rotation.key_rotation_enabled(), "{name}: rotation on");
            let mut key_tags = tags.clone();
            key_tags.insert("tenantry:purpose".to_owned(), format!("tenant/{name}"));
            assert_eq!(env.key_tags(&id).await, key_tags, "{name}: key tags");
            (meta.arn().expect("key ARN").to_owned(), Some(id))
        }
        false => {
            assert!(env.key(&alias).await.is_none(), "{name}: no key of its own");
            (p.data_key.clone(), None)
        }
    };

    // The role's permissions: exactly the rendered document, naming the key found above.
    let stored = env
        .c
        .iam()
        .get_role_policy()
        .role_name(&role)
        .policy_name("tenant-access")
        .send()
        .await
        .expect("tenant-access");
    let role_policy = policies::parse_returned(stored.policy_document()).expect("JSON");
    assert_eq!(
        role_policy,
        policies::tenant_role_policy(&t, &p.bucket, tenant, &key_arn),
        "{name}: role policy"
    );
    assert_eq!(role_policy["Statement"][2]["Resource"], key_arn.as_str());
    Onboarded {
        spec: tenant.clone(),
        role_arn,
        key_arn,
        own_key_id,
        role_policy,
    }
}

/// No resource or condition value of one tenant's stored role policy matches anything of another
/// tenant's (its objects, its prefix as a listing prefix, its secrets, its own key), read as IAM
/// reads patterns; and each matches its own (the check is not vacuous). Returns the number of
/// (value, foreign thing) pairs checked.
fn check_isolation(p: &Platform, tenants: &[Onboarded]) -> usize {
    let region = &p.spec.region;
    let things = |o: &Onboarded| -> Vec<String> {
        let prefix = o.spec.effective_s3_prefix();
        let secrets = o.spec.effective_secrets_prefix(&p.stem);
        let mut out = vec![
            format!("arn:aws:s3:::{}/{prefix}report.csv", p.bucket),
            format!("arn:aws:s3:::{}/{prefix}deep/er/x", p.bucket),
            prefix.clone(),
            format!("{prefix}x"),
            format!("arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{secrets}db-AbCdEf"),
        ];
        if o.own_key_id.is_some() {
            out.push(o.key_arn.clone());
        }
        out
    };
    let mut checked = 0;
    for a in tenants {
        let values = scoped_values(&a.role_policy);
        assert!(values.len() >= 6, "{values:?}");
        for thing in things(a) {
            assert!(
                values.iter().any(|v| iam_matches(v, &thing)),
                "{}: its own {thing} is not reachable: {values:?}",
                a.spec.name
            );
        }
        for b in tenants.iter().filter(|b| b.spec.name != a.spec.name) {
            for thing in things(b) {
                for v in &values {
                    checked += 1;
                    assert!(
                        !iam_matches(v, &thing),
                        "{}'s policy value {v} reaches {}'s {thing}",
                        a.spec.name,
                        b.spec.name
                    );
                }
            }
        }
        // A tenant with its own key gets no other key (not even the platform's data key).
        if a.own_key_id.is_some() {
            assert!(values.iter().all(|v| !iam_matches(v, &p.data_key)));
        }
        // The listing condition is exactly the tenant's prefix.
        let prefix = a.spec.effective_s3_prefix();
        assert_eq!(
            a.role_policy["Statement"][0]["Condition"],
            json!({"StringLike": {"s3:prefix": [format!("{prefix}*"), prefix]}})
        );
    }
    checked
}

/// The tenant's namespace and what lives in it, in the cluster's Kubernetes double.
async fn check_namespace(env: &Env, p: &Platform, tenant: &TenantSpec) {
    let kube = env.kube(p);
    let name = tenant.name.as_str();
    // Everything rendered is live as rendered (server-side apply may add fields, nothing differs).
    let manifests = tenantry::kubernetes::tenant_manifests(&p.spec, tenant, None);
    assert_eq!(manifests.len(), 11);
    for m in &manifests {
        let live = tenantry::kubernetes::get(&kube, m)
            .await
            .expect("read object")
            .unwrap_or_else(|| panic!("{name}: missing {}", m["metadata"]));
        assert!(
            tenantry::kubernetes::contains(&live, m),
            "{name}: {m} differs from {live}"
        );
    }
    // Owners reach the namespace through their group and the owners' Role, which cannot touch
    // the NetworkPolicies.
    let role: k8s_openapi::api::rbac::v1::Role = kube::Api::namespaced(kube.clone(), name)
        .get(tenantry::kubernetes::OWNER_ROLE)
        .await
        .expect("owners' Role");
    for rule in role.rules.unwrap_or_default() {
        let resources = rule.resources.unwrap_or_default();
        if resources.iter().any(|r| r == "networkpolicies" || r == "*") {
            assert!(
                rule.verbs
                    .iter()
                    .all(|v| ["get", "list", "watch"].contains(&v.as_str())),
                "{name}: owners may write NetworkPolicies: {:?}",
                rule.verbs
            );
        }
    }
    let binding: k8s_openapi::api::rbac::v1::RoleBinding =
        kube::Api::namespaced(kube.clone(), name)
            .get(tenantry::kubernetes::OWNER_ROLE)
            .await
            .expect("owners' RoleBinding");
    let subjects = binding.subjects.unwrap_or_default();
    assert_eq!(subjects.len(), 1, "{name}: {subjects:?}");
    assert_eq!(subjects[0].kind, "Group");
    assert_eq!(subjects[0].name, tenantry::kubernetes::owner_group(name));
    // And the values that matter, independently of the renderer.
    let ns = kube::Api::<Namespace>::all(kube.clone())
        .get(name)
        .await
        .expect("namespace");
    let labels = ns.metadata.labels.unwrap_or_default();
    let version = format!("v{}", p.spec.kubernetes_version);
    for mode in ["enforce", "audit", "warn"] {
        assert_eq!(
            labels
                .get(&format!("pod-security.kubernetes.io/{mode}"))
                .map(String::as_str),
            Some("restricted"),
            "{name}: {labels:?}"
        );
        assert_eq!(
            labels.get(&format!("pod-security.kubernetes.io/{mode}-version")),
            Some(&version),
            "{name}: {labels:?}"
        );
    }
    assert_eq!(
        labels
            .get(tenantry::kubernetes::TENANT_LABEL)
            .map(String::as_str),
        Some(name)
    );
    let policies: Vec<NetworkPolicy> = kube::Api::namespaced(kube.clone(), name)
        .list(&Default::default())
        .await
        .expect("network policies")
        .items;
    let by_name: BTreeMap<String, NetworkPolicy> = policies
        .into_iter()
        .map(|np| (np.metadata.name.clone().unwrap_or_default(), np))
        .collect();
    assert_eq!(
        by_name.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "allow-dns",
            "allow-egress-except-metadata",
            "allow-same-namespace",
            "default-deny"
        ],
        "{name}: exactly the four policies"
    );
    let deny = by_name["default-deny"].spec.clone().expect("spec");
    assert_eq!(
        deny.policy_types,
        Some(vec!["Ingress".to_owned(), "Egress".to_owned()])
    );
    let selector = deny.pod_selector.unwrap_or_default();
    assert!(
        selector.match_labels.unwrap_or_default().is_empty()
            && selector.match_expressions.unwrap_or_default().is_empty(),
        "{name}: default-deny selects every pod"
    );
    assert!(
        deny.ingress.unwrap_or_default().is_empty() && deny.egress.unwrap_or_default().is_empty()
    );
    let egress = by_name["allow-egress-except-metadata"]
        .spec
        .clone()
        .expect("spec");
    assert_eq!(egress.policy_types, Some(vec!["Egress".to_owned()]));
    let rules = egress.egress.expect("egress rules");
    let block = rules[0].to.as_ref().expect("peers")[0]
        .ip_block
        .clone()
        .expect("ipBlock");
    assert_eq!(block.cidr, "0.0.0.0/0");
    assert_eq!(block.except, Some(vec!["169.254.169.254/32".to_owned()]));
    let ports: Vec<(Option<String>, Option<String>)> = rules[0]
        .ports
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.protocol, p.port.map(|p| format!("{p:?}"))))
        .collect();
    assert_eq!(
        ports,
        [(Some("TCP".to_owned()), Some("Int(443)".to_owned()))]
    );
    // Pod Identity platform: the agent's address, port 80.
    let agent = rules[1].to.as_ref().expect("peers")[0]
        .ip_block
        .clone()
        .expect("ipBlock");
    assert_eq!(agent.cidr, "169.254.170.23/32");
    let dns = by_name["allow-dns"].spec.clone().expect("spec");
    let dns_rule = &dns.egress.expect("egress")[0];
    let peer = &dns_rule.to.as_ref().expect("peers")[0];
    assert_eq!(
        peer.namespace_selector.clone().and_then(|s| s.match_labels),
        Some(BTreeMap::from([(
            "kubernetes.io/metadata.name".to_owned(),
            "kube-system".to_owned()
        )]))
    );
    let quota = kube::Api::<ResourceQuota>::namespaced(kube.clone(), name)
        .get("quota")
        .await
        .expect("quota");
    let hard: BTreeMap<String, String> = quota
        .spec
        .and_then(|s| s.hard)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    let q = &tenant.quotas;
    let want: BTreeMap<String, String> = [
        ("requests.cpu", q.requests_cpu.clone()),
        ("requests.memory", q.requests_memory.clone()),
        ("limits.cpu", q.limits_cpu.clone()),
        ("limits.memory", q.limits_memory.clone()),
        ("requests.storage", q.requests_storage.clone()),
        ("pods", q.pods.to_string()),
        ("services", q.services.to_string()),
        ("services.loadbalancers", q.load_balancers.to_string()),
        (
            "persistentvolumeclaims",
            q.persistent_volume_claims.to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(hard, want, "{name}: quota");
    let limits = kube::Api::<LimitRange>::namespaced(kube.clone(), name)
        .get("limits")
        .await
        .expect("limit range");
    let item = limits.spec.expect("spec").limits.remove(0);
    assert_eq!(item.type_, "Container");
    let quantities =
        |m: Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
            m.unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect::<BTreeMap<_, _>>()
        };
    let l = &tenant.limits;
    assert_eq!(
        quantities(item.default),
        BTreeMap::from([
            ("cpu".to_owned(), l.default_cpu.clone()),
            ("memory".to_owned(), l.default_memory.clone())
        ])
    );
    assert_eq!(
        quantities(item.default_request),
        BTreeMap::from([
            ("cpu".to_owned(), l.default_request_cpu.clone()),
            ("memory".to_owned(), l.default_request_memory.clone())
        ])
    );
    let sa = kube::Api::<ServiceAccount>::namespaced(kube, name)
        .get("workload")
        .await
        .expect("service account workload");
    assert!(
        !sa.metadata
            .annotations
            .unwrap_or_default()
            .contains_key("eks.amazonaws.com/role-arn"),
        "{name}: Pod Identity platform, no IRSA annotation"
    );
}

/// The tenant-data bucket: settings as the bucket module documents them.
async fn check_bucket(env: &Env, p: &Platform) {
    let t = p.target();
    let s3 = &env.c.s3();
    let policy = s3
        .get_bucket_policy()
        .bucket(&p.bucket)
        .send()
        .await
        .expect("bucket policy");
    let policy = policies::parse_returned(policy.policy().expect("policy")).expect("JSON");
    assert_eq!(policy, policies::tenant_bucket_policy(&t, &p.bucket));
    // Server access logs go to the platform's log bucket, which S3's log delivery may write to
    // (S3 refuses PutBucketLogging otherwise) for this bucket only.
    let logging = s3
        .get_bucket_logging()
        .bucket(&p.bucket)
        .send()
        .await
        .expect("bucket logging");
    let enabled = logging.logging_enabled().expect("access logging on");
    let logs = t.names.access_log_bucket();
    assert_eq!(enabled.target_bucket(), logs);
    assert_eq!(enabled.target_prefix(), policies::ACCESS_LOG_PREFIX);
    let log_policy = s3
        .get_bucket_policy()
        .bucket(&logs)
        .send()
        .await
        .expect("log bucket policy");
    let log_policy = policies::parse_returned(log_policy.policy().expect("policy")).expect("JSON");
    assert_eq!(
        log_policy,
        policies::access_log_bucket_policy(&t, &logs, &p.bucket)
    );
    let encryption = s3
        .get_bucket_encryption()
        .bucket(&p.bucket)
        .send()
        .await
        .expect("bucket encryption");
    let rules = encryption
        .server_side_encryption_configuration()
        .expect("configuration")
        .rules();
    assert_eq!(rules.len(), 1);
    let default = rules[0]
        .apply_server_side_encryption_by_default()
        .expect("default encryption");
    assert_eq!(default.sse_algorithm().as_str(), "aws:kms");
    assert_eq!(default.kms_master_key_id(), Some(p.data_key.as_str()));
    assert_eq!(rules[0].bucket_key_enabled(), Some(true));
    let block = s3
        .get_public_access_block()
        .bucket(&p.bucket)
        .send()
        .await
        .expect("public access block");
    let block = block
        .public_access_block_configuration()
        .expect("configuration");
    assert_eq!(
        [
            block.block_public_acls(),
            block.ignore_public_acls(),
            block.block_public_policy(),
            block.restrict_public_buckets()
        ],
        [Some(true); 4]
    );
    let versioning = s3
        .get_bucket_versioning()
        .bucket(&p.bucket)
        .send()
        .await
        .expect("versioning");
    assert_eq!(versioning.status().map(|s| s.as_str()), Some("Enabled"));
    let ownership = s3
        .get_bucket_ownership_controls()
        .bucket(&p.bucket)
        .send()
        .await
        .expect("ownership controls");
    let rules = ownership.ownership_controls().expect("controls").rules();
    assert_eq!(
        rules
            .iter()
            .map(|r| r.object_ownership().as_str())
            .collect::<Vec<_>>(),
        ["BucketOwnerEnforced"]
    );
    let tagging = s3
        .get_bucket_tagging()
        .bucket(&p.bucket)
        .send()
        .await
        .expect("tags");
    let tags: BTreeMap<String, String> = tagging
        .tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    assert_eq!(tags, tenantry::naming::tags(&p.spec, None, "tenant-data"));
}

/// Expected owner scopes from onboarded tenant specs.
fn scopes_of<'a>(
    tenants: impl IntoIterator<Item = &'a TenantSpec>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for t in tenants {
        for o in &t.owners {
            out.entry(o.clone()).or_default().insert(t.name.clone());
        }
    }
    out
}

/// The tenant associations (service account `workload`) of the cluster.
fn tenant_associations(all: &BTreeMap<String, Association>) -> BTreeMap<&str, &Association> {
    all.iter()
        .filter(|(k, _)| k.ends_with("/workload"))
        .map(|(k, v)| (k.as_str(), v))
        .collect()
}

#[tokio::test]
async fn three_tenants_are_onboarded_with_exact_isolated_policies() {
    let env = env().await;
    let p = env.provision().await;

    // alpha-two's name starts with alpha's (the prefix boundary must hold), it uses the platform
    // data key; alpha and bravo have keys of their own and share the owner `shared-ops`.
    let alpha = tenant_json("alpha", "cc-1001", &["team-alpha", "shared-ops"]);
    let mut alpha_two = tenant_json("alpha-two", "cc-1002", &["team-alpha-two"]);
    alpha_two["ownKmsKey"] = json!(false);
    let mut bravo = tenant_json("bravo", "cc-2040", &["team-bravo", "shared-ops"]);
    bravo["ownKmsKey"] = json!(true);
    bravo["quotas"] = json!({"requestsCpu": "2", "requestsMemory": "4Gi", "limitsCpu": "4",
                             "limitsMemory": "8Gi", "pods": 30});
    bravo["limits"] = json!({"defaultRequestCpu": "250m", "defaultRequestMemory": "256Mi",
                             "defaultCpu": "1", "defaultMemory": "1Gi"});
    let requested = [("alpha", alpha), ("alpha-two", alpha_two), ("bravo", bravo)];
    let requests: Vec<(String, Value)> = requested
        .iter()
        .map(|(name, t)| onboarding(&format!("onboard-{name}"), t))
        .collect();
    env.stack.reset_calls();
    let t0 = Instant::now();
    env.put(&requests).await;
    let mut runs = Vec::new();
    for (name, _) in &requested {
        runs.push((name, env.succeeded(&format!("onboard-{name}")).await));
    }
    let wall = t0.elapsed().as_secs_f64();
    let calls = env.stack.calls();
    for (name, run) in &runs {
        eprintln!(
            "onboard {name}: execution {:.1}s, {} state transitions, states {:?}",
            duration(run),
            run.transitions(),
            ["Bucket", "Tenant", "TenantPoll", "Finalize"].map(|s| (s, run.entered(s)))
        );
        assert_eq!(run.entered("TenantPoll"), 0, "ready at the first call");
        assert!(run.task_errors().is_empty(), "{:?}", run.failures());
    }
    let by_service = tenant_calls(&calls);
    eprintln!(
        "3 parallel onboardings: {wall:.1}s wall; `tenant` function: {} invocations, AWS calls (mutating, read) by service {by_service:?}, per tenant ≈ {:.0} calls",
        calls.invocations_of("tenant"),
        by_service.values().map(|(m, r)| m + r).sum::<usize>() as f64 / 3.0
    );

    // Results and records.
    for (name, _) in &requested {
        let id = format!("onboard-{name}");
        let done = env.results.wait(&id, "TenantOnboardingSucceeded").await;
        assert_eq!(done["tenant"], *name);
        assert_eq!(done["platformId"], PLATFORM);
        assert_eq!(
            env.results.types_for(&id),
            ["TenantOnboardingAccepted", "TenantOnboardingSucceeded"]
        );
        let record = env
            .store
            .get_tenant_record(PLATFORM, name)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.value.state, TenantState::Active, "{name}");
        assert_eq!(record.value.request_id, id);
        assert_eq!(record.value.failure, None);
    }
    assert!(
        env.store
            .list_shared_leases(PLATFORM)
            .await
            .unwrap()
            .is_empty(),
        "shares released"
    );

    // Each tenant, as stored, equals the request and the rendered documents.
    let mut onboarded = Vec::new();
    for (name, json) in &requested {
        let spec = env.tenant_spec(name).await;
        let parsed = tenantry::validate::parse_tenant(&json.to_string()).expect("valid tenant");
        assert_eq!(spec, parsed, "the record holds the request's tenant");
        onboarded.push(check_onboarded(&env, &p, &spec).await);
    }
    assert_eq!(
        onboarded
            .iter()
            .map(|o| o.own_key_id.is_some())
            .collect::<Vec<_>>(),
        [true, false, true]
    );
    let ids: BTreeSet<&String> = onboarded
        .iter()
        .filter_map(|o| o.own_key_id.as_ref())
        .collect();
    assert_eq!(ids.len(), 2, "one key each");
    let aliases = env.tenant_aliases(&p).await;
    assert_eq!(
        aliases,
        onboarded
            .iter()
            .filter_map(|o| o.own_key_id.clone().map(|id| (
                format!("alias/tenantry/{}/tenant/{}", p.stem, o.spec.name),
                id
            )))
            .collect::<BTreeMap<_, _>>()
    );
    let checked = check_isolation(&p, &onboarded);
    eprintln!("isolation: {checked} (policy value, other tenant's resource) pairs read as IAM patterns, none matches");

    // Status outputs name each tenant's role, key, namespace and prefix.
    let status = env.store.get_status(PLATFORM).await.unwrap().unwrap().value;
    assert_eq!(status.outputs["tenantBucket"], p.bucket.as_str());
    for o in &onboarded {
        let out = &status.outputs[&format!("tenant/{}", o.spec.name)];
        assert_eq!(
            out,
            &json!({"roleArn": o.role_arn, "keyArn": o.key_arn, "namespace": o.spec.name,
                    "bucket": p.bucket, "s3Prefix": format!("tenants/{}/", o.spec.name)})
        );
    }

    // Pod identity: one association per tenant, on its role, session tags kept, tagged.
    let all = env.associations(&p.cluster).await;
    let tenants = tenant_associations(&all);
    assert_eq!(
        tenants.keys().copied().collect::<Vec<_>>(),
        ["alpha-two/workload", "alpha/workload", "bravo/workload"]
    );
    assert_eq!(
        all.len(),
        5 + 3,
        "the platform's five and one per tenant: {:?}",
        all.keys()
    );
    for o in &onboarded {
        let (_, role, disable, tags) = tenants[format!("{}/workload", o.spec.name).as_str()];
        assert_eq!(role, &o.role_arn);
        assert_eq!(
            *disable,
            Some(false),
            "session tags stay on (the trust needs them)"
        );
        assert_eq!(
            tags,
            &tenantry::naming::tags(&p.spec, Some(&o.spec), "tenant")
        );
    }

    // Owners: one entry per principal, scoped to exactly the tenants it owns (shared: the union).
    let scopes = env.owner_scopes(&p.cluster).await;
    assert_eq!(scopes, scopes_of(onboarded.iter().map(|o| &o.spec)));
    assert_eq!(
        scopes[&owner("shared-ops")],
        BTreeSet::from(["alpha".to_owned(), "bravo".to_owned()])
    );

    check_bucket(&env, &p).await;
    for o in &onboarded {
        check_namespace(&env, &p, &o.spec).await;
    }
}

#[tokio::test]
async fn hostile_tenant_names_are_refused_through_the_bus_and_change_nothing() {
    let env = env().await;
    let p = env.provision().await;
    // An existing tenant, for the collision after normalisation.
    env.put(&[onboarding(
        "onboard-alpha-two",
        &tenant_json("alpha-two", "cc-1", &["team-a"]),
    )])
    .await;
    env.succeeded("onboard-alpha-two").await;
    let roles = env.tenant_roles(&p).await;
    assert_eq!(
        roles,
        BTreeSet::from([format!("tenantry-{}-t-alpha-two", p.stem)])
    );
    let aliases = env.tenant_aliases(&p).await;
    let associations = env.associations(&p.cluster).await;
    let scopes = env.owner_scopes(&p.cluster).await;

    let long = "a".repeat(64);
    let onboardings: [(&str, &str); 10] = [
        ("../x", rules::UNSAFE_CHARACTERS),
        ("a*", rules::UNSAFE_CHARACTERS),
        ("kube-system", rules::RESERVED_NAME),
        ("default", rules::RESERVED_NAME),
        (&long, rules::NAME_TOO_LONG),
        ("Upper", rules::NAME_SYNTAX),
        ("has space", rules::NAME_SYNTAX),
        ("ünïcode", rules::UNSAFE_CHARACTERS),
        ("a\"b", rules::UNSAFE_CHARACTERS),
        // Valid on its own, but `alpha-two` once normalised (runs of `-` collapse).
        ("alpha--two", rules::NAME_COLLISION),
    ];
    // Offboarding names are held to the same rules (`detail.tenantName`): a hostile one never
    // reaches a key, a policy or the cluster (kube-system must survive).
    let offboardings: [(&str, &str); 3] = [
        ("../x", rules::UNSAFE_CHARACTERS),
        ("kube-system", rules::RESERVED_NAME),
        ("default", rules::RESERVED_NAME),
    ];
    let mut requests = Vec::new();
    for (i, (name, _)) in onboardings.iter().enumerate() {
        requests.push(onboarding(
            &format!("hostile-on-{i:02}"),
            &tenant_json(name, "cc-1", &[]),
        ));
    }
    for (i, (name, _)) in offboardings.iter().enumerate() {
        requests.push(offboarding(
            &format!("hostile-off-{i:02}"),
            name,
            None,
            None,
        ));
    }
    env.stack.reset_calls();
    let t0 = Instant::now();
    env.put(&requests).await;

    for (i, (name, rule)) in onboardings.iter().enumerate() {
        let id = format!("hostile-on-{i:02}");
        let detail = env.results.wait(&id, "TenantOnboardingRejected").await;
        assert_eq!(
            detail["error"]["code"], "Tenantry.InvalidRequest",
            "{name}: {detail}"
        );
        let issues = detail["issues"].as_array().cloned().unwrap_or_default();
        assert!(
            issues
                .iter()
                .any(|i| i["path"] == "$.name" && i["rule"] == *rule),
            "{name:?}: expected {rule} at $.name: {issues:?}"
        );
        assert!(
            issues.iter().all(|i| i["path"] == "$.name"),
            "{name:?}: nothing else is wrong with the request: {issues:?}"
        );
        assert_eq!(
            env.results.types_for(&id),
            ["TenantOnboardingRejected"],
            "{name:?}"
        );
        eprintln!(
            "refused {name:?}: {}",
            issues
                .iter()
                .map(|i| format!("{} {}", i["path"], i["rule"]))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for (i, (name, rule)) in offboardings.iter().enumerate() {
        let id = format!("hostile-off-{i:02}");
        let detail = env.results.wait(&id, "TenantOffboardingRejected").await;
        assert_eq!(
            detail["error"]["code"], "Tenantry.InvalidRequest",
            "{name}: {detail}"
        );
        let issues = detail["issues"].as_array().cloned().unwrap_or_default();
        assert!(
            issues
                .iter()
                .any(|i| i["path"] == "detail.tenantName" && i["rule"] == *rule),
            "offboarding {name:?}: expected {rule} at detail.tenantName: {issues:?}"
        );
    }
    eprintln!(
        "{} hostile requests refused in {:.1}s",
        requests.len(),
        t0.elapsed().as_secs_f64()
    );

    // Requests that failed validation are not even recorded; the collision (valid syntax) is,
    // as Rejected, naming the rule.
    for (i, (name, _)) in onboardings.iter().enumerate() {
        let id = format!("hostile-on-{i:02}");
        let recorded = env.store.get_request(&id).await.unwrap();
        if *name == "alpha--two" {
            let info = recorded.expect("collision request recorded");
            assert_eq!(info.state, RequestState::Rejected);
            assert!(info.execution_arn.is_none());
            let message = info.error.expect("error").message;
            assert!(
                message.contains(rules::NAME_COLLISION) && message.contains("$.name"),
                "{message}"
            );
        } else {
            assert!(recorded.is_none(), "{name:?}: {recorded:?}");
        }
    }
    // Nothing changed: records, executions, shares, roles, keys, associations, owners, cluster.
    let records = env.store.list_tenant_records(PLATFORM).await.unwrap();
    assert_eq!(
        records
            .iter()
            .map(|r| (r.value.name.as_str(), r.value.state))
            .collect::<Vec<_>>(),
        [("alpha-two", TenantState::Active)]
    );
    assert_eq!(
        env.executions("onboard-tenant").await,
        [("onboard-alpha-two".to_owned(), ExecutionStatus::Succeeded)]
    );
    assert!(env.executions("offboard-tenant").await.is_empty());
    assert!(env
        .store
        .list_shared_leases(PLATFORM)
        .await
        .unwrap()
        .is_empty());
    assert!(env.store.get_lease(PLATFORM).await.unwrap().is_none());
    let calls = env.stack.calls();
    assert_eq!(
        platform_mutations(&calls),
        Vec::<String>::new(),
        "no AWS resource touched"
    );
    assert_eq!(calls.invocations_of("tenant"), 0, "no tenant phase ran");
    assert_eq!(env.tenant_roles(&p).await, roles);
    assert_eq!(env.tenant_aliases(&p).await, aliases);
    assert_eq!(env.associations(&p.cluster).await, associations);
    assert_eq!(env.owner_scopes(&p.cluster).await, scopes);
    let kube = env.kube(&p);
    let namespaces = kube::Api::<Namespace>::all(kube)
        .list(&Default::default())
        .await
        .expect("namespaces")
        .items;
    let names: BTreeSet<String> = namespaces
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    for kept in ["kube-system", "default", "alpha-two"] {
        assert!(names.contains(kept), "{kept}: {names:?}");
    }
    let tenant_namespaces: Vec<&str> = namespaces
        .iter()
        .filter(|n| {
            n.metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key(tenantry::kubernetes::TENANT_LABEL))
        })
        .filter_map(|n| n.metadata.name.as_deref())
        .collect();
    assert_eq!(tenant_namespaces, ["alpha-two"]);
    let status = env.store.get_status(PLATFORM).await.unwrap().unwrap().value;
    assert_eq!(status.state, tenantry::store::LifecycleState::Active);
}

#[tokio::test]
async fn twenty_concurrent_onboardings_all_succeed_and_are_recorded_once() {
    // One batch at a time, so that the platform requests put last arrive while the onboardings
    // hold their shares of the lease (with concurrent batches they may come first, and then the
    // onboardings are the ones refused: `tenant_intake` covers both orders at the lease).
    let env = env_with(1).await;
    let p = env.provision().await;
    // Owners: `ops-even` / `ops-odd` share half the tenants each (their scopes are written by
    // ten concurrent executions), every fifth tenant has an owner of its own too.
    let names: Vec<String> = (0..20).map(|i| format!("team-{i:02}")).collect();
    let jsons: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let shared = if i % 2 == 0 { "ops-even" } else { "ops-odd" };
            let own = format!("owner-{i:02}");
            let owners: Vec<&str> = match i % 5 {
                0 => vec![shared, own.as_str()],
                _ => vec![shared],
            };
            tenant_json(name, &format!("cc-{i:02}"), &owners)
        })
        .collect();
    let requests: Vec<(String, Value)> = names
        .iter()
        .zip(&jsons)
        .map(|(name, t)| onboarding(&format!("onboard-{name}"), t))
        .collect();
    // The twenty, five of them delivered again (same request ids and payloads), and behind them
    // a platform update and a decommission, all put at once: intake takes the queue in order, so
    // the platform requests arrive while the onboardings hold their shares of the lease.
    let mut all = requests.clone();
    all.extend(requests[..5].iter().cloned());
    all.push(platform_request(
        RequestKind::PlatformUpdate,
        "update-1",
        Some(&env.spec_json),
    ));
    all.push(platform_request(
        RequestKind::PlatformDecommission,
        "decommission-1",
        None,
    ));
    env.stack.reset_calls();
    let t0 = Instant::now();
    env.put(&all).await;
    for name in &names {
        let info = env.verdict(&format!("onboard-{name}")).await;
        assert!(
            info.state != RequestState::Rejected && info.execution_arn.is_some(),
            "{name}: {:?} {:?}",
            info.state,
            info.error
        );
    }
    let accepted_in = t0.elapsed().as_secs_f64();
    for (kind, id) in [
        (RequestKind::PlatformUpdate, "update-1"),
        (RequestKind::PlatformDecommission, "decommission-1"),
    ] {
        let info = env.verdict(id).await;
        assert_eq!(info.state, RequestState::Rejected, "{id}: {info:?}");
        let error = info.error.expect("error");
        assert_eq!(error.code, "Tenantry.Conflict");
        assert!(
            error.message.contains("\"onboard-team-") && error.message.contains("its onboard"),
            "names an onboarding holding the platform: {}",
            error.message
        );
        let rejected = kind.result_detail_type(tenantry::events::ResultStatus::Rejected);
        env.results.wait(id, &rejected).await;
    }

    let mut durations = Vec::new();
    let mut transitions = 0;
    for name in &names {
        let run = env.succeeded(&format!("onboard-{name}")).await;
        durations.push(duration(&run));
        transitions += run.transitions();
    }
    let wall = t0.elapsed().as_secs_f64();
    let calls = env.stack.calls();
    durations.sort_by(f64::total_cmp);
    let by_service = tenant_calls(&calls);
    let total: usize = by_service.values().map(|(m, r)| m + r).sum();
    eprintln!(
        "20 concurrent onboardings: all accepted after {accepted_in:.1}s, all done after {wall:.1}s; execution min/median/max {:.1}/{:.1}/{:.1}s; {transitions} state transitions; `tenant` function: {} invocations, AWS calls by service (mutating, read) {by_service:?}, per tenant ≈ {:.0}; intake invocations {}",
        durations[0],
        durations[10],
        durations[19],
        calls.invocations_of("tenant"),
        total as f64 / 20.0,
        calls.invocations_of("intake"),
    );
    let intake_ms: u64 = calls
        .invocations
        .iter()
        .filter(|i| i.function == "intake")
        .map(|i| i.duration_ms)
        .sum();
    let mut intake_calls: BTreeMap<String, usize> = BTreeMap::new();
    for c in calls.for_function("intake") {
        *intake_calls
            .entry(format!("{} {}", c.service, c.operation))
            .or_default() += 1;
    }
    eprintln!(
        "intake: {} messages (20 onboardings, 5 duplicates, 2 platform requests) in {:.1}s of invocations, {} AWS calls ({:.1} per message): {intake_calls:?}",
        all.len(),
        intake_ms as f64 / 1000.0,
        intake_calls.values().sum::<usize>(),
        intake_calls.values().sum::<usize>() as f64 / all.len() as f64
    );

    // Exactly one execution per request, nothing for the refused platform requests.
    let executions = env.executions("onboard-tenant").await;
    let expected: Vec<(String, ExecutionStatus)> = names
        .iter()
        .map(|n| (format!("onboard-{n}"), ExecutionStatus::Succeeded))
        .collect();
    assert_eq!(executions, expected);
    assert_eq!(
        env.executions("provision-platform").await.len(),
        1,
        "provision-1 only"
    );
    assert!(env.executions("decommission-platform").await.is_empty());
    // Exactly one record each, Active, its own request.
    let records = env.store.list_tenant_records(PLATFORM).await.unwrap();
    assert_eq!(records.len(), 20);
    for r in &records {
        assert_eq!(r.value.state, TenantState::Active, "{}", r.value.name);
        assert_eq!(r.value.request_id, format!("onboard-{}", r.value.name));
    }
    assert_eq!(
        records
            .iter()
            .map(|r| r.value.name.clone())
            .collect::<BTreeSet<_>>(),
        names.iter().cloned().collect::<BTreeSet<_>>()
    );
    // Results: accepted once and succeeded once each (the duplicates answered nothing).
    for name in &names {
        let id = format!("onboard-{name}");
        env.results.wait(&id, "TenantOnboardingSucceeded").await;
    }
    env.results.drain(1).await;
    for name in &names {
        let id = format!("onboard-{name}");
        assert_eq!(
            env.results.types_for(&id),
            ["TenantOnboardingAccepted", "TenantOnboardingSucceeded"],
            "{id}"
        );
    }
    // AWS: twenty roles, keys, associations, and the shared owners' scopes are the union.
    let role_names: BTreeSet<String> = names
        .iter()
        .map(|n| format!("tenantry-{}-t-{n}", p.stem))
        .collect();
    assert_eq!(env.tenant_roles(&p).await, role_names);
    let aliases = env.tenant_aliases(&p).await;
    assert_eq!(aliases.len(), 20);
    assert_eq!(
        aliases.values().collect::<BTreeSet<_>>().len(),
        20,
        "twenty distinct keys"
    );
    let all = env.associations(&p.cluster).await;
    let tenants = tenant_associations(&all);
    assert_eq!(tenants.len(), 20, "{:?}", tenants.keys());
    let t = p.target();
    for name in &names {
        let (_, role, disable, _) = tenants[format!("{name}/workload").as_str()];
        assert_eq!(role, &t.role_arn(&t.names.tenant_role(name)));
        assert_eq!(*disable, Some(false));
    }
    let specs: Vec<TenantSpec> = records.iter().map(|r| r.value.spec.clone()).collect();
    let scopes = env.owner_scopes(&p.cluster).await;
    assert_eq!(
        scopes[&owner("ops-even")].len(),
        10,
        "ops-even sees every even tenant: {:?}",
        scopes[&owner("ops-even")]
    );
    assert_eq!(scopes, scopes_of(&specs));
    // The platform is free again and untouched.
    assert!(env
        .store
        .list_shared_leases(PLATFORM)
        .await
        .unwrap()
        .is_empty());
    assert!(env.store.get_lease(PLATFORM).await.unwrap().is_none());
    let status = env.store.get_status(PLATFORM).await.unwrap().unwrap().value;
    assert_eq!(status.state, tenantry::store::LifecycleState::Active);
}

#[tokio::test]
async fn offboarding_keeps_exactly_what_the_request_says() {
    let env = env().await;
    let p = env.provision().await;
    let jsons = [
        (
            "alpha",
            tenant_json("alpha", "cc-1", &["team-alpha", "shared-ops"]),
        ),
        (
            "alpha-two",
            tenant_json("alpha-two", "cc-2", &["team-alpha-two", "shared-ops"]),
        ),
        ("charlie", tenant_json("charlie", "cc-3", &["team-charlie"])),
    ];
    let requests: Vec<(String, Value)> = jsons
        .iter()
        .map(|(name, t)| onboarding(&format!("onboard-{name}"), t))
        .collect();
    env.put(&requests).await;
    for (name, _) in &jsons {
        env.succeeded(&format!("onboard-{name}")).await;
    }
    let mut keys = BTreeMap::new();
    for (name, _) in &jsons {
        let meta = env
            .key(&p.target().names.tenant_kms_alias(name))
            .await
            .expect("tenant key");
        keys.insert(
            *name,
            (
                meta.key_id().to_owned(),
                meta.arn().unwrap_or_default().to_owned(),
            ),
        );
    }

    // moto applies a bucket policy's Deny statements without evaluating their conditions (in
    // moto/iam/access_control.py a condition whose context key the request does not carry fails,
    // and a failed condition yields DENIED, even for a Deny statement): with the TLS-only /
    // SSE-KMS-only policy in place, PutObject and GetObject answer 403 locally and DeleteObjects
    // answers AccessDenied for every key. The policy is lifted while the test writes data and
    // the prefixes are emptied; the next onboarding's Bucket task puts it back (step 4).
    env.c
        .s3()
        .delete_bucket_policy()
        .bucket(&p.bucket)
        .send()
        .await
        .expect("lift the bucket policy");

    // Data under each prefix: two versions of one object, and a deleted one (its version and a
    // delete marker), written with SSE-KMS under the tenant's key.
    for (name, _) in &jsons {
        let (_, key_arn) = &keys[name];
        let report = format!("tenants/{name}/report.csv");
        let v1 = env.put_object(&p, &report, "v1", key_arn).await;
        let v2 = env.put_object(&p, &report, "v2", key_arn).await;
        assert_ne!(v1, v2);
        let notes = format!("tenants/{name}/notes.txt");
        env.put_object(&p, &notes, "notes", key_arn).await;
        let deleted = env
            .c
            .s3()
            .delete_object()
            .bucket(&p.bucket)
            .key(&notes)
            .send()
            .await
            .expect("delete object");
        assert_eq!(deleted.delete_marker(), Some(true));
        let head = env
            .c
            .s3()
            .head_object()
            .bucket(&p.bucket)
            .key(&report)
            .send()
            .await
            .expect("head object");
        assert_eq!(
            head.server_side_encryption().map(|s| s.as_str()),
            Some("aws:kms")
        );
        assert_eq!(head.ssekms_key_id(), Some(key_arn.as_str()));
    }
    env.put_object(&p, "shared/keep.txt", "not a tenant's", &p.data_key)
        .await;
    let mut before = BTreeMap::new();
    for (name, _) in &jsons {
        let versions = env.versions(&p, &format!("tenants/{name}/")).await;
        assert_eq!(
            versions.iter().filter(|(_, _, marker)| *marker).count(),
            1,
            "{name}: {versions:?}"
        );
        assert_eq!(
            versions.len(),
            4,
            "{name}: three versions and a delete marker"
        );
        before.insert(*name, versions);
    }
    let outside = env.versions(&p, "shared/").await;
    assert_eq!(outside.len(), 1);

    // 1. alpha, data not kept: prefix emptied (every version and marker), key pending deletion
    //    in 7 days, role / association / namespace gone, its owners' scopes without it.
    env.stack.reset_calls();
    env.put(&[offboarding("offboard-alpha", "alpha", None, None)])
        .await;
    let run = env.succeeded("offboard-alpha").await;
    let calls = env.stack.calls();
    eprintln!(
        "offboard alpha (4 versions to delete): execution {:.1}s, {} state transitions, states {:?}; `tenant` calls (mutating, read) {:?}",
        duration(&run),
        run.transitions(),
        ["Tenant", "TenantPoll", "Finalize"].map(|s| (s, run.entered(s))),
        tenant_calls(&calls)
    );
    assert_eq!(calls.count("s3", "DeleteObjects"), 1, "one batch");
    env.results
        .wait("offboard-alpha", "TenantOffboardingSucceeded")
        .await;
    assert!(
        env.versions(&p, "tenants/alpha/").await.is_empty(),
        "no version or marker left"
    );
    assert_eq!(
        env.versions(&p, "tenants/alpha-two/").await,
        before["alpha-two"],
        "the prefix boundary holds"
    );
    assert_eq!(
        env.versions(&p, "tenants/charlie/").await,
        before["charlie"]
    );
    assert_eq!(env.versions(&p, "shared/").await, outside);
    let (id, state, days) = env.tenant_key(&p, "alpha").await;
    assert_eq!(
        (id.as_str(), state.as_str()),
        (keys["alpha"].0.as_str(), "PendingDeletion")
    );
    let days = days.expect("deletion date");
    assert!((6.9..=7.01).contains(&days), "deletion in {days:.2} days");
    let window = env
        .key(&id)
        .await
        .and_then(|m| m.pending_deletion_window_in_days());
    eprintln!("alpha's key: PendingDeletion, deletion in {days:.2} days (PendingDeletionWindowInDays: {window:?})");
    assert_eq!(
        env.keys_tagged_with_tenant("alpha").await,
        [(id.clone(), "PendingDeletion".to_owned())]
    );
    env.check_gone(&p, "alpha").await;
    env.check_record(
        "alpha",
        "offboard-alpha",
        TenantState::Offboarded,
        false,
        false,
    )
    .await;
    let specs = [
        env.tenant_spec("alpha-two").await,
        env.tenant_spec("charlie").await,
    ];
    assert_eq!(env.owner_scopes(&p.cluster).await, scopes_of(&specs));
    assert!(!env
        .owner_scopes(&p.cluster)
        .await
        .contains_key(&owner("team-alpha")));
    assert_eq!(
        env.owner_scopes(&p.cluster).await[&owner("shared-ops")],
        BTreeSet::from(["alpha-two".to_owned()])
    );

    // 2. alpha-two keeps its data; charlie keeps its data and schedules its key (30 days).
    env.put(&[
        offboarding("offboard-alpha-two", "alpha-two", Some(true), None),
        offboarding("offboard-charlie", "charlie", Some(true), Some(true)),
    ])
    .await;
    for id in ["offboard-alpha-two", "offboard-charlie"] {
        let run = env.succeeded(id).await;
        eprintln!(
            "{id}: execution {:.1}s, {} state transitions",
            duration(&run),
            run.transitions()
        );
        env.results.wait(id, "TenantOffboardingSucceeded").await;
    }
    assert_eq!(
        env.versions(&p, "tenants/alpha-two/").await,
        before["alpha-two"],
        "every version kept"
    );
    assert_eq!(
        env.versions(&p, "tenants/charlie/").await,
        before["charlie"],
        "every version kept"
    );
    let (id, state, days) = env.tenant_key(&p, "alpha-two").await;
    assert_eq!(
        (id.as_str(), state.as_str(), days),
        (keys["alpha-two"].0.as_str(), "Enabled", None)
    );
    assert_eq!(
        env.keys_tagged_with_tenant("alpha-two").await,
        [(id, "Enabled".to_owned())]
    );
    let (id, state, days) = env.tenant_key(&p, "charlie").await;
    assert_eq!(
        (id.as_str(), state.as_str()),
        (keys["charlie"].0.as_str(), "PendingDeletion")
    );
    let days = days.expect("deletion date");
    assert!((29.9..=30.01).contains(&days), "deletion in {days:.2} days");
    assert_eq!(
        env.keys_tagged_with_tenant("charlie").await,
        [(id, "PendingDeletion".to_owned())]
    );
    for name in ["alpha-two", "charlie"] {
        env.check_gone(&p, name).await;
    }
    env.check_record(
        "alpha-two",
        "offboard-alpha-two",
        TenantState::Offboarded,
        true,
        false,
    )
    .await;
    env.check_record(
        "charlie",
        "offboard-charlie",
        TenantState::Offboarded,
        true,
        true,
    )
    .await;
    assert!(
        env.owner_scopes(&p.cluster).await.is_empty(),
        "no owner entry left"
    );
    assert!(env.tenant_roles(&p).await.is_empty());
    assert_eq!(
        env.associations(&p.cluster).await.len(),
        5,
        "the platform's own"
    );

    // 3. alpha again: already offboarded.
    env.put(&[offboarding("offboard-alpha-again", "alpha", None, None)])
        .await;
    let info = env.verdict("offboard-alpha-again").await;
    assert_eq!(info.state, RequestState::Rejected);
    let message = info.error.expect("error").message;
    assert!(message.contains("already offboarded"), "{message}");
    env.results
        .wait("offboard-alpha-again", "TenantOffboardingRejected")
        .await;
    assert_eq!(env.executions("offboard-tenant").await.len(), 3);

    // 4. Onboarding alpha again within the window restores its key (same key, enabled).
    env.put(&[onboarding("onboard-alpha-again", &jsons[0].1)])
        .await;
    let run = env.succeeded("onboard-alpha-again").await;
    eprintln!("re-onboard alpha: execution {:.1}s", duration(&run));
    let (id, state, days) = env.tenant_key(&p, "alpha").await;
    assert_eq!(
        (id.as_str(), state.as_str(), days),
        (keys["alpha"].0.as_str(), "Enabled", None)
    );
    assert_eq!(
        env.keys_tagged_with_tenant("alpha").await,
        [(id.clone(), "Enabled".to_owned())],
        "no second key"
    );
    let alpha = env.tenant_spec("alpha").await;
    let back = check_onboarded(&env, &p, &alpha).await;
    assert_eq!(back.own_key_id.as_deref(), Some(id.as_str()));
    check_namespace(&env, &p, &alpha).await;
    check_bucket(&env, &p).await;
    assert!(
        env.versions(&p, "tenants/alpha/").await.is_empty(),
        "deleted data stays deleted"
    );
    env.check_record(
        "alpha",
        "onboard-alpha-again",
        TenantState::Active,
        false,
        false,
    )
    .await;
    assert_eq!(env.owner_scopes(&p.cluster).await, scopes_of([&alpha]));

    // 5. Decommission: alpha goes (data not kept); the retained prefixes keep the bucket.
    env.stack.reset_calls();
    env.put(&[platform_request(
        RequestKind::PlatformDecommission,
        "decommission-1",
        None,
    )])
    .await;
    let run = env.finish("decommission-1").await;
    eprintln!(
        "decommission: {:.1}s, {} state transitions, status {:?}",
        run.elapsed.as_secs_f64(),
        run.transitions(),
        run.status
    );
    assert_eq!(
        run.status,
        ExecutionStatus::Succeeded,
        "{:?} {:?}",
        run.cause,
        run.failures()
    );
    let status = env.store.get_status(PLATFORM).await.unwrap().unwrap().value;
    assert_eq!(
        status.state,
        tenantry::store::LifecycleState::Decommissioned
    );
    env.check_record(
        "alpha",
        "decommission-1",
        TenantState::Offboarded,
        false,
        false,
    )
    .await;
    let (_, state, days) = env.tenant_key(&p, "alpha").await;
    assert_eq!(state, "PendingDeletion");
    assert!(days.is_some_and(|d| (6.9..=7.01).contains(&d)), "{days:?}");
    assert_eq!(
        env.tenant_key(&p, "alpha-two").await.1,
        "Enabled",
        "the retained key survives the decommission"
    );
    let (_, state, days) = env.tenant_key(&p, "charlie").await;
    assert_eq!(state, "PendingDeletion");
    assert!(
        days.is_some_and(|d| d > 29.0),
        "charlie's window is not shortened: {days:?}"
    );
    assert_eq!(
        env.versions(&p, "tenants/alpha-two/").await,
        before["alpha-two"]
    );
    assert_eq!(
        env.versions(&p, "tenants/charlie/").await,
        before["charlie"]
    );
    assert!(env.versions(&p, "tenants/alpha/").await.is_empty());
    let left = tenantry_gateway::inspect::tagged_resources(&env.aws, PLATFORM)
        .await
        .unwrap();
    let left: BTreeMap<&str, usize> = left.into_iter().filter(|(_, n)| *n > 0).collect();
    assert_eq!(
        left,
        BTreeMap::from([("kms:key", 2)]),
        "only alpha-two's retained key, and the data key the kept bucket is encrypted with"
    );
    // The kept bucket's data stays readable: its default key is not scheduled for deletion.
    let data_key = status.outputs["retainedDataKey"]
        .as_str()
        .expect("retainedDataKey output")
        .to_owned();
    let kms = aws_sdk_kms::Client::new(&env.aws);
    let key = kms
        .describe_key()
        .key_id(&data_key)
        .send()
        .await
        .expect("the data key");
    let key = key.key_metadata().expect("metadata");
    assert_eq!(
        key.key_state(),
        Some(&aws_sdk_kms::types::KeyState::Enabled)
    );
    let bucket_key = aws_sdk_s3::Client::new(&env.aws)
        .get_bucket_encryption()
        .bucket(&p.bucket)
        .send()
        .await
        .expect("bucket encryption");
    let bucket_key = bucket_key
        .server_side_encryption_configuration()
        .and_then(|c| c.rules().first())
        .and_then(|r| r.apply_server_side_encryption_by_default())
        .and_then(|d| d.kms_master_key_id())
        .unwrap_or_default()
        .to_owned();
    assert!(
        bucket_key == data_key
            || data_key.ends_with(&bucket_key)
            || bucket_key.ends_with(key.key_id()),
        "the kept bucket is encrypted with {bucket_key}, kept {data_key}"
    );
    assert!(
        env.store.list_resources(PLATFORM).await.unwrap().is_empty(),
        "inventory empty"
    );

    // Where the decommission says it kept the bucket (the tenant phase's `retainedBucket`).
    let result = env
        .results
        .wait("decommission-1", "PlatformDecommissionSucceeded")
        .await;
    let runs = env.store.list_runs(PLATFORM, 10).await.unwrap();
    let record = runs
        .iter()
        .find(|r| r.request_id.as_deref() == Some("decommission-1"))
        .and_then(|r| r.detail.clone())
        .unwrap_or(Value::Null);
    let output = env
        .sfn
        .describe_execution()
        .execution_arn(
            env.store
                .get_request("decommission-1")
                .await
                .unwrap()
                .unwrap()
                .execution_arn
                .unwrap(),
        )
        .send()
        .await
        .expect("describe execution")
        .output()
        .unwrap_or_default()
        .to_owned();
    let told = [
        ("status outputs", json!(status.outputs)),
        ("result event", result.clone()),
        ("run record", record),
        (
            "execution output",
            serde_json::from_str(&output).unwrap_or(Value::Null),
        ),
    ];
    let found: Vec<&str> = told
        .iter()
        .filter(|(_, v)| v.to_string().contains("retainedBucket"))
        .map(|(w, _)| *w)
        .collect();
    eprintln!("retainedBucket reported in: {found:?}");
    // The kept bucket outlives the platform as its one output (status, run record, result event).
    assert!(
        !found.is_empty(),
        "the decommission kept bucket {} for tenants/alpha-two/ and tenants/charlie/, but says so nowhere the user can read: {told:?}",
        p.bucket
    );
}

/// The payload state `poll` of the state machine `asl` sends the tenant function when `choice`
/// finds the tenant not ready: its `Parameters.Payload`, with each `<field>.$` path resolved
/// against the input `choice` received in `run` (read from the execution's history).
fn poll_payload(asl: &str, poll: &str, choice: &str, run: &Execution) -> Value {
    let definition: Value = serde_json::from_str(asl).expect("ASL JSON");
    let template = definition["States"][poll]["Parameters"]["Payload"]
        .as_object()
        .cloned()
        .expect("a Payload template");
    let input = run
        .history
        .iter()
        .filter_map(|e| e.state_entered_event_details())
        .find(|d| d.name() == choice)
        .and_then(|d| d.input())
        .expect("the choice state's input");
    let input: Value = serde_json::from_str(input).expect("input JSON");
    let mut out = serde_json::Map::new();
    for (k, v) in template {
        match (k.strip_suffix(".$"), v.as_str()) {
            (Some(field), Some(path)) => {
                let key = path.strip_prefix("$.").expect("a top-level path");
                assert!(
                    !key.contains('.'),
                    "{path}: only top-level paths are resolved here"
                );
                out.insert(field.to_owned(), input[key].clone());
            }
            _ => {
                out.insert(k, v);
            }
        }
    }
    Value::Object(out)
}

/// A tenant is not always ready at the first call: a real cluster finalizes a namespace
/// asynchronously (so an offboarding's first `delete` answers `ready: false`), and a prefix of
/// more than 20 000 versions is emptied over several calls. The state machines then wait and call
/// the function again from `TenantPoll`. The local Kubernetes double deletes namespaces at once,
/// so the executions here never get there; what `TenantPoll` would send is rebuilt from the
/// history (its parameters resolved against what `TenantReady` received) and sent to the
/// function through the gateway, the way Step Functions would.
#[tokio::test]
async fn a_tenant_not_ready_at_the_first_call_is_polled_by_name() {
    let env = env().await;
    let _p = env.provision().await;
    let delta = tenant_json("delta", "cc-4", &["team-delta"]);
    env.put(&[onboarding("onboard-delta", &delta)]).await;
    let onboarded = env.succeeded("onboard-delta").await;
    let polls = [
        (
            include_str!("../../statemachine/onboard-tenant.asl.json"),
            "ensure",
        ),
        (
            include_str!("../../statemachine/offboard-tenant.asl.json"),
            "delete",
        ),
    ];
    let mut answers = Vec::new();
    for (i, (asl, action)) in polls.iter().enumerate() {
        if i == 1 {
            env.put(&[offboarding("offboard-delta", "delta", Some(true), None)])
                .await;
        }
        let run = match i {
            0 => &onboarded,
            _ => &env.succeeded("offboard-delta").await,
        };
        let payload = poll_payload(asl, "TenantPoll", "TenantReady", run);
        assert_eq!(payload["action"], *action);
        assert_eq!(payload["platformId"], PLATFORM);
        let answer = tenantry_integration::invoke(&env.stack, "tenant", &payload).await;
        answers.push((*action, payload, answer));
    }
    // Each poll must hand the function the tenant's name again (a task result written over
    // `$.tenant` once turned every poll into an invalid request).
    let failures: Vec<String> = answers
        .into_iter()
        .filter_map(|(action, payload, answer)| match answer {
            Ok(out) if out["ready"] == true => None,
            Ok(out) => Some(format!("the {action} poll answered {out}")),
            Err((error_type, message)) => Some(format!(
                "the {action} poll would fail: TenantPoll sends {payload} and `tenant` answers {error_type}: {message}"
            )),
        })
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The privilege paths of tenant requests, each tried the way an attacker would and refused:
/// onboarding a tenant named after another team's namespace (`payroll-tools`) neither relabels
/// it nor gives the tenant's owners rights on it, and offboarding that tenant leaves the
/// namespace in place; a wide `secretsPrefix` (`rds/`: every RDS-managed master secret) is
/// refused at intake; a name whose data was kept with `retainData` cannot be taken by another
/// team.
#[tokio::test]
async fn tenant_requests_cannot_reach_other_teams_namespaces_secrets_or_kept_data() {
    let env = env().await;
    let p = env.provision().await;
    let kube = env.kube(&p);
    let namespaces = kube::Api::<Namespace>::all(kube.clone());
    let payroll_labels = BTreeMap::from([("team".to_owned(), "payroll".to_owned())]);
    let payroll: Namespace = serde_json::from_value(json!({
        "metadata": { "name": "payroll-tools", "labels": payroll_labels },
    }))
    .unwrap();
    namespaces
        .create(&Default::default(), &payroll)
        .await
        .expect("another team's namespace");
    let roles = env.tenant_roles(&p).await;

    // 1. Adoption: the request is valid, so it runs, and the tenant phase refuses before it
    //    creates anything.
    env.put(&[onboarding(
        "adopt-payroll",
        &tenant_json("payroll-tools", "cc-1", &["intruder"]),
    )])
    .await;
    let failed = env
        .results
        .wait("adopt-payroll", "TenantOnboardingFailed")
        .await;
    let message = failed["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("did not create") && message.contains("payroll-tools"),
        "{failed}"
    );
    assert_eq!(
        failed["error"]["code"], "Tenantry.InvalidRequest",
        "{failed}"
    );
    // The request is on record with where it came from: the event id and source as the bus
    // delivered them (moto's EventBridge leaves out the sending account AWS always sets).
    let asked = env
        .store
        .get_request("adopt-payroll")
        .await
        .unwrap()
        .expect("request record");
    let origin = asked.origin.expect("origin");
    assert_eq!(origin.source, "tests", "{origin:?}");
    assert!(
        origin.event_id.is_some() && origin.time.is_some(),
        "{origin:?}"
    );
    assert!(
        origin.account.as_deref().is_none_or(|a| a == ACCOUNT),
        "{origin:?}"
    );
    let live = namespaces.get("payroll-tools").await.expect("still there");
    assert_eq!(live.metadata.labels.unwrap_or_default(), payroll_labels);
    assert_eq!(env.tenant_roles(&p).await, roles, "no tenant role created");
    let scopes = env.owner_scopes(&p.cluster).await;
    assert!(
        !scopes.contains_key(&owner("intruder")),
        "the intruder got access: {scopes:?}"
    );
    let record = env
        .store
        .get_tenant_record(PLATFORM, "payroll-tools")
        .await
        .unwrap()
        .expect("record");
    assert_eq!(record.value.state, TenantState::Failed);
    // Offboarding the failed tenant leaves the namespace Tenantry never owned.
    env.put(&[offboarding("drop-payroll", "payroll-tools", None, None)])
        .await;
    env.succeeded("drop-payroll").await;
    let live = namespaces.get("payroll-tools").await.expect("not deleted");
    assert!(live.metadata.deletion_timestamp.is_none(), "{live:?}");

    // 2. The wide prefix, and another tenant's space: refused at intake, nothing runs.
    let mut wide = tenant_json("wide", "cc-1", &["intruder"]);
    wide["secretsPrefix"] = json!("rds/");
    let mut other = tenant_json("other", "cc-1", &["intruder"]);
    other["secretsPrefix"] = json!(format!("tenantry/{}/ledger/", p.stem));
    env.put(&[
        onboarding("wide-prefix", &wide),
        onboarding("other-space", &other),
    ])
    .await;
    for id in ["wide-prefix", "other-space"] {
        let refused = env.results.wait(id, "TenantOnboardingRejected").await;
        let issues = refused["issues"].as_array().cloned().unwrap_or_default();
        assert!(
            issues
                .iter()
                .any(|i| i["path"] == "$.secretsPrefix" && i["rule"] == rules::SECRET_PREFIX_SCOPE),
            "{id}: {refused}"
        );
    }

    // 3. A kept name reused by another team.
    env.put(&[onboarding(
        "onboard-ledger",
        &tenant_json("ledger", "cc-1", &["ledger-team"]),
    )])
    .await;
    env.succeeded("onboard-ledger").await;
    env.put(&[offboarding("keep-ledger", "ledger", Some(true), None)])
        .await;
    env.succeeded("keep-ledger").await;
    env.put(&[onboarding(
        "take-ledger",
        &tenant_json("ledger", "cc-1", &["intruder"]),
    )])
    .await;
    let refused = env
        .results
        .wait("take-ledger", "TenantOnboardingRejected")
        .await;
    let issues = refused["issues"].as_array().cloned().unwrap_or_default();
    assert!(
        issues
            .iter()
            .any(|i| i["path"] == "$.name" && i["rule"] == rules::RETAINED_DATA),
        "{refused}"
    );
    let roles_now = env.tenant_roles(&p).await;
    assert!(
        !roles_now.iter().any(|r| r.ends_with("-t-ledger")),
        "{roles_now:?}"
    );
}

/// The onboarding of `tenant` (request `onboard-<tenant>`) is rejected with `rule` at `path`,
/// and no role of that tenant exists.
async fn refused_at(env: &Env, p: &Platform, tenant: &str, path: &str, rule: &str) {
    let id = format!("onboard-{tenant}");
    let detail = env.results.wait(&id, "TenantOnboardingRejected").await;
    let issues = detail["issues"].as_array().cloned().unwrap_or_default();
    assert!(
        issues
            .iter()
            .any(|i| i["path"] == path && i["rule"] == rule),
        "{tenant}: expected {rule} at {path}: {issues:?}"
    );
    assert!(!env.role_exists(&p.target().names.tenant_role(tenant)).await);
}

/// Every NetworkPolicy of the cluster, as JSON.
async fn live_policies(kube: &kube::Client) -> Vec<Value> {
    let all = kube::Api::<NetworkPolicy>::all(kube.clone())
        .list(&Default::default())
        .await
        .expect("list NetworkPolicies");
    all.items
        .iter()
        .map(|p| serde_json::to_value(p).expect("policy JSON"))
        .collect()
}

#[tokio::test]
async fn allow_from_opens_one_tenant_to_another_until_that_tenant_leaves() {
    use tenantry::kubernetes::reach::connects;
    let env = env().await;
    let p = env.provision().await;
    let mut bravo = tenant_json("bravo", "cc-2", &["team-bravo"]);
    bravo["allowFrom"] = json!([{ "tenant": "alpha", "ports": [8080] }]);
    let mut stray = tenant_json("charlie", "cc-3", &["team-charlie"]);
    stray["allowFrom"] = json!([{ "tenant": "nobody", "ports": [8080] }]);
    let alpha = tenant_json("alpha", "cc-1", &["team-alpha"]);
    env.put(&[onboarding("onboard-alpha", &alpha)]).await;
    env.succeeded("onboard-alpha").await;
    env.put(&[
        onboarding("onboard-bravo", &bravo),
        onboarding("onboard-charlie", &stray),
    ])
    .await;
    env.succeeded("onboard-bravo").await;

    // A rule naming no tenant of the platform is refused, naming the field, and builds nothing.
    refused_at(
        &env,
        &p,
        "charlie",
        "$.allowFrom[0].tenant",
        rules::ALLOW_FROM,
    )
    .await;

    // What the cluster holds lets alpha reach bravo on 8080, and nothing more.
    let kube = env.kube(&p);
    let live = live_policies(&kube).await;
    assert!(connects(&live, "alpha", "bravo", 8080, "TCP"));
    assert!(
        !connects(&live, "alpha", "bravo", 9090, "TCP"),
        "another port"
    );
    assert!(
        !connects(&live, "alpha", "bravo", 8080, "UDP"),
        "another protocol"
    );
    assert!(
        !connects(&live, "bravo", "alpha", 8080, "TCP"),
        "the other way"
    );
    let ids: BTreeSet<String> = env
        .store
        .list_resources(PLATFORM)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.tenant.as_deref() == Some("bravo"))
        .map(|r| r.id)
        .collect();
    for id in ["bravo/allow-from-alpha", "alpha/allow-to-bravo"] {
        assert!(
            ids.contains(&format!("networking.k8s.io/v1/NetworkPolicy/{id}")),
            "{id} in {ids:?}"
        );
    }

    // Alpha leaves: the rule naming it goes from bravo's namespace and from the inventory.
    env.put(&[offboarding("offboard-alpha", "alpha", None, None)])
        .await;
    env.succeeded("offboard-alpha").await;
    let live = live_policies(&kube).await;
    let named: Vec<&Value> = live
        .iter()
        .filter(|p| tenantry::kubernetes::peer_of(p) == Some("alpha"))
        .collect();
    assert!(named.is_empty(), "{named:?}");
    let left: Vec<String> = env
        .store
        .list_resources(PLATFORM)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .filter(|id| id.contains("allow-from-alpha") || id.contains("allow-to-bravo"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(
        live.iter()
            .any(|p| p["metadata"]["namespace"] == "bravo"
                && p["metadata"]["name"] == "default-deny"),
        "bravo keeps its isolation"
    );
}

/// The ids of the inventory records of `tenant`'s `allowFrom` policies.
async fn recorded_rule_policies(env: &Env, tenant: &str) -> Vec<String> {
    env.store
        .list_resources(PLATFORM)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.tenant.as_deref() == Some(tenant))
        .map(|r| r.id)
        .filter(|id| id.contains("/allow-from-") || id.contains("/allow-to-"))
        .collect()
}

#[tokio::test]
async fn an_allow_from_rule_taken_out_of_the_request_closes_the_traffic() {
    use tenantry::kubernetes::reach::connects;
    let mut env = env().await;
    let alpha = tenant_json("alpha", "cc-1", &["team-alpha"]);
    let mut bravo = tenant_json("bravo", "cc-2", &["team-bravo"]);
    bravo["allowFrom"] = json!([{ "tenant": "alpha", "ports": [8080] }]);
    env.spec_json["tenants"] = json!([alpha, bravo]);
    env.put(&[platform_request(
        RequestKind::PlatformProvision,
        "provision-1",
        Some(&env.spec_json),
    )])
    .await;
    env.succeeded("provision-1").await;
    let spec = tenantry::validate::parse_platform(&env.spec_json.to_string()).expect("spec");
    let cluster = tenantry::naming::Names::new(&spec).cluster();
    let kube = env.stack.kube_client_for(&cluster).expect("kube client");
    assert!(connects(
        &live_policies(&kube).await,
        "alpha",
        "bravo",
        8080,
        "TCP"
    ));
    assert_eq!(recorded_rule_policies(&env, "bravo").await.len(), 2);

    // The platform's owner takes bravo's rule out: both of its policies go, from bravo's
    // namespace and from alpha's, and from the inventory; the rest of bravo stays.
    env.spec_json["tenants"][1]
        .as_object_mut()
        .unwrap()
        .remove("allowFrom");
    env.put(&[platform_request(
        RequestKind::PlatformUpdate,
        "update-1",
        Some(&env.spec_json),
    )])
    .await;
    env.succeeded("update-1").await;
    let live = live_policies(&kube).await;
    assert!(!connects(&live, "alpha", "bravo", 8080, "TCP"));
    let rules: Vec<&Value> = live
        .iter()
        .filter(|p| tenantry::kubernetes::peer_of(p).is_some())
        .collect();
    assert!(rules.is_empty(), "{rules:?}");
    let left = recorded_rule_policies(&env, "bravo").await;
    assert!(left.is_empty(), "{left:?}");
    assert!(
        live.iter()
            .any(|p| p["metadata"]["namespace"] == "bravo"
                && p["metadata"]["name"] == "default-deny"),
        "bravo keeps its isolation"
    );
}

#[tokio::test]
async fn aws_access_grants_approved_actions_on_the_tenants_own_resources_only() {
    let env = env().await;
    let p = env.provision().await;
    let mut alpha = tenant_json("alpha", "cc-1", &["team-alpha"]);
    alpha["awsAccess"] = json!({ "dynamodb": ["dynamodb:GetItem", "dynamodb:Query"] });
    // The example platform approves DynamoDB and SQS actions, not SNS.
    let mut bravo = tenant_json("bravo", "cc-2", &["team-bravo"]);
    bravo["awsAccess"] = json!({ "sns": ["sns:Publish"] });
    env.put(&[
        onboarding("onboard-alpha", &alpha),
        onboarding("onboard-bravo", &bravo),
    ])
    .await;
    env.succeeded("onboard-alpha").await;
    refused_at(&env, &p, "bravo", "$.awsAccess.sns[0]", rules::AWS_ACCESS).await;

    let role = p.target().names.tenant_role("alpha");
    let stored = env
        .c
        .iam()
        .get_role_policy()
        .role_name(&role)
        .policy_name("tenant-access")
        .send()
        .await
        .expect("tenant-access");
    let document = policies::parse_returned(stored.policy_document()).expect("JSON");
    let grant = document["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .find(|s| s["Sid"] == "OwnResourcesDynamodb")
        .cloned()
        .unwrap_or_else(|| panic!("no DynamoDB grant in {document:#}"));
    assert_eq!(
        grant["Action"],
        json!(["dynamodb:GetItem", "dynamodb:Query"])
    );
    let table = |name: &str| format!("arn:aws:dynamodb:{}:{ACCOUNT}:table/{name}", p.spec.region);
    let reaches = |arn: &str| {
        grant["Resource"]
            .as_array()
            .expect("resources")
            .iter()
            .any(|r| policies::iam_matches(r.as_str().unwrap_or_default(), arn))
    };
    assert!(reaches(&table(&format!("{}_alpha_orders", p.stem))));
    assert!(!reaches(&table(&format!("{}_alpha-two_orders", p.stem))));
    assert!(!reaches(&table("orders")));
}

/// What a request of a conflicting burst came to: its verdict, and its execution's span.
struct Outcome {
    request_id: String,
    started: bool,
    error: Option<String>,
    /// Seconds (epoch) from the execution's first history event to its last.
    span: Option<(f64, f64)>,
}

/// Provision, update, decommission, onboarding and offboarding requests for one platform, sent
/// at once (the event source mapping's concurrent batches take them in any order): each gets an
/// answer, Started or Rejected as `Tenantry.Conflict` naming the request that holds the platform;
/// no platform execution overlaps another execution of that platform (tenant executions may
/// overlap each other); each rejected request, sent again once the platform is free, succeeds;
/// and the state is then exactly what the requests ask for, down to a decommission with nothing
/// left.
#[tokio::test]
async fn conflicting_requests_on_one_platform_are_serialized_and_none_is_lost() {
    let env = env().await;
    let p = env.provision().await;
    env.put(&[onboarding(
        "onboard-old",
        &tenant_json("old-team", "cc-00", &["ops"]),
    )])
    .await;
    env.succeeded("onboard-old").await;
    let mut updated = env.spec_json.clone();
    updated["nodeGroups"][0]["maxSize"] = json!(7);
    let tenants = [
        tenant_json("team-a", "cc-01", &["ops"]),
        tenant_json("team-b", "cc-02", &["ops"]),
    ];
    // Decommission aside: it goes last, once the others have their answers.
    let burst = vec![
        platform_request(
            RequestKind::PlatformProvision,
            "burst-provision",
            Some(&env.spec_json),
        ),
        platform_request(RequestKind::PlatformUpdate, "burst-update", Some(&updated)),
        onboarding("burst-onboard-a", &tenants[0]),
        onboarding("burst-onboard-b", &tenants[1]),
        offboarding("burst-offboard-old", "old-team", None, None),
        platform_request(
            RequestKind::PlatformDecommission,
            "burst-decommission",
            None,
        ),
    ];
    env.put(&burst).await;
    let mut outcomes = Vec::new();
    for (_, detail) in &burst {
        let id = detail["requestId"].as_str().unwrap().to_owned();
        let info = env.verdict(&id).await;
        let span = match &info.execution_arn {
            Some(arn) => {
                let run =
                    tenantry_integration::wait_execution(&env.sfn, arn, Duration::from_secs(180))
                        .await;
                assert_eq!(
                    run.status,
                    ExecutionStatus::Succeeded,
                    "{id}: {:?}",
                    run.cause
                );
                Some(span(&run))
            }
            None => None,
        };
        outcomes.push(Outcome {
            request_id: id,
            started: info.state != RequestState::Rejected,
            error: info.error.map(|e| format!("{}: {}", e.code, e.message)),
            span,
        });
    }
    for o in &outcomes {
        eprintln!(
            "{}: {} {:?}",
            o.request_id,
            if o.started { "started" } else { "rejected" },
            o.error
        );
    }
    let decommissioned = outcomes
        .iter()
        .any(|o| o.request_id == "burst-decommission" && o.started);
    for o in outcomes.iter().filter(|o| !o.started) {
        let error = o.error.as_deref().unwrap_or_default();
        // A conflict names the holder; after a decommission won, the platform is gone.
        let holder = outcomes
            .iter()
            .any(|h| h.started && error.contains(&format!("{:?}", h.request_id)));
        assert!(
            error.starts_with("Tenantry.Conflict") && holder
                || decommissioned && error.to_lowercase().contains("decommission"),
            "{}: rejected for another reason than a conflict with a request of the burst: {error}",
            o.request_id
        );
    }
    assert!(
        outcomes.iter().any(|o| o.started),
        "one of the burst holds the platform"
    );
    let is_platform = |id: &str| !id.contains("board");
    for a in outcomes.iter().filter(|o| is_platform(&o.request_id)) {
        let Some((a0, a1)) = a.span else { continue };
        for b in outcomes.iter().filter(|b| b.request_id != a.request_id) {
            let Some((b0, b1)) = b.span else { continue };
            assert!(
                a1 <= b0 || b1 <= a0,
                "{} ({a0:.1}..{a1:.1}) overlaps {} ({b0:.1}..{b1:.1})",
                a.request_id,
                b.request_id
            );
        }
    }

    // Nothing is lost: each rejected request, sent again with a new request id once the platform
    // is free, succeeds (the decommission last).
    if !decommissioned {
        // The spec in force is the last provision or update to succeed: the one that won the
        // burst (either may win the lease), then those sent again, in the burst's order.
        let max_size_of = |id: &str| match id {
            "burst-update" => Some(updated["nodeGroups"][0]["maxSize"].clone()),
            "burst-provision" => Some(env.spec_json["nodeGroups"][0]["maxSize"].clone()),
            _ => None,
        };
        let mut in_force = outcomes
            .iter()
            .filter(|o| o.started)
            .find_map(|o| max_size_of(&o.request_id));
        for (o, (detail_type, detail)) in outcomes.iter().zip(&burst) {
            if o.started || o.request_id == "burst-decommission" {
                continue;
            }
            let again = format!("{}-again", o.request_id);
            let mut detail = detail.clone();
            detail["requestId"] = json!(again);
            env.put(&[(detail_type.clone(), detail)]).await;
            env.succeeded(&again).await;
            in_force = max_size_of(&o.request_id).or(in_force);
        }
        let spec = env.store.get_spec(PLATFORM).await.unwrap().expect("spec");
        assert_eq!(
            spec.value["nodeGroups"][0]["maxSize"],
            in_force.expect("a provision or update succeeded"),
            "the last provision or update to succeed is in force"
        );
        for t in &tenants {
            let name = t["name"].as_str().unwrap();
            let record = env
                .store
                .get_tenant_record(PLATFORM, name)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{name}: no record"))
                .value;
            assert_eq!(record.state, TenantState::Active, "{name}");
            assert!(
                env.role_exists(&p.target().names.tenant_role(name)).await,
                "{name}: role"
            );
        }
        env.check_gone(&p, "old-team").await;
        env.put(&[platform_request(
            RequestKind::PlatformDecommission,
            "decommission-last",
            None,
        )])
        .await;
        env.succeeded("decommission-last").await;
    }
    let left = tenantry_gateway::inspect::tagged_resources(&env.aws, PLATFORM)
        .await
        .unwrap();
    let left: BTreeMap<&str, usize> = left.into_iter().filter(|(_, n)| *n > 0).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
