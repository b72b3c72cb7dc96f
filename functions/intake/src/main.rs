//! Lambda `intake`: [`tenantry::functions::intake::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tenantry::functions::lambda::run(tenantry::functions::intake::handle).await
}
