//! Which phase (and item) each state of Tenantry's state machines belongs to: the table that
//! folds a run's seventy-odd state entries (`NodeGroup`, `WaitForNodeGroup`, `NodeGroupPoll`…)
//! into a dozen phases with their node groups, add-ons and tenants.
//!
//! One table per workflow, every state of its definition listed once (a test holds them to
//! `statemachine/*.asl.json`). A row marks:
//! - `item`: the state runs inside a Map iteration, for the item named by the iteration's input
//!   (`"item": "critical"`);
//! - `end`: the state ends a branch (`"End": true`, or a `Succeed` state): when every phase-level
//!   end row of a phase has been left, the phase is over; an item is over when its end row is.
//!
//! Parallel groupings (`Foundations`, `Platform`) and the terminal `Done`/`Failed` (and
//! `FinalizeFailed`/`AnswerFailed`, when the last state itself failed) belong to no phase.

/// Where one state belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub state: &'static str,
    /// None: a grouping or terminal state of no phase.
    pub phase: Option<&'static str>,
    pub item: bool,
    pub end: bool,
}

const fn phase(state: &'static str, phase: &'static str) -> Row {
    Row {
        state,
        phase: Some(phase),
        item: false,
        end: false,
    }
}

const fn phase_end(state: &'static str, phase: &'static str) -> Row {
    Row {
        end: true,
        ..self::phase(state, phase)
    }
}

const fn item(state: &'static str, phase: &'static str) -> Row {
    Row {
        item: true,
        ..self::phase(state, phase)
    }
}

const fn item_end(state: &'static str, phase: &'static str) -> Row {
    Row {
        item: true,
        end: true,
        ..self::phase(state, phase)
    }
}

const fn none(state: &'static str) -> Row {
    Row {
        state,
        phase: None,
        item: false,
        end: false,
    }
}

/// `X`, `XReady`, `WaitForX`, `XPoll`, `XDone`: a task polled until ready, at phase level.
macro_rules! polled_phase {
    ($x:literal, $phase:literal) => {
        [
            phase($x, $phase),
            phase(concat!($x, "Ready"), $phase),
            phase(concat!("WaitFor", $x), $phase),
            phase(concat!($x, "Poll"), $phase),
            phase_end(concat!($x, "Done"), $phase),
        ]
    };
}

/// The same inside a Map iteration, per item.
macro_rules! polled_item {
    ($x:literal, $phase:literal) => {
        [
            item($x, $phase),
            item(concat!($x, "Ready"), $phase),
            item(concat!("WaitFor", $x), $phase),
            item(concat!($x, "Poll"), $phase),
            item_end(concat!($x, "Done"), $phase),
        ]
    };
}

/// Flattens groups of rows into one table at compile time.
macro_rules! table {
    ($($group:expr),* $(,)?) => {{
        const GROUPS: &[&[Row]] = &[$(&$group),*];
        const LEN: usize = {
            let mut n = 0;
            let mut i = 0;
            while i < GROUPS.len() {
                n += GROUPS[i].len();
                i += 1;
            }
            n
        };
        const ROWS: [Row; LEN] = {
            let mut rows = [none(""); LEN];
            let (mut k, mut i) = (0, 0);
            while i < GROUPS.len() {
                let mut j = 0;
                while j < GROUPS[i].len() {
                    rows[k] = GROUPS[i][j];
                    k += 1;
                    j += 1;
                }
                i += 1;
            }
            rows
        };
        &ROWS
    }};
}

const FINALIZE: [Row; 5] = [
    phase("Finalize", "finalize"),
    phase("RecordFailure", "finalize"),
    none("Done"),
    none("Failed"),
    // Finalize itself failed after its retries (docs/runbooks/stuck-lease.md).
    none("FinalizeFailed"),
];

