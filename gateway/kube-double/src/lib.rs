//! Kubernetes API double: `kube-fake-client`'s in-memory API server (server-side apply with field
//! ownership and conflicts, resource versions, label/field selectors) behind an HTTP listener, so
//! a `kube::Client` pointed at its URL (the gateway's `LocalStack::kube_endpoint`, or
//! [`serve`]'s in a test) talks to it like a cluster.
//!
//! `kube_fake_client::ClientBuilder::build()` returns a `kube::Client` over its (crate-private)
//! `MockService`; `kube::Client::send` hands it a raw `http::Request` and returns the raw answer
//! (including error statuses as Kubernetes `Status` objects), which is all an HTTP front needs.
//!
//! Gap in kube-fake-client 0.3: its URL parser treats every `/api/v1/namespaces/...` path as a
//! namespaced-resource path, so `Namespace` objects themselves (`/api/v1/namespaces[/{name}]`)
//! answer 500 "Invalid path" (also through its in-process client). The front rewrites those paths
//! to an alias resource `/api/v1/tenantrynamespaces[/{name}]` registered with kind `Namespace`
//! (cluster-scoped per its discovery data), so namespaces get the same SSA semantics as the rest.
//!
//! Gap 2: kube-fake-client 0.3 registers every custom resource as namespaced, and refuses a
//! cluster-scoped one (the VPC CNI's `ENIConfig`) without a namespace. The front keeps such
//! objects in a hidden namespace ([`CLUSTER_SCOPE_NAMESPACE`]): it rewrites their cluster-scoped
//! paths to that namespace's, and removes the namespace from the objects it answers with, so
//! clients see cluster-scoped objects.
//!
//! Custom resources whose CRD Tenantry installs itself (Calico's `Installation`,
//! `operator.tigera.io/v1`, cluster-scoped) are registered the same way, and the front serves
//! them only once their CustomResourceDefinition is stored in that cluster (CRDs are built-in
//! objects of kube-fake-client): before, it answers 404 as an API server that does not know the
//! kind yet would, so applying an `Installation` before the operator's CRDs fails here as on EKS.
//!
//! One in-memory cluster per EKS cluster name: `{kube}/clusters/{name}/api/...` is cluster
//! `name` (created on first use, dropped when the EKS cluster is deleted), and the gateway
//! rewrites `cluster.endpoint` in DescribeCluster answers to that URL, so handlers that connect to
//! "the cluster" reach its double. `{kube}/api/...` (no prefix) is a default cluster.

use axum::body::Body;
use axum::extract::State;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Plural under which `Namespace` objects are stored (see the module docs).
const NAMESPACE_ALIAS: &str = "tenantrynamespaces";

/// The hidden namespace of cluster-scoped custom resources (see the module docs).
const CLUSTER_SCOPE_NAMESPACE: &str = "tenantry-cluster-scoped";

/// The cluster-scoped custom resources the doubles serve: `/apis/<group>/<version>/<plural>`.
const CLUSTER_SCOPED_CRDS: &[&str] = &[
    "/apis/crd.k8s.amazonaws.com/v1alpha1/eniconfigs",
    "/apis/operator.tigera.io/v1/installations",
];

/// Custom resources served only once their CRD exists: path prefix → the CRD's name.
const CRD_GATED: &[(&str, &str)] = &[(
    "/apis/operator.tigera.io/v1/installations",
    "installations.operator.tigera.io",
)];

/// The CRD that must exist before a request to `path` is served, if any.
fn required_crd(path: &str) -> Option<&'static str> {
    CRD_GATED.iter().find_map(|(prefix, crd)| {
        let rest = path.strip_prefix(prefix)?;
        (rest.is_empty() || rest.starts_with('/')).then_some(*crd)
    })
}

/// Whether the CustomResourceDefinition `name` is stored in the cluster of `client`.
async fn crd_exists(client: &kube::Client, name: &str) -> Result<bool, String> {
    let crds: kube::Api<
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    > = kube::Api::all(client.clone());
    crds.get_opt(name)
        .await
        .map(|c| c.is_some())
        .map_err(|e| e.to_string())
}

