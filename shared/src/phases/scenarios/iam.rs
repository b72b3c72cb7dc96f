//! IAM as the phases use it: roles (path, trust, boundary, tags, inline and managed policies) and
//! OIDC providers. Documents are returned percent-encoded, as IAM returns them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use aws_sdk_iam::operation::get_role::GetRoleError;
use aws_sdk_iam::operation::get_role_policy::GetRolePolicyError;
use aws_sdk_iam::types::error::NoSuchEntityException;
use aws_sdk_iam::types::{
    AttachedPermissionsBoundary, AttachedPolicy, OpenIdConnectProviderListEntry, Tag,
};
use aws_sdk_iam::Client;
use aws_smithy_mocks::{MockResponse as R, Rule};

use super::{answer, Calls, ACCOUNT};

/// One role.
#[derive(Clone, Debug, Default)]
pub struct Role {
    pub path: String,
    pub trust: String,
    pub boundary: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub inline: BTreeMap<String, String>,
    pub managed: BTreeSet<String>,
}

/// One OIDC provider.
#[derive(Clone, Debug, Default)]
pub struct Provider {
    pub url: String,
    pub client_ids: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Default)]
struct State {
    roles: BTreeMap<String, Role>,
    providers: BTreeMap<String, Provider>,
}

/// The roles and OIDC providers of one account.
#[derive(Clone, Default)]
pub struct IamDouble {
    state: Arc<Mutex<State>>,
    calls: Calls,
}

fn encoded(document: &str) -> String {
    percent_encoding::utf8_percent_encode(document, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn tags(tags: &[Tag]) -> impl Iterator<Item = (String, String)> + '_ {
    tags.iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
}

fn iam_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build().expect("tag"))
        .collect()
}

/// IAM's not-found error, with the code the phases test for.
fn no_such(what: &str) -> NoSuchEntityException {
    let message = format!("{what} cannot be found");
    NoSuchEntityException::builder()
        .message(&message)
        .meta(
            aws_smithy_types::error::ErrorMetadata::builder()
                .code("NoSuchEntity")
                .message(message)
                .build(),
        )
        .build()
}

impl IamDouble {
    pub fn new(calls: &Calls) -> Self {
        IamDouble {
            calls: calls.clone(),
            ..Default::default()
        }
    }

    pub fn roles(&self) -> BTreeMap<String, Role> {
        self.state.lock().expect("iam").roles.clone()
    }

    pub fn providers(&self) -> BTreeMap<String, Provider> {
        self.state.lock().expect("iam").providers.clone()
    }

    /// Changes an OIDC provider out of band.
    pub fn edit_provider(&self, arn: &str, change: impl FnOnce(&mut Provider)) {
        change(
            self.state
                .lock()
                .expect("iam")
                .providers
                .get_mut(arn)
                .expect("provider"),
        );
    }

    /// Changes a role out of band.
    pub fn edit(&self, name: &str, change: impl FnOnce(&mut Role)) {
        change(
            self.state
                .lock()
                .expect("iam")
                .roles
                .get_mut(name)
                .expect("role"),
        );
    }

    fn role<T>(&self, name: Option<&str>, f: impl FnOnce(&mut Role) -> T) -> T {
        let mut state = self.state.lock().expect("iam");
        f(state
            .roles
            .get_mut(name.unwrap_or_default())
            .expect("a role the scenario knows"))
    }

    fn role_output(name: &str, r: &Role) -> aws_sdk_iam::types::Role {
        aws_sdk_iam::types::Role::builder()
            .path(&r.path)
            .role_name(name)
            .role_id(format!("AROA{}", name.len()))
            .arn(format!("arn:aws:iam::{ACCOUNT}:role{}{name}", r.path))
            .create_date(aws_smithy_types::DateTime::from_secs(1_700_000_000))
            .assume_role_policy_document(encoded(&r.trust))
            .set_permissions_boundary(r.boundary.as_ref().map(|arn| {
                AttachedPermissionsBoundary::builder()
                    .permissions_boundary_arn(arn)
                    .build()
            }))
            .set_tags(Some(iam_tags(&r.tags)))
            .build()
            .expect("role")
    }

    pub fn rules(&self) -> Vec<Rule> {
        let mut rules = self.role_rules();
        rules.extend(self.policy_rules());
        rules.extend(self.provider_rules());
        rules
    }

