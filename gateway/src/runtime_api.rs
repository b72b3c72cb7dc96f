//! The real function binaries behind a local Lambda Runtime API.
//!
//! With [`crate::StackOptions::function_binaries`] set, the gateway does not run handlers in its
//! own process: each invocation goes to a process of that function's binary (`functions/*`, the
//! one `cargo lambda` packages), which polls the
//! [Runtime API](https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html) as it does in
//! Lambda:
//! - `GET  /2018-06-01/runtime/invocation/next` hands it the next event;
//! - `POST /2018-06-01/runtime/invocation/{id}/response` and `…/{id}/error` answer it;
//! - `POST /2018-06-01/runtime/init/error` reports a failed cold start.
//!
//! Each process gets its own Runtime API listener (the API's paths name no function) and its own
//! access key, so the gateway attributes its AWS calls as it does for in-process handlers. A
//! process serves one invocation at a time, as a Lambda execution environment does: a function
//! invoked while its processes are busy gets another (Lambda scales out the same way), and idle
//! ones stay warm for the next. A process that exits or is killed mid-invocation fails that
//! invocation with `Runtime.ExitError`, as in AWS; the next invocation starts a fresh one.

use crate::proxy::{lock, Gateway};
use anyhow::Context;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot, watch};

/// errorType of an invocation whose process exited (or was killed) before answering.
pub const EXIT_ERROR_TYPE: &str = "Runtime.ExitError";
/// errorType when the function's binary cannot be started.
pub const INVALID_ENTRYPOINT: &str = "Runtime.InvalidEntrypoint";
/// errorType of an invocation that ran past the function's timeout.
pub const TIMEOUT_ERROR_TYPE: &str = "Sandbox.Timedout";

/// The answer to one invocation: the function's output, or (errorType, errorMessage).
pub type Reply = Result<Value, (String, String)>;

/// The Lambda function timeout the local stack applies (the template's longest is 900 s).
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(900);
/// What the binaries are told their memory is (lambda_runtime requires the variable).
const MEMORY_MB: &str = "1024";

/// One function's cold start: spawn to its first `next` request.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ColdStart {
    pub function: String,
    /// Microseconds from spawning the process to its first `GET …/invocation/next`.
    pub init_us: u64,
}

/// The pool of function processes of one gateway.
pub struct Binaries {
    dir: PathBuf,
    log_dir: PathBuf,
    idle: Mutex<HashMap<&'static str, Vec<Arc<Worker>>>>,
    /// Every process started and not yet reaped (for shutdown).
    all: Mutex<Vec<Arc<Worker>>>,
    /// Every process's cold start, dead ones included.
    cold_starts: Arc<Mutex<Vec<ColdStart>>>,
    next: AtomicU64,
}

/// One running function process and its Runtime API.
pub struct Worker {
    /// The process's AWS access key: its calls are attributed to its current invocation.
    pub access_key: String,
    tx: mpsc::Sender<Event>,
    api: Arc<Api>,
    kill: Mutex<Option<oneshot::Sender<()>>>,
    dead: watch::Receiver<bool>,
}

/// One event on its way to a process.
struct Event {
    id: String,
    payload: Bytes,
    function_arn: String,
    deadline_ms: u128,
    reply: oneshot::Sender<Reply>,
}

/// The Runtime API state of one process.
struct Api {
    function: &'static str,
    spawned: Instant,
    events: tokio::sync::Mutex<mpsc::Receiver<Event>>,
    /// The event the process is working on: its request id and where its answer goes.
    current: Mutex<Option<(String, oneshot::Sender<Reply>)>>,
    init_error: Mutex<Option<(String, String)>>,
    /// Set at the first `next`; the process's cold start goes to `cold_starts` then.
    started: std::sync::atomic::AtomicBool,
    cold_starts: Arc<Mutex<Vec<ColdStart>>>,
    /// Set once the process is gone: releases a `next` still waiting for an event.
    gone: watch::Sender<bool>,
}

