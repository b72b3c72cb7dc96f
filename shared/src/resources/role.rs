//! `iam:role`: an IAM role Tenantry creates: the platform's cluster, node, flow-log and Fargate
//! pod roles and each controller's workload role (the identity phase), and each tenant's role
//! (the tenants phase). Every one lives under [`crate::policies::ROLE_PATH`] with the permissions
//! boundary the deployment names.
//!
//! - **Found by** its deterministic name ([`find`]: `GetRole`, then its attached and inline
//!   policies; or [`find_all`]: every role of the account in one paged
//!   `GetAccountAuthorizationDetails`, for observing every tenant at once). A role of the name
//!   not tagged with the platform is refused ([`check_owner`]).
//! - **Desired** ([`Desired`]): trust policy, managed policy ARNs, inline policies by name,
//!   Tenantry's tags; the boundary comes from the deployment.
//! - **Owned fields**: `permissionsBoundary` (put when missing or another; never taken off),
//!   `assumeRolePolicy`, Tenantry's tags ([`Desired::differences`]); and each managed policy
//!   (`managedPolicies`) and inline policy (`inlinePolicy/<name>`), which the walk names one by
//!   one. Left to others: other tags, the description, the session duration.
//! - **Create, update, delete** ([`create`]: with its path, boundary, trust and tags in one
//!   call; [`repair`], [`attach`], [`detach`], [`put_inline`], [`delete_inline`]; [`remove`]:
//!   policies and instance profiles first, then the role; "no such entity" is success at each
//!   step).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_iam::types::Tag;
use serde_json::{json, Value};

use super::{missing_tags, Difference, Differences};
use crate::error::{ErrorType, FunctionError};
use crate::naming::TAG_PLATFORM;
use crate::phases::aws_error;
use crate::policies;

/// A role as it should be.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub purpose: String,
    pub name: String,
    pub description: String,
    pub trust: Value,
    /// Managed policy ARNs.
    pub managed: BTreeSet<String>,
    /// Inline policies by name.
    pub inline: BTreeMap<String, Value>,
    /// Tags set at creation and kept (never removes foreign tags).
    pub tags: BTreeMap<String, String>,
}

/// A role as Tenantry compares it: what `GetRole`, `ListAttachedRolePolicies`,
/// `ListRolePolicies` and `GetRolePolicy` return, or one entry of
/// `GetAccountAuthorizationDetails` (which returns all of it for every role at once).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Live {
    pub name: String,
    pub arn: String,
    /// The trust policy, parsed (`Null` when absent or not JSON).
    pub trust: Value,
    pub boundary: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub attached: BTreeSet<String>,
    /// Inline policies by name, parsed.
    pub inline: BTreeMap<String, Value>,
}

impl Desired {
    /// The role's own fields of `live` that differ from this; `boundary`: the one the deployment
    /// names (none: not compared). Its policies are compared one by one by the walk.
    pub fn differences(&self, live: &Live, boundary: Option<&str>) -> Vec<Difference> {
        let mut d = Differences::default();
        if let Some(want) = boundary {
            let same = live.boundary.as_deref() == Some(want);
            d.check(
                "permissionsBoundary",
                json!(want),
                json!(live.boundary),
                same,
            );
        }
        let same = policies::same_policy(&self.trust, &live.trust);
        d.check(
            "assumeRolePolicy",
            self.trust.clone(),
            live.trust.clone(),
            same,
        );
        d.tags(&self.tags, &live.tags);
        d.0
    }
}

impl Live {
    /// The view of one role of `GetAccountAuthorizationDetails`.
    pub fn from_detail(d: &aws_sdk_iam::types::RoleDetail) -> Live {
        Live {
            name: d.role_name().unwrap_or_default().to_owned(),
            arn: d.arn().unwrap_or_default().to_owned(),
            trust: parsed(d.assume_role_policy_document()),
            boundary: d
                .permissions_boundary()
                .and_then(|b| b.permissions_boundary_arn())
                .map(str::to_owned),
            tags: tag_map(d.tags()),
            attached: d
                .attached_managed_policies()
                .iter()
                .filter_map(|p| p.policy_arn())
                .map(str::to_owned)
                .collect(),
            inline: d
                .role_policy_list()
                .iter()
                .filter_map(|p| {
                    let doc = p.policy_document().and_then(policies::parse_returned)?;
                    Some((p.policy_name()?.to_owned(), doc))
                })
                .collect(),
        }
    }
}

