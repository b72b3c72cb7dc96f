//! EKS access entries (with their associated access policies) and OIDC identity provider
//! configs of one cluster, as the access phase reads and writes them. A config associates as a
//! cluster update: `CREATING` until [`AccessDouble::settle`], and `DELETING` until then when
//! disassociated.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aws_sdk_eks::operation::associate_identity_provider_config::AssociateIdentityProviderConfigError;
use aws_sdk_eks::operation::create_access_entry::CreateAccessEntryError;
use aws_sdk_eks::operation::delete_access_entry::DeleteAccessEntryError;
use aws_sdk_eks::operation::describe_access_entry::DescribeAccessEntryError;
use aws_sdk_eks::operation::describe_identity_provider_config::DescribeIdentityProviderConfigError;
use aws_sdk_eks::operation::disassociate_access_policy::DisassociateAccessPolicyError;
use aws_sdk_eks::operation::disassociate_identity_provider_config::DisassociateIdentityProviderConfigError;
use aws_sdk_eks::operation::update_access_entry::UpdateAccessEntryError;
use aws_sdk_eks::types::error::{ResourceInUseException, ResourceNotFoundException};
use aws_sdk_eks::types::{
    AccessEntry, AccessScope, AssociatedAccessPolicy, ConfigStatus, IdentityProviderConfig,
    IdentityProviderConfigResponse, OidcIdentityProviderConfig,
};
use aws_sdk_eks::Client;
use aws_smithy_mocks::{MockResponse as R, Rule};

use super::{answer, Calls};

/// One access entry: its tags, its associated policies (policy ARN → scope) and its
/// Kubernetes groups.
#[derive(Clone, Debug, Default)]
pub struct Entry {
    pub tags: HashMap<String, String>,
    pub policies: BTreeMap<String, AccessScope>,
    pub groups: Vec<String>,
}

#[derive(Clone, Default)]
pub struct AccessDouble {
    entries: Arc<Mutex<BTreeMap<String, Entry>>>,
    providers: Arc<Mutex<BTreeMap<String, OidcIdentityProviderConfig>>>,
    calls: Calls,
}

fn not_found(what: &str) -> ResourceNotFoundException {
    ResourceNotFoundException::builder()
        .message(format!("{what} not found"))
        .build()
}

impl AccessDouble {
    pub fn new(calls: &Calls) -> Self {
        AccessDouble {
            calls: calls.clone(),
            ..Default::default()
        }
    }

    pub fn entries(&self) -> BTreeMap<String, Entry> {
        self.entries.lock().expect("entries").clone()
    }

    /// Changes (or adds) an entry out of band.
    pub fn edit_entry(&self, principal: &str, change: impl FnOnce(&mut Entry)) {
        change(
            self.entries
                .lock()
                .expect("entries")
                .entry(principal.to_owned())
                .or_default(),
        );
    }

    pub fn providers(&self) -> BTreeMap<String, OidcIdentityProviderConfig> {
        self.providers.lock().expect("providers").clone()
    }

    /// Changes a provider config out of band.
    pub fn edit_provider(&self, name: &str, change: impl FnOnce(&mut OidcIdentityProviderConfig)) {
        change(
            self.providers
                .lock()
                .expect("providers")
                .get_mut(name)
                .expect("provider"),
        );
    }

    /// Time passes: associations finish, disassociated configs go.
    pub fn settle(&self) {
        let mut providers = self.providers.lock().expect("providers");
        providers.retain(|_, p| p.status() != Some(&ConfigStatus::Deleting));
        for p in providers.values_mut() {
            p.status = Some(ConfigStatus::Active);
        }
    }

