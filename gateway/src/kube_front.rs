//! The front of the Kubernetes API doubles: attributes each request to the handler invocation
//! that made it and applies the Kubernetes crash rule ([`crate::Faults::crash_after_kube_calls`]),
//! as the gateway does for AWS calls.
//!
//! A handler authenticates to a cluster with an EKS token: `k8s-aws-v1.` and the unpadded
//! base64url of a presigned STS `GetCallerIdentity` URL, whose `X-Amz-Credential` names the
//! invocation's access key.

use crate::calls::KubeCallRecord;
use crate::faults::Api;
use crate::proxy::{lock, Gateway};
use axum::body::Body;
use axum::extract::State;
use base64::Engine;
use http::{Request, Response, StatusCode};
use std::sync::Arc;

/// axum fallback handler of the Kubernetes port.
pub async fn handle(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response<Body> {
    let key = access_key(req.headers());
    let active = key
        .as_ref()
        .and_then(|k| lock(&gw.invocations).get(k).cloned());
    let Some(active) = active else {
        return crate::kube::handle(State(gw.kube.clone()), req).await;
    };
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let crash_at = active.count_call(&gw, Api::Kubernetes);
    let resp = crate::kube::handle(State(gw.kube.clone()), req).await;
    lock(&gw.log).kube_calls.push(KubeCallRecord {
        function: active.function.clone(),
        access_key: key.unwrap_or_default(),
        mutating: !matches!(method, http::Method::GET | http::Method::HEAD),
        method: method.to_string(),
        path,
        status: resp.status().as_u16(),
    });
    if let Some(n) = crash_at {
        // The object was written; the handler must never see the answer.
        active.crash(n, Api::Kubernetes).await;
        let mut r = Response::new(Body::from(
            "tenantry gateway: the calling handler was crashed",
        ));
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        return r;
    }
    resp
}

/// The access key of the presigned URL inside a request's EKS bearer token.
fn access_key(headers: &http::HeaderMap) -> Option<String> {
    let auth = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let token = auth.strip_prefix("Bearer ")?.strip_prefix("k8s-aws-v1.")?;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let url = String::from_utf8(url).ok()?;
    let query = url.split_once('?')?.1;
    let (key, _, _) = crate::calls::credential_scope(&http::HeaderMap::new(), Some(query))?;
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_access_key_comes_from_the_presigned_url_in_the_token() {
        let url = "https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Credential=TINV00000007%2F20261204%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Signature=abc";
        let token = format!(
            "k8s-aws-v1.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
        );
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        assert_eq!(access_key(&headers).as_deref(), Some("TINV00000007"));
        assert_eq!(access_key(&http::HeaderMap::new()), None);
    }
}