fn parsed(document: Option<&str>) -> Value {
    document
        .and_then(policies::parse_returned)
        .unwrap_or(Value::Null)
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

/// Whether IAM answered "no such entity".
pub(super) fn is_not_found<E, R>(e: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    e.as_service_error()
        .is_some_and(|s| s.code() == Some("NoSuchEntity"))
}

/// Refuses a role of one of the platform's names that the platform did not create.
pub fn check_owner(live: &Live, platform: &str) -> Result<(), FunctionError> {
    let owner = live.tags.get(TAG_PLATFORM).map(String::as_str);
    if owner == Some(platform) {
        return Ok(());
    }
    Err(FunctionError::new(
        ErrorType::Terminal,
        format!(
            "IAM role {} exists but is not tagged {TAG_PLATFORM}={platform} (owner: {owner:?}); \
             refusing to adopt or delete it",
            live.name
        ),
    ))
}

/// The role `name` without its policies (one `GetRole`); `None` when it does not exist.
pub async fn get(iam: &aws_sdk_iam::Client, name: &str) -> Result<Option<Live>, FunctionError> {
    let role = match iam.get_role().role_name(name).send().await {
        Ok(out) => out.role,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(aws_error("iam:GetRole", e)),
    };
    Ok(role.map(|role| Live {
        name: role.role_name().to_owned(),
        arn: role.arn().to_owned(),
        trust: parsed(role.assume_role_policy_document()),
        boundary: role
            .permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn())
            .map(str::to_owned),
        tags: tag_map(role.tags()),
        ..Live::default()
    }))
}

/// The role `name` with its policies; `None` when it does not exist.
pub async fn find(iam: &aws_sdk_iam::Client, name: &str) -> Result<Option<Live>, FunctionError> {
    let Some(mut live) = get(iam, name).await? else {
        return Ok(None);
    };
    live.attached = attached_policies(iam, name).await?;
    for policy_name in inline_policy_names(iam, name).await? {
        let out = iam
            .get_role_policy()
            .role_name(name)
            .policy_name(&policy_name)
            .send()
            .await
            .map_err(|e| aws_error("iam:GetRolePolicy", e))?;
        let doc = policies::parse_returned(&out.policy_document).unwrap_or(Value::Null);
        live.inline.insert(policy_name, doc);
    }
    Ok(Some(live))
}

/// Every role of the account with its policies and tags, by name:
/// `GetAccountAuthorizationDetails` (filter `Role`), paged. One call per thousand roles instead
/// of five per role, for observing many roles at once.
pub async fn find_all(iam: &aws_sdk_iam::Client) -> Result<BTreeMap<String, Live>, FunctionError> {
    let mut pages = iam
        .get_account_authorization_details()
        .filter(aws_sdk_iam::types::EntityType::Role)
        .max_items(1000)
        .into_paginator()
        .send();
    let mut out = BTreeMap::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error("iam:GetAccountAuthorizationDetails", e))?;
        for d in page.role_detail_list() {
            let live = Live::from_detail(d);
            out.insert(live.name.clone(), live);
        }
    }
    Ok(out)
}

/// The ARNs of the managed policies attached to the role (none when it is gone).
async fn attached_policies(
    iam: &aws_sdk_iam::Client,
    name: &str,
) -> Result<BTreeSet<String>, FunctionError> {
    let mut pages = iam
        .list_attached_role_policies()
        .role_name(name)
        .into_paginator()
        .items()
        .send();
    let mut out = BTreeSet::new();
    while let Some(item) = pages.next().await {
        match item {
            Ok(p) => out.extend(p.policy_arn),
            Err(e) if is_not_found(&e) => return Ok(BTreeSet::new()),
            Err(e) => return Err(aws_error("iam:ListAttachedRolePolicies", e)),
        }
    }
    Ok(out)
}

/// The names of the role's inline policies (none when it is gone).
async fn inline_policy_names(
    iam: &aws_sdk_iam::Client,
    name: &str,
) -> Result<BTreeSet<String>, FunctionError> {
    let mut pages = iam
        .list_role_policies()
        .role_name(name)
        .into_paginator()
        .items()
        .send();
    let mut out = BTreeSet::new();
    while let Some(item) = pages.next().await {
        match item {
            Ok(p) => {
                out.insert(p);
            }
            Err(e) if is_not_found(&e) => return Ok(BTreeSet::new()),
            Err(e) => return Err(aws_error("iam:ListRolePolicies", e)),
        }
    }
    Ok(out)
}

