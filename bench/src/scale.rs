//! A national federation's scale of agreements: one node in 500 active agreements with 500
//! partners (the shape of a federation of some 3 000 nodes), each report reaching the 20 partners
//! whose agreements' flows cover the place it happened, against the same node with one agreement
//! for those 20. The partners are real identities that sign their agreements with their own keys
//! and send the signatures over mutual TLS, but do not run (as in the fan-out step): what is
//! measured is what the agreements cost the filing, not the delivery. The same node, the same
//! database and the same reports in both phases; only the 499 other agreements differ. Its memory
//! is read while it files.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;

use crate::memory::{Sampler, rss};
use crate::nodes::{Backend, Database, MUNICIPALITY, NodeProcess};
use crate::publish::{NORRKOPING, absent_partners, queued_envelopes, share_with};
use crate::report::{Figure, Results};
use crate::stats::Latencies;
use crate::workload::{Until, file_reports};

const SECTION: &str = "2c. Scale of agreements (one node in 500 agreements with 500 partners)";

/// Kiruna's municipality code: far from the workload's reports, so nothing filed flows there.
const KIRUNA: &str = "2584";

/// How big the federation is.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Agreements (and partners) of the node.
    pub agreements: usize,
    /// Partners each report reaches.
    pub reached: usize,
    /// Reports filed one at a time in each phase.
    pub reports: usize,
}

/// What one phase measured.
struct Phase {
    latencies: Latencies,
    accepted: usize,
    queued: i64,
    peak_rss: Option<f64>,
}

/// Files reports at a node with one agreement, then with `sizes.agreements`.
pub async fn run(
    results: &mut Results,
    http: &reqwest::Client,
    work: &Path,
    logs: &Path,
    backend: Backend,
    sizes: Sizes,
) -> anyhow::Result<()> {
    let engine = backend.name();
    let Sizes { agreements, reached, reports } = sizes;
    let dir = work.join(format!("scale-{engine}"));
    let db = Arc::new(Database::create(backend, &dir, "scale").await?);
    let mut node = NodeProcess::start(MUNICIPALITY, &dir.join("node"), db, logs).await?;
    println!("  {engine}: {agreements} partners made and their cards imported...");
    let started = Instant::now();
    let partners = absent_partners(&dir, agreements)?;
    for partner in &partners {
        node.call(http, reqwest::Method::POST, "/api/v1/partners", Some(&partner.card)).await?;
    }
    let (near, far) = partners.split_at(reached);
    let near: Vec<_> = near.iter().collect();
    share_with(http, &node, &near, "bench-scale-0000", NORRKOPING).await?;
    println!("    in {:.1} s; one agreement for {reached} of them: filing {reports} reports...", secs(started));
    let one = file(http, &node, reports, 0).await?;

    println!("  {engine}: {} more agreements, each with one of the other partners, for Kiruna...", agreements - 1);
    let started = Instant::now();
    for i in 1..agreements {
        let partner = &far[(i - 1) % far.len()];
        share_with(http, &node, &[partner], &format!("bench-scale-{i:04}"), KIRUNA).await?;
        if i % 100 == 0 {
            println!("    {i} of {} in force...", agreements - 1);
        }
    }
    let idle = node.pid().and_then(rss).map(|r| r.resident);
    println!("    in {:.1} s; filing the same {reports} reports again...", secs(started));
    let many = file(http, &node, reports, one.queued).await?;
    node.stop().await?;

    for (phase, label) in [(&one, "1 agreement"), (&many, "agreements")] {
        let expected = (phase.accepted * reached) as i64;
        if phase.queued != expected {
            bail!("{label}: {} envelopes queued for {} reports; expected {expected}", phase.queued, phase.accepted);
        }
    }
    let with = |n: usize| format!("{engine}: filing p99, {n} agreement(s)");
    let (Some(one99), Some(many99), Some(one50), Some(many50)) =
        (one.latencies.p99(), many.latencies.p99(), one.latencies.p50(), many.latencies.p50())
    else {
        bail!("no report was accepted");
    };
    results.add(Figure::new(SECTION, with(1), one99, "ms").note(format!(
        "p50 {one50:.2} ms; {} reports filed one at a time, each reaching {reached} partners ({} envelopes, checked)",
        one.accepted, one.queued
    )));
    results.add(
        Figure::new(SECTION, with(agreements), many99, "ms")
            .ceiling("the same node with 1 agreement, p99", Some(one99), "ms")
            .target("within 2x of one agreement's", |_, r| r.is_some_and(|r| r <= 2.0))
            .note(format!(
                "p50 {many50:.2} ms; {agreements} partners, each report reaching the same {reached} ({} envelopes, \
                 checked)",
                many.queued
            )),
    );
    if let Some(idle) = idle {
        results.add(
            Figure::new(SECTION, format!("{engine}: RSS with {agreements} agreements in force, idle"), idle, "MB")
                .target("< 250 MB", |v, _| v < 250.0),
        );
    }
    if let Some(peak) = many.peak_rss {
        results.add(
            Figure::new(SECTION, format!("{engine}: RSS peak while filing, {agreements} agreements"), peak, "MB")
                .target("< 250 MB", |v, _| v < 250.0)
                .note(one.peak_rss.map_or(String::new(), |p| format!("{p:.1} MB with one agreement"))),
        );
    }
    Ok(())
}

/// Files `reports` reports one at a time and counts the envelopes queued beyond `before`.
async fn file(http: &reqwest::Client, node: &NodeProcess, reports: usize, before: i64) -> anyhow::Result<Phase> {
    let sampler = Sampler::start(node.pid().into_iter().collect());
    let filing = file_reports(http, node, 1, Until::Count(reports)).await;
    let peak_rss = sampler.stop().await.first().copied();
    if filing.failed > 0 {
        bail!("{} of {reports} filings refused: {}", filing.failed, filing.first_error.unwrap_or_default());
    }
    let queued = queued_envelopes(node).await? - before;
    Ok(Phase { latencies: filing.latencies, accepted: filing.accepted, queued, peak_rss })
}

fn secs(started: Instant) -> f64 {
    started.elapsed().as_secs_f64()
}
