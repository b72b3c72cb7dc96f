//! The record a running local stack leaves in its state directory, so that `dev status`,
//! `dev down` and every other command can find it.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "stack.json";
pub const LOG_NAME: &str = "stack.log";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackFile {
    /// The AWS endpoint: the gateway in front of moto. Point any AWS SDK or CLI here.
    pub aws_endpoint: String,
    /// moto itself (bypasses the gateway: no call counting, no fault injection).
    pub moto_endpoint: String,
    /// The Kubernetes API double.
    pub kube_endpoint: String,
    pub region: String,
    pub table_name: String,
    /// Process id of `tenantry dev serve`.
    pub pid: u32,
    pub started_at: String,
    /// ARNs of the deployed state machines, by workflow name.
    pub state_machines: std::collections::BTreeMap<String, String>,
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

pub fn read(state_dir: &Path) -> anyhow::Result<Option<StackFile>> {
    let p = path(state_dir);
    match std::fs::read_to_string(&p) {
        Ok(s) => Ok(Some(
            serde_json::from_str(&s).with_context(|| format!("parsing {}", p.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

/// Reads the stack file or explains how to start a stack.
pub fn require(state_dir: &Path) -> anyhow::Result<StackFile> {
    read(state_dir)?.with_context(|| {
        crate::errors::cannot_connect(format!(
            "no local stack is running (no {}); start one with `tenantry dev up`",
            path(state_dir).display()
        ))
    })
}

pub fn write(state_dir: &Path, file: &StackFile) -> anyhow::Result<()> {
    std::fs::create_dir_all(state_dir)?;
    let tmp = state_dir.join(format!("{FILE_NAME}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(file)?)?;
    std::fs::rename(&tmp, path(state_dir))?;
    Ok(())
}

pub fn remove(state_dir: &Path) {
    let _ = std::fs::remove_file(path(state_dir));
}
