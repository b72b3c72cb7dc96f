//! Shared helpers for the integration tests: a local stack per test, and a state store on a
//! table of its own, so that tests share nothing and can run in parallel.

use std::sync::atomic::{AtomicU64, Ordering};
use tenantry::store::{Clock, Store};
pub use tenantry_gateway::{LocalStack, StackOptions};

/// Starts a local stack (moto + gateway) with default options. Panics with the reason when it
/// cannot start, which fails the calling test.
pub async fn stack() -> LocalStack {
    stack_with(StackOptions::default()).await
}

/// Starts a local stack that runs the real function binaries (`cargo build --workspace --bins`
/// builds them beside the test executable) behind its local Lambda Runtime API. Panics with the
/// reason when they are missing, which fails the calling test.
pub async fn stack_on_binaries() -> LocalStack {
    match StackOptions::default().with_function_binaries_beside_exe() {
        Ok(opts) => stack_with(opts).await,
        Err(e) => panic!("{e:#}"),
    }
}

/// Starts a local stack with `opts`; panics with the reason when it cannot start.
pub async fn stack_with(opts: StackOptions) -> LocalStack {
    match LocalStack::start(opts).await {
        Ok(stack) => stack,
        Err(e) => panic!("local stack did not start: {e:#}"),
    }
}

/// A name no other test (in this or a concurrent test process) uses: `<prefix>-<pid>-<n>`.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A state store on a freshly created table of its own, through the stack's gateway (the real
/// DynamoDB API, as handlers use it).
pub async fn store(stack: &LocalStack) -> Store {
    let store = Store::from_config(&stack.sdk_config().await, unique("tenantry-test"));
    if let Err(e) = store.create_table_if_missing().await {
        panic!("creating table {}: {e}", store.table());
    }
    store
}

/// Another store on the same table with its own client (another Lambda, another process),
/// using `clock`.
pub async fn peer(stack: &LocalStack, of: &Store, clock: impl Clock + 'static) -> Store {
    Store::from_config(&stack.sdk_config().await, of.table()).with_clock(clock)
}

/// `examples/platform.json`, validated.
pub fn example_spec() -> tenantry::spec::PlatformSpec {
    let text = include_str!("../../examples/platform.json");
    match tenantry::validate::parse_platform(text) {
        Ok(spec) => spec,
        Err(e) => panic!("examples/platform.json is invalid: {e}"),
    }
}

/// Records `spec` in the store as intake would before a provision: the spec (version 1) and a
/// `Provisioning` status record, so phase handlers can be run on it directly.
pub async fn record_platform(store: &Store, spec: &tenantry::spec::PlatformSpec) {
    let value = serde_json::to_value(spec).expect("spec serialises");
    if let Err(e) = store.put_spec(&spec.id, &value, None).await {
        panic!("put spec of {}: {e}", spec.id);
    }
    let status =
        tenantry::store::PlatformStatus::new(tenantry::store::LifecycleState::Provisioning);
    if let Err(e) = store.update_status(&spec.id, &status, None).await {
        panic!("put status of {}: {e}", spec.id);
    }
}

/// Invokes a Tenantry function through the gateway's Lambda Invoke API, as Step Functions and
/// the event source mapping do. Returns the payload, or `(errorType, errorMessage)` of a
/// function error (a handler's stable error type, or `Runtime.ExitError` for a crash).
pub async fn invoke(
    stack: &LocalStack,
    function: &str,
    payload: &serde_json::Value,
) -> Result<serde_json::Value, (String, String)> {
    tenantry_gateway::install_crypto_provider();
    let url = format!(
        "{}/2015-03-31/functions/{}{function}/invocations",
        stack.endpoint(),
        tenantry::workflows::NAME_PREFIX
    );
    let response = match reqwest::Client::new().post(url).json(payload).send().await {
        Ok(r) => r,
        Err(e) => panic!("invoking {function}: {e}"),
    };
    assert!(
        response.status().is_success(),
        "invoke of {function} answered {}",
        response.status()
    );
    let failed = response.headers().contains_key("x-amz-function-error");
    let body: serde_json::Value = match response.json().await {
        Ok(v) => v,
        Err(e) => panic!("{function} answered no JSON payload: {e}"),
    };
    if failed {
        let field = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
        Err((field("errorType"), field("errorMessage")))
    } else {
        Ok(body)
    }
}

/// A finished Step Functions execution, with its history.
pub struct Execution {
    pub status: aws_sdk_sfn::types::ExecutionStatus,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub history: Vec<aws_sdk_sfn::types::HistoryEvent>,
    /// How long it was waited for (callers may widen it to their whole request).
    pub elapsed: std::time::Duration,
}

impl Execution {
    /// Times the state `state` was entered.
    pub fn entered(&self, state: &str) -> usize {
        self.history
            .iter()
            .filter_map(|e| e.state_entered_event_details())
            .filter(|d| d.name() == state)
            .count()
    }

