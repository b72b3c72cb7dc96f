//! The nodegroups phase: per group, an encrypted Bottlerocket launch template with IMDSv2 at hop
//! limit 1, and the managed node group; the autoscaler owns `desiredSize`.

use aws_sdk_ec2::types::LaunchTemplateHttpTokensState;
use serde_json::json;

use super::ec2::Ec2Double;
use super::eks::EksDouble;
use super::{drift_fields, Calls, Rules, Stage};
use crate::error::ErrorType;
use crate::naming::{Names, TAG_PLATFORM};
use crate::phases::outputs;
use crate::phases::Action;
use crate::plan::Phase;
use base64::Engine;

const DATA_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/data";

struct World {
    s: Stage,
    eks: EksDouble,
    ec2: Ec2Double,
}

impl World {
    /// The nodegroups phase with the earlier phases' outputs recorded.
    fn new() -> World {
        let calls = Calls::default();
        let eks = EksDouble::new(&calls);
        let ec2 = Ec2Double::new(&calls);
        let rules = Rules {
            eks: eks.rules(),
            ec2: ec2.rules(),
            ..Rules::default()
        };
        let outputs = [
            (outputs::DATA_KEY_ARN.key, json!(DATA_KEY)),
            (
                outputs::NODE_ROLE_ARN.key,
                json!("arn:aws:iam::123456789012:role/tenantry/node"),
            ),
            (
                "privateSubnetIds",
                json!(["subnet-a", "subnet-b", "subnet-c"]),
            ),
        ];
        World {
            s: Stage::new(Phase::Nodegroups, &calls, rules, &outputs),
            eks,
            ec2,
        }
    }

    async fn converge(&self) -> Vec<Vec<String>> {
        self.s.converge(|| self.eks.settle()).await
    }

    fn group(&self, name: &str) -> String {
        Names::new(&self.s.spec).nodegroup(name)
    }

    fn template(&self, name: &str) -> String {
        Names::new(&self.s.spec).launch_template(name)
    }
}

#[tokio::test]
async fn fresh_platform_gets_encrypted_imdsv2_templates_and_its_node_groups() {
    let w = World::new();
    let rounds = w.converge().await;
    let groups = w.s.spec.effective_node_groups();
    let mut first = rounds[0].clone();
    first.sort();
    let mut expected: Vec<String> = Vec::new();
    for _ in &groups {
        expected.push("ec2:CreateLaunchTemplate".into());
        expected.push("eks:CreateNodegroup".into());
    }
    expected.sort();
    assert_eq!(first, expected);
    assert_eq!(rounds[1..], [Vec::<String>::new()]);
    for g in &groups {
        let data = w.ec2.templates()[&w.template(&g.name)].versions[0].clone();
        let imds = data.metadata_options().unwrap();
        assert_eq!(
            imds.http_tokens(),
            Some(&LaunchTemplateHttpTokensState::Required)
        );
        assert_eq!(
            imds.http_put_response_hop_limit(),
            Some(1),
            "pods must not reach IMDS"
        );
        for device in data.block_device_mappings() {
            let ebs = device.ebs().unwrap();
            assert_eq!(
                (ebs.encrypted(), ebs.kms_key_id()),
                (Some(true), Some(DATA_KEY))
            );
        }
        // The example uses custom networking: max pods is what the secondary interfaces of
        // the group's smallest instance type hold (m5/c5: 2 × 9 + 2, t3/t3a: 2 × 5 + 2).
        let settings = base64::engine::general_purpose::STANDARD
            .decode(data.user_data().expect("Bottlerocket settings"))
            .expect("base64");
        let max_pods = match g.name.as_str() {
            "critical" | "batch" => 20,
            _ => 12,
        };
        assert!(
            String::from_utf8(settings)
                .expect("utf-8")
                .contains(&format!("[settings.kubernetes]\nmax-pods = {max_pods}\n")),
            "{}",
            g.name
        );
        let ng = &w.eks.nodegroups()[&w.group(&g.name)];
        assert_eq!(
            ng.tags().and_then(|t| t.get(TAG_PLATFORM)),
            Some(&w.s.spec.id)
        );
        let sc = ng.scaling_config().unwrap();
        assert_eq!(
            (sc.min_size(), sc.desired_size(), sc.max_size()),
            (
                Some(g.min_size as i32),
                Some(g.desired_size as i32),
                Some(g.max_size as i32)
            )
        );
    }
}

