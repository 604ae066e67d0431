//! Requests between partners (issue 19): a coordinator asks a partner for something ("can a patrol
//! pass Hagebyskolan between 22 and 02 tonight?", "do you have footage of the entrance around
//! 21:30?"), tied to a report, a place and a time, with a time by which it should be answered. A
//! request goes only where an active agreement's flow from the asker to the asked party says
//! `requests = true`, and carries of a report what that flow's field rules give.
//!
//! The asked party then takes steps, each a statement signed by its node and numbered from 1:
//! acknowledged, accepted or declined (with a reason), answered (as often as needed) and done.
//! Both nodes keep the same thread, the request and its steps as signed, and derive its status
//! from it; an open request past its due time is overdue. This module holds the statements, their
//! bounds and the order of the steps; sending them is `federation::requests`.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::agreement::{Agreement, AgreementId, Flow};
use super::ids::{OrgId, ReportId};
use super::rules::PersonsRule;
use super::validation::ValidationErrors;
use super::view::ReportView;

/// The JWS `typ` of a [`PartnerRequest`].
pub const REQUEST_TYPE: &str = "lagesbild-request+json";
/// The JWS `typ` of a [`RequestStep`].
pub const REQUEST_STEP_TYPE: &str = "lagesbild-request-step+json";

/// The longest subject, in characters.
pub const MAX_SUBJECT: usize = 200;
/// The longest details, reason or answer, in characters.
pub const MAX_TEXT: usize = 4_000;
/// The most steps one request takes.
pub const MAX_STEPS: u32 = 50;
/// The furthest ahead a due time may lie.
pub const MAX_DUE_DAYS: i64 = 90;
/// The due time when the asker names none.
pub const DEFAULT_DUE_HOURS: i64 = 24;

/// A request, as the asker's node signs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerRequest {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    /// The agreement it goes under.
    #[schema(value_type = String)]
    pub agreement: AgreementId,
    /// The asker.
    #[schema(value_type = String)]
    pub from: OrgId,
    /// The asked party.
    #[schema(value_type = String)]
    pub to: OrgId,
    pub subject: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
    /// The report it is about: one of the asker's own, or one the asked party shared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub report: Option<ReportId>,
    /// For one of the asker's own reports: the report as the agreement's flow gives it to the
    /// asked party.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_view: Option<ReportView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<RequestPlace>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<TimeWindow>,
    /// When an answer is wanted by.
    pub due: DateTime<Utc>,
    pub asked_at: DateTime<Utc>,
}

/// Where a request is about: a point, and a circle around it when `radius_m` is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestPlace {
    /// What people call it ("Hagebyskolan, main entrance").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub lat: f64,
    pub lon: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radius_m: Option<u32>,
}

/// The time a request is about ("between 22 and 02 tonight").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// What the asked party did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Seen, and being looked at.
    Acknowledged,
    Accepted,
    /// Declined, with a reason.
    Declined,
    /// An answer (there may be several).
    Answered,
    /// Nothing more follows.
    Done,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Acknowledged => "acknowledged",
            StepKind::Accepted => "accepted",
            StepKind::Declined => "declined",
            StepKind::Answered => "answered",
            StepKind::Done => "done",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Acknowledged, Self::Accepted, Self::Declined, Self::Answered, Self::Done]
            .into_iter()
            .find(|k| k.as_str() == text)
    }

    /// The status the step leads to, where it may be taken.
    pub fn leads_to(self) -> RequestStatus {
        match self {
            StepKind::Acknowledged => RequestStatus::Acknowledged,
            StepKind::Accepted => RequestStatus::Accepted,
            StepKind::Declined => RequestStatus::Declined,
            StepKind::Answered => RequestStatus::Answered,
            StepKind::Done => RequestStatus::Done,
        }
    }

    /// Whether the step needs a text: a decline its reason, an answer the answer.
    pub fn needs_text(self) -> bool {
        matches!(self, StepKind::Declined | StepKind::Answered)
    }
}

/// One step the asked party took, as its node signs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestStep {
    #[schema(value_type = String, format = Uuid)]
    pub request: Uuid,
    /// The request's asker (the request is the asker's id).
    #[schema(value_type = String)]
    pub asker: OrgId,
    /// The asked party, who took the step.
    #[schema(value_type = String)]
    pub by: OrgId,
    /// 1 for the first step, then one more each.
    pub seq: u32,
    pub kind: StepKind,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    pub at: DateTime<Utc>,
}

