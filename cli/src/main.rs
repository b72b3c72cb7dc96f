//! `tenantry`: validate and plan platform requests, send platform and tenant requests, and run the
//! local AWS stack.

mod commands;
mod connect;
mod follow;
mod stackfile;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Tenantry provisions multi-tenant Amazon EKS platforms from JSON requests.
///
/// Requests are checked and planned locally; everything else runs as Lambda functions under Step
/// Functions, on AWS or on the local stack (`tenantry dev up`), which needs no AWS account.
#[derive(Parser)]
#[command(name = "tenantry", version, about, long_about = None)]
#[command(
    after_help = "Examples:\n  tenantry validate examples/platform.json\n  tenantry plan examples/platform.json\n  tenantry dev up\n  tenantry provision examples/platform.json --wait\n  tenantry status payments\n  tenantry tenant validate examples/tenant.json\n  tenantry tenant add payments examples/tenant.json --wait\n  tenantry tenant list payments\n  tenantry tenant remove payments fraud-scoring --retain-data --wait\n  tenantry decommission payments --wait\n  tenantry dev down"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a platform request; on failure print every problem with its JSON path and exit 1.
    Validate {
        /// The platform request (JSON), e.g. examples/platform.json. `-` reads standard input.
        file: PathBuf,
        /// Print the result as JSON (`{"valid": bool, "issues": [{path, rule, message}]}`).
        #[arg(long)]
        json: bool,
    },
    /// Show every resource a platform request will create, grouped by phase, with counts.
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
    Provision {
        /// The platform request (JSON), e.g. examples/platform.json.
        file: PathBuf,
        /// Follow the run: states as they are entered, elapsed time; exit 1 on failure with the reason.
        #[arg(long)]
        wait: bool,
        /// Idempotency key (default: generated). Sending the same id again starts nothing new.
        #[arg(long)]
        request_id: Option<String>,
        #[command(flatten)]
        conn: connect::Connection,
    },
    /// Decommission a platform: remove everything it created, in reverse order.
    Decommission {
        /// The platform id.
        platform: String,
        /// Follow the run; exit 1 on failure with the reason.
        #[arg(long)]
        wait: bool,
        /// Idempotency key (default: generated).
        #[arg(long)]
        request_id: Option<String>,
        #[command(flatten)]
        conn: connect::Connection,
    },
    /// Show platforms, or one platform's phases, outputs, inventory, runs and last error.
    Status {
        /// The platform id (omit to list every platform).
        platform: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: connect::Connection,
    },
    /// Put any raw event on the Tenantry bus (`{"detail-type": ..., "detail": {...}}`).
    Submit {
        /// The event (JSON): an EventBridge entry or event envelope.
        file: PathBuf,
        #[command(flatten)]
        conn: connect::Connection,
    },
    /// Onboard, offboard and list a platform's tenants (`tenant --help` tells what stays and what goes).
    #[command(subcommand, long_about = commands::tenant::LONG_ABOUT)]
    Tenant(commands::tenant::TenantCommand),
    /// Run the local stack: moto (the AWS emulator) behind Tenantry's gateway.
    #[command(subcommand)]
    Dev(commands::dev::DevCommand),
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
            request_id,
            conn,
        } => commands::requests::provision(&conn, &file, request_id, wait).await,
        Command::Decommission {
            platform,
            wait,
            request_id,
            conn,
        } => commands::requests::decommission(&conn, &platform, request_id, wait).await,
        Command::Status {
            platform,
            json,
            conn,
        } => commands::status::run(&conn, platform.as_deref(), json).await,
        Command::Submit { file, conn } => commands::requests::submit(&conn, &file).await,
        Command::Tenant(cmd) => commands::tenant::run(cmd).await,
        Command::Dev(cmd) => commands::dev::run(cmd).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
