//! Sharing, on the sending side: which partners receive a version of one of this node's reports,
//! in which form, under which agreement. For every active agreement the policy engine decides each
//! other party's view; each recipient gets one envelope (under the first agreement, by id, that
//! lets the report reach it), signed here and queued by the caller in the transaction that stores
//! the version. A recipient that holds an earlier version the new one may no longer reach is told
//! the report is withdrawn. Received reports are never shared onwards.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};

use super::Federation;
use super::agreements::{self, Checked, LifecycleError};
use crate::crypto::jws::{self, Jws};
use crate::crypto::keys::SigningKey;
use crate::domain::agreement::AgreementId;
use crate::domain::audit::sha256_hex;
use crate::domain::envelope::EnvelopeHeader;
use crate::domain::policy::{Decision, FieldDecision, decide};
use crate::domain::view::ReportView;
use crate::domain::{OrgId, Report};
use crate::store::{AgreementRecord, AgreementsStamp, QueuedEnvelope};

/// The agreements in force, their signatures verified once per document. The stored agreements
/// are read again only when they changed (any replica may change them: the check reads the one row
/// of their revision); whether each is in force is judged again at every call. This node's
/// pseudonym key under each is derived once: it costs a signature, and every filing asks for the
/// key of every agreement in force (500 of them cost a filing 17 ms here).
#[derive(Default)]
pub struct ActiveAgreements {
    checked: Mutex<HashMap<String, Arc<Checked>>>,
    snapshot: Mutex<Option<(AgreementsStamp, Arc<Loaded>)>>,
    pseudonym_keys: Mutex<HashMap<String, [u8; 32]>>,
}

/// A stored agreement that checks, as the node judges it now.
pub struct Stored {
    pub checked: Arc<Checked>,
    pub record: Arc<AgreementRecord>,
    /// Whether its framework, if it sits under one, is active now.
    pub framework_active: bool,
    /// Whether its framework, if it sits under one, has ended for good (revoked, or past its end):
    /// one merely not in force yet (awaiting signatures, not started) has not.
    pub framework_ended: bool,
    /// The amendment of it in force now, if one is.
    pub replaced_by: Option<AgreementId>,
}

/// The stored agreements that check, by id, with their records.
type Loaded = HashMap<String, (Arc<Checked>, Arc<AgreementRecord>)>;

impl ActiveAgreements {
    /// Every agreement that lets anything flow at `now`, ordered by id. One that no longer checks
    /// (a key it names was replaced, say) is left out: when in doubt, nothing flows.
    pub async fn at(&self, federation: &Federation, now: DateTime<Utc>) -> Result<Vec<Arc<Checked>>, LifecycleError> {
        let all = self.all(federation, now).await?;
        Ok(all
            .into_iter()
            // A framework held for local agreements lets nothing flow here: this node is no party.
            .filter(|s| !s.record.held_as_framework)
            .filter(|s| {
                let (framework, replaced, revocation) =
                    (s.framework_active, s.replaced_by.as_ref(), s.record.revocation.as_ref());
                agreements::status_with(&s.checked, framework, replaced, revocation, now).state == "active"
            })
            .map(|s| s.checked)
            .collect())
    }

    /// Every stored agreement that checks, ordered by id, with its record and whether its
    /// framework (if it has one) is active at `now`: what the sweep judges endings by.
    pub async fn all(&self, federation: &Federation, now: DateTime<Utc>) -> Result<Vec<Stored>, LifecycleError> {
        let loaded = self.loaded(federation).await?;
        // A framework may have been revoked or have ended since the document was checked.
        let framework_active = |checked: &Checked| match &checked.agreement.framework {
            None => true,
            Some(framework) => loaded.get(framework.as_str()).is_some_and(|(f, r)| {
                f.agreement.framework.is_none() && agreements::is_active(f, r.revocation.as_ref(), now)
            }),
        };
        let framework_ended = |checked: &Checked| match &checked.agreement.framework {
            None => false,
            Some(framework) => loaded
                .get(framework.as_str())
                .is_some_and(|(f, r)| r.revocation.is_some() || now >= f.agreement.valid_until),
        };
        // An amendment in force replaces the agreement it names (judged on its own terms): the
        // first by id, of those in force, for each agreement amended.
        let mut replacing: HashMap<&str, AgreementId> = HashMap::new();
        for (amendment, record) in loaded.values() {
            let Some(replaced) = &amendment.agreement.replaces else { continue };
            let status =
                agreements::status_with(amendment, framework_active(amendment), None, record.revocation.as_ref(), now);
            if status.state == "active" {
                let id = &amendment.agreement.id;
                let first = replacing.entry(replaced.as_str()).or_insert_with(|| id.clone());
                if id < first {
                    *first = id.clone();
                }
            }
        }
        let mut all: Vec<Stored> = loaded
            .values()
            .map(|(checked, record)| Stored {
                framework_active: framework_active(checked),
                framework_ended: framework_ended(checked),
                replaced_by: replacing.get(checked.agreement.id.as_str()).cloned(),
                checked: checked.clone(),
                record: record.clone(),
            })
            .collect();
        all.sort_by(|a, b| a.checked.agreement.id.as_str().cmp(b.checked.agreement.id.as_str()));
        Ok(all)
    }