/// Where a request stands, from its last step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Open,
    Acknowledged,
    Accepted,
    Declined,
    Answered,
    Done,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Open => "open",
            RequestStatus::Acknowledged => "acknowledged",
            RequestStatus::Accepted => "accepted",
            RequestStatus::Declined => "declined",
            RequestStatus::Answered => "answered",
            RequestStatus::Done => "done",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Open, Self::Acknowledged, Self::Accepted, Self::Declined, Self::Answered, Self::Done]
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    /// The status after `step`, or why that step cannot follow now.
    pub fn after(self, step: StepKind) -> Result<RequestStatus, String> {
        use RequestStatus as S;
        use StepKind as K;
        match (self, step) {
            (S::Open, K::Acknowledged)
            | (S::Open | S::Acknowledged, K::Accepted | K::Declined)
            | (S::Accepted | S::Answered, K::Answered | K::Done) => Ok(step.leads_to()),
            (S::Declined | S::Done, _) => Err(format!("the request is {}: nothing follows", self.as_str())),
            (S::Open | S::Acknowledged, K::Answered | K::Done) => {
                Err(format!("the request is {}: accept it before answering or closing it", self.as_str()))
            }
            (_, step) => Err(format!("the request is {}: it cannot be {} now", self.as_str(), step.as_str())),
        }
    }

    /// Whether the asked party still owes an answer: past the due time, it is overdue.
    pub fn awaits_answer(self) -> bool {
        matches!(self, RequestStatus::Open | RequestStatus::Acknowledged | RequestStatus::Accepted)
    }
}

/// `agreement` as requests use it: each flow's persons at most as their roles. A request is a
/// message about a report, which reaches the partner's picture under the agreement anyway (where an
/// erasure finds it); a request's copy of the persons would be one more place to find.
pub fn for_requests(agreement: &Agreement) -> Agreement {
    Agreement { flows: agreement.flows.iter().map(request_flow).collect(), ..agreement.clone() }
}

/// One flow as requests use it (see [`for_requests`]).
pub fn request_flow(flow: &Flow) -> Flow {
    let mut flow = flow.clone();
    if flow.fields.persons != PersonsRule::Drop {
        flow.fields.persons = PersonsRule::Roles;
    }
    flow
}

/// Whether a request in `status`, due at `due`, is overdue at `now`.
pub fn is_overdue(status: RequestStatus, due: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    status.awaits_answer() && now > due
}

impl PartnerRequest {
    /// What is wrong with the request as sent at `now`, field by field: sizes, the place, the
    /// window, the due time.
    pub fn check(&self, now: DateTime<Utc>) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let subject = self.subject.trim();
        errors.check(!subject.is_empty(), "subject", "says what is asked: it must not be empty");
        errors.check(
            self.subject.chars().count() <= MAX_SUBJECT,
            "subject",
            format!("at most {MAX_SUBJECT} characters"),
        );
        errors.check(self.details.chars().count() <= MAX_TEXT, "details", format!("at most {MAX_TEXT} characters"));
        errors.check(self.from != self.to, "to", "a node does not ask itself");
        if let Some(place) = &self.place {
            errors.check(
                (-90.0..=90.0).contains(&place.lat) && (-180.0..=180.0).contains(&place.lon),
                "place",
                "lat must lie within -90..90 and lon within -180..180",
            );
            errors.check(
                place.radius_m.is_none_or(|r| (1..=50_000).contains(&r)),
                "place.radius_m",
                "between 1 and 50 000 metres",
            );
            errors.check(
                place.name.as_ref().is_none_or(|n| n.chars().count() <= MAX_SUBJECT),
                "place.name",
                format!("at most {MAX_SUBJECT} characters"),
            );
        }
        if let Some(window) = &self.window {
            errors.check(window.from < window.until, "window.until", "must come after window.from");
            errors.check(window.until - window.from <= Duration::days(31), "window", "spans at most 31 days");
        }
        errors.check(self.due > self.asked_at, "due", "must lie after the moment the request is made");
        errors.check(
            self.asked_at.checked_add_signed(Duration::days(MAX_DUE_DAYS)).is_some_and(|latest| self.due <= latest),
            "due",
            format!("at most {MAX_DUE_DAYS} days ahead"),
        );
        // A request may wait long for a partner that is away, but never comes from the future.
        let ahead = now.checked_add_signed(Duration::hours(1)).is_some_and(|limit| self.asked_at > limit);
        errors.check(!ahead, "asked_at", "lies ahead of this node's clock");
        if let Some(view) = &self.report_view {
            errors.check(self.report == Some(view.id), "report_view", "is not the report the request names");
            errors.check(view.origin == self.from, "report_view", "is not a report of the asker");
            errors.check(view.agreement == self.agreement, "report_view", "is under another agreement");
        }
        errors.into_result(())
    }
}

