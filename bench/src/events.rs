//! A client of a node's live stream (`GET /api/v1/situation/stream`), as a partner's system or an
//! open console reads it: it counts the `filed` events and notes when each report's came. What
//! "visible" means wherever the bench times a report from filing to being seen: in the picture a
//! user of that node is shown, not in a row of its database.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::nodes::NodeProcess;
use crate::stats::Latencies;

/// One client of a node's stream, counting the `filed` events it reads and when each report's came.
pub struct StreamClient {
    arrivals: Arc<std::sync::Mutex<HashMap<String, Instant>>>,
    events: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl StreamClient {
    pub async fn open_at(http: &reqwest::Client, node: &NodeProcess, timed: bool) -> anyhow::Result<Self> {
        Self::open(http, &node.api, &node.token, timed).await
    }

    /// Opens the stream of the node whose API is at `api`; `timed` clients note when each report's
    /// event came (the others only count them).
    pub async fn open(http: &reqwest::Client, api: &str, token: &str, timed: bool) -> anyhow::Result<Self> {
        let response = http
            .get(format!("{api}/api/v1/situation/stream"))
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("the stream at {api}"))?;
        anyhow::ensure!(response.status().is_success(), "the stream at {api} answered {}", response.status());
        let arrivals = Arc::new(std::sync::Mutex::new(HashMap::new()));
        let events = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let task = {
            let (arrivals, events, stop) = (arrivals.clone(), events.clone(), stop.clone());
            tokio::spawn(async move {
                let mut response = response;
                let mut buffer = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let Ok(Some(chunk)) = response.chunk().await else { return };
                    let at = Instant::now();
                    buffer.extend_from_slice(&chunk);
                    // Each event is cut off where it ends, and the buffer moved once per chunk: a
                    // hundred events in one chunk cost one pass, not a hundred.
                    let mut start = 0;
                    while let Some(end) = buffer[start..].windows(2).position(|w| w == b"\n\n") {
                        let block = &buffer[start..start + end];
                        start += end + 2;
                        if !is_filed(block) {
                            continue;
                        }
                        events.fetch_add(1, Ordering::Relaxed);
                        if timed
                            && let Some(id) = report_id(block)
                            && let Ok(mut arrivals) = arrivals.lock()
                        {
                            arrivals.insert(id, at);
                        }
                    }
                    buffer.drain(..start);
                }
            })
        };
        Ok(Self { arrivals, events, stop, task })
    }

    pub fn events(&self) -> usize {
        self.events.load(Ordering::Relaxed)
    }

    /// How long after being sent each report's event came, waiting up to `patience` for the last.
    pub async fn latencies(&self, sent: &HashMap<String, Instant>, patience: Duration) -> Latencies {
        let deadline = Instant::now() + patience;
        loop {
            let seen = self.arrivals.lock().map(|a| sent.keys().filter(|id| a.contains_key(*id)).count()).unwrap_or(0);
            if seen == sent.len() || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut latencies = Latencies::default();
        if let Ok(arrivals) = self.arrivals.lock() {
            for (id, at) in sent {
                if let Some(arrived) = arrivals.get(id) {
                    latencies.push(arrived.saturating_duration_since(*at));
                }
            }
        }
        latencies
    }

    pub fn close(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.abort();
    }
}

/// Whether an event is a `filed` one: its lines are `id`, `event`, `data`, in that order.
fn is_filed(block: &[u8]) -> bool {
    let second = block.iter().position(|b| *b == b'\n').map_or(&[][..], |n| &block[n + 1..]);
    block.starts_with(b"id: ") && second.starts_with(b"event: filed\n")
}

/// The id of the report an event names.
fn report_id(block: &[u8]) -> Option<String> {
    let block = std::str::from_utf8(block).ok()?;
    let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
    let value: serde_json::Value = serde_json::from_str(data).ok()?;
    value["id"].as_str().map(str::to_owned)
}
