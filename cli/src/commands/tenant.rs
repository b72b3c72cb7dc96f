//! `tenantry tenant validate | add | remove | list`: the tenants of a platform, onboarded and
//! offboarded through the same event bus, intake and lease as every other request.

use super::read_input;
use super::requests::{new_request_id, send, Outgoing};
use super::status::table;
use super::validate::{print_issues, report};
use crate::connect::Connection;
use crate::errors::not_found;
use crate::progress::Output;
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tenantry::events::{RequestKind, TenantRequest};
use tenantry::spec::TenantSpec;
use tenantry::store::TenantRecord;

/// Shown by `tenantry tenant --help`.
pub const LONG_ABOUT: &str = "\
Onboard, offboard and list the tenants of a platform.

A tenant is a namespace of the platform's cluster with Pod Security Standards (restricted),
default-deny network policies, a ResourceQuota and LimitRange, a service account bound to a tenant
IAM role limited to the tenant's S3 prefix of the platform bucket and to its own KMS key, and
namespace-scoped access for its owners. The tenant request file is the shape of
examples/tenant.json.

  validate  check a tenant request file locally (nothing is sent)
  add       onboard a tenant: validated here, then put on the bus as TenantOnboardingRequested
  remove    offboard a tenant: TenantOffboardingRequested
  list      the platform's tenants as recorded in the state table, with state and failure

`add` and `remove` go through intake like every request: it checks the request again (the
platform must exist and be Active, the name must not collide, prefixes must not overlap) and
starts the workflow under the platform's lease. Tenants of one platform onboard and offboard in
parallel (each takes a share of the lease), but never while the platform itself is being
provisioned, updated or decommissioned (that takes the whole lease): such a request is refused
naming the running one; send it again, with a new request id, once that has finished. The same
--request-id sent twice starts nothing new.

Offboarding deletes nothing instantly. Without --retain-data the tenant's S3 prefix is emptied
(every object version) and its KMS key is scheduled for deletion with the 7-day minimum window.
With --retain-data the prefix and the key are kept; add --schedule-key-deletion to schedule the
kept key for deletion with the 30-day maximum window instead.";

/// Shown by `tenantry tenant remove --help`.
const REMOVE_LONG_ABOUT: &str = "\
Offboard a tenant: put TenantOffboardingRequested on the Tenantry bus.

The tenant's namespace, access entry, IAM role and policies go, in order. Nothing is deleted
instantly, and what happens to the tenant's data depends on the flags:

  (default)                 the tenant's S3 prefix is emptied (every object version) and its
                            KMS key is scheduled for deletion with the 7-day minimum window
  --retain-data             the S3 prefix and the KMS key are kept
  --retain-data --schedule-key-deletion
                            the S3 prefix is kept; the KMS key is scheduled for deletion with
                            the 30-day maximum window (data under it is unreadable after that)

