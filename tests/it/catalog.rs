//! The Service Catalog product's custom resource (`Custom::TenantryPlatform`) on the local stack.
//! moto cannot launch a Service Catalog product nor run CloudFormation's custom-resource
//! protocol, so the test plays CloudFormation: it invokes the `catalog` function through the
//! gateway's Lambda Invoke API with events shaped as CloudFormation sends them, and a local HTTP
//! server stands in for the pre-signed ResponseURL, receiving the answers.

use crate::platform::{env, Env};
use serde_json::{json, Map, Value};
use std::time::Duration;
use tenantry::store::LifecycleState;
use tenantry_gateway::inspect::tagged_resources;
use tenantry_integration::invoke;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Longest wait for one answer (a provision on the local stack takes tens of seconds).
const ANSWER_WAIT: Duration = Duration::from_secs(300);

/// One PUT the ResponseURL server received.
#[derive(Debug)]
struct Put {
    method: String,
    path: String,
    body: Value,
    bytes: usize,
}

/// The stand-in for CloudFormation's pre-signed ResponseURLs: a plain HTTP/1.1 server that
/// answers 200 to every request and hands each on.
struct ResponseUrls {
    base: String,
    received: mpsc::UnboundedReceiver<Put>,
}

impl ResponseUrls {
    async fn start() -> ResponseUrls {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let (tx, received) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Some(put) = read_request(&mut socket).await {
                        let _ = tx.send(put);
                    }
                    let ok = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                    let _ = socket.write_all(ok.as_bytes()).await;
                });
            }
        });
        ResponseUrls { base, received }
    }

    /// A pre-signed-looking URL for one event (the signature is what must never be logged).
    fn url(&self, name: &str) -> String {
        format!("{}/{name}?X-Amz-Signature=not-for-logs", self.base)
    }

    async fn next(&mut self) -> Put {
        match tokio::time::timeout(ANSWER_WAIT, self.received.recv()).await {
            Ok(Some(put)) => put,
            _ => panic!("no answer reached the ResponseURL within {ANSWER_WAIT:?}"),
        }
    }

    /// Nothing more arrives within `wait`.
    async fn quiet(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, self.received.recv())
            .await
            .is_err()
    }
}

/// Reads one HTTP/1.1 request: request line, headers, a `content-length` body.
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Put> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let mut request_line = head.lines().next()?.split(' ');
    let body = &data[head_end..];
    Some(Put {
        method: request_line.next()?.to_owned(),
        path: request_line.next()?.to_owned(),
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
        bytes: body.len(),
    })
}

const STACK_ID: &str =
    "arn:aws:cloudformation:us-east-1:123456789012:stack/SC-123456789012-pp-abc/0f1e2d3c";

/// The product's properties for platform `id`, as CloudFormation hands them over (strings; a
/// `CommaDelimitedList` as an array). A small platform: 2 AZs, one NAT, one node.
fn properties(id: &str) -> Map<String, Value> {
    let props = json!({
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:tenantry-catalog",
        "ServiceTimeout": "3000",
        "PlatformId": id,
        "Environment": "dev",
        "Region": "us-east-1",
        "KubernetesVersion": "1.35",
        "VpcCidr": "10.40.0.0/16",
        "AzCount": "2",
        "NatMode": "single",
        "PublicAccessCidrs": [""],
        "NodeInstanceType": "t3.medium",
        "NodeMinSize": "1",
        "NodeDesiredSize": "1",
        "NodeMaxSize": "2",
        "AdminPrincipals": [""],
        "ComplianceProfile": "cis-eks",
        "DriftRemediation": "report-only",
        "CostCenter": "cc-4242"
    });
    props.as_object().cloned().expect("an object")
}

/// A custom-resource event as CloudFormation sends it.
fn event(
    request_type: &str,
    request_id: &str,
    response_url: String,
    physical: Option<&str>,
    props: &Map<String, Value>,
    old: Option<&Map<String, Value>>,
) -> Value {
    let mut e = json!({
        "RequestType": request_type,
        "ServiceToken": props["ServiceToken"],
        "ResponseURL": response_url,
        "StackId": STACK_ID,
        "RequestId": request_id,
        "LogicalResourceId": "Platform",
        "ResourceType": "Custom::TenantryPlatform",
        "ResourceProperties": props,
    });
    if let Some(p) = physical {
        e["PhysicalResourceId"] = json!(p);
    }
    if let Some(o) = old {
        e["OldResourceProperties"] = json!(o);
    }
    e
}

