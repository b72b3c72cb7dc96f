//! The gateway's HTTP front: routes Lambda invokes, control calls, EKS extras; forwards the rest
//! to moto verbatim; applies faults and counts calls on the way.

use crate::calls::{
    classify, match_route, named_resource, CallLine, CallLog, CallRecord, Classified, Protocol,
};
use crate::durations::{Durations, Timeline};
use crate::faults::{error_response, FaultState, Faults};
use crate::invoke::{self, Active};
use axum::body::Body;
use axum::extract::State;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Shared state of one gateway.
pub struct Gateway {
    /// moto's base URL, `http://127.0.0.1:P`.
    pub moto: String,
    /// The gateway's own base URL, `http://127.0.0.1:Q` (handlers' AWS endpoint).
    pub endpoint: String,
    pub kube_endpoint: String,
    pub region: String,
    pub table_name: String,
    pub function_prefix: String,
    pub(crate) http: reqwest::Client,
    pub(crate) log: Mutex<CallLog>,
    pub(crate) faults: Mutex<FaultState>,
    pub(crate) durations: Mutex<Durations>,
    pub(crate) timeline: Mutex<Timeline>,
    /// When each NAT gateway was created (`nat.rs`).
    pub(crate) nat_created: Mutex<std::collections::HashMap<String, std::time::Instant>>,
    pub(crate) eks: Mutex<crate::eks::EksState>,
    /// Sessions `AssumeRole` handed out, with their accounts (`accounts.rs`).
    pub(crate) sessions: Mutex<crate::accounts::Sessions>,
    pub(crate) cloudwatch: Mutex<crate::cloudwatch::CloudWatchState>,
    pub(crate) securityhub: Mutex<crate::securityhub::SecurityHubState>,
    /// Invocation access key → its invocation (kept after it ends, to attribute late calls).
    pub(crate) invocations: Mutex<HashMap<String, Arc<Active>>>,
    pub(crate) next_invocation: AtomicU64,
    pub(crate) kube: Arc<crate::kube::KubeDoubles>,
    /// moto's server handles requests on several threads with no lock around DynamoDB, so two
    /// conditional writes can both pass their check. Real DynamoDB makes every single-item write
    /// atomic; serialising DynamoDB requests here restores that guarantee.
    pub(crate) dynamodb_serial: tokio::sync::Mutex<()>,
    /// `$TENANTRY_CALL_LOG_DIR/calls-<pid>-<n>.jsonl`: every AWS call as a [`CallLine`].
    pub(crate) call_file: Option<Mutex<std::fs::File>>,
    /// The real function binaries behind a local Runtime API; None = handlers in process.
    pub(crate) binaries: Option<crate::runtime_api::Binaries>,
}

/// Environment variable: a directory where each gateway appends its calls as JSON lines.
pub const CALL_LOG_DIR_ENV: &str = "TENANTRY_CALL_LOG_DIR";

/// Opens this gateway's call log file when [`CALL_LOG_DIR_ENV`] is set (one file per gateway).
fn open_call_file() -> anyhow::Result<Option<Mutex<std::fs::File>>> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let Some(dir) = std::env::var_os(CALL_LOG_DIR_ENV).filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir)?;
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("calls-{}-{n}.jsonl", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    Ok(Some(Mutex::new(file)))
}

/// Installs rustls' aws-lc-rs crypto provider as the process default if none is installed.
///
/// `kube-fake-client` (through `jsonschema`) enables reqwest's `rustls-no-provider` feature, and
/// features unify: any `reqwest::Client::builder().build()` in a process that links this crate
/// panics unless a provider is installed. [`crate::LocalStack::start`] calls this; call it
/// yourself before building a reqwest client earlier than that.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

