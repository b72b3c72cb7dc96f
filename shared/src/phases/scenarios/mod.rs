//! Scenario tests of the phases without the local stack: the phase's own code runs on real SDK
//! clients whose calls are answered by `aws-smithy-mocks` rules over a small in-memory model of
//! each service ([`store`] for the state table, [`kms`] for KMS). Each scenario starts the model
//! in one state and checks what the phase did to it, named as kube-rs/controller-rs names them:
//! fresh, converged, drifted, half-created after a crash, gone.
//!
//! The local-stack tests (`tests/it`) stay the proof that the workflows work; these pin the
//! phase logic down call by call, in milliseconds.

mod access;
mod addons;
mod bootstrap;
pub mod cloudwatch;
mod cluster;
pub mod ec2;
pub mod ecr;
pub mod eks;
pub mod eks_access;
mod encryption;
pub mod iam;
mod identity;
pub mod kms;
pub mod logs;
mod network;
mod nodegroups;
mod observability;
mod runtime;
pub mod s3;
pub mod secrets;
pub mod sns;
pub mod store;
mod tenant;
mod tenant_buckets;

use std::sync::{Arc, Mutex};

use serde_json::Value;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_smithy_mocks::{create_mock_http_client, MockResponseInterceptor, Rule, RuleMode};

use crate::aws::clients::Each;
use crate::aws::Clients;
use crate::deps::Deps;
use crate::error::FunctionError;
use crate::plan::Phase;
use crate::spec::PlatformSpec;
use crate::store::{LifecycleState, PlatformStatus};

use super::{Action, PhaseContext, PhaseInput, PhaseOutput};
use store::StoreDouble;

/// The account of every scenario.
pub const ACCOUNT: &str = "123456789012";

/// The calls a scenario's doubles answered, in order, as `service:Operation`.
#[derive(Clone, Default)]
pub struct Calls(Arc<Mutex<Vec<String>>>);

impl Calls {
    pub fn push(&self, call: &str) {
        self.0.lock().expect("calls").push(call.to_owned());
    }

    pub fn all(&self) -> Vec<String> {
        self.0.lock().expect("calls").clone()
    }

    /// The calls that change something (not Describe/Get/Head/List/Query).
    pub fn mutating(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|c| {
                let op = c.split(':').nth(1).unwrap_or_default();
                !["Describe", "Get", "Head", "List", "Query"]
                    .iter()
                    .any(|p| op.starts_with(p))
            })
            .collect()
    }

    /// The mutating calls to AWS (the state table's excluded).
    pub fn mutating_aws(&self) -> Vec<String> {
        let calls = self.mutating();
        calls
            .into_iter()
            .filter(|c| !c.starts_with("dynamodb:"))
            .collect()
    }

    pub fn clear(&self) {
        self.0.lock().expect("calls").clear();
    }
}

/// A rule answering `$op` (e.g. `Client::get_role`) with `$body`, where `$me` is a clone of the
/// double and `$req` the request; the call is logged in the double's `calls` as `$name`.
macro_rules! answer {
    ($double:expr, $op:expr, $name:literal, |$me:ident, $req:ident| $body:expr) => {{
        let $me = $double.clone();
        aws_smithy_mocks::mock!($op).then_compute_response(move |$req| {
            $me.calls.push($name);
            $body
        })
    }};
}
pub(crate) use answer;

/// Rules per service; a service without rules answers every call with an error, so a call the
/// scenario did not expect fails the phase.
#[derive(Default)]
pub struct Rules {
    pub cloudwatch: Vec<Rule>,
    pub dynamodb: Vec<Rule>,
    pub ec2: Vec<Rule>,
    pub ecr: Vec<Rule>,
    pub eks: Vec<Rule>,
    pub iam: Vec<Rule>,
    pub kms: Vec<Rule>,
    pub logs: Vec<Rule>,
    pub s3: Vec<Rule>,
    pub secrets: Vec<Rule>,
    pub sns: Vec<Rule>,
}

/// A client of `$krate` answering from `$rules` (any order), without retries: an unexpected
/// call fails at once.
macro_rules! mocked {
    ($krate:ident, $rules:expr) => {{
        let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for rule in $rules.iter() {
            interceptor = interceptor.with_rule(rule);
        }
        let config = $krate::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "scenario"))
            .retry_config(RetryConfig::disabled())
            .http_client(create_mock_http_client())
            .interceptor(interceptor)
            .build();
        $krate::Client::from_conf(config)
    }};
}

impl Rules {
    /// Every client, answering from these rules.
    pub fn clients(&self) -> Clients {
        let none: Vec<Rule> = Vec::new();
        Clients::from(Each {
            cloudwatch: mocked!(aws_sdk_cloudwatch, self.cloudwatch),
            dynamodb: mocked!(aws_sdk_dynamodb, self.dynamodb),
            ec2: mocked!(aws_sdk_ec2, self.ec2),
            ecr: mocked!(aws_sdk_ecr, self.ecr),
            eks: mocked!(aws_sdk_eks, self.eks),
            iam: mocked!(aws_sdk_iam, self.iam),
            kms: mocked!(aws_sdk_kms, self.kms),
            logs: mocked!(aws_sdk_cloudwatchlogs, self.logs),
            s3: mocked!(aws_sdk_s3, self.s3),
            secrets: mocked!(aws_sdk_secretsmanager, self.secrets),
            securityhub: mocked!(aws_sdk_securityhub, none),
            sns: mocked!(aws_sdk_sns, self.sns),
            sts: mocked!(aws_sdk_sts, none),
        })
    }

