//! `lagesbild health`: asks a running node whether it is alive (`GET /healthz`) or ready
//! (`--ready`, `GET /readyz`: its database answers and is migrated), for a container's health check
//! or an operator's script, so that an image needs no shell and no curl. It exits 0 when the node
//! answers 200, and otherwise says what went wrong and exits 1.

use std::time::Duration;

use anyhow::Context;

/// Ask a running node whether it is healthy (for container health checks).
#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// The node's API.
    #[arg(long, env = "LAGESBILD_HEALTH_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Ask whether the node is ready to serve (its database answers and is migrated), not only alive.
    #[arg(long)]
    ready: bool,
    /// How long to wait for the answer, in seconds.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    timeout: u64,
}

pub fn health(args: HealthArgs) -> anyhow::Result<()> {
    let path = if args.ready { "/readyz" } else { "/healthz" };
    let url = format!("{}{path}", args.url.trim_end_matches('/'));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(args.timeout)).build()?;
        let response = client.get(&url).send().await.with_context(|| format!("{url} does not answer"))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        anyhow::ensure!(status.is_success(), "{url} answered {status}: {}", body.chars().take(500).collect::<String>());
        println!("{url}: {status}");
        Ok(())
    })
}
