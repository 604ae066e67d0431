//! Data-protection requests about a person named in this node's own reports: find every report
//! (and every stored version) that names them, and erase them: name, age and description removed,
//! the role kept, in every version, recorded in the audit trail by a hash of the name, never the
//! name itself. Passing the erasure on to partners that received the reports belongs to the
//! federation exchange; until that exists, nothing personal has left the node to pass it on to.

use chrono::{DateTime, Utc};

use crate::domain::audit::AuditEvent;
use crate::domain::report::normalise_name;
use crate::domain::{OrgId, PersonRole, Report, ReportId, Version};
use crate::store::{Store, StoreError};

/// One version that names the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub report: ReportId,
    pub version: Version,
    /// The names as written that matched, with their roles.
    pub persons: Vec<(String, PersonRole)>,
}

const PAGE: i64 = 1_000;

/// Every version of `origin`'s reports naming someone whose name contains `needle`
/// (case-insensitive), for the officer to confirm who is meant.
pub async fn find(
    store: &Store,
    origin: &OrgId,
    needle: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Finding>, StoreError> {
    let needle = normalise_name(needle);
    let mut findings = Vec::new();
    for_each_version(store, origin, |report| {
        let persons: Vec<(String, PersonRole)> = report
            .content
            .persons
            .iter()
            .filter(|p| p.named_like(&needle))
            .map(|p| (p.name.clone().unwrap_or_default(), p.role))
            .collect();
        if !persons.is_empty() {
            findings.push(Finding { report: report.id, version: report.version, persons });
        }
    })
    .await?;
    let event = AuditEvent::new("gdpr.searched", actor)
        .object(needle.as_bytes())
        .detail(format!("{} versions found", findings.len()));
    store.record_audit(&event, now).await?;
    Ok(findings)
}

/// Erases the person named exactly `name` (case and spacing aside) from every version of every
/// report of `origin`. With `apply` false, only says what it would erase.
pub async fn erase(
    store: &Store,
    origin: &OrgId,
    name: &str,
    apply: bool,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Finding>, StoreError> {
    let name = normalise_name(name);
    let mut erased: Vec<(Report, Finding)> = Vec::new();
    for_each_version(store, origin, |report| {
        if let Some(clean) = report.without_person(&name) {
            let persons = report
                .content
                .persons
                .iter()
                .filter(|p| p.name.as_deref().is_some_and(|n| normalise_name(n) == name))
                .map(|p| (p.name.clone().unwrap_or_default(), p.role))
                .collect();
            erased.push((clean, Finding { report: report.id, version: report.version, persons }));
        }
    })
    .await?;
    if apply {
        for (clean, _) in &erased {
            let event = AuditEvent::new("gdpr.erased", actor)
                .report(clean.id)
                .object(name.as_bytes())
                .detail(format!("version {}", clean.version));
            store.erase_in_version(clean, &event, now).await?;
        }
    }
    Ok(erased.into_iter().map(|(_, finding)| finding).collect())
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
