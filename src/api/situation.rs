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
    BBox, Category, Cursor, OrgId, PictureReport, Severity, SituationPage, SituationQuery, Source, Status,
    ValidationErrors,
};
use crate::http::input::{parse_field, parse_time, query, query_with_lists};
use crate::http::problem::{ApiError, AuthProblems, Problem};

/// Filters of the situation picture, for a page and for the live stream alike. A list is given by
/// repeating its parameter or comma-separated.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PictureFilters {
    /// Reports whose observed time span ends at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime, example = "2026-11-24T18:00:00Z")]
    since: Option<String>,
    /// Reports whose observed time span begins at or before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime, example = "2026-11-25T06:00:00Z")]
    until: Option<String>,
    /// A bounding box in WGS84 degrees: min_lon,min_lat,max_lon,max_lat.
    #[param(example = "16.10,58.55,16.25,58.62")]
    bbox: Option<String>,
    /// Categories, e.g. `category=vandalism&category=burglary` (or comma-separated).
    #[param(value_type = Option<Vec<Category>>, style = Form, explode = true)]
    category: Option<String>,
    /// The least severity: minor, moderate, severe or critical.
    #[param(value_type = Option<Severity>)]
    min_severity: Option<String>,
    /// Origin organisations, repeated like `category` (or comma-separated).
    #[param(value_type = Option<Vec<OrgId>>, style = Form, explode = true)]
    origin: Option<String>,
    /// ongoing or resolved.
    #[param(value_type = Option<Status>)]
    status: Option<String>,
    /// `own` (this node's reports) or `received` (partners').
    #[param(value_type = Option<Source>)]
    source: Option<String>,
}

impl PictureFilters {
    /// The filters of the request's query; a list may be repeated, comma-separated, or both.
    pub fn of(req: &HttpRequest) -> Result<Self, ApiError> {
        query_with_lists(req, &["category", "origin"])
    }
}

/// How one page of the picture is cut and rendered.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Reports per page, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// `json` (default), `geojson` or `cap` (an Atom feed of CAP 1.2 alerts);
    /// `Accept: application/geo+json` or `application/atom+xml` also selects them.
    #[param(value_type = Option<Format>)]
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
    /// The live stream's last event before this page was read: pass it as `last_event_id` to
    /// `/api/v1/situation/stream` to follow every change from here on.
    pub last_event_id: i64,
    /// Your own reports on this page that wait for a coordinator's release (or were refused one):
    /// nothing of them has left the node. See `/api/v1/reports/{id}/release`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<String>,
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
    /// As in the JSON page: where the live stream continues from this page.
    pub last_event_id: i64,
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
const ATOM: &str = "application/atom+xml";

/// The merged situation picture: current reports (latest version, not retracted, not expired).
#[utoipa::path(
    get, path = "/api/v1/situation", tag = "situation",
    params(PictureFilters, PageParams),
    responses(
        (status = 200, description = "One page of the picture", content(
            (SituationResponse = "application/json"),
            (FeatureCollection = "application/geo+json"),
            (String = "application/atom+xml"),
        )),
        (status = 406, description = "The Accept header allows none of JSON, GeoJSON and Atom", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A filter is invalid; `errors` names each", body = Problem, content_type = "application/problem+json"),
        AuthProblems,
    ),
    security(("bearer" = ["reporter", "coordinator", "analyst"]))
)]
pub async fn situation(caller: Caller, state: Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    only_known_parameters(&req, &[&names_of::<PictureFilters>(), &names_of::<PageParams>()])?;
    let (filters, page): (PictureFilters, PageParams) = (PictureFilters::of(&req)?, query(&req)?);
    let format = wanted_format(&req, page.format.as_deref())?;
    let mut errors = ValidationErrors::new();
    let mut query = parse_filters(&mut errors, filters);
    query.limit = parse_field(&mut errors, "limit", page.limit, |s| {
        s.parse::<u32>().map_err(|_| "must be a whole number from 1 to 1000".to_owned())
    })
    .unwrap_or(DEFAULT_PAGE_SIZE);
    query.after = parse_field(&mut errors, "cursor", page.cursor, |s| s.parse::<Cursor>());
    let query = errors.into_result(query)?.check()?;
    // Read first: whatever changes while the page is read comes again on the stream, and a change
    // applied twice leaves the picture as it was.
    let last_event_id = state.store.picture_event_bounds().await?.last;
    let mut page = state.store.situation(&query, state.clock.now()).await?;
    page.reports = super::persons::shown(&state, &caller.actor, &caller.roles, page.reports).await?;
    Ok(match format {
        Format::Json => {
            let held = state.store.held_reports().await?;
            let held = page.reports.iter().map(|r| r.id()).filter(|id| held.contains(id)).map(|id| id.to_string());
            let held = held.collect();
            render_json(page, last_event_id, held)
        }
        Format::GeoJson => render_geojson(page, last_event_id),
        Format::Cap => HttpResponse::Ok().content_type(ATOM).body(crate::domain::cap::feed_of(
            state.node.org_id.as_str(),
            &page.reports,
            state.clock.now(),
        )),
    })
}

