//! Refusals anyone can cause at will, counted instead of written one by one: a handshake with a
//! key no partner owns (a stranger needs no key of ours for that), and an envelope deferred before
//! its signature could be checked (a key not known here, a clock apart). The first refusal of a
//! kind from a source in a minute, by the node's clock, is audited at once; the rest of that
//! minute become one entry with their count when the minute is over. At most [`MAX_SOURCES`]
//! sources are told apart in a minute; refusals from further ones are counted together. A flood,
//! however fast, so adds at most `2 × MAX_SOURCES + 1` entries a minute for each kind of event,
//! and never waits for the database: noting a refusal takes a lock and bumps a counter.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::domain::audit::AuditEvent;
use crate::store::Store;

/// How many sources a minute's tally tells apart.
pub const MAX_SOURCES: usize = 20;

/// How often the writer looks whether a minute is over.
const CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The refusals of the current minute, and the entries waiting to be written.
pub struct RefusalTally {
    clock: Arc<dyn Clock>,
    state: Mutex<Tally>,
    /// Wakes the writer when an entry is waiting.
    wake: Notify,
}

/// One event from one source, of one kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Source {
    event: String,
    source: String,
    kind: String,
}

/// What one source did this minute after its first refusal (which was written at once).
struct Later {
    more: u64,
    actor: String,
    partner: Option<String>,
}

#[derive(Default)]
struct Tally {
    /// The minute counted, in minutes since the epoch.
    minute: i64,
    sources: HashMap<Source, Later>,
    /// Refusals from sources beyond the first [`MAX_SOURCES`], by event.
    others: HashMap<String, u64>,
    /// Entries to write, oldest first.
    due: Vec<AuditEvent>,
}

impl RefusalTally {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { clock, state: Mutex::new(Tally::default()), wake: Notify::new() }
    }

    /// Counts `first`, a refusal of `kind` from `source`; answers it when it is the first of its
    /// kind from that source this minute, to be written by the caller (in its own transaction).
    pub fn note(&self, source: &str, kind: &str, first: AuditEvent) -> Option<AuditEvent> {
        let minute = minute_of(self.clock.now());
        let mut tally = self.lock();
        tally.roll(minute);
        let key = Source { event: first.event.clone(), source: source.to_owned(), kind: kind.to_owned() };
        if let Some(later) = tally.sources.get_mut(&key) {
            later.more += 1;
            return None;
        }
        if tally.sources.len() >= MAX_SOURCES {
            *tally.others.entry(first.event).or_default() += 1;
            return None;
        }
        let later = Later { more: 0, actor: first.actor.clone(), partner: first.partner.clone() };
        tally.sources.insert(key, later);
        Some(first)
    }

    /// Counts a refusal like [`Self::note`], and has the first of its kind written by the writer:
    /// for refusals that happen where no database can be waited for (a TLS handshake).
    pub fn note_and_write(&self, source: &str, kind: &str, first: AuditEvent) {
        if let Some(event) = self.note(source, kind, first) {
            self.lock().due.push(event);
            self.wake.notify_one();
        }
    }

    /// Writes waiting entries as they come, and each minute's counts once it is over.
    pub fn spawn_writer(self: Arc<Self>, store: Store) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECK_EVERY);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = self.wake.notified() => {}
                }
                let due = {
                    let mut tally = self.lock();
                    tally.roll(minute_of(self.clock.now()));
                    std::mem::take(&mut tally.due)
                };
                self.write(&store, due).await;
            }
        })
    }

    /// Writes everything counted so far, the current minute's counts too: at a graceful stop.
    pub async fn flush(&self, store: &Store) {
        let due = {
            let mut tally = self.lock();
            let next = tally.minute + 1;
            tally.roll(next);
            std::mem::take(&mut tally.due)
        };
        self.write(store, due).await;
    }

    async fn write(&self, store: &Store, due: Vec<AuditEvent>) {
        if due.is_empty() {
            return;
        }
        if let Err(error) = store.record_audits(&due, self.clock.now()).await {
            tracing::warn!(%error, entries = due.len(), "could not audit refusals");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Tally {
    /// Closes the minute counted if `minute` is a later one: its counts become entries.
    fn roll(&mut self, minute: i64) {
        if minute <= self.minute {
            return;
        }
        let from = DateTime::from_timestamp(self.minute * 60, 0).unwrap_or_default().format("%Y-%m-%d %H:%M UTC");
        let mut sources: Vec<(Source, Later)> = self.sources.drain().filter(|(_, later)| later.more > 0).collect();
        sources.sort_by(|a, b| (&a.0.event, &a.0.source, &a.0.kind).cmp(&(&b.0.event, &b.0.source, &b.0.kind)));
        for (key, later) in sources {
            let mut event = AuditEvent::new(&key.event, &later.actor).detail(format!(
                "{} more like this ({}) from {} in the minute from {from}",
                later.more, key.kind, key.source
            ));
            if let Some(partner) = later.partner {
                event = event.partner(partner);
            }
            self.due.push(event);
        }
        let mut others: Vec<(String, u64)> = self.others.drain().collect();
        others.sort();
        for (event, count) in others {
            self.due.push(
                AuditEvent::new(&event, "unknown").detail(format!(
                    "{count} more from sources beyond the first {MAX_SOURCES} in the minute from {from}"
                )),
            );
        }
        self.minute = minute;
    }
}

fn minute_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;

    fn refused(source: &str) -> AuditEvent {
        AuditEvent::new("federation.handshake_refused", "unknown").object(source.as_bytes())
    }

    #[test]
    fn a_flood_from_many_sources_adds_at_most_two_entries_a_source_and_one_for_the_rest() {
        let clock = Arc::new(FixedClock::at(DateTime::from_timestamp(1_800_000_000, 0).unwrap()));
        let tally = RefusalTally::new(clock.clone());
        let mut at_once = 0;
        for _ in 0..50 {
            for source in 0..(MAX_SOURCES + 5) {
                let name = format!("pin-{source}");
                at_once += usize::from(tally.note(&name, "not_pinned", refused(&name)).is_some());
            }
        }
        assert_eq!(at_once, MAX_SOURCES);
        clock.advance(chrono::Duration::seconds(60));
        let mut state = tally.lock();
        state.roll(minute_of(clock.now()));
        let details: Vec<String> = state.due.iter().filter_map(|e| e.detail.clone()).collect();
        assert_eq!(details.len(), MAX_SOURCES + 1, "{details:?}");
        assert!(details[..MAX_SOURCES].iter().all(|d| d.starts_with("49 more like this (not_pinned) from pin-")));
        assert!(details[MAX_SOURCES].starts_with("250 more from sources beyond the first 20"), "{details:?}");
    }
}
