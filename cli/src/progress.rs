//! How `--wait` shows a run: a live tree on a terminal (the platform, its phases, the items of the
//! running ones, each with a spinner, its state and elapsed time), one plain line per phase
//! transition otherwise, JSON lines with `--output json`; and the summary at the end.

use crate::timeline::{self, Change, Entry, Phase, State, Timeline, Transition};
use chrono::{DateTime, Utc};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

/// `--output`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Text: a live tree on a terminal, plain lines otherwise.
    #[default]
    Text,
    /// JSON lines: one object per transition, then a summary object.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Live,
    Plain,
    Json,
}

impl Mode {
    /// Live only when standard output is a terminal.
    pub fn for_output(output: Output) -> Mode {
        match output {
            Output::Json => Mode::Json,
            Output::Text if std::io::stdout().is_terminal() => Mode::Live,
            Output::Text => Mode::Plain,
        }
    }
}

type Key = (String, Option<String>);

pub struct Progress {
    mode: Mode,
    /// `provision of platform "payments"`.
    title: String,
    multi: MultiProgress,
    root: Option<ProgressBar>,
    bars: HashMap<Key, ProgressBar>,
}

const TICK: Duration = Duration::from_millis(120);

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("static template")
        .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ")
}

impl Progress {
    pub fn new(mode: Mode, title: impl Into<String>) -> Self {
        Progress {
            mode,
            title: title.into(),
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            root: None,
            bars: HashMap::new(),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// A line before the run (request sent, accepted): text, or the JSON object.
    pub fn note(&self, text: &str, object: Value) {
        match self.mode {
            Mode::Json => println!("{object}"),
            _ => println!("{text}"),
        }
    }

    /// Shows what `transitions` changed, and refreshes the state of what runs.
    pub fn update(&mut self, t: &Timeline, transitions: &[Transition]) {
        match self.mode {
            Mode::Json => {
                for tr in transitions {
                    println!("{}", transition_json(t, tr));
                }
            }
            Mode::Plain => {
                for tr in transitions.iter().filter(|tr| tr.item.is_none()) {
                    println!("{}", plain_line(t, tr));
                }
            }
            Mode::Live => self.live(t, transitions),
        }
    }

    fn live(&mut self, t: &Timeline, transitions: &[Transition]) {
        let now = Utc::now();
        self.update_root(t, now);
        for tr in transitions {
            let key = (tr.phase.clone(), tr.item.clone());
            match &tr.kind {
                Change::Started => self.start_line(t, tr, key, now),
                Change::Succeeded { .. } | Change::Failed { .. } => self.finish_line(t, tr, &key),
            }
        }
        self.refresh_running(t);
    }

    /// The title line: how many phases are done and how many run.
    fn update_root(&mut self, t: &Timeline, now: DateTime<Utc>) {
        let root = self.root.get_or_insert_with(|| {
            let bar = self.multi.add(
                ProgressBar::new_spinner()
                    .with_style(style("{spinner:.cyan} {prefix:.bold}  {msg}  {elapsed}"))
                    .with_prefix(self.title.clone())
                    .with_elapsed(elapsed_since(t.started, now)),
            );
            bar.enable_steady_tick(TICK);
            bar
        });
        let running = t.phases.iter().filter(|p| !p.entry.state.is_over()).count();
        root.set_message(format!(
            "{} phase(s) done, {running} running",
            t.phases.len() - running
        ));
    }

    /// A spinner for a phase that started, or for an item, below its phase's last line.
    fn start_line(&mut self, t: &Timeline, tr: &Transition, key: Key, now: DateTime<Utc>) {
        let Some(entry) = find(t, &key) else { return };
        let bar = ProgressBar::new_spinner()
            .with_prefix(entry.name.clone())
            .with_elapsed(elapsed_since(Some(entry.started), now));
        let bar = match &tr.item {
            None => {
                bar.set_style(style(
                    "  {spinner:.cyan} {prefix:<20} {msg:<34} {elapsed:>4}",
                ));
                self.multi.add(bar)
            }
            Some(_) => {
                bar.set_style(style(
                    "      {spinner:.cyan} {prefix:<20} {msg:<28} {elapsed:>4}",
                ));
                match self.last_line_of(t, &tr.phase) {
                    Some(after) => self.multi.insert_after(&after, bar),
                    None => self.multi.add(bar),
                }
            }
        };
        bar.enable_steady_tick(TICK);
        self.bars.insert(key, bar);
    }

    /// A finished phase or item: its line turns into ✓ or ✗ with what it did; a finished phase
    /// folds its items into its line.
    fn finish_line(&mut self, t: &Timeline, tr: &Transition, key: &Key) {
        let Some(bar) = self.bars.get(key) else {
            return;
        };
        let Some(entry) = find(t, key) else { return };
        let indent = if tr.item.is_some() { "      " } else { "  " };
        let sign = if entry.state == State::Failed {
            "✗"
        } else {
            "✓"
        };
        bar.set_style(style(&format!("{indent}{sign} {{prefix:<20}} {{msg}}")));
        bar.finish_with_message(done_text(entry));
        if tr.item.is_some() {
            return;
        }
        let items: Vec<Key> = self
            .bars
            .keys()
            .filter(|(p, i)| p == &tr.phase && i.is_some())
            .cloned()
            .collect();
        for k in items {
            if let Some(b) = self.bars.remove(&k) {
                b.finish_and_clear();
                self.multi.remove(&b);
            }
        }
    }

    /// The messages of the phases and items still running.
    fn refresh_running(&self, t: &Timeline) {
        for phase in &t.phases {
            if let Some(bar) = self.bars.get(&(phase.entry.name.clone(), None)) {
                if !phase.entry.state.is_over() {
                    bar.set_message(running_text(phase));
                }
            }
            for item in phase.items.iter().filter(|i| !i.state.is_over()) {
                if let Some(bar) = self
                    .bars
                    .get(&(phase.entry.name.clone(), Some(item.name.clone())))
                {
                    bar.set_message(entry_state(item));
                }
            }
        }
    }

    /// The last line shown for `phase`: its last item's, or its own.
    fn last_line_of(&self, t: &Timeline, phase: &str) -> Option<ProgressBar> {
        let p = t.phases.iter().find(|p| p.entry.name == phase)?;
        p.items
            .iter()
            .rev()
            .find_map(|i| self.bars.get(&(phase.to_owned(), Some(i.name.clone()))))
            .or_else(|| self.bars.get(&(phase.to_owned(), None)))
            .cloned()
    }

    /// Ends the live view and prints the summary (a JSON object with `--output json`).
    pub fn finish(&mut self, t: &Timeline, status: &str) {
        if self.mode == Mode::Live {
            let bars: Vec<_> = self
                .bars
                .drain()
                .map(|(_, b)| b)
                .chain(self.root.take())
                .collect();
            for bar in &bars {
                bar.finish_and_clear();
            }
            let _ = self.multi.clear();
            // Dropped now, before the summary: dropped later, they would clear its last lines.
            drop(bars);
            self.multi = MultiProgress::with_draw_target(ProgressDrawTarget::hidden());
        }
        match self.mode {
            Mode::Json => println!("{}", summary_json(t, status)),
            _ => {
                for line in summary_lines(&self.title, t, status) {
                    println!("{line}");
                }
            }
        }
    }
}

fn elapsed_since(start: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Duration {
    Duration::from_secs_f64(start.map_or(0.0, |s| timeline::seconds(s, now)))
}

fn find<'a>(t: &'a Timeline, key: &Key) -> Option<&'a Entry> {
    let p = t.phases.iter().find(|p| p.entry.name == key.0)?;
    match &key.1 {
        None => Some(&p.entry),
        Some(item) => p.items.iter().find(|i| &i.name == item),
    }
}

/// What an entry is doing.
fn entry_state(e: &Entry) -> String {
    match (&e.state, &e.error) {
        (State::Waiting, _) => format!("waiting for AWS (poll {})", e.polls),
        (State::Running, Some((error, _))) => format!("retrying after {error}"),
        (State::Running, None) => "working".to_owned(),
        (State::Succeeded, _) => "done".to_owned(),
        (State::Failed, _) => "failed".to_owned(),
    }
}

fn running_text(p: &Phase) -> String {
    if p.items.is_empty() {
        return entry_state(&p.entry);
    }
    let done = p.items.iter().filter(|i| i.state.is_over()).count();
    format!("{done}/{} {} done", p.items.len(), noun(&p.entry.name))
}

/// What a phase's items are.
fn noun(phase: &str) -> &'static str {
    match phase {
        "nodegroups" => "node groups",
        "addons" => "add-ons",
        "tenants" => "tenants",
        _ => "items",
    }
}

