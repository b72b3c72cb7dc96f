//! A tenant's documents: the trust and permission policy of its role, the policy of its own KMS
//! key, and the policy of the platform's tenant-data bucket the tenants share (by prefix).
//!
//! Isolation is the point of every document here: a tenant's role may touch its own S3 prefix,
//! its own key and its own Secrets Manager prefix, and nothing else; only its own service account
//! may assume it.
//!
//! Tenant values (the name, and the S3 and secrets prefixes derived from it) reach the documents
//! only as JSON strings built by `serde_json::json!`, so no value can add a statement or a
//! condition. Validation refuses names with wildcard or quote characters, but rendering does not
//! rely on it: in `Resource` and `Condition` values IAM reads `*`, `?` and `$` specially (wildcards
//! and policy variables), so tenant values pass through [`iam_literal`], which writes them as the
//! policy variables `${*}`, `${?}` and `${$}` that IAM reads as the literal characters. A name
//! like `a*` therefore names the prefix `tenants/a*/` literally, never every prefix starting
//! with `tenants/a`. For names validation accepts, [`iam_literal`] changes nothing.

use serde_json::{json, Value};

use super::{account_administration, document, irsa_statement_for, Target};
use crate::spec::aws_access;
use crate::spec::{AwsService, TenantSpec, TrustMechanism};

/// The service account of every tenant namespace bound to the tenant role.
pub const TENANT_SERVICE_ACCOUNT: &str = "workload";
/// Inline policy name of the tenant role's permissions.
pub const TENANT_POLICY_NAME: &str = "tenant-access";
/// What the tenant role may do with its own key (through S3 and Secrets Manager only).
pub const TENANT_KEY_ACTIONS: &[&str] = &[
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey*",
];
/// Services the tenant role may use its key through (`kms:ViaService`).
const KEY_VIA_SERVICES: &[&str] = &["s3", "secretsmanager"];

/// A value as IAM reads it literally inside a `Resource` or a `Condition` value: `*`, `?` and `$`
/// become the policy variables `${*}`, `${?}` and `${$}` (which the 2012-10-17 policy language
/// defines as those characters). Anything else is unchanged, so names validation accepts come
/// out as they went in.
pub fn iam_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("${*}"),
            '?' => out.push_str("${?}"),
            '$' => out.push_str("${$}"),
            c => out.push(c),
        }
    }
    out
}

/// Whether an IAM `Resource` or condition pattern matches a concrete value, as IAM reads it: `*`
/// any run of characters, `?` exactly one, and the policy variables `${*}`, `${?}` and `${$}`
/// the literal characters (what [`iam_literal`] writes). Used to prove isolation: no pattern of
/// one tenant's documents matches another tenant's resources.
pub fn iam_matches(pattern: &str, value: &str) -> bool {
    enum Tok {
        Any,
        One,
        Lit(char),
    }
    let mut toks = Vec::new();
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        let (tok, len) = match (c, rest) {
            (_, r) if r.starts_with("${*}") => (Tok::Lit('*'), 4),
            (_, r) if r.starts_with("${?}") => (Tok::Lit('?'), 4),
            (_, r) if r.starts_with("${$}") => (Tok::Lit('$'), 4),
            ('*', _) => (Tok::Any, 1),
            ('?', _) => (Tok::One, 1),
            (c, _) => (Tok::Lit(c), c.len_utf8()),
        };
        toks.push(tok);
        rest = &rest[len..];
    }
    let value: Vec<char> = value.chars().collect();
    // reach[j]: the tokens so far can match value[..j].
    let mut reach = vec![false; value.len() + 1];
    reach[0] = true;
    for tok in &toks {
        let mut next = vec![false; value.len() + 1];
        for j in 0..=value.len() {
            if !reach[j] {
                continue;
            }
            match tok {
                Tok::Any => next[j..].iter_mut().for_each(|r| *r = true),
                Tok::One if j < value.len() => next[j + 1] = true,
                Tok::Lit(c) if j < value.len() && value[j] == *c => next[j + 1] = true,
                _ => {}
            }
        }
        reach = next;
    }
    reach[value.len()]
}

