//! `tenantry lease show | release`: a platform's lease with each holder's request and execution,
//! and the release of a holder whose execution ended without `finalize`
//! (docs/runbooks/stuck-lease.md). The work is `tenantry::operator::lease`; this prints it.

use super::status::{state_name, table};
use crate::connect::Connection;
use crate::errors::{conflict, invalid_input, Marked};
use clap::Subcommand;
use std::process::ExitCode;
use tenantry::operator::lease::{self, Execution, LeaseError, LeaseReport, Released};

/// Shown by `tenantry lease --help`.
pub const LONG_ABOUT: &str = "\
Show and release a platform's lease (docs/runbooks/stuck-lease.md).

Every platform operation (provision, update, decommission, a drift check that may repair) holds
the platform's lease exclusively; every tenant operation (onboard, offboard) holds a share. The
last state of each workflow, finalize, releases it. An execution that was stopped, timed out, or
whose finalize failed leaves its lease behind until it expires (2 hours; 1 hour for a share), and
requests for the platform are refused meanwhile (exit 7).

  show     the lease: each holder with its operation, expiry, request state and execution status
  release  run finalize for one holder whose execution is no longer running: the platform (or
           the tenant) becomes Failed with your reason, the run and the request are recorded,
           the lease is released and the Failed event is published

`release` is refused, and changes nothing, when the lease does not name the holder or when the
holder's execution is RUNNING: a running execution is not stuck, and stopping it is a deliberate,
separate act. Releasing a holder already released says so and changes nothing.";

#[derive(Subcommand)]
pub enum LeaseCommand {
    /// Show the platform's lease: each holder with its request state and execution status.
    #[command(
        after_help = "Examples:\n  tenantry lease show payments\n  tenantry lease show payments --json | jq '.holders[] | {holder, execution}'"
    )]
    Show {
        /// The platform id.
        platform: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Connection,
    },
    /// Release a holder whose execution ended without finalize: run finalize for it (failed).
    ///
    /// Refused (exit 7, nothing changed) when the lease does not name HOLDER, or when HOLDER's
    /// execution is RUNNING. Check first with `tenantry lease show PLATFORM`.
    #[command(
        after_help = "Examples:\n  tenantry lease show payments\n  tenantry lease release payments --holder provision-5451decdd34f --reason 'INC-1234: execution aborted by hand'\n  tenantry lease release payments --holder onboard-fraud-1 --reason 'INC-1235: finalize failed' --json"
    )]
    Release {
        /// The platform id.
        platform: String,
        /// The holder to release: its request id, as `tenantry lease show` names it.
        #[arg(long, value_name = "REQUEST_ID")]
        holder: String,
        /// Why (a ticket, who, what happened): recorded as the run's error and the platform's
        /// (or the tenant's) last error.
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Connection,
    },
}

