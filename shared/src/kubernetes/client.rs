//! A `kube::Client` for a platform's cluster.
//!
//! - `https://` (Amazon EKS): TLS that trusts exactly the cluster's certificate authority (from
//!   `DescribeCluster`'s `certificateAuthority.data`, base64 of PEM) and no other root, and an
//!   EKS bearer token ([`super::eks_token`]) made from the AWS configuration's credentials.
//! - `http://` (the local stack's Kubernetes API double, whose URL the gateway puts into
//!   DescribeCluster answers): no TLS, and no token either (a bearer credential is never sent in
//!   clear text).

use std::time::Duration;

use base64::Engine;

use crate::error::{ErrorType, FunctionError};

/// Connect timeout of the API server connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Read/write timeout of one API call (a phase handler makes a few dozen at most).
const IO_TIMEOUT: Duration = Duration::from_secs(30);

fn terminal(cluster_name: &str, message: impl std::fmt::Display) -> FunctionError {
    FunctionError::new(
        ErrorType::Terminal,
        format!("connecting to cluster {cluster_name}: {message}"),
    )
}

/// A client for the API server of the cluster `cluster_name` at `endpoint`.
///
/// `ca_data_base64` is `certificateAuthority.data` as DescribeCluster returns it; it is
/// required for `https` endpoints and ignored for `http` ones.
pub async fn connect(
    aws: &aws_config::SdkConfig,
    cluster_name: &str,
    endpoint: &str,
    ca_data_base64: Option<&str>,
) -> Result<kube::Client, FunctionError> {
    let config = config(aws, cluster_name, endpoint, ca_data_base64).await?;
    kube::Client::try_from(config).map_err(|e| terminal(cluster_name, e))
}

/// Like [`connect`], but every request other than a read (`GET`, `HEAD`) fails before it is
/// sent: the client of `observe`, which must not change the cluster whatever its code does (the
/// Kubernetes side of [`crate::aws::read_only`]).
pub async fn connect_read_only(
    aws: &aws_config::SdkConfig,
    cluster_name: &str,
    endpoint: &str,
    ca_data_base64: Option<&str>,
) -> Result<kube::Client, FunctionError> {
    let config = config(aws, cluster_name, endpoint, ca_data_base64).await?;
    let builder =
        kube::client::ClientBuilder::try_from(config).map_err(|e| terminal(cluster_name, e))?;
    Ok(builder
        .with_layer(&tower::filter::FilterLayer::new(only_reads))
        .build())
}

/// The error a refused write is: named with its method and path.
#[derive(Debug, thiserror::Error)]
#[error("read-only Kubernetes client: {method} {path} refused (observe makes no change)")]
pub struct WriteRefused {
    pub method: http::Method,
    pub path: String,
}

fn only_reads<B>(req: http::Request<B>) -> Result<http::Request<B>, WriteRefused> {
    match *req.method() {
        http::Method::GET | http::Method::HEAD => Ok(req),
        _ => Err(WriteRefused {
            method: req.method().clone(),
            path: req.uri().path().to_owned(),
        }),
    }
}

