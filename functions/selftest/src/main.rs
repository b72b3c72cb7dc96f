//! Lambda `selftest`: [`tenantry::functions::selftest::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tenantry::functions::lambda::run(tenantry::functions::selftest::handle).await
}
