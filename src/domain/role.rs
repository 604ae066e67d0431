//! The node's roles: what a signed-in person or system may do, named as the partners' security
//! organisations name their people. Plain vocabulary, so configuration can check a role map and
//! `auth` can grant roles without either importing the other.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use utoipa::ToSchema;

/// What a signed-in person or system may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A security representative (säkerhetsombud): files and updates reports, reads the picture.
    Reporter,
    /// A security coordinator (säkerhetssamordnare): the whole picture; updates and retracts any of
    /// the organisation's reports; previews agreements.
    Coordinator,
    /// Reads reports and the picture, changes nothing.
    Analyst,
    /// Proposes, signs and revokes agreements.
    AgreementAdmin,
    /// Partners, keys, configuration and the audit trail.
    NodeAdmin,
}

impl Role {
    pub const ALL: [Role; 5] =
        [Role::Reporter, Role::Coordinator, Role::Analyst, Role::AgreementAdmin, Role::NodeAdmin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reporter => "reporter",
            Role::Coordinator => "coordinator",
            Role::Analyst => "analyst",
            Role::AgreementAdmin => "agreement-admin",
            Role::NodeAdmin => "node-admin",
        }
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
            format!("'{s}' is not a role; the roles are {}", names.join(", "))
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
