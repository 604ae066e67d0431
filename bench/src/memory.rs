//! Memory of the node processes, from `/proc/<pid>/status`: `VmRSS` (resident now) and `VmHWM`
//! (the most it was resident, since it started). A sampler reads `VmRSS` every 50 ms while a step
//! runs, for the peak within that step; `VmHWM` bounds it from above over the process's life.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Resident and peak-resident memory of a process, in MB (10^6 bytes, as the targets are stated).
#[derive(Debug, Clone, Copy)]
pub struct Rss {
    pub resident: f64,
    pub peak: f64,
}

/// Reads `/proc/<pid>/status`.
pub fn rss(pid: u32) -> Option<Rss> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024.0 / 1e6)
    };
    Some(Rss { resident: field("VmRSS:")?, peak: field("VmHWM:")? })
}

/// Samples the resident memory of some processes until stopped.
pub struct Sampler {
    running: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<f64>>,
}

impl Sampler {
    pub fn start(pids: Vec<u32>) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let flag = running.clone();
        let task = tokio::spawn(async move {
            let mut peaks = vec![0.0f64; pids.len()];
            while flag.load(Ordering::Relaxed) {
                for (peak, pid) in peaks.iter_mut().zip(&pids) {
                    if let Some(now) = rss(*pid) {
                        *peak = peak.max(now.resident);
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            peaks
        });
        Self { running, task }
    }

    /// The highest resident memory seen of each process, in MB, in the order given.
    pub async fn stop(self) -> Vec<f64> {
        self.running.store(false, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}
