//! Reports as CAP 1.2 alerts (OASIS Common Alerting Protocol), the form other authorities' systems
//! speak: a report becomes an alert (kind, severity, urgency, certainty, area, TLP as `scope` and
//! `restriction`), and an alert from another system becomes report content. What a report says of
//! persons and actions is never put in an alert. An alert that does not map names the element.
//!
//! | report | CAP |
//! |---|---|
//! | id and version | `identifier` (`<id>-v<version>`); `msgType` `Alert`, `Update` (with `references` to version 1) or, retracted, `Cancel` |
//! | origin | `sender` |
//! | category | `info/category` (`Fire`, `Security` or `Other`), `info/event`, and the parameter `lagesbild:category` |
//! | severity | `info/severity`: minor Minor, moderate Moderate, severe Severe, critical Extreme |
//! | status | `info/urgency`: ongoing Immediate, resolved Past; `certainty` Observed |
//! | observed_at, expires_at | `info/onset`, `info/expires` |
//! | title, description | `info/headline`, `info/description` |
//! | location | `info/area`: `areaDesc` (place, address or municipality), `circle` (the point, radius 0), `geocode` `kommunkod` |
//! | tlp | CLEAR: `scope` Public; any other: `scope` Restricted, `restriction` `TLP:<marking>` (Private reads as RED) |
//!
//! A partner's report goes out as its view allows: a grid cell as its square (`polygon`), a time to
//! the hour or the day said in the parameter `lagesbild:time_precision`, nothing the view lacks.
//! The picture as a whole is an Atom feed whose entries each hold one alert.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::report::{Category, Location, Report, ReportContent, Severity, Status, Tlp};
use super::validation::ValidationErrors;
use super::view::{ReportView, TimePrecision};