/// A cluster-scoped custom resource's path → the same in the hidden namespace.
fn rewrite_cluster_scoped_path(path: &str) -> Option<String> {
    CLUSTER_SCOPED_CRDS.iter().find_map(|prefix| {
        let rest = path.strip_prefix(prefix)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        let (group_version, plural) = prefix.rsplit_once('/')?;
        Some(format!(
            "{group_version}/namespaces/{CLUSTER_SCOPE_NAMESPACE}/{plural}{rest}"
        ))
    })
}

/// Removes the hidden namespace from an answer's object, or from each item of a list.
fn hide_cluster_scope_namespace(body: &[u8]) -> Option<Vec<u8>> {
    let mut v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let strip = |o: &mut serde_json::Value| {
        if let Some(meta) = o.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            if meta.get("namespace").and_then(|n| n.as_str()) == Some(CLUSTER_SCOPE_NAMESPACE) {
                meta.remove("namespace");
            }
        }
    };
    strip(&mut v);
    if let Some(items) = v.get_mut("items").and_then(|i| i.as_array_mut()) {
        items.iter_mut().for_each(strip);
    }
    serde_json::to_vec(&v).ok()
}

/// Registers kind `Namespace` under the plural [`NAMESPACE_ALIAS`].
struct NamespaceAlias {
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
}

impl kube::Resource for NamespaceAlias {
    type DynamicType = ();
    type Scope = kube::core::ClusterResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Namespace".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn api_version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        NAMESPACE_ALIAS.into()
    }
    fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        &mut self.metadata
    }
}

/// Registers the VPC CNI's `ENIConfig` CRD (`crd.k8s.amazonaws.com/v1alpha1`, plural
/// `eniconfigs`), which the VPC CNI installs in every EKS cluster. Its objects are served
/// cluster-scoped by the front (see the module docs).
struct EniConfigCrd {
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
}

impl kube::Resource for EniConfigCrd {
    type DynamicType = ();
    type Scope = kube::core::ClusterResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "ENIConfig".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "crd.k8s.amazonaws.com".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1alpha1".into()
    }
    fn api_version(_: &()) -> Cow<'_, str> {
        "crd.k8s.amazonaws.com/v1alpha1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "eniconfigs".into()
    }
    fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        &mut self.metadata
    }
}

/// Registers the VPC resource controller's `SecurityGroupPolicy` (`vpcresources.k8s.aws/v1beta1`,
/// plural `securitygrouppolicies`, namespaced), which every EKS cluster serves (the controller
/// runs in the control plane).
struct SecurityGroupPolicyCrd {
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
}

impl kube::Resource for SecurityGroupPolicyCrd {
    type DynamicType = ();
    type Scope = kube::core::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "SecurityGroupPolicy".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "vpcresources.k8s.aws".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1beta1".into()
    }
    fn api_version(_: &()) -> Cow<'_, str> {
        "vpcresources.k8s.aws/v1beta1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "securitygrouppolicies".into()
    }
    fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        &mut self.metadata
    }
}

/// Registers the Tigera operator's `Installation` (`operator.tigera.io/v1`, plural
/// `installations`), served cluster-scoped by the front once its CRD exists (see the module
/// docs).
struct InstallationCrd {
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
}

impl kube::Resource for InstallationCrd {
    type DynamicType = ();
    type Scope = kube::core::ClusterResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Installation".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "operator.tigera.io".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn api_version(_: &()) -> Cow<'_, str> {
        "operator.tigera.io/v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "installations".into()
    }
    fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        &mut self.metadata
    }
}

