//! The state machines (`statemachine/*.asl.json`, the production artefacts) and how they are
//! deployed: function ARNs are `${<Name>FunctionArn}` placeholders (SAM `DefinitionSubstitutions`
//! style), filled in here for the local stack and by the deployment template in AWS.

use aws_sdk_sfn::types::StateMachineType;

/// A state machine definition shipped with Tenantry.
#[derive(Debug, Clone, Copy)]
pub struct Workflow {
    /// State machine name (prefixed with [`NAME_PREFIX`] when deployed).
    pub name: &'static str,
    /// The ASL text with `${...FunctionArn}` placeholders.
    pub definition: &'static str,
}

/// A schedule that starts a workflow (an EventBridge Scheduler schedule in the template; on the
/// local stack, which has no scheduler, `tenantry dev fire NAME` starts it on demand).
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// The schedule's name in the template.
    pub name: &'static str,
    /// The template parameters holding its expression and time zone: `<parameter>Schedule` and
    /// `<parameter>TimeZone`.
    pub parameter: &'static str,
    /// The template's default expression.
    pub expression: &'static str,
    /// The template's default time zone.
    pub time_zone: &'static str,
    /// What it starts.
    pub workflow: Workflow,
    /// The execution's input.
    pub input: &'static str,
}

/// The nightly drift sweep over every active platform.
pub const NIGHTLY_DRIFT_SWEEP: Schedule = Schedule {
    name: "tenantry-nightly-drift-sweep",
    parameter: "DriftSweep",
    expression: "cron(0 2 * * ? *)",
    time_zone: "UTC",
    workflow: FLEET_SWEEP,
    input: r#"{"kind":"drift"}"#,
};

/// The weekly compliance sweep over every active platform (Sundays, after the nightly drift
/// sweep, so that it judges what the drift sweep repaired).
pub const WEEKLY_COMPLIANCE_SWEEP: Schedule = Schedule {
    name: "tenantry-weekly-compliance-sweep",
    parameter: "ComplianceSweep",
    expression: "cron(0 4 ? * SUN *)",
    time_zone: "UTC",
    workflow: FLEET_SWEEP,
    input: r#"{"kind":"compliance"}"#,
};

/// Every schedule the template deploys.
pub const SCHEDULES: &[Schedule] = &[NIGHTLY_DRIFT_SWEEP, WEEKLY_COMPLIANCE_SWEEP];

/// Prefix of every deployed state machine and Lambda function name.
pub const NAME_PREFIX: &str = "tenantry-";

pub const SELFTEST: Workflow = Workflow {
    name: "selftest",
    definition: include_str!("../../statemachine/selftest.asl.json"),
};

pub const PROVISION_PLATFORM: Workflow = Workflow {
    name: "provision-platform",
    definition: include_str!("../../statemachine/provision-platform.asl.json"),
};

pub const DECOMMISSION_PLATFORM: Workflow = Workflow {
    name: "decommission-platform",
    definition: include_str!("../../statemachine/decommission-platform.asl.json"),
};

/// Onboards one tenant. Input: `{platformId, requestId, operation: "onboard", pollSeconds, tenant}`.
pub const ONBOARD_TENANT: Workflow = Workflow {
    name: "onboard-tenant",
    definition: include_str!("../../statemachine/onboard-tenant.asl.json"),
};

/// Offboards one tenant. Input: `{platformId, requestId, operation: "offboard", pollSeconds,
/// tenant}`.
pub const OFFBOARD_TENANT: Workflow = Workflow {
    name: "offboard-tenant",
    definition: include_str!("../../statemachine/offboard-tenant.asl.json"),
};

/// Checks one platform for drift and repairs what its policy allows. Input: `{platformId,
/// requestId, operation: "drift", pollSeconds, policy, items: {tenants}}`.
pub const DRIFT_CHECK: Workflow = Workflow {
    name: "drift-check",
    definition: include_str!("../../statemachine/drift-check.asl.json"),
};

/// Evaluates the compliance controls on one platform (read-only, no lease). Input: `{platformId,
/// requestId, operation: "compliance", pollSeconds}`.
pub const COMPLIANCE_SWEEP: Workflow = Workflow {
    name: "compliance-sweep",
    definition: include_str!("../../statemachine/compliance-sweep.asl.json"),
};

/// Checks every active platform for drift, or sweeps each for compliance (the schedules, `tenantry
/// drift --all`, a request for platform "*"). Input: `{kind?: "drift" | "compliance",
/// remediate?}`; the execution name is the sweep id.
pub const FLEET_SWEEP: Workflow = Workflow {
    name: "fleet-sweep",
    definition: include_str!("../../statemachine/fleet-sweep.asl.json"),
};

