//! Runs a local stack until Ctrl-C / SIGTERM, printing its endpoints as one JSON line.
//!
//! `cargo run -p tenantry-gateway --example local_stack`

use tenantry_gateway::{run_until_signal, StackOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    run_until_signal(StackOptions::default(), |stack| {
        let info = serde_json::json!({
            "endpoint": stack.endpoint(),
            "motoEndpoint": stack.moto_endpoint(),
            "kubeEndpoint": stack.kube_endpoint(),
            "region": stack.region(),
            "startedInMs": stack.started_in().as_millis() as u64,
            "motoLog": stack.moto_log(),
        });
        println!("{info}");
    })
    .await
}
