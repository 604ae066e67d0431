//! An agreement's evaluation: what the parties bring to the meeting where they decide whether it
//! worked (the Luleå parties planned one after the pilot). Per month and per flow, how many reports
//! this node sent to each party, by category and severity; how many were new, updated and
//! retracted; how many were acknowledged, refused, still waiting or cancelled; how fast they were
//! acknowledged; and how many each party's node sent here. Counts and times only, never a report's
//! contents. The figures are made here from the sharing ledger's rows, which the caller reads; as
//! JSON and as CSV, one line per month, flow and party, for a spreadsheet.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::agreement::Agreement;
use super::{Category, OrgId, ReportId, Severity};

/// One envelope this node queued under the agreement, as the ledger records it.
#[derive(Debug, Clone)]
pub struct SentShare {
    pub report: ReportId,
    pub recipient: OrgId,
    pub version: i64,
    /// A retraction, or a withdrawal (the report may no longer reach the recipient).
    pub retracted: bool,
    pub category: Category,
    pub severity: Severity,
    /// `queued`, `delivered`, `refused` or `cancelled`.
    pub state: String,
    pub queued_at: DateTime<Utc>,
    /// When the recipient acknowledged it (delivered), refused it, or it was cancelled.
    pub settled_at: Option<DateTime<Utc>>,
}

/// One envelope a party's node delivered here under the agreement, as the audit trail records it.
#[derive(Debug, Clone)]
pub struct ReceivedShare {
    pub sender: OrgId,
    pub at: DateTime<Utc>,
    /// Whether it was stored (new, or newer than what was held); a duplicate or an older version
    /// was not.
    pub stored: bool,
}

/// An agreement's evaluation from this node's ledger.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Evaluation {
    pub agreement: String,
    pub title: String,
    /// The node whose ledger this is: what it sent, and what it received.
    pub node: String,
    #[schema(value_type = String, format = DateTime)]
    pub valid_from: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub valid_until: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub evaluation_date: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub generated_at: DateTime<Utc>,
    /// The agreement's flows in plain words, by number.
    pub flows: Vec<String>,
    /// What this node sent, per month, flow and recipient.
    pub sent: Vec<SentRow>,
    /// What the other parties' nodes delivered here, per month, flow and sender.
    pub received: Vec<ReceivedRow>,
}

/// What this node sent to one party under one flow in one month.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct SentRow {
    /// `2026-11` (UTC).
    pub month: String,
    /// The flow's number in the agreement.
    pub flow: usize,
    pub recipient: String,
    /// Different reports that went (counted once however many versions did).
    pub reports: u64,
    /// First versions sent.
    pub new: u64,
    /// Later versions sent.
    pub updated: u64,
    /// Retractions and withdrawals sent.
    pub retracted: u64,
    /// Acknowledged by the recipient's node.
    pub delivered: u64,
    /// Refused by it for good (the ledger says why).
    pub refused: u64,
    /// Still waiting to be delivered.
    pub waiting: u64,
    /// Cancelled before delivery: superseded by a later version, or the agreement ended.
    pub cancelled: u64,
    /// Reports by category, each in the category of its latest version that month.
    pub by_category: BTreeMap<String, u64>,
    /// Reports by severity, likewise.
    pub by_severity: BTreeMap<String, u64>,
    /// Seconds from queued to acknowledged, over what was delivered: median, 90th percentile, most.
    pub arrival_seconds: Option<Arrival>,
}

/// How fast envelopes were acknowledged, in seconds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Arrival {
    pub median: f64,
    pub p90: f64,
    pub max: f64,
}

/// What one party's node delivered here under one flow in one month.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ReceivedRow {
    pub month: String,
    pub flow: usize,
    pub sender: String,
    /// Versions stored (new here, or newer than the one held).
    pub stored: u64,
    /// Duplicates and older versions, which changed nothing.
    pub not_stored: u64,
}

/// The evaluation of `agreement` at `now` for node `own`, from its ledger's rows.
pub fn evaluate(
    agreement: &Agreement,
    own: &OrgId,
    sent: &[SentShare],
    received: &[ReceivedShare],
    now: DateTime<Utc>,
) -> Evaluation {
    let mut tally = Tally::new(agreement, own);
    sent.iter().for_each(|share| tally.sent(share));
    received.iter().for_each(|share| tally.received(share));
    tally.finish(now)
}

/// Month, flow and party: what a row of the evaluation counts.
type Key = (String, usize, String);

/// An evaluation being counted, one ledger row at a time: a year of sharing is read in pages and
/// never held whole.
pub struct Tally<'a> {
    agreement: &'a Agreement,
    own: &'a OrgId,
    sent: BTreeMap<Key, SentRow>,
    /// Each report's category and severity at its latest share, per row.
    latest: BTreeMap<Key, HashMap<ReportId, (Category, Severity)>>,
    arrivals: BTreeMap<Key, Vec<f64>>,
    received: BTreeMap<Key, ReceivedRow>,
}

