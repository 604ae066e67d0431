//! Who may do what. People and systems authenticate with the organisation's OpenID Connect
//! provider: a system sends a JWT access token, validated here against the provider's keys. Roles
//! come from a configurable claim, mapped to the node's roles, which follow the three-level
//! security organisation of the partners (representatives, coordinators, strategists) plus the
//! administrators of agreements and of the node.

pub mod login;
pub mod session;
pub mod token;

pub use login::{Login, LoginError};
pub use token::{Principal, RoleMap, TokenError, TokenValidator};
