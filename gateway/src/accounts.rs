//! More than one account on the local stack, for platforms built in a target account
//! (`targetRoleArn`).
//!
//! moto keeps its state per account and answers each request in the account its
//! `x-moto-account-id` header names. The gateway records the account of every session
//! `sts:AssumeRole` hands out (the role's), sends each request signed with such a session to moto
//! in that account, and serves its own doubles (EKS extras, the cluster security group,
//! CloudWatch alarms) per account too. A session's calls count for the invocation that assumed
//! it, so call counts and crash points see them.
//!
//! moto assumes any role, existing or not, for anyone. Before it answers, the gateway judges the
//! parts of the role's trust policy Tenantry relies on, as STS would: the role exists in its
//! account; an `Allow` statement for `sts:AssumeRole` names the caller's account as principal
//! (its root or one of its roles: the local stack does not tell function roles apart); and every
//! `sts:ExternalId` that statement requires (`StringEquals`) is the one the request presents.
//! Otherwise the answer is STS's `AccessDenied`. The local stack's accounts are members of one
//! organization whose management account is moto's default: each has an
//! `OrganizationAccountAccessRole` trusting it, as AWS Organizations creates in member accounts
//! (without it, nothing could be set up in a new account).

use std::collections::HashMap;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use serde_json::Value;

use crate::cluster_sg::element;
use crate::proxy::{forward, forward_request, lock, AwsRequest, Gateway};

/// moto's header naming the account a request is answered in.
pub const ACCOUNT_HEADER: &str = "x-moto-account-id";

/// The role AWS Organizations creates in every member account, trusting the management account.
pub const ORGANIZATION_ROLE: &str = "OrganizationAccountAccessRole";

/// Sessions handed out by `AssumeRole`: access key → account.
#[derive(Default)]
pub struct Sessions(HashMap<String, String>);

impl Gateway {
    /// The account of a request signed with `access_key`: an assumed role's, else moto's default.
    pub fn account_of(&self, access_key: Option<&str>) -> String {
        access_key
            .and_then(|k| lock(&self.sessions).0.get(k).cloned())
            .unwrap_or_else(|| tenantry::aws::LOCAL_ACCOUNT_ID.to_owned())
    }
}

/// `headers` with the account moto must answer in.
pub fn in_account(mut headers: HeaderMap, account: &str) -> HeaderMap {
    if let Ok(v) = HeaderValue::from_str(account) {
        headers.insert(ACCOUNT_HEADER, v);
    }
    headers
}

