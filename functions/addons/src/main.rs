//! Lambda `addons`: the addons phase, [`tenantry::phases::addons::handle`].

use tenantry::phases::addons;
use tenantry::plan::Phase;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tenantry::functions::lambda::run_phase(Phase::Addons, addons::handle).await
}
