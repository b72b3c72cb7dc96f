//! `tenantry dev`: the local stack (moto behind Tenantry's gateway) as a background process.

use crate::follow;
use crate::progress::{Mode, Output, Progress};
use crate::stackfile::{self, StackFile};
use anyhow::{bail, Context};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};
use tenantry_gateway::stack::{LocalStack, StackOptions};

const STATE_DIR_HELP: &str = "Where the running stack's record (stack.json) and log (stack.log) \
     live (default: the nearest .tenantry with a stack, from here up to the repository's root; \
     for a new stack, .tenantry at the repository's root)";

#[derive(Subcommand)]
pub enum DevCommand {
    /// Start the local stack in the background and return once it answers.
    ///
    /// Starts moto (from the project's .venv, see `make setup`) with Step Functions execution
    /// enabled, the gateway in front of it, and Tenantry's control plane: the state table, every
    /// state machine, the event bus whose request rule feeds an SQS queue that `intake` consumes.
    /// Running it again while a stack is up does nothing.
    ///
    /// Each Lambda task runs on the function's real binary (what `cargo lambda` packages: its
    /// lambda_runtime loop, its error mapping, its cold start) behind a local Lambda Runtime
    /// API; `--functions in-process` runs the same handlers inside the stack's own process.
    #[command(
        after_help = "Examples:\n  tenantry dev up\n  tenantry dev up --state-dir /tmp/tenantry-stack --timeout 180\n  tenantry dev up --functions in-process\n  tenantry dev up --function-binaries target/release"
    )]
    Up {
        #[arg(long, env = "TENANTRY_STATE_DIR", help = STATE_DIR_HELP)]
        state_dir: Option<PathBuf>,
        /// Seconds to wait for the stack to answer.
        #[arg(long, default_value_t = 90)]
        timeout: u64,
        #[command(flatten)]
        functions: FunctionsArgs,
    },
    /// Stop the local stack started by `dev up` (moto included).
    #[command(
        after_help = "Examples:\n  tenantry dev down\n  tenantry dev down --state-dir /tmp/tenantry-stack"
    )]
    Down {
        #[arg(long, env = "TENANTRY_STATE_DIR", help = STATE_DIR_HELP)]
        state_dir: Option<PathBuf>,
    },
    /// Show whether the local stack runs, its endpoints, and the AWS calls it has counted.
    #[command(
        after_help = "Examples:\n  tenantry dev status\n  tenantry dev status --json | jq -r .awsEndpoint"
    )]
    Status {
        #[arg(long, env = "TENANTRY_STATE_DIR", help = STATE_DIR_HELP)]
        state_dir: Option<PathBuf>,
        /// Machine-readable output: `{"running": bool, "awsEndpoint": "http://127.0.0.1:PORT", ...}`.
        #[arg(long)]
        json: bool,
    },
    /// Run the selftest state machine on the local stack and follow it to the end.
    ///
    /// Proves the wiring every workflow relies on: Step Functions (moto's interpreter) invokes a
    /// Tenantry function through the gateway, which reaches the state table; a Wait/Choice poll
    /// loop runs until the function reports ready.
    #[command(
        after_help = "Examples:\n  tenantry dev selftest\n  tenantry dev selftest --polls 10"
    )]
    Selftest {
        #[arg(long, env = "TENANTRY_STATE_DIR", help = STATE_DIR_HELP)]
        state_dir: Option<PathBuf>,
        /// Polls before the function reports ready.
        #[arg(long, default_value_t = 3)]
        polls: u32,
    },
    /// Fire a schedule now: start the workflow it starts, with its input, and follow it.
    ///
    /// The local stack has no EventBridge Scheduler; this is how its schedules run. Schedules:
    /// `tenantry-nightly-drift-sweep` (the drift sweep over every active platform).
    #[command(
        after_help = "Examples:\n  tenantry dev fire tenantry-nightly-drift-sweep\n  tenantry drift --all --wait   # the same sweep, with the report"
    )]
    Fire {
        /// The schedule's name.
        schedule: String,
        #[arg(long, env = "TENANTRY_STATE_DIR", help = STATE_DIR_HELP)]
        state_dir: Option<PathBuf>,
    },
    /// Count what exists in the local stack for a platform: every resource tagged with it, by kind
    /// (VPC pieces, IAM roles, OIDC providers, live KMS keys, clusters, log groups).
    #[command(
        after_help = "Examples:\n  tenantry dev resources payments\n  tenantry dev resources payments --json"
    )]
    Resources {
        /// The platform id.
        platform: String,
        #[arg(long, env = "TENANTRY_STATE_DIR", help = STATE_DIR_HELP)]
        state_dir: Option<PathBuf>,
        /// Machine-readable output: `{"vpc": 1, "subnet": 9, ...}`.
        #[arg(long)]
        json: bool,
    },
    /// Run the stack in the foreground (what `dev up` starts in the background).
    #[command(hide = true)]
    Serve {
        #[arg(long, env = "TENANTRY_STATE_DIR")]
        state_dir: Option<PathBuf>,
        #[command(flatten)]
        functions: FunctionsArgs,
    },
}

