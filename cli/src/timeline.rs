//! A run as phases and items: folds a Step Functions execution history, event by event, into the
//! phases of [`run_states`](crate::run_states) with their items, states, durations and changes,
//! and says what changed (a phase or item started, finished or failed) at each event.
//!
//! When is a phase over? Its states come and go (a poll leaves `ClusterReady` and enters
//! `WaitForCluster`), so leaving a state is not enough. A phase is over when
//! - the next state entered after one of its states (the history's `previousEventId`) belongs
//!   to another phase, or
//! - it has left every one of its end rows (a branch's last state), and no state of it is open;
//!
//! an item when it has left its end row; everything still open when the execution ends.
//! Durations come from the history's timestamps, so a run shown later (`tenantry runs`) reads
//! the same as it did live.

use crate::run_states::{self, Row};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;

/// One history event, as much of it as the timeline reads.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: i64,
    pub prev: i64,
    pub at: DateTime<Utc>,
    pub what: What,
}

#[derive(Debug, Clone, PartialEq)]
pub enum What {
    ExecutionStarted,
    /// A state entered; `item` is the `item` of its input (Map iterations); `wait`: a Wait state.
    Entered {
        state: String,
        item: Option<String>,
        wait: bool,
    },
    Exited {
        state: String,
    },
    /// A task's result: the phase function's `changes` (mutating AWS calls).
    TaskSucceeded {
        changes: Option<u64>,
    },
    /// A task failed (it may be retried).
    TaskFailed {
        error: String,
        cause: String,
    },
    ExecutionEnded {
        succeeded: bool,
    },
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Running,
    /// Between polls of a long operation.
    Waiting,
    Succeeded,
    Failed,
}

impl State {
    pub fn is_over(self) -> bool {
        matches!(self, State::Succeeded | State::Failed)
    }
}

/// A phase or an item of one.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub state: State,
    pub started: DateTime<Utc>,
    pub finished: Option<DateTime<Utc>>,
    pub changes: u64,
    /// Times it waited for a long operation.
    pub polls: u32,
    /// The last task failure not followed by a success: `(error, cause)`.
    pub error: Option<(String, String)>,
    open: u32,
    /// Announced as over (a late re-entry is not announced twice).
    announced: bool,
}

impl Entry {
    fn new(name: &str, at: DateTime<Utc>) -> Self {
        Entry {
            name: name.to_owned(),
            state: State::Running,
            started: at,
            finished: None,
            changes: 0,
            polls: 0,
            error: None,
            open: 0,
            announced: false,
        }
    }

    /// Seconds from start to finish, or to `now` while it runs.
    pub fn seconds(&self, now: DateTime<Utc>) -> f64 {
        seconds(self.started, self.finished.unwrap_or(now))
    }
}

#[derive(Debug, Clone)]
pub struct Phase {
    pub entry: Entry,
    pub items: Vec<Entry>,
    /// End rows not left yet.
    pending_ends: Vec<&'static str>,
}

/// What changed at one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub at: DateTime<Utc>,
    pub phase: String,
    pub item: Option<String>,
    pub kind: Change,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Started,
    Succeeded { seconds: f64, changes: u64 },
    Failed { seconds: f64, error: String },
}

pub fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds().max(0) as f64 / 1000.0
}

/// (phase, item) of a state entry.
type Key = (String, Option<String>);

pub struct Timeline {
    rows: &'static [Row],
    events: HashMap<i64, Event>,
    pub started: Option<DateTime<Utc>>,
    /// When the execution ended, and whether it succeeded.
    pub ended: Option<(DateTime<Utc>, bool)>,
    /// In the order they started.
    pub phases: Vec<Phase>,
    /// States entered, polls included.
    pub states_entered: usize,
}