impl Binaries {
    /// Binaries in `dir` (named as the functions: `network`, `intake`, ...); each process's
    /// stdout and stderr are appended to `log_dir/lambda-<function>.log`.
    pub fn new(dir: PathBuf, log_dir: PathBuf) -> anyhow::Result<Binaries> {
        for f in tenantry::functions::FUNCTION_NAMES {
            let path = dir.join(f);
            anyhow::ensure!(
                path.is_file(),
                "function binary {} is missing: build them with `cargo build --workspace --bins`",
                path.display()
            );
        }
        Ok(Binaries {
            dir,
            log_dir,
            idle: Mutex::default(),
            all: Mutex::default(),
            cold_starts: Arc::default(),
            next: AtomicU64::new(1),
        })
    }

    /// Runs one invocation of `function` on a warm or new process. `on_start` gets the process's
    /// access key before the event is sent (to attribute its calls); `crash` resolves when the
    /// gateway wants the process killed mid-invocation, with the ack to send once it is dead.
    /// Returns the outcome (`succeeded`, `failed`, `crashed`) and the reply.
    pub async fn invoke(
        &self,
        gw: &Gateway,
        function: &'static str,
        payload: Value,
        on_start: impl FnOnce(&str),
        crash: oneshot::Receiver<crate::invoke::CrashOrder>,
    ) -> (&'static str, Reply) {
        let worker = match self.checkout(gw, function).await {
            Ok(w) => w,
            Err(e) => {
                return (
                    "failed",
                    Err((INVALID_ENTRYPOINT.to_owned(), format!("{e:#}"))),
                )
            }
        };
        on_start(&worker.access_key);
        let (reply_tx, reply_rx) = oneshot::channel();
        let deadline = SystemTime::now() + FUNCTION_TIMEOUT;
        let event = Event {
            id: uuid::Uuid::new_v4().to_string(),
            payload: Bytes::from(payload.to_string()),
            function_arn: format!(
                "arn:aws:lambda:{}:{}:function:{}{function}",
                gw.region,
                tenantry::aws::LOCAL_ACCOUNT_ID,
                gw.function_prefix
            ),
            deadline_ms: deadline
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
            reply: reply_tx,
        };
        if worker.tx.send(event).await.is_err() {
            let error = exit_error("the process exited before taking the event");
            return ("failed", Err(error));
        }
        let (outcome, reply) = tokio::select! {
            reply = reply_rx => {
                let reply = reply.unwrap_or_else(|_| Err(exit_error("the process exited")));
                (if reply.is_ok() { "succeeded" } else { "failed" }, reply)
            }
            Ok((n, ack)) = crash => {
                worker.kill().await;
                let _ = ack.send(());
                let message = format!("tenantry gateway: crashed after {n} (process killed)");
                ("crashed", Err((EXIT_ERROR_TYPE.to_owned(), message)))
            }
            _ = tokio::time::sleep(FUNCTION_TIMEOUT) => {
                worker.kill().await;
                let message = format!("Task timed out after {} seconds", FUNCTION_TIMEOUT.as_secs());
                ("failed", Err((TIMEOUT_ERROR_TYPE.to_owned(), message)))
            }
        };
        if !*worker.dead.borrow() {
            lock(&self.idle).entry(function).or_default().push(worker);
        }
        (outcome, reply)
    }

    /// The cold starts so far, one per process that reached its first `next`.
    pub fn cold_starts(&self) -> Vec<ColdStart> {
        lock(&self.cold_starts).clone()
    }

    /// How many processes of `function` are running.
    pub fn processes(&self, function: &str) -> usize {
        lock(&self.all)
            .iter()
            .filter(|w| w.api.function == function && !*w.dead.borrow())
            .count()
    }

    /// Kills every process and waits for each to be reaped.
    pub async fn shutdown(&self) {
        let workers: Vec<_> = lock(&self.all).drain(..).collect();
        lock(&self.idle).clear();
        for w in workers {
            w.kill().await;
        }
    }

    async fn checkout(&self, gw: &Gateway, function: &'static str) -> anyhow::Result<Arc<Worker>> {
        loop {
            let idle = lock(&self.idle).get_mut(function).and_then(Vec::pop);
            match idle {
                Some(w) if !*w.dead.borrow() => return Ok(w),
                Some(_) => continue,
                None => break,
            }
        }
        let worker = self.spawn(gw, function).await?;
        let mut all = lock(&self.all);
        all.retain(|w| !*w.dead.borrow());
        all.push(worker.clone());
        Ok(worker)
    }