pub const PROVISION: &[Row] = table![
    [
        none("Foundations"),
        phase_end("Encryption", "encryption"),
        phase_end("BaseIdentity", "identity"),
        phase("Network", "network"),
        phase("Cluster", "cluster"),
        phase("WaitForCluster", "cluster"),
        phase("ClusterPoll", "cluster"),
        phase("ClusterReady", "cluster"),
        // Identity's second run (OIDC provider, IRSA roles) needs the cluster.
        phase("ClusterIdentity", "identity (cluster)"),
        // With cni calico: Calico before any node group. The Choice ends the step before it,
        // so that the vpc-cni path, which passes it and runs nothing, shows no Calico phase.
        phase("CniFirst", "identity (cluster)"),
        phase("Calico", "bootstrap (calico)"),
        none("Platform"),
        // The node groups' branch first waits for the network: NAT gateways available, routed.
        phase("NetworkRoutes", "network (routes)"),
        phase("NetworkReady", "network (routes)"),
        phase("WaitForNetwork", "network (routes)"),
        phase("NodeGroups", "nodegroups"),
        phase_end("AddonsWithNodes", "addons"),
        phase_end("AddonsWithoutNodes", "addons"),
        phase_end("Observability", "observability"),
        phase_end("Bootstrap", "bootstrap"),
        phase("TenantBucket", "tenants"),
        phase_end("Tenants", "tenants"),
        // Removes the node groups and add-ons the spec no longer names.
        phase("Reconcile", "reconcile"),
    ],
    polled_item!("NodeGroup", "nodegroups"),
    polled_item!("AddonWithNodes", "addons"),
    polled_item!("AddonWithoutNodes", "addons"),
    polled_phase!("Access", "access"),
    polled_item!("Tenant", "tenants"),
    polled_phase!("AllNodeGroups", "reconcile"),
    polled_phase!("AllAddons", "reconcile"),
    FINALIZE,
];

pub const DECOMMISSION: &[Row] = table![
    [
        none("Workloads"),
        phase_end("DeleteObservability", "observability"),
        phase("DeleteBootstrap", "bootstrap"),
        phase("DeleteCluster", "cluster"),
        phase("ClusterGone", "cluster"),
        phase("WaitForClusterDeletion", "cluster"),
        none("IdentityAndNetwork"),
        phase_end("DeleteIdentity", "identity"),
        phase("DeleteNetwork", "network"),
        phase("NetworkGone", "network"),
        phase("WaitForNetworkDeletion", "network"),
        phase_end("NetworkDeleted", "network"),
        phase("DeleteEncryption", "encryption"),
    ],
    polled_phase!("DeleteAccess", "access"),
    polled_phase!("DeleteAddons", "addons"),
    polled_phase!("DeleteNodeGroups", "nodegroups"),
    polled_phase!("DeleteTenants", "tenants"),
    FINALIZE,
];

pub const ONBOARD_TENANT: &[Row] = table![
    [
        phase("Bucket", "bucket"),
        phase("Tenant", "tenant"),
        phase("TenantReady", "tenant"),
        phase("WaitForTenant", "tenant"),
        phase("TenantPoll", "tenant"),
    ],
    FINALIZE,
];

pub const OFFBOARD_TENANT: &[Row] = table![
    [
        phase("Tenant", "tenant"),
        phase("TenantReady", "tenant"),
        phase("WaitForTenant", "tenant"),
        phase("TenantPoll", "tenant"),
    ],
    FINALIZE,
];

/// The observations run twice when something is repaired (before and after): both fold into
/// `observe`.
pub const DRIFT_CHECK: &[Row] = table![
    [
        none("Observe"),
        phase_end("ObserveEncryption", "observe"),
        phase_end("ObserveIdentity", "observe"),
        phase_end("ObserveNetwork", "observe"),
        phase_end("ObserveCluster", "observe"),
        phase_end("ObserveNodeGroups", "observe"),
        phase_end("ObserveAddons", "observe"),
        phase_end("ObserveBootstrap", "observe"),
        phase_end("ObserveAccess", "observe"),
        phase_end("ObserveObservability", "observe"),
        phase_end("ObserveTenants", "observe"),
        phase("AfterObserve", "assess"),
        phase("Assess", "assess"),
        phase("AnyToRepair", "assess"),
        phase("Remediate", "remediate"),
        phase("Confirm", "confirm"),
    ],
    polled_item!("Repair", "remediate"),
    FINALIZE,
];

