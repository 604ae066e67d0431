//! The operator console: the pages people use every day in a browser, served by the node itself
//! under `/console/` (and `/` leads there). Server-rendered with compile-time-checked templates
//! (askama), in Swedish and English, with a little JavaScript where it pays: the map (Leaflet, from
//! the npm registry), live updates from the situation stream, and the per-recipient preview while
//! a report is written. Every page checks the same roles as the API and calls the same operations
//! (`api`'s), so the console can do nothing the API would refuse; it holds no rule of its own.
//!
//! Every response carries a strict Content-Security-Policy (no inline script or style, nothing
//! from outside but the configured map tiles, no framing); every form that changes anything
//! carries the session's CSRF token and must come from the node's own pages.

mod agreements;
mod alerts;
mod assets;
mod audit;
mod form;
mod i18n;
mod page;
mod partners;
mod picture;
mod recipients;
mod report_form;
mod reports;
mod requests;
mod signin;
mod time;
mod viewer;

use actix_web::http::Method;
use actix_web::middleware::DefaultHeaders;
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};

use crate::config::{ConsoleMunicipality, ConsoleSection, ConsoleSite, NodeConfig};
use crate::http::routes::{self, on, path};
use page::ConsoleError;

/// What the console needs of the configuration, prepared once at start.
pub struct ConsoleSettings {
    /// The map's tile source and its credit, if configured.
    pub tiles: Option<(String, String)>,
    /// The zone times are shown and read in.
    pub zone: chrono_tz::Tz,
    /// The organisation's sites, offered when filing.
    pub sites: Vec<ConsoleSite>,
    /// Where the map places a report shared only to the municipality.
    pub municipalities: Vec<ConsoleMunicipality>,
    /// Whether the sign-in page may take the node's development token.
    pub dev_sign_in: bool,
    /// Whether cookies must only travel over https (the node, or its sign-in, is on https).
    pub secure_cookies: bool,
    /// The Content-Security-Policy of every console response.
    pub csp: String,
}

impl ConsoleSettings {
    /// The settings of a node started with `config`; `dev_token` is whether its development token
    /// is accepted.
    pub fn new(config: &NodeConfig, dev_token: bool) -> ConsoleSettings {
        let section: &ConsoleSection = &config.console;
        // Checked when the configuration was loaded.
        let zone = section.time_zone.parse().unwrap_or(chrono_tz::Europe::Stockholm);
        let tiles = section.tile_url.clone().map(|url| (url, section.tile_attribution.clone().unwrap_or_default()));
        let secure_cookies = config.api.tls_cert.is_some()
            || config.auth.as_ref().and_then(|a| a.redirect_url.as_deref()).is_some_and(|u| u.starts_with("https://"));
        let csp = content_security_policy(tiles.as_ref().map(|(url, _)| url.as_str()));
        ConsoleSettings {
            tiles,
            zone,
            sites: section.sites.clone(),
            municipalities: section.municipalities.clone(),
            dev_sign_in: dev_token,
            secure_cookies,
            csp,
        }
    }
}

