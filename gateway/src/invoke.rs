//! The Lambda Invoke API, answered with Tenantry's own handlers.
//!
//! moto's Step Functions interpreter (both `Resource: arn:aws:lambda:...` tasks and
//! `arn:aws:states:::lambda:invoke`) calls boto3 `lambda.invoke(FunctionName=..., Payload=...)` on
//! `http://localhost:$MOTO_PORT`, i.e. `POST /2015-03-31/functions/{FunctionName}/invocations`
//! with the JSON payload as body. If the answer carries `X-Amz-Function-Error`, the interpreter
//! reads `errorType` from the JSON body and uses it as the state's error name, so ASL
//! `Retry`/`Catch` on `Tenantry.Conflict` works; the whole body becomes the `Cause`.

use crate::calls::InvocationRecord;
use crate::faults::Api;
use crate::proxy::{json, lock, Gateway};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use serde_json::Value;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// errorType reported for an injected crash (what Lambda reports when a runtime exits).
pub const CRASH_ERROR_TYPE: &str = "Runtime.ExitError";

/// Crash order for an invocation: the call it follows (`AWS call 6`), and an ack to send once
/// aborted.
pub(crate) type CrashOrder = (String, oneshot::Sender<()>);

/// A handler invocation in flight (kept afterwards to attribute its calls).
pub struct Active {
    pub function: String,
    calls: AtomicU32,
    crash_after: Option<u32>,
    kube_calls: AtomicU32,
    kube_crash_after: Option<u32>,
    /// Tells the invocation to abort its handler; carries an ack sent once it is aborted.
    crash_tx: Mutex<Option<oneshot::Sender<CrashOrder>>>,
}

impl Active {
    /// Counts one call to `api`; returns its number if the invocation must crash after it.
    pub(crate) fn count_call(&self, gw: &Gateway, api: Api) -> Option<u32> {
        let (counter, crash_after) = match api {
            Api::Aws => (&self.calls, self.crash_after),
            Api::Kubernetes => (&self.kube_calls, self.kube_crash_after),
        };
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        if crash_after == Some(n) && lock(&gw.faults).take_crash(&self.function, api) {
            Some(n)
        } else {
            None
        }
    }

    /// Aborts the handler after call `n` to `api` and waits until it is gone.
    pub(crate) async fn crash(&self, n: u32, api: Api) {
        let tx = lock(&self.crash_tx).take();
        if let Some(tx) = tx {
            let (ack_tx, ack_rx) = oneshot::channel();
            if tx
                .send((format!("{} call {n}", api.name()), ack_tx))
                .is_ok()
            {
                let _ = tokio::time::timeout(Duration::from_secs(10), ack_rx).await;
            }
        }
    }
}

/// Resolves `FunctionName` (name, `name:qualifier`, partial or full ARN) to a handler name.
pub fn handler_name(function_name: &str, prefix: &str) -> Option<&'static str> {
    let name = match function_name.split_once(":function:") {
        Some((_, rest)) => rest,
        None => function_name,
    };
    let name = name.split(':').next().unwrap_or(name);
    let bare = name.strip_prefix(prefix).unwrap_or(name);
    tenantry::functions::FUNCTION_NAMES
        .iter()
        .copied()
        .find(|f| *f == bare)
}

/// `POST /2015-03-31/functions/{name}/invocations`.
pub async fn handle(
    gw: &Arc<Gateway>,
    function_name: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response<Bytes> {
    let Some(function) = handler_name(function_name, &gw.function_prefix) else {
        let arn = if function_name.starts_with("arn:") {
            function_name.to_owned()
        } else {
            format!(
                "arn:aws:lambda:{}:123456789012:function:{}",
                gw.region, function_name
            )
        };
        return lambda_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: {arn}"),
        );
    };
    let payload: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return lambda_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContentException",
                    &format!("Could not parse request body into json: {e}"),
                )
            }
        }
    };
    let invocation_type = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse");
    match invocation_type {
        "DryRun" => return empty(StatusCode::NO_CONTENT),
        "Event" => {
            let gw = gw.clone();
            tokio::spawn(async move {
                let _ = run(&gw, function, payload).await;
            });
            return empty(StatusCode::ACCEPTED);
        }
        _ => {}
    }
    let result = run(gw, function, payload).await;
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut resp = match result {
        Ok(output) => json(StatusCode::OK, &output),
        Err((error_type, message)) => {
            let mut r = json(
                StatusCode::OK,
                &serde_json::json!({"errorType": error_type, "errorMessage": message}),
            );
            r.headers_mut().insert(
                "x-amz-function-error",
                HeaderValue::from_static("Unhandled"),
            );
            r
        }
    };
    let h = resp.headers_mut();
    h.insert(
        "x-amz-executed-version",
        HeaderValue::from_static("$LATEST"),
    );
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

