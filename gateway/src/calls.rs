//! Counting AWS calls: which service and operation each request is, whether it mutates, and
//! which handler invocation made it.

use http::{HeaderMap, Method};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One AWS call that reached the gateway (forwarded to moto, served by the EKS extras, or
/// answered by an injected fault).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    /// Signing name from the SigV4 credential scope, e.g. `dynamodb`, `eks`, `ec2`.
    pub service: String,
    /// API operation, e.g. `PutItem`, `CreateCluster`.
    pub operation: String,
    pub mutating: bool,
    /// The Tenantry function whose invocation made the call (None for tests, the CLI, or moto's
    /// own Step Functions service integrations).
    pub invocation: Option<String>,
    /// The access key of that invocation (in process: one per invocation; on the real binaries:
    /// one per function process), to tell concurrent invocations' calls apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    /// HTTP status the caller received.
    pub status: u16,
    /// `throttle` or `server-error` when the gateway answered with an injected fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

/// One Lambda invocation the gateway ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationRecord {
    pub function: String,
    /// The access key its AWS calls were signed with (`TINV...`).
    pub access_key: String,
    /// `succeeded`, `failed` (function error) or `crashed` (injected crash).
    pub outcome: String,
    /// errorType for `failed` and `crashed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// AWS calls the invocation made through the gateway.
    pub aws_calls: u32,
    pub duration_ms: u64,
}

/// One Kubernetes API call a handler invocation made to a cluster double.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeCallRecord {
    pub function: String,
    pub access_key: String,
    pub method: String,
    pub path: String,
    /// Anything but GET and HEAD (lists and watches are GETs).
    pub mutating: bool,
    pub status: u16,
}

/// Snapshot of counted calls and invocations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallLog {
    pub calls: Vec<CallRecord>,
    #[serde(default)]
    pub invocations: Vec<InvocationRecord>,
    /// Kubernetes API calls of handler invocations (not counted in `calls`).
    #[serde(default)]
    pub kube_calls: Vec<KubeCallRecord>,
}

impl CallLog {
    pub fn mutating_count(&self) -> usize {
        self.calls.iter().filter(|c| c.mutating).count()
    }

    pub fn read_count(&self) -> usize {
        self.calls.iter().filter(|c| !c.mutating).count()
    }