/// How the local stack runs Tenantry's functions.
#[derive(clap::Args, Clone, Debug)]
pub struct FunctionsArgs {
    /// `binaries`: each function's real binary behind a local Lambda Runtime API;
    /// `in-process`: the same handlers inside the stack's process (faster to start).
    #[arg(long, value_enum, default_value_t = FunctionsMode::Binaries)]
    functions: FunctionsMode,
    /// Where the function binaries are (`network`, `intake`, ...; `cargo build --workspace
    /// --bins` puts them beside `tenantry`). Default: the directory of this `tenantry`.
    #[arg(long, value_name = "DIR")]
    function_binaries: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum FunctionsMode {
    Binaries,
    InProcess,
}

impl FunctionsArgs {
    /// The binaries' directory, checked; None for in-process handlers.
    fn binaries_dir(&self) -> anyhow::Result<Option<PathBuf>> {
        if self.functions == FunctionsMode::InProcess {
            if self.function_binaries.is_some() {
                bail!("--function-binaries: only with `--functions binaries` (the default)");
            }
            return Ok(None);
        }
        let dir = match &self.function_binaries {
            Some(d) => d.clone(),
            None => std::env::current_exe()?
                .parent()
                .context("the tenantry executable has no directory")?
                .to_path_buf(),
        };
        let missing: Vec<_> = tenantry::functions::FUNCTION_NAMES
            .iter()
            .filter(|f| !dir.join(f).is_file())
            .collect();
        if !missing.is_empty() {
            bail!(
                "--function-binaries: {} lacks the function binaries {missing:?}; build them with \
                 `cargo build --workspace --bins`, or run the handlers in process with \
                 `--functions in-process`",
                dir.display()
            );
        }
        Ok(Some(std::path::absolute(dir)?))
    }