/// Locks a mutex, recovering from poisoning (a panicking handler must not wedge the gateway).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Gateway {
    pub fn new(
        moto: String,
        endpoint: String,
        kube_endpoint: String,
        region: String,
        table_name: String,
        function_prefix: String,
        kube: Arc<crate::kube::KubeDoubles>,
    ) -> anyhow::Result<Gateway> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(300))
            .build()?;
        Ok(Gateway {
            moto,
            endpoint,
            kube_endpoint,
            region,
            table_name,
            function_prefix,
            http,
            log: Mutex::default(),
            faults: Mutex::default(),
            durations: Mutex::default(),
            timeline: Mutex::default(),
            nat_created: Mutex::default(),
            sessions: Mutex::default(),
            eks: Mutex::default(),
            cloudwatch: Mutex::default(),
            securityhub: Mutex::default(),
            invocations: Mutex::default(),
            next_invocation: AtomicU64::new(1),
            dynamodb_serial: tokio::sync::Mutex::new(()),
            kube,
            call_file: open_call_file()?,
            binaries: None,
        })
    }

    /// Runs the functions on their real binaries behind a local Runtime API (None: in process).
    pub fn with_binaries(self, binaries: Option<crate::runtime_api::Binaries>) -> Gateway {
        Gateway { binaries, ..self }
    }

    pub fn calls(&self) -> CallLog {
        lock(&self.log).clone()
    }

    pub fn reset_calls(&self) {
        *lock(&self.log) = CallLog::default();
    }

    pub fn set_faults(&self, f: Faults) {
        *lock(&self.faults) = FaultState::new(f);
    }

    pub fn faults(&self) -> Faults {
        lock(&self.faults).faults.clone()
    }

    pub fn set_durations(&self, d: Durations) {
        *lock(&self.durations) = d;
    }

    pub fn durations(&self) -> Durations {
        lock(&self.durations).clone()
    }

    pub(crate) fn record(&self, call: CallRecord) {
        lock(&self.log).calls.push(call);
    }

    /// Records a call and, with a call log file, appends it there with the resource it names.
    fn record_call(&self, call: CallRecord, req: &AwsRequest) {
        if let Some(file) = &self.call_file {
            let line = CallLine {
                function: call.invocation.clone(),
                service: call.service.clone(),
                operation: call.operation.clone(),
                region: req.class.region.clone(),
                resource: named_resource(
                    &req.method,
                    &req.path,
                    req.query.as_deref(),
                    &req.headers,
                    &req.body,
                    &req.class,
                ),
                status: call.status,
                fault: call.fault.clone(),
                account: Some(req.account(self)).filter(|a| a != tenantry::aws::LOCAL_ACCOUNT_ID),
            };
            if let Ok(mut text) = serde_json::to_string(&line) {
                text.push('\n');
                use std::io::Write;
                if let Err(e) = lock(file).write_all(text.as_bytes()) {
                    tracing::warn!(error = %e, "could not append to the call log");
                }
            }
        }
        self.record(call);
    }
}

/// One AWS request, fully read.
pub struct AwsRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub class: Classified,
}

impl AwsRequest {
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{}", self.path, q),
            None => self.path.clone(),
        }
    }

    /// The account of the call's credentials (`accounts.rs`).
    pub fn account(&self, gw: &Gateway) -> String {
        gw.account_of(self.class.access_key.as_deref())
    }

    /// Region of the call (credential scope), else the stack's.
    pub fn region<'a>(&'a self, gw: &'a Gateway) -> &'a str {
        self.class.region.as_deref().unwrap_or(&gw.region)
    }
}

/// axum fallback handler: everything comes through here.
pub async fn handle(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            return plain(StatusCode::BAD_REQUEST, &format!("unreadable body: {e}")).map(Body::from)
        }
    };
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let resp = if let Some(rest) = path.strip_prefix("/_tenantry/") {
        control(&gw, &parts.method, rest, &body)
    } else if path.starts_with("/moto-api") {
        forward(
            &gw,
            &parts.method,
            &parts.uri.to_string(),
            &parts.headers,
            body,
        )
        .await
    } else if let (&Method::POST, Some(caps)) = (
        &parts.method,
        match_route("/2015-03-31/functions/{}/invocations", &path),
    ) {
        invoke::handle(&gw, &caps[0], &parts.headers, body).await
    } else {
        let class = classify(
            &parts.method,
            &path,
            query.as_deref(),
            &parts.headers,
            &body,
        );
        let req = AwsRequest {
            method: parts.method,
            path,
            query,
            headers: parts.headers,
            body,
            class,
        };
        aws_call(&gw, req).await
    };
    resp.map(Body::from)
}

/// A counted AWS call: faults, crash injection, EKS extras or moto.
async fn aws_call(gw: &Arc<Gateway>, req: AwsRequest) -> Response<Bytes> {
    let active = req
        .class
        .access_key
        .as_ref()
        .and_then(|k| lock(&gw.invocations).get(k).cloned());
    let function = active.as_ref().map(|a| a.function.clone());
    let access_key = active.as_ref().and(req.class.access_key.clone());
    let (latency, injected) = {
        let mut f = lock(&gw.faults);
        (f.faults.latency_ms, f.roll())
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    if let Some(injected) = injected {
        let request_id = uuid::Uuid::new_v4().to_string();
        let resp = error_response(
            injected,
            req.class.protocol,
            &req.class.service,
            &request_id,
        );
        gw.record_call(
            CallRecord {
                service: req.class.service.clone(),
                operation: req.class.operation.clone(),
                mutating: req.class.mutating,
                invocation: function,
                access_key,
                status: resp.status().as_u16(),
                fault: Some(injected.name().to_owned()),
            },
            &req,
        );
        return resp;
    }
    let crash_at = active
        .as_ref()
        .and_then(|a| a.count_call(gw, crate::faults::Api::Aws));

    let resp = if req.class.service == "eks" {
        crate::eks::serve(gw, &req).await
    } else if req.class.service == "sts" && req.class.operation == "AssumeRole" {
        crate::accounts::assume_role(gw, &req).await
    } else if req.class.protocol == Protocol::Cbor
        && req.class.service == crate::cloudwatch::SERVICE
    {
        crate::cloudwatch::serve(gw, &req)
    } else if req.class.service == "securityhub" {
        crate::securityhub::serve(gw, &req).await
    } else if req.class.service == "dynamodb" {
        let _serial = gw.dynamodb_serial.lock().await;
        forward_request(gw, &req).await
    } else if req.class.service == "s3" {
        crate::s3::fix(&req.class.operation, forward_request(gw, &req).await)
    } else if req.class.service == "ec2" {
        match crate::nat::refuse(gw, &req.class.operation, &req.body) {
            Some(refused) => refused,
            None => crate::nat::fix(gw, &req.class.operation, forward_request(gw, &req).await),
        }
    } else {
        forward_request(gw, &req).await
    };
    gw.record_call(
        CallRecord {
            service: req.class.service.clone(),
            operation: req.class.operation.clone(),
            mutating: req.class.mutating,
            invocation: function,
            access_key,
            status: resp.status().as_u16(),
            fault: None,
        },
        &req,
    );
    if let (Some(n), Some(active)) = (crash_at, active) {
        // The call's side effect happened; the handler must never see the answer.
        active.crash(n, crate::faults::Api::Aws).await;
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "tenantry gateway: the calling handler was crashed",
        );
    }
    resp
}

