//! One error type for every HTTP edge of the node, rendered as RFC 9457 `application/problem+json`
//! with a title, a status and a detail a person can act on. A 500 is logged with its cause and
//! never shows it to the client. The store's typed errors are mapped here, at the edge.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::{IntoResponses, ToSchema};

use crate::domain::{FieldError, ValidationErrors, Version};
use crate::store::StoreError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[schema(example = "urn:lagesbild:problem:validation-failed")]
    #[serde(rename = "type")]
    pub kind: String,
    #[schema(example = "The request has invalid values")]
    pub title: String,
    #[schema(example = 422)]
    pub status: u16,
    #[schema(example = "location.lat: must be between -90 and 90 (WGS84 degrees)")]
    pub detail: String,
    /// For validation problems: every refused value, by field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// The 401 of every route that needs a token.
#[derive(IntoResponses)]
pub enum AuthProblems {
    #[response(
        status = 401,
        description = "Missing or invalid bearer token",
        content_type = "application/problem+json"
    )]
    Unauthorized(Problem),
}

/// The 404 of every route that names a report.
#[derive(IntoResponses)]
pub enum NotFoundProblems {
    #[response(
        status = 404,
        description = "No such report of your organisation (or not yours: the same answer)",
        content_type = "application/problem+json"
    )]
    NotFound(Problem),
}

/// The problems of every route that reads a JSON body.
#[derive(IntoResponses)]
pub enum BodyProblems {
    #[response(status = 400, description = "The body is not valid JSON", content_type = "application/problem+json")]
    Malformed(Problem),
    #[response(
        status = 413,
        description = "The body is larger than the node's limit",
        content_type = "application/problem+json"
    )]
    TooLarge(Problem),
    #[response(status = 415, description = "The body is not JSON", content_type = "application/problem+json")]
    NotJson(Problem),
    #[response(
        status = 422,
        description = "A value is invalid; `errors` names each field",
        content_type = "application/problem+json"
    )]
    Invalid(Problem),
}

/// The problems of every route that makes a report's next version.
#[derive(IntoResponses)]
pub enum VersionProblems {
    #[response(
        status = 409,
        description = "The report is retracted, or changed at the same moment",
        content_type = "application/problem+json"
    )]
    Conflict(Problem),
    #[response(
        status = 412,
        description = "If-Match names an older version",
        content_type = "application/problem+json"
    )]
    Stale(Problem),
}

/// Everything a user API request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// A method the path does not answer; `allow` lists those it does, for the `Allow` header.
    #[error("{detail}")]
    MethodNotAllowed { detail: String, allow: String },
    #[error("{0}")]
    Validation(ValidationErrors),
    #[error("{0}")]
    MalformedBody(String),
    #[error("the request body is larger than this node accepts ({limit} bytes)")]
    PayloadTooLarge { limit: usize },
    #[error("send the body as application/json")]
    UnsupportedMediaType,
    #[error("this endpoint answers application/json or application/geo+json")]
    NotAcceptable,
    #[error("send If-Match with the version you are changing (the ETag of GET), so a concurrent change is not lost")]
    PreconditionRequired,
    #[error("the report is now at version {current}; fetch it again and reapply your change")]
    PreconditionFailed { current: Version },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("too many requests; retry after {retry_after} seconds")]
    TooManyRequests { retry_after: u64 },
    #[error("an internal error occurred; it has been logged")]
    Internal(String),
}

