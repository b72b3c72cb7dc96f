//! The local stack end to end: moto + gateway + Kubernetes double, each test on its own ports.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tenantry_gateway::{CrashRule, Durations, Faults, LocalStack, StackOptions};

async fn start() -> LocalStack {
    let t = Instant::now();
    let stack = LocalStack::start(StackOptions::default())
        .await
        .expect("local stack starts");
    eprintln!(
        "stack up in {:?} (gateway {}, moto {}, kube {})",
        t.elapsed(),
        stack.endpoint(),
        stack.moto_endpoint(),
        stack.kube_endpoint()
    );
    stack
}

async fn create_table(stack: &LocalStack, name: &str) {
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk_config().await);
    ddb.create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("PK")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("PK")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create table");
}

/// Raw Lambda Invoke through the gateway.
async fn invoke(
    stack: &LocalStack,
    function: &str,
    payload: Value,
) -> (u16, Option<String>, Value) {
    let url = format!(
        "{}/2015-03-31/functions/{}/invocations",
        stack.endpoint(),
        function.replace(':', "%3A")
    );
    let r = reqwest::Client::new()
        .post(url)
        .body(payload.to_string())
        .send()
        .await
        .expect("invoke");
    let status = r.status().as_u16();
    let fe = r
        .headers()
        .get("x-amz-function-error")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = r.json().await.expect("json body");
    (status, fe, body)
}

#[tokio::test]
async fn dynamodb_calls_are_forwarded_and_counted() {
    let stack = start().await;
    create_table(&stack, "t1").await;
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk_config().await);
    let out = ddb.describe_table().table_name("t1").send().await.unwrap();
    assert_eq!(out.table().unwrap().table_name(), Some("t1"));

    let calls = stack.calls();
    assert_eq!(calls.count("dynamodb", "CreateTable"), 1);
    assert_eq!(calls.count("dynamodb", "DescribeTable"), 1);
    let create = calls
        .calls
        .iter()
        .find(|c| c.operation == "CreateTable")
        .unwrap();
    assert!(create.mutating);
    assert_eq!(create.status, 200);
    assert_eq!(create.invocation, None);
    assert_eq!(calls.by_service()["dynamodb"], (1, 1));
    assert_eq!((calls.mutating_count(), calls.read_count()), (1, 1));

    // The control API shows the same.
    let http = reqwest::Client::new();
    let remote: Value = http
        .get(format!("{}/_tenantry/calls", stack.endpoint()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(remote["calls"].as_array().unwrap().len(), 2);
    http.post(format!("{}/_tenantry/calls/reset", stack.endpoint()))
        .send()
        .await
        .unwrap();
    assert!(stack.calls().calls.is_empty());
    stack.shutdown().await;
}

#[tokio::test]
async fn throttling_is_retried_then_surfaces() {
    let stack = start().await;
    create_table(&stack, "t1").await;
    stack.reset_calls();
    stack.set_faults(Faults {
        throttle_percent: 100,
        seed: Some(1),
        ..Faults::default()
    });
    let config = stack
        .sdk_config()
        .await
        .to_builder()
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(5)),
        )
        .build();
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let err = ddb
        .describe_table()
        .table_name("t1")
        .send()
        .await
        .expect_err("throttled");
    let code = err.as_service_error().and_then(|e| {
        use aws_smithy_types::error::metadata::ProvideErrorMetadata;
        e.code().map(str::to_owned)
    });
    assert_eq!(code.as_deref(), Some("ThrottlingException"));
    let calls = stack.calls();
    assert_eq!(
        calls.count("dynamodb", "DescribeTable"),
        3,
        "one call per attempt"
    );
    assert!(calls
        .calls
        .iter()
        .all(|c| c.fault.as_deref() == Some("throttle") && c.status == 400));

    // Set through the control API: 5xx for every call, then off again.
    let http = reqwest::Client::new();
    http.put(format!("{}/_tenantry/faults", stack.endpoint()))
        .json(&json!({"serverErrorPercent": 100}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let err = ddb
        .describe_table()
        .table_name("t1")
        .send()
        .await
        .expect_err("503");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(503));
    stack.set_faults(Faults::default());
    ddb.describe_table()
        .table_name("t1")
        .send()
        .await
        .expect("no faults");
    stack.shutdown().await;
}

