//! Fargate's built-in log router (Fluent Bit), with `fargate.logging`: EKS reads the ConfigMap
//! `aws-logging` of the namespace `aws-observability` (which must carry the label
//! `aws-observability: enabled`) when it starts a Fargate pod, and sends the pod's container
//! logs as its `output.conf` says, as the pod execution role. Tenantry points it at the
//! platform's Fargate log group, which it creates first (KMS-encrypted, with retention), so
//! `auto_create_group` is off and the role needs no `logs:CreateLogGroup`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use serde_json::Value;

use super::manifests::{meta, pod_security_labels, to_value};
use crate::naming::Names;
use crate::spec::PlatformSpec;

/// The namespace EKS reads Fargate's logging configuration from.
pub const FARGATE_LOGGING_NAMESPACE: &str = "aws-observability";
/// The ConfigMap EKS reads.
pub const FARGATE_LOGGING_CONFIG_MAP: &str = "aws-logging";

/// The namespace and the ConfigMap (none without `fargate.logging`).
pub fn fargate_logging_manifests(spec: &PlatformSpec) -> Vec<Value> {
    if !spec.fargate.logging {
        return Vec::new();
    }
    let mut ns = meta(
        spec,
        FARGATE_LOGGING_NAMESPACE,
        None,
        &[("aws-observability", "enabled")],
    );
    if let Some(labels) = ns.labels.as_mut() {
        labels.extend(pod_security_labels(spec, FARGATE_LOGGING_NAMESPACE));
    }
    let namespace = to_value(&Namespace {
        metadata: ns,
        ..Namespace::default()
    });
    let group = Names::new(spec).fargate_log_group();
    let output = format!(
        "[OUTPUT]\n    Name cloudwatch_logs\n    Match *\n    region {}\n    log_group_name {group}\n    log_stream_prefix fargate-\n    auto_create_group false\n",
        spec.region
    );
    let config = to_value(&ConfigMap {
        metadata: meta(
            spec,
            FARGATE_LOGGING_CONFIG_MAP,
            Some(FARGATE_LOGGING_NAMESPACE),
            &[],
        ),
        data: Some(BTreeMap::from([
            // Fluent Bit's own logs stay out of CloudWatch (they would name every pod's stream).
            ("flb_log_cw".to_owned(), "false".to_owned()),
            ("output.conf".to_owned(), output),
        ])),
        ..ConfigMap::default()
    });
    vec![namespace, config]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_map_sends_to_the_platforms_fargate_log_group_only() {
        let mut spec = crate::kubernetes::manifests::tests::example();
        assert!(fargate_logging_manifests(&spec).is_empty());
        spec.fargate.logging = true;
        let m = fargate_logging_manifests(&spec);
        assert_eq!(m[0]["metadata"]["labels"]["aws-observability"], "enabled");
        let output = m[1]["data"]["output.conf"].as_str().unwrap();
        assert!(output.contains("log_group_name /aws/eks/payments-prod/fargate"));
        assert!(output.contains("auto_create_group false"));
        assert_eq!(m[1]["metadata"]["namespace"], "aws-observability");
    }
}