    /// State transitions: every state entered, branches included.
    pub fn transitions(&self) -> usize {
        self.history
            .iter()
            .filter(|e| e.state_entered_event_details().is_some())
            .count()
    }

    /// The `Error` of every failed task, in order.
    pub fn task_errors(&self) -> Vec<String> {
        self.history
            .iter()
            .filter_map(|e| e.task_failed_event_details())
            .filter_map(|d| d.error().map(str::to_owned))
            .collect()
    }

    /// `Error Cause` of every failed task, for assertion messages.
    pub fn failures(&self) -> Vec<String> {
        self.history
            .iter()
            .filter_map(|e| e.task_failed_event_details())
            .map(|d| {
                format!(
                    "{} {}",
                    d.error().unwrap_or_default(),
                    d.cause().unwrap_or_default()
                )
            })
            .collect()
    }

    /// Events of one type.
    pub fn count(&self, kind: aws_sdk_sfn::types::HistoryEventType) -> usize {
        self.history.iter().filter(|e| e.r#type() == &kind).count()
    }
}

/// Polls an execution until it ends (panics after `timeout`) and reads its whole history.
pub async fn wait_execution(
    sfn: &aws_sdk_sfn::Client,
    arn: &str,
    timeout: std::time::Duration,
) -> Execution {
    let started = std::time::Instant::now();
    while started.elapsed() < timeout {
        let d = match sfn.describe_execution().execution_arn(arn).send().await {
            Ok(d) => d,
            Err(e) => panic!("describe execution {arn}: {e}"),
        };
        if d.status() != &aws_sdk_sfn::types::ExecutionStatus::Running {
            let history = sfn
                .get_execution_history()
                .execution_arn(arn)
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await;
            let history = match history {
                Ok(h) => h,
                Err(e) => panic!("history of {arn}: {e}"),
            };
            return Execution {
                status: d.status().clone(),
                error: d.error().map(str::to_owned),
                cause: d.cause().map(str::to_owned),
                history,
                elapsed: started.elapsed(),
            };
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    panic!("execution {arn} still running after {timeout:?}");
}

pub use tenantry::policies::iam_matches;

/// Every string in the `Resource` and `Condition` values of a policy document's statements: what
/// a statement is scoped to, for checks that one principal's policy reaches nothing of another's.
pub fn scoped_values(document: &serde_json::Value) -> Vec<String> {
    fn collect(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
            serde_json::Value::Object(map) => map.values().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for s in document["Statement"].as_array().into_iter().flatten() {
        collect(&s["Resource"], &mut out);
        collect(&s["Condition"], &mut out);
    }
    out
}

/// A new SQS queue (named `<prefix>-<unique>`) that an EventBridge rule on the Tenantry bus
/// fills with every result event Tenantry publishes; returns its URL. Creates the bus if the
/// stack has none yet.
pub async fn results_queue(
    aws: &aws_config::SdkConfig,
    sqs: &aws_sdk_sqs::Client,
    prefix: &str,
) -> String {
    use aws_sdk_sqs::types::QueueAttributeName;
    let eventbridge = aws_sdk_eventbridge::Client::new(aws);
    let bus = tenantry::events::event_bus();
    // The stack may already have the bus (the gateway's request routing creates it).
    let _ = eventbridge.create_event_bus().name(&bus).send().await;
    let name = unique(prefix);
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .expect("results queue")
        .queue_url()
        .expect("queue URL")
        .to_owned();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("queue ARN");
    let pattern = serde_json::json!({ "source": [tenantry::events::RESULT_SOURCE] });
    eventbridge
        .put_rule()
        .name(&name)
        .event_bus_name(&bus)
        .event_pattern(pattern.to_string())
        .send()
        .await
        .expect("results rule");
    eventbridge
        .put_targets()
        .rule(&name)
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("results")
                .arn(arn)
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("results target");
    url
}

#[cfg(test)]
mod tests {
    use super::iam_matches;

    #[test]
    fn the_pattern_matcher_reads_wildcards_and_literals_as_iam_does() {
        assert!(iam_matches("tenants/a/*", "tenants/a/x/y"));
        assert!(iam_matches("tenants/a/*", "tenants/a/"));
        assert!(!iam_matches("tenants/a/*", "tenants/ab/x"));
        assert!(!iam_matches("tenants/a/*", "tenants/a"));
        assert!(iam_matches("tenants/a*/*", "tenants/ab/x"));
        assert!(!iam_matches("tenants/a${*}/*", "tenants/ab/x"));
        assert!(iam_matches("tenants/a${*}/*", "tenants/a*/x"));
        assert!(iam_matches("a?c", "abc") && !iam_matches("a${?}c", "abc"));
        assert!(iam_matches(
            "arn:aws:kms:*",
            "arn:aws:kms:us-east-1:1:key/k"
        ));
        assert!(!iam_matches("exact", "exactly") && !iam_matches("exactly", "exact"));
    }
}
