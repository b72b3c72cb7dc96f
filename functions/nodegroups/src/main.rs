//! Lambda `nodegroups`: the nodegroups phase, [`tenantry::phases::nodegroups::handle`].

use tenantry::phases::nodegroups;
use tenantry::plan::Phase;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tenantry::functions::lambda::run_phase(Phase::Nodegroups, nodegroups::handle).await
}
