//! Catch-up: this node reads each partner's feed of what was queued for it, from where it last
//! stopped, and takes it in like a delivery. It runs at start and then every so often, so a node
//! that was away for hours converges without anyone doing anything; a partner's outbox retrying on
//! its own makes the same happen from the other side. While this node reads a partner's feed, it
//! asks that partner's pushed deliveries to come back later ([`CatchingUp`]): they carry the same
//! envelopes, and checking and storing each twice would halve the pace of the return.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::Federation;
use super::agreements;
use super::inbox::{MAX_BATCH, receive_batch};
use crate::domain::OrgId;
use crate::domain::agreement::Revocation;
use crate::store::Lane;

/// Envelopes asked for per page.
const PAGE: u32 = 500;

/// Runs catch-up at start and then every `catch_up_every` until the node stops.
pub fn spawn(federation: Arc<Federation>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            catch_up_all(&federation).await;
            tokio::time::sleep(federation.settings.catch_up_every).await;
        }
    })
}

/// Reads the feed of every partner that may send to this node under an active agreement.
pub async fn catch_up_all(federation: &Federation) {
    let now = federation.clock.now();
    let own = &federation.keys.card.org_id;
    let senders: Vec<OrgId> = match federation.agreements.at(federation, now).await {
        Ok(active) => {
            let mut senders: Vec<OrgId> = active
                .iter()
                .flat_map(|c| c.agreement.flows.iter())
                .filter(|flow| flow.to.contains(own))
                .flat_map(|flow| flow.from.iter().cloned())
                .filter(|org| org != own)
                .collect();
            senders.sort();
            senders.dedup();
            senders
        }
        Err(error) => {
            tracing::warn!(%error, "catch-up could not list the active agreements");
            return;
        }
    };
    // Each partner's feed is read on its own: a slow or endless one holds up no other.
    let rounds = senders.iter().map(|partner| async move { (partner, catch_up(federation, partner).await) });
    for (partner, outcome) in futures_util::future::join_all(rounds).await {
        match outcome {
            Ok(0) => {}
            Ok(taken) => tracing::info!(%partner, envelopes = taken, "caught up with a partner"),
            Err(error) => tracing::info!(%partner, %error, "catch-up with a partner failed; will try again"),
        }
    }
}

/// The most pages, and the longest time, one round reads of one partner's feed; the rest waits
/// for the next round, so a feed that always says there is more cannot keep catch-up busy.
const MAX_PAGES_PER_ROUND: usize = 400;
const MAX_ROUND: std::time::Duration = std::time::Duration::from_secs(60);

/// Reads one partner's feed to its end, or for one round's pages and time; answers how many
/// envelopes it held.
pub async fn catch_up(federation: &Federation, partner: &OrgId) -> Result<usize, String> {
    let record = federation
        .store
        .partner(partner)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "no card on record".to_owned())?;
    if record.blocked {
        return Ok(0);
    }
    let client = federation
        .clients
        .get(&federation.keys.tls, &federation.trust, &record, &federation.clock)
        .map_err(|e| e.to_string())?;
    let limit = PAGE.min(MAX_BATCH as u32);
    let mut after = federation.store.feed_cursor(partner).await.map_err(|e| e.to_string())?;
    let mut page = client.feed(after, limit).await.map_err(|e| e.to_string())?;
    take_revocations(federation, partner, &page.revocations).await;
    let _reading = (!page.envelopes.is_empty()).then(|| federation.catching_up.begin(partner));
    let mut taken = 0;
    let (started, mut pages) = (std::time::Instant::now(), 0);
    while page.next_after > after {
        pages += 1;
        if pages > MAX_PAGES_PER_ROUND || started.elapsed() > MAX_ROUND {
            tracing::info!(%partner, pages, "catch-up read a round's worth of a partner's feed; the rest waits");
            break;
        }
        // The next page is fetched while this one is checked and stored: the partner's query and
        // the transfer overlap this node's work instead of adding to it.
        let next = {
            let (client, next_after) = (client.clone(), page.next_after);
            tokio::spawn(async move { client.feed(next_after, limit).await })
        };
        if !page.envelopes.is_empty() {
            let raw: Vec<String> = page.envelopes.iter().filter_map(|e| serde_json::to_string(e).ok()).collect();
            let raw: Vec<&str> = raw.iter().map(String::as_str).collect();
            receive_batch(federation, partner, &raw, Lane::Ordinary, federation.clock.now())
                .await
                .map_err(|e| e.to_string())?;
            taken += raw.len();
        }
        federation
            .store
            .save_feed_cursor(partner, page.next_after, federation.clock.now())
            .await
            .map_err(|e| e.to_string())?;
        after = page.next_after;
        page = next.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    }
    Ok(taken)
}

/// Applies the revocations a partner's feed lists that this node has not recorded yet.
async fn take_revocations(federation: &Federation, partner: &OrgId, revocations: &[crate::crypto::jws::Jws]) {
    for statement in revocations {
        let Some(id) = statement
            .unverified_payload()
            .ok()
            .and_then(|p| serde_json::from_slice::<Revocation>(&p).ok())
            .map(|r| r.agreement)
        else {
            continue;
        };
        let known = federation.store.agreement(id.as_str()).await.ok().flatten();
        if known.is_none_or(|record| record.revocation.is_some()) {
            continue;
        }
        let now = federation.clock.now();
        match agreements::receive_revocation(federation, partner, statement, now).await {
            Ok(_) => tracing::info!(%partner, agreement = %id, "learnt of a revocation while catching up"),
            Err(error) => tracing::warn!(%partner, agreement = %id, %error, "refused a revocation from a feed"),
        }
    }
}

/// The partners whose feeds are being read now, each with how many readings are under way.
#[derive(Debug, Default)]
pub struct CatchingUp(Mutex<HashMap<OrgId, usize>>);

impl CatchingUp {
    /// Whether this node is reading `partner`'s feed now.
    pub fn includes(&self, partner: &OrgId) -> bool {
        self.lock().contains_key(partner)
    }

    /// Marks `partner`'s feed as being read until the answer is dropped. Catch-up does this while
    /// it reads; a test may too, to hold the pause of the partner's pushes open.
    pub fn begin<'a>(&'a self, partner: &OrgId) -> Reading<'a> {
        *self.lock().entry(partner.clone()).or_default() += 1;
        Reading { set: self, partner: partner.clone() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<OrgId, usize>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A feed being read; ends, whatever way the reading ends, when dropped. Readings of one partner
/// may overlap: the pause lasts until the last of them ends.
pub struct Reading<'a> {
    set: &'a CatchingUp,
    partner: OrgId,
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        let mut readings = self.set.lock();
        if let Some(count) = readings.get_mut(&self.partner) {
            *count -= 1;
            if *count == 0 {
                readings.remove(&self.partner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_are_paused_only_while_the_feed_is_read() {
        let set = CatchingUp::default();
        let police = OrgId::parse("se-polisen-ost").unwrap();
        let guards = OrgId::parse("se-vaktbolaget-ost").unwrap();
        let reading = set.begin(&police);
        assert!(set.includes(&police));
        assert!(!set.includes(&guards));
        let overlapping = set.begin(&police);
        drop(reading);
        assert!(set.includes(&police), "a reading still under way keeps the pause");
        drop(overlapping);
        assert!(!set.includes(&police));
    }
}
