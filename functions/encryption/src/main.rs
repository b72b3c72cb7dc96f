//! Lambda `encryption`: the encryption phase, [`tenantry::phases::encryption::handle`].

use tenantry::phases::encryption;
use tenantry::plan::Phase;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tenantry::functions::lambda::run_phase(Phase::Encryption, encryption::handle).await
}