    /// Per service: (mutating, read).
    pub fn by_service(&self) -> BTreeMap<String, (usize, usize)> {
        let mut out: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for c in &self.calls {
            let e = out.entry(c.service.clone()).or_default();
            if c.mutating {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
        out
    }

    /// Per (service, operation): number of calls.
    pub fn by_operation(&self) -> BTreeMap<(String, String), usize> {
        let mut out = BTreeMap::new();
        for c in &self.calls {
            *out.entry((c.service.clone(), c.operation.clone()))
                .or_default() += 1;
        }
        out
    }

    /// Calls of one operation, e.g. `count("dynamodb", "PutItem")`.
    pub fn count(&self, service: &str, operation: &str) -> usize {
        self.calls
            .iter()
            .filter(|c| c.service == service && c.operation == operation)
            .count()
    }

    /// Calls made by invocations of one function.
    pub fn for_function<'a>(&'a self, function: &'a str) -> impl Iterator<Item = &'a CallRecord> {
        self.calls
            .iter()
            .filter(move |c| c.invocation.as_deref() == Some(function))
    }

    /// Invocations of one function.
    pub fn invocations_of(&self, function: &str) -> usize {
        self.invocations
            .iter()
            .filter(|i| i.function == function)
            .count()
    }
}

/// One line of the call log (`TENANTRY_CALL_LOG_DIR`): a call with the function that made it and,
/// where the request names it cheaply, the resource (see [`named_resource`]). Read by
/// `scripts/check_calls.py`, which checks every call against the function's role in
/// `infra/template.yaml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallLine {
    /// The Tenantry function (handler name) whose invocation made the call, if any.
    pub function: Option<String>,
    pub service: String,
    pub operation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A full ARN, or the part of the ARN after `arn:<partition>:<service>:<region>:<account>:`
    /// (`role/<name>` or `role/<path>/<name>` for IAM, `cluster/<name>`, `log-group:<name>`,
    /// `key/<id>`, `alias/<name>`, `table/<name>`...); for S3 `bucket` or `bucket/key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// The account the call acted in when it is not Tenantry's own: a session of a platform's
    /// target role (`accounts.rs`), authorized by that role rather than the function's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// The resource a request names, where that is cheap to tell from the request alone: IAM role
/// names (with `Path` when given), EKS cluster and sub-resources from the path, log groups, KMS
/// keys and aliases, DynamoDB tables, Secrets Manager secrets, SNS topics, S3 buckets and keys,
/// state machines. None when the operation names none (lists, creates on `*`) or it is not
/// worth parsing (EC2, CloudWatch's CBOR).
pub fn named_resource(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    class: &Classified,
) -> Option<String> {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let form = |name: &str| -> Option<String> {
        query
            .and_then(|q| query_param(q, name))
            .or_else(|| {
                content_type
                    .starts_with("application/x-www-form-urlencoded")
                    .then(|| {
                        form_urlencoded::parse(body)
                            .find(|(k, _)| k == name)
                            .map(|(_, v)| v.into_owned())
                    })
                    .flatten()
            })
            .filter(|v| !v.is_empty())
    };
    let json = || -> Option<serde_json::Value> {
        if class.protocol == Protocol::AwsJson || class.protocol == Protocol::RestJson {
            serde_json::from_slice(body).ok()
        } else {
            None
        }
    };
    let json_str = |v: &serde_json::Value, key: &str| -> Option<String> {
        v.get(key)
            .and_then(|x| x.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    match class.service.as_str() {
        "iam" => {
            if let Some(role) = form("RoleName") {
                return Some(match form("Path") {
                    Some(p) => format!("role{p}{role}"),
                    None => format!("role/{role}"),
                });
            }
            if let Some(arn) = form("OpenIDConnectProviderArn").or_else(|| form("PolicyArn")) {
                return Some(arn);
            }
            form("Url").map(|u| {
                format!(
                    "oidc-provider/{}",
                    u.trim_start_matches("https://").trim_end_matches('/')
                )
            })
        }
        "eks" => {
            let (_, caps) = eks_route(method, path)?;
            let cluster = caps.first()?;
            let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
            if seg.first() == Some(&"tags") {
                return Some(cluster.clone()); // the resource ARN itself
            }
            if seg.first() != Some(&"clusters") {
                return None;
            }
            let sub = seg.get(2).copied();
            Some(match (sub, caps.get(1)) {
                (Some("node-groups"), Some(ng)) => format!("nodegroup/{cluster}/{ng}/*"),
                (Some("fargate-profiles"), Some(p)) => format!("fargateprofile/{cluster}/{p}/*"),
                (Some("addons"), Some(addon)) => format!("addon/{cluster}/{addon}/*"),
                (Some("access-entries"), Some(_)) => format!("access-entry/{cluster}/*"),
                (Some("pod-identity-associations"), Some(id)) => {
                    format!("podidentityassociation/{cluster}/{id}")
                }
                (Some("identity-provider-configs"), _)
                    if seg
                        .get(3)
                        .is_some_and(|s| *s == "describe" || *s == "disassociate") =>
                {
                    format!("identityproviderconfig/{cluster}/*")
                }
                _ => format!("cluster/{cluster}"),
            })
        }
        "logs" => {
            let v = json()?;
            if let Some(arn) = json_str(&v, "resourceArn") {
                return Some(arn);
            }
            json_str(&v, "logGroupName").map(|g| format!("log-group:{g}"))
        }
        "kms" => {
            let v = json()?;
            if let Some(alias) = json_str(&v, "AliasName") {
                return Some(alias);
            }
            let key = json_str(&v, "KeyId")?;
            if key.starts_with("arn:") {
                Some(key)
            } else if key.starts_with("alias/") {
                None // authorized on the key it names, which the request does not tell
            } else {
                Some(format!("key/{key}"))
            }
        }
        "dynamodb" => json().and_then(|v| json_str(&v, "TableName").map(|t| format!("table/{t}"))),
        "ecr" => {
            let v = json()?;
            if let Some(arn) = json_str(&v, "resourceArn") {
                return Some(arn);
            }
            let name = json_str(&v, "repositoryName")
                .or_else(|| v["repositoryNames"][0].as_str().map(str::to_owned))?;
            Some(format!("repository/{name}"))
        }
        "secretsmanager" => {
            let v = json()?;
            let id = json_str(&v, "SecretId").or_else(|| json_str(&v, "Name"))?;
            Some(if id.starts_with("arn:") {
                id
            } else {
                format!("secret:{id}")
            })
        }
        "sns" => form("TopicArn")
            .or_else(|| form("ResourceArn"))
            .or_else(|| form("Name")),
        "states" => json()
            .and_then(|v| json_str(&v, "stateMachineArn").or_else(|| json_str(&v, "executionArn"))),
        "s3" => {
            let p = path.trim_matches('/');
            (!p.is_empty()).then(|| decode(p))
        }
        _ => None,
    }
}

/// What a request is, as far as counting and fault shapes go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classified {
    pub service: String,
    pub operation: String,
    pub mutating: bool,
    pub access_key: Option<String>,
    pub region: Option<String>,
    pub protocol: Protocol,
}

/// Wire protocol family, for shaping injected errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// awsJson1_0 / awsJson1_1 (`X-Amz-Target`).
    AwsJson,
    /// restJson1 (EKS, Lambda, Security Hub...).
    RestJson,
    /// awsQuery (IAM, STS, SNS...).
    Query,
    /// ec2Query.
    Ec2,
    /// restXml (S3).
    RestXml,
    /// Smithy RPC v2 CBOR (CloudWatch).
    Cbor,
}

/// Operations that only read: Describe*, Get*, List*, Head*, Query, Scan, BatchGet*, Search*.
pub fn is_read_only(operation: &str) -> bool {
    const PREFIXES: &[&str] = &["Describe", "Get", "List", "Head", "BatchGet", "Search"];
    operation == "Query" || operation == "Scan" || PREFIXES.iter().any(|p| operation.starts_with(p))
}

/// Parses `Credential=AKID/date/region/service/aws4_request` from an Authorization header or the
/// `X-Amz-Credential` query parameter: (access key, region, service).
pub fn credential_scope(
    headers: &HeaderMap,
    query: Option<&str>,
) -> Option<(String, String, String)> {
    let from_header = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| {
            let start = auth.find("Credential=")? + "Credential=".len();
            let rest = &auth[start..];
            let end = rest.find([',', ' ']).unwrap_or(rest.len());
            Some(rest[..end].to_owned())
        });
    let scope = from_header.or_else(|| {
        query_param(query.unwrap_or_default(), "X-Amz-Credential").map(|s| s.to_owned())
    })?;
    let parts: Vec<&str> = scope.split('/').collect();
    if parts.len() < 5 {
        return None;
    }
    Some((
        parts[0].to_owned(),
        parts[2].to_owned(),
        parts[3].to_owned(),
    ))
}

/// First value of a parameter in an `application/x-www-form-urlencoded` string, decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Classifies one AWS request.
pub fn classify(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Classified {
    let scope = credential_scope(headers, query);
    let (access_key, region, service) = match scope {
        Some((a, r, s)) => (Some(a), Some(r), s),
        None => (None, None, "unknown".to_owned()),
    };
    // CloudWatch signs as `monitoring`; count it as `cloudwatch` (also when unsigned).
    let service = if service == crate::cloudwatch::SIGNING_NAME
        || rpc_v2_service(path) == Some(crate::cloudwatch::RPC_SERVICE)
    {
        crate::cloudwatch::SERVICE.to_owned()
    } else {
        service
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let content_type = header("content-type").unwrap_or_default().to_owned();

    let (operation, protocol) = if let Some(target) = header("x-amz-target") {
        let op = target.rsplit('.').next().unwrap_or(target).to_owned();
        (op, Protocol::AwsJson)
    } else if let Some(action) = action_param(query, &content_type, body) {
        let protocol = if service == "ec2" {
            Protocol::Ec2
        } else {
            Protocol::Query
        };
        (action, protocol)
    } else if let Some(op) = rpc_v2_operation(path) {
        (op, Protocol::Cbor)
    } else {
        match service.as_str() {
            "eks" => (
                eks_operation(method, path).unwrap_or_else(|| generic_rest(method, path)),
                Protocol::RestJson,
            ),
            "lambda" => (lambda_operation(method, path), Protocol::RestJson),
            "s3" => (
                s3_operation(method, path, query, headers),
                Protocol::RestXml,
            ),
            "securityhub" => (securityhub_operation(method, path), Protocol::RestJson),
            _ => (generic_rest(method, path), Protocol::RestJson),
        }
    };
    let mutating = if operation.contains(' ') {
        // Unmapped REST call ("METHOD /path"): decide by method.
        !matches!(*method, Method::GET | Method::HEAD)
    } else {
        !is_read_only(&operation)
    };
    Classified {
        service,
        operation,
        mutating,
        access_key,
        region,
        protocol,
    }
}

fn action_param(query: Option<&str>, content_type: &str, body: &[u8]) -> Option<String> {
    if let Some(a) = query.and_then(|q| query_param(q, "Action")) {
        return Some(a);
    }
    if content_type.starts_with("application/x-www-form-urlencoded") {
        return form_urlencoded::parse(body)
            .find(|(k, _)| k == "Action")
            .map(|(_, v)| v.into_owned());
    }
    None
}

/// Smithy RPC v2: `/service/{service}/operation/{operation}`.
fn rpc_v2_operation(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if parts.len() == 4 && parts[0] == "service" && parts[2] == "operation" {
        Some(parts[3].to_owned())
    } else {
        None
    }
}

/// Smithy RPC v2: the `{service}` of `/service/{service}/operation/{operation}`.
fn rpc_v2_service(path: &str) -> Option<&str> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if parts.len() == 4 && parts[0] == "service" && parts[2] == "operation" {
        Some(parts[1])
    } else {
        None
    }
}

/// Matches a path against a pattern whose `{}` segments capture one (percent-decoded) segment.
pub fn match_route(pattern: &str, path: &str) -> Option<Vec<String>> {
    let pat: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    if pat.len() != segs.len() {
        return None;
    }
    let mut captures = Vec::new();
    for (p, s) in pat.iter().zip(segs.iter()) {
        if *p == "{}" {
            if s.is_empty() {
                return None;
            }
            captures.push(decode(s));
        } else if p != s {
            return None;
        }
    }
    Some(captures)
}

/// Percent-decodes a path segment.
pub fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The EKS REST routes (from the EKS API model, 2017-11-01).
pub const EKS_ROUTES: &[(&str, &str, &str)] = &[
    (
        "POST",
        "/clusters/{}/certificate-authorities/{}/activate",
        "ActivateCertificateAuthority",
    ),
    (
        "POST",
        "/clusters/{}/access-entries/{}/access-policies",
        "AssociateAccessPolicy",
    ),
    (
        "POST",
        "/clusters/{}/encryption-config/associate",
        "AssociateEncryptionConfig",
    ),
    (
        "POST",
        "/clusters/{}/identity-provider-configs/associate",
        "AssociateIdentityProviderConfig",
    ),
    (
        "POST",
        "/clusters/{}/identity-provider-configs/disassociate",
        "DisassociateIdentityProviderConfig",
    ),
    (
        "POST",
        "/clusters/{}/identity-provider-configs/describe",
        "DescribeIdentityProviderConfig",
    ),
    (
        "POST",
        "/clusters/{}/updates/{}/cancel-update",
        "CancelUpdate",
    ),
    ("POST", "/clusters/{}/access-entries", "CreateAccessEntry"),
    ("POST", "/clusters/{}/addons", "CreateAddon"),
    ("POST", "/clusters/{}/capabilities", "CreateCapability"),
    (
        "POST",
        "/clusters/{}/certificate-authorities",
        "CreateCertificateAuthority",
    ),
    ("POST", "/clusters", "CreateCluster"),
    (
        "POST",
        "/eks-anywhere-subscriptions",
        "CreateEksAnywhereSubscription",
    ),
    (
        "POST",
        "/clusters/{}/fargate-profiles",
        "CreateFargateProfile",
    ),
    ("POST", "/clusters/{}/node-groups", "CreateNodegroup"),
    (
        "POST",
        "/clusters/{}/pod-identity-associations",
        "CreatePodIdentityAssociation",
    ),
    (
        "DELETE",
        "/clusters/{}/access-entries/{}/access-policies/{}",
        "DisassociateAccessPolicy",
    ),
    (
        "DELETE",
        "/clusters/{}/access-entries/{}",
        "DeleteAccessEntry",
    ),
    ("DELETE", "/clusters/{}/addons/{}", "DeleteAddon"),
    ("DELETE", "/clusters/{}/capabilities/{}", "DeleteCapability"),
    (
        "DELETE",
        "/clusters/{}/certificate-authorities/{}",
        "DeleteCertificateAuthority",
    ),
    ("DELETE", "/clusters/{}", "DeleteCluster"),
    (
        "DELETE",
        "/eks-anywhere-subscriptions/{}",
        "DeleteEksAnywhereSubscription",
    ),
    (
        "DELETE",
        "/clusters/{}/fargate-profiles/{}",
        "DeleteFargateProfile",
    ),
    ("DELETE", "/clusters/{}/node-groups/{}", "DeleteNodegroup"),
    (
        "DELETE",
        "/clusters/{}/pod-identity-associations/{}",
        "DeletePodIdentityAssociation",
    ),
    ("DELETE", "/cluster-registrations/{}", "DeregisterCluster"),
    ("DELETE", "/tags/{}", "UntagResource"),
    (
        "GET",
        "/clusters/{}/access-entries/{}/access-policies",
        "ListAssociatedAccessPolicies",
    ),
    (
        "GET",
        "/clusters/{}/access-entries/{}",
        "DescribeAccessEntry",
    ),
    ("GET", "/clusters/{}/addons/{}", "DescribeAddon"),
    (
        "GET",
        "/addons/configuration-schemas",
        "DescribeAddonConfiguration",
    ),
    ("GET", "/addons/supported-versions", "DescribeAddonVersions"),
    ("GET", "/clusters/{}/capabilities/{}", "DescribeCapability"),
    (
        "GET",
        "/clusters/{}/certificate-authorities/{}",
        "DescribeCertificateAuthority",
    ),
    ("GET", "/clusters/{}", "DescribeCluster"),
    ("GET", "/cluster-versions", "DescribeClusterVersions"),
    (
        "GET",
        "/eks-anywhere-subscriptions/{}",
        "DescribeEksAnywhereSubscription",
    ),
    (
        "GET",
        "/clusters/{}/fargate-profiles/{}",
        "DescribeFargateProfile",
    ),
    ("GET", "/clusters/{}/insights/{}", "DescribeInsight"),
    (
        "GET",
        "/clusters/{}/insights-refresh",
        "DescribeInsightsRefresh",
    ),
    ("GET", "/clusters/{}/node-groups/{}", "DescribeNodegroup"),
    (
        "GET",
        "/clusters/{}/pod-identity-associations/{}",
        "DescribePodIdentityAssociation",
    ),
    ("GET", "/clusters/{}/updates/{}", "DescribeUpdate"),
    ("GET", "/clusters/{}/access-entries", "ListAccessEntries"),
    ("GET", "/access-policies", "ListAccessPolicies"),
    ("GET", "/clusters/{}/addons", "ListAddons"),
    ("GET", "/clusters/{}/capabilities", "ListCapabilities"),
    (
        "GET",
        "/clusters/{}/certificate-authorities",
        "ListCertificateAuthorities",
    ),
    ("GET", "/clusters", "ListClusters"),
    (
        "GET",
        "/eks-anywhere-subscriptions",
        "ListEksAnywhereSubscriptions",
    ),
    (
        "GET",
        "/clusters/{}/fargate-profiles",
        "ListFargateProfiles",
    ),
    (
        "GET",
        "/clusters/{}/identity-provider-configs",
        "ListIdentityProviderConfigs",
    ),
    ("POST", "/clusters/{}/insights", "ListInsights"),
    ("GET", "/clusters/{}/node-groups", "ListNodegroups"),
    (
        "GET",
        "/clusters/{}/pod-identity-associations",
        "ListPodIdentityAssociations",
    ),
    ("GET", "/tags/{}", "ListTagsForResource"),
    ("GET", "/clusters/{}/updates", "ListUpdates"),
    ("POST", "/cluster-registrations", "RegisterCluster"),
    (
        "POST",
        "/clusters/{}/insights-refresh",
        "StartInsightsRefresh",
    ),
    ("POST", "/tags/{}", "TagResource"),
    (
        "POST",
        "/clusters/{}/access-entries/{}",
        "UpdateAccessEntry",
    ),
    ("POST", "/clusters/{}/addons/{}/update", "UpdateAddon"),
    ("POST", "/clusters/{}/capabilities/{}", "UpdateCapability"),
    ("POST", "/clusters/{}/update-config", "UpdateClusterConfig"),
    ("POST", "/clusters/{}/updates", "UpdateClusterVersion"),
    (
        "POST",
        "/eks-anywhere-subscriptions/{}",
        "UpdateEksAnywhereSubscription",
    ),
    (
        "POST",
        "/clusters/{}/node-groups/{}/update-config",
        "UpdateNodegroupConfig",
    ),
    (
        "POST",
        "/clusters/{}/node-groups/{}/update-version",
        "UpdateNodegroupVersion",
    ),
    (
        "POST",
        "/clusters/{}/pod-identity-associations/{}",
        "UpdatePodIdentityAssociation",
    ),
];

/// EKS operation and its path captures.
pub fn eks_route(method: &Method, path: &str) -> Option<(&'static str, Vec<String>)> {
    EKS_ROUTES.iter().find_map(|(m, pattern, op)| {
        if *m != method.as_str() {
            return None;
        }
        match_route(pattern, path).map(|caps| (*op, caps))
    })
}

fn eks_operation(method: &Method, path: &str) -> Option<String> {
    eks_route(method, path).map(|(op, _)| op.to_owned())
}

fn lambda_operation(method: &Method, path: &str) -> String {
    const ROUTES: &[(&str, &str, &str)] = &[
        ("POST", "/2015-03-31/functions/{}/invocations", "Invoke"),
        ("POST", "/2015-03-31/functions", "CreateFunction"),
        ("GET", "/2015-03-31/functions", "ListFunctions"),
        ("GET", "/2015-03-31/functions/{}", "GetFunction"),
        ("DELETE", "/2015-03-31/functions/{}", "DeleteFunction"),
        (
            "GET",
            "/2015-03-31/functions/{}/configuration",
            "GetFunctionConfiguration",
        ),
        (
            "PUT",
            "/2015-03-31/functions/{}/configuration",
            "UpdateFunctionConfiguration",
        ),
        ("PUT", "/2015-03-31/functions/{}/code", "UpdateFunctionCode"),
        (
            "POST",
            "/2015-03-31/event-source-mappings",
            "CreateEventSourceMapping",
        ),
        (
            "GET",
            "/2015-03-31/event-source-mappings",
            "ListEventSourceMappings",
        ),
        ("POST", "/2015-03-31/functions/{}/policy", "AddPermission"),
    ];
    ROUTES
        .iter()
        .find(|(m, p, _)| *m == method.as_str() && match_route(p, path).is_some())
        .map(|(_, _, op)| (*op).to_owned())
        .unwrap_or_else(|| generic_rest(method, path))
}

fn securityhub_operation(method: &Method, path: &str) -> String {
    const ROUTES: &[(&str, &str, &str)] = &[
        ("POST", "/findings/import", "BatchImportFindings"),
        ("PATCH", "/findings/batchupdate", "BatchUpdateFindings"),
        ("POST", "/findings", "GetFindings"),
        ("POST", "/accounts", "EnableSecurityHub"),
        ("GET", "/accounts", "DescribeHub"),
        ("DELETE", "/accounts", "DisableSecurityHub"),
        ("POST", "/standards/register", "BatchEnableStandards"),
        ("POST", "/standards/deregister", "BatchDisableStandards"),
        ("GET", "/standards", "DescribeStandards"),
        ("GET", "/standards/get", "GetEnabledStandards"),
        ("POST", "/standards/get", "GetEnabledStandards"),
    ];
    ROUTES
        .iter()
        .find(|(m, p, _)| *m == method.as_str() && match_route(p, path).is_some())
        .map(|(_, _, op)| (*op).to_owned())
        .unwrap_or_else(|| generic_rest(method, path))
}

/// S3 (path-style) operation from method, path shape and sub-resource.
fn s3_operation(method: &Method, path: &str, query: Option<&str>, headers: &HeaderMap) -> String {
    let segments: Vec<&str> = path
        .trim_start_matches('/')
        .splitn(2, '/')
        .filter(|s| !s.is_empty())
        .collect();
    let query = query.unwrap_or_default();
    let keys: Vec<String> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, _)| k.into_owned())
        .collect();
    let has = |k: &str| keys.iter().any(|x| x == k);
    let verb = match *method {
        Method::GET => "Get",
        Method::PUT => "Put",
        Method::DELETE => "Delete",
        Method::HEAD => "Head",
        _ => "Post",
    };
    const BUCKET_SUB: &[(&str, &str)] = &[
        ("tagging", "BucketTagging"),
        ("policy", "BucketPolicy"),
        ("versioning", "BucketVersioning"),
        ("encryption", "BucketEncryption"),
        ("publicAccessBlock", "PublicAccessBlock"),
        ("lifecycle", "BucketLifecycleConfiguration"),
        ("acl", "BucketAcl"),
        ("cors", "BucketCors"),
        ("logging", "BucketLogging"),
        ("notification", "BucketNotificationConfiguration"),
        ("ownershipControls", "BucketOwnershipControls"),
        ("replication", "BucketReplication"),
        ("website", "BucketWebsite"),
        ("location", "BucketLocation"),
        ("object-lock", "ObjectLockConfiguration"),
    ];
    match segments.len() {
        0 => "ListBuckets".to_owned(),
        1 => {
            if *method == Method::POST && has("delete") {
                return "DeleteObjects".to_owned();
            }
            if let Some((_, name)) = BUCKET_SUB.iter().find(|(k, _)| has(k)) {
                return format!("{verb}{name}");
            }
            if has("versions") {
                return "ListObjectVersions".to_owned();
            }
            if has("uploads") {
                return "ListMultipartUploads".to_owned();
            }
            match *method {
                Method::PUT => "CreateBucket".to_owned(),
                Method::DELETE => "DeleteBucket".to_owned(),
                Method::HEAD => "HeadBucket".to_owned(),
                Method::GET if has("list-type") => "ListObjectsV2".to_owned(),
                Method::GET => "ListObjects".to_owned(),
                _ => generic_rest(method, path),
            }
        }
        _ => {
            if has("tagging") {
                return format!("{verb}ObjectTagging");
            }
            if has("uploads") {
                return "CreateMultipartUpload".to_owned();
            }
            if has("uploadId") {
                return match *method {
                    Method::PUT => "UploadPart",
                    Method::POST => "CompleteMultipartUpload",
                    Method::DELETE => "AbortMultipartUpload",
                    _ => "ListParts",
                }
                .to_owned();
            }
            match *method {
                Method::PUT if headers.contains_key("x-amz-copy-source") => "CopyObject".to_owned(),
                Method::PUT => "PutObject".to_owned(),
                Method::GET => "GetObject".to_owned(),
                Method::HEAD => "HeadObject".to_owned(),
                Method::DELETE => "DeleteObject".to_owned(),
                _ => generic_rest(method, path),
            }
        }
    }
}

