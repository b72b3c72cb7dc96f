//! Fault injection: throttling, 5xx, latency, and crashing a handler after its N-th AWS call.

use crate::calls::Protocol;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Faults applied to AWS calls through the gateway (not to Lambda invokes, control or moto-api
/// calls). Default: none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Faults {
    /// Percentage (0-100) of calls answered with the service's throttling error.
    pub throttle_percent: u8,
    /// Percentage (0-100) of calls answered with 503 ServiceUnavailable.
    pub server_error_percent: u8,
    /// Added before every call.
    pub latency_ms: u64,
    /// Crash a handler invocation after its N-th AWS call.
    pub crash_after_calls: Option<CrashRule>,
    /// Crash a handler invocation after its N-th Kubernetes API call (to a cluster double).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash_after_kube_calls: Option<CrashRule>,
    /// More crash rules, each on the calls of one API, for a workflow crashed in several
    /// functions in one run (the first rule that matches an invocation applies).
    #[serde(skip)]
    pub more_crashes: Vec<(Api, CrashRule)>,
    /// Seed for the dice, so a test sees the same faults every run.
    pub seed: Option<u64>,
}

/// Crash an invocation right after its `after_calls`-th AWS call was forwarded (its side effect
/// happened; the handler never sees the response).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrashRule {
    /// Only invocations of this function (handler name, e.g. `selftest`); None = any.
    #[serde(default)]
    pub function: Option<String>,
    pub after_calls: u32,
    /// How many invocations to crash.
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

impl CrashRule {
    pub fn new(function: impl Into<String>, after_calls: u32) -> Self {
        CrashRule {
            function: Some(function.into()),
            after_calls,
            times: 1,
        }
    }

    pub fn matches(&self, function: &str) -> bool {
        self.times > 0 && self.function.as_deref().is_none_or(|f| f == function)
    }
}

/// The API whose calls a crash rule counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    Aws,
    Kubernetes,
}

impl Api {
    pub fn name(self) -> &'static str {
        match self {
            Api::Aws => "AWS",
            Api::Kubernetes => "Kubernetes",
        }
    }
}

/// What the dice decided for one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injected {
    Throttle,
    ServerError,
}

impl Injected {
    pub fn name(self) -> &'static str {
        match self {
            Injected::Throttle => "throttle",
            Injected::ServerError => "server-error",
        }
    }
}

/// Faults plus their random state.
pub struct FaultState {
    pub faults: Faults,
    rng: StdRng,
}

impl Default for FaultState {
    fn default() -> Self {
        FaultState::new(Faults::default())
    }
}

impl FaultState {
    pub fn new(faults: Faults) -> Self {
        let rng = match faults.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        FaultState { faults, rng }
    }

    /// Rolls the dice for one call.
    pub fn roll(&mut self) -> Option<Injected> {
        let throttle = self.faults.throttle_percent.min(100);
        let server = self.faults.server_error_percent.min(100);
        if throttle > 0 && self.rng.random_range(0..100u8) < throttle {
            return Some(Injected::Throttle);
        }
        if server > 0 && self.rng.random_range(0..100u8) < server {
            return Some(Injected::ServerError);
        }
        None
    }

    /// The crash rules on `api` calls, in the order they apply.
    fn rules(&mut self, api: Api) -> impl Iterator<Item = &mut CrashRule> {
        let Faults {
            crash_after_calls,
            crash_after_kube_calls,
            more_crashes,
            ..
        } = &mut self.faults;
        let first = match api {
            Api::Aws => crash_after_calls,
            Api::Kubernetes => crash_after_kube_calls,
        };
        first.as_mut().into_iter().chain(
            more_crashes
                .iter_mut()
                .filter_map(move |(a, rule)| (*a == api).then_some(rule)),
        )
    }

    /// Whether a crash rule on `api` calls applies to a new invocation of `function` (checked
    /// at its start): the call number to crash after.
    pub fn crash_armed(&mut self, function: &str, api: Api) -> Option<u32> {
        self.rules(api)
            .find(|r| r.matches(function))
            .map(|r| r.after_calls)
    }

    /// Consumes one crash of `function` on `api` calls if any is left.
    pub fn take_crash(&mut self, function: &str, api: Api) -> bool {
        match self.rules(api).find(|r| r.matches(function)) {
            Some(rule) => {
                rule.times -= 1;
                true
            }
            None => false,
        }
    }
}