/// Serves one CloudFormation custom-resource event of the Service Catalog product (the
/// `catalog` function's stages: submit, await, answer). Input: `{event, answerBy, pollSeconds}`;
/// the execution name is the event's request id.
pub const CATALOG_REQUEST: Workflow = Workflow {
    name: "catalog-request",
    definition: include_str!("../../statemachine/catalog-request.asl.json"),
};

/// Every workflow Tenantry deploys.
pub const ALL: &[Workflow] = &[
    PROVISION_PLATFORM,
    DECOMMISSION_PLATFORM,
    ONBOARD_TENANT,
    OFFBOARD_TENANT,
    DRIFT_CHECK,
    FLEET_SWEEP,
    COMPLIANCE_SWEEP,
    CATALOG_REQUEST,
    SELFTEST,
];

/// ARN of a Tenantry Lambda function.
pub fn function_arn(region: &str, account: &str, function: &str) -> String {
    format!("arn:aws:lambda:{region}:{account}:function:{NAME_PREFIX}{function}")
}

/// Replaces every `${<Camel>FunctionArn}` placeholder with the ARN of the function named in
/// kebab case (`${SelftestFunctionArn}` → `tenantry-selftest`). Fails on a placeholder that names
/// no known function, so a typo in a definition cannot deploy.
pub fn render(definition: &str, region: &str, account: &str) -> Result<String, String> {
    let placeholder = regex::Regex::new(r"\$\{([A-Za-z]+)FunctionArn\}").expect("static regex");
    let mut unknown = Vec::new();
    let rendered = placeholder.replace_all(definition, |caps: &regex::Captures| {
        let function = kebab(&caps[1]);
        if !crate::functions::FUNCTION_NAMES.contains(&function.as_str()) {
            unknown.push(caps[0].to_owned());
        }
        function_arn(region, account, &function)
    });
    if unknown.is_empty() {
        Ok(rendered.into_owned())
    } else {
        Err(format!(
            "unknown function placeholder(s): {}",
            unknown.join(", ")
        ))
    }
}