    async fn spawn(&self, gw: &Gateway, function: &'static str) -> anyhow::Result<Arc<Worker>> {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let access_key = format!("TPRC{n:08}");
        let (tx, rx) = mpsc::channel(1);
        let api = Arc::new(Api {
            function,
            spawned: Instant::now(),
            events: tokio::sync::Mutex::new(rx),
            current: Mutex::default(),
            init_error: Mutex::default(),
            started: Default::default(),
            cold_starts: self.cold_starts.clone(),
            gone: watch::channel(false).0,
        });
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .context("binding a Runtime API listener")?;
        let runtime_api = listener.local_addr()?.to_string();
        let router = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });

        let log_path = self.log_dir.join(format!("lambda-{function}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let mut cmd = tokio::process::Command::new(self.dir.join(function));
        cmd.env_clear()
            // What the handlers read besides AWS's own variables (poll interval, event bus,
            // Security Hub switch, run retention): the same values in-process handlers see.
            .envs(std::env::vars().filter(|(k, _)| k.starts_with("TENANTRY_") || k == "RUST_LOG"))
            .env("AWS_LAMBDA_RUNTIME_API", &runtime_api)
            .env(
                "AWS_LAMBDA_FUNCTION_NAME",
                format!("{}{function}", gw.function_prefix),
            )
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", MEMORY_MB)
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}{function}", gw.function_prefix),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("local/{access_key}"))
            .env("AWS_REGION", &gw.region)
            .env("AWS_ACCESS_KEY_ID", &access_key)
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env(tenantry::aws::ENDPOINT_ENV, &gw.endpoint)
            .env(tenantry::deps::TABLE_ENV, &gw.table_name)
            .env(
                tenantry::deps::ROLE_BOUNDARY_ENV,
                tenantry::aws::LOCAL_ROLE_BOUNDARY_ARN,
            )
            .env(
                tenantry::deps::EXTERNAL_ID_ENV,
                tenantry::aws::LOCAL_EXTERNAL_ID,
            )
            .env(
                tenantry::deps::TARGET_ACCOUNTS_ENV,
                tenantry::aws::LOCAL_TARGET_ACCOUNT_ID,
            )
            // As the template's Globals set it: no STS call per cold start for the account.
            .env(
                tenantry::deps::ACCOUNT_ID_ENV,
                tenantry::aws::LOCAL_ACCOUNT_ID,
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", self.dir.join(function).display()))?;

        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let (dead_tx, dead_rx) = watch::channel(false);
        let reaper_api = api.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                _ = kill_rx => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            server.abort();
            let message = match status {
                Ok(s) => format!("Runtime exited with error: {s}"),
                Err(e) => format!("Runtime exited with error: {e}"),
            };
            reaper_api.fail_pending(&message).await;
            let _ = dead_tx.send(true);
        });
        Ok(Arc::new(Worker {
            access_key,
            tx,
            api,
            kill: Mutex::new(Some(kill_tx)),
            dead: dead_rx,
        }))
    }
}

impl Worker {
    /// Kills the process (SIGKILL) and waits until it is reaped.
    async fn kill(&self) {
        if let Some(k) = lock(&self.kill).take() {
            let _ = k.send(());
        }
        let mut dead = self.dead.clone();
        let _ = tokio::time::timeout(Duration::from_secs(10), dead.wait_for(|d| *d)).await;
    }
}

impl Api {
    /// The process is gone: the event it was working on, and any it never took, fail with the
    /// init error it reported, else `Runtime.ExitError`.
    async fn fail_pending(&self, message: &str) {
        let error = lock(&self.init_error)
            .clone()
            .unwrap_or_else(|| exit_error(message));
        // A `next` of the dead process may still hold the event queue (hyper does not notice a
        // peer that went away while the handler waits): release it first.
        self.gone.send_replace(true);
        if let Some((_, reply)) = lock(&self.current).take() {
            let _ = reply.send(Err(error.clone()));
        }
        let mut events = self.events.lock().await;
        events.close();
        while let Ok(event) = events.try_recv() {
            let _ = event.reply.send(Err(error.clone()));
        }
    }
}

