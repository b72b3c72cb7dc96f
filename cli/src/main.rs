//! `tenantry`: validate and plan platform requests, send platform and tenant requests, and run the
//! local AWS stack.

mod commands;
mod connect;
mod errors;
mod follow;
mod progress;
mod run_states;
mod stackfile;
mod timeline;

use clap::{CommandFactory, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Examples and exit codes, after `tenantry --help`.
const TOP_HELP: &str = concat!(
    "Examples:
  tenantry validate examples/platform.json
  tenantry plan examples/platform.json
  tenantry dev up
  tenantry provision examples/platform.json --wait
  tenantry status payments
  tenantry runs payments
  tenantry tenant validate examples/tenant.json
  tenantry tenant add payments examples/tenant.json --wait
  tenantry tenant list payments
  tenantry tenant remove payments fraud-scoring --retain-data --wait
  tenantry decommission payments --wait
  tenantry dev down
  tenantry completions bash > ~/.local/share/bash-completion/completions/tenantry
  tenantry man | man -l -

The local stack is found in the .tenantry directory of the current directory or of any directory
above it, up to the repository's root (--state-dir or TENANTRY_STATE_DIR name it; --endpoint or
TENANTRY_AWS_ENDPOINT bypass it).
On AWS (no local stack running here): AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and
AWS_REGION or --region.

",
    errors::exit_codes_help!()
);

