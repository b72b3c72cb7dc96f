//! Lambda `observability`: the observability phase, [`tenantry::phases::observability::handle`].

use tenantry::phases::observability;
use tenantry::plan::Phase;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tenantry::functions::lambda::run_phase(Phase::Observability, observability::handle).await
}
