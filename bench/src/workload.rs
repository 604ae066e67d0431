//! What the benchmark files: report-sized situation reports modelled on the tests' and the demo's
//! (Norrköping, municipality 0581, the categories the guards' agreement shares), and the client
//! side of filing them through `POST /api/v1/reports`, by any number of concurrent clients, with
//! each request's latency.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lagesbild::domain::{
    Action, Category, Location, OrgId, Person, PersonRole, Report, ReportContent, ReportId, Severity, Site, SiteKind,
    Status, Tlp, Version,
};

use crate::nodes::NodeProcess;
use crate::stats::{Latencies, Rng};

/// The area the situation query asks about: central Norrköping (min_lon,min_lat,max_lon,max_lat).
pub const QUERY_BBOX: (f64, f64, f64, f64) = (16.0, 58.5, 16.3, 58.7);

/// Categories the municipality-guards agreement lets flow.
const SHARED: [Category; 5] =
    [Category::Vandalism, Category::Burglary, Category::Theft, Category::Fire, Category::SuspiciousActivity];

/// Where a generated report happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Inside [`QUERY_BBOX`], municipality 0581: shared with the guards.
    Norrkoping,
    /// Anywhere in Sweden, any category.
    Sweden,
}

/// A report's content observed at `observed_at`, about 700 bytes of JSON like a real one.
pub fn content(rng: &mut Rng, observed_at: DateTime<Utc>, place: Place) -> ReportContent {
    let n = rng.next_u64() % 100_000;
    let (lat, lon, municipality, category, tlp) = match place {
        Place::Norrkoping => {
            let (w, s, e, north) = QUERY_BBOX;
            let category = SHARED[rng.below(SHARED.len())];
            (rng.between(s, north), rng.between(w, e), "0581".to_owned(), category, Tlp::Amber)
        }
        Place::Sweden => {
            let category = Category::ALL[rng.below(Category::ALL.len())];
            let tlp = [Tlp::Clear, Tlp::Green, Tlp::Amber][rng.below(3)];
            (rng.between(55.3, 69.0), rng.between(11.0, 24.0), format!("{:04}", 100 + rng.below(2400)), category, tlp)
        }
    };
    let persons = if n.is_multiple_of(5) {
        vec![Person {
            role: PersonRole::Witness,
            name: Some("Anna Andersson".into()),
            age: Some(44),
            description: None,
        }]
    } else {
        Vec::new()
    };
    ReportContent {
        observed_at,
        observed_until: None,
        category,
        urgent: false,
        severity: [Severity::Minor, Severity::Moderate, Severity::Severe][rng.below(3)],
        status: Status::Ongoing,
        title: format!("Broken windows at school {n}"),
        description: "Two windows on the east side smashed; glass on the schoolyard. The caretaker was told \
                      and the area is cordoned off until the glazier comes."
            .into(),
        location: Location {
            lat,
            lon,
            place_name: Some(format!("Hageby {}", n % 40)),
            address: Some(format!("Hagebygatan {}", n % 120)),
            site: Some(Site { kind: SiteKind::School, name: Some(format!("Hagebyskolan {}", n % 40)) }),
            municipality_code: Some(municipality),
        },
        persons,
        actions: vec![Action { what: "Guard patrol secured the area".into(), by: Some("Patrol 2".into()), at: None }],
        tlp,
        expires_at: None,
    }
}

/// A stored version 1 of a report filed by `origin` at `filed_at`, as the node would have made it.
pub fn filed(origin: &OrgId, content: ReportContent, filed_at: DateTime<Utc>) -> Report {
    Report {
        id: ReportId::new_at(filed_at),
        origin: origin.clone(),
        version: Version::FIRST,
        created_at: filed_at,
        updated_at: filed_at,
        retracted: None,
        filed_by: Some("token:bench".into()),
        content,
    }
}

/// How long a batch of clients keeps filing.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// This many reports in all.
    Count(usize),
    /// For this long.
    Elapsed(Duration),
}

/// What filing reports achieved.
#[derive(Debug, Default)]
pub struct Filing {
    pub accepted: usize,
    pub failed: usize,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub latencies: Latencies,
}

