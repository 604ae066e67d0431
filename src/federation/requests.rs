//! Requests between partners over federation (issue 19). Asking: the node finds the active
//! agreement whose flow from it to the asked party allows requests (none: refused here, with the
//! reason), shapes the report the request is about with that agreement's rules for that party,
//! persons reduced to their roles (a held report goes nowhere), signs the request and queues it in the lifecycle outbox, which
//! delivers it whenever the party can be reached. Answering: the asked party's steps are signed
//! and go back the same way. Receiving either: signed by the partner's key on its card here,
//! about the partner itself and this node, under an agreement active here that allows it, within
//! its bounds, and in order; anything else is refused and audited by the listener.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::Federation;
use super::agreements::{Checked, LifecycleError, pseudonym_key};
use crate::crypto::jws::{self, Jws};
use crate::domain::agreement::AgreementId;
use crate::domain::audit::AuditEvent;
use crate::domain::policy::{Decision, decide, exceeds};
use crate::domain::request::{
    DEFAULT_DUE_HOURS, PartnerRequest, REQUEST_STEP_TYPE, REQUEST_TYPE, RequestPlace, RequestStep, StepKind,
    TimeWindow, for_requests, request_flow,
};
use crate::domain::view::ReportView;
use crate::domain::{OrgId, ReportId, ValidationErrors};
use crate::store::{LifecycleDocument, LifecycleKind, StoreError, StoredRequest, Taken};

/// How many requests one partner may have awaiting an answer here at once.
pub const MAX_OPEN_PER_PARTNER: i64 = 100;

/// What someone here asks a partner.
#[derive(Debug, Clone, PartialEq)]
pub struct Ask {
    pub to: OrgId,
    /// The agreement to ask under; the one that allows it when absent.
    pub agreement: Option<AgreementId>,
    pub subject: String,
    pub details: String,
    pub report: Option<ReportId>,
    pub place: Option<RequestPlace>,
    pub window: Option<TimeWindow>,
    /// When an answer is wanted by; a day from now when absent.
    pub due: Option<DateTime<Utc>>,
}

/// Why a request or a step was not made here.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// No agreement allows it, or the report may not go: nothing was sent.
    #[error("{0}")]
    NotAllowed(String),
    #[error("{0}")]
    Invalid(ValidationErrors),
    #[error("no request with this id")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Asks a partner, on behalf of `actor`: the request as stored here, queued for the partner.