/// The CAP 1.2 namespace.
pub const NAMESPACE: &str = "urn:oasis:names:tc:emergency:cap:1.2";
/// The media type of a CAP document.
pub const MEDIA_TYPE: &str = "application/cap+xml";

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename = "alert")]
struct Alert {
    #[serde(rename = "@xmlns", default)]
    xmlns: String,
    identifier: String,
    sender: String,
    sent: String,
    status: String,
    #[serde(rename = "msgType")]
    msg_type: String,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    restriction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    references: Option<String>,
    #[serde(default)]
    info: Vec<Info>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Info {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    language: Option<String>,
    #[serde(default)]
    category: Vec<String>,
    event: String,
    urgency: String,
    severity: String,
    certainty: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    effective: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    onset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    expires: Option<String>,
    #[serde(rename = "senderName", skip_serializing_if = "Option::is_none", default)]
    sender_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    headline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    description: Option<String>,
    #[serde(default)]
    parameter: Vec<NamedValue>,
    #[serde(default)]
    area: Vec<CapArea>,
}

#[derive(Debug, Serialize, Deserialize)]
struct NamedValue {
    #[serde(rename = "valueName")]
    value_name: String,
    value: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct CapArea {
    #[serde(rename = "areaDesc")]
    area_desc: String,
    #[serde(default)]
    polygon: Vec<String>,
    #[serde(default)]
    circle: Vec<String>,
    #[serde(default)]
    geocode: Vec<NamedValue>,
}

/// The parameter that carries a report's own category.
const CATEGORY_PARAMETER: &str = "lagesbild:category";
/// The parameter that says a time is only to the hour or the day.
const TIME_PRECISION_PARAMETER: &str = "lagesbild:time_precision";
/// The geocode of a Swedish municipality.
const MUNICIPALITY_GEOCODE: &str = "kommunkod";

/// What an alert is made of, from one of the node's own reports or from a partner's view of one.
struct Source<'a> {
    id: String,
    origin: &'a str,
    version: u32,
    retracted: bool,
    /// Version 1's identifier and sent time, when known.
    first: Option<(String, DateTime<Utc>)>,
    sent: DateTime<Utc>,
    category: Category,
    severity: Severity,
    status: Option<Status>,
    tlp: Tlp,
    observed_at: Option<DateTime<Utc>>,
    time_precision: Option<&'static str>,
    expires_at: Option<DateTime<Utc>>,
    title: Option<&'a str>,
    description: Option<&'a str>,
    area: CapArea,
}

/// `report` as a CAP 1.2 alert.
pub fn alert_of(report: &Report) -> String {
    let content = &report.content;
    let location = &content.location;
    let places = [&location.place_name, &location.address];
    let area_desc = area_desc(places, location.municipality_code.as_ref(), "the report's location");
    render(Source {
        id: report.id.to_string(),
        origin: report.origin.as_str(),
        version: report.version.get(),
        retracted: report.retracted.is_some(),
        first: Some((format!("{}-v1", report.id), report.created_at)),
        sent: report.updated_at,
        category: content.category,
        severity: content.severity,
        status: Some(content.status),
        tlp: content.tlp,
        observed_at: Some(content.observed_at),
        time_precision: None,
        expires_at: content.expires_at,
        title: Some(&content.title),
        description: (!content.description.is_empty()).then_some(content.description.as_str()),
        area: CapArea {
            area_desc,
            polygon: Vec::new(),
            circle: vec![format!("{},{} 0", location.lat, location.lon)],
            geocode: geocodes(location.municipality_code.as_ref()),
        },
    })
}

/// A partner's report, in the form its agreement let this node hold, as a CAP 1.2 alert: a
/// generalised place is the grid cell's square as a `polygon`, a coarse time is said as such in
/// the parameter `lagesbild:time_precision`, and what the view does not hold the alert does not say.
pub fn alert_of_view(view: &ReportView, now: DateTime<Utc>) -> String {
    let location = view.location.clone().unwrap_or_default();
    let point = location.lat.zip(location.lon);
    let places = [&location.place_name, &location.address];
    let area_desc = area_desc(places, location.municipality_code.as_ref(), "the place is not shared");
    let (polygon, circle) = match (point, location.cell_metres) {
        (Some((lat, lon)), Some(metres)) => (vec![cell_polygon(lat, lon, metres)], Vec::new()),
        (Some((lat, lon)), None) => (Vec::new(), vec![format!("{lat},{lon} 0")]),
        (None, _) => (Vec::new(), Vec::new()),
    };
    render(Source {
        id: view.id.to_string(),
        origin: view.origin.as_str(),
        version: view.version.get(),
        retracted: view.retracted,
        first: None,
        sent: view.updated_at.unwrap_or(now),
        category: view.category,
        severity: view.severity,
        status: view.status,
        tlp: view.tlp,
        observed_at: view.observed_at,
        time_precision: match view.time_precision {
            Some(TimePrecision::Hour) => Some("hour"),
            Some(TimePrecision::Day) => Some("day"),
            _ => None,
        },
        expires_at: view.expires_at,
        title: view.title.as_deref(),
        description: view.description.as_deref(),
        area: CapArea { area_desc, polygon, circle, geocode: geocodes(location.municipality_code.as_ref()) },
    })
}

/// The picture as a feed of CAP alerts: an Atom feed (RFC 4287) whose entries each hold one alert.
pub fn feed_of(node: &str, reports: &[super::PictureReport], now: DateTime<Utc>) -> String {
    use quick_xml::escape::escape;
    let mut feed = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\
         <id>urn:lagesbild:{node}:situation</id><title>{}</title><updated>{}</updated>",
        escape(format!("The situation picture of {node}").as_str()),
        cap_time(now)
    );
    for report in reports {
        let (alert, id, title) = match report {
            super::PictureReport::Own(r) => (alert_of(r), format!("{}-v{}", r.id, r.version), r.content.title.clone()),
            super::PictureReport::Received(v) => (
                alert_of_view(v, now),
                format!("{}-v{}", v.id, v.version),
                v.title.clone().unwrap_or_else(|| v.category.as_str().replace('_', " ")),
            ),
        };
        let alert = alert.split_once("?>").map_or(alert.as_str(), |(_, rest)| rest).trim();
        feed.push_str(&format!(
            "<entry><id>urn:lagesbild:report:{id}</id><title>{}</title><updated>{}</updated>\
             <content type=\"{MEDIA_TYPE}\">{alert}</content></entry>",
            escape(title.as_str()),
            cap_time(now)
        ));
    }
    feed.push_str("</feed>");
    feed
}

