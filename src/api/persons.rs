//! Showing reports to someone at this node: the persons in them as far as the node's
//! [`PersonsAccess`](crate::domain::persons::PersonsAccess) lets that person's roles see them, and
//! every reading of persons in the audit trail (`persons.read`, naming the reader and the
//! reports). The API, the console and the exports show reports through [`shown`].

use std::collections::BTreeSet;

use super::AppState;
use crate::domain::Role;
use crate::domain::audit::AuditEvent;
use crate::domain::persons::NamesPersons;
use crate::store::StoreError;

/// The most report ids one audit entry lists; it counts the rest.
const LISTED: usize = 20;

/// `reports` as someone holding `roles` is shown them, with their reading of persons audited under
/// `actor`.
pub async fn shown<T: NamesPersons>(
    state: &AppState,
    actor: &str,
    roles: &BTreeSet<Role>,
    reports: Vec<T>,
) -> Result<Vec<T>, StoreError> {
    let shown = state.persons.show(roles, reports);
    if let Some(first) = shown.persons_read.first() {
        let read = &shown.persons_read;
        let mut listed: Vec<String> = read.iter().take(LISTED).map(ToString::to_string).collect();
        if read.len() > LISTED {
            listed.push(format!("and {} more", read.len() - LISTED));
        }
        let event = AuditEvent::new("persons.read", actor).report(first).detail(format!(
            "the persons of {} report(s): {}",
            read.len(),
            listed.join(", ")
        ));
        state.store.record_audit(&event, state.clock.now()).await?;
    }
    Ok(shown.reports)
}

/// One report as someone holding `roles` is shown it.
pub async fn shown_one<T: NamesPersons>(
    state: &AppState,
    actor: &str,
    roles: &BTreeSet<Role>,
    report: T,
) -> Result<T, StoreError> {
    let mut one = shown(state, actor, roles, vec![report]).await?;
    one.pop().ok_or_else(|| StoreError::Corrupt("a shown report went missing".to_owned()))
}