/// Runs one invocation of `function` (in process, or on its binary when the stack runs the
/// real binaries) with its own access key; records it.
pub async fn run(
    gw: &Arc<Gateway>,
    function: &'static str,
    payload: Value,
) -> Result<Value, (String, String)> {
    let started = Instant::now();
    let (crash_tx, crash_rx) = oneshot::channel();
    let (crash_after, kube_crash_after) = {
        let mut faults = lock(&gw.faults);
        (
            faults.crash_armed(function, Api::Aws),
            faults.crash_armed(function, Api::Kubernetes),
        )
    };
    let active = Arc::new(Active {
        function: function.to_owned(),
        calls: AtomicU32::new(0),
        crash_after,
        kube_calls: AtomicU32::new(0),
        kube_crash_after,
        crash_tx: Mutex::new(Some(crash_tx)),
    });
    let mut access_key = String::new();
    let attribute = |key: &str| {
        access_key = key.to_owned();
        lock(&gw.invocations).insert(key.to_owned(), active.clone());
    };
    let (outcome, result) = match &gw.binaries {
        Some(binaries) => {
            binaries
                .invoke(gw, function, payload, attribute, crash_rx)
                .await
        }
        None => in_process(gw, function, payload, attribute, crash_rx).await,
    };
    // No crash after the handler returned.
    lock(&active.crash_tx).take();
    lock(&gw.log).invocations.push(InvocationRecord {
        function: function.to_owned(),
        access_key,
        outcome: outcome.to_owned(),
        error_type: result.as_ref().err().map(|(t, _)| t.clone()),
        aws_calls: active.calls.load(Ordering::SeqCst),
        duration_ms: started.elapsed().as_millis() as u64,
    });
    result
}

/// Runs the handler inside the gateway's process, on a fresh access key.
async fn in_process(
    gw: &Arc<Gateway>,
    function: &'static str,
    payload: Value,
    attribute: impl FnOnce(&str),
    mut crash_rx: oneshot::Receiver<CrashOrder>,
) -> (&'static str, Result<Value, (String, String)>) {
    let n = gw.next_invocation.fetch_add(1, Ordering::SeqCst);
    let access_key = format!("TINV{n:08}");
    attribute(&access_key);
    let aws = tenantry::aws::local(&gw.endpoint, &gw.region, &access_key).await;
    let deps = tenantry::deps::Deps::new(aws, gw.table_name.clone())
        .with_role_boundary(tenantry::aws::LOCAL_ROLE_BOUNDARY_ARN)
        .with_external_id(tenantry::aws::LOCAL_EXTERNAL_ID)
        .with_target_accounts(&[tenantry::aws::LOCAL_TARGET_ACCOUNT_ID])
        // The account the template's Globals give every function (TENANTRY_ACCOUNT_ID).
        .with_account_id(tenantry::aws::LOCAL_ACCOUNT_ID);
    let mut task =
        tokio::spawn(async move { tenantry::functions::invoke(function, payload, &deps).await });
    tokio::select! {
        joined = &mut task => match joined {
            Ok(Ok(output)) => ("succeeded", Ok(output)),
            Ok(Err(e)) => ("failed", Err((e.error_type.as_str().to_owned(), e.error_message))),
            Err(e) => ("failed", Err((CRASH_ERROR_TYPE.to_owned(), format!("tenantry gateway: handler panicked: {e}")))),
        },
        Ok((n, ack)) = &mut crash_rx => {
            task.abort();
            let _ = (&mut task).await;
            let _ = ack.send(());
            ("crashed", Err((CRASH_ERROR_TYPE.to_owned(), format!("tenantry gateway: crashed after {n}"))))
        }
    }
}

/// A Lambda service error (restJson1).
pub fn lambda_error(status: StatusCode, code: &str, message: &str) -> Response<Bytes> {
    let mut r = json(
        status,
        &serde_json::json!({"Type": "User", "Message": message}),
    );
    if let Ok(v) = HeaderValue::from_str(code) {
        r.headers_mut().insert("x-amzn-errortype", v);
    }
    r
}

fn empty(status: StatusCode) -> Response<Bytes> {
    let mut r = Response::new(Bytes::new());
    *r.status_mut() = status;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_arns() {
        let p = "tenantry-";
        assert_eq!(handler_name("tenantry-selftest", p), Some("selftest"));
        assert_eq!(handler_name("selftest", p), Some("selftest"));
        assert_eq!(
            handler_name(
                "arn:aws:lambda:us-east-1:123456789012:function:tenantry-selftest",
                p
            ),
            Some("selftest")
        );
        assert_eq!(
            handler_name(
                "arn:aws:lambda:us-east-1:123456789012:function:tenantry-selftest:$LATEST",
                p
            ),
            Some("selftest")
        );
        assert_eq!(handler_name("tenantry-nope", p), None);
    }
}
