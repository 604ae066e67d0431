//! The areas of agreements and flows, and their geometry: whether a point lies in an area, and
//! whether one area lies within another (how a local agreement is held to its framework). Plane
//! geometry on WGS84 degrees, which is exact enough at the scale of a municipality.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::validation::ValidationErrors;

/// An area: a bounding box `[min_lon, min_lat, max_lon, max_lat]`, municipality codes, or a polygon
/// of `[lon, lat]` points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Area {
    Bbox([f64; 4]),
    Municipalities(Vec<String>),
    Polygon(Vec<[f64; 2]>),
}

impl Area {
    /// Whether a point (and its municipality, if known) lies in the area.
    pub fn contains(&self, lat: f64, lon: f64, municipality: Option<&str>) -> bool {
        match self {
            Area::Bbox([w, s, e, n]) => (*s..=*n).contains(&lat) && (*w..=*e).contains(&lon),
            Area::Municipalities(codes) => municipality.is_some_and(|m| codes.iter().any(|c| c == m)),
            Area::Polygon(points) => polygon_contains(points, lon, lat),
        }
    }

    /// Whether every point of `self` lies in `outer`: municipalities by their codes; boxes and
    /// polygons when every corner of `self` lies in `outer` and no edge of `self` crosses an edge of
    /// `outer` (corners alone would let a box span the notch of a U-shaped area). Undecidable mixes
    /// count as not contained.
    pub fn within(&self, outer: &Area) -> bool {
        match (self, outer) {
            (Area::Municipalities(inner), Area::Municipalities(outer)) => inner.iter().all(|c| outer.contains(c)),
            (Area::Municipalities(_), _) | (_, Area::Municipalities(_)) => false,
            (inner_area, outer_area) => {
                let (inner, outer) = (inner_area.corners(), outer_area.corners());
                inner.iter().all(|[lon, lat]| outer_area.contains(*lat, *lon, None))
                    && !edges(&inner).any(|a| edges(&outer).any(|b| segments_cross(a, b)))
            }
        }
    }

    /// The outline's corners in order around it.
    fn corners(&self) -> Vec<[f64; 2]> {
        match self {
            Area::Bbox([w, s, e, n]) => vec![[*w, *s], [*w, *n], [*e, *n], [*e, *s]],
            Area::Polygon(points) => points.clone(),
            Area::Municipalities(_) => Vec::new(),
        }
    }
}

/// The edges of a closed outline.
fn edges(points: &[[f64; 2]]) -> impl Iterator<Item = ([f64; 2], [f64; 2])> + '_ {
    points.iter().enumerate().map(|(i, p)| (*p, points[(i + 1) % points.len()]))
}

/// Whether two segments cross at a point inside both (touching ends or overlapping borders do not
/// count: an area may share its framework's border).
fn segments_cross((a, b): ([f64; 2], [f64; 2]), (c, d): ([f64; 2], [f64; 2])) -> bool {
    let side = |p: [f64; 2], q: [f64; 2], r: [f64; 2]| (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]);
    let (d1, d2) = (side(c, d, a), side(c, d, b));
    let (d3, d4) = (side(a, b, c), side(a, b, d));
    d1 * d2 < 0.0 && d3 * d4 < 0.0
}

/// Ray casting; a point on an edge may fall either way, which only matters at the border.
fn polygon_contains(points: &[[f64; 2]], x: f64, y: f64) -> bool {
    let mut inside = false;
    let mut j = points.len().wrapping_sub(1);
    for (i, [xi, yi]) in points.iter().enumerate() {
        let [xj, yj] = points[j];
        if (*yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Adds an error at `path` unless `area` is well-formed: coordinates in WGS84 degrees, a box's
/// corners in order, four-digit municipality codes, a polygon of at least three points.
pub(super) fn check_area(area: &Area, path: &str, errors: &mut ValidationErrors) {
    let lon_ok = |v: f64| v.is_finite() && (-180.0..=180.0).contains(&v);
    let lat_ok = |v: f64| v.is_finite() && (-90.0..=90.0).contains(&v);
    match area {
        Area::Bbox([w, s, e, n]) => errors.check(
            lon_ok(*w) && lon_ok(*e) && lat_ok(*s) && lat_ok(*n) && w <= e && s <= n,
            format!("{path}.bbox"),
            "must be [min_lon, min_lat, max_lon, max_lat] in WGS84 degrees",
        ),
        Area::Municipalities(codes) => errors.check(
            !codes.is_empty() && codes.iter().all(|c| c.len() == 4 && c.chars().all(|d| d.is_ascii_digit())),
            format!("{path}.municipalities"),
            "must list four-digit municipality codes",
        ),
        Area::Polygon(points) => errors.check(
            points.len() >= 3 && points.iter().all(|[lon, lat]| lon_ok(*lon) && lat_ok(*lat)),
            format!("{path}.polygon"),
            "needs at least three [lon, lat] points in WGS84 degrees",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_area_is_within_another_only_if_no_part_of_it_reaches_outside() {
        // A U-shaped framework area: two arms (x 0-1 and 2-3) joined at the bottom (y 0-1).
        let u = Area::Polygon(vec![
            [0.0, 0.0],
            [3.0, 0.0],
            [3.0, 3.0],
            [2.0, 3.0],
            [2.0, 1.0],
            [1.0, 1.0],
            [1.0, 3.0],
            [0.0, 3.0],
        ]);
        // A box with its corners in the two arms spans the notch between them.
        let spanning = Area::Bbox([0.5, 2.0, 2.5, 2.5]);
        assert!(!spanning.within(&u));
        assert!(Area::Bbox([0.2, 0.2, 2.8, 0.8]).within(&u), "the bottom part is inside");
        assert!(Area::Bbox([0.2, 1.5, 0.8, 2.5]).within(&u), "an arm is inside");
        assert!(Area::Bbox([0.0, 0.0, 1.0, 1.0]).within(&Area::Bbox([0.0, 0.0, 1.0, 1.0])), "an area is within itself");
        assert!(!Area::Bbox([0.0, 0.0, 2.0, 1.0]).within(&Area::Bbox([0.0, 0.0, 1.0, 1.0])));
        let codes = |c: &[&str]| Area::Municipalities(c.iter().map(|s| s.to_string()).collect());
        assert!(codes(&["0581"]).within(&codes(&["0581", "0580"])));
        assert!(!codes(&["0581"]).within(&Area::Bbox([0.0, 0.0, 1.0, 1.0])));
    }
}