async fn config(
    aws: &aws_config::SdkConfig,
    cluster_name: &str,
    endpoint: &str,
    ca_data_base64: Option<&str>,
) -> Result<kube::Config, FunctionError> {
    let mut config = kube::Config::new(
        endpoint
            .parse()
            .map_err(|e| terminal(cluster_name, format!("bad endpoint {endpoint:?}: {e}")))?,
    );
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(IO_TIMEOUT);
    config.write_timeout = Some(IO_TIMEOUT);
    match config.cluster_url.scheme_str() {
        Some("https") => {
            let ca = ca_data_base64
                .filter(|c| !c.trim().is_empty())
                .ok_or_else(|| {
                    terminal(
                        cluster_name,
                        "the https endpoint has no certificate authority data",
                    )
                })?;
            config.root_cert = Some(ca_certificates(ca).map_err(|e| terminal(cluster_name, e))?);
            config.accept_invalid_certs = false;
            let token = super::eks_token(aws, cluster_name).await?;
            config.auth_info.token = Some(token.into());
        }
        // Plain HTTP only reaches the local stack's cluster doubles on loopback. The token goes
        // there too when there are credentials to sign it (as EKS receives it), so that the local
        // stack attributes each call to the invocation that made it; a non-loopback http
        // endpoint never gets a token.
        Some("http") if is_loopback(&config.cluster_url) => {
            if let Ok(token) = super::eks_token(aws, cluster_name).await {
                config.auth_info.token = Some(token.into());
            }
        }
        Some("http") => {}
        other => {
            return Err(terminal(
                cluster_name,
                format!("unsupported endpoint scheme {other:?} in {endpoint:?}"),
            ))
        }
    }
    Ok(config)
}

