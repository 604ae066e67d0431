//! `GET /api/v1/situation/stream`: the situation picture's changes as Server-Sent Events, with the
//! filters of `/situation`. Each event's id is the node's own event number, assigned in commit
//! order, so a client that reconnects with `Last-Event-ID` (or `?last_event_id=`, with the
//! `last_event_id` of a `/situation` page) gets every change it missed, in order and once, then the
//! live ones. Every change is sent, as what happened (`filed`, `updated`, `retracted`, `withdrawn`,
//! `erased`, `deleted`) with the report as it stands now when the caller's filters admit it, and
//! without it when they do not (the client drops the report): so what a client rebuilds is what
//! `/situation` shows it. A client further behind than the node keeps gets `reset` and reloads.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use actix_web::web::{Bytes, BytesMut, Data};
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::Instant;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::{Caller, READERS};
use super::situation::{PictureFilters, names_of, only_known_parameters, parse_filters};
use crate::clock::Clock;
use crate::domain::audit::AuditEvent;
use crate::domain::{SituationQuery, ValidationErrors};
use crate::http::input::{parse_field, query};
use crate::http::problem::{ApiError, AuthProblems, Problem};
use crate::picture_feed::PictureFeed;
use crate::store::Store;

/// How often a quiet stream sends a comment: proxies keep the connection open, and a client that
/// went away is noticed (and its place freed) when one cannot be written.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// Where the stream starts.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// The last event the client has: the `last_event_id` of a `/situation` page, or the id of the
    /// last event it received (the `Last-Event-ID` header, which a reconnecting EventSource sends,
    /// takes precedence). Without either, the stream starts with the next change.
    #[param(value_type = Option<i64>, minimum = 0, maximum = 9_007_199_254_740_991_i64)]
    last_event_id: Option<String>,
}

/// The data of a `reset` event: the client was further behind than the node keeps; it reloads
/// `/situation` and follows on from `last_event_id`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamReset {
    pub reason: String,
    pub last_event_id: i64,
}

/// What an event's `data` holds: a change, or for a `reset`, where to reload from.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum StreamData<'a> {
    Change(&'a crate::picture_feed::Change),
    Reset(&'a StreamReset),
}

/// Follow the situation picture's changes as they happen (Server-Sent Events).
#[utoipa::path(
    get, path = "/api/v1/situation/stream", tag = "situation",
    params(PictureFilters, StreamParams,
        ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event received; sent by a reconnecting EventSource")),
    responses(
        (status = 200, description = "An endless `text/event-stream`: events whose `data` is a StreamData: a Change, or for `reset` a StreamReset; and comment lines as heartbeats", content_type = "text/event-stream", body = ServerSentEvent),
        (status = 422, description = "A filter or the last event id is invalid; `errors` names each", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The node serves as many streams as it may; try again later", body = Problem, content_type = "application/problem+json"),
        AuthProblems,
    ),
    security(("bearer" = ["reporter", "coordinator", "analyst"]))
)]
pub async fn stream(caller: Caller, state: Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    only_known_parameters(&req, &[&names_of::<PictureFilters>(), &names_of::<StreamParams>()])?;
    let (filters, params): (PictureFilters, StreamParams) = (PictureFilters::of(&req)?, query(&req)?);
    let mut errors = ValidationErrors::new();
    let filter = parse_filters(&mut errors, filters);
    let header = req.headers().get("last-event-id").map(|v| v.to_str().map(str::to_owned).unwrap_or_default());
    let from = parse_field(&mut errors, "last_event_id", header.or(params.last_event_id), |s| {
        s.trim().parse::<i64>().ok().filter(|n| *n >= 0).ok_or("must be an event id this node sent")
    });
    let filter = errors.into_result(filter)?.check()?;
    let permit = state.feed.admit().ok_or_else(|| {
        ApiError::Unavailable(format!(
            "this node serves at most {} live streams at once; try again later",
            state.feed.max_streams
        ))
    })?;
    let bounds = state.feed.bounds().await?;
    let mut pending = VecDeque::new();
    let cursor = match from {
        None => bounds.last,
        Some(n) if n + 1 >= bounds.first && n <= bounds.last => n,
        Some(n) => {
            let reason = if n > bounds.last {
                format!("event {n} is newer than any this node has sent ({})", bounds.last)
            } else {
                format!("this node keeps events from {} on; {n} is older", bounds.first)
            };
            pending.push_back(frame(
                "reset",
                None,
                &StreamData::Reset(&StreamReset { reason, last_event_id: bounds.last }),
            ));
            bounds.last
        }
    };
    let sees_persons = state.persons.sees_persons(&caller.roles);
    let opened = AuditEvent::new("situation.stream_opened", &caller.actor).detail(format!(
        "from event {cursor}{}; {}",
        from.map(|n| format!(" (asked for {n})")).unwrap_or_default(),
        if sees_persons { "persons shown" } else { "persons' roles only" }
    ));
    state.store.record_audit(&opened, state.clock.now()).await?;
    let place = Arc::new(Mutex::new(Place { held: Some(permit), waiting_since: None }));
    tokio::spawn(watch_for_stall(
        Arc::downgrade(&place),
        state.feed.stall,
        state.store.clone(),
        state.clock.clone(),
        caller.actor.clone(),
    ));
    let follower = Follower {
        feed: state.feed.clone(),
        clock: state.clock.clone(),
        watch: state.feed.watch(),
        closing: state.feed.closing(),
        filter,
        sees_persons,
        cursor,
        pending,
        heartbeat: tokio::time::interval_at(Instant::now() + HEARTBEAT, HEARTBEAT),
        place,
    };
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        // Set so that no compression layer holds events back to fill a block.
        .insert_header(("Content-Encoding", "identity"))
        .streaming(futures_util::stream::unfold(follower, Follower::next)))
}