    fn role_rules(&self) -> Vec<Rule> {
        use aws_sdk_iam::operation::*;
        vec![
            answer!(self, Client::get_role, "iam:GetRole", |me, req| {
                let name = req.role_name().unwrap_or_default();
                match me.roles().get(name) {
                    Some(r) => R::Output(
                        get_role::GetRoleOutput::builder()
                            .role(Self::role_output(name, r))
                            .build(),
                    ),
                    None => R::Error(GetRoleError::NoSuchEntityException(no_such(name))),
                }
            }),
            answer!(self, Client::create_role, "iam:CreateRole", |me, req| {
                let name = req.role_name().unwrap_or_default().to_owned();
                let role = Role {
                    path: req.path().unwrap_or("/").to_owned(),
                    trust: req
                        .assume_role_policy_document()
                        .unwrap_or_default()
                        .to_owned(),
                    boundary: req.permissions_boundary().map(str::to_owned),
                    tags: tags(req.tags()).collect(),
                    ..Role::default()
                };
                let out = Self::role_output(&name, &role);
                me.state.lock().expect("iam").roles.insert(name, role);
                R::Output(create_role::CreateRoleOutput::builder().role(out).build())
            }),
            answer!(
                self,
                Client::update_assume_role_policy,
                "iam:UpdateAssumeRolePolicy",
                |me, req| {
                    let doc = req.policy_document().unwrap_or_default().to_owned();
                    me.role(req.role_name(), |r| r.trust = doc);
                    R::Output(
                        update_assume_role_policy::UpdateAssumeRolePolicyOutput::builder().build(),
                    )
                }
            ),
            answer!(
                self,
                Client::put_role_permissions_boundary,
                "iam:PutRolePermissionsBoundary",
                |me, req| {
                    let arn = req.permissions_boundary().map(str::to_owned);
                    me.role(req.role_name(), |r| r.boundary = arn);
                    R::Output(
                        put_role_permissions_boundary::PutRolePermissionsBoundaryOutput::builder()
                            .build(),
                    )
                }
            ),
            answer!(self, Client::tag_role, "iam:TagRole", |me, req| {
                let new: Vec<_> = tags(req.tags()).collect();
                me.role(req.role_name(), |r| r.tags.extend(new));
                R::Output(tag_role::TagRoleOutput::builder().build())
            }),
            answer!(self, Client::delete_role, "iam:DeleteRole", |me, req| {
                me.state
                    .lock()
                    .expect("iam")
                    .roles
                    .remove(req.role_name().unwrap_or_default());
                R::Output(delete_role::DeleteRoleOutput::builder().build())
            }),
            answer!(
                self,
                Client::list_instance_profiles_for_role,
                "iam:ListInstanceProfilesForRole",
                |_me, _req| {
                    R::Output(
                    list_instance_profiles_for_role::ListInstanceProfilesForRoleOutput::builder()
                        .set_instance_profiles(Some(Vec::new()))
                        .build()
                        .expect("output"),
                )
                }
            ),
        ]
    }