    /// The stored agreements, read again only if they changed since the last call.
    async fn loaded(&self, federation: &Federation) -> Result<Arc<Loaded>, LifecycleError> {
        let stamp = federation.store.agreements_stamp().await?;
        if let Some((known, loaded)) = self.snapshot.lock().unwrap_or_else(PoisonError::into_inner).as_ref()
            && *known == stamp
        {
            return Ok(loaded.clone());
        }
        let records = federation.store.agreements().await?;
        let mut loaded = Loaded::new();
        for record in records {
            let cached = self.lock().get(&record.document).cloned();
            let checked = match cached {
                Some(checked) => checked,
                None => match agreements::load(&federation.store, federation, &record).await {
                    Ok(checked) => {
                        let checked = Arc::new(checked);
                        self.lock().insert(record.document.clone(), checked.clone());
                        checked
                    }
                    // A database that does not answer is not a reason to stop sharing for good.
                    Err(LifecycleError::Store(error)) => return Err(LifecycleError::Store(error)),
                    Err(error) => {
                        tracing::warn!(agreement = %record.id, %error, "agreement does not check; nothing flows under it");
                        continue;
                    }
                },
            };
            loaded.insert(record.id.clone(), (checked, Arc::new(record)));
        }
        self.lock().retain(|document, _| loaded.values().any(|(_, r)| &r.document == document));
        self.pseudonym_keys.lock().unwrap_or_else(PoisonError::into_inner).retain(|id, _| loaded.contains_key(id));
        let loaded = Arc::new(loaded);
        *self.snapshot.lock().unwrap_or_else(PoisonError::into_inner) = Some((stamp, loaded.clone()));
        Ok(loaded)
    }