/// Tenantry provisions multi-tenant Amazon EKS platforms from JSON requests.
///
/// Requests are checked and planned locally; everything else runs as Lambda functions under Step
/// Functions, on AWS or on the local stack (`tenantry dev up`), which needs no AWS account.
#[derive(Parser)]
#[command(name = "tenantry", version, about, long_about = None)]
#[command(after_help = TOP_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a platform request; on failure print every problem with its JSON path and exit 1.
    #[command(
        after_help = "Examples:\n  tenantry validate examples/platform.json\n  tenantry validate --json examples/platform.json | jq '.issues[].path'\n  cat platform.json | tenantry validate -"
    )]
    Validate {
        /// The platform request (JSON), e.g. examples/platform.json. `-` reads standard input.
        file: PathBuf,
        /// Print the result as JSON (`{"valid": bool, "issues": [{path, rule, message}]}`).
        #[arg(long)]
        json: bool,
    },
    /// Show every resource a platform request will create, grouped by phase, with counts.
    #[command(
        after_help = "Examples:\n  tenantry plan examples/platform.json\n  tenantry plan --json examples/platform.json | jq '[.phases[].resources | length]'"
    )]
    Plan {
        /// The platform request (JSON). `-` reads standard input.
        file: PathBuf,
        /// Print the full plan (resources, names, dependencies, tags) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Provision (or update) a platform: put a PlatformProvisionRequested event on the Tenantry bus.
    ///
    /// The request is validated here first (nothing is sent when it is invalid), then by intake,
    /// which starts the provision workflow under the platform's lease.
    #[command(
        after_help = "Examples:\n  tenantry provision examples/platform.json --wait\n  tenantry provision examples/platform.json --wait > provision.log\n  tenantry provision examples/platform.json --wait --output json | jq -c 'select(.event == \"succeeded\")'\n  tenantry provision examples/platform.json --request-id provision-payments-42\n  AWS_PROFILE=platform-prod tenantry provision payments.json --region eu-west-1 --wait"
    )]
    Provision {
        /// The platform request (JSON), e.g. examples/platform.json.
        file: PathBuf,
        /// Follow the run: its phases live on a terminal (node groups, add-ons and tenants under
        /// theirs), one line per phase otherwise, then each phase's duration and changes; exit 8
        /// when it fails, naming the phase.
        #[arg(long)]
        wait: bool,
        /// With --wait: `json` prints one JSON object per transition and a summary object.
        #[arg(long, value_enum, default_value = "text")]
        output: progress::Output,
        /// Idempotency key (default: generated). Sending the same id again starts nothing new.
        #[arg(long)]
        request_id: Option<String>,
        #[command(flatten)]
        conn: connect::Connection,
    },
    /// Decommission a platform: remove everything it created, in reverse order.
    #[command(
        after_help = "Examples:\n  tenantry decommission payments --wait\n  tenantry decommission payments --wait --output json\n  tenantry decommission payments --request-id decommission-payments-1"
    )]
    Decommission {
        /// The platform id.
        platform: String,
        /// Follow the run (as for provision); exit 8 when it fails, naming the phase.
        #[arg(long)]
        wait: bool,
        /// With --wait: `json` prints one JSON object per transition and a summary object.
        #[arg(long, value_enum, default_value = "text")]
        output: progress::Output,
        /// Idempotency key (default: generated).
        #[arg(long)]
        request_id: Option<String>,
        #[command(flatten)]
        conn: connect::Connection,
    },
    /// Check a platform for drift: what changed behind Tenantry's back, and repair it.
    ///
    /// Every phase observes its resources (read-only) and names each difference with its
    /// resource, field, desired and actual value, as missing, changed or unexpected. With
    /// `auto`, each phase with differences converges again, then everything is observed again to
    /// confirm; with `report-only` nothing is changed and no lease is taken. The platform shows
    /// `Drifted` while a difference is open. Node group `desiredSize` belongs to the
    /// autoscaler and is never drift.
    #[command(after_help = "Examples:
  tenantry drift payments --wait
  tenantry drift payments --remediate report-only --wait --format markdown >> drift.md
  tenantry drift payments --component network --component tenants --wait
  tenantry drift --all --remediate report-only --wait\n  tenantry drift payments --remediate auto --wait --format json | jq '.differences[] | select(.result != \"repaired\")'")]
    Drift {
        /// The platform id.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        platform: Option<String>,
        /// Check every active platform: start the fleet sweep the nightly schedule starts (each
        /// platform's check goes through intake; one failing never stops the others).
        #[arg(long)]
        all: bool,
        /// What the check may repair (default: the platform's `driftRemediation`).
        #[arg(long, value_enum)]
        remediate: Option<commands::drift::Remediate>,
        /// Check only this component (repeatable): encryption, identity, network, cluster,
        /// nodegroups, addons, bootstrap, access, observability, tenants. The platform stays
        /// `Drifted` while a component a check did not look at still has an open difference.
        #[arg(long = "component", value_name = "COMPONENT", value_parser = commands::drift::component, conflicts_with = "all")]
        components: Vec<tenantry::plan::Phase>,
        /// Follow the check, then print its report; exit 8 when the check itself fails.
        #[arg(long)]
        wait: bool,
        /// With --wait: how the report is printed (json also prints progress as JSON lines).
        #[arg(long, value_enum, default_value = "table")]
        format: commands::drift::Format,
        /// Idempotency key (default: generated); with --all, the sweep's id (its execution name).
        #[arg(long)]
        request_id: Option<String>,
        #[command(flatten)]
        conn: connect::Connection,
    },
    /// Show a platform's compliance report: every control judged on its live AWS and Kubernetes
    /// state, failures first, with PCI DSS, CIS EKS, Security Hub and Prowler mappings.
    ///
    /// Without --sweep it prints the latest stored report (or --request-id's). With --sweep it
    /// first runs a sweep (a ComplianceSweepRequested event; it reads only, takes no lease) and
    /// follows it. With --all it sweeps every active platform (what the weekly schedule starts)
    /// and prints one line per platform. Exits 9 when any control failed.
    #[command(
        after_help = "Examples:\n  tenantry compliance payments --sweep\n  tenantry compliance payments --format html --output compliance.html\n  tenantry compliance payments --format markdown --output compliance.md\n  tenantry compliance --all\n  tenantry compliance payments --format json | jq '.results[] | select(.status == \"fail\") | {control, resource, reason}'\n  tenantry compliance payments --request-id compliance-2026-12-03"
    )]
    Compliance {
        /// The platform id.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        platform: Option<String>,
        /// Run a sweep first and wait for it (a few seconds on the local stack).
        #[arg(long)]
        sweep: bool,
        /// Sweep every active platform and wait for each (the fleet sweep the weekly schedule
        /// starts; one platform failing never stops the others). Prints a table, or with
        /// `--format json` the sweep's report; each platform's own report is then shown by
        /// `tenantry compliance PLATFORM`.
        #[arg(long, conflicts_with_all = ["sweep", "output"])]
        all: bool,
        /// The sweep to show (default: the latest); with --sweep, the new sweep's idempotency key.
        #[arg(long)]
        request_id: Option<String>,
        /// How the report is printed.
        #[arg(long, value_enum, default_value = "table")]
        format: commands::compliance::Format,
        /// Write the report to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        conn: connect::Connection,
    },
    /// Show platforms, or one platform's phases, outputs, inventory, runs and last error.
    #[command(
        after_help = "Examples:\n  tenantry status\n  tenantry status payments\n  tenantry status payments --json | jq .status.lastError"
    )]
    Status {
        /// The platform id (omit to list every platform).
        platform: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: connect::Connection,
    },
    /// List a platform's recent runs, or show one run's phases with their durations.
    ///
    /// Without REQUEST_ID: kind, request id, start, duration, result and failing phase of each
    /// recent run (from the run records). With it: that run's phases, each with its start,
    /// duration, changes, polls and items (from its Step Functions execution history).
    #[command(
        after_help = "Examples:\n  tenantry runs payments\n  tenantry runs payments provision-5451decdd34f44baa991aa087754fa6c\n  tenantry runs payments --json | jq '.[] | select(.status == \"Failed\")'\n  tenantry runs payments provision-payments-42 --json | jq '.phases[] | {phase, seconds}'"
    )]
    Runs {
        /// The platform id.
        platform: String,
        /// A run's request id (the `requestId` of `tenantry runs PLATFORM`).
        request_id: Option<String>,
        /// How many runs to list, newest first.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: connect::Connection,
    },
    /// Put any raw event on the Tenantry bus (`{"detail-type": ..., "detail": {...}}`).
    #[command(
        after_help = "Examples:\n  tenantry submit event.json\n  tenantry submit - < event.json"
    )]
    Submit {
        /// The event (JSON): an EventBridge entry or event envelope.
        file: PathBuf,
        #[command(flatten)]
        conn: connect::Connection,
    },
    /// Onboard, offboard and list a platform's tenants (`tenant --help` tells what stays and what goes).
    #[command(
        subcommand,
        long_about = commands::tenant::LONG_ABOUT,
        after_help = "Examples:\n  tenantry tenant validate examples/tenant.json\n  tenantry tenant add payments examples/tenant.json --wait\n  tenantry tenant list payments\n  tenantry tenant remove payments fraud-scoring --retain-data --wait"
    )]
    Tenant(commands::tenant::TenantCommand),
    /// Show a platform's lease, or release a holder whose execution ended without finalize.
    #[command(
        subcommand,
        long_about = commands::lease::LONG_ABOUT,
        after_help = "Examples:\n  tenantry lease show payments\n  tenantry lease release payments --holder provision-5451decdd34f --reason 'INC-1234: aborted by hand'"
    )]
    Lease(commands::lease::LeaseCommand),
    /// Pause or resume drift remediation for the whole fleet (checks then only report).
    #[command(
        subcommand,
        long_about = commands::remediation::LONG_ABOUT,
        after_help = "Examples:\n  tenantry remediation show\n  tenantry remediation pause --reason 'INC-1234: SCP rollout rewrites key policies'\n  tenantry remediation resume"
    )]
    Remediation(commands::remediation::RemediationCommand),
    /// Run the local stack: moto (the AWS emulator) behind Tenantry's gateway.
    #[command(
        subcommand,
        after_help = "Examples:\n  tenantry dev up\n  tenantry dev status\n  tenantry dev selftest\n  tenantry dev resources payments\n  tenantry dev down"
    )]
    Dev(commands::dev::DevCommand),
    /// Print a shell completion script to standard output.
    #[command(
        after_help = "Examples:\n  tenantry completions bash > ~/.local/share/bash-completion/completions/tenantry\n  tenantry completions zsh > \"${fpath[1]}/_tenantry\"\n  tenantry completions fish > ~/.config/fish/completions/tenantry.fish"
    )]
    Completions {
        /// The shell: bash, zsh or fish (elvish and powershell work too).
        shell: clap_complete::Shell,
    },
    /// Print the man page, generated from the same definitions as `--help` (roff).
    ///
    /// With --out-dir, write one page per command instead (tenantry.1, tenantry-provision.1, …).
    #[command(
        after_help = "Examples:\n  tenantry man | man -l -\n  tenantry man --out-dir ~/.local/share/man/man1"
    )]
    Man {
        /// Write tenantry.1 and a page for every subcommand into this directory.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    // Die quietly when the reader of our output goes away (`tenantry status | head`), like any
    // command-line tool, instead of panicking on a broken pipe.
    // SAFETY: called first thing in main, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    // reqwest is built with rustls but no crypto provider of its own (kube-fake-client's choice).
    tenantry_gateway::install_crypto_provider();
    let result = match cli.command {
        Command::Validate { file, json } => commands::validate::run(&file, json),
        Command::Plan { file, json } => commands::plan::run(&file, json),
        Command::Provision {
            file,
            wait,
            output,
            request_id,
            conn,
        } => commands::requests::provision(&conn, &file, request_id, wait, output).await,
        Command::Decommission {
            platform,
            wait,
            output,
            request_id,
            conn,
        } => commands::requests::decommission(&conn, &platform, request_id, wait, output).await,
        Command::Drift {
            platform,
            all,
            remediate,
            components,
            wait,
            format,
            request_id,
            conn,
        } => match platform.filter(|_| !all) {
            Some(platform) => {
                let check = commands::drift::Check {
                    remediate,
                    components,
                    request_id,
                };
                commands::drift::run(&conn, &platform, check, wait, format).await
            }
            None => commands::drift::sweep(&conn, remediate, wait, format, request_id).await,
        },
        Command::Compliance {
            platform,
            sweep,
            all,
            request_id,
            format,
            output,
            conn,
        } => match platform.filter(|_| !all) {
            Some(platform) => {
                let ask = commands::compliance::Ask {
                    sweep,
                    request_id,
                    format,
                    output,
                };
                commands::compliance::run(&conn, &platform, ask).await
            }
            None => commands::compliance::sweep_all(&conn, format, request_id).await,
        },
        Command::Runs {
            platform,
            request_id,
            limit,
            json,
            conn,
        } => commands::runs::run(&conn, &platform, request_id.as_deref(), limit, json).await,
        Command::Status {
            platform,
            json,
            conn,
        } => commands::status::run(&conn, platform.as_deref(), json).await,
        Command::Submit { file, conn } => commands::requests::submit(&conn, &file).await,
        Command::Tenant(cmd) => commands::tenant::run(cmd).await,
        Command::Lease(cmd) => commands::lease::run(cmd).await,
        Command::Remediation(cmd) => commands::remediation::run(cmd).await,
        Command::Dev(cmd) => commands::dev::run(cmd).await,
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "tenantry",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { out_dir } => man(out_dir.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let explained = errors::explain(&e);
            eprintln!("error: {}", explained.message);
            explained.exit.into()
        }
    }
}