fn exit_error(message: &str) -> (String, String) {
    (EXIT_ERROR_TYPE.to_owned(), message.to_owned())
}

/// `GET /2018-06-01/runtime/invocation/next`: blocks until an event arrives.
async fn next(State(api): State<Arc<Api>>) -> Response<axum::body::Body> {
    if !api.started.swap(true, Ordering::SeqCst) {
        lock(&api.cold_starts).push(ColdStart {
            function: api.function.to_owned(),
            init_us: api.spawned.elapsed().as_micros() as u64,
        });
    }
    let mut gone = api.gone.subscribe();
    let event = tokio::select! {
        event = async { api.events.lock().await.recv().await } => event,
        _ = gone.wait_for(|g| *g) => None,
    };
    let Some(event) = event else {
        return status(StatusCode::GONE, "the local stack is stopping");
    };
    *lock(&api.current) = Some((event.id.clone(), event.reply));
    let mut resp = Response::new(axum::body::Body::from(event.payload));
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    for (name, value) in [
        ("lambda-runtime-aws-request-id", event.id),
        ("lambda-runtime-deadline-ms", event.deadline_ms.to_string()),
        ("lambda-runtime-invoked-function-arn", event.function_arn),
        (
            "lambda-runtime-trace-id",
            format!("Root=1-{}", uuid::Uuid::new_v4().simple()),
        ),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    resp
}

/// `POST …/invocation/{id}/response`.
async fn response(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response<axum::body::Body> {
    let output = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(Value::Null)
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            (
                "Runtime.InvalidResponse".to_owned(),
                format!("the function's response is not JSON: {e}"),
            )
        })
    };
    answer(&api, &id, output)
}

/// `POST …/invocation/{id}/error`: the body is `{"errorType", "errorMessage"}`.
async fn error(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response<axum::body::Body> {
    answer(&api, &id, Err(error_body(&headers, &body)))
}

/// `POST /2018-06-01/runtime/init/error`: the process failed its cold start and will exit.
async fn init_error(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response<axum::body::Body> {
    *lock(&api.init_error) = Some(error_body(&headers, &body));
    status(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
}

fn answer(api: &Api, id: &str, reply: Reply) -> Response<axum::body::Body> {
    let mut current = lock(&api.current);
    match current.take() {
        Some((current_id, tx)) if current_id == id => {
            let _ = tx.send(reply);
            status(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        other => {
            *current = other;
            status(
                StatusCode::BAD_REQUEST,
                r#"{"errorType":"InvalidRequestID","errorMessage":"Invalid request ID"}"#,
            )
        }
    }
}

/// (errorType, errorMessage) of an error body, else of the error-type header.
fn error_body(headers: &HeaderMap, body: &[u8]) -> (String, String) {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let error_type = field("errorType")
        .or_else(|| {
            headers
                .get("lambda-runtime-function-error-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "Unhandled".to_owned());
    let message =
        field("errorMessage").unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    (error_type, message)
}

fn status(code: StatusCode, body: &'static str) -> Response<axum::body::Body> {
    let mut resp = Response::new(axum::body::Body::from(body));
    *resp.status_mut() = code;
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_body_gives_its_error_type_and_message() {
        let body = br#"{"errorType":"Tenantry.Conflict","errorMessage":"lease held"}"#;
        assert_eq!(
            error_body(&HeaderMap::new(), body),
            ("Tenantry.Conflict".to_owned(), "lease held".to_owned())
        );
    }

    #[test]
    fn without_a_json_body_the_header_names_the_error_type() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "lambda-runtime-function-error-type",
            HeaderValue::from_static("Runtime.InitError"),
        );
        assert_eq!(
            error_body(&headers, b"boom"),
            ("Runtime.InitError".to_owned(), "boom".to_owned())
        );
        assert_eq!(error_body(&HeaderMap::new(), b"").0, "Unhandled");
    }
}
