//! The situation picture, map first: own and received reports on a map with a list beside it that
//! follows the map's view, filtered by a time window, category, severity, status, origin partner
//! and own/received; the browser loads it from `/api/v1/situation` and follows
//! `/api/v1/situation/stream`, so the page changes within moments of the picture, without a reload.
//! And the patrol sheet: the same picture for a window and an area, rendered here for print.

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::ConsoleSettings;
use super::i18n::Texts;
use super::page::{Chrome, ConsoleError, Section, html};
use super::time;
use super::viewer::Viewer;
use crate::api::AppState;
use crate::api::auth::{READERS, WRITERS};
use crate::domain::situation::{BBox, MAX_PAGE_SIZE, PictureReport, SituationQuery, Source};
use crate::domain::view::ReportView;
use crate::domain::{Category, OrgId, Report, Severity, SiteKind, Status, Tlp};

/// The time windows a person picks from.
const WINDOWS: [(&str, i64); 4] = [("1h", 1), ("6h", 6), ("24h", 24), ("7d", 24 * 7)];

/// The picture's filters as the page's form sends them (`?window=24h&category=fire&...`).
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// `1h`, `6h`, `24h`, `7d` or `custom` (with `from` and `until`).
    pub window: String,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub categories: Vec<Category>,
    pub min_severity: Option<Severity>,
    pub status: Option<Status>,
    pub origins: Vec<OrgId>,
    pub source: Option<Source>,
    pub bbox: Option<BBox>,
}

impl Filters {
    /// The filters of a request's query. A value that does not parse is left out: the form only
    /// offers valid ones, and a hand-edited address still shows a picture.
    pub fn of(req: &HttpRequest, zone: chrono_tz::Tz) -> Filters {
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect();
        let all = |name: &'static str| values(&pairs, name);
        let one = |name: &'static str| values(&pairs, name).find(|v| !v.is_empty());
        let window = match one("window") {
            Some(w) if w == "custom" || WINDOWS.iter().any(|(name, _)| *name == w) => w.to_owned(),
            _ => "24h".to_owned(),
        };
        Filters {
            window,
            from: one("from").and_then(|v| time::parse_input(v, zone).ok()),
            until: one("until").and_then(|v| time::parse_input(v, zone).ok()),
            categories: all("category").filter_map(|v| v.parse().ok()).collect(),
            min_severity: one("min_severity").and_then(|v| v.parse().ok()),
            status: one("status").and_then(|v| v.parse().ok()),
            origins: all("origin").filter_map(|v| OrgId::parse(v).ok()).collect(),
            source: one("source").and_then(|v| v.parse().ok()),
            bbox: one("bbox").and_then(|v| v.parse().ok()),
        }
    }

