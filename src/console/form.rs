//! Forms as the browser sends them: URL-encoded, or multipart when a file is uploaded (a node
//! card, an agreement). Both are read within the node's body limit before anything is parsed, and
//! become the same [`FormData`]: the fields in order, a file as its text.

use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest};
use futures_util::StreamExt;

use crate::http::ApiError;
use crate::http::body::{BodyLimit, DEFAULT_BODY_LIMIT, read_bytes};

/// A form's fields, in the order sent; a field may repeat.
#[derive(Debug, Default, Clone)]
pub struct FormData {
    fields: Vec<(String, String)>,
}

impl FormData {
    /// Reads the body of a form (URL-encoded or multipart) within the body limit.
    pub async fn read(req: &HttpRequest, payload: actix_web::web::Payload) -> Result<FormData, ApiError> {
        let mime = req.mime_type().ok().flatten();
        match mime.as_ref().map(|m| (m.type_().as_str(), m.subtype().as_str())) {
            Some(("application", "x-www-form-urlencoded")) => {
                let body = read_bytes(req, payload).await?;
                Ok(FormData { fields: url::form_urlencoded::parse(&body).into_owned().collect() })
            }
            Some(("multipart", "form-data")) => read_multipart(req, payload).await,
            _ => Err(ApiError::MalformedBody("send the form as a browser does (URL-encoded or multipart)".into())),
        }
    }

    /// The first value of `name`, trimmed; empty if absent.
    pub fn text(&self, name: &str) -> &str {
        self.fields.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.trim())
    }

    /// The first value of `name`, trimmed, or `None` if absent or empty.
    pub fn optional(&self, name: &str) -> Option<String> {
        Some(self.text(name)).filter(|v| !v.is_empty()).map(str::to_owned)
    }

    /// Every value of `name`, in order, untrimmed.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.fields.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    /// A form built from pairs.
    #[cfg(test)]
    pub fn from_pairs(pairs: &[(&str, &str)]) -> FormData {
        FormData { fields: pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect() }
    }
}

/// A multipart form: every part as a field, a file part as its text (UTF-8), all of it within the
/// body limit together.
async fn read_multipart(req: &HttpRequest, payload: actix_web::web::Payload) -> Result<FormData, ApiError> {
    let limit = req.app_data::<BodyLimit>().map_or(DEFAULT_BODY_LIMIT, |l| l.0);
    let declared: Option<usize> =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut parts = actix_multipart::Multipart::new(req.headers(), payload.into_inner());
    let mut fields = Vec::new();
    let mut total = 0usize;
    while let Some(part) = parts.next().await {
        let mut part = part.map_err(|e| ApiError::MalformedBody(format!("the form could not be read: {e}")))?;
        let name = part.content_disposition().and_then(|d| d.get_name()).unwrap_or_default().to_owned();
        let mut bytes = Vec::new();
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(|e| ApiError::MalformedBody(format!("the form could not be read: {e}")))?;
            total += chunk.len();
            if total > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            bytes.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| ApiError::MalformedBody(format!("the form field {name} is not UTF-8 text")))?;
        fields.push((name, text));
    }
    Ok(FormData { fields })
}
