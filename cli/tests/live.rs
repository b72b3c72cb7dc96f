//! The built `tenantry` on a local stack, as a platform engineer uses it: `tenantry dev up` in a
//! repository, then, from a subdirectory (the stack is found upward): a provision followed live
//! in a real terminal (a pty, its screen rendered by vt100), a request refused for a conflict
//! while it runs, the same provision piped (a no-op), a failed run, the decommission, and
//! `tenantry runs` over all of them. One platform, provisioned once.

use portable_pty::{native_pty_system, CommandBuilder, PtySize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const ROWS: u16 = 50;
const COLS: u16 = 120;
const PLATFORM: &str = "payments";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/platform.json")
        .canonicalize()
        .unwrap()
}

/// `tenantry ARGS` from `dir`, output piped; no state directory or endpoint from the
/// environment, so the stack must be found upward.
fn tenantry(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .args(args)
        .current_dir(dir)
        .env_remove("TENANTRY_STATE_DIR")
        .env_remove("TENANTRY_AWS_ENDPOINT")
        .stdin(Stdio::null())
        .output()
        .expect("tenantry runs")
}

/// Stops the stack at the end of the test, passed or not.
struct Stack {
    dir: PathBuf,
    endpoint: String,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = tenantry(&self.dir, &["dev", "down"]);
    }
}

impl Stack {
    /// Sets the gateway's fault injection (`PUT /_tenantry/faults`).
    fn faults(&self, body: &str) {
        let addr = self.endpoint.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "PUT /_tenantry/faults HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
}

/// Non-empty lines that appear more than once.
fn repeated(screen: &str) -> Vec<String> {
    let mut seen = std::collections::BTreeMap::new();
    for line in screen
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
    {
        *seen.entry(line.to_owned()).or_insert(0) += 1;
    }
    seen.into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(l, _)| l)
        .collect()
}

/// Whether a line of the live tree shows a running entry: `⠋ name …` with a spinner.
fn spinning(line: &str) -> bool {
    line.trim_start()
        .chars()
        .next()
        .is_some_and(|c| ('⠁'..='⣿').contains(&c))
}

/// A summary line `  ✓ phase   1.2s  N changes…`: (phase, seconds, changes).
fn summary_line(line: &str) -> Option<(String, f64, u64)> {
    let rest = line.trim_start().strip_prefix("✓ ")?;
    let mut words = rest.split_whitespace();
    let mut name = Vec::new();
    let seconds = loop {
        let w = words.next()?;
        match w.strip_suffix('s').and_then(|n| n.parse::<f64>().ok()) {
            Some(s) => break s,
            None => name.push(w),
        }
    };
    let changes = words.next()?.parse().ok()?;
    Some((name.join(" "), seconds, changes))
}

const PHASES: &[&str] = &[
    "encryption",
    "identity",
    "network",
    "cluster",
    "identity (cluster)",
    "network (routes)",
    "nodegroups",
    "addons",
    "access",
    "observability",
    "bootstrap",
    "tenants",
    "reconcile",
    "finalize",
];

