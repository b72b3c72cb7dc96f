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

/// A node group EKS could not create fails the run for good, naming its health issues.
#[tokio::test]
async fn a_failed_node_group_is_a_terminal_error_naming_its_health_issues() {
    use aws_sdk_eks::types::{Issue, NodegroupHealth, NodegroupIssueCode, NodegroupStatus};
    let w = World::new();
    w.converge().await;
    let critical = w.group("critical");
    w.eks.edit_nodegroup(&critical, |g| {
        g.status = Some(NodegroupStatus::CreateFailed);
        g.health = Some(
            NodegroupHealth::builder()
                .issues(
                    Issue::builder()
                        .code(NodegroupIssueCode::AsgInstanceLaunchFailures)
                        .message("InsufficientInstanceCapacity")
                        .build(),
                )
                .build(),
        );
    });
    let err = w.s.try_run(Action::Ensure).await.expect_err("failed group");
    assert_eq!(err.error_type, ErrorType::Terminal);
    assert!(
        err.error_message
            .contains(&format!("{critical:?} is CREATE_FAILED"))
            && err
                .error_message
                .contains("AsgInstanceLaunchFailures: InsufficientInstanceCapacity"),
        "{}",
        err.error_message
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

/// `observe` walks what `ensure` walks: a group not on its template's latest version, a
/// group of another owner (named, not an error) and a group the spec dropped are each named;
/// `ensure` then moves the group forward and deletes the dropped one.
#[tokio::test]
async fn observe_names_an_old_template_version_another_owner_and_a_dropped_group() {
    let mut w = World::new();
    w.converge().await;
    let (critical, general) = (w.group("critical"), w.group("general"));
    // A second version with the desired data, which the group does not run.
    w.ec2.add_version(&w.template("critical"), |_| {});
    w.eks.edit_nodegroup(&critical, |g| {
        g.launch_template.as_mut().unwrap().version = Some("1".to_owned());
    });
    w.eks.edit_nodegroup(&general, |g| {
        g.tags
            .get_or_insert_with(Default::default)
            .insert(TAG_PLATFORM.to_owned(), "someone-else".to_owned());
    });
    let observed = w.s.run(Action::Observe).await;
    assert!(!observed.ready);
    let by_field: Vec<_> = observed
        .drift
        .iter()
        .map(|d| (d.resource.clone(), d.field.clone(), d.actual.clone()))
        .collect();
    assert!(
        by_field.contains(&(
            format!("eks:nodegroup/{critical}"),
            "launchTemplateVersion".to_owned(),
            json!("1")
        )),
        "{by_field:?}"
    );
    assert!(
        by_field.contains(&(
            format!("eks:nodegroup/{general}"),
            "tags.tenantry:platform".to_owned(),
            json!("someone-else")
        )),
        "{by_field:?}"
    );
    assert_eq!(w.s.calls.mutating(), Vec::<String>::new(), "observe wrote");

    w.eks.edit_nodegroup(&general, |g| {
        let tags = g.tags.as_mut().unwrap();
        tags.insert(TAG_PLATFORM.to_owned(), w.s.spec.id.clone());
    });
    let groups = w.s.spec.node_groups.as_mut().expect("example groups");
    groups.retain(|g| g.name != "general");
    let observed = w.s.run(Action::Observe).await;
    assert_eq!(
        drift_fields(&observed),
        [
            (
                format!("eks:nodegroup/{critical}"),
                "launchTemplateVersion".to_owned()
            ),
            (format!("eks:nodegroup/{general}"), "exists".to_owned()),
        ]
    );
    w.converge().await;
    let ng = &w.eks.nodegroups()[&critical];
    assert_ne!(ng.launch_template().and_then(|t| t.version()), Some("1"));
    assert!(!w.eks.nodegroups().contains_key(&general));
    assert!(w.s.run(Action::Observe).await.drift.is_empty());
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

// ----- Fargate profiles (the `_fargate` item) -----

const POD_ROLE: &str =
    "arn:aws:iam::123456789012:role/tenantry/tenantry-payments-prod-fargate-pods";

/// The nodegroups phase on its `_fargate` item, for a platform with two profiles and CoreDNS.
fn fargate_world() -> World {
    let mut w = World::new();
    w.s.outputs_push(outputs::FARGATE_POD_ROLE_ARN.key, json!(POD_ROLE));
    w.s.item = Some(crate::plan::FARGATE_ITEM.to_owned());
    w.s.spec.fargate = serde_json::from_value(json!({
        "coreDns": true,
        "profiles": [
            { "name": "jobs", "selectors": [{ "namespace": "jobs" }] },
            { "name": "etl", "selectors": [{ "namespace": "etl", "labels": { "compute": "fargate" } }] }
        ]
    }))
    .expect("fargate spec");
    w
}

#[tokio::test]
async fn fargate_profiles_are_created_one_at_a_time_in_the_private_subnets() {
    let w = fargate_world();
    let rounds = w.converge().await;
    // One create per round (EKS allows one profile CREATING per cluster), then nothing.
    assert_eq!(
        rounds,
        [
            vec!["eks:CreateFargateProfile".to_owned()],
            vec!["eks:CreateFargateProfile".to_owned()],
            vec!["eks:CreateFargateProfile".to_owned()],
            vec![],
        ]
    );
    let profiles = w.eks.fargate_profiles();
    let names: Vec<&String> = profiles.keys().collect();
    assert_eq!(
        names,
        [
            "payments-prod-coredns",
            "payments-prod-p-etl",
            "payments-prod-p-jobs"
        ]
    );
    for p in profiles.values() {
        assert_eq!(p.subnets(), ["subnet-a", "subnet-b", "subnet-c"]);
        assert_eq!(p.pod_execution_role_arn(), Some(POD_ROLE));
        assert_eq!(
            p.tags().and_then(|t| t.get(TAG_PLATFORM)),
            Some(&w.s.spec.id)
        );
    }
    let dns = &profiles["payments-prod-coredns"].selectors()[0];
    assert_eq!(dns.namespace(), Some("kube-system"));
    assert_eq!(
        dns.labels()
            .and_then(|l| l.get("k8s-app"))
            .map(String::as_str),
        Some("kube-dns")
    );
    assert!(w.s.recorded(
        crate::resources::Kind::FargateProfile,
        "payments-prod-p-jobs"
    ));
    // Converged: observe is silent, another ensure writes nothing.
    assert!(w.s.run(Action::Observe).await.drift.is_empty());
    w.s.run(Action::Ensure).await;
    assert!(w.s.calls.mutating_aws().is_empty());
}

#[tokio::test]
async fn a_changed_selector_is_named_then_the_profile_is_made_again_and_a_dropped_one_goes() {
    let mut w = fargate_world();
    w.converge().await;
    // Out of band: etl's selector loses its label (EKS cannot change a profile in place).
    w.eks.edit_fargate_profile("payments-prod-p-etl", |p| {
        p.selectors = Some(vec![aws_sdk_eks::types::FargateProfileSelector::builder()
            .namespace("etl")
            .build()]);
    });
    let out = w.s.run(Action::Observe).await;
    assert_eq!(
        drift_fields(&out),
        [(
            "eks:fargate-profile/payments-prod-p-etl".to_owned(),
            "selectors".to_owned()
        )]
    );
    assert!(
        w.s.calls.mutating_aws().is_empty(),
        "observe writes nothing"
    );
    // The request drops `jobs`: ensure deletes etl (to make it again), then jobs, one per round.
    w.s.spec.fargate.profiles.retain(|p| p.name != "jobs");
    let rounds = w.converge().await;
    assert_eq!(
        rounds,
        [
            vec!["eks:DeleteFargateProfile".to_owned()],
            vec!["eks:CreateFargateProfile".to_owned()],
            vec!["eks:DeleteFargateProfile".to_owned()],
            vec![],
        ]
    );
    let profiles = w.eks.fargate_profiles();
    assert!(!profiles.contains_key("payments-prod-p-jobs"));
    let etl = &profiles["payments-prod-p-etl"].selectors()[0];
    assert_eq!(
        etl.labels()
            .and_then(|l| l.get("compute"))
            .map(String::as_str),
        Some("fargate")
    );
    assert!(!w.s.recorded(
        crate::resources::Kind::FargateProfile,
        "payments-prod-p-jobs"
    ));
    // Decommission: the remaining profiles go one at a time too.
    let mut deleted = 0;
    for _ in 0..6 {
        let out = w.s.run(Action::Delete).await;
        deleted +=
            w.s.calls
                .mutating_aws()
                .iter()
                .filter(|c| *c == "eks:DeleteFargateProfile")
                .count();
        if out.ready {
            break;
        }
        w.eks.settle();
    }
    assert_eq!(deleted, 2);
    assert!(w.eks.fargate_profiles().is_empty());
}

#[tokio::test]
async fn a_profile_of_our_name_without_our_tag_is_refused_untouched() {
    let w = fargate_world();
    w.converge().await;
    w.eks.edit_fargate_profile("payments-prod-p-jobs", |p| {
        p.tags = Some([(TAG_PLATFORM.to_owned(), "someone-else".to_owned())].into());
    });
    let err = w.s.try_run(Action::Ensure).await.expect_err("refused");
    assert_eq!(err.error_type, ErrorType::Terminal, "{err}");
    assert!(w.s.calls.mutating_aws().is_empty());
}