    /// The window as `(since, until)` at `now`.
    pub fn span(&self, now: DateTime<Utc>) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        match WINDOWS.iter().find(|(name, _)| *name == self.window) {
            Some((_, hours)) => (Some(now - Duration::hours(*hours)), None),
            None => (self.from, self.until),
        }
    }

    /// How long the window reaches back, for a window relative to now.
    fn window_seconds(&self) -> Option<i64> {
        WINDOWS.iter().find(|(name, _)| *name == self.window).map(|(_, hours)| hours * 3600)
    }

    /// The store's question for these filters at `now`, one page of `limit`.
    pub fn query(&self, now: DateTime<Utc>, limit: u32) -> SituationQuery {
        let (since, until) = self.span(now);
        SituationQuery {
            since,
            until,
            bbox: self.bbox,
            categories: self.categories.clone(),
            min_severity: self.min_severity,
            origins: self.origins.clone(),
            status: self.status,
            source: self.source,
            limit,
            after: None,
        }
    }

    /// The same filters as the API's query string, for `/api/v1/situation` and its stream.
    pub fn api_query(&self, now: DateTime<Utc>) -> String {
        let (since, until) = self.span(now);
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(since) = since {
            query.append_pair("since", &since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
        if let Some(until) = until {
            query.append_pair("until", &until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
        for category in &self.categories {
            query.append_pair("category", category.as_str());
        }
        if let Some(severity) = self.min_severity {
            query.append_pair("min_severity", severity.as_str());
        }
        if let Some(status) = self.status {
            query.append_pair("status", status.as_str());
        }
        for origin in &self.origins {
            query.append_pair("origin", origin.as_str());
        }
        if let Some(source) = self.source {
            query.append_pair("source", if source == Source::Own { "own" } else { "received" });
        }
        if let Some(b) = self.bbox {
            query.append_pair("bbox", &format!("{},{},{},{}", b.min_lon, b.min_lat, b.max_lon, b.max_lat));
        }
        query.finish()
    }
}

/// Every value of the query parameter `name`, trimmed.
fn values<'a>(pairs: &'a [(String, String)], name: &'a str) -> impl Iterator<Item = &'a str> {
    pairs.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.trim())
}

/// A choice in a filter's list.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub chosen: bool,
}

/// The filter form as shown, with what is chosen.
struct FilterForm {
    windows: Vec<Choice>,
    from: String,
    until: String,
    categories: Vec<Choice>,
    severities: Vec<Choice>,
    statuses: Vec<Choice>,
    origins: Vec<Choice>,
    sources: Vec<Choice>,
    /// Whether a category, or an origin, is chosen (their lists then show open).
    some_category: bool,
    some_origin: bool,
}

impl FilterForm {
    fn of(filters: &Filters, t: &Texts, partners: &[(String, String)], zone: chrono_tz::Tz) -> FilterForm {
        let choice =
            |value: &str, label: &str, chosen: bool| Choice { value: value.into(), label: label.into(), chosen };
        let window_labels = [t.last_1h, t.last_6h, t.last_24h, t.last_7d];
        let mut windows: Vec<Choice> = WINDOWS
            .iter()
            .zip(window_labels)
            .map(|((name, _), label)| choice(name, label, filters.window == *name))
            .collect();
        windows.push(choice("custom", t.custom_window, filters.window == "custom"));
        FilterForm {
            some_category: !filters.categories.is_empty(),
            some_origin: !filters.origins.is_empty(),
            windows,
            from: filters.from.map(|t| time::input_value(t, zone)).unwrap_or_default(),
            until: filters.until.map(|t| time::input_value(t, zone)).unwrap_or_default(),
            categories: Category::ALL
                .iter()
                .map(|c| choice(c.as_str(), t.category(*c), filters.categories.contains(c)))
                .collect(),
            severities: std::iter::once(choice("", t.any_severity, filters.min_severity.is_none()))
                .chain(
                    Severity::ALL.iter().map(|s| choice(s.as_str(), t.severity(*s), filters.min_severity == Some(*s))),
                )
                .collect(),
            statuses: std::iter::once(choice("", t.any_status, filters.status.is_none()))
                .chain(Status::ALL.iter().map(|s| choice(s.as_str(), t.report_status(*s), filters.status == Some(*s))))
                .collect(),
            origins: partners
                .iter()
                .map(|(org, name)| choice(org, name, filters.origins.iter().any(|o| o.as_str() == org)))
                .collect(),
            sources: vec![
                choice("", t.source_all, filters.source.is_none()),
                choice("own", t.source_own, filters.source == Some(Source::Own)),
                choice("received", t.source_received, filters.source == Some(Source::Received)),
            ],
        }
    }
}

#[derive(Template)]
#[template(path = "picture.html")]
struct PicturePage {
    chrome: Chrome,
    form: FilterForm,
    /// What the page's script needs, as JSON (in an attribute, escaped as any attribute is).
    config: String,
    patrol_href: String,
    may_file: bool,
    tiles: bool,
    /// Whether the filters say more than the default (the last 24 hours, everything).
    filtered: bool,
}

/// `GET /console/`: the map.
pub async fn picture(
    viewer: Viewer,
    state: Data<AppState>,
    settings: Data<ConsoleSettings>,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    viewer.require(READERS)?;
    let t = viewer.lang.texts();
    let now = state.clock.now();
    let filters = Filters::of(&req, settings.zone);
    let partners = partner_names(&state).await.map_err(|e| viewer.fail(e))?;
    let api = filters.api_query(now);
    let config = json!({
        "situation": format!("/api/v1/situation?{api}"),
        "stream": format!("/api/v1/situation/stream?{api}"),
        "window_seconds": filters.window_seconds(),
        "page_size": MAX_PAGE_SIZE,
        "tiles": settings.tiles.as_ref().map(|(url, attribution)| json!({"url": url, "attribution": attribution})),
        "zone": settings.zone.name(),
        "lang": viewer.lang.code(),
        "own_org": state.node.org_id.as_str(),
        "sites": settings.sites.iter().map(|s| json!({"name": s.name, "lat": s.lat, "lon": s.lon})).collect::<Vec<_>>(),
        "municipalities": settings
            .municipalities
            .iter()
            .map(|m| (m.code.clone(), json!({"name": m.name, "lat": m.lat, "lon": m.lon})))
            .collect::<serde_json::Map<_, _>>(),
        "partners": partners.iter().map(|(org, name)| (org.clone(), json!(name))).collect::<serde_json::Map<_, _>>(),
        "labels": labels(t),
    });
    let page = PicturePage {
        chrome: viewer.chrome(Section::Picture),
        form: FilterForm::of(&filters, t, &partners, settings.zone),
        config: config.to_string(),
        patrol_href: format!("/console/patrol?{}", req.query_string()),
        may_file: viewer.may(WRITERS),
        tiles: settings.tiles.is_some(),
        filtered: !req.query_string().is_empty(),
    };
    html(StatusCode::OK, &page)
}

/// The words the page's script shows, in the reader's language.
fn labels(t: &Texts) -> serde_json::Value {
    let map = |pairs: Vec<(&str, &str)>| {
        pairs.into_iter().map(|(k, v)| (k.to_owned(), json!(v))).collect::<serde_json::Map<_, _>>()
    };
    json!({
        "categories": map(Category::ALL.iter().map(|c| (c.as_str(), t.category(*c))).collect()),
        "severities": map(Severity::ALL.iter().map(|s| (s.as_str(), t.severity(*s))).collect()),
        "statuses": map(Status::ALL.iter().map(|s| (s.as_str(), t.report_status(*s))).collect()),
        "site_kinds": map(SiteKind::ALL.iter().map(|k| (k.as_str(), t.site_kind(*k))).collect()),
        "list_empty": t.list_empty,
        "list_without_point": t.list_without_point,
        "live_connecting": t.live_connecting,
        "live_on": t.live_on,
        "live_off": t.live_off,
        "own_report": t.own_report,
        "held": t.held_badge,
        "received_from": t.received_from,
        "cell_square": t.cell_square,
        "in_municipality": t.in_municipality,
        "time_hidden": t.time_hidden,
        "shown_count": t.shown_count,
    })
}

/// Partners by organisation id, with their names, for the origin filter.
async fn partner_names(state: &AppState) -> Result<Vec<(String, String)>, crate::http::ApiError> {
    let mut names: Vec<(String, String)> =
        state.store.partners().await?.into_iter().map(|p| (p.org_id.to_string(), p.name)).collect();
    names.insert(0, (state.node.org_id.to_string(), state.node.name.clone()));
    Ok(names)
}

/// The most lines a patrol sheet prints (about six A4 pages): a round needs a window or an area
/// narrow enough to walk, and the sheet says when there is more.
const PATROL_LINES: u32 = 500;

/// One line of the patrol sheet.
struct PatrolLine {
    when: String,
    what: String,
    category: &'static str,
    severity: &'static str,
    severity_class: &'static str,
    place: String,
    status: String,
    done: String,
    origin: String,
}

#[derive(Template)]
#[template(path = "patrol.html")]
struct PatrolPage {
    chrome: Chrome,
    form: FilterForm,
    bbox: String,
    lines: Vec<PatrolLine>,
    window: String,
    printed: String,
    count: String,
    /// Said when the window holds more than the sheet prints.
    more: Option<String>,
    handling: Option<String>,
}

/// `GET /console/patrol`: the picture for a window and an area, as a sheet to print.
pub async fn patrol(
    viewer: Viewer,
    state: Data<AppState>,
    settings: Data<ConsoleSettings>,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    viewer.require(READERS)?;
    let t = viewer.lang.texts();
    let (now, zone, lang) = (state.clock.now(), settings.zone, viewer.lang);
    let filters = Filters::of(&req, zone);
    let partners = partner_names(&state).await.map_err(|e| viewer.fail(e))?;
    let name_of = |org: &OrgId| {
        partners.iter().find(|(id, _)| id == org.as_str()).map_or_else(|| org.to_string(), |(_, name)| name.clone())
    };
    let mut page =
        state.store.situation(&filters.query(now, PATROL_LINES), now).await.map_err(|e| viewer.fail(e.into()))?;
    page.reports = crate::api::persons::shown(&state, &viewer.caller.actor, &viewer.caller.roles, page.reports)
        .await
        .map_err(|e| viewer.fail(e.into()))?;
    let more = page.next.is_some();
    // Oldest first: the order a night's round walks through it.
    let mut lines: Vec<(DateTime<Utc>, PatrolLine)> = page
        .reports
        .iter()
        .map(|report| match report {
            PictureReport::Own(report) => own_line(report, t, zone, lang, name_of(&report.origin)),
            PictureReport::Received(view) => received_line(view, t, zone, lang, name_of(&view.origin)),
        })
        .collect();
    lines.sort_by_key(|(at, _)| *at);
    let strictest = page
        .reports
        .iter()
        .map(|r| match r {
            PictureReport::Own(r) => r.content.tlp,
            PictureReport::Received(v) => v.tlp,
        })
        .max();
    let (since, until) = filters.span(now);
    let window = format!(
        "{} – {}",
        since.map(|s| time::moment(s, zone, lang)).unwrap_or_default(),
        time::moment(until.unwrap_or(now), zone, lang)
    );
    let page = PatrolPage {
        chrome: viewer.chrome(Section::Patrol),
        form: FilterForm::of(&filters, t, &partners, zone),
        bbox: filters
            .bbox
            .as_ref()
            .map(|b| format!("{},{},{},{}", b.min_lon, b.min_lat, b.max_lon, b.max_lat))
            .unwrap_or_default(),
        count: t.patrol_count.replace("{n}", &lines.len().to_string()),
        more: more.then(|| t.patrol_more.replace("{n}", &PATROL_LINES.to_string())),
        lines: lines.into_iter().map(|(_, line)| line).collect(),
        window,
        printed: time::moment(now, zone, lang),
        handling: strictest
            .filter(|tlp| *tlp > Tlp::Clear)
            .map(|tlp| t.patrol_handle.replace("{tlp}", &format!("TLP:{tlp}"))),
    };
    html(StatusCode::OK, &page)
}

fn severity_class(severity: Severity) -> &'static str {
    match severity {
        Severity::Minor => "sev-minor",
        Severity::Moderate => "sev-moderate",
        Severity::Severe => "sev-severe",
        Severity::Critical => "sev-critical",
    }
}