fn kebab(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Creates the state machine, or updates its definition when it exists. Returns its ARN.
pub async fn deploy(
    sfn: &aws_sdk_sfn::Client,
    workflow: &Workflow,
    definition: &str,
    role_arn: &str,
) -> Result<String, aws_sdk_sfn::Error> {
    let name = format!("{NAME_PREFIX}{}", workflow.name);
    let mut pages = sfn.list_state_machines().into_paginator().items().send();
    while let Some(item) = pages.next().await {
        let item = item?;
        if item.name() == name {
            let arn = item.state_machine_arn().to_owned();
            sfn.update_state_machine()
                .state_machine_arn(&arn)
                .definition(definition)
                .role_arn(role_arn)
                .send()
                .await?;
            return Ok(arn);
        }
    }
    let created = sfn
        .create_state_machine()
        .name(name)
        .definition(definition)
        .role_arn(role_arn)
        .r#type(StateMachineType::Standard)
        .send()
        .await?;
    Ok(created.state_machine_arn().to_owned())
}

/// Deploys every workflow with its placeholders rendered for `region`/`account`. Returns the
/// state machine ARNs by workflow name.
pub async fn deploy_all(
    sfn: &aws_sdk_sfn::Client,
    region: &str,
    account: &str,
    role_arn: &str,
) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut arns = std::collections::BTreeMap::new();
    for workflow in ALL {
        let definition = render(workflow.definition, region, account)?;
        let arn = deploy(sfn, workflow, &definition, role_arn)
            .await
            .map_err(|e| format!("deploying state machine {}: {e}", workflow.name))?;
        arns.insert(workflow.name.to_owned(), arn);
    }
    Ok(arns)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workflow that runs under the platform's lease stops before the lease expires: nothing
    /// renews a lease, so an execution that outlived it could run beside the next holder. (A
    /// timed-out execution runs no `Catch`: the lease then frees the platform when it expires.)
    #[test]
    fn every_leased_workflow_times_out_before_its_lease_expires() {
        use crate::functions::intake::{LEASE_TTL, TENANT_LEASE_TTL};
        let leased = [
            (PROVISION_PLATFORM, LEASE_TTL),
            (DECOMMISSION_PLATFORM, LEASE_TTL),
            (DRIFT_CHECK, LEASE_TTL),
            (ONBOARD_TENANT, TENANT_LEASE_TTL),
            (OFFBOARD_TENANT, TENANT_LEASE_TTL),
        ];
        for (workflow, ttl) in leased {
            let asl: serde_json::Value = serde_json::from_str(workflow.definition).unwrap();
            let timeout = asl["TimeoutSeconds"]
                .as_u64()
                .unwrap_or_else(|| panic!("{} has no TimeoutSeconds", workflow.name));
            // Intake takes the lease just before it starts the execution: a margin for that.
            assert!(
                timeout + 120 <= ttl.as_secs(),
                "{}: TimeoutSeconds {timeout} is not well inside its lease of {} s",
                workflow.name,
                ttl.as_secs()
            );
        }
    }

    /// Every Task state of `states` (Map and Parallel states included) whose payload names
    /// `function` (`${FinalizeFunctionArn}`), with its name.
    fn tasks_invoking<'a>(
        states: &'a serde_json::Value,
        function: &str,
        out: &mut Vec<(&'a str, &'a serde_json::Value)>,
    ) {
        for (name, state) in states.as_object().into_iter().flatten() {
            let invokes = state["Parameters"]["FunctionName"].as_str() == Some(function)
                || state["Arguments"]["FunctionName"].as_str() == Some(function);
            if state["Type"] == "Task" && invokes {
                out.push((name, state));
            }
            for branch in state["Branches"].as_array().into_iter().flatten() {
                tasks_invoking(&branch["States"], function, out);
            }
            tasks_invoking(&state["ItemProcessor"]["States"], function, out);
        }
    }

    /// When `finalize` (or the catalog's answer) fails after its retries, the execution ends in
    /// a `Fail` state with a stable error that names the stuck-lease runbook and the `tenantry
    /// lease` command, not with a raw Lambda error: every state invoking them catches
    /// `States.ALL` into such a state, keeping the input (the request id the runbook needs).
    #[test]
    fn every_finalize_task_catches_into_a_fail_state_naming_the_runbook() {
        let mut checked = 0;
        for workflow in ALL {
            let definition: serde_json::Value =
                serde_json::from_str(workflow.definition).expect("ASL is JSON");
            let mut found = Vec::new();
            tasks_invoking(&definition["States"], "${FinalizeFunctionArn}", &mut found);
            let mut answers = Vec::new();
            tasks_invoking(&definition["States"], "${CatalogFunctionArn}", &mut answers);
            found.extend(
                answers
                    .into_iter()
                    // The failure answer (`Answer` itself catches into it).
                    .filter(|(_, s)| {
                        let payload = &s["Parameters"]["Payload"];
                        payload["stage"] == "answer" && payload.get("error.$").is_some()
                    }),
            );
            for (name, state) in found {
                let w = workflow.name;
                let catches = state["Catch"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{w}: {name} has no Catch"));
                let all = catches
                    .iter()
                    .find(|c| c["ErrorEquals"] == serde_json::json!(["States.ALL"]))
                    .unwrap_or_else(|| panic!("{w}: {name} does not catch States.ALL"));
                let path = all["ResultPath"].as_str().unwrap_or("$");
                assert!(
                    path.starts_with("$.") && path.len() > 2,
                    "{w}: {name} catches into {path}, replacing its input"
                );
                let next = all["Next"].as_str().expect("Catch has Next");
                let fail = &definition["States"][next];
                assert_eq!(fail["Type"], "Fail", "{w}: {name} catches into {next}");
                let error = fail["Error"].as_str().unwrap_or_default();
                assert!(
                    error.starts_with("Tenantry.") && error.ends_with("Failed"),
                    "{w}: {next} has Error {error:?}"
                );
                let cause = fail["Cause"].as_str().unwrap_or_default();
                assert!(
                    cause.contains("docs/runbooks/stuck-lease.md")
                        && cause.contains("tenantry lease show")
                        && cause.contains("tenantry lease release"),
                    "{w}: {next}'s Cause names neither the runbook nor the command: {cause}"
                );
                checked += 1;
            }
        }
        // Finalize and RecordFailure of six workflows, and the catalog's AnswerFailure.
        assert_eq!(checked, 13);
    }

    /// Every `ResultPath` of a state (Map iterations included).
    fn result_paths(states: &serde_json::Value, out: &mut Vec<String>) {
        for state in states.as_object().into_iter().flat_map(|m| m.values()) {
            if let Some(path) = state["ResultPath"].as_str() {
                out.push(path.to_owned());
            }
            for branch in state["Branches"].as_array().into_iter().flatten() {
                result_paths(&branch["States"], out);
            }
            result_paths(&state["ItemProcessor"]["States"], out);
        }
    }

    /// Every `action` a state sends to a phase: a literal, or (`action.$`) a path, noted as
    /// such. Walks nested objects so that the payloads of Map and Parallel states are found.
    fn actions(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v.as_str()) {
                        ("action", Some(action)) => out.push(action.to_owned()),
                        ("action.$", Some(path)) => out.push(format!("path {path}")),
                        _ => actions(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| actions(v, out)),
            _ => {}
        }
    }

    /// Phases take `ensure`, `observe` or `delete`; a workflow polls a long operation with
    /// `ensure` again, so a payload naming anything else (the old `status`) would fail at run
    /// time with a deserialization error. An action taken from a path could be anything at run
    /// time, so none is.
    #[test]
    fn every_phase_payload_names_an_action_the_phases_take() {
        let mut seen = std::collections::BTreeSet::new();
        for workflow in ALL {
            let definition: serde_json::Value =
                serde_json::from_str(workflow.definition).expect("ASL is JSON");
            let mut found = Vec::new();
            actions(&definition["States"], &mut found);
            for action in found {
                if let Some(path) = action.strip_prefix("path ") {
                    panic!("{}: an action taken from {path}", workflow.name);
                }
                let parsed: Result<crate::phases::Action, _> =
                    serde_json::from_value(serde_json::Value::String(action.clone()));
                assert!(parsed.is_ok(), "{}: action {action:?}", workflow.name);
                seen.insert(action);
            }
        }
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            ["delete", "ensure", "observe"]
        );
    }

    /// A task result written over an input field (`$.tenant`, `$.item`...) would hand the next
    /// poll the result instead of the field: no state may do that.
    #[test]
    fn no_result_overwrites_an_input_field() {
        const INPUT: &[&str] = &[
            "$",
            "$.platformId",
            "$.requestId",
            "$.operation",
            "$.pollSeconds",
            "$.items",
            "$.tenant",
            "$.item",
        ];
        for workflow in ALL {
            let definition: serde_json::Value =
                serde_json::from_str(workflow.definition).expect("ASL is JSON");
            let mut paths = Vec::new();
            result_paths(&definition["States"], &mut paths);
            for path in paths {
                assert!(
                    !INPUT.contains(&path.as_str()),
                    "{}: a state writes its result to the input field {path}",
                    workflow.name
                );
            }
        }
    }

    /// The local table of schedules says what the template deploys.
    #[test]
    fn schedules_match_the_template() {
        let template = include_str!("../../infra/template.yaml");
        for s in SCHEDULES {
            let at = template
                .find(&format!("Name: {}", s.name))
                .unwrap_or_else(|| panic!("the template has no schedule {}", s.name));
            let body = &template[at..at + 700.min(template.len() - at)];
            let machine = format!(
                "Arn: !Ref {}StateMachine",
                s.workflow
                    .name
                    .split('-')
                    .map(|w| w[..1].to_uppercase() + &w[1..])
                    .collect::<String>()
            );
            assert!(body.contains(&machine), "{}: target {machine}", s.name);
            assert!(
                body.contains(&format!("Input: {:?}", s.input)),
                "{}: input",
                s.name
            );
            let p = s.parameter;
            let expression = format!(
                "  {p}Schedule:\n    Type: String\n    Default: {}\n",
                s.expression
            );
            assert!(template.contains(&expression), "{}: {expression}", s.name);
            let zone = format!(
                "  {p}TimeZone:\n    Type: String\n    Default: {}\n",
                s.time_zone
            );
            assert!(template.contains(&zone), "{}: {zone}", s.name);
            assert!(
                body.contains(&format!("ScheduleExpression: !Ref {p}Schedule")),
                "{}",
                s.name
            );
            assert!(
                body.contains(&format!("ScheduleExpressionTimezone: !Ref {p}TimeZone")),
                "{}",
                s.name
            );
        }
    }

    #[test]
    fn placeholders_become_function_arns() {
        let out = render(SELFTEST.definition, "eu-west-1", "111122223333").unwrap();
        assert!(out.contains("arn:aws:lambda:eu-west-1:111122223333:function:tenantry-selftest"));
        assert!(!out.contains("${"));
        serde_json::from_str::<serde_json::Value>(&out).unwrap();
    }

    #[test]
    fn unknown_placeholders_are_refused() {
        let err = render(r#"{"F": "${NoSuchThingFunctionArn}"}"#, "us-east-1", "1").unwrap_err();
        assert!(err.contains("${NoSuchThingFunctionArn}"), "{err}");
    }

    #[test]
    fn every_definition_is_json_with_a_start_state() {
        for wf in ALL {
            let v: serde_json::Value = serde_json::from_str(wf.definition).unwrap();
            let start = v["StartAt"].as_str().unwrap();
            assert!(v["States"].get(start).is_some(), "{}", wf.name);
        }
    }
}
