//! Receiving envelopes: `POST /federation/v1/envelopes` takes a batch from a partner and answers for
//! each envelope in order; `GET /federation/v1/feed` serves a partner what was queued for it, for
//! catch-up. Every envelope is checked on its own (signature by the connection's partner, addressed
//! here, inside the time window, under an agreement active here that lets this flow through, and
//! within that flow's rules again) and a refused one goes to the dead-letter table without stopping
//! the batch. The accepted ones are stored in one transaction, each only if newer than what is held.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::Federation;
use super::listener::Peer;
use super::registry::signing_keys;
use super::sharing::freshened;
use crate::crypto::jws::{Jws, JwsError};
use crate::domain::OrgId;
use crate::domain::audit::{AuditEvent, sha256_hex};
use crate::domain::envelope::{ENVELOPE_TYPE, EnvelopeRefusal, check_addressing};
use crate::domain::policy::exceeds;
use crate::domain::view::ReportView;
use crate::http::problem::BodyProblems;
use crate::http::{ApiError, Problem, StrictJson};
use crate::store::{DeadLetter, Lane, ReceiveOutcome, Received};

/// The header a sender's urgent lane marks its deliveries with: taken while this node reads the
/// sender's feed to catch up (an alert must not wait behind the feed), and holding urgent reports
/// only (anything else in it is deferred to the ordinary lane).
pub const URGENT_HEADER: &str = "lagesbild-lane";

/// The most envelopes one delivery may carry, and the largest one envelope may be.
pub const MAX_BATCH: usize = 1_000;
pub const MAX_ENVELOPE_BYTES: usize = 1024 * 1024;
/// The body limit of a delivery.
pub const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;
/// How much of a refused envelope the dead-letter table keeps (its hash names all of it), and
/// how many refusals of one delivery it keeps.
const DEAD_LETTER_CHARS: usize = 2 * 1024;
const MAX_DEAD_LETTERS_PER_BATCH: usize = 100;

/// A delivery: envelopes (JWS JSON serialisation) for this node.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeBatch {
    /// Each a JWS (JSON serialisation) of an envelope, judged on its own: one that is not is
    /// refused in its result, and the others are still taken.
    #[schema(value_type = Vec<serde_json::Value>, max_items = 1000)]
    pub envelopes: Vec<Box<RawValue>>,
}

/// The answer for each envelope of a delivery, in the order they came.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnvelopeResults {
    pub results: Vec<EnvelopeResult>,
}

/// What became of one envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnvelopeResult {
    pub outcome: Outcome,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `stored`, `duplicate` and `older` acknowledge the envelope (the last two changed nothing);
/// `deferred` asks the sender to try again later (this node has not caught up with an agreement
/// or a key, or the clocks are apart); `refused` is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Stored,
    Duplicate,
    Older,
    Deferred,
    Refused,
}

/// Accept a delivery of envelopes from a partner.
#[utoipa::path(
    post, path = "/federation/v1/envelopes", tag = "federation",
    request_body = EnvelopeBatch,
    // The body's problems first: the 413 and 422 of the route's own, below, say more than theirs.
    responses(BodyProblems, (status = 200, description = "An answer for every envelope, in order", body = EnvelopeResults),
        (status = 403, description = "The certificate belongs to no partner", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The delivery is larger than 16 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "More than 1000 envelopes", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The partner sends faster than its rate limit (requests, or envelopes)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "This node is reading the caller's feed to catch up; deliver again later", body = Problem, content_type = "application/problem+json"))
)]
pub async fn receive_envelopes(
    peer: Peer,
    federation: Data<Federation>,
    request: HttpRequest,
    StrictJson(batch): StrictJson<EnvelopeBatch>,
) -> Result<HttpResponse, ApiError> {
    let urgent = request.headers().get(URGENT_HEADER).is_some_and(|v| v.as_bytes() == b"urgent");
    if batch.envelopes.len() > MAX_BATCH {
        return Err(ApiError::Validation(crate::domain::ValidationErrors::single(
            "envelopes",
            format!("at most {MAX_BATCH} envelopes per delivery"),
        )));
    }
    if !urgent && federation.catching_up.includes(&peer.org) {
        return Err(ApiError::Unavailable(
            "this node is reading your feed to catch up and takes these envelopes from there; deliver again later"
                .into(),
        ));
    }
    federation.limits.take_envelopes(&peer.org, batch.envelopes.len())?;
    let raw: Vec<&str> = batch.envelopes.iter().map(|r| r.get()).collect();
    let lane = if urgent { Lane::Urgent } else { Lane::Ordinary };
    let results = receive_batch(&federation, &peer.org, &raw, lane, federation.clock.now()).await?;
    Ok(HttpResponse::Ok().json(EnvelopeResults { results }))
}