/// Unmapped REST call: `"METHOD /first/segments"`.
fn generic_rest(method: &Method, path: &str) -> String {
    let head: Vec<&str> = path.trim_start_matches('/').split('/').take(2).collect();
    format!("{} /{}", method, head.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn auth(akid: &str, service: &str) -> String {
        format!("AWS4-HMAC-SHA256 Credential={akid}/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc")
    }

    #[test]
    fn json_target() {
        let h = headers(&[
            ("authorization", &auth("TINV000001", "dynamodb")),
            ("x-amz-target", "DynamoDB_20120810.PutItem"),
        ]);
        let c = classify(&Method::POST, "/", None, &h, b"{}");
        assert_eq!(c.service, "dynamodb");
        assert_eq!(c.operation, "PutItem");
        assert!(c.mutating);
        assert_eq!(c.access_key.as_deref(), Some("TINV000001"));
        assert_eq!(c.protocol, Protocol::AwsJson);
        let h = headers(&[
            ("authorization", &auth("x", "dynamodb")),
            ("x-amz-target", "DynamoDB_20120810.Query"),
        ]);
        assert!(!classify(&Method::POST, "/", None, &h, b"{}").mutating);
    }

    #[test]
    fn query_action() {
        let h = headers(&[
            ("authorization", &auth("x", "ec2")),
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
        ]);
        let c = classify(
            &Method::POST,
            "/",
            None,
            &h,
            b"Action=DescribeVpcs&Version=2016-11-15",
        );
        assert_eq!((c.operation.as_str(), c.mutating), ("DescribeVpcs", false));
        assert_eq!(c.protocol, Protocol::Ec2);
        let h = headers(&[
            ("authorization", &auth("x", "iam")),
            ("content-type", "application/x-www-form-urlencoded"),
        ]);
        let c = classify(
            &Method::POST,
            "/",
            None,
            &h,
            b"Action=CreateRole&RoleName=a",
        );
        assert_eq!((c.operation.as_str(), c.mutating), ("CreateRole", true));
        assert_eq!(c.protocol, Protocol::Query);
    }

    #[test]
    fn eks_rest() {
        let h = headers(&[("authorization", &auth("x", "eks"))]);
        let c = classify(&Method::POST, "/clusters", None, &h, b"{}");
        assert_eq!(c.operation, "CreateCluster");
        let c = classify(&Method::GET, "/clusters/dev", None, &h, b"");
        assert_eq!(
            (c.operation.as_str(), c.mutating),
            ("DescribeCluster", false)
        );
        let c = classify(
            &Method::POST,
            "/clusters/dev/addons/coredns/update",
            None,
            &h,
            b"",
        );
        assert_eq!(c.operation, "UpdateAddon");
        let c = classify(
            &Method::DELETE,
            "/clusters/dev/access-entries/arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx/access-policies/arn%3Ap",
            None,
            &h,
            b"",
        );
        assert_eq!(c.operation, "DisassociateAccessPolicy");
        let (_, caps) = eks_route(
            &Method::GET,
            "/clusters/dev/access-entries/arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx",
        )
        .unwrap();
        assert_eq!(caps, vec!["dev", "arn:aws:iam::1:role/x"]);
    }

    #[test]
    fn cloudwatch_rpc_v2_cbor() {
        let h = headers(&[
            ("authorization", &auth("x", "monitoring")),
            ("smithy-protocol", "rpc-v2-cbor"),
            ("content-type", "application/cbor"),
        ]);
        let path = |op: &str| format!("/service/GraniteServiceVersion20100801/operation/{op}");
        for (op, mutating) in [
            ("PutMetricAlarm", true),
            ("DeleteAlarms", true),
            ("TagResource", true),
            ("UntagResource", true),
            ("DescribeAlarms", false),
            ("ListTagsForResource", false),
        ] {
            let c = classify(&Method::POST, &path(op), None, &h, b"\xa0");
            assert_eq!(c.service, "cloudwatch");
            assert_eq!((c.operation.as_str(), c.mutating), (op, mutating));
            assert_eq!(c.protocol, Protocol::Cbor);
        }
        // Unsigned: still CloudWatch by its RPC v2 service name.
        let c = classify(
            &Method::POST,
            &path("DescribeAlarms"),
            None,
            &HeaderMap::new(),
            b"",
        );
        assert_eq!(c.service, "cloudwatch");
    }

    #[test]
    fn s3_shapes() {
        let h = headers(&[("authorization", &auth("x", "s3"))]);
        assert_eq!(
            classify(&Method::PUT, "/b", None, &h, b"").operation,
            "CreateBucket"
        );
        assert_eq!(
            classify(&Method::PUT, "/b/k/x", None, &h, b"").operation,
            "PutObject"
        );
        assert_eq!(
            classify(&Method::GET, "/b", Some("list-type=2&prefix=a"), &h, b"").operation,
            "ListObjectsV2"
        );
        assert_eq!(
            classify(&Method::PUT, "/b", Some("tagging"), &h, b"").operation,
            "PutBucketTagging"
        );
        assert!(!classify(&Method::HEAD, "/b", None, &h, b"").mutating);
    }

    #[test]
    fn named_resources() {
        let iam = headers(&[
            ("authorization", &auth("x", "iam")),
            ("content-type", "application/x-www-form-urlencoded"),
        ]);
        let body = b"Action=CreateRole&RoleName=tenantry-p-cluster&Path=%2Ftenantry%2F";
        let c = classify(&Method::POST, "/", None, &iam, body);
        assert_eq!(
            named_resource(&Method::POST, "/", None, &iam, body, &c).as_deref(),
            Some("role/tenantry/tenantry-p-cluster")
        );
        let body = b"Action=GetRole&RoleName=tenantry-p-node";
        let c = classify(&Method::POST, "/", None, &iam, body);
        assert_eq!(
            named_resource(&Method::POST, "/", None, &iam, body, &c).as_deref(),
            Some("role/tenantry-p-node")
        );
        let eks = headers(&[("authorization", &auth("x", "eks"))]);
        for (method, path, want) in [
            (Method::DELETE, "/clusters/dev", "cluster/dev"),
            (Method::POST, "/clusters/dev/node-groups", "cluster/dev"),
            (
                Method::POST,
                "/clusters/dev/node-groups/ng/update-config",
                "nodegroup/dev/ng/*",
            ),
            (
                Method::DELETE,
                "/clusters/dev/addons/coredns",
                "addon/dev/coredns/*",
            ),
            (
                Method::GET,
                "/clusters/dev/fargate-profiles/dev-coredns",
                "fargateprofile/dev/dev-coredns/*",
            ),
            (
                Method::POST,
                "/clusters/dev/fargate-profiles",
                "cluster/dev",
            ),
            (
                Method::DELETE,
                "/clusters/dev/access-entries/arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx",
                "access-entry/dev/*",
            ),
            (
                Method::POST,
                "/tags/arn%3Aaws%3Aeks%3Aus-east-1%3A1%3Acluster%2Fdev",
                "arn:aws:eks:us-east-1:1:cluster/dev",
            ),
        ] {
            let c = classify(&method, path, None, &eks, b"");
            assert_eq!(
                named_resource(&method, path, None, &eks, b"", &c).as_deref(),
                Some(want),
                "{path}"
            );
        }
        let c = classify(&Method::POST, "/clusters", None, &eks, b"{}");
        assert_eq!(
            named_resource(&Method::POST, "/clusters", None, &eks, b"{}", &c),
            None
        );
        let kms = headers(&[
            ("authorization", &auth("x", "kms")),
            ("x-amz-target", "TrentService.ScheduleKeyDeletion"),
        ]);
        let body = br#"{"KeyId":"1234-abcd","PendingWindowInDays":7}"#;
        let c = classify(&Method::POST, "/", None, &kms, body);
        assert_eq!(
            named_resource(&Method::POST, "/", None, &kms, body, &c).as_deref(),
            Some("key/1234-abcd")
        );
        let logs = headers(&[
            ("authorization", &auth("x", "logs")),
            ("x-amz-target", "Logs_20140328.DeleteLogGroup"),
        ]);
        let body = br#"{"logGroupName":"/aws/eks/dev/cluster"}"#;
        let c = classify(&Method::POST, "/", None, &logs, body);
        assert_eq!(
            named_resource(&Method::POST, "/", None, &logs, body, &c).as_deref(),
            Some("log-group:/aws/eks/dev/cluster")
        );
    }

    #[test]
    fn read_only_names() {
        for op in [
            "DescribeCluster",
            "GetItem",
            "ListClusters",
            "HeadObject",
            "Query",
            "Scan",
            "BatchGetItem",
            "SearchResources",
        ] {
            assert!(is_read_only(op), "{op}");
        }
        for op in [
            "PutItem",
            "CreateCluster",
            "BatchWriteItem",
            "TagResource",
            "QueryX",
        ] {
            assert!(!is_read_only(op), "{op}");
        }
    }
}