fn own_line(
    report: &Report,
    t: &Texts,
    zone: chrono_tz::Tz,
    lang: super::i18n::Lang,
    origin: String,
) -> (DateTime<Utc>, PatrolLine) {
    let c = &report.content;
    let l = &c.location;
    let site = l.site.as_ref().map(|s| s.name.clone().unwrap_or_else(|| t.site_kind(s.kind).to_owned()));
    let place = [site, l.place_name.clone(), l.address.clone()].into_iter().flatten().collect::<Vec<_>>().join(", ");
    let line = PatrolLine {
        when: time::moment(c.observed_at, zone, lang),
        what: c.title.clone(),
        category: t.category(c.category),
        severity: t.severity(c.severity),
        severity_class: severity_class(c.severity),
        place: if place.is_empty() { format!("{:.4}, {:.4}", l.lat, l.lon) } else { place },
        status: t.report_status(c.status).to_owned(),
        done: c.actions.iter().map(|a| a.what.clone()).collect::<Vec<_>>().join("; "),
        origin,
    };
    (c.observed_at, line)
}

fn received_line(
    view: &ReportView,
    t: &Texts,
    zone: chrono_tz::Tz,
    lang: super::i18n::Lang,
    origin: String,
) -> (DateTime<Utc>, PatrolLine) {
    let place = match (&view.site, &view.location) {
        (Some(site), _) if site.name.is_some() => site.name.clone().unwrap_or_default(),
        (_, Some(l)) if l.place_name.is_some() || l.address.is_some() => {
            [l.place_name.clone(), l.address.clone()].into_iter().flatten().collect::<Vec<_>>().join(", ")
        }
        (_, Some(l)) if l.cell_metres.is_some() => {
            t.cell_square.replace("{m}", &l.cell_metres.unwrap_or_default().to_string())
        }
        (_, Some(l)) if l.municipality_code.is_some() => {
            t.in_municipality.replace("{code}", l.municipality_code.as_deref().unwrap_or_default())
        }
        (Some(site), _) => t.site_kind(site.kind).to_owned(),
        _ => String::new(),
    };
    let when = view
        .observed_at
        .map_or_else(|| t.time_hidden.to_owned(), |at| time::shared(at, view.time_precision, zone, lang));
    let line = PatrolLine {
        when,
        what: view.title.clone().unwrap_or_else(|| t.category(view.category).to_owned()),
        category: t.category(view.category),
        severity: t.severity(view.severity),
        severity_class: severity_class(view.severity),
        place,
        status: view.status.map(|s| t.report_status(s).to_owned()).unwrap_or_default(),
        done: view.actions.iter().flatten().map(|a| a.what.clone()).collect::<Vec<_>>().join("; "),
        origin,
    };
    (view.observed_at.unwrap_or(DateTime::<Utc>::MIN_UTC), line)
}