    /// The active agreement with this id, if there is one.
    pub async fn find(
        &self,
        federation: &Federation,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<Checked>>, LifecycleError> {
        Ok(self.at(federation, now).await?.into_iter().find(|c| c.agreement.id.as_str() == id))
    }

    /// This node's pseudonym key under `agreement` (`agreements::pseudonym_key`), derived the
    /// first time it is asked for.
    pub fn pseudonym_key(&self, signing: &SigningKey, agreement: &AgreementId) -> [u8; 32] {
        let mut keys = self.pseudonym_keys.lock().unwrap_or_else(PoisonError::into_inner);
        *keys.entry(agreement.to_string()).or_insert_with(|| agreements::pseudonym_key(signing, agreement))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Checked>>> {
        self.checked.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What one party of an active agreement gets of one version of one of this node's reports.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// It receives `view`, under the agreement the view names; `explanation` says which rule
    /// decided each field.
    Share { recipient: OrgId, view: Box<ReportView>, explanation: Vec<FieldDecision> },
    /// It held an earlier version this one may no longer reach: it is told the report is withdrawn.
    Withdraw { recipient: OrgId, view: Box<ReportView> },
    /// It gets nothing, and why (under the first agreement that names it).
    Withhold { recipient: OrgId, agreement: AgreementId, reason: String },
}

/// What every other party of every active agreement gets of a version of one of this node's
/// reports at `now`: the question the exchange answers by sending, and the filing form's preview
/// answers without sending. Each party is served under the first agreement (by id) that lets the
/// report reach it; one that held an earlier version which this one may no longer reach is told of
/// a withdrawal. A received report is never shared onwards, so it has no deliveries.
pub async fn deliveries(
    federation: &Federation,
    report: &Report,
    now: DateTime<Utc>,
) -> Result<Vec<Delivery>, LifecycleError> {
    let own = &federation.keys.card.org_id;
    if &report.origin != own {
        return Ok(Vec::new());
    }
    let active = federation.agreements.at(federation, now).await?;
    let mut deliveries = Vec::new();
    let mut served: HashSet<OrgId> = HashSet::new();
    let mut withheld: Vec<Delivery> = Vec::new();
    let mut withheld_from: HashSet<&OrgId> = HashSet::new();
    for checked in &active {
        let agreement = &checked.agreement;
        let key = federation.agreements.pseudonym_key(&federation.keys.signing, &agreement.id);
        for party in agreement.parties.iter().filter(|p| &p.org_id != own) {
            if served.contains(&party.org_id) {
                continue;
            }
            match decide(report, agreement, &party.org_id, now, &key) {
                Decision::Share { view, explanation, .. } => {
                    deliveries.push(Delivery::Share { recipient: party.org_id.clone(), view, explanation });
                    served.insert(party.org_id.clone());
                }
                Decision::Withhold { reason } => {
                    if withheld_from.insert(&party.org_id) {
                        withheld.push(Delivery::Withhold {
                            recipient: party.org_id.clone(),
                            agreement: agreement.id.clone(),
                            reason,
                        });
                    }
                }
            }
        }
    }
    if report.version.get() > 1 {
        for earlier in federation.store.latest_shares_of(report.id).await? {
            let Ok(recipient) = OrgId::parse(&earlier.recipient) else { continue };
            let Some(view) = payload_of(&earlier.envelope) else { continue };
            let still_active = active.iter().any(|c| c.agreement.id == view.agreement);
            if !served.contains(&recipient) && !view.retracted && still_active {
                deliveries.push(Delivery::Withdraw {
                    view: Box::new(view.withdrawn(report.version)),
                    recipient: recipient.clone(),
                });
                served.insert(recipient);
            }
        }
    }
    withheld.retain(|d| matches!(d, Delivery::Withhold { recipient, .. } if !served.contains(recipient)));
    deliveries.extend(withheld);
    Ok(deliveries)
}

/// The envelopes for one version of one of this node's reports, signed at `now`.
pub async fn envelopes_for(
    federation: &Federation,
    report: &Report,
    now: DateTime<Utc>,
) -> Result<Vec<QueuedEnvelope>, LifecycleError> {
    Ok(deliveries(federation, report, now)
        .await?
        .into_iter()
        .filter_map(|delivery| match delivery {
            Delivery::Share { recipient, view, .. } | Delivery::Withdraw { recipient, view } => {
                Some(seal(federation, &view, &recipient, now))
            }
            Delivery::Withhold { .. } => None,
        })
        .collect())
}

/// Signs `view` into an envelope for `recipient`.
pub fn seal(federation: &Federation, view: &ReportView, recipient: &OrgId, now: DateTime<Utc>) -> QueuedEnvelope {
    // A view is plain data: serialising it cannot fail.
    let payload = serde_json::to_vec(view).unwrap_or_default();
    let header = EnvelopeHeader::for_view(view, &federation.keys.card.org_id, recipient, now);
    let envelope = jws::sign_envelope(&payload, &federation.keys.signing, &header);
    QueuedEnvelope {
        recipient: recipient.clone(),
        agreement: view.agreement.to_string(),
        report: view.id,
        version: view.version,
        envelope: serde_json::to_string(&envelope).unwrap_or_default(),
        content_hash: sha256_hex(&payload),
        urgent: view.is_urgent(),
    }
}

/// The view a stored envelope carries (it was signed here, so it is read without verifying).
pub fn payload_of(envelope: &str) -> Option<ReportView> {
    let jws = Jws::parse(envelope.as_bytes()).ok()?;
    serde_json::from_slice(&jws.unverified_payload().ok()?).ok()
}

/// A stored envelope signed again at `now` if it was signed longer ago than `max_age` (it waited
/// in the outbox): same payload, fresh time, so the recipient's time window admits it.
pub fn freshened(federation: &Federation, envelope: &str, now: DateTime<Utc>, max_age: chrono::Duration) -> Jws {
    let Ok(jws) = Jws::parse(envelope.as_bytes()) else {
        return Jws { payload: String::new(), signatures: Vec::new() };
    };
    let header = jws.signatures.first().and_then(|s| jws::envelope_header(&s.protected));
    match (header, jws.unverified_payload()) {
        (Some(header), Ok(payload)) if now - header.signed_at() > max_age => {
            jws::sign_envelope(&payload, &federation.keys.signing, &header.at(now))
        }
        _ => jws,
    }
}
