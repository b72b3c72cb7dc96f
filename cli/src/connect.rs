//! Where the commands that talk to AWS connect: the local stack started by `tenantry dev up`
//! when one is running, an explicit `--endpoint`, or else real AWS through the standard
//! credential chain.

use crate::stackfile;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// Directory of the running local stack's record (see `tenantry dev up`).
    #[arg(
        long,
        env = "TENANTRY_STATE_DIR",
        default_value = ".tenantry",
        global = true
    )]
    pub state_dir: PathBuf,
    /// AWS endpoint to use instead of the local stack or AWS (e.g. http://127.0.0.1:4566).
    #[arg(long, env = "TENANTRY_AWS_ENDPOINT", global = true)]
    pub endpoint: Option<String>,
    /// The DynamoDB state table.
    #[arg(long, env = "TENANTRY_TABLE", default_value = tenantry::deps::DEFAULT_TABLE, global = true)]
    pub table: String,
}

/// A resolved connection.
pub struct Connected {
    pub aws: aws_config::SdkConfig,
    pub table: String,
    /// Where we connected, for messages.
    pub target: String,
}

impl Connection {
    pub async fn connect(&self) -> anyhow::Result<Connected> {
        if let Some(endpoint) = &self.endpoint {
            let region = std::env::var("AWS_REGION")
                .unwrap_or_else(|_| tenantry::aws::DEFAULT_REGION.to_owned());
            return Ok(Connected {
                aws: tenantry::aws::local(endpoint, &region, "testing").await,
                table: self.table.clone(),
                target: endpoint.clone(),
            });
        }
        if let Some(stack) = stackfile::read(&self.state_dir)? {
            return Ok(Connected {
                aws: tenantry::aws::local(&stack.aws_endpoint, &stack.region, "testing").await,
                table: stack.table_name,
                target: format!("local stack {}", stack.aws_endpoint),
            });
        }
        Ok(Connected {
            aws: tenantry::aws::load_from_env().await,
            table: self.table.clone(),
            target: "AWS".to_owned(),
        })
    }
}

impl Connected {
    pub fn store(&self) -> tenantry::store::Store {
        tenantry::store::Store::from_config(&self.aws, &self.table)
    }
}
