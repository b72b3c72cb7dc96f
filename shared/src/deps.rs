//! What every handler gets, once per cold start: the AWS configuration, the clients built from
//! it as they are first needed, the state table's name, and the account id, looked up at most
//! once.

use std::sync::Arc;

use aws_config::SdkConfig;

use crate::aws::Clients;

use crate::error::{ErrorType, FunctionError};

/// Environment variable naming the DynamoDB state table.
pub const TABLE_ENV: &str = "TENANTRY_TABLE";
/// Table name used when [`TABLE_ENV`] is not set.
pub const DEFAULT_TABLE: &str = "tenantry";
/// Environment variable with the account id, which saves the STS call at cold start.
pub const ACCOUNT_ID_ENV: &str = "TENANTRY_ACCOUNT_ID";
/// Environment variable with the ARN of the permissions boundary every role Tenantry creates
/// carries (the template's `TenantryRoleBoundary`; its function roles may create no role
/// without it).
pub const ROLE_BOUNDARY_ENV: &str = "TENANTRY_ROLE_BOUNDARY_ARN";
/// Environment variable listing the accounts a platform's `targetRoleArn` may name
/// (comma-separated; the template's `TargetAccountIds`). Empty: none, every platform is built in
/// Tenantry's own account.
pub const TARGET_ACCOUNTS_ENV: &str = "TENANTRY_TARGET_ACCOUNTS";
/// Environment variable with the external id Tenantry presents when it assumes a platform's
/// `targetRoleArn` (the template's `TargetExternalId`; see [`crate::aws::target`]).
pub const EXTERNAL_ID_ENV: &str = "TENANTRY_EXTERNAL_ID";

#[derive(Clone, Debug)]
pub struct Deps {
    pub aws: SdkConfig,
    /// The AWS clients, each built from `aws` when first used (or from mock rules in unit
    /// tests), then kept for the cold start.
    pub clients: Clients,
    pub table_name: String,
    /// The permissions boundary of the roles Tenantry creates (None: roles get none, which the
    /// template's function roles refuse).
    pub role_boundary_arn: Option<String>,
    /// The external id presented to a platform's `targetRoleArn` (None: no platform may name one).
    pub external_id: Option<String>,
    /// The accounts a platform's `targetRoleArn` may name ([`TARGET_ACCOUNTS_ENV`]); intake
    /// refuses any other.
    pub target_accounts: Vec<String>,
    /// The account of the handler's credentials, once known (shared by clones).
    account: Arc<tokio::sync::OnceCell<String>>,
    /// The IAM principal of the handler's credentials, once known (shared by clones).
    principal: Arc<tokio::sync::OnceCell<String>>,
}

impl Deps {
    pub fn new(aws: SdkConfig, table_name: impl Into<String>) -> Self {
        Deps {
            clients: Clients::new(&aws),
            aws,
            table_name: table_name.into(),
            role_boundary_arn: None,
            external_id: None,
            target_accounts: Vec::new(),
            account: Arc::default(),
            principal: Arc::default(),
        }
    }

    /// With `arn` as the boundary of the roles Tenantry creates.
    pub fn with_role_boundary(mut self, arn: impl Into<String>) -> Self {
        self.role_boundary_arn = Some(arn.into());
        self
    }

    /// With `id` as the external id presented to target-account roles.
    pub fn with_external_id(mut self, id: impl Into<String>) -> Self {
        self.external_id = Some(id.into());
        self
    }

    /// With `accounts` as the accounts platforms may be built in besides Tenantry's own.
    pub fn with_target_accounts(mut self, accounts: &[&str]) -> Self {
        self.target_accounts = accounts.iter().map(|a| (*a).to_owned()).collect();
        self
    }

    /// With these clients instead of those built from the configuration (unit tests: clients
    /// answering from `aws-smithy-mocks` rules).
    pub fn with_clients(mut self, clients: Clients) -> Self {
        self.clients = clients;
        self
    }

    /// With the account id known (saves the STS call).
    pub fn with_account_id(self, id: impl Into<String>) -> Self {
        // A fresh cell: clones made before share the old one.
        let account = Arc::new(tokio::sync::OnceCell::new_with(Some(id.into())));
        Deps { account, ..self }
    }

    /// With the handler's IAM principal known (saves the STS call; unit tests).
    pub fn with_principal_arn(self, arn: impl Into<String>) -> Self {
        let principal = Arc::new(tokio::sync::OnceCell::new_with(Some(arn.into())));
        Deps { principal, ..self }
    }

