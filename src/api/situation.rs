//! `GET /api/v1/situation`: the merged situation picture, own and received reports, as JSON or as a
//! GeoJSON FeatureCollection that a map library opens as is. Query parameters are parsed here into a
//! checked [`SituationQuery`], every bad one named in the problem.

use std::str::FromStr;

use actix_web::http::header;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::{Caller, READERS};
use crate::domain::situation::DEFAULT_PAGE_SIZE;
use crate::domain::{
    BBox, Category, Cursor, OrgId, PictureReport, Severity, SituationPage, SituationQuery, Status, ValidationErrors,
};
use crate::http::input::{parse_field, parse_time, query};
use crate::http::problem::{ApiError, AuthProblems, Problem};

/// Filters of the situation picture. Lists are comma-separated.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SituationParams {
    /// Reports whose observed time span ends at or after this time (RFC 3339).
    #[param(example = "2026-11-24T18:00:00Z")]
    since: Option<String>,
    /// Reports whose observed time span begins at or before this time (RFC 3339).
    #[param(example = "2026-11-25T06:00:00Z")]
    until: Option<String>,
    /// A bounding box in WGS84 degrees: min_lon,min_lat,max_lon,max_lat.
    #[param(example = "16.10,58.55,16.25,58.62")]
    bbox: Option<String>,
    /// Categories, comma-separated, e.g. `vandalism,burglary`.
    category: Option<String>,
    /// The least severity: minor, moderate, severe or critical.
    min_severity: Option<String>,
    /// Origin organisations, comma-separated.
    origin: Option<String>,
    /// ongoing or resolved.
    status: Option<String>,
    /// Reports per page, 1 to 1000 (default 100).
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// `json` (default) or `geojson`; `Accept: application/geo+json` also selects GeoJSON.
    format: Option<String>,
}

/// One page of the situation picture.
#[derive(Debug, Serialize, ToSchema)]
pub struct SituationResponse {
    /// Current reports, own and received, newest observation first.
    pub reports: Vec<PictureReport>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The situation picture as a GeoJSON FeatureCollection (RFC 7946).
#[derive(Debug, Serialize, ToSchema)]
pub struct FeatureCollection {
    #[serde(rename = "type")]
    #[schema(example = "FeatureCollection")]
    pub kind: &'static str,
    pub features: Vec<Feature>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One report as a GeoJSON Feature: its point, and the report as properties.
#[derive(Debug, Serialize, ToSchema)]
pub struct Feature {
    #[serde(rename = "type")]
    #[schema(example = "Feature")]
    pub kind: &'static str,
    #[schema(value_type = String)]
    pub id: String,
    /// Absent (null) when the report's agreement does not let its point be known.
    pub geometry: Option<Point>,
    pub properties: PictureReport,
}

/// A GeoJSON Point: `[longitude, latitude]`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Point {
    #[serde(rename = "type")]
    #[schema(example = "Point")]
    pub kind: &'static str,
    #[schema(example = json!([16.1924, 58.5877]))]
    pub coordinates: [f64; 2],
}

const GEO_JSON: &str = "application/geo+json";

/// The merged situation picture: current reports (latest version, not retracted, not expired).
#[utoipa::path(
    get, path = "/api/v1/situation", tag = "situation",
    params(SituationParams),
    responses(
        (status = 200, description = "One page of the picture", content(
            (SituationResponse = "application/json"),
            (FeatureCollection = "application/geo+json"),
        )),
        (status = 406, description = "The Accept header allows neither JSON nor GeoJSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A filter is invalid; `errors` names each", body = Problem, content_type = "application/problem+json"),
        AuthProblems,
    ),
    security(("bearer" = ["reporter", "coordinator", "analyst"]))
)]
pub async fn situation(caller: Caller, state: Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let params: SituationParams = query(&req)?;
    let geojson = wants_geojson(&req, params.format.as_deref())?;
    let query = parse_query(params)?;
    let page = state.store.situation(&query, state.clock.now()).await?;
    Ok(if geojson { render_geojson(page) } else { render_json(page) })
}

/// Reads the filters, collecting an error for every bad one.
fn parse_query(params: SituationParams) -> Result<SituationQuery, ApiError> {
    let mut errors = ValidationErrors::new();
    let query = SituationQuery {
        since: parse_field(&mut errors, "since", params.since, parse_time),
        until: parse_field(&mut errors, "until", params.until, parse_time),
        bbox: parse_field(&mut errors, "bbox", params.bbox, |s| BBox::from_str(&s)),
        categories: parse_field(&mut errors, "category", params.category, |s| parse_list::<Category>(&s))
            .unwrap_or_default(),
        min_severity: parse_field(&mut errors, "min_severity", params.min_severity, |s| s.parse::<Severity>()),
        origins: parse_field(&mut errors, "origin", params.origin, |s| parse_list::<OrgId>(&s)).unwrap_or_default(),
        status: parse_field(&mut errors, "status", params.status, |s| s.parse::<Status>()),
        limit: parse_field(&mut errors, "limit", params.limit, |s| {
            s.parse::<u32>().map_err(|_| "must be a whole number from 1 to 1000".to_owned())
        })
        .unwrap_or(DEFAULT_PAGE_SIZE),
        after: parse_field(&mut errors, "cursor", params.cursor, |s| s.parse::<Cursor>()),
    };
    let query = errors.into_result(query)?;
    Ok(query.check()?)
}

fn parse_list<T: FromStr>(raw: &str) -> Result<Vec<T>, String>
where
    T::Err: ToString,
{
    raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| T::from_str(s).map_err(|e| e.to_string())).collect()
}

fn wants_geojson(req: &HttpRequest, format: Option<&str>) -> Result<bool, ApiError> {
    match format {
        Some("geojson") => return Ok(true),
        Some("json") => return Ok(false),
        Some(_) => return Err(ValidationErrors::single("format", "must be json or geojson").into()),
        None => {}
    }
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("*/*");
    if accept.contains(GEO_JSON) {
        Ok(true)
    } else if accept.contains("json") || accept.contains("*/*") || accept.contains("application/*") {
        Ok(false)
    } else {
        Err(ApiError::NotAcceptable)
    }
}

fn render_json(page: SituationPage) -> HttpResponse {
    let next_cursor = page.next.map(|c| c.encode());
    HttpResponse::Ok().json(SituationResponse { reports: page.reports, next_cursor })
}

fn render_geojson(page: SituationPage) -> HttpResponse {
    let features = page
        .reports
        .into_iter()
        .map(|report| Feature {
            kind: "Feature",
            id: report.id().to_string(),
            geometry: report.point().map(|(lat, lon)| Point { kind: "Point", coordinates: [lon, lat] }),
            properties: report,
        })
        .collect();
    let collection =
        FeatureCollection { kind: "FeatureCollection", features, next_cursor: page.next.map(|c| c.encode()) };
    HttpResponse::Ok().content_type(GEO_JSON).json(collection)
}