fn render(source: Source<'_>) -> String {
    let (scope, restriction) = match source.tlp {
        Tlp::Clear => ("Public", None),
        other => ("Restricted", Some(format!("TLP:{}", other.as_str()))),
    };
    let msg_type = if source.retracted {
        "Cancel"
    } else if source.version > 1 {
        "Update"
    } else {
        "Alert"
    };
    let references = source
        .first
        .as_ref()
        .filter(|_| msg_type != "Alert")
        .map(|(first, sent)| format!("{},{first},{}", source.origin, cap_time(*sent)));
    let mut parameter =
        vec![NamedValue { value_name: CATEGORY_PARAMETER.to_owned(), value: source.category.as_str().to_owned() }];
    if let Some(precision) = source.time_precision {
        parameter.push(NamedValue { value_name: TIME_PRECISION_PARAMETER.to_owned(), value: precision.to_owned() });
    }
    let alert = Alert {
        xmlns: NAMESPACE.to_owned(),
        identifier: format!("{}-v{}", source.id, source.version),
        sender: source.origin.to_owned(),
        sent: cap_time(source.sent),
        status: "Actual".to_owned(),
        msg_type: msg_type.to_owned(),
        scope: scope.to_owned(),
        restriction,
        references,
        info: vec![Info {
            language: Some("sv-SE".to_owned()),
            category: vec![cap_category(source.category).to_owned()],
            event: source.category.as_str().replace('_', " "),
            urgency: match source.status {
                Some(Status::Ongoing) => "Immediate",
                Some(Status::Resolved) => "Past",
                None => "Unknown",
            }
            .to_owned(),
            severity: match source.severity {
                Severity::Minor => "Minor",
                Severity::Moderate => "Moderate",
                Severity::Severe => "Severe",
                Severity::Critical => "Extreme",
            }
            .to_owned(),
            certainty: "Observed".to_owned(),
            effective: None,
            onset: source.observed_at.map(cap_time),
            expires: source.expires_at.map(cap_time),
            sender_name: None,
            headline: source.title.map(str::to_owned),
            description: source.description.map(str::to_owned),
            parameter,
            area: vec![source.area],
        }],
    };
    let body = quick_xml::se::to_string(&alert).unwrap_or_default();
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}")
}

/// What an area is called: its place name, else its address, else its municipality, else
/// `otherwise`.
fn area_desc(places: [&Option<String>; 2], municipality: Option<&String>, otherwise: &str) -> String {
    places
        .into_iter()
        .flatten()
        .next()
        .cloned()
        .or_else(|| municipality.map(|code| format!("kommun {code}")))
        .unwrap_or_else(|| otherwise.to_owned())
}

fn geocodes(municipality: Option<&String>) -> Vec<NamedValue> {
    municipality
        .iter()
        .map(|code| NamedValue { value_name: MUNICIPALITY_GEOCODE.to_owned(), value: (*code).clone() })
        .collect()
}

/// A grid cell of side `metres` centred on a point, as a closed CAP polygon ("lat,lon ...").
fn cell_polygon(lat: f64, lon: f64, metres: u32) -> String {
    let half_lat = f64::from(metres) / 2.0 / 111_320.0;
    let half_lon = half_lat / lat.to_radians().cos().max(0.01);
    let corners = [
        (lat - half_lat, lon - half_lon),
        (lat - half_lat, lon + half_lon),
        (lat + half_lat, lon + half_lon),
        (lat + half_lat, lon - half_lon),
        (lat - half_lat, lon - half_lon),
    ];
    corners.iter().map(|(a, o)| format!("{a:.6},{o:.6}")).collect::<Vec<_>>().join(" ")
}

