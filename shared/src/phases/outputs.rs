//! What phases hand to later phases, each output declared once with its key and its type.
//!
//! A phase writes an output into the map it finishes with ([`Output::insert`]); a later phase
//! reads it from the platform's status record with [`super::PhaseContext::output`] (missing is
//! an error naming the key) or [`super::PhaseContext::optional`]. The status record, `tenantry
//! status` and the result events keep them as JSON under these keys, so a key never changes.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// The outputs of a phase, as recorded: key → JSON value.
pub type OutputMap = BTreeMap<String, Value>;

/// One output: its key in the status record and the type its value has.
pub struct Output<T> {
    pub key: &'static str,
    value: PhantomData<fn() -> T>,
}

impl<T> Clone for Output<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Output<T> {}

impl<T> Output<T> {
    const fn new(key: &'static str) -> Self {
        Output {
            key,
            value: PhantomData,
        }
    }
}

impl<T: Serialize> Output<T> {
    /// Writes the output's value into a phase's outputs.
    pub fn insert(self, outputs: &mut OutputMap, value: T) {
        outputs.insert(self.key.to_owned(), serde_json::json!(value));
    }
}

impl<T: DeserializeOwned> Output<T> {
    /// The output's value in `outputs`: `Ok(None)` when it is absent or null, `Err` (the serde
    /// message) when it has another shape.
    pub fn get(self, outputs: &OutputMap) -> Result<Option<T>, String> {
        match outputs.get(self.key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => serde_json::from_value(value.clone())
                .map(Some)
                .map_err(|e| e.to_string()),
        }
    }
}

/// An output per item of a phase that fans out (one node group, add-on or tenant): the key is
/// the prefix followed by the item's name.
pub struct ItemOutput<T> {
    pub prefix: &'static str,
    value: PhantomData<fn() -> T>,
}

impl<T> ItemOutput<T> {
    const fn new(prefix: &'static str) -> Self {
        ItemOutput {
            prefix,
            value: PhantomData,
        }
    }

    /// The key of `item`'s output.
    pub fn key(&self, item: &str) -> String {
        format!("{}{item}", self.prefix)
    }
}

impl<T: Serialize> ItemOutput<T> {
    /// Writes `item`'s output into a phase's outputs.
    pub fn insert(&self, outputs: &mut OutputMap, item: &str, value: T) {
        outputs.insert(self.key(item), serde_json::json!(value));
    }
}

