//! Network: flow logs, endpoint policies, open ingress, public addresses, and network policy
//! enforcement judged on both halves (the CNI's setting and each tenant's default deny).

use super::{
    condition_has, each_tenant, judge, k8s, not_applicable, platform, statements, strings, Verdict,
};
use crate::compliance::live::Live;
use serde_json::{json, Value};

pub fn flow_logs(live: &Live) -> Vec<Verdict> {
    let Some(vpc) = &live.vpc_id else {
        return vec![judge(
            platform(live),
            false,
            "",
            "the platform's VPC does not exist",
            json!(null),
        )];
    };
    let logs: Vec<_> = live
        .flow_logs
        .iter()
        .filter(|f| &f.resource == vpc)
        .collect();
    let ok = logs
        .iter()
        .any(|f| f.status == "ACTIVE" && f.traffic_type == "ALL");
    vec![judge(
        vpc,
        ok,
        "an active flow log captures all traffic",
        if logs.is_empty() {
            "the VPC has no flow log".to_owned()
        } else {
            "no flow log of the VPC is active and captures ALL traffic".to_owned()
        },
        json!({"flowLogs": logs}),
    )]
}

/// An Allow statement anyone may use on anything: principal `*`, with no condition limiting
/// the account, organisation or network.
fn unbounded_allow(statement: &Value) -> bool {
    const LIMITS: [&str; 6] = [
        "aws:PrincipalAccount",
        "aws:ResourceAccount",
        "aws:PrincipalOrgID",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:PrincipalArn",
    ];
    let principal = &statement["Principal"];
    let anyone = principal == "*" || strings(&principal["AWS"]).contains(&"*");
    statement["Effect"] == "Allow" && anyone && !LIMITS.iter().any(|k| condition_has(statement, k))
}

pub fn endpoint_policies(live: &Live) -> Vec<Verdict> {
    if live.vpc_endpoints.is_empty() {
        return vec![not_applicable(
            platform(live),
            "the platform has no VPC endpoints",
        )];
    }
    live.vpc_endpoints
        .iter()
        .map(|e| {
            let open = e.policy.is_null() || statements(&e.policy).into_iter().any(unbounded_allow);
            judge(
                &e.id,
                !open,
                "every Allow of the endpoint policy is limited to the account",
                if e.policy.is_null() {
                    "the endpoint has the default full-access policy".to_owned()
                } else {
                    "a statement allows any principal without limiting the account".to_owned()
                },
                json!({"service": e.service, "policy": e.policy}),
            )
        })
        .collect()
}

pub fn no_open_ingress(live: &Live) -> Vec<Verdict> {
    if live.security_groups.is_empty() {
        return vec![not_applicable(
            platform(live),
            "the platform has no security groups",
        )];
    }
    live.security_groups
        .iter()
        .map(|g| {
            judge(
                &g.id,
                g.open_ingress.is_empty(),
                "no ingress rule from 0.0.0.0/0 or ::/0",
                format!("open to the internet: {}", g.open_ingress.join("; ")),
                json!({"name": g.name, "openIngress": g.open_ingress}),
            )
        })
        .collect()
}

pub fn no_public_ip_on_private_subnets(live: &Live) -> Vec<Verdict> {
    let private: Vec<_> = live
        .subnets
        .values()
        .filter(|s| !s.routes_to_internet_gateway)
        .collect();
    if private.is_empty() {
        return vec![not_applicable(
            platform(live),
            "the platform has no private subnets",
        )];
    }
    private
        .into_iter()
        .map(|s| {
            judge(
                &s.id,
                !s.map_public_ip,
                "does not assign public addresses",
                "a private subnet assigns public addresses on launch",
                json!({"mapPublicIpOnLaunch": s.map_public_ip}),
            )
        })
        .collect()
}

pub fn cni_enforces_policy(live: &Live) -> Vec<Verdict> {
    let Some(cluster) = &live.cluster else {
        return super::no_cluster(live);
    };
    if live.asked.cni == "calico" {
        // Calico (calico-node) enforces NetworkPolicies wherever it is the CNI: the operator's
        // Installation must say so.
        let cni = live.kubernetes.as_ref().and_then(|k| k.calico_cni.clone());
        let on = cni.as_ref().is_some_and(|c| c["type"] == "Calico");
        return vec![judge(
            &cluster.arn,
            on,
            "Calico is the CNI (Installation `default`, cni.type Calico) and enforces NetworkPolicies",
            match &cni {
                None => "Calico's Installation `default` does not exist: no CNI enforces NetworkPolicies".to_owned(),
                Some(_) => "Calico's Installation `default` does not make Calico the CNI".to_owned(),
            },
            json!({"installation": "default", "cni": cni}),
        )];
    }
    if live.asked.cni != "vpc-cni" {
        return vec![judge(
            &cluster.arn,
            false,
            "",
            format!("no enforcement check exists for CNI {:?}", live.asked.cni),
            json!({"cni": live.asked.cni}),
        )];
    }
    let addon = live.addons.iter().find(|a| a.name == "vpc-cni");
    let setting = addon.map(|a| a.configuration["enableNetworkPolicy"].clone());
    let on = matches!(&setting, Some(Value::String(s)) if s == "true")
        || matches!(setting, Some(Value::Bool(true)));
    vec![judge(
        &cluster.arn,
        on,
        "the VPC CNI add-on enforces NetworkPolicies (enableNetworkPolicy)",
        match addon {
            None => "the VPC CNI add-on is not installed".to_owned(),
            Some(_) => "the VPC CNI add-on's enableNetworkPolicy is not true".to_owned(),
        },
        json!({"addon": "vpc-cni", "enableNetworkPolicy": setting}),
    )]
}

pub fn tenant_default_deny(live: &Live) -> Vec<Verdict> {
    each_tenant(live, |k, ns| {
        let policies: Vec<_> = k
            .network_policies
            .iter()
            .filter(|p| p.namespace == ns)
            .collect();
        let deny = policies.iter().find(|p| p.is_default_deny());
        judge(
            k8s("namespace", ns),
            deny.is_some(),
            format!(
                "NetworkPolicy {} denies all ingress and egress by default",
                deny.map_or("", |p| p.name.as_str())
            ),
            if k.namespaces.contains_key(ns) {
                "no NetworkPolicy of the namespace denies all ingress and egress".to_owned()
            } else {
                "the tenant's namespace does not exist".to_owned()
            },
            json!({"networkPolicies": policies}),
        )
    })
}
