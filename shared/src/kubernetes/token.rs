//! EKS bearer tokens, as `aws eks get-token` and aws-iam-authenticator make them.
//!
//! A token is `k8s-aws-v1.` followed by the unpadded base64url encoding of an STS
//! `GetCallerIdentity` URL presigned with SigV4 query signing. The presigned request carries the
//! signed header `x-k8s-aws-id: <cluster>`, so a token made for one cluster is refused by every
//! other. The API server's authenticator calls the URL and maps the caller's ARN to a Kubernetes
//! identity through the cluster's access entries. The URL says `X-Amz-Expires=60`; EKS accepts a
//! token for 15 minutes after signing, longer than a Lambda invocation lasts, so one token per
//! connection is enough.
//!
//! The token is a credential: it is never logged, and the error messages below never include it.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::error::{ErrorType, FunctionError};

/// Prefix of every EKS token.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The header that binds a token to one cluster.
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";
/// Validity the presigned URL states (`X-Amz-Expires`), as aws-iam-authenticator uses.
pub const PRESIGN_EXPIRES: Duration = Duration::from_secs(60);

/// SigV4 query encoding: everything except the RFC 3986 unreserved characters.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A bearer token for the EKS cluster `cluster_name`, signed with the credentials of `aws` for
/// the regional STS endpoint of its region.
pub async fn eks_token(
    aws: &aws_config::SdkConfig,
    cluster_name: &str,
) -> Result<String, FunctionError> {
    let region = aws.region().ok_or_else(|| {
        FunctionError::new(
            ErrorType::Terminal,
            "EKS token: the AWS configuration has no region",
        )
    })?;
    let provider = aws.credentials_provider().ok_or_else(|| {
        FunctionError::new(
            ErrorType::Terminal,
            "EKS token: the AWS configuration has no credentials provider",
        )
    })?;
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(credentials_error)?;
    presigned_token(
        cluster_name,
        region.as_ref(),
        &credentials,
        SystemTime::now(),
    )
}

fn credentials_error(e: CredentialsError) -> FunctionError {
    let error_type = match e {
        CredentialsError::ProviderTimedOut(_) | CredentialsError::ProviderError(_) => {
            ErrorType::Retryable
        }
        _ => ErrorType::Terminal,
    };
    FunctionError::new(
        error_type,
        format!("EKS token: loading AWS credentials failed: {e}"),
    )
}