impl<'a> Tally<'a> {
    pub fn new(agreement: &'a Agreement, own: &'a OrgId) -> Self {
        Self {
            agreement,
            own,
            sent: BTreeMap::new(),
            latest: BTreeMap::new(),
            arrivals: BTreeMap::new(),
            received: BTreeMap::new(),
        }
    }

    /// Counts one envelope this node queued (oldest first).
    pub fn sent(&mut self, share: &SentShare) {
        let key =
            (month(share.queued_at), flow_of(self.agreement, self.own, &share.recipient), share.recipient.to_string());
        let row = self.sent.entry(key.clone()).or_insert_with(|| SentRow {
            month: key.0.clone(),
            flow: key.1,
            recipient: key.2.clone(),
            ..SentRow::default()
        });
        match (share.retracted, share.version) {
            (true, _) => row.retracted += 1,
            (false, 1) => row.new += 1,
            (false, _) => row.updated += 1,
        }
        match share.state.as_str() {
            "delivered" => {
                row.delivered += 1;
                if let Some(settled) = share.settled_at {
                    let seconds = (settled - share.queued_at).num_milliseconds().max(0) as f64 / 1000.0;
                    self.arrivals.entry(key.clone()).or_default().push(seconds);
                }
            }
            "refused" => row.refused += 1,
            "cancelled" => row.cancelled += 1,
            _ => row.waiting += 1,
        }
        self.latest.entry(key).or_default().insert(share.report, (share.category, share.severity));
    }

    /// Counts one delivery a party's node made here.
    pub fn received(&mut self, share: &ReceivedShare) {
        let key = (month(share.at), flow_of(self.agreement, &share.sender, self.own), share.sender.to_string());
        let row = self.received.entry(key.clone()).or_insert_with(|| ReceivedRow {
            month: key.0,
            flow: key.1,
            sender: key.2,
            ..ReceivedRow::default()
        });
        if share.stored {
            row.stored += 1;
        } else {
            row.not_stored += 1;
        }
    }

    /// The evaluation as counted, made at `now`.
    pub fn finish(mut self, now: DateTime<Utc>) -> Evaluation {
        for (key, row) in &mut self.sent {
            let reports = self.latest.remove(key).unwrap_or_default();
            row.reports = reports.len() as u64;
            for (category, severity) in reports.values() {
                *row.by_category.entry(category.as_str().to_owned()).or_default() += 1;
                *row.by_severity.entry(severity.as_str().to_owned()).or_default() += 1;
            }
            row.arrival_seconds = self.arrivals.remove(key).map(arrival);
        }
        let agreement = self.agreement;
        Evaluation {
            agreement: agreement.id.to_string(),
            title: agreement.title.clone(),
            node: self.own.to_string(),
            valid_from: agreement.valid_from,
            valid_until: agreement.valid_until,
            evaluation_date: agreement.evaluation_date,
            generated_at: now,
            flows: agreement.summary().into_iter().enumerate().map(|(i, text)| format!("flows[{i}]: {text}")).collect(),
            sent: self.sent.into_values().collect(),
            received: self.received.into_values().collect(),
        }
    }
}

fn month(at: DateTime<Utc>) -> String {
    at.format("%Y-%m").to_string()
}

/// A flow's number, or `usize::MAX` for one no flow covers (the agreement was changed under it).
fn flow_of(agreement: &Agreement, from: &OrgId, to: &OrgId) -> usize {
    agreement.flow(from, to).map_or(usize::MAX, |(index, _)| index)
}

/// Median, 90th percentile (nearest rank) and most of `seconds`, which is not empty.
fn arrival(mut seconds: Vec<f64>) -> Arrival {
    seconds.sort_by(f64::total_cmp);
    let rank = |q: f64| seconds[((q * seconds.len() as f64).ceil() as usize).clamp(1, seconds.len()) - 1];
    Arrival { median: rank(0.5), p90: rank(0.9), max: seconds[seconds.len() - 1] }
}

