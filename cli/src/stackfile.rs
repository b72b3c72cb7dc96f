//! The record a running local stack leaves in its state directory, so that `dev status`,
//! `dev down` and every other command can find it.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "stack.json";
pub const LOG_NAME: &str = "stack.log";
/// The state directory's name, in the directory `tenantry dev up` ran from.
pub const DIR_NAME: &str = ".tenantry";

/// The state directory: the one named (--state-dir or TENANTRY_STATE_DIR), else the nearest
/// `.tenantry` with a stack record, from the current directory upward, else where `dev up` would
/// put one ([`home`]).
pub fn locate(named: Option<&Path>) -> PathBuf {
    if let Some(dir) = named {
        return dir.to_path_buf();
    }
    let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    find_upward(&here).unwrap_or_else(|| home(&here))
}

/// The nearest `.tenantry/stack.json` in `start` or a directory above it, searching as git
/// searches for its repository: upward, up to and including the first directory that is a
/// repository's root (has `.git`), so a stack of another repository is never picked up.
pub fn find_upward(start: &Path) -> Option<PathBuf> {
    for dir in start.ancestors() {
        let candidate = dir.join(DIR_NAME);
        if path(&candidate).is_file() {
            return Some(candidate);
        }
        if dir.join(".git").exists() {
            return None;
        }
    }
    None
}

/// Where a new stack's state directory goes: `.tenantry` at the root of the repository `start`
/// is in (so that every directory inside it finds the stack), or in `start` outside one.
pub fn home(start: &Path) -> PathBuf {
    start
        .ancestors()
        .find(|d| d.join(".git").exists())
        .unwrap_or(start)
        .join(DIR_NAME)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tenantry-stackfile-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_stack_is_found_upward_up_to_the_repository_root() {
        let outer = scratch("upward");
        let repo = outer.join("repo");
        let deep = repo.join("cli/src/commands");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        // Nothing yet: a new stack goes to the repository's root.
        assert_eq!(find_upward(&deep), None);
        assert_eq!(home(&deep), repo.join(DIR_NAME));
        // A stack above the repository (another project's) is not this repository's.
        std::fs::create_dir_all(outer.join(DIR_NAME)).unwrap();
        std::fs::write(path(&outer.join(DIR_NAME)), "{}").unwrap();
        assert_eq!(find_upward(&deep), None);
        // The repository's own, from any directory inside it; the nearest one wins.
        std::fs::create_dir_all(repo.join(DIR_NAME)).unwrap();
        std::fs::write(path(&repo.join(DIR_NAME)), "{}").unwrap();
        assert_eq!(find_upward(&deep), Some(repo.join(DIR_NAME)));
        assert_eq!(find_upward(&repo), Some(repo.join(DIR_NAME)));
        std::fs::create_dir_all(repo.join("cli").join(DIR_NAME)).unwrap();
        std::fs::write(path(&repo.join("cli").join(DIR_NAME)), "{}").unwrap();
        assert_eq!(find_upward(&deep), Some(repo.join("cli").join(DIR_NAME)));
        // A named directory wins over any found one.
        assert_eq!(locate(Some(Path::new("/x/y"))), PathBuf::from("/x/y"));
        // Outside any repository, the search goes on to the filesystem's root.
        let loose = scratch("loose");
        assert_eq!(home(&loose), loose.join(DIR_NAME));
        let _ = std::fs::remove_dir_all(&outer);
    }
}
