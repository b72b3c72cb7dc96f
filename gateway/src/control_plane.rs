//! Tenantry's own control plane on the local stack: the state table, every state machine, the
//! event bus with the request rule → SQS queue (+ DLQ), and the event source mapping that feeds
//! the queue to `intake`.
//!
//! In AWS the event source mapping is Lambda's; here [`ControlPlane`] plays it: it long-polls the
//! queue (straight at moto, so the polling is not counted as Tenantry's AWS calls) and invokes
//! `intake` through the gateway's Lambda Invoke API with an SQS event, deleting the messages the
//! function did not report in `batchItemFailures`. A crashed or failed invocation deletes nothing:
//! the messages come back after the visibility timeout, as they would in AWS.

use crate::stack::LocalStack;
use anyhow::Context;
use std::collections::BTreeMap;
use std::time::Duration;

/// Name of the intake queue and its dead-letter queue.
pub const QUEUE: &str = "tenantry-intake";
pub const DEAD_LETTER_QUEUE: &str = "tenantry-intake-dlq";
/// Name of the rule routing request events to the queue.
pub const REQUEST_RULE: &str = "tenantry-requests";
/// The rule routing CloudTrail-shaped changes to intake.
pub const CHANGE_RULE: &str = "tenantry-changes";
/// Seconds a message stays invisible after a failed or crashed intake call (the queue's
/// visibility timeout): short locally so redelivery after a crash is quick (in AWS: six times the
/// function timeout).
pub const VISIBILITY_TIMEOUT_SECS: i32 = 3;
/// Seconds a received message stays invisible while its batch is in flight: longer than any
/// intake call, so that another poller does not receive it meanwhile (in AWS the queue's visibility
/// timeout, six times the function timeout, covers this). A batch that fails is made visible again
/// after [`VISIBILITY_TIMEOUT_SECS`].
pub const IN_FLIGHT_VISIBILITY_SECS: i32 = 300;
/// Deliveries before a message goes to the dead-letter queue.
pub const MAX_RECEIVE_COUNT: u32 = 5;
/// Batches the event source mapping works on at once: Lambda's SQS mapping starts with five
/// concurrent pollers, each invoking the function with its own batch. Another number with
/// `TENANTRY_LOCAL_ESM_CONCURRENCY` or [`deploy_with`] (1: one batch after another, in the
/// queue's order).
pub const ESM_CONCURRENCY: usize = 5;
/// Environment variable overriding [`ESM_CONCURRENCY`].
pub const ESM_CONCURRENCY_ENV: &str = "TENANTRY_LOCAL_ESM_CONCURRENCY";

fn esm_concurrency() -> usize {
    std::env::var(ESM_CONCURRENCY_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(ESM_CONCURRENCY)
}

/// The deployed control plane; dropping it stops the queue pollers.
pub struct ControlPlane {
    pub state_machines: BTreeMap<String, String>,
    pub event_bus: String,
    pub queue_url: String,
    pub dead_letter_queue_url: String,
    pollers: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for poller in &self.pollers {
            poller.abort();
        }
    }
}

/// Deploys (idempotently) everything Tenantry itself needs on the stack and starts the poller.
pub async fn deploy(stack: &LocalStack) -> anyhow::Result<ControlPlane> {
    deploy_with(stack, esm_concurrency()).await
}