pub async fn ask(
    federation: &Federation,
    ask: Ask,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<StoredRequest, RequestError> {
    let own = federation.keys.card.org_id.clone();
    let checked = request_agreement(federation, &own, &ask.to, ask.agreement.as_ref(), now).await?;
    let agreement = &checked.agreement;
    let (report, report_view) = match ask.report {
        None => (None, None),
        Some(id) => (Some(id), report_view(federation, &checked, id, &ask.to, now).await?),
    };
    let request = PartnerRequest {
        id: ReportId::new_at(now).as_uuid(),
        agreement: agreement.id.clone(),
        from: own,
        to: ask.to.clone(),
        subject: ask.subject.trim().to_owned(),
        details: ask.details.trim().to_owned(),
        report,
        report_view,
        place: ask.place,
        window: ask.window,
        due: ask.due.unwrap_or(now + Duration::hours(DEFAULT_DUE_HOURS)),
        asked_at: now,
    };
    request.check(now).map_err(RequestError::Invalid)?;
    let (payload, send) = signed(federation, &request, LifecycleKind::Request, &ask.to, &agreement.id);
    let statement = send.document.clone();
    let audit = AuditEvent::new("request.sent", actor)
        .partner(&ask.to)
        .agreement(&agreement.id)
        .object(&payload)
        .detail(format!("request {} to {}: {}", request.id, ask.to, request.subject));
    let audit = match request.report {
        Some(id) => audit.report(id),
        None => audit,
    };
    federation.store.save_own_request(&request, &statement, actor, &send, &audit, now).await?;
    federation.lifecycle.wake();
    tracing::info!(partner = %ask.to, request = %request.id, "a request was queued for a partner");
    federation.store.request(request.from.as_str(), request.id).await?.ok_or(RequestError::NotFound)
}

/// Takes the next step on a request a partner made of this node, on behalf of `actor`.
pub async fn step(
    federation: &Federation,
    id: Uuid,
    kind: StepKind,
    text: String,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<StoredRequest, RequestError> {
    let stored = federation.store.request_by_id(id).await?.ok_or(RequestError::NotFound)?;
    let request = &stored.request;
    if request.to != federation.keys.card.org_id {
        return Err(RequestError::Forbidden(format!(
            "your organisation asked this request: {} takes its steps, and you see them here",
            request.to
        )));
    }
    in_force(federation, &stored.under, now).await?.ok_or_else(|| {
        RequestError::Conflict(format!(
            "agreement {} is no longer active: the request cannot be answered through it",
            stored.under
        ))
    })?;
    let step = RequestStep {
        request: id,
        asker: request.from.clone(),
        by: request.to.clone(),
        seq: stored.steps + 1,
        kind,
        text: text.trim().to_owned(),
        at: now,
    };
    step.check().map_err(RequestError::Invalid)?;
    stored.status.after(kind).map_err(RequestError::Conflict)?;
    let (payload, send) = signed(federation, &step, LifecycleKind::RequestStep, &request.from, &request.agreement);
    let statement = send.document.clone();
    let audit = AuditEvent::new("request.step", actor)
        .partner(&request.from)
        .agreement(&request.agreement)
        .object(&payload)
        .detail(format!("request {id} from {}: step {} {}", request.from, step.seq, kind.as_str()));
    match federation.store.save_step(&step, &statement, Some(actor), Some(&send), &audit, now).await? {
        Ok(Taken::New) => {}
        Ok(_) => {
            return Err(RequestError::Conflict("someone here took a step on it at the same moment: reload it".into()));
        }
        Err(reason) => return Err(RequestError::Conflict(reason)),
    }
    federation.lifecycle.wake();
    federation.store.request_by_id(id).await?.ok_or(RequestError::NotFound)
}

/// `statement` signed by this node, as a document of `kind` for `recipient`: the signed bytes, for
/// the audit trail, and the document to queue.
fn signed<T: serde::Serialize>(
    federation: &Federation,
    statement: &T,
    kind: LifecycleKind,
    recipient: &OrgId,
    agreement: &AgreementId,
) -> (Vec<u8>, LifecycleDocument) {
    let typ = if kind == LifecycleKind::Request { REQUEST_TYPE } else { REQUEST_STEP_TYPE };
    // A statement is plain data: serialising it cannot fail.
    let payload = serde_json::to_vec(statement).unwrap_or_default();
    let document = jws::sign(&payload, typ, &[&federation.keys.signing]).to_json();
    (payload, LifecycleDocument { recipient: recipient.clone(), kind, agreement: agreement.to_string(), document })
}

/// Takes `peer`'s request to this node.
pub async fn receive_request(
    federation: &Federation,
    peer: &OrgId,
    statement: &Jws,
    now: DateTime<Utc>,
) -> Result<(), LifecycleError> {
    let (request, payload): (PartnerRequest, _) =
        super::registry::partner_statement(&federation.store, peer, statement, REQUEST_TYPE).await?;
    let own = &federation.keys.card.org_id;
    if &request.from != peer || &request.to != own {
        return Err(LifecycleError::Forbidden(format!(
            "a request from {} to {} cannot come from {peer} to {own}",
            request.from, request.to
        )));
    }
    request.check(now).map_err(LifecycleError::Invalid)?;
    let checked = active_for_partner(federation, request.agreement.as_str(), now).await?;
    if !checked.agreement.allows_requests(peer, own) {
        return Err(LifecycleError::Forbidden(format!(
            "agreement {} does not let {peer} send requests to {own}",
            request.agreement
        )));
    }
    if let Some(view) = &request.report_view {
        let flow = checked.agreement.flow(peer, own).map(|(_, flow)| request_flow(flow));
        if let Some(reason) = flow.and_then(|flow| exceeds(view, &flow)) {
            return Err(LifecycleError::Forbidden(format!("the request's report goes beyond the flow: {reason}")));
        }
    }
    let audit = AuditEvent::new("request.received", &format!("partner:{peer}"))
        .partner(peer)
        .agreement(&request.agreement)
        .object(&payload)
        .detail(format!("request {}: {}", request.id, request.subject));
    let taken =
        federation.store.receive_request(&request, &statement.to_json(), MAX_OPEN_PER_PARTNER, &audit, now).await?;
    match taken {
        Taken::New | Taken::Again => Ok(()),
        Taken::TooMany => Err(LifecycleError::Conflict(format!(
            "{peer} has {MAX_OPEN_PER_PARTNER} requests awaiting an answer here already; another is taken once one \
             is answered or declined"
        ))),
        _ => Err(LifecycleError::Conflict(format!("another request with id {} is held here", request.id))),
    }
}

/// Takes `peer`'s step on one of this node's requests to it.
pub async fn receive_step(
    federation: &Federation,
    peer: &OrgId,
    statement: &Jws,
    now: DateTime<Utc>,
) -> Result<(), LifecycleError> {
    let (step, payload): (RequestStep, _) =
        super::registry::partner_statement(&federation.store, peer, statement, REQUEST_STEP_TYPE).await?;
    let own = &federation.keys.card.org_id;
    if &step.by != peer || &step.asker != own {
        return Err(LifecycleError::Forbidden(format!(
            "a step by {} on a request of {} cannot come from {peer} to {own}",
            step.by, step.asker
        )));
    }
    step.check().map_err(LifecycleError::Invalid)?;
    let held = federation.store.request(own.as_str(), step.request).await?;
    let Some(held) = held.filter(|h| &h.request.to == peer) else {
        return Err(LifecycleError::Forbidden(format!("this node made no request {} of {peer}", step.request)));
    };
    active_for_partner(federation, &held.under, now).await?;
    let audit = AuditEvent::new("request.step_received", &format!("partner:{peer}"))
        .partner(peer)
        .object(&payload)
        .detail(format!("request {}: step {} {}", step.request, step.seq, step.kind.as_str()));
    match federation.store.save_step(&step, &statement.to_json(), None, None, &audit, now).await? {
        Ok(Taken::New | Taken::Again) => Ok(()),
        Ok(Taken::Unknown) => {
            Err(LifecycleError::Forbidden(format!("this node made no request {} of {peer}", step.request)))
        }
        // An earlier step may still be on its way (each is retried on its own): later, then.
        Ok(Taken::Ahead) => Err(LifecycleError::NotYet(format!(
            "step {} of request {} comes before the steps this node has yet to receive",
            step.seq, step.request
        ))),
        Ok(_) => {
            Err(LifecycleError::Conflict(format!("another step {} of request {} is held here", step.seq, step.request)))
        }
        Err(reason) => Err(LifecycleError::Conflict(reason)),
    }
}

/// The partners this node may ask now: each with its name and the agreement that allows it (the
/// first by id, when several do).
pub async fn askable(
    federation: &Federation,
    now: DateTime<Utc>,
) -> Result<Vec<(OrgId, String, AgreementId)>, RequestError> {
    let own = &federation.keys.card.org_id;
    let mut askable: Vec<(OrgId, String, AgreementId)> = Vec::new();
    for checked in federation.agreements.at(federation, now).await? {
        let agreement = &checked.agreement;
        for party in agreement.parties.iter().filter(|p| agreement.allows_requests(own, &p.org_id)) {
            if !askable.iter().any(|(org, ..)| org == &party.org_id) {
                askable.push((party.org_id.clone(), party.name.clone(), agreement.id.clone()));
            }
        }
    }
    Ok(askable)
}

/// The active agreement that lets `own` ask `to`: the one named, or the first by id.
async fn request_agreement(
    federation: &Federation,
    own: &OrgId,
    to: &OrgId,
    named: Option<&AgreementId>,
    now: DateTime<Utc>,
) -> Result<Arc<Checked>, RequestError> {
    let active = federation.agreements.at(federation, now).await?;
    let mut candidates = active.into_iter().filter(|c| named.is_none_or(|id| &c.agreement.id == id));
    match named {
        Some(id) => {
            let Some(checked) = candidates.next() else {
                return Err(RequestError::NotAllowed(format!("agreement {id} is not active here")));
            };
            if checked.agreement.allows_requests(own, to) {
                Ok(checked)
            } else {
                Err(RequestError::NotAllowed(format!(
                    "agreement {id} does not let {own} send requests to {to}: its flow from you to them must say \
                     requests = true"
                )))
            }
        }
        None => candidates.find(|c| c.agreement.allows_requests(own, to)).ok_or_else(|| {
            RequestError::NotAllowed(format!(
                "no active agreement lets {own} send requests to {to}: an agreement's flow from you to them must \
                 say requests = true, signed by both"
            ))
        }),
    }
}

/// What a request to `to` carries of report `id`: one of this node's own, as the agreement's rules
/// give it to `to` (refused if it may not go, or is held for release); or only its id, for one
/// `to` shared with this node.
async fn report_view(
    federation: &Federation,
    checked: &Checked,
    id: ReportId,
    to: &OrgId,
    now: DateTime<Utc>,
) -> Result<Option<ReportView>, RequestError> {
    let own = &federation.keys.card.org_id;
    let Some(report) = federation.store.latest_report(own, id).await? else {
        let theirs = federation.store.received_view(id).await?.is_some_and(|view| &view.origin == to);
        if theirs {
            return Ok(None);
        }
        return Err(RequestError::Invalid(ValidationErrors::single(
            "report",
            format!("is neither one of your organisation's reports nor one {to} shared with you"),
        )));
    };
    let held = federation.store.hold_of(id).await?.is_some_and(|hold| hold.state != "released");
    if held {
        return Err(RequestError::NotAllowed(format!(
            "report {id} awaits a coordinator's release: nothing of it leaves the node until then"
        )));
    }
    let key = pseudonym_key(&federation.keys.signing, &checked.agreement.id);
    // Persons stay out of requests, whatever the flow gives: only their roles go.
    match decide(&report, &for_requests(&checked.agreement), to, now, &key) {
        Decision::Share { view, .. } => Ok(Some(*view)),
        Decision::Withhold { reason } => Err(RequestError::NotAllowed(format!(
            "report {id} may not go to {to} under agreement {}: {reason}",
            checked.agreement.id
        ))),
    }
}

/// The agreement `id`, if it is active here at `now`.
async fn in_force(
    federation: &Federation,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Arc<Checked>>, LifecycleError> {
    let active = federation.agreements.at(federation, now).await?;
    Ok(active.into_iter().find(|c| c.agreement.id.as_str() == id))
}

/// The agreement `id` for a partner's request or step: active here, or refused for good when it
/// ended or never will be, or not yet (the partner tries again) when it is unknown here, awaits a
/// signature that has not arrived, or has not started.
async fn active_for_partner(
    federation: &Federation,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Arc<Checked>, LifecycleError> {
    if let Some(active) = in_force(federation, id, now).await? {
        return Ok(active);
    }
    let all = federation.agreements.all(federation, now).await?;
    let state = all.iter().find(|s| s.checked.agreement.id.as_str() == id).map(|s| {
        let revocation = s.record.revocation.as_ref();
        super::agreements::status_with(&s.checked, s.framework_active, s.replaced_by.as_ref(), revocation, now).state
    });
    match state {
        None | Some("awaiting_signatures" | "not_started") => {
            Err(LifecycleError::NotYet(format!("agreement {id} is not in force here yet")))
        }
        Some(state) => Err(LifecycleError::Forbidden(format!("agreement {id} is not active here ({state})"))),
    }
}