    fn policy_rules(&self) -> Vec<Rule> {
        use aws_sdk_iam::operation::*;
        vec![
            answer!(
                self,
                Client::list_role_policies,
                "iam:ListRolePolicies",
                |me, req| {
                    let names = me.role(req.role_name(), |r| r.inline.keys().cloned().collect());
                    R::Output(
                        list_role_policies::ListRolePoliciesOutput::builder()
                            .set_policy_names(Some(names))
                            .build()
                            .expect("output"),
                    )
                }
            ),
            answer!(
                self,
                Client::get_role_policy,
                "iam:GetRolePolicy",
                |me, req| {
                    let name = req.policy_name().unwrap_or_default().to_owned();
                    match me.role(req.role_name(), |r| r.inline.get(&name).cloned()) {
                        Some(doc) => R::Output(
                            get_role_policy::GetRolePolicyOutput::builder()
                                .role_name(req.role_name().unwrap_or_default())
                                .policy_name(&name)
                                .policy_document(encoded(&doc))
                                .build()
                                .expect("output"),
                        ),
                        None => R::Error(GetRolePolicyError::NoSuchEntityException(no_such(&name))),
                    }
                }
            ),
            answer!(
                self,
                Client::put_role_policy,
                "iam:PutRolePolicy",
                |me, req| {
                    let name = req.policy_name().unwrap_or_default().to_owned();
                    let doc = req.policy_document().unwrap_or_default().to_owned();
                    me.role(req.role_name(), |r| r.inline.insert(name, doc));
                    R::Output(put_role_policy::PutRolePolicyOutput::builder().build())
                }
            ),
            answer!(
                self,
                Client::delete_role_policy,
                "iam:DeleteRolePolicy",
                |me, req| {
                    let name = req.policy_name().unwrap_or_default().to_owned();
                    me.role(req.role_name(), |r| r.inline.remove(&name));
                    R::Output(delete_role_policy::DeleteRolePolicyOutput::builder().build())
                }
            ),
            answer!(
                self,
                Client::list_attached_role_policies,
                "iam:ListAttachedRolePolicies",
                |me, req| {
                    let arns: Vec<String> =
                        me.role(req.role_name(), |r| r.managed.iter().cloned().collect());
                    R::Output(
                        list_attached_role_policies::ListAttachedRolePoliciesOutput::builder()
                            .set_attached_policies(Some(
                                arns.iter()
                                    .map(|arn| {
                                        AttachedPolicy::builder()
                                            .policy_arn(arn)
                                            .policy_name(arn.rsplit('/').next().unwrap_or_default())
                                            .build()
                                    })
                                    .collect(),
                            ))
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::attach_role_policy,
                "iam:AttachRolePolicy",
                |me, req| {
                    let arn = req.policy_arn().unwrap_or_default().to_owned();
                    me.role(req.role_name(), |r| r.managed.insert(arn));
                    R::Output(attach_role_policy::AttachRolePolicyOutput::builder().build())
                }
            ),
            answer!(
                self,
                Client::detach_role_policy,
                "iam:DetachRolePolicy",
                |me, req| {
                    let arn = req.policy_arn().unwrap_or_default().to_owned();
                    me.role(req.role_name(), |r| r.managed.remove(&arn));
                    R::Output(detach_role_policy::DetachRolePolicyOutput::builder().build())
                }
            ),
        ]
    }

    fn provider_rules(&self) -> Vec<Rule> {
        use aws_sdk_iam::operation::*;
        vec![
            answer!(
                self,
                Client::list_open_id_connect_providers,
                "iam:ListOpenIDConnectProviders",
                |me, _req| {
                    R::Output(
                        list_open_id_connect_providers::ListOpenIdConnectProvidersOutput::builder()
                            .set_open_id_connect_provider_list(Some(
                                me.providers()
                                    .keys()
                                    .map(|arn| {
                                        OpenIdConnectProviderListEntry::builder().arn(arn).build()
                                    })
                                    .collect(),
                            ))
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::get_open_id_connect_provider,
                "iam:GetOpenIDConnectProvider",
                |me, req| {
                    let p = me.providers()[req.open_id_connect_provider_arn().unwrap_or_default()]
                        .clone();
                    R::Output(
                        get_open_id_connect_provider::GetOpenIdConnectProviderOutput::builder()
                            .url(&p.url)
                            .set_client_id_list(Some(p.client_ids.clone()))
                            .set_tags(Some(iam_tags(&p.tags)))
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::create_open_id_connect_provider,
                "iam:CreateOpenIDConnectProvider",
                |me, req| {
                    let url = req.url().unwrap_or_default().to_owned();
                    let arn = format!(
                        "arn:aws:iam::{ACCOUNT}:oidc-provider/{}",
                        url.trim_start_matches("https://")
                    );
                    let provider = Provider {
                        url,
                        client_ids: req.client_id_list().to_vec(),
                        tags: tags(req.tags()).collect(),
                    };
                    me.state
                        .lock()
                        .expect("iam")
                        .providers
                        .insert(arn.clone(), provider);
                    R::Output(
                    create_open_id_connect_provider::CreateOpenIdConnectProviderOutput::builder()
                        .open_id_connect_provider_arn(arn)
                        .build(),
                )
                }
            ),
            answer!(
                self,
                Client::add_client_id_to_open_id_connect_provider,
                "iam:AddClientIDToOpenIDConnectProvider",
                |me, req| {
                    let arn = req
                        .open_id_connect_provider_arn()
                        .unwrap_or_default()
                        .to_owned();
                    let id = req.client_id().unwrap_or_default().to_owned();
                    if let Some(p) = me.state.lock().expect("iam").providers.get_mut(&arn) {
                        p.client_ids.push(id);
                    }
                    R::Output(add_client_id_to_open_id_connect_provider::AddClientIdToOpenIdConnectProviderOutput::builder().build())
                }
            ),
            answer!(
                self,
                Client::tag_open_id_connect_provider,
                "iam:TagOpenIDConnectProvider",
                |me, req| {
                    let arn = req.open_id_connect_provider_arn().unwrap_or_default();
                    let new: Vec<_> = tags(req.tags()).collect();
                    if let Some(p) = me.state.lock().expect("iam").providers.get_mut(arn) {
                        p.tags.extend(new);
                    }
                    R::Output(
                        tag_open_id_connect_provider::TagOpenIdConnectProviderOutput::builder()
                            .build(),
                    )
                }
            ),
            answer!(
                self,
                Client::delete_open_id_connect_provider,
                "iam:DeleteOpenIDConnectProvider",
                |me, req| {
                    me.state
                        .lock()
                        .expect("iam")
                        .providers
                        .remove(req.open_id_connect_provider_arn().unwrap_or_default());
                    R::Output(delete_open_id_connect_provider::DeleteOpenIdConnectProviderOutput::builder().build())
                }
            ),
        ]
    }
}