/// As [`deploy`], with the event source mapping working on `concurrency` batches at once.
pub async fn deploy_with(stack: &LocalStack, concurrency: usize) -> anyhow::Result<ControlPlane> {
    let aws = stack.sdk_config().await;
    tenantry::store::Store::from_config(&aws, stack.table_name())
        .create_table_if_missing()
        .await
        .context("creating the state table")?;
    let state_machines = tenantry::workflows::deploy_all(
        &aws_sdk_sfn::Client::new(&aws),
        stack.region(),
        tenantry::aws::LOCAL_ACCOUNT_ID,
        tenantry::aws::LOCAL_STATES_ROLE_ARN,
    )
    .await
    .map_err(anyhow::Error::msg)?;

    let sqs = aws_sdk_sqs::Client::new(&aws);
    let dead_letter_queue_url = create_queue(&sqs, DEAD_LETTER_QUEUE, BTreeMap::new()).await?;
    let dlq_arn = queue_arn(&sqs, &dead_letter_queue_url).await?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": MAX_RECEIVE_COUNT.to_string(),
    });
    let queue_url = create_queue(
        &sqs,
        QUEUE,
        BTreeMap::from([
            ("RedrivePolicy", redrive.to_string()),
            ("VisibilityTimeout", VISIBILITY_TIMEOUT_SECS.to_string()),
        ]),
    )
    .await?;
    let queue_arn = queue_arn(&sqs, &queue_url).await?;

    let event_bus = tenantry::events::event_bus();
    let events = aws_sdk_eventbridge::Client::new(&aws);
    let buses = events
        .list_event_buses()
        .name_prefix(&event_bus)
        .send()
        .await?;
    if !buses
        .event_buses()
        .iter()
        .any(|b| b.name() == Some(event_bus.as_str()))
    {
        events.create_event_bus().name(&event_bus).send().await?;
    }
    let route = |rule: &'static str, pattern: serde_json::Value, description: &'static str| {
        let (events, bus, queue) = (&events, &event_bus, &queue_arn);
        async move {
            events
                .put_rule()
                .name(rule)
                .event_bus_name(bus)
                .event_pattern(pattern.to_string())
                .description(description)
                .send()
                .await?;
            let target = aws_sdk_eventbridge::types::Target::builder()
                .id("intake-queue")
                .arn(queue)
                .build()?;
            events
                .put_targets()
                .rule(rule)
                .event_bus_name(bus)
                .targets(target)
                .send()
                .await?;
            anyhow::Ok(())
        }
    };
    let requests = tenantry::events::request_pattern();
    route(REQUEST_RULE, requests, "Tenantry requests → intake queue").await?;
    // The local stand-in for the template's rule on the default bus: CloudTrail's records of
    // mutating calls (tests put CloudTrail-shaped events here; moto emits none).
    let changes = tenantry::events::change_pattern();
    route(
        CHANGE_RULE,
        changes,
        "Changes to AWS resources (CloudTrail) → intake queue",
    )
    .await?;

    let invoke_url = format!(
        "{}/2015-03-31/functions/{}intake/invocations",
        stack.endpoint(),
        tenantry::workflows::NAME_PREFIX
    );
    let moto = stack.moto_sdk_config().await;
    let pollers = (0..concurrency.max(1))
        .map(|_| {
            tokio::spawn(poll(
                moto.clone(),
                queue_url.clone(),
                queue_arn.clone(),
                invoke_url.clone(),
                stack.region().to_owned(),
            ))
        })
        .collect();
    Ok(ControlPlane {
        state_machines,
        event_bus,
        queue_url,
        dead_letter_queue_url,
        pollers,
    })
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: BTreeMap<&str, String>,
) -> anyhow::Result<String> {
    let mut create = sqs.create_queue().queue_name(name);
    for (k, v) in attributes {
        create = create.attributes(aws_sdk_sqs::types::QueueAttributeName::from(k), v);
    }
    let out = create
        .send()
        .await
        .with_context(|| format!("creating queue {name}"))?;
    out.queue_url()
        .map(str::to_owned)
        .context("CreateQueue returned no URL")
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<String> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await?;
    out.attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .cloned()
        .context("queue has no ARN")
}

/// One poller of the event source mapping: queue → `intake`, batches of up to 10 (the mapping
/// runs [`esm_concurrency`] of them).
async fn poll(
    aws: aws_config::SdkConfig,
    queue_url: String,
    queue_arn: String,
    invoke_url: String,
    region: String,
) {
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let http = reqwest::Client::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(IN_FLIGHT_VISIBILITY_SECS)
            .wait_time_seconds(1)
            .send()
            .await;
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!("intake queue poll failed: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let records: Vec<serde_json::Value> = messages
            .iter()
            .map(|m| {
                serde_json::json!({
                    "messageId": m.message_id(),
                    "receiptHandle": m.receipt_handle(),
                    "body": m.body(),
                    "md5OfBody": m.md5_of_body(),
                    "attributes": {},
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": queue_arn,
                    "awsRegion": region,
                })
            })
            .collect();
        let answer = http
            .post(&invoke_url)
            .json(&serde_json::json!({ "Records": records }))
            .send()
            .await;
        let failed: Vec<String> = match answer {
            Ok(resp) if resp.headers().get("x-amz-function-error").is_none() => {
                let body: serde_json::Value = resp.json().await.unwrap_or_default();
                body["batchItemFailures"]
                    .as_array()
                    .map(|items| {
                        items
                            .iter()
                            .filter_map(|i| i["itemIdentifier"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            }
            // A failed or crashed invocation: every message comes back after the timeout.
            _ => messages
                .iter()
                .filter_map(|m| m.message_id().map(str::to_owned))
                .collect(),
        };
        for m in &messages {
            if failed.iter().any(|f| Some(f.as_str()) == m.message_id()) {
                if let Some(handle) = m.receipt_handle() {
                    let retry = sqs
                        .change_message_visibility()
                        .queue_url(&queue_url)
                        .receipt_handle(handle)
                        .visibility_timeout(VISIBILITY_TIMEOUT_SECS)
                        .send()
                        .await;
                    if let Err(e) = retry {
                        tracing::warn!("returning an intake message to the queue failed: {e}");
                    }
                }
                continue;
            }
            if let Some(handle) = m.receipt_handle() {
                if let Err(e) = sqs
                    .delete_message()
                    .queue_url(&queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                {
                    tracing::warn!("deleting an intake message failed: {e}");
                }
            }
        }
    }
}
