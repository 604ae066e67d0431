//! The picture's changes as they happen, for everyone on this node who follows them (the live
//! stream): one poller per node reads the new events of the store as soon as this process commits a
//! write, and every tenth of a second for what other replicas wrote (the store numbers them in
//! commit order, whichever replica wrote them), and keeps the latest in a ring,
//! so a thousand followers cost one query, not a thousand. A follower that fell behind the ring
//! reads from the store; one that fell behind what the store keeps is told to reload. The poller
//! also prunes the store's events to a bounded number.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use actix_web::web::Bytes;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use utoipa::ToSchema;

use crate::domain::persons::NamesPersons;
use crate::domain::{PictureFacts, PictureReport, ReportId};
use crate::store::{EventBounds, PictureEvent, Store, StoreError};

/// A change of the picture as one follower is shown it: which report changed, how, and the report
/// as it stands now when the follower's filter admits it (absent when it does not, or when the
/// report is gone: the follower drops it).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Change {
    /// The event's number: in commit order, never skipped or repeated.
    pub seq: i64,
    /// `filed`, `updated`, `retracted`, `withdrawn`, `erased` or `deleted`.
    pub kind: String,
    #[schema(value_type = String, format = Uuid)]
    pub id: ReportId,
    pub origin: String,
    /// The version the change made (for a deletion, the last one held).
    pub version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<PictureReport>,
}

impl Change {
    /// `event` as shown to a follower whose filter is `admits`, with the persons in the report, or
    /// only their roles (see [`PersonsAccess`](crate::domain::persons::PersonsAccess)).
    pub fn of(event: &PictureEvent, admits: impl Fn(&PictureFacts) -> bool, sees_persons: bool) -> Self {
        let report = event
            .now
            .as_ref()
            .filter(|(facts, _)| admits(facts))
            .map(|(_, report)| if sees_persons { report.clone() } else { report.without_persons() });
        Self {
            seq: event.seq,
            kind: event.kind.clone(),
            id: event.id,
            origin: event.origin.clone(),
            version: event.version,
            report,
        }
    }
}

/// How often the store is asked for new events when this process writes nothing (other replicas
/// may).
const POLL_EVERY: Duration = Duration::from_millis(100);
/// The least time between two reads, however often this process commits: a burst of filings is
/// read in pages, not one query each.
const POLL_GAP: Duration = Duration::from_millis(5);
/// How many of the latest events are kept in memory.
const RING: usize = 10_000;
/// How many events one read takes at most.
pub const PAGE: i64 = 1_000;
/// How many events the store keeps; a follower further behind must reload the picture.
pub const KEEP: i64 = 100_000;
/// How often the store's events are pruned to [`KEEP`].
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// An event as the feed holds it, with what it is sent as, made once for every follower: as shown
/// with the report and its persons, with the report and only the persons' roles, and without it.
pub struct FeedEvent {
    pub event: PictureEvent,
    with_persons: OnceLock<Bytes>,
    with_roles_only: OnceLock<Bytes>,
    without_report: OnceLock<Bytes>,
}

impl FeedEvent {
    fn new(event: PictureEvent) -> Arc<Self> {
        Arc::new(Self {
            event,
            with_persons: OnceLock::new(),
            with_roles_only: OnceLock::new(),
            without_report: OnceLock::new(),
        })
    }

    /// The event as sent to a follower whose filter `admits` its report (or not), who sees persons
    /// (or not), in the form `render` makes: rendered once per form, however many followers there are.
    pub fn rendered(
        &self,
        admits: impl Fn(&PictureFacts) -> bool,
        sees_persons: bool,
        render: impl FnOnce(&Change) -> Bytes,
    ) -> Bytes {
        let shown = self.event.now.as_ref().is_some_and(|(facts, _)| admits(facts));
        let cell = match (shown, sees_persons) {
            (false, _) => &self.without_report,
            (true, true) => &self.with_persons,
            (true, false) => &self.with_roles_only,
        };
        cell.get_or_init(|| render(&Change::of(&self.event, |_| shown, sees_persons))).clone()
    }
}

