//! Lambda `network`: the network phase, [`tenantry::phases::network::handle`].

use tenantry::phases::network;
use tenantry::plan::Phase;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tenantry::functions::lambda::run_phase(Phase::Network, network::handle).await
}
