//! The situation picture as a question: which current reports, in which window of time and area, of
//! which kinds, from whom. [`SituationQuery`] is the parsed, checked form of that question; the store
//! answers it and the API renders the answer as JSON or GeoJSON. Pages are cut by a keyset [`Cursor`]
//! (newest observation first), so a page never skips or repeats a report when new ones arrive.

use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::ids::{OrgId, ReportId};
use super::report::{Category, Report, Severity, Status};
use super::validation::ValidationErrors;
use super::view::ReportView;

/// The most reports one page may hold, and how many it holds when the caller does not say.
pub const MAX_PAGE_SIZE: u32 = 1_000;
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// A checked question for the situation picture. Time filters select reports whose observed span
/// (`observed_at` to `observed_until`) overlaps `[since, until]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SituationQuery {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub bbox: Option<BBox>,
    pub categories: Vec<Category>,
    pub min_severity: Option<Severity>,
    pub origins: Vec<OrgId>,
    pub status: Option<Status>,
    /// Only the node's own reports, or only received ones.
    pub source: Option<Source>,
    pub limit: u32,
    pub after: Option<Cursor>,
}

/// Whose reports: the node's own, or those partners shared with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Own,
    Received,
}

impl FromStr for Source {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "own" => Ok(Self::Own),
            "received" => Ok(Self::Received),
            _ => Err("must be own or received".to_owned()),
        }
    }
}

/// What the filters of a [`SituationQuery`] look at in one report of the picture: the columns the
/// store keeps beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct PictureFacts {
    pub observed_at_ms: i64,
    pub observed_end_ms: i64,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub category: String,
    pub severity: i64,
    pub origin: String,
    pub status: String,
    pub retracted: bool,
    pub expires_at_ms: Option<i64>,
    pub received: bool,
}

impl Default for SituationQuery {
    fn default() -> Self {
        Self {
            since: None,
            until: None,
            bbox: None,
            categories: Vec::new(),
            min_severity: None,
            origins: Vec::new(),
            status: None,
            source: None,
            limit: DEFAULT_PAGE_SIZE,
            after: None,
        }
    }
}

impl SituationQuery {
    /// Checks what cannot be checked field by field: a window that ends before it starts.
    pub fn check(self) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if let (Some(since), Some(until)) = (self.since, self.until) {
            errors.check(since <= until, "until", "must not be before since");
        }
        errors.check(
            (1..=MAX_PAGE_SIZE).contains(&self.limit),
            "limit",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        );
        errors.into_result(self)
    }

    /// Whether a report with `facts` is in the picture this query asks for at `now`: current (not
    /// retracted, not expired) and within every filter. The store asks the same in SQL for a page;
    /// this is the rule for one report at a time, as the live stream judges each change (the tests
    /// compare the two over the same changes).
    pub fn admits(&self, facts: &PictureFacts, now: DateTime<Utc>) -> bool {
        let now_ms = now.timestamp_millis();
        let in_box = |b: &BBox| match (facts.lat, facts.lon) {
            (Some(lat), Some(lon)) => (b.min_lat..=b.max_lat).contains(&lat) && (b.min_lon..=b.max_lon).contains(&lon),
            _ => false,
        };
        !facts.retracted
            && facts.expires_at_ms.is_none_or(|at| at > now_ms)
            && self.since.is_none_or(|since| facts.observed_end_ms >= since.timestamp_millis())
            && self.until.is_none_or(|until| facts.observed_at_ms <= until.timestamp_millis())
            && self.bbox.as_ref().is_none_or(in_box)
            && (self.categories.is_empty() || self.categories.iter().any(|c| c.as_str() == facts.category))
            && self.min_severity.is_none_or(|min| facts.severity >= i64::from(min.rank()))
            && (self.origins.is_empty() || self.origins.iter().any(|o| o.as_str() == facts.origin))
            && self.status.is_none_or(|status| status.as_str() == facts.status)
            && self.source.is_none_or(|source| (source == Source::Received) == facts.received)
    }
}

