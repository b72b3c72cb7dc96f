//! `eks:identity-provider-config`: the cluster's OIDC identity provider config (an Azure AD or
//! Okta issuer, say), through which people sign in to the cluster with their own identity.
//!
//! - **Found by** its name on the cluster ([`names`], [`describe`]); the platform's configs are
//!   told by their tags.
//! - **Desired** ([`Desired`], from `spec.access.oidcIdentityProvider`): issuer URL, client id,
//!   username and groups claims, groups prefix, and Tenantry's tags.
//! - **Owned fields** ([`Desired::differences`]): `oidc`, the five fields above together: EKS
//!   cannot change a config in place, so one that differs is disassociated and associated again.
//!   Left to others: required claims, the username prefix.
//! - **Create, delete** ([`associate`], [`disassociate`]). Both are cluster updates that take
//!   minutes on AWS (the config is `CREATING` or `DELETING` meanwhile), and EKS refuses a second
//!   update while one runs: that refusal, and a config already gone or already associated,
//!   count as "try again on the next poll", not as errors.

use std::collections::HashMap;

use aws_sdk_eks::types::{
    ConfigStatus, IdentityProviderConfig, OidcIdentityProviderConfig,
    OidcIdentityProviderConfigRequest,
};
use serde_json::{json, Value};

use super::{Difference, Differences};
use crate::error::{ErrorType, FunctionError};
use crate::phases::aws_error;
use crate::spec::OidcIdentityProvider;

/// The identity provider type EKS supports.
const OIDC: &str = "oidc";

/// The config to have.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub provider: OidcIdentityProvider,
    pub tags: HashMap<String, String>,
}

/// A live config: what Tenantry owns of it, its state and its tags.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    /// The owned fields, as [`fields`] shapes them.
    pub oidc: Value,
    pub status: Option<ConfigStatus>,
    pub tags: HashMap<String, String>,
}

/// The owned fields of a config, as compared and reported.
pub fn fields(
    issuer_url: Option<&str>,
    client_id: Option<&str>,
    username_claim: Option<&str>,
    groups_claim: Option<&str>,
    groups_prefix: Option<&str>,
) -> Value {
    json!({ "issuerUrl": issuer_url, "clientId": client_id, "usernameClaim": username_claim,
            "groupsClaim": groups_claim, "groupsPrefix": groups_prefix })
}

impl Desired {
    /// The owned fields, as the spec asks for them.
    pub fn oidc(&self) -> Value {
        let p = &self.provider;
        fields(
            Some(&p.issuer_url),
            Some(&p.client_id),
            Some(&p.username_claim),
            Some(&p.groups_claim),
            Some(&p.groups_prefix),
        )
    }

    /// The owned fields of `live` that differ from this.
    pub fn differences(&self, live: &Live) -> Vec<Difference> {
        let mut d = Differences::default();
        let want = self.oidc();
        let same = live.oidc == want;
        d.check("oidc", want, live.oidc.clone(), same);
        d.0
    }
}

fn live(c: &OidcIdentityProviderConfig) -> Live {
    Live {
        oidc: fields(
            c.issuer_url(),
            c.client_id(),
            c.username_claim(),
            c.groups_claim(),
            c.groups_prefix(),
        ),
        status: c.status().cloned(),
        tags: c.tags().cloned().unwrap_or_default(),
    }
}

fn reference(name: &str) -> Result<IdentityProviderConfig, FunctionError> {
    IdentityProviderConfig::builder()
        .r#type(OIDC)
        .name(name)
        .build()
        .map_err(|e| FunctionError::new(ErrorType::Terminal, e.to_string()))
}

/// The names of the cluster's OIDC configs (none when the cluster does not exist).
pub async fn names(eks: &aws_sdk_eks::Client, cluster: &str) -> Result<Vec<String>, FunctionError> {
    let pages = eks
        .list_identity_provider_configs()
        .cluster_name(cluster)
        .into_paginator()
        .items()
        .send();
    let configs = super::cluster_listing(pages, "eks:ListIdentityProviderConfigs", |e| {
        e.is_resource_not_found_exception()
    })
    .await?;
    Ok(configs
        .iter()
        .filter(|c| c.r#type() == OIDC)
        .map(|c| c.name().to_owned())
        .collect())
}

/// The config named `name`; `None` when it does not exist.
pub async fn describe(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    name: &str,
) -> Result<Option<Live>, FunctionError> {
    match eks
        .describe_identity_provider_config()
        .cluster_name(cluster)
        .identity_provider_config(reference(name)?)
        .send()
        .await
    {
        Ok(out) => Ok(out
            .identity_provider_config
            .and_then(|c| c.oidc)
            .as_ref()
            .map(live)),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error("eks:DescribeIdentityProviderConfig", e)),
    }
}

/// Starts associating the config (idempotent through its client token).
pub async fn associate(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    desired: &Desired,
) -> Result<(), FunctionError> {
    let p = &desired.provider;
    let oidc = OidcIdentityProviderConfigRequest::builder()
        .identity_provider_config_name(&p.name)
        .issuer_url(&p.issuer_url)
        .client_id(&p.client_id)
        .username_claim(&p.username_claim)
        .groups_claim(&p.groups_claim)
        .groups_prefix(&p.groups_prefix)
        .build()
        .map_err(|e| FunctionError::new(ErrorType::Terminal, e.to_string()))?;
    let result = eks
        .associate_identity_provider_config()
        .cluster_name(cluster)
        .oidc(oidc)
        .set_tags(Some(desired.tags.clone()))
        .client_request_token(format!("tenantry-{cluster}-{}", p.name))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        // Already associated (a retried call), or the cluster is busy with another update.
        Err(e)
            if e.as_service_error().is_some_and(|e| {
                e.is_resource_in_use_exception() || e.is_invalid_request_exception()
            }) =>
        {
            Ok(())
        }
        Err(e) => Err(aws_error("eks:AssociateIdentityProviderConfig", e)),
    }
}

/// Starts disassociating the config named `name`; one already gone counts as removed.
pub async fn disassociate(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    name: &str,
) -> Result<(), FunctionError> {
    match eks
        .disassociate_identity_provider_config()
        .cluster_name(cluster)
        .identity_provider_config(reference(name)?)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(())
        }
        // Another cluster update is running: the next poll tries again.
        Err(e)
            if e.as_service_error().is_some_and(|e| {
                e.is_resource_in_use_exception() || e.is_invalid_request_exception()
            }) =>
        {
            Ok(())
        }
        Err(e) => Err(aws_error("eks:DisassociateIdentityProviderConfig", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_tenantry_sets_is_compared() {
        let want = Desired {
            provider: OidcIdentityProvider {
                name: "azure".into(),
                issuer_url: "https://login.microsoftonline.com/t/v2.0".into(),
                client_id: "c".into(),
                username_claim: "email".into(),
                groups_claim: "groups".into(),
                groups_prefix: "oidc:".into(),
                group_mappings: vec![],
            },
            tags: HashMap::new(),
        };
        let have = |prefix: &str| {
            live(
                &OidcIdentityProviderConfig::builder()
                    .issuer_url("https://login.microsoftonline.com/t/v2.0")
                    .client_id("c")
                    .username_claim("email")
                    .groups_claim("groups")
                    .groups_prefix(prefix)
                    .build(),
            )
        };
        assert_eq!(want.differences(&have("oidc:")), []);
        let d = want.differences(&have("aad:"));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].field, "oidc");
        assert_eq!(d[0].actual["groupsPrefix"], "aad:");
        assert_eq!(d[0].desired["groupsPrefix"], "oidc:");
    }
}