/// Serves fresh doubles on `127.0.0.1` (a free port) until the task is aborted or its runtime
/// stops (a `#[tokio::test]`'s, at the test's end):
/// the URL, the doubles (for their request log) and the server task. The phase scenario tests
/// use it; the gateway serves [`handle`] on its own listener.
pub async fn serve() -> anyhow::Result<(String, Arc<KubeDoubles>, tokio::task::JoinHandle<()>)> {
    let doubles = Arc::new(KubeDoubles::new().await?);
    let router = axum::Router::new()
        .fallback(handle)
        .with_state(doubles.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok((url, doubles, task))
}

/// Builds the in-memory API server.
pub async fn fake_cluster() -> anyhow::Result<kube::Client> {
    Ok(kube_fake_client::ClientBuilder::new()
        .with_resource::<NamespaceAlias>()
        // The VPC CNI's CRD, which it installs in every EKS cluster.
        .with_resource::<EniConfigCrd>()
        // The VPC resource controller's, in every EKS cluster.
        .with_resource::<SecurityGroupPolicyCrd>()
        // Calico's, served once the operator's CRDs are applied.
        .with_resource::<InstallationCrd>()
        .build()
        .await?)
}

/// `/api/v1/namespaces[/{name}[/status|/finalize]]` → the alias; everything else unchanged.
fn rewrite_namespace_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/api/v1/namespaces")?;
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        [] | [_] => Some(format!("/api/v1/{NAMESPACE_ALIAS}{rest}")),
        [name, sub] if *sub == "status" || *sub == "finalize" => {
            Some(format!("/api/v1/{NAMESPACE_ALIAS}/{name}/status"))
        }
        _ => None,
    }
}

/// The in-memory clusters: a default one and one per EKS cluster name.
pub struct KubeDoubles {
    default: kube::Client,
    clusters: Mutex<HashMap<String, kube::Client>>,
    /// Every request served, as `METHOD path` (the path as the client sent it).
    requests: Mutex<Vec<String>>,
}

impl KubeDoubles {
    pub async fn new() -> anyhow::Result<KubeDoubles> {
        Ok(KubeDoubles {
            default: fake_cluster().await?,
            clusters: Mutex::default(),
            requests: Mutex::default(),
        })
    }

    /// The double of one EKS cluster (created on first use).
    pub async fn cluster(&self, name: &str) -> anyhow::Result<kube::Client> {
        if let Some(c) = lock(&self.clusters).get(name) {
            return Ok(c.clone());
        }
        let fresh = fake_cluster().await?;
        Ok(lock(&self.clusters)
            .entry(name.to_owned())
            .or_insert(fresh)
            .clone())
    }

    /// Every request served so far, as `METHOD path`.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.requests).clone()
    }

    /// The requests that could change something (every method but `GET` and `HEAD`).
    pub fn writes(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| !r.starts_with("GET ") && !r.starts_with("HEAD "))
            .collect()
    }

    pub fn clear_requests(&self) {
        lock(&self.requests).clear();
    }

    /// A cluster-scoped custom object of a cluster (kept in the hidden namespace, see the
    /// module docs), as JSON, or `None`.
    pub async fn cluster_scoped_custom_object(
        &self,
        cluster: &str,
        group: &str,
        version: &str,
        plural: &str,
        name: &str,
    ) -> anyhow::Result<Option<serde_json::Value>> {
        let client = self.cluster(cluster).await?;
        let resource = kube::api::ApiResource {
            group: group.to_owned(),
            version: version.to_owned(),
            api_version: format!("{group}/{version}"),
            kind: String::new(),
            plural: plural.to_owned(),
        };
        let api: kube::Api<kube::api::DynamicObject> =
            kube::Api::namespaced_with(client, CLUSTER_SCOPE_NAMESPACE, &resource);
        Ok(api
            .get_opt(name)
            .await?
            .map(serde_json::to_value)
            .transpose()?)
    }

    /// Forgets a cluster's objects (its EKS cluster was deleted).
    pub fn drop_cluster(&self, name: &str) {
        lock(&self.clusters).remove(name);
    }
}

/// `/clusters/{name}/rest` → (name, `/rest`).
fn split_cluster_prefix(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/clusters/")?;
    let (name, rest) = rest.split_once('/').unwrap_or((rest, ""));
    let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
    Some((name.into_owned(), format!("/{rest}")))
}