impl Timeline {
    /// A timeline of a run of `workflow` (`provision-platform`); an unknown workflow shows each
    /// state as a phase.
    pub fn new(workflow: &str) -> Self {
        Timeline {
            rows: run_states::workflow(workflow).unwrap_or(&[]),
            events: HashMap::new(),
            started: None,
            ended: None,
            phases: Vec::new(),
            states_entered: 0,
        }
    }

    /// The timeline of a whole history.
    pub fn of(workflow: &str, events: impl IntoIterator<Item = Event>) -> Self {
        let mut t = Timeline::new(workflow);
        for e in events {
            t.apply(e);
        }
        t
    }

    /// Total changes of every phase.
    pub fn changes(&self) -> u64 {
        self.phases.iter().map(|p| p.entry.changes).sum()
    }

    /// Seconds from the execution's start to its end, or to `now`.
    pub fn seconds(&self, now: DateTime<Utc>) -> f64 {
        match self.started {
            Some(t0) => seconds(t0, self.ended.map_or(now, |(t, _)| t)),
            None => 0.0,
        }
    }

    /// The first phase that failed, with its failed item.
    pub fn failed(&self) -> Option<(&Phase, Option<&Entry>)> {
        let phase = self
            .phases
            .iter()
            .find(|p| p.entry.state == State::Failed)?;
        let item = phase.items.iter().find(|i| i.state == State::Failed);
        Some((phase, item))
    }

    /// Takes one event (in history order) and returns what it changed.
    pub fn apply(&mut self, event: Event) -> Vec<Transition> {
        let mut out = Vec::new();
        let at = event.at;
        match &event.what {
            What::ExecutionStarted => self.started = Some(at),
            What::Entered { state, item, wait } => {
                self.states_entered += 1;
                let key = self.key(state, item.as_deref());
                // Rule 1: the state after one of another phase's states ends that phase.
                if let Some(prev) = self.closed_by(event.prev) {
                    if key.as_ref().map(|k| &k.0) != Some(&prev.0) {
                        self.finish(&(prev.0.clone(), None), at, &mut out);
                    }
                }
                if let Some(key) = key {
                    self.enter(&key, at, *wait, &mut out);
                }
            }
            What::Exited { state } => {
                if let Some((key, row)) = self.key_of_exit(event.prev, state) {
                    self.leave(&key, row, state, at, &mut out);
                }
            }
            What::TaskSucceeded { changes } => {
                if let Some(key) = self.key_of_task(event.prev) {
                    for e in self.entries(&key) {
                        e.changes += changes.unwrap_or(0);
                        e.error = None;
                        if e.state == State::Waiting {
                            e.state = State::Running;
                        }
                    }
                }
            }
            What::TaskFailed { error, cause } => {
                if let Some(key) = self.key_of_task(event.prev) {
                    for e in self.entries(&key) {
                        e.error = Some((error.clone(), cause.clone()));
                    }
                }
            }
            What::ExecutionEnded { succeeded } => {
                self.ended = Some((at, *succeeded));
                for p in 0..self.phases.len() {
                    let name = self.phases[p].entry.name.clone();
                    let items: Vec<_> = self.phases[p]
                        .items
                        .iter()
                        .map(|i| i.name.clone())
                        .collect();
                    for item in items {
                        self.settle(&(name.clone(), Some(item)), at, *succeeded, &mut out);
                    }
                    self.settle(&(name, None), at, *succeeded, &mut out);
                }
            }
            What::Other => {}
        }
        self.events.insert(event.id, event);
        out
    }

    /// The (phase, item) a state of this workflow belongs to, if any.
    fn key(&self, state: &str, item: Option<&str>) -> Option<Key> {
        match run_states::row(self.rows, state) {
            Some(row) => {
                let phase = row.phase?;
                Some((
                    phase.to_owned(),
                    item.filter(|_| row.item).map(str::to_owned),
                ))
            }
            None => Some((state.to_owned(), None)),
        }
    }