/// The namespace and service account a tenant role serves: the namespace is the tenant's name,
/// the service account is always [`TENANT_SERVICE_ACCOUNT`] (`workload`).
///
/// A fixed name because a tenant has exactly one role, and that role is trusted by exactly one
/// service account: Tenantry creates it in the tenant's namespace, the tenant's workloads run
/// as it to reach the tenant's prefix, key and secrets, and no other service account (of this
/// namespace or any other) can assume the role. A request-chosen name would add a value to
/// validate and to keep in step between the trust, the annotation or pod identity association,
/// and the namespace's manifests, without adding any isolation.
pub fn tenant_service_account(tenant: &TenantSpec) -> (String, String) {
    (tenant.name.clone(), TENANT_SERVICE_ACCOUNT.to_owned())
}

/// The trust of a tenant's role: only the tenant's service account, by the platform's one trust
/// mechanism (`spec.identity.trust()`, which also decides whether the service account carries an
/// IRSA annotation or gets a pod identity association):
/// - EKS Pod Identity: `pods.eks.amazonaws.com` may `sts:AssumeRole` + `sts:TagSession` for this
///   account, when the session tags EKS Pod Identity sets (`eks-cluster-arn`,
///   `kubernetes-namespace`, `kubernetes-service-account`) name this cluster, the tenant's
///   namespace and its service account. The association must keep its session tags (not
///   `disableSessionTags`), or the role cannot be assumed.
/// - IRSA: the cluster's OIDC provider, `StringEquals` on `<issuer host>:sub` =
///   `system:serviceaccount:<tenant>:workload` and `<issuer host>:aud` = `sts.amazonaws.com`.
///   Without the issuer (not known yet) the trust has no statement, which IAM refuses: a role no
///   one may assume, never a wider one.
///
/// Unlike [`super::workload_trust`], which keeps both statements when both mechanisms are on,
/// a tenant role trusts only the mechanism its service account is bound by.
pub fn tenant_trust(t: &Target, issuer: Option<&str>, tenant: &TenantSpec) -> Value {
    let (namespace, account) = tenant_service_account(tenant);
    let (namespace, account) = (iam_literal(&namespace), iam_literal(&account));
    let statements = match t.spec.identity.trust() {
        TrustMechanism::PodIdentity => vec![json!({
            "Sid": "PodIdentity",
            "Effect": "Allow",
            "Principal": { "Service": "pods.eks.amazonaws.com" },
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Condition": { "StringEquals": {
                "aws:SourceAccount": t.account,
                "aws:RequestTag/eks-cluster-arn": t.cluster_arn(),
                "aws:RequestTag/kubernetes-namespace": namespace,
                "aws:RequestTag/kubernetes-service-account": account,
            } },
        })],
        TrustMechanism::Irsa => issuer
            .map(|issuer| irsa_statement_for(t, issuer, &namespace, &account))
            .into_iter()
            .collect(),
    };
    document(statements)
}

/// The tenant's S3 prefix without its trailing `/`, as IAM reads it literally.
fn s3_prefix(tenant: &TenantSpec) -> String {
    let prefix = tenant.effective_s3_prefix();
    iam_literal(prefix.strip_suffix('/').unwrap_or(&prefix))
}

/// `<service>.<region>.amazonaws.com` for each service the tenant may use its key through.
fn key_via_services(t: &Target) -> Vec<String> {
    KEY_VIA_SERVICES
        .iter()
        .map(|service| format!("{service}.{}.amazonaws.com", t.region))
        .collect()
}