/// The injected error in the protocol the caller speaks.
pub fn error_response(
    injected: Injected,
    protocol: Protocol,
    service: &str,
    request_id: &str,
) -> Response<Bytes> {
    let (status, code, message) = match (injected, protocol, service) {
        (Injected::Throttle, Protocol::RestXml, _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "SlowDown",
            "Please reduce your request rate.",
        ),
        (Injected::Throttle, Protocol::Ec2, _) => (
            StatusCode::BAD_REQUEST,
            "RequestLimitExceeded",
            "Request limit exceeded.",
        ),
        (Injected::Throttle, Protocol::Query, _) => {
            (StatusCode::BAD_REQUEST, "Throttling", "Rate exceeded")
        }
        // awsQuery-compatible: the SDK takes the code from `x-amzn-query-error`.
        (Injected::Throttle, Protocol::Cbor, crate::cloudwatch::SERVICE) => {
            (StatusCode::BAD_REQUEST, "Throttling", "Rate exceeded")
        }
        (Injected::Throttle, _, _) => (
            StatusCode::BAD_REQUEST,
            "ThrottlingException",
            "Rate exceeded",
        ),
        (Injected::ServerError, _, _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "Service is unavailable (injected by the tenantry gateway)",
        ),
    };
    if protocol == Protocol::Cbor {
        let query_error = (service == crate::cloudwatch::SERVICE).then(|| {
            let fault = match injected {
                Injected::Throttle => "Sender",
                Injected::ServerError => "Receiver",
            };
            format!("{code};{fault}")
        });
        return crate::cloudwatch::cbor_error(
            status,
            code,
            query_error.as_deref(),
            &[("message", message.to_owned())],
            request_id,
        );
    }
    let (content_type, body) = match protocol {
        Protocol::AwsJson | Protocol::RestJson | Protocol::Cbor => (
            "application/x-amz-json-1.1",
            serde_json::json!({"__type": code, "message": message}).to_string(),
        ),
        Protocol::Query => (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            ),
        ),
        Protocol::Ec2 => (
            "text/xml;charset=UTF-8",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
            ),
        ),
        Protocol::RestXml => (
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
            ),
        ),
    };
    let mut resp = Response::new(Bytes::from(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(code) {
        h.insert("x-amzn-errortype", v);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v.clone());
        h.insert("x-amz-request-id", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_dice_repeat() {
        let f = Faults {
            throttle_percent: 50,
            seed: Some(7),
            ..Faults::default()
        };
        let a: Vec<_> = {
            let mut s = FaultState::new(f.clone());
            (0..50).map(|_| s.roll()).collect()
        };
        let b: Vec<_> = {
            let mut s = FaultState::new(f);
            (0..50).map(|_| s.roll()).collect()
        };
        assert_eq!(a, b);
        assert!(a.iter().any(|x| x.is_some()) && a.iter().any(|x| x.is_none()));
    }

    #[test]
    fn crash_rule_counts_down() {
        let mut s = FaultState::new(Faults {
            crash_after_calls: Some(CrashRule {
                function: Some("f".into()),
                after_calls: 2,
                times: 1,
            }),
            ..Faults::default()
        });
        assert_eq!(s.crash_armed("g", Api::Aws), None);
        assert_eq!(s.crash_armed("f", Api::Aws), Some(2));
        assert_eq!(s.crash_armed("f", Api::Kubernetes), None);
        assert!(!s.take_crash("f", Api::Kubernetes));
        assert!(s.take_crash("f", Api::Aws));
        assert!(!s.take_crash("f", Api::Aws));
        assert_eq!(s.crash_armed("f", Api::Aws), None);
    }

    #[test]
    fn more_crashes_arm_each_function_on_its_own_api() {
        let mut s = FaultState::new(Faults {
            more_crashes: vec![
                (Api::Aws, CrashRule::new("f", 3)),
                (Api::Kubernetes, CrashRule::new("g", 5)),
                (Api::Aws, CrashRule::new("g", 7)),
            ],
            ..Faults::default()
        });
        assert_eq!(s.crash_armed("f", Api::Aws), Some(3));
        assert_eq!(s.crash_armed("f", Api::Kubernetes), None);
        assert_eq!(s.crash_armed("g", Api::Kubernetes), Some(5));
        assert_eq!(s.crash_armed("g", Api::Aws), Some(7));
        assert!(s.take_crash("g", Api::Kubernetes));
        assert_eq!(s.crash_armed("g", Api::Kubernetes), None);
        assert_eq!(
            s.crash_armed("g", Api::Aws),
            Some(7),
            "the other API's rule stays"
        );
    }

    #[test]
    fn cbor_faults_are_rpc_v2_errors() {
        let r = error_response(Injected::Throttle, Protocol::Cbor, "cloudwatch", "rid");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.headers()["content-type"], "application/cbor");
        assert_eq!(r.headers()["smithy-protocol"], "rpc-v2-cbor");
        assert_eq!(r.headers()["x-amzn-query-error"], "Throttling;Sender");
        let body: ciborium::Value = ciborium::from_reader(&r.body()[..]).unwrap();
        let ciborium::Value::Map(m) = body else {
            panic!("a CBOR map expected")
        };
        assert!(m.contains(&("__type".into(), "Throttling".into())));
        let r = error_response(Injected::ServerError, Protocol::Cbor, "other", "rid");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.headers().get("x-amzn-query-error").is_none());
    }

    #[test]
    fn faults_json_is_camel_case() {
        let f: Faults = serde_json::from_value(serde_json::json!({
            "throttlePercent": 10, "crashAfterCalls": {"function": "x", "afterCalls": 3}
        }))
        .unwrap();
        assert_eq!(f.throttle_percent, 10);
        assert_eq!(f.crash_after_calls.unwrap().times, 1);
    }
}