A key scheduled for deletion can be recovered until its window ends (kms cancel-key-deletion).
Intake checks the request (the tenant must be Active or Failed) and starts the workflow under a
share of the platform's lease.";

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Check a tenant request file; on failure print every problem with its JSON path and exit 1.
    #[command(
        after_help = "Examples:\n  tenantry tenant validate examples/tenant.json\n  tenantry tenant validate --json - < tenant.json"
    )]
    Validate {
        /// The tenant request (JSON), e.g. examples/tenant.json. `-` reads standard input.
        file: PathBuf,
        /// Print the result as JSON (`{"valid": bool, "issues": [{path, rule, message}]}`).
        #[arg(long)]
        json: bool,
    },
    /// Onboard a tenant: put TenantOnboardingRequested on the Tenantry bus.
    ///
    /// The tenant request is validated here first (nothing is sent when it is invalid), then by
    /// intake against the platform (it must exist and be Active; names and S3 prefixes must not
    /// collide with its other tenants), which starts the onboarding workflow under a share of the
    /// platform's lease.
    #[command(
        after_help = "Examples:\n  tenantry tenant add payments examples/tenant.json --wait\n  tenantry tenant add payments examples/tenant.json --request-id onboard-fraud-scoring-1"
    )]
    Add {
        /// The platform id.
        platform: String,
        /// The tenant request (JSON), e.g. examples/tenant.json. `-` reads standard input.
        file: PathBuf,
        /// Follow the run: its phases live on a terminal, one line per phase otherwise; exit 8
        /// when it fails, naming the phase.
        #[arg(long)]
        wait: bool,
        /// With --wait: `json` prints one JSON object per transition and a summary object.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
        /// Idempotency key (default: generated). Sending the same id again starts nothing new.
        #[arg(long)]
        request_id: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Offboard a tenant (deletes nothing instantly: without --retain-data its S3 prefix is
    /// emptied and its KMS key scheduled for deletion, 7-day window).
    #[command(
        long_about = REMOVE_LONG_ABOUT,
        after_help = "Examples:\n  tenantry tenant remove payments fraud-scoring --wait\n  tenantry tenant remove payments fraud-scoring --retain-data --wait\n  tenantry tenant remove payments fraud-scoring --retain-data --schedule-key-deletion"
    )]
    Remove {
        /// The platform id.
        platform: String,
        /// The tenant's name.
        name: String,
        /// Keep the tenant's S3 prefix and KMS key.
        #[arg(long)]
        retain_data: bool,
        /// With --retain-data: schedule the kept KMS key for deletion (30-day maximum window).
        #[arg(long, requires = "retain_data")]
        schedule_key_deletion: bool,
        /// Follow the run: its phases live on a terminal, one line per phase otherwise; exit 8
        /// when it fails, naming the phase.
        #[arg(long)]
        wait: bool,
        /// With --wait: `json` prints one JSON object per transition and a summary object.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
        /// Idempotency key (default: generated). Sending the same id again starts nothing new.
        #[arg(long)]
        request_id: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// List a platform's tenants: state, cost centre, owners, last request, failure.
    #[command(
        after_help = "Examples:\n  tenantry tenant list payments\n  tenantry tenant list payments --json | jq '.[] | select(.state == \"Failed\")'"
    )]
    List {
        /// The platform id.
        platform: String,
        /// Print the tenant records as a JSON array.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Connection,
    },
}

pub async fn run(cmd: TenantCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TenantCommand::Validate { file, json } => validate(&file, json),
        TenantCommand::Add {
            platform,
            file,
            wait,
            output,
            request_id,
            conn,
        } => add(&conn, &platform, &file, request_id, wait, output).await,
        TenantCommand::Remove {
            platform,
            name,
            retain_data,
            schedule_key_deletion,
            wait,
            output,
            request_id,
            conn,
        } => {
            let request = TenantRequest::offboarding(
                request_id.unwrap_or_else(|| new_request_id("offboard")),
                platform,
                name,
                retain_data,
                schedule_key_deletion,
            );
            remove(&conn, request, wait, output).await
        }
        TenantCommand::List {
            platform,
            json,
            conn,
        } => list(&conn, &platform, json).await,
    }
}

fn describe(spec: &TenantSpec) -> String {
    format!(
        "valid tenant request for {:?} ({} owner(s), S3 prefix {}, {}, cost centre {})",
        spec.name,
        spec.owners.len(),
        spec.effective_s3_prefix(),
        if spec.own_kms_key {
            "own KMS key"
        } else {
            "no KMS key of its own"
        },
        spec.cost_centre
    )
}

fn validate(file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let text = read_input(file)?;
    report(
        file,
        json,
        &tenantry::validate::parse_tenant(&text),
        describe,
    )
}

async fn add(
    conn: &Connection,
    platform: &str,
    file: &Path,
    request_id: Option<String>,
    wait: bool,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let text = read_input(file)?;
    // Checked here first so that a bad request fails fast; intake checks again, against the
    // platform and its other tenants.
    let spec = match tenantry::validate::parse_tenant(&text) {
        Ok(spec) => spec,
        Err(errors) => {
            print_issues(&file.display().to_string(), &errors.0, "; nothing was sent");
            return Ok(ExitCode::FAILURE);
        }
    };
    let request = TenantRequest::onboarding(
        request_id.unwrap_or_else(|| new_request_id("onboard")),
        platform,
        spec,
    );
    send(
        conn,
        &Outgoing::tenant(RequestKind::TenantOnboarding, &request)?,
        wait,
        output,
    )
    .await
}