/// The permissions of a tenant's role, and nothing else:
/// - `s3:ListBucket` on the platform bucket when the listed prefix is under the tenant's
///   (`StringLike s3:prefix` = `<prefix>/*`, `<prefix>/`; a listing without a prefix is refused);
/// - `s3:GetObject`, `s3:PutObject`, `s3:DeleteObject` on `<bucket>/<prefix>/*`;
/// - its own key (`key_arn`) for [`TENANT_KEY_ACTIONS`], only through S3 and Secrets Manager of
///   the platform's region (`kms:ViaService`);
/// - `secretsmanager:GetSecretValue` and `DescribeSecret` on secrets named under its prefix
///   (the trailing `*` covers the random suffix of secret ARNs).
///
/// `<prefix>` is `effective_s3_prefix()` without its trailing `/`, so `tenants/a/*` never
/// covers `tenants/ab/`.
pub fn tenant_role_policy(t: &Target, bucket: &str, tenant: &TenantSpec, key_arn: &str) -> Value {
    let partition = t.partition();
    let prefix = s3_prefix(tenant);
    let secrets = iam_literal(&tenant.effective_secrets_prefix(t.names.stem()));
    document(
        vec![
            json!({
                "Sid": "ListOwnPrefix",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": format!("arn:{partition}:s3:::{bucket}"),
                "Condition": { "StringLike": {
                    "s3:prefix": [format!("{prefix}/*"), format!("{prefix}/")],
                } },
            }),
            json!({
                "Sid": "ObjectsUnderOwnPrefix",
                "Effect": "Allow",
                "Action": ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
                "Resource": format!("arn:{partition}:s3:::{bucket}/{prefix}/*"),
            }),
            json!({
                "Sid": "OwnKeyThroughS3AndSecretsManager",
                "Effect": "Allow",
                "Action": TENANT_KEY_ACTIONS,
                "Resource": key_arn,
                "Condition": { "StringEquals": { "kms:ViaService": key_via_services(t) } },
            }),
            json!({
                "Sid": "ReadOwnSecrets",
                "Effect": "Allow",
                "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
                "Resource": t.arn("secretsmanager", &format!("secret:{secrets}*")),
            }),
        ]
        .into_iter()
        .chain(aws_access_statements(t, bucket, tenant))
        .chain(super::registry::tenant_statements(t, tenant))
        .collect(),
    )
}

/// The tenant's `awsAccess`, cut down to what its platform approves now and to each service's
/// catalogue (so a stale record or a narrowed approval never grants more): one statement per
/// service, on the tenant's own resources only ([`aws_access::resource_prefix`]; for S3, its
/// prefix of the platform bucket).
fn aws_access_statements(t: &Target, bucket: &str, tenant: &TenantSpec) -> Vec<Value> {
    let own = iam_literal(&aws_access::resource_prefix(t.names.stem(), &tenant.name));
    let mut out = Vec::new();
    for (service, asked) in &tenant.aws_access {
        let approved = t.spec.tenant_aws_access.get(service);
        let mut granted: Vec<&str> = asked
            .iter()
            .map(String::as_str)
            .filter(|a| service.actions().contains(a))
            .filter(|a| approved.is_some_and(|list| list.iter().any(|x| x == a)))
            .collect();
        granted.sort_unstable();
        granted.dedup();
        if granted.is_empty() {
            continue;
        }
        let resources = match service {
            AwsService::Dynamodb => vec![
                t.arn("dynamodb", &format!("table/{own}*")),
                t.arn("dynamodb", &format!("table/{own}*/index/*")),
            ],
            AwsService::Sqs => vec![t.arn("sqs", &format!("{own}*"))],
            AwsService::Sns => vec![t.arn("sns", &format!("{own}*"))],
            AwsService::Athena => vec![t.arn("athena", &format!("workgroup/{own}*"))],
            AwsService::S3 => vec![format!(
                "arn:{}:s3:::{bucket}/{}/*",
                t.partition(),
                s3_prefix(tenant)
            )],
        };
        out.push(json!({
            "Sid": format!("OwnResources{}", sid_word(service.prefix())),
            "Effect": "Allow",
            "Action": granted,
            "Resource": resources,
        }));
    }
    out
}

/// `dynamodb` → `Dynamodb` (statement ids are alphanumeric).
fn sid_word(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// The policy of a tenant's own key: the account root administers it (the same statement as
/// every platform key, [`super::key_policy`]), and the tenant's role (`role_arn`, which must
/// exist when the policy is put) may use it for [`TENANT_KEY_ACTIONS`] only when S3 or Secrets
/// Manager of the platform's region call KMS on its behalf (`kms:ViaService`). No other
/// principal is named.
pub fn tenant_key_policy(t: &Target, role_arn: &str) -> Value {
    document(vec![
        account_administration(t),
        json!({
            "Sid": "TenantRoleThroughS3AndSecretsManager",
            "Effect": "Allow",
            "Principal": { "AWS": role_arn },
            "Action": TENANT_KEY_ACTIONS,
            "Resource": "*",
            "Condition": { "StringEquals": { "kms:ViaService": key_via_services(t) } },
        }),
    ])
}

/// The policy of the platform's tenant-data bucket: two Deny statements for everyone
/// (`Principal: "*"`): any request without TLS, on the bucket and its objects; and any
/// `PutObject` whose `s3:x-amz-server-side-encryption` is not `aws:kms` (a missing header
/// included, so clients must ask for SSE-KMS explicitly, naming their tenant's key).
pub fn tenant_bucket_policy(t: &Target, bucket: &str) -> Value {
    let bucket_arn = format!("arn:{}:s3:::{bucket}", t.partition());
    let objects = format!("{bucket_arn}/*");
    document(vec![
        json!({
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, objects.clone()],
            "Condition": { "Bool": { "aws:SecureTransport": "false" } },
        }),
        json!({
            "Sid": "DenyPutWithoutSseKms",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": objects,
            "Condition": { "StringNotEquals": { "s3:x-amz-server-side-encryption": "aws:kms" } },
        }),
    ])
}