/// `sts:AssumeRole`: judged against the role's trust policy, then answered by moto; the new
/// session is recorded with its account and attributed like its caller.
pub async fn assume_role(gw: &Gateway, req: &AwsRequest) -> Response<Bytes> {
    let form = |name: &str| {
        form_urlencoded::parse(&req.body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let role = form("RoleArn").unwrap_or_default();
    let caller = gw.account_of(req.class.access_key.as_deref());
    if let Err(why) = check_trust(gw, &role, &caller, form("ExternalId").as_deref()).await {
        return access_denied(&caller, &role, &why);
    }
    let resp = forward_request(gw, req).await;
    if resp.status() == StatusCode::OK {
        let body = String::from_utf8_lossy(resp.body());
        if let (Some(key), Some(account)) = (
            element(&body, "AccessKeyId"),
            tenantry::aws::target::account_of(&role),
        ) {
            lock(&gw.sessions)
                .0
                .insert(key.to_owned(), account.to_owned());
            let mut invocations = lock(&gw.invocations);
            let caller_invocation = req
                .class
                .access_key
                .as_ref()
                .and_then(|k| invocations.get(k).cloned());
            if let Some(active) = caller_invocation {
                invocations.insert(key.to_owned(), active);
            }
        }
    }
    resp
}

/// Why `caller`'s account may not assume `role` presenting `external_id`, if it may not.
async fn check_trust(
    gw: &Gateway,
    role: &str,
    caller: &str,
    external_id: Option<&str>,
) -> Result<(), String> {
    let account = tenantry::aws::target::account_of(role).ok_or("the role ARN names no account")?;
    let name = role.rsplit('/').next().unwrap_or_default();
    let trust = match trust_policy(gw, account, name).await {
        Some(trust) => trust,
        None if name == ORGANIZATION_ROLE => serde_json::json!({ "Statement": {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Principal": { "AWS": tenantry::aws::LOCAL_ACCOUNT_ID },
        }}),
        None => return Err(format!("role {name} does not exist in account {account}")),
    };
    let statements = match &trust["Statement"] {
        Value::Array(all) => all.clone(),
        one => vec![one.clone()],
    };
    let allowed = statements
        .iter()
        .any(|s| allows(s, caller) && external_id_matches(s, external_id));
    allowed
        .then_some(())
        .ok_or_else(|| "no statement of its trust policy allows this caller and external id".into())
}

/// Whether `statement` allows `sts:AssumeRole` to a principal of `caller`'s account.
fn allows(statement: &Value, caller: &str) -> bool {
    let strings = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    let action_ok = strings(&statement["Action"])
        .iter()
        .any(|a| a == "sts:AssumeRole" || a == "sts:*" || a == "*");
    let principal_ok = strings(&statement["Principal"]["AWS"])
        .iter()
        .any(|p| p == caller || tenantry::aws::target::account_of(p).is_some_and(|a| a == caller));
    statement["Effect"] == "Allow" && action_ok && principal_ok
}

/// Whether `statement`'s `StringEquals` `sts:ExternalId`, if any, is `presented`.
fn external_id_matches(statement: &Value, presented: Option<&str>) -> bool {
    match &statement["Condition"]["StringEquals"]["sts:ExternalId"] {
        Value::Null => true,
        Value::String(s) => presented == Some(s.as_str()),
        Value::Array(a) => a
            .iter()
            .any(|s| s.as_str() == presented && presented.is_some()),
        _ => false,
    }
}

/// The trust policy of role `name` in `account`, from moto's IAM.
async fn trust_policy(gw: &Gateway, account: &str, name: &str) -> Option<Value> {
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_static(
            "AWS4-HMAC-SHA256 Credential=tenantrygateway/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        ),
    );
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "GetRole")
        .append_pair("RoleName", name)
        .append_pair("Version", "2010-05-08")
        .finish();
    let headers = in_account(headers, account);
    let resp = forward(gw, &Method::POST, "/", &headers, Bytes::from(body)).await;
    if resp.status() != StatusCode::OK {
        return None;
    }
    let body = String::from_utf8_lossy(resp.body());
    let document = element(&body, "AssumeRolePolicyDocument")?;
    let decoded = percent_encoding::percent_decode_str(document).decode_utf8_lossy();
    serde_json::from_str(&decoded)
        .or_else(|_| serde_json::from_str(&xml_unescape(&decoded)))
        .ok()
}

fn xml_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// STS's answer to a caller the trust policy does not allow.
fn access_denied(caller: &str, role: &str, why: &str) -> Response<Bytes> {
    let message = format!(
        "User: arn:aws:iam::{caller}:root is not authorized to perform: sts:AssumeRole on \
         resource: {role} ({why})"
    );
    let body = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>\
         <Code>AccessDenied</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        message.replace('&', "&amp;").replace('<', "&lt;"),
        uuid::Uuid::new_v4()
    );
    let mut r = Response::new(Bytes::from(body));
    *r.status_mut() = StatusCode::FORBIDDEN;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("text/xml"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn statement(external_id: Value) -> Value {
        json!({
            "Effect": "Allow",
            "Principal": { "AWS": ["arn:aws:iam::123456789012:role/tenantry-network"] },
            "Action": "sts:AssumeRole",
            "Condition": { "StringEquals": { "sts:ExternalId": external_id } }
        })
    }

    #[test]
    fn the_trust_names_the_callers_account_and_the_external_id() {
        let s = statement(json!("tenantry-local"));
        assert!(allows(&s, "123456789012"));
        assert!(!allows(&s, "999999999999"));
        assert!(external_id_matches(&s, Some("tenantry-local")));
        assert!(!external_id_matches(&s, Some("guess")));
        assert!(!external_id_matches(&s, None));
        let mut deny = s.clone();
        deny["Effect"] = json!("Deny");
        assert!(!allows(&deny, "123456789012"));
        let open = json!({ "Effect": "Allow", "Principal": { "AWS": "123456789012" }, "Action": ["sts:AssumeRole"] });
        assert!(allows(&open, "123456789012") && external_id_matches(&open, None));
    }
}