/// A bounding box in WGS84 degrees, in GeoJSON order: west, south, east, north.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    pub min_lon: f64,
    pub min_lat: f64,
    pub max_lon: f64,
    pub max_lat: f64,
}

impl FromStr for BBox {
    type Err = String;

    /// Parses `min_lon,min_lat,max_lon,max_lat`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const FORM: &str = "must be four numbers: min_lon,min_lat,max_lon,max_lat (WGS84 degrees)";
        let parts: Vec<f64> =
            s.split(',').map(|p| p.trim().parse::<f64>()).collect::<Result<_, _>>().map_err(|_| FORM.to_owned())?;
        let [min_lon, min_lat, max_lon, max_lat] = parts[..] else {
            return Err(FORM.to_owned());
        };
        if ![min_lon, min_lat, max_lon, max_lat].iter().all(|v| v.is_finite()) {
            return Err(FORM.to_owned());
        }
        if !(-180.0..=180.0).contains(&min_lon) || !(-180.0..=180.0).contains(&max_lon) {
            return Err("longitudes must be between -180 and 180".to_owned());
        }
        if !(-90.0..=90.0).contains(&min_lat) || !(-90.0..=90.0).contains(&max_lat) {
            return Err("latitudes must be between -90 and 90".to_owned());
        }
        if min_lon > max_lon || min_lat > max_lat {
            return Err(
                "the minimum must not exceed the maximum (boxes across the antimeridian are not supported)".to_owned()
            );
        }
        Ok(Self { min_lon, min_lat, max_lon, max_lat })
    }
}

/// Where a page ended: the last report's observation time and id. Opaque to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub observed_at_ms: i64,
    pub id: ReportId,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.observed_at_ms, self.id))
    }
}

impl FromStr for Cursor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const BAD: &str = "is not a cursor this node issued; use the next_cursor of the previous page";
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| BAD.to_owned())?;
        let text = String::from_utf8(bytes).map_err(|_| BAD.to_owned())?;
        let (ms, id) = text.split_once(':').ok_or_else(|| BAD.to_owned())?;
        Ok(Self {
            observed_at_ms: ms.parse().map_err(|_| BAD.to_owned())?,
            id: Uuid::parse_str(id).map_err(|_| BAD.to_owned())?.into(),
        })
    }
}

/// One page of the situation picture and where the next one starts.
#[derive(Debug, Clone, PartialEq)]
pub struct SituationPage {
    pub reports: Vec<PictureReport>,
    pub next: Option<Cursor>,
}

/// One report in the picture: one of the node's own, in full, or one a partner shared, in the form
/// the agreement it came under allows (`agreement` names it).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum PictureReport {
    Own(Report),
    Received(ReportView),
}

impl PictureReport {
    pub fn id(&self) -> ReportId {
        match self {
            Self::Own(report) => report.id,
            Self::Received(view) => view.id,
        }
    }

    /// Where it is, as `(lat, lon)`, if the picture may say.
    pub fn point(&self) -> Option<(f64, f64)> {
        match self {
            Self::Own(report) => Some((report.content.location.lat, report.content.location.lon)),
            Self::Received(view) => view.location.as_ref().and_then(|l| l.lat.zip(l.lon)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bbox_parses_in_geojson_order_and_refuses_nonsense() {
        let b: BBox = "16.0,58.5,16.3,58.7".parse().unwrap();
        assert_eq!((b.min_lon, b.min_lat, b.max_lon, b.max_lat), (16.0, 58.5, 16.3, 58.7));
        assert!("16.3,58.5,16.0,58.7".parse::<BBox>().is_err());
        assert!("1,2,3".parse::<BBox>().is_err());
        assert!("NaN,1,2,3".parse::<BBox>().is_err());
        assert!("0,-91,1,1".parse::<BBox>().is_err());
    }

    #[test]
    fn cursors_round_trip_and_refuse_forgeries() {
        let c = Cursor { observed_at_ms: 1_780_000_000_000, id: ReportId::new_at(DateTime::UNIX_EPOCH) };
        assert_eq!(c.encode().parse::<Cursor>().unwrap(), c);
        assert!("bm90LWEtY3Vyc29y".parse::<Cursor>().is_err());
    }
}