async fn remove(
    conn: &Connection,
    request: TenantRequest,
    wait: bool,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let name = request.name().unwrap_or_default();
    // The tenant name rules, so that a hostile name is refused here rather than by intake.
    let issues = tenantry::validate::tenant_name_issues(name, "NAME");
    if !issues.is_empty() {
        print_issues(
            &format!("tenant name {name:?}"),
            &issues,
            "; nothing was sent",
        );
        return Ok(ExitCode::FAILURE);
    }
    send(
        conn,
        &Outgoing::tenant(RequestKind::TenantOffboarding, &request)?,
        wait,
        output,
    )
    .await
}

async fn list(conn: &Connection, platform: &str, json: bool) -> anyhow::Result<ExitCode> {
    let connected = conn.connect().await?;
    let store = connected.store();
    if store.get_spec(platform).await?.is_none() {
        return Err(not_found(format!(
            "platform {platform:?} is not recorded in table {} ({}); `tenantry status` lists \
             the platforms",
            connected.table, connected.target
        ))
        .into());
    }
    let records: Vec<TenantRecord> = store
        .list_tenant_records(platform)
        .await?
        .into_iter()
        .map(|r| r.value)
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(ExitCode::SUCCESS);
    }
    if records.is_empty() {
        println!(
            "platform {platform} has no tenants (onboard one with `tenantry tenant add {platform} FILE`)"
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", tenant_table(&records));
    Ok(ExitCode::SUCCESS)
}

/// One row per tenant; the failure column only when some tenant failed.
fn tenant_table(records: &[TenantRecord]) -> comfy_table::Table {
    let any_failed = records.iter().any(|r| r.failure.is_some());
    let mut header = vec![
        "name",
        "state",
        "cost centre",
        "owners",
        "request",
        "updated",
    ];
    if any_failed {
        header.push("failure");
    }
    let mut t = table(header);
    for r in records {
        let mut row = vec![
            r.name.clone(),
            r.state.as_str().to_owned(),
            r.spec.cost_centre.clone(),
            r.spec.owners.len().to_string(),
            r.request_id.clone(),
            r.updated_at.to_rfc3339(),
        ];
        if any_failed {
            row.push(
                r.failure
                    .as_ref()
                    .map(|f| format!("{}: {}", f.phase, f.reason))
                    .unwrap_or_default(),
            );
        }
        t.add_row(row);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantry::store::{TenantFailure, TenantState};

    fn record(name: &str, state: TenantState) -> TenantRecord {
        let spec: TenantSpec = serde_json::from_value(serde_json::json!({
            "name": name,
            "costCentre": "cc-1",
            "owners": ["arn:aws:iam::111122223333:role/a", "arn:aws:iam::111122223333:role/b"]
        }))
        .unwrap();
        TenantRecord::new(spec, state, "onboard-1")
    }

    #[test]
    fn the_failure_column_appears_only_when_a_tenant_failed() {
        let ok = tenant_table(&[record("team-a", TenantState::Active)]).to_string();
        assert!(ok.contains("team-a") && ok.contains("Active") && ok.contains("cc-1"));
        assert!(!ok.contains("failure"));
        let mut failed = record("team-b", TenantState::Failed);
        failed.failure = Some(TenantFailure {
            phase: "tenant".into(),
            reason: "quota refused".into(),
            code: None,
        });
        let text = tenant_table(&[record("team-a", TenantState::Active), failed]).to_string();
        assert!(text.contains("failure") && text.contains("tenant: quota refused"));
    }

    #[test]
    fn hostile_names_are_refused_before_sending() {
        assert!(tenantry::validate::tenant_name_issues("team-a", "NAME").is_empty());
        for name in ["../x", "KUBE-SYSTEM", "kube-system", "default", ""] {
            assert!(
                !tenantry::validate::tenant_name_issues(name, "NAME").is_empty(),
                "{name:?} should be refused"
            );
        }
    }
}