/// `tenantry man`: the page of `tenantry` on standard output, or every command's page in a
/// directory.
fn man(out_dir: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    let cmd = Cli::command();
    match out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("writing the man pages to {}", dir.display()))?;
            println!("man pages written to {}", dir.display());
        }
        None => clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?,
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_lists_every_exit_code() {
        use errors::Exit::*;
        for exit in [
            Failure,
            Usage,
            CannotConnect,
            AccessDenied,
            NotFound,
            Throttled,
            Conflict,
            FailedRun,
        ] {
            assert!(
                TOP_HELP.contains(&format!("\n  {}  ", exit.code())),
                "{exit:?}"
            );
        }
    }

    /// Every command, subcommands included, with its path (`tenantry tenant add`).
    fn commands(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
        for sub in cmd.get_subcommands().filter(|c| !c.is_hide_set()) {
            let path = format!("{path} {}", sub.get_name());
            out.push((path.clone(), sub.clone()));
            commands(sub, &path, out);
        }
    }

    #[test]
    fn every_command_has_examples() {
        let mut all = Vec::new();
        commands(&Cli::command(), "tenantry", &mut all);
        assert!(all.len() > 15, "{}", all.len());
        for (path, cmd) in all {
            let help = cmd
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(
                help.starts_with("Examples:\n") && help.contains(&format!("\n  {path}")),
                "`{path} --help` has no example of itself:\n{help}"
            );
        }
    }

    fn completions(shell: clap_complete::Shell) -> String {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "tenantry", &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn bash_completions_know_every_subcommand() {
        let script = completions(clap_complete::Shell::Bash);
        let mut all = Vec::new();
        commands(&Cli::command(), "tenantry", &mut all);
        for (path, _) in &all {
            // Each command is a case of the script, named by its path
            // (`tenantry__subcmd__tenant__subcmd__add`); the built binary's test runs bash on it.
            let state = path.replace(' ', "__subcmd__");
            assert!(script.contains(&state), "bash completions lack {path}");
        }
        for word in [
            "provision",
            "decommission",
            "completions",
            "--retain-data",
            "--region",
        ] {
            assert!(script.contains(word), "bash completions lack {word}");
        }
        for shell in [clap_complete::Shell::Zsh, clap_complete::Shell::Fish] {
            let script = completions(shell);
            assert!(script.contains("provision") && script.contains("retain-data"));
        }
    }

    #[test]
    fn the_man_page_names_every_command() {
        let mut out = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut out)
            .unwrap();
        let page = String::from_utf8(out).unwrap();
        assert!(
            page.starts_with(".ie") || page.contains(".TH tenantry"),
            "{page}"
        );
        for sub in Cli::command()
            .get_subcommands()
            .filter(|c| !c.is_hide_set())
        {
            assert!(
                page.contains(&format!("tenantry\\-{}", sub.get_name()))
                    || page.contains(sub.get_name()),
                "man page lacks {}",
                sub.get_name()
            );
        }
        assert!(page.contains("Exit codes"), "{page}");
    }
}