#[tokio::test]
async fn lambda_invoke_runs_handlers() {
    let stack = start().await;
    create_table(&stack, "tenantry").await;
    stack.reset_calls();

    let (status, fe, body) = invoke(&stack, "tenantry-selftest", json!({"attempt": 0})).await;
    assert_eq!((status, fe), (200, None), "{body}");
    assert_eq!(body["tableStatus"], "ACTIVE");
    assert_eq!(body["attempt"], 1);

    // Full ARN, function error with the stable errorType.
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:tenantry-selftest";
    let (status, fe, body) = invoke(&stack, arn, json!({"failWith": "Tenantry.Conflict"})).await;
    assert_eq!((status, fe.as_deref()), (200, Some("Unhandled")));
    assert_eq!(body["errorType"], "Tenantry.Conflict");
    assert!(body["errorMessage"].as_str().unwrap().contains("Conflict"));

    let (status, _, body) = invoke(&stack, "tenantry-nope", json!({})).await;
    assert_eq!(status, 404, "{body}");

    let calls = stack.calls();
    let by_selftest: Vec<_> = calls.for_function("selftest").collect();
    assert_eq!(by_selftest.len(), 1);
    assert_eq!(by_selftest[0].operation, "DescribeTable");
    assert_eq!(calls.invocations.len(), 2);
    assert_eq!(calls.invocations[0].outcome, "succeeded");
    assert_eq!(calls.invocations[0].aws_calls, 1);
    assert_eq!(calls.invocations[1].outcome, "failed");
    assert_eq!(
        calls.invocations[1].error_type.as_deref(),
        Some("Tenantry.Conflict")
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn step_functions_run_handlers_and_catch_error_types() {
    let stack = start().await;
    create_table(&stack, "tenantry").await;
    let conf = stack.sdk_config().await;
    let sfn = aws_sdk_sfn::Client::new(&conf);
    let fn_arn = "arn:aws:lambda:us-east-1:123456789012:function:tenantry-selftest";
    let definition = json!({
        "StartAt": "Poll",
        "States": {
            "Poll": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": fn_arn, "Payload.$": "$"},
                "OutputPath": "$.Payload",
                "Next": "Fail?"
            },
            "Fail?": {
                "Type": "Task",
                "Resource": fn_arn,
                "Parameters": {"failWith": "Tenantry.Conflict"},
                "Catch": [{"ErrorEquals": ["Tenantry.Conflict"], "ResultPath": "$.caught", "Next": "Done"}],
                "End": true
            },
            "Done": {"Type": "Succeed"}
        }
    });
    let sm = sfn
        .create_state_machine()
        .name("selftest")
        .role_arn("arn:aws:iam::123456789012:role/sfn")
        .definition(definition.to_string())
        .send()
        .await
        .unwrap();
    let exec = sfn
        .start_execution()
        .state_machine_arn(sm.state_machine_arn())
        .input(json!({"attempt": 0}).to_string())
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let out = loop {
        let d = sfn
            .describe_execution()
            .execution_arn(exec.execution_arn())
            .send()
            .await
            .unwrap();
        if d.status().as_str() != "RUNNING" || Instant::now() > deadline {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(out.status().as_str(), "SUCCEEDED", "{out:?}");
    let output: Value = serde_json::from_str(out.output().unwrap()).unwrap();
    assert_eq!(output["attempt"], 1);
    assert_eq!(output["caught"]["Error"], "Tenantry.Conflict", "{output}");
    let cause: Value = serde_json::from_str(output["caught"]["Cause"].as_str().unwrap()).unwrap();
    assert_eq!(cause["errorType"], "Tenantry.Conflict");
    let calls = stack.calls();
    assert_eq!(calls.invocations_of("selftest"), 2);
    stack.shutdown().await;
}

#[tokio::test]
async fn crash_after_nth_call_aborts_the_handler() {
    let stack = start().await;
    create_table(&stack, "tenantry").await;
    stack.reset_calls();
    stack.set_faults(Faults {
        crash_after_calls: Some(CrashRule::new("selftest", 1)),
        ..Faults::default()
    });
    let (status, fe, body) = invoke(&stack, "tenantry-selftest", json!({})).await;
    assert_eq!((status, fe.as_deref()), (200, Some("Unhandled")));
    assert_eq!(body["errorType"], "Runtime.ExitError");
    assert_eq!(
        body["errorMessage"],
        "tenantry gateway: crashed after AWS call 1"
    );
    let calls = stack.calls();
    // The call happened (forwarded to moto), then the handler died.
    assert_eq!(calls.count("dynamodb", "DescribeTable"), 1);
    assert_eq!(calls.calls[0].status, 200);
    assert_eq!(calls.invocations[0].outcome, "crashed");

    // `times` was 1: the next invocation runs normally.
    let (status, fe, body) = invoke(&stack, "tenantry-selftest", json!({})).await;
    assert_eq!((status, fe), (200, None), "{body}");
    stack.shutdown().await;
}

#[tokio::test]
async fn eks_extras_served_against_moto_clusters() {
    use aws_sdk_eks::types::{AccessScope, AccessScopeType, VpcConfigRequest};
    let stack = start().await;
    let eks = aws_sdk_eks::Client::new(&stack.sdk_config().await);

    // Unknown cluster.
    let err = eks
        .create_addon()
        .cluster_name("nope")
        .addon_name("coredns")
        .send()
        .await
        .expect_err("no cluster");
    assert!(
        err.as_service_error()
            .unwrap()
            .is_resource_not_found_exception(),
        "{err:?}"
    );

    stack.set_durations(Durations {
        cluster_creating_secs: 1,
        ..Durations::default()
    });
    let created = eks
        .create_cluster()
        .name("dev")
        .version("1.34")
        .role_arn("arn:aws:iam::123456789012:role/eks")
        .resources_vpc_config(
            VpcConfigRequest::builder()
                .subnet_ids("subnet-1")
                .subnet_ids("subnet-2")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        created.cluster().unwrap().status().unwrap().as_str(),
        "CREATING"
    );
    let d = eks.describe_cluster().name("dev").send().await.unwrap();
    assert_eq!(d.cluster().unwrap().status().unwrap().as_str(), "CREATING");
    // Add-ons need an ACTIVE cluster.
    assert!(eks
        .create_addon()
        .cluster_name("dev")
        .addon_name("coredns")
        .send()
        .await
        .is_err());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let d = eks.describe_cluster().name("dev").send().await.unwrap();
    assert_eq!(d.cluster().unwrap().status().unwrap().as_str(), "ACTIVE");
    // The cluster endpoint is its Kubernetes double.
    assert_eq!(
        d.cluster().unwrap().endpoint(),
        Some(stack.kube_endpoint_for("dev").as_str())
    );

    // Catalogue.
    let versions = eks
        .describe_addon_versions()
        .kubernetes_version("1.34")
        .addon_name("vpc-cni")
        .send()
        .await
        .unwrap();
    let info = &versions.addons()[0];
    let default = info
        .addon_versions()
        .iter()
        .find(|v| v.compatibilities().iter().any(|c| c.default_version()))
        .and_then(|v| v.addon_version())
        .unwrap()
        .to_owned();
    let all = eks.describe_addon_versions().send().await.unwrap();
    assert_eq!(all.addons().len(), 6);

    // Add-on lifecycle.
    let a = eks
        .create_addon()
        .cluster_name("dev")
        .addon_name("vpc-cni")
        .configuration_values(r#"{"enableNetworkPolicy":"true"}"#)
        .tags("tenantry:platform", "dev")
        .send()
        .await
        .unwrap();
    let addon = a.addon().unwrap();
    assert_eq!(addon.addon_version(), Some(default.as_str()));
    let again = eks
        .create_addon()
        .cluster_name("dev")
        .addon_name("vpc-cni")
        .send()
        .await;
    assert!(again
        .unwrap_err()
        .as_service_error()
        .unwrap()
        .is_resource_in_use_exception());
    let d = eks
        .describe_addon()
        .cluster_name("dev")
        .addon_name("vpc-cni")
        .send()
        .await
        .unwrap();
    assert_eq!(d.addon().unwrap().status().unwrap().as_str(), "ACTIVE");
    assert_eq!(
        d.addon().unwrap().tags().unwrap()["tenantry:platform"],
        "dev"
    );
    let listed = eks.list_addons().cluster_name("dev").send().await.unwrap();
    assert_eq!(listed.addons(), ["vpc-cni"]);
    let tags = eks
        .list_tags_for_resource()
        .resource_arn(addon.addon_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags().unwrap()["tenantry:platform"], "dev");

    // Access entry round trip.
    let principal = "arn:aws:iam::123456789012:role/tenant-a-owners";
    eks.create_access_entry()
        .cluster_name("dev")
        .principal_arn(principal)
        .kubernetes_groups("tenant-a")
        .send()
        .await
        .unwrap();
    eks.associate_access_policy()
        .cluster_name("dev")
        .principal_arn(principal)
        .policy_arn("arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy")
        .access_scope(
            AccessScope::builder()
                .r#type(AccessScopeType::Namespace)
                .namespaces("tenant-a")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let e = eks
        .describe_access_entry()
        .cluster_name("dev")
        .principal_arn(principal)
        .send()
        .await
        .unwrap();
    assert_eq!(e.access_entry().unwrap().kubernetes_groups(), ["tenant-a"]);
    let p = eks
        .list_associated_access_policies()
        .cluster_name("dev")
        .principal_arn(principal)
        .send()
        .await
        .unwrap();
    assert_eq!(
        p.associated_access_policies()[0]
            .access_scope()
            .unwrap()
            .namespaces(),
        ["tenant-a"]
    );
    eks.delete_access_entry()
        .cluster_name("dev")
        .principal_arn(principal)
        .send()
        .await
        .unwrap();
    assert!(eks
        .describe_access_entry()
        .cluster_name("dev")
        .principal_arn(principal)
        .send()
        .await
        .is_err());

    // Version update.
    let u = eks
        .update_cluster_version()
        .name("dev")
        .version("1.35")
        .send()
        .await
        .unwrap();
    let id = u.update().unwrap().id().unwrap().to_owned();
    let d = eks
        .describe_update()
        .name("dev")
        .update_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(d.update().unwrap().status().unwrap().as_str(), "Successful");
    let c = eks.describe_cluster().name("dev").send().await.unwrap();
    assert_eq!(c.cluster().unwrap().version(), Some("1.35"));

    // Deleting the cluster drops its extras.
    eks.delete_cluster().name("dev").send().await.unwrap();
    let err = eks
        .describe_addon()
        .cluster_name("dev")
        .addon_name("vpc-cni")
        .send()
        .await
        .unwrap_err();
    assert!(err
        .as_service_error()
        .unwrap()
        .is_resource_not_found_exception());

    let calls = stack.calls();
    // unknown cluster, cluster still CREATING, created, duplicate
    assert_eq!(calls.count("eks", "CreateAddon"), 4);
    assert_eq!(calls.count("eks", "DescribeAddonVersions"), 2);
    stack.shutdown().await;
}

#[tokio::test]
async fn kube_double_server_side_apply_over_http() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Namespace, ResourceQuota};
    use k8s_openapi::api::networking::v1::NetworkPolicy;
    use k8s_openapi::api::scheduling::v1::PriorityClass;
    use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
    let stack = start().await;
    let client = stack.kube_client_for("dev").unwrap();
    let namespaces: Api<Namespace> = Api::all(client);
    let ns: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "tenant-a", "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}
    }))
    .unwrap();
    let applied = namespaces
        .patch(
            "tenant-a",
            &PatchParams::apply("tenantry"),
            &Patch::Apply(&ns),
        )
        .await
        .unwrap();
    assert_eq!(
        applied.metadata.labels.unwrap()["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    // Another manager changing the same field conflicts unless forced.
    let other: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "tenant-a", "labels": {"pod-security.kubernetes.io/enforce": "baseline"}}
    }))
    .unwrap();
    let conflict = namespaces
        .patch(
            "tenant-a",
            &PatchParams::apply("drift"),
            &Patch::Apply(&other),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(conflict, kube::Error::Api(ref s) if s.code == 409),
        "{conflict:?}"
    );
    let list = namespaces.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let got = namespaces.get("tenant-a").await.unwrap();
    let managers: Vec<_> = got
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.is_empty() || managers == ["tenantry"],
        "{managers:?}"
    );

    // Namespaced and cluster-scoped kinds Tenantry applies.
    let client = stack.kube_client_for("dev").unwrap();
    // Clusters are isolated.
    let elsewhere: Api<Namespace> = Api::all(stack.kube_client().unwrap());
    assert!(elsewhere
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), "tenant-a");
    let deny: NetworkPolicy = serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": "tenant-a"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    }))
    .unwrap();
    let pp = PatchParams::apply("tenantry").force();
    policies
        .patch("default-deny", &pp, &Patch::Apply(&deny))
        .await
        .unwrap();
    policies
        .patch("default-deny", &pp, &Patch::Apply(&deny))
        .await
        .unwrap();
    assert_eq!(
        policies
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "tenant-a");
    let quota: ResourceQuota = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "tenant-quota", "namespace": "tenant-a"},
        "spec": {"hard": {"requests.cpu": "4", "pods": "50"}}
    }))
    .unwrap();
    quotas
        .patch("tenant-quota", &pp, &Patch::Apply(&quota))
        .await
        .unwrap();
    let classes: Api<PriorityClass> = Api::all(client.clone());
    let class: PriorityClass = serde_json::from_value(json!({
        "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": {"name": "tenant-default"}, "value": 1000
    }))
    .unwrap();
    classes
        .patch("tenant-default", &pp, &Patch::Apply(&class))
        .await
        .unwrap();
    assert_eq!(classes.get("tenant-default").await.unwrap().value, 1000);
    let deployments: Api<Deployment> = Api::namespaced(client, "tenant-a");
    assert!(deployments.get_opt("nothing").await.unwrap().is_none());
    namespaces
        .delete("tenant-a", &DeleteParams::default())
        .await
        .unwrap();
    assert!(namespaces.get_opt("tenant-a").await.unwrap().is_none());
    stack.shutdown().await;
}

#[tokio::test]
async fn parallel_stacks_do_not_collide() {
    let (a, b) = tokio::join!(start(), start());
    assert_ne!(a.endpoint(), b.endpoint());
    assert_ne!(a.moto_endpoint(), b.moto_endpoint());
    create_table(&a, "only-in-a").await;
    let ddb_b = aws_sdk_dynamodb::Client::new(&b.sdk_config().await);
    let tables = ddb_b.list_tables().send().await.unwrap();
    assert!(tables.table_names().is_empty());
    assert_eq!(b.calls().count("dynamodb", "CreateTable"), 0);
    tokio::join!(a.shutdown(), b.shutdown());
}
