//! Lambda `drift`: [`tenantry::functions::drift::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tenantry::functions::lambda::run(tenantry::functions::drift::handle).await
}
