//! What a request carries besides its JSON body: query parameters, read strictly (unknown ones
//! refused) with every bad one named, and the short free-text reasons some actions take. Shared by
//! the handlers so each rule is written once.

use actix_web::HttpRequest;
use actix_web::web::Query;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

use super::problem::ApiError;
use crate::domain::ValidationErrors;

/// The request's query parameters as `T`; an unknown or malformed one is a problem naming `query`.
pub fn query<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    query_of(req.query_string())
}

/// The request's query parameters as `T`, where each parameter named in `lists` may be given more
/// than once (`category=fire&category=theft`, as a client generated from an OpenAPI document sends
/// an array) as well as comma-separated (`category=fire,theft`): the values are joined with commas.
pub fn query_with_lists<T: DeserializeOwned>(req: &HttpRequest, lists: &[&str]) -> Result<T, ApiError> {
    let pairs: Vec<(String, String)> = query(req)?;
    let mut merged: Vec<(String, String)> = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        match merged.iter_mut().find(|(seen, _)| *seen == name && lists.contains(&seen.as_str())) {
            Some((_, joined)) => {
                joined.push(',');
                joined.push_str(&value);
            }
            None => merged.push((name, value)),
        }
    }
    let mut text = url::form_urlencoded::Serializer::new(String::new());
    text.extend_pairs(merged);
    query_of(&text.finish())
}

fn query_of<T: DeserializeOwned>(text: &str) -> Result<T, ApiError> {
    Query::<T>::from_query(text)
        .map(Query::into_inner)
        .map_err(|e| ApiError::Validation(ValidationErrors::single("query", e.to_string())))
}

/// Parses an optional parameter, adding an error for `field` if it does not parse.
pub fn parse_field<T, E: ToString>(
    errors: &mut ValidationErrors,
    field: &str,
    raw: Option<String>,
    parse: impl FnOnce(String) -> Result<T, E>,
) -> Option<T> {
    match parse(raw?) {
        Ok(value) => Some(value),
        Err(e) => {
            errors.add(field, e.to_string());
            None
        }
    }
}

/// An RFC 3339 time. A `+` in a query string arrives as a space, so a space is read as `+`.
pub fn parse_time(raw: String) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(&raw.replace(' ', "+"))
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| "must be an RFC 3339 time such as 2026-11-24T18:00:00Z".to_owned())
}

/// Checks an optional reason given for an action (a retraction, a revocation).
pub fn check_reason(reason: Option<&String>) -> Result<(), ApiError> {
    let mut errors = ValidationErrors::new();
    if let Some(reason) = reason {
        errors.check_text("reason", reason, 1, 1_000, true);
    }
    Ok(errors.into_result(())?)
}
