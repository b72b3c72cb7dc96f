//! What the CLI's binary tests share: an empty directory per test and a run of the built
//! `tenantry` in it with a cleared environment.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// An empty directory of its own for each test (`suite` keeps test files apart).
pub fn empty_dir(suite: &str, tag: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("tenantry-cli-{suite}-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `tenantry ARGS` from `dir` with a cleared environment: no AWS_* or TENANTRY_* variable,
/// HOME in `dir` (no ~/.aws), IMDS disabled so that the credential chain fails fast.
pub fn isolated(dir: &PathBuf, args: &[&str], extra: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(extra.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("tenantry runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
