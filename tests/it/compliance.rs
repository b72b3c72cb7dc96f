//! Compliance sweeps end to end: `ComplianceSweepRequested` on the bus → intake → the
//! `compliance-sweep` workflow (the `compliance` function reads the live AWS and Kubernetes
//! state and judges every control) → a report in the state store and `ComplianceSweepCompleted`.
//!
//! A freshly provisioned example passes every control; out-of-band violations (the drift test's
//! and a few only compliance sees) fail exactly the controls they should; once repaired (a drift
//! check with remediation, and by hand what is not Tenantry's), every control passes again.

use aws_sdk_securityhub::types::{AwsSecurityFinding, ComplianceStatus, RecordState};
use aws_sdk_sfn::types::ExecutionStatus;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::BTreeSet;
use tenantry::compliance::findings::finding_id;
use tenantry::compliance::{ComplianceReport, Status};
use tenantry::events::RequestKind;
use tenantry::spec::DriftRemediation;

use crate::drift::{break_platform, check};
use crate::observe::{CLUSTER, TENANT};
use crate::platform::{env, mutating, platform_calls, Env};

/// Runs a sweep to its end (it must succeed), checks it wrote nothing, returns its report.
pub(crate) async fn sweep(env: &Env, request_id: &str) -> ComplianceReport {
    env.stack.reset_calls();
    let run = env.sweep_compliance(request_id).await;
    assert_eq!(
        run.status,
        ExecutionStatus::Succeeded,
        "{request_id}: {:?} {:?}",
        run.cause,
        run.failures()
    );
    // Its only writes are its Security Hub findings (batches of at most 100).
    let mut calls = platform_calls(&env.stack.calls());
    let (imports, _) = calls.remove("securityhub").unwrap_or_default();
    assert!(imports >= 1, "{request_id}: no finding imported");
    assert_eq!(
        mutating(&calls),
        0,
        "{request_id}: a sweep wrote: {calls:?}"
    );
    let report = env
        .store
        .get_compliance_report(&env.platform_id(), Some(request_id))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{request_id}: no report"));
    let latest = env
        .store
        .get_compliance_report(&env.platform_id(), None)
        .await
        .unwrap()
        .expect("latest report");
    assert_eq!(
        latest.request_id, request_id,
        "the latest report is this sweep's"
    );
    report
}

fn failed(report: &ComplianceReport) -> BTreeSet<String> {
    report
        .results
        .iter()
        .filter(|r| r.status == Status::Fail)
        .map(|r| r.control.clone())
        .collect()
}

pub(crate) fn assert_all_pass(report: &ComplianceReport) {
    let failures: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.status == Status::Fail)
        .collect();
    assert!(failures.is_empty(), "{}: {failures:#?}", report.request_id);
    let judged: BTreeSet<_> = report.results.iter().map(|r| r.control.as_str()).collect();
    assert_eq!(judged.len(), tenantry::compliance::CONTROLS.len());
    for r in &report.results {
        if r.status == Status::NotApplicable {
            assert!(
                !r.reason.is_empty(),
                "{r:?}: not applicable without a reason"
            );
        }
    }
}

fn patch(v: serde_json::Value) -> Patch<serde_json::Value> {
    Patch::Merge(v)
}