    /// The arguments that hand the same choice to `dev serve`.
    fn to_args(&self, dir: Option<&Path>) -> Vec<std::ffi::OsString> {
        match dir {
            Some(d) => vec!["--function-binaries".into(), d.as_os_str().to_owned()],
            None => vec!["--functions".into(), "in-process".into()],
        }
    }
}

pub async fn run(cmd: DevCommand) -> anyhow::Result<ExitCode> {
    let dir = |named: Option<PathBuf>| stackfile::locate(named.as_deref());
    match cmd {
        DevCommand::Up {
            state_dir,
            timeout,
            functions,
        } => up(&dir(state_dir), Duration::from_secs(timeout), &functions).await,
        DevCommand::Down { state_dir } => down(&dir(state_dir)).await,
        DevCommand::Status { state_dir, json } => status(&dir(state_dir), json).await,
        DevCommand::Selftest { state_dir, polls } => selftest(&dir(state_dir), polls).await,
        DevCommand::Fire {
            schedule,
            state_dir,
        } => fire(&dir(state_dir), &schedule).await,
        DevCommand::Resources {
            platform,
            state_dir,
            json,
        } => resources(&dir(state_dir), &platform, json).await,
        DevCommand::Serve {
            state_dir,
            functions,
        } => serve(&dir(state_dir), &functions).await,
    }
}

async fn healthy(endpoint: &str) -> bool {
    let url = format!("{endpoint}/_tenantry/health");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("static client config");
    matches!(client.get(url).send().await, Ok(r) if r.status().is_success())
}

async fn up(
    state_dir: &Path,
    timeout: Duration,
    functions: &FunctionsArgs,
) -> anyhow::Result<ExitCode> {
    if let Some(existing) = stackfile::read(state_dir)? {
        if healthy(&existing.aws_endpoint).await {
            println!(
                "local stack already running: AWS endpoint {}",
                existing.aws_endpoint
            );
            return Ok(ExitCode::SUCCESS);
        }
        stackfile::remove(state_dir); // left behind by a stack that died
    }
    let binaries = functions.binaries_dir()?;
    std::fs::create_dir_all(state_dir)?;
    let log_path = state_dir.join(stackfile::LOG_NAME);
    let log = std::fs::File::create(&log_path)?;
    let started = Instant::now();
    let mut child = spawn_serve(state_dir, functions, binaries.as_deref(), log)?;
    loop {
        if let Some(file) = stackfile::read(state_dir)? {
            if healthy(&file.aws_endpoint).await {
                print_started(&file, started, &log_path, binaries.as_deref());
                return Ok(ExitCode::SUCCESS);
            }
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "the local stack exited during start-up ({status}); its log {}:\n{}",
                log_path.display(),
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            bail!(
                "the local stack did not answer within {timeout:?}; see {}",
                log_path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Starts `tenantry dev serve` in its own process group (it survives the terminal that ran
/// `dev up`), logging to `log`.
fn spawn_serve(
    state_dir: &Path,
    functions: &FunctionsArgs,
    binaries: Option<&Path>,
    log: std::fs::File,
) -> anyhow::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let child = std::process::Command::new(std::env::current_exe()?)
        .args(["dev", "serve", "--state-dir"])
        .arg(state_dir)
        .args(functions.to_args(binaries))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        // Poll long operations every second on the local stack (30 s in AWS).
        .env(
            "TENANTRY_POLL_SECONDS",
            std::env::var("TENANTRY_POLL_SECONDS").unwrap_or_else(|_| "1".to_owned()),
        )
        .spawn()
        .context("starting `tenantry dev serve`")?;
    Ok(child)
}

/// Where the stack that just came up answers, and how its functions run.
fn print_started(
    file: &stackfile::StackFile,
    started: Instant,
    log_path: &Path,
    binaries: Option<&Path>,
) {
    println!(
        "local stack up in {:.1}s\n  AWS endpoint:   {}\n  moto:           {}\n  Kubernetes API: {}\n  region {}, table {}, log {}",
        started.elapsed().as_secs_f64(),
        file.aws_endpoint,
        file.moto_endpoint,
        file.kube_endpoint,
        file.region,
        file.table_name,
        log_path.display()
    );
    match binaries {
        Some(dir) => println!(
            "  functions:      the real binaries in {} (local Lambda Runtime API; their logs: lambda-<function>.log beside the stack's)",
            dir.display()
        ),
        None => println!("  functions:      handlers in the stack's process"),
    }
}

fn process_alive(pid: u32) -> bool {
    std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

async fn down(state_dir: &Path) -> anyhow::Result<ExitCode> {
    let Some(file) = stackfile::read(state_dir)? else {
        println!("no local stack running");
        return Ok(ExitCode::SUCCESS);
    };
    if process_alive(file.pid) {
        std::process::Command::new("kill")
            .args(["-TERM", &file.pid.to_string()])
            .status()?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while process_alive(file.pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if process_alive(file.pid) {
            std::process::Command::new("kill")
                .args(["-KILL", &file.pid.to_string()])
                .status()?;
        }
    }
    stackfile::remove(state_dir);
    println!("local stack stopped");
    Ok(ExitCode::SUCCESS)
}

async fn status(state_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let file = stackfile::read(state_dir)?;
    let running = match &file {
        Some(f) => healthy(&f.aws_endpoint).await,
        None => false,
    };
    let calls = match (&file, running) {
        (Some(f), true) => reqwest::get(format!("{}/_tenantry/calls", f.aws_endpoint))
            .await?
            .json::<serde_json::Value>()
            .await
            .ok(),
        _ => None,
    };
    if json {
        let mut out = serde_json::json!({ "running": running });
        if let Some(f) = &file {
            if let serde_json::Value::Object(fields) = serde_json::to_value(f)? {
                out.as_object_mut().expect("object").extend(fields);
            }
        }
        if let Some(calls) = calls {
            out["calls"] = summarize_calls(&calls);
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        match (&file, running) {
            (Some(f), true) => {
                println!(
                    "local stack running (pid {}, since {})",
                    f.pid, f.started_at
                );
                println!("  AWS endpoint:   {}", f.aws_endpoint);
                println!("  moto:           {}", f.moto_endpoint);
                println!("  Kubernetes API: {}", f.kube_endpoint);
                if let Some(calls) = calls {
                    let s = summarize_calls(&calls);
                    println!(
                        "  AWS calls: {} mutating, {} read",
                        s["mutating"], s["read"]
                    );
                }
            }
            (Some(_), false) => println!(
                "local stack not answering (stale {}); run `tenantry dev up`",
                stackfile::path(state_dir).display()
            ),
            (None, _) => println!("no local stack running; start one with `tenantry dev up`"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Totals of the gateway's call log (`{"calls": [{"mutating": bool, ...}]}`).
fn summarize_calls(log: &serde_json::Value) -> serde_json::Value {
    let calls = log["calls"].as_array().cloned().unwrap_or_default();
    let mutating = calls.iter().filter(|c| c["mutating"] == true).count();
    serde_json::json!({ "mutating": mutating, "read": calls.len() - mutating })
}

async fn selftest(state_dir: &Path, polls: u32) -> anyhow::Result<ExitCode> {
    let file = stackfile::require(state_dir)?;
    let arn = file
        .state_machines
        .get(tenantry::workflows::SELFTEST.name)
        .context("the running stack has no selftest state machine; restart it with `tenantry dev down && tenantry dev up`")?;
    let aws = tenantry::aws::local(&file.aws_endpoint, &file.region, "testing").await;
    let sfn = aws_sdk_sfn::Client::new(&aws);
    let input = serde_json::json!({ "readyAfter": polls, "pollSeconds": 1 });
    let mut progress = Progress::new(Mode::for_output(Output::Text), "selftest");
    let outcome = follow::start_and_follow(
        &sfn,
        arn,
        &format!("selftest-{}", uuid::Uuid::new_v4().simple()),
        &input,
        &mut progress,
    )
    .await?;
    Ok(outcome.exit_code())
}

async fn fire(state_dir: &Path, name: &str) -> anyhow::Result<ExitCode> {
    let known: Vec<&str> = tenantry::workflows::SCHEDULES
        .iter()
        .map(|s| s.name)
        .collect();
    let schedule = tenantry::workflows::SCHEDULES
        .iter()
        .find(|s| s.name == name)
        .with_context(|| {
            crate::errors::not_found(format!("no schedule {name:?}; the schedules: {known:?}"))
        })?;
    let file = stackfile::require(state_dir)?;
    let arn = file.state_machines.get(schedule.workflow.name).with_context(|| {
        format!(
            "the running stack has no {} state machine; restart it with `tenantry dev down && tenantry dev up`",
            schedule.workflow.name
        )
    })?;
    let aws = tenantry::aws::local(&file.aws_endpoint, &file.region, "testing").await;
    let sfn = aws_sdk_sfn::Client::new(&aws);
    let input: serde_json::Value = serde_json::from_str(schedule.input)?;
    let execution = format!(
        "{}-{}",
        schedule.workflow.name,
        uuid::Uuid::new_v4().simple()
    );
    let mut progress = Progress::new(Mode::for_output(Output::Text), schedule.name);
    let outcome = follow::start_and_follow(&sfn, arn, &execution, &input, &mut progress).await?;
    if outcome.succeeded() {
        println!("{} fired: execution {execution}", schedule.name);
    }
    Ok(outcome.exit_code())
}

async fn resources(state_dir: &Path, platform: &str, json: bool) -> anyhow::Result<ExitCode> {
    let file = stackfile::require(state_dir)?;
    let aws = tenantry::aws::local(&file.aws_endpoint, &file.region, "testing").await;
    let counts = tenantry_gateway::inspect::tagged_resources(&aws, platform).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&counts)?);
    } else {
        let total: usize = counts.values().sum();
        println!("{total} resource(s) of platform {platform:?} in the local stack");
        for (kind, n) in counts.iter().filter(|(_, n)| **n > 0) {
            println!("  {kind:<16} {n}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve(state_dir: &Path, functions: &FunctionsArgs) -> anyhow::Result<ExitCode> {
    let opts = StackOptions {
        log_dir: Some(state_dir.to_path_buf()),
        function_binaries: functions.binaries_dir()?,
        ..StackOptions::default()
    };
    let stack = LocalStack::start(opts).await?;
    // Table, state machines, event bus → rule → queue → intake: Tenantry's own control plane.
    let control_plane = tenantry_gateway::control_plane::deploy(&stack).await?;
    let table = stack.table_name().to_owned();
    let state_machines = control_plane.state_machines.clone();
    stackfile::write(
        state_dir,
        &StackFile {
            aws_endpoint: stack.endpoint(),
            moto_endpoint: stack.moto_endpoint(),
            kube_endpoint: stack.kube_endpoint(),
            region: stack.region().to_owned(),
            table_name: table,
            pid: std::process::id(),
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            state_machines,
        },
    )?;
    eprintln!(
        "tenantry dev serve: local stack ready at {}",
        stack.endpoint()
    );
    wait_for_shutdown_signal().await;
    eprintln!("tenantry dev serve: stopping");
    stackfile::remove(state_dir);
    drop(control_plane);
    stack.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