/// Checks and stores a batch of envelopes that `peer` delivered (or that this node fetched from
/// its feed) in `lane`; answers for each, in order. In the urgent lane, an envelope whose report is
/// not urgent is deferred: it comes again in the ordinary one.
pub async fn receive_batch(
    federation: &Federation,
    peer: &OrgId,
    envelopes: &[&str],
    lane: Lane,
    now: DateTime<Utc>,
) -> Result<Vec<EnvelopeResult>, ApiError> {
    let partner = federation.store.partner(peer).await?;
    let keys = partner.as_ref().map(signing_keys).unwrap_or_default();
    let active = federation.agreements.at(federation, now).await.map_err(|e| ApiError::Internal(e.to_string()))?;
    let own = &federation.keys.card.org_id;
    let actor = format!("partner:{peer}");
    let mut accepted = Vec::new();
    let mut dead = Vec::new();
    let mut deferred = Vec::new();
    let mut results: Vec<Option<EnvelopeResult>> = vec![None; envelopes.len()];
    let mut accepted_at = Vec::new();
    for (index, raw) in envelopes.iter().enumerate() {
        let checked =
            check(raw, peer, own, &keys, now, federation.settings.window).and_then(|(view, payload, signed_at)| {
                let agreement = active
                    .iter()
                    .find(|c| c.agreement.id == view.agreement)
                    .ok_or_else(|| EnvelopeRefusal::NoAgreement(view.agreement.to_string()))?;
                let (_, flow) = agreement
                    .agreement
                    .flow(&view.origin, own)
                    .ok_or_else(|| EnvelopeRefusal::NoAgreement(view.agreement.to_string()))?;
                if let Some(reason) = exceeds(&view, flow) {
                    return Err(EnvelopeRefusal::BeyondFlow { agreement: view.agreement.to_string(), reason });
                }
                if lane == Lane::Urgent && !view.is_urgent() {
                    return Err(EnvelopeRefusal::NotUrgent);
                }
                Ok((view, payload, signed_at))
            });
        match checked {
            Ok((view, payload, signed_at)) => {
                let audit = AuditEvent::new("envelope.received", &actor)
                    .partner(peer)
                    .report(view.id)
                    .agreement(&view.agreement)
                    .object(&payload);
                accepted.push(Received { view, sender: peer.clone(), signed_at, audit });
                accepted_at.push(index);
            }
            Err(refusal) if refusal.may_pass_later() => {
                tracing::info!(partner = %peer, reason = %refusal, "deferred an envelope");
                let audit = AuditEvent::new("envelope.deferred", &actor)
                    .partner(peer)
                    .object(raw.as_bytes())
                    .detail(format!("{}: {refusal}", refusal.kind()));
                // Before the signature is checked, so counted: a flood of them adds few entries.
                deferred.extend(federation.refusals.note(peer.as_str(), refusal.kind(), audit));
                results[index] = Some(EnvelopeResult { outcome: Outcome::Deferred, reason: Some(refusal.to_string()) });
            }
            Err(refusal) => {
                tracing::warn!(partner = %peer, reason = %refusal, "refused an envelope");
                let audit = AuditEvent::new("envelope.dead_lettered", &actor)
                    .partner(peer)
                    .object(raw.as_bytes())
                    .detail(format!("{}: {refusal}", refusal.kind()));
                dead.push(DeadLetter {
                    partner: peer.clone(),
                    reason: refusal.to_string(),
                    envelope_hash: sha256_hex(raw.as_bytes()),
                    envelope: raw.chars().take(DEAD_LETTER_CHARS).collect(),
                    audit,
                });
                results[index] = Some(EnvelopeResult { outcome: Outcome::Refused, reason: Some(refusal.to_string()) });
            }
        }
    }
    // A flood of refusals is kept bounded: the first ones in full, the rest counted in one entry.
    if dead.len() > MAX_DEAD_LETTERS_PER_BATCH {
        let more = dead.len() - MAX_DEAD_LETTERS_PER_BATCH;
        dead.truncate(MAX_DEAD_LETTERS_PER_BATCH);
        deferred.push(
            AuditEvent::new("envelope.dead_lettered", &actor)
                .partner(peer)
                .detail(format!("{more} more envelopes of this delivery refused and not kept")),
        );
    }
    let outcomes = federation.store.store_received(&accepted, &dead, &deferred, now).await?;
    for ((index, outcome), received) in accepted_at.into_iter().zip(outcomes).zip(&accepted) {
        results[index] = Some(match outcome {
            ReceiveOutcome::Stored => EnvelopeResult { outcome: Outcome::Stored, reason: None },
            ReceiveOutcome::Duplicate => EnvelopeResult { outcome: Outcome::Duplicate, reason: None },
            ReceiveOutcome::Older => EnvelopeResult { outcome: Outcome::Older, reason: None },
            ReceiveOutcome::IdTaken => EnvelopeResult {
                outcome: Outcome::Refused,
                reason: Some(EnvelopeRefusal::IdTaken(received.view.id).to_string()),
            },
            ReceiveOutcome::AgreementEnded => EnvelopeResult {
                outcome: Outcome::Refused,
                reason: Some(format!("agreement {} ended here", received.view.agreement)),
            },
        });
    }
    if partner.is_some() {
        federation.store.record_partner_contact(peer, now, None).await?;
    }
    Ok(results.into_iter().map(|r| r.unwrap_or(EnvelopeResult { outcome: Outcome::Refused, reason: None })).collect())
}

