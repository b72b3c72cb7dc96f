//! Lambda `finalize`: [`tenantry::functions::finalize::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tenantry::functions::lambda::run(tenantry::functions::finalize::handle).await
}
