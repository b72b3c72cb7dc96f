//! `tenantry`: validate and plan platform requests, and run the local AWS stack.

mod commands;
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
    after_help = "Examples:\n  tenantry validate examples/platform.json\n  tenantry plan examples/platform.json\n  tenantry dev up && tenantry dev selftest && tenantry dev down"
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
    /// Run the local stack: moto (the AWS emulator) behind Tenantry's gateway.
    #[command(subcommand)]
    Dev(commands::dev::DevCommand),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // reqwest is built with rustls but no crypto provider of its own (kube-fake-client's choice).
    tenantry_gateway::install_crypto_provider();
    let result = match cli.command {
        Command::Validate { file, json } => commands::validate::run(&file, json),
        Command::Plan { file, json } => commands::plan::run(&file, json),
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