/// Everything about one envelope that needs no database: its form, its signature by the peer's
/// key, its addressing and time. Answers the view and the payload bytes it came as.
fn check(
    raw: &str,
    peer: &OrgId,
    own: &OrgId,
    keys: &[crate::crypto::keys::PublicKey],
    now: DateTime<Utc>,
    window: chrono::Duration,
) -> Result<(ReportView, Vec<u8>, DateTime<Utc>), EnvelopeRefusal> {
    if raw.len() > MAX_ENVELOPE_BYTES {
        return Err(EnvelopeRefusal::Malformed(format!("larger than {MAX_ENVELOPE_BYTES} bytes")));
    }
    let jws = Jws::parse(raw.as_bytes()).map_err(|e| EnvelopeRefusal::Malformed(e.to_string()))?;
    if jws.signatures.len() != 1 {
        return Err(EnvelopeRefusal::Malformed("an envelope has exactly one signature".into()));
    }
    let verified =
        jws.verify(ENVELOPE_TYPE, |kid| keys.iter().copied().find(|k| k.key_id() == kid)).map_err(|e| match e {
            JwsError::UnknownKey { kid, .. } => EnvelopeRefusal::UnknownKey(kid),
            other => EnvelopeRefusal::Signature(other.to_string()),
        })?;
    let header =
        verified.envelope.ok_or_else(|| EnvelopeRefusal::Malformed("the protected header has no envelope".into()))?;
    let view: ReportView = serde_json::from_slice(&verified.payload)
        .map_err(|e| EnvelopeRefusal::Malformed(format!("the payload is not a report view: {e}")))?;
    check_addressing(&header, &view, peer, own, now, window)?;
    Ok((view, verified.payload, header.signed_at()))
}

/// Where a partner's catch-up read starts.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedParams {
    /// The `next_after` of the previous page; 0 (the default) for the beginning.
    #[param(minimum = 0)]
    after: Option<i64>,
    /// Envelopes per page, 1 to 1000 (default 500).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// One page of the catch-up feed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FeedPage {
    pub envelopes: Vec<Jws>,
    /// Revocations of agreements the caller is a party to, so a partner that was away when one
    /// was sent learns of it too.
    #[serde(default)]
    pub revocations: Vec<Jws>,
    /// Pass as `after` for the next page; the same as `after` when there is nothing more.
    pub next_after: i64,
}