#[tokio::test]
async fn converged_platform_costs_no_mutating_call_and_desired_size_is_the_autoscalers() {
    let w = World::new();
    w.converge().await;
    let critical = w.group("critical");
    w.eks.edit_nodegroup(&critical, |g| {
        g.scaling_config.as_mut().unwrap().desired_size = Some(5)
    });
    let out = w.s.run(Action::Ensure).await;
    assert!(out.ready);
    assert_eq!(out.changes, 0);
    assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new());
    let observed = w.s.run(Action::Observe).await;
    assert!(observed.drift.is_empty(), "{:?}", observed.drift);
    assert_eq!(w.s.calls.mutating(), Vec::<String>::new());
    let sc = w.eks.nodegroups()[&critical]
        .scaling_config()
        .cloned()
        .unwrap();
    assert_eq!(sc.desired_size(), Some(5), "the autoscaler's choice stands");
}

#[tokio::test]
async fn a_wider_max_size_and_a_dropped_taint_are_named_then_repaired() {
    let w = World::new();
    w.converge().await;
    let critical = w.group("critical");
    w.eks.edit_nodegroup(&critical, |g| {
        g.scaling_config.as_mut().unwrap().max_size = Some(60);
        g.taints = Some(Vec::new());
    });
    let observed = w.s.run(Action::Observe).await;
    let fields: Vec<_> = observed
        .drift
        .iter()
        .map(|d| (d.resource.as_str(), d.field.as_str()))
        .collect();
    let resource = format!("eks:nodegroup/{critical}");
    assert_eq!(
        fields,
        [
            (resource.as_str(), "scalingConfig"),
            (resource.as_str(), "taints")
        ]
    );
    let rounds = w.converge().await;
    assert_eq!(rounds, [vec!["eks:UpdateNodegroupConfig"], vec![]]);
    let ng = &w.eks.nodegroups()[&critical];
    assert_eq!(ng.scaling_config().unwrap().max_size(), Some(6));
    assert_eq!(ng.taints().len(), 1);
}

/// Someone saves a launch template version with IMDSv1 allowed and a hop limit of 2 (pods could
/// then take the node's credentials): named, then a new version with the desired data, and the
/// group is moved to it.
#[tokio::test]
async fn a_loosened_launch_template_gets_a_new_version_and_the_group_moves_to_it() {
    let w = World::new();
    w.converge().await;
    let template = w.template("critical");
    w.ec2.add_version(&template, |d| {
        let imds = d.metadata_options.as_mut().unwrap();
        imds.http_tokens = Some(LaunchTemplateHttpTokensState::Optional);
        imds.http_put_response_hop_limit = Some(2);
    });
    let observed = w.s.run(Action::Observe).await;
    assert_eq!(
        observed
            .drift
            .iter()
            .map(|d| (d.resource.as_str(), d.field.as_str()))
            .collect::<Vec<_>>(),
        [(
            format!("ec2:launch-template/{template}").as_str(),
            "launchTemplateData"
        )]
    );
    let rounds = w.converge().await;
    assert_eq!(
        rounds,
        [
            vec![
                "ec2:CreateLaunchTemplateVersion",
                "eks:UpdateNodegroupVersion"
            ],
            vec![]
        ]
    );
    let versions = &w.ec2.templates()[&template].versions;
    assert_eq!(versions.len(), 3);
    let imds = versions[2].metadata_options().unwrap();
    assert_eq!(imds.http_put_response_hop_limit(), Some(1));
    let ng = &w.eks.nodegroups()[&w.group("critical")];
    assert_eq!(ng.launch_template().and_then(|t| t.version()), Some("3"));
    assert!(w.s.run(Action::Observe).await.drift.is_empty());
}

/// Custom networking's max pods dropped from a template (Bottlerocket would then fit more pods
/// than the node's secondary interfaces have addresses): named, then a version with them.
#[tokio::test]
async fn a_template_that_lost_its_max_pods_is_named_then_given_them_again() {
    let w = World::new();
    w.converge().await;
    let template = w.template("general");
    w.ec2.add_version(&template, |d| {
        d.user_data = Some(
            base64::engine::general_purpose::STANDARD
                .encode(crate::phases::nodegroups::BOTTLEROCKET_SETTINGS),
        );
    });
    let observed = w.s.run(Action::Observe).await;
    assert_eq!(
        drift_fields(&observed),
        [(
            format!("ec2:launch-template/{template}"),
            "launchTemplateData".to_owned()
        )]
    );
    let rounds = w.converge().await;
    assert_eq!(
        rounds[0],
        [
            "ec2:CreateLaunchTemplateVersion",
            "eks:UpdateNodegroupVersion"
        ]
    );
    let latest = w.ec2.templates()[&template]
        .versions
        .last()
        .cloned()
        .unwrap();
    let settings = base64::engine::general_purpose::STANDARD
        .decode(latest.user_data().unwrap())
        .unwrap();
    // general: t3.medium, 3 interfaces of 6 addresses.
    assert!(String::from_utf8(settings)
        .unwrap()
        .ends_with("[settings.kubernetes]\nmax-pods = 12\n"));
    assert!(w.s.run(Action::Observe).await.drift.is_empty());
}

