//! Request bodies: the byte limit is enforced while reading, before any parsing; only JSON is
//! accepted; unknown fields are refused by the types themselves (`deny_unknown_fields`); and a
//! parse error names the field it happened at (`persons[0].age`), or the line and column for
//! broken JSON.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::web::BytesMut;
use actix_web::{FromRequest, HttpMessage, HttpRequest, http::header};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::problem::ApiError;
use crate::domain::ValidationErrors;

/// The most bytes a request body may have, as `app_data`: an edge sets its own for the whole app,
/// and a route that takes more (or less) sets one of its own, which wins.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// The body limit where no `BodyLimit` is set (every edge sets one).
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;

/// A JSON body of type `T`, read within the node's body limit.
#[derive(Debug)]
pub struct StrictJson<T>(pub T);

type BodyFuture<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

impl<T: DeserializeOwned + 'static> FromRequest for StrictJson<T> {
    type Error = ApiError;
    type Future = BodyFuture<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let read = read_json::<T>(req, payload, false);
        Box::pin(async move { read.await?.map(StrictJson).ok_or(ApiError::MalformedBody("the body is empty".into())) })
    }
}

/// Reads a JSON body of type `T` from a handler's raw payload. Handlers that need a caller read
/// their body with this after authorising it: extractors run side by side, so a body extractor
/// could answer a malformed body before a slow token check answered "who are you".
pub async fn read_body<T: DeserializeOwned + 'static>(
    req: &HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<T, ApiError> {
    let mut payload = payload.into_inner();
    read_json::<T>(req, &mut payload, false).await?.ok_or(ApiError::MalformedBody("the body is empty".into()))
}

/// Like [`read_body`], but an empty body, or `null`, means `T::default()`.
pub async fn read_optional_body<T: DeserializeOwned + Default + 'static>(
    req: &HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<T, ApiError> {
    let mut payload = payload.into_inner();
    // `null` is "none" as an empty body is: an OpenAPI client sends it for an absent optional body.
    Ok(read_json::<Option<T>>(req, &mut payload, true).await?.flatten().unwrap_or_default())
}

/// Reads and parses the body; `None` for an empty body where `empty_allowed`.
fn read_json<T: DeserializeOwned + 'static>(
    req: &HttpRequest,
    payload: &mut Payload,
    empty_allowed: bool,
) -> BodyFuture<Option<T>> {
    let has_content_type = req.headers().contains_key(header::CONTENT_TYPE);
    let is_json = matches!(req.mime_type(), Ok(Some(mime))
        if mime.type_() == "application" && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json")));
    let body = collect(req, payload);
    Box::pin(async move {
        let body = body.await?;
        if body.is_empty() && empty_allowed && (!has_content_type || is_json) {
            return Ok(None);
        }
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        parse(&body).map(Some)
    })
}

/// Reads a body of any media type from a handler's raw payload, within the body limit.
pub async fn read_bytes(req: &HttpRequest, payload: actix_web::web::Payload) -> Result<BytesMut, ApiError> {
    let mut payload = payload.into_inner();
    collect(req, &mut payload).await
}

/// The whole body, refused as soon as it is known to exceed the limit (by its declared length, or
/// as it arrives).
fn collect(req: &HttpRequest, payload: &mut Payload) -> BodyFuture<BytesMut> {
    let limit = req.app_data::<BodyLimit>().map_or(DEFAULT_BODY_LIMIT, |l| l.0);
    let declared_len: Option<usize> =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let mut payload = payload.take();
    Box::pin(async move {
        if declared_len.is_some_and(|len| len > limit) {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| ApiError::MalformedBody(format!("the body could not be read: {e}")))?;
            if body.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    })
}

/// Parses a typed body straight from the bytes, so duplicate members are refused (as serde's derived
/// types do) and no intermediate tree is built. On failure it tells broken JSON (400, with line and
/// column) from JSON with wrong values (422, by field): serde_json reports some type mismatches, such
/// as a number where an enum's name belongs, as syntax errors, so the JSON is checked on its own.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let typed = serde_path_to_error::deserialize(&mut deserializer);
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        return Err(ApiError::MalformedBody(e.to_string()));
    }
    let value = typed.map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        ApiError::Validation(ValidationErrors::single(field_of(&path, &message), message))
    })?;
    deserializer.end().map_err(|e| ApiError::MalformedBody(format!("unexpected data after the JSON value: {e}")))?;
    Ok(value)
}

/// The field a deserialisation error is about. A missing or repeated member is reported by serde at
/// its parent (`.` or `location`), so the member's name is added to the path.
fn field_of(path: &str, message: &str) -> String {
    let missing = ["missing field `", "duplicate field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name);
    match (path, missing) {
        (".", Some(name)) => name.to_owned(),
        (".", None) => "body".to_owned(),
        (parent, Some(name)) => format!("{parent}.{name}"),
        (path, None) => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        title: String,
        inner: Inner,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        lat: f64,
    }

    fn refused_field(body: &str) -> String {
        match parse::<Body>(body.as_bytes()) {
            Err(ApiError::Validation(errors)) => errors.errors()[0].field.clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn missing_members_are_named_with_their_path() {
        assert_eq!(refused_field(r#"{"inner": {"lat": 1}}"#), "title");
        assert_eq!(refused_field(r#"{"title": "x", "inner": {}}"#), "inner.lat");
    }

    #[test]
    fn duplicate_members_are_refused() {
        assert_eq!(refused_field(r#"{"title": "A", "title": "B", "inner": {"lat": 1}}"#), "title");
    }

    #[test]
    fn broken_json_is_malformed_not_invalid() {
        assert!(matches!(parse::<Body>(b"{\"title\": "), Err(ApiError::MalformedBody(_))));
        assert!(matches!(
            parse::<Body>(b"{\"title\": \"x\", \"inner\": {\"lat\": 1}} []"),
            Err(ApiError::MalformedBody(_))
        ));
    }
}
