//! Routes as data: each edge lists its paths, each with the methods it answers, and registers that
//! list. The same list tells a test which routes exist, so a route that the OpenAPI document does
//! not describe cannot hide from the document's walkers. A method a path does not answer gets a 405
//! problem naming it, with the methods it does answer in `Allow`.

use actix_web::http::Method;
use actix_web::web::{self, ServiceConfig};
use actix_web::{FromRequest, Handler, HttpRequest, HttpResponse, Responder, Route};

use super::body::BodyLimit;
use super::problem::ApiError;

/// One path and the methods it answers.
pub struct Path {
    path: &'static str,
    endpoints: Vec<Endpoint>,
    body_limit: Option<BodyLimit>,
}

/// One method of a path, and the handler that answers it.
pub struct Endpoint {
    method: Method,
    route: Route,
}

/// `path`, answering each of `endpoints`.
pub fn path(path: &'static str, endpoints: Vec<Endpoint>) -> Path {
    Path { path, endpoints, body_limit: None }
}

/// The endpoint answering `method` with `handler`.
pub fn on<F, Args>(method: Method, handler: F) -> Endpoint
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    Endpoint { route: web::method(method.clone()).to(handler), method }
}

impl Path {
    /// A body limit of this path's own, in place of the edge's.
    pub fn body_limit(self, bytes: usize) -> Self {
        Self { body_limit: Some(BodyLimit(bytes)), ..self }
    }
}

/// Registers every path; any method a path does not list gets a 405 problem.
pub fn register(cfg: &mut ServiceConfig, paths: Vec<Path>) {
    for path in paths {
        let mut methods: Vec<&str> = path.endpoints.iter().map(|e| e.method.as_str()).collect();
        methods.push(Method::OPTIONS.as_str());
        let allow = methods.join(", ");
        let mut resource = web::resource(path.path).default_service(web::to(move |req: HttpRequest| {
            let allow = allow.clone();
            async move { method_not_allowed(req, allow) }
        }));
        if let Some(limit) = path.body_limit {
            resource = resource.app_data(limit);
        }
        for endpoint in path.endpoints {
            resource = resource.route(endpoint.route);
        }
        cfg.service(resource);
    }
}

/// Each path and method of `paths`, as registered.
pub fn listing(paths: Vec<Path>) -> Vec<(String, Method)> {
    paths
        .into_iter()
        .flat_map(|path| path.endpoints.into_iter().map(move |e| (path.path.to_owned(), e.method)))
        .collect()
}

/// `OPTIONS` answers which methods the path takes; any other method it does not list is refused.
fn method_not_allowed(req: HttpRequest, allow: String) -> Result<HttpResponse, ApiError> {
    if req.method() == Method::OPTIONS {
        return Ok(HttpResponse::NoContent().insert_header((actix_web::http::header::ALLOW, allow)).finish());
    }
    Err(ApiError::MethodNotAllowed { detail: format!("{} is not allowed on {}", req.method(), req.path()), allow })
}