#[cfg(test)]
mod tests {
    use super::super::{for_parliament, key_policy, PLACEHOLDER_KEY_ID};
    use super::*;
    use crate::spec::{LimitDefaults, PlatformSpec, TenantQuotas};

    const ACCOUNT: &str = "111122223333";
    const REGION: &str = "eu-west-1";
    const ISSUER: &str =
        "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";
    const HOST: &str = "oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";
    const BUCKET: &str = "tenantry-payments-prod-0badf00d";
    const CLUSTER: &str = "arn:aws:eks:eu-west-1:111122223333:cluster/payments-prod";

    use std::collections::BTreeMap;

    fn spec() -> PlatformSpec {
        let text = include_str!("../../../examples/platform.json");
        crate::validate::parse_platform(text).expect("example spec is valid")
    }

    /// A tenant built in code: bypasses validation on purpose.
    fn tenant(name: &str) -> TenantSpec {
        TenantSpec {
            name: name.to_owned(),
            owners: Vec::new(),
            quotas: TenantQuotas::default(),
            limits: LimitDefaults::default(),
            s3_prefix: None,
            own_kms_key: true,
            secrets_prefix: None,
            cost_centre: "cc-1".to_owned(),
            allow_from: Vec::new(),
            aws_access: Default::default(),
            repositories: Vec::new(),
            fargate: None,
        }
    }

    fn key(id: &str) -> String {
        format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{id}")
    }

