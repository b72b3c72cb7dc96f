//! Lambda `tenant`: the tenant phase, [`tenantry::phases::tenant::handle`].

use tenantry::phases::tenant;
use tenantry::plan::Phase;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tenantry::functions::lambda::run_phase(Phase::Tenants, tenant::handle).await
}
