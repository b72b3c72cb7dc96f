//! Lambda `catalog`: [`tenantry::functions::catalog::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tenantry::functions::lambda::run(tenantry::functions::catalog::handle).await
}