#[tokio::test]
async fn a_fresh_platform_passes_every_control_and_each_violation_fails_its_own() {
    let env = env().await;
    let run = env.run(RequestKind::PlatformProvision, "comp-p-1").await;
    assert_eq!(
        run.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        run.failures()
    );

    // Fresh: every control passes or says why it does not apply.
    let clean = sweep(&env, "comp-clean").await;
    assert_all_pass(&clean);
    let passed = clean
        .results
        .iter()
        .filter(|r| r.status == Status::Pass)
        .count();
    assert!(passed >= 60, "only {passed} results passed");

    // The drift test's out-of-band changes, and violations only compliance judges.
    break_platform(&env).await;
    let kube = env.stack.kube_client_for(CLUSTER).expect("kube client");
    let stranger_binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "debug-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}],
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(kube.clone())
        .create(&PostParams::default(), &stranger_binding)
        .await
        .unwrap();
    let wildcard: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": "debug-everything"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
    }))
    .unwrap();
    Api::<ClusterRole>::all(kube.clone())
        .create(&PostParams::default(), &wildcard)
        .await
        .unwrap();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "debug", "namespace": "default"},
        "spec": {"containers": [{"name": "shell", "image": "busybox"}]},
    }))
    .unwrap();
    Api::<Pod>::namespaced(kube.clone(), "default")
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
    Api::<ServiceAccount>::namespaced(kube.clone(), TENANT)
        .patch(
            "default",
            &PatchParams::default(),
            &patch(json!({"automountServiceAccountToken": true})),
        )
        .await
        .unwrap();

    aws_sdk_eks::Client::new(&env.aws)
        .update_cluster_config()
        .name(CLUSTER)
        .deletion_protection(false)
        .send()
        .await
        .unwrap();

    let broken = sweep(&env, "comp-broken").await;
    let expected: BTreeSet<String> = [
        "TNY-EKS-1", // public endpoint opened to 0.0.0.0/0
        "TNY-EKS-5", // audit log turned off
        "TNY-EKS-6", // deletion protection turned off
        "TNY-EKS-8", // a stranger and a tenant owner made cluster admin
        "TNY-NET-1", // flow log deleted
        "TNY-NET-3", // SSH from anywhere on the endpoints' group
        "TNY-NET-5", // a tenant's default-deny deleted
        "TNY-KMS-1", // rotation of the secrets key off
        "TNY-LOG-2", // the control-plane log group kept a week
        "TNY-IAM-1", // AdministratorAccess on the autoscaler's role
        "TNY-IAM-4", // the tenant role given s3:* on *
        "TNY-IAM-6", // the autoscaler's role trusted by another account
        "TNY-K8S-1", // cluster-admin bound to a user
        "TNY-K8S-2", // a ClusterRole of wildcards
        "TNY-K8S-3", // a tenant's default service account mounts its token
        "TNY-K8S-5", // the tenant namespace relaxed to privileged
        "TNY-K8S-6", // a pod in default
        "TNY-S3-2",  // the bucket's public access block removed
        "TNY-ECR-2", // the platform's repository made mutable
        "TNY-ECR-3", // its lifecycle policy deleted
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(failed(&broken), expected);
    assert!(expected.len() >= 15);
    // Each failure names the resource it is about.
    for r in broken.results.iter().filter(|r| r.status == Status::Fail) {
        assert!(!r.resource.is_empty() && !r.reason.is_empty(), "{r:?}");
    }
    let summary = broken.summary();
    assert!(summary.failed >= expected.len() as u32, "{summary:?}");
    // The auditor's page of this report renders in a real browser, failures first.
    crate::report_html::check_in_browser(&broken).await;

    // Repaired: Tenantry's own objects by a drift check with remediation, the rest by hand.
    check(&env, "comp-repair", DriftRemediation::Auto).await;
    Api::<ClusterRoleBinding>::all(kube.clone())
        .delete("debug-admin", &DeleteParams::default())
        .await
        .unwrap();
    Api::<ClusterRole>::all(kube.clone())
        .delete("debug-everything", &DeleteParams::default())
        .await
        .unwrap();
    Api::<Pod>::namespaced(kube, "default")
        .delete("debug", &DeleteParams::default())
        .await
        .unwrap();
    let repaired = sweep(&env, "comp-repaired").await;
    assert_all_pass(&repaired);

    // Security Hub after three sweeps: one finding per control and resource ever judged; the
    // last sweep's are ACTIVE with its verdicts (repaired controls PASSED); the results of
    // resources since gone (the stranger's binding, the pod) are ARCHIVED.
    let findings = security_hub_findings(&env).await;
    let ids: BTreeSet<&str> = findings.iter().filter_map(|f| f.id()).collect();
    assert_eq!(ids.len(), findings.len(), "a finding was duplicated");
    let judged: BTreeSet<(String, String)> = [&clean, &broken, &repaired]
        .iter()
        .flat_map(|r| {
            r.results
                .iter()
                .map(|x| (x.control.clone(), x.resource.clone()))
        })
        .collect();
    assert_eq!(findings.len(), judged.len());
    let platform = env.platform_id();
    let by_id: std::collections::HashMap<&str, &AwsSecurityFinding> = findings
        .iter()
        .map(|f| (f.id().unwrap_or_default(), f))
        .collect();
    let newest = findings.iter().filter_map(|f| f.updated_at()).max();
    for r in &repaired.results {
        let f = by_id[finding_id(&platform, r).as_str()];
        assert_eq!(f.record_state(), Some(&RecordState::Active), "{r:?}");
        let want = match r.status {
            Status::Pass => ComplianceStatus::Passed,
            Status::Fail => ComplianceStatus::Failed,
            Status::NotApplicable => ComplianceStatus::NotAvailable,
        };
        assert_eq!(
            f.compliance().and_then(|c| c.status()),
            Some(&want),
            "{r:?}"
        );
        assert_eq!(
            f.updated_at(),
            newest,
            "{r:?}: not updated by the last sweep"
        );
    }
    let gone = repaired.gone_since(&broken);
    assert!(gone
        .iter()
        .any(|r| r.resource == "k8s:clusterrolebinding/debug-admin"));
    for r in gone {
        let f = by_id[finding_id(&platform, r).as_str()];
        assert_eq!(f.record_state(), Some(&RecordState::Archived), "{r:?}");
    }
}

async fn security_hub_findings(env: &Env) -> Vec<AwsSecurityFinding> {
    let client = aws_sdk_securityhub::Client::new(&env.aws);
    let mut out = Vec::new();
    let mut pages = client.get_findings().into_paginator().send();
    while let Some(page) = pages.next().await {
        out.extend(page.unwrap().findings().to_vec());
    }
    out
}
