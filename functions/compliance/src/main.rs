//! Lambda `compliance`: [`tenantry::functions::compliance::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tenantry::functions::lambda::run(tenantry::functions::compliance::handle).await
}