#[test]
fn a_platform_run_by_run() {
    let repo =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("live-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&repo);
    let sub = repo.join("services/payments");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::create_dir_all(repo.join(".git")).unwrap();

    // `dev up` from a subdirectory puts the stack at the repository's root.
    let up = tenantry(&sub, &["dev", "up"]);
    assert_eq!(
        up.status.code(),
        Some(0),
        "{}{}",
        text(&up.stdout),
        text(&up.stderr)
    );
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo.join(".tenantry/stack.json")).expect("stack.json at the root"),
    )
    .unwrap();
    let stack = Stack {
        dir: sub.clone(),
        endpoint: record["awsEndpoint"].as_str().unwrap().to_owned(),
    };

    // 1. The live view, in a pty.
    let provision_id = "live-provision-1";
    let (screen, snapshots, conflict) = provision_in_pty(&sub, provision_id);
    println!("final screen of `tenantry provision --wait` in a {COLS}x{ROWS} pty:\n{screen}");
    std::fs::write(repo.join("final-screen.txt"), &screen).unwrap();
    // While it ran: a tree of spinners, node groups under their phase, no line twice.
    let mut saw_items = false;
    for s in &snapshots {
        assert!(
            repeated(s).is_empty(),
            "a line repeats: {:?}\n{s}",
            repeated(s)
        );
        let lines: Vec<&str> = s.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if spinning(l) && l.contains(" nodegroups ") {
                let items = lines[i + 1..]
                    .iter()
                    .take_while(|l| l.starts_with("      "))
                    .filter(|l| {
                        ["critical", "general", "batch"]
                            .iter()
                            .any(|n| l.contains(n))
                    })
                    .count();
                saw_items |= items > 0;
            }
        }
    }
    assert!(
        saw_items,
        "no snapshot showed node groups under a running nodegroups phase ({} snapshots)",
        snapshots.len()
    );
    assert!(
        snapshots
            .iter()
            .any(|s| s.contains("provision of platform \"payments\"") && s.lines().any(spinning)),
        "no live tree seen"
    );
    // At the end: the summary, a duration and changes per phase, the total; no line twice.
    assert!(
        repeated(&screen).is_empty(),
        "{:?}\n{screen}",
        repeated(&screen)
    );
    assert!(
        !screen.lines().any(spinning),
        "spinners left on screen:\n{screen}"
    );
    assert!(
        screen.contains("provision of platform \"payments\": succeeded"),
        "{screen}"
    );
    let phases: Vec<_> = screen.lines().filter_map(summary_line).collect();
    // Phases in the order they started (those of one parallel step in any order).
    let mut names: Vec<&str> = phases.iter().map(|(n, _, _)| n.as_str()).collect();
    // Encryption and identity are one parallel step (Foundations): either may come first.
    let mut foundations = names[..2].to_vec();
    foundations.sort();
    let mut want = PHASES[..2].to_vec();
    want.sort();
    assert_eq!(foundations, want, "{screen}");
    assert_eq!(names[2..5], PHASES[2..5], "{screen}");
    names.sort();
    let mut expected = PHASES.to_vec();
    expected.sort();
    assert_eq!(names, expected, "{screen}");
    let network = phases.iter().find(|p| p.0 == "network").unwrap();
    assert!(network.1 > 0.0 && network.2 > 10, "network: {network:?}");
    assert!(screen.contains("(4 node groups, slowest"), "{screen}");
    let total = screen
        .lines()
        .find(|l| l.trim_start().starts_with("total"))
        .unwrap();
    assert!(
        total.contains("s  ") && total.ends_with("changes"),
        "{total}"
    );

    // 2. While it ran, a decommission was refused: another operation holds the platform.
    let (code, stderr) = conflict;
    assert_eq!(code, Some(7), "{stderr}");
    assert!(
        stderr.contains("was refused (Tenantry.Conflict)")
            && stderr.contains("is busy")
            && stderr.contains(provision_id),
        "{stderr}"
    );

    // 3. The same request piped (a new request id): one line per phase transition, a no-op.
    let rerun = tenantry(
        &sub,
        &[
            "provision",
            example().to_str().unwrap(),
            "--wait",
            "--request-id",
            "live-provision-2",
        ],
    );
    let out = text(&rerun.stdout);
    assert_eq!(rerun.status.code(), Some(0), "{out}{}", text(&rerun.stderr));
    assert!(repeated(&out).is_empty(), "{:?}\n{out}", repeated(&out));
    assert!(
        !out.contains('\x1b'),
        "escape codes in piped output:\n{out}"
    );
    for phase in PHASES {
        for what in ["started", "done in"] {
            let n = out
                .lines()
                .filter(|l| l.contains(&format!("s  {phase} {what}")))
                .count();
            assert_eq!(n, 1, "{phase} {what}: {n} lines\n{out}");
        }
    }
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("total") && l.ends_with(" 0 changes")),
        "the re-run changed something:\n{out}"
    );

    // 4. An invalid request is refused (exit 1), not a conflict and not a failed run.
    let tenant = example().with_file_name("tenant.json");
    let refused = tenantry(
        &sub,
        &[
            "tenant",
            "add",
            "no-such-platform",
            tenant.to_str().unwrap(),
            "--wait",
        ],
    );
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("was refused (Tenantry.InvalidRequest)"),
        "{stderr}"
    );

    // 5. A failed run, as JSON lines: the network function crashes on every attempt.
    stack.faults(r#"{"crashAfterCalls": {"function": "network", "afterCalls": 1, "times": 100}}"#);
    let failed = tenantry(
        &sub,
        &[
            "provision",
            example().to_str().unwrap(),
            "--wait",
            "--output",
            "json",
            "--request-id",
            "live-provision-3",
        ],
    );
    stack.faults("{}");
    let stderr = text(&failed.stderr);
    assert_eq!(failed.status.code(), Some(8), "{stderr}");
    assert!(
        stderr.starts_with(
            "error: provision of platform \"payments\" failed in phase network: Runtime.ExitError:"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("\n  details: tenantry runs payments live-provision-3"),
        "{stderr}"
    );
    let events: Vec<serde_json::Value> = text(&failed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(events[0]["event"], "sent");
    assert_eq!(events[1]["event"], "accepted");
    assert!(events.iter().any(|e| e["event"] == "failed"
        && e["phase"] == "network"
        && e["error"] == "Runtime.ExitError"));
    let summary = events.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["status"], "FAILED");

    // 6. Decommission, piped.
    let gone = tenantry(
        &sub,
        &[
            "decommission",
            PLATFORM,
            "--wait",
            "--request-id",
            "live-decommission-1",
        ],
    );
    let out = text(&gone.stdout);
    assert_eq!(gone.status.code(), Some(0), "{out}{}", text(&gone.stderr));
    assert!(repeated(&out).is_empty(), "{out}");
    assert!(
        out.contains("decommission of platform \"payments\": succeeded"),
        "{out}"
    );

    // 7. The run history, from the repository's root too.
    let runs = tenantry(&repo, &["runs", PLATFORM]);
    let table = text(&runs.stdout);
    assert_eq!(runs.status.code(), Some(0), "{table}{}", text(&runs.stderr));
    println!("{table}");
    let row = |id: &str| {
        table
            .lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("no run {id}:\n{table}"))
            .to_owned()
    };
    for (id, kind, result) in [
        ("live-provision-1", "provision", "Succeeded"),
        ("live-provision-2", "provision", "Succeeded"),
        (
            "live-provision-3",
            "provision",
            "Failed (Runtime.ExitError)",
        ),
        ("live-decommission-1", "decommission", "Succeeded"),
    ] {
        let r = row(id);
        assert!(r.contains(kind) && r.contains(result), "{r}");
        // A duration: `12.3s`.
        assert!(
            r.split_whitespace().any(|c| c
                .strip_suffix('s')
                .is_some_and(|n| n.parse::<f64>().is_ok())),
            "no duration: {r}"
        );
    }
    // The changes of each run: the re-run made none.
    let changes = |id: &str| row(id).split_whitespace().rev().nth(1).unwrap().to_owned();
    assert_eq!(changes("live-provision-2"), "0", "{table}");
    assert!(
        changes("live-provision-1").parse::<u64>().unwrap() > 100,
        "{table}"
    );
    assert!(row("live-provision-3").contains("Failed (Runtime.ExitError)   network"));
    assert!(
        !table.contains("live-conflict"),
        "a refused request is no run:\n{table}"
    );
    // Newest first.
    let order: Vec<usize> = [
        "live-decommission-1",
        "live-provision-3",
        "live-provision-2",
        "live-provision-1",
    ]
    .iter()
    .map(|id| table.find(id).unwrap())
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{table}");

    // One run's phases, with durations, from the execution history.
    let one = tenantry(&sub, &["runs", PLATFORM, provision_id]);
    let detail = text(&one.stdout);
    assert_eq!(one.status.code(), Some(0), "{detail}{}", text(&one.stderr));
    println!("{detail}");
    for phase in PHASES {
        assert!(
            detail.contains(&format!("│ {phase} ")),
            "{phase}:\n{detail}"
        );
    }
    assert!(detail.contains("critical "), "{detail}");
    let json = tenantry(&sub, &["runs", PLATFORM, "live-provision-3", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["failedPhase"], "network");
    let network = v["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == "network")
        .unwrap();
    assert_eq!(network["state"], "failed");
    assert!(network["seconds"].as_f64().unwrap() > 0.0);
    let missing = tenantry(&sub, &["runs", PLATFORM, "no-such-request"]);
    assert_eq!(missing.status.code(), Some(5), "{}", text(&missing.stderr));
    drop(stack);
    let _ = std::fs::remove_dir_all(&repo);
}

/// Runs `tenantry provision EXAMPLE --wait` in a pty from `dir`; once intake has accepted it,
/// sends a decommission of the same platform (piped). Returns the final screen, the screens seen
/// while it ran, and the decommission's exit code and standard error.
fn provision_in_pty(dir: &Path, request_id: &str) -> (String, Vec<String>, (Option<i32>, String)) {
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: ROWS,
            cols: COLS,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("a pty");
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_tenantry"));
    cmd.args([
        "provision",
        example().to_str().unwrap(),
        "--wait",
        "--request-id",
        request_id,
    ]);
    cmd.cwd(dir);
    cmd.env("TERM", "xterm-256color");
    cmd.env_remove("TENANTRY_STATE_DIR");
    cmd.env_remove("TENANTRY_AWS_ENDPOINT");
    let mut child = pair
        .slave
        .spawn_command(cmd)
        .expect("tenantry runs in the pty");
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let size = |n| std::num::NonZeroU16::new(n).expect("a size");
    let mut parser = vt100::Parser::new(size(ROWS), size(COLS), 0);
    let mut snapshots = Vec::new();
    let mut conflict = None;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(bytes) => {
                // A frame may arrive in several reads: take the screen once the output pauses.
                parser.process(&bytes);
                while let Ok(more) = rx.recv_timeout(Duration::from_millis(15)) {
                    parser.process(&more);
                }
                snapshots.push(screen_text(&parser));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let screen = screen_text(&parser);
        if conflict.is_none() && screen.contains("accepted: execution") {
            let out = tenantry(
                dir,
                &[
                    "decommission",
                    PLATFORM,
                    "--wait",
                    "--request-id",
                    "live-conflict",
                ],
            );
            conflict = Some((out.status.code(), text(&out.stderr)));
        }
        if let Ok(Some(_)) = child.try_wait() {
            // Drain what is left, then stop.
            while let Ok(bytes) = rx.recv_timeout(Duration::from_millis(300)) {
                parser.process(&bytes);
            }
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "provision did not end in time:\n{}",
                parser.screen().contents()
            );
        }
    }
    let status = child.wait().unwrap();
    let screen = screen_text(&parser);
    assert!(status.success(), "exit {}:\n{screen}", status.exit_code());
    (
        screen,
        snapshots,
        conflict.expect("the request was accepted"),
    )
}

/// The screen, row by row (a row filled to the last column is not joined with the next).
fn screen_text(parser: &vt100::Parser) -> String {
    parser
        .screen()
        .rows(0, COLS)
        .map(|r| r.trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_owned()
}