impl Filing {
    pub fn per_second(&self) -> f64 {
        self.accepted as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Files reports at `node` from `clients` concurrent clients (each one request at a time, over a
/// kept-alive connection) until `until`.
pub async fn file_reports(http: &reqwest::Client, node: &NodeProcess, clients: usize, until: Until) -> Filing {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (http, next) = (http.clone(), next.clone());
        let url = node.url("/api/v1/reports");
        let token = node.token.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(0xF11E + client as u64);
            let mut done = Filing::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let more = match until {
                    Until::Count(n) => i < n,
                    Until::Elapsed(d) => started.elapsed() < d,
                };
                if !more {
                    break;
                }
                let body = content(&mut rng, now() - chrono::Duration::hours(1), Place::Norrkoping);
                let sent = Instant::now();
                match http.post(&url).bearer_auth(&token).json(&body).send().await {
                    Ok(r) if r.status() == reqwest::StatusCode::CREATED => {
                        let _ = r.bytes().await;
                        done.latencies.push(sent.elapsed());
                        done.accepted += 1;
                    }
                    Ok(r) => {
                        done.failed += 1;
                        let status = r.status();
                        let text = r.text().await.unwrap_or_default();
                        done.first_error
                            .get_or_insert(format!("{status}: {}", text.chars().take(300).collect::<String>()));
                    }
                    Err(e) => {
                        done.failed += 1;
                        done.first_error.get_or_insert(e.to_string());
                    }
                }
            }
            done
        }));
    }
    let mut all = Filing::default();
    for task in tasks {
        if let Ok(done) = task.await {
            all.accepted += done.accepted;
            all.failed += done.failed;
            if all.first_error.is_none() {
                all.first_error = done.first_error;
            }
            all.latencies.extend(done.latencies);
        }
    }
    all.elapsed = started.elapsed();
    all
}

/// Files `count` reports at `node`, `rate` a second, each in its own request; answers when each was
/// sent, by the id the node gave it.
pub async fn file_paced(
    http: &reqwest::Client,
    node: &NodeProcess,
    rate: f64,
    count: usize,
) -> anyhow::Result<HashMap<String, Instant>> {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut rng = Rng::new(160);
    let mut requests = Vec::new();
    for _ in 0..count {
        tick.tick().await;
        let body = content(&mut rng, now() - chrono::Duration::minutes(30), Place::Norrkoping);
        let (http, url, token) = (http.clone(), node.url("/api/v1/reports"), node.token.clone());
        requests.push(tokio::spawn(async move {
            let sent = Instant::now();
            let filed: serde_json::Value =
                http.post(&url).bearer_auth(&token).json(&body).send().await.ok()?.json().await.ok()?;
            Some((filed["id"].as_str()?.to_owned(), sent))
        }));
    }
    let mut sent = HashMap::new();
    for request in futures_util::future::join_all(requests).await {
        if let Ok(Some((id, at))) = request {
            sent.insert(id, at);
        }
    }
    anyhow::ensure!(!sent.is_empty(), "no report was filed");
    Ok(sent)
}

/// The time now, from the library's one sanctioned clock.
pub fn now() -> DateTime<Utc> {
    lagesbild::clock::Clock::now(&lagesbild::clock::SystemClock)
}

/// Starts this binary's `subcommand` with `flags` (name, value) at the lowest CPU priority
/// (`nice -n 19`), its output piped: a load that stands for clients on their own machines, so that
/// what it costs the two cores shared with the node is not counted as the node's. `what` names it
/// in errors.
pub fn start_at_lowest_priority(
    subcommand: &str,
    flags: &[(&str, String)],
    what: &str,
) -> anyhow::Result<std::process::Child> {
    use anyhow::Context;
    let exe = std::env::current_exe().with_context(|| format!("cannot find this program to start {what}"))?;
    std::process::Command::new("nice")
        .args(["-n", "19"])
        .arg(exe)
        .arg(subcommand)
        .args(flags.iter().flat_map(|(name, value)| [*name, value.as_str()]))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {what} (is `nice` installed?)"))
}
