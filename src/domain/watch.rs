//! A watch: what a subscriber wants to hear of the picture, by area (a GeoJSON polygon), kinds,
//! least severity and source ("skolor i Hageby, natt"). It is judged one report at a time, by the
//! same rule as the picture's filters ([`SituationQuery::admits`]) and the areas' geometry.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::agreement::Area;
use super::report::{Category, Severity};
use super::situation::{PictureFacts, SituationQuery, Source};
use super::validation::ValidationErrors;

/// The most corners a watch's area may have.
pub const MAX_CORNERS: usize = 1_000;

/// What a subscriber wants to hear of. Every part left out admits everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Watch {
    /// Only reports whose point lies in this area (a report without a point is outside).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area: Option<GeoPolygon>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<Category>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<Severity>,
    /// `own`, `received`, or both (left out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Source>,
}

/// A GeoJSON Polygon (RFC 7946): rings of `[longitude, latitude]`, each closed (its last position
/// repeats its first). The outer ring counts; holes are not supported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GeoPolygon {
    /// `Polygon`.
    #[serde(rename = "type")]
    #[schema(pattern = "^Polygon$", example = "Polygon")]
    pub kind: String,
    #[schema(example = json!([[[16.14, 58.60], [16.17, 58.60], [16.17, 58.62], [16.14, 58.62], [16.14, 58.60]]]))]
    pub coordinates: Vec<Vec<[f64; 2]>>,
}

impl Watch {
    /// Adds every problem to `errors`, each with its path.
    pub fn check(&self, errors: &mut ValidationErrors) {
        if let Some(area) = &self.area {
            errors.check(area.kind == "Polygon", "watch.area.type", "must be Polygon");
            match area.coordinates.as_slice() {
                [outer] => {
                    let closed = outer.len() >= 4 && outer.first() == outer.last();
                    errors.check(
                        closed,
                        "watch.area.coordinates",
                        "the ring needs 4 or more positions, the last the same as the first",
                    );
                    errors.check(
                        outer.len() <= MAX_CORNERS,
                        "watch.area.coordinates",
                        format!("at most {MAX_CORNERS} positions"),
                    );
                    let in_range =
                        outer.iter().all(|[lon, lat]| (-180.0..=180.0).contains(lon) && (-90.0..=90.0).contains(lat));
                    errors.check(in_range, "watch.area.coordinates", "longitudes -180 to 180, latitudes -90 to 90");
                }
                _ => errors.add("watch.area.coordinates", "one ring, the outline (holes are not supported)"),
            }
        }
    }

    /// Whether a report with `facts` is in the picture at `now` and within this watch.
    pub fn admits(&self, facts: &PictureFacts, now: DateTime<Utc>) -> bool {
        let query = SituationQuery {
            categories: self.categories.clone(),
            min_severity: self.min_severity,
            source: match self.sources.as_slice() {
                [one] => Some(*one),
                _ => None,
            },
            ..SituationQuery::default()
        };
        let in_area = |area: &GeoPolygon| match (facts.lat, facts.lon, area.coordinates.first()) {
            (Some(lat), Some(lon), Some(outer)) => Area::Polygon(outer.clone()).contains(lat, lon, None),
            _ => false,
        };
        query.admits(facts, now) && self.area.as_ref().is_none_or(in_area)
    }
}
