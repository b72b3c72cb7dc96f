//! Lambda `bootstrap`: the bootstrap phase, [`tenantry::phases::bootstrap::handle`].

use tenantry::phases::bootstrap;
use tenantry::plan::Phase;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tenantry::functions::lambda::run_phase(Phase::Bootstrap, bootstrap::handle).await
}
