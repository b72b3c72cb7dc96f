//! Where the commands that talk to AWS connect: an explicit `--endpoint`, else the local stack
//! started by `tenantry dev up` when one is recorded (in --state-dir, or found upward from the
//! current directory as git finds its repository), else real AWS through the standard credential
//! chain. Every connection reports, on standard error, a throttled call the SDK is
//! about to retry.

use crate::errors;
use crate::stackfile;
use aws_config::{Region, SdkConfig};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// Directory of the running local stack's record (default: the nearest .tenantry with a
    /// stack, from here up to the repository's root; see `tenantry dev up`).
    #[arg(long, env = "TENANTRY_STATE_DIR", global = true)]
    pub state_dir: Option<PathBuf>,
    /// AWS endpoint to use instead of the local stack or AWS (e.g. http://127.0.0.1:4566).
    #[arg(long, env = "TENANTRY_AWS_ENDPOINT", global = true)]
    pub endpoint: Option<String>,
    /// The DynamoDB state table.
    #[arg(long, env = "TENANTRY_TABLE", default_value = tenantry::deps::DEFAULT_TABLE, global = true)]
    pub table: String,
    /// The AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or the AWS_PROFILE's `region`).
    /// Ignored for a local stack, which has its own.
    #[arg(long, global = true)]
    pub region: Option<String>,
}

/// A resolved connection.
pub struct Connected {
    pub aws: aws_config::SdkConfig,
    pub table: String,
    /// Where we connected, for messages.
    pub target: String,
}

impl Connection {
    pub async fn connect(&self) -> anyhow::Result<Connected> {
        if let Some(endpoint) = &self.endpoint {
            let region = self
                .region
                .clone()
                .or_else(|| std::env::var("AWS_REGION").ok())
                .unwrap_or_else(|| tenantry::aws::DEFAULT_REGION.to_owned());
            return Ok(Connected {
                aws: with_notices(tenantry::aws::local(endpoint, &region, "testing").await),
                table: self.table.clone(),
                target: endpoint.clone(),
            });
        }
        let state_dir = stackfile::locate(self.state_dir.as_deref());
        if let Some(stack) = stackfile::read(&state_dir)? {
            return Ok(Connected {
                aws: with_notices(
                    tenantry::aws::local(&stack.aws_endpoint, &stack.region, "testing").await,
                ),
                table: stack.table_name,
                target: format!(
                    "local stack {} of {}",
                    stack.aws_endpoint,
                    state_dir.display()
                ),
            });
        }
        let mut aws = tenantry::aws::load_from_env().await;
        if let Some(region) = &self.region {
            aws = aws.to_builder().region(Region::new(region.clone())).build();
        }
        Ok(Connected {
            aws: with_notices(aws),
            table: self.table.clone(),
            target: "AWS".to_owned(),
        })
    }
}

impl Connected {
    pub fn store(&self) -> tenantry::store::Store {
        tenantry::store::Store::from_config(&self.aws, &self.table)
    }

    /// What the operator commands (`lease`, `remediation`) hand the library: the CLI's AWS
    /// configuration and table, as a handler's would be.
    pub fn deps(self) -> tenantry::deps::Deps {
        tenantry::deps::Deps::new(self.aws, self.table)
    }
}

/// `aws` with its HTTP client wrapped so that a throttled answer the SDK will retry is reported
/// on standard error as it happens ([`errors::retrying_notice`]); the SDK's retry is unchanged.
pub fn with_notices(aws: SdkConfig) -> SdkConfig {
    with_notices_to(aws, Arc::new(|notice: &str| eprintln!("{notice}")))
}

/// Where the notices go.
type Notify = Arc<dyn Fn(&str) + Send + Sync>;

fn with_notices_to(aws: SdkConfig, notify: Notify) -> SdkConfig {
    // aws_config::load leaves the client unset (each SDK client then builds the default one),
    // so build that same default to wrap.
    let inner = aws.http_client().unwrap_or_else(|| {
        use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
        aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
            .build_https()
    });
    aws.to_builder()
        .http_client(SharedHttpClient::new(NoticeClient { inner, notify }))
        .build()
}

struct NoticeClient {
    inner: SharedHttpClient,
    notify: Notify,
}

impl std::fmt::Debug for NoticeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoticeClient")
            .field("inner", &self.inner)
            .finish()
    }
}

impl HttpClient for NoticeClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(NoticeConnector {
            inner: self.inner.http_connector(settings, components),
            notify: self.notify.clone(),
        })
    }
}

struct NoticeConnector {
    inner: SharedHttpConnector,
    notify: Notify,
}

impl std::fmt::Debug for NoticeConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoticeConnector")
            .field("inner", &self.inner)
            .finish()
    }
}