impl RequestStep {
    /// What is wrong with the step on its own: its number and its text.
    pub fn check(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        errors.check((1..=MAX_STEPS).contains(&self.seq), "seq", format!("a request takes at most {MAX_STEPS} steps"));
        errors.check(self.text.chars().count() <= MAX_TEXT, "text", format!("at most {MAX_TEXT} characters"));
        if self.kind.needs_text() {
            let what = if self.kind == StepKind::Declined { "the reason for declining" } else { "the answer" };
            errors.check(!self.text.trim().is_empty(), "text", format!("must give {what}"));
        }
        errors.into_result(())
    }
}

/// The status a thread of steps, in order, leads to; or the first step that cannot follow.
pub fn status_of<'a>(steps: impl IntoIterator<Item = &'a RequestStep>) -> Result<RequestStatus, String> {
    steps.into_iter().try_fold(RequestStatus::Open, |status, step| status.after(step.kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_accepted_answered_and_closed_in_that_order() {
        use RequestStatus as S;
        use StepKind as K;
        assert_eq!(S::Open.after(K::Acknowledged), Ok(S::Acknowledged));
        assert_eq!(S::Acknowledged.after(K::Accepted), Ok(S::Accepted));
        assert_eq!(S::Accepted.after(K::Answered), Ok(S::Answered));
        assert_eq!(S::Answered.after(K::Answered), Ok(S::Answered));
        assert_eq!(S::Answered.after(K::Done), Ok(S::Done));
        assert!(S::Open.after(K::Answered).unwrap_err().contains("accept it"));
        assert!(S::Done.after(K::Answered).unwrap_err().contains("nothing follows"));
        assert!(S::Declined.after(K::Accepted).is_err());
        assert!(S::Accepted.after(K::Declined).is_err());
    }

    #[test]
    fn a_requests_flow_gives_persons_at_most_as_roles() {
        let flow: Flow = toml::from_str(
            r#"from = ["se-a"]
            to = ["se-b"]
            categories = ["theft"]
            max_tlp = "AMBER"
            fields = { persons = "keep" }"#,
        )
        .unwrap();
        assert_eq!(request_flow(&flow).fields.persons, PersonsRule::Roles);
        let dropped = Flow { fields: crate::domain::rules::FieldRules::default(), ..flow };
        assert_eq!(dropped.fields.persons, PersonsRule::Drop);
        assert_eq!(request_flow(&dropped).fields.persons, PersonsRule::Drop);
    }

    #[test]
    fn a_request_made_at_the_end_of_time_is_refused_not_a_panic() {
        let end = DateTime::<Utc>::MAX_UTC;
        let request = PartnerRequest {
            id: Uuid::nil(),
            agreement: AgreementId::try_from("se-a-b".to_owned()).unwrap(),
            from: OrgId::parse("se-a").unwrap(),
            to: OrgId::parse("se-b").unwrap(),
            subject: "Patrol?".into(),
            details: String::new(),
            report: None,
            report_view: None,
            place: None,
            window: None,
            due: end,
            asked_at: end - Duration::days(1),
        };
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert!(request.check(now).is_err());
    }

    #[test]
    fn only_a_request_awaiting_its_answer_is_overdue() {
        let due = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let later = due + Duration::minutes(1);
        assert!(is_overdue(RequestStatus::Accepted, due, later));
        assert!(!is_overdue(RequestStatus::Accepted, due, due));
        assert!(!is_overdue(RequestStatus::Answered, due, later));
        assert!(!is_overdue(RequestStatus::Declined, due, later));
    }
}