/// One invocation evaluates every control.
pub const COMPLIANCE_SWEEP: &[Row] = table![[phase("Evaluate", "evaluate")], FINALIZE];

/// One item per platform: requested through intake, then awaited.
pub const FLEET_SWEEP: &[Row] = &[
    phase("ListPlatforms", "list"),
    phase("CheckPlatforms", "platforms"),
    item("RequestCheck", "platforms"),
    item("WaitForCheck", "platforms"),
    item("AwaitCheck", "platforms"),
    item("CheckDone", "platforms"),
    item_end("Checked", "platforms"),
    item_end("CheckFailed", "platforms"),
    phase_end("Report", "report"),
    phase("SweepFailed", "report"),
    none("Failed"),
];

/// One CloudFormation custom-resource event (Service Catalog): submitted, handed to intake and
/// awaited, answered.
pub const CATALOG_REQUEST: &[Row] = &[
    phase("Submit", "submit"),
    phase("HandOff", "submit"),
    phase("Request", "request"),
    phase("WaitForRequest", "request"),
    phase("Poll", "request"),
    phase("RequestDone", "request"),
    phase("Answer", "answer"),
    phase("AnswerFailure", "answer"),
    none("Done"),
    none("Failed"),
    none("AnswerFailed"),
];

pub const SELFTEST: &[Row] = &[
    phase("Probe", "probe"),
    phase("IsReady", "probe"),
    phase("WaitBeforePoll", "probe"),
    phase("RecordFailure", "finalize"),
    none("Done"),
    none("Failed"),
];

/// The table of a workflow, by its name (`provision-platform`); None for a workflow this CLI
/// does not know.
pub fn workflow(name: &str) -> Option<&'static [Row]> {
    Some(match name {
        "provision-platform" => PROVISION,
        "decommission-platform" => DECOMMISSION,
        "onboard-tenant" => ONBOARD_TENANT,
        "offboard-tenant" => OFFBOARD_TENANT,
        "drift-check" => DRIFT_CHECK,
        "fleet-sweep" => FLEET_SWEEP,
        "compliance-sweep" => COMPLIANCE_SWEEP,
        "catalog-request" => CATALOG_REQUEST,
        "selftest" => SELFTEST,
        _ => return None,
    })
}

/// The workflow an execution ran, from its ARN
/// (`arn:aws:states:REGION:ACCOUNT:execution:tenantry-provision-platform:NAME`).
pub fn workflow_of_execution(execution_arn: &str) -> Option<&str> {
    let machine = execution_arn.split(':').nth(6)?;
    Some(
        machine
            .strip_prefix(tenantry::workflows::NAME_PREFIX)
            .unwrap_or(machine),
    )
}

/// The row of `state` in `rows`; None for a state the table does not list (a definition newer
/// than this CLI), which the timeline shows as a phase of its own, named after the state.
pub fn row(rows: &[Row], state: &str) -> Option<Row> {
    rows.iter().find(|r| r.state == state).copied()
}