impl HttpConnector for NoticeConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let operation = tenantry::aws::read_only::operation(&request)
            .unwrap_or_else(|| "an AWS call".to_owned());
        // `amz-sdk-request: attempt=1; max=6`: whether the SDK will try again.
        let will_retry = request
            .headers()
            .get("amz-sdk-request")
            .and_then(attempts)
            .is_some_and(|(attempt, max)| attempt < max);
        let response = self.inner.call(request);
        let notify = self.notify.clone();
        HttpConnectorFuture::new(async move {
            let mut response = response.await?;
            if will_retry && may_be_throttled(response.status().as_u16()) {
                // Error answers are small: read the body to find the code, then put it back.
                let body = ByteStream::new(response.take_body()).collect().await;
                let bytes = match body {
                    Ok(b) => b.into_bytes(),
                    Err(e) => {
                        return Err(aws_smithy_runtime_api::client::result::ConnectorError::io(
                            e.into(),
                        ))
                    }
                };
                let header = response.headers().get("x-amzn-errortype");
                if let Some(code) = throttling_code(response.status().as_u16(), header, &bytes) {
                    notify(&errors::retrying_notice(&operation, code));
                }
                *response.body_mut() = SdkBody::from(bytes);
            }
            Ok(response)
        })
    }
}

/// `attempt=N; max=M` → (N, M).
fn attempts(header: &str) -> Option<(u32, u32)> {
    let mut attempt = None;
    let mut max = None;
    for part in header.split(';') {
        match part.trim().split_once('=') {
            Some(("attempt", n)) => attempt = n.parse().ok(),
            Some(("max", n)) => max = n.parse().ok(),
            _ => {}
        }
    }
    Some((attempt?, max?))
}

fn may_be_throttled(status: u16) -> bool {
    matches!(status, 400 | 429 | 503)
}