    pub fn rules(&self) -> Vec<Rule> {
        use aws_sdk_eks::operation::*;
        vec![
            answer!(
                self,
                Client::list_access_entries,
                "eks:ListAccessEntries",
                |me, _req| {
                    R::Output(
                        list_access_entries::ListAccessEntriesOutput::builder()
                            .set_access_entries(Some(me.entries().into_keys().collect()))
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::describe_access_entry,
                "eks:DescribeAccessEntry",
                |me, req| {
                    let principal = req.principal_arn().unwrap_or_default();
                    match me.entries().get(principal) {
                        Some(e) => R::Output(
                            describe_access_entry::DescribeAccessEntryOutput::builder()
                                .access_entry(
                                    AccessEntry::builder()
                                        .principal_arn(principal)
                                        .set_tags(Some(e.tags.clone()))
                                        .set_kubernetes_groups(Some(e.groups.clone()))
                                        .build(),
                                )
                                .build(),
                        ),
                        None => R::Error(DescribeAccessEntryError::ResourceNotFoundException(
                            not_found(principal),
                        )),
                    }
                }
            ),
            answer!(
                self,
                Client::create_access_entry,
                "eks:CreateAccessEntry",
                |me, req| {
                    let principal = req.principal_arn().unwrap_or_default().to_owned();
                    let mut entries = me.entries.lock().expect("entries");
                    if entries.contains_key(&principal) {
                        return R::Error(CreateAccessEntryError::ResourceInUseException(
                        ResourceInUseException::builder()
                            .message("The specified access entry resource is already in use on this cluster.")
                            .build(),
                    ));
                    }
                    entries.insert(
                        principal.clone(),
                        Entry {
                            tags: req.tags().cloned().unwrap_or_default(),
                            policies: BTreeMap::new(),
                            groups: req.kubernetes_groups().to_vec(),
                        },
                    );
                    R::Output(
                        create_access_entry::CreateAccessEntryOutput::builder()
                            .access_entry(AccessEntry::builder().principal_arn(principal).build())
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::update_access_entry,
                "eks:UpdateAccessEntry",
                |me, req| {
                    let principal = req.principal_arn().unwrap_or_default();
                    match me.entries.lock().expect("entries").get_mut(principal) {
                        Some(e) => {
                            e.groups = req.kubernetes_groups().to_vec();
                            R::Output(
                                update_access_entry::UpdateAccessEntryOutput::builder().build(),
                            )
                        }
                        None => R::Error(UpdateAccessEntryError::ResourceNotFoundException(
                            not_found(principal),
                        )),
                    }
                }
            ),
            answer!(
                self,
                Client::delete_access_entry,
                "eks:DeleteAccessEntry",
                |me, req| {
                    let principal = req.principal_arn().unwrap_or_default();
                    match me.entries.lock().expect("entries").remove(principal) {
                        Some(_) => R::Output(
                            delete_access_entry::DeleteAccessEntryOutput::builder().build(),
                        ),
                        None => R::Error(DeleteAccessEntryError::ResourceNotFoundException(
                            not_found(principal),
                        )),
                    }
                }
            ),
            answer!(
                self,
                Client::list_associated_access_policies,
                "eks:ListAssociatedAccessPolicies",
                |me, req| {
                    let principal = req.principal_arn().unwrap_or_default();
                    let policies = me
                        .entries()
                        .get(principal)
                        .map(|e| {
                            e.policies
                                .iter()
                                .map(|(arn, scope)| {
                                    AssociatedAccessPolicy::builder()
                                        .policy_arn(arn)
                                        .access_scope(scope.clone())
                                        .build()
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    R::Output(
                        list_associated_access_policies::ListAssociatedAccessPoliciesOutput::builder()
                            .principal_arn(principal)
                            .set_associated_access_policies(Some(policies))
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::associate_access_policy,
                "eks:AssociateAccessPolicy",
                |me, req| {
                    let principal = req.principal_arn().unwrap_or_default();
                    me.edit_entry(principal, |e| {
                        e.policies.insert(
                            req.policy_arn().unwrap_or_default().to_owned(),
                            req.access_scope().cloned().expect("a scope"),
                        );
                    });
                    R::Output(
                        associate_access_policy::AssociateAccessPolicyOutput::builder()
                            .principal_arn(principal)
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::disassociate_access_policy,
                "eks:DisassociateAccessPolicy",
                |me, req| {
                    let principal = req.principal_arn().unwrap_or_default();
                    let policy = req.policy_arn().unwrap_or_default();
                    let removed = me
                        .entries
                        .lock()
                        .expect("entries")
                        .get_mut(principal)
                        .and_then(|e| e.policies.remove(policy));
                    match removed {
                        Some(_) => R::Output(
                            disassociate_access_policy::DisassociateAccessPolicyOutput::builder()
                                .build(),
                        ),
                        None => R::Error(DisassociateAccessPolicyError::ResourceNotFoundException(
                            not_found(policy),
                        )),
                    }
                }
            ),
            answer!(
                self,
                Client::list_identity_provider_configs,
                "eks:ListIdentityProviderConfigs",
                |me, _req| {
                    let configs = me
                        .providers()
                        .into_keys()
                        .map(|name| {
                            IdentityProviderConfig::builder()
                                .r#type("oidc")
                                .name(name)
                                .build()
                                .expect("type and name")
                        })
                        .collect();
                    R::Output(
                        list_identity_provider_configs::ListIdentityProviderConfigsOutput::builder(
                        )
                        .set_identity_provider_configs(Some(configs))
                        .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::describe_identity_provider_config,
                "eks:DescribeIdentityProviderConfig",
                |me, req| {
                    let name = req
                        .identity_provider_config()
                        .map(|c| c.name().to_owned())
                        .unwrap_or_default();
                    match me.providers().get(&name) {
                        Some(c) => R::Output(
                            describe_identity_provider_config::DescribeIdentityProviderConfigOutput::builder()
                                .identity_provider_config(
                                    IdentityProviderConfigResponse::builder().oidc(c.clone()).build(),
                                )
                                .build(),
                        ),
                        None => R::Error(
                            DescribeIdentityProviderConfigError::ResourceNotFoundException(
                                not_found(&name),
                            ),
                        ),
                    }
                }
            ),
            answer!(
                self,
                Client::associate_identity_provider_config,
                "eks:AssociateIdentityProviderConfig",
                |me, req| {
                    let oidc = req.oidc().expect("an OIDC config");
                    let name = oidc.identity_provider_config_name().to_owned();
                    let mut providers = me.providers.lock().expect("providers");
                    if providers.contains_key(&name) {
                        return R::Error(
                            AssociateIdentityProviderConfigError::ResourceInUseException(
                                ResourceInUseException::builder()
                                    .message("already associated")
                                    .build(),
                            ),
                        );
                    }
                    providers.insert(
                        name.clone(),
                        OidcIdentityProviderConfig::builder()
                            .identity_provider_config_name(&name)
                            .issuer_url(oidc.issuer_url())
                            .client_id(oidc.client_id())
                            .set_username_claim(oidc.username_claim().map(str::to_owned))
                            .set_groups_claim(oidc.groups_claim().map(str::to_owned))
                            .set_groups_prefix(oidc.groups_prefix().map(str::to_owned))
                            .set_tags(req.tags().cloned())
                            .status(ConfigStatus::Creating)
                            .build(),
                    );
                    R::Output(
                        associate_identity_provider_config::AssociateIdentityProviderConfigOutput::builder()
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::disassociate_identity_provider_config,
                "eks:DisassociateIdentityProviderConfig",
                |me, req| {
                    let name = req
                        .identity_provider_config()
                        .map(|c| c.name().to_owned())
                        .unwrap_or_default();
                    let mut providers = me.providers.lock().expect("providers");
                    match providers.get_mut(&name) {
                        Some(p) => {
                            p.status = Some(ConfigStatus::Deleting);
                            R::Output(
                                disassociate_identity_provider_config::DisassociateIdentityProviderConfigOutput::builder()
                                    .build(),
                            )
                        }
                        None => R::Error(
                            DisassociateIdentityProviderConfigError::ResourceNotFoundException(
                                not_found(&name),
                            ),
                        ),
                    }
                }
            ),
        ]
    }
}