    /// Every `Resource` and every condition value of a document (with the statement's Sid).
    fn scoped_values(doc: &Value) -> Vec<String> {
        fn collect(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::String(s) => out.push(s.clone()),
                Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
                Value::Object(map) => map.values().for_each(|v| collect(v, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        for s in doc["Statement"].as_array().into_iter().flatten() {
            collect(&s["Resource"], &mut out);
            collect(&s["Condition"], &mut out);
        }
        out
    }

    #[test]
    fn the_pattern_matcher_reads_wildcards_and_literals_as_iam_does() {
        assert!(iam_matches("tenants/a/*", "tenants/a/x/y"));
        assert!(iam_matches("tenants/a/*", "tenants/a/"));
        assert!(!iam_matches("tenants/a/*", "tenants/ab/x"));
        assert!(iam_matches("tenants/a*/*", "tenants/ab/x"));
        assert!(!iam_matches("tenants/a${*}/*", "tenants/ab/x"));
        assert!(iam_matches("tenants/a${*}/*", "tenants/a*/x"));
        assert!(iam_matches("a?c", "abc") && !iam_matches("a${?}c", "abc"));
    }

    #[test]
    fn literal_changes_nothing_a_valid_name_contains() {
        assert_eq!(
            iam_literal("tenants/fraud-scoring"),
            "tenants/fraud-scoring"
        );
        assert_eq!(iam_literal("a*b?c$d"), "a${*}b${?}c${$}d");
    }

    #[test]
    fn the_service_account_is_the_tenant_namespace_and_workload() {
        assert_eq!(
            tenant_service_account(&tenant("checkout")),
            ("checkout".to_owned(), "workload".to_owned())
        );
    }

    #[test]
    fn pod_identity_trust_names_exactly_the_tenant_service_account_of_this_cluster() {
        let spec = spec();
        assert!(spec.identity.pod_identity);
        let t = Target::new(&spec, ACCOUNT, REGION);
        let trust = tenant_trust(&t, Some(ISSUER), &tenant("checkout"));
        assert_eq!(
            trust,
            json!({ "Version": "2012-10-17", "Statement": [{
                "Sid": "PodIdentity",
                "Effect": "Allow",
                "Principal": { "Service": "pods.eks.amazonaws.com" },
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Condition": { "StringEquals": {
                    "aws:SourceAccount": ACCOUNT,
                    "aws:RequestTag/eks-cluster-arn": CLUSTER,
                    "aws:RequestTag/kubernetes-namespace": "checkout",
                    "aws:RequestTag/kubernetes-service-account": "workload",
                } },
            }] })
        );
        let text = trust.to_string();
        assert!(!text.contains("Like") && !text.contains('*'), "{text}");
    }

    #[test]
    fn irsa_trust_names_exactly_the_tenant_service_account_and_audience() {
        let mut spec = spec();
        spec.identity.pod_identity = false;
        let t = Target::new(&spec, ACCOUNT, REGION);
        let trust = tenant_trust(&t, Some(ISSUER), &tenant("checkout"));
        assert_eq!(
            trust,
            json!({ "Version": "2012-10-17", "Statement": [{
                "Sid": "Irsa",
                "Effect": "Allow",
                "Principal": { "Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{HOST}") },
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": { "StringEquals": {
                    format!("{HOST}:sub"): "system:serviceaccount:checkout:workload",
                    format!("{HOST}:aud"): "sts.amazonaws.com",
                } },
            }] })
        );
        let text = trust.to_string();
        assert!(!text.contains("Like") && !text.contains('*'), "{text}");
        // No issuer yet: no statement (IAM refuses it), never a wider trust.
        let none = tenant_trust(&t, None, &tenant("checkout"));
        assert_eq!(none["Statement"], json!([]));
    }

    #[test]
    fn the_role_policy_is_exactly_prefix_key_and_secrets() {
        let spec = spec();
        let t = Target::new(&spec, ACCOUNT, REGION);
        let policy = tenant_role_policy(&t, BUCKET, &tenant("checkout"), &key("k-checkout"));
        assert_eq!(
            policy,
            json!({ "Version": "2012-10-17", "Statement": [
                {
                    "Sid": "ListOwnPrefix",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": format!("arn:aws:s3:::{BUCKET}"),
                    "Condition": { "StringLike": {
                        "s3:prefix": ["tenants/checkout/*", "tenants/checkout/"],
                    } },
                },
                {
                    "Sid": "ObjectsUnderOwnPrefix",
                    "Effect": "Allow",
                    "Action": ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
                    "Resource": format!("arn:aws:s3:::{BUCKET}/tenants/checkout/*"),
                },
                {
                    "Sid": "OwnKeyThroughS3AndSecretsManager",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*"],
                    "Resource": key("k-checkout"),
                    "Condition": { "StringEquals": { "kms:ViaService": [
                        "s3.eu-west-1.amazonaws.com",
                        "secretsmanager.eu-west-1.amazonaws.com",
                    ] } },
                },
                {
                    "Sid": "ReadOwnSecrets",
                    "Effect": "Allow",
                    "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
                    "Resource": format!(
                        "arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:tenantry/payments-prod/checkout/*"
                    ),
                },
            ] })
        );
        // No wildcard action but GenerateDataKey*, no wildcard resource.
        for s in policy["Statement"].as_array().into_iter().flatten() {
            assert_ne!(s["Resource"], "*");
            let actions = match &s["Action"] {
                Value::Array(a) => a.clone(),
                one => vec![one.clone()],
            };
            for a in actions {
                let a = a.as_str().unwrap_or_default();
                assert!(!a.contains('*') || a == "kms:GenerateDataKey*", "{a}");
            }
        }
    }

    #[test]
    fn a_requested_prefix_with_its_trailing_slash_is_used_once() {
        let spec = spec();
        let t = Target::new(&spec, ACCOUNT, REGION);
        let text = include_str!("../../../examples/tenant.json");
        let fraud = crate::validate::parse_tenant(text).expect("example tenant is valid");
        let policy = tenant_role_policy(&t, BUCKET, &fraud, &key("k"));
        assert_eq!(
            policy["Statement"][0]["Condition"]["StringLike"]["s3:prefix"],
            json!(["tenants/fraud-scoring/*", "tenants/fraud-scoring/"])
        );
        assert_eq!(
            policy["Statement"][1]["Resource"],
            format!("arn:aws:s3:::{BUCKET}/tenants/fraud-scoring/*")
        );
    }

    #[test]
    fn tenant_a_is_granted_nothing_of_tenant_b() {
        let spec = spec();
        let t = Target::new(&spec, ACCOUNT, REGION);
        // B's name starts with A's: the prefix boundary must hold.
        let (a, b) = (tenant("alpha"), tenant("alpha-two"));
        let (key_a, key_b) = (key("aaaa-1111"), key("bbbb-2222"));
        let policy_a = tenant_role_policy(&t, BUCKET, &a, &key_a);
        let values = scoped_values(&policy_a);
        assert!(!values.is_empty());
        let b_prefix = b.effective_s3_prefix();
        let b_secrets = b.effective_secrets_prefix(t.names.stem());
        for v in &values {
            assert!(!v.contains("alpha-two"), "A's policy names B: {v}");
            assert!(!v.contains(&b_prefix) && !v.contains(&b_secrets) && v != &key_b);
        }
        // Read as IAM reads them, none of A's resources or conditions matches anything of B's.
        let b_things = [
            format!("arn:aws:s3:::{BUCKET}/tenants/alpha-two/report.csv"),
            "tenants/alpha-two/".to_owned(),
            "tenants/alpha-two/x".to_owned(),
            format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:tenantry/payments-prod/alpha-two/db-AbCdEf"),
            key_b.clone(),
        ];
        for v in &values {
            for thing in &b_things {
                assert!(!iam_matches(v, thing), "A's {v} matches B's {thing}");
            }
        }
        // And they do match A's own (the check is not vacuous).
        let a_things = [
            format!("arn:aws:s3:::{BUCKET}/tenants/alpha/report.csv"),
            "tenants/alpha/x".to_owned(),
            format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:tenantry/payments-prod/alpha/db-AbCdEf"),
            key_a.clone(),
        ];
        for thing in &a_things {
            assert!(values.iter().any(|v| iam_matches(v, thing)), "{thing}");
        }
        // The ListBucket condition is exactly A's prefix.
        assert_eq!(
            policy_a["Statement"][0]["Condition"],
            json!({ "StringLike": { "s3:prefix": ["tenants/alpha/*", "tenants/alpha/"] } })
        );
        // A's trust names A's namespace only.
        let trust_a = tenant_trust(&t, Some(ISSUER), &a);
        let cond = &trust_a["Statement"][0]["Condition"]["StringEquals"];
        assert_eq!(cond["aws:RequestTag/kubernetes-namespace"], "alpha");
        assert_eq!(
            cond["aws:RequestTag/kubernetes-service-account"],
            "workload"
        );
        assert!(!trust_a.to_string().contains("alpha-two"));
        // A's key policy names A's role only.
        let role_a = t.role_arn(&t.names.tenant_role("alpha"));
        let key_policy_a = tenant_key_policy(&t, &role_a);
        assert!(!key_policy_a.to_string().contains("alpha-two"));
    }

    #[test]
    fn aws_access_reaches_only_the_tenants_own_resources_and_only_approved_actions() {
        let mut spec = spec();
        spec.tenant_aws_access = BTreeMap::from([(
            AwsService::Dynamodb,
            vec!["dynamodb:GetItem".to_owned(), "dynamodb:Query".to_owned()],
        )]);
        let t = Target::new(&spec, ACCOUNT, REGION);
        let mut a = tenant("alpha");
        // Query is approved; Scan was once (a stale record) and is no longer; SQS never was.
        a.aws_access = BTreeMap::from([
            (
                AwsService::Dynamodb,
                vec!["dynamodb:Query".to_owned(), "dynamodb:Scan".to_owned()],
            ),
            (AwsService::Sqs, vec!["sqs:SendMessage".to_owned()]),
        ]);
        let policy = tenant_role_policy(&t, BUCKET, &a, &key("k"));
        let own = policy["Statement"]
            .as_array()
            .expect("statements")
            .iter()
            .filter(|s| {
                s["Sid"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("OwnResources"))
            })
            .collect::<Vec<_>>();
        assert_eq!(own.len(), 1, "{policy:#}");
        assert_eq!(own[0]["Sid"], "OwnResourcesDynamodb");
        assert_eq!(own[0]["Action"], json!(["dynamodb:Query"]));
        let resources: Vec<String> = own[0]["Resource"]
            .as_array()
            .expect("resources")
            .iter()
            .map(|r| r.as_str().expect("arn").to_owned())
            .collect();
        let table = |name: &str| format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}");
        let matches = |arn: &str| resources.iter().any(|r| iam_matches(r, arn));
        assert!(matches(&table("payments-prod_alpha_orders")));
        assert!(matches(&format!(
            "{}/index/by-day",
            table("payments-prod_alpha_orders")
        )));
        // Another tenant whose name starts with alpha's, another platform, an unprefixed table.
        assert!(!matches(&table("payments-prod_alpha-two_orders")));
        assert!(!matches(&table("payments-staging_alpha_orders")));
        assert!(!matches(&table("orders")));
    }

    #[test]
    fn a_hostile_name_cannot_widen_a_resource_or_break_the_document() {
        let spec = spec();
        let t = Target::new(&spec, ACCOUNT, REGION);
        let clean = tenant_role_policy(&t, BUCKET, &tenant("b"), &key("k"));
        for name in [
            r#"x"},{"Effect":"Allow","Action":"*","Resource":"*"#,
            "*",
            "a*",
            "../x",
            "..",
            "a/b",
            r#"q"*/..?$"#,
            "${aws:username}",
        ] {
            let hostile = tenant(name);
            let policy = tenant_role_policy(&t, BUCKET, &hostile, &key("k"));
            let reparsed: Value = serde_json::from_str(&policy.to_string()).expect("valid JSON");
            assert_eq!(reparsed, policy, "{name}");
            assert_eq!(
                reparsed["Statement"].as_array().map(Vec::len),
                clean["Statement"].as_array().map(Vec::len),
                "{name}"
            );
            for s in reparsed["Statement"].as_array().into_iter().flatten() {
                assert_eq!(s["Effect"], "Allow");
                assert_ne!(s["Action"], "*", "{name}");
                assert_ne!(s["Resource"], "*", "{name}");
            }
            // The resources are exactly the name's, read literally.
            let lit = iam_literal(name);
            assert_eq!(
                reparsed["Statement"][1]["Resource"],
                format!("arn:aws:s3:::{BUCKET}/tenants/{lit}/*"),
                "{name}"
            );
            assert_eq!(
                reparsed["Statement"][0]["Condition"],
                json!({ "StringLike": { "s3:prefix": [
                    format!("tenants/{lit}/*"), format!("tenants/{lit}/"),
                ] } }),
                "{name}"
            );
            assert_eq!(
                reparsed["Statement"][3]["Resource"],
                format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:tenantry/payments-prod/{lit}/*"),
                "{name}"
            );
            // No unescaped wildcard from the name: only the policy's own trailing `*`, and
            // nothing of another tenant's matches.
            let values = scoped_values(&reparsed);
            for v in &values {
                for other in [
                    format!("arn:aws:s3:::{BUCKET}/tenants/b/x"),
                    format!("arn:aws:s3:::{BUCKET}/x"),
                    "tenants/b/".to_owned(),
                    format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:tenantry/payments-prod/b/s-AbCdEf"),
                ] {
                    assert!(!iam_matches(v, &other), "{name}: {v} matches {other}");
                }
            }
            // The trust stays one statement naming that namespace literally.
            let trust = tenant_trust(&t, Some(ISSUER), &hostile);
            let reparsed: Value = serde_json::from_str(&trust.to_string()).expect("valid JSON");
            assert_eq!(reparsed["Statement"].as_array().map(Vec::len), Some(1));
            assert_eq!(
                reparsed["Statement"][0]["Condition"]["StringEquals"]
                    ["aws:RequestTag/kubernetes-namespace"],
                lit.as_str(),
                "{name}"
            );
        }
    }

    #[test]
    fn the_key_policy_lets_the_account_administer_and_the_role_use_it_through_services() {
        let spec = spec();
        let t = Target::new(&spec, ACCOUNT, REGION);
        let role = t.role_arn(&t.names.tenant_role("checkout"));
        assert_eq!(
            role,
            "arn:aws:iam::111122223333:role/tenantry/tenantry-payments-prod-t-checkout"
        );
        let policy = tenant_key_policy(&t, &role);
        let statements = policy["Statement"].as_array().cloned().unwrap_or_default();
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[0], key_policy(&t, "data")["Statement"][0]);
        assert_eq!(statements[0]["Principal"]["AWS"], t.account_root());
        assert_eq!(
            statements[1],
            json!({
                "Sid": "TenantRoleThroughS3AndSecretsManager",
                "Effect": "Allow",
                "Principal": { "AWS": role },
                "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": { "StringEquals": { "kms:ViaService": [
                    "s3.eu-west-1.amazonaws.com",
                    "secretsmanager.eu-west-1.amazonaws.com",
                ] } },
            })
        );
        // parliament sees the tenant key and the tenant's alias in place of "*".
        let view = for_parliament("key.tenant.checkout.json", &policy, &t).expect("audited");
        assert_eq!(
            view["Statement"][1]["Resource"],
            json!([
                key(PLACEHOLDER_KEY_ID),
                format!(
                    "arn:aws:kms:{REGION}:{ACCOUNT}:alias/tenantry/payments-prod/tenant/checkout"
                ),
            ])
        );
    }

    #[test]
    fn the_bucket_policy_denies_plain_http_and_puts_without_sse_kms() {
        let spec = spec();
        let t = Target::new(&spec, ACCOUNT, REGION);
        assert_eq!(
            tenant_bucket_policy(&t, BUCKET),
            json!({ "Version": "2012-10-17", "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [format!("arn:aws:s3:::{BUCKET}"), format!("arn:aws:s3:::{BUCKET}/*")],
                    "Condition": { "Bool": { "aws:SecureTransport": "false" } },
                },
                {
                    "Sid": "DenyPutWithoutSseKms",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:PutObject",
                    "Resource": format!("arn:aws:s3:::{BUCKET}/*"),
                    "Condition": { "StringNotEquals": { "s3:x-amz-server-side-encryption": "aws:kms" } },
                },
            ] })
        );
    }

    #[test]
    fn every_example_tenant_is_rendered_for_the_checks() {
        let spec = spec();
        let all = super::super::all_rendered(&spec, ACCOUNT, REGION, ISSUER);
        let names: Vec<&str> = all.iter().map(|(f, _)| f.as_str()).collect();
        assert!(!spec.tenants.is_empty());
        for tenant in &spec.tenants {
            for file in [
                format!("key.tenant.{}.json", tenant.name),
                format!("trust.tenant.{}.json", tenant.name),
                format!("policy.tenant.{}.{TENANT_POLICY_NAME}.json", tenant.name),
            ] {
                assert!(names.contains(&file.as_str()), "{file} missing: {names:?}");
            }
        }
        assert!(names.contains(&"bucket.tenant-data.json"));
    }
}

#[cfg(test)]
mod repository_tests {
    use super::*;
    use crate::spec::RepositorySpec;

    const ACCOUNT: &str = "111122223333";
    const REGION: &str = "eu-west-1";

    fn with_repository(name: &str) -> TenantSpec {
        let text = include_str!("../../../examples/platform.json");
        let spec = crate::validate::parse_platform(text).expect("example spec is valid");
        let mut t = spec.tenants[0].clone();
        t.name = name.to_owned();
        t.repositories = vec![RepositorySpec {
            name: "api".into(),
            mutable_tags: false,
            keep_images: 30,
        }];
        t
    }

    /// A tenant's policy reaches its own repositories, and not those of a tenant whose name its
    /// own is a prefix of (or the other way), nor the platform's, nor another platform's.
    #[test]
    fn a_tenant_pushes_to_its_own_repositories_only() {
        let text = include_str!("../../../examples/platform.json");
        let spec = crate::validate::parse_platform(text).expect("example spec is valid");
        let t = Target::new(&spec, ACCOUNT, REGION);
        let arn = |path: &str| format!("arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{path}");
        for (own, other) in [("team", "team-admin"), ("team-admin", "team")] {
            let tenant = with_repository(own);
            let doc = tenant_role_policy(&t, "bucket", &tenant, "arn:aws:kms:k");
            let statements = doc["Statement"].as_array().expect("statements");
            let repos = statements
                .iter()
                .find(|s| s["Sid"] == "OwnRepositories")
                .expect("a statement for its repositories");
            let resource = repos["Resource"].as_str().expect("one resource");
            assert!(iam_matches(
                resource,
                &arn(&t.names.tenant_repository(own, "api"))
            ));
            for foreign in [
                t.names.tenant_repository(other, "api"),
                t.names.repository("api"),
                format!("tenantry/payments-dev/{own}/api"),
            ] {
                assert!(!iam_matches(resource, &arn(&foreign)), "{own}: {foreign}");
            }
            let login = statements
                .iter()
                .find(|s| s["Sid"] == "RegistryLogin")
                .expect("login");
            assert_eq!(login["Action"], "ecr:GetAuthorizationToken");
        }
        let none = TenantSpec {
            repositories: Vec::new(),
            ..with_repository("team")
        };
        let doc = tenant_role_policy(&t, "bucket", &none, "arn:aws:kms:k");
        assert!(!doc.to_string().contains("ecr:"), "no repository, no ECR");
    }
}
