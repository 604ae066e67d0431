//! Validation errors that name the field: a person fixing a request needs to know which value was
//! wrong and why, so every check reports a path such as `location.lat` and a sentence.

use serde::Serialize;
use utoipa::ToSchema;

/// One value that was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Where the value is, as a dotted path (`persons[0].age`).
    #[schema(example = "location.lat")]
    pub field: String,
    /// What is wrong with it and what is allowed.
    #[schema(example = "must be between -90 and 90")]
    pub message: String,
}

/// All the values of one request that were refused, in the order they were found: at most
/// [`MAX_ERRORS`] of them, then one entry saying how many more there were, so that neither the
/// answer nor the work of building it grows with what a client sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors(Vec<FieldError>, usize);

/// The most refused values listed one by one.
pub const MAX_ERRORS: usize = 100;

impl ValidationErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, message);
        errors
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        if self.0.len() < MAX_ERRORS {
            self.0.push(FieldError { field: field.into(), message: message.into() });
            return;
        }
        self.1 += 1;
        let more = FieldError { field: "(more)".into(), message: format!("and {} more problems", self.1) };
        if self.0.len() == MAX_ERRORS {
            self.0.push(more);
        } else if let Some(last) = self.0.last_mut() {
            *last = more;
        }
    }

    /// Adds an error for `field` unless `ok` holds.
    pub fn check(&mut self, ok: bool, field: impl Into<String>, message: impl Into<String>) {
        if !ok {
            self.add(field, message);
        }
    }

    /// Checks a text's length in characters and that it holds no control characters (but line breaks
    /// where `multiline`).
    pub fn check_text(&mut self, field: &str, text: &str, min: usize, max: usize, multiline: bool) {
        let chars = text.chars().count();
        if chars < min {
            self.add(
                field,
                if min == 1 { "must not be empty".to_owned() } else { format!("must be at least {min} characters") },
            );
        } else if chars > max {
            self.add(field, format!("must be at most {max} characters (it is {chars})"));
        }
        let allowed = |c: char| !c.is_control() || (multiline && (c == '\n' || c == '\t' || c == '\r'));
        if !text.chars().all(allowed) {
            self.add(field, "must not contain control characters");
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// `Ok(value)` when nothing was refused.
    pub fn into_result<T>(self, value: T) -> Result<T, Self> {
        if self.0.is_empty() { Ok(value) } else { Err(self) }
    }
}

impl std::fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
        f.write_str(&parts.join("; "))
    }
}
