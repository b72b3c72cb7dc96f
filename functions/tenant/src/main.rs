//! Lambda `tenant`: see `tenantry::functions::invoke`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tenantry::functions::lambda::run("tenant").await
}