/// The picture's latest changes, and the followers' budget.
pub struct PictureFeed {
    store: Store,
    ring: RwLock<Ring>,
    /// The newest event number read from the store.
    head: watch::Sender<i64>,
    streams: Arc<Semaphore>,
    pub max_streams: usize,
    /// How long a follower may accept nothing before it loses its place.
    pub stall: Duration,
    /// Set when the node stops: every follower ends, so that stopping need not wait for them.
    closing: watch::Sender<bool>,
}

/// The latest events, complete after `after`.
#[derive(Default)]
struct Ring {
    after: i64,
    events: VecDeque<Arc<FeedEvent>>,
}

impl PictureFeed {
    /// A feed that starts at the store's newest event; `max_streams` followers at most, each losing
    /// its place when it accepts nothing for `stall`.
    pub async fn start(store: Store, max_streams: usize, stall: Duration) -> Result<Arc<Self>, StoreError> {
        let last = store.picture_event_bounds().await?.last;
        Ok(Arc::new(Self {
            store,
            ring: RwLock::new(Ring { after: last, events: VecDeque::new() }),
            head: watch::Sender::new(last),
            streams: Arc::new(Semaphore::new(max_streams)),
            max_streams,
            stall,
            closing: watch::Sender::new(false),
        }))
    }

    /// Reads new events from the store as they come, and prunes the old ones now and then.
    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut last_prune = tokio::time::Instant::now();
            loop {
                let polled = tokio::time::Instant::now();
                tokio::select! {
                    _ = self.store.next_commit() => {}
                    _ = tokio::time::sleep(POLL_EVERY) => {}
                }
                tokio::time::sleep_until(polled + POLL_GAP).await;
                if let Err(error) = self.poll().await {
                    tracing::warn!(%error, "reading the picture's new events failed; trying again");
                }
                if last_prune.elapsed() >= PRUNE_EVERY {
                    last_prune = tokio::time::Instant::now();
                    match self.store.prune_picture_events(KEEP).await {
                        Ok(0) => {}
                        Ok(pruned) => tracing::info!(pruned, "pruned the picture's oldest events"),
                        Err(error) => tracing::warn!(%error, "pruning the picture's events failed"),
                    }
                }
            }
        })
    }

    /// Takes every new event into the ring and tells the followers.
    async fn poll(&self) -> Result<(), StoreError> {
        loop {
            let last = *self.head.borrow();
            let events = self.store.picture_events_after(last, PAGE).await?;
            let Some(newest) = events.last().map(|e| e.seq) else { return Ok(()) };
            let full = events.len() as i64 == PAGE;
            {
                let mut ring = self.ring.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                ring.events.extend(events.into_iter().map(FeedEvent::new));
                while ring.events.len() > RING {
                    if let Some(dropped) = ring.events.pop_front() {
                        ring.after = dropped.event.seq;
                    }
                }
            }
            self.head.send_replace(newest);
            if !full {
                return Ok(());
            }
        }
    }

    /// Up to [`PAGE`] events after `after`, oldest first: from memory when it holds them.
    pub async fn after(&self, after: i64) -> Result<Vec<Arc<FeedEvent>>, StoreError> {
        {
            let ring = self.ring.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if after >= ring.after {
                let skip = ring.events.partition_point(|e| e.event.seq <= after);
                return Ok(ring.events.iter().skip(skip).take(PAGE as usize).cloned().collect());
            }
        }
        Ok(self.store.picture_events_after(after, PAGE).await?.into_iter().map(FeedEvent::new).collect())
    }

    /// The oldest event the store keeps and the newest.
    pub async fn bounds(&self) -> Result<EventBounds, StoreError> {
        self.store.picture_event_bounds().await
    }

    /// Wakes when a newer event has been read.
    pub fn watch(&self) -> watch::Receiver<i64> {
        self.head.subscribe()
    }

    /// Tells whether the node is stopping.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Ends every follower: the node is stopping.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// A place for one more follower, if the node has one free.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.streams.clone().try_acquire_owned().ok()
    }
}
