//! The domain: pure types and rules, no I/O. Reports, identifiers, validation and the situation query
//! live here; the store and the API call into it and never decide domain questions themselves. Nothing
//! in this module may import `store`, `api`, a database or an HTTP type.

pub mod agreement;
pub mod alert;
pub mod audit;
pub mod cap;
pub mod card;
pub mod envelope;
pub mod evaluation;
pub mod ids;
pub mod persons;
pub mod policy;
#[cfg(test)]
mod policy_properties;
pub mod release;
pub mod report;
pub mod request;
pub mod role;
pub mod rules;
pub mod situation;
pub mod validation;
pub mod view;
pub mod watch;

pub use card::{CardPin, NodeCard};
pub use ids::{OrgId, ReportId, TlsPin, Version};
pub use report::{
    Action, Category, Location, Person, PersonRole, Report, ReportContent, Retraction, Severity, Site, SiteKind,
    Status, Tlp, ValidContent,
};
pub use role::Role;
pub use situation::{BBox, Cursor, PictureFacts, PictureReport, SituationPage, SituationQuery, Source};
pub use validation::{FieldError, ValidationErrors};
