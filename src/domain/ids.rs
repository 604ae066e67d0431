//! Identifiers that are types, not strings: a [`ReportId`] is a UUID v7, an [`OrgId`] is compared only
//! after one normalisation (ASCII lower case, a small alphabet), so no two spellings, cases or Unicode
//! look-alikes can name the same organisation, and a [`Version`] counts from 1.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A situation report's identity, stable across its versions: a UUID v7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[schema(value_type = String, format = Uuid, example = "01937a4e-2f6c-7d3e-9a1b-2c3d4e5f6a7b")]
#[serde(transparent)]
pub struct ReportId(Uuid);

impl ReportId {
    /// A new id whose time part is `at`, so that ids sort by creation.
    pub fn new_at(at: DateTime<Utc>) -> Self {
        let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
        let ts = uuid::Timestamp::from_unix(uuid::NoContext, millis / 1000, (millis % 1000) as u32 * 1_000_000);
        Self(Uuid::new_v7(ts))
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for ReportId {
    fn from(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

impl FromStr for ReportId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

impl fmt::Display for ReportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An organisation's id, such as `se-kommun-norrkoping`: 2 to 64 characters of `a-z`, `0-9` and `-`,
/// starting with a letter. Input is lower-cased first; anything outside ASCII is refused rather than
/// folded, so a Cyrillic `а` can never pass for a Latin `a`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
#[schema(value_type = String, pattern = "^[a-z][a-z0-9-]{1,63}$", example = "se-kommun-norrkoping")]
#[serde(transparent)]
pub struct OrgId(String);

/// Why a string is not an organisation id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidOrgId(&'static str);

impl OrgId {
    pub fn parse(raw: &str) -> Result<Self, InvalidOrgId> {
        let id = raw.trim().to_ascii_lowercase();
        if !id.is_ascii() {
            return Err(InvalidOrgId("an organisation id may hold only a-z, 0-9 and '-'"));
        }
        if !(2..=64).contains(&id.len()) {
            return Err(InvalidOrgId("an organisation id is 2 to 64 characters long"));
        }
        if !id.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(InvalidOrgId("an organisation id starts with a letter"));
        }
        if !id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err(InvalidOrgId("an organisation id may hold only a-z, 0-9 and '-'"));
        }
        Ok(Self(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for OrgId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl FromStr for OrgId {
    type Err = InvalidOrgId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The pin of a TLS key: SHA-256 of the certificate's public key (SPKI), written `sha256/<base64>`.
/// Partners know each other's TLS keys by pin, not through a certificate authority.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, pattern = "^sha256/[A-Za-z0-9+/]{43}=$", example = "sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")]
pub struct TlsPin(String);

impl TlsPin {
    pub fn from_sha256(digest: &[u8]) -> Self {
        use base64::Engine;
        Self(format!("sha256/{}", base64::engine::general_purpose::STANDARD.encode(digest)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TlsPin {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        use base64::Engine;
        let decoded =
            text.strip_prefix("sha256/").and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
        match decoded {
            Some(bytes) if bytes.len() == 32 => Ok(Self::from_sha256(&bytes)),
            _ => Err("a TLS pin is sha256/ followed by the base64 of 32 bytes".to_owned()),
        }
    }
}

impl From<TlsPin> for String {
    fn from(pin: TlsPin) -> Self {
        pin.0
    }
}

impl fmt::Display for TlsPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A report's version: 1 when filed, one more for each update or retraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[schema(value_type = u32, minimum = 1, example = 1)]
#[serde(transparent)]
pub struct Version(u32);

impl Version {
    pub const FIRST: Version = Version(1);

    /// A version from storage or a header; zero is not a version.
    pub fn new(n: u32) -> Option<Self> {
        (n >= 1).then_some(Self(n))
    }

    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_ids_compare_after_lower_casing() {
        assert_eq!(OrgId::parse("SE-Kommun-Norrkoping").unwrap(), OrgId::parse("se-kommun-norrkoping").unwrap());
    }

    #[test]
    fn org_ids_refuse_look_alike_letters() {
        // U+0430 CYRILLIC SMALL LETTER A in place of the Latin a.
        assert!(OrgId::parse("se-polisen-\u{430}").is_err());
        assert!(OrgId::parse("se polisen").is_err());
        assert!(OrgId::parse("1abc").is_err());
        assert!(OrgId::parse("a").is_err());
    }

    #[test]
    fn report_ids_sort_by_creation_time() {
        let early = ReportId::new_at(DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        let late = ReportId::new_at(DateTime::from_timestamp(1_700_000_001, 0).unwrap());
        assert!(early < late);
    }
}