impl ApiError {
    fn slug_and_title(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::Unauthorized(_) => ("unauthorized", "Authentication required"),
            ApiError::Forbidden(_) => ("forbidden", "Forbidden"),
            ApiError::NotFound(_) => ("not-found", "Not found"),
            ApiError::MethodNotAllowed { .. } => ("method-not-allowed", "Method not allowed"),
            ApiError::Validation(_) => ("validation-failed", "The request has invalid values"),
            ApiError::MalformedBody(_) => ("malformed-body", "The request body is not valid JSON"),
            ApiError::PayloadTooLarge { .. } => ("payload-too-large", "Request body too large"),
            ApiError::UnsupportedMediaType => ("unsupported-media-type", "Unsupported media type"),
            ApiError::NotAcceptable => ("not-acceptable", "Not acceptable"),
            ApiError::PreconditionRequired => ("precondition-required", "If-Match required"),
            ApiError::PreconditionFailed { .. } => ("precondition-failed", "The report has changed"),
            ApiError::Conflict(_) => ("conflict", "Conflict"),
            ApiError::Unavailable(_) => ("unavailable", "Service unavailable"),
            ApiError::TooManyRequests { .. } => ("too-many-requests", "Too many requests"),
            ApiError::Internal(_) => ("internal", "Internal error"),
        }
    }

    /// The problem document a client receives.
    pub fn problem(&self) -> Problem {
        let (slug, title) = self.slug_and_title();
        let errors = match self {
            ApiError::Validation(errors) => errors.errors().to_vec(),
            _ => Vec::new(),
        };
        let detail = match self {
            ApiError::Internal(_) => "an internal error occurred; it has been logged".to_owned(),
            other => other.to_string(),
        };
        Problem {
            kind: format!("urn:lagesbild:problem:{slug}"),
            title: title.to_owned(),
            status: self.status_code().as_u16(),
            detail,
            errors,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::MalformedBody(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            ApiError::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            ApiError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            tracing::error!(cause = %cause, "internal error");
        }
        let mut response = HttpResponse::build(self.status_code());
        response.content_type(PROBLEM_JSON);
        if matches!(self, ApiError::Unauthorized(_)) {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"lagesbild\"")));
        }
        if let ApiError::MethodNotAllowed { allow, .. } = self {
            response.insert_header((header::ALLOW, allow.clone()));
        }
        if let ApiError::TooManyRequests { retry_after } = self {
            response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
        }
        response.json(self.problem())
    }
}

/// A problem response for a status that no [`ApiError`] produced (a framework error).
pub fn problem_response(status: StatusCode, detail: &str) -> HttpResponse {
    let title = status.canonical_reason().unwrap_or("Error");
    HttpResponse::build(status).content_type(PROBLEM_JSON).json(Problem {
        kind: format!("urn:lagesbild:problem:http-{}", status.as_u16()),
        title: title.to_owned(),
        status: status.as_u16(),
        detail: format!("{title}: {detail}"),
        errors: Vec::new(),
    })
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict => {
                ApiError::Conflict("the report was changed by someone else at the same moment; fetch it again".into())
            }
            StoreError::AlreadyExists(what) => ApiError::Conflict(what),
            StoreError::NotReady(why) => ApiError::Unavailable(format!("the database is not ready: {why}")),
            StoreError::Database(sqlx::Error::PoolTimedOut) => {
                tracing::warn!(
                    "every database connection stayed busy for the whole wait; the request is refused with 503"
                );
                ApiError::Unavailable("the database is busy; try again in a moment".into())
            }
            StoreError::Database(sqlx::Error::Database(e)) if disk_full(e.as_ref()) => {
                tracing::error!(error = %e, "the database's disk is full; writes are refused with 503 until there is room");
                ApiError::Unavailable(
                    "the database's disk is full: nothing was stored; try again once the operator has made room".into(),
                )
            }
            StoreError::Database(e) if unreachable(&e) => {
                tracing::warn!(error = %e, "the database could not be reached; the request is refused with 503");
                ApiError::Unavailable(
                    "the database cannot be reached just now; nothing was acknowledged; try again in a moment".into(),
                )
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// Whether the database was away rather than wrong: the connection broke or could not be made,
/// or the server is shutting down or starting (PostgreSQL's classes 08 and 57P).
fn unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(e) => e.code().is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

/// Whether the database refused a write for want of space: SQLite's `SQLITE_FULL` (13), or
/// PostgreSQL's `disk_full` (53100).
fn disk_full(error: &dyn sqlx::error::DatabaseError) -> bool {
    error.code().is_some_and(|code| code == "13" || code == "53100")
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        ApiError::Validation(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection of the pool busy for its whole wait is load, not a fault: the client is
    /// told to come back, never shown a 500.
    #[test]
    fn a_database_too_busy_to_lend_a_connection_is_unavailable_not_an_internal_error() {
        let error = ApiError::from(StoreError::Database(sqlx::Error::PoolTimedOut));
        assert_eq!(error.status_code(), StatusCode::SERVICE_UNAVAILABLE, "{error}");
        assert!(error.problem().detail.contains("busy"), "{}", error.problem().detail);
    }
}
