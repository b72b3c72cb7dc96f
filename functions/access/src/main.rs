//! Lambda `access`: the access phase, [`tenantry::phases::access::handle`].

use tenantry::phases::access;
use tenantry::plan::Phase;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tenantry::functions::lambda::run_phase(Phase::Access, access::handle).await
}
