//! Urgent alerts ahead of a full queue (issue 19): while B takes in the catch-up step's backlog (A's
//! outbox holding every one of those envelopes for B), A's people file urgent reports, five a
//! second, each in its own request; each is timed from A's answer to its event on B's live stream.
//! The backlog, its size and B's intake are the catch-up step's; these reports add five a second
//! to what B takes in, and are left out of its count.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::events::StreamClient;
use crate::nodes::NodeProcess;
use crate::report::{Figure, Results};
use crate::stats::Rng;
use crate::workload::{Place, content, now};

const SECTION: &str = "5b. Urgent alerts ahead of a full queue";

/// Urgent reports filed a second while the backlog drains.
const RATE: f64 = 5.0;

/// Urgent reports being filed at A and watched for on B's stream.
pub struct UrgentProbe {
    stream: StreamClient,
    stop: Arc<AtomicBool>,
    filed: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<HashMap<String, Instant>>,
}

impl UrgentProbe {
    /// Opens B's stream and starts filing urgent reports at A.
    pub async fn start(http: &reqwest::Client, a: &NodeProcess, b: &NodeProcess) -> anyhow::Result<Self> {
        let stream = StreamClient::open_at(http, b, true).await?;
        let (stop, filed) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let (http, url, token) = (http.clone(), a.url("/api/v1/reports"), a.token.clone());
        let task = {
            let (stop, filed) = (stop.clone(), filed.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / RATE));
                let mut rng = Rng::new(911);
                let mut sent = HashMap::new();
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let mut body = content(&mut rng, now() - chrono::Duration::minutes(1), Place::Norrkoping);
                    body.urgent = true;
                    body.title = "Ongoing violence at the shopping centre".into();
                    let at = Instant::now();
                    let answer = http.post(&url).bearer_auth(&token).json(&body).send().await;
                    let id = match answer {
                        Ok(r) if r.status().is_success() => r.json::<serde_json::Value>().await.ok(),
                        _ => None,
                    };
                    if let Some(id) = id.as_ref().and_then(|v| v["id"].as_str()) {
                        sent.insert(id.to_owned(), at);
                        filed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                sent
            })
        };
        Ok(Self { stream, stop, filed, task })
    }

    /// Stops filing (the one on its way still counts); answers how many A has accepted.
    pub async fn stop_filing(&self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        while !self.task.is_finished() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.filed()
    }

    /// How many urgent reports A has accepted so far.
    pub fn filed(&self) -> usize {
        self.filed.load(Ordering::Relaxed)
    }

    /// Stops filing if it has not stopped, and adds the figures: filed-to-shown at B, p50 and p99,
    /// against 1 s.
    pub async fn finish(self, results: &mut Results, engine: &str, backlog: usize) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        let sent = self.task.await?;
        let latencies = self.stream.latencies(&sent, Duration::from_secs(15)).await;
        self.stream.close();
        let label = format!("{engine}: urgent report filed at A to shown on B's stream, {backlog} queued for B");
        match (latencies.p50(), latencies.p99()) {
            (Some(p50), Some(p99)) => {
                results.add(Figure::new(SECTION, format!("{label}, p50"), p50, "ms"));
                results.add(
                    Figure::new(SECTION, format!("{label}, p99"), p99, "ms")
                        .target("< 1 000 ms", |v, _| v < 1_000.0)
                        .note(format!(
                            "{} urgent reports filed at {RATE}/s while B took in the backlog; {} seen on B's stream \
                             (the rest not within 15 s)",
                            sent.len(),
                            latencies.len()
                        )),
                );
            }
            _ => results.add(Figure::missing(SECTION, label, "ms", "no urgent report was shown at B")),
        }
        Ok(())
    }
}
