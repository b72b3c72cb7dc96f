//! `tenantry remediation pause | resume | show`: the fleet-wide remediation pause of the
//! drift-storm runbook (docs/runbooks/drift-storm.md). The work is
//! `tenantry::operator::remediation`; this prints it.

use crate::connect::Connection;
use crate::errors::{invalid_input, Marked};
use clap::Subcommand;
use std::process::ExitCode;
use tenantry::operator::remediation::{self, PauseError};
use tenantry::store::{Paused, RemediationPause};

/// Shown by `tenantry remediation --help`.
pub const LONG_ABOUT: &str = "\
Pause and resume drift remediation for the whole fleet (docs/runbooks/drift-storm.md).

While remediation is paused, every drift check runs report-only, whatever asked for it (the
nightly sweep, a change recorded by CloudTrail, `tenantry drift --remediate auto`): it observes
and reports, repairs nothing, and takes no lease, so it blocks no platform or tenant request. A
check admitted just before the pause repairs nothing either: it reads the pause again before it
lists its repairs. Its report says the pause was on, with who set it and why.

  pause   pause remediation, recording your reason and your IAM principal (pausing when already
          paused keeps the first pause and says so)
  resume  resume it; the next checks repair what their policy allows
  show    whether it is paused, by whom, since when and why

Platform and tenant requests (provision, update, onboard...) are not affected.";

#[derive(Subcommand)]
pub enum RemediationCommand {
    /// Pause drift remediation fleet-wide: every check runs report-only until `resume`.
    #[command(
        after_help = "Examples:\n  tenantry remediation pause --reason 'INC-1234: SCP rollout rewrites key policies'\n  tenantry remediation pause --reason 'INC-1234' --json"
    )]
    Pause {
        /// Why (a ticket, what is going on): recorded with the pause and shown in every report.
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Connection,
    },
    /// Resume drift remediation: checks repair what their policy allows again.
    #[command(after_help = "Examples:\n  tenantry remediation resume")]
    Resume {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Connection,
    },
    /// Show whether remediation is paused, by whom, since when and why.
    #[command(
        after_help = "Examples:\n  tenantry remediation show\n  tenantry remediation show --json"
    )]
    Show {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Connection,
    },
}

pub async fn run(cmd: RemediationCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RemediationCommand::Pause { reason, json, conn } => {
            let paused = remediation::pause(&conn.connect().await?.deps(), &reason)
                .await
                .map_err(classify)?;
            let (already, pause) = match &paused {
                Paused::Now(p) => (false, p),
                Paused::Already(p) => (true, p),
            };
            if json {
                let out =
                    serde_json::json!({ "paused": true, "alreadyPaused": already, "pause": pause });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else if already {
                println!(
                    "remediation was already {}; nothing changed",
                    describe(pause)
                );
            } else {
                println!(
                    "remediation {}: every drift check now runs report-only; \
                     `tenantry remediation resume` lifts it",
                    describe(pause)
                );
            }
        }
        RemediationCommand::Resume { json, conn } => {
            let lifted = remediation::resume(&conn.connect().await?.deps()).await?;
            if json {
                let out = serde_json::json!({ "paused": false, "lifted": lifted });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                match &lifted {
                    Some(p) => println!(
                        "remediation resumed (it was {}): checks repair what their policy allows",
                        describe(p)
                    ),
                    None => println!("remediation was not paused; nothing changed"),
                }
            }
        }
        RemediationCommand::Show { json, conn } => {
            let pause = remediation::show(&conn.connect().await?.deps()).await?;
            if json {
                let out = serde_json::json!({ "paused": pause.is_some(), "pause": pause });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                match &pause {
                    Some(p) => println!("remediation is {}", describe(p)),
                    None => println!("remediation is not paused"),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// An empty reason exits 2; store and AWS errors are classed as elsewhere.
fn classify(e: PauseError) -> anyhow::Error {
    match e {
        PauseError::NoReason => invalid_input(e.to_string()).into(),
        PauseError::Store(s) => s.into(),
        other => Marked(crate::errors::Exit::Failure, other.to_string()).into(),
    }
}

/// `paused by <principal> since <time>: <reason>`.
pub fn describe(p: &RemediationPause) -> String {
    format!(
        "paused by {} since {}: {}",
        p.paused_by,
        p.paused_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        p.reason
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_names_who_when_and_why() {
        let p = RemediationPause {
            reason: "INC-1234: SCP rollout".to_owned(),
            paused_by: "arn:aws:iam::123456789012:role/ops".to_owned(),
            paused_at: chrono::DateTime::parse_from_rfc3339("2026-12-04T18:30:00Z")
                .unwrap()
                .into(),
        };
        assert_eq!(
            describe(&p),
            "paused by arn:aws:iam::123456789012:role/ops since 2026-12-04T18:30:00Z: \
             INC-1234: SCP rollout"
        );
    }
}
