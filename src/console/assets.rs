//! The console's static files, embedded in the binary: its own stylesheet and scripts (beside
//! this module), and the browser libraries installed from the npm registry by `build.rs` (Leaflet
//! and its marker clustering) with their licences. Each is served with its type and an ETag, so a
//! browser asks again cheaply and never runs a stale script after an upgrade.

use std::collections::HashMap;
use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::web::Path;
use actix_web::{HttpRequest, HttpResponse};

/// A file of the npm packages, as `build.rs` copied it into the build's own folder.
macro_rules! vendor {
    ($file:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/console-vendor/", $file))
    };
}

/// Every asset: its path under `/console/assets/`, its media type, its bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    ("console.css", "text/css; charset=utf-8", include_bytes!("assets/console.css")),
    ("console.js", "text/javascript; charset=utf-8", include_bytes!("assets/console.js")),
    ("picture.js", "text/javascript; charset=utf-8", include_bytes!("assets/picture.js")),
    ("report-form.js", "text/javascript; charset=utf-8", include_bytes!("assets/report-form.js")),
    ("pages.js", "text/javascript; charset=utf-8", include_bytes!("assets/pages.js")),
    ("alerts.js", "text/javascript; charset=utf-8", include_bytes!("assets/alerts.js")),
    ("requests.js", "text/javascript; charset=utf-8", include_bytes!("assets/requests.js")),
    ("vendor/leaflet/leaflet.js", "text/javascript; charset=utf-8", vendor!("leaflet/dist/leaflet.js")),
    ("vendor/leaflet/leaflet.css", "text/css; charset=utf-8", vendor!("leaflet/dist/leaflet.css")),
    ("vendor/leaflet/images/layers.png", "image/png", vendor!("leaflet/dist/images/layers.png")),
    ("vendor/leaflet/images/layers-2x.png", "image/png", vendor!("leaflet/dist/images/layers-2x.png")),
    ("vendor/leaflet/images/marker-icon.png", "image/png", vendor!("leaflet/dist/images/marker-icon.png")),
    ("vendor/leaflet/images/marker-icon-2x.png", "image/png", vendor!("leaflet/dist/images/marker-icon-2x.png")),
    ("vendor/leaflet/images/marker-shadow.png", "image/png", vendor!("leaflet/dist/images/marker-shadow.png")),
    (
        "vendor/markercluster/leaflet.markercluster.js",
        "text/javascript; charset=utf-8",
        vendor!("leaflet.markercluster/dist/leaflet.markercluster.js"),
    ),
    (
        "vendor/markercluster/MarkerCluster.css",
        "text/css; charset=utf-8",
        vendor!("leaflet.markercluster/dist/MarkerCluster.css"),
    ),
    (
        "vendor/markercluster/MarkerCluster.Default.css",
        "text/css; charset=utf-8",
        vendor!("leaflet.markercluster/dist/MarkerCluster.Default.css"),
    ),
    ("licences/leaflet.txt", "text/plain; charset=utf-8", vendor!("leaflet/LICENSE")),
    (
        "licences/leaflet.markercluster.txt",
        "text/plain; charset=utf-8",
        vendor!("leaflet.markercluster/MIT-LICENCE.txt"),
    ),
];

/// An asset as served: its media type, its bytes, its ETag.
type Served = (&'static str, &'static [u8], String);

/// Each asset by path, with its type, bytes and ETag (a hash of its bytes).
static BY_PATH: LazyLock<HashMap<&'static str, Served>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|(path, kind, bytes)| {
            let hash = crate::domain::audit::sha256_hex(bytes);
            (*path, (*kind, *bytes, format!("\"{}\"", &hash[..16])))
        })
        .collect()
});

/// `GET /console/assets/{path}`.
pub async fn asset(path: Path<String>, req: HttpRequest) -> HttpResponse {
    let Some((kind, bytes, etag)) = BY_PATH.get(path.as_str()) else {
        return HttpResponse::NotFound().content_type("text/plain; charset=utf-8").body("no such asset");
    };
    let cached = req.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str());
    let mut response = if cached { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    response
        .insert_header((header::ETAG, etag.clone()))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_TYPE, *kind));
    if cached { response.finish() } else { response.body(*bytes) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_bytes_and_a_distinct_path() {
        assert_eq!(BY_PATH.len(), FILES.len());
        assert!(FILES.iter().all(|(_, _, bytes)| !bytes.is_empty()));
    }
}