/// The executions of a workflow on the stack, by name.
async fn executions(env: &Env, workflow: &str) -> Vec<String> {
    let sfn = aws_sdk_sfn::Client::new(&env.aws);
    let machine = format!(
        "arn:aws:states:us-east-1:{}:stateMachine:{}{workflow}",
        tenantry::aws::LOCAL_ACCOUNT_ID,
        tenantry::workflows::NAME_PREFIX
    );
    let listed = sfn
        .list_executions()
        .state_machine_arn(machine)
        .send()
        .await
        .expect("list executions");
    listed
        .executions()
        .iter()
        .map(|e| e.name().to_owned())
        .collect()
}

/// What every answer must be: a PUT of at most 4096 bytes echoing the event's ids, whose Data
/// values are all strings.
fn assert_well_formed(put: &Put, request_id: &str) {
    assert_eq!(put.method, "PUT");
    assert!(put.bytes <= 4096, "{} bytes", put.bytes);
    assert_eq!(put.body["RequestId"], request_id, "{}", put.body);
    assert_eq!(put.body["StackId"], STACK_ID);
    assert_eq!(put.body["LogicalResourceId"], "Platform");
    let data = put.body["Data"].as_object().expect("Data");
    assert!(data.values().all(Value::is_string), "{data:?}");
}

fn status_of(put: &Put) -> (&str, &str, &str) {
    let field = |k: &str| put.body[k].as_str().unwrap_or_default();
    (
        field("Status"),
        field("PhysicalResourceId"),
        field("Reason"),
    )
}