pub async fn run(cmd: LeaseCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        LeaseCommand::Show {
            platform,
            json,
            conn,
        } => {
            let deps = conn.connect().await?.deps();
            let report = lease::show(&deps, &platform).await.map_err(classify)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", render(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        LeaseCommand::Release {
            platform,
            holder,
            reason,
            json,
            conn,
        } => {
            let deps = conn.connect().await?.deps();
            let released = lease::release(&deps, &platform, &holder, &reason)
                .await
                .map_err(classify)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&released)?);
            } else {
                println!("{}", said(&platform, &released));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Refusals exit 7 (conflict) or 2 (no reason); store and AWS errors are classed as elsewhere.
fn classify(e: LeaseError) -> anyhow::Error {
    match e {
        LeaseError::NotAHolder { .. } | LeaseError::Running { .. } => {
            conflict(e.to_string()).into()
        }
        LeaseError::NoReason => invalid_input(e.to_string()).into(),
        LeaseError::Store(s) => s.into(),
        other => Marked(crate::errors::Exit::Failure, other.to_string()).into(),
    }
}

/// What a release did, in one line.
pub fn said(platform: &str, released: &Released) -> String {
    match released {
        Released::Finalized { holder, result } => format!(
            "released {} ({} {}) of platform {platform}: finalize recorded it {}; the lease is free \
             for the next request",
            holder.lease.holder,
            holder.role.as_str(),
            holder.lease.operation,
            state_name(&result.status),
        ),
        Released::AlreadyFree {
            holder,
            request_state,
        } => format!(
            "{holder} holds no lease of platform {platform} any more (its request is {}): already \
             free, nothing changed",
            request_state.as_str()
        ),
    }
}

/// The lease as a headline and one row per holder.
pub fn render(report: &LeaseReport) -> String {
    let state = if report.holders.is_empty() {
        "free"
    } else if report.is_free() {
        "free (only expired holders)"
    } else {
        "held"
    };
    let headline = format!(
        "lease of {}: {state}, fence {}, read {}",
        report.platform_id,
        report.fence,
        report.checked_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    if report.holders.is_empty() {
        return format!("{headline}\n");
    }
    let mut t = table(vec![
        "role",
        "holder",
        "operation",
        "acquired",
        "expires",
        "request",
        "execution",
    ]);
    for h in &report.holders {
        let expires = format!(
            "{}{}",
            h.lease.expires_at.format("%Y-%m-%d %H:%M:%S"),
            if h.expired { " (expired)" } else { "" }
        );
        t.add_row(vec![
            h.role.as_str().to_owned(),
            h.lease.holder.clone(),
            h.lease.operation.clone(),
            h.lease.acquired_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            expires,
            h.request_state
                .map(|s| s.as_str().to_owned())
                .unwrap_or_else(|| "no record".to_owned()),
            h.execution.label(),
        ]);
    }
    let mut out = format!("{headline}\n{t}\n");
    for h in &report.holders {
        if let Some(advice) = advice(report, h) {
            out.push_str(&advice);
            out.push('\n');
        }
    }
    out
}

/// What to do about one holder, per the runbook.
fn advice(report: &LeaseReport, h: &lease::Holder) -> Option<String> {
    let p = &report.platform_id;
    let who = &h.lease.holder;
    if h.expired {
        return Some(format!("{who}: expired, blocks nobody"));
    }
    Some(match &h.execution {
        Execution::Found { status, .. } if status == "RUNNING" => {
            format!("{who}: running, not stuck; follow it, do not release it")
        }
        Execution::Found { status, .. } => format!(
            "{who}: execution {status} without releasing: tenantry lease release {p} --holder {who} --reason '...'"
        ),
        Execution::DoesNotExist { arn } => format!(
            "{who}: execution {arn} never started (intake died: see tenantry-intake-dlq); \
             redrive the message, or: tenantry lease release {p} --holder {who} --reason '...'"
        ),
        Execution::Unknown { reason } => format!("{who}: execution status unknown: {reason}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use tenantry::operator::lease::{Holder, Role};
    use tenantry::store::{Lease, RequestState};

    fn holder(status: &str, expired: bool) -> Holder {
        let t = chrono::Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap();
        Holder {
            role: Role::Exclusive,
            lease: Lease {
                platform_id: "payments".into(),
                holder: "provision-1".into(),
                operation: "provision".into(),
                acquired_at: t,
                expires_at: t + chrono::Duration::hours(2),
                fence: 3,
            },
            expired,
            request_state: Some(RequestState::Started),
            execution: Execution::Found {
                arn: "arn:aws:states:us-east-1:1:execution:tenantry-provision-platform:provision-1"
                    .into(),
                status: status.into(),
                stopped_at: None,
            },
        }
    }

    fn report(holders: Vec<Holder>) -> LeaseReport {
        LeaseReport {
            platform_id: "payments".into(),
            fence: 3,
            checked_at: chrono::Utc.with_ymd_and_hms(2026, 12, 4, 11, 0, 0).unwrap(),
            holders,
        }
    }

    #[test]
    fn a_stopped_holder_is_shown_with_the_command_that_releases_it() {
        let out = render(&report(vec![holder("ABORTED", false)]));
        assert!(out.starts_with("lease of payments: held, fence 3"), "{out}");
        assert!(
            out.contains("provision-1") && out.contains("Started") && out.contains("ABORTED"),
            "{out}"
        );
        assert!(
            out.contains("tenantry lease release payments --holder provision-1"),
            "{out}"
        );
    }

    #[test]
    fn a_running_holder_is_not_offered_a_release() {
        let out = render(&report(vec![holder("RUNNING", false)]));
        assert!(out.contains("running, not stuck"), "{out}");
        assert!(!out.contains("lease release"), "{out}");
    }

    #[test]
    fn an_empty_lease_is_free() {
        assert_eq!(
            render(&report(vec![])),
            "lease of payments: free, fence 3, read 2026-12-04 11:00:00 UTC\n"
        );
        let out = render(&report(vec![holder("ABORTED", true)]));
        assert!(out.contains("free (only expired holders)") && out.contains("(expired)"));
    }
}