    /// Handler dependencies on these clients, with the account and principal known (no STS call).
    pub fn deps(&self) -> Deps {
        let aws = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        Deps::new(aws, "tenantry")
            .with_clients(self.clients())
            .with_account_id(ACCOUNT)
            .with_principal_arn(format!("arn:aws:iam::{ACCOUNT}:role/tenantry-phase"))
    }
}

/// The example platform (`examples/platform.json`).
pub fn example_spec() -> PlatformSpec {
    serde_json::from_str(include_str!("../../../../examples/platform.json")).expect("example spec")
}

/// The cluster side of a scenario: `spec`'s cluster ACTIVE in the EKS double, and a Kubernetes
/// double served in process. The endpoint its `clusterEndpoint` output names, the doubles (for
/// their request log) and the server task (kept alive by the scenario).
pub async fn active_cluster(
    eks: &eks::EksDouble,
    spec: &PlatformSpec,
) -> (
    String,
    std::sync::Arc<tenantry_kube_double::KubeDoubles>,
    tokio::task::JoinHandle<()>,
) {
    use aws_sdk_eks::types::{Cluster, ClusterStatus};
    let (url, kube, server) = tenantry_kube_double::serve().await.expect("kube double");
    let cluster = crate::naming::Names::new(spec).cluster();
    eks.add_cluster(
        Cluster::builder()
            .name(&cluster)
            .status(ClusterStatus::Active)
            .build(),
    );
    (format!("{url}/clusters/{cluster}"), kube, server)
}

/// A context for one action of `phase` on `spec`, with an empty status record.
pub async fn context<'a>(
    deps: &'a Deps,
    phase: Phase,
    action: Action,
    spec: &PlatformSpec,
) -> Result<PhaseContext<'a>, FunctionError> {
    let input = PhaseInput {
        platform_id: spec.id.clone(),
        request_id: "req-scenario".to_owned(),
        action,
        item: None,
        scope: None,
    };
    let status = PlatformStatus::new(LifecycleState::Provisioning);
    PhaseContext::new(phase, input, deps, deps.clone(), spec.clone(), status).await
}

/// One phase of the example platform among doubles: runs its actions and keeps the call log.
pub struct Stage {
    pub phase: Phase,
    pub calls: Calls,
    pub store: StoreDouble,
    pub deps: Deps,
    pub spec: PlatformSpec,
    /// The item of the input (none: the whole phase).
    pub item: Option<String>,
    /// The outputs of earlier phases the phase reads from the status record.
    outputs: Vec<(String, Value)>,
}

impl Stage {
    /// `rules` answers the phase's AWS calls (the state table's are added here); the doubles
    /// behind them log to `calls`.
    pub fn new(phase: Phase, calls: &Calls, mut rules: Rules, outputs: &[(&str, Value)]) -> Stage {
        let store = StoreDouble::new(calls);
        rules.dynamodb = store.rules();
        Stage {
            phase,
            calls: calls.clone(),
            store,
            deps: rules.deps(),
            spec: example_spec(),
            item: None,
            outputs: outputs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        }
    }

    /// Records one more output of an earlier phase.
    pub fn outputs_push(&mut self, key: &str, value: Value) {
        self.outputs.push((key.to_owned(), value));
    }

    /// Runs one action with the earlier phases' outputs recorded; the call log is cleared first.
    pub async fn try_run(&self, action: Action) -> Result<PhaseOutput, FunctionError> {
        use crate::phases::{
            access, addons, bootstrap, cluster, encryption, identity, nodegroups, observability,
            tenant,
        };
        self.calls.clear();
        let mut ctx = context(&self.deps, self.phase, action, &self.spec).await?;
        ctx.input.item = self.item.clone();
        ctx.status.outputs.extend(self.outputs.iter().cloned());
        match self.phase {
            Phase::Encryption => encryption::run(ctx).await,
            Phase::Identity => identity::run(ctx).await,
            Phase::Cluster => cluster::run(ctx).await,
            Phase::Nodegroups => nodegroups::run(ctx).await,
            Phase::Addons => addons::run(ctx).await,
            Phase::Observability => observability::run(ctx).await,
            Phase::Bootstrap => bootstrap::run(ctx).await,
            Phase::Access => access::run(ctx).await,
            Phase::Tenants => tenant::run(ctx).await,
            other => panic!("no scenario runs the {other:?} phase yet"),
        }
    }

    pub async fn run(&self, action: Action) -> PhaseOutput {
        self.try_run(action)
            .await
            .unwrap_or_else(|e| panic!("{:?} {action:?}: {e}", self.phase))
    }

    /// `ensure`, then `settle` (time passes), until the phase is ready; the AWS writes of every
    /// round.
    pub async fn converge(&self, settle: impl Fn()) -> Vec<Vec<String>> {
        let mut rounds = Vec::new();
        for _ in 0..10 {
            let out = self.run(Action::Ensure).await;
            rounds.push(self.calls.mutating_aws());
            if out.ready {
                return rounds;
            }
            settle();
        }
        panic!("{:?} not ready after 10 rounds: {rounds:?}", self.phase);
    }

    /// Whether the inventory records `id` of `kind`.
    pub fn recorded(&self, kind: crate::resources::Kind, id: &str) -> bool {
        self.store
            .inventory()
            .contains(&(kind.as_str().to_owned(), id.to_owned()))
    }
}

/// (resource, field) of every difference an `observe` reported, sorted.
pub fn drift_fields(out: &PhaseOutput) -> Vec<(String, String)> {
    let mut fields: Vec<_> = out
        .drift
        .iter()
        .map(|d| (d.resource.clone(), d.field.clone()))
        .collect();
    fields.sort();
    fields
}