/// Forwards `req` to moto as it came, in the account of its credentials.
pub(crate) async fn forward_request(gw: &Gateway, req: &AwsRequest) -> Response<Bytes> {
    let headers = crate::accounts::in_account(req.headers.clone(), &req.account(gw));
    forward(
        gw,
        &req.method,
        &req.path_and_query(),
        &headers,
        req.body.clone(),
    )
    .await
}

/// Forwards a request to moto as is and returns its answer.
pub async fn forward(
    gw: &Gateway,
    method: &Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response<Bytes> {
    let url = format!("{}{}", gw.moto, path_and_query);
    let mut out = HeaderMap::new();
    for (k, v) in headers {
        if !is_hop_by_hop(k.as_str()) {
            out.append(k.clone(), v.clone());
        }
    }
    let sent = gw
        .http
        .request(method.clone(), &url)
        .headers(out)
        .body(body)
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => {
            return plain(
                StatusCode::BAD_GATEWAY,
                &format!("tenantry gateway: moto unreachable: {e}"),
            )
        }
    };
    let status = resp.status();
    let mut headers = HeaderMap::new();
    for (k, v) in resp.headers() {
        if !is_hop_by_hop(k.as_str()) {
            headers.append(k.clone(), v.clone());
        }
    }
    let body = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => {
            return plain(
                StatusCode::BAD_GATEWAY,
                &format!("tenantry gateway: moto answer unreadable: {e}"),
            )
        }
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    r
}

fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "upgrade"
            | "te"
            | "trailer"
            | "content-length"
            | "expect"
    )
}

/// A plain-text response.
pub fn plain(status: StatusCode, text: &str) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from(text.to_owned()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A JSON response.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Bytes> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
    let mut r = Response::new(Bytes::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    r
}

/// The control API under `/_tenantry/`.
fn control(gw: &Gateway, method: &Method, rest: &str, body: &[u8]) -> Response<Bytes> {
    fn bad(e: serde_json::Error) -> Response<Bytes> {
        plain(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}"))
    }
    match (method, rest.trim_end_matches('/')) {
        (&Method::GET, "health") => json(
            StatusCode::OK,
            &serde_json::json!({
                "status": "ok",
                "endpoint": gw.endpoint,
                "motoEndpoint": gw.moto,
                "kubeEndpoint": gw.kube_endpoint,
                "region": gw.region,
                "tableName": gw.table_name,
                "functionPrefix": gw.function_prefix,
            }),
        ),
        (&Method::GET, "calls") => json(StatusCode::OK, &gw.calls()),
        (&Method::POST, "calls/reset") | (&Method::DELETE, "calls") => {
            gw.reset_calls();
            json(StatusCode::OK, &serde_json::json!({"reset": true}))
        }
        (&Method::GET, "faults") => json(StatusCode::OK, &gw.faults()),
        (&Method::PUT, "faults") => match serde_json::from_slice::<Faults>(body) {
            Ok(f) => {
                gw.set_faults(f.clone());
                json(StatusCode::OK, &f)
            }
            Err(e) => bad(e),
        },
        (&Method::GET, "durations") => json(StatusCode::OK, &gw.durations()),
        (&Method::PUT, "durations") => match serde_json::from_slice::<Durations>(body) {
            Ok(d) => {
                gw.set_durations(d.clone());
                json(StatusCode::OK, &d)
            }
            Err(e) => bad(e),
        },
        _ => plain(StatusCode::NOT_FOUND, "unknown tenantry control path"),
    }
}