impl Evaluation {
    /// As CSV (RFC 4180): one line per month, flow and party, sent first and received after, with
    /// a column for every category and severity.
    pub fn to_csv(&self) -> String {
        let mut header: Vec<String> = [
            "direction",
            "month",
            "flow",
            "party",
            "reports",
            "new",
            "updated",
            "retracted",
            "delivered",
            "refused",
            "waiting",
            "cancelled",
            "stored",
            "not_stored",
            "arrival_median_s",
            "arrival_p90_s",
            "arrival_max_s",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        header.extend(Category::ALL.iter().map(|c| format!("category_{}", c.as_str())));
        header.extend(Severity::ALL.iter().map(|s| format!("severity_{}", s.as_str())));
        let mut lines = vec![header.join(",")];
        let flow = |n: usize| if n == usize::MAX { String::new() } else { n.to_string() };
        for row in &self.sent {
            let arrival = row.arrival_seconds.as_ref();
            let mut cells = vec![
                "sent".to_owned(),
                row.month.clone(),
                flow(row.flow),
                field(&row.recipient),
                row.reports.to_string(),
                row.new.to_string(),
                row.updated.to_string(),
                row.retracted.to_string(),
                row.delivered.to_string(),
                row.refused.to_string(),
                row.waiting.to_string(),
                row.cancelled.to_string(),
                String::new(),
                String::new(),
                arrival.map(|a| format!("{:.1}", a.median)).unwrap_or_default(),
                arrival.map(|a| format!("{:.1}", a.p90)).unwrap_or_default(),
                arrival.map(|a| format!("{:.1}", a.max)).unwrap_or_default(),
            ];
            cells.extend(
                Category::ALL.iter().map(|c| row.by_category.get(c.as_str()).copied().unwrap_or(0).to_string()),
            );
            cells.extend(
                Severity::ALL.iter().map(|s| row.by_severity.get(s.as_str()).copied().unwrap_or(0).to_string()),
            );
            lines.push(cells.join(","));
        }
        let blanks = Category::ALL.len() + Severity::ALL.len();
        for row in &self.received {
            let mut cells = vec!["received".to_owned(), row.month.clone(), flow(row.flow), field(&row.sender)];
            cells.extend(std::iter::repeat_n(String::new(), 8));
            cells.push(row.stored.to_string());
            cells.push(row.not_stored.to_string());
            cells.extend(std::iter::repeat_n(String::new(), 3 + blanks));
            lines.push(cells.join(","));
        }
        lines.join("\r\n") + "\r\n"
    }
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreement() -> Agreement {
        crate::domain::agreement::template::builtin("lulea-safety-agreement").unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn share(report: u128, to: &str, version: i64, state: &str, queued: &str, settled: Option<&str>) -> SentShare {
        SentShare {
            report: uuid::Uuid::from_u128(report).into(),
            recipient: OrgId::parse(to).unwrap(),
            version,
            retracted: false,
            category: Category::Vandalism,
            severity: Severity::Moderate,
            state: state.into(),
            queued_at: at(queued),
            settled_at: settled.map(at),
        }
    }

    #[test]
    fn sent_envelopes_are_counted_per_month_flow_and_recipient_with_reports_counted_once() {
        let lulea = OrgId::parse("se-kommun-lulea").unwrap();
        let mut retraction = share(1, "se-polisen-norrbotten", 3, "queued", "2026-11-20T10:00:00Z", None);
        retraction.retracted = true;
        let mut theft = share(2, "se-polisen-norrbotten", 1, "refused", "2026-11-03T10:00:00Z", None);
        theft.category = Category::Theft;
        let shares = vec![
            share(1, "se-polisen-norrbotten", 1, "delivered", "2026-11-02T10:00:00Z", Some("2026-11-02T10:00:02Z")),
            share(1, "se-polisen-norrbotten", 2, "delivered", "2026-11-02T11:00:00Z", Some("2026-11-02T11:00:04Z")),
            retraction,
            theft,
            share(3, "se-polisen-norrbotten", 1, "delivered", "2026-12-01T00:00:00Z", Some("2026-12-01T00:00:01Z")),
            share(4, "se-ica-hertsotorget", 1, "cancelled", "2026-11-05T00:00:00Z", None),
        ];
        let evaluation = evaluate(&agreement(), &lulea, &shares, &[], at("2026-12-02T00:00:00Z"));
        let rows: Vec<(&str, usize, &str, u64)> =
            evaluation.sent.iter().map(|r| (r.month.as_str(), r.flow, r.recipient.as_str(), r.reports)).collect();
        assert_eq!(
            rows,
            [
                ("2026-11", 0, "se-polisen-norrbotten", 2),
                ("2026-11", 2, "se-ica-hertsotorget", 1),
                ("2026-12", 0, "se-polisen-norrbotten", 1)
            ]
        );
        let november = &evaluation.sent[0];
        assert_eq!((november.new, november.updated, november.retracted), (2, 1, 1));
        assert_eq!((november.delivered, november.refused, november.waiting, november.cancelled), (2, 1, 1, 0));
        assert_eq!(november.by_category, BTreeMap::from([("theft".into(), 1), ("vandalism".into(), 1)]));
        let arrival = november.arrival_seconds.as_ref().unwrap();
        assert_eq!((arrival.median, arrival.p90, arrival.max), (2.0, 4.0, 4.0));
    }

    #[test]
    fn the_csv_has_one_line_per_row_and_a_column_for_every_category_and_severity() {
        let lulea = OrgId::parse("se-kommun-lulea").unwrap();
        let police = OrgId::parse("se-polisen-norrbotten").unwrap();
        let shares =
            [share(1, "se-polisen-norrbotten", 1, "delivered", "2026-11-02T10:00:00Z", Some("2026-11-02T10:00:02Z"))];
        let received = [ReceivedShare { sender: police, at: at("2026-11-04T00:00:00Z"), stored: true }];
        let csv = evaluate(&agreement(), &lulea, &shares, &received, at("2026-12-02T00:00:00Z")).to_csv();
        let lines: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{csv}");
        let column = |name: &str| lines[0].iter().position(|c| *c == name).unwrap();
        assert_eq!(lines[1][column("category_vandalism")], "1");
        assert_eq!(lines[1][column("arrival_median_s")], "2.0");
        assert_eq!((lines[2][0], lines[2][column("flow")], lines[2][column("stored")]), ("received", "1", "1"));
    }
}