/// The throttling error code of an AWS answer, one the SDK retries
/// (`THROTTLING_ERRORS`): from the `x-amzn-ErrorType` header or the body (`"__type":
/// "…#ThrottlingException"` in JSON protocols, `<Code>Throttling</Code>` in XML ones).
fn throttling_code(status: u16, header: Option<&str>, body: &[u8]) -> Option<&'static str> {
    let codes = aws_runtime::retries::classifiers::THROTTLING_ERRORS;
    if let Some(h) = header {
        // `ThrottlingException:http://internal.amazon.com/…`
        let name = h.split(':').next().unwrap_or(h).trim();
        if let Some(code) = codes.iter().find(|c| **c == name) {
            return Some(code);
        }
    }
    let text = String::from_utf8_lossy(body);
    let found = codes.iter().find(|c| {
        text.contains(&format!("#{c}\"")) // "__type": "com.amazonaws.dynamodb.v20120810#X"
            || text.contains(&format!("\"{c}\"")) // "__type": "X", "code": "X"
            || text.contains(&format!("<Code>{c}</Code>"))
    });
    match found {
        Some(code) => Some(code),
        None if status == 429 => Some("TooManyRequestsException"),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// An HTTP client that answers from a script, in order.
    #[derive(Debug, Clone)]
    struct Script(Arc<Mutex<VecDeque<(u16, &'static str)>>>);

    impl HttpConnector for Script {
        fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
            let (status, body) = self.0.lock().unwrap().pop_front().expect("scripted");
            let response = HttpResponse::new(status.try_into().unwrap(), SdkBody::from(body));
            HttpConnectorFuture::ready(Ok(response))
        }
    }

    impl HttpClient for Script {
        fn http_connector(
            &self,
            _: &HttpConnectorSettings,
            _: &RuntimeComponents,
        ) -> SharedHttpConnector {
            SharedHttpConnector::new(self.clone())
        }
    }

    const THROTTLED: (u16, &str) = (
        400,
        r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
    );
    const PUT: (u16, &str) = (
        200,
        r#"{"Entries":[{"EventId":"e-1"}],"FailedEntryCount":0}"#,
    );

    /// Puts an event through the SDK, on an HTTP client answering `script`, with 3 attempts:
    /// the notices printed and the outcome.
    async fn put_event(script: Vec<(u16, &'static str)>) -> (Vec<String>, anyhow::Result<()>) {
        put_event_in(Some("eu-west-1"), script).await
    }

    async fn put_event_in(
        region: Option<&str>,
        script: Vec<(u16, &'static str)>,
    ) -> (Vec<String>, anyhow::Result<()>) {
        use crate::errors::ActionExt;
        use aws_config::retry::RetryConfig;
        let notices = Arc::new(Mutex::new(Vec::new()));
        let sink = notices.clone();
        let aws = tenantry::aws::local("http://127.0.0.1:9", "eu-west-1", "testing")
            .await
            .to_builder()
            .http_client(SharedHttpClient::new(Script(Arc::new(Mutex::new(
                script.into(),
            )))))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(std::time::Duration::from_millis(1)),
            )
            .region(region.map(|r| Region::new(r.to_owned())))
            .build();
        let aws = with_notices_to(
            aws,
            Arc::new(move |n: &str| sink.lock().unwrap().push(n.to_owned())),
        );
        let result = aws_sdk_eventbridge::Client::new(&aws)
            .put_events()
            .entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .source("tenantry.cli")
                    .detail_type("Test")
                    .detail("{}")
                    .build(),
            )
            .send()
            .await
            .action("events:PutEvents")
            .map(|_| ())
            .map_err(anyhow::Error::from);
        let notices = notices.lock().unwrap().clone();
        (notices, result)
    }

    #[tokio::test]
    async fn a_throttled_call_says_it_is_retrying_then_succeeds() {
        let (notices, result) = put_event(vec![THROTTLED, PUT]).await;
        result.unwrap();
        assert_eq!(
            notices,
            ["AWS is throttling PutEvents (ThrottlingException); retrying with backoff…"]
        );
    }

    #[tokio::test]
    async fn a_call_throttled_to_the_end_says_so_and_exits_6() {
        let (notices, result) = put_event(vec![THROTTLED, THROTTLED, THROTTLED]).await;
        // Attempts 1 and 2 are retried; the last one is not, so it is not announced.
        assert_eq!(notices.len(), 2, "{notices:?}");
        let explained = errors::explain(&result.unwrap_err());
        assert_eq!(explained.exit, errors::Exit::Throttled);
        assert_eq!(explained.exit.code(), 6);
        assert!(
            explained.message.starts_with(
                "AWS throttled events:PutEvents (ThrottlingException); the command retried"
            ),
            "{}",
            explained.message
        );
        assert!(explained
            .message
            .contains("AWS said (ThrottlingException): Rate exceeded"));
    }

    #[tokio::test]
    async fn no_region_through_the_sdk_says_what_sets_it() {
        use crate::errors::ActionExt;
        use aws_credential_types::{provider::SharedCredentialsProvider, Credentials};
        // On AWS: the endpoint rules need the region.
        let aws = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKID", "secret", None, None, "test",
            )))
            .http_client(SharedHttpClient::new(Script(Default::default())))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        let err = aws_sdk_eventbridge::Client::new(&with_notices(aws))
            .put_events()
            .send()
            .await
            .action("events:PutEvents")
            .map_err(anyhow::Error::from)
            .unwrap_err();
        assert!(errors::missing_region(&err), "{err:#}");
        // On an endpoint: signing needs it.
        let (_, result) = put_event_in(None, vec![]).await;
        for err in [err, result.unwrap_err()] {
            let explained = errors::explain(&err);
            assert_eq!(explained.exit.code(), 3);
            assert!(
                explained.message.starts_with(errors::NO_REGION),
                "{}",
                explained.message
            );
        }
    }

    #[tokio::test]
    async fn access_denied_through_the_sdk_names_action_and_role() {
        let denied = (
            400,
            r#"{"__type":"AccessDeniedException","message":"User: arn:aws:sts::111122223333:assumed-role/ci/build is not authorized to perform: events:PutEvents on resource: arn:aws:events:eu-west-1:111122223333:event-bus/default because no identity-based policy allows the events:PutEvents action"}"#,
        );
        let (notices, result) = put_event(vec![denied]).await;
        assert!(notices.is_empty());
        let explained = errors::explain(&result.unwrap_err());
        assert_eq!(explained.exit.code(), 4);
        assert!(
            explained.message.starts_with(
                "AWS denied events:PutEvents to arn:aws:sts::111122223333:assumed-role/ci/build on arn:aws:events:eu-west-1:111122223333:event-bus/default."
            ),
            "{}",
            explained.message
        );
    }

    #[test]
    fn attempts_are_read_from_the_sdk_header() {
        assert_eq!(attempts("attempt=1; max=6"), Some((1, 6)));
        assert_eq!(
            attempts("ttl=20250101T000000Z; attempt=6; max=6"),
            Some((6, 6))
        );
        assert_eq!(attempts("nonsense"), None);
    }

    #[test]
    fn throttling_codes_are_found_in_every_protocol() {
        let json = br#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}"#;
        assert_eq!(
            throttling_code(400, None, json),
            Some("ThrottlingException")
        );
        let pte = br#"{"__type":"ProvisionedThroughputExceededException","message":"x"}"#;
        assert_eq!(
            throttling_code(400, None, pte),
            Some("ProvisionedThroughputExceededException")
        );
        let xml = b"<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>";
        assert_eq!(throttling_code(400, None, xml), Some("Throttling"));
        assert_eq!(
            throttling_code(
                400,
                Some("ThrottlingException:http://internal.amazon.com/"),
                b""
            ),
            Some("ThrottlingException")
        );
        assert_eq!(
            throttling_code(429, None, b""),
            Some("TooManyRequestsException")
        );
        let denied = br#"{"__type":"AccessDeniedException","message":"no"}"#;
        assert_eq!(throttling_code(400, None, denied), None);
    }
}
