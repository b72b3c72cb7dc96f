//! Lambda `selftest`: see `tenantry::functions::selftest`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tenantry::functions::lambda::run(tenantry::functions::selftest::NAME).await
}