    /// Built once per cold start from the environment.
    pub async fn from_env() -> Self {
        let table = std::env::var(TABLE_ENV).unwrap_or_else(|_| DEFAULT_TABLE.to_owned());
        let mut deps = Deps::new(crate::aws::load_from_env().await, table);
        deps.role_boundary_arn = std::env::var(ROLE_BOUNDARY_ENV)
            .ok()
            .filter(|a| !a.is_empty());
        deps.external_id = std::env::var(EXTERNAL_ID_ENV)
            .ok()
            .filter(|a| !a.is_empty());
        deps.target_accounts = std::env::var(TARGET_ACCOUNTS_ENV)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        deps
    }

    /// What work on `spec`'s platform runs with: these dependencies or, when the platform names
    /// a `targetRoleArn`, a session of that role ([`crate::aws::target::assume`]), whose clients
    /// act in the target account while the state store stays in Tenantry's. `purpose` (the
    /// phase) goes into the session name, which the target account's CloudTrail shows.
    pub async fn for_platform(
        &self,
        spec: &crate::spec::PlatformSpec,
        purpose: &str,
    ) -> Result<Deps, FunctionError> {
        let Some(role) = &spec.target_role_arn else {
            return Ok(self.clone());
        };
        let target = crate::aws::target::assume(self, role, &spec.id, purpose).await?;
        let clients = self.clients.in_target_account(target.credentials.clone());
        let aws = self
            .aws
            .to_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(target.credentials),
            )
            .build();
        Ok(Deps {
            aws,
            clients,
            table_name: self.table_name.clone(),
            role_boundary_arn: self
                .role_boundary_arn
                .as_deref()
                .map(|arn| crate::aws::target::in_account(arn, &target.account)),
            external_id: None,
            target_accounts: Vec::new(),
            account: Arc::new(tokio::sync::OnceCell::new_with(Some(target.account))),
            principal: Arc::default(),
        })
    }

    /// The account the handler's credentials belong to (ARNs in policies need it): the one
    /// known already (a target account's), else `$TENANTRY_ACCOUNT_ID`, else STS
    /// `GetCallerIdentity`, once per `Deps` (per cold start).
    pub async fn account_id(&self) -> Result<String, FunctionError> {
        if let Some(id) = self.account.get() {
            return Ok(id.clone());
        }
        if let Some(id) = std::env::var(ACCOUNT_ID_ENV).ok().filter(|a| !a.is_empty()) {
            return Ok(id);
        }
        self.account
            .get_or_try_init(|| async {
                let out = self.caller_identity().await?;
                out.account().map(str::to_owned).ok_or_else(|| {
                    FunctionError::new(ErrorType::Terminal, "GetCallerIdentity returned no account")
                })
            })
            .await
            .cloned()
    }

    /// The IAM principal the handler's credentials belong to, as EKS names it in access
    /// entries: a role for an assumed-role session (a Lambda function's credentials), else the
    /// caller's ARN. STS `GetCallerIdentity` (no permission needed), once per `Deps`.
    pub async fn principal_arn(&self) -> Result<String, FunctionError> {
        self.principal
            .get_or_try_init(|| async {
                let out = self.caller_identity().await?;
                out.arn().map(iam_principal).ok_or_else(|| {
                    FunctionError::new(ErrorType::Terminal, "GetCallerIdentity returned no ARN")
                })
            })
            .await
            .cloned()
    }

    /// STS `GetCallerIdentity` with these credentials (needs no IAM permission).
    async fn caller_identity(
        &self,
    ) -> Result<aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput, FunctionError>
    {
        self.clients
            .sts()
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| crate::phases::aws_error("sts:GetCallerIdentity", e))
    }
}

/// The IAM principal of a caller ARN: `arn:P:sts::A:assumed-role/R/S` is role
/// `arn:P:iam::A:role/R` (STS drops the role's path, and so do access entries made from a
/// session); other ARNs are principals already.
pub fn iam_principal(caller: &str) -> String {
    let parts: Vec<&str> = caller.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "sts", "", account, resource] => match resource
            .strip_prefix("assumed-role/")
            .and_then(|r| r.split('/').next())
        {
            Some(role) => format!("arn:{partition}:iam::{account}:role/{role}"),
            None => caller.to_owned(),
        },
        _ => caller.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::iam_principal;

    #[test]
    fn sessions_are_named_by_their_role() {
        assert_eq!(
            iam_principal(
                "arn:aws:sts::123456789012:assumed-role/tenantry-cluster/tenantry-cluster"
            ),
            "arn:aws:iam::123456789012:role/tenantry-cluster"
        );
        assert_eq!(
            iam_principal("arn:aws-cn:sts::123456789012:assumed-role/r/s"),
            "arn:aws-cn:iam::123456789012:role/r"
        );
        for other in [
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:iam::123456789012:role/ops/admin",
            "arn:aws:sts::123456789012:federated-user/bob",
        ] {
            assert_eq!(iam_principal(other), other);
        }
    }
}