fn is_loopback(url: &http::Uri) -> bool {
    match url.host() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// The DER certificates in `certificateAuthority.data` (base64 of one or more PEM certificates).
pub fn ca_certificates(ca_data_base64: &str) -> Result<Vec<Vec<u8>>, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let compact: String = ca_data_base64
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let pem = b64
        .decode(compact)
        .map_err(|e| format!("certificate authority data is not base64: {e}"))?;
    let pem = String::from_utf8(pem)
        .map_err(|_| "certificate authority data is not PEM text".to_owned())?;
    let mut certs = Vec::new();
    let mut body: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        match (line, body.as_mut()) {
            ("-----BEGIN CERTIFICATE-----", None) => body = Some(String::new()),
            ("-----END CERTIFICATE-----", Some(text)) => {
                let der = b64
                    .decode(text.as_bytes())
                    .map_err(|e| format!("certificate {} is not base64: {e}", certs.len() + 1))?;
                certs.push(der);
                body = None;
            }
            (line, Some(text)) => text.push_str(line),
            _ => {}
        }
    }
    if body.is_some() {
        return Err("certificate authority data has an unterminated certificate".to_owned());
    }
    if certs.is_empty() {
        return Err("certificate authority data holds no PEM certificate".to_owned());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn only_loopback_http_endpoints_are_the_local_stack() {
        for url in [
            "http://127.0.0.1:8080/clusters/x",
            "http://localhost:1",
            "http://[::1]:2",
        ] {
            assert!(is_loopback(&url.parse().unwrap()), "{url}");
        }
        for url in [
            "http://10.0.0.1:80",
            "http://example.com",
            "http://127.example.com",
        ] {
            assert!(!is_loopback(&url.parse().unwrap()), "{url}");
        }
    }

    #[test]
    fn ca_data_decodes_to_der_certificates() {
        let der1 = base64::engine::general_purpose::STANDARD.encode([0x30, 0x82, 0x01]);
        let der2 = base64::engine::general_purpose::STANDARD.encode([0x30, 0x03]);
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{der1}\n-----END CERTIFICATE-----\n\
             -----BEGIN CERTIFICATE-----\r\n{der2}\r\n-----END CERTIFICATE-----\n"
        );
        let certs = ca_certificates(&b64(&pem)).expect("certs");
        assert_eq!(certs, vec![vec![0x30, 0x82, 0x01], vec![0x30, 0x03]]);
        assert!(ca_certificates("not base64!").is_err());
        assert!(ca_certificates(&b64("no certificate here")).is_err());
        assert!(ca_certificates(&b64("-----BEGIN CERTIFICATE-----\nAAAA\n")).is_err());
    }

    fn aws() -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build()
    }

    #[tokio::test]
    async fn http_endpoints_need_no_ca_and_no_credentials() {
        connect(&aws(), "demo", "http://127.0.0.1:1/clusters/demo", None)
            .await
            .expect("plain http client");
    }

    /// Nothing listens on port 1: a request that passes the filter fails to connect, one that
    /// does not is refused by name before any connection is tried.
    #[tokio::test]
    async fn the_read_only_client_refuses_writes_before_sending_them() {
        use k8s_openapi::api::core::v1::ConfigMap;
        let client = connect_read_only(&aws(), "demo", "http://127.0.0.1:1", None)
            .await
            .expect("client");
        let api: kube::Api<ConfigMap> = kube::Api::namespaced(client, "default");
        let read = api.get("x").await.expect_err("nothing listens");
        assert!(
            !read.to_string().contains("read-only"),
            "a read goes out: {read}"
        );
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "x" }
        }))
        .unwrap();
        for write in [
            api.create(&Default::default(), &cm).await.map(|_| ()),
            api.delete("x", &Default::default()).await.map(|_| ()),
            api.patch(
                "x",
                &kube::api::PatchParams::apply("tenantry"),
                &kube::api::Patch::Apply(&cm),
            )
            .await
            .map(|_| ()),
        ] {
            let e = write.expect_err("refused");
            match &e {
                kube::Error::Service(inner) => {
                    let refused = inner.downcast_ref::<WriteRefused>().expect("WriteRefused");
                    let want = match refused.method {
                        http::Method::POST => "/api/v1/namespaces/default/configmaps",
                        _ => "/api/v1/namespaces/default/configmaps/x",
                    };
                    assert_eq!(refused.path, want, "{e}");
                }
                other => panic!("not refused by the filter: {other}"),
            }
        }
    }

    // Test-only PKI (made with openssl for these tests, valid until 2126): a cluster CA and an
    // unrelated CA, as DescribeCluster returns `certificateAuthority.data` (base64 of PEM), and
    // an API server certificate for 127.0.0.1/localhost signed by the cluster CA with its
    // PKCS#8 key (DER, base64).
    const CLUSTER_CA: &str = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJtekNDQVVHZ0F3SUJBZ0lVV2s3Q3REQXVqcDduMlp6cE4xU3RXTHVWSGd3d0NnWUlLb1pJemowRUF3SXcKR2pFWU1CWUdBMVVFQXd3UGRHVnpkQzFqYkhWemRHVnlMV05oTUNBWERUSTJNVEV5TWpBMk5EZ3lNRm9ZRHpJeApNall4TURJNU1EWTBPREl3V2pBYU1SZ3dGZ1lEVlFRRERBOTBaWE4wTFdOc2RYTjBaWEl0WTJFd1dUQVRCZ2NxCmhrak9QUUlCQmdncWhrak9QUU1CQndOQ0FBU3Frbkl5R1VxZ2ZtRzBEVjQyRGNCUXJRYnBJYjZVUG8yc3UvZG8KNndXcUpScE9HT09TTnZQR1VyZ2pZY3hYckl2bUNwRU9GVDlOQWE3OTN6SHAxWFpMbzJNd1lUQWRCZ05WSFE0RQpGZ1FVME1pUWIxQW1ITlhBYjd5UHo0UmRyRkpEdGdVd0h3WURWUjBqQkJnd0ZvQVUwTWlRYjFBbUhOWEFiN3lQCno0UmRyRkpEdGdVd0R3WURWUjBUQVFIL0JBVXdBd0VCL3pBT0JnTlZIUThCQWY4RUJBTUNBUVl3Q2dZSUtvWkkKemowRUF3SURTQUF3UlFJaEFJNGpKSUd2WE93Z0RZeXUzWHpyUmRaZVBnK0ZkaDhsc0FhdmU1eE03dktBQWlBdQpURWRlNEhlVWN0SzZUb1JMVlhHRHpiTTJIMnYvT3JITWMySTNNK0pVL2c9PQotLS0tLUVORCBDRVJUSUZJQ0FURS0tLS0tCg==";
    const OTHER_CA: &str = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJqakNDQVRPZ0F3SUJBZ0lVZklFcjFJTi96OXBzMjVXeWdhYWs2cnZGcitrd0NnWUlLb1pJemowRUF3SXcKRXpFUk1BOEdBMVVFQXd3SWIzUm9aWEl0WTJFd0lCY05Nall4TVRJeU1EWTBPREl3V2hnUE1qRXlOakV3TWprdwpOalE0TWpCYU1CTXhFVEFQQmdOVkJBTU1DRzkwYUdWeUxXTmhNRmt3RXdZSEtvWkl6ajBDQVFZSUtvWkl6ajBECkFRY0RRZ0FFc3hEZFZnNHdhSVkveEpIU3VzdGJ6OHlIMlFybnBsYmNaQjQvYXpKQWpPL0JuT3VYSTBWMThCUnQKTCtqN0tjczZMT3l5M3V4Ui9yWTVxRVVscXAwdWU2TmpNR0V3SFFZRFZSME9CQllFRkF0K2JIaWVsS1RPUkRLbQo2WFE0QVNTWnV4ejVNQjhHQTFVZEl3UVlNQmFBRkF0K2JIaWVsS1RPUkRLbTZYUTRBU1NadXh6NU1BOEdBMVVkCkV3RUIvd1FGTUFNQkFmOHdEZ1lEVlIwUEFRSC9CQVFEQWdFR01Bb0dDQ3FHU000OUJBTUNBMGtBTUVZQ0lRQ0YKTzlHelFBZ2RBVFpPaHgrMjhtVUtVM045dVA4L2lSN0xyNXg5YmZuLzl3SWhBSWo2cmxBSEQzaElobHhwZElmVQpCbEx6UWJmRTUzSDYvb1Z2dGFBNUZxbHMKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=";
    const SERVER_CERT: &str = "MIIByjCCAXCgAwIBAgIUNP8NG/un+ISRgBA4wLa+F5bPrHcwCgYIKoZIzj0EAwIwGjEYMBYGA1UEAwwPdGVzdC1jbHVzdGVyLWNhMCAXDTI2MTEyMjA2NDgyMFoYDzIxMjYxMDI5MDY0ODIwWjAZMRcwFQYDVQQDDA5rdWJlLWFwaXNlcnZlcjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABGc5JUeTvM+hG5ebHI8KumEHtkzfCtvnlXDmw7nsNlHYDE8uUVDUHXWsy5H3oBkdr2Anpx4NzNxUtgw43sVpKqOjgZIwgY8wDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwEwGgYDVR0RBBMwEYIJbG9jYWxob3N0hwR/AAABMB0GA1UdDgQWBBSlJKhH7ZkT22pU+S5jxKfAeou9ezAfBgNVHSMEGDAWgBTQyJBvUCYc1cBvvI/PhF2sUkO2BTAKBggqhkjOPQQDAgNIADBFAiAEB7wpjoC8O5gmaP35G22JFgfmhm2peeo7LGrS69X+PAIhAIhLmNI7FyoIIAyyt9IgfYKU8TdzbzNi5mbXdHP5FCIy";
    const SERVER_KEY: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg35I3DYWa67OKkdaLjuZ3TEuHIrJc/zDFOWTVHoxMOaChRANCAARnOSVHk7zPoRuXmxyPCrphB7ZM3wrb55Vw5sO57DZR2AxPLlFQ1B11rMuR96AZHa9gJ6ceDczcVLYMON7FaSqj";

    fn static_aws() -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .region(aws_types::region::Region::new("us-east-1"))
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new("AKID", "SECRET", None, None, "static"),
                ),
            )
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build()
    }

    /// Answers one `GET /version` on `stream`; returns the request head.
    async fn answer_version<S>(mut stream: S) -> Option<String>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let body = serde_json::json!({
            "major": "1", "minor": "35", "gitVersion": "v1.35.0-eks-test",
            "gitCommit": "0", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.25", "compiler": "gc", "platform": "linux/amd64"
        })
        .to_string();
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).await.ok()?;
        stream.shutdown().await.ok()?;
        Some(String::from_utf8_lossy(&head).into_owned())
    }

    /// The value of header `name` in a request head.
    fn header(head: &str, name: &str) -> Option<String> {
        head.lines().find_map(|l| {
            let (n, value) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }

    /// A one-connection API server on 127.0.0.1 (TLS with the test certificate, or plain
    /// HTTP) answering `/version`. Returns its URL and the request head it received (`None`
    /// when the TLS handshake failed).
    async fn api_server(tls: bool) -> (String, tokio::task::JoinHandle<Option<String>>) {
        use std::sync::Arc;
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

        let b64 = base64::engine::general_purpose::STANDARD;
        let cert = CertificateDer::from(b64.decode(SERVER_CERT).expect("cert"));
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            b64.decode(SERVER_KEY).expect("key"),
        ));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "{}://127.0.0.1:{}",
            if tls { "https" } else { "http" },
            listener.local_addr().expect("addr").port()
        );
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.ok()?;
            if tls {
                answer_version(acceptor.accept(tcp).await.ok()?).await
            } else {
                answer_version(tcp).await
            }
        });
        (url, task)
    }

    /// The local stack's doubles attribute calls by the token: loopback endpoints get it
    /// (other http endpoints never do: `only_loopback_http_endpoints_are_the_local_stack`).
    #[tokio::test]
    async fn loopback_http_endpoints_get_the_eks_token() {
        let (url, server) = api_server(false).await;
        let client = connect(&static_aws(), "demo", &url, None)
            .await
            .expect("client");
        let version = tokio::time::timeout(Duration::from_secs(20), client.apiserver_version())
            .await
            .expect("in time")
            .expect("version over HTTP");
        assert_eq!(version.minor, "35");
        let head = server.await.expect("server task").expect("request");
        let auth = header(&head, "authorization").unwrap_or_default();
        assert!(auth.starts_with("Bearer k8s-aws-v1."), "{head}");
    }

    #[tokio::test]
    async fn https_trusts_the_cluster_ca_and_sends_an_eks_token() {
        let (url, server) = api_server(true).await;
        let client = connect(&static_aws(), "payments-prod", &url, Some(CLUSTER_CA))
            .await
            .expect("client");
        let version = tokio::time::timeout(Duration::from_secs(20), client.apiserver_version())
            .await
            .expect("in time")
            .expect("version over TLS");
        assert_eq!(version.git_version, "v1.35.0-eks-test");
        let head = server.await.expect("server task").expect("handshake");
        let auth = header(&head, "authorization").expect("authorization header");
        let token = auth
            .strip_prefix("Bearer k8s-aws-v1.")
            .expect("EKS bearer token");
        let url = String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token)
                .expect("base64url"),
        )
        .expect("utf-8");
        assert!(url.starts_with("https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity"));
    }

    #[tokio::test]
    async fn https_refuses_a_server_the_cluster_ca_did_not_sign() {
        let (url, server) = api_server(true).await;
        let client = connect(&static_aws(), "payments-prod", &url, Some(OTHER_CA))
            .await
            .expect("client");
        let answer = tokio::time::timeout(Duration::from_secs(20), client.apiserver_version())
            .await
            .expect("in time");
        assert!(
            answer.is_err(),
            "a certificate from another CA must be refused"
        );
        assert!(
            server.await.expect("server task").is_none(),
            "no request may be sent"
        );
    }

    #[tokio::test]
    async fn https_endpoints_require_the_cluster_ca() {
        let Err(e) = connect(&aws(), "demo", "https://example.eks.amazonaws.com", None).await
        else {
            panic!("connected without a CA");
        };
        assert_eq!(e.error_type, ErrorType::Terminal);
        assert!(e.error_message.contains("certificate authority"), "{e}");
        let Err(e) = connect(&aws(), "demo", "ftp://example", None).await else {
            panic!("connected to ftp://");
        };
        assert_eq!(e.error_type, ErrorType::Terminal);
    }
}