#[tokio::test]
async fn a_catalog_platform_is_created_updated_and_deleted_and_a_replay_builds_nothing() {
    let env = env().await;
    let mut urls = ResponseUrls::start().await;
    let id = "catalog";
    let props = properties(id);

    // Create: the platform is provisioned and CloudFormation hears SUCCESS with its outputs.
    let create_id = "0c1d7e52-1111-4a6b-9d42-3f9a0d9b9a01";
    let create = event("Create", create_id, urls.url("create"), None, &props, None);
    let started = invoke(&env.stack, "catalog", &create)
        .await
        .expect("catalog");
    assert_eq!(started["started"], true, "{started}");
    let put = urls.next().await;
    assert_well_formed(&put, create_id);
    assert_eq!(put.path, "/create?X-Amz-Signature=not-for-logs");
    let (status, physical, reason) = status_of(&put);
    assert_eq!((status, physical), ("SUCCESS", id), "{reason}");
    let data = &put.body["Data"];
    assert_eq!(data["PlatformId"], id);
    assert_eq!(data["clusterName"], "catalog-dev");
    let vpc = data["vpcId"].as_str().unwrap_or_default();
    assert!(vpc.starts_with("vpc-"), "{}", put.body);
    let status = env.store.get_status(id).await.unwrap().unwrap().value;
    assert_eq!(status.state, LifecycleState::Active);
    let built = tagged_resources(&env.aws, id).await.unwrap();
    assert_eq!((built["ec2:vpc"], built["ec2:nat-gateway"]), (1, 1));

    // The same Create sent again: its execution exists; nothing new starts or is built.
    let again = invoke(&env.stack, "catalog", &create)
        .await
        .expect("replay");
    assert_eq!(again["started"], false, "{again}");
    assert!(urls.quiet(Duration::from_secs(3)).await, "no second answer");
    assert_eq!(executions(&env, "provision-platform").await, [create_id]);
    assert_eq!(executions(&env, "catalog-request").await, [create_id]);
    assert_eq!(tagged_resources(&env.aws, id).await.unwrap(), built);

    // Update one parameter (the node group's maximum): SUCCESS, and EKS has the new size.
    let mut bigger = props.clone();
    bigger.insert("NodeMaxSize".into(), json!("3"));
    let update_id = "0c1d7e52-2222-4a6b-9d42-3f9a0d9b9a02";
    let update = event(
        "Update",
        update_id,
        urls.url("update"),
        Some(id),
        &bigger,
        Some(&props),
    );
    invoke(&env.stack, "catalog", &update)
        .await
        .expect("catalog");
    let put = urls.next().await;
    assert_well_formed(&put, update_id);
    let (status, physical, reason) = status_of(&put);
    assert_eq!((status, physical), ("SUCCESS", id), "{reason}");
    let eks = aws_sdk_eks::Client::new(&env.aws);
    let group = eks
        .describe_nodegroup()
        .cluster_name("catalog-dev")
        .nodegroup_name("catalog-dev-general")
        .send()
        .await
        .expect("node group");
    let scaling = group.nodegroup().and_then(|g| g.scaling_config()).unwrap();
    assert_eq!(scaling.max_size(), Some(3));

    // Delete: decommissioned, nothing left, SUCCESS.
    let delete_id = "0c1d7e52-3333-4a6b-9d42-3f9a0d9b9a03";
    let delete = event(
        "Delete",
        delete_id,
        urls.url("delete"),
        Some(id),
        &bigger,
        None,
    );
    invoke(&env.stack, "catalog", &delete)
        .await
        .expect("catalog");
    let put = urls.next().await;
    assert_well_formed(&put, delete_id);
    let (status, physical, reason) = status_of(&put);
    assert_eq!((status, physical), ("SUCCESS", id), "{reason}");
    let left = tagged_resources(&env.aws, id).await.unwrap();
    assert!(left.values().all(|n| *n == 0), "left behind: {left:?}");
    let status = env.store.get_status(id).await.unwrap().unwrap().value;
    assert_eq!(status.state, LifecycleState::Decommissioned);
    assert!(env.store.list_resources(id).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_bad_parameter_or_a_failing_workflow_answers_failed_saying_why() {
    let env = env().await;
    let mut urls = ResponseUrls::start().await;

    // A bad parameter: FAILED naming it; nothing recorded, nothing started.
    let mut bad = properties("badcidr");
    bad.insert("VpcCidr".into(), json!("8.8.0.0/16"));
    let bad_id = "0c1d7e52-4444-4a6b-9d42-3f9a0d9b9a04";
    let create = event("Create", bad_id, urls.url("bad"), None, &bad, None);
    invoke(&env.stack, "catalog", &create)
        .await
        .expect("catalog");
    let put = urls.next().await;
    assert_well_formed(&put, bad_id);
    let (status, physical, reason) = status_of(&put);
    assert_eq!(status, "FAILED");
    assert!(reason.contains("property VpcCidr"), "{reason}");
    assert!(physical.starts_with("tenantry-not-created-"), "{physical}");
    assert!(env.store.get_spec("badcidr").await.unwrap().is_none());
    assert!(env.store.get_request(bad_id).await.unwrap().is_none());
    assert!(executions(&env, "provision-platform").await.is_empty());

    // CloudFormation's rollback deletes what the failed Create answered: nothing to do.
    let rollback_id = "0c1d7e52-5555-4a6b-9d42-3f9a0d9b9a05";
    let rollback = event(
        "Delete",
        rollback_id,
        urls.url("rb"),
        Some(physical),
        &bad,
        None,
    );
    invoke(&env.stack, "catalog", &rollback)
        .await
        .expect("catalog");
    let put = urls.next().await;
    assert_well_formed(&put, rollback_id);
    let (status, _, reason) = status_of(&put);
    assert_eq!(status, "SUCCESS", "{reason}");
    assert!(executions(&env, "decommission-platform").await.is_empty());

    // A failing workflow: an IAM role of the platform's name that is someone else's makes the
    // identity phase refuse it. FAILED, with the phase and the reason.
    let iam = aws_sdk_iam::Client::new(&env.aws);
    iam.create_role()
        .role_name("tenantry-broken-dev-cluster")
        .assume_role_policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "eks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
            .to_string(),
        )
        .send()
        .await
        .expect("someone else's role");
    let broken_id = "0c1d7e52-6666-4a6b-9d42-3f9a0d9b9a06";
    let props = properties("broken");
    let create = event("Create", broken_id, urls.url("broken"), None, &props, None);
    invoke(&env.stack, "catalog", &create)
        .await
        .expect("catalog");
    let put = urls.next().await;
    assert_well_formed(&put, broken_id);
    let (status, physical, reason) = status_of(&put);
    assert_eq!(status, "FAILED", "{reason}");
    assert!(reason.contains("phase identity"), "{reason}");
    assert!(reason.contains("tenantry-broken-dev-cluster"), "{reason}");
    assert_eq!(
        physical, "broken",
        "the rollback's Delete must find what was built"
    );

    // A platform still being built as the ServiceTimeout nears: FAILED before it runs out (here
    // a timeout of 31 s leaves no time for a second poll), saying the build goes on.
    let mut slow = properties("slow");
    slow.insert("ServiceTimeout".into(), json!("31"));
    let slow_id = "0c1d7e52-7777-4a6b-9d42-3f9a0d9b9a07";
    let create = event("Create", slow_id, urls.url("slow"), None, &slow, None);
    let asked = std::time::Instant::now();
    invoke(&env.stack, "catalog", &create)
        .await
        .expect("catalog");
    let put = urls.next().await;
    assert!(
        asked.elapsed() < Duration::from_secs(31),
        "{:?}",
        asked.elapsed()
    );
    assert_well_formed(&put, slow_id);
    let (status, physical, reason) = status_of(&put);
    assert_eq!(status, "FAILED", "{reason}");
    assert!(reason.contains("ServiceTimeout neared"), "{reason}");
    assert_eq!(
        physical, "slow",
        "the build goes on; the rollback's Delete finds it"
    );
}