/// A crash after `CreateLaunchTemplate`, before `CreateNodegroup`: the re-run uses the template
/// it finds and creates only the group.
#[tokio::test]
async fn half_created_group_reuses_its_template() {
    let w = World::new();
    w.s.run(Action::Ensure).await;
    let critical = w.group("critical");
    let template_id = w.ec2.templates()[&w.template("critical")].id.clone();
    w.eks.settle();
    // The group never got created: remove it as if the call had not been made.
    w.eks.edit_nodegroup(&critical, |g| {
        g.status = Some(aws_sdk_eks::types::NodegroupStatus::Deleting)
    });
    w.eks.settle();
    w.s.run(Action::Ensure).await;
    assert_eq!(w.s.calls.mutating_aws(), ["eks:CreateNodegroup"]);
    let ng = &w.eks.nodegroups()[&critical];
    assert_eq!(
        ng.launch_template().and_then(|t| t.id()),
        Some(template_id.as_str())
    );
}

#[tokio::test]
async fn a_node_group_of_our_name_without_our_tag_is_refused_untouched() {
    let w = World::new();
    w.converge().await;
    let critical = w.group("critical");
    w.eks.edit_nodegroup(&critical, |g| {
        g.tags
            .get_or_insert_with(Default::default)
            .insert(TAG_PLATFORM.to_owned(), "someone-else".to_owned());
        g.scaling_config.as_mut().unwrap().max_size = Some(60);
    });
    let err = w.s.try_run(Action::Ensure).await.expect_err("adopted");
    assert_eq!(err.error_type, ErrorType::Terminal);
    assert!(
        err.error_message.contains(&critical),
        "{}",
        err.error_message
    );
    assert!(!w
        .s
        .calls
        .mutating_aws()
        .iter()
        .any(|c| c.starts_with("eks:Update")));
}

#[tokio::test]
async fn gone_platform_deletes_without_a_call_and_delete_converges() {
    let w = World::new();
    assert!(w.s.run(Action::Delete).await.ready);
    assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new());

    w.converge().await;
    let groups = w.s.spec.effective_node_groups().len();
    assert!(!w.s.run(Action::Delete).await.ready);
    assert_eq!(
        w.s.calls.mutating_aws(),
        vec!["eks:DeleteNodegroup"; groups]
    );
    w.eks.settle();
    assert!(w.s.run(Action::Delete).await.ready);
    assert_eq!(
        w.s.calls.mutating_aws(),
        vec!["ec2:DeleteLaunchTemplate"; groups]
    );
    assert!(w.eks.nodegroups().is_empty());
    assert!(w.ec2.templates().is_empty());
    w.s.run(Action::Delete).await;
    assert_eq!(w.s.calls.mutating_aws(), Vec::<String>::new());
}

#[tokio::test]
async fn calico_nodes_get_110_max_pods_without_asking_ec2() {
    let mut w = World::new();
    w.s.spec.cni = crate::spec::Cni::Calico;
    if let Some(addons) = &mut w.s.spec.addons {
        addons.retain(|a| a.name != "vpc-cni");
    }
    // The first round creates the templates (each round clears the call log).
    w.s.run(Action::Ensure).await;
    let calls = w.s.calls.all();
    assert!(
        calls.iter().any(|c| c.contains("CreateLaunchTemplate")),
        "{calls:?}"
    );
    assert!(
        !calls.iter().any(|c| c.contains("DescribeInstanceTypes")),
        "Calico's max pods does not depend on the instance's interfaces: {calls:?}"
    );
    w.converge().await;
    for g in w.s.spec.effective_node_groups() {
        let data = w.ec2.templates()[&w.template(&g.name)].versions[0].clone();
        let settings = base64::engine::general_purpose::STANDARD
            .decode(data.user_data().expect("Bottlerocket settings"))
            .expect("base64");
        assert!(
            String::from_utf8(settings)
                .expect("utf-8")
                .ends_with("[settings.kubernetes]\nmax-pods = 110\n"),
            "{}",
            g.name
        );
    }
}
