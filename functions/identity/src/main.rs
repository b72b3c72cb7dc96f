//! Lambda `identity`: the identity phase, [`tenantry::phases::identity::handle`].

use tenantry::phases::identity;
use tenantry::plan::Phase;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tenantry::functions::lambda::run_phase(Phase::Identity, identity::handle).await
}