/// Reads the filters, adding an error for every bad one.
pub fn parse_filters(errors: &mut ValidationErrors, filters: PictureFilters) -> SituationQuery {
    SituationQuery {
        since: parse_field(errors, "since", filters.since, parse_time),
        until: parse_field(errors, "until", filters.until, parse_time),
        bbox: parse_field(errors, "bbox", filters.bbox, |s| BBox::from_str(&s)),
        categories: parse_field(errors, "category", filters.category, |s| parse_list::<Category>(&s))
            .unwrap_or_default(),
        min_severity: parse_field(errors, "min_severity", filters.min_severity, |s| s.parse::<Severity>()),
        origins: parse_field(errors, "origin", filters.origin, |s| parse_list::<OrgId>(&s)).unwrap_or_default(),
        status: parse_field(errors, "status", filters.status, |s| s.parse::<Status>()),
        source: parse_field(errors, "source", filters.source, |s| s.parse::<Source>()),
        ..SituationQuery::default()
    }
}

/// Refuses a query parameter that none of `known` names, naming it.
pub fn only_known_parameters(req: &HttpRequest, known: &[&[String]]) -> Result<(), ApiError> {
    let pairs: Vec<(String, String)> = query(req)?;
    let mut errors = ValidationErrors::new();
    for (name, _) in pairs {
        if !known.iter().any(|names| names.contains(&name)) {
            errors.add(
                "query",
                format!("unknown parameter `{name}`; this operation takes {}", known.concat().join(", ")),
            );
        }
    }
    Ok(errors.into_result(())?)
}

/// The names of a set of query parameters, as documented.
pub fn names_of<T: IntoParams>() -> Vec<String> {
    T::into_params(|| None).into_iter().map(|p| p.name).collect()
}

fn parse_list<T: FromStr>(raw: &str) -> Result<Vec<T>, String>
where
    T::Err: ToString,
{
    raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| T::from_str(s).map_err(|e| e.to_string())).collect()
}

/// How a page is rendered, as the `format` parameter names it.
#[derive(ToSchema)]
#[schema(as = PageFormat, rename_all = "lowercase")]
pub enum Format {
    Json,
    GeoJson,
    Cap,
}

fn wanted_format(req: &HttpRequest, format: Option<&str>) -> Result<Format, ApiError> {
    match format {
        Some("geojson") => return Ok(Format::GeoJson),
        Some("json") => return Ok(Format::Json),
        Some("cap") => return Ok(Format::Cap),
        Some(_) => return Err(ValidationErrors::single("format", "must be json, geojson or cap").into()),
        None => {}
    }
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("*/*");
    if accept.contains(GEO_JSON) {
        Ok(Format::GeoJson)
    } else if accept.contains(ATOM) {
        Ok(Format::Cap)
    } else if accept.contains("json") || accept.contains("*/*") || accept.contains("application/*") {
        Ok(Format::Json)
    } else {
        Err(ApiError::NotAcceptable)
    }
}

fn render_json(page: SituationPage, last_event_id: i64, held: Vec<String>) -> HttpResponse {
    let next_cursor = page.next.map(|c| c.encode());
    HttpResponse::Ok().json(SituationResponse { reports: page.reports, next_cursor, last_event_id, held })
}

fn render_geojson(page: SituationPage, last_event_id: i64) -> HttpResponse {
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
    let next_cursor = page.next.map(|c| c.encode());
    let collection = FeatureCollection { kind: "FeatureCollection", features, next_cursor, last_event_id };
    HttpResponse::Ok().content_type(GEO_JSON).json(collection)
}