/// Creates the role under the path with `boundary`, its trust and tags (no policy yet); its ARN.
pub async fn create(
    iam: &aws_sdk_iam::Client,
    desired: &Desired,
    boundary: Option<&str>,
) -> Result<String, FunctionError> {
    let out = iam
        .create_role()
        .role_name(&desired.name)
        .path(policies::ROLE_PATH)
        .set_permissions_boundary(boundary.map(str::to_owned))
        .description(&desired.description)
        .assume_role_policy_document(desired.trust.to_string())
        .set_tags(Some(iam_tags(&desired.tags)?))
        .send()
        .await
        .map_err(|e| aws_error("iam:CreateRole", e))?;
    Ok(out.role.map(|r| r.arn).unwrap_or_default())
}

/// Puts one of the role's own fields back (a field of [`Desired::differences`]).
pub async fn repair(
    iam: &aws_sdk_iam::Client,
    desired: &Desired,
    live: &Live,
    field: &str,
    boundary: Option<&str>,
) -> Result<(), FunctionError> {
    let name = &desired.name;
    match field {
        "permissionsBoundary" => {
            let Some(boundary) = boundary else {
                return Ok(());
            };
            iam.put_role_permissions_boundary()
                .role_name(name)
                .permissions_boundary(boundary)
                .send()
                .await
                .map(drop)
                .map_err(|e| aws_error("iam:PutRolePermissionsBoundary", e))
        }
        "assumeRolePolicy" => iam
            .update_assume_role_policy()
            .role_name(name)
            .policy_document(desired.trust.to_string())
            .send()
            .await
            .map(drop)
            .map_err(|e| aws_error("iam:UpdateAssumeRolePolicy", e)),
        _ => {
            let missing = missing_tags(&desired.tags, &live.tags);
            iam.tag_role()
                .role_name(name)
                .set_tags(Some(iam_tags(&missing)?))
                .send()
                .await
                .map(drop)
                .map_err(|e| aws_error("iam:TagRole", e))
        }
    }
}

/// Attaches the managed policy `arn` to the role.
pub async fn attach(iam: &aws_sdk_iam::Client, name: &str, arn: &str) -> Result<(), FunctionError> {
    iam.attach_role_policy()
        .role_name(name)
        .policy_arn(arn)
        .send()
        .await
        .map_err(|e| aws_error("iam:AttachRolePolicy", e))?;
    Ok(())
}

/// Detaches the managed policy `arn`; one already detached counts as detached.
pub async fn detach(iam: &aws_sdk_iam::Client, name: &str, arn: &str) -> Result<(), FunctionError> {
    match iam
        .detach_role_policy()
        .role_name(name)
        .policy_arn(arn)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(aws_error("iam:DetachRolePolicy", e)),
    }
}

/// Puts the inline policy `policy` as `document`.
pub async fn put_inline(
    iam: &aws_sdk_iam::Client,
    name: &str,
    policy: &str,
    document: &Value,
) -> Result<(), FunctionError> {
    iam.put_role_policy()
        .role_name(name)
        .policy_name(policy)
        .policy_document(document.to_string())
        .send()
        .await
        .map_err(|e| aws_error("iam:PutRolePolicy", e))?;
    Ok(())
}

/// Deletes the inline policy `policy`; one already gone counts as deleted.
pub async fn delete_inline(
    iam: &aws_sdk_iam::Client,
    name: &str,
    policy: &str,
) -> Result<(), FunctionError> {
    match iam
        .delete_role_policy()
        .role_name(name)
        .policy_name(policy)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(aws_error("iam:DeleteRolePolicy", e)),
    }
}

/// Deletes the role with everything attached to it: managed policies detached, inline policies
/// deleted, taken out of its instance profiles; a role already gone counts as deleted.
pub async fn remove(iam: &aws_sdk_iam::Client, name: &str) -> Result<(), FunctionError> {
    for arn in attached_policies(iam, name).await? {
        detach(iam, name, &arn).await?;
    }
    for policy in inline_policy_names(iam, name).await? {
        delete_inline(iam, name, &policy).await?;
    }
    remove_instance_profiles(iam, name).await?;
    match iam.delete_role().role_name(name).send().await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(aws_error("iam:DeleteRole", e)),
    }
}

