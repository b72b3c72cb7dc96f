//! `iam:oidc-provider`: the IAM OIDC identity provider of the cluster's issuer, which the IRSA
//! roles' trust policies name as their federated principal.
//!
//! - **Found by** its ARN, derived from the account and the issuer's host
//!   (`Target::oidc_provider_arn`; [`find`]: listed, then read). [`find_all`] reads every
//!   provider of the account with its tags, for decommission to pick the platform's.
//! - **Desired** ([`Desired`]): the issuer URL, the audience `sts.amazonaws.com`
//!   ([`crate::policies::IRSA_AUDIENCE`]), and Tenantry's tags.
//! - **Owned fields** ([`Desired::differences`]): `clientIdList` (the audience must be among
//!   them) and the tags Tenantry sets. Left to others: other audiences, other tags, and the
//!   thumbprints, which IAM no longer uses for EKS issuers.
//! - **Create, update, delete** ([`create`]: with its audience, thumbprint and tags in one call;
//!   [`repair`]; [`remove`]: already gone counts as removed).

use std::collections::BTreeMap;

use serde_json::json;

use super::role::{iam_tags, is_not_found};
use super::{missing_tags, Difference, Differences};
use crate::error::FunctionError;
use crate::phases::aws_error;
use crate::policies::IRSA_AUDIENCE;

/// Thumbprint registered with the provider. IAM no longer uses it for EKS issuers (it trusts
/// their certificate authority), but the API still requires one.
pub const THUMBPRINT: &str = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280";

/// The provider to have.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub arn: String,
    /// The cluster's issuer, `https://oidc.eks.<region>.amazonaws.com/id/<id>`.
    pub url: String,
    pub tags: BTreeMap<String, String>,
}

/// What Tenantry owns of a live provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    pub client_ids: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

impl Desired {
    /// The owned fields of `live` that differ from this.
    pub fn differences(&self, live: &Live) -> Vec<Difference> {
        let mut d = Differences::default();
        let same = live.client_ids.iter().any(|id| id == IRSA_AUDIENCE);
        d.check(
            "clientIdList",
            json!([IRSA_AUDIENCE]),
            json!(live.client_ids),
            same,
        );
        d.tags(&self.tags, &live.tags);
        d.0
    }
}

/// The provider at `arn`; `None` when it does not exist.
pub async fn find(iam: &aws_sdk_iam::Client, arn: &str) -> Result<Option<Live>, FunctionError> {
    if !list(iam).await?.iter().any(|a| a == arn) {
        return Ok(None);
    }
    read(iam, arn).await
}

/// Every provider of the account, by ARN, with its tags.
pub async fn find_all(iam: &aws_sdk_iam::Client) -> Result<BTreeMap<String, Live>, FunctionError> {
    let mut out = BTreeMap::new();
    for arn in list(iam).await? {
        if let Some(live) = read(iam, &arn).await? {
            out.insert(arn, live);
        }
    }
    Ok(out)
}

async fn list(iam: &aws_sdk_iam::Client) -> Result<Vec<String>, FunctionError> {
    let out = iam
        .list_open_id_connect_providers()
        .send()
        .await
        .map_err(|e| aws_error("iam:ListOpenIDConnectProviders", e))?;
    Ok(out
        .open_id_connect_provider_list
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| p.arn)
        .collect())
}

async fn read(iam: &aws_sdk_iam::Client, arn: &str) -> Result<Option<Live>, FunctionError> {
    let out = match iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(arn)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(aws_error("iam:GetOpenIDConnectProvider", e)),
    };
    Ok(Some(Live {
        client_ids: out.client_id_list().to_vec(),
        tags: out
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect(),
    }))
}

/// Creates the provider with its audience, thumbprint and tags.
pub async fn create(iam: &aws_sdk_iam::Client, desired: &Desired) -> Result<(), FunctionError> {
    iam.create_open_id_connect_provider()
        .url(&desired.url)
        .client_id_list(IRSA_AUDIENCE)
        .thumbprint_list(THUMBPRINT)
        .set_tags(Some(iam_tags(&desired.tags)?))
        .send()
        .await
        .map_err(|e| aws_error("iam:CreateOpenIDConnectProvider", e))?;
    Ok(())
}

/// Puts one owned field back (a field of [`Desired::differences`]): the audience is added, and
/// so are the missing tags; nothing is removed.
pub async fn repair(
    iam: &aws_sdk_iam::Client,
    desired: &Desired,
    live: &Live,
    field: &str,
) -> Result<(), FunctionError> {
    if field == "clientIdList" {
        iam.add_client_id_to_open_id_connect_provider()
            .open_id_connect_provider_arn(&desired.arn)
            .client_id(IRSA_AUDIENCE)
            .send()
            .await
            .map_err(|e| aws_error("iam:AddClientIDToOpenIDConnectProvider", e))?;
        return Ok(());
    }
    let missing = missing_tags(&desired.tags, &live.tags);
    iam.tag_open_id_connect_provider()
        .open_id_connect_provider_arn(&desired.arn)
        .set_tags(Some(iam_tags(&missing)?))
        .send()
        .await
        .map_err(|e| aws_error("iam:TagOpenIDConnectProvider", e))?;
    Ok(())
}

/// Deletes the provider at `arn`; one already gone counts as deleted.
pub async fn remove(iam: &aws_sdk_iam::Client, arn: &str) -> Result<(), FunctionError> {
    match iam
        .delete_open_id_connect_provider()
        .open_id_connect_provider_arn(arn)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(aws_error("iam:DeleteOpenIDConnectProvider", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired() -> Desired {
        Desired {
            arn: "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/A"
                .to_owned(),
            url: "https://oidc.eks.us-east-1.amazonaws.com/id/A".to_owned(),
            tags: BTreeMap::from([("tenantry:platform".to_owned(), "payments".to_owned())]),
        }
    }

    #[test]
    fn other_audiences_and_tags_are_left_and_a_lost_audience_or_tag_is_named() {
        let d = desired();
        let mut live = Live {
            client_ids: vec!["sts.amazonaws.com".to_owned(), "vault".to_owned()],
            tags: d.tags.clone(),
        };
        live.tags.insert("team".to_owned(), "sre".to_owned());
        assert_eq!(d.differences(&live), []);
        live.client_ids.retain(|id| id == "vault");
        live.tags.remove("tenantry:platform");
        let fields: Vec<&str> = d.differences(&live).iter().map(|x| x.field).collect();
        assert_eq!(fields, ["clientIdList", "tags"]);
    }
}
