//! Answers of moto's S3 that the AWS SDKs cannot read, put right before they leave the gateway.
//!
//! - `GetBucketVersioning`: moto names the root element `GetBucketVersioningResponse` where S3
//!   names it `VersioningConfiguration` (the Rust SDK refuses any other root element); the
//!   content (`<Status>`, `<MfaDelete>`) is the same.

use axum::http::{header, Response};
use bytes::Bytes;

/// The S3 answer as the real service would give it.
pub fn fix(operation: &str, mut resp: Response<Bytes>) -> Response<Bytes> {
    if operation == "GetBucketVersioning"
        && resp.status().is_success()
        && contains(resp.body(), b"<GetBucketVersioningResponse")
    {
        let body = String::from_utf8_lossy(resp.body())
            .replace("GetBucketVersioningResponse", "VersioningConfiguration");
        resp.headers_mut().remove(header::CONTENT_LENGTH);
        *resp.body_mut() = Bytes::from(body);
    }
    resp
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(body: &str) -> Response<Bytes> {
        Response::new(Bytes::from(body.to_owned()))
    }

    #[test]
    fn an_unversioned_bucket_answers_an_empty_versioning_configuration() {
        let moto = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<GetBucketVersioningResponse xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>";
        let fixed = fix("GetBucketVersioning", response(moto));
        let body = String::from_utf8(fixed.body().to_vec()).unwrap();
        assert!(body.contains("<VersioningConfiguration xmlns="), "{body}");
        assert!(!body.contains("GetBucketVersioningResponse"), "{body}");
    }

    #[test]
    fn a_versioned_bucket_keeps_its_status() {
        let moto = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<GetBucketVersioningResponse xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>Enabled</Status></GetBucketVersioningResponse>";
        let fixed = fix("GetBucketVersioning", response(moto));
        let body = String::from_utf8(fixed.body().to_vec()).unwrap();
        assert!(
            body.ends_with("<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>Enabled</Status></VersioningConfiguration>"),
            "{body}"
        );
    }

    #[test]
    fn other_answers_pass_unchanged() {
        let enabled = "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
        let fixed = fix("GetBucketVersioning", response(enabled));
        assert_eq!(fixed.body().as_ref(), enabled.as_bytes());
        let other = "<GetBucketVersioningResponse/>";
        assert_eq!(
            fix("GetBucketTagging", response(other)).body().as_ref(),
            other.as_bytes()
        );
    }
}
