//! Starting and stopping a whole local stack: moto, the gateway, the Kubernetes double.

use crate::calls::CallLog;
use crate::durations::Durations;
use crate::faults::Faults;
use crate::moto::{find_moto_server, Moto};
use crate::proxy::Gateway;
use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How to start a [`LocalStack`].
#[derive(Clone, Debug)]
pub struct StackOptions {
    /// Default `us-east-1`.
    pub region: String,
    /// DynamoDB state table handlers use. Default `tenantry`.
    pub table_name: String,
    /// `moto_server` executable. Default: `$TENANTRY_MOTO_SERVER`, else `.venv/bin/moto_server`
    /// in the nearest ancestor of this crate or of the current directory.
    pub moto_server: Option<PathBuf>,
    /// Lambda function names are `<prefix><handler>`. Default `tenantry-`.
    pub function_prefix: String,
    /// Directory for moto's log (`moto-<port>.log`). Default: the system temp dir.
    pub log_dir: Option<PathBuf>,
    /// Gateway port (the AWS endpoint). None = a free port.
    pub gateway_port: Option<u16>,
    /// moto's own port. None = a free port.
    pub moto_port: Option<u16>,
    /// Kubernetes double port. None = a free port.
    pub kube_port: Option<u16>,
    /// Run the real function binaries in this directory (`network`, `intake`, ...: what
    /// `cargo build --workspace --bins` leaves in the target dir) behind a local Lambda Runtime
    /// API, instead of the handlers in the gateway's process. See [`crate::runtime_api`].
    pub function_binaries: Option<PathBuf>,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            region: tenantry::aws::DEFAULT_REGION.to_owned(),
            table_name: tenantry::deps::DEFAULT_TABLE.to_owned(),
            moto_server: None,
            function_prefix: "tenantry-".to_owned(),
            log_dir: None,
            gateway_port: None,
            moto_port: None,
            kube_port: None,
            function_binaries: None,
        }
    }
}

impl StackOptions {
    /// The options of a stack that runs the real function binaries found beside the running
    /// executable's target directory (`target/debug` for a test in `target/debug/deps`).
    pub fn with_function_binaries_beside_exe(self) -> anyhow::Result<StackOptions> {
        let exe = std::env::current_exe().context("locating the running executable")?;
        let dir = exe
            .ancestors()
            .skip(1)
            .find(|d| d.join(tenantry::functions::INTAKE).is_file())
            .with_context(|| {
                format!(
                    "no function binaries beside {}: build them with `cargo build --workspace --bins`",
                    exe.display()
                )
            })?
            .to_path_buf();
        Ok(StackOptions {
            function_binaries: Some(dir),
            ..self
        })
    }
}

/// A running local stack. Dropping it stops everything (moto is killed); prefer
/// [`LocalStack::shutdown`], which also waits for moto to exit.
pub struct LocalStack {
    gw: Arc<Gateway>,
    moto: Option<Moto>,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
    started_in: Duration,
    temp_log: bool,
}

async fn listener(port: Option<u16>) -> anyhow::Result<TcpListener> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port.unwrap_or(0)));
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

fn serve(
    listener: TcpListener,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!("tenantry gateway server stopped: {e}");
        }
    })
}