/// axum fallback handler: every request goes to a fake API server.
pub async fn handle(State(doubles): State<Arc<KubeDoubles>>, req: Request<Body>) -> Response<Body> {
    let (mut parts, body) = req.into_parts();
    lock(&doubles.requests).push(format!("{} {}", parts.method, parts.uri.path()));
    let client = match split_cluster_prefix(parts.uri.path()) {
        Some((name, rest)) => {
            let pq = match parts.uri.query() {
                Some(q) => format!("{rest}?{q}"),
                None => rest,
            };
            match pq.parse() {
                Ok(uri) => parts.uri = uri,
                Err(e) => return status(StatusCode::BAD_REQUEST, &format!("bad path: {e}")),
            }
            match doubles.cluster(&name).await {
                Ok(c) => c,
                Err(e) => return status(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
            }
        }
        None => doubles.default.clone(),
    };
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return status(StatusCode::BAD_REQUEST, &format!("unreadable body: {e}")),
    };
    let path = parts.uri.path().to_owned();
    let path = path.as_str();
    if parts.method == http::Method::GET && path == "/version" {
        return version();
    }
    if let Some(crd) = required_crd(path) {
        match crd_exists(&client, crd).await {
            Ok(true) => {}
            Ok(false) => {
                return not_found(&format!(
                    "the server could not find the requested resource \
                     (CustomResourceDefinition {crd} is not installed)"
                ))
            }
            Err(e) => return status(StatusCode::INTERNAL_SERVER_ERROR, &e),
        }
    }
    let cluster_scoped = rewrite_cluster_scoped_path(path);
    let hide_namespace = cluster_scoped.is_some();
    if let Some(p) = rewrite_namespace_path(path).or(cluster_scoped) {
        let pq = match parts.uri.query() {
            Some(q) => format!("{p}?{q}"),
            None => p,
        };
        match pq.parse() {
            Ok(uri) => parts.uri = uri,
            Err(e) => return status(StatusCode::BAD_REQUEST, &format!("bad path: {e}")),
        }
    }
    let req = Request::from_parts(parts, kube::client::Body::from(bytes));
    match client.send(req).await {
        Ok(resp) => {
            let (parts, body) = resp.into_parts();
            match body.collect().await {
                Ok(c) if hide_namespace => {
                    let bytes = c.to_bytes();
                    let body = hide_cluster_scope_namespace(&bytes).unwrap_or(bytes.to_vec());
                    let mut parts = parts;
                    parts.headers.remove(http::header::CONTENT_LENGTH);
                    Response::from_parts(parts, Body::from(body))
                }
                Ok(c) => Response::from_parts(parts, Body::from(c.to_bytes())),
                Err(e) => status(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
            }
        }
        Err(e) => status(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn version() -> Response<Body> {
    let v = serde_json::json!({
        "major": "1", "minor": "35", "gitVersion": "v1.35.0-tenantry-fake",
        "platform": "linux/amd64"
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(v.to_string()))
        .unwrap_or_default()
}

/// The 404 an API server answers for a kind it does not serve: reason `NotFound`, so that
/// clients read a GET as "no such object".
fn not_found(message: &str) -> Response<Body> {
    let mut r = status(StatusCode::NOT_FOUND, message);
    let v = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
        "message": message, "code": 404
    });
    *r.body_mut() = Body::from(v.to_string());
    r
}

/// A Kubernetes `Status` failure.
fn status(code: StatusCode, message: &str) -> Response<Body> {
    let v = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "status": "Failure",
        "message": message, "code": code.as_u16()
    });
    let mut r = Response::new(Body::from(v.to_string()));
    *r.status_mut() = code;
    r.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_scoped_custom_resources_live_in_the_hidden_namespace() {
        assert_eq!(
            rewrite_cluster_scoped_path("/apis/crd.k8s.amazonaws.com/v1alpha1/eniconfigs/us-east-1a")
                .as_deref(),
            Some("/apis/crd.k8s.amazonaws.com/v1alpha1/namespaces/tenantry-cluster-scoped/eniconfigs/us-east-1a")
        );
        assert_eq!(
            rewrite_cluster_scoped_path("/apis/crd.k8s.amazonaws.com/v1alpha1/eniconfigs")
                .as_deref(),
            Some("/apis/crd.k8s.amazonaws.com/v1alpha1/namespaces/tenantry-cluster-scoped/eniconfigs")
        );
        assert_eq!(
            rewrite_cluster_scoped_path("/apis/crd.k8s.amazonaws.com/v1alpha1/eniconfigsx"),
            None
        );
        let list = serde_json::json!({"items": [
            {"metadata": {"name": "a", "namespace": "tenantry-cluster-scoped"}}]});
        let hidden = hide_cluster_scope_namespace(list.to_string().as_bytes()).unwrap();
        let hidden: serde_json::Value = serde_json::from_slice(&hidden).unwrap();
        assert_eq!(
            hidden["items"][0]["metadata"],
            serde_json::json!({"name": "a"})
        );
    }

    #[tokio::test]
    async fn an_installation_is_served_only_once_its_crd_exists() {
        use kube::api::{Patch, PatchParams};
        let (url, _doubles, task) = serve().await.expect("serve");
        let config = kube::Config::new(url.parse().expect("url"));
        let client = kube::Client::try_from(config).expect("client");
        let installation = kube::api::ApiResource {
            group: "operator.tigera.io".into(),
            version: "v1".into(),
            api_version: "operator.tigera.io/v1".into(),
            kind: "Installation".into(),
            plural: "installations".into(),
        };
        let api: kube::Api<kube::api::DynamicObject> =
            kube::Api::all_with(client.clone(), &installation);
        let body = serde_json::json!({"apiVersion": "operator.tigera.io/v1",
            "kind": "Installation", "metadata": {"name": "default"},
            "spec": {"kubernetesProvider": "EKS"}});
        let params = PatchParams::apply("test").force();
        let refused = api
            .patch("default", &params, &Patch::Apply(&body))
            .await
            .expect_err("no CRD yet");
        assert!(
            matches!(&refused, kube::Error::Api(s) if s.code == 404),
            "{refused:?}"
        );
        let crds: kube::Api<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        > = kube::Api::all(client.clone());
        let crd = serde_json::json!({"apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "installations.operator.tigera.io"},
            "spec": {"group": "operator.tigera.io", "scope": "Cluster",
                     "names": {"kind": "Installation", "plural": "installations"},
                     "versions": [{"name": "v1", "served": true, "storage": true}]}});
        crds.patch(
            "installations.operator.tigera.io",
            &params,
            &Patch::Apply(&crd),
        )
        .await
        .expect("crd applied");
        api.patch("default", &params, &Patch::Apply(&body))
            .await
            .expect("served once the CRD exists");
        let got = api.get("default").await.expect("stored");
        assert_eq!(got.metadata.namespace, None, "cluster-scoped");
        assert_eq!(got.data["spec"]["kubernetesProvider"], "EKS");
        task.abort();
    }

    #[test]
    fn namespace_paths_are_aliased() {
        assert_eq!(
            rewrite_namespace_path("/api/v1/namespaces").as_deref(),
            Some("/api/v1/tenantrynamespaces")
        );
        assert_eq!(
            rewrite_namespace_path("/api/v1/namespaces/a").as_deref(),
            Some("/api/v1/tenantrynamespaces/a")
        );
        assert_eq!(
            rewrite_namespace_path("/api/v1/namespaces/a/status").as_deref(),
            Some("/api/v1/tenantrynamespaces/a/status")
        );
        assert_eq!(
            rewrite_namespace_path("/api/v1/namespaces/a/configmaps"),
            None
        );
        assert_eq!(
            rewrite_namespace_path("/apis/apps/v1/namespaces/a/deployments/x"),
            None
        );
    }
}