/// Takes the role out of any instance profile; a profile named like the role is deleted too.
async fn remove_instance_profiles(
    iam: &aws_sdk_iam::Client,
    name: &str,
) -> Result<(), FunctionError> {
    let mut pages = iam
        .list_instance_profiles_for_role()
        .role_name(name)
        .into_paginator()
        .items()
        .send();
    let mut profiles = Vec::new();
    while let Some(item) = pages.next().await {
        match item {
            Ok(p) => profiles.push(p.instance_profile_name),
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(aws_error("iam:ListInstanceProfilesForRole", e)),
        }
    }
    for profile in profiles {
        match iam
            .remove_role_from_instance_profile()
            .instance_profile_name(&profile)
            .role_name(name)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(aws_error("iam:RemoveRoleFromInstanceProfile", e)),
        }
        if profile == name {
            match iam
                .delete_instance_profile()
                .instance_profile_name(&profile)
                .send()
                .await
            {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(aws_error("iam:DeleteInstanceProfile", e)),
            }
        }
    }
    Ok(())
}

/// IAM tags from a map.
pub(super) fn iam_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, FunctionError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder().key(k).value(v).build().map_err(|e| {
                FunctionError::new(ErrorType::Terminal, format!("building IAM tag {k}: {e}"))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDARY: &str = "arn:aws:iam::111122223333:policy/tenantry/TenantryRoleBoundary";

    fn desired() -> Desired {
        Desired {
            purpose: "node".to_owned(),
            name: "tenantry-payments-prod-node".to_owned(),
            description: "Tenantry payments-prod: node role".to_owned(),
            trust: policies::node_trust(),
            managed: BTreeSet::new(),
            inline: BTreeMap::new(),
            tags: BTreeMap::from([(TAG_PLATFORM.to_owned(), "payments".to_owned())]),
        }
    }

    fn as_built(d: &Desired) -> Live {
        Live {
            name: d.name.clone(),
            arn: format!("arn:aws:iam::111122223333:role/tenantry/{}", d.name),
            // As IAM returns it: URL-encoded JSON.
            trust: parsed(Some(&urlencoding(&d.trust.to_string()))),
            boundary: Some(BOUNDARY.to_owned()),
            tags: d.tags.clone(),
            ..Live::default()
        }
    }

    fn urlencoding(s: &str) -> String {
        s.replace('{', "%7B")
            .replace('}', "%7D")
            .replace('"', "%22")
    }

    fn fields(d: &Desired, live: &Live, boundary: Option<&str>) -> Vec<&'static str> {
        d.differences(live, boundary)
            .iter()
            .map(|x| x.field)
            .collect()
    }

    #[test]
    fn a_role_as_built_has_no_difference_and_a_boundary_is_never_asked_off() {
        let d = desired();
        let mut live = as_built(&d);
        live.tags.insert("team".to_owned(), "sre".to_owned());
        assert_eq!(fields(&d, &live, Some(BOUNDARY)), Vec::<&str>::new());
        // No boundary configured: the role's is not compared, so never taken off.
        live.boundary = Some("arn:aws:iam::111122223333:policy/other".to_owned());
        assert_eq!(fields(&d, &live, None), Vec::<&str>::new());
    }

    #[test]
    fn a_widened_trust_a_lost_boundary_and_a_lost_tag_are_each_named() {
        let d = desired();
        let mut live = as_built(&d);
        live.boundary = None;
        live.trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]});
        live.tags.clear();
        assert_eq!(
            fields(&d, &live, Some(BOUNDARY)),
            ["permissionsBoundary", "assumeRolePolicy", "tags"]
        );
    }

    #[test]
    fn only_the_platforms_role_is_adopted() {
        let d = desired();
        let mut live = as_built(&d);
        assert!(check_owner(&live, "payments").is_ok());
        let err = check_owner(&live, "cards").unwrap_err();
        assert!(err.error_message.contains(&d.name), "{}", err.error_message);
        live.tags.clear();
        assert!(check_owner(&live, "payments").is_err());
    }
}
