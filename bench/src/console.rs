//! The console (issue 17): how long the situation picture takes to reach a drawn map in headless
//! Chromium with 5 000 reports in its window (the browser's own clock, from the navigation's start
//! to the page's `lagesbild:map-drawn` mark), and how long the node takes to render each console
//! page (p99 over many requests from a client on loopback, the time until the whole page arrived).
//! Chromium and playwright-core are what `tests/run` installs; without them the step fails, saying so.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use crate::nodes::{Backend, Database, MUNICIPALITY, NodeProcess};
use crate::report::{Figure, Results};
use crate::stats::Latencies;
use crate::workload::{Until, file_reports, now};

const SECTION: &str = "10. The console";

/// How much to measure.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Reports in the picture's window.
    pub reports: usize,
    /// Requests per page for the render times.
    pub renders: usize,
    /// Page loads in the browser.
    pub loads: usize,
}

pub async fn run(
    results: &mut Results,
    http: &reqwest::Client,
    work: &Path,
    logs: &Path,
    backend: Backend,
    sizes: Sizes,
) -> anyhow::Result<()> {
    let engine = backend.name();
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/console");
    anyhow::ensure!(Path::new("/usr/bin/chromium").exists(), "Chromium is not installed (tests/run installs it)");
    anyhow::ensure!(
        tests.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed in tests/console (tests/run runs npm ci there)"
    );
    println!("  {engine}: {} reports filed, then each page rendered {} times...", sizes.reports, sizes.renders);
    let dir = work.join(format!("console-{engine}"));
    let db = Arc::new(Database::create(backend, &dir, "console").await?);
    let mut node = NodeProcess::start(MUNICIPALITY, &dir.join("node"), db, logs).await?;
    let filing = file_reports(http, &node, 8, Until::Count(sizes.reports)).await;
    anyhow::ensure!(filing.accepted == sizes.reports, "filing failed: {}", filing.first_error.unwrap_or_default());
    let codes = sign_in_codes(&node, 2).await?;

    let cookie = session_cookie(&node, &codes[0]).await?;
    let report: serde_json::Value = node.call(http, reqwest::Method::GET, "/api/v1/situation?limit=1", None).await?;
    let id = report["reports"][0]["id"].as_str().context("a report in the picture")?.to_owned();
    let pages = [
        "/console/".to_owned(),
        "/console/patrol?window=24h".to_owned(),
        "/console/reports/new".to_owned(),
        format!("/console/reports/{id}"),
        "/console/agreements".to_owned(),
        "/console/partners".to_owned(),
        "/console/audit".to_owned(),
        "/console/me".to_owned(),
    ];
    for page in &pages {
        let mut latencies = Latencies::default();
        for _ in 0..sizes.renders {
            let sent = Instant::now();
            let response = http.get(node.url(page)).header("Cookie", &cookie).send().await?;
            anyhow::ensure!(response.status().is_success(), "{page} answered {}", response.status());
            let _ = response.bytes().await?;
            latencies.push(sent.elapsed());
        }
        let p99 = latencies.p99().context("no render was timed")?;
        results.add(
            Figure::new(SECTION, format!("{engine}: {page} rendered, p99"), p99, "ms")
                .target("< 50 ms", |v, _| v < 50.0)
                .note(format!("{} requests, p50 {:.1} ms", latencies.len(), latencies.p50().unwrap_or_default())),
        );
    }

    println!("  {engine}: the picture page in headless Chromium, {} loads...", sizes.loads);
    let picture = node.url("/console/?window=24h");
    let signin = node.url(&format!("/console/signin?code={}", codes[1]));
    let loads = sizes.loads.to_string();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node").args(["measure.mjs", &signin, &picture, &loads]).current_dir(&tests).output()
    })
    .await?
    .context("node runs tests/console/measure.mjs")?;
    anyhow::ensure!(output.status.success(), "the browser failed: {}", String::from_utf8_lossy(&output.stderr));
    let measured: serde_json::Value = serde_json::from_slice(&output.stdout).context("the browser's figures")?;
    let ms: Vec<f64> = measured["ms"].as_array().context("ms")?.iter().filter_map(|v| v.as_f64()).collect();
    let drawn = measured["drawn"].as_u64().unwrap_or_default();
    let worst = ms.iter().copied().fold(0.0, f64::max);
    let mut sorted = ms.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or_default();
    results.add(
        Figure::new(
            SECTION,
            format!("{engine}: picture page to a drawn map, {} reports, worst of {} loads", sizes.reports, ms.len()),
            worst,
            "ms",
        )
        .target("< 1 000 ms (the browser's own timing)", |v, _| v < 1000.0)
        .note(format!("median {median:.0} ms; {drawn} reports drawn; headless Chromium 1366x860 on this machine")),
    );
    anyhow::ensure!(drawn as usize >= sizes.reports, "the map drew {drawn} of {} reports", sizes.reports);
    node.stop().await?;
    Ok(())
}

/// Single-use sign-in codes with every role, issued in the node's database as the demo issues them.
async fn sign_in_codes(node: &NodeProcess, count: usize) -> anyhow::Result<Vec<String>> {
    let config = node.node_config()?;
    let store = lagesbild::store::Store::open(&config.database).await?;
    let roles = lagesbild::domain::Role::ALL.into_iter().collect();
    let mut codes = Vec::new();
    for _ in 0..count {
        codes.push(lagesbild::auth::session::issue_code(&store, &roles, now()).await?);
    }
    Ok(codes)
}

/// The session cookie a sign-in code opens (read from the sign-in's own answer, not followed).
async fn session_cookie(node: &NodeProcess, code: &str) -> anyhow::Result<String> {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let answer = client.get(node.url(&format!("/console/signin?code={code}"))).send().await?;
    let cookie = answer
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("the sign-in set no session cookie")?;
    Ok(cookie.to_owned())
}
