//! Lambda `cluster`: the cluster phase, [`tenantry::phases::cluster::handle`].

use tenantry::phases::cluster;
use tenantry::plan::Phase;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tenantry::functions::lambda::run_phase(Phase::Cluster, cluster::handle).await
}