    /// When event `id` is a state's exit: that state's (phase, item).
    fn closed_by(&self, id: i64) -> Option<Key> {
        match &self.events.get(&id)?.what {
            What::Exited { state } => self.key_of_exit(self.events[&id].prev, state).map(|k| k.0),
            _ => None,
        }
    }

    /// The entry of the state `state` an exit closes: back along `previousEventId` to where
    /// that state was entered (through a Map's or Parallel's inner events, for those).
    fn key_of_exit(&self, mut id: i64, state: &str) -> Option<(Key, Option<Row>)> {
        while let Some(e) = self.events.get(&id) {
            if let What::Entered { state: s, item, .. } = &e.what {
                if s == state {
                    return Some((self.key(s, item.as_deref())?, run_states::row(self.rows, s)));
                }
            }
            id = e.prev;
        }
        None
    }

    /// The entry of the task a task event reports on: the state entered before it.
    fn key_of_task(&self, mut id: i64) -> Option<Key> {
        while let Some(e) = self.events.get(&id) {
            if let What::Entered { state, item, .. } = &e.what {
                return self.key(state, item.as_deref());
            }
            id = e.prev;
        }
        None
    }

    fn phase_mut(&mut self, name: &str) -> Option<&mut Phase> {
        self.phases.iter_mut().find(|p| p.entry.name == name)
    }

    /// The phase's entry, and the item's when the key names one.
    fn entries(&mut self, key: &Key) -> Vec<&mut Entry> {
        let Some(phase) = self.phases.iter_mut().find(|p| p.entry.name == key.0) else {
            return Vec::new();
        };
        let mut out = vec![&mut phase.entry];
        if let Some(item) = &key.1 {
            if let Some(i) = phase.items.iter_mut().find(|i| &i.name == item) {
                out.push(i);
            }
        }
        out
    }

    fn enter(&mut self, key: &Key, at: DateTime<Utc>, wait: bool, out: &mut Vec<Transition>) {
        if self.phase_mut(&key.0).is_none() {
            self.phases.push(Phase {
                entry: Entry::new(&key.0, at),
                items: Vec::new(),
                pending_ends: run_states::phase_ends(self.rows, &key.0),
            });
            out.push(transition(at, &key.0, None, Change::Started));
        }
        if let Some(item) = &key.1 {
            let phase = self.phase_mut(&key.0).expect("just added");
            if !phase.items.iter().any(|i| &i.name == item) {
                phase.items.push(Entry::new(item, at));
                out.push(transition(at, &key.0, Some(item), Change::Started));
            }
        }
        for e in self.entries(key) {
            e.open += 1;
            // A late re-entry runs again, but is not announced again.
            e.finished = None;
            e.state = if wait { State::Waiting } else { State::Running };
            if wait {
                e.polls += 1;
            }
        }
    }

    fn leave(
        &mut self,
        key: &Key,
        row: Option<Row>,
        state: &str,
        at: DateTime<Utc>,
        out: &mut Vec<Transition>,
    ) {
        for e in self.entries(key) {
            e.open = e.open.saturating_sub(1);
        }
        let Some(row) = row.filter(|r| r.end) else {
            return;
        };
        if row.item {
            if key.1.is_some() {
                self.finish(key, at, out);
            }
            return;
        }
        let Some(phase) = self.phase_mut(&key.0) else {
            return;
        };
        phase.pending_ends.retain(|s| *s != state);
        if phase.pending_ends.is_empty() {
            self.finish(&(key.0.clone(), None), at, out);
        }
    }

    /// Ends the entry if nothing of it is open: succeeded, or failed if its last task failed.
    fn finish(&mut self, key: &Key, at: DateTime<Utc>, out: &mut Vec<Transition>) {
        let Some(e) = self.entries(key).pop() else {
            return;
        };
        if e.open > 0 || e.state.is_over() {
            return;
        }
        let failed = e.error.is_some();
        close(e, key, at, failed, out);
    }