/// Declares each output once: `NAME: type = "key";`.
macro_rules! outputs {
    ($( $(#[$doc:meta])* $name:ident: $ty:ty = $key:literal; )*) => {
        $( $(#[$doc])* pub const $name: Output<$ty> = Output::new($key); )*
        /// Every key declared here (not the per-item prefixes).
        pub const KEYS: &[&str] = &[$($key),*];
    };
}

outputs! {
    // --- network -------------------------------------------------------------------------------
    VPC_ID: String = "vpcId";
    PUBLIC_SUBNET_IDS: Vec<String> = "publicSubnetIds";
    /// The private subnets: nodes and the control plane's interfaces.
    PRIVATE_SUBNET_IDS: Vec<String> = "privateSubnetIds";
    /// The pod subnets of VPC CNI custom networking (empty without a pod CIDR).
    POD_SUBNET_IDS: Vec<String> = "podSubnetIds";
    AVAILABILITY_ZONES: Vec<String> = "availabilityZones";
    /// The security group of the interface endpoints (none without interface endpoints).
    ENDPOINT_SECURITY_GROUP_ID: Option<String> = "endpointSecurityGroupId";
    NAT_GATEWAY_IDS: Vec<String> = "natGatewayIds";
    /// The VPC flow log (none until the encryption and identity phases have run).
    FLOW_LOG_ID: Option<String> = "flowLogId";

    // --- encryption ----------------------------------------------------------------------------
    /// The key of Kubernetes secrets (the spec's own key when it brings one).
    SECRETS_KEY_ARN: String = "secretsKeyArn";
    /// The key of CloudWatch Logs.
    LOGS_KEY_ARN: String = "logsKeyArn";
    /// The data key: tenant bucket, platform secret, EBS volumes.
    DATA_KEY_ARN: String = "dataKeyArn";

    // --- identity ------------------------------------------------------------------------------
    CLUSTER_ROLE_ARN: String = "clusterRoleArn";
    NODE_ROLE_ARN: String = "nodeRoleArn";
    /// The role VPC flow logs deliver with (flow logs on only).
    FLOW_LOGS_ROLE_ARN: String = "flowLogsRoleArn";
    /// ARN of the Fargate pod execution role (identity), when the platform uses Fargate.
    FARGATE_POD_ROLE_ARN: String = "fargatePodRoleArn";
    /// The IAM OIDC provider (IRSA on, cluster created).
    OIDC_PROVIDER_ARN: String = "oidcProviderArn";
    /// Workload roles by purpose (`cluster-autoscaler` → ARN).
    SERVICE_ROLE_ARNS: BTreeMap<String, String> = "serviceRoleArns";

    // --- cluster -------------------------------------------------------------------------------
    CLUSTER_NAME: String = "clusterName";
    CLUSTER_ARN: String = "clusterArn";
    CLUSTER_ENDPOINT: String = "clusterEndpoint";
    /// The cluster's OIDC issuer URL.
    OIDC_ISSUER: String = "oidcIssuer";
    /// The cluster's certificate authority, base64 PEM.
    CERTIFICATE_AUTHORITY: String = "certificateAuthority";
    /// The security group EKS creates for the cluster (and gives managed nodes).
    CLUSTER_SECURITY_GROUP_ID: String = "clusterSecurityGroupId";
    CLUSTER_VERSION: String = "clusterVersion";
    CLUSTER_LOG_GROUP: String = "clusterLogGroup";
    /// The principal that created the cluster (the cluster function's role). EKS gives it an
    /// untagged cluster-admin access entry, which the access phase must tell from a stranger's.
    CLUSTER_CREATOR: String = "clusterCreator";

    // --- access and bootstrap ------------------------------------------------------------------
    /// The principals given cluster-admin access entries.
    ADMIN_ACCESS_ENTRIES: Vec<String> = "adminAccessEntries";
    /// How many objects bootstrap applied.
    BOOTSTRAP_OBJECTS: usize = "bootstrapObjects";

    // --- observability -------------------------------------------------------------------------
    ALARM_TOPIC_ARN: String = "alarmTopicArn";
    PLATFORM_SECRET_ARN: String = "platformSecretArn";
    ALARM_NAMES: Vec<String> = "alarmNames";
    CONTAINER_INSIGHTS_LOG_GROUPS: Vec<String> = "containerInsightsLogGroups";

    // --- tenants -------------------------------------------------------------------------------
    /// The platform's shared tenant bucket.
    TENANT_BUCKET: String = "tenantBucket";
    /// The tenant bucket kept at decommission (tenants with `retainData`).
    RETAINED_BUCKET: RetainedBucket = "retainedBucket";
    /// The platform data key kept at decommission: the retained tenant data (bucket objects,
    /// repositories of tenants without their own key) is encrypted with it.
    RETAINED_DATA_KEY: String = "retainedDataKey";
    /// The platform's container image repositories: request name → repository URI.
    REPOSITORY_URIS: BTreeMap<String, String> = "repositoryUris";
}

/// A node group's ARN, per group.
pub const NODE_GROUP: ItemOutput<String> = ItemOutput::new("nodeGroup/");
/// An add-on's installed version, per add-on.
pub const ADDON: ItemOutput<Option<String>> = ItemOutput::new("addon/");
/// What a tenant was given, per tenant (null once offboarded).
pub const TENANT: ItemOutput<Option<TenantOutput>> = ItemOutput::new("tenant/");

/// What an onboarded tenant was given.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantOutput {
    pub role_arn: String,
    /// The tenant's own key, or the platform's data key.
    pub key_arn: String,
    pub namespace: String,
    pub bucket: String,
    pub s3_prefix: String,
    /// The tenant's container image repositories: request name → repository URI.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub repositories: BTreeMap<String, String>,
}

/// The tenant bucket decommission kept because tenants retain data in it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetainedBucket {
    pub bucket: String,
    /// The retained tenants' prefixes.
    pub prefixes: Vec<String>,
    /// Its access-log bucket, kept with it: the record of who read the data.
    pub access_log_bucket: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_is_declared_once() {
        let unique: std::collections::BTreeSet<_> = KEYS.iter().collect();
        assert_eq!(unique.len(), KEYS.len(), "{KEYS:?}");
    }

    #[test]
    fn a_value_reads_back_as_written_and_absence_or_null_is_none() {
        let mut map = OutputMap::new();
        assert_eq!(PRIVATE_SUBNET_IDS.get(&map), Ok(None));
        PRIVATE_SUBNET_IDS.insert(&mut map, vec!["subnet-1".to_owned()]);
        assert_eq!(map["privateSubnetIds"], serde_json::json!(["subnet-1"]));
        assert_eq!(
            PRIVATE_SUBNET_IDS.get(&map),
            Ok(Some(vec!["subnet-1".to_owned()]))
        );
        FLOW_LOG_ID.insert(&mut map, None);
        assert_eq!(FLOW_LOG_ID.get(&map), Ok(None));
    }

    #[test]
    fn a_value_of_another_shape_is_an_error() {
        let map = OutputMap::from([("vpcId".to_owned(), serde_json::json!(["vpc-1"]))]);
        let err = VPC_ID.get(&map).unwrap_err();
        assert!(err.contains("expected a string"), "{err}");
    }

    #[test]
    fn item_outputs_are_keyed_by_prefix_and_item() {
        let mut map = OutputMap::new();
        NODE_GROUP.insert(&mut map, "critical", "arn:ng".to_owned());
        assert_eq!(map["nodeGroup/critical"], serde_json::json!("arn:ng"));
        assert_eq!(TENANT.key("payments"), "tenant/payments");
    }
}