fn changes(n: u64) -> String {
    match n {
        1 => "1 change".to_owned(),
        n => format!("{n} changes"),
    }
}

/// What a finished entry took and did: duration, changes (or its failure).
fn done_text(e: &Entry) -> String {
    let now = e.finished.unwrap_or_else(Utc::now);
    match (&e.state, &e.error) {
        (State::Failed, Some((error, _))) => format!("{:>6.1}s  failed: {error}", e.seconds(now)),
        (State::Failed, None) => format!("{:>6.1}s  stopped", e.seconds(now)),
        _ => format!("{:>6.1}s  {}", e.seconds(now), changes(e.changes)),
    }
}

fn plain_line(t: &Timeline, tr: &Transition) -> String {
    let at = t.started.map_or(0.0, |s| timeline::seconds(s, tr.at));
    let what = match &tr.kind {
        Change::Started => "started".to_owned(),
        Change::Succeeded {
            seconds,
            changes: n,
        } => {
            format!("done in {seconds:.1}s, {}", changes(*n))
        }
        Change::Failed { seconds, error } => format!("failed after {seconds:.1}s: {error}"),
    };
    format!("{at:>7.1}s  {} {what}", tr.phase)
}

fn transition_json(t: &Timeline, tr: &Transition) -> Value {
    let mut o = json!({
        "event": match tr.kind {
            Change::Started => "started",
            Change::Succeeded { .. } => "succeeded",
            Change::Failed { .. } => "failed",
        },
        "phase": tr.phase,
        "item": tr.item,
        "at": tr.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "elapsedSeconds": t.started.map_or(0.0, |s| timeline::seconds(s, tr.at)),
    });
    match &tr.kind {
        Change::Started => {}
        Change::Succeeded { seconds, changes } => {
            o["seconds"] = json!(seconds);
            o["changes"] = json!(changes);
        }
        Change::Failed { seconds, error } => {
            o["seconds"] = json!(seconds);
            o["error"] = json!(error);
        }
    }
    o
}

