//! A read-only AWS configuration: every client built from it refuses, before anything is sent,
//! a call that could change something. `observe` runs on it (`PhaseContext::aws`), so "observe
//! writes nothing" is enforced by the runtime rather than left to each phase.
//!
//! Reads are told apart by the wire protocol, as AWS names them: an operation named like a read
//! (`Describe*`, `Get*`, `List*`, `Head*`, `Lookup*`, `Search*`, and DynamoDB's `Query`, `Scan`
//! and `BatchGetItem`) in the `X-Amz-Target` header
//! (JSON protocols), the `Action` parameter (query protocols: EC2, IAM, SNS, STS) or the last
//! path segment (Smithy RPC v2 CBOR: CloudWatch); for REST protocols (EKS, S3) the method, since
//! their reads are GET and HEAD, with one exception: EKS's `DescribeIdentityProviderConfig` is a
//! POST to `…/identity-provider-configs/describe`.

use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// Operation names that read.
const READ_PREFIXES: &[&str] = &[
    "Describe", "Get", "List", "Head", "Lookup", "Search", "Query", "Scan", "BatchGet",
];

/// Whether an operation, named as AWS names it (`DescribeVpcs`), only reads.
pub fn is_read_operation(name: &str) -> bool {
    READ_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The message of a refused call; [`crate::error::classify_sdk_error`] maps it to a terminal
/// error, never to a retry.
pub const REFUSED: &str = "refused by the read-only guard";

/// `aws` with its HTTP client wrapped so that mutating calls fail before they are sent.
pub fn read_only(aws: &SdkConfig) -> SdkConfig {
    // aws_config::load leaves the client unset (each SDK client then builds the default one),
    // so the guard builds that same default to wrap.
    aws.to_builder()
        .http_client(guard(aws.http_client()))
        .build()
}

/// The HTTP client an SDK client builds when none is configured.
fn default_http_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .build_https()
}

/// The configured HTTP client (or, with none, the default one) wrapped so that mutating calls
/// fail before they are sent.
pub fn guard(configured: Option<SharedHttpClient>) -> SharedHttpClient {
    let inner = configured.unwrap_or_else(default_http_client);
    SharedHttpClient::new(ReadOnlyClient { inner })
}

/// The operation a request calls, when the protocol names it in the request.
pub fn operation(request: &HttpRequest) -> Option<String> {
    if let Some(target) = request.headers().get("x-amz-target") {
        return target.rsplit('.').next().map(str::to_owned);
    }
    let uri = request.uri();
    if let Some(op) = uri.split("/operation/").nth(1) {
        return Some(op.trim_end_matches('/').to_owned());
    }
    let form = request
        .body()
        .bytes()
        .and_then(|b| std::str::from_utf8(b).ok());
    let query = uri.split_once('?').map(|(_, q)| q);
    [form, query]
        .into_iter()
        .flatten()
        .flat_map(|params| params.split('&'))
        .find_map(|pair| pair.strip_prefix("Action="))
        .map(str::to_owned)
}

/// Whether a request only reads.
pub fn is_read(request: &HttpRequest) -> bool {
    match operation(request) {
        Some(op) => is_read_operation(&op),
        None => {
            matches!(request.method(), "GET" | "HEAD")
                || (request.method() == "POST" && path(request).ends_with("/describe"))
        }
    }
}

/// The request's path, without the query.
fn path(request: &HttpRequest) -> &str {
    let uri = request.uri();
    let path = uri.split_once('?').map_or(uri, |(p, _)| p);
    path.trim_end_matches('/')
}

#[derive(Debug)]
struct ReadOnlyClient {
    inner: SharedHttpClient,
}

impl HttpClient for ReadOnlyClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(ReadOnlyConnector {
            inner: self.inner.http_connector(settings, components),
        })
    }
}

#[derive(Debug)]
struct ReadOnlyConnector {
    inner: SharedHttpConnector,
}

impl HttpConnector for ReadOnlyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        if is_read(&request) {
            return self.inner.call(request);
        }
        let what = operation(&request)
            .unwrap_or_else(|| format!("{} {}", request.method(), request.uri()));
        HttpConnectorFuture::ready(Err(ConnectorError::user(
            format!("{what}: {REFUSED} (observe makes no change)").into(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::body::SdkBody;

    fn request(method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> HttpRequest {
        let mut r = HttpRequest::new(SdkBody::from(body.to_owned()));
        r.set_method(method).expect("method");
        r.set_uri(uri).expect("uri");
        for (k, v) in headers {
            r.headers_mut().insert(k.to_string(), v.to_string());
        }
        r
    }

    #[test]
    fn reads_and_writes_are_told_apart_in_every_protocol() {
        let json =
            |target: &str| request("POST", "https://kms/", &[("x-amz-target", target)], "{}");
        assert!(is_read(&json("TrentService.DescribeKey")));
        assert!(is_read(&json("Logs_20140328.DescribeLogGroups")));
        assert!(!is_read(&json("TrentService.DisableKeyRotation")));
        assert!(!is_read(&json("TrentService.ScheduleKeyDeletion")));
        assert!(is_read(&json("DynamoDB_20120810.Query")));
        assert!(is_read(&json("DynamoDB_20120810.GetItem")));
        assert!(is_read(&json("DynamoDB_20120810.BatchGetItem")));
        assert!(!is_read(&json("DynamoDB_20120810.PutItem")));
        assert!(!is_read(&json("DynamoDB_20120810.TransactWriteItems")));
        let query = |body: &str| request("POST", "https://ec2/", &[], body);
        assert!(is_read(&query("Action=DescribeVpcs&Version=2016-11-15")));
        assert!(is_read(&query("Action=GetRole&Version=2010-05-08")));
        assert!(!is_read(&query("Action=CreateVpc&Version=2016-11-15")));
        assert!(!is_read(&query("Version=2010-05-08&Action=PutRolePolicy")));
        let cbor = "https://monitoring/service/GraniteServiceVersion20100801/operation/";
        assert!(is_read(&request(
            "POST",
            &format!("{cbor}DescribeAlarms"),
            &[],
            ""
        )));
        assert!(!is_read(&request(
            "POST",
            &format!("{cbor}PutMetricAlarm"),
            &[],
            ""
        )));
        assert!(is_read(&request(
            "GET",
            "https://eks/clusters/c/addons/vpc-cni",
            &[],
            ""
        )));
        assert!(!is_read(&request(
            "POST",
            "https://eks/clusters/c/addons",
            &[],
            "{}"
        )));
        assert!(!is_read(&request(
            "DELETE",
            "https://eks/clusters/c",
            &[],
            ""
        )));
        assert!(is_read(&request(
            "POST",
            "https://eks/clusters/c/identity-provider-configs/describe",
            &[],
            "{}"
        )));
        assert!(!is_read(&request(
            "POST",
            "https://eks/clusters/c/identity-provider-configs/disassociate",
            &[],
            "{}"
        )));
        assert!(is_read(&request("HEAD", "https://s3/bucket", &[], "")));
        assert!(!is_read(&request(
            "PUT",
            "https://s3/bucket?versioning",
            &[],
            "<x/>"
        )));
    }
}