impl LocalStack {
    /// Starts moto on a free loopback port P with `MOTO_PORT=Q`, the gateway on Q, and the
    /// Kubernetes double; enables moto's Step Functions execution; returns when all answer.
    pub async fn start(opts: StackOptions) -> anyhow::Result<LocalStack> {
        let started = Instant::now();
        let exe = match &opts.moto_server {
            Some(p) => p.clone(),
            None => find_moto_server()?,
        };
        let gw_listener = listener(opts.gateway_port).await?;
        let gw_port = gw_listener.local_addr()?.port();
        let kube_listener = listener(opts.kube_port).await?;
        let kube_port = kube_listener.local_addr()?.port();
        // moto's interpreter calls http://localhost:Q; if localhost resolves to ::1 first, serve
        // there too (best effort: ::1 may be unavailable).
        let gw_v6 = TcpListener::bind(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, gw_port)))
            .await
            .ok();

        let (stop, stop_rx) = watch::channel(false);
        let kube = Arc::new(crate::kube::KubeDoubles::new().await?);
        let mut servers = Vec::new();

        let mut attempt = 0;
        let log_dir = opts.log_dir.clone().unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&log_dir).ok();
        let (moto, gw) = loop {
            attempt += 1;
            let moto_port = match opts.moto_port {
                Some(p) => p,
                None => free_port()?,
            };
            let binaries = match &opts.function_binaries {
                Some(dir) => Some(crate::runtime_api::Binaries::new(
                    dir.clone(),
                    log_dir.clone(),
                )?),
                None => None,
            };
            let gw = Arc::new(
                Gateway::new(
                    format!("http://127.0.0.1:{moto_port}"),
                    format!("http://127.0.0.1:{gw_port}"),
                    format!("http://127.0.0.1:{kube_port}"),
                    opts.region.clone(),
                    opts.table_name.clone(),
                    opts.function_prefix.clone(),
                    kube.clone(),
                )?
                .with_binaries(binaries),
            );
            let log_path = log_dir.join(format!(
                "tenantry-moto-{moto_port}-{}.log",
                std::process::id()
            ));
            match Moto::start(&exe, moto_port, gw_port, log_path, &gw.http).await {
                Ok(m) => break (m, gw),
                // Another process may have taken the free port between probe and bind.
                Err(e) if opts.moto_port.is_none() && attempt < 3 => {
                    tracing::warn!("moto start failed, retrying on another port: {e:#}");
                }
                Err(e) => return Err(e),
            }
        };
        // The doubles behind a front that attributes each request to its invocation.
        let kube_router = axum::Router::new()
            .fallback(crate::kube_front::handle)
            .with_state(gw.clone());
        servers.push(serve(kube_listener, kube_router, stop_rx.clone()));
        let router = axum::Router::new()
            .fallback(crate::proxy::handle)
            .with_state(gw.clone());
        servers.push(serve(gw_listener, router.clone(), stop_rx.clone()));
        if let Some(v6) = gw_v6 {
            servers.push(serve(v6, router, stop_rx.clone()));
        }

        let config = gw
            .http
            .post(format!("{}/moto-api/config", moto.endpoint()))
            .header("content-type", "application/json")
            .body(r#"{"stepfunctions": {"execute_state_machine": true}}"#)
            .send()
            .await
            .context("configuring moto")?;
        anyhow::ensure!(
            config.status().is_success(),
            "moto refused /moto-api/config: {}",
            config.status()
        );
        let health = gw
            .http
            .get(format!("{}/_tenantry/health", gw.endpoint))
            .send()
            .await
            .context("gateway health")?;
        anyhow::ensure!(health.status().is_success(), "gateway unhealthy");

        Ok(LocalStack {
            gw,
            moto: Some(moto),
            stop,
            servers,
            started_in: started.elapsed(),
            temp_log: opts.log_dir.is_none(),
        })
    }

    /// The AWS endpoint everyone uses: `http://127.0.0.1:Q`.
    pub fn endpoint(&self) -> String {
        self.gw.endpoint.clone()
    }

    /// moto itself: `http://127.0.0.1:P` (uncounted, no faults, no extras).
    pub fn moto_endpoint(&self) -> String {
        self.gw.moto.clone()
    }

    /// The Kubernetes API double (its default cluster): `http://127.0.0.1:K`.
    pub fn kube_endpoint(&self) -> String {
        self.gw.kube_endpoint.clone()
    }

    /// The double of one EKS cluster: `http://127.0.0.1:K/clusters/{name}`, which is also the
    /// `endpoint` DescribeCluster reports for that cluster through the gateway.
    pub fn kube_endpoint_for(&self, cluster: &str) -> String {
        crate::eks::kube_endpoint_for(&self.gw, cluster)
    }

    /// A `kube::Client` over HTTP on the default cluster double.
    pub fn kube_client(&self) -> anyhow::Result<kube::Client> {
        kube_client_at(&self.kube_endpoint())
    }

    /// A `kube::Client` over HTTP on one EKS cluster's double.
    pub fn kube_client_for(&self, cluster: &str) -> anyhow::Result<kube::Client> {
        kube_client_at(&self.kube_endpoint_for(cluster))
    }

    pub fn region(&self) -> &str {
        &self.gw.region
    }

    pub fn table_name(&self) -> &str {
        &self.gw.table_name
    }

    /// Where moto logs.
    pub fn moto_log(&self) -> Option<PathBuf> {
        self.moto.as_ref().map(|m| m.log_path.clone())
    }

    /// How long [`LocalStack::start`] took.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// SDK configuration for the gateway with the `testing` access key.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        tenantry::aws::local(&self.gw.endpoint, &self.gw.region, "testing").await
    }

    /// Handler dependencies as the gateway builds them for an invocation (but with the
    /// `testing` key, so calls are not attributed to a function).
    pub async fn deps(&self) -> tenantry::deps::Deps {
        tenantry::deps::Deps::new(self.sdk_config().await, self.gw.table_name.clone())
            .with_role_boundary(tenantry::aws::LOCAL_ROLE_BOUNDARY_ARN)
            .with_external_id(tenantry::aws::LOCAL_EXTERNAL_ID)
            .with_target_accounts(&[tenantry::aws::LOCAL_TARGET_ACCOUNT_ID])
            .with_account_id(tenantry::aws::LOCAL_ACCOUNT_ID)
    }

    /// SDK configuration acting in `account` (e.g. [`tenantry::aws::LOCAL_TARGET_ACCOUNT_ID`]),
    /// as its administrator: a session of the account's `OrganizationAccountAccessRole`,
    /// assumed from moto's default account (the organization's management account).
    pub async fn account_sdk_config(&self, account: &str) -> anyhow::Result<aws_config::SdkConfig> {
        let home = self.sdk_config().await;
        let role = format!(
            "arn:aws:iam::{account}:role/{}",
            crate::accounts::ORGANIZATION_ROLE
        );
        let out = aws_sdk_sts::Client::new(&home)
            .assume_role()
            .role_arn(&role)
            .role_session_name("tenantry-dev")
            .send()
            .await?;
        let c = out
            .credentials()
            .ok_or_else(|| anyhow::anyhow!("AssumeRole of {role} returned no credentials"))?;
        let credentials = aws_credential_types::Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            None,
            "tenantry-dev",
        );
        Ok(home
            .to_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
            )
            .build())
    }

    /// An SDK configuration pointing at moto directly: bypasses the gateway, so its calls are
    /// neither counted nor subject to faults (the stand-in for AWS-internal callers such as
    /// Lambda's event source mappings).
    pub async fn moto_sdk_config(&self) -> aws_config::SdkConfig {
        tenantry::aws::local(&self.moto_endpoint(), self.region(), "testing").await
    }

    /// Snapshot of the counted calls and invocations.
    pub fn calls(&self) -> CallLog {
        self.gw.calls()
    }

    pub fn reset_calls(&self) {
        self.gw.reset_calls()
    }

    pub fn set_faults(&self, f: Faults) {
        self.gw.set_faults(f)
    }

    pub fn set_durations(&self, d: Durations) {
        self.gw.set_durations(d)
    }

    /// Cold starts of the function processes so far (empty when handlers run in process).
    pub fn cold_starts(&self) -> Vec<crate::ColdStart> {
        self.gw
            .binaries
            .as_ref()
            .map(|b| b.cold_starts())
            .unwrap_or_default()
    }

    /// Running processes of one function (0 when handlers run in process).
    pub fn function_processes(&self, function: &str) -> usize {
        self.gw
            .binaries
            .as_ref()
            .map_or(0, |b| b.processes(function))
    }

    /// Stops the servers, the function processes and moto, waiting for moto to exit.
    pub async fn shutdown(mut self) {
        if let Some(b) = &self.gw.binaries {
            b.shutdown().await;
        }
        let _ = self.stop.send(true);
        for s in self.servers.drain(..) {
            let abort = s.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), s)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        if let Some(moto) = self.moto.take() {
            let log = moto.log_path.clone();
            moto.stop().await;
            // A clean stop leaves no temp log behind (a log_dir chosen by the caller is kept).
            if self.temp_log {
                let _ = std::fs::remove_file(log);
            }
        }
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for s in &self.servers {
            s.abort();
        }
        // Moto's child has kill_on_drop: dropping it sends SIGKILL.
        self.moto.take();
    }
}

fn kube_client_at(url: &str) -> anyhow::Result<kube::Client> {
    let config = kube::Config::new(url.parse().context("kube endpoint URL")?);
    Ok(kube::Client::try_from(config)?)
}

/// Runs a stack until SIGINT or SIGTERM, then stops moto cleanly. `ready` is called once the
/// stack answers (e.g. to print or write its endpoints).
pub async fn run_until_signal(
    opts: StackOptions,
    ready: impl FnOnce(&LocalStack),
) -> anyhow::Result<()> {
    let stack = LocalStack::start(opts).await?;
    ready(&stack);
    wait_for_signal().await;
    stack.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        match term {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
