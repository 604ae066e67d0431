//! Data-protection requests about a person: find every report (and every stored version) that names
//! them, own and received, and erase them: name, age and description removed, the role kept, in
//! every version, recorded in the audit trail by a hash of the name, never the name itself. An
//! erasure from an own report that partners received is passed on: the report is re-issued as its
//! next version, without the person, through the outbox, so every partner replaces what it holds;
//! the envelopes that carried the person are emptied, so no retry or catch-up hands them out again.
//! An erasure in a received report changes this node's copy; the origin is told in the findings.

use chrono::{DateTime, Utc};

use crate::domain::audit::AuditEvent;
use crate::domain::report::normalise_name;
use crate::domain::{Action, OrgId, Person, PersonRole, Report, ReportId, Version};
use crate::federation::agreements::LifecycleError;
use crate::federation::{Federation, sharing};
use crate::store::{Store, StoreError};

/// One version that names the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub report: ReportId,
    pub version: Version,
    /// The names as written that matched, with their roles.
    pub persons: Vec<(String, PersonRole)>,
    /// The names as written that matched as who did one of the report's actions, once per action.
    pub acted: Vec<String>,
    /// For a report a partner shared with this node: that partner (the report's origin).
    pub received_from: Option<OrgId>,
}

/// What an erasure did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erasure {
    pub findings: Vec<Finding>,
    /// Own reports re-issued to carry the erasure to partners: the new version and how many
    /// partners it was queued for.
    pub passed_on: Vec<(ReportId, Version, usize)>,
}

/// Why a request could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum GdprError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the erasure could not be prepared for partners: {0}")]
    Sharing(#[from] LifecycleError),
    #[error("report {0} changed while the erasure was passed on; run the erasure again")]
    Changed(ReportId),
}

const PAGE: i64 = 1_000;

