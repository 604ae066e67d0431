//! Middleware around every request: it records the request's metrics and log line (route pattern,
//! status, duration; never bodies or query strings), and it guarantees that every error leaves as
//! problem+json, even one raised by the framework before a handler ran. Every edge wraps its app in
//! it; an app that registers `Data<Metrics>` has its requests counted there.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{Error, HttpResponse};

use super::problem::{PROBLEM_JSON, problem_response};
use crate::metrics::Metrics;

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    // Only standard methods become labels: a client must not be able to mint new series.
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "HEAD" | "OPTIONS") => m.to_owned(),
        _ => "other".to_owned(),
    };
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let metrics = req.app_data::<Data<Metrics>>().cloned();
    // Handler and extractor errors arrive here as responses; only a failure of the middleware stack
    // itself would be an `Err`, and the request it needs to be answered with is gone by then.
    let response = as_problem_if_error(next.call(req).await?.map_into_boxed_body());
    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    if let Some(metrics) = metrics {
        metrics.observe_request(&method, &route, status, seconds);
    }
    tracing::info!(%method, %route, status, ms = seconds * 1000.0, "request");
    Ok(response)
}

/// Replaces a framework-made error body (plain text, or none) by a problem document of the same
/// status. A body an edge made on purpose passes: a problem document, or a console page (HTML) that
/// tells a person in a browser what went wrong.
fn as_problem_if_error(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let made_on_purpose = content_type.starts_with(PROBLEM_JSON) || content_type.starts_with("text/html");
    if !(status.is_client_error() || status.is_server_error()) || made_on_purpose {
        return response;
    }
    let replacement: HttpResponse = problem_response(status, "the request could not be served as sent");
    let (req, _) = response.into_parts();
    ServiceResponse::new(req, replacement)
}