    /// At the end of the execution: whatever is not over is over now; what was still open in a
    /// failed execution, or failed last, failed.
    fn settle(&mut self, key: &Key, at: DateTime<Utc>, succeeded: bool, out: &mut Vec<Transition>) {
        let Some(e) = self.entries(key).pop() else {
            return;
        };
        if e.state.is_over() {
            return;
        }
        let failed = e.error.is_some() || (!succeeded && e.open > 0);
        e.open = 0;
        close(e, key, at, failed, out);
    }
}

fn close(e: &mut Entry, key: &Key, at: DateTime<Utc>, failed: bool, out: &mut Vec<Transition>) {
    e.finished = Some(at);
    e.state = if failed {
        State::Failed
    } else {
        State::Succeeded
    };
    if e.announced {
        return;
    }
    e.announced = true;
    let seconds = e.seconds(at);
    let kind = match &e.error {
        Some((error, _)) if failed => Change::Failed {
            seconds,
            error: error.clone(),
        },
        _ if failed => Change::Failed {
            seconds,
            error: "stopped when the run failed".to_owned(),
        },
        _ => Change::Succeeded {
            seconds,
            changes: e.changes,
        },
    };
    out.push(transition(at, &key.0, key.1.as_deref(), kind));
}

fn transition(at: DateTime<Utc>, phase: &str, item: Option<&str>, kind: Change) -> Transition {
    Transition {
        at,
        phase: phase.to_owned(),
        item: item.map(str::to_owned),
        kind,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    /// Builds histories the way Step Functions writes them: ids in order, each event pointing
    /// to the one before it in its branch.
    pub(crate) struct History {
        pub events: Vec<Event>,
    }

    impl History {
        pub fn new() -> Self {
            let mut h = History { events: Vec::new() };
            h.push(0, 0, What::ExecutionStarted);
            h
        }

        /// Adds an event at `ms` after the start, after event `prev`; returns its id.
        pub fn push(&mut self, ms: i64, prev: i64, what: What) -> i64 {
            let id = self.events.len() as i64 + 1;
            let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
                + chrono::Duration::milliseconds(ms);
            self.events.push(Event { id, prev, at, what });
            id
        }

        pub fn enter(&mut self, ms: i64, prev: i64, state: &str, item: Option<&str>) -> i64 {
            let wait = state.starts_with("WaitFor");
            self.push(
                ms,
                prev,
                What::Entered {
                    state: state.into(),
                    item: item.map(Into::into),
                    wait,
                },
            )
        }

        /// A task state: entered, succeeded with `changes`, exited; returns the exit's id.
        pub fn task(
            &mut self,
            from: i64,
            to: i64,
            prev: i64,
            state: &str,
            item: Option<&str>,
            changes: u64,
        ) -> i64 {
            let e = self.enter(from, prev, state, item);
            let ok = self.push(
                to,
                e,
                What::TaskSucceeded {
                    changes: Some(changes),
                },
            );
            self.push(
                to,
                ok,
                What::Exited {
                    state: state.into(),
                },
            )
        }

        /// A state passed through (Choice, Wait, Succeed): entered and exited.
        pub fn pass(
            &mut self,
            from: i64,
            to: i64,
            prev: i64,
            state: &str,
            item: Option<&str>,
        ) -> i64 {
            let e = self.enter(from, prev, state, item);
            self.push(
                to,
                e,
                What::Exited {
                    state: state.into(),
                },
            )
        }
    }

    fn lines(transitions: &[Transition]) -> Vec<String> {
        transitions
            .iter()
            .map(|t| {
                let who = match &t.item {
                    Some(i) => format!("{}/{i}", t.phase),
                    None => t.phase.clone(),
                };
                match &t.kind {
                    Change::Started => format!("{who} started"),
                    Change::Succeeded { seconds, changes } => {
                        format!("{who} succeeded {seconds}s {changes}")
                    }
                    Change::Failed { seconds, error } => format!("{who} failed {seconds}s {error}"),
                }
            })
            .collect()
    }

    fn run(h: &History) -> (Timeline, Vec<String>) {
        let mut t = Timeline::new("provision-platform");
        let mut out = Vec::new();
        for e in h.events.clone() {
            out.extend(t.apply(e));
        }
        (t, lines(&out))
    }

    /// Network, then the cluster polled twice, then the second identity run, then finalize.
    fn polled_cluster() -> History {
        let mut h = History::new();
        let n = h.task(0, 1000, 1, "Network", None, 48);
        let mut prev = h.task(1000, 1200, n, "Cluster", None, 3);
        for (k, poll) in [(0, 1200), (1, 2200)] {
            let c = h.pass(poll, poll, prev, "ClusterReady", None);
            let w = h.pass(poll, poll + 1000, c, "WaitForCluster", None);
            prev = h.task(poll + 1000, poll + 1000 + k, w, "ClusterPoll", None, 0);
        }
        let c = h.pass(3201, 3201, prev, "ClusterReady", None);
        let i = h.task(3201, 3500, c, "ClusterIdentity", None, 13);
        let f = h.task(3500, 4000, i, "Finalize", None, 0);
        let d = h.pass(4000, 4000, f, "Done", None);
        h.push(4000, d, What::ExecutionEnded { succeeded: true });
        h
    }

    #[test]
    fn polls_fold_into_their_phase_each_transition_once() {
        let (t, lines) = run(&polled_cluster());
        assert_eq!(
            lines,
            [
                "network started",
                "network succeeded 1s 48",
                "cluster started",
                "cluster succeeded 2.201s 3",
                "identity (cluster) started",
                "identity (cluster) succeeded 0.299s 13",
                "finalize started",
                "finalize succeeded 0.5s 0",
            ]
        );
        let cluster = &t.phases[1].entry;
        assert_eq!((cluster.polls, cluster.state), (2, State::Succeeded));
        assert_eq!(t.states_entered, 12);
        assert_eq!(t.changes(), 64);
        assert_eq!(t.seconds(Utc::now()), 4.0);
    }

    #[test]
    fn a_batch_cut_between_two_states_of_a_phase_does_not_end_it() {
        // The same history, read one event at a time: after each event nothing is announced
        // that a later event takes back.
        let h = polled_cluster();
        let mut t = Timeline::new("provision-platform");
        for e in h.events.clone() {
            for tr in t.apply(e) {
                if tr.phase == "cluster" && tr.kind != Change::Started {
                    assert_eq!(tr.at, h.events[0].at + chrono::Duration::milliseconds(3201));
                }
            }
        }
    }

    #[test]
    fn map_items_and_a_phase_in_two_branches() {
        let mut h = History::new();
        let p = h.enter(0, 1, "Platform", None);
        // Branch 1: node groups (two items, one polled), then the add-ons needing nodes.
        let m = h.enter(0, p, "NodeGroups", None);
        let mut last = 0;
        for (k, name) in ["critical", "general"].into_iter().enumerate() {
            let it = h.push(0, m, What::Other); // MapIterationStarted
            let mut prev = h.task(0, 100, it, "NodeGroup", Some(name), 2);
            if k == 1 {
                let r = h.pass(100, 100, prev, "NodeGroupReady", Some(name));
                let w = h.pass(100, 1100, r, "WaitForNodeGroup", Some(name));
                prev = h.task(1100, 1200, w, "NodeGroupPoll", Some(name), 0);
            }
            let r = h.pass(1200, 1200, prev, "NodeGroupReady", Some(name));
            last = h.pass(
                1200 + k as i64,
                1200 + k as i64,
                r,
                "NodeGroupDone",
                Some(name),
            );
        }
        let mx = h.push(
            1300,
            last,
            What::Exited {
                state: "NodeGroups".into(),
            },
        );
        // Branch 2: the add-ons needing no nodes finish while the node groups still run.
        let a = h.enter(0, p, "AddonsWithoutNodes", None);
        let it = h.push(0, a, What::Other);
        let t = h.task(0, 200, it, "AddonWithoutNodes", Some("vpc-cni"), 1);
        let r = h.pass(200, 200, t, "AddonWithoutNodesReady", Some("vpc-cni"));
        let d = h.pass(200, 200, r, "AddonWithoutNodesDone", Some("vpc-cni"));
        h.push(
            300,
            d,
            What::Exited {
                state: "AddonsWithoutNodes".into(),
            },
        );
        // Back in branch 1.
        let b = h.enter(1300, mx, "AddonsWithNodes", None);
        let it = h.push(1300, b, What::Other);
        let t = h.task(1300, 1500, it, "AddonWithNodes", Some("coredns"), 1);
        let r = h.pass(1500, 1500, t, "AddonWithNodesReady", Some("coredns"));
        let d = h.pass(1500, 1500, r, "AddonWithNodesDone", Some("coredns"));
        h.push(
            1600,
            d,
            What::Exited {
                state: "AddonsWithNodes".into(),
            },
        );
        // Events are applied in id order; sort as Step Functions would have written them.
        h.events.sort_by_key(|e| (e.at, e.id));
        let (t, lines) = run(&h);
        let addons: Vec<_> = lines.iter().filter(|l| l.starts_with("addons ")).collect();
        assert_eq!(
            addons,
            ["addons started", "addons succeeded 1.6s 2"],
            "{lines:#?}"
        );
        let ng: Vec<_> = lines
            .iter()
            .filter(|l| l.starts_with("nodegroups"))
            .collect();
        assert_eq!(
            ng,
            [
                "nodegroups started",
                "nodegroups/critical started",
                "nodegroups/general started",
                "nodegroups/critical succeeded 1.2s 2",
                "nodegroups/general succeeded 1.201s 2",
                "nodegroups succeeded 1.3s 4",
            ],
            "{lines:#?}"
        );
        let general = &t.phases[0].items[1];
        assert_eq!((general.name.as_str(), general.polls), ("general", 1));
        let mut unique = lines.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), lines.len(), "{lines:#?}");
    }

    #[test]
    fn a_failed_task_fails_its_item_and_phase_and_a_retry_that_succeeds_does_not() {
        let mut h = History::new();
        let e = h.enter(0, 1, "Network", None);
        let f = h.push(
            100,
            e,
            What::TaskFailed {
                error: "Tenantry.Retryable".into(),
                cause: "throttled".into(),
            },
        );
        let ok = h.push(200, f, What::TaskSucceeded { changes: Some(5) });
        let x = h.push(
            200,
            ok,
            What::Exited {
                state: "Network".into(),
            },
        );
        let c = h.enter(200, x, "Cluster", None);
        let f = h.push(
            300,
            c,
            What::TaskFailed {
                error: "InvalidParameterException".into(),
                cause: "{\"errorMessage\": \"cluster: CreateCluster failed\"}".into(),
            },
        );
        let r = h.task(300, 400, f, "RecordFailure", None, 0);
        let fail = h.enter(400, r, "Failed", None);
        h.push(400, fail, What::ExecutionEnded { succeeded: false });
        let (t, lines) = run(&h);
        assert_eq!(
            lines,
            [
                "network started",
                "network succeeded 0.2s 5",
                "cluster started",
                "finalize started",
                "finalize succeeded 0.1s 0",
                "cluster failed 0.2s InvalidParameterException",
            ]
        );
        let (phase, item) = t.failed().unwrap();
        assert_eq!(
            (phase.entry.name.as_str(), item.is_none()),
            ("cluster", true)
        );
        assert_eq!(t.ended.map(|(_, ok)| ok), Some(false));
    }
}