/// The regional STS endpoint (`sts.<region>.amazonaws.com`, `.com.cn` in the China partition).
pub fn sts_endpoint(region: &str) -> String {
    let suffix = if crate::spec::partition_of(region) == "aws-cn" {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://sts.{region}.{suffix}/")
}

/// The token for `cluster_name`, signed at `time` (separate from [`eks_token`] for tests).
pub(crate) fn presigned_token(
    cluster_name: &str,
    region: &str,
    credentials: &Credentials,
    time: SystemTime,
) -> Result<String, FunctionError> {
    let signing_failed = |e: &dyn std::fmt::Display| {
        FunctionError::new(
            ErrorType::Terminal,
            format!("EKS token for cluster {cluster_name}: presigning failed: {e}"),
        )
    };
    let base = format!(
        "{}?Action=GetCallerIdentity&Version=2011-06-15",
        sts_endpoint(region)
    );
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(PRESIGN_EXPIRES);
    let identity: Identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| signing_failed(&e))?
        .into();
    let request = SignableRequest::new(
        "GET",
        base.as_str(),
        std::iter::once((CLUSTER_ID_HEADER, cluster_name)),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| signing_failed(&e))?;
    let (instructions, _signature) = sign(request, &params)
        .map_err(|e| signing_failed(&e))?
        .into_parts();
    let mut url = base;
    for (name, value) in instructions.params() {
        url.push('&');
        url.push_str(&utf8_percent_encode(name, QUERY).to_string());
        url.push('=');
        url.push_str(&utf8_percent_encode(value, QUERY).to_string());
    }
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::SharedCredentialsProvider;
    use aws_types::region::Region;

    fn decode(token: &str) -> String {
        let body = token.strip_prefix(TOKEN_PREFIX).expect("token prefix");
        assert!(!body.contains('='), "no padding: {body}");
        assert!(!body.contains('+') && !body.contains('/'), "base64url");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .expect("base64url");
        String::from_utf8(bytes).expect("utf-8 URL")
    }

    fn query(url: &str) -> Vec<(String, String)> {
        let (_, q) = url.split_once('?').expect("query");
        q.split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').expect("k=v");
                let v = percent_encoding::percent_decode_str(v)
                    .decode_utf8()
                    .expect("utf-8")
                    .into_owned();
                (k.to_owned(), v)
            })
            .collect()
    }

    fn param<'a>(q: &'a [(String, String)], name: &str) -> &'a str {
        q.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{name} missing from {q:?}"))
    }

    #[tokio::test]
    async fn token_is_a_presigned_get_caller_identity_url() {
        let aws = aws_config::SdkConfig::builder()
            .region(Region::new("ap-southeast-2"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKIDEXAMPLE",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                Some("session-token/with+chars=".to_owned()),
                None,
                "static",
            )))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let token = eks_token(&aws, "payments-prod").await.expect("token");
        assert!(token.starts_with("k8s-aws-v1."), "{token}");
        let url = decode(&token);
        assert!(
            url.starts_with("https://sts.ap-southeast-2.amazonaws.com/?"),
            "{url}"
        );
        let q = query(&url);
        assert_eq!(param(&q, "Action"), "GetCallerIdentity");
        assert_eq!(param(&q, "Version"), "2011-06-15");
        assert_eq!(param(&q, "X-Amz-Expires"), "60");
        assert_eq!(param(&q, "X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
        let signed: Vec<&str> = param(&q, "X-Amz-SignedHeaders").split(';').collect();
        assert!(signed.contains(&"host"), "{signed:?}");
        assert!(signed.contains(&"x-k8s-aws-id"), "{signed:?}");
        let credential = param(&q, "X-Amz-Credential");
        assert!(credential.starts_with("AKIDEXAMPLE/"), "{credential}");
        assert!(
            credential.ends_with("/ap-southeast-2/sts/aws4_request"),
            "{credential}"
        );
        assert_eq!(
            param(&q, "X-Amz-Security-Token"),
            "session-token/with+chars="
        );
        let signature = param(&q, "X-Amz-Signature");
        assert_eq!(signature.len(), 64);
        assert!(signature.bytes().all(|b| b.is_ascii_hexdigit()));
        // The secret never appears in the token.
        assert!(!url.contains("wJalrXUtnFEMI"));
    }

    #[test]
    fn token_is_bound_to_the_cluster_and_deterministic_for_a_time() {
        let creds = Credentials::new("AKID", "SECRET", None, None, "static");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let a = presigned_token("a-prod", "us-east-1", &creds, t).expect("a");
        let a2 = presigned_token("a-prod", "us-east-1", &creds, t).expect("a again");
        let b = presigned_token("b-prod", "us-east-1", &creds, t).expect("b");
        assert_eq!(a, a2);
        let sig = |tok: &str| {
            let q = query(&decode(tok));
            param(&q, "X-Amz-Signature").to_owned()
        };
        assert_ne!(sig(&a), sig(&b), "the cluster name is signed");
        let q = query(&decode(&a));
        assert_eq!(param(&q, "X-Amz-Date"), "20270115T080000Z");
        assert!(q.iter().all(|(k, _)| k != "X-Amz-Security-Token"));
    }

    #[test]
    fn china_regions_use_the_china_sts_domain() {
        assert_eq!(
            sts_endpoint("cn-north-1"),
            "https://sts.cn-north-1.amazonaws.com.cn/"
        );
        assert_eq!(
            sts_endpoint("us-gov-west-1"),
            "https://sts.us-gov-west-1.amazonaws.com/"
        );
    }

    #[tokio::test]
    async fn missing_region_or_credentials_is_terminal() {
        let aws = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let e = eks_token(&aws, "x").await.expect_err("no region");
        assert_eq!(e.error_type, ErrorType::Terminal);
        let aws = aws_config::SdkConfig::builder()
            .region(Region::new("us-east-1"))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let e = eks_token(&aws, "x").await.expect_err("no credentials");
        assert_eq!(e.error_type, ErrorType::Terminal);
    }
}
