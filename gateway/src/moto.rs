//! Launching moto server: the project-local virtualenv's `moto_server`, on a loopback port, with
//! `MOTO_PORT` pointing its Step Functions interpreter at the gateway.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// Environment variable overriding the `moto_server` executable.
pub const MOTO_SERVER_ENV: &str = "TENANTRY_MOTO_SERVER";

/// Finds `moto_server`: `$TENANTRY_MOTO_SERVER`, else `.venv/bin/moto_server` in the nearest
/// ancestor of this crate's manifest dir or of the current directory that has one.
pub fn find_moto_server() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os(MOTO_SERVER_ENV) {
        return Ok(PathBuf::from(p));
    }
    let mut starts = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR"))];
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
        starts.push(PathBuf::from(dir));
    }
    if let Ok(dir) = std::env::current_dir() {
        starts.push(dir);
    }
    for start in &starts {
        for dir in start.ancestors() {
            let candidate = dir.join(".venv").join("bin").join("moto_server");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    bail!(
        "moto_server not found: set {MOTO_SERVER_ENV} or create the project virtualenv \
         (python3 -m venv .venv && .venv/bin/pip install -r requirements-dev.txt)"
    )
}

/// A running moto server.
pub struct Moto {
    pub port: u16,
    pub log_path: PathBuf,
    child: Child,
}

impl Moto {
    /// Starts moto on `127.0.0.1:port` with `MOTO_PORT=gateway_port`, logging to `log_path`,
    /// and waits until it answers HTTP.
    pub async fn start(
        exe: &Path,
        port: u16,
        gateway_port: u16,
        log_path: PathBuf,
        http: &reqwest::Client,
    ) -> anyhow::Result<Moto> {
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating moto log {}", log_path.display()))?;
        let log_err = log.try_clone()?;
        let mut cmd = Command::new(exe);
        cmd.arg("-H")
            .arg("127.0.0.1")
            .arg("-p")
            .arg(port.to_string())
            .env("MOTO_PORT", gateway_port.to_string())
            .env("PYTHONUNBUFFERED", "1")
            // AWS managed policies (AmazonEKSClusterPolicy, ...) exist in every account, as in AWS.
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe; only called between fork and exec. It makes the
        // kernel send moto SIGTERM if the thread that started it dies (e.g. the CLI is killed).
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let mut moto = Moto {
            port,
            log_path,
            child,
        };
        moto.wait_ready(http).await?;
        Ok(moto)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn wait_ready(&mut self, http: &reqwest::Client) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("{}/moto-api/data.json", self.endpoint());
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "moto exited during start ({status}); log {}:\n{}",
                    self.log_path.display(),
                    tail(&self.log_path)
                );
            }
            if let Ok(r) = http.get(&url).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "moto did not answer on port {} within 60s; log {}:\n{}",
                    self.port,
                    self.log_path.display(),
                    tail(&self.log_path)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops moto (SIGTERM, then SIGKILL after 3 s) and reaps it.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: plain kill(2) on our own child's pid, which is not reaped yet.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
            if tokio::time::timeout(Duration::from_secs(3), self.child.wait())
                .await
                .is_ok()
            {
                return;
            }
        }
        let _ = self.child.kill().await;
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