/// One client's place in the picture's changes.
struct Follower {
    feed: Arc<PictureFeed>,
    clock: Arc<dyn Clock>,
    watch: watch::Receiver<i64>,
    closing: watch::Receiver<bool>,
    filter: SituationQuery,
    /// Whether the client's roles see the persons in reports.
    sees_persons: bool,
    /// The last event sent.
    cursor: i64,
    pending: VecDeque<Bytes>,
    heartbeat: tokio::time::Interval,
    /// The stream's place among the node's streams, shared with the watch that takes it back from a
    /// client that stalls.
    place: Arc<Mutex<Place>>,
}

/// A stream's place, while its client keeps up.
struct Place {
    /// Held while the stream counts among the node's streams; `None` once the client lost it.
    held: Option<OwnedSemaphorePermit>,
    /// When the stream last gave bytes that have not been taken since (the client's connection is
    /// full until it reads them).
    waiting_since: Option<Instant>,
}

impl Follower {
    /// The next bytes to send: waiting events first, then new ones as they come, with a heartbeat
    /// when nothing happens. A store that fails ends the stream; the client reconnects from where
    /// it was.
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        {
            let mut place = self.place.lock().unwrap_or_else(PoisonError::into_inner);
            place.held.as_ref()?;
            place.waiting_since = None;
        }
        loop {
            if *self.closing.borrow() {
                return None;
            }
            if !self.pending.is_empty() {
                // What is waiting goes in one write: a hundred events cost one syscall, not a hundred.
                let mut all = BytesMut::new();
                for bytes in self.pending.drain(..) {
                    all.extend_from_slice(&bytes);
                }
                self.place.lock().unwrap_or_else(PoisonError::into_inner).waiting_since = Some(Instant::now());
                return Some((Ok(all.freeze()), self));
            }
            self.watch.borrow_and_update();
            match self.feed.after(self.cursor).await {
                Ok(events) if !events.is_empty() => {
                    let now = self.clock.now();
                    for event in events {
                        self.cursor = event.event.seq;
                        let frame = event.rendered(
                            |facts| self.filter.admits(facts, now),
                            self.sees_persons,
                            |change| frame(&change.kind, Some(change.seq), &StreamData::Change(change)),
                        );
                        self.pending.push_back(frame);
                    }
                    continue;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "a live stream ends: its events cannot be read");
                    return None;
                }
            }
            tokio::select! {
                changed = self.watch.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                _ = self.closing.changed() => return None,
                _ = self.heartbeat.tick() => self.pending.push_back(Bytes::from_static(b": heartbeat\n\n")),
            }
        }
    }
}

/// Takes the place back from a stream whose client has accepted nothing for `stall`, and audits
/// it; ends when the stream does. The server asks a stream for more only when the client's
/// connection has room, so the stream itself cannot tell: it would simply not be asked.
async fn watch_for_stall(
    place: Weak<Mutex<Place>>,
    stall: Duration,
    store: Store,
    clock: Arc<dyn Clock>,
    actor: String,
) {
    let every = (stall / 4).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(every).await;
        let Some(place) = place.upgrade() else { return };
        let lost = {
            let mut place = place.lock().unwrap_or_else(PoisonError::into_inner);
            let stalled = place.waiting_since.is_some_and(|since| since.elapsed() >= stall);
            stalled && place.held.take().is_some()
        };
        if lost {
            tracing::info!(%actor, "a live stream's client accepted nothing for {stall:?}; its place is freed");
            let event = AuditEvent::new("situation.stream_dropped", &actor)
                .detail(format!("the client accepted nothing for {} s", stall.as_secs()));
            if let Err(error) = store.record_audit(&event, clock.now()).await {
                tracing::warn!(%error, "the dropped stream could not be audited");
            }
            return;
        }
    }
}

/// One Server-Sent Event: its type, its id if it has one, and its data as one line of JSON.
fn frame(kind: &str, id: Option<i64>, data: &StreamData) -> Bytes {
    let data = serde_json::to_string(data).unwrap_or_else(|_| "{}".to_owned());
    ServerSentEvent { id: id.map(|n| n.to_string()), event: kind.to_owned(), data }.to_bytes()
}

/// One event of the stream as its fields are sent (the OpenAPI 3.2 view of `text/event-stream`).
#[derive(ToSchema)]
pub struct ServerSentEvent {
    /// The event's number; absent on `reset`.
    pub id: Option<String>,
    /// What happened: `filed`, `updated`, `retracted`, `withdrawn`, `erased`, `deleted`, or `reset`.
    pub event: String,
    /// One line of JSON: a StreamData.
    #[schema(content_media_type = "application/json")]
    pub data: String,
}

impl ServerSentEvent {
    pub(crate) fn to_bytes(&self) -> Bytes {
        let id = self.id.as_ref().map(|n| format!("id: {n}\n")).unwrap_or_default();
        Bytes::from(format!("{id}event: {}\ndata: {}\n\n", self.event, self.data))
    }
}