fn entry_json(e: &Entry, now: DateTime<Utc>) -> Value {
    json!({
        "state": e.state,
        "seconds": e.seconds(now),
        "changes": e.changes,
        "polls": e.polls,
        "error": e.error.as_ref().map(|(code, _)| code),
    })
}

/// The phases of a run as JSON (the summary of `--output json`, `tenantry runs --json`).
pub fn phases_json(t: &Timeline) -> Value {
    let now = t.ended.map_or_else(Utc::now, |(at, _)| at);
    Value::Array(
        t.phases
            .iter()
            .map(|p| {
                let mut o = entry_json(&p.entry, now);
                o["phase"] = json!(p.entry.name);
                o["startedAt"] = json!(p
                    .entry
                    .started
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
                o["items"] = Value::Array(
                    p.items
                        .iter()
                        .map(|i| {
                            let mut o = entry_json(i, now);
                            o["item"] = json!(i.name);
                            o
                        })
                        .collect(),
                );
                o
            })
            .collect(),
    )
}

fn summary_json(t: &Timeline, status: &str) -> Value {
    let now = Utc::now();
    json!({
        "event": "summary",
        "status": status,
        "seconds": t.seconds(now),
        "changes": t.changes(),
        "statesEntered": t.states_entered,
        "phases": phases_json(t),
    })
}

/// The summary: one line per phase with its duration and changes (and its items), the total.
pub fn summary_lines(title: &str, t: &Timeline, status: &str) -> Vec<String> {
    let now = t.ended.map_or_else(Utc::now, |(at, _)| at);
    let width = t
        .phases
        .iter()
        .map(|p| p.entry.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut lines = vec![format!(
        "{title}: {} ({} states entered)",
        status.to_lowercase(),
        t.states_entered
    )];
    for p in &t.phases {
        let sign = match p.entry.state {
            State::Succeeded => "✓",
            State::Failed => "✗",
            _ => "…",
        };
        let mut line = format!("  {sign} {:<width$}  {}", p.entry.name, done_text(&p.entry));
        if let Some(slowest) = p
            .items
            .iter()
            .max_by(|a, b| a.seconds(now).total_cmp(&b.seconds(now)))
        {
            line.push_str(&format!(
                "  ({} {}, slowest {} {:.1}s)",
                p.items.len(),
                noun(&p.entry.name),
                slowest.name,
                slowest.seconds(now)
            ));
        }
        if let Some((_, Some(item))) = t.failed().filter(|(f, _)| f.entry.name == p.entry.name) {
            line.push_str(&format!("  (item {} failed)", item.name));
        }
        lines.push(line);
    }
    lines.push(format!(
        "    {:<width$}  {:>6.1}s  {}",
        "total",
        t.seconds(now),
        changes(t.changes())
    ));
    lines
}