/// The content of a report filed from a CAP 1.2 alert; every element that does not map is named.
pub fn content_of(xml: &[u8]) -> Result<ReportContent, ValidationErrors> {
    let text = std::str::from_utf8(xml).map_err(|_| ValidationErrors::single("alert", "must be UTF-8"))?;
    let alert: Alert = quick_xml::de::from_str(text)
        .map_err(|e| ValidationErrors::single("alert", format!("is not a CAP 1.2 alert: {e}")))?;
    let mut errors = ValidationErrors::new();
    errors.check(alert.xmlns == NAMESPACE, "alert", format!("must be in the CAP 1.2 namespace {NAMESPACE}"));
    errors.check(alert.status == "Actual", "alert.status", "only Actual alerts become reports");
    errors.check(
        alert.msg_type == "Alert",
        "alert.msgType",
        "only Alert files a report; change a report with PUT, withdraw it with retract",
    );
    let [info] = alert.info.as_slice() else {
        errors.add("alert.info", "must be exactly one info block");
        return Err(errors);
    };
    let severity = match info.severity.as_str() {
        "Minor" => Some(Severity::Minor),
        "Moderate" => Some(Severity::Moderate),
        "Severe" => Some(Severity::Severe),
        "Extreme" => Some(Severity::Critical),
        other => {
            errors.add(
                "alert.info.severity",
                format!("{other} cannot be filed; give Minor, Moderate, Severe or Extreme"),
            );
            None
        }
    };
    let category = info
        .parameter
        .iter()
        .find(|p| p.value_name == CATEGORY_PARAMETER)
        .and_then(|p| p.value.parse::<Category>().ok())
        .or_else(|| info.event.replace(' ', "_").to_lowercase().parse::<Category>().ok())
        .unwrap_or(if info.category.iter().any(|c| c == "Fire") { Category::Fire } else { Category::Other });
    let tlp = match (alert.scope.as_str(), alert.restriction.as_deref()) {
        ("Public", _) => Some(Tlp::Clear),
        ("Private", _) => Some(Tlp::Red),
        ("Restricted", restriction) => Some(
            restriction.and_then(|r| r.trim().strip_prefix("TLP:")).and_then(|t| t.parse().ok()).unwrap_or(Tlp::Amber),
        ),
        (other, _) => {
            errors.add("alert.scope", format!("{other} is not Public, Restricted or Private"));
            None
        }
    };
    let time = |errors: &mut ValidationErrors, field: &str, raw: Option<&String>| {
        let raw = raw?;
        match DateTime::parse_from_rfc3339(raw.trim()) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                errors.add(field, "must be a CAP time such as 2026-11-24T21:30:00+01:00");
                None
            }
        }
    };
    let observed_at = time(&mut errors, "alert.info.onset", info.onset.as_ref())
        .or_else(|| time(&mut errors, "alert.info.effective", info.effective.as_ref()))
        .or_else(|| time(&mut errors, "alert.sent", Some(&alert.sent)));
    let expires_at = time(&mut errors, "alert.info.expires", info.expires.as_ref());
    let location = location_of(&mut errors, info.area.first());
    let title = info.headline.clone().unwrap_or_else(|| info.event.clone());
    let status = if info.urgency == "Past" { Status::Resolved } else { Status::Ongoing };
    match (observed_at, severity, tlp, location) {
        (Some(observed_at), Some(severity), Some(tlp), Some(location)) if errors.is_empty() => Ok(ReportContent {
            observed_at,
            observed_until: None,
            category,
            severity,
            urgent: false,
            status,
            title,
            description: info.description.clone().unwrap_or_default(),
            location,
            persons: Vec::new(),
            actions: Vec::new(),
            tlp,
            expires_at,
        }),
        _ => {
            errors.check(!errors.is_empty(), "alert", "cannot be read as a report");
            Err(errors)
        }
    }
}

/// The report's location from the alert's first area: its circle's centre, or its polygon's
/// average corner.
fn location_of(errors: &mut ValidationErrors, area: Option<&CapArea>) -> Option<Location> {
    let Some(area) = area else {
        errors.add("alert.info.area", "must be given: a circle or a polygon says where");
        return None;
    };
    let point = |text: &str| -> Option<(f64, f64)> {
        let (lat, lon) = text.trim().split_once(',')?;
        Some((lat.trim().parse().ok()?, lon.trim().parse().ok()?))
    };
    let centre = if let Some(circle) = area.circle.first() {
        circle.split_whitespace().next().and_then(point)
    } else if let Some(polygon) = area.polygon.first() {
        let corners: Option<Vec<(f64, f64)>> = polygon.split_whitespace().map(point).collect();
        corners.filter(|c| !c.is_empty()).map(|c| {
            let n = c.len() as f64;
            (c.iter().map(|p| p.0).sum::<f64>() / n, c.iter().map(|p| p.1).sum::<f64>() / n)
        })
    } else {
        None
    };
    let Some((lat, lon)) = centre else {
        errors.add("alert.info.area", "needs a circle (\"lat,lon radius\") or a polygon (\"lat,lon lat,lon ...\")");
        return None;
    };
    let municipality_code = area.geocode.iter().find(|g| g.value_name == MUNICIPALITY_GEOCODE).map(|g| g.value.clone());
    Some(Location {
        lat,
        lon,
        place_name: Some(area.area_desc.clone()).filter(|d| !d.trim().is_empty()),
        address: None,
        site: None,
        municipality_code,
    })
}

/// A lagesbild category as a CAP category.
fn cap_category(category: Category) -> &'static str {
    match category {
        Category::Fire => "Fire",
        Category::Other => "Other",
        _ => "Security",
    }
}

/// A time as CAP writes it: seconds, and an offset rather than `Z`.
fn cap_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, false)
}