/// Every version of `origin`'s reports, and every received report, naming someone whose name
/// contains `needle` (case-insensitive), for the officer to confirm who is meant.
pub async fn find(
    store: &Store,
    origin: &OrgId,
    needle: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Finding>, StoreError> {
    let needle = normalise_name(needle);
    let mut findings = Vec::new();
    let like = |name: &str| normalise_name(name).contains(&needle);
    for_each_version(store, origin, |report| {
        let content = &report.content;
        let found = naming(report.id, report.version, None, content.persons.iter(), content.actions.iter(), like);
        findings.extend(found);
    })
    .await?;
    for_each_received(store, |view| {
        let from = Some(view.origin.clone());
        findings.extend(naming(view.id, view.version, from, view.named_persons(), view.attributed_actions(), like));
    })
    .await?;
    let event = AuditEvent::new("gdpr.searched", actor)
        .object(needle.as_bytes())
        .detail(format!("{} versions found", findings.len()));
    store.record_audit(&event, now).await?;
    Ok(findings)
}

/// Erases the person named exactly `name` (case and spacing aside) from every version of every
/// report of `origin` and from every received report, and, given the node's `federation`, passes
/// the erasure on to the partners that received an own report. With `apply` false, only says what
/// it would erase.
pub async fn erase(
    store: &Store,
    federation: Option<&Federation>,
    origin: &OrgId,
    name: &str,
    apply: bool,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Erasure, GdprError> {
    let name = normalise_name(name);
    let exactly = |named: &str| normalise_name(named) == name;
    let mut own: Vec<(Report, Finding)> = Vec::new();
    for_each_version(store, origin, |report| {
        let content = &report.content;
        if let Some(found) =
            naming(report.id, report.version, None, content.persons.iter(), content.actions.iter(), exactly)
        {
            own.extend(report.without_person(&name).map(|clean| (clean, found)));
        }
    })
    .await?;
    let mut received = Vec::new();
    for_each_received(store, |view| {
        let from = Some(view.origin.clone());
        if let Some(found) =
            naming(view.id, view.version, from, view.named_persons(), view.attributed_actions(), exactly)
        {
            received.extend(view.without_person(&name).map(|clean| (clean, found)));
        }
    })
    .await?;
    let mut erasure = Erasure::default();
    if apply {
        let event = |id: ReportId, version: Version| {
            AuditEvent::new("gdpr.erased", actor)
                .report(id)
                .object(name.as_bytes())
                .detail(format!("version {version}"))
        };
        for (clean, _) in &own {
            store.erase_in_version(clean, &event(clean.id, clean.version), now).await?;
        }
        let mut reports: Vec<ReportId> = own.iter().map(|(r, _)| r.id).collect();
        reports.dedup();
        for id in &reports {
            scrub_shares(store, federation, *id, &name, now).await?;
        }
        for (clean, _) in &received {
            let audit = event(clean.id, clean.version).partner(&clean.origin);
            store.erase_in_received(clean, &audit, now).await?;
        }
        if let Some(federation) = federation {
            for id in reports {
                if let Some(passed) = pass_on(store, federation, origin, id, actor, now).await? {
                    erasure.passed_on.push(passed);
                }
            }
        }
    }
    erasure.findings = own.into_iter().map(|(_, f)| f).chain(received.into_iter().map(|(_, f)| f)).collect();
    Ok(erasure)
}

/// Scrubs the envelopes of own report `id` that name the person `name`; the others (withdrawals
/// and retractions among them, which name nobody) are left to go out, so that a partner owed one
/// still gets it. A delivered envelope is replaced, given the node's `federation` to sign with, by
/// one of only what always travels: what the partner knew of the report besides its content, from
/// which a later withdrawal is made.
async fn scrub_shares(
    store: &Store,
    federation: Option<&Federation>,
    id: ReportId,
    name: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for share in store.shares_of(id).await? {
        let Some(view) = sharing::payload_of(&share.envelope) else { continue };
        if view.without_person(name).is_none() {
            continue;
        }
        let replacement = match (share.state.as_str(), federation, OrgId::parse(&share.recipient)) {
            ("delivered", Some(federation), Ok(recipient)) => {
                sharing::seal(federation, &view.bare(), &recipient, now).envelope
            }
            _ => String::new(),
        };
        store.scrub_envelope(share.id, &replacement, now).await?;
    }
    Ok(())
}

/// Re-issues an own report, erased in place, as its next version, if partners received it and it
/// is not retracted (a retraction carries no content to erase).
async fn pass_on(
    store: &Store,
    federation: &Federation,
    origin: &OrgId,
    id: ReportId,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Option<(ReportId, Version, usize)>, GdprError> {
    let Some(latest) = store.latest_report(origin, id).await? else { return Ok(None) };
    if latest.retracted.is_some() || store.shares_of(id).await?.is_empty() {
        return Ok(None);
    }
    let Ok(next) = latest.reissue(now) else { return Ok(None) };
    let envelopes = sharing::envelopes_for(federation, &next, now).await?;
    let event = AuditEvent::new("report.updated", actor)
        .report(id)
        .detail(format!("version {}: re-issued to pass a data-protection erasure on to partners", next.version));
    match store.append_version(&next, &event, &envelopes, None).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Err(GdprError::Changed(id)),
        Err(e) => return Err(e.into()),
    }
    federation.outbox.wake();
    Ok(Some((id, next.version, envelopes.len())))
}

/// The finding for version `version` of `report`: the persons and the doers of actions whose
/// names `matches`, as written; `None` if there is nobody.
fn naming<'a>(
    report: ReportId,
    version: Version,
    received_from: Option<OrgId>,
    persons: impl Iterator<Item = &'a Person>,
    actions: impl Iterator<Item = &'a Action>,
    matches: impl Fn(&str) -> bool,
) -> Option<Finding> {
    let persons: Vec<(String, PersonRole)> =
        persons.filter_map(|p| p.name.clone().filter(|n| matches(n)).map(|n| (n, p.role))).collect();
    let acted: Vec<String> = actions.filter_map(|a| a.by.clone().filter(|by| matches(by))).collect();
    (!persons.is_empty() || !acted.is_empty()).then_some(Finding { report, version, persons, acted, received_from })
}

async fn for_each_version(store: &Store, origin: &OrgId, mut visit: impl FnMut(&Report)) -> Result<(), StoreError> {
    let mut after = None;
    loop {
        let page = store.all_versions(origin, after, PAGE).await?;
        for report in &page {
            visit(report);
        }
        match page.last() {
            Some(last) if page.len() as i64 == PAGE => after = Some((last.id, i64::from(last.version.get()))),
            _ => return Ok(()),
        }
    }
}

async fn for_each_received(
    store: &Store,
    mut visit: impl FnMut(&crate::domain::view::ReportView),
) -> Result<(), StoreError> {
    let mut after = None;
    loop {
        let page = store.received_views(after, PAGE).await?;
        for view in &page {
            visit(view);
        }
        match page.last() {
            Some(last) if page.len() as i64 == PAGE => after = Some(last.id),
            _ => return Ok(()),
        }
    }
}