/// What this node queued for the calling partner after a point: for a partner that was away.
/// Envelopes under agreements no longer active are left out.
#[utoipa::path(
    get, path = "/federation/v1/feed", tag = "federation",
    params(FeedParams),
    responses((status = 200, description = "Envelopes for the caller, oldest first", body = FeedPage),
        (status = 403, description = "The certificate belongs to no partner", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A parameter is unknown or not a number; `errors` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The partner asks faster than its rate limit", body = Problem, content_type = "application/problem+json"))
)]
pub async fn feed(peer: Peer, federation: Data<Federation>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let params: FeedParams = crate::http::input::query(&req)?;
    let mut errors = crate::domain::ValidationErrors::new();
    if params.after.is_some_and(|after| after < 0) {
        errors.add("after", "must be 0 or the next_after of a page");
    }
    if params.limit.is_some_and(|limit| !(1..=MAX_BATCH as u32).contains(&limit)) {
        errors.add("limit", format!("must be between 1 and {MAX_BATCH}"));
    }
    errors.into_result(())?;
    let (after, limit) = (params.after.unwrap_or(0), params.limit.unwrap_or(500));
    let now = federation.clock.now();
    let rows = federation.store.feed_for(&peer.org, after, i64::from(limit)).await?;
    let active = federation.agreements.at(&federation, now).await.map_err(|e| ApiError::Internal(e.to_string()))?;
    let next_after = rows.last().map_or(after, |r| r.id);
    let half_window = federation.settings.window / 2;
    let envelopes = rows
        .iter()
        .filter(|row| active.iter().any(|c| c.agreement.id.as_str() == row.agreement))
        .map(|row| freshened(&federation, &row.envelope, now, half_window))
        .collect();
    let mut revocations = Vec::new();
    for record in federation.store.agreements().await? {
        let Some(revocation) = record.revocation else { continue };
        let is_party = Jws::parse(record.document.as_bytes())
            .ok()
            .and_then(|d| d.unverified_payload().ok())
            .and_then(|p| serde_json::from_slice::<crate::domain::agreement::Agreement>(&p).ok())
            .is_some_and(|a| a.party(&peer.org).is_some());
        if let (true, Ok(statement)) = (is_party, Jws::parse(revocation.statement.as_bytes())) {
            revocations.push(statement);
        }
    }
    Ok(HttpResponse::Ok().json(FeedPage { envelopes, next_after, revocations }))
}

/// Per-partner budgets: requests, and envelopes delivered (each costs a signature check, so one
/// request of a thousand envelopes is charged a thousand).
pub struct RateLimits {
    requests: Buckets,
    envelopes: Buckets,
}

impl RateLimits {
    pub fn new(requests_per_second: u32, envelopes_per_second: u32) -> Self {
        Self { requests: Buckets::new(requests_per_second), envelopes: Buckets::new(envelopes_per_second) }
    }

    /// Takes one request from `peer`'s budget; the error says when to retry.
    pub fn take(&self, peer: &OrgId) -> Result<(), ApiError> {
        self.requests.take(peer, 1.0)
    }

    /// Takes a delivery of `count` envelopes from `peer`'s envelope budget.
    pub fn take_envelopes(&self, peer: &OrgId, count: usize) -> Result<(), ApiError> {
        self.envelopes.take(peer, count as f64)
    }
}

/// Token buckets, one per partner: `rate` tokens a second, bursts of twice that.
struct Buckets {
    rate: f64,
    buckets: Mutex<HashMap<OrgId, (f64, Instant)>>,
}

impl Buckets {
    fn new(per_second: u32) -> Self {
        Self { rate: f64::from(per_second), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes `cost` tokens from `peer`'s bucket. A cost above the burst is taken from a full bucket,
    /// which then owes the rest: a large delivery waits for its turn but is never refused for good.
    fn take(&self, peer: &OrgId, cost: f64) -> Result<(), ApiError> {
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let burst = self.rate * 2.0;
        let (tokens, last) = buckets.entry(peer.clone()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(burst);
        *last = now;
        let needed = cost.min(burst);
        if *tokens < needed {
            let retry_after = ((needed - *tokens) / self.rate).ceil().max(1.0) as u64;
            return Err(ApiError::TooManyRequests { retry_after });
        }
        *tokens -= cost;
        Ok(())
    }
}