/// The phase-level end rows of `phase`: all of them must be left before the phase is over.
pub fn phase_ends(rows: &[Row], phase: &str) -> Vec<&'static str> {
    rows.iter()
        .filter(|r| r.phase == Some(phase) && r.end && !r.item)
        .map(|r| r.state)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::BTreeMap;

    /// What the definition says of each state: (type, ends a branch, inside a Map).
    fn states(definition: &str) -> BTreeMap<String, (String, bool, bool)> {
        fn walk(states: &Value, in_map: bool, out: &mut BTreeMap<String, (String, bool, bool)>) {
            for (name, s) in states.as_object().unwrap() {
                let kind = s["Type"].as_str().unwrap().to_owned();
                let end = s["End"] == true || kind == "Succeed";
                assert!(
                    out.insert(name.clone(), (kind.clone(), end, in_map))
                        .is_none(),
                    "state {name} is defined twice"
                );
                for branch in s["Branches"].as_array().into_iter().flatten() {
                    walk(&branch["States"], in_map, out);
                }
                if let Some(processor) = s.get("ItemProcessor").or_else(|| s.get("Iterator")) {
                    walk(&processor["States"], true, out);
                }
            }
        }
        let asl: Value = serde_json::from_str(definition).unwrap();
        let mut out = BTreeMap::new();
        walk(&asl["States"], false, &mut out);
        out
    }

    #[test]
    fn every_workflow_has_a_table_listing_each_state_once_as_its_definition_has_it() {
        for wf in tenantry::workflows::ALL {
            let rows = workflow(wf.name).unwrap_or_else(|| panic!("no table for {}", wf.name));
            let defined = states(wf.definition);
            let mut listed = BTreeMap::new();
            for r in rows {
                assert!(
                    listed.insert(r.state, *r).is_none(),
                    "{}: {} listed twice",
                    wf.name,
                    r.state
                );
            }
            let names: Vec<_> = defined.keys().map(String::as_str).collect();
            let table: Vec<_> = listed.keys().copied().collect();
            assert_eq!(
                table, names,
                "{}: the table and the definition differ",
                wf.name
            );
            for (name, (kind, end, in_map)) in &defined {
                let r = listed[name.as_str()];
                let terminal = matches!(
                    name.as_str(),
                    "Done" | "Failed" | "FinalizeFailed" | "AnswerFailed"
                );
                if r.phase.is_none() {
                    assert!(
                        kind == "Parallel" || terminal,
                        "{}: {name} ({kind}) belongs to no phase",
                        wf.name
                    );
                    continue;
                }
                assert_eq!(r.item, *in_map, "{}: {name}: item", wf.name);
                assert_eq!(r.end, *end, "{}: {name}: end", wf.name);
            }
        }
    }

    #[test]
    fn polls_fold_into_their_phase_and_item() {
        for state in [
            "NodeGroup",
            "NodeGroupReady",
            "WaitForNodeGroup",
            "NodeGroupPoll",
        ] {
            let r = row(PROVISION, state).unwrap();
            assert_eq!((r.phase, r.item, r.end), (Some("nodegroups"), true, false));
        }
        assert!(row(PROVISION, "NodeGroupDone").unwrap().end);
        for state in ["Cluster", "WaitForCluster", "ClusterPoll", "ClusterReady"] {
            assert_eq!(row(PROVISION, state).unwrap().phase, Some("cluster"));
        }
        assert_eq!(
            row(DECOMMISSION, "WaitForDeleteNodeGroups").unwrap().phase,
            Some("nodegroups")
        );
        assert_eq!(row(PROVISION, "Platform").unwrap().phase, None);
        assert_eq!(row(PROVISION, "SomethingNew"), None);
    }

    #[test]
    fn a_phase_run_in_two_branches_ends_when_both_have() {
        assert_eq!(
            phase_ends(PROVISION, "addons"),
            ["AddonsWithNodes", "AddonsWithoutNodes"]
        );
        assert_eq!(phase_ends(PROVISION, "cluster"), Vec::<&str>::new());
        assert_eq!(phase_ends(DECOMMISSION, "network"), ["NetworkDeleted"]);
    }

    #[test]
    fn the_workflow_is_read_from_the_execution_arn() {
        assert_eq!(
            workflow_of_execution(
                "arn:aws:states:eu-west-1:111122223333:execution:tenantry-provision-platform:provision-1"
            ),
            Some("provision-platform")
        );
        assert_eq!(workflow_of_execution("nonsense"), None);
    }
}
