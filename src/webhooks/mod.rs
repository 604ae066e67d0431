//! Webhook subscriptions at work. Every quarter of a second the node looks at the picture's new
//! events for each subscription, queues (durably, in the store) those its watch admits and those
//! that take a report its subscriber was told of out of the watch, and POSTs what is due to each
//! target, signed as the Standard Webhooks specification says. A target that does not take a
//! delivery gets it again later, backing off to an hour; the delivery keeps its `webhook-id`
//! (`<subscription>_<event number>`), so a receiver that got it before knows it. Every attempt is
//! audited by subscription, event number and outcome, never by content.

pub mod signature;
pub mod target;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::clock::Clock;
use crate::config::WebhooksSection;
use crate::domain::audit::AuditEvent;
use crate::domain::watch::Watch;
use crate::picture_feed::{Change, PictureFeed};
use crate::store::{DueDelivery, Store, StoreError, SubscriptionRecord, WatchedChange};

/// How often subscriptions are looked at.
const ROUND_EVERY: Duration = Duration::from_millis(250);
/// How long a replica holds the deliveries it claimed.
const CLAIM_SECONDS: i64 = 60;
/// How many deliveries one round claims.
const CLAIM_BATCH: i64 = 100;
/// How long one attempt may take, connection included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between two attempts.
const MAX_BACKOFF_SECONDS: i64 = 3_600;

/// What a target receives: the Standard Webhooks payload shape.
#[derive(Debug, Serialize)]
struct Payload<'a> {
    /// `picture.filed`, `picture.updated`, `picture.retracted`, `picture.withdrawn`,
    /// `picture.erased` or `picture.deleted`.
    #[serde(rename = "type")]
    kind: String,
    timestamp: DateTime<Utc>,
    /// The subscription's name, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    subscription: Option<&'a str>,
    data: Change,
}

/// The subscriptions' worker.
pub struct Webhooks {
    pub store: Store,
    pub feed: Arc<PictureFeed>,
    pub clock: Arc<dyn Clock>,
    pub settings: WebhooksSection,
}

impl Webhooks {
    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(ROUND_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(error) = self.queue_round().await {
                    tracing::warn!(%error, "queueing webhook deliveries failed; trying again");
                }
                if let Err(error) = self.deliver_round().await {
                    tracing::warn!(%error, "delivering webhooks failed; trying again");
                }
            }
        })
    }

    /// Queues, for every subscription, what its watch makes of the events after its cursor.
    pub async fn queue_round(&self) -> Result<(), StoreError> {
        let now = self.clock.now();
        for subscription in self.store.subscriptions().await? {
            let watch: Watch = serde_json::from_str(&subscription.watch)
                .map_err(|e| StoreError::Corrupt(format!("subscription {}: {e}", subscription.id)))?;
            let events = self.feed.after(subscription.cursor).await?;
            let Some(last) = events.last().map(|e| e.event.seq) else { continue };
            let changes: Vec<WatchedChange> = events
                .iter()
                .map(|held| {
                    let event = &held.event;
                    // A webhook goes to a system, not to a person whose role could be checked: persons' roles only.
                    let shown = Change::of(event, |facts| watch.admits(facts, now), false);
                    WatchedChange {
                        seq: event.seq,
                        origin: event.origin.clone(),
                        id: event.id,
                        admits: shown.report.is_some(),
                        payload: payload(&subscription, shown, now),
                    }
                })
                .collect();
            let range = (subscription.cursor, last);
            self.store.queue_watched_changes(&subscription.id, range, &changes, self.settings.queue_limit, now).await?;
        }
        Ok(())
    }

    /// Sends what is due: each subscription's deliveries in order, the subscriptions side by side.
    pub async fn deliver_round(&self) -> Result<(), StoreError> {
        let now = self.clock.now();
        let due =
            self.store.claim_webhook_deliveries(now, chrono::Duration::seconds(CLAIM_SECONDS), CLAIM_BATCH).await?;
        let mut by_subscription: BTreeMap<String, Vec<DueDelivery>> = BTreeMap::new();
        for delivery in due {
            by_subscription.entry(delivery.subscription_id.clone()).or_default().push(delivery);
        }
        let rounds = by_subscription.into_values().map(|deliveries| async move {
            for delivery in deliveries {
                self.attempt(&delivery).await?;
            }
            Ok::<(), StoreError>(())
        });
        for result in futures_util::future::join_all(rounds).await {
            result?;
        }
        Ok(())
    }

    /// One attempt at one delivery, settled and audited.
    async fn attempt(&self, delivery: &DueDelivery) -> Result<(), StoreError> {
        let outcome = tokio::time::timeout(ATTEMPT_TIMEOUT, self.post(delivery))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())));
        let now = self.clock.now();
        let attempt = delivery.attempts + 1;
        let what =
            format!("subscription {}, event {}, attempt {attempt}", delivery.subscription_id, delivery.event_seq);
        match outcome {
            Ok(()) => {
                let audit = AuditEvent::new("webhook.delivered", "node").detail(what);
                self.store.settle_webhook_delivery(delivery, None, &audit, now).await
            }
            Err(error) => {
                let wait = (5i64 << delivery.attempts.clamp(0, 20)).min(MAX_BACKOFF_SECONDS);
                let retry_at = now + chrono::Duration::seconds(wait);
                tracing::info!(subscription = %delivery.subscription_id, %error, wait, "a webhook was not taken");
                let audit = AuditEvent::new("webhook.failed", "node").detail(format!("{what}: {error}"));
                self.store.settle_webhook_delivery(delivery, Some((&error, retry_at)), &audit, now).await
            }
        }
    }

    /// POSTs one delivery to its target, checked again now; the error says why it was not taken.
    async fn post(&self, delivery: &DueDelivery) -> Result<(), String> {
        let target = target::resolve(&delivery.target_url, self.settings.allow_private_targets)
            .await
            .map_err(|e| e.to_string())?;
        let secrets: Vec<signature::Secret> =
            serde_json::from_str(&delivery.secrets).map_err(|e| format!("the subscription's secrets: {e}"))?;
        let now = self.clock.now();
        let id = format!("{}_{}", delivery.subscription_id, delivery.event_seq);
        let timestamp = now.timestamp();
        let client = reqwest::Client::builder()
            .resolve(&target.host, target.addr)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(ATTEMPT_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        let response = client
            .post(target.url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature::signature(&secrets, &id, timestamp, &delivery.payload, now))
            .body(delivery.payload.clone())
            .send()
            .await
            .map_err(|e| format!("the target could not be reached: {e}"))?;
        // Only the status counts; the answer is not read.
        let status = response.status();
        if status.is_success() { Ok(()) } else { Err(format!("the target answered {status}")) }
    }
}

/// The body sent for `change`.
fn payload(subscription: &SubscriptionRecord, change: Change, now: DateTime<Utc>) -> String {
    let body = Payload {
        kind: format!("picture.{}", change.kind),
        timestamp: now,
        subscription: subscription.name.as_deref(),
        data: change,
    };
    serde_json::to_string(&body).unwrap_or_default()
}
