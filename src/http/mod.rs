//! The HTTP layer every edge of the node stands on: the user API, the federation listener and any
//! later one. It holds what they must do alike, so each does it once: errors as RFC 9457
//! problem+json (`problem`), request bodies read within a byte limit and parsed strictly (`body`),
//! query parameters and short reasons checked the same way (`input`), and the middleware that
//! observes every request and turns any framework error into a problem (`observe`), and routes
//! listed as data, so that what is registered can be checked against what is documented (`routes`).
//!
//! It knows no edge: nothing here imports `api`, `federation` or a later edge, so each of them can
//! use it without a cycle.

pub mod body;
pub mod input;
pub mod observe;
pub mod problem;
pub mod routes;

pub use body::{BodyLimit, DEFAULT_BODY_LIMIT, StrictJson};
pub use observe::observe;
pub use problem::{ApiError, PROBLEM_JSON, Problem};