/// The headers every console answer carries, with the Content-Security-Policy `csp`.
pub(crate) fn security_headers(csp: &str) -> [(&'static str, String); 5] {
    [
        ("Content-Security-Policy", csp.to_owned()),
        ("X-Content-Type-Options", "nosniff".to_owned()),
        ("Referrer-Policy", "same-origin".to_owned()),
        ("X-Frame-Options", "DENY".to_owned()),
        ("Permissions-Policy", "geolocation=(self), camera=(), microphone=()".to_owned()),
    ]
}

/// Only this node's own scripts, styles, images and connections, and the tile source's images;
/// no inline script or style, no plugins, no framing, forms only to this node.
pub(crate) fn content_security_policy(tile_url: Option<&str>) -> String {
    let tiles = tile_url
        .and_then(|url| {
            let (scheme, rest) = url.split_once("://")?;
            let host = rest.split('/').next()?.replace("{s}", "*");
            Some(format!(" {scheme}://{host}"))
        })
        .unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:{tiles}; connect-src 'self'; \
         font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// Registers the console under `/console/`, and `/` as the way in.
pub fn routes(cfg: &mut ServiceConfig, settings: &ConsoleSettings) {
    let mut headers = DefaultHeaders::new();
    for (name, value) in security_headers(&settings.csp) {
        headers = headers.add((name, value));
    }
    cfg.service(web::resource("/").route(web::get().to(home)));
    cfg.service(
        web::scope("/console")
            .wrap(headers)
            .configure(|cfg| routes::register(cfg, paths()))
            .default_service(web::to(missing)),
    );
}

/// Every console path (relative to `/console`) and its methods.
fn paths() -> Vec<routes::Path> {
    vec![
        path("/", vec![on(Method::GET, picture::picture)]),
        path("/signin", vec![on(Method::GET, signin::page), on(Method::POST, signin::with_token)]),
        path("/signout", vec![on(Method::POST, signin::sign_out)]),
        path("/lang/{lang}", vec![on(Method::GET, signin::switch_language)]),
        path("/me", vec![on(Method::GET, signin::me)]),
        path("/patrol", vec![on(Method::GET, picture::patrol)]),
        path("/alerts", vec![on(Method::GET, alerts::block)]),
        path("/alerts/{id}/seen", vec![on(Method::POST, alerts::seen)]),
        path("/reports", vec![on(Method::POST, reports::file)]),
        path("/reports/new", vec![on(Method::GET, reports::new)]),
        path("/reports/preview", vec![on(Method::POST, reports::preview)]),
        path("/reports/{id}", vec![on(Method::GET, reports::show), on(Method::POST, reports::update)]),
        path("/reports/{id}/edit", vec![on(Method::GET, reports::edit)]),
        path("/reports/{id}/release", vec![on(Method::POST, reports::release)]),
        path("/reports/{id}/refuse-release", vec![on(Method::POST, reports::refuse_release)]),
        path(
            "/reports/{id}/retract",
            vec![on(Method::GET, reports::confirm_retract), on(Method::POST, reports::retract)],
        ),
        path("/requests", vec![on(Method::GET, requests::list), on(Method::POST, requests::create)]),
        path("/requests/{id}", vec![on(Method::GET, requests::show)]),
        path("/requests/{id}/steps", vec![on(Method::POST, requests::take_step)]),
        path("/agreements", vec![on(Method::GET, agreements::list), on(Method::POST, agreements::propose)]),
        path("/agreements/new", vec![on(Method::GET, agreements::new)]),
        path("/agreements/{id}", vec![on(Method::GET, agreements::show)]),
        path(
            "/agreements/{id}/{action}",
            vec![on(Method::GET, agreements::confirm), on(Method::POST, agreements::act)],
        ),
        path("/partners", vec![on(Method::GET, partners::list), on(Method::POST, partners::import)]),
        path("/partners/{org}/{action}", vec![on(Method::GET, partners::confirm), on(Method::POST, partners::act)]),
        path("/subscriptions", vec![on(Method::GET, partners::subscriptions)]),
        path("/subscriptions/{id}/delete", vec![on(Method::POST, partners::delete_subscription)]),
        path("/audit", vec![on(Method::GET, audit::trail)]),
        path("/dead-letters", vec![on(Method::GET, audit::dead_letters)]),
        path("/assets/{path:.*}", vec![on(Method::GET, assets::asset)]),
    ]
}

/// `/`: the console, for a browser.
async fn home() -> HttpResponse {
    page::see_other("/console/")
}

/// A console path that names no page.
async fn missing(req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let lang = i18n::Lang::of(&req);
    Err(ConsoleError::page(actix_web::http::StatusCode::NOT_FOUND, lang, lang.texts().page_missing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_lets_in_the_tile_source_and_nothing_else_from_outside() {
        let plain = content_security_policy(None);
        assert!(plain.contains("img-src 'self' data:;"), "{plain}");
        let tiled = content_security_policy(Some("https://{s}.tile.example.org/{z}/{x}/{y}.png"));
        assert!(tiled.contains("img-src 'self' data: https://*.tile.example.org;"), "{tiled}");
        assert!(tiled.contains("script-src 'self';") && tiled.contains("frame-ancestors 'none'"));
    }
}
